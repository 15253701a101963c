//! The staged transfer over loopback TCP between two real repositories: an accepted tag moves
//! with its history and `git fsck` passes; a rejected ref costs only the tag object; a peer
//! sending a wrong object, a truncated frame or an oversized pack is refused and the receiving
//! repository does not change.
//!
//! The Gate here is a small test implementation ("accept if the tag message contains OK"); the
//! policy crate's gate replaces it in the end-to-end tests.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns abort loudly too

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use ed25519_dalek::{Signer as _, SigningKey};
use gix::ObjectId;
use gix::objs::Kind;
use gt_node::gate::{RefUpdateCtx, Verdict};
use gt_node::store::{PackLimits, Repo};
use gt_node::transfer::{
    self, Connection, FetchOutcome, Served, Server, TrafficLog, TransferError,
};
use gt_node::wire::{self, Message};
use serde_bytes::ByteBuf;
use tokio::net::TcpListener;

const PUBLISHER_SEED: [u8; 32] = [7; 32];

fn publisher() -> [u8; 32] {
    SigningKey::from_bytes(&PUBLISHER_SEED)
        .verifying_key()
        .to_bytes()
}

fn ctx(ref_name: &str, old: Option<ObjectId>, new: ObjectId) -> RefUpdateCtx {
    RefUpdateCtx {
        repo: "demo".into(),
        publisher: publisher(),
        served_by: [0; 32],
        ref_name: ref_name.into(),
        old,
        new,
        new_kind: Kind::Tag,
        seq: 1,
        now: 1_700_000_000,
    }
}

async fn start_server(src: &Path) -> (SocketAddr, Arc<Server>) {
    start_server_allowing(src, None).await
}

/// A server of `src` as "demo" on a loopback port; with `allow`, it serves only those objects
/// (as a follower serves only what it propagates).
async fn start_server_allowing(
    src: &Path,
    allow: Option<Arc<HashSet<ObjectId>>>,
) -> (SocketAddr, Arc<Server>) {
    let server = Server::new(
        SigningKey::from_bytes(&PUBLISHER_SEED),
        PackLimits::default(),
        Arc::new(TrafficLog::default()),
    );
    server.serve(
        publisher(),
        "demo",
        Served {
            repo: Repo::open(src).unwrap(),
            manifest: None,
            allow,
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.clone().run(listener));
    (addr, server)
}

/// `transfer::connect` to the test publisher's "demo" at `addr`, expecting no node key.
async fn connect(addr: SocketAddr) -> Connection {
    transfer::connect(addr, &publisher(), "demo", None)
        .await
        .unwrap()
}

/// `transfer::fetch_ref` of `ctx` into `dst`, decided by [`MessageGate`].
async fn fetch(
    conn: &mut Connection,
    dst: &Repo,
    ctx: RefUpdateCtx,
    limits: PackLimits,
) -> Result<FetchOutcome, TransferError> {
    transfer::fetch_ref(conn, dst, &MessageGate, ctx, limits).await
}

/// Connect to the (hostile) server at `addr` and fetch `refs/tags/v2` (`v2`) into `dst`;
/// the fetch must fail: returns its error.
async fn fetch_v2_err(
    addr: SocketAddr,
    dst: &Repo,
    v2: ObjectId,
    limits: PackLimits,
) -> TransferError {
    let mut conn = connect(addr).await;
    fetch(&mut conn, dst, ctx("refs/tags/v2", None, v2), limits)
        .await
        .unwrap_err()
}

/// A hostile server's replies: the right tag object to `WANT_OBJECT`, `rest` (raw bytes) to
/// every other request (the pack request).
fn tag_then(tag: Vec<u8>, rest: Vec<u8>) -> impl Fn(&Message) -> Vec<u8> + Send + 'static {
    move |req| match req {
        Message::WantObject(_) => frame(&Message::Object(wire::Object {
            kind: "tag".into(),
            data: ByteBuf::from(tag.clone()),
        })),
        _ => rest.clone(),
    }
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (s, d) = (source_in(tmp.path()), tmp.path().join("dst.git"));
    make_bare(&d);
    (tmp, s, d)
}

fn loose_and_packs(d: &Path) -> usize {
    let loose = std::fs::read_dir(d.join("objects"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 2)
        .count();
    loose + pack_files(d).len()
}

#[tokio::test]
async fn accepted_tag_is_transferred_and_fsck_clean() {
    let (_tmp, s, d) = setup();
    let (addr, server) = start_server(&s).await;
    let dst = Repo::open(&d).unwrap();
    let v2 = rev(&s, "refs/tags/v2");
    let mut conn = transfer::connect(addr, &publisher(), "demo", Some(&publisher()))
        .await
        .unwrap();
    assert_eq!(conn.server_key, publisher());
    let out = fetch(
        &mut conn,
        &dst,
        ctx("refs/tags/v2", None, v2),
        PackLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.decision.verdict, Verdict::Propagate);
    assert!(out.updated && out.pack_objects > 10, "{out:?}");
    assert_eq!(rev(&d, "refs/tags/v2"), v2);
    assert_eq!(rev(&d, "refs/tags/v2^{commit}"), rev(&s, "main"));
    fsck(&d);
    // The same update again changes nothing and moves nothing.
    let again = fetch(
        &mut conn,
        &dst,
        ctx("refs/tags/v2", Some(v2), v2),
        PackLimits::default(),
    )
    .await
    .unwrap();
    assert!(!again.updated && again.traffic.bytes_in == 0);
    drop(conn);
    // The server counted what it sent for this repository.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let served = server
        .traffic
        .get(&transfer::repo_id(&publisher(), "demo"))
        .served;
    assert!(
        served.bytes_out >= out.traffic.bytes_in,
        "{served:?} vs {out:?}"
    );
    // ... as answers, not as requests of its own; and it names the peer it served.
    let repo = transfer::repo_id(&publisher(), "demo");
    assert_eq!(server.traffic.get(&repo).fetched, Default::default());
    let peers = server.traffic.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(
        (
            peers[0].role,
            peers[0].address.as_str(),
            peers[0].connections
        ),
        (transfer::Role::Serve, "127.0.0.1", 1)
    );
    assert_eq!(
        (peers[0].repo.as_str(), peers[0].traffic),
        (repo.as_str(), served)
    );
}

#[tokio::test]
async fn rejected_ref_costs_only_the_tag_object() {
    let (_tmp, s, d) = setup();
    let (addr, _server) = start_server(&s).await;
    let dst = Repo::open(&d).unwrap();
    let bad = rev(&s, "refs/tags/bad");
    let tag_len = git(&s, &["cat-file", "-s", "refs/tags/bad"])
        .trim()
        .parse::<u64>()
        .unwrap();
    let before = loose_and_packs(&d);
    let mut conn = connect(addr).await;
    let hello = conn.traffic;
    eprintln!(
        "HELLO exchange: sent {} B, received {} B",
        hello.bytes_out, hello.bytes_in
    );
    let out = fetch(
        &mut conn,
        &dst,
        ctx("refs/tags/bad", None, bad),
        PackLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.decision.verdict, Verdict::Reject);
    assert!(!out.updated);
    // What came in is one OBJECT frame: the tag bytes plus the frame and bencode overhead
    // ("d6:objectd4:data<len>:...4:kind3:tagee" and the 4-byte length).
    let overhead =
        4 + "d6:objectd4:data".len() + tag_len.to_string().len() + 1 + "4:kind3:tagee".len();
    eprintln!(
        "rejected ref: tag {tag_len} B, received {} B, sent {} B",
        out.traffic.bytes_in, out.traffic.bytes_out
    );
    assert_eq!(out.traffic.bytes_in, tag_len + overhead as u64);
    assert!(dst.refs().unwrap().is_empty());
    assert_eq!(loose_and_packs(&d), before);
    fsck(&d);
}

/// A hostile server: completes HELLO correctly, then answers each request with `reply` (raw
/// bytes written as is); with `close`, it closes the connection after the first answer.
async fn hostile_server(
    close: bool,
    reply: impl Fn(&Message) -> Vec<u8> + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (Message::Hello(h), _) = wire::read_message(&mut stream).await.unwrap() else {
            panic!("no hello");
        };
        let key = SigningKey::from_bytes(&PUBLISHER_SEED);
        let node_key = key.verifying_key().to_bytes();
        let signed = wire::hello_signed_bytes(&h.challenge, &h.publisher, &h.repo, &node_key);
        let ok = Message::HelloOk(wire::HelloOk {
            version: wire::PROTOCOL_VERSION,
            node_key: ByteBuf::from(node_key.to_vec()),
            signature: ByteBuf::from(key.sign(&signed).to_bytes().to_vec()),
        });
        wire::write_message(&mut stream, &ok).await.unwrap();
        // Answer requests until the client gives up.
        while let Ok((req, _)) = wire::read_message(&mut stream).await {
            use tokio::io::AsyncWriteExt;
            if stream.write_all(&reply(&req)).await.is_err() || close {
                break;
            }
        }
    });
    addr
}

fn frame(m: &Message) -> Vec<u8> {
    wire::encode_frame(m).unwrap()
}

#[tokio::test]
async fn hostile_peers_change_nothing() {
    let (_tmp, s, d) = setup();
    let dst = Repo::open(&d).unwrap();
    let v2 = rev(&s, "refs/tags/v2");
    let v2_bytes = {
        let out = std::process::Command::new("git")
            .current_dir(&s)
            .args(["cat-file", "tag", "refs/tags/v2"])
            .output()
            .unwrap();
        out.stdout
    };

    // 1. A wrong object: bytes that do not hash to the id asked for.
    let mut wrong = v2_bytes.clone();
    wrong.extend_from_slice(b"tampered\n");
    let addr = hostile_server(false, move |_| {
        frame(&Message::Object(wire::Object {
            kind: "tag".into(),
            data: ByteBuf::from(wrong.clone()),
        }))
    })
    .await;
    let err = fetch_v2_err(addr, &dst, v2, PackLimits::default()).await;
    assert!(matches!(err, TransferError::ObjectMismatch { .. }), "{err}");
    eprintln!("wrong object: {err}");

    // 2. A truncated frame: a header announcing 100 bytes, then 10, then the connection closes.
    let addr = hostile_server(true, |_| {
        let mut f = 100u32.to_be_bytes().to_vec();
        f.extend_from_slice(b"d6:object");
        f
    })
    .await;
    let err = fetch_v2_err(addr, &dst, v2, PackLimits::default()).await;
    assert!(
        matches!(
            err,
            TransferError::Wire {
                source: wire::WireError::Truncated { .. },
                ..
            }
        ),
        "{err}"
    );
    eprintln!("truncated frame: {err}");

    // 3. An oversized pack: the tag is right (and accepted), the announced pack is over our
    //    limit; refused before any pack byte is read.
    let pack_start = frame(&Message::PackStart(wire::PackStart {
        bytes: 10_000_000,
        objects: 3,
    }));
    let addr = hostile_server(false, tag_then(v2_bytes.clone(), pack_start)).await;
    let limits = PackLimits {
        max_bytes: 1_000_000,
        max_objects: 1000,
    };
    let err = fetch_v2_err(addr, &dst, v2, limits).await;
    assert!(matches!(err, TransferError::PackSize { .. }), "{err}");
    eprintln!("oversized pack: {err}");

    // 4. A pack longer than announced.
    let mut long_pack = frame(&Message::PackStart(wire::PackStart {
        bytes: 10,
        objects: 1,
    }));
    long_pack.extend(frame(&Message::PackChunk(wire::PackChunk {
        data: ByteBuf::from(vec![0u8; 11]),
    })));
    let addr = hostile_server(false, tag_then(v2_bytes.clone(), long_pack)).await;
    let err = fetch_v2_err(addr, &dst, v2, limits).await;
    assert!(matches!(err, TransferError::PackSize { .. }), "{err}");

    // 5. A garbage pack of the announced size: indexing fails, nothing is stored.
    let mut garbage = frame(&Message::PackStart(wire::PackStart {
        bytes: 64,
        objects: 1,
    }));
    garbage.extend(frame(&Message::PackChunk(wire::PackChunk {
        data: ByteBuf::from(b"PACK".repeat(16)),
    })));
    garbage.extend(frame(&Message::PackEnd(wire::PackEnd {})));
    let addr = hostile_server(false, tag_then(v2_bytes.clone(), garbage)).await;
    let err = fetch_v2_err(addr, &dst, v2, limits).await;
    assert!(matches!(err, TransferError::Store(_)), "{err}");

    // 6. A server restricted to some objects (a follower serving only what it propagates)
    //    refuses the others even though it has them.
    let allow: HashSet<ObjectId> = [v2].into_iter().collect();
    let (addr, _server) = start_server_allowing(&s, Some(Arc::new(allow))).await;
    let mut conn = connect(addr).await;
    assert!(conn.want_object(v2).await.is_ok());
    let v1 = rev(&s, "refs/tags/v1");
    let err = conn.want_object(v1).await.unwrap_err();
    assert!(matches!(err, TransferError::Refused { .. }), "{err}");
    let err = conn.want_pack(&[v1], &[], limits).await.unwrap_err();
    assert!(matches!(err, TransferError::Refused { .. }), "{err}");

    // 7. A server that is not the expected node is refused at HELLO.
    let (addr, _server) = start_server(&s).await;
    let other = [9u8; 32];
    let err = transfer::connect(addr, &publisher(), "demo", Some(&other))
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Handshake { .. }), "{err}");
    // And a repository it does not serve is refused.
    let err = transfer::connect(addr, &publisher(), "nope", None)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Refused { .. }), "{err}");

    // Through all of it the receiver did not change.
    assert!(dst.refs().unwrap().is_empty());
    assert!(pack_files(&d).is_empty());
    assert!(
        !d.join(gt_node::store::QUARANTINE_DIR).exists()
            || std::fs::read_dir(d.join(gt_node::store::QUARANTINE_DIR))
                .unwrap()
                .next()
                .is_none()
    );
    fsck(&d);
}

#[tokio::test]
async fn limits_hold_at_their_boundaries() {
    let (_tmp, s, d) = setup();
    // A chain of MAX_TAG_CHAIN tags is followed; one more level is refused.
    let mut prev = "v2".to_owned();
    for i in 1..=wire::MAX_TAG_CHAIN {
        let name = format!("chain{i}");
        git(
            &s,
            &["tag", "-a", &name, &prev, "-m", &format!("level {i} OK")],
        );
        prev = name;
    }
    let (addr, _server) = start_server(&s).await;
    let dst = Repo::open(&d).unwrap();
    let top = rev(&s, &format!("refs/tags/chain{}", wire::MAX_TAG_CHAIN - 1));
    let mut conn = connect(addr).await;
    let (kind, tags) = conn.want_tag_chain(top).await.unwrap();
    assert_eq!((kind, tags.len()), (Kind::Tag, wire::MAX_TAG_CHAIN));
    let too_deep = rev(&s, &format!("refs/tags/chain{}", wire::MAX_TAG_CHAIN));
    let err = conn.want_tag_chain(too_deep).await.unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err}");
    // The accepted chain transfers and is fsck-clean.
    let out = fetch(
        &mut conn,
        &dst,
        ctx("refs/tags/chain", None, top),
        PackLimits::default(),
    )
    .await
    .unwrap();
    assert!(out.updated, "{out:?}");
    fsck(&d);

    // MAX_WANTS wants are served; one more is refused.
    let v2 = rev(&s, "refs/tags/v2");
    let (file, _) = conn
        .want_pack(&vec![v2; wire::MAX_WANTS], &[], PackLimits::default())
        .await
        .unwrap();
    assert!(file.metadata().unwrap().len() > 0);
    let err = conn
        .want_pack(&vec![v2; wire::MAX_WANTS + 1], &[], PackLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Refused { .. }), "{err}");

    // An object of MAX_OBJECT_BYTES + 1 bytes is refused by the client (it is not even hashed).
    let addr = hostile_server(false, |_| {
        frame(&Message::Object(wire::Object {
            kind: "tag".into(),
            data: ByteBuf::from(vec![b'x'; wire::MAX_OBJECT_BYTES + 1]),
        }))
    })
    .await;
    let mut conn = connect(addr).await;
    let err = conn.want_object(v2).await.unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err}");
}

#[tokio::test]
async fn an_older_commit_is_stale_and_costs_nothing() {
    let (_tmp, s, d) = setup();
    let (addr, _server) = start_server(&s).await;
    let dst = Repo::open(&d).unwrap();
    let (main, older) = (rev(&s, "main"), rev(&s, "main~2"));
    // Bring main in directly (the test gate would reject a commit ref).
    let src = Repo::open(&s).unwrap();
    let mut pack = src
        .generate_pack(&[main], &[], PackLimits::default())
        .unwrap();
    use std::io::Seek;
    pack.file.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut reader = std::io::BufReader::new(pack.file);
    dst.receive_pack(&mut reader, &[main], PackLimits::default())
        .unwrap()
        .commit("refs/heads/main", None, main)
        .unwrap();
    assert!(dst.is_ancestor(older, main).unwrap());
    assert!(!dst.is_ancestor(main, older).unwrap());
    let mut conn = connect(addr).await;
    let hello = conn.traffic;
    let out = fetch(
        &mut conn,
        &dst,
        ctx("refs/heads/main", Some(main), older),
        PackLimits::default(),
    )
    .await
    .unwrap();
    assert!(out.stale && !out.updated, "{out:?}");
    assert_eq!(
        conn.traffic, hello,
        "a stale announcement sends and receives nothing"
    );
    assert_eq!(rev(&d, "refs/heads/main"), main);
    // A tag is never "older": it goes to the gate even when it names an old commit.
    let v1 = rev(&s, "refs/tags/v1");
    assert!(!dst.is_ancestor(v1, main).unwrap());
    fsck(&d);
}
