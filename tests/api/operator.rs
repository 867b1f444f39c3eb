//! The operator's routes: banks, corridors, limits, statuses, health and metrics.

use crate::helpers::{inr_to_aed, TestApp};
use serde_json::json;

#[actix_web::test]
async fn the_reference_corridor_is_loaded_on_first_start() {
    let app = TestApp::spawn().await;
    let banks = app.get("/api/v1/banks").await;
    let codes: Vec<&str> = banks.body["banks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ADCB", "AXIS", "ENBD", "HDFC", "ICICI"]);
    let corridors = app.get("/api/v1/corridors").await;
    let ids: Vec<&str> = corridors.body["corridors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["AED-INR", "INR-AED"]);
    let icici = app.get("/api/v1/banks/ICICI").await;
    assert_eq!(icici.body["country"], "IN");
    assert_eq!(icici.body["status"], "active");
    app.stop().await;
}

#[actix_web::test]
async fn a_new_bank_and_corridor_can_trade_at_once() {
    let app = TestApp::spawn().await;
    let bank = app
        .create_bank(
            &json!({"code": "FAB", "name": "First Abu Dhabi Bank", "country": "AE",
                    "net_debit_caps": {"USD": "1000000"}}),
        )
        .await;
    assert_eq!(bank.status, 201, "{}", bank.body);
    assert_eq!(bank.body["net_debit_caps"]["USD"], "1000000.00");
    let again = app
        .post_bank(&json!({"code": "FAB", "name": "x", "country": "AE"}))
        .await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "already_exists")
    );
    let corridor = app
        .create_corridor(
            &json!({"from_currency": "USD", "to_currency": "INR", "fx_rate": "83.12345678",
                    "amount_max": 500000}),
        )
        .await;
    assert_eq!(corridor.status, 201, "{}", corridor.body);
    let reply = app
        .submit(
            &json!({"sender_bank": "FAB", "receiver_bank": "ICICI", "amount": "100.00",
                        "from_currency": "USD", "to_currency": "INR"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.str("converted_amount"), "8312.35");
    let same_currency = app
        .post_corridor(
            &json!({"from_currency": "INR", "to_currency": "INR", "fx_rate": "2", "amount_max": 1}),
        )
        .await;
    assert_eq!(same_currency.code(), "same_currency_rate_must_be_one");
    app.stop().await;
}

#[actix_web::test]
async fn suspensions_and_maximums_reject_in_the_documented_order() {
    let app = TestApp::spawn().await;
    let reply = app
        .update_corridor("INR-AED", &json!({"amount_max": "100"}))
        .await;
    assert_eq!(reply.body["amount_max"], "100.00");
    let over_max = app.submit(&inr_to_aed(json!("100.01"))).await;
    assert_eq!(over_max.code(), "amount_exceeds_corridor_maximum");
    app.update_corridor("INR-AED", &json!({"status": "suspended"}))
        .await;
    let suspended = app.submit(&inr_to_aed(json!("100.01"))).await;
    assert_eq!(suspended.code(), "corridor_suspended");
    app.update_bank("ENBD", &json!({"status": "suspended"}))
        .await;
    assert_eq!(
        app.submit(&inr_to_aed(json!("1"))).await.code(),
        "receiver_bank_suspended"
    );
    let reply = app
        .update_bank("ICICI", &json!({"status": "suspended"}))
        .await;
    assert_eq!(reply.body["status"], "suspended");
    assert_eq!(
        app.submit(&inr_to_aed(json!("1"))).await.code(),
        "sender_bank_suspended"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM transfers WHERE status = 'rejected'")
            .await,
        "4"
    );
    let bad = app.patch_bank("ICICI", &json!({"status": "paused"})).await;
    assert_eq!((bad.status.as_u16(), bad.code()), (422, "status_invalid"));
    let bad = app
        .patch_corridor("INR-AED", &json!({"fx_rate": "0.123456789"}))
        .await;
    assert_eq!(bad.code(), "fx_rate_has_too_many_decimals");
    let missing = app.patch_bank("NOPE", &json!({})).await;
    assert_eq!(missing.status, 404);
    app.stop().await;
}

#[actix_web::test]
async fn health_ready_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let health = app.get("/health").await;
    assert_eq!(health.body["status"], "healthy");
    assert_eq!(health.body["service"], "deltran");
    assert!(health.body["version"].is_string());
    assert_eq!(app.get("/ready").await.status, 200);
    app.submit_accepted(&inr_to_aed(json!("1"))).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status, 200);
    let text = app.metrics.render();
    assert!(text.contains(
        "deltran_transfers_total{code=\"\",corridor=\"INR-AED\",outcome=\"accepted\"} 1"
    ));
    assert!(text.contains("deltran_store_batch_size_count"));
    assert!(text.contains(
        "deltran_http_requests_total{method=\"POST\",route=\"/api/v1/transfers\",status=\"202\"} 1"
    ));
    app.stop().await;
}
