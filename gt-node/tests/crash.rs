//! A receiving process killed (SIGKILL) at random moments while it fetches ref after ref: after
//! every kill the repository passes `git fsck` (no ref points at a missing object), and a
//! restarted receiver cleans its quarantine and finishes the job.
//!
//! The receiver runs as a child process: this test binary re-executed with
//! `GT_NODE_CRASH_CHILD` set, running only `crash_child`. Its gate accepts everything (the gate is
//! not what is under test here).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns abort loudly too

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ed25519_dalek::SigningKey;
use gix::objs::Kind;
use gt_node::gate::{Gate, GateDecision, RefUpdateCtx, Verdict};
use gt_node::store::{PackLimits, Repo};
use gt_node::transfer::{self, Served, Server, TrafficLog};

const TAGS: usize = 24;

struct AcceptAll;

impl Gate for AcceptAll {
    fn decide(&self, _: &RefUpdateCtx, _: &[Vec<u8>]) -> GateDecision {
        GateDecision::new(Verdict::Accept, "test: accept all")
    }
}

/// Deterministic incompressible bytes (xorshift), so every commit adds real pack data.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn make_big_source(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..TAGS {
        std::fs::write(
            dir.join(format!("blob{i}.bin")),
            noise(i as u64, 256 * 1024),
        )
        .unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
        git(
            dir,
            &[
                "tag",
                "-a",
                &format!("r{i:02}"),
                "-m",
                &format!("release {i}"),
            ],
        );
    }
}

/// The child: serve SRC in-process and fetch every tag of it into DST, one staged fetch each.
#[test]
fn crash_child() {
    let (Ok(src), Ok(dst)) = (
        std::env::var("GT_NODE_CRASH_SRC"),
        std::env::var("GT_NODE_CRASH_DST"),
    ) else {
        return; // Not running as the child: nothing to do.
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let key = SigningKey::from_bytes(&[3; 32]);
        let publisher = key.verifying_key().to_bytes();
        let server = Server::new(key, PackLimits::default(), Arc::new(TrafficLog::default()));
        let src_repo = Repo::open(&src).unwrap();
        server.serve(
            publisher,
            "crash",
            Served {
                repo: src_repo.clone(),
                manifest: None,
                allow: None,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server.clone().run(listener));

        let dst = Repo::open(&dst).unwrap();
        // What a node does at start-up.
        dst.cleanup_quarantine().unwrap();
        dst.remove_stale_ref_locks().unwrap();
        let mut conn = transfer::connect(addr, &publisher, "crash", None)
            .await
            .unwrap();
        for (name, new) in src_repo.refs().unwrap() {
            if !name.starts_with("refs/tags/") {
                continue;
            }
            let old = dst.ref_value(&name).unwrap();
            let ctx = RefUpdateCtx {
                repo: "crash".into(),
                publisher,
                served_by: [0; 32],
                ref_name: name.clone(),
                old,
                new,
                new_kind: Kind::Tag,
                seq: 1,
                now: 0,
            };
            transfer::fetch_ref(&mut conn, &dst, &AcceptAll, ctx, PackLimits::default())
                .await
                .unwrap();
        }
        println!("CHILD DONE");
    });
}

fn run_child(src: &Path, dst: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("GT_NODE_CRASH_SRC", src)
        .env("GT_NODE_CRASH_DST", dst)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every ref of `dst` names an object that exists, and fsck is clean.
fn consistent(dst: &Path) -> usize {
    fsck(dst);
    let refs = git(dst, &["for-each-ref", "--format=%(objectname)"]);
    for oid in refs.lines() {
        git(dst, &["cat-file", "-e", &format!("{oid}^{{commit}}")]);
    }
    refs.lines().count()
}

#[test]
fn killed_receiver_leaves_consistent_refs_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst.git"));
    std::fs::create_dir_all(&src).unwrap();
    make_big_source(&src);
    make_bare(&dst);

    let mut kills = 0;
    let mut progress = Vec::new();
    let mut failed = Vec::new();
    for round in 0..12u64 {
        let mut child = run_child(&src, &dst);
        // Kill at a pseudo-random moment between 30 and 400 ms in.
        let delay = 30 + (noise(round + 100, 1)[0] as u64 * 370 / 255);
        std::thread::sleep(Duration::from_millis(delay));
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
            kills += 1;
        }
        let out = child.wait_with_output().unwrap();
        if !killed && !String::from_utf8_lossy(&out.stdout).contains("CHILD DONE") {
            failed.push(format!(
                "round {round} ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        progress.push(consistent(&dst));
    }
    eprintln!("kills: {kills}, refs after each round: {progress:?}");
    // A receiver that stopped on its own stopped on an error: it must not.
    assert!(failed.is_empty(), "receivers failed: {failed:?}");
    // A last run to completion: everything arrives, the quarantine is gone.
    let child = run_child(&src, &dst);
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("CHILD DONE"),
        "the last receiver did not finish ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(consistent(&dst), TAGS);
    let q = dst.join(gt_node::store::QUARANTINE_DIR);
    assert!(!q.exists() || std::fs::read_dir(&q).unwrap().next().is_none());
    assert!(kills > 0, "the child was never killed mid-run");
}
