//! Liquidity beyond rejection: transfers that queue at their sender's limit, their
//! release first in, first out as headroom appears, gridlock resolution at the
//! cut-off, expiry, cancellation (queued, and accepted while the window is open), and
//! an idempotent replay of a queued transfer.

use crate::helpers::{eventually, test_settings, TestApp};
use serde_json::{json, Value};

/// A rupee transfer between two Indian banks (the INR-INR corridor, rate 1, which
/// `spawn_with_rupee_corridor` adds): credits equal debits, so the figures stay round.
fn rupees(sender: &str, receiver: &str, amount: &str) -> Value {
    json!({"sender_bank": sender, "receiver_bank": receiver, "amount": amount,
           "from_currency": "INR", "to_currency": "INR"})
}

fn queued(sender: &str, receiver: &str, amount: &str) -> Value {
    let mut body = rupees(sender, receiver, amount);
    body["on_limit"] = json!("queue");
    body
}

async fn spawn_with_rupee_corridor(queue_ttl_windows: u32) -> TestApp {
    let mut settings = test_settings();
    settings.queue_ttl_windows = queue_ttl_windows;
    let app = TestApp::spawn_with_settings(settings).await;
    let corridor = app
        .create_corridor(&json!({"from_currency": "INR", "to_currency": "INR",
                                 "fx_rate": "1", "amount_max": "100000000"}))
        .await;
    assert_eq!(corridor.status, 201, "{}", corridor.body);
    app
}

async fn status_of(app: &TestApp, id: &str) -> Value {
    app.transfer(id).await.body
}

#[actix_web::test]
async fn a_queued_transfer_waits_and_leaves_first_in_first_out_as_credits_arrive() {
    let app = spawn_with_rupee_corridor(60).await;
    app.set_cap("ICICI", "INR", "1000").await;
    app.submit_accepted(&rupees("ICICI", "HDFC", "800")).await;

    // 500 would pass the cap: queued, answered 202, in no window.
    let first = app.submit(&queued("ICICI", "AXIS", "500")).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.str("status"), "queued");
    assert_eq!(first.body["window_id"], Value::Null);
    assert_eq!(first.str("on_limit"), "queue");
    assert_eq!(first.str("priority"), "normal");
    let window = app.current_window_id().await;
    assert_eq!(first.body["queued_in_window"], json!(window));
    // 100 would fit, but asks to queue and so waits behind the 500.
    let second = app.submit(&queued("ICICI", "AXIS", "100")).await;
    assert_eq!(second.str("status"), "queued");
    // One that does not ask to queue is judged on its own, as always: 100 fits.
    app.submit_accepted(&rupees("ICICI", "AXIS", "100")).await;
    let row = app.position("ICICI", "INR").await;
    assert_eq!(
        (row["exposure"].as_str(), row["queued_count"].as_u64()),
        (Some("900.00"), Some(2))
    );
    assert_eq!(row["queued_value"], "600.00");

    // A credit of 300 leaves 400 of headroom: the 500 does not fit, and the 100 may
    // not overtake it.
    app.submit_accepted(&rupees("HDFC", "ICICI", "300")).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        status_of(&app, &first.str("transaction_id")).await["status"],
        "queued"
    );
    assert_eq!(
        status_of(&app, &second.str("transaction_id")).await["status"],
        "queued"
    );

    // Another 300: headroom 700, both leave, in order, into the open window.
    app.submit_accepted(&rupees("HDFC", "ICICI", "300")).await;
    for reply in [&first, &second] {
        let id = reply.str("transaction_id");
        eventually("the queued transfer is released", || async {
            status_of(&app, &id).await["status"] == "accepted"
        })
        .await;
        let released = status_of(&app, &id).await;
        assert_eq!(released["window_id"], json!(window));
        assert_eq!(released["queued_in_window"], json!(window));
        assert!(released["status_changed_at"].is_string(), "{released}");
    }
    eventually("the books show the released transfers", || async {
        let row = app.position("ICICI", "INR").await;
        row["exposure"] == "900.00" && row["queued_count"] == 0 && row["reserved"] == "0.00"
    })
    .await;
    let closed = app.close_window().await;
    let netted = app.wait_for_window_state(closed, &["netted"]).await;
    assert_eq!(netted["transfer_count"], 6, "{netted}");
    // The window's queue figures: the two released into it, their value and wait.
    let queue = &netted["queue"][0];
    assert_eq!(
        (
            queue["currency"].as_str(),
            &queue["released_count"],
            queue["released_value"].as_str()
        ),
        (Some("INR"), &json!(2), Some("600.00")),
        "{netted}"
    );
    assert!(queue["wait_max_ms"].as_i64().unwrap() >= queue["wait_mean_ms"].as_i64().unwrap());
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_high_priority_transfer_leaves_first_and_a_raised_cap_releases_the_queue() {
    let app = spawn_with_rupee_corridor(60).await;
    app.set_cap("ICICI", "INR", "100").await;
    let normal = app.submit(&queued("ICICI", "AXIS", "300")).await;
    let mut body = queued("ICICI", "AXIS", "400");
    body["priority"] = json!("high");
    let high = app.submit(&body).await;
    assert_eq!(
        (
            normal.str("status"),
            high.str("status"),
            high.str("priority")
        ),
        ("queued".into(), "queued".into(), "high".into())
    );
    // Room for the high one only: it goes first though it came second.
    app.set_cap("ICICI", "INR", "500").await;
    eventually("the high-priority transfer is released", || async {
        status_of(&app, &high.str("transaction_id")).await["status"] == "accepted"
    })
    .await;
    assert_eq!(
        status_of(&app, &normal.str("transaction_id")).await["status"],
        "queued"
    );
    app.set_cap("ICICI", "INR", "700").await;
    eventually("the normal one follows", || async {
        status_of(&app, &normal.str("transaction_id")).await["status"] == "accepted"
    })
    .await;
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn the_classic_three_bank_gridlock_is_released_together_at_the_cut_off() {
    let app = spawn_with_rupee_corridor(60).await;
    // Each bank may not owe anything: alone, no payment of the cycle can pass.
    for bank in ["ICICI", "HDFC", "AXIS"] {
        app.set_cap(bank, "INR", "0").await;
    }
    let mut ids = Vec::new();
    for (s, r) in [("ICICI", "HDFC"), ("HDFC", "AXIS"), ("AXIS", "ICICI")] {
        let reply = app.submit(&queued(s, r, "1000000")).await;
        assert_eq!(reply.str("status"), "queued", "{}", reply.body);
        ids.push(reply.str("transaction_id"));
    }
    // A bank that does not queue meets its cap as before.
    let rejected = app.submit(&rupees("ICICI", "AXIS", "1")).await;
    assert_eq!(
        (rejected.status.as_u16(), rejected.code()),
        (422, "limit_exceeded")
    );

    let window = app.close_window().await;
    // Nothing to pay: the window settles as soon as it is netted.
    let netted = app.wait_for_window_state(window, &["settled"]).await;
    assert_eq!(netted["transfer_count"], 3, "{netted}");
    for id in &ids {
        let t = status_of(&app, id).await;
        assert_eq!(
            (t["status"].as_str(), &t["window_id"]),
            (Some("settled"), &json!(window))
        );
    }
    // Released together, everyone's position nets to zero: no liquidity used.
    let inr = netted["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "INR")
        .cloned()
        .unwrap();
    assert_eq!(
        (inr["gross"].as_str(), inr["net"].as_str()),
        (Some("3000000.00"), Some("0.00"))
    );
    let released = app.metrics.render();
    assert!(
        released.contains("deltran_queue_released_total{currency=\"INR\",how=\"gridlock\"} 3"),
        "{released}"
    );
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_queued_transfer_expires_after_its_windows_and_its_sender_may_cancel_it_meanwhile() {
    let app = spawn_with_rupee_corridor(2).await;
    app.set_cap("ICICI", "INR", "0").await;
    let kept = app.submit(&queued("ICICI", "HDFC", "10")).await;
    let cancelled = app.submit(&queued("ICICI", "HDFC", "20")).await;
    let queued_in = kept.body["queued_in_window"].as_i64().unwrap();

    let cancel = app.cancel(&cancelled.str("transaction_id")).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.str("status"), "cancelled");
    assert_eq!(
        status_of(&app, &cancelled.str("transaction_id")).await["status"],
        "cancelled"
    );

    // Queued in window q with a time to live of 2: it may leave in q or q+1, and
    // expires when q+2 opens.
    let first = app.close_window().await;
    // Window q's figures show the queue's depth when it was netted: the one left.
    let netted = app
        .wait_for_window_state(first, &["netted", "settled"])
        .await;
    assert_eq!(
        netted["queue"],
        json!([{"currency": "INR", "released_count": 0, "released_value": "0.00",
                "wait_mean_ms": 0, "wait_max_ms": 0,
                "left_queued_count": 1, "left_queued_value": "10.00"}]),
        "{netted}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        status_of(&app, &kept.str("transaction_id")).await["status"],
        "queued"
    );
    let second = app.close_window().await;
    assert_eq!(second, queued_in + 1);
    let id = kept.str("transaction_id");
    eventually("the queued transfer expires", || async {
        status_of(&app, &id).await["status"] == "expired"
    })
    .await;
    assert_eq!(app.position("ICICI", "INR").await["queued_count"], 0);
    // Neither can be cancelled any more.
    for id in [kept.str("transaction_id"), cancelled.str("transaction_id")] {
        let again = app.cancel(&id).await;
        assert_eq!(
            (again.status.as_u16(), again.code()),
            (409, "transfer_not_cancellable")
        );
    }
    let listed = app.get("/api/v1/transfers?status=expired").await;
    assert_eq!(listed.body["transactions"].as_array().unwrap().len(), 1);
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn an_accepted_transfer_may_be_cancelled_by_its_sender_while_its_window_is_open_only() {
    let app = spawn_with_rupee_corridor(60).await;
    app.set_cap("ICICI", "INR", "1000").await;
    let t = app.submit_accepted(&rupees("ICICI", "HDFC", "700")).await;
    let id = t.str("transaction_id");

    // The receiver may not cancel, another bank does not see it, an auditor reads.
    let as_receiver = app.cancel_as(app.keys.bank("HDFC"), &id).await;
    assert_eq!(
        (as_receiver.status.as_u16(), as_receiver.code()),
        (403, "cancel_not_sender")
    );
    let as_other = app.cancel_as(app.keys.bank("AXIS"), &id).await;
    assert_eq!(as_other.status, 404);
    let as_auditor = app.cancel_as(&app.keys.auditor, &id).await;
    assert_eq!(as_auditor.status, 403);

    let cancel = app.cancel_as(app.keys.bank("ICICI"), &id).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(
        (cancel.str("status"), &cancel.body["window_id"]),
        ("cancelled".into(), &Value::Null)
    );
    // Its exposure and the receiver's credit are gone at once.
    let sender = app.position("ICICI", "INR").await;
    assert_eq!(
        (sender["exposure"].as_str(), sender["debits"].as_str()),
        (Some("0.00"), Some("0.00"))
    );
    assert_eq!(app.position("HDFC", "INR").await["credits"], "0.00");
    app.submit_accepted(&rupees("ICICI", "HDFC", "1000")).await;

    // After the cut-off it is too late.
    let late = app.submit_accepted(&rupees("HDFC", "ICICI", "50")).await;
    let window = app.close_window().await;
    let refused = app.cancel(&late.str("transaction_id")).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (409, "transfer_not_cancellable")
    );
    let netted = app.wait_for_window_state(window, &["netted"]).await;
    // The cancelled transfer was never netted: 1000 and 50 are.
    assert_eq!(netted["transfer_count"], 2, "{netted}");
    let icici = netted["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["bank"] == "ICICI")
        .cloned()
        .unwrap();
    assert_eq!(icici["position"], "-950.00");
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_replay_of_a_queued_transfer_answers_its_current_status_across_a_restart() {
    let app = spawn_with_rupee_corridor(60).await;
    let database = app.database.clone();
    app.set_cap("ICICI", "INR", "0").await;
    let body = queued("ICICI", "HDFC", "250");
    let first = app.submit_with_key(&body, "q-1").await;
    assert_eq!(first.str("status"), "queued");
    let replay = app.submit_with_key(&body, "q-1").await;
    assert_eq!(
        (replay.status.as_u16(), replay.body.clone()),
        (202, first.body.clone())
    );
    // The same key with `on_limit` changed is another request.
    let conflict = app
        .submit_with_key(&rupees("ICICI", "HDFC", "250"), "q-1")
        .await;
    assert_eq!(conflict.status, 409);
    app.stop().await;

    // The queue is rebuilt from the store: a credit releases the transfer.
    let mut settings = test_settings();
    settings.queue_ttl_windows = 60;
    let app = TestApp::spawn_with(settings, database).await;
    // The bank actor reads its books and queue from the store once started, not
    // before it answers: its positions show the queue once that read is in.
    eventually("the queue is read back from the store", || async {
        app.position("ICICI", "INR").await["queued_count"] == 1
    })
    .await;
    app.submit_accepted(&rupees("HDFC", "ICICI", "250")).await;
    let id = first.str("transaction_id");
    eventually("the rebuilt queue releases", || async {
        status_of(&app, &id).await["status"] == "accepted"
    })
    .await;
    let replay = app.submit_with_key(&body, "q-1").await;
    assert_eq!(replay.status, 202);
    assert_eq!(
        (replay.str("status"), replay.str("transaction_id")),
        ("accepted".into(), id)
    );
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn bad_queue_input_gets_a_clear_code() {
    let app = spawn_with_rupee_corridor(60).await;
    let mut body = rupees("ICICI", "HDFC", "1");
    body["on_limit"] = json!("wait");
    let reply = app.submit(&body).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (422, "on_limit_invalid")
    );
    let mut body = rupees("ICICI", "HDFC", "1");
    body["priority"] = json!("high");
    let reply = app.submit(&body).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (422, "priority_invalid")
    );
    let reply = app.cancel("not-a-uuid").await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (422, "transaction_id_invalid")
    );
    let reply = app.cancel(&uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(reply.status, 404);
}

#[actix_web::test]
async fn queued_transfers_under_load_across_short_windows_each_end_once_and_the_books_hold() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let mut settings = test_settings();
    settings.window_duration_ms = 30;
    settings.demo = true;
    settings.settlement_delay_ms = 5;
    settings.queue_ttl_windows = 3;
    let app = TestApp::spawn_with_settings(settings).await;
    let corridor = app
        .create_corridor(&json!({"from_currency": "INR", "to_currency": "INR",
                                 "fx_rate": "1", "amount_max": "100000000"}))
        .await;
    assert_eq!(corridor.status, 201);
    // Tight caps: much of the load queues, is released by credits, settlements or
    // gridlock resolution at the cut-offs, or expires.
    for bank in ["ICICI", "HDFC", "AXIS"] {
        app.set_cap(bank, "INR", "5000").await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let banks = ["ICICI", "HDFC", "AXIS"];
    let submitters = (0..6).map(|task| {
        let (app, stop) = (&app, stop.clone());
        async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let sender = banks[(task + i) % 3];
                let receiver = banks[(task + i + 1 + i % 2) % 3];
                let amount = format!("{}.00", 500 + (task * 37 + i * 113) % 3000);
                let mut body = queued(sender, receiver, &amount);
                if i.is_multiple_of(5) {
                    body["priority"] = json!("high");
                }
                let reply = app.submit(&body).await;
                assert_eq!(reply.status, 202, "{}", reply.body);
                i += 1;
            }
        }
    });
    let timer = async {
        actix_web::rt::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
    };
    futures_util::future::join(futures_util::future::join_all(submitters), timer).await;
    // With no more load, every queued transfer is released or expires within its
    // time to live (three windows of 30 ms).
    let client = app.sql().await;
    eventually("no transfer is left queued", || {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT count(*) FROM transfers WHERE status = 'queued'",
                    &[],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 0
        }
    })
    .await;
    let closed = app.close_window().await;
    app.wait_for_window_state(closed, &["netted", "settled"])
        .await;
    let counts = client
        .query_one(
            "SELECT count(*) FILTER (WHERE queued_in IS NOT NULL AND status = 'accepted'),
                    count(*) FILTER (WHERE status = 'expired'),
                    count(*) FILTER (WHERE queued_in IS NULL AND status = 'accepted')
               FROM transfers",
            &[],
        )
        .await
        .unwrap();
    let (released, expired, direct): (i64, i64, i64) =
        (counts.get(0), counts.get(1), counts.get(2));
    assert!(
        released > 0 && direct > 0,
        "released {released}, expired {expired}, direct {direct}"
    );
    // Every bank's books in the engine equal the store's, and the audit is clean:
    // each transfer in at most one window, each window's sums its transfers'.
    eventually("the books show no reservation left", || async {
        for bank in banks {
            if app.position(bank, "INR").await["reserved"] != "0.00" {
                return false;
            }
        }
        true
    })
    .await;
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_prefunded_banks_queue_waits_for_its_balance_and_leaves_on_a_funds_in() {
    let app = spawn_with_rupee_corridor(60).await;
    app.set_cap("ICICI", "INR", "1000000").await;
    app.funds_in("ICICI", "INR", "100").await;
    // Within the cap but beyond the balance: queued, not rejected.
    let waiting = app.submit(&queued("ICICI", "HDFC", "300")).await;
    assert_eq!(waiting.str("status"), "queued", "{}", waiting.body);
    let rejected = app.submit(&rupees("ICICI", "HDFC", "300")).await;
    assert_eq!(
        (rejected.status.as_u16(), rejected.code()),
        (422, "liquidity_insufficient")
    );
    app.funds_in("ICICI", "INR", "250").await;
    let id = waiting.str("transaction_id");
    eventually("the funds-in releases the queued transfer", || async {
        status_of(&app, &id).await["status"] == "accepted"
    })
    .await;
    eventually("its exposure is within the balance", || async {
        let row = app.position("ICICI", "INR").await;
        row["exposure"] == "300.00" && row["headroom"] == "50.00"
    })
    .await;
    app.assert_audit_clean().await;
}
