//! Batch submission (`POST /api/v1/transfers/batch`): each transfer judged exactly as
//! its single submission, in the batch's order; one bad transfer never harms its
//! siblings; idempotency per transfer; the batch's own bounds.

use crate::helpers::{inr_to_aed, test_settings, TestApp};
use serde_json::{json, Value};

fn keyed(amount: &str, key: &str) -> Value {
    let mut body = inr_to_aed(json!(amount));
    body["idempotency_key"] = json!(key);
    body
}

async fn batch(app: &TestApp, transfers: Vec<Value>) -> crate::helpers::Reply {
    app.post(
        "/api/v1/transfers/batch",
        &json!({ "transfers": transfers }),
    )
    .await
}

fn statuses(reply: &crate::helpers::Reply) -> Vec<u64> {
    reply.body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {}", reply.body))
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

fn codes(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["problem"]["code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[actix_web::test]
async fn each_transfer_is_judged_alone_and_answered_in_order() {
    let app = TestApp::spawn().await;
    let mut suspended_receiver = inr_to_aed(json!("5"));
    suspended_receiver["receiver_bank"] = json!("ADCB");
    app.update_bank("ADCB", &json!({"status": "suspended"}))
        .await;
    // Nested deeper than a single submission's body may be: refused alone too.
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let reply = batch(
        &app,
        vec![
            keyed("100.25", "b-1"),
            // Not a transfer at all: refused alone.
            json!({"sender_bank": "ICICI", "amount": "1"}),
            json!("a string"),
            inr_to_aed(json!("1.001")),
            json!({"sender_bank": "NOPE", "receiver_bank": "ENBD", "amount": "1",
                   "from_currency": "INR", "to_currency": "AED"}),
            // Rejected, and stored as such.
            suspended_receiver,
            json!({ "sender_bank": deep }),
            inr_to_aed(json!(7)),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(statuses(&reply), [202, 400, 400, 422, 422, 422, 400, 202]);
    assert_eq!(
        codes(&reply),
        [
            "",
            "field_missing",
            "field_invalid",
            "amount_has_too_many_decimals",
            "sender_bank_unknown",
            "receiver_bank_suspended",
            "json_too_deep",
            ""
        ]
    );
    assert_eq!(
        (&reply.body["succeeded"], &reply.body["failed"]),
        (&json!(2), &json!(6))
    );
    let results = reply.body["results"].as_array().unwrap();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], json!(i));
    }
    let first = &results[0]["transfer"];
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["amount"], "100.25");
    // The rejected one is stored, its problem carries it as a single submission's does.
    let rejected = &results[5]["problem"];
    assert_eq!(rejected["transfer"]["status"], "rejected");
    let stored = app
        .transfer(rejected["transaction_id"].as_str().unwrap())
        .await;
    assert_eq!(stored.str("reject_code"), "receiver_bank_suspended");
    // Exactly three transfers were stored: two accepted, one rejected.
    assert_eq!(
        app.scalar("SELECT count(*)::text FROM transfers").await,
        "3"
    );
    let read = app
        .transfer(first["transaction_id"].as_str().unwrap())
        .await;
    assert_eq!(read.status, 200);
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_senders_transfers_meet_its_limit_in_the_batchs_order() {
    let app = TestApp::spawn().await;
    app.set_cap("ICICI", "INR", "1000").await;
    let mut queue = inr_to_aed(json!("300"));
    queue["on_limit"] = json!("queue");
    let reply = batch(
        &app,
        vec![
            inr_to_aed(json!("400")),
            inr_to_aed(json!("500")),
            // 900 taken: 200 is past the cap, 100 still fits.
            inr_to_aed(json!("200")),
            inr_to_aed(json!("100")),
            queue,
            // Another sender's transfer is not held back by ICICI's limit.
            json!({"sender_bank": "HDFC", "receiver_bank": "ADCB", "amount": "5000",
                   "from_currency": "INR", "to_currency": "AED"}),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(statuses(&reply), [202, 202, 422, 202, 202, 202]);
    assert_eq!(codes(&reply)[2], "limit_exceeded");
    assert_eq!(reply.body["results"][4]["transfer"]["status"], "queued");
    let row = app.position("ICICI", "INR").await;
    assert_eq!(row["exposure"], "1000.00");
}

#[actix_web::test]
async fn idempotency_holds_per_transfer_within_and_across_batches() {
    let app = TestApp::spawn().await;
    let first = batch(
        &app,
        vec![keyed("10", "k-1"), keyed("20", "k-2"), keyed("10", "k-1")],
    )
    .await;
    assert_eq!(statuses(&first), [202, 202, 202], "{}", first.body);
    let results = first.body["results"].as_array().unwrap().clone();
    // The key used twice in one batch: one transfer, the second answer a replay.
    assert_eq!(
        results[0]["transfer"]["transaction_id"],
        results[2]["transfer"]["transaction_id"]
    );
    assert_eq!(results[0].get("replayed"), None);
    assert_eq!(results[2]["replayed"], true);

    // The batch again: every transfer a replay; a changed body under a used key is
    // refused alone.
    let again = batch(
        &app,
        vec![keyed("10", "k-1"), keyed("21", "k-2"), keyed("30", "k-3")],
    )
    .await;
    assert_eq!(statuses(&again), [202, 409, 202], "{}", again.body);
    assert_eq!(again.body["results"][0]["replayed"], true);
    assert_eq!(codes(&again)[1], "idempotency_key_reused");
    assert_eq!(
        again.body["results"][1]["problem"]["transaction_id"],
        results[1]["transfer"]["transaction_id"]
    );
    // A single submission with a batch's key replays it too.
    let single = app.submit(&keyed("30", "k-3")).await;
    assert_eq!(single.status, 202);
    assert_eq!(
        single.headers.get("idempotent-replayed").unwrap(),
        "true",
        "{}",
        single.body
    );
    assert_eq!(
        app.scalar("SELECT count(*)::text FROM transfers").await,
        "3"
    );
}

#[actix_web::test]
async fn a_bank_key_sends_only_its_own_transfers() {
    let app = TestApp::spawn().await;
    let mut hdfc = inr_to_aed(json!("5"));
    hdfc["sender_bank"] = json!("HDFC");
    let body = json!({"transfers": [inr_to_aed(json!("5")), hdfc]});
    let reply = app
        .send_as(
            Some(app.keys.bank("ICICI")),
            "POST",
            "/api/v1/transfers/batch",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(statuses(&reply), [202, 403]);
    assert_eq!(codes(&reply)[1], "sender_not_principal");
    let auditor = app
        .send_as(
            Some(&app.keys.auditor),
            "POST",
            "/api/v1/transfers/batch",
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(
        (auditor.status.as_u16(), auditor.code()),
        (403, "auditor_read_only")
    );
}

#[actix_web::test]
async fn a_batch_that_cannot_be_taken_is_refused_whole() {
    let mut settings = test_settings();
    settings.transfer_batch_max = 3;
    settings.transfer_batch_size_max_bytes = 4096;
    let app = TestApp::spawn_with_settings(settings).await;
    let refused = |reply: crate::helpers::Reply| (reply.status.as_u16(), reply.code().to_string());
    let one = || inr_to_aed(json!("1"));
    assert_eq!(
        refused(batch(&app, vec![]).await),
        (422, "batch_empty".into())
    );
    assert_eq!(
        refused(batch(&app, vec![one(), one(), one(), one()]).await),
        (413, "batch_too_many_transfers".into())
    );
    let mut long = one();
    long["reference"] = json!("r".repeat(5000));
    assert_eq!(
        refused(batch(&app, vec![long]).await),
        (413, "body_too_large".into())
    );
    for (body, code) in [
        (r#"{"transfers": "#, "malformed_json"),
        (r#"{"transfer": []}"#, "field_missing"),
        (r#"{"transfers": {}}"#, "field_invalid"),
    ] {
        let reply = app
            .send_raw("POST", "/api/v1/transfers/batch", body.into(), &[])
            .await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, code), "{body}");
    }
    let with_header = app
        .send_raw(
            "POST",
            "/api/v1/transfers/batch",
            json!({"transfers": [one()]}).to_string().into_bytes(),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(
        (with_header.status.as_u16(), with_header.code()),
        (400, "field_invalid")
    );
    // Nothing of any of them was stored.
    assert_eq!(
        app.scalar("SELECT count(*)::text FROM transfers").await,
        "0"
    );
    // Within the bounds, the same engine takes a batch.
    let taken = batch(&app, vec![one(), one(), one()]).await;
    assert_eq!(statuses(&taken), [202, 202, 202]);
}

/// Large enough for the writer's group commits to go in by COPY (`COPY_ROWS_MIN`),
/// and sent again, so that COPY meets used keys and the statement takes over: the
/// same transfers, replayed, the windows' sums exact either way.
#[actix_web::test]
async fn a_large_batch_and_its_replay_are_stored_exactly_once() {
    let app = TestApp::spawn().await;
    let transfers: Vec<Value> = (0..900)
        .map(|i| keyed(&format!("{}.{:02}", 10 + i, i % 100), &format!("big-{i}")))
        .collect();
    let first = batch(&app, transfers.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["succeeded"], 900, "{}", first.body["results"][0]);
    let again = batch(&app, transfers).await;
    assert_eq!(again.body["succeeded"], 900);
    let results = again.body["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["replayed"] == true));
    assert_eq!(
        results[899]["transfer"]["transaction_id"],
        first.body["results"][899]["transfer"]["transaction_id"]
    );
    assert_eq!(
        app.scalar("SELECT count(*)::text FROM transfers").await,
        "900"
    );
    // What the batch sent is what the window's sums and the sender's exposure hold.
    let sent: rust_decimal::Decimal = (0..900)
        .map(|i| {
            format!("{}.{:02}", 10 + i, i % 100)
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    let row = app.position("ICICI", "INR").await;
    assert_eq!(
        row["exposure"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        sent
    );
    app.assert_audit_clean().await;
}

/// A small group commit of new transfers goes in by one plain insert; one that meets a
/// used key is refused whole and the full statement takes it, which tells the replay
/// from the new transfers beside it. The sums are exact either way.
#[actix_web::test]
async fn a_small_group_commit_meeting_a_used_key_is_taken_by_the_statement() {
    let app = TestApp::spawn().await;
    let commits = |path: &str| {
        app.metrics
            .store_group_commits
            .with_label_values(&[path])
            .get()
    };
    let first = batch(
        &app,
        vec![keyed("10.00", "small-1"), keyed("20.00", "small-2")],
    )
    .await;
    assert_eq!(statuses(&first), [202, 202], "{}", first.body);
    assert!(commits("insert") >= 1);
    assert_eq!(commits("statement"), 0);
    let second = batch(
        &app,
        vec![
            keyed("10.00", "small-1"),
            keyed("30.00", "small-3"),
            keyed("40.00", "small-4"),
        ],
    )
    .await;
    assert_eq!(statuses(&second), [202, 202, 202], "{}", second.body);
    let results = second.body["results"].as_array().unwrap();
    assert_eq!(results[0]["replayed"], true);
    assert_eq!(
        results[0]["transfer"]["transaction_id"],
        first.body["results"][0]["transfer"]["transaction_id"]
    );
    assert!(results[1..]
        .iter()
        .all(|r| r.get("replayed") != Some(&json!(true))));
    assert!(
        commits("statement") >= 1,
        "the replay went to the statement"
    );
    assert_eq!(
        app.scalar("SELECT count(*)::text FROM transfers").await,
        "4"
    );
    let exposure = app.position("ICICI", "INR").await["exposure"]
        .as_str()
        .unwrap()
        .parse::<rust_decimal::Decimal>()
        .unwrap();
    assert_eq!(exposure, rust_decimal::Decimal::new(100, 0));
    app.assert_audit_clean().await;
}

/// `answer=brief`: each accepted transfer answered by what the engine decided (the
/// same id, status, window, rate and converted amount as the full answer's transfer),
/// a refusal by the same problem; an unknown form refused.
#[actix_web::test]
async fn a_brief_answer_carries_what_the_engine_decided() {
    let app = TestApp::spawn().await;
    let path = "/api/v1/transfers/batch?answer=brief";
    let sent = json!({ "transfers": [keyed("10.50", "brief-1"), inr_to_aed(json!("1.001"))] });
    let reply = app.post(path, &sent).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(statuses(&reply), [202, 422]);
    assert_eq!(codes(&reply), ["", "amount_has_too_many_decimals"]);
    let decided = &reply.body["results"][0]["decided"];
    assert!(reply.body["results"][0].get("transfer").is_none());
    let stored = app
        .transfer(decided["transaction_id"].as_str().expect("an id"))
        .await
        .body;
    for (brief, full) in [
        ("transaction_id", "transaction_id"),
        ("status", "status"),
        ("window_id", "window_id"),
        ("fx_rate", "fx_rate"),
        ("converted_amount", "converted_amount"),
    ] {
        assert_eq!(
            decided[brief], stored[full],
            "{brief}: {decided} against {stored}"
        );
    }
    assert_eq!(decided.as_object().unwrap().len(), 5, "{decided}");
    // A replay answers briefly too, as a replay.
    let again = app
        .post(path, &json!({ "transfers": [keyed("10.50", "brief-1")] }))
        .await;
    assert_eq!(again.body["results"][0]["replayed"], true);
    assert_eq!(again.body["results"][0]["decided"], *decided);
    let unknown = app
        .post("/api/v1/transfers/batch?answer=short", &sent)
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (400, "query_invalid")
    );
    app.assert_audit_clean().await;
}
