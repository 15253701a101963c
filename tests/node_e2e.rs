//! End-to-end tests of gt-node as users run it: a `gt node testnet` process (a loopback DHT),
//! several `gt node run` processes each with its own data directory and a real policy file,
//! real git repositories with tags signed by gpg with the test keys, and `git clone
//! gittorrent://…` through the `git-remote-gittorrent` binary. Nothing leaves 127.0.0.1.
//!
//! Waits are bounded polls of `gt node status --json` (the daemons poll the DHT every 5 s);
//! generous bounds keep them stable on a loaded 2-core machine, and no test asserts on time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{World, stderr, stdout};

/// Upper bound of every wait (a DHT round and a fetch on a loaded machine take seconds).
const WAIT: Duration = Duration::from_secs(180);

/// Poll period of the bounded waits.
const POLL: Duration = Duration::from_millis(300);

/// A policy propagating tags signed by the ed25519 test key (the shipped example).
fn propagate_policy() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/single-maintainer.kn"
    ))
}

/// The same grant, but only "accept": such a node takes the tag and never serves it on.
fn accept_policy(w: &World) -> PathBuf {
    let text = std::fs::read_to_string(propagate_policy())
        .unwrap()
        .replace("-> \"propagate\"", "-> \"accept\"");
    assert!(text.contains("\"accept\""));
    let p = w.path("accept-only.kn");
    std::fs::write(&p, text).unwrap();
    p
}

/// A child process killed (SIGKILL) when dropped; its stderr goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait (bounded) until `f` returns `Some`, else fail with `what` and `context()`.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let start = Instant::now();
    let max_rounds = (WAIT.as_millis() / POLL.as_millis()) as usize + 1;
    for _ in 0..max_rounds {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > WAIT {
            break;
        }
        std::thread::sleep(POLL);
    }
    panic!("timed out waiting for {what}\n{}", context());
}

/// `gt node testnet --nodes n`; returns the process and its bootstrap addresses.
fn testnet(w: &World, n: usize) -> (Proc, Vec<String>) {
    let log = w.path("testnet.log");
    let mut child = w
        .gt_cmd()
        .args(["node", "testnet", "--nodes", &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut boot = Vec::new();
    loop {
        let line = rx.recv_timeout(WAIT).expect("testnet prints its addresses");
        if line == "ready" {
            break;
        }
        let addr = line.strip_prefix("bootstrap ").unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        boot.push(addr);
    }
    assert_eq!(boot.len(), n);
    (Proc { child, log }, boot)
}

/// `gt node run` on data directory `name` with `policy`; waits until it is up.
fn node(w: &World, name: &str, policy: &Path, boot: &[String]) -> Proc {
    let dir = w.path(name);
    let log = w.path(&format!("{name}.log"));
    let mut c = w.gt_cmd();
    c.args(["node", "run", "--data-dir"])
        .arg(&dir)
        .arg("--policy")
        .arg(policy)
        .arg("--keyring")
        .arg(common::testkeys())
        .args(["--listen", "127.0.0.1:0", "--poll-interval", "5"]);
    for b in boot {
        c.args(["--bootstrap", b]);
    }
    let child = c
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let mut p = Proc { child, log };
    wait_for(
        &format!("node {name} to start"),
        || status(w, name)["running"].as_bool().filter(|r| *r),
        || p.log(),
    );
    assert!(p.running());
    p
}

fn status(w: &World, name: &str) -> serde_json::Value {
    let out = w
        .gt_cmd()
        .args(["node", "status", "--json", "--data-dir"])
        .arg(w.path(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn gt_node(w: &World, args: &[&str], name: &str) -> String {
    let out = w
        .gt_cmd()
        .args(["node"])
        .args(args)
        .arg("--data-dir")
        .arg(w.path(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "gt node {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn key(w: &World, name: &str) -> String {
    status(w, name)["public_key"].as_str().unwrap().to_owned()
}

/// The followed repository `id` in node `name`'s status.
fn followed(w: &World, name: &str, id: &str) -> Option<serde_json::Value> {
    status(w, name)["followed"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
}

/// The outcome of the last decision on `r` in node `name` for `id`.
fn outcome(w: &World, name: &str, id: &str, r: &str) -> Option<String> {
    followed(w, name, id)?["decisions"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == r)
        .map(|d| d["outcome"].as_str().unwrap_or("").to_owned())
}

/// Wait (bounded) until node `name`'s last decision on `r` is `want`.
fn wait_outcome(w: &World, name: &str, id: &str, r: &str, want: &str) {
    wait_for(
        &format!("{name}: {r} -> {want}"),
        || (outcome(w, name, id, r)? == want).then_some(()),
        || status(w, name).to_string(),
    );
}

/// The peer of node `name` with this repository, role and address, from its status.
fn peer(w: &World, name: &str, id: &str, role: &str, address: &str) -> Option<serde_json::Value> {
    status(w, name)["peers"]
        .as_array()?
        .iter()
        .find(|p| p["repo"] == id && p["role"] == role && p["address"] == address)
        .cloned()
}

/// The refs of the repository node `name` keeps for `id`.
fn repo_of(w: &World, name: &str, id: &str) -> PathBuf {
    let (publisher, repo) = id.split_once('/').unwrap();
    w.path(name)
        .join("repos")
        .join(publisher)
        .join(format!("{repo}.git"))
}

/// `size` bytes no compressor can shrink (xorshift), so a pack's size is known from below.
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A bare repository `pub.git` whose history holds a 256 KiB incompressible blob, plus the
/// work repository it is built in. Returns (work, bare, commit).
fn published(w: &World) -> (PathBuf, PathBuf, String) {
    let work = w.repo("work");
    std::fs::write(work.join("data.bin"), noise(256 * 1024, 7)).unwrap();
    w.git(&work, &["add", "."]);
    w.git(&work, &["commit", "-q", "-m", "data"]);
    let head = w.git(&work, &["rev-parse", "HEAD"]);
    let bare = w.bare("pub.git");
    (work, bare, head)
}

fn fsck(w: &World, repo: &Path) {
    w.git(repo, &["fsck", "--strict", "--no-dangling"]);
}

/// Refs of a repository as "name oid" lines, tags only.
fn tags(w: &World, repo: &Path) -> String {
    w.git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/tags",
        ],
    )
}

/// Push `spec` from the work repository to the published bare one.
fn push(w: &World, work: &Path, bare: &Path, spec: &str) {
    w.git(work, &["push", "-q", bare.to_str().unwrap(), spec]);
}

/// `gt node share` of the bare repository on node "a" under `name`; returns its output.
fn share(w: &World, bare: &Path, name: &str) -> String {
    gt_node(w, &["share", bare.to_str().unwrap(), "--name", name], "a")
}

/// The context printed when a wait on node `name` times out: its log and its status.
fn ctx(w: &World, p: &Proc, name: &str) -> String {
    format!("{}\n{}", p.log(), status(w, name))
}

/// Wait (bounded) until the tags of `repo` (kept by node `name`, process `p`) hold `oid`.
fn wait_tag(w: &World, p: &Proc, name: &str, repo: &Path, oid: &str, what: &str) {
    wait_for(
        what,
        || tags(w, repo).contains(oid).then_some(()),
        || ctx(w, p, name),
    );
}

/// `git clone [extra] gittorrent://{id} dest` through the `git-remote-gittorrent` binary, on
/// the testnet `boot`, deciding with `policy` and the test keyring; asserts that it succeeds.
fn clone_gittorrent(
    w: &World,
    extra: &[&str],
    id: &str,
    dest: &Path,
    boot: &[String],
    policy: &Path,
) {
    let helper = PathBuf::from(env!("CARGO_BIN_EXE_git-remote-gittorrent"));
    let path = format!(
        "{}:{}",
        helper.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = w
        .cmd("git")
        .args(["clone", "-q"])
        .args(extra)
        .arg(format!("gittorrent://{id}"))
        .arg(dest)
        .env("PATH", &path)
        .env("GT_BOOTSTRAP", boot.join(","))
        .env("GT_POLICY", policy)
        .env("GT_KEYRING", common::testkeys())
        .output()
        .unwrap();
    assert!(out.status.success(), "git clone: {}", stderr(&out));
}

/// The start most tests share: a loopback testnet of four nodes, the published repository
/// with a maintainer-signed v1 pushed, and node "a" (the shipped policy) sharing it as "proj".
/// Fields drop in order: node "a" goes before the testnet.
struct SharedV1 {
    a: Proc,
    tn: Proc,
    boot: Vec<String>,
    bare: PathBuf,
    head: String,
    v1: String,
    publisher: String,
    id: String,
}

fn shared_v1(w: &World) -> SharedV1 {
    let (tn, boot) = testnet(w, 4);
    let (work, bare, head) = published(w);
    let v1 = w.signed_tag(&work, "v1", &head, &["ed25519"]);
    push(w, &work, &bare, "refs/tags/v1");
    let a = node(w, "a", &propagate_policy(), &boot);
    share(w, &bare, "proj");
    let publisher = key(w, "a");
    let id = format!("{publisher}/proj");
    SharedV1 {
        a,
        tn,
        boot,
        bare,
        head,
        v1,
        publisher,
        id,
    }
}

#[test]
fn signed_tags_spread_by_policy_and_under_signed_ones_cost_only_the_tag() {
    let w = World::new(&["ed25519", "rsa2048"]);
    let (_tn, boot) = testnet(&w, 4);
    let (work, bare, head) = published(&w);
    // An under-signed tag (rsa2048 is not the maintainer) is all the repository holds at first.
    w.signed_tag(&work, "bad", &head, &["rsa2048"]);
    let propagate = propagate_policy();
    let accept = accept_policy(&w);

    let mut a = node(&w, "a", &propagate, &boot);
    push(&w, &work, &bare, "refs/tags/bad");
    let shared = share(&w, &bare, "proj");
    assert!(shared.contains("/proj (seq"), "{shared}");
    let id = format!("{}/proj", key(&w, "a"));

    // (2) B follows: the under-signed tag is rejected, B's refs stay empty, and B paid for the
    // tag object only (the history behind it is a 256 KiB incompressible blob).
    let mut b = node(&w, "b", &propagate, &boot);
    gt_node(&w, &["follow", &id], "b");
    wait_for(
        "B to reject refs/tags/bad",
        || (outcome(&w, "b", &id, "refs/tags/bad")? == "reject").then_some(()),
        || ctx(&w, &b, "b"),
    );
    let fb = followed(&w, "b", &id).unwrap();
    let bytes_in = fb["bytes_in"].as_u64().unwrap();
    assert!(
        bytes_in > 0 && bytes_in < 4096,
        "a rejected ref cost {bytes_in} bytes"
    );
    assert_eq!(tags(&w, &repo_of(&w, "b", &id)), "");
    let log = b.log();
    assert!(
        log.contains("policy decision: REJECT refs/tags/bad") && log.contains("why:"),
        "{log}"
    );

    // (1) A signed tag as the policy demands: shared on A, it reaches B.
    let v1 = w.signed_tag(&work, "v1", &head, &["ed25519"]);
    push(&w, &work, &bare, "refs/tags/v1");
    share(&w, &bare, "proj");
    let b_repo = repo_of(&w, "b", &id);
    wait_tag(&w, &b, "b", &b_repo, &v1, "v1 on B");
    assert_eq!(tags(&w, &b_repo), format!("refs/tags/v1 {v1}"));
    fsck(&w, &b_repo);
    wait_outcome(&w, "b", &id, "refs/tags/v1", "propagate");
    assert!(b.log().contains("policy decision: propagate refs/tags/v1"));

    // ... and, through B, C, with A gone.
    a.kill();
    let mut c = node(&w, "c", &propagate, &boot);
    gt_node(&w, &["follow", &id], "c");
    let c_repo = repo_of(&w, "c", &id);
    wait_tag(&w, &c, "c", &c_repo, &v1, "v1 on C (A is down)");
    assert_eq!(tags(&w, &c_repo), format!("refs/tags/v1 {v1}"));
    fsck(&w, &c_repo);
    // C could not even get `bad`: B never serves what it rejected, and A is down.
    wait_outcome(&w, "c", &id, "refs/tags/bad", "failed");
    assert_eq!(tags(&w, &c_repo), format!("refs/tags/v1 {v1}"));

    // `gt node status` lists the transfer peers met: C fetched from B (B's address and the key
    // B proved in HELLO), B served C; B's bytes out are what it served.
    let (b_tcp, b_key) = (
        status(&w, "b")["tcp"].as_str().unwrap().to_owned(),
        key(&w, "b"),
    );
    let c_peer = wait_for(
        "C to list B as a fetch peer",
        || peer(&w, "c", &id, "fetch", &b_tcp),
        || status(&w, "c").to_string(),
    );
    assert_eq!(c_peer["node_key"], b_key.as_str());
    assert!(
        c_peer["bytes_in"].as_u64().unwrap() > 256 * 1024,
        "{c_peer}"
    );
    assert!(c_peer["bytes_out"].as_u64().unwrap() > 0 && c_peer["last_seen"].as_i64().unwrap() > 0);
    let b_served = wait_for(
        "B to list a serve peer",
        || peer(&w, "b", &id, "serve", "127.0.0.1"),
        || status(&w, "b").to_string(),
    );
    assert!(
        b_served["bytes_out"].as_u64().unwrap() > 256 * 1024,
        "{b_served}"
    );
    assert!(b_served["node_key"].is_null());
    assert!(
        followed(&w, "b", &id).unwrap()["bytes_out"]
            .as_u64()
            .unwrap()
            > 256 * 1024
    );
    let human = gt_node(&w, &["status"], "c");
    assert!(
        human.contains(&format!("peer     fetch {b_tcp}  {id}  key {b_key}")),
        "{human}"
    );

    // (6) git clone gittorrent://… through the remote helper equals a direct clone for the
    // accepted tag: same ref value, same objects behind it, fsck clean; `bad` is not listed.
    let clone = w.path("clone");
    clone_gittorrent(&w, &[], &id, &clone, &boot, &propagate_policy());
    let direct = w.path("direct");
    w.git(
        w.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            bare.to_str().unwrap(),
            direct.to_str().unwrap(),
        ],
    );
    assert_eq!(tags(&w, &clone), format!("refs/tags/v1 {v1}"));
    let objects = |r: &Path| w.git(r, &["rev-list", "--objects", "refs/tags/v1"]);
    assert_eq!(objects(&clone), objects(&direct));
    fsck(&w, &clone);
    assert!(tags(&w, &direct).contains("refs/tags/bad"));

    // (3) D accepts but does not propagate: it takes v1 and never serves it. Once B and C (the
    // propagators) are gone, E finds the item in the DHT but no node serves it.
    let mut d = node(&w, "d", &accept, &boot);
    gt_node(&w, &["follow", &id], "d");
    let d_repo = repo_of(&w, "d", &id);
    wait_tag(&w, &d, "d", &d_repo, &v1, "v1 on D");
    wait_outcome(&w, "d", &id, "refs/tags/v1", "accept");
    let fd = followed(&w, "d", &id).unwrap();
    assert_eq!(fd["propagated"], 0);
    // D asked (its requests are counted apart) and served nothing: its bytes out are zero.
    assert!(fd["bytes_in"].as_u64().unwrap() > 256 * 1024, "{fd}");
    assert!(fd["requests_out"].as_u64().unwrap() > 0, "{fd}");
    assert_eq!(fd["bytes_out"], 0, "{fd}");
    assert_eq!(status(&w, "d")["bytes_out"], 0);
    b.kill();
    c.kill();
    let mut e = node(&w, "e", &propagate, &boot);
    gt_node(&w, &["follow", &id], "e");
    wait_for(
        "E to fail to find a server for v1",
        || (outcome(&w, "e", &id, "refs/tags/v1")? == "failed").then_some(()),
        || ctx(&w, &e, "e"),
    );
    assert_eq!(tags(&w, &repo_of(&w, "e", &id)), "");
    assert!(d.running() && e.running());
}

fn unhex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// (4) at process level: a peer announced for the repository that answers with a truncated
/// frame, an oversized frame header or garbage, and a followed publisher key that published
/// nothing (logged as "no DHT item from this publisher"). The follower logs each failure,
/// changes no ref, keeps running, and takes the tag once an honest node serves it. (Wrong
/// objects after a valid handshake, forged and oversized DHT items are covered at library
/// level: gt-node/tests/transfer.rs `hostile_peers_change_nothing`,
/// `limits_hold_at_their_boundaries`, gt-node/tests/dht.rs
/// `forged_items_are_refused_and_never_read`; stale items by
/// `stale_item_with_the_publisher_key_changes_nothing` below; forged and stale items handed to
/// a follower by a hostile DHT node by `hostile_dht_answers_stale_and_forged_items_change_nothing`.)
/// A DHT node announcing a test's own peer; fields drop in order: the node, then its runtime.
struct Announcer {
    _node: gt_node::dht::DhtNode,
    _rt: tokio::runtime::Runtime,
}

/// A DHT node on the testnet `boot` that announces `127.0.0.1:port` as a serving peer of
/// `publisher`'s `name` (a hostile or stalling peer of a test). Keep it alive while it matters.
fn announce_peer(boot: &[String], publisher: &str, name: &str, port: u16) -> Announcer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let node = rt.block_on(async {
        let d = gt_node::dht::DhtNode::start(&gt_node::dht::DhtConfig::loopback(boot))
            .await
            .unwrap();
        d.announce(&unhex32(publisher), name, port).await.unwrap();
        d
    });
    Announcer {
        _node: node,
        _rt: rt,
    }
}

#[test]
fn hostile_peers_and_unknown_publishers_change_nothing() {
    use std::io::{Read as _, Write as _};
    let w = World::new(&["ed25519"]);
    let SharedV1 {
        mut a,
        tn: _tn,
        boot,
        v1,
        publisher,
        id,
        ..
    } = shared_v1(&w);
    let policy = propagate_policy();
    // A goes away; its item stays in the DHT.
    a.kill();

    // The hostile peer: counts connections and answers each with something broken.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 512];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let reply: Vec<u8> = match i % 3 {
                // A frame announcing 100 bytes, then 10, then the connection closes.
                0 => [&100u32.to_be_bytes()[..], b"d1:ti1e1:x"].concat(),
                // A frame header far over the frame limit.
                1 => u32::MAX.to_be_bytes().to_vec(),
                // Not bencode at all.
                _ => [&8u32.to_be_bytes()[..], b"garbage!"].concat(),
            };
            let _ = s.write_all(&reply);
        }
    });
    let announcer = announce_peer(&boot, &publisher, "proj", port);

    let mut f = node(&w, "f", &policy, &boot);
    // A publisher nobody has heard of: following it finds nothing and harms nothing.
    let unknown = "ab".repeat(32);
    gt_node(&w, &["follow", &format!("{unknown}/ghost")], "f");
    gt_node(&w, &["follow", &id], "f");
    wait_for(
        "F to try the hostile peer three times",
        || (hits.load(std::sync::atomic::Ordering::SeqCst) >= 3).then_some(()),
        || ctx(&w, &f, "f"),
    );
    wait_outcome(&w, "f", &id, "refs/tags/v1", "failed");
    let log = f.log();
    assert!(log.contains("ref update failed"), "{log}");
    assert_eq!(tags(&w, &repo_of(&w, "f", &id)), "");
    assert!(f.running());
    // The unknown key is named in the log, not silently ignored.
    let no_item = format!("follow {unknown}/ghost: no DHT item from this publisher");
    wait_for(
        "F to log that the unknown publisher has no item",
        || f.log().contains(&no_item).then_some(()),
        || ctx(&w, &f, "f"),
    );
    let ghost = followed(&w, "f", &format!("{unknown}/ghost")).unwrap();
    assert!(ghost["last_seq"].is_null() && ghost["refs"] == serde_json::json!({}));

    // The honest node comes back (same key, publishes at start): F gets the tag.
    let _a = node(&w, "a", &policy, &boot);
    let f_repo = repo_of(&w, "f", &id);
    wait_tag(&w, &f, "f", &f_repo, &v1, "v1 on F");
    fsck(&w, &f_repo);
    assert!(f.running());
    drop(announcer);
}

/// Number of tags (each on its own 2 MiB commit) in the kill -9 test: a follower fetches them
/// ref after ref, so it can be caught between two of them or inside one.
const CRASH_TAGS: usize = 10;

/// (5) kill -9 of a follower in the middle of a fetch of several refs; restarted, it finishes
/// cleanly: every ref it has points at a complete history (fsck clean) at every moment, the
/// quarantine is emptied, and all tags arrive.
#[test]
fn follower_killed_mid_fetch_finishes_after_restart() {
    let w = World::new(&["ed25519"]);
    let (_tn, boot) = testnet(&w, 4);
    let work = w.repo("work");
    let bare = w.bare("pub.git");
    let mut want = Vec::new();
    for i in 0..CRASH_TAGS {
        std::fs::write(
            work.join("big.bin"),
            noise(2 * 1024 * 1024, 2 * i as u64 + 11),
        )
        .unwrap();
        w.git(&work, &["add", "."]);
        w.git(&work, &["commit", "-q", "-m", &format!("big {i}")]);
        let head = w.git(&work, &["rev-parse", "HEAD"]);
        let name = format!("v{i:02}");
        let oid = w.signed_tag(&work, &name, &head, &["ed25519"]);
        want.push(format!("refs/tags/{name} {oid}"));
    }
    push(&w, &work, &bare, "refs/tags/*");
    let want = want.join("\n");
    let policy = propagate_policy();
    let _a = node(&w, "a", &policy, &boot);
    share(&w, &bare, "big");
    let id = format!("{}/big", key(&w, "a"));

    let mut f = node(&w, "f", &policy, &boot);
    let f_repo = repo_of(&w, "f", &id);
    let quarantine = f_repo.join("gt-quarantine");
    let count = |r: &Path| -> usize {
        if !r.join("HEAD").exists() {
            return 0;
        }
        let out = w.git_output(r, &["for-each-ref", "refs/tags"]);
        stdout(&out).lines().count()
    };
    // Ask for the follow without waiting for the answer, and watch the fetch progress.
    let mut follow = w
        .gt_cmd()
        .args(["node", "follow", &id, "--data-dir"])
        .arg(w.path("f"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut caught = None;
    for _ in 0..20_000 {
        let n = count(&f_repo);
        let busy = std::fs::read_dir(&quarantine).is_ok_and(|mut d| d.next().is_some());
        if (n > 0 || busy) && n < CRASH_TAGS {
            f.kill();
            caught = Some(n);
            break;
        }
        if n == CRASH_TAGS || start.elapsed() > WAIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = follow.wait();
    let n = caught.unwrap_or_else(|| panic!("never caught the follower mid-fetch\n{}", f.log()));
    eprintln!("follower killed with {n} of {CRASH_TAGS} tags in");
    assert!(!f.running());
    // Whatever arrived before the kill is complete.
    fsck(&w, &f_repo);
    assert_eq!(count(&f_repo), n);
    let mut f = node(&w, "f", &policy, &boot);
    wait_for(
        "every tag on F after the restart",
        || (tags(&w, &f_repo) == want).then_some(()),
        || ctx(&w, &f, "f"),
    );
    fsck(&w, &f_repo);
    let left = std::fs::read_dir(&quarantine).map_or(0, |d| d.count());
    assert_eq!(left, 0, "quarantine not cleaned");
    assert!(f.running());
}

/// Follower "f" (process `f`) refused an item adding `refs/tags/evil`: its tags in `repo` are
/// still `refs_before`, its `last_seq` for `id` is still `seq`, fsck is clean, it runs.
fn assert_unmoved(w: &World, f: &mut Proc, repo: &Path, id: &str, refs_before: &str, seq: i64) {
    assert_eq!(tags(w, repo), refs_before);
    assert!(!tags(w, repo).contains("refs/tags/evil"));
    assert_eq!(
        followed(w, "f", id).unwrap()["last_seq"].as_i64(),
        Some(seq)
    );
    fsck(w, repo);
    assert!(f.running());
}

/// (4), stale seq, at process level: after a follower took a publisher's item (seq S), an item
/// signed with the publisher's real key (read from its data directory) but with seq S − 1 and a
/// ref set that moves v1 and adds a tag is put onto the same loopback testnet. The storing
/// nodes refuse it as not most recent (BEP 44 error 302, surfaced as `DhtError::Stale`), the DHT
/// keeps serving seq S, and over two further complete poll rounds of the follower (counted by
/// the once-per-round "no DHT item" line of a second, unknown followed key) its refs and
/// `last_seq` do not move and it keeps running. The follower itself logs nothing about the stale
/// item: it asks the DHT only for items newer than S (BEP 44 `seq` in `get`), and honest nodes
/// answer that with "no more recent value", so a stale item never reaches it (a hostile node
/// that hands one out anyway: `hostile_dht_answers_stale_and_forged_items_change_nothing`).
#[test]
fn stale_item_with_the_publisher_key_changes_nothing() {
    let w = World::new(&["ed25519"]);
    let SharedV1 {
        a: _a,
        tn: _tn,
        boot,
        head,
        v1,
        publisher,
        id,
        ..
    } = shared_v1(&w);
    let policy = propagate_policy();
    let mut f = node(&w, "f", &policy, &boot);
    let unknown = "cd".repeat(32);
    gt_node(&w, &["follow", &format!("{unknown}/ghost")], "f");
    gt_node(&w, &["follow", &id], "f");
    let f_repo = repo_of(&w, "f", &id);
    wait_tag(&w, &f, "f", &f_repo, &v1, "v1 on F");
    let seq = wait_for(
        "F to record the seq it acted on",
        || followed(&w, "f", &id)?["last_seq"].as_i64(),
        || status(&w, "f").to_string(),
    );
    let refs_before = tags(&w, &f_repo);

    // The stale item: the publisher's own key, a lower seq, v1 moved and a tag added.
    let sk = gt_node::node::DataDir::new(w.path("a"))
        .load_or_create_key()
        .unwrap();
    assert_eq!(sk.verifying_key().to_bytes(), unhex32(&publisher));
    let commit = gix::ObjectId::from_hex(head.as_bytes()).unwrap();
    let stale_refs: gt_node::announce::RefMap = [
        ("refs/tags/v1".to_owned(), commit),
        ("refs/tags/evil".to_owned(), commit),
    ]
    .into_iter()
    .collect();
    let stale = gt_node::announce::encode_item(&stale_refs).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (put, current) = rt.block_on(async {
        let d = gt_node::dht::DhtNode::start(&gt_node::dht::DhtConfig::loopback(&boot))
            .await
            .unwrap();
        assert!(d.bootstrapped().await.unwrap());
        let put = d.put_item(&sk, "proj", &stale.value, seq - 1, None).await;
        let current = d.get_item(&unhex32(&publisher), "proj").await.unwrap();
        (put, current)
    });
    assert!(
        matches!(put, Err(gt_node::dht::DhtError::Stale { .. })),
        "{put:?}"
    );
    assert_eq!(current.map(|i| i.seq()), Some(seq));

    // Two complete poll rounds of F after the put, then nothing has moved.
    let no_item = format!("follow {unknown}/ghost: no DHT item from this publisher");
    let rounds = f.log().matches(&no_item).count();
    wait_for(
        "two more poll rounds on F",
        || (f.log().matches(&no_item).count() >= rounds + 2).then_some(()),
        || f.log(),
    );
    assert_unmoved(&w, &mut f, &f_repo, &id, &refs_before, seq);
}

/// A bencode value: just enough of BEP 3's encoding to play a hostile DHT node (KRPC, BEP 5).
#[derive(Debug, Clone)]
enum Ben {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Ben>),
    Dict(std::collections::BTreeMap<Vec<u8>, Ben>),
}

impl Ben {
    fn parse(b: &[u8], pos: &mut usize) -> Option<Ben> {
        match *b.get(*pos)? {
            b'i' => {
                let end = *pos + b[*pos..].iter().position(|c| *c == b'e')?;
                let n = std::str::from_utf8(&b[*pos + 1..end]).ok()?.parse().ok()?;
                *pos = end + 1;
                Some(Ben::Int(n))
            }
            b'l' | b'd' => {
                let dict = b[*pos] == b'd';
                *pos += 1;
                let mut items = Vec::new();
                while *b.get(*pos)? != b'e' {
                    items.push(Ben::parse(b, pos)?);
                }
                *pos += 1;
                if !dict {
                    return Some(Ben::List(items));
                }
                let mut m = std::collections::BTreeMap::new();
                let mut it = items.into_iter();
                while let (Some(Ben::Bytes(k)), Some(v)) = (it.next(), it.next()) {
                    m.insert(k, v);
                }
                Some(Ben::Dict(m))
            }
            _ => {
                let colon = *pos + b[*pos..].iter().position(|c| *c == b':')?;
                let len: usize = std::str::from_utf8(&b[*pos..colon]).ok()?.parse().ok()?;
                let data = b.get(colon + 1..colon + 1 + len)?.to_vec();
                *pos = colon + 1 + len;
                Some(Ben::Bytes(data))
            }
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ben::Int(n) => out.extend(format!("i{n}e").bytes()),
            Ben::Bytes(b) => {
                out.extend(format!("{}:", b.len()).bytes());
                out.extend(b);
            }
            Ben::List(l) => {
                out.push(b'l');
                l.iter().for_each(|x| x.encode(out));
                out.push(b'e');
            }
            Ben::Dict(m) => {
                out.push(b'd');
                for (k, v) in m {
                    Ben::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
    fn get(&self, k: &str) -> Option<&Ben> {
        match self {
            Ben::Dict(m) => m.get(k.as_bytes()),
            _ => None,
        }
    }
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Ben::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

fn dict(entries: Vec<(&str, Ben)>) -> Ben {
    Ben::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// A BEP 44 item as a hostile node will hand it out: value, seq, the publisher key, a signature.
struct HostileItem {
    value: Vec<u8>,
    seq: i64,
    key: [u8; 32],
    sig: Vec<u8>,
}

/// A hostile DHT node on 127.0.0.1: answers pings, `find_node` (with no nodes), `get_peers` (no
/// peers) and every BEP 44 `get` with the next of `items` in turn. Returns its address and the
/// count of `get` queries answered.
fn hostile_dht(
    items: Vec<HostileItem>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = gets.clone();
    std::thread::spawn(move || {
        let id = Ben::Bytes(vec![0x5a; 20]);
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Some(msg) = Ben::parse(&buf[..n], &mut 0) else {
                continue;
            };
            let (Some(t), Some(q)) = (msg.get("t"), msg.get("q").and_then(Ben::bytes)) else {
                continue;
            };
            let r = match q {
                b"find_node" => dict(vec![("id", id.clone()), ("nodes", Ben::Bytes(vec![]))]),
                b"get_peers" => dict(vec![
                    ("id", id.clone()),
                    ("token", Ben::Bytes(b"tok".to_vec())),
                ]),
                b"get" => {
                    let i = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let item = &items[i % items.len()];
                    dict(vec![
                        ("id", id.clone()),
                        ("token", Ben::Bytes(b"tok".to_vec())),
                        ("v", Ben::Bytes(item.value.clone())),
                        ("k", Ben::Bytes(item.key.to_vec())),
                        ("sig", Ben::Bytes(item.sig.clone())),
                        ("seq", Ben::Int(item.seq)),
                    ])
                }
                _ => dict(vec![("id", id.clone())]),
            };
            let mut out = Vec::new();
            dict(vec![
                ("t", t.clone()),
                ("y", Ben::Bytes(b"r".to_vec())),
                ("r", r),
            ])
            .encode(&mut out);
            let _ = sock.send_to(&out, from);
        }
    });
    (addr, gets)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The publisher-signed item node `name` last acted on for `id` (from its state.json).
fn acted_item(w: &World, name: &str, id: &str) -> (i64, Vec<u8>, Vec<u8>) {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path(name).join("state.json")).unwrap()).unwrap();
    let item = &state["followed"][id]["item"];
    (
        item["seq"].as_i64().unwrap(),
        unhex(item["value"].as_str().unwrap()),
        unhex(item["signature"].as_str().unwrap()),
    )
}

/// (4) and stale announcements, at the reading side: a follower whose only DHT contact is a
/// hostile node. That node answers each BEP 44 `get` with, in turn, (a) a replay of the
/// publisher's genuine, correctly signed *older* item (seq S0 < S, the seq the follower acted
/// on) and (b) a forged newer item: seq S + 1 and a value adding `refs/tags/evil`, carrying
/// the publisher's key and its signature of item S (so the ed25519 check over
/// salt/seq/value fails). The follower logs "ignoring a stale DHT item … seq S0 is not newer
/// than S" for (a) and "refused 1 DHT answer(s) … signature does not verify" for (b), its refs
/// and `last_seq` do not move, and it keeps running.
#[test]
fn hostile_dht_answers_stale_and_forged_items_change_nothing() {
    let w = World::new(&["ed25519"]);
    let SharedV1 {
        a: _a,
        tn: _tn,
        boot,
        bare,
        head,
        v1,
        publisher,
        id,
        ..
    } = shared_v1(&w);
    let policy = propagate_policy();
    let mut f = node(&w, "f", &policy, &boot);
    gt_node(&w, &["follow", &id], "f");
    let f_repo = repo_of(&w, "f", &id);
    wait_tag(&w, &f, "f", &f_repo, &v1, "v1 on F");
    let s0 = wait_for(
        "F to record its item",
        || {
            let st: serde_json::Value =
                serde_json::from_slice(&std::fs::read(w.path("f").join("state.json")).ok()?)
                    .ok()?;
            st["followed"][&id]["item"]["seq"].as_i64()
        },
        || status(&w, "f").to_string(),
    );
    let (_, old_value, old_sig) = acted_item(&w, "f", &id);
    // The publisher shares again (next seq, same refs); F acts on it.
    share(&w, &bare, "proj");
    let s = wait_for(
        "F to act on the newer item",
        || {
            followed(&w, "f", &id)?["last_seq"]
                .as_i64()
                .filter(|s| *s > s0)
        },
        || ctx(&w, &f, "f"),
    );
    let (s_check, _, sig) = acted_item(&w, "f", &id);
    assert_eq!(s_check, s);
    let refs_before = tags(&w, &f_repo);
    f.kill();

    let evil: gt_node::announce::RefMap = [
        (
            "refs/tags/v1".to_owned(),
            gix::ObjectId::from_hex(head.as_bytes()).unwrap(),
        ),
        (
            "refs/tags/evil".to_owned(),
            gix::ObjectId::from_hex(head.as_bytes()).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let (hostile, gets) = hostile_dht(vec![
        HostileItem {
            value: old_value,
            seq: s0,
            key: unhex32(&publisher),
            sig: old_sig,
        },
        HostileItem {
            value: gt_node::announce::encode_item(&evil).unwrap().value,
            seq: s + 1,
            key: unhex32(&publisher),
            sig,
        },
    ]);
    // F comes back with the hostile node as its only bootstrap (replacing config.toml's list).
    let mut f = node(&w, "f", &policy, &[hostile]);
    let stale_line = format!("ignoring a stale DHT item for {id}: seq {s0} is not newer than {s}");
    let forged_line =
        format!("refused 1 DHT answer(s) for {id}: the BEP 44 signature does not verify");
    wait_for(
        "F to log the stale and the forged answer",
        || (f.log().contains(&stale_line) && f.log().contains(&forged_line)).then_some(()),
        || ctx(&w, &f, "f"),
    );
    assert!(gets.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert_unmoved(&w, &mut f, &f_repo, &id, &refs_before, s);
}

/// A remembered rejection is decided again when the policy changes: F's policy file first grants
/// only branches, so the maintainer-signed v1 is rejected (and remembered: no new seq, nothing
/// fetched again). The file is then replaced on disk by the shipped policy, which passes v1;
/// at its next poll the running node notices the policy digest changed, logs that it decides
/// the rejected ref again, and takes v1 (propagate), fsck clean, without a new item from the
/// publisher.
#[test]
fn rejection_is_redecided_when_the_policy_changes() {
    let w = World::new(&["ed25519"]);
    let SharedV1 {
        a: _a,
        tn: _tn,
        boot,
        v1,
        id,
        ..
    } = shared_v1(&w);
    let shipped = std::fs::read_to_string(propagate_policy()).unwrap();
    let branches_only = shipped.replace("ref_kind == \"tag\"", "ref_kind == \"branch\"");
    assert_ne!(branches_only, shipped);
    let f_policy = w.path("f-policy.kn");
    std::fs::write(&f_policy, &branches_only).unwrap();

    let mut f = node(&w, "f", &f_policy, &boot);
    gt_node(&w, &["follow", &id], "f");
    wait_outcome(&w, "f", &id, "refs/tags/v1", "reject");
    let f_repo = repo_of(&w, "f", &id);
    assert_eq!(tags(&w, &f_repo), "");
    let seq = followed(&w, "f", &id).unwrap()["last_seq"]
        .as_i64()
        .unwrap();
    assert_eq!(followed(&w, "f", &id).unwrap()["rejected"], 1);
    let line = format!("the policy changed since 1 ref(s) of {id} were rejected");
    assert!(!f.log().contains(&line));

    // The new policy replaces the old file (write, then rename over it).
    let tmp = w.path("f-policy.kn.new");
    std::fs::write(&tmp, &shipped).unwrap();
    std::fs::rename(&tmp, &f_policy).unwrap();
    wait_tag(&w, &f, "f", &f_repo, &v1, "v1 on F after the policy change");
    assert_eq!(tags(&w, &f_repo), format!("refs/tags/v1 {v1}"));
    fsck(&w, &f_repo);
    wait_outcome(&w, "f", &id, "refs/tags/v1", "propagate");
    assert!(f.log().contains(&line), "{}", f.log());
    let fs = followed(&w, "f", &id).unwrap();
    assert_eq!(
        (fs["rejected"].as_u64(), fs["propagated"].as_u64()),
        (Some(0), Some(1))
    );
    // The publisher put nothing new: the same item was decided again.
    assert_eq!(fs["last_seq"].as_i64(), Some(seq));
    assert!(f.running());
}

/// A publisher's ref deletion reaches followers as an update to the zero id, decided by each
/// follower's policy like any update (nothing is fetched; a deletion carries no signature, so
/// only a Conditions-only grant naming `operation == "delete"` allows it). F's policy adds such
/// a grant for this publisher (`announcer`): F deletes the tag and logs it. G runs the shipped
/// policy (deleting a published tag is rejected): it keeps the tag, logs the REJECT with its
/// reason, and remembers the refusal.
#[test]
fn publisher_deletions_are_decided_by_each_follower_policy() {
    let w = World::new(&["ed25519"]);
    let (_tn, boot) = testnet(&w, 4);
    let (work, bare, head) = published(&w);
    let v1 = w.signed_tag(&work, "v1", &head, &["ed25519"]);
    let v2 = w.signed_tag(&work, "v2", &head, &["ed25519"]);
    push(&w, &work, &bare, "refs/tags/*");
    let shipped = propagate_policy();
    let _a = node(&w, "a", &shipped, &boot);
    share(&w, &bare, "proj");
    let publisher = key(&w, "a");
    let id = format!("{publisher}/proj");
    let deletable = w.path("deletable.kn");
    std::fs::write(
        &deletable,
        format!(
            "{}\nKeyNote-Version: 2\nComment: the publisher may delete tags it announced.\n\
             Authorizer: \"POLICY\"\n\
             Conditions: app_domain == \"gittorrent\" && source == \"dht\" &&\n    \
             announcer == \"{publisher}\" && ref_kind == \"tag\" && operation == \"delete\"\n    \
             -> \"accept\";\n",
            std::fs::read_to_string(&shipped).unwrap()
        ),
    )
    .unwrap();
    let mut f = node(&w, "f", &deletable, &boot);
    let mut g = node(&w, "g", &shipped, &boot);
    gt_node(&w, &["follow", &id], "f");
    gt_node(&w, &["follow", &id], "g");
    let both = format!("refs/tags/v1 {v1}\nrefs/tags/v2 {v2}");
    let (f_repo, g_repo) = (repo_of(&w, "f", &id), repo_of(&w, "g", &id));
    for (n, r) in [("f", &f_repo), ("g", &g_repo)] {
        wait_for(
            &format!("v1 and v2 on {n}"),
            || (tags(&w, r) == both).then_some(()),
            || status(&w, n).to_string(),
        );
    }

    // The publisher deletes v2 and shares again.
    w.git(&bare, &["update-ref", "-d", "refs/tags/v2"]);
    share(&w, &bare, "proj");
    let zero = "0".repeat(40);
    wait_for(
        "F to delete v2",
        || (tags(&w, &f_repo) == format!("refs/tags/v1 {v1}")).then_some(()),
        || ctx(&w, &f, "f"),
    );
    wait_outcome(&w, "f", &id, "refs/tags/v2", "accept");
    assert!(
        f.log().contains(&format!(
            "deleted refs/tags/v2 of {id}: the publisher no longer announces it"
        )),
        "{}",
        f.log()
    );
    fsck(&w, &f_repo);
    wait_outcome(&w, "g", &id, "refs/tags/v2", "reject");
    let gs = followed(&w, "g", &id).unwrap();
    let d = gs["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "refs/tags/v2")
        .unwrap()
        .clone();
    assert_eq!(d["new"], zero.as_str());
    assert!(
        d["detail"].as_str().unwrap().contains("deletion of a tag")
            || d["detail"]
                .as_str()
                .unwrap()
                .contains("REJECT refs/tags/v2"),
        "{d}"
    );
    assert_eq!(gs["rejected"], 1);
    assert_eq!(tags(&w, &g_repo), both);
    assert!(
        g.log().contains("policy decision: REJECT refs/tags/v2"),
        "{}",
        g.log()
    );
    fsck(&w, &g_repo);
    assert!(f.running() && g.running());
}

/// Branch updates over the DHT, decided with their history: F's policy accepts this
/// publisher's branches when created or fast-forwarded (`fast_forward`, which needs the new
/// commit's ancestry: the gate reads it from the received pack, still in quarantine, and F's
/// repository). main is created on F, then fast-forwarded; a forced move to an unrelated commit
/// is rejected (`fast_forward` false, the ref stays, the quarantine is emptied); a move back to
/// an older commit is ignored as stale with a log line, at no cost.
#[test]
fn branch_updates_are_decided_with_their_history() {
    let w = World::new(&["ed25519"]);
    let (_tn, boot) = testnet(&w, 4);
    let (work, bare, c1) = published(&w);
    let push = |force: bool| {
        let mut args = vec!["push", "-q"];
        if force {
            args.push("--force");
        }
        args.extend([bare.to_str().unwrap(), "HEAD:refs/heads/main"]);
        w.git(&work, &args);
    };
    push(false);
    let _a = node(&w, "a", &propagate_policy(), &boot);
    share(&w, &bare, "proj");
    let publisher = key(&w, "a");
    let id = format!("{publisher}/proj");
    let policy = w.path("branches.kn");
    std::fs::write(
        &policy,
        format!(
            "KeyNote-Version: 2\nComment: this publisher's branches, created or fast-forwarded.\n\
             Authorizer: \"POLICY\"\n\
             Conditions: app_domain == \"gittorrent\" && source == \"dht\" &&\n    \
             announcer == \"{publisher}\" && ref_kind == \"branch\" &&\n    \
             (operation == \"create\" || fast_forward == \"true\") -> \"accept\";\n"
        ),
    )
    .unwrap();
    let mut f = node(&w, "f", &policy, &boot);
    gt_node(&w, &["follow", &id], "f");
    let f_repo = repo_of(&w, "f", &id);
    let main = || {
        let out = w.git_output(&f_repo, &["rev-parse", "-q", "--verify", "refs/heads/main"]);
        stdout(&out).trim().to_owned()
    };
    wait_for(
        "main created on F",
        || (main() == c1).then_some(()),
        || ctx(&w, &f, "f"),
    );
    fsck(&w, &f_repo);

    // A fast-forward is accepted.
    std::fs::write(work.join("next.txt"), "next\n").unwrap();
    w.git(&work, &["add", "."]);
    w.git(&work, &["commit", "-q", "-m", "next"]);
    let c2 = w.git(&work, &["rev-parse", "HEAD"]);
    push(false);
    share(&w, &bare, "proj");
    wait_for(
        "main fast-forwarded on F",
        || (main() == c2).then_some(()),
        || ctx(&w, &f, "f"),
    );
    wait_outcome(&w, "f", &id, "refs/heads/main", "accept");
    fsck(&w, &f_repo);

    // `git clone gittorrent://…` takes the branch through the same decision.
    let clone = w.path("clone.git");
    clone_gittorrent(&w, &["--bare"], &id, &clone, &boot, &policy);
    assert_eq!(w.git(&clone, &["rev-parse", "refs/heads/main"]), c2);
    fsck(&w, &clone);

    // A forced move to a commit that does not descend from c2 is rejected.
    w.git(&work, &["reset", "-q", "--hard", &c1]);
    std::fs::write(work.join("other.txt"), "other\n").unwrap();
    w.git(&work, &["add", "."]);
    w.git(&work, &["commit", "-q", "-m", "rewritten"]);
    push(true);
    share(&w, &bare, "proj");
    wait_outcome(&w, "f", &id, "refs/heads/main", "reject");
    assert_eq!(main(), c2);
    assert!(
        f.log().contains("policy decision: REJECT refs/heads/main"),
        "{}",
        f.log()
    );
    let quarantine = f_repo.join("gt-quarantine");
    assert_eq!(std::fs::read_dir(&quarantine).map_or(0, |d| d.count()), 0);
    fsck(&w, &f_repo);

    // A move back to c1 (already in main's history here) is stale: logged, nothing fetched.
    w.git(&work, &["reset", "-q", "--hard", &c1]);
    push(true);
    share(&w, &bare, "proj");
    let line = format!(
        "ignoring a stale announcement of refs/heads/main in {id}: stale: {c1} is already in the history of {c2}"
    );
    wait_for(
        "F to log the stale branch announcement",
        || f.log().contains(&line).then_some(()),
        || ctx(&w, &f, "f"),
    );
    wait_outcome(&w, "f", &id, "refs/heads/main", "stale");
    assert_eq!(main(), c2);
    assert!(f.running());
}

/// A `follow` request is answered while a poll round is still running, not after it. F
/// follows A's "proj", whose only reachable "peer" is a listener that accepts and then says
/// nothing, so each round's poll of "proj" waits out the handshake timeout on that connection.
/// While one such connection is open, F is asked to follow G's "second": the answer (and G's
/// tag) must come while the round's connection is still open. Before requests were served
/// during rounds, the answer waited for the round, which ends only after that connection
/// closes.
#[test]
fn a_follow_is_answered_while_a_round_waits_on_a_stalled_peer() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    let w = World::new(&["ed25519"]);
    let SharedV1 {
        mut a,
        tn: _tn,
        boot,
        bare,
        v1,
        publisher,
        id,
        ..
    } = shared_v1(&w);
    let policy = propagate_policy();
    a.kill();

    // The staller: holds every connection open, reading until the follower hangs up.
    // `conns[i]` is true while connection i is open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
    let accepted = conns.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let open = Arc::new(AtomicBool::new(true));
            accepted.lock().unwrap().push(open.clone());
            std::thread::spawn(move || {
                use std::io::Read as _;
                let _ = s.set_read_timeout(Some(WAIT));
                let mut buf = [0u8; 512];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                open.store(false, SeqCst);
            });
        }
    });
    let announcer = announce_peer(&boot, &publisher, "proj", port);

    // G publishes "second" (the same history and tag).
    let _g = node(&w, "g", &policy, &boot);
    gt_node(
        &w,
        &["share", bare.to_str().unwrap(), "--name", "second"],
        "g",
    );
    let second = format!("{}/second", key(&w, "g"));

    let mut f = node(&w, "f", &policy, &boot);
    // The first poll of "proj" runs inside this request and waits out connection 0.
    gt_node(&w, &["follow", &id], "f");
    // A round's poll of "proj": a connection after the request's, still open.
    let round_conn = wait_for(
        "a poll round of F to hold a connection to the staller",
        || {
            let c = conns.lock().unwrap();
            c.iter().skip(1).find(|o| o.load(SeqCst)).cloned()
        },
        || ctx(&w, &f, "f"),
    );
    let answer = gt_node(&w, &["follow", &second], "f");
    assert!(answer.contains(&format!("following {second}")), "{answer}");
    assert!(
        round_conn.load(SeqCst),
        "the follow was answered only after the round's stalled connection closed\n{}",
        ctx(&w, &f, "f")
    );
    // The request's own first poll fetched G's tag meanwhile.
    let f_second = repo_of(&w, "f", &second);
    assert_eq!(tags(&w, &f_second), format!("refs/tags/v1 {v1}"));
    fsck(&w, &f_second);
    // "proj" got nothing from the staller.
    assert_eq!(tags(&w, &repo_of(&w, "f", &id)), "");
    assert!(f.running());
    drop(announcer);
}
