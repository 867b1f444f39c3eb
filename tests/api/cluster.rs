//! Cluster mode (`deltran serve --cluster-nats …`, docs/SCALE-OUT.md): engines as
//! nodes of one cluster over a real three-server NATS JetStream cluster, each node
//! with its own database on the test Postgres. A transfer is decided by its sender's
//! partition whichever node took it; the coordinator cuts every partition's window
//! and publishes their sums added; a partition moved to another node is fenced at
//! its former owner.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deltran::domain::cluster::{Assignment, NodeId, PartitionId};
use deltran::store::fence;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{eventually, fresh_database, test_settings, TestApp, WsClient};
use crate::nats::NatsCluster;

/// ICICI, HDFC and AXIS on partition 0; ENBD and ADCB on partition 1.
const ASSIGNMENT: &str = "ICICI=0,HDFC=0,AXIS=0,ENBD=1,ADCB=1";
const LEASE_TTL_MS: u64 = 1_500;

fn node_settings(nats: &NatsCluster, node: u32, partition: u32) -> deltran::config::Settings {
    let mut settings = test_settings();
    settings.window_duration_ms = 1_000;
    settings.demo = true;
    settings.settlement_delay_ms = 50;
    settings.cluster.cluster_nats = Some(nats.urls());
    settings.cluster.node_id = Some(node);
    settings.cluster.partition = Some(partition);
    settings.cluster.partitions = Some(Assignment::parse(ASSIGNMENT).unwrap());
    settings.cluster.lease_ttl_ms = LEASE_TTL_MS;
    settings
}

/// Joins the cluster as `node` for `partition` (retried while the NATS cluster
/// elects its leaders), then starts the engine on `database` under the lease's epoch.
async fn spawn_node(
    nats: &NatsCluster,
    node: u32,
    partition: u32,
    database: tokio_postgres::Config,
) -> TestApp {
    let settings = node_settings(nats, node, partition);
    let joined = join(&settings).await;
    let mut database = database;
    fence::write_under(&mut database, joined.epoch());
    TestApp::spawn_node(settings, database, Some(joined)).await
}

/// Partitions 0 and 1 on nodes 0 and 1, once each node's keys work on the other: an
/// owner authenticates a forwarded caller itself.
async fn spawn_two_nodes(nats: &NatsCluster) -> (TestApp, TestApp) {
    let p0 = spawn_node(nats, 0, 0, fresh_database().await).await;
    let p1 = spawn_node(nats, 1, 1, fresh_database().await).await;
    for (from, to) in [(&p0, &p1), (&p1, &p0)] {
        eventually("a node's keys work on the other", || async move {
            to.get_as(Some(&from.keys.operator), "/api/v1/cluster")
                .await
                .status
                == 200
        })
        .await;
    }
    (p0, p1)
}

async fn join(settings: &deltran::config::Settings) -> deltran::cluster::Joined {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match deltran::cluster::node::join(&settings.cluster).await {
            Ok(joined) => return joined,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not joined yet: {e}");
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("could not join the cluster: {e}"),
        }
    }
}

fn transfer(sender: &str, receiver: &str, amount: &str, key: &str) -> Value {
    let currency = |bank: &str| {
        if ["ENBD", "ADCB"].contains(&bank) {
            "AED"
        } else {
            "INR"
        }
    };
    json!({
        "sender_bank": sender, "receiver_bank": receiver, "amount": amount,
        "from_currency": currency(sender), "to_currency": currency(receiver),
        "idempotency_key": key,
    })
}

/// Waits until the cluster's result of `window` is published; it, as `node` serves it.
async fn cluster_window(node: &TestApp, window: i64) -> Value {
    let path = format!("/api/v1/cluster/windows/{window}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = node.get(&path).await;
        if reply.status == 200 {
            return reply.body;
        }
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert!(
            Instant::now() < deadline,
            "window {window} never cut cluster-wide"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn amount(value: &Value) -> Decimal {
    value.as_str().unwrap().parse().unwrap()
}

/// The cluster's result of a window is the netting of every partition's own: each
/// bank's position is the sum of its positions in the partitions' windows (their
/// stored legs), the counts add up, and every currency conserves money.
async fn assert_result_adds_the_partitions(window: i64, nodes: &[&TestApp]) {
    let result = cluster_window(nodes[0], window).await;
    let mut positions: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut count = 0;
    for node in nodes {
        let local = node
            .wait_for_window_state(window, &["netted", "settled"])
            .await;
        count += local["transfer_count"].as_i64().unwrap();
        for p in local["positions"].as_array().unwrap() {
            let key = (
                p["bank"].as_str().unwrap().into(),
                p["currency"].as_str().unwrap().into(),
            );
            *positions.entry(key).or_default() += amount(&p["position"]);
        }
    }
    positions.retain(|_, p| !p.is_zero());
    let mut published: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for p in result["positions"].as_array().unwrap() {
        let key = (
            p["bank"].as_str().unwrap().into(),
            p["currency"].as_str().unwrap().into(),
        );
        assert_eq!(
            amount(&p["position"]),
            amount(&p["credits"]) - amount(&p["debits"]),
            "{p}"
        );
        published.insert(key, amount(&p["position"]));
    }
    published.retain(|_, p| !p.is_zero());
    assert_eq!(published, positions, "window {window}: {result}");
    assert_eq!(
        result["transfer_count"].as_i64().unwrap(),
        count,
        "{result}"
    );
    for c in result["currencies"].as_array().unwrap() {
        let currency = c["currency"].as_str().unwrap();
        let banks: Decimal = positions
            .iter()
            .filter(|((_, cur), _)| cur == currency)
            .map(|(_, p)| *p)
            .sum();
        assert_eq!(amount(&c["hub_position"]), -banks, "{result}");
        let moved = |to_hub: bool| -> Decimal {
            result["instructions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["currency"] == currency && (i["payee"] == "HUB") == to_hub)
                .map(|i| amount(&i["amount"]))
                .sum()
        };
        assert_eq!(moved(true) - moved(false), -banks, "{result}");
    }
}

/// Every credit leg of `window` is applied once where its receiver is: what each
/// partition's own window credits to banks of other partitions is, per bank and
/// currency, what those partitions applied (legs travel after the commit: polled).
async fn assert_credits_applied_once(window: i64, nodes: &[(&TestApp, u32)]) {
    let assignment = Assignment::parse(ASSIGNMENT).unwrap();
    let mut owed: BTreeMap<(u32, String, String), Decimal> = BTreeMap::new();
    for (node, partition) in nodes {
        let local = node
            .wait_for_window_state(window, &["netted", "settled"])
            .await;
        for p in local["positions"].as_array().unwrap() {
            let bank = p["bank"].as_str().unwrap();
            let owner = assignment.owner(&deltran::domain::BankCode::parse(bank).unwrap());
            let credits = amount(&p["credits"]);
            if owner.0 != *partition && !credits.is_zero() {
                let key = (
                    owner.0,
                    bank.to_string(),
                    p["currency"].as_str().unwrap().into(),
                );
                *owed.entry(key).or_default() += credits;
            }
        }
    }
    let path = format!("/api/v1/cluster/windows/{window}/credits");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut applied: BTreeMap<(u32, String, String), Decimal> = BTreeMap::new();
        for (node, partition) in nodes {
            let reply = node.get(&path).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            for a in reply.body["applied"].as_array().unwrap() {
                let key = (
                    *partition,
                    a["bank"].as_str().unwrap().into(),
                    a["currency"].as_str().unwrap().into(),
                );
                applied.insert(key, amount(&a["amount"]));
            }
        }
        applied.retain(|_, a| !a.is_zero());
        if applied == owed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "window {window}: credits owed {owed:?}, applied {applied:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn each_partition_decides_its_own_banks_and_the_cluster_nets_their_sums() {
    let nats = NatsCluster::start();
    let p0 = spawn_node(&nats, 0, 0, fresh_database().await).await;
    let p1 = spawn_node(&nats, 1, 1, fresh_database().await).await;

    // ICICI's transfer taken by partition 1's node is decided and stored by
    // partition 0; ENBD's taken by partition 0's node, by partition 1.
    let icici = p1
        .submit(&transfer("ICICI", "ENBD", "1000.00", "c-1"))
        .await;
    assert_eq!(icici.status, 202, "{}", icici.body);
    let icici_id = icici.str("transaction_id");
    let id = deltran::domain::TransferId::parse(&icici_id).unwrap();
    assert!(p0.store.transfer(id).await.is_ok());
    assert!(p1.store.transfer(id).await.is_err());
    // Read through either node, as the operator or a party; another bank does not
    // see it on either.
    for node in [&p0, &p1] {
        let read = node.transfer(&icici_id).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.body["transaction_id"], icici.body["transaction_id"]);
        assert_eq!(read.body["amount"], icici.body["amount"]);
        let path = format!("/api/v1/transfers/{icici_id}");
        assert_eq!(
            node.get_as(Some(node.keys.bank("ENBD")), &path)
                .await
                .status,
            200
        );
        assert_eq!(
            node.get_as(Some(node.keys.bank("HDFC")), &path)
                .await
                .status,
            404
        );
    }
    let unknown = p1
        .transfer(&deltran::domain::TransferId::new().to_string())
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let enbd = p0.submit(&transfer("ENBD", "HDFC", "250.50", "c-2")).await;
    assert_eq!(enbd.status, 202, "{}", enbd.body);
    let enbd_id = enbd.str("transaction_id");
    let id = deltran::domain::TransferId::parse(&enbd_id).unwrap();
    assert!(p1.store.transfer(id).await.is_ok());
    assert!(p0.store.transfer(id).await.is_err());

    // A replay through the other node answers the original, and says so; the same
    // key with another body is refused by the owner, wherever it came in.
    let replay = p0
        .submit(&transfer("ICICI", "ENBD", "1000.00", "c-1"))
        .await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.str("transaction_id"), icici_id);
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let reused = p1.submit(&transfer("ICICI", "ENBD", "999.00", "c-1")).await;
    assert_eq!(reused.status, 409, "{}", reused.body);
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_eq!(reused.body["transaction_id"], json!(icici_id));
    // A rejection by the owner travels back whole: AXIS's cap is 0 there.
    p0.set_cap("AXIS", "INR", "0").await;
    let refused = p1.submit(&transfer("AXIS", "ADCB", "10.00", "c-3")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.code(), "limit_exceeded");
    assert_eq!(
        p0.transfer(&refused.str("transaction_id")).await.status,
        200
    );
    // The caller is checked where it called: ENBD's key may not send as ICICI.
    let as_bank = |bank: &str, body: Value| {
        let key = p1.keys.bank(bank).to_string();
        let p1 = &p1;
        async move {
            p1.send_as(
                Some(&key),
                "POST",
                "/api/v1/transfers",
                body.to_string().into_bytes(),
                &[],
            )
            .await
        }
    };
    let forbidden = as_bank("ENBD", transfer("ICICI", "ENBD", "1.00", "c-4")).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(forbidden.code(), "sender_not_principal");
    let own = as_bank("ICICI", transfer("ICICI", "ADCB", "5.00", "c-5")).await;
    assert_eq!(own.status, 202, "{}", own.body);

    // Every window holding one of them is cut on both partitions and added up.
    let windows: Vec<i64> = [&icici, &enbd, &own]
        .iter()
        .map(|r| r.body["window_id"].as_i64().unwrap())
        .collect();
    let (first, last) = (
        *windows.iter().min().unwrap(),
        *windows.iter().max().unwrap(),
    );
    // An accepted transfer to another partition's bank, cancelled while its window
    // is open: its credit leg and then the leg's reversal go to the receiver.
    let mut cancelled = None;
    for attempt in 0..5 {
        let sent = p0
            .submit(&transfer(
                "HDFC",
                "ADCB",
                "42.00",
                &format!("c-6-{attempt}"),
            ))
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        let reply = p0.cancel(&sent.str("transaction_id")).await;
        if reply.status == 200 {
            cancelled = Some(sent.body["window_id"].as_i64().unwrap());
            break;
        }
        assert_eq!(reply.status, 409, "{}", reply.body);
    }
    let cancelled = cancelled.expect("a transfer cancelled while its window was open");
    let last = last.max(cancelled);
    for window in first..=last {
        assert_result_adds_the_partitions(window, &[&p0, &p1]).await;
        assert_credits_applied_once(window, &[(&p0, 0), (&p1, 1)]).await;
    }
    let reversed = p1
        .get(&format!("/api/v1/cluster/windows/{cancelled}/credits"))
        .await;
    let adcb_legs: i64 = reversed.body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["bank"] == "ADCB")
        .map(|a| a["legs"].as_i64().unwrap())
        .sum();
    assert!(
        adcb_legs >= 2,
        "the credit and its reversal: {}",
        reversed.body
    );
    assert_eq!(reversed.body["owed_legs"], 0, "{}", reversed.body);
    let result = cluster_window(&p1, windows[0]).await;
    assert!(result["transfer_count"].as_i64().unwrap() >= 1, "{result}");

    // Each node's view: its partition, the assignment, one coordinator between them.
    let view = p0.get("/api/v1/cluster").await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["partition"], 0);
    assert_eq!(view.body["assignment"]["ENBD"], 1);
    assert_eq!(view.body["partitions"], json!([0, 1]));
    // A key made on one node works on the other within about a second (the
    // partitions share their keys), and stops working there once revoked.
    let made = p0.create_key("auditor", None).await;
    let (key, key_id) = (
        made["key"].as_str().unwrap().to_string(),
        made["id"].as_str().unwrap().to_string(),
    );
    eventually("a key made on node 0 works on node 1", || {
        let key = key.clone();
        let p1 = &p1;
        async move { p1.get_as(Some(&key), "/api/v1/cluster").await.status == 200 }
    })
    .await;
    let revoked = p0
        .send_raw(
            "POST",
            &format!("/api/v1/keys/{key_id}/revoke"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    eventually("the key revoked on node 0 is refused on node 1", || {
        let key = key.clone();
        let p1 = &p1;
        async move {
            let reply = p1.get_as(Some(&key), "/api/v1/cluster").await;
            reply.status == 401 && reply.code() == "key_revoked"
        }
    })
    .await;
    let mut coordinating = 0;
    for node in [&p0, &p1] {
        if node.get("/api/v1/cluster").await.body["coordinator"] == true {
            coordinating += 1;
        }
    }
    assert_eq!(coordinating, 1);
    assert_eq!(
        p0.get_as(Some(p0.keys.bank("ICICI")), "/api/v1/cluster")
            .await
            .status,
        403
    );
    p0.assert_audit_clean().await;
    p1.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_partition_moved_to_another_node_is_served_there_and_fenced_at_its_former_owner() {
    let nats = NatsCluster::start();
    let p0 = spawn_node(&nats, 0, 0, fresh_database().await).await;
    let p1_database = fresh_database().await;
    let p1 = spawn_node(&nats, 1, 1, p1_database.clone()).await;
    let before = p0.submit(&transfer("ENBD", "ICICI", "70.00", "m-1")).await;
    assert_eq!(before.status, 202, "{}", before.body);
    let before_id = before.str("transaction_id");

    // A standby node for partition 1 waits while node 1 holds the lease live; the
    // operator moves the lease to it.
    let standby_settings = node_settings(&nats, 2, 1);
    let standby = actix_web::rt::spawn(async move {
        let joined = join(&standby_settings).await;
        (standby_settings, joined)
    });
    actix_web::rt::time::sleep(Duration::from_millis(LEASE_TTL_MS)).await;
    assert!(!standby.is_finished(), "the standby took a live lease");
    let moved = deltran::cluster::node::move_partition(
        &nats.urls(),
        PartitionId(1),
        NodeId(2),
        Duration::from_millis(LEASE_TTL_MS),
        3,
    )
    .await
    .unwrap();
    assert_eq!((moved.holder, moved.epoch.0), (NodeId(2), 2));
    let (settings, joined) = standby.await.unwrap();
    assert_eq!(joined.epoch().0, 2);
    let mut database = p1_database.clone();
    fence::write_under(&mut database, joined.epoch());
    let p2 = TestApp::spawn_node(settings, database, Some(joined)).await;

    // The former owner's writes are refused by its store from the take-over on, and
    // it stops serving at its next renewal.
    let (old, connection) = p1.database.connect(tokio_postgres::NoTls).await.unwrap();
    actix_web::rt::spawn(connection);
    let write = old
        .batch_execute("UPDATE banks SET name = name WHERE code = 'ENBD'")
        .await
        .unwrap_err();
    assert_eq!(write.code().map(|c| c.code()), Some("DTF01"), "{write}");
    let p1_address = p1.address.clone();
    eventually("the former owner stops serving", || {
        let url = format!("{p1_address}/health");
        async move {
            awc::Client::new()
                .get(url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_err()
        }
    })
    .await;

    // The new owner answers for partition 1, its predecessor's transfers included.
    let replay = p0.submit(&transfer("ENBD", "ICICI", "70.00", "m-1")).await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.str("transaction_id"), before_id);
    let after = p0.submit(&transfer("ADCB", "AXIS", "12.34", "m-2")).await;
    assert_eq!(after.status, 202, "{}", after.body);
    assert_eq!(p2.transfer(&after.str("transaction_id")).await.status, 200);
    let window = after.body["window_id"].as_i64().unwrap();
    assert_result_adds_the_partitions(window, &[&p0, &p2]).await;
    // The legs the former owner owed, and those owed to partition 1 meanwhile, are
    // applied once by whoever holds each side now.
    for window in before.body["window_id"].as_i64().unwrap()..=window {
        assert_credits_applied_once(window, &[(&p0, 0), (&p2, 1)]).await;
    }
    p0.assert_audit_clean().await;
    p2.assert_audit_clean().await;
}

/// Any node serves any bank: a request about a bank of the other partition, a
/// transfer held there, or what a bank sends or reads about itself is served by that
/// partition's node as if the client had called it; a list of transfers gathers
/// every partition's.
#[actix_web::test]
async fn any_node_serves_a_request_for_any_bank() {
    let nats = NatsCluster::start();
    let (p0, p1) = spawn_two_nodes(&nats).await;

    // The registry of a bank is its partition's: a cap set through node 1 for AXIS
    // (partition 0) is set at partition 0, which decides AXIS's transfers.
    p1.set_cap("AXIS", "INR", "0").await;
    let axis = p0.get("/api/v1/banks/AXIS").await;
    assert_eq!(axis.status, 200, "{}", axis.body);
    let refused = p1.submit(&transfer("AXIS", "ADCB", "10.00", "a-1")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.code(), "limit_exceeded");
    // A bank's positions, balances and funds, through the node that does not own it.
    p1.funds_in("ICICI", "INR", "5000.00").await;
    assert_eq!(
        p0.balance("ICICI", "INR").await["balance"],
        json!("5000.00")
    );
    assert_eq!(p1.positions("ICICI").await.status, 200);
    // A bank's key sees its own bank through either node, and not another's.
    let icici_key = p0.keys.bank("ICICI").to_string();
    let path = "/api/v1/banks/ENBD/positions";
    assert_eq!(p0.get_as(Some(&icici_key), path).await.status, 404);

    // Feeds on node 1: the operator's and ICICI's (a bank of partition 0).
    let mut operator_feed = WsClient::connect(&p1).await;
    let mut icici_feed = WsClient::connect_as(&p1, &icici_key).await;
    for feed in [&mut operator_feed, &mut icici_feed] {
        feed.send(&json!({"type": "subscribe", "channels": ["transactions"]}))
            .await;
        feed.next_of("subscribed").await;
    }
    // Node 0 relays stored transfers once it has heard that node 1 has a session
    // listening to them (within about a second): probe until one arrives.
    for probe in 0.. {
        assert!(
            probe < 20,
            "node 0 never relays its stored transfers to node 1"
        );
        let sent = p0
            .submit(&transfer(
                "HDFC",
                "ADCB",
                "1.00",
                &format!("a-probe-{probe}"),
            ))
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        let id = sent.body["transaction_id"].clone();
        let mut arrived = false;
        while let Some(event) = operator_feed.next(Duration::from_millis(500)).await {
            arrived |= event["type"] == "transaction" && event["data"]["transaction_id"] == id;
        }
        if arrived {
            break;
        }
    }

    // ICICI's transfers (held by partition 0) and ENBD's to ICICI (held by 1).
    let mut ids = Vec::new();
    let mut all_ids = Vec::new();
    for (i, (sender, receiver, amount)) in [
        ("ICICI", "ENBD", "10.00"),
        ("ENBD", "ICICI", "1.00"),
        ("ICICI", "ADCB", "20.00"),
        ("ENBD", "ICICI", "2.00"),
        ("HDFC", "ENBD", "30.00"),
    ]
    .iter()
    .enumerate()
    {
        let sent = p1
            .submit(&transfer(sender, receiver, amount, &format!("a-2-{i}")))
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        all_ids.push(sent.str("transaction_id"));
        if [sender, receiver].contains(&&"ICICI") {
            ids.push(sent.str("transaction_id"));
        }
    }
    ids.sort();
    all_ids.sort();
    // Node 1's feeds carry every partition's transfers: all five to the operator,
    // ICICI's four (and not HDFC's to ENBD) to ICICI.
    for (feed, expected) in [(&mut operator_feed, &all_ids), (&mut icici_feed, &ids)] {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            let event = feed.next_of("transaction").await;
            let id = event["data"]["transaction_id"]
                .as_str()
                .unwrap()
                .to_string();
            if id.len() == 36 && all_ids.contains(&id) {
                seen.push(id);
            }
        }
        seen.sort();
        assert_eq!(&seen, expected);
    }
    let hdfc_id = all_ids.iter().find(|id| !ids.contains(id)).unwrap();
    while let Some(event) = icici_feed.next(Duration::from_millis(500)).await {
        assert_ne!(
            event["data"]["transaction_id"].as_str(),
            Some(hdfc_id.as_str())
        );
    }
    // ICICI lists the four it is party to, through either node, three at a time:
    // the pages gather both partitions' in id order.
    for node in [&p0, &p1] {
        let mut listed = Vec::new();
        let mut cursor = String::new();
        for page in 0.. {
            assert!(page < 3, "the pages do not end: {listed:?}");
            let reply = node
                .get_as(
                    Some(&icici_key),
                    &format!("/api/v1/transfers?limit=3{cursor}"),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            for t in reply.body["transactions"].as_array().unwrap() {
                listed.push(t["transaction_id"].as_str().unwrap().to_string());
            }
            match reply.body["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(listed, ids);
    }
    let bad = p1.get("/api/v1/transfers?limit=0").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = p1.get("/api/v1/transfers?partition_only=yes").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    // `partition_only=true`: what the node's own partition holds (ENBD's two).
    let own = p1
        .get_as(Some(&icici_key), "/api/v1/transfers?partition_only=true")
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let senders: Vec<&str> = own.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sender_bank"].as_str().unwrap())
        .collect();
    assert_eq!(senders, ["ENBD", "ENBD"], "{}", own.body);

    // A transfer held by the other partition is cancelled through node 1 by its
    // sender; a bank that is not a party does not see it there either.
    let mut cancelled = false;
    for attempt in 0..5 {
        let sent = p0
            .submit(&transfer("HDFC", "ADCB", "3.00", &format!("a-3-{attempt}")))
            .await;
        let id = sent.str("transaction_id");
        assert_eq!(
            p1.cancel_as(p1.keys.bank("ENBD"), &id).await.status,
            404,
            "not ENBD's"
        );
        let reply = p1.cancel_as(p1.keys.bank("HDFC"), &id).await;
        if reply.status == 200 {
            assert_eq!(reply.body["status"], "cancelled", "{}", reply.body);
            assert_eq!(p0.transfer(&id).await.body["status"], "cancelled");
            cancelled = true;
            break;
        }
        assert_eq!(reply.status, 409, "{}", reply.body);
    }
    assert!(cancelled, "a transfer cancelled while its window was open");

    // An ISO 20022 message from ICICI, sent to node 1, is decided by partition 0.
    let message = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/iso20022/pacs.008.001.08-two.xml"),
    )
    .unwrap();
    let reply = p1
        .send_as(
            Some(&icici_key),
            "POST",
            "/api/v1/iso20022/pacs.008",
            message.into_bytes(),
            &[("content-type", "application/xml")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // Both transactions decided and stored there (the first past ICICI's prefunded
    // balance, which partition 0 holds: rejected).
    let decided: Vec<&str> = reply
        .text
        .split("transaction_id ")
        .skip(1)
        .map(|rest| &rest[..36])
        .collect();
    assert_eq!(decided.len(), 2, "{}", reply.text);
    for id in decided {
        let id = deltran::domain::TransferId::parse(id).unwrap();
        assert!(
            p0.store.transfer(id).await.is_ok(),
            "{id} not at partition 0"
        );
    }

    // A netted transfer between partitions cannot be returned yet: said plainly.
    let crossing = p0.submit(&transfer("ICICI", "ENBD", "7.00", "a-4")).await;
    assert_eq!(crossing.status, 202, "{}", crossing.body);
    let window = crossing.body["window_id"].as_i64().unwrap();
    p0.wait_for_window_state(window, &["netted", "settled"])
        .await;
    let returned = p1
        .send_as(
            Some(p1.keys.bank("ENBD")),
            "POST",
            &format!(
                "/api/v1/transfers/{}/return",
                crossing.str("transaction_id")
            ),
            json!({"amount": "0.01"}).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(returned.status, 409, "{}", returned.body);
    assert_eq!(returned.code(), "transfer_not_returnable");
    assert!(
        returned.body["detail"]
            .as_str()
            .unwrap()
            .contains("different partitions"),
        "{}",
        returned.body
    );

    // A batch sent with a bank's key goes to that bank's partition from either node;
    // the operator's batch is decided where it arrives, and a transfer of another
    // partition's sender in it is answered 421 alone.
    let enbd_batch = json!({"transfers": [transfer("ENBD", "ICICI", "3.00", "a-batch-1")]});
    let via_p0 = p0
        .send_as(
            Some(p1.keys.bank("ENBD")),
            "POST",
            "/api/v1/transfers/batch",
            enbd_batch.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(via_p0.status, 200, "{}", via_p0.body);
    assert_eq!(via_p0.body["results"][0]["status"], 202, "{}", via_p0.body);
    let mixed = p0
        .post(
            "/api/v1/transfers/batch",
            &json!({"transfers": [transfer("HDFC", "ADCB", "2.00", "a-batch-2"),
                                  transfer("ENBD", "ICICI", "2.00", "a-batch-3")]}),
        )
        .await;
    assert_eq!(mixed.status, 200, "{}", mixed.body);
    let results = &mixed.body["results"];
    assert_eq!(
        (&results[0]["status"], &results[1]["status"]),
        (&json!(202), &json!(421)),
        "{}",
        mixed.body
    );
    assert_eq!(results[1]["problem"]["code"], "bank_on_another_partition");
    p0.assert_audit_clean().await;
    p1.assert_audit_clean().await;
}

/// Each record of the registry changes at its home (a bank's at its partition, the
/// corridors and the screening list at partition 0) whichever node the operator
/// called, and reaches every other node's copy, which decides with it.
#[actix_web::test]
async fn the_registry_changes_at_its_home_and_reaches_every_node() {
    let nats = NatsCluster::start();
    let (p0, p1) = spawn_two_nodes(&nats).await;
    let corridor = |id: &str| deltran::domain::CorridorId::parse(id).unwrap();
    let bank = |code: &str| deltran::domain::BankCode::parse(code).unwrap();

    // A corridor made through node 1 is made at partition 0 and reaches partition
    // 1, which then decides ENBD's transfers to ADCB in it.
    let made = p1
        .create_corridor(&json!({"from_currency": "AED", "to_currency": "AED",
                                 "fx_rate": "1", "amount_max": "1000000"}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(p0.store.corridor(corridor("AED-AED")).await.is_ok());
    // Stored first, then its actor started: wait for the engine, which decides.
    eventually("the corridor reaches partition 1", || async {
        p1.store.corridor(corridor("AED-AED")).await.is_ok()
            && p1.engine.directory.corridor(&corridor("AED-AED")).is_some()
    })
    .await;
    let sent = p1.submit(&transfer("ENBD", "ADCB", "5.00", "r-1")).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    // A rate changed through node 1 likewise.
    let changed = p1
        .patch("/api/v1/corridors/INR-AED", &json!({"fx_rate": "0.05"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    eventually("the new rate reaches partition 1", || async {
        p1.store
            .corridor(corridor("INR-AED"))
            .await
            .is_ok_and(|c| c.fx_rate.to_string() == "0.05")
    })
    .await;

    // ENBD (partition 1) suspended through node 0: suspended at partition 1, and
    // partition 0's copy follows, so ICICI's transfer to it is refused there.
    let suspended = p0
        .patch("/api/v1/banks/ENBD", &json!({"status": "suspended"}))
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    assert_eq!(
        p1.store.bank(&bank("ENBD")).await.unwrap().status.as_str(),
        "suspended"
    );
    eventually("the suspension reaches partition 0", || async {
        p0.store
            .bank(&bank("ENBD"))
            .await
            .is_ok_and(|b| b.status.as_str() == "suspended")
            && p0.engine.directory.bank_status(&bank("ENBD"))
                == Some(deltran::domain::BankStatus::Suspended)
    })
    .await;
    let refused = p0.submit(&transfer("ICICI", "ENBD", "5.00", "r-2")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.code(), "receiver_bank_suspended");
    // A bank registered through node 1 that the assignment does not name belongs to
    // partition 0: made there, copied to partition 1.
    let registered = p1
        .post_bank(&json!({"code": "FAB", "name": "First Abu Dhabi", "country": "AE"}))
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert!(p0.store.bank(&bank("FAB")).await.is_ok());
    eventually("the new bank reaches partition 1", || async {
        p1.store.bank(&bank("FAB")).await.is_ok()
    })
    .await;

    // A screening entry added through node 1 is added at partition 0 and reaches
    // partition 1's list; the list reads the same (the home's ids) through either.
    let added = p1
        .post(
            "/api/v1/screening/entries",
            &json!({"list": "sanctions", "name": "Ivan Example", "reference": "R-1"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    eventually("the entry reaches partition 1", || async {
        p1.store
            .screening_entries()
            .await
            .is_ok_and(|list| list.iter().any(|e| e.reference.as_deref() == Some("R-1")))
    })
    .await;
    let through_0 = p0.get("/api/v1/screening/entries").await;
    let through_1 = p1.get("/api/v1/screening/entries").await;
    assert_eq!(through_0.status, 200, "{}", through_0.body);
    assert_eq!(through_0.body, through_1.body);
    let removed = p1
        .send_raw(
            "DELETE",
            &format!("/api/v1/screening/entries/{}", added.body["id"]),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    eventually("the removal reaches partition 1", || async {
        p1.store
            .screening_entries()
            .await
            .is_ok_and(|list| list.iter().all(|e| e.reference.as_deref() != Some("R-1")))
    })
    .await;

    // The assignment is the cluster's, kept on the log: a node started with another
    // one is refused before it claims anything.
    let mut other = node_settings(&nats, 2, 2);
    other.cluster.partitions = Some(Assignment::parse("ICICI=2,ENBD=1").unwrap());
    let refused = deltran::cluster::node::join(&other.cluster).await;
    let error = refused
        .err()
        .expect("a node with another assignment is refused");
    assert!(error.to_string().contains("not the cluster's"), "{error}");
    p0.assert_audit_clean().await;
    p1.assert_audit_clean().await;
}
