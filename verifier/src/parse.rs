//! The canonical parse of a signed git tag object: header, signed content, signature blocks.
//!
//! # The rule
//!
//! A tag object's **signed content** is the bytes before its *first* line that starts with
//! `-----BEGIN PGP SIGNATURE-----` (git and gix split at the *last* such line; with one block the
//! two agree, with several they do not, which is how git, gpg and sq-git come to name different
//! signers for one tag). Everything from that line on must be one or more complete ASCII-armored
//! signature blocks (RFC 4880 §6.2), back to back, each holding one or more signature packets and
//! nothing else. Block *i* (counting from 1) signs the object's bytes up to the start of block
//! *i*, that is:
//!
//! - **one block with N signature packets**: every packet signs the content (the recommended
//!   layout: co-signers sign independently, in any order);
//! - **onion**: block *i* signs the content plus blocks 1..i-1, byte for byte (what plain
//!   `git verify-tag` checks for the last block).
//!
//! Anything else after the first marker (text between or after blocks, an unterminated or
//! undecodable block, a packet that is not a signature, an SSH or X.509 signature) is malformed
//! and rejected with a [`ParseError`] that names the block and byte offset. Tag chains (a signed
//! tag whose target is a tag) are not a property of one object: [`crate::Verifier`] follows them
//! and verifies each level on its own.

use std::io::Read;

use gix::ObjectId;
use sequoia_openpgp as openpgp;

use openpgp::Packet;
use openpgp::armor;
use openpgp::packet::Signature;
use openpgp::parse::{Dearmor, PacketParserBuilder, PacketParserResult, Parse};

use crate::limits::{MAX_SIGNATURE_BLOCKS, MAX_SIGNATURES_PER_TAG, MAX_TAG_OBJECT_BYTES};

/// The armor header line of an OpenPGP signature block.
pub const PGP_BEGIN: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
/// The armor footer line of an OpenPGP signature block.
pub const PGP_END: &[u8] = b"-----END PGP SIGNATURE-----";

/// The signature markers git knows (gpg-interface.c): any of them starts the signature part.
const MARKERS: &[(&[u8], &str)] = &[
    (PGP_BEGIN, "OpenPGP"),
    (
        b"-----BEGIN PGP MESSAGE-----",
        "OpenPGP message (not a detached signature)",
    ),
    (b"-----BEGIN SSH SIGNATURE-----", "SSH"),
    (b"-----BEGIN SIGNED MESSAGE-----", "X.509"),
];

/// Why a tag object was refused by the canonical parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The object is larger than [`MAX_TAG_OBJECT_BYTES`].
    #[error("tag object is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The object's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The header (before the signature) is not a valid git tag header.
    #[error("tag header is invalid: {reason}")]
    Header {
        /// gix's description of the problem.
        reason: String,
    },
    /// The first signature marker is not an OpenPGP signature (SSH, X.509, PGP MESSAGE).
    #[error(
        "unsupported {format} signature at byte {offset}; only OpenPGP signatures are accepted"
    )]
    UnsupportedFormat {
        /// The kind of signature found.
        format: &'static str,
        /// Byte offset of its marker line.
        offset: usize,
    },
    /// Bytes after the first marker that are not the start of another signature block.
    #[error(
        "unexpected text at byte {offset} after signature block {after_block}: only armored \
         signature blocks may follow the first signature marker"
    )]
    TrailingText {
        /// Byte offset of the text.
        offset: usize,
        /// How many blocks precede it (1-based number of the last good block).
        after_block: usize,
    },
    /// A block without its `-----END PGP SIGNATURE-----` line.
    #[error("signature block {block} starting at byte {offset} has no END line")]
    Unterminated {
        /// 1-based block number.
        block: usize,
        /// Byte offset of its BEGIN line.
        offset: usize,
    },
    /// A block whose armor does not decode (bad base64, bad checksum, bad armor headers).
    #[error("signature block {block} at byte {offset} is not valid ASCII armor: {reason}")]
    Armor {
        /// 1-based block number.
        block: usize,
        /// Byte offset of its BEGIN line.
        offset: usize,
        /// The decoder's message.
        reason: String,
    },
    /// A block whose packets do not parse as a packet sequence.
    #[error("signature block {block} at byte {offset}: packet {packet} does not parse: {reason}")]
    Packet {
        /// 1-based block number.
        block: usize,
        /// Byte offset of the block's BEGIN line.
        offset: usize,
        /// 1-based packet number within the block.
        packet: usize,
        /// The parser's message.
        reason: String,
    },
    /// A packet that is not a signature packet.
    #[error(
        "signature block {block} at byte {offset}: packet {packet} is a {tag} packet, not a \
         signature"
    )]
    NotASignature {
        /// 1-based block number.
        block: usize,
        /// Byte offset of the block's BEGIN line.
        offset: usize,
        /// 1-based packet number within the block.
        packet: usize,
        /// The packet's type.
        tag: String,
    },
    /// A block that decodes to no packets at all.
    #[error("signature block {block} at byte {offset} holds no signature packet")]
    EmptyBlock {
        /// 1-based block number.
        block: usize,
        /// Byte offset of its BEGIN line.
        offset: usize,
    },
    /// More armored blocks than [`MAX_SIGNATURE_BLOCKS`].
    #[error("more than {limit} signature blocks (block {block} at byte {offset})")]
    TooManyBlocks {
        /// 1-based number of the first block over the limit.
        block: usize,
        /// Its byte offset.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// More signature packets than [`MAX_SIGNATURES_PER_TAG`].
    #[error("more than {limit} signature packets (in block {block} at byte {offset})")]
    TooManySignatures {
        /// 1-based number of the block where the limit was crossed.
        block: usize,
        /// Its byte offset.
        offset: usize,
        /// The limit.
        limit: usize,
    },
}

/// The parsed header of a tag object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHeader {
    /// The `object` header: what the tag points at.
    pub target: ObjectId,
    /// The `type` header: the kind of the target.
    pub target_kind: gix::objs::Kind,
    /// The `tag` header: the tag's name (lossily decoded as UTF-8).
    pub name: String,
    /// The `tagger` header, if any (very old tags have none).
    pub tagger: Option<Tagger>,
}

/// The `tagger` line of a tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tagger {
    /// Name, trimmed, lossily decoded.
    pub name: String,
    /// E-mail address without the angle brackets, lossily decoded.
    pub email: String,
    /// Seconds since the Unix epoch, as written (0 if the time does not parse).
    pub time: i64,
}

/// One signature packet found in a tag's signature blocks.
#[derive(Debug, Clone)]
pub struct SignaturePacket {
    /// 0-based index of the block holding it.
    pub block: usize,
    /// 0-based index of the packet within its block.
    pub index: usize,
    /// The parsed signature, or why sequoia could not parse it (an unsupported version or
    /// algorithm, bad MPIs); such a packet is reported as malformed.
    pub signature: Result<Signature, String>,
}

/// One armored signature block: its place in the object and its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Byte offset of its BEGIN line.
    pub start: usize,
    /// Byte offset just after its END line (and that line's newline).
    pub end: usize,
}

/// A tag object after the canonical parse. Construct it with [`TagObject::parse`].
#[derive(Debug, Clone)]
pub struct TagObject {
    bytes: Vec<u8>,
    oid: ObjectId,
    content_len: usize,
    header: TagHeader,
    blocks: Vec<Block>,
    packets: Vec<SignaturePacket>,
}

impl TagObject {
    /// Parse a raw tag object (the bytes git hashes, as `git cat-file tag` prints them).
    ///
    /// An object without any signature marker parses as an unsigned tag (no blocks).
    pub fn parse(bytes: &[u8]) -> Result<TagObject, ParseError> {
        if bytes.len() > MAX_TAG_OBJECT_BYTES {
            return Err(ParseError::TooLarge {
                size: bytes.len(),
                limit: MAX_TAG_OBJECT_BYTES,
            });
        }
        let first = first_marker(bytes);
        let content_len = first.map_or(bytes.len(), |(offset, _)| offset);
        let content = bytes.get(..content_len).unwrap_or_default();
        let header = parse_header(content)?;
        let mut blocks = Vec::new();
        let mut packets = Vec::new();
        if let Some((offset, format)) = first {
            if format != "OpenPGP" {
                return Err(ParseError::UnsupportedFormat { format, offset });
            }
            blocks = split_blocks(bytes, offset)?;
            for (b, block) in blocks.iter().enumerate() {
                let armored = bytes.get(block.start..block.end).unwrap_or_default();
                read_packets(armored, b, block.start, &mut packets)?;
            }
        }
        let oid = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tag, bytes)
            .map_err(|e| ParseError::Header {
                reason: format!("cannot hash the object: {e}"),
            })?;
        Ok(TagObject {
            bytes: bytes.to_vec(),
            oid,
            content_len,
            header,
            blocks,
            packets,
        })
    }

    /// The object id (SHA-1 of the object, as git computes it).
    pub fn oid(&self) -> ObjectId {
        self.oid
    }

    /// The whole object.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signed content: the bytes before the first signature marker.
    pub fn content(&self) -> &[u8] {
        self.bytes.get(..self.content_len).unwrap_or_default()
    }

    /// The header fields.
    pub fn header(&self) -> &TagHeader {
        &self.header
    }

    /// The armored signature blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Every signature packet, in order of appearance.
    pub fn packets(&self) -> &[SignaturePacket] {
        &self.packets
    }

    /// The bytes that the packets of block `block` (0-based) sign: the object up to the start of
    /// that block. For the first block that is the content; in the onion layout, later blocks
    /// also cover the blocks before them.
    pub fn signed_bytes(&self, block: usize) -> Option<&[u8]> {
        let b = self.blocks.get(block)?;
        self.bytes.get(..b.start)
    }

    /// The object's bytes from the first signature marker on (empty for an unsigned tag).
    pub fn signature_part(&self) -> &[u8] {
        self.bytes.get(self.content_len..).unwrap_or_default()
    }
}

/// Find the first line starting with any git signature marker; returns its offset and format.
fn first_marker(bytes: &[u8]) -> Option<(usize, &'static str)> {
    let mut line_start = 0;
    while line_start < bytes.len() {
        let rest = bytes.get(line_start..)?;
        for (marker, format) in MARKERS {
            if rest.starts_with(marker) {
                return Some((line_start, format));
            }
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => line_start += nl + 1,
            None => break,
        }
    }
    None
}

/// The line starting at `pos`, without its newline, and the offset of the next line.
fn line_at(bytes: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = bytes.get(pos..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => (rest.get(..nl).unwrap_or_default(), pos + nl + 1),
        None => (rest, bytes.len()),
    }
}

/// Split `bytes[first..]` into armored blocks that follow each other with nothing in between.
fn split_blocks(bytes: &[u8], first: usize) -> Result<Vec<Block>, ParseError> {
    let mut blocks = Vec::new();
    let mut pos = first;
    while pos < bytes.len() {
        let (line, mut next) = line_at(bytes, pos);
        if line != PGP_BEGIN {
            return Err(ParseError::TrailingText {
                offset: pos,
                after_block: blocks.len(),
            });
        }
        if blocks.len() == MAX_SIGNATURE_BLOCKS {
            return Err(ParseError::TooManyBlocks {
                block: blocks.len() + 1,
                offset: pos,
                limit: MAX_SIGNATURE_BLOCKS,
            });
        }
        let end = loop {
            if next >= bytes.len() {
                return Err(ParseError::Unterminated {
                    block: blocks.len() + 1,
                    offset: pos,
                });
            }
            let (l, after) = line_at(bytes, next);
            if l == PGP_END {
                break after;
            }
            if l.starts_with(b"-----BEGIN ") {
                // A new block before this one ended: this one is unterminated.
                return Err(ParseError::Unterminated {
                    block: blocks.len() + 1,
                    offset: pos,
                });
            }
            next = after;
        };
        blocks.push(Block { start: pos, end });
        pos = end;
    }
    Ok(blocks)
}

/// Dearmor one block and collect its signature packets.
fn read_packets(
    armored: &[u8],
    block: usize,
    offset: usize,
    out: &mut Vec<SignaturePacket>,
) -> Result<(), ParseError> {
    let mut reader = armor::Reader::from_bytes(
        armored,
        armor::ReaderMode::Tolerant(Some(armor::Kind::Signature)),
    );
    // The armored text is at most MAX_TAG_OBJECT_BYTES, and base64 only shrinks it, so one
    // buffer the size of the armored text holds the packets. Reading into it directly, rather
    // than with `read_to_end`'s growing reads, matters for speed: the armor reader allocates a
    // fresh zeroed buffer of at least 32 KiB per read call, and `read_to_end` makes several calls
    // per block (this was the largest cost after the public-key operations when verifying many
    // tags).
    let mut binary = vec![0u8; armored.len().saturating_add(16)];
    let mut filled = 0;
    loop {
        if filled == binary.len() {
            // Unreachable with base64 (it shrinks), but never assume it of a decoder.
            binary.resize(binary.len().saturating_mul(2), 0);
        }
        let spare = binary.get_mut(filled..).unwrap_or_default();
        match reader.read(spare) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ParseError::Armor {
                    block: block + 1,
                    offset,
                    reason: e.to_string(),
                });
            }
        }
    }
    binary.truncate(filled);
    let packet_err = |packet: usize, reason: String| ParseError::Packet {
        block: block + 1,
        offset,
        packet,
        reason,
    };
    let mut ppr = PacketParserBuilder::from_bytes(&binary)
        .and_then(|b| b.dearmor(Dearmor::Disabled).build())
        .map_err(|e| packet_err(1, format!("{e:#}")))?;
    let mut index = 0;
    while let PacketParserResult::Some(pp) = ppr {
        if out.len() == MAX_SIGNATURES_PER_TAG {
            return Err(ParseError::TooManySignatures {
                block: block + 1,
                offset,
                limit: MAX_SIGNATURES_PER_TAG,
            });
        }
        let signature = match &pp.packet {
            Packet::Signature(sig) => Ok(sig.clone()),
            Packet::Unknown(u) if u.tag() == openpgp::packet::Tag::Signature => {
                Err(format!("{:#}", u.error()))
            }
            other => {
                return Err(ParseError::NotASignature {
                    block: block + 1,
                    offset,
                    packet: index + 1,
                    tag: other.tag().to_string(),
                });
            }
        };
        out.push(SignaturePacket {
            block,
            index,
            signature,
        });
        index += 1;
        // `next`, not `recurse`: never descend into (or decompress) a container packet.
        ppr = pp
            .next()
            .map_err(|e| packet_err(index + 1, format!("{e:#}")))?
            .1;
    }
    if index == 0 {
        return Err(ParseError::EmptyBlock {
            block: block + 1,
            offset,
        });
    }
    Ok(())
}

/// Parse the header of the signed content with gix.
fn parse_header(content: &[u8]) -> Result<TagHeader, ParseError> {
    let tag = gix::objs::TagRef::from_bytes(content, gix::hash::Kind::Sha1).map_err(|e| {
        ParseError::Header {
            reason: e.to_string(),
        }
    })?;
    let target = ObjectId::from_hex(tag.target).map_err(|e| ParseError::Header {
        reason: format!("object header: {e}"),
    })?;
    let tagger = tag
        .tagger()
        .map_err(|e| ParseError::Header {
            reason: format!("tagger header: {e}"),
        })?
        .map(|s| {
            let s = s.trim();
            Tagger {
                name: s.name.to_string(),
                email: s.email.to_string(),
                time: s.seconds(),
            }
        });
    Ok(TagHeader {
        target,
        target_kind: tag.target_kind,
        name: tag.name.to_string(),
        tagger,
    })
}

/// Parse `data` as a tag object and check the parse's invariants; never panics on any input
/// unless an invariant is broken. The fuzz target and a unit test call it.
#[doc(hidden)]
pub fn fuzz_parse_tag(data: &[u8]) {
    let Ok(tag) = TagObject::parse(data) else {
        return;
    };
    assert!(tag.content().len() + tag.signature_part().len() == data.len());
    let mut expected_start = tag.content().len();
    for (i, b) in tag.blocks().iter().enumerate() {
        assert_eq!(b.start, expected_start, "blocks are contiguous");
        assert!(b.end > b.start);
        assert_eq!(tag.signed_bytes(i).map(<[u8]>::len), Some(b.start));
        expected_start = b.end;
    }
    if !tag.blocks().is_empty() {
        assert_eq!(expected_start, data.len(), "blocks run to the end");
        assert!(!tag.packets().is_empty());
    }
    assert!(tag.packets().len() <= MAX_SIGNATURES_PER_TAG);
    assert!(
        !tag.content()
            .windows(PGP_BEGIN.len())
            .any(|w| w == PGP_BEGIN)
            || tag
                .content()
                .split(|&b| b == b'\n')
                .all(|l| !l.starts_with(PGP_BEGIN))
    );
}
