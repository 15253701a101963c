//! Whole nodes on a loopback DHT: A shares a repository, B follows it through the staged,
//! gated transfer and propagates what the gate passes, C fetches from B once A is gone, a
//! repository with more refs than fit in a DHT item goes through a verified manifest, and B's
//! state and refs survive a restart.
//!
//! The Gate is a small test implementation ("propagate a tag whose message contains OK"); the
//! policy crate's gate replaces it in the end-to-end tests.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns abort loudly too

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use gt_node::gate::{Gate, GateDecision, RefUpdateCtx, Verdict};
use gt_node::node::{DataDir, Node, NodeConfig};
use gt_node::store::Repo;

async fn node(dir: &Path, bootstrap: &[String]) -> Node {
    node_with(dir, bootstrap, Arc::new(MessageGate)).await
}

/// A node on data directory `dir` deciding with `gate`; a new directory gets a config naming
/// `bootstrap` (a restarted node keeps its own).
async fn node_with(dir: &Path, bootstrap: &[String], gate: Arc<dyn Gate>) -> Node {
    let dd = DataDir::new(dir);
    if !dd.config().exists() {
        let cfg = NodeConfig {
            bootstrap: bootstrap.to_vec(),
            ..NodeConfig::default()
        };
        dd.save_config(&cfg).unwrap();
    }
    Node::start(dd, gate).await.unwrap()
}

/// A temporary directory holding the [`make_source`] repository `src`, and a loopback DHT
/// testnet of eight nodes.
async fn source_and_testnet() -> (tempfile::TempDir, PathBuf, mainline::Testnet) {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_in(tmp.path());
    let net = gt_node::dht::testnet(8).await.unwrap();
    (tmp, src, net)
}

/// Where node data directory `dir` keeps the repository `name` of `publisher` (the layout
/// spelled out, not asked of the code under test).
fn followed_repo(dir: &Path, publisher: &[u8; 32], name: &str) -> PathBuf {
    dir.join("repos")
        .join(hex::encode(publisher))
        .join(format!("{name}.git"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_follow_propagate_and_restart() {
    let (tmp, src, net) = source_and_testnet().await;
    let now = 1_700_000_000;

    let a = node(&tmp.path().join("a"), &net.bootstrap).await;
    let b_dir = tmp.path().join("b");
    let b = node(&b_dir, &net.bootstrap).await;
    let publisher = a.public_key();
    let seq = a.share(&src, "demo", now).await.unwrap();
    assert_eq!(seq, now);

    b.follow(&publisher, "demo").unwrap();
    let reports = b.poll(&publisher, "demo", now).await.unwrap();
    let outcome = |name: &str| {
        reports
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome.clone())
            .unwrap_or_default()
    };
    assert_eq!(outcome("refs/tags/v2"), "propagate", "{reports:?}");
    assert_eq!(outcome("refs/tags/v1"), "reject");
    assert_eq!(outcome("refs/tags/bad"), "reject");
    assert_eq!(outcome("refs/heads/main"), "reject");
    let b_repo = followed_repo(&b_dir, &publisher, "demo");
    assert_eq!(rev(&b_repo, "refs/tags/v2"), rev(&src, "refs/tags/v2"));
    let b_refs = Repo::open(&b_repo).unwrap().refs().unwrap();
    assert_eq!(b_refs.keys().collect::<Vec<_>>(), vec!["refs/tags/v2"]);
    fsck(&b_repo);
    let status = b.status();
    assert_eq!(status.followed[0].last_seq, Some(seq));
    assert_eq!(status.followed[0].propagated, 1);
    assert_eq!(status.followed[0].rejected, 3);
    assert!(status.followed[0].bytes_in > 0);

    // The same seq again: nothing to do.
    assert!(b.poll(&publisher, "demo", now).await.unwrap().is_empty());
    // A new seq with the same refs: rejected refs are not fetched again, nothing changes.
    let before = b
        .traffic
        .get(&gt_node::transfer::repo_id(&publisher, "demo"));
    a.publish("demo", now).await.unwrap();
    let again = b.poll(&publisher, "demo", now).await.unwrap();
    assert!(again.iter().all(|r| r.outcome == "skipped"), "{again:?}");
    assert_eq!(
        b.traffic
            .get(&gt_node::transfer::repo_id(&publisher, "demo")),
        before
    );

    // B announces itself for what it propagates: a lookup finds both A and B.
    let peers = b.dht().find_peers(&publisher, "demo").await.unwrap();
    assert!(
        peers.iter().any(|p| p.port() == a.tcp_addr().port()),
        "{peers:?}"
    );
    assert!(
        peers.iter().any(|p| p.port() == b.tcp_addr().port()),
        "{peers:?}"
    );

    // A daemon round: A republishes (seq grows), B re-announces, re-puts and polls.
    assert!(a.tick(now, true).await.is_empty());
    assert_eq!(a.status().shared[0].seq, Some(seq + 2));
    let round = b.tick(now, true).await;
    assert_eq!(round.len(), 1);
    let reports = round[0].1.as_ref().unwrap();
    assert!(
        reports.iter().all(|r| r.outcome == "skipped"),
        "{reports:?}"
    );
    // B keeps A's signed item alive by re-putting it as A signed it.
    assert_eq!(b.republish_followed().await, 1);
    // A goes away; C follows and gets v2 from B.
    drop(a);
    let c_dir = tmp.path().join("c");
    let c = node(&c_dir, &net.bootstrap).await;
    c.follow(&publisher, "demo").unwrap();
    let reports = c.poll(&publisher, "demo", now).await.unwrap();
    assert!(
        reports
            .iter()
            .any(|r| r.name == "refs/tags/v2" && r.outcome == "propagate"),
        "{reports:?}"
    );
    let c_repo = followed_repo(&c_dir, &publisher, "demo");
    assert_eq!(rev(&c_repo, "refs/tags/v2"), rev(&src, "refs/tags/v2"));
    fsck(&c_repo);

    // B restarts from its data directory: same key, state and refs.
    let b_key = b.public_key();
    drop(b);
    let b = node(&b_dir, &net.bootstrap).await;
    assert_eq!(b.public_key(), b_key);
    let status = b.status();
    assert_eq!(status.followed[0].last_seq, Some(seq + 2));
    assert_eq!(status.followed[0].propagated, 1);
    assert_eq!(rev(&b_repo, "refs/tags/v2"), rev(&src, "refs/tags/v2"));
    assert!(b.poll(&publisher, "demo", now).await.unwrap().is_empty());
    fsck(&b_repo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refs_go_through_a_verified_manifest() {
    let (tmp, src, net) = source_and_testnet().await;
    for i in 0..40 {
        git(
            &src,
            &[
                "tag",
                "-a",
                &format!("r{i:02}"),
                "-m",
                &format!("release {i} OK"),
            ],
        );
    }
    let now = 1_700_000_000;
    let a = node(&tmp.path().join("a"), &net.bootstrap).await;
    let b_dir = tmp.path().join("b");
    let b = node(&b_dir, &net.bootstrap).await;
    let publisher = a.public_key();
    a.share(&src, "many", now).await.unwrap();
    // The item really holds a manifest reference.
    let item = b.dht().get_item(&publisher, "many").await.unwrap().unwrap();
    assert!(matches!(
        gt_node::announce::decode_item(item.value()).unwrap(),
        gt_node::announce::ItemContent::Manifest { count: 44, .. }
    ));
    b.follow(&publisher, "many").unwrap();
    let reports = b.poll(&publisher, "many", now).await.unwrap();
    assert_eq!(reports.len(), 44, "{reports:?}");
    assert_eq!(
        reports.iter().filter(|r| r.outcome == "propagate").count(),
        41
    );
    let b_repo = followed_repo(&b_dir, &publisher, "many");
    assert_eq!(Repo::open(&b_repo).unwrap().refs().unwrap().len(), 41);
    fsck(&b_repo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_helper_lists_only_gated_refs_and_fetches_them() {
    use gt_node::remote_helper::{self, HelperConfig};
    let (tmp, src, net) = source_and_testnet().await;
    let now = 1_700_000_000;
    let a = node(&tmp.path().join("a"), &net.bootstrap).await;
    a.share(&src, "demo", now).await.unwrap();
    let url = format!("gittorrent://{}/demo", hex::encode(a.public_key()));

    // A fresh clone target, as `git clone` prepares it before running the helper.
    let dst = tmp.path().join("clone");
    std::fs::create_dir_all(&dst).unwrap();
    git(&dst, &["init", "-q"]);
    let cfg = HelperConfig {
        bootstrap: net.bootstrap.clone(),
        dht_bind: std::net::Ipv4Addr::LOCALHOST,
        now,
        limits: gt_node::store::PackLimits::default(),
    };
    let v2 = rev(&src, "refs/tags/v2");
    let input = format!("capabilities\nlist\nfetch {v2} refs/tags/v2\n\n\n");
    let mut out = Vec::new();
    remote_helper::run(
        input.as_bytes(),
        &mut out,
        &dst.join(".git"),
        &url,
        &cfg,
        &MessageGate,
    )
    .await
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    // Capabilities, then only the gated ref, then the fetch's blank line.
    assert_eq!(
        out,
        format!("fetch\noption\n\n{v2} refs/tags/v2\n\n\n"),
        "{out}"
    );
    // The objects are there; git's own ref update (simulated here) gives an fsck-clean repo.
    git(&dst, &["cat-file", "-e", &format!("{v2}^{{commit}}")]);
    git(&dst, &["update-ref", "refs/tags/v2", &v2.to_string()]);
    fsck(&dst);
    // Asking for a ref that was not listed (rejected by the gate) fails.
    let v1 = rev(&src, "refs/tags/v1");
    let input = format!("list\nfetch {v1} refs/tags/v1\n\n");
    let r = remote_helper::run(
        input.as_bytes(),
        Vec::new(),
        &dst.join(".git"),
        &url,
        &cfg,
        &MessageGate,
    )
    .await;
    assert!(r.is_err());
    assert!(remote_helper::parse_url("gittorrent://zz/demo").is_err());
    assert!(remote_helper::parse_url("https://x/y").is_err());
}

/// A gate whose rules a test switches: rejects everything, or propagates everything; its
/// fingerprint names the rules in force.
struct SwitchGate {
    open: std::sync::atomic::AtomicBool,
}

impl Gate for SwitchGate {
    fn decide(&self, _ctx: &RefUpdateCtx, _tag_objects: &[Vec<u8>]) -> GateDecision {
        if self.open.load(std::sync::atomic::Ordering::SeqCst) {
            GateDecision::new(Verdict::Propagate, "open")
        } else {
            GateDecision::new(Verdict::Reject, "closed")
        }
    }
    fn fingerprint(&self) -> Option<String> {
        Some(
            self.open
                .load(std::sync::atomic::Ordering::SeqCst)
                .to_string(),
        )
    }
}

/// Rejections are decided again when the gate's rules change, on the same item; when the
/// re-decision cannot happen (no peer answers), the old rejections and their mark are kept so
/// the next poll tries again, and then every ref arrives (tags, and the branch with its history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_redecided_after_a_rule_change_even_when_the_first_try_fails() {
    use std::sync::atomic::Ordering;
    let (tmp, src, net) = source_and_testnet().await;
    let now = 1_700_000_000;
    let a_dir = tmp.path().join("a");
    let a = node(&a_dir, &net.bootstrap).await;
    let publisher = a.public_key();
    let seq = a.share(&src, "demo", now).await.unwrap();
    let id = gt_node::transfer::repo_id(&publisher, "demo");

    let b_dir = tmp.path().join("b");
    let gate = Arc::new(SwitchGate { open: false.into() });
    let b = node_with(&b_dir, &net.bootstrap, gate.clone()).await;
    b.follow(&publisher, "demo").unwrap();
    let reports = b.poll(&publisher, "demo", now).await.unwrap();
    assert_eq!(reports.len(), 4, "{reports:?}");
    assert!(reports.iter().all(|r| r.outcome == "reject"), "{reports:?}");
    let f = &b.state_snapshot().followed[&id];
    assert_eq!(
        (f.rejected.len(), f.rejected_under.as_deref()),
        (4, Some("false"))
    );
    // Same rules, same item: nothing happens.
    assert!(b.poll(&publisher, "demo", now).await.unwrap().is_empty());

    // The rules open while no node serves the repository: the re-decision fails, and is kept
    // pending (old rejections, old mark).
    drop(a);
    gate.open.store(true, Ordering::SeqCst);
    let reports = b.poll(&publisher, "demo", now).await.unwrap();
    assert!(reports.iter().all(|r| r.outcome == "failed"), "{reports:?}");
    let f = &b.state_snapshot().followed[&id];
    assert_eq!(
        (f.rejected.len(), f.rejected_under.as_deref()),
        (4, Some("false"))
    );
    assert_eq!(f.last_seq, Some(seq));

    // A serves again (same item, same seq; announced on its new port): the re-decision runs.
    let a = node(&a_dir, &net.bootstrap).await;
    a.dht()
        .announce(&publisher, "demo", a.tcp_addr().port())
        .await
        .unwrap();
    let reports = b.poll(&publisher, "demo", now).await.unwrap();
    assert_eq!(reports.len(), 4, "{reports:?}");
    assert!(
        reports.iter().all(|r| r.outcome == "propagate"),
        "{reports:?}"
    );
    let f = &b.state_snapshot().followed[&id];
    assert_eq!(
        (f.rejected.len(), f.rejected_under.as_deref()),
        (0, Some("true"))
    );
    assert_eq!(f.last_seq, Some(seq));
    let b_repo = followed_repo(&b_dir, &publisher, "demo");
    for r in [
        "refs/tags/v1",
        "refs/tags/v2",
        "refs/tags/bad",
        "refs/heads/main",
    ] {
        assert_eq!(rev(&b_repo, r), rev(&src, r), "{r}");
    }
    fsck(&b_repo);
}
