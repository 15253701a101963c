//! A thin async wrapper over the `mainline` DHT (BEP 5 peers, BEP 44 mutable items) with every
//! request bounded in time, item sizes checked before sending, and a loopback testnet builder.
//!
//! mainline runs each node as an actor on its own OS thread; its async API is channels, so it
//! works under tokio without coupling. Building a node or a testnet blocks (binding, seeding),
//! so those calls run in `spawn_blocking`.
//!
//! Network rule: a node is only ever bootstrapped from the list it is given. An empty list means
//! "first node of its own network" (`no_bootstrap`), never mainline's public default routers.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use futures_lite::StreamExt as _;
use mainline::async_dht::AsyncDht;
use mainline::errors::{ConcurrencyError, PutMutableError};
use mainline::{Dht, Id, MutableItem, SigningKey};

use tracing::warn;

use crate::announce::{self, AnnounceError};

/// Upper bound on any one DHT operation made through this wrapper (a lookup or a put walks the
/// network for a few round trips; on loopback that takes ~50–120 ms, on the internet seconds).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Per-UDP-request timeout given to mainline (its default is 2 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a node re-puts its items and re-announces itself. mainline's own storage is an LRU
/// without expiry, but other implementations drop items after about 2 h and announces after
/// about 30 min (BEP 5 suggests peers re-announce), so every 20 minutes keeps both alive.
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// Most peer addresses collected by one [`DhtNode::find_peers`] lookup.
pub const MAX_PEERS_PER_LOOKUP: usize = 64;

/// How a node joins the DHT.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// `host:port` bootstrap nodes. Empty: start a network of one (no bootstrap).
    pub bootstrap: Vec<String>,
    /// Address to bind the UDP socket to.
    pub bind: Ipv4Addr,
    /// UDP port; 0 lets the OS pick one (never mainline's default 6881 guess).
    pub port: u16,
    /// Store items and peers for others (BEP 44 storage needs server mode).
    pub server_mode: bool,
}

impl DhtConfig {
    /// A loopback node bootstrapped from `bootstrap`, on an OS-chosen port, in server mode.
    pub fn loopback(bootstrap: &[String]) -> Self {
        DhtConfig {
            bootstrap: bootstrap.to_vec(),
            bind: Ipv4Addr::LOCALHOST,
            port: 0,
            server_mode: true,
        }
    }
}

/// DHT failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// Binding the UDP socket or starting the node failed.
    #[error("could not start a DHT node on {bind}:{port}: {source}")]
    Start {
        /// Bind address.
        bind: Ipv4Addr,
        /// Port asked for.
        port: u16,
        /// Cause.
        source: std::io::Error,
    },
    /// Building the testnet failed.
    #[error("could not build a {nodes}-node testnet: {source}")]
    Testnet {
        /// Requested size.
        nodes: usize,
        /// Cause.
        source: std::io::Error,
    },
    /// The value, salt or name would be refused by the network (checked before sending).
    #[error(transparent)]
    Item(#[from] AnnounceError),
    /// The put was refused because a newer item (higher seq) is already stored, or the CAS
    /// value did not match.
    #[error("put of seq {seq} refused: {reason}")]
    Stale {
        /// The seq we tried to put.
        seq: i64,
        /// mainline's reason.
        reason: String,
    },
    /// The network did not answer (no node stored the item, or a lookup found nothing in time).
    #[error("{operation}: {reason}")]
    Query {
        /// What we were doing.
        operation: &'static str,
        /// mainline's reason.
        reason: String,
    },
    /// The operation did not finish within [`OPERATION_TIMEOUT`].
    #[error("{operation} did not finish within {timeout:?}")]
    Timeout {
        /// What we were doing.
        operation: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// The blocking start-up task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(String),
}

/// One DHT node.
#[derive(Debug, Clone)]
pub struct DhtNode {
    dht: AsyncDht,
    addr: SocketAddrV4,
}

async fn bounded<T>(operation: &'static str, fut: impl Future<Output = T>) -> Result<T, DhtError> {
    tokio::time::timeout(OPERATION_TIMEOUT, fut)
        .await
        .map_err(|_| DhtError::Timeout {
            operation,
            timeout: OPERATION_TIMEOUT,
        })
}

impl DhtNode {
    /// Start a node as configured (blocking work in `spawn_blocking`).
    pub async fn start(cfg: &DhtConfig) -> Result<Self, DhtError> {
        let cfg = cfg.clone();
        let (bind, port) = (cfg.bind, cfg.port);
        let dht = tokio::task::spawn_blocking(move || {
            let mut b = Dht::builder();
            if cfg.bootstrap.is_empty() {
                b.no_bootstrap();
            } else {
                b.bootstrap(&cfg.bootstrap);
            }
            b.bind_address(cfg.bind)
                .port(cfg.port)
                .request_timeout(REQUEST_TIMEOUT);
            if cfg.server_mode {
                b.server_mode();
            }
            b.build()
        })
        .await
        .map_err(|e| DhtError::Join(e.to_string()))?
        .map_err(|source| DhtError::Start { bind, port, source })?
        .as_async();
        let addr = bounded("node info", dht.info()).await?.local_addr();
        Ok(DhtNode { dht, addr })
    }

    /// The node's UDP address, to give to others as a bootstrap.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Number of nodes in the routing table (shown by `gt node status`).
    pub async fn routing_nodes(&self) -> usize {
        bounded("routing table", self.dht.to_bootstrap())
            .await
            .map_or(0, |v| v.len())
    }

    /// Wait until the node has joined its network (bounded).
    pub async fn bootstrapped(&self) -> Result<bool, DhtError> {
        bounded("bootstrap", self.dht.bootstrapped()).await
    }

    /// Put the item for `repo` with `value` and `seq`, signed by `key` and salted by the name.
    /// Sizes are checked first; `cas` is the seq the caller believes is current. Returns the
    /// number of nodes that stored it.
    pub async fn put_item(
        &self,
        key: &SigningKey,
        repo: &str,
        value: &[u8],
        seq: i64,
        cas: Option<i64>,
    ) -> Result<u32, DhtError> {
        announce::check_value_size(value)?;
        let salt = announce::salt(repo)?;
        let item = MutableItem::new(key.clone(), value, seq, Some(&salt));
        match bounded("put item", self.dht.put_mutable(item, cas)).await? {
            Ok(outcome) => Ok(outcome.stored_at),
            Err(PutMutableError::Concurrency(c)) => Err(DhtError::Stale {
                seq,
                reason: match c {
                    ConcurrencyError::NotMostRecent => "a more recent item is stored".into(),
                    ConcurrencyError::CasFailed => "the CAS value did not match".into(),
                    other => other.to_string(),
                },
            }),
            Err(PutMutableError::Query(q)) => Err(DhtError::Query {
                operation: "put item",
                reason: q.to_string(),
            }),
        }
    }

    /// Put an item exactly as its publisher signed it (a propagating node keeping it alive).
    /// The signature is checked by the storing nodes; the size is checked here first.
    pub async fn put_signed_item(
        &self,
        publisher: &[u8; 32],
        repo: &str,
        value: &[u8],
        seq: i64,
        signature: &[u8; 64],
    ) -> Result<u32, DhtError> {
        announce::check_value_size(value)?;
        let salt = announce::salt(repo)?;
        let item =
            MutableItem::new_signed_unchecked(*publisher, *signature, value, seq, Some(&salt));
        match bounded("put signed item", self.dht.put_mutable(item, None)).await? {
            Ok(outcome) => Ok(outcome.stored_at),
            Err(PutMutableError::Concurrency(c)) => Err(DhtError::Stale {
                seq,
                reason: c.to_string(),
            }),
            Err(PutMutableError::Query(q)) => Err(DhtError::Query {
                operation: "put signed item",
                reason: q.to_string(),
            }),
        }
    }

    /// The most recent item for `repo` of `publisher` (signature and target already verified by
    /// mainline), or `None` if no node has one. Answers that failed mainline's check are logged
    /// (see [`DhtNode::get_item_newer_than`]).
    pub async fn get_item(
        &self,
        publisher: &[u8; 32],
        repo: &str,
    ) -> Result<Option<MutableItem>, DhtError> {
        self.lookup(publisher, repo, None).await
    }

    /// The first item found with seq greater than `seq` (a cheaper "anything new?" poll), or
    /// `None`.
    ///
    /// Hostile answers never get through, and each is named in the log: an item whose seq is
    /// not greater than `seq` (a stale or replayed announcement; honest nodes answer "no more
    /// recent value" instead) is dropped with "ignoring a stale DHT item"; an answer whose BEP 44
    /// signature does not verify for `publisher`'s key and this repository's salt (an altered
    /// value, another key's signature, another salt) is dropped by mainline's reader-side check
    /// (`MutableItem::from_dht_message`), which counts it, and is logged here as "refused N DHT
    /// answers".
    pub async fn get_item_newer_than(
        &self,
        publisher: &[u8; 32],
        repo: &str,
        seq: i64,
    ) -> Result<Option<MutableItem>, DhtError> {
        self.lookup(publisher, repo, Some(seq)).await
    }

    async fn lookup(
        &self,
        publisher: &[u8; 32],
        repo: &str,
        newer_than: Option<i64>,
    ) -> Result<Option<MutableItem>, DhtError> {
        let salt = announce::salt(repo)?;
        let id = format!("{}/{repo}", hex::encode(publisher));
        let query = self
            .dht
            .get_mutable_detailed(publisher, Some(&salt), newer_than);
        let mut items = query.items;
        let fut = async {
            let mut best: Option<MutableItem> = None;
            while let Some(item) = items.next().await {
                match newer_than {
                    // Nodes may answer with anything; keep only what really is newer.
                    Some(last) if item.seq() <= last => {
                        warn!(
                            repo = %id, seq = item.seq(), last_seq = last,
                            "ignoring a stale DHT item for {id}: seq {} is not newer than {last}, the last one acted on; refs unchanged",
                            item.seq()
                        );
                    }
                    // The first newer item is enough for a poll.
                    Some(_) => return (Some(item), false),
                    None => {
                        if best.as_ref().is_none_or(|b| item.seq() > b.seq()) {
                            best = Some(item);
                        }
                    }
                }
            }
            (best, true)
        };
        let (item, finished) = bounded("get item", fut).await?;
        if finished {
            // The lookup is over, so its counters are final. mainline's receiver panics if the
            // query was dropped: run it as a task so that cannot reach the caller.
            let outcome = tokio::spawn(query.outcome.recv());
            if let Ok(Ok(o)) = tokio::time::timeout(OPERATION_TIMEOUT, outcome).await
                && o.invalid_values > 0
            {
                warn!(
                    repo = %id, refused = o.invalid_values,
                    "refused {} DHT answer(s) for {id}: the BEP 44 signature does not verify for the publisher's key and this repository's salt (forged or altered item); nothing taken from them",
                    o.invalid_values
                );
            }
        }
        Ok(item)
    }

    /// Announce (BEP 5) that this node serves `repo` of `publisher` on TCP `port`.
    pub async fn announce(
        &self,
        publisher: &[u8; 32],
        repo: &str,
        port: u16,
    ) -> Result<(), DhtError> {
        announce::validate_repo_name(repo)?;
        let ih =
            Id::from_bytes(announce::info_hash(publisher, repo)).map_err(|e| DhtError::Query {
                operation: "announce",
                reason: e.to_string(),
            })?;
        bounded("announce", self.dht.announce_peer(ih, Some(port)))
            .await?
            .map(|_| ())
            .map_err(|e| DhtError::Query {
                operation: "announce",
                reason: e.to_string(),
            })
    }

    /// Nodes that announced serving `repo` of `publisher` (at most [`MAX_PEERS_PER_LOOKUP`]).
    pub async fn find_peers(
        &self,
        publisher: &[u8; 32],
        repo: &str,
    ) -> Result<Vec<SocketAddrV4>, DhtError> {
        announce::validate_repo_name(repo)?;
        let ih =
            Id::from_bytes(announce::info_hash(publisher, repo)).map_err(|e| DhtError::Query {
                operation: "get_peers",
                reason: e.to_string(),
            })?;
        let mut stream = self.dht.get_peers(ih);
        let fut = async {
            let mut out: Vec<SocketAddrV4> = Vec::new();
            while let Some(batch) = stream.next().await {
                for peer in batch {
                    if !out.contains(&peer) {
                        out.push(peer);
                    }
                }
                if out.len() >= MAX_PEERS_PER_LOOKUP {
                    out.truncate(MAX_PEERS_PER_LOOKUP);
                    break;
                }
            }
            out
        };
        bounded("get_peers", fut).await
    }
}

/// A local DHT of `nodes` nodes on 127.0.0.1 (seeded routing tables). Keep it alive as long as
/// the network is needed; its `bootstrap` list is what other nodes join with.
pub async fn testnet(nodes: usize) -> Result<mainline::Testnet, DhtError> {
    tokio::task::spawn_blocking(move || {
        mainline::Testnet::builder(nodes)
            .bind_address(Ipv4Addr::LOCALHOST)
            .seeded(true)
            .build()
    })
    .await
    .map_err(|e| DhtError::Join(e.to_string()))?
    .map_err(|source| DhtError::Testnet { nodes, source })
}
