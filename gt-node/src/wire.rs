//! The framed node-to-node transfer protocol: message types, their stable encoding, and the
//! limits every connection enforces.
//!
//! A connection carries frames. A frame is a 4-byte big-endian payload length followed by the
//! payload, one bencoded [`Message`] (BEP 3 bencoding, the encoding every BitTorrent peer already
//! speaks and that the DHT items use too). Messages are externally tagged: a one-key dictionary
//! whose key names the message (`"hello"`, `"want_object"`, ...). The protocol version travels in
//! [`Hello`]; a peer refuses a version it does not speak.
//!
//! The exchange is staged (see the crate docs and `transfer`): HELLO, then WANT_OBJECT for the
//! tag (and each tag it points at), then a policy decision on the receiver, and only on accept
//! WANT_PACK, answered by PACK_START, PACK_CHUNK..., PACK_END.
//!
//! Decoding is for hostile bytes: the payload is first checked by a small iterative bencode
//! scanner ([`check_bencode`]) that bounds nesting depth and rejects trailing or malformed bytes,
//! so the serde decoder (which recurses) only ever sees shallow, well-formed input.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version this implementation speaks. Bumped on any incompatible change to the
/// message set or their fields.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame payload accepted, in bytes. A frame holds at most one pack chunk
/// ([`PACK_CHUNK_BYTES`]) or one object ([`MAX_OBJECT_BYTES`]) plus a few bytes of framing, so
/// anything larger is malformed; the bound keeps a peer from making us allocate at will.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Bytes of pack data per PACK_CHUNK frame: large enough that framing overhead is negligible,
/// small enough that a frame fits comfortably under [`MAX_FRAME_BYTES`].
pub const PACK_CHUNK_BYTES: usize = 256 * 1024;

/// Largest single object served or accepted through WANT_OBJECT (a tag or a commit). A tag with
/// dozens of OpenPGP signatures is a few tens of KiB; this is what a rejected ref may cost at most
/// per chain level.
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;

/// Longest tag-of-tag chain followed through WANT_OBJECT before giving up; real chains are one or
/// two levels (DESIGN: "tag chains"), and the bound stops a peer from walking us forever.
pub const MAX_TAG_CHAIN: usize = 8;

/// Default ceiling on the size of one received pack, in bytes. A node receiving more than this for
/// one ref update refuses it before storing it (the sender announces the size first).
pub const MAX_PACK_BYTES: u64 = 512 * 1024 * 1024;

/// Default ceiling on the number of objects in one received pack: bounds the index memory and
/// the connectivity walk.
pub const MAX_PACK_OBJECTS: u32 = 2_000_000;

/// Most wants in one WANT_PACK: the staged protocol asks for one ref at a time.
pub const MAX_WANTS: usize = 16;

/// Most haves in one WANT_PACK: the receiver sends its ref tips, which a repository in practice
/// keeps in the hundreds; more only costs the server walk time.
pub const MAX_HAVES: usize = 4096;

/// Largest ref manifest (the full ref map when it does not fit in a DHT item), in bytes. It is
/// sent as one frame, so it must stay under [`MAX_FRAME_BYTES`].
pub const MAX_MANIFEST_BYTES: usize = 512 * 1024;

/// Deepest nesting of bencoded lists and dictionaries accepted. Our messages nest at most 4 deep;
/// the bound keeps the recursive serde decoder far from exhausting the stack.
pub const MAX_BENCODE_DEPTH: usize = 16;

/// Time allowed for any single frame read or write once a connection is up. A peer that stalls
/// longer is dropped so it cannot pin a connection slot.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed to open a TCP connection and finish HELLO.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for one whole staged fetch (HELLO excluded): tag chain, decision and pack. The
/// per-frame [`IO_TIMEOUT`] alone would let a peer drip one frame every 29 seconds forever.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Length of the HELLO challenge, in bytes.
pub const CHALLENGE_BYTES: usize = 32;

/// Most simultaneous inbound connections a node serves; further ones wait in the accept queue.
/// Pack generation is CPU- and memory-heavy, and the machine it runs on may have two cores.
pub const MAX_CONNECTIONS: usize = 32;

/// Most requests (frames from the client) served on one connection before the server closes it,
/// so one connection cannot keep a slot forever.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 256;

/// One protocol message. The variants are the frames of the staged protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
    /// Client → server: which repository it wants, and a challenge for the server to sign.
    Hello(Hello),
    /// Server → client: the server's node key and its signature over the challenge.
    HelloOk(HelloOk),
    /// Client → server: send one object (a tag or a commit), by id.
    WantObject(WantObject),
    /// Server → client: the raw object asked for.
    Object(Object),
    /// Client → server: send the ref manifest whose SHA-256 is given.
    WantManifest(WantManifest),
    /// Server → client: the manifest bytes.
    Manifest(Manifest),
    /// Client → server: send a pack of everything reachable from `wants` and not from `haves`.
    WantPack(WantPack),
    /// Server → client: a pack follows, with its size and object count.
    PackStart(PackStart),
    /// Server → client: the next slice of pack bytes.
    PackChunk(PackChunk),
    /// Server → client: the pack is complete.
    PackEnd(PackEnd),
    /// Either way: the request failed; the connection may continue.
    Error(ErrorMsg),
}

/// The opening message of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks ([`PROTOCOL_VERSION`]).
    pub version: u32,
    /// The publisher's ed25519 public key (32 bytes).
    pub publisher: ByteBuf,
    /// The repository name, as published.
    pub repo: String,
    /// 32 random bytes the server must sign.
    pub challenge: ByteBuf,
}

/// The server's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloOk {
    /// The protocol version the server speaks.
    pub version: u32,
    /// The serving node's ed25519 public key (32 bytes).
    pub node_key: ByteBuf,
    /// Ed25519 signature (64 bytes) over [`hello_signed_bytes`].
    pub signature: ByteBuf,
}

/// Ask for one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantObject {
    /// The object id (20 bytes, SHA-1).
    pub oid: ByteBuf,
}

/// One raw object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// `tag` or `commit`.
    pub kind: String,
    /// The object's bytes without the git header; the receiver recomputes the id.
    pub data: ByteBuf,
}

/// Ask for the ref manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantManifest {
    /// SHA-256 of the manifest, as published in the DHT item (32 bytes).
    pub hash: ByteBuf,
}

/// The ref manifest bytes (an `announce::RefMap` encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest, verified by the receiver against the hash it asked for.
    pub data: ByteBuf,
}

/// Ask for a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantPack {
    /// Object ids (20 bytes each) whose closure is wanted.
    pub wants: Vec<ByteBuf>,
    /// Object ids (20 bytes each) the client already has, with everything they reach.
    pub haves: Vec<ByteBuf>,
}

/// Announces a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackStart {
    /// Total pack size in bytes.
    pub bytes: u64,
    /// Number of objects in the pack.
    pub objects: u32,
}

/// A slice of the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackChunk {
    /// At most [`PACK_CHUNK_BYTES`] bytes.
    pub data: ByteBuf,
}

/// The pack is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEnd {}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    /// Why, for logs; never interpreted.
    pub message: String,
}

/// Why a frame could not be read, written or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The peer announced a frame larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The stream ended inside a frame (or before its header).
    #[error("connection closed inside a frame ({got} of {expected} bytes read)")]
    Truncated {
        /// Bytes of the header or payload that arrived.
        got: usize,
        /// Bytes that were expected.
        expected: usize,
    },
    /// The payload is not well-formed bencode.
    #[error("malformed bencode at byte {offset}: {reason}")]
    Bencode {
        /// Byte offset in the frame payload.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The payload is bencode but not a known message, or a field has the wrong type.
    #[error("not a valid message: {0}")]
    Message(String),
    /// A field has a value outside its allowed range (e.g. an oid that is not 20 bytes).
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error on the connection: {0}")]
    Io(#[from] std::io::Error),
    /// A read or write did not finish within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// The bytes a server signs in [`HelloOk`]: a fixed context string, then the client's challenge,
/// the publisher key, the repository name and the server's own key, each length-prefixed so no
/// two different tuples give the same bytes.
pub fn hello_signed_bytes(
    challenge: &[u8],
    publisher: &[u8],
    repo: &str,
    node_key: &[u8],
) -> Vec<u8> {
    let mut out = b"gt-node/v1 hello\0".to_vec();
    for part in [challenge, publisher, repo.as_bytes(), node_key] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Check that `data` is exactly one well-formed bencoded value nested at most `max_depth` deep.
///
/// Iterative (no recursion), so hostile input cannot exhaust the stack here either.
pub fn check_bencode(data: &[u8], max_depth: usize) -> Result<(), WireError> {
    // Each open container: true for a dictionary expecting a key next, false otherwise.
    let mut stack: Vec<Container> = Vec::new();
    let mut pos = 0usize;
    let err = |offset, reason| WireError::Bencode { offset, reason };
    loop {
        let Some(&c) = data.get(pos) else {
            return Err(err(pos, "unexpected end of input"));
        };
        match c {
            b'e' => {
                match stack.pop() {
                    Some(Container::List) | Some(Container::DictKey) => {}
                    Some(Container::DictValue) => {
                        return Err(err(pos, "dictionary key without value"));
                    }
                    None => return Err(err(pos, "unexpected end marker")),
                }
                pos += 1;
            }
            // In a dictionary, a key (a byte string) must come before each value.
            _ if matches!(stack.last(), Some(Container::DictKey)) && !c.is_ascii_digit() => {
                return Err(err(pos, "dictionary key is not a byte string"));
            }
            b'i' => {
                let end = find(data, pos + 1, b'e').ok_or(err(pos, "unterminated integer"))?;
                let digits = data.get(pos + 1..end).unwrap_or_default();
                let negative = digits.first() == Some(&b'-');
                let body = digits.strip_prefix(b"-").unwrap_or(digits);
                if body.is_empty()
                    || body.len() > 18
                    || !body.iter().all(u8::is_ascii_digit)
                    || (body.len() > 1 && body.first() == Some(&b'0'))
                    || (negative && body == b"0")
                {
                    return Err(err(pos, "invalid integer"));
                }
                pos = end + 1;
                advance(&mut stack);
            }
            b'0'..=b'9' => {
                let colon = find(data, pos, b':').ok_or(err(pos, "unterminated length"))?;
                let digits = data.get(pos..colon).unwrap_or_default();
                if digits.len() > 10
                    || (digits.len() > 1 && digits.first() == Some(&b'0'))
                    || !digits.iter().all(u8::is_ascii_digit)
                {
                    return Err(err(pos, "invalid string length"));
                }
                let len: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(err(pos, "invalid string length"))?;
                pos = (colon + 1)
                    .checked_add(len)
                    .filter(|&e| e <= data.len())
                    .ok_or(err(pos, "string runs past the end"))?;
                advance(&mut stack);
            }
            b'l' | b'd' => {
                if stack.len() >= max_depth {
                    return Err(err(pos, "nested too deeply"));
                }
                // The child is one value of its parent: flip the parent's key/value state now.
                advance(&mut stack);
                stack.push(if c == b'l' {
                    Container::List
                } else {
                    Container::DictKey
                });
                pos += 1;
                continue;
            }
            _ => return Err(err(pos, "invalid type marker")),
        }
        if stack.is_empty() {
            break;
        }
    }
    if pos != data.len() {
        return Err(err(pos, "trailing bytes after the value"));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Container {
    List,
    DictKey,
    DictValue,
}

/// A complete value was read inside the top container: flip a dictionary between key and value.
fn advance(stack: &mut [Container]) {
    if let Some(top) = stack.last_mut() {
        *top = match *top {
            Container::DictKey => Container::DictValue,
            Container::DictValue => Container::DictKey,
            Container::List => Container::List,
        };
    }
}

fn find(data: &[u8], from: usize, byte: u8) -> Option<usize> {
    data.get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| i + from)
}

/// Decode one frame payload into a message (after [`check_bencode`]).
pub fn decode_message(payload: &[u8]) -> Result<Message, WireError> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME_BYTES,
        });
    }
    check_bencode(payload, MAX_BENCODE_DEPTH)?;
    serde_bencode::from_bytes(payload).map_err(|e| WireError::Message(e.to_string()))
}

/// Encode a message as a complete frame (length header + payload).
pub fn encode_frame(msg: &Message) -> Result<Vec<u8>, WireError> {
    let payload = serde_bencode::to_bytes(msg).map_err(|e| WireError::Message(e.to_string()))?;
    if payload.len() > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME_BYTES,
        });
    }
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Read one frame and decode it, within [`IO_TIMEOUT`]. Returns the message and the number of
/// bytes read from the stream (header included), for per-repository accounting.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Message, usize), WireError> {
    read_message_within(r, IO_TIMEOUT).await
}

/// [`read_message`] with an explicit timeout.
pub async fn read_message_within<R: AsyncRead + Unpin>(
    r: &mut R,
    timeout: Duration,
) -> Result<(Message, usize), WireError> {
    let fut = async {
        let mut header = [0u8; 4];
        read_exact_counted(r, &mut header).await?;
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(WireError::FrameTooLarge {
                len: len as u64,
                max: MAX_FRAME_BYTES,
            });
        }
        let mut payload = vec![0u8; len];
        read_exact_counted(r, &mut payload).await?;
        let msg = decode_message(&payload)?;
        Ok((msg, len + 4))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| WireError::Timeout(timeout))?
}

async fn read_exact_counted<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<(), WireError> {
    let mut got = 0;
    while got < buf.len() {
        let slot = buf.get_mut(got..).unwrap_or_default();
        let n = r.read(slot).await?;
        if n == 0 {
            return Err(WireError::Truncated {
                got,
                expected: buf.len(),
            });
        }
        got += n;
    }
    Ok(())
}

/// Encode and write one message within [`IO_TIMEOUT`]; returns the bytes written.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Message,
) -> Result<usize, WireError> {
    let frame = encode_frame(msg)?;
    let fut = async {
        w.write_all(&frame).await?;
        w.flush().await?;
        Ok::<_, WireError>(frame.len())
    };
    tokio::time::timeout(IO_TIMEOUT, fut)
        .await
        .map_err(|_| WireError::Timeout(IO_TIMEOUT))?
}

/// Parse a 20-byte SHA-1 object id from a message field.
pub fn oid_field(field: &'static str, bytes: &[u8]) -> Result<gix::ObjectId, WireError> {
    if bytes.len() != 20 {
        return Err(WireError::Field {
            field,
            reason: format!("{} bytes, want 20", bytes.len()),
        });
    }
    Ok(gix::ObjectId::from_bytes_or_panic(bytes))
}

/// Parse a 32-byte key or hash from a message field.
pub fn bytes32_field(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], WireError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| WireError::Field {
        field,
        reason: format!("{} bytes, want 32", bytes.len()),
    })
}

/// Fuzzing entry point: treat `data` as a frame (header + payload) and decode it. Must never
/// panic, whatever `data` is.
#[doc(hidden)]
pub fn fuzz_decode_frame(data: &[u8]) {
    let Some((header, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME_BYTES {
        return;
    }
    let payload = payload.get(..len).unwrap_or(payload);
    if let Ok(msg) = decode_message(payload) {
        // A decoded message re-encodes and decodes to itself.
        if let Ok(frame) = encode_frame(&msg) {
            let again = frame.get(4..).map(decode_message);
            assert!(
                matches!(again, Some(Ok(ref m)) if *m == msg),
                "re-encoding changed {msg:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_messages() -> Vec<Message> {
        let oid = ByteBuf::from(vec![7u8; 20]);
        vec![
            Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                publisher: ByteBuf::from(vec![1u8; 32]),
                repo: "demo".into(),
                challenge: ByteBuf::from(vec![2u8; 32]),
            }),
            Message::HelloOk(HelloOk {
                version: 1,
                node_key: ByteBuf::from(vec![3u8; 32]),
                signature: ByteBuf::from(vec![4u8; 64]),
            }),
            Message::WantObject(WantObject { oid: oid.clone() }),
            Message::Object(Object {
                kind: "tag".into(),
                data: ByteBuf::from(b"x".to_vec()),
            }),
            Message::WantManifest(WantManifest {
                hash: ByteBuf::from(vec![5u8; 32]),
            }),
            Message::Manifest(Manifest {
                data: ByteBuf::from(b"d1:v1:1e".to_vec()),
            }),
            Message::WantPack(WantPack {
                wants: vec![oid.clone()],
                haves: vec![oid, ByteBuf::new()],
            }),
            Message::PackStart(PackStart {
                bytes: 12345,
                objects: 9,
            }),
            Message::PackChunk(PackChunk {
                data: ByteBuf::from(vec![0u8; 1000]),
            }),
            Message::PackEnd(PackEnd {}),
            Message::Error(ErrorMsg {
                message: "no".into(),
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in all_messages() {
            let frame = encode_frame(&msg).unwrap();
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - 4);
            assert_eq!(decode_message(&frame[4..]).unwrap(), msg);
            fuzz_decode_frame(&frame);
        }
    }

    #[test]
    fn encoding_is_stable() {
        // The wire format is a contract between versions of gt-node: pin one encoding.
        let frame = encode_frame(&Message::PackStart(PackStart {
            bytes: 7,
            objects: 2,
        }))
        .unwrap();
        assert_eq!(&frame[4..], b"d10:pack_startd5:bytesi7e7:objectsi2eee");
    }

    #[test]
    fn hostile_payloads_are_errors_not_panics() {
        let deep = format!("d5:hello{}", "l".repeat(100_000));
        let cases: Vec<&[u8]> = vec![
            b"",
            b"d",
            b"de",
            b"i1e",
            b"d5:helloi1ee",
            b"d5:hellod7:versioni1eee",
            b"d5:hello",
            b"d99999999999:x",
            b"d5:helloi01ee",
            b"d5:helloi-0ee",
            b"d5:hellode1:x",
            b"l",
            b"e",
            b"x",
            b"d1:a",
            b"di1ei2ee",
            b"d8:pack_endde",
            deep.as_bytes(),
        ];
        for c in cases {
            assert!(
                decode_message(c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
            let mut frame = (c.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(c);
            fuzz_decode_frame(&frame);
        }
        // Well-formed but unknown or mistyped messages are errors too.
        assert!(decode_message(b"d7:unknownde").is_err());
        assert!(decode_message(b"d11:want_objectd3:oidi5eee").is_err());
    }

    #[test]
    fn bencode_checker_limits() {
        assert!(check_bencode(b"d8:pack_endd1:xi1eee", 16).is_ok());
        assert!(
            check_bencode(
                &[b'l'; 16]
                    .iter()
                    .chain([b'e'; 16].iter())
                    .copied()
                    .collect::<Vec<_>>(),
                16
            )
            .is_ok()
        );
        assert!(
            check_bencode(
                &[b'l'; 17]
                    .iter()
                    .chain([b'e'; 17].iter())
                    .copied()
                    .collect::<Vec<_>>(),
                16
            )
            .is_err()
        );
        assert!(check_bencode(b"i1ei2e", 16).is_err());
        assert!(check_bencode(b"d1:ae", 16).is_err());
        assert!(check_bencode(b"4:abc", 16).is_err());
        assert!(check_bencode(b"3:abc", 16).is_ok());
        assert!(check_bencode(b"0:", 16).is_ok());
        assert!(check_bencode(b"i-12e", 16).is_ok());
        assert!(check_bencode(b"ie", 16).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes never panic the decoder (the fuzz target's property, run in CI).
        #[test]
        fn arbitrary_frames_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            fuzz_decode_frame(&data);
            let _ = decode_message(&data);
        }

        /// Valid frames with one byte changed or cut short never panic the decoder.
        #[test]
        fn mutated_frames_never_panic(which in 0usize..11, pos in 0usize..4096, byte in proptest::prelude::any::<u8>(), cut in 0usize..4096) {
            let msgs = all_messages();
            let mut frame = encode_frame(&msgs[which % msgs.len()]).unwrap();
            let i = pos % frame.len();
            frame[i] = byte;
            frame.truncate(cut.max(1).min(frame.len()).max(i));
            fuzz_decode_frame(&frame);
        }
    }

    #[tokio::test]
    async fn frame_size_limit_is_enforced_at_the_boundary() {
        // A frame header announcing MAX_FRAME_BYTES + 1 is refused before reading the payload.
        let mut bytes = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"ignored");
        let err = read_message(&mut bytes.as_slice()).await.unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
        // Exactly MAX_FRAME_BYTES is read (and then fails to decode as a message, not as size).
        let mut bytes = (MAX_FRAME_BYTES as u32).to_be_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_FRAME_BYTES));
        let err = read_message(&mut bytes.as_slice()).await.unwrap_err();
        assert!(matches!(err, WireError::Bencode { .. }), "{err}");
        // A chunk of PACK_CHUNK_BYTES fits in a frame.
        let chunk = Message::PackChunk(PackChunk {
            data: ByteBuf::from(vec![9u8; PACK_CHUNK_BYTES]),
        });
        assert!(encode_frame(&chunk).is_ok());
        let big = Message::PackChunk(PackChunk {
            data: ByteBuf::from(vec![9u8; MAX_FRAME_BYTES]),
        });
        assert!(matches!(
            encode_frame(&big),
            Err(WireError::FrameTooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_frames_are_reported() {
        let frame = encode_frame(&Message::PackEnd(PackEnd {})).unwrap();
        for cut in 0..frame.len() {
            let err = read_message(&mut &frame[..cut]).await.unwrap_err();
            assert!(
                matches!(err, WireError::Truncated { .. }),
                "cut {cut}: {err}"
            );
        }
        let (msg, n) = read_message(&mut frame.as_slice()).await.unwrap();
        assert_eq!(msg, Message::PackEnd(PackEnd {}));
        assert_eq!(n, frame.len());
    }
}
