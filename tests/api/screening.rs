//! Compliance screening before acceptance: a strong match rejects
//! (`compliance_rejected`), a weaker one holds the transfer (`held`: stored, its
//! exposure kept, in no window) until the operator releases or rejects it; near
//! misses (transliterations, swapped name order) are caught; each decision is stored.

use crate::helpers::{eventually, inr_to_aed, TestApp};
use deltran::actors::InjectPanic;
use deltran::domain::BankCode;
use serde_json::{json, Value};

/// Puts the entries in the stored list and has the engine re-read it.
async fn list(app: &TestApp, entries: &[(&str, &str, &[&str], &[&str])]) -> Vec<i64> {
    let sql = app.sql().await;
    let mut ids = Vec::new();
    for (list, name, aliases, countries) in entries {
        let aliases: Vec<String> = aliases.iter().map(|a| a.to_string()).collect();
        let countries: Vec<String> = countries.iter().map(|c| c.to_string()).collect();
        let row = sql
            .query_one(
                "INSERT INTO screening_entries (list, name, aliases, countries)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[list, name, &aliases, &countries],
            )
            .await
            .unwrap();
        ids.push(row.get(0));
    }
    app.engine.reload_screening().await.unwrap();
    ids
}

fn paying(name: &str, creditor: &str, amount: &str) -> Value {
    let mut body = inr_to_aed(json!(amount));
    body["debtor"] = json!({"name": name, "country": "IN"});
    body["creditor"] = json!({"name": creditor, "country": "AE"});
    body
}

async fn standard_list(app: &TestApp) -> Vec<i64> {
    list(
        app,
        &[
            ("sanctions", "Mohammed Al-Rashid", &["Abu Karim"], &["AE"]),
            ("pep", "Vikram Oberoi", &[], &["IN"]),
            ("sanctions", "Gulf Shadow Trading LLC", &[], &[]),
        ],
    )
    .await
}

#[actix_web::test]
async fn a_strong_match_rejects_and_near_misses_are_caught() {
    let app = TestApp::spawn().await;
    let ids = standard_list(&app).await;
    // Exact: rejected, stored with the decision.
    let exact = app
        .submit(&paying("Vikram Oberoi", "Desert Rose", "100"))
        .await;
    assert_eq!(
        (exact.status.as_u16(), exact.code()),
        (422, "compliance_rejected"),
        "{}",
        exact.body
    );
    let screening = &exact.body["transfer"]["screening"];
    assert_eq!(
        (&screening["entry_id"], &screening["party"]),
        (&json!(ids[1]), &json!("debtor"))
    );
    // Swapped order, other case and punctuation: the same name.
    let swapped = app
        .submit(&paying("Asha Traders", "RASHID, Mohammed", "100"))
        .await;
    assert_eq!(swapped.code(), "compliance_rejected");
    assert_eq!(swapped.body["transfer"]["screening"]["party"], "creditor");
    // An alias matches as the name does.
    assert_eq!(
        app.submit(&paying("Abu Karim", "x", "1")).await.code(),
        "compliance_rejected"
    );
    // A transliteration is held.
    let near = app
        .submit(&paying("Asha Traders", "Muhammad Al-Rasheed", "100"))
        .await;
    assert_eq!(near.status, 202, "{}", near.body);
    assert_eq!(near.str("status"), "held");
    assert_eq!(near.body["window_id"], Value::Null);
    let score: f64 = near.body["screening"]["score"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.85..0.92).contains(&score), "{}", near.body);
    // Names that are not on the list pass, as do transfers naming no one.
    for (debtor, creditor) in [
        ("Asha Traders Pvt Ltd", "Gulf Spice Trading LLC"),
        ("Vikram Rao", "Mohan Oberoi"),
    ] {
        let clear = app.submit(&paying(debtor, creditor, "100")).await;
        assert_eq!(
            clear.str("status"),
            "accepted",
            "{debtor} / {creditor}: {}",
            clear.body
        );
        assert_eq!(clear.body["screening"], Value::Null);
    }
    app.submit_accepted(&inr_to_aed(json!("100"))).await;
    // Bad party input is refused, not screened around.
    let mut bad = paying("x", "y", "1");
    bad["debtor"] = json!({"name": "  "});
    assert_eq!(app.submit(&bad).await.code(), "party_name_invalid");
    bad["debtor"] = json!({"name": "Asha", "country": "India"});
    assert_eq!(app.submit(&bad).await.code(), "country_invalid");
    // Each of the six transfers naming parties was screened, and timed; the one
    // naming none and the refused ones were not.
    assert_eq!(app.metrics.screening_duration.get_sample_count(), 6);
    assert!(app
        .metrics
        .render()
        .contains("deltran_screening_duration_seconds_count 6"));
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_held_transfer_keeps_its_exposure_until_the_operator_releases_or_rejects_it() {
    let app = TestApp::spawn().await;
    standard_list(&app).await;
    app.set_cap("ICICI", "INR", "1000").await;
    let held = app
        .submit(&paying("Asha", "Muhammad Al-Rasheed", "600"))
        .await;
    assert_eq!(held.str("status"), "held", "{}", held.body);
    let row = app.position("ICICI", "INR").await;
    assert_eq!(
        (&row["held"], &row["exposure"]),
        (&json!("600.00"), &json!("600.00"))
    );
    // The held exposure counts against the cap.
    let over = app.submit(&inr_to_aed(json!("500"))).await;
    assert_eq!(over.code(), "limit_exceeded");
    let listed = app.get("/api/v1/transfers?status=held").await;
    assert_eq!(listed.body["transactions"].as_array().unwrap().len(), 1);

    // Only the operator decides; a bank key may not.
    let id = held.str("transaction_id");
    let by_bank = app
        .send_as(
            Some(app.keys.bank("ICICI")),
            "POST",
            &format!("/api/v1/transfers/{id}/release"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(
        (by_bank.status.as_u16(), by_bank.code()),
        (403, "operator_only")
    );
    // It survives its bank actor's restart: the held exposure is read back.
    let bank = BankCode::parse("ICICI").unwrap();
    app.engine
        .directory
        .bank(&bank)
        .unwrap()
        .addr
        .do_send(InjectPanic);
    eventually("the books are read back with the held exposure", || async {
        let positions = app.positions("ICICI").await.body;
        let row = app.position("ICICI", "INR").await;
        positions["current"] == true && row["held"] == "600.00" && row["exposure"] == "600.00"
    })
    .await;

    let released = app
        .post(&format!("/api/v1/transfers/{id}/release"), &json!({}))
        .await;
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(released.str("status"), "accepted");
    let window = app.current_window_id().await;
    assert_eq!(released.body["window_id"], json!(window));
    eventually("the held exposure became a debit", || async {
        let row = app.position("ICICI", "INR").await;
        row["held"] == "0.00" && row["debits"] == "600.00" && row["exposure"] == "600.00"
    })
    .await;
    let again = app
        .post(&format!("/api/v1/transfers/{id}/release"), &json!({}))
        .await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "transfer_not_held")
    );

    // Another is rejected by the operator: its exposure goes.
    let second = app
        .submit(&paying("Asha", "Muhamad Al Rasheed", "300"))
        .await;
    assert_eq!(second.str("status"), "held", "{}", second.body);
    let rejected = app
        .post(
            &format!("/api/v1/transfers/{}/reject", second.str("transaction_id")),
            &json!({}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(
        (rejected.str("status"), rejected.str("reject_code")),
        ("rejected".into(), "compliance_rejected".into())
    );
    eventually("the rejected transfer's exposure is gone", || async {
        app.position("ICICI", "INR").await["exposure"] == "600.00"
    })
    .await;
    let closed = app.close_window().await;
    let netted = app.wait_for_window_state(closed, &["netted"]).await;
    assert_eq!(netted["transfer_count"], 1);
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn iso20022_parties_are_screened_too() {
    let app = TestApp::spawn().await;
    standard_list(&app).await;
    let message = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/iso20022/pacs.008.001.08-two.xml"),
    )
    .unwrap()
    .replace("Gulf Spice Trading LLC", "Gulf Shadow Trading")
    .replace("Desert Rose General Trading", "Mohamed Alrashid");
    let reply = app
        .send_as(
            Some(app.keys.bank("ICICI")),
            "POST",
            "/api/v1/iso20022/pacs.008",
            message.into_bytes(),
            &[("content-type", "application/xml")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .text
            .contains("<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>RR04</Cd>"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("<TxSts>PDNG</TxSts>")
            || reply
                .text
                .contains("<Cd>RR04</Cd></Rsn><AddtlInf>compliance_rejected"),
        "{}",
        reply.text
    );
    let held = app.get("/api/v1/transfers?status=held").await;
    let rejected = app
        .scalar("SELECT count(*) FROM transfers WHERE reject_code = 'compliance_rejected'")
        .await;
    assert_eq!(
        held.body["transactions"].as_array().unwrap().len() + rejected.parse::<usize>().unwrap(),
        2
    );
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn the_daily_compliance_report_lists_held_released_rejected_and_flagged_transfers() {
    let app = TestApp::spawn().await;
    let ids = standard_list(&app).await;
    let corridor = app
        .update_corridor("INR-AED", &json!({"report_threshold": "10000"}))
        .await;
    assert_eq!(
        corridor.body["report_threshold"], "10000.00",
        "{}",
        corridor.body
    );
    let big = app.submit_accepted(&inr_to_aed(json!("15000"))).await;
    assert_eq!(big.body["flagged"], true);
    assert_eq!(
        app.submit_accepted(&inr_to_aed(json!("9999.99")))
            .await
            .body["flagged"],
        Value::Null
    );
    app.submit(&paying("Vikram Oberoi", "x", "10")).await;
    let held = app
        .submit(&paying("Asha", "Muhammad Al-Rasheed", "20"))
        .await;
    let released = app.submit(&paying("Asha", "Muhamad Al Rashid", "30")).await;
    assert_eq!(
        (held.str("status"), released.str("status")),
        ("held".into(), "held".into())
    );
    let r = app
        .post(
            &format!(
                "/api/v1/transfers/{}/release",
                released.str("transaction_id")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let path = format!("/api/v1/reports/compliance?date={today}");
    let report = app.get_as(Some(&app.keys.auditor), &path).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let counts = |r: &Value| {
        (
            r["held"].clone(),
            r["released"].clone(),
            r["rejected"].clone(),
            r["flagged"].clone(),
        )
    };
    assert_eq!(
        counts(&report.body),
        (json!(1), json!(1), json!(1), json!(1)),
        "{}",
        report.body
    );
    let rejected = report.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["category"] == "rejected")
        .unwrap();
    assert_eq!(
        (
            &rejected["entry_id"],
            &rejected["entry_list"],
            &rejected["entry_name"]
        ),
        (&json!(ids[1]), &json!("pep"), &json!("Vikram Oberoi"))
    );
    assert_eq!(rejected["transfer"]["debtor"]["name"], "Vikram Oberoi");

    let csv = app.get(&format!("{path}&format=csv")).await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 5, "{}", csv.text);
    assert!(lines[0].starts_with("category,transaction_id,"));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("flagged,") && l.contains(&big.str("transaction_id"))));
    // Another day holds nothing; banks may not read it.
    let empty = app.get("/api/v1/reports/compliance?date=2020-01-01").await;
    assert_eq!(empty.body["lines"], json!([]));
    let bank = app.get_as(Some(app.keys.bank("ICICI")), &path).await;
    assert_eq!(
        (bank.status.as_u16(), bank.code()),
        (403, "operator_or_auditor_only")
    );
    assert_eq!(
        app.get("/api/v1/reports/compliance").await.code(),
        "query_invalid"
    );
}
