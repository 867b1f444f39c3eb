//! Prefunded settlement accounts (issue 11, item 3): a bank with a settlement
//! balance in a currency is held within both its cap and its balance; funds-out takes
//! only what its exposure leaves free; a settled window moves the balances by its
//! positions; the token routes answer as the canonical ones; `deltran audit` holds.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{eventually, inr_to_aed, test_settings, TestApp, WsClient};

async fn spawn() -> TestApp {
    let mut settings = test_settings();
    settings.window_duration_ms = 3_600_000;
    TestApp::spawn_with_settings(settings).await
}

fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(
        value
            .as_str()
            .unwrap_or_else(|| panic!("a decimal: {value}")),
    )
    .expect("a decimal string")
}

fn aed_to_inr(amount: &str) -> Value {
    json!({"sender_bank": "ENBD", "receiver_bank": "ICICI", "amount": amount,
           "from_currency": "AED", "to_currency": "INR"})
}

#[actix_web::test]
async fn a_prefunded_bank_is_held_within_its_balance_as_well_as_its_cap() {
    let app = spawn().await;
    // Not prefunded yet: the cap alone (10 trillion) bounds ICICI, as before.
    assert_eq!(
        app.position("ICICI", "INR").await["settlement_balance"],
        Value::Null
    );
    let funded = app.funds_in("ICICI", "INR", "1000.00").await;
    assert_eq!(funded.body["balance"], "1000.00");
    assert_eq!(funded.body["direction"], "in");

    let beyond = app.submit(&inr_to_aed(json!("1000.01"))).await;
    assert_eq!(
        (beyond.status.as_u16(), beyond.code()),
        (422, "liquidity_insufficient"),
        "{}",
        beyond.body
    );
    assert_eq!(
        beyond.body["transfer"]["reject_code"],
        "liquidity_insufficient"
    );
    app.submit_accepted(&inr_to_aed(json!("600.00"))).await;
    assert_eq!(
        app.submit(&inr_to_aed(json!("400.01"))).await.code(),
        "liquidity_insufficient"
    );
    app.submit_accepted(&inr_to_aed(json!("400.00"))).await;

    let position = app.position("ICICI", "INR").await;
    assert_eq!(position["settlement_balance"], "1000.00");
    assert_eq!(position["exposure"], "1000.00");
    assert_eq!(position["headroom"], "0.00");
    let balance = app.balance("ICICI", "INR").await;
    assert_eq!(
        (&balance["balance"], &balance["exposure"], &balance["free"]),
        (&json!("1000.00"), &json!("1000.00"), &json!("0.00"))
    );
    // The cap still bounds when it is the smaller: limit_exceeded comes first.
    app.set_cap("ICICI", "INR", "500.00").await;
    app.funds_in("ICICI", "INR", "5000.00").await;
    assert_eq!(
        app.submit(&inr_to_aed(json!("1.00"))).await.code(),
        "limit_exceeded"
    );
    // A bank that is not prefunded sees no change.
    let hdfc = json!({"sender_bank": "HDFC", "receiver_bank": "ENBD", "amount": "5000.00",
                      "from_currency": "INR", "to_currency": "AED"});
    app.submit_accepted(&hdfc).await;
    assert_eq!(app.balances("HDFC").await.body["balances"], json!([]));
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn settling_a_window_moves_each_prefunded_balance_by_its_position() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "10000.00").await;
    app.funds_in("ENBD", "AED", "100.00").await;
    let sent = app.submit_accepted(&inr_to_aed(json!("1000.00"))).await;
    let received = app.submit_accepted(&aed_to_inr("10.00")).await;
    let icici_credit = decimal(&received.body["converted_amount"]);
    let enbd_credit = decimal(&sent.body["converted_amount"]);
    let icici_before = decimal(&app.balance("ICICI", "INR").await["balance"]);
    let enbd_before = decimal(&app.balance("ENBD", "AED").await["balance"]);
    // Netting alone moves nothing; settlement does.
    app.close_and_settle_window().await;
    let icici_after = icici_before + icici_credit - Decimal::from(1000);
    let enbd_after = enbd_before + enbd_credit - Decimal::from(10);
    eventually("the balances to move by the window's positions", || async {
        let icici = app.balance("ICICI", "INR").await;
        let enbd = app.balance("ENBD", "AED").await;
        decimal(&icici["balance"]) == icici_after
            && decimal(&enbd["balance"]) == enbd_after
            && icici["exposure"] == "0.00"
            && icici["free"] == icici["balance"]
    })
    .await;
    // As stored, too, and as a settlement movement per prefunded bank.
    assert_eq!(
        app.scalar("SELECT balance FROM settlement_balances WHERE bank = 'ICICI'")
            .await,
        icici_after.to_string()
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM settlement_funds WHERE direction = 'settlement'")
            .await,
        "2"
    );
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_funds_out_takes_only_what_the_exposure_leaves_free() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "1000.00").await;
    app.submit_accepted(&inr_to_aed(json!("300.00"))).await;
    let beyond = app.post_funds_out("ICICI", "INR", "700.01").await;
    assert_eq!(
        (beyond.status.as_u16(), beyond.code()),
        (409, "funds_out_exceeds_free_balance"),
        "{}",
        beyond.body
    );
    assert!(beyond.body["detail"].as_str().unwrap().contains("700.00"));
    let out = app.post_funds_out("ICICI", "INR", "700.00").await;
    assert_eq!(out.status, 201, "{}", out.body);
    assert_eq!(
        (&out.body["direction"], &out.body["balance"]),
        (&json!("out"), &json!("300.00"))
    );
    // Nothing is free now: no transfer, and no further funds-out.
    assert_eq!(
        app.submit(&inr_to_aed(json!("0.01"))).await.code(),
        "liquidity_insufficient"
    );
    assert_eq!(
        app.post_funds_out("ICICI", "INR", "0.01").await.code(),
        "funds_out_exceeds_free_balance"
    );
    // A bank not prefunded in the currency has nothing to take out.
    assert_eq!(
        app.post_funds_out("HDFC", "INR", "1.00").await.code(),
        "funds_out_exceeds_free_balance"
    );
    // Input is checked as for transfers.
    for (amount, code) in [
        ("1.001", "amount_has_too_many_decimals"),
        ("0", "amount_must_be_positive"),
        ("-5", "amount_must_be_positive"),
        ("x", "amount_invalid"),
    ] {
        let reply = app.post_funds_in("ICICI", "INR", amount).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, code),
            "{amount}"
        );
    }
    assert_eq!(app.post_funds_in("NOSUCH", "INR", "1.00").await.status, 404);
    assert_eq!(
        app.post_funds_in("ICICI", "XXX", "1.00").await.code(),
        "currency_unknown"
    );
    // Every movement is in the audit log, with the balance before and after.
    let entries: Vec<Value> = app.get("/api/v1/audit-log?subject=ICICI").await.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("funds_"))
        .cloned()
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["funds_in", "funds_out"]);
    assert_eq!(entries[1]["before"]["balance"], "1000.00");
    assert_eq!(entries[1]["after"]["balance"], "300.00");
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_funds_out_racing_transfers_never_leaves_the_exposure_above_the_balance() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "1000.00").await;
    let body = inr_to_aed(json!("100.00"));
    let sends = (0..10).map(|_| app.submit(&body));
    let (replies, mut out) = futures_util::future::join(
        futures_util::future::join_all(sends),
        app.post_funds_out("ICICI", "INR", "500.00"),
    )
    .await;
    // A bank re-reading its books (after the funds-in, a commit of the racing
    // batch) answers 503 with Retry-After: sent again, as a client would.
    for _ in 0..100 {
        if out.status != 503 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        out = app.post_funds_out("ICICI", "INR", "500.00").await;
    }
    let accepted = replies.iter().filter(|r| r.status == 202).count() as i64;
    for refused in replies.iter().filter(|r| r.status != 202) {
        assert_eq!(refused.code(), "liquidity_insufficient", "{}", refused.body);
    }
    let taken = match out.status.as_u16() {
        201 => 500,
        409 => 0,
        other => panic!("funds-out answered {other}: {}", out.body),
    };
    // Whichever came first, the balance was used exactly: 100 × accepted + what the
    // funds-out took is the 1000 funded, and nothing is free.
    assert_eq!(
        accepted * 100 + taken,
        1000,
        "{accepted} accepted, {taken} out"
    );
    let balance = app.balance("ICICI", "INR").await;
    assert_eq!(balance["free"], "0.00", "{balance}");
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn only_the_operator_moves_funds_and_a_bank_reads_only_its_own_balances() {
    let app = spawn().await;
    let icici = app.keys.bank("ICICI").to_string();
    let body = json!({"currency": "INR", "amount": "100.00"}).to_string();
    for path in [
        "/api/v1/banks/ICICI/balances/funds-in",
        "/api/v1/banks/ICICI/balances/funds-out",
    ] {
        for key in [icici.as_str(), app.keys.auditor.as_str()] {
            let reply = app
                .send_as(Some(key), "POST", path, body.clone().into_bytes(), &[])
                .await;
            assert_eq!(
                (reply.status.as_u16(), reply.code()),
                (403, "operator_only")
            );
        }
    }
    app.funds_in("ICICI", "INR", "100.00").await;
    let own = app
        .get_as(Some(&icici), "/api/v1/banks/ICICI/balances")
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["balances"][0]["balance"], "100.00");
    let other = app
        .get_as(Some(&icici), "/api/v1/banks/HDFC/balances")
        .await;
    assert_eq!((other.status.as_u16(), other.code()), (404, "not_found"));
    let auditor = app
        .get_as(Some(&app.keys.auditor), "/api/v1/tokens/balances/ICICI")
        .await;
    assert_eq!(auditor.status, 200);
    app.stop().await;
}

#[actix_web::test]
async fn the_token_routes_answer_as_funds_in_funds_out_and_balances() {
    let app = spawn().await;
    let canonical = app.funds_in("ICICI", "INR", "500.00").await;
    let minted = app
        .post(
            "/api/v1/tokens/mint",
            &json!({"bank": "ICICI", "currency": "INR", "amount": "250.00", "reference": "alias"}),
        )
        .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&minted.body), keys(&canonical.body));
    assert_eq!(
        (&minted.body["balance"], &minted.body["reference"]),
        (&json!("750.00"), &json!("alias"))
    );
    let burned = app
        .post(
            "/api/v1/tokens/burn",
            &json!({"bank": "ICICI", "currency": "INR", "amount": "50.00"}),
        )
        .await;
    assert_eq!(
        (&burned.body["direction"], &burned.body["balance"]),
        (&json!("out"), &json!("700.00"))
    );
    let refused = app
        .post(
            "/api/v1/tokens/burn",
            &json!({"bank": "ICICI", "currency": "INR", "amount": "700.01"}),
        )
        .await;
    assert_eq!(refused.code(), "funds_out_exceeds_free_balance");
    let by_bank = app
        .send_as(
            Some(app.keys.bank("ICICI")),
            "POST",
            "/api/v1/tokens/mint",
            json!({"bank": "ICICI", "currency": "INR", "amount": "1.00"})
                .to_string()
                .into_bytes(),
            &[],
        )
        .await;
    assert_eq!(by_bank.status, 403);
    assert_eq!(
        app.get("/api/v1/tokens/balances/ICICI").await.body,
        app.balances("ICICI").await.body
    );
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_replay_answers_the_original_whatever_the_balance_is_now() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "100.00").await;
    let accepted = app
        .submit_with_key(&inr_to_aed(json!("100.00")), "paid-once")
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let rejected = app
        .submit_with_key(&inr_to_aed(json!("1.00")), "too-much")
        .await;
    assert_eq!(rejected.code(), "liquidity_insufficient");
    // More funds change what new transfers may do, not what a replay answers.
    app.funds_in("ICICI", "INR", "1000.00").await;
    let replay = app
        .submit_with_key(&inr_to_aed(json!("100.00")), "paid-once")
        .await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.str("transaction_id"), accepted.str("transaction_id"));
    let replay = app
        .submit_with_key(&inr_to_aed(json!("1.00")), "too-much")
        .await;
    assert_eq!(replay.code(), "liquidity_insufficient");
    assert_eq!(
        replay.body["transaction_id"],
        rejected.body["transaction_id"]
    );
    // The replay reserved nothing: the exposure is the first transfer alone.
    assert_eq!(app.balance("ICICI", "INR").await["exposure"], "100.00");
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn balances_are_read_back_after_a_restart_and_announced_on_the_feed() {
    let database = crate::helpers::fresh_database().await;
    let mut settings = test_settings();
    settings.window_duration_ms = 3_600_000;
    let app = TestApp::spawn_with(settings.clone(), database.clone()).await;
    let mut ws = WsClient::connect_as(&app, app.keys.bank("ICICI")).await;
    ws.send(&json!({"type": "subscribe", "channels": ["notifications"]}))
        .await;
    ws.next_of("subscribed").await;
    app.funds_in("ICICI", "INR", "900.00").await;
    let event = ws.next_of("balance_changed").await;
    assert_eq!(
        (
            &event["data"]["bank"],
            &event["data"]["balance"],
            &event["data"]["cause"]
        ),
        (&json!("ICICI"), &json!("900.00"), &json!("funds_in"))
    );
    app.submit_accepted(&inr_to_aed(json!("400.00"))).await;
    let window = app.close_and_settle_window().await;
    let event = ws.next_of("balance_changed").await;
    assert_eq!(
        (
            &event["data"]["balance"],
            &event["data"]["cause"],
            &event["data"]["window_id"]
        ),
        (&json!("500.00"), &json!("settlement"), &json!(window))
    );
    app.stop().await;

    let app = TestApp::spawn_with(settings, database).await;
    eventually("the balance to be read back", || async {
        app.balance("ICICI", "INR").await["balance"] == "500.00"
    })
    .await;
    assert_eq!(
        app.submit(&inr_to_aed(json!("500.01"))).await.code(),
        "liquidity_insufficient"
    );
    app.submit_accepted(&inr_to_aed(json!("500.00"))).await;
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn the_audit_finds_a_balance_that_is_not_the_sum_of_its_movements() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "100.00").await;
    app.assert_audit_clean().await;
    app.sql()
        .await
        .execute(
            "UPDATE settlement_balances SET balance = balance + 1 WHERE bank = 'ICICI'",
            &[],
        )
        .await
        .unwrap();
    let checks = app.store.audit().await.unwrap();
    let broken: Vec<_> = checks.iter().filter(|c| !c.violations.is_empty()).collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].rule.contains("settlement balance"), "{broken:?}");
    app.stop().await;
}

#[test]
fn the_token_routes_are_documented_as_deprecated_and_the_canonical_ones_not() {
    let doc: Value = serde_json::from_str(deltran::http::openapi::json()).unwrap();
    for (path, method, deprecated) in [
        ("/api/v1/tokens/mint", "post", true),
        ("/api/v1/tokens/burn", "post", true),
        ("/api/v1/tokens/balances/{bank}", "get", true),
        ("/api/v1/banks/{code}/balances/funds-in", "post", false),
        ("/api/v1/banks/{code}/balances/funds-out", "post", false),
        ("/api/v1/banks/{code}/balances", "get", false),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert_eq!(
            operation["deprecated"].as_bool().unwrap_or(false),
            deprecated,
            "{method} {path}"
        );
    }
    // An alias answers as its canonical route, and is documented so.
    for path in [
        "/api/v1/banks/{code}/balances/funds-out",
        "/api/v1/tokens/burn",
    ] {
        let refusals = doc["paths"][path]["post"]["responses"]["409"]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} documents its 409"));
        assert!(
            refusals.contains("funds_out_exceeds_free_balance"),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn the_audit_finds_a_settled_window_that_did_not_move_a_prefunded_balance() {
    let app = spawn().await;
    app.funds_in("ICICI", "INR", "1000.00").await;
    app.submit_accepted(&inr_to_aed(json!("100.00"))).await;
    let window = app.close_and_settle_window().await;
    app.assert_audit_clean().await;
    // Take the settlement movement away and the balance with it: the sums still
    // agree, but the window no longer moved the balance.
    let sql = app.sql().await;
    sql.batch_execute(&format!(
        "DELETE FROM settlement_funds WHERE window_id = {window} AND bank = 'ICICI';
         UPDATE settlement_balances SET balance = balance + 100 WHERE bank = 'ICICI';"
    ))
    .await
    .unwrap();
    let checks = app.store.audit().await.unwrap();
    let broken: Vec<_> = checks.iter().filter(|c| !c.violations.is_empty()).collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].rule.contains("moved it by its position"),
        "{broken:?}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_prefunded_banks_limit_warning_is_measured_against_its_balance() {
    let app = TestApp::spawn().await;
    // The cap is the reference's 10 trillion; the balance of 1,000 is what binds.
    assert_eq!(app.funds_in("ICICI", "INR", "1000").await.status, 201);
    let mut ws = WsClient::connect(&app).await;
    ws.send(&json!({"type": "subscribe", "channels": ["notifications"], "bank": "ICICI"}))
        .await;
    ws.next_of("subscribed").await;
    assert_eq!(app.submit(&inr_to_aed(json!("900"))).await.status, 202);
    let warning = ws.next_of("limit_warning").await;
    assert_eq!(
        (
            &warning["data"]["exposure"],
            &warning["data"]["limit"],
            &warning["data"]["net_debit_cap"]
        ),
        (
            &json!("900.00"),
            &json!("1000.00"),
            &json!("10000000000000.00")
        )
    );
}
