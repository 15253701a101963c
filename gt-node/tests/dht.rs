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

/// Forged BEP 44 items are refused by every storing node and never reach a reader.
///
/// What this proves: a publisher's genuine item (seq 10) is on a loopback testnet; a third
/// party then tries, through the same pre-signed put path a propagating node uses
/// ([`DhtNode::put_signed_item`], i.e. `MutableItem::new_signed_unchecked`, no local check),
/// three forgeries with a *higher* seq, so that any one accepted would win a most-recent read:
/// (a) the publisher's key and signature over an altered value; (b) a valid item signed by key X
/// presented under key Y (signature does not verify for Y, target is Y's); (c) the publisher's
/// genuine signature replayed under another repository's salt. Each put fails (the storing nodes
/// answer BEP 44 error 206, "invalid signature", so nothing is stored) and a reader on another
/// node still gets exactly the genuine item, or nothing under Y. The check that refuses them is
/// mainline's server-side `MutableItem::from_dht_message` (ed25519 over `salt`/`seq`/`v`, then
/// target = sha1(key ‖ salt)); readers run the same check on every answer they receive, which
/// the root crate's node_e2e `hostile_dht_answers_stale_and_forged_items_change_nothing`
/// exercises with a hostile KRPC responder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_items_are_refused_and_never_read() {
    let net = dht::testnet(6).await.unwrap();
    let a = DhtNode::start(&DhtConfig::loopback(&net.bootstrap))
        .await
        .unwrap();
    let b = DhtNode::start(&DhtConfig::loopback(&net.bootstrap))
        .await
        .unwrap();
    assert!(a.bootstrapped().await.unwrap() && b.bootstrapped().await.unwrap());

    let key = SigningKey::from_bytes(&[7u8; 32]);
    let publisher = key.verifying_key().to_bytes();
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let other_pub = other.verifying_key().to_bytes();
    let repo = "demo";

    let genuine = announce::encode_item(&refs(1)).unwrap();
    a.put_item(&key, repo, &genuine.value, 10, None)
        .await
        .unwrap();
    let got = b.get_item(&publisher, repo).await.unwrap().unwrap();
    assert_eq!((got.seq(), got.value()), (10, &genuine.value[..]));

    // A correctly signed seq-20 item, used as the raw material of the forgeries.
    let evil = announce::encode_item(&refs(4)).unwrap();
    let salt = announce::salt(repo).unwrap();
    let signed = mainline::MutableItem::new(key.clone(), &evil.value, 20, Some(&salt));
    let sig = *signed.signature();

    // (a) Same key, same signature, altered value.
    let mut altered = evil.value.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let r = b
        .put_signed_item(&publisher, repo, &altered, 20, &sig)
        .await;
    assert!(matches!(r, Err(DhtError::Query { .. })), "{r:?}");

    // (b) X's valid signature presented under key Y.
    let signed_by_other = mainline::MutableItem::new(other.clone(), &evil.value, 20, Some(&salt));
    let r = b
        .put_signed_item(
            &publisher,
            repo,
            &evil.value,
            20,
            signed_by_other.signature(),
        )
        .await;
    assert!(matches!(r, Err(DhtError::Query { .. })), "{r:?}");
    let r = b
        .put_signed_item(&other_pub, repo, &evil.value, 20, &sig)
        .await;
    assert!(matches!(r, Err(DhtError::Query { .. })), "{r:?}");

    // (c) The publisher's genuine signature replayed under another repository's salt.
    let r = b
        .put_signed_item(&publisher, "other", &evil.value, 20, &sig)
        .await;
    assert!(matches!(r, Err(DhtError::Query { .. })), "{r:?}");

    // Readers still see only the genuine item; nothing under Y or the other repository.
    let got = a.get_item(&publisher, repo).await.unwrap().unwrap();
    assert_eq!((got.seq(), got.value()), (10, &genuine.value[..]));
    assert!(
        a.get_item_newer_than(&publisher, repo, 10)
            .await
            .unwrap()
            .is_none()
    );
    assert!(a.get_item(&other_pub, repo).await.unwrap().is_none());
    assert!(a.get_item(&publisher, "other").await.unwrap().is_none());

    // Control: the untouched signed item is accepted through the same path, so the refusals
    // above are the signature check and not the put path failing.
    let stored = b
        .put_signed_item(&publisher, repo, &evil.value, 20, &sig)
        .await
        .unwrap();
    assert!(stored > 0);
    assert_eq!(
        a.get_item(&publisher, repo).await.unwrap().unwrap().seq(),
        20
    );
}
