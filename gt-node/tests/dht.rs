//! The DHT wrapper on a loopback mainline testnet: publish on A, read on B, seq updates, stale
//! puts refused and ignored, oversized values refused before sending, and peer discovery.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns abort loudly too

use std::time::Instant;

use gt_node::announce::{self, ItemContent, RefMap};
use gt_node::dht::{self, DhtConfig, DhtError, DhtNode};
use mainline::SigningKey;

fn refs(n: usize) -> RefMap {
    (0..n)
        .map(|i| {
            (
                format!("refs/tags/v{i}"),
                gix::ObjectId::from_bytes_or_panic(&[i as u8; 20]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_follow_and_discover_on_a_loopback_testnet() {
    let t = Instant::now();
    let net = dht::testnet(8).await.unwrap();
    eprintln!("testnet(8): {:?}", t.elapsed());
    assert!(
        net.bootstrap.iter().all(|b| b.starts_with("127.0.0.1:")),
        "{:?}",
        net.bootstrap
    );
    let a = DhtNode::start(&DhtConfig::loopback(&net.bootstrap))
        .await
        .unwrap();
    let b = DhtNode::start(&DhtConfig::loopback(&net.bootstrap))
        .await
        .unwrap();
    assert!(a.local_addr().ip().is_loopback());
    assert!(a.bootstrapped().await.unwrap() && b.bootstrapped().await.unwrap());

    let key = SigningKey::from_bytes(&[42u8; 32]);
    let publisher = key.verifying_key().to_bytes();
    let repo = "demo";

    // Nothing published yet.
    assert!(b.get_item(&publisher, repo).await.unwrap().is_none());

    // A publishes seq 10; B reads it.
    let v1 = announce::encode_item(&refs(2)).unwrap();
    let t = Instant::now();
    let stored = a.put_item(&key, repo, &v1.value, 10, None).await.unwrap();
    eprintln!(
        "put_item seq 10: {:?}, stored at {stored} nodes",
        t.elapsed()
    );
    assert!(stored > 0);
    let t = Instant::now();
    let got = b
        .get_item(&publisher, repo)
        .await
        .unwrap()
        .expect("B finds A's item");
    eprintln!("get_item (B): {:?}", t.elapsed());
    assert_eq!(got.seq(), 10);
    assert_eq!(
        announce::decode_item(got.value()).unwrap(),
        ItemContent::Refs(refs(2))
    );

    // A updates to seq 11; B sees the newer item.
    let v2 = announce::encode_item(&refs(3)).unwrap();
    a.put_item(&key, repo, &v2.value, 11, Some(10))
        .await
        .unwrap();
    let t = Instant::now();
    let newer = b
        .get_item_newer_than(&publisher, repo, 10)
        .await
        .unwrap()
        .expect("update seen");
    eprintln!("get_item_newer_than (B): {:?}", t.elapsed());
    assert_eq!(newer.seq(), 11);
    assert_eq!(
        announce::decode_item(newer.value()).unwrap(),
        ItemContent::Refs(refs(3))
    );
    assert!(
        b.get_item_newer_than(&publisher, repo, 11)
            .await
            .unwrap()
            .is_none()
    );

    // A stale put (lower seq) is refused by the storing nodes, and the stored item is unchanged.
    let stale = a.put_item(&key, repo, &v1.value, 5, None).await;
    assert!(
        matches!(stale, Err(DhtError::Stale { seq: 5, .. })),
        "{stale:?}"
    );
    let current = b.get_item(&publisher, repo).await.unwrap().unwrap();
    assert_eq!(current.seq(), 11);
    // And a follower never treats a repeated or older seq as news.
    assert!(!announce::is_newer(Some(11), current.seq()));
    assert!(!announce::is_newer(Some(11), 5));

    // An oversized value is refused before anything is sent (mainline would time out).
    let big = vec![b'x'; announce::MAX_ITEM_VALUE_BYTES + 1];
    let t = Instant::now();
    let err = a.put_item(&key, repo, &big, 12, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            DhtError::Item(announce::AnnounceError::TooLarge { .. })
        ),
        "{err}"
    );
    eprintln!("oversized refusal: {:?}", t.elapsed());
    assert_eq!(
        b.get_item(&publisher, repo).await.unwrap().unwrap().seq(),
        11
    );

    // A announces its TCP service port; B finds it.
    let t = Instant::now();
    a.announce(&publisher, repo, 47_001).await.unwrap();
    eprintln!("announce: {:?}", t.elapsed());
    let t = Instant::now();
    let peers = b.find_peers(&publisher, repo).await.unwrap();
    eprintln!("find_peers: {:?} -> {peers:?}", t.elapsed());
    assert!(
        peers
            .iter()
            .any(|p| p.port() == 47_001 && p.ip().is_loopback()),
        "{peers:?}"
    );
    // Another repository's info-hash has no peers.
    assert!(b.find_peers(&publisher, "other").await.unwrap().is_empty());
}
