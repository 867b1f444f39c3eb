//! Returns: the receiver of a netted or settled transfer sends all or part of it
//! back, as a new transfer the other way at the original's rate, linked both ways,
//! netted in a later window, and never more than the original.

use crate::helpers::{inr_to_aed, test_settings, TestApp};
use deltran::actors::InjectPanic;
use deltran::domain::BankCode;
use serde_json::{json, Value};

/// 1,000 INR from ICICI to ENBD (44.05 AED at the reference rate 0.04405), netted.
async fn netted_original(app: &TestApp) -> (String, i64) {
    let original = app.submit_accepted(&inr_to_aed(json!("1000"))).await;
    assert_eq!(original.str("converted_amount"), "44.05");
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    (original.str("transaction_id"), window)
}

async fn bank_key(app: &TestApp, bank: &str) -> String {
    app.create_key("bank", Some(bank)).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn return_as(app: &TestApp, key: &str, id: &str, body: &Value) -> crate::helpers::Reply {
    let path = format!("/api/v1/transfers/{id}/return");
    app.send_as(Some(key), "POST", &path, body.to_string().into_bytes(), &[])
        .await
}

#[actix_web::test]
async fn a_partial_return_is_netted_in_a_later_window_and_the_rest_gives_back_exactly() {
    let app = TestApp::spawn().await;
    let enbd = bank_key(&app, "ENBD").await;
    let (original, first_window) = netted_original(&app).await;

    // 10 AED back: at the original's rate, 227.01475… INR, rounded down.
    let part = return_as(
        &app,
        &enbd,
        &original,
        &json!({"amount": "10", "reference": "RTN-1"}),
    )
    .await;
    assert_eq!(part.status, 202, "{}", part.body);
    let open = app.current_window_id().await;
    assert!(open > first_window);
    assert_eq!(
        (
            part.str("status"),
            part.str("sender_bank"),
            part.str("receiver_bank"),
            part.str("from_currency"),
            part.str("to_currency"),
        ),
        (
            "accepted".into(),
            "ENBD".into(),
            "ICICI".into(),
            "AED".into(),
            "INR".into()
        )
    );
    assert_eq!(
        (
            part.str("amount"),
            part.str("converted_amount"),
            part.str("fx_rate")
        ),
        ("10.00".into(), "227.01".into(), "0.04405".into())
    );
    assert_eq!(part.body["window_id"], json!(open));
    assert_eq!(part.str("return_of"), original);
    let part_id = part.str("transaction_id");

    // Linked both ways: the original lists its returns.
    let read = app.transfer(&original).await;
    assert_eq!(read.body["returns"], json!([part_id]));
    assert_eq!(read.str("status"), "netted");
    assert_eq!(app.transfer(&part_id).await.body["returns"], Value::Null);

    // Netted in the later window: ENBD pays 10 AED, ICICI receives 227.01 INR.
    let later = app.close_window().await;
    let w = app.wait_for_window_state(later, &["netted"]).await;
    assert_eq!(
        w["positions"],
        json!([
            {"bank": "ENBD", "currency": "AED", "debits": "10.00", "credits": "0.00", "position": "-10.00"},
            {"bank": "ICICI", "currency": "INR", "debits": "0.00", "credits": "227.01", "position": "227.01"},
        ]),
        "{w}"
    );

    // More than is left (34.05 AED) is rejected, and stored as such.
    let beyond = return_as(&app, &enbd, &original, &json!({"amount": "34.06"})).await;
    assert_eq!(beyond.status, 422, "{}", beyond.body);
    assert_eq!(beyond.code(), "return_exceeds_original");
    assert_eq!(beyond.body["transfer"]["return_of"], json!(original));

    // All that is left gives back all that is left: 1,000 − 227.01 INR.
    let rest = return_as(&app, &enbd, &original, &json!({"amount": 34.05})).await;
    assert_eq!(rest.status, 202, "{}", rest.body);
    assert_eq!(rest.str("converted_amount"), "772.99");
    let nothing_left = return_as(&app, &enbd, &original, &json!({"amount": "0.01"})).await;
    assert_eq!(nothing_left.code(), "return_exceeds_original");

    let read = app.transfer(&original).await;
    assert_eq!(
        read.body["returns"].as_array().unwrap().len(),
        4,
        "{}",
        read.body
    );
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn only_the_receiver_returns_and_only_once_the_window_closed() {
    let app = TestApp::spawn().await;
    let (enbd, icici, hdfc) = (
        bank_key(&app, "ENBD").await,
        bank_key(&app, "ICICI").await,
        bank_key(&app, "HDFC").await,
    );
    let auditor = app.create_key("auditor", None).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let open = app.submit_accepted(&inr_to_aed(json!("500"))).await;
    let still_open = return_as(
        &app,
        &enbd,
        &open.str("transaction_id"),
        &json!({"amount": "1"}),
    )
    .await;
    assert_eq!(still_open.status, 409, "{}", still_open.body);
    assert_eq!(still_open.code(), "transfer_not_returnable");

    let (original, _) = netted_original(&app).await;
    let body = json!({"amount": "5"});
    let by_sender = return_as(&app, &icici, &original, &body).await;
    assert_eq!(
        (by_sender.status.as_u16(), by_sender.code()),
        (403, "return_not_receiver")
    );
    let by_other = return_as(&app, &hdfc, &original, &body).await;
    assert_eq!(by_other.status, 404, "{}", by_other.body);
    let by_auditor = return_as(&app, &auditor, &original, &body).await;
    assert_eq!(
        (by_auditor.status.as_u16(), by_auditor.code()),
        (403, "auditor_read_only")
    );
    let unknown = return_as(&app, &enbd, "00000000-0000-7000-8000-000000000000", &body).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let bad_amount = return_as(&app, &enbd, &original, &json!({"amount": "1.234"})).await;
    assert_eq!(
        (bad_amount.status.as_u16(), bad_amount.code()),
        (422, "amount_has_too_many_decimals")
    );

    // The receiver returns, with a key; a replay answers the same return and counts
    // once against the original.
    let keyed = json!({"amount": "5", "idempotency_key": "rtn-5"});
    let first = return_as(&app, &enbd, &original, &keyed).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let replay = return_as(&app, &enbd, &original, &keyed).await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.str("transaction_id"), first.str("transaction_id"));
    let reused = return_as(
        &app,
        &enbd,
        &original,
        &json!({"amount": "6", "idempotency_key": "rtn-5"}),
    )
    .await;
    assert_eq!(reused.code(), "idempotency_key_reused");

    // A return is not itself returnable, even once netted.
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    let of_return = return_as(
        &app,
        &icici,
        &first.str("transaction_id"),
        &json!({"amount": "1"}),
    )
    .await;
    assert_eq!(
        (of_return.status.as_u16(), of_return.code()),
        (409, "transfer_not_returnable")
    );

    // The replay took nothing: exactly 39.05 AED is left, and gives back 1000 − 113.50.
    let rest = return_as(&app, &enbd, &original, &json!({"amount": "39.05"})).await;
    assert_eq!(rest.status, 202, "{}", rest.body);
    assert_eq!(first.str("converted_amount"), "113.50");
    assert_eq!(rest.str("converted_amount"), "886.50");
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_return_is_checked_against_the_returning_banks_limit_and_may_queue() {
    let app = TestApp::spawn().await;
    let enbd = bank_key(&app, "ENBD").await;
    // Settled, so that ENBD's credit from it no longer offsets its debits.
    let original = app.submit_accepted(&inr_to_aed(json!("1000"))).await;
    let original = original.str("transaction_id");
    app.close_and_settle_window().await;
    assert_eq!(app.transfer(&original).await.str("status"), "settled");
    app.set_cap("ENBD", "AED", "5").await;

    let over = return_as(&app, &enbd, &original, &json!({"amount": "44.05"})).await;
    assert_eq!((over.status.as_u16(), over.code()), (422, "limit_exceeded"));
    // Queued, it holds its part of the original; cancelled, it gives it back.
    let queued = return_as(
        &app,
        &enbd,
        &original,
        &json!({"amount": "40", "on_limit": "queue"}),
    )
    .await;
    assert_eq!(queued.status, 202, "{}", queued.body);
    assert_eq!(queued.str("status"), "queued");
    let beyond = return_as(&app, &enbd, &original, &json!({"amount": "4.06"})).await;
    assert_eq!(beyond.code(), "return_exceeds_original");
    let cancelled = app.cancel_as(&enbd, &queued.str("transaction_id")).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.str("status"), "cancelled");

    app.set_cap("ENBD", "AED", "100").await;
    let full = return_as(&app, &enbd, &original, &json!({"amount": "44.05"})).await;
    assert_eq!(full.status, 202, "{}", full.body);
    assert_eq!(full.str("converted_amount"), "1000.00");
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn what_a_bank_returned_survives_its_actors_restart_and_the_engines() {
    let app = TestApp::spawn().await;
    let enbd = bank_key(&app, "ENBD").await;
    let (original, _) = netted_original(&app).await;
    let part = return_as(&app, &enbd, &original, &json!({"amount": "44"})).await;
    assert_eq!(part.status, 202, "{}", part.body);

    // The bank actor panics and is restarted: it reads what its returns took.
    let bank = BankCode::parse("ENBD").unwrap();
    let handle = app.engine.directory.bank(&bank).unwrap();
    handle.addr.do_send(InjectPanic);
    let beyond = return_as(&app, &enbd, &original, &json!({"amount": "0.06"})).await;
    assert_eq!(beyond.code(), "return_exceeds_original", "{}", beyond.body);

    // So does a fresh engine on the same database.
    let database = app.database.clone();
    app.stop().await;
    let app = TestApp::spawn_with(test_settings(), database).await;
    let enbd = bank_key(&app, "ENBD").await;
    let beyond = return_as(&app, &enbd, &original, &json!({"amount": "0.06"})).await;
    assert_eq!(beyond.code(), "return_exceeds_original", "{}", beyond.body);
    let rest = return_as(&app, &enbd, &original, &json!({"amount": "0.05"})).await;
    assert_eq!(rest.status, 202, "{}", rest.body);
    assert_eq!(rest.str("converted_amount"), "1.14");
    app.assert_audit_clean().await;
}
