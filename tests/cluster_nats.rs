//! The scale-out transport (`deltran::cluster`) against a real NATS JetStream
//! cluster: three `nats-server` processes (Debian's, installed by
//! tests/cluster/nats-server.sh when missing) started per test in a temporary
//! directory, the stream and the lease bucket replicated on all three.

#[path = "support/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use deltran::cluster::{self, Claimed, Holding, LeaseKeeper, LeaseKey, Log, TransportSettings};
use deltran::domain::cluster::{ClaimRefused, CreditLeg, Epoch, NodeId, PartitionId};
use deltran::domain::{BankCode, Currency, TransferId, WindowId};
use nats::NatsCluster;
use rust_decimal::Decimal;

fn settings() -> TransportSettings {
    TransportSettings {
        replicas: 3,
        duplicate_window: Duration::from_secs(60),
        ack_wait: Duration::from_secs(1),
        max_ack_pending: 1_000,
    }
}

fn leg(n: u128) -> CreditLeg {
    CreditLeg {
        transfer: TransferId::from_uuid(uuid::Uuid::from_u128(n)),
        receiver: BankCode::parse("ENBD").unwrap(),
        currency: Currency::parse("AED").unwrap(),
        amount: Decimal::new(n as i64 * 100 + 1, 2),
        window: WindowId::new(1).unwrap(),
        from: PartitionId(0),
        epoch: Epoch(1),
    }
}

#[tokio::test]
async fn a_lease_is_won_once_renewed_by_its_holder_and_taken_over_with_a_higher_epoch() {
    let nats = NatsCluster::start();
    let (_, leases) = nats.connect(&settings()).await;
    let (_, other) = nats.connect(&settings()).await;
    let key = LeaseKey::Partition(PartitionId(1));
    let ttl = Duration::from_millis(100);
    let (a, b) = (NodeId(1), NodeId(2));
    // Two nodes claim on the same reading: one holds it, the other lost the race or
    // saw it held.
    let (first, second) = tokio::join!(
        leases.claim(key, a, 1_000, ttl),
        other.claim(key, b, 1_000, ttl)
    );
    let outcomes = [first.unwrap(), second.unwrap()];
    let held: Vec<_> = outcomes
        .iter()
        .filter_map(|c| match c {
            Claimed::Holds(lease) => Some(*lease),
            _ => None,
        })
        .collect();
    assert_eq!(held.len(), 1, "{outcomes:?}");
    assert_eq!(held[0].epoch, Epoch(1));
    let (holder, waiting, waiting_leases, holder_leases) = if held[0].holder == a {
        (a, b, &other, &leases)
    } else {
        (b, a, &leases, &other)
    };
    // Renewed by its holder: the same epoch.
    match holder_leases.claim(key, holder, 1_050, ttl).await.unwrap() {
        Claimed::Holds(lease) => assert_eq!((lease.epoch, lease.expires_at_ms), (Epoch(1), 1_150)),
        other => panic!("{other:?}"),
    }
    // Refused to the other while live, taken once expired, with epoch 2.
    assert_eq!(
        waiting_leases
            .claim(key, waiting, 1_100, ttl)
            .await
            .unwrap(),
        Claimed::Refused(ClaimRefused::Held {
            holder,
            until_ms: 1_150
        })
    );
    match waiting_leases
        .claim(key, waiting, 1_150, ttl)
        .await
        .unwrap()
    {
        Claimed::Holds(lease) => assert_eq!((lease.holder, lease.epoch), (waiting, Epoch(2))),
        other => panic!("{other:?}"),
    }
    // The former holder cannot renew it now; the operator can move it back, and
    // the epoch rises again.
    assert!(matches!(
        holder_leases.claim(key, holder, 1_160, ttl).await.unwrap(),
        Claimed::Refused(_)
    ));
    let moved = holder_leases
        .hand_over(key, holder, 1_170, ttl)
        .await
        .unwrap();
    assert_eq!((moved.holder, moved.epoch), (holder, Epoch(3)));
    let (_, stored) = leases.read(key).await.unwrap().unwrap();
    assert_eq!(stored, moved);
    // Another key is its own lease.
    assert_eq!(leases.read(LeaseKey::Coordinator).await.unwrap(), None);
}

#[tokio::test]
async fn a_credit_leg_is_stored_once_and_delivered_until_acknowledged() {
    let nats = NatsCluster::start();
    let (log, _) = nats.connect(&settings()).await;
    let to = PartitionId(2);
    let first = log.publish_leg(to, &leg(1)).await.unwrap();
    let again = log.publish_leg(to, &leg(1)).await.unwrap();
    assert!(!first.duplicate && again.duplicate, "{first:?} {again:?}");
    assert_eq!(log.message_count().await.unwrap(), 1);
    let credits = log.credits(to).await.unwrap();
    // Delivered, not acknowledged: delivered again after the ack wait.
    let batch = credits
        .next_batch(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].leg.as_ref().unwrap(), &leg(1));
    assert_eq!(batch[0].deliveries, 1);
    drop(batch);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut batch = credits
        .next_batch(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].deliveries, 2);
    batch.pop().unwrap().ack().await.unwrap();
    // Acknowledged: not delivered again, even after the ack wait.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(credits
        .next_batch(10, Duration::from_millis(500))
        .await
        .unwrap()
        .is_empty());
    // Acknowledged, it leaves the stream (a work queue).
    assert_eq!(log.message_count().await.unwrap(), 0);
    // Another partition's consumer does not see it.
    let elsewhere = log.credits(PartitionId(1)).await.unwrap();
    assert!(elsewhere
        .next_batch(10, Duration::from_millis(500))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn no_acknowledged_leg_is_lost_when_a_server_is_killed() {
    let mut nats = NatsCluster::start();
    let (log, _) = nats.connect(&settings()).await;
    let to = PartitionId(0);
    // Publishes until the stream acknowledges (retrying through the election
    // after a server dies), as a partition's outbox does.
    async fn publish(log: &Log, to: PartitionId, n: u128) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(e) = log.publish_leg(to, &leg(n)).await {
            assert!(Instant::now() < deadline, "leg {n} never acknowledged: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for n in 0..300 {
        publish(&log, to, n).await;
    }
    nats.kill_server(0);
    for n in 300..600 {
        publish(&log, to, n).await;
    }
    nats.start_server(0);
    nats.kill_server(1);
    // Every acknowledged leg is delivered (some more than once, which the
    // receiver's store absorbs), read while another server is down. Opening the
    // consumer is retried, as a partition starting does, while the stream elects
    // a new leader.
    let deadline = Instant::now() + Duration::from_secs(60);
    let credits = loop {
        match log.credits(to).await {
            Ok(credits) => break credits,
            Err(e) => {
                assert!(Instant::now() < deadline, "no consumer: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 600 {
        assert!(
            Instant::now() < deadline,
            "only {} legs delivered",
            seen.len()
        );
        let batch = match credits.next_batch(200, Duration::from_secs(1)).await {
            Ok(batch) => batch,
            Err(_) => continue,
        };
        for delivered in batch {
            seen.insert(delivered.leg.as_ref().unwrap().transfer);
            let _ = delivered.ack().await;
        }
    }
    assert_eq!(seen.len(), 600);
    assert!(seen.iter().all(|t| t.as_uuid().as_u128() < 600));
}

#[tokio::test]
async fn a_standby_takes_a_lapsed_lease_and_a_holder_moved_away_knows_it_lost() {
    let nats = NatsCluster::start();
    let leases = std::sync::Arc::new(nats.connect(&settings()).await.1);
    let standby_leases = std::sync::Arc::new(nats.connect(&settings()).await.1);
    let ttl = Duration::from_millis(600);
    let key = LeaseKey::Partition(PartitionId(0));
    let mut first = LeaseKeeper::start(leases.clone(), key, NodeId(1), ttl);
    let won = first.held().await.unwrap();
    assert_eq!((won.holder, won.epoch), (NodeId(1), Epoch(1)));
    // A standby waits while the holder renews (three lifetimes of the lease).
    let mut standby = LeaseKeeper::start(standby_leases.clone(), key, NodeId(2), ttl);
    tokio::time::sleep(ttl * 3).await;
    assert_eq!(standby.state(), Holding::Waiting);
    assert!(matches!(first.state(), Holding::Holds(l) if l.epoch == Epoch(1)));
    // The holder stops renewing (a crash): the standby takes it, epoch 2.
    first.abandon();
    let taken = tokio::time::timeout(Duration::from_secs(20), standby.held())
        .await
        .expect("the standby took the lease")
        .unwrap();
    assert_eq!((taken.holder, taken.epoch), (NodeId(2), Epoch(2)));
    // The operator moves it to another node: its keeper sees it lost at the next
    // renewal, and stops.
    leases
        .hand_over(key, NodeId(3), cluster::keeper::wall_clock_ms(), ttl)
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(20), standby.lost())
        .await
        .expect("the holder saw its loss")
        .unwrap();
    assert_eq!(lost.epoch, Epoch(2));
    assert_eq!(standby.state(), Holding::Lost(lost));
}
