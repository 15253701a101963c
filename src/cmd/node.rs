//! `gt node`: run a gt-node daemon (`run`), hand it repositories to share or follow (`share`,
//! `follow`), show what it did (`status`), and start a loopback DHT for demos (`testnet`).
//!
//! The daemon owns its data directory. The other subcommands talk to it through that directory:
//! `share`/`follow` drop a request file into `<data-dir>/inbox/` (applied at once by a running
//! daemon, or at its next start) and wait for the daemon's answer; `status` reads the
//! `status.json` the daemon rewrites after every round. No socket, no extra protocol.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use gt_node::node::{
    DataDir, MIN_POLL_INTERVAL, Node, PeerStatus, RefReport, parse_repo_ref, write_atomic,
};
use gt_node::policy_gate::PolicyGate;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::exit::Code;

/// How long `share`/`follow` wait for a running daemon to answer (a publish is a few bounded
/// DHT operations).
pub const REQUEST_WAIT: Duration = Duration::from_secs(120);

/// How often the daemon looks at its inbox.
pub const INBOX_INTERVAL: Duration = Duration::from_millis(250);

/// Decisions remembered per followed repository in `status.json` (the newest).
pub const MAX_DECISIONS_SHOWN: usize = 100;

/// `gt node` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Args)]
struct DirArg {
    /// The node's data directory (repositories, node key, state, config.toml).
    #[arg(long, value_name = "DIR", env = "GT_NODE_DIR")]
    data_dir: Option<PathBuf>,
}

impl DirArg {
    fn dir(&self) -> anyhow::Result<DataDir> {
        match &self.data_dir {
            Some(d) => Ok(DataDir::new(absolute(d)?)),
            None => {
                let home = std::env::var_os("HOME").context("no --data-dir and no $HOME")?;
                Ok(DataDir::new(PathBuf::from(home).join(".gt-node")))
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the daemon: join the DHT, serve shared repositories, follow, decide, propagate.
    Run(RunArgs),
    /// Share (publish) a repository's refs under NAME; run it again after the refs change.
    Share {
        #[command(flatten)]
        dir: DirArg,
        /// The repository (bare or with a work tree).
        repo: PathBuf,
        /// Published name (default: the directory name without `.git`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Follow PUBLISHER/NAME (publisher: the sharing node's key, 64 hex digits).
    Follow {
        #[command(flatten)]
        dir: DirArg,
        /// `<publisher key hex>/<name>`.
        repo: String,
    },
    /// Followed and shared repositories, their refs, each decision with its reason, traffic.
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Run a local DHT of N nodes on 127.0.0.1, print its bootstrap addresses, run until killed.
    Testnet {
        /// Number of DHT nodes.
        #[arg(long, default_value_t = 8)]
        nodes: usize,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    dir: DirArg,
    /// DHT bootstrap node HOST:PORT (repeatable; replaces config.toml's list). Without any, the
    /// config's list is used; an empty list means no bootstrap (this node starts its own network),
    /// never a public one.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
    /// Address the transfer service listens on (e.g. 127.0.0.1:7000).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// DHT UDP port (0: any).
    #[arg(long, value_name = "PORT")]
    dht_port: Option<u16>,
    /// Policy file (repeatable; adds to config.toml's `policy`).
    #[arg(long, value_name = "FILE")]
    policy: Vec<PathBuf>,
    /// Keyring file or directory (repeatable; adds to config.toml's `keyring`).
    #[arg(long, value_name = "PATH")]
    keyring: Vec<PathBuf>,
    /// Seconds between polls of followed repositories (at least 5).
    #[arg(long, value_name = "SECS")]
    poll_interval: Option<u64>,
    /// Largest pack accepted for one ref update, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_pack_bytes: Option<u64>,
}

/// A request left in the inbox by `share`/`follow`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Share { path: PathBuf, name: String },
    Follow { repo: String },
}

/// The daemon's answer to a request.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    ok: bool,
    message: String,
}

/// `status.json`, rewritten by the daemon after every round.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StatusFile {
    running: bool,
    pid: u32,
    public_key: String,
    tcp: String,
    dht: String,
    bootstrap: Vec<String>,
    dht_routing_nodes: usize,
    policy: Vec<PathBuf>,
    shared: Vec<SharedOut>,
    followed: Vec<FollowedOut>,
    /// Transfer peers met since start (per repository and role).
    #[serde(default)]
    peers: Vec<PeerStatus>,
    /// Data received in answers to this node's fetches, all repositories.
    bytes_in: u64,
    /// Data served to other nodes, all repositories (this node's own requests excluded).
    bytes_out: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SharedOut {
    name: String,
    path: PathBuf,
    seq: Option<i64>,
    #[serde(default)]
    bytes_in: u64,
    #[serde(default)]
    bytes_out: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct FollowedOut {
    id: String,
    last_seq: Option<i64>,
    refs: BTreeMap<String, String>,
    propagated: usize,
    rejected: usize,
    bytes_in: u64,
    bytes_out: u64,
    #[serde(default)]
    requests_out: u64,
    #[serde(default)]
    requests_in: u64,
    decisions: Vec<RefReport>,
}

/// Run `gt node`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.command {
        Sub::Run(a) => run_daemon(a),
        Sub::Share { dir, repo, name } => {
            let repo = absolute(&repo)?;
            let name = match name {
                Some(n) => n,
                None => default_name(&repo)?,
            };
            request(&dir.dir()?, &Request::Share { path: repo, name })
        }
        Sub::Follow { dir, repo } => {
            parse_repo_ref(&repo)?;
            request(&dir.dir()?, &Request::Follow { repo })
        }
        Sub::Status { dir, json } => status(&dir.dir()?, json),
        Sub::Testnet { nodes } => testnet(nodes),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}", p.display()))
}

fn default_name(repo: &Path) -> anyhow::Result<String> {
    let base = repo
        .file_name()
        .and_then(|n| n.to_str())
        .context("cannot derive a name from the repository path; use --name")?;
    Ok(base.strip_suffix(".git").unwrap_or(base).to_owned())
}

/// Decision time: `GT_AT` (unix seconds, for reproducible tests and demos) or the clock.
fn now() -> i64 {
    if let Some(t) = std::env::var("GT_AT")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn inbox(dir: &DataDir) -> PathBuf {
    dir.root().join("inbox")
}
fn pid_file(dir: &DataDir) -> PathBuf {
    dir.root().join("node.pid")
}
fn status_file(dir: &DataDir) -> PathBuf {
    dir.root().join("status.json")
}

/// The pid of the daemon running on `dir`, if one is.
fn running_pid(dir: &DataDir) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            // A zombie (state Z) is dead for our purposes.
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    alive.then_some(pid)
}

fn request(dir: &DataDir, req: &Request) -> anyhow::Result<Code> {
    let inbox = inbox(dir);
    std::fs::create_dir_all(&inbox).with_context(|| format!("{}", inbox.display()))?;
    let id = format!(
        "{}-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::process::id()
    );
    let path = inbox.join(format!("{id}.req"));
    write_atomic(&path, &serde_json::to_vec(req)?)?;
    if running_pid(dir).is_none() {
        println!(
            "queued: no node is running on {}; `gt node run` applies it at start",
            dir.root().display()
        );
        return Ok(Code::Ok);
    }
    let answer = inbox.join(format!("{id}.done"));
    let start = Instant::now();
    while start.elapsed() < REQUEST_WAIT {
        if let Ok(bytes) = std::fs::read(&answer) {
            let _ = std::fs::remove_file(&answer);
            let a: Answer = serde_json::from_slice(&bytes)?;
            if a.ok {
                println!("{}", a.message);
                return Ok(Code::Ok);
            }
            bail!("{}", a.message);
        }
        if running_pid(dir).is_none() {
            bail!("the node stopped before answering; the request stays queued");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the node did not answer within {}s; the request stays queued",
        REQUEST_WAIT.as_secs()
    )
}

fn status(dir: &DataDir, json: bool) -> anyhow::Result<Code> {
    let mut s: StatusFile = match std::fs::read(status_file(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("status.json")?,
        Err(_) => {
            let state = dir.load_state()?;
            StatusFile {
                shared: state
                    .shared
                    .iter()
                    .map(|(n, s)| SharedOut {
                        name: n.clone(),
                        path: s.path.clone(),
                        seq: s.seq,
                        bytes_in: 0,
                        bytes_out: 0,
                    })
                    .collect(),
                ..StatusFile::default()
            }
        }
    };
    if s.public_key.is_empty() && dir.key().exists() {
        s.public_key = hex(&dir.load_or_create_key()?.verifying_key().to_bytes());
    }
    s.running = running_pid(dir).is_some();
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(Code::Ok);
    }
    println!(
        "node {} ({})",
        s.public_key,
        if s.running { "running" } else { "stopped" }
    );
    println!(
        "  tcp {}  dht {}  routing nodes {}  bytes in {} out {}",
        s.tcp, s.dht, s.dht_routing_nodes, s.bytes_in, s.bytes_out
    );
    for sh in &s.shared {
        println!(
            "shared   {}  {}  seq {:?}  bytes served {}",
            sh.name,
            sh.path.display(),
            sh.seq,
            sh.bytes_out
        );
    }
    for f in &s.followed {
        println!(
            "followed {}  seq {:?}  bytes in {} out {} (own requests {})",
            f.id, f.last_seq, f.bytes_in, f.bytes_out, f.requests_out
        );
        for (r, oid) in &f.refs {
            println!("  {oid} {r}");
        }
        for d in &f.decisions {
            println!("  {:<9} {} {}  {}", d.outcome, d.name, d.new, d.detail);
        }
    }
    for p in &s.peers {
        println!(
            "peer     {} {}  {}  key {}  in {} out {}  connections {}  last seen {}",
            p.role,
            p.address,
            p.repo,
            p.node_key.as_deref().unwrap_or("-"),
            p.bytes_in,
            p.bytes_out,
            p.connections,
            p.last_seen
        );
    }
    Ok(Code::Ok)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn testnet(nodes: usize) -> anyhow::Result<Code> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    runtime()?.block_on(async {
        let net = gt_node::dht::testnet(nodes).await?;
        for b in &net.bootstrap {
            println!("bootstrap {b}");
        }
        println!("ready");
        use std::io::Write as _;
        std::io::stdout().flush()?;
        wait_for_signal().await;
        drop(net);
        Ok(Code::Ok)
    })
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn run_daemon(a: RunArgs) -> anyhow::Result<Code> {
    let dir = a.dir.dir()?;
    std::fs::create_dir_all(dir.root()).with_context(|| format!("{}", dir.root().display()))?;
    let mut cfg = dir.load_config()?;
    if !a.bootstrap.is_empty() {
        cfg.bootstrap = a.bootstrap.clone();
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(p) = a.dht_port {
        cfg.dht_port = p;
    }
    if let Some(p) = a.poll_interval {
        cfg.poll_interval_secs = p;
    }
    if let Some(m) = a.max_pack_bytes {
        cfg.max_pack_bytes = m;
    }
    for p in &a.policy {
        let p = absolute(p)?;
        if !cfg.policy.contains(&p) {
            cfg.policy.push(p);
        }
    }
    for k in &a.keyring {
        let k = absolute(k)?;
        if !cfg.keyring.contains(&k) {
            cfg.keyring.push(k);
        }
    }
    dir.save_config(&cfg)?;
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.root().join(p)
        }
    };
    let policies: Vec<PathBuf> = cfg.policy.iter().map(resolve).collect();
    let keyrings: Vec<PathBuf> = cfg.keyring.iter().map(resolve).collect();
    let gate = PolicyGate::new(policies, keyrings, Some(dir.root().join("gate")));
    let start_time = UNIX_EPOCH + Duration::from_secs(u64::try_from(now()).unwrap_or(0));
    gate.check(start_time)
        .context("the node's policy (--policy, config.toml `policy`)")?;
    let poll = Duration::from_secs(cfg.poll_interval_secs).max(MIN_POLL_INTERVAL);
    runtime()?.block_on(async move {
        let node = Node::start(dir.clone(), Arc::new(gate)).await?;
        write_atomic(&pid_file(&dir), std::process::id().to_string().as_bytes())?;
        println!(
            "node {} tcp {} dht {}",
            hex(&node.public_key()),
            node.tcp_addr(),
            node.dht().local_addr()
        );
        {
            use std::io::Write as _;
            std::io::stdout().flush()?;
        }
        let daemon = Daemon {
            node,
            dir: dir.clone(),
            decisions: RefCell::new(BTreeMap::new()),
            bootstrap: cfg.bootstrap.clone(),
            policy: cfg.policy.clone(),
        };
        // Publish what we share now (refs may have changed while we were down).
        for name in daemon.node.state_snapshot().shared.keys() {
            if let Err(e) = daemon.node.publish(name, now()).await {
                warn!(repo = %name, error = %e, "publish at start failed");
            }
        }
        daemon.write_status().await;
        let signal = wait_for_signal();
        tokio::pin!(signal);
        let republish = gt_node::dht::REPUBLISH_INTERVAL;
        let mut last_poll: Option<Instant> = None;
        let mut last_republish = Instant::now();
        loop {
            daemon.process_inbox().await;
            if last_poll.is_none_or(|t| t.elapsed() >= poll) {
                last_poll = Some(Instant::now());
                let due = last_republish.elapsed() >= republish;
                if due {
                    last_republish = Instant::now();
                }
                let results = daemon.round(due).await;
                for (id, r) in results {
                    daemon.record(&id, r);
                }
                daemon.write_status().await;
            }
            tokio::select! {
                _ = &mut signal => break,
                _ = tokio::time::sleep(INBOX_INTERVAL) => {}
            }
        }
        let mut s = daemon.status().await;
        s.running = false;
        let _ = write_atomic(
            &status_file(&dir),
            &serde_json::to_vec_pretty(&s).unwrap_or_default(),
        );
        let _ = std::fs::remove_file(pid_file(&dir));
        info!("node stopped");
        Ok(Code::Ok)
    })
}

/// The running node and what `status.json` shows of it. One task drives it (`block_on`), so
/// the decisions need no lock: a round and the inbox take turns at each `await`, and neither
/// holds them across one.
struct Daemon {
    node: Node,
    dir: DataDir,
    decisions: RefCell<BTreeMap<String, Vec<RefReport>>>,
    bootstrap: Vec<String>,
    policy: Vec<PathBuf>,
}

impl Daemon {
    /// One round of `Node::tick` (republish when `republish`, poll every followed
    /// repository), serving the inbox meanwhile: a `follow` or `share` request is answered
    /// within [`INBOX_INTERVAL`] of arriving, not after the whole round. A request is never
    /// cut short when the round ends: the inbox loop stops only between requests.
    async fn round(&self, republish: bool) -> Vec<(String, Result<Vec<RefReport>, String>)> {
        let ended = std::cell::Cell::new(false);
        let wake = tokio::sync::Notify::new();
        let round = async {
            let results = self.node.tick(now(), republish).await;
            ended.set(true);
            wake.notify_one();
            results
        };
        let inbox = async {
            while !ended.get() {
                tokio::select! {
                    _ = tokio::time::sleep(INBOX_INTERVAL) => self.process_inbox().await,
                    _ = wake.notified() => {}
                }
            }
        };
        tokio::join!(round, inbox).0
    }

    fn record(&self, id: &str, r: Result<Vec<RefReport>, String>) {
        match r {
            Ok(reports) => {
                let mut decisions = self.decisions.borrow_mut();
                for rep in reports {
                    info!(repo = %id, r#ref = %rep.name, new = %rep.new, outcome = %rep.outcome, "{}", rep.detail);
                    let list = decisions.entry(id.to_owned()).or_default();
                    list.retain(|d| d.name != rep.name);
                    list.push(rep);
                    if list.len() > MAX_DECISIONS_SHOWN {
                        list.remove(0);
                    }
                }
            }
            Err(e) => warn!(repo = %id, error = %e, "poll failed"),
        }
    }

    /// Apply every request in the inbox, oldest first, answering each.
    async fn process_inbox(&self) {
        let inbox = inbox(&self.dir);
        let Ok(entries) = std::fs::read_dir(&inbox) else {
            return;
        };
        let mut reqs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "req"))
            .collect();
        if reqs.is_empty() {
            return;
        }
        reqs.sort();
        for path in reqs {
            let answer = match std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<Request>(&b)?))
            {
                Ok(req) => self.apply(req).await,
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(message) => Answer { ok: true, message },
                Err(e) => {
                    warn!(request = %path.display(), error = %format!("{e:#}"), "request failed");
                    Answer {
                        ok: false,
                        message: format!("{e:#}"),
                    }
                }
            };
            let _ = std::fs::remove_file(&path);
            let _ = write_atomic(
                &path.with_extension("done"),
                &serde_json::to_vec(&answer).unwrap_or_default(),
            );
        }
        self.write_status().await;
    }

    async fn apply(&self, req: Request) -> anyhow::Result<String> {
        match req {
            Request::Share { path, name } => {
                let seq = self.node.share(&path, &name, now()).await?;
                Ok(format!(
                    "shared {}/{name} (seq {seq})",
                    hex(&self.node.public_key())
                ))
            }
            Request::Follow { repo } => {
                let (publisher, name) = parse_repo_ref(&repo)?;
                self.node.follow(&publisher, &name)?;
                // First poll now, not at the next round.
                let id = format!("{}/{name}", hex(&publisher));
                let r = self
                    .node
                    .poll(&publisher, &name, now())
                    .await
                    .map_err(|e| e.to_string());
                self.record(&id, r);
                Ok(format!("following {id}"))
            }
        }
    }

    async fn status(&self) -> StatusFile {
        let st = self.node.status();
        let mut followed = Vec::new();
        let (mut bytes_in, mut bytes_out) = (0, st.shared.iter().map(|s| s.bytes_out).sum());
        for f in st.followed {
            bytes_in += f.bytes_in;
            bytes_out += f.bytes_out;
            let refs = parse_repo_ref(&f.id)
                .ok()
                .and_then(|(p, n)| {
                    gt_node::store::Repo::open(self.dir.followed_repo(&p, &n))
                        .ok()?
                        .refs()
                        .ok()
                })
                .map(|r| {
                    r.into_iter()
                        .map(|(k, v)| (k, v.to_string()))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            followed.push(FollowedOut {
                decisions: self
                    .decisions
                    .borrow()
                    .get(&f.id)
                    .cloned()
                    .unwrap_or_default(),
                id: f.id,
                last_seq: f.last_seq,
                refs,
                propagated: f.propagated,
                rejected: f.rejected,
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
                requests_out: f.requests_out,
                requests_in: f.requests_in,
            });
        }
        StatusFile {
            running: true,
            pid: std::process::id(),
            public_key: st.public_key,
            tcp: st.tcp,
            dht: st.dht,
            bootstrap: self.bootstrap.clone(),
            dht_routing_nodes: self.node.dht().routing_nodes().await,
            policy: self.policy.clone(),
            shared: st
                .shared
                .iter()
                .map(|sh| SharedOut {
                    name: sh.name.clone(),
                    path: sh.path.clone(),
                    seq: sh.seq,
                    bytes_in: sh.bytes_in,
                    bytes_out: sh.bytes_out,
                })
                .collect(),
            followed,
            peers: st.peers,
            bytes_in,
            bytes_out,
        }
    }

    async fn write_status(&self) {
        let s = self.status().await;
        if let Err(e) = write_atomic(
            &status_file(&self.dir),
            &serde_json::to_vec_pretty(&s).unwrap_or_default(),
        ) {
            warn!(error = %e, "writing status.json failed");
        }
    }
}
