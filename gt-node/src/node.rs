//! The node itself: its data directory (config, ed25519 key, state, repositories), sharing and
//! following repositories, and the loop that republishes and polls.
//!
//! Data directory layout:
//! - `config.toml`: [`NodeConfig`] (DHT bootstrap list, bind addresses, poll interval);
//! - `node.key`: the ed25519 node key (hex seed, mode 0600), made on first start;
//! - `state.json`: [`State`]: shared and followed repositories, last seq acted on, decisions;
//!   always replaced atomically (write a temporary file, fsync, rename, fsync the directory);
//! - `repos/<publisher hex>/<name>.git`: bare repositories of followed repositories.
//!
//! Crash safety: refs only ever point at objects already moved in (see [`crate::store`]);
//! `last_seq` of a followed repository is saved only after every changed ref of that item was
//! handled, so a node killed mid-update re-polls the item after restart and finishes it (refs
//! already at the announced value are skipped).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, StreamExt as _};
use gix::ObjectId;
use gix::objs::Kind;
use mainline::SigningKey;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::announce::{self, ItemContent, RefMap};
use crate::dht::{DhtConfig, DhtError, DhtNode};
use crate::gate::{Gate, RefUpdateCtx, Verdict};
use crate::store::{PackLimits, Repo, StoreError};
use crate::transfer::{self, Role, Served, Server, TrafficLog, TransferError};

/// Shortest allowed poll interval: each poll is a DHT lookup; polling faster than this only
/// loads the network.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Default poll interval for followed repositories.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 60;

/// Most serving peers tried for one ref update before giving up until the next poll.
pub const MAX_PEERS_TRIED: usize = 8;

/// Most followed repositories polled at the same time in one round (each poll is a few DHT
/// lookups and at most one fetch; more would only queue on the DHT actor and the disk).
pub const MAX_CONCURRENT_POLLS: usize = 8;

/// Version of `state.json`.
pub const STATE_VERSION: u32 = 1;

/// `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// DHT bootstrap nodes (`host:port`). Empty: this node starts its own network. There is no
    /// built-in public default: deployments name their bootstrap nodes.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Address the DHT's UDP socket binds to.
    #[serde(default = "default_bind")]
    pub dht_bind: Ipv4Addr,
    /// DHT UDP port (0: any).
    #[serde(default)]
    pub dht_port: u16,
    /// Address the transfer service (TCP) listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Seconds between polls of followed repositories (at least [`MIN_POLL_INTERVAL`]).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Largest pack accepted for one ref update, in bytes.
    #[serde(default = "default_max_pack")]
    pub max_pack_bytes: u64,
    /// Policy files deciding every ref update (`gt node run --policy` adds to these). Relative
    /// paths resolve against the data directory.
    #[serde(default)]
    pub policy: Vec<PathBuf>,
    /// Keyrings (files or directories) for tag and credential signatures.
    #[serde(default)]
    pub keyring: Vec<PathBuf>,
}

fn default_bind() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}
fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}
fn default_poll() -> u64 {
    DEFAULT_POLL_INTERVAL_SECS
}
fn default_max_pack() -> u64 {
    crate::wire::MAX_PACK_BYTES
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bootstrap: Vec::new(),
            dht_bind: default_bind(),
            dht_port: 0,
            listen: default_listen(),
            poll_interval_secs: default_poll(),
            max_pack_bytes: default_max_pack(),
            policy: Vec::new(),
            keyring: Vec::new(),
        }
    }
}

/// A repository this node publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRepo {
    /// Where it is.
    pub path: PathBuf,
    /// Seq of the last item put.
    pub seq: Option<i64>,
}

/// A repository this node follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedRepo {
    /// Publisher key, hex.
    pub publisher: String,
    /// Repository name.
    pub name: String,
    /// Seq of the last item fully acted on.
    pub last_seq: Option<i64>,
    /// Refs whose last decision was propagate: ref → oid (hex). Only these are served.
    #[serde(default)]
    pub propagated: BTreeMap<String, String>,
    /// Refs whose last decision was reject: ref → oid (hex); not fetched again for that oid.
    #[serde(default)]
    pub rejected: BTreeMap<String, String>,
    /// The publisher's last fully handled DHT item, as signed by the publisher: a propagating
    /// node re-puts it so the item outlives the publisher's absence.
    #[serde(default)]
    pub item: Option<SignedItem>,
    /// The gate's [`Gate::fingerprint`] the entries of `rejected` were decided under; when the
    /// gate's current one differs (the policy changed), they are decided again.
    #[serde(default)]
    pub rejected_under: Option<String>,
}

/// A BEP 44 item as the publisher signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedItem {
    /// Sequence number.
    pub seq: i64,
    /// Value, hex.
    pub value: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// By name.
    #[serde(default)]
    pub shared: BTreeMap<String, SharedRepo>,
    /// By `<publisher hex>/<name>`.
    #[serde(default)]
    pub followed: BTreeMap<String, FollowedRepo>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            shared: BTreeMap::new(),
            followed: BTreeMap::new(),
        }
    }
}

/// Node failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Reading or writing a file of the data directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `config.toml`, `node.key` or `state.json` does not parse.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A name, key or argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// DHT failure.
    #[error(transparent)]
    Dht(#[from] DhtError),
    /// Item or manifest failure.
    #[error(transparent)]
    Announce(#[from] announce::AnnounceError),
    /// Repository failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Transfer failure.
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NodeError {
    let path = path.to_owned();
    move |source| NodeError::Io { what, path, source }
}

/// Write `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync the directory. A reader (or a restart after a kill) sees the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create temporary", dir))?;
    tmp.write_all(bytes).map_err(io("write", path))?;
    tmp.as_file().sync_all().map_err(io("fsync", path))?;
    tmp.persist(path)
        .map_err(|e| io("rename into", path)(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))?;
    Ok(())
}

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `node.key`.
    pub fn key(&self) -> PathBuf {
        self.root.join("node.key")
    }
    /// `state.json`.
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// Bare repository of a followed repository.
    pub fn followed_repo(&self, publisher: &[u8; 32], name: &str) -> PathBuf {
        self.root
            .join("repos")
            .join(hex::encode(publisher))
            .join(format!("{name}.git"))
    }

    /// Read `config.toml`, or the default if it does not exist.
    pub fn load_config(&self) -> Result<NodeConfig, NodeError> {
        let path = self.config();
        match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| NodeError::Parse {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NodeConfig::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Write `config.toml`.
    pub fn save_config(&self, cfg: &NodeConfig) -> Result<(), NodeError> {
        self.ensure()?;
        let s = toml::to_string(cfg).map_err(|e| NodeError::Parse {
            path: self.config(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.config(), s.as_bytes())
    }

    fn ensure(&self) -> Result<(), NodeError> {
        std::fs::create_dir_all(&self.root).map_err(io("create data directory", &self.root))
    }

    /// Read `node.key`, creating a fresh random key (mode 0600) if there is none.
    pub fn load_or_create_key(&self) -> Result<SigningKey, NodeError> {
        self.ensure()?;
        let path = self.key();
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let bytes = hex::decode(s.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| NodeError::Parse {
                        path: path.clone(),
                        reason: "not 64 hex digits".into(),
                    })?;
                Ok(SigningKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| NodeError::Invalid(format!("no randomness: {e}")))?;
                write_atomic(&path, format!("{}\n", hex::encode(seed)).as_bytes())?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(io("restrict permissions of", &path))?;
                }
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Read `state.json` (empty state if absent).
    pub fn load_state(&self) -> Result<State, NodeError> {
        let path = self.state();
        match std::fs::read(&path) {
            Ok(b) => {
                let s: State = serde_json::from_slice(&b).map_err(|e| NodeError::Parse {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if s.version != STATE_VERSION {
                    return Err(NodeError::Parse {
                        path,
                        reason: format!("state version {}, expected {STATE_VERSION}", s.version),
                    });
                }
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Replace `state.json` atomically.
    pub fn save_state(&self, state: &State) -> Result<(), NodeError> {
        self.ensure()?;
        let b = serde_json::to_vec_pretty(state).map_err(|e| NodeError::Parse {
            path: self.state(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.state(), &b)
    }
}

/// Parse `PUBLISHER/NAME` (64 hex digits, a slash, a repository name).
pub fn parse_repo_ref(s: &str) -> Result<([u8; 32], String), NodeError> {
    let (key, name) = s
        .split_once('/')
        .ok_or_else(|| NodeError::Invalid(format!("{s:?}: want PUBLISHER/NAME")))?;
    let key = hex::decode(key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| NodeError::Invalid(format!("{s:?}: publisher is not 64 hex digits")))?;
    announce::validate_repo_name(name)?;
    Ok((key, name.to_owned()))
}

/// The [`RefReport::outcome`] word for a gate verdict.
fn verdict_outcome(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Reject => "reject",
        Verdict::Accept => "accept",
        Verdict::Propagate => "propagate",
    }
}

/// What one poll of a followed repository did, per ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefReport {
    /// The ref.
    pub name: String,
    /// The announced value (hex).
    pub new: String,
    /// `reject`, `accept`, `propagate`, `stale`, `skipped` or `failed`. A `new` of forty zeros
    /// is a deletion (the publisher no longer announces the ref): `accept`/`propagate` mean the
    /// local ref was deleted.
    pub outcome: String,
    /// Explanation or error.
    pub detail: String,
}

/// A running node.
pub struct Node {
    dir: DataDir,
    config: NodeConfig,
    key: SigningKey,
    state: Mutex<State>,
    /// Held while `state.json` is written, so saves land in the order of the changes they
    /// carry: each save writes the state as it is once it holds this lock.
    saving: Mutex<()>,
    /// One lock per repository (`<publisher hex>/<name>`): a poll or publish of a repository
    /// waits for another one of the same repository (a round's and a request's) to finish,
    /// instead of both acting on the same item. Different repositories never wait.
    busy: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    dht: DhtNode,
    server: Arc<Server>,
    tcp_addr: SocketAddr,
    gate: Arc<dyn Gate>,
    /// Bytes moved per repository.
    pub traffic: Arc<TrafficLog>,
    server_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("dir", &self.dir.root)
            .field("tcp", &self.tcp_addr)
            .finish()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server_task.abort();
    }
}

impl Node {
    /// Start the node of `dir`: load config, key and state, clean quarantines, join the DHT,
    /// listen for peers, and serve what it shares and propagates.
    pub async fn start(dir: DataDir, gate: Arc<dyn Gate>) -> Result<Self, NodeError> {
        let config = dir.load_config()?;
        let key = dir.load_or_create_key()?;
        let state = dir.load_state()?;
        let dht = DhtNode::start(&DhtConfig {
            bootstrap: config.bootstrap.clone(),
            bind: config.dht_bind,
            port: config.dht_port,
            server_mode: true,
        })
        .await?;
        let traffic = Arc::new(TrafficLog::default());
        let limits = PackLimits {
            max_bytes: config.max_pack_bytes,
            ..PackLimits::default()
        };
        let server = Server::new(key.clone(), limits, traffic.clone());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| NodeError::Io {
                what: "listen on",
                path: PathBuf::from(config.listen.to_string()),
                source: e,
            })?;
        let tcp_addr = listener
            .local_addr()
            .map_err(io("listen on", Path::new("tcp")))?;
        let server_task = tokio::spawn(server.clone().run(listener));
        let node = Node {
            dir,
            config,
            key,
            state: Mutex::new(state),
            saving: Mutex::new(()),
            busy: Mutex::new(HashMap::new()),
            dht,
            server,
            tcp_addr,
            gate,
            traffic,
            server_task,
        };
        node.restore()?;
        info!(key = %hex::encode(node.public_key()), tcp = %node.tcp_addr, dht = %node.dht.local_addr(), "node started");
        Ok(node)
    }

    /// Re-register served repositories from the state; clean quarantines (and, in followed
    /// repositories, ref locks) that a crash left.
    fn restore(&self) -> Result<(), NodeError> {
        let state = self.state_snapshot();
        let me = self.public_key();
        for (name, shared) in &state.shared {
            let repo = Repo::open(&shared.path)?;
            repo.cleanup_quarantine()?;
            let manifest = announce::encode_item(&repo.refs()?)?.manifest;
            self.server.serve(
                me,
                name,
                Served {
                    repo,
                    manifest,
                    allow: None,
                },
            );
        }
        for f in state.followed.values() {
            let (publisher, name) = parse_repo_ref(&format!("{}/{}", f.publisher, f.name))?;
            let repo = Repo::init_bare(self.dir.followed_repo(&publisher, &name))?;
            repo.cleanup_quarantine()?;
            // Ours alone (in the data directory): a lock a crash left would block its ref.
            let locks = repo.remove_stale_ref_locks()?;
            if locks > 0 {
                info!(repo = %format!("{}/{}", f.publisher, f.name), locks, "removed stale ref locks");
            }
            self.serve_followed(&publisher, &name, &repo, f)?;
        }
        Ok(())
    }

    fn serve_followed(
        &self,
        publisher: &[u8; 32],
        name: &str,
        repo: &Repo,
        f: &FollowedRepo,
    ) -> Result<(), NodeError> {
        if f.propagated.is_empty() {
            self.server.unserve(publisher, name);
            return Ok(());
        }
        let roots: Vec<ObjectId> = f
            .propagated
            .values()
            .filter_map(|h| ObjectId::from_hex(h.as_bytes()).ok())
            .collect();
        let allow = repo.tag_chains(&roots)?;
        self.server.serve(
            *publisher,
            name,
            Served {
                repo: repo.clone(),
                manifest: None,
                allow: Some(Arc::new(allow)),
            },
        );
        Ok(())
    }

    /// This node's public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The transfer service address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The DHT node.
    pub fn dht(&self) -> &DhtNode {
        &self.dht
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// A copy of the current state.
    pub fn state_snapshot(&self) -> State {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update_state(&self, f: impl FnOnce(&mut State)) -> Result<(), NodeError> {
        let poisoned = || NodeError::Invalid("state lock poisoned".into());
        f(&mut *self.state.lock().map_err(|_| poisoned())?);
        // Take the snapshot only once this save is next in line: a save that lost the race
        // then still writes every change made before it, never an older state over a newer.
        let _saving = self.saving.lock().map_err(|_| poisoned())?;
        let snapshot = self.state.lock().map_err(|_| poisoned())?.clone();
        self.dir.save_state(&snapshot)
    }

    /// Wait until no other poll or publish of repository `id` runs (see `busy`).
    async fn exclusive(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = match self.busy.lock() {
            Ok(mut m) => m.entry(id.to_owned()).or_default().clone(),
            // A panic elsewhere while holding the map: work unguarded rather than stop.
            Err(_) => Arc::default(),
        };
        lock.lock_owned().await
    }

    /// Share the repository at `path` as `name`, and publish it now (`now`: unix seconds).
    pub async fn share(&self, path: &Path, name: &str, now: i64) -> Result<i64, NodeError> {
        announce::validate_repo_name(name)?;
        let repo = Repo::open(path)?;
        let path = repo.path().to_owned();
        self.update_state(|s| {
            let e = s.shared.entry(name.to_owned()).or_insert(SharedRepo {
                path: path.clone(),
                seq: None,
            });
            e.path = path;
        })?;
        self.publish(name, now).await
    }

    /// Put the current refs of shared repository `name` in the DHT (next seq) and announce this
    /// node as serving it. Returns the seq put.
    pub async fn publish(&self, name: &str, now: i64) -> Result<i64, NodeError> {
        let _one_at_a_time = self
            .exclusive(&transfer::repo_id(&self.public_key(), name))
            .await;
        let shared = self
            .state_snapshot()
            .shared
            .get(name)
            .cloned()
            .ok_or_else(|| NodeError::Invalid(format!("{name} is not shared")))?;
        let repo = Repo::open(&shared.path)?;
        let refs = repo.refs()?;
        let item = announce::encode_item(&refs)?;
        let me = self.public_key();
        self.server.serve(
            me,
            name,
            Served {
                repo,
                manifest: item.manifest.clone(),
                allow: None,
            },
        );
        let seq = announce::next_seq(shared.seq, now);
        let stored = self
            .dht
            .put_item(&self.key, name, &item.value, seq, None)
            .await?;
        self.update_state(|s| {
            if let Some(e) = s.shared.get_mut(name) {
                e.seq = Some(seq);
            }
        })?;
        self.dht.announce(&me, name, self.tcp_addr.port()).await?;
        info!(
            repo = name,
            seq,
            refs = refs.len(),
            stored,
            manifest = item.manifest.is_some(),
            "published"
        );
        Ok(seq)
    }

    /// Start following `name` of `publisher`.
    pub fn follow(&self, publisher: &[u8; 32], name: &str) -> Result<(), NodeError> {
        announce::validate_repo_name(name)?;
        Repo::init_bare(self.dir.followed_repo(publisher, name))?;
        let id = transfer::repo_id(publisher, name);
        self.update_state(|s| {
            s.followed.entry(id).or_insert(FollowedRepo {
                publisher: hex::encode(publisher),
                name: name.to_owned(),
                last_seq: None,
                propagated: BTreeMap::new(),
                rejected: BTreeMap::new(),
                item: None,
                rejected_under: None,
            });
        })
    }

    /// Poll one followed repository: if its item has a seq greater than the last one acted on,
    /// fetch every changed ref through the staged protocol. `now`: decision time, unix seconds.
    pub async fn poll(
        &self,
        publisher: &[u8; 32],
        name: &str,
        now: i64,
    ) -> Result<Vec<RefReport>, NodeError> {
        let id = transfer::repo_id(publisher, name);
        let _one_at_a_time = self.exclusive(&id).await;
        let followed = self
            .state_snapshot()
            .followed
            .get(&id)
            .cloned()
            .ok_or_else(|| NodeError::Invalid(format!("{id} is not followed")))?;
        // Rejections remembered under other rules than the gate's current ones are decided
        // again: the current item is read even if its seq was already acted on.
        let fingerprint = self.gate.fingerprint();
        let redecide = !followed.rejected.is_empty()
            && fingerprint.is_some()
            && followed.rejected_under != fingerprint;
        let item = match followed.last_seq {
            Some(seq) if !redecide => self.dht.get_item_newer_than(publisher, name, seq).await?,
            _ => self.dht.get_item(publisher, name).await?,
        };
        let Some(item) = item else {
            // Nothing acted on yet and nothing found: the key is unknown to the DHT or its owner
            // has not published this name. Said once per poll of this repository, so the log
            // grows by one line per round at most.
            if followed.last_seq.is_none() {
                warn!(
                    repo = %id,
                    "follow {id}: no DHT item from this publisher (unknown key or not yet published)"
                );
            }
            return Ok(Vec::new());
        };
        let same_item_again = redecide && followed.last_seq == Some(item.seq());
        if !announce::is_newer(followed.last_seq, item.seq()) && !same_item_again {
            if let Some(last) = followed.last_seq
                && item.seq() < last
            {
                warn!(repo = %id, seq = item.seq(), last_seq = last, "ignoring a stale DHT item for {id}: seq {} is not newer than {last}, the last one acted on; refs unchanged", item.seq());
            }
            return Ok(Vec::new());
        }
        let content = announce::decode_item(item.value())?;
        let peers = self.dht.find_peers(publisher, name).await?;
        let peers: Vec<SocketAddr> = peers
            .into_iter()
            .map(SocketAddr::V4)
            .filter(|p| *p != self.tcp_addr)
            .take(MAX_PEERS_TRIED)
            .collect();
        let refs: RefMap = match content {
            ItemContent::Refs(r) => r,
            ItemContent::Manifest { sha256, count } => {
                self.fetch_manifest(&peers, publisher, name, &sha256, count)
                    .await?
            }
        };
        let repo = Repo::init_bare(self.dir.followed_repo(publisher, name))?;
        let local = repo.refs()?;
        let mut reports = Vec::new();
        let mut all_done = true;
        let mut cached = None;
        let mut f = followed.clone();
        if redecide {
            info!(
                repo = %id, refs = f.rejected.len(),
                "the policy changed since {} ref(s) of {id} were rejected: deciding them again",
                f.rejected.len()
            );
            f.rejected.clear();
        }
        let mut undecided = Vec::new();
        let zero = ObjectId::null(gix::hash::Kind::Sha1);
        let zero_hex = zero.to_string();
        // Updates and deletions are decided in the same context but for the ref and its values.
        let update_ctx = |ref_name: &str, old: Option<ObjectId>, new: ObjectId| RefUpdateCtx {
            repo: name.to_owned(),
            publisher: *publisher,
            served_by: [0; 32],
            ref_name: ref_name.to_owned(),
            old,
            new,
            new_kind: Kind::Commit,
            seq: item.seq(),
            now,
        };
        for (ref_name, new) in &refs {
            let old = local.get(ref_name).copied();
            let report = |outcome: &str, detail: String| RefReport {
                name: ref_name.clone(),
                new: new.to_string(),
                outcome: outcome.into(),
                detail,
            };
            if old == Some(*new) {
                // Announced again: a remembered refusal to delete it no longer applies.
                if f.rejected.get(ref_name) == Some(&zero_hex) {
                    f.rejected.remove(ref_name);
                }
                continue;
            }
            if f.rejected.get(ref_name) == Some(&new.to_string()) {
                reports.push(report("skipped", "rejected before".into()));
                continue;
            }
            let ctx = update_ctx(ref_name, old, *new);
            match self
                .fetch_from_peers(&peers, publisher, name, &repo, ctx, &mut cached)
                .await
            {
                Ok(out) if out.stale => {
                    warn!(repo = %id, r#ref = %ref_name, new = %new, "ignoring a stale announcement of {ref_name} in {id}: {}; ref unchanged", out.decision.explanation);
                    reports.push(report("stale", out.decision.explanation));
                }
                Ok(out) => {
                    let verdict = out.decision.verdict;
                    let oid = new.to_string();
                    match verdict {
                        Verdict::Reject => {
                            f.rejected.insert(ref_name.clone(), oid);
                            f.propagated.remove(ref_name);
                        }
                        Verdict::Accept => {
                            f.rejected.remove(ref_name);
                            f.propagated.remove(ref_name);
                        }
                        Verdict::Propagate => {
                            f.rejected.remove(ref_name);
                            f.propagated.insert(ref_name.clone(), oid);
                        }
                    }
                    reports.push(report(verdict_outcome(verdict), out.decision.explanation));
                }
                Err(e) => {
                    warn!(repo = %id, r#ref = %ref_name, error = %e, "ref update failed");
                    all_done = false;
                    undecided.push(ref_name.clone());
                    reports.push(report("failed", e.to_string()));
                }
            }
        }
        // Refs the publisher no longer announces: a deletion (new = the zero id), decided by the
        // gate like every update (the policy's `operation == "delete"`; a deletion carries no
        // signature, so only a grant on conditions can allow it). Nothing is fetched.
        for (ref_name, old) in &local {
            if refs.contains_key(ref_name) {
                continue;
            }
            let report = |outcome: &str, detail: String| RefReport {
                name: ref_name.clone(),
                new: zero_hex.clone(),
                outcome: outcome.into(),
                detail,
            };
            if f.rejected.get(ref_name) == Some(&zero_hex) {
                reports.push(report("skipped", "deletion rejected before".into()));
                continue;
            }
            let decision = self
                .gate
                .decide(&update_ctx(ref_name, Some(*old), zero), &[]);
            if decision.verdict == Verdict::Reject {
                f.rejected.insert(ref_name.clone(), zero_hex.clone());
                reports.push(report("reject", decision.explanation));
                continue;
            }
            let (repo2, r, o) = (repo.clone(), ref_name.clone(), *old);
            let deleted = tokio::task::spawn_blocking(move || repo2.delete_ref(&r, o))
                .await
                .map_err(|e| NodeError::Invalid(format!("background task failed: {e}")))?;
            match deleted {
                Ok(()) => {
                    info!(repo = %id, r#ref = %ref_name, old = %old, "deleted {ref_name} of {id}: the publisher no longer announces it and the policy allows the deletion");
                    f.rejected.remove(ref_name);
                    // Not a rejection (that `continue`d above): "accept" or "propagate".
                    reports.push(report(
                        verdict_outcome(decision.verdict),
                        decision.explanation,
                    ));
                }
                Err(e) => {
                    warn!(repo = %id, r#ref = %ref_name, error = %e, "ref deletion failed");
                    all_done = false;
                    undecided.push(ref_name.clone());
                    reports.push(report("failed", e.to_string()));
                }
            }
        }
        // Propagated refs that moved away from the propagated value are no longer vouched for.
        let current = repo.refs()?;
        f.propagated
            .retain(|r, oid| current.get(r).map(|o| o.to_string()).as_ref() == Some(oid));
        f.rejected_under = fingerprint;
        if redecide && !all_done {
            // Some re-decisions did not happen (no peer answered): keep their old rejections
            // and the old rules' mark, so the next poll tries them again.
            for r in undecided {
                if let Some(oid) = followed.rejected.get(&r) {
                    f.rejected.entry(r).or_insert_with(|| oid.clone());
                }
            }
            f.rejected_under = followed.rejected_under.clone();
        }
        if all_done {
            f.last_seq = Some(item.seq());
            f.item = Some(SignedItem {
                seq: item.seq(),
                value: hex::encode(item.value()),
                signature: hex::encode(item.signature()),
            });
        }
        self.serve_followed(publisher, name, &repo, &f)?;
        let propagating = !f.propagated.is_empty();
        self.update_state(|s| {
            s.followed.insert(id.clone(), f);
        })?;
        if propagating {
            self.dht
                .announce(publisher, name, self.tcp_addr.port())
                .await?;
        }
        Ok(reports)
    }

    async fn fetch_manifest(
        &self,
        peers: &[SocketAddr],
        publisher: &[u8; 32],
        name: &str,
        sha256: &[u8; 32],
        count: u64,
    ) -> Result<RefMap, NodeError> {
        let mut last = NodeError::Invalid(format!("no peer serves {name}"));
        for peer in peers {
            let attempt = async {
                let mut conn = transfer::connect(*peer, publisher, name, None).await?;
                let result = conn.want_manifest(sha256).await;
                self.traffic.record(
                    &transfer::repo_id(publisher, name),
                    Role::Fetch,
                    *peer,
                    Some(conn.server_key),
                    conn.traffic,
                    true,
                );
                let bytes = result?;
                Ok::<_, NodeError>(announce::decode_manifest(&bytes, sha256, count)?)
            };
            match attempt.await {
                Ok(refs) => return Ok(refs),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Run the staged fetch of one ref, on the connection kept from the previous ref when there
    /// is one, else on the first peer that completes it. A connection that worked is kept in
    /// `cached` for the next ref of the same poll (one HELLO per poll, not per ref).
    async fn fetch_from_peers(
        &self,
        peers: &[SocketAddr],
        publisher: &[u8; 32],
        name: &str,
        repo: &Repo,
        ctx: RefUpdateCtx,
        cached: &mut Option<transfer::Connection>,
    ) -> Result<transfer::FetchOutcome, NodeError> {
        let limits = PackLimits {
            max_bytes: self.config.max_pack_bytes,
            ..PackLimits::default()
        };
        let id = transfer::repo_id(publisher, name);
        let mut last = NodeError::Invalid(format!("no peer serves {name}"));
        let mut candidates: Vec<Option<SocketAddr>> = vec![None];
        candidates.extend(peers.iter().copied().map(Some));
        for candidate in candidates {
            let mut conn = match candidate {
                None => match cached.take() {
                    Some(c) => c,
                    None => continue,
                },
                Some(peer) => match transfer::connect(peer, publisher, name, None).await {
                    Ok(c) => {
                        self.traffic.record(
                            &id,
                            Role::Fetch,
                            peer,
                            Some(c.server_key),
                            c.traffic,
                            true,
                        );
                        c
                    }
                    Err(e) => {
                        last = e.into();
                        continue;
                    }
                },
            };
            let peer = conn.peer();
            let peer_key = Some(conn.server_key);
            let count = |t| {
                self.traffic
                    .record(&id, Role::Fetch, peer, peer_key, t, false)
            };
            let before = conn.traffic;
            let fetch =
                transfer::fetch_ref(&mut conn, repo, self.gate.as_ref(), ctx.clone(), limits);
            let result = match tokio::time::timeout(crate::wire::FETCH_TIMEOUT, fetch).await {
                Ok(r) => r,
                Err(_) => Err(TransferError::Wire {
                    peer,
                    source: crate::wire::WireError::Timeout(crate::wire::FETCH_TIMEOUT),
                }),
            };
            match result {
                Ok(out) => {
                    count(out.traffic);
                    *cached = Some(conn);
                    return Ok(out);
                }
                // A ref that moved locally meanwhile is not a peer's fault: stop.
                Err(TransferError::Store(e @ StoreError::RefConflict { .. })) => {
                    count(conn.traffic.since(before));
                    return Err(e.into());
                }
                Err(e) => {
                    count(conn.traffic.since(before));
                    warn!(%peer, error = %e, "peer failed; trying the next one");
                    last = e.into();
                }
            }
        }
        Err(last)
    }

    /// Re-put the publisher-signed items of the followed repositories this node propagates
    /// (BEP 44 lets anyone store an item signed by its owner). Returns how many were stored;
    /// a newer item already in the DHT is not an error.
    pub async fn republish_followed(&self) -> usize {
        let mut stored = 0;
        for (id, f) in self.state_snapshot().followed {
            let (Some(item), false) = (&f.item, f.propagated.is_empty()) else {
                continue;
            };
            let Ok((publisher, name)) = parse_repo_ref(&id) else {
                continue;
            };
            let (Ok(value), Ok(sig)) = (hex::decode(&item.value), hex::decode(&item.signature))
            else {
                continue;
            };
            let Ok(sig) = <[u8; 64]>::try_from(sig) else {
                continue;
            };
            match self
                .dht
                .put_signed_item(&publisher, &name, &value, item.seq, &sig)
                .await
            {
                Ok(_) => stored += 1,
                Err(DhtError::Stale { .. }) => {}
                Err(e) => warn!(repo = %id, error = %e, "re-putting the publisher's item failed"),
            }
        }
        stored
    }

    /// One round of duties: republish shared repositories when due, poll followed ones.
    pub async fn tick(
        &self,
        now: i64,
        republish: bool,
    ) -> Vec<(String, Result<Vec<RefReport>, String>)> {
        let state = self.state_snapshot();
        let mut out = Vec::new();
        if republish {
            self.republish_followed().await;
            for name in state.shared.keys() {
                if let Err(e) = self.publish(name, now).await {
                    warn!(repo = %name, error = %e, "republish failed");
                }
            }
        }
        let mut jobs = Vec::new();
        for (id, f) in &state.followed {
            let Ok((publisher, name)) = parse_repo_ref(id) else {
                out.push((id.clone(), Err(format!("bad followed entry {id:?}"))));
                continue;
            };
            // Re-announce what we propagate, so lookups keep finding us (BEP 5 announces expire).
            if republish
                && !f.propagated.is_empty()
                && let Err(e) = self
                    .dht
                    .announce(&publisher, &name, self.tcp_addr.port())
                    .await
            {
                warn!(repo = %id, error = %e, "re-announce failed");
            }
            jobs.push((id.clone(), publisher, name));
        }
        // Different repositories are independent (own directory, own state entry), so their
        // polls overlap, a bounded number at a time.
        let polled: Vec<_> = stream::iter(jobs)
            .map(|(id, publisher, name)| async move {
                let r = self
                    .poll(&publisher, &name, now)
                    .await
                    .map_err(|e| e.to_string());
                (id, r)
            })
            .buffer_unordered(MAX_CONCURRENT_POLLS)
            .collect()
            .await;
        out.extend(polled);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Run until the task is cancelled: poll every `poll_interval_secs`, republish every
    /// [`crate::dht::REPUBLISH_INTERVAL`]. The clock is read here, at the top of the daemon.
    pub async fn run(&self) {
        let poll = Duration::from_secs(self.config.poll_interval_secs).max(MIN_POLL_INTERVAL);
        let mut since_publish = Duration::ZERO;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let republish = since_publish >= crate::dht::REPUBLISH_INTERVAL;
            if republish {
                since_publish = Duration::ZERO;
            }
            for (id, r) in self.tick(now, republish).await {
                match r {
                    Ok(reports) => {
                        for rep in reports {
                            info!(repo = %id, r#ref = %rep.name, outcome = %rep.outcome, detail = %rep.detail, "poll");
                        }
                    }
                    Err(e) => warn!(repo = %id, error = %e, "poll failed"),
                }
            }
            tokio::time::sleep(poll).await;
            since_publish += poll;
        }
    }

    /// A summary for `gt node status`.
    pub fn status(&self) -> Status {
        let state = self.state_snapshot();
        let traffic = self.traffic.snapshot();
        Status {
            public_key: hex::encode(self.public_key()),
            tcp: self.tcp_addr.to_string(),
            dht: self.dht.local_addr().to_string(),
            shared: state
                .shared
                .iter()
                .map(|(n, s)| {
                    let t = traffic
                        .get(&transfer::repo_id(&self.public_key(), n))
                        .copied()
                        .unwrap_or_default();
                    SharedStatus {
                        name: n.clone(),
                        path: s.path.clone(),
                        seq: s.seq,
                        bytes_in: t.served.bytes_in,
                        bytes_out: t.served.bytes_out,
                    }
                })
                .collect(),
            followed: state
                .followed
                .iter()
                .map(|(id, f)| {
                    let t = traffic.get(id).copied().unwrap_or_default();
                    FollowedStatus {
                        id: id.clone(),
                        last_seq: f.last_seq,
                        propagated: f.propagated.len(),
                        rejected: f.rejected.len(),
                        bytes_in: t.fetched.bytes_in,
                        bytes_out: t.served.bytes_out,
                        requests_out: t.fetched.bytes_out,
                        requests_in: t.served.bytes_in,
                    }
                })
                .collect(),
            peers: self
                .traffic
                .peers()
                .into_iter()
                .map(|p| PeerStatus {
                    repo: p.repo,
                    role: p.role.as_str().to_owned(),
                    address: p.address,
                    node_key: p.node_key.map(hex::encode),
                    bytes_in: p.traffic.bytes_in,
                    bytes_out: p.traffic.bytes_out,
                    connections: p.connections,
                    last_seen: p.last_seen,
                })
                .collect(),
        }
    }
}

/// `gt node status` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Node key, hex.
    pub public_key: String,
    /// Transfer service address.
    pub tcp: String,
    /// DHT address.
    pub dht: String,
    /// Shared repositories.
    pub shared: Vec<SharedStatus>,
    /// Followed repositories.
    pub followed: Vec<FollowedStatus>,
    /// Transfer peers this node talked to since start, per repository and role.
    pub peers: Vec<PeerStatus>,
}

/// One transfer peer in [`Status`] (see [`transfer::PeerTraffic`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// `<publisher hex>/<name>`.
    pub repo: String,
    /// `fetch` (this node asked) or `serve` (this node answered).
    pub role: String,
    /// `ip:port` of a serving node; only the IP of a fetching one.
    pub address: String,
    /// The key the peer proved in HELLO (serving nodes only), hex.
    pub node_key: Option<String>,
    /// Bytes received from it for this repository.
    pub bytes_in: u64,
    /// Bytes sent to it for this repository.
    pub bytes_out: u64,
    /// Connections.
    pub connections: u64,
    /// Last time bytes were counted, unix seconds.
    pub last_seen: i64,
}

/// One shared repository in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedStatus {
    /// Name.
    pub name: String,
    /// Path.
    pub path: PathBuf,
    /// Last seq put.
    pub seq: Option<i64>,
    /// Bytes of requests received from peers fetching it since start.
    pub bytes_in: u64,
    /// Bytes served to peers since start.
    pub bytes_out: u64,
}

/// One followed repository in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowedStatus {
    /// `<publisher hex>/<name>`.
    pub id: String,
    /// Last seq acted on.
    pub last_seq: Option<i64>,
    /// Refs propagated.
    pub propagated: usize,
    /// Refs rejected.
    pub rejected: usize,
    /// Bytes received for it since start, in answers to this node's fetches.
    pub bytes_in: u64,
    /// Bytes served for it to other nodes since start (not this node's own requests).
    pub bytes_out: u64,
    /// Bytes of this node's own requests for it (HELLO, WANT_OBJECT, WANT_PACK).
    pub requests_out: u64,
    /// Bytes of requests received from nodes fetching it from this one.
    pub requests_in: u64,
}

/// Objects a follower may serve for its propagated refs: each ref value and the tags it points
/// through (plus, via packs, everything they reach: checked by [`Served::allow`]).
pub type AllowSet = HashSet<ObjectId>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::new(tmp.path().join("node"));
        assert_eq!(dd.load_config().unwrap(), NodeConfig::default());
        let cfg = NodeConfig {
            bootstrap: vec!["127.0.0.1:6000".into()],
            poll_interval_secs: 30,
            ..NodeConfig::default()
        };
        dd.save_config(&cfg).unwrap();
        assert_eq!(dd.load_config().unwrap(), cfg);
        std::fs::write(dd.config(), "bootstrap = []\nbogus = 1\n").unwrap();
        assert!(matches!(dd.load_config(), Err(NodeError::Parse { .. })));
        // Defaults never point at a public network: no bootstrap, loopback binds.
        let d = NodeConfig::default();
        assert!(d.bootstrap.is_empty() && d.dht_bind.is_loopback() && d.listen.ip().is_loopback());
    }

    #[test]
    fn key_is_created_once_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::new(tmp.path());
        let k1 = dd.load_or_create_key().unwrap();
        let k2 = dd.load_or_create_key().unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dd.key()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dd.key(), "zz\n").unwrap();
        assert!(matches!(
            dd.load_or_create_key(),
            Err(NodeError::Parse { .. })
        ));
    }

    #[test]
    fn state_is_replaced_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::new(tmp.path());
        assert_eq!(dd.load_state().unwrap(), State::default());
        let mut s = State::default();
        s.shared.insert(
            "demo".into(),
            SharedRepo {
                path: "/x".into(),
                seq: Some(5),
            },
        );
        dd.save_state(&s).unwrap();
        // A temporary file left by a writer killed before its rename is ignored.
        std::fs::write(tmp.path().join(".tmpXYZ"), b"{half").unwrap();
        assert_eq!(dd.load_state().unwrap(), s);
        std::fs::write(dd.state(), br#"{"version": 99}"#).unwrap();
        assert!(matches!(dd.load_state(), Err(NodeError::Parse { .. })));
    }

    #[test]
    fn repo_refs_parse() {
        let key = "ab".repeat(32);
        let (k, n) = parse_repo_ref(&format!("{key}/demo")).unwrap();
        assert_eq!((k, n.as_str()), ([0xab; 32], "demo"));
        for bad in ["demo", "ab/demo", &format!("{key}/"), &format!("{key}/a/b")] {
            assert!(parse_repo_ref(bad).is_err(), "{bad}");
        }
    }
}
