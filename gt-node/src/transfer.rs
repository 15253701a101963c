//! Moving objects between nodes over TCP with the staged protocol of [`crate::wire`]: a server
//! that serves the repositories a node shares or propagates, and a client that fetches one ref
//! update at a time, tag first, pack only if the [`Gate`] accepts.
//!
//! Server: one tokio task per connection, at most [`MAX_CONNECTIONS`] at once (a semaphore);
//! gix work runs in `spawn_blocking`; every frame read or write is bounded by the wire timeouts;
//! at most [`MAX_REQUESTS_PER_CONNECTION`] requests per connection.
//!
//! Client ([`fetch_ref`]):
//! 1. HELLO: the server signs our random challenge (with publisher, repo and its key) using its
//!    ed25519 node key; we verify it, and optionally require that key to be a given one;
//! 2. WANT_OBJECT for the announced id; we recompute the id from `"<type> <len>\0" + bytes`;
//!    for a tag we parse it and walk tag-of-tag chains (at most [`MAX_TAG_CHAIN`] levels);
//! 3. for a tag, the gate decides; on reject we stop (the cost is the objects of step 2);
//! 4. WANT_PACK with our ref tips as haves; the declared size is checked against our limits
//!    before any pack byte is read; the pack goes to a temporary file, then through the
//!    store's quarantine, connectivity check and compare-and-swap ref update. A branch update
//!    (a commit, no signature) is decided here instead, by [`Gate::decide_received`] with the
//!    quarantined objects readable (its `fast_forward` needs the history); on reject the
//!    quarantine is dropped and no ref moves.
//!
//! Traffic is counted per repository and per peer in a [`TrafficLog`], apart for the two roles
//! (fetching, serving), so a follower's own requests never count as bytes it served.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use gix::ObjectId;
use gix::objs::Kind;
use serde_bytes::ByteBuf;
use sha1::Digest as _;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::gate::{Gate, GateDecision, RefUpdateCtx, Verdict};
use crate::store::{PackLimits, Repo, StoreError};
use crate::wire::{
    self, ErrorMsg, HANDSHAKE_TIMEOUT, Hello, HelloOk, MAX_CONNECTIONS, MAX_HAVES,
    MAX_OBJECT_BYTES, MAX_REQUESTS_PER_CONNECTION, MAX_TAG_CHAIN, MAX_WANTS, Message,
    PACK_CHUNK_BYTES, PROTOCOL_VERSION, WireError,
};

/// Pause after a failed `accept` (e.g. no file descriptors left) before trying again.
pub const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Transfer failures (client and server side).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Framing, decoding, timeouts, socket errors.
    #[error("{peer}: {source}")]
    Wire {
        /// The peer.
        peer: SocketAddr,
        /// Cause.
        source: WireError,
    },
    /// Connecting failed or timed out.
    #[error("could not connect to {peer}: {reason}")]
    Connect {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server's HELLO answer is invalid (bad signature, unexpected key, version).
    #[error("{peer}: handshake failed: {reason}")]
    Handshake {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The peer sent a message that does not fit the protocol state.
    #[error("{peer}: protocol violation: expected {expected}, got {got}")]
    Unexpected {
        /// The peer.
        peer: SocketAddr,
        /// What we were waiting for.
        expected: &'static str,
        /// What arrived (message name).
        got: String,
    },
    /// The peer answered with an ERROR message.
    #[error("{peer} refused: {message}")]
    Refused {
        /// The peer.
        peer: SocketAddr,
        /// Its message.
        message: String,
    },
    /// An object's bytes do not hash to the id asked for.
    #[error("{peer} sent a wrong object: asked for {asked}, bytes hash to {actual}")]
    ObjectMismatch {
        /// The peer.
        peer: SocketAddr,
        /// The id requested.
        asked: ObjectId,
        /// The id of what arrived.
        actual: ObjectId,
    },
    /// An object is not a tag or commit, does not parse, or the chain is too long.
    #[error("{peer}: bad object {oid}: {reason}")]
    BadObject {
        /// The peer.
        peer: SocketAddr,
        /// The object.
        oid: ObjectId,
        /// Why.
        reason: String,
    },
    /// The announced or received pack exceeds our limits, or differs from its announced size.
    #[error("{peer}: pack refused: {reason}")]
    PackSize {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The repository store failed (bad pack, not connected, ref conflict, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Local I/O (temporary files).
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task panicked.
    #[error("background task failed: {0}")]
    Join(String),
}

/// Bytes moved for one repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes received (frames, headers included).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

impl Traffic {
    /// The bytes moved since `earlier` was taken from the same counter.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
        }
    }
}

/// Most transfer peers remembered by a [`TrafficLog`] (entries of (repository, role, address));
/// beyond it the entry seen longest ago is dropped, so a node contacted by many peers keeps a
/// bounded table.
pub const MAX_PEERS_TRACKED: usize = 256;

/// Which side of a transfer connection this node was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// This node asked: a follower fetching from a serving node (`bytes_out` are its requests).
    Fetch,
    /// This node answered: serving a shared or propagated repository (`bytes_out` is data).
    Serve,
}

impl Role {
    /// `fetch` or `serve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Fetch => "fetch",
            Role::Serve => "serve",
        }
    }
}

/// Bytes moved for one repository, split by role: what this node fetched (answers in, requests
/// out) and what it served (requests in, data out), so "bytes out" of a follower that serves
/// nothing is zero however much it asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoTraffic {
    /// Connections where this node asked.
    pub fetched: Traffic,
    /// Connections where this node answered.
    pub served: Traffic,
}

/// One transfer peer this node talked to about one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTraffic {
    /// `<publisher hex>/<name>`.
    pub repo: String,
    /// Which side this node was on.
    pub role: Role,
    /// The peer: `ip:port` of the serving node for [`Role::Fetch`]; only the IP for
    /// [`Role::Serve`], because inbound connections come from ephemeral ports and carry no
    /// identity (HELLO authenticates the server, not the client).
    pub address: String,
    /// The peer's node key when it proved one (servers do, in HELLO).
    pub node_key: Option<[u8; 32]>,
    /// Bytes moved with this peer for this repository.
    pub traffic: Traffic,
    /// Connections counted.
    pub connections: u64,
    /// When bytes were last counted, unix seconds (bookkeeping for display; never a decision
    /// input).
    pub last_seen: i64,
}

/// Per-repository and per-peer traffic counters, shared by a node's server and client.
#[derive(Debug)]
pub struct TrafficLog {
    map: Mutex<HashMap<String, RepoTraffic>>,
    peers: Mutex<HashMap<(String, Role, String), PeerTraffic>>,
    clock: fn() -> i64,
}

impl Default for TrafficLog {
    fn default() -> Self {
        TrafficLog::with_clock(wall_clock)
    }
}

/// The wall clock in unix seconds; only for [`PeerTraffic::last_seen`].
fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl TrafficLog {
    /// A log stamping `last_seen` with `clock` (unix seconds); [`Default`] uses the wall clock.
    pub fn with_clock(clock: fn() -> i64) -> Self {
        TrafficLog {
            map: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Count `t` for `repo_id` (`<publisher hex>/<name>`) in `role` with `peer`. `new_connection`
    /// counts one more connection with that peer; `node_key` is the key the peer proved, if any.
    pub fn record(
        &self,
        repo_id: &str,
        role: Role,
        peer: SocketAddr,
        node_key: Option<[u8; 32]>,
        t: Traffic,
        new_connection: bool,
    ) {
        if let Ok(mut m) = self.map.lock() {
            let e = m.entry(repo_id.to_owned()).or_default();
            let side = match role {
                Role::Fetch => &mut e.fetched,
                Role::Serve => &mut e.served,
            };
            side.bytes_in += t.bytes_in;
            side.bytes_out += t.bytes_out;
        }
        let address = match role {
            Role::Fetch => peer.to_string(),
            Role::Serve => peer.ip().to_string(),
        };
        let now = (self.clock)();
        let Ok(mut peers) = self.peers.lock() else {
            return;
        };
        let key = (repo_id.to_owned(), role, address);
        if !peers.contains_key(&key) && peers.len() >= MAX_PEERS_TRACKED {
            let oldest = peers
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                peers.remove(&k);
            }
        }
        let e = peers.entry(key.clone()).or_insert_with(|| PeerTraffic {
            repo: key.0.clone(),
            role,
            address: key.2.clone(),
            node_key: None,
            traffic: Traffic::default(),
            connections: 0,
            last_seen: now,
        });
        e.traffic.bytes_in += t.bytes_in;
        e.traffic.bytes_out += t.bytes_out;
        e.connections += u64::from(new_connection);
        e.last_seen = now;
        if node_key.is_some() {
            e.node_key = node_key;
        }
    }

    /// The counters of one repository.
    pub fn get(&self, repo_id: &str) -> RepoTraffic {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(repo_id).copied())
            .unwrap_or_default()
    }

    /// All per-repository counters.
    pub fn snapshot(&self) -> HashMap<String, RepoTraffic> {
        self.map.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Every peer remembered, ordered by repository, role and address.
    pub fn peers(&self) -> Vec<PeerTraffic> {
        let mut v: Vec<PeerTraffic> = self
            .peers
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| (&a.repo, a.role, &a.address).cmp(&(&b.repo, b.role, &b.address)));
        v
    }
}

/// The identifier used for per-repository bookkeeping: `<publisher hex>/<name>`.
pub fn repo_id(publisher: &[u8; 32], repo: &str) -> String {
    format!("{}/{}", hex::encode(publisher), repo)
}

/// Git object id of raw object bytes: SHA-1 of `"<type> <len>\0" + data`.
pub fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut h = sha1::Sha1::new();
    h.update(kind.as_bytes());
    h.update(b" ");
    h.update(data.len().to_string().as_bytes());
    h.update(b"\0");
    h.update(data);
    ObjectId::from_bytes_or_panic(&h.finalize())
}

/// A repository this node serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Where it is.
    pub repo: Repo,
    /// The current ref manifest, when the published item refers to one.
    pub manifest: Option<Vec<u8>>,
    /// When set, the only objects that may be asked for by WANT_OBJECT or as WANT_PACK wants
    /// (a follower serves only the refs it propagates); `None` serves every ref (own shares).
    pub allow: Option<Arc<std::collections::HashSet<ObjectId>>>,
}

impl Served {
    fn allows(&self, oid: &ObjectId) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(oid))
    }
}

/// Serves repositories to other nodes.
#[derive(Debug)]
pub struct Server {
    node_key: SigningKey,
    catalog: RwLock<HashMap<([u8; 32], String), Served>>,
    limits: PackLimits,
    /// Traffic per repository.
    pub traffic: Arc<TrafficLog>,
}

impl Server {
    /// A server signing HELLOs with `node_key`, refusing to send packs beyond `limits`.
    pub fn new(node_key: SigningKey, limits: PackLimits, traffic: Arc<TrafficLog>) -> Arc<Self> {
        Arc::new(Server {
            node_key,
            catalog: RwLock::new(HashMap::new()),
            limits,
            traffic,
        })
    }

    /// Serve `repo` as `name` of `publisher` (replacing any earlier entry).
    pub fn serve(&self, publisher: [u8; 32], name: &str, served: Served) {
        if let Ok(mut c) = self.catalog.write() {
            c.insert((publisher, name.to_owned()), served);
        }
    }

    /// Stop serving `name` of `publisher`.
    pub fn unserve(&self, publisher: &[u8; 32], name: &str) {
        if let Ok(mut c) = self.catalog.write() {
            c.remove(&(*publisher, name.to_owned()));
        }
    }

    fn lookup(&self, publisher: &[u8; 32], name: &str) -> Option<Served> {
        self.catalog
            .read()
            .ok()?
            .get(&(*publisher, name.to_owned()))
            .cloned()
    }

    /// Accept connections on `listener` until the task is aborted.
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            // Take a slot before accepting, so excess peers wait in the kernel's queue.
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let this = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = this.handle(stream, peer).await {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    }

    async fn handle(&self, mut stream: TcpStream, peer: SocketAddr) -> Result<(), TransferError> {
        let wire_err = |source| TransferError::Wire { peer, source };
        let (first, n) = wire::read_message_within(&mut stream, HANDSHAKE_TIMEOUT)
            .await
            .map_err(wire_err)?;
        let mut t = Traffic {
            bytes_in: n as u64,
            bytes_out: 0,
        };
        let Message::Hello(hello) = first else {
            return Err(TransferError::Unexpected {
                peer,
                expected: "hello",
                got: name(&first),
            });
        };
        let publisher = wire::bytes32_field("publisher", &hello.publisher).map_err(wire_err)?;
        let id = repo_id(&publisher, &hello.repo);
        let served = match (
            hello.version == PROTOCOL_VERSION,
            self.lookup(&publisher, &hello.repo),
        ) {
            _ if hello.challenge.len() != wire::CHALLENGE_BYTES => {
                Err(format!("challenge must be {} bytes", wire::CHALLENGE_BYTES))
            }
            (false, _) => Err(format!("protocol version {} not supported", hello.version)),
            (true, None) => Err(format!("repository {id} is not served here")),
            (true, Some(s)) => Ok(s),
        };
        let served = match served {
            Ok(s) => s,
            Err(message) => {
                let _ =
                    wire::write_message(&mut stream, &Message::Error(ErrorMsg { message })).await;
                return Ok(());
            }
        };
        let node_key = self.node_key.verifying_key().to_bytes();
        let signed = wire::hello_signed_bytes(&hello.challenge, &publisher, &hello.repo, &node_key);
        let ok = Message::HelloOk(HelloOk {
            version: PROTOCOL_VERSION,
            node_key: ByteBuf::from(node_key.to_vec()),
            signature: ByteBuf::from(self.node_key.sign(&signed).to_bytes().to_vec()),
        });
        t.bytes_out += wire::write_message(&mut stream, &ok)
            .await
            .map_err(wire_err)? as u64;

        let result = self
            .serve_requests(&mut stream, peer, &served, &mut t)
            .await;
        self.traffic.record(&id, Role::Serve, peer, None, t, true);
        result
    }

    async fn serve_requests(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        served: &Served,
        t: &mut Traffic,
    ) -> Result<(), TransferError> {
        let wire_err = |source| TransferError::Wire { peer, source };
        for _ in 0..MAX_REQUESTS_PER_CONNECTION {
            let (msg, n) = match wire::read_message(stream).await {
                Ok(x) => x,
                // The client closing between requests is the normal end.
                Err(WireError::Truncated { got: 0, .. }) => return Ok(()),
                Err(e) => return Err(wire_err(e)),
            };
            t.bytes_in += n as u64;
            match msg {
                Message::WantObject(w) => {
                    let reply = match wire::oid_field("oid", &w.oid) {
                        Err(e) => error_msg(e.to_string()),
                        Ok(oid) if !served.allows(&oid) => {
                            error_msg(format!("{oid} is not served here"))
                        }
                        Ok(oid) => object_reply(&served.repo, oid).await,
                    };
                    t.bytes_out += wire::write_message(stream, &reply)
                        .await
                        .map_err(wire_err)? as u64;
                }
                Message::WantManifest(w) => {
                    let reply = match &served.manifest {
                        Some(m)
                            if crate::announce::manifest_hash(m).as_slice()
                                == w.hash.as_slice() =>
                        {
                            Message::Manifest(wire::Manifest {
                                data: ByteBuf::from(m.clone()),
                            })
                        }
                        _ => error_msg("no manifest with that hash here".into()),
                    };
                    t.bytes_out += wire::write_message(stream, &reply)
                        .await
                        .map_err(wire_err)? as u64;
                }
                Message::WantPack(w) => {
                    t.bytes_out += self.send_pack(stream, peer, served, w).await?;
                }
                other => {
                    let reply = error_msg(format!("unexpected {}", name(&other)));
                    let _ = wire::write_message(stream, &reply).await;
                    return Err(TransferError::Unexpected {
                        peer,
                        expected: "a request",
                        got: name(&other),
                    });
                }
            }
        }
        Ok(())
    }

    async fn send_pack(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        served: &Served,
        w: wire::WantPack,
    ) -> Result<u64, TransferError> {
        let wire_err = |source| TransferError::Wire { peer, source };
        let parse = |list: &[ByteBuf], max: usize, field| -> Result<Vec<ObjectId>, String> {
            if list.len() > max {
                return Err(format!("{field}: {} entries, at most {max}", list.len()));
            }
            list.iter()
                .map(|b| wire::oid_field(field, b).map_err(|e| e.to_string()))
                .collect()
        };
        let ids = parse(&w.wants, MAX_WANTS, "wants")
            .and_then(|wants| Ok((wants, parse(&w.haves, MAX_HAVES, "haves")?)));
        let ids = ids.and_then(
            |(wants, haves)| match wants.iter().find(|w| !served.allows(w)) {
                Some(w) => Err(format!("{w} is not served here")),
                None => Ok((wants, haves)),
            },
        );
        let (wants, haves) = match ids {
            Ok(x) => x,
            Err(message) => {
                let n = wire::write_message(stream, &error_msg(message))
                    .await
                    .map_err(wire_err)?;
                return Ok(n as u64);
            }
        };
        let repo = served.repo.clone();
        let limits = self.limits;
        let generated =
            tokio::task::spawn_blocking(move || repo.generate_pack(&wants, &haves, limits))
                .await
                .map_err(|e| TransferError::Join(e.to_string()))?;
        let mut pack = match generated {
            Ok(p) => p,
            Err(e) => {
                let n = wire::write_message(stream, &error_msg(e.to_string()))
                    .await
                    .map_err(wire_err)?;
                return Ok(n as u64);
            }
        };
        info!(%peer, bytes = pack.bytes, objects = pack.objects, "sending pack");
        let start = Message::PackStart(wire::PackStart {
            bytes: pack.bytes,
            objects: pack.objects,
        });
        let mut sent = wire::write_message(stream, &start)
            .await
            .map_err(wire_err)? as u64;
        pack.file.seek(SeekFrom::Start(0))?;
        let mut file = tokio::fs::File::from_std(pack.file);
        let mut buf = vec![0u8; PACK_CHUNK_BYTES];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let chunk = Message::PackChunk(wire::PackChunk {
                data: ByteBuf::from(buf.get(..n).unwrap_or_default().to_vec()),
            });
            sent += wire::write_message(stream, &chunk)
                .await
                .map_err(wire_err)? as u64;
        }
        sent += wire::write_message(stream, &Message::PackEnd(wire::PackEnd {}))
            .await
            .map_err(wire_err)? as u64;
        Ok(sent)
    }
}

async fn object_reply(repo: &Repo, oid: ObjectId) -> Message {
    let repo = repo.clone();
    let found = tokio::task::spawn_blocking(move || repo.read_object(&oid)).await;
    match found {
        Ok(Ok(Some((kind @ (Kind::Tag | Kind::Commit), data))))
            if data.len() <= MAX_OBJECT_BYTES =>
        {
            Message::Object(wire::Object {
                kind: kind.to_string(),
                data: ByteBuf::from(data),
            })
        }
        Ok(Ok(Some((kind, data)))) => error_msg(format!(
            "{oid} is a {kind} of {} bytes: not served alone",
            data.len()
        )),
        Ok(Ok(None)) => error_msg(format!("{oid} not found")),
        Ok(Err(e)) => error_msg(e.to_string()),
        Err(e) => error_msg(e.to_string()),
    }
}

fn error_msg(message: String) -> Message {
    Message::Error(ErrorMsg { message })
}

fn name(m: &Message) -> String {
    match m {
        Message::Hello(_) => "hello",
        Message::HelloOk(_) => "hello_ok",
        Message::WantObject(_) => "want_object",
        Message::Object(_) => "object",
        Message::WantManifest(_) => "want_manifest",
        Message::Manifest(_) => "manifest",
        Message::WantPack(_) => "want_pack",
        Message::PackStart(_) => "pack_start",
        Message::PackChunk(_) => "pack_chunk",
        Message::PackEnd(_) => "pack_end",
        Message::Error(_) => "error",
    }
    .to_owned()
}

/// A client connection to a serving node, after a verified HELLO.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// The serving node's key, proven in HELLO.
    pub server_key: [u8; 32],
    /// Bytes moved on this connection so far.
    pub traffic: Traffic,
}

/// Connect to `peer` for `repo` of `publisher` and authenticate it. If `expect_key` is given, the
/// server must prove that key (e.g. the publisher's own node).
pub async fn connect(
    peer: SocketAddr,
    publisher: &[u8; 32],
    repo: &str,
    expect_key: Option<&[u8; 32]>,
) -> Result<Connection, TransferError> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(peer))
        .await
        .map_err(|_| TransferError::Connect {
            peer,
            reason: "timed out".into(),
        })?
        .map_err(|e| TransferError::Connect {
            peer,
            reason: e.to_string(),
        })?;
    let mut conn = Connection {
        stream,
        peer,
        server_key: [0; 32],
        traffic: Traffic::default(),
    };
    let mut challenge = [0u8; wire::CHALLENGE_BYTES];
    getrandom::fill(&mut challenge).map_err(|e| TransferError::Handshake {
        peer,
        reason: format!("no randomness: {e}"),
    })?;
    let hello = Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        publisher: ByteBuf::from(publisher.to_vec()),
        repo: repo.to_owned(),
        challenge: ByteBuf::from(challenge.to_vec()),
    });
    conn.send(&hello).await?;
    let (reply, n) = wire::read_message_within(&mut conn.stream, HANDSHAKE_TIMEOUT)
        .await
        .map_err(|source| TransferError::Wire { peer, source })?;
    conn.traffic.bytes_in += n as u64;
    let ok = match reply {
        Message::HelloOk(ok) => ok,
        Message::Error(e) => {
            return Err(TransferError::Refused {
                peer,
                message: e.message,
            });
        }
        other => {
            return Err(TransferError::Unexpected {
                peer,
                expected: "hello_ok",
                got: name(&other),
            });
        }
    };
    let bad = |reason: String| TransferError::Handshake { peer, reason };
    if ok.version != PROTOCOL_VERSION {
        return Err(bad(format!("server speaks version {}", ok.version)));
    }
    let key = wire::bytes32_field("node_key", &ok.node_key).map_err(|e| bad(e.to_string()))?;
    let sig = <[u8; 64]>::try_from(ok.signature.as_slice())
        .map_err(|_| bad("signature is not 64 bytes".into()))?;
    let vk = VerifyingKey::from_bytes(&key).map_err(|e| bad(format!("node key: {e}")))?;
    let signed = wire::hello_signed_bytes(&challenge, publisher, repo, &key);
    vk.verify(&signed, &Signature::from_bytes(&sig))
        .map_err(|_| bad("challenge signature does not verify".into()))?;
    if let Some(want) = expect_key
        && want != &key
    {
        return Err(bad(format!(
            "server key {} is not the expected {}",
            hex::encode(key),
            hex::encode(want)
        )));
    }
    conn.server_key = key;
    Ok(conn)
}

impl Connection {
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    async fn send(&mut self, msg: &Message) -> Result<(), TransferError> {
        let n = wire::write_message(&mut self.stream, msg)
            .await
            .map_err(|source| TransferError::Wire {
                peer: self.peer,
                source,
            })?;
        self.traffic.bytes_out += n as u64;
        Ok(())
    }

    async fn recv(&mut self) -> Result<Message, TransferError> {
        let (msg, n) = wire::read_message(&mut self.stream)
            .await
            .map_err(|source| TransferError::Wire {
                peer: self.peer,
                source,
            })?;
        self.traffic.bytes_in += n as u64;
        if let Message::Error(e) = msg {
            return Err(TransferError::Refused {
                peer: self.peer,
                message: e.message,
            });
        }
        Ok(msg)
    }

    /// Fetch one tag or commit and check that its bytes hash to `oid`.
    pub async fn want_object(&mut self, oid: ObjectId) -> Result<(Kind, Vec<u8>), TransferError> {
        let peer = self.peer;
        self.send(&Message::WantObject(wire::WantObject {
            oid: ByteBuf::from(oid.as_bytes().to_vec()),
        }))
        .await?;
        let obj = match self.recv().await? {
            Message::Object(o) => o,
            other => {
                return Err(TransferError::Unexpected {
                    peer,
                    expected: "object",
                    got: name(&other),
                });
            }
        };
        let kind = match obj.kind.as_str() {
            "tag" => Kind::Tag,
            "commit" => Kind::Commit,
            k => {
                return Err(TransferError::BadObject {
                    peer,
                    oid,
                    reason: format!("type {k:?}"),
                });
            }
        };
        if obj.data.len() > MAX_OBJECT_BYTES {
            return Err(TransferError::BadObject {
                peer,
                oid,
                reason: "too large".into(),
            });
        }
        let actual = object_id(kind, &obj.data);
        if actual != oid {
            return Err(TransferError::ObjectMismatch {
                peer,
                asked: oid,
                actual,
            });
        }
        Ok((kind, obj.data.into_vec()))
    }

    /// Fetch the object `oid` names and, while it is a tag pointing at a tag, the next one
    /// (at most [`MAX_TAG_CHAIN`] levels). Returns the type of `oid` and the tag objects,
    /// outermost first (empty for a commit).
    pub async fn want_tag_chain(
        &mut self,
        oid: ObjectId,
    ) -> Result<(Kind, Vec<Vec<u8>>), TransferError> {
        let peer = self.peer;
        let mut tags: Vec<Vec<u8>> = Vec::new();
        let mut id = oid;
        let mut first_kind = None;
        loop {
            let (kind, data) = self.want_object(id).await?;
            first_kind.get_or_insert(kind);
            if kind != Kind::Tag {
                break;
            }
            let tag = gix::objs::TagRef::from_bytes(&data, gix::hash::Kind::Sha1).map_err(|e| {
                TransferError::BadObject {
                    peer,
                    oid: id,
                    reason: format!("tag does not parse: {e:?}"),
                }
            })?;
            let (target, target_kind) = (tag.target(), tag.target_kind);
            tags.push(data);
            if target_kind != Kind::Tag {
                break;
            }
            if tags.len() >= MAX_TAG_CHAIN {
                return Err(TransferError::BadObject {
                    peer,
                    oid,
                    reason: format!("tag chain longer than {MAX_TAG_CHAIN}"),
                });
            }
            id = target;
        }
        Ok((first_kind.unwrap_or(Kind::Commit), tags))
    }

    /// Ask for the pack of `wants` with `store`'s ref tips as haves, and receive it into the
    /// store's quarantine (indexed, verified, connectivity-checked; nothing visible yet).
    pub async fn want_pack_quarantined(
        &mut self,
        store: &Repo,
        wants: &[ObjectId],
        limits: PackLimits,
    ) -> Result<crate::store::Quarantined, TransferError> {
        let store2 = store.clone();
        let haves: Vec<ObjectId> = tokio::task::spawn_blocking(move || store2.refs())
            .await
            .map_err(|e| TransferError::Join(e.to_string()))??
            .into_values()
            .take(MAX_HAVES)
            .collect();
        let (file, _) = self.want_pack(wants, &haves, limits).await?;
        let store2 = store.clone();
        let wants = wants.to_vec();
        let q = tokio::task::spawn_blocking(move || {
            let mut reader = std::io::BufReader::new(file);
            store2.receive_pack(&mut reader, &wants, limits)
        })
        .await
        .map_err(|e| TransferError::Join(e.to_string()))??;
        Ok(q)
    }

    /// Fetch the manifest with SHA-256 `hash` (verification against the item is the caller's,
    /// through [`crate::announce::decode_manifest`]).
    pub async fn want_manifest(&mut self, hash: &[u8; 32]) -> Result<Vec<u8>, TransferError> {
        let peer = self.peer;
        self.send(&Message::WantManifest(wire::WantManifest {
            hash: ByteBuf::from(hash.to_vec()),
        }))
        .await?;
        match self.recv().await? {
            Message::Manifest(m) => Ok(m.data.into_vec()),
            other => Err(TransferError::Unexpected {
                peer,
                expected: "manifest",
                got: name(&other),
            }),
        }
    }

    /// Ask for a pack and receive it into a temporary file, refusing it as soon as its announced
    /// or actual size exceeds `limits`.
    pub async fn want_pack(
        &mut self,
        wants: &[ObjectId],
        haves: &[ObjectId],
        limits: PackLimits,
    ) -> Result<(std::fs::File, u32), TransferError> {
        let peer = self.peer;
        let ids = |v: &[ObjectId]| {
            v.iter()
                .map(|o| ByteBuf::from(o.as_bytes().to_vec()))
                .collect()
        };
        self.send(&Message::WantPack(wire::WantPack {
            wants: ids(wants),
            haves: ids(haves),
        }))
        .await?;
        let start = match self.recv().await? {
            Message::PackStart(s) => s,
            other => {
                return Err(TransferError::Unexpected {
                    peer,
                    expected: "pack_start",
                    got: name(&other),
                });
            }
        };
        if start.bytes > limits.max_bytes || start.objects > limits.max_objects {
            return Err(TransferError::PackSize {
                peer,
                reason: format!(
                    "announced {} bytes / {} objects, limits {} / {}",
                    start.bytes, start.objects, limits.max_bytes, limits.max_objects
                ),
            });
        }
        let mut file = tempfile::tempfile()?;
        let mut got = 0u64;
        loop {
            match self.recv().await? {
                Message::PackChunk(c) => {
                    got += c.data.len() as u64;
                    if got > start.bytes {
                        return Err(TransferError::PackSize {
                            peer,
                            reason: format!("more than the announced {} bytes", start.bytes),
                        });
                    }
                    file.write_all(&c.data)?;
                }
                Message::PackEnd(_) => break,
                other => {
                    return Err(TransferError::Unexpected {
                        peer,
                        expected: "pack_chunk",
                        got: name(&other),
                    });
                }
            }
        }
        if got != start.bytes {
            return Err(TransferError::PackSize {
                peer,
                reason: format!("{got} bytes received, {} announced", start.bytes),
            });
        }
        file.seek(SeekFrom::Start(0))?;
        Ok((file, start.objects))
    }
}

/// What happened to one ref update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The gate's decision (or a synthetic one when nothing had to be decided).
    pub decision: GateDecision,
    /// Whether the local ref now has the announced value.
    pub updated: bool,
    /// Objects in the received pack (0 if none was fetched).
    pub pack_objects: u32,
    /// Bytes moved on the connection for this update (HELLO excluded).
    pub traffic: Traffic,
    /// The announcement was stale: the announced commit is already in the history of the
    /// ref's current value. Nothing was fetched or decided.
    pub stale: bool,
}

/// Run the staged fetch of one ref update over `conn` into `store`, deciding with `gate`.
///
/// `ctx.old` must be the value the ref has locally now; it is the expected old value of the
/// final compare-and-swap, so an update that raced with another changes nothing.
pub async fn fetch_ref(
    conn: &mut Connection,
    store: &Repo,
    gate: &dyn Gate,
    mut ctx: RefUpdateCtx,
    limits: PackLimits,
) -> Result<FetchOutcome, TransferError> {
    let before = conn.traffic;
    let delta = |c: &Connection| c.traffic.since(before);
    if ctx.old == Some(ctx.new) {
        return Ok(FetchOutcome {
            decision: GateDecision::new(Verdict::Accept, "ref already has this value"),
            updated: false,
            pack_objects: 0,
            traffic: Traffic::default(),
            stale: false,
        });
    }
    // An older ref (the announced commit is an ancestor of what we have) changes nothing and
    // costs nothing: decided locally, before any request.
    if let Some(old) = ctx.old {
        let (store2, new) = (store.clone(), ctx.new);
        let stale = tokio::task::spawn_blocking(move || store2.is_ancestor(new, old))
            .await
            .map_err(|e| TransferError::Join(e.to_string()))??;
        if stale {
            return Ok(FetchOutcome {
                decision: GateDecision::new(
                    Verdict::Reject,
                    format!("stale: {new} is already in the history of {old}"),
                ),
                updated: false,
                pack_objects: 0,
                traffic: Traffic::default(),
                stale: true,
            });
        }
    }
    ctx.served_by = conn.server_key;

    // Stage 1: the object the ref names, and the tags it points through.
    let (kind, tags) = conn.want_tag_chain(ctx.new).await?;
    ctx.new_kind = kind;

    // A branch update (a commit) carries no signature; its decision needs the commit and its
    // history (`fast_forward`), so its pack comes first, into quarantine, and the gate reads
    // the objects there (then the repository's own) before any ref moves.
    if kind == Kind::Commit {
        return fetch_commit(conn, store, gate, ctx, limits, before).await;
    }

    // Stage 2: decide.
    let decision = gate.decide(&ctx, &tags);
    info!(
        repo = %ctx.repo, r#ref = %ctx.ref_name, new = %ctx.new, verdict = ?decision.verdict,
        explanation = %decision.explanation, served_by = %hex::encode(ctx.served_by), "gate decision"
    );
    if decision.verdict == Verdict::Reject {
        return Ok(FetchOutcome {
            decision,
            updated: false,
            pack_objects: 0,
            traffic: delta(conn),
            stale: false,
        });
    }

    // Stage 3: the pack, with our tips as haves, then the compare-and-swap.
    let q = conn
        .want_pack_quarantined(store, &[ctx.new], limits)
        .await?;
    move_in(q, &ctx, decision, conn, before).await
}

/// Accepted: move the quarantined objects in and compare-and-swap the ref (off the async
/// threads: both touch the disk).
async fn move_in(
    q: crate::store::Quarantined,
    ctx: &RefUpdateCtx,
    decision: GateDecision,
    conn: &Connection,
    before: Traffic,
) -> Result<FetchOutcome, TransferError> {
    let (name, old, new) = (ctx.ref_name.clone(), ctx.old, ctx.new);
    let objects = q.objects;
    tokio::task::spawn_blocking(move || q.commit(&name, old, new))
        .await
        .map_err(|e| TransferError::Join(e.to_string()))??;
    info!(repo = %ctx.repo, r#ref = %ctx.ref_name, new = %ctx.new, objects, "ref updated");
    Ok(FetchOutcome {
        decision,
        updated: true,
        pack_objects: objects,
        traffic: conn.traffic.since(before),
        stale: false,
    })
}

/// The branch path of [`fetch_ref`]: pack into quarantine, decide with the received objects
/// readable, then move them in and compare-and-swap the ref, or drop the quarantine.
async fn fetch_commit(
    conn: &mut Connection,
    store: &Repo,
    gate: &dyn Gate,
    ctx: RefUpdateCtx,
    limits: PackLimits,
    before: Traffic,
) -> Result<FetchOutcome, TransferError> {
    let q = conn
        .want_pack_quarantined(store, &[ctx.new], limits)
        .await?;
    let dirs = [q.objects_dir().to_owned(), store.objects_dir()];
    let decision = gate.decide_received(&ctx, &[], &dirs);
    info!(
        repo = %ctx.repo, r#ref = %ctx.ref_name, new = %ctx.new, verdict = ?decision.verdict,
        explanation = %decision.explanation, served_by = %hex::encode(ctx.served_by),
        objects = q.objects, "gate decision on a received branch update"
    );
    let objects = q.objects;
    if decision.verdict == Verdict::Reject {
        // Dropping the quarantine deletes the pack: nothing reached the repository.
        drop(q);
        return Ok(FetchOutcome {
            decision,
            updated: false,
            pack_objects: objects,
            traffic: conn.traffic.since(before),
            stale: false,
        });
    }
    move_in(q, &ctx, decision, conn, before).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_clock() -> i64 {
        1_700_000_000
    }

    #[test]
    fn traffic_is_split_by_role_and_the_peer_table_is_bounded() {
        let log = TrafficLog::with_clock(fixed_clock);
        let t = |i, o| Traffic {
            bytes_in: i,
            bytes_out: o,
        };
        let server: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        log.record("r", Role::Fetch, server, Some([1; 32]), t(100, 10), true);
        log.record("r", Role::Fetch, server, None, t(5, 1), false);
        log.record("r", Role::Serve, client, None, t(20, 300), true);
        // Another ephemeral port of the same host is the same serve peer.
        let client2: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        log.record("r", Role::Serve, client2, None, t(1, 2), true);
        let r = log.get("r");
        assert_eq!((r.fetched, r.served), (t(105, 11), t(21, 302)));
        let peers = log.peers();
        assert_eq!(peers.len(), 2, "{peers:?}");
        assert_eq!(peers[0].role, Role::Fetch);
        assert_eq!(peers[0].address, "127.0.0.1:7000");
        assert_eq!(peers[0].node_key, Some([1; 32]));
        assert_eq!(
            (peers[0].connections, peers[0].last_seen),
            (1, 1_700_000_000)
        );
        assert_eq!(
            (peers[1].address.as_str(), peers[1].connections),
            ("127.0.0.1", 2)
        );

        // At the bound, a new peer replaces one entry; the table never grows past it.
        let log = TrafficLog::with_clock(fixed_clock);
        for i in 0..MAX_PEERS_TRACKED {
            let a = SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16));
            log.record("r", Role::Fetch, a, None, t(1, 1), true);
        }
        assert_eq!(log.peers().len(), MAX_PEERS_TRACKED);
        let a = SocketAddr::from(([127, 0, 0, 2], 1));
        log.record("r", Role::Fetch, a, None, t(1, 1), true);
        let peers = log.peers();
        assert_eq!(peers.len(), MAX_PEERS_TRACKED);
        assert!(peers.iter().any(|p| p.address == "127.0.0.2:1"));
        // Per-repository totals keep every byte.
        let n = MAX_PEERS_TRACKED as u64 + 1;
        assert_eq!(log.get("r").fetched, t(n, n));
    }
}
