//! Transfer submission against the real engine and a real Postgres: exact amounts,
//! input errors, idempotency, limits, supervision.

use crate::helpers::{eventually, inr_to_aed, test_settings, TestApp};
use deltran::actors::InjectPanic;
use deltran::domain::BankCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn amounts_sent_as_numbers_or_strings_are_stored_exactly() {
    let app = TestApp::spawn().await;
    // Room for the largest amounts: the corridor maximum and the caps at their top.
    let top = "999999999999999.99";
    app.update_corridor("INR-AED", &json!({ "amount_max": top }))
        .await;
    app.set_cap("ICICI", "INR", top).await;
    app.set_cap("HDFC", "INR", top).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!(0.1), "0.10"),
        (json!("0.1"), "0.10"),
        (
            serde_json::from_str("12345678901234.57").unwrap(),
            "12345678901234.57",
        ),
        (json!("12345678901234.57"), "12345678901234.57"),
        (serde_json::from_str("1e3").unwrap(), "1000.00"),
        (json!("1.5E+2"), "150.00"),
        (
            serde_json::from_str("999999999999999.99").unwrap(),
            "999999999999999.99",
        ),
    ];
    for (amount, expected) in cases {
        let mut body = inr_to_aed(amount.clone());
        if expected == top {
            body["sender_bank"] = json!("HDFC");
        }
        let reply = app.submit(&body).await;
        assert_eq!(reply.status, 202, "{amount}: {}", reply.body);
        assert_eq!(reply.str("amount"), expected);
        let id = reply.str("transaction_id");
        let stored = app
            .scalar(&format!("SELECT amount FROM transfers WHERE id = '{id}'"))
            .await;
        assert_eq!(
            stored.trim_end_matches('0'),
            expected.trim_end_matches('0'),
            "{amount}"
        );
        assert_eq!(app.transfer(&id).await.str("amount"), expected);
    }
    app.stop().await;
}

#[actix_web::test]
async fn converted_amounts_round_half_even_at_the_fixed_rate() {
    let app = TestApp::spawn().await;
    let reply = app
        .update_corridor("INR-AED", &json!({"fx_rate": "0.05"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // 0.50 * 0.05 = 0.025 -> 0.02 ; 0.70 * 0.05 = 0.035 -> 0.04
    for (amount, converted) in [("0.50", "0.02"), ("0.70", "0.04")] {
        let reply = app.submit(&inr_to_aed(json!(amount))).await;
        assert_eq!(reply.str("converted_amount"), converted);
        assert_eq!(reply.str("fx_rate"), "0.05");
    }
    app.stop().await;
}

#[actix_web::test]
async fn bad_amounts_are_refused_with_their_codes() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!("0.001"), "amount_has_too_many_decimals"),
        (
            serde_json::from_str("0.001").unwrap(),
            "amount_has_too_many_decimals",
        ),
        (json!(0), "amount_must_be_positive"),
        (json!("0.00"), "amount_must_be_positive"),
        (json!(-5), "amount_must_be_positive"),
        (json!("ten"), "amount_invalid"),
        (json!(true), "amount_invalid"),
        (Value::Null, "amount_invalid"),
        (serde_json::from_str("1e400").unwrap(), "amount_too_large"),
        (json!("1000000000000000"), "amount_too_large"),
    ];
    for (amount, code) in cases {
        let reply = app.submit(&inr_to_aed(amount.clone())).await;
        assert_eq!(reply.status, 422, "{amount}: {}", reply.body);
        assert_eq!(reply.code(), code, "{amount}");
        assert_eq!(reply.content_type, "application/problem+json");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "0");
    app.stop().await;
}

#[actix_web::test]
async fn bad_input_gets_a_problem_with_a_stable_code_and_never_a_500() {
    let app = TestApp::spawn().await;
    let body = |v: Value| v.to_string().into_bytes();
    let mut unknown_currency = inr_to_aed(json!("10"));
    unknown_currency["to_currency"] = json!("XYZ");
    let mut unknown_sender = inr_to_aed(json!("10"));
    unknown_sender["sender_bank"] = json!("NOPE");
    let mut unknown_receiver = inr_to_aed(json!("10"));
    unknown_receiver["receiver_bank"] = json!("NOPE");
    let mut no_corridor = inr_to_aed(json!("10"));
    no_corridor["to_currency"] = json!("USD");
    let mut same_bank = inr_to_aed(json!("10"));
    same_bank["receiver_bank"] = json!("ICICI");
    let mut wrong_type = inr_to_aed(json!("10"));
    wrong_type["sender_bank"] = json!(42);
    let mut missing = inr_to_aed(json!("10"));
    missing.as_object_mut().unwrap().remove("from_currency");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "malformed_json"),
        (b"".to_vec(), 400, "malformed_json"),
        (b"[1,2]".to_vec(), 400, "field_invalid"),
        (body(wrong_type), 400, "field_invalid"),
        (body(missing), 400, "field_missing"),
        (body(unknown_currency), 422, "currency_unknown"),
        (body(unknown_sender), 422, "sender_bank_unknown"),
        (body(unknown_receiver), 422, "receiver_bank_unknown"),
        (body(no_corridor), 422, "corridor_unknown"),
        (body(same_bank), 422, "banks_must_be_different"),
        (vec![b' '; 64 * 1024], 413, "body_too_large"),
    ];
    for (payload, status, code) in cases {
        let reply = app
            .send_raw("POST", "/api/v1/transfers", payload, &[])
            .await;
        assert_eq!(reply.status.as_u16(), status, "{code}: {}", reply.body);
        assert_eq!(reply.code(), code);
        assert_eq!(reply.content_type, "application/problem+json");
        assert_eq!(reply.body["status"], status);
    }
    let reply = app.get("/api/v1/transfers/not-a-uuid").await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (422, "transaction_id_invalid")
    );
    let reply = app
        .get("/api/v1/transfers/00000000-0000-7000-8000-000000000000")
        .await;
    assert_eq!((reply.status.as_u16(), reply.code()), (404, "not_found"));
    let reply = app.get("/api/v1/transfers?limit=0").await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (400, "query_invalid")
    );
    let reply = app.get("/no/such/route").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (404, "not_found"));
    app.stop().await;
}

#[actix_web::test]
async fn a_replay_returns_the_original_answer_and_a_changed_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let first = app
        .submit_with_key(&inr_to_aed(json!("250.00")), "key-1")
        .await;
    assert_eq!(first.status, 202);
    // The same key in the body field is the same key.
    let mut in_body = inr_to_aed(json!(250));
    in_body["idempotency_key"] = json!("key-1");
    let replay = app.submit(&in_body).await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    let conflict = app
        .submit_with_key(&inr_to_aed(json!("251.00")), "key-1")
        .await;
    assert_eq!(
        (conflict.status.as_u16(), conflict.code()),
        (409, "idempotency_key_reused")
    );
    assert_eq!(conflict.str("transaction_id"), first.str("transaction_id"));
    // Another sender may use the same key.
    let other = app
        .submit_with_key(
            &json!({"sender_bank": "HDFC", "receiver_bank": "ADCB", "amount": "5",
                   "from_currency": "INR", "to_currency": "AED"}),
            "key-1",
        )
        .await;
    assert_eq!(other.status, 202);
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "2");
    // The replayed reservation was released: exposure is one transfer, not two.
    assert_eq!(app.position("ICICI", "INR").await["exposure"], "250.00");
    app.stop().await;
}

#[actix_web::test]
async fn idempotency_holds_across_an_engine_restart() {
    let app = TestApp::spawn().await;
    let database = app.database.clone();
    app.set_cap("ICICI", "INR", "100").await;
    let accepted = app.submit_with_key(&inr_to_aed(json!("60")), "r-1").await;
    let rejected = app.submit_with_key(&inr_to_aed(json!("60")), "r-2").await;
    assert_eq!(
        (accepted.status.as_u16(), rejected.status.as_u16()),
        (202, 422)
    );
    assert_eq!(rejected.code(), "limit_exceeded");
    app.stop().await;

    let app = TestApp::spawn_with(test_settings(), database).await;
    let replay = app.submit_with_key(&inr_to_aed(json!("60")), "r-1").await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.body, accepted.body);
    // A stored rejection replays as the same rejection.
    let replay = app.submit_with_key(&inr_to_aed(json!("60")), "r-2").await;
    assert_eq!(
        (replay.status.as_u16(), replay.code()),
        (422, "limit_exceeded")
    );
    assert_eq!(replay.str("transaction_id"), rejected.str("transaction_id"));
    let conflict = app.submit_with_key(&inr_to_aed(json!("61")), "r-1").await;
    assert_eq!(conflict.status, 409);
    // The exposure rebuilt from the store counts the accepted transfer once.
    assert_eq!(app.position("ICICI", "INR").await["exposure"], "60.00");
    app.stop().await;
}

#[actix_web::test]
async fn a_transfer_over_the_cap_is_rejected_and_stored_and_credits_give_headroom() {
    let app = TestApp::spawn().await;
    app.set_cap("ICICI", "INR", "1000").await;
    assert_eq!(app.submit(&inr_to_aed(json!("600"))).await.status, 202);
    let over = app.submit(&inr_to_aed(json!("500"))).await;
    assert_eq!((over.status.as_u16(), over.code()), (422, "limit_exceeded"));
    let stored = app.transfer(&over.str("transaction_id")).await;
    assert_eq!(stored.str("status"), "rejected");
    assert_eq!(stored.str("reject_code"), "limit_exceeded");
    // ENBD pays ICICI 10 AED = 226.985 -> 226.98 INR (half-even): a credit to ICICI.
    let credit = app
        .submit(
            &json!({"sender_bank": "ENBD", "receiver_bank": "ICICI", "amount": "10",
                        "from_currency": "AED", "to_currency": "INR"}),
        )
        .await;
    assert_eq!(credit.str("converted_amount"), "226.98");
    // 600 + 500 - 226.98 = 873.02 <= 1000
    assert_eq!(app.submit(&inr_to_aed(json!("500"))).await.status, 202);
    let position = app.position("ICICI", "INR").await;
    assert_eq!(position["exposure"], "873.02");
    assert_eq!(position["position"], "-873.02");
    app.stop().await;
}

#[actix_web::test]
async fn two_hundred_concurrent_submissions_never_push_exposure_past_the_cap() {
    let app = TestApp::spawn().await;
    app.set_cap("ICICI", "INR", "10000").await;
    let body = inr_to_aed(json!("100.00"));
    let submissions = (0..200).map(|_| app.submit(&body));
    let replies = futures_util::future::join_all(submissions).await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let limited = replies
        .iter()
        .filter(|r| r.code() == "limit_exceeded")
        .count();
    assert_eq!((accepted, limited), (100, 100));
    let stored = app
        .scalar(
            "SELECT sum(amount) FROM transfers WHERE sender_bank = 'ICICI' AND status = 'accepted'",
        )
        .await;
    assert_eq!(stored, "10000.000");
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "200");
    assert_eq!(app.position("ICICI", "INR").await["exposure"], "10000.00");
    app.stop().await;
}

#[actix_web::test]
async fn a_bank_actor_that_panics_is_restarted_and_rebuilds_its_books_from_the_store() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        assert_eq!(app.submit(&inr_to_aed(json!("10"))).await.status, 202);
    }
    let icici = app
        .engine
        .directory
        .bank(&BankCode::parse("ICICI").unwrap())
        .unwrap();
    icici.addr.do_send(InjectPanic);
    let metrics = app.metrics.clone();
    eventually("the bank actor restart", || {
        let restarts = metrics.actor_restarts.with_label_values(&["bank"]).get();
        async move { restarts == 1 }
    })
    .await;
    assert_eq!(metrics.actor_panics.with_label_values(&["bank"]).get(), 1);
    for _ in 0..5 {
        let reply = app.submit(&inr_to_aed(json!("10"))).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let stored = app
        .scalar(
            "SELECT sum(amount) FROM transfers WHERE sender_bank = 'ICICI' AND status = 'accepted'",
        )
        .await;
    assert_eq!(stored, "100.000");
    let position = app.position("ICICI", "INR").await;
    assert_eq!(position["exposure"], "100.00");
    assert_eq!(position["reserved"], "0.00");
    app.stop().await;
}

#[actix_web::test]
async fn compatibility_routes_answer_like_the_canonical_ones() {
    let app = TestApp::spawn().await;
    let reply = app
        .post("/api/v1/transfer", &inr_to_aed(json!("42.00")))
        .await;
    assert_eq!(reply.status, 202);
    let id = reply.str("transaction_id");
    let canonical = app.transfer(&id).await;
    let alias = app.get(&format!("/api/v1/transaction/{id}")).await;
    assert_eq!(alias.body, canonical.body);
    let listed = app
        .get(&format!("/api/v1/transactions?transaction_id={id}"))
        .await;
    let canonical_list = app
        .get(&format!("/api/v1/transfers?transaction_id={id}"))
        .await;
    assert_eq!(listed.body, canonical_list.body);
    assert_eq!(listed.body["transactions"][0], canonical.body);
    app.stop().await;
}

#[actix_web::test]
async fn listing_pages_through_every_transfer_once_with_filters() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        let body = if i % 5 == 0 {
            json!({"sender_bank": "ADCB", "receiver_bank": "AXIS", "amount": "1",
                   "from_currency": "AED", "to_currency": "INR"})
        } else {
            inr_to_aed(json!("1"))
        };
        assert_eq!(app.submit(&body).await.status, 202);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/transfers?limit=10&cursor={c}"),
            None => "/api/v1/transfers?limit=10".to_string(),
        };
        let page = app.get(&path).await;
        for t in page.body["transactions"].as_array().unwrap() {
            seen.push(t["transaction_id"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (25, 25));
    let adcb = app.get("/api/v1/transfers?sender_bank=ADCB").await;
    assert_eq!(adcb.body["transactions"].as_array().unwrap().len(), 5);
    let axis = app.get("/api/v1/transfers?bank=AXIS&status=accepted").await;
    assert_eq!(axis.body["transactions"].as_array().unwrap().len(), 5);
    app.stop().await;
}

#[actix_web::test]
async fn every_answer_carries_the_request_id_the_client_sent_or_one_of_its_own() {
    let app = TestApp::spawn().await;
    let reply = app
        .send_raw(
            "POST",
            "/api/v1/transfers",
            b"{not json".to_vec(),
            &[("X-Request-Id", "bank-trace-0042")],
        )
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (400, "malformed_json")
    );
    assert_eq!(
        reply.headers.get("x-request-id").unwrap(),
        "bank-trace-0042"
    );
    assert_eq!(reply.body["request_id"], "bank-trace-0042");
    let accepted = app.submit(&inr_to_aed(serde_json::json!("5"))).await;
    assert_eq!(accepted.status, 202);
    let generated = accepted
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!generated.is_empty() && generated != "bank-trace-0042");
    app.stop().await;
}

#[actix_web::test]
async fn a_panic_after_a_commit_outside_any_handler_restarts_the_writer_and_loses_nothing() {
    use deltran::actors::writer::PanicInNextCompletion;
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert_eq!(app.submit(&inr_to_aed(json!("10"))).await.status, 202);
    }
    // The next batch commits, then its completion (answers, books) panics.
    app.engine.writer.do_send(PanicInNextCompletion);
    let lost_answer = app
        .submit_with_key(&inr_to_aed(json!("25")), "after-panic")
        .await;
    assert_eq!(
        (lost_answer.status.as_u16(), lost_answer.code()),
        (503, "unavailable"),
        "{}",
        lost_answer.body
    );
    let metrics = app.metrics.clone();
    eventually("the writer restart", || {
        let restarts = metrics.actor_restarts.with_label_values(&["writer"]).get();
        async move { restarts == 1 }
    })
    .await;
    assert_eq!(metrics.actor_panics.with_label_values(&["writer"]).get(), 1);
    // The transfer was committed before the panic: a retry with its key returns it.
    let replay = app
        .submit_with_key(&inr_to_aed(json!("25")), "after-panic")
        .await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(app.submit(&inr_to_aed(json!("5"))).await.status, 202);
    // The banks re-read their books: exposure equals the store, nothing twice.
    let stored = app
        .scalar(
            "SELECT sum(amount) FROM transfers WHERE sender_bank = 'ICICI' AND status = 'accepted'",
        )
        .await;
    assert_eq!(stored, "60.000");
    eventually("ICICI's books equal the store", || {
        let app = &app;
        async move { app.position("ICICI", "INR").await["debits"] == "60.00" }
    })
    .await;
    app.assert_audit_clean().await;
    app.stop().await;
}
