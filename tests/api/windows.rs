//! Clearing windows against real Postgres: exact cut-off under load, a hand-computed
//! netting, settlement and the release of exposure, failed settlement.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{eventually, inr_to_aed, test_settings, TestApp, WsClient};
use rust_decimal::Decimal;
use serde_json::{json, Value};

async fn spawn_with_windows(duration_ms: u64, demo_delay_ms: Option<u64>) -> TestApp {
    let mut settings = test_settings();
    settings.window_duration_ms = duration_ms;
    settings.demo = demo_delay_ms.is_some();
    settings.settlement_delay_ms = demo_delay_ms.unwrap_or(0);
    TestApp::spawn_with_settings(settings).await
}

fn body(sender: &str, receiver: &str, amount: &str, from: &str, to: &str) -> Value {
    json!({"sender_bank": sender, "receiver_bank": receiver, "amount": amount,
           "from_currency": from, "to_currency": to})
}

#[actix_web::test]
async fn transfers_across_a_hundred_short_windows_are_each_netted_exactly_once() {
    let app = spawn_with_windows(25, Some(5)).await;
    let first_window = app.current_window_id().await;
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let pairs = [
        ("ICICI", "ENBD", "INR", "AED"),
        ("HDFC", "ADCB", "INR", "AED"),
        ("AXIS", "ENBD", "INR", "AED"),
        ("ENBD", "ICICI", "AED", "INR"),
        ("ADCB", "HDFC", "AED", "INR"),
        ("ICICI", "HDFC", "INR", "INR"),
    ];
    // A same-currency corridor so some transfers need no conversion.
    let corridor = app
        .create_corridor(
            &json!({"from_currency": "INR", "to_currency": "INR", "fx_rate": "1", "amount_max": "1000000"}),
        )
        .await;
    assert_eq!(corridor.status, 201);
    let submitters = (0..8).map(|task| {
        let (app, stop, accepted) = (&app, stop.clone(), accepted.clone());
        async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (s, r, f, t) = pairs[(task + i) % pairs.len()];
                let amount = format!("{}.{:02}", 1 + (task * 31 + i * 7) % 5000, i % 100);
                let reply = app.submit(&body(s, r, &amount, f, t)).await;
                assert_eq!(reply.status, 202, "{}", reply.body);
                accepted.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }
    });
    let watcher = async {
        loop {
            let current = app.current_window_id().await;
            if current >= first_window + 100 {
                stop.store(true, Ordering::Relaxed);
                return current;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (_, last_open) =
        futures_util::future::join(futures_util::future::join_all(submitters), watcher).await;
    let closed = app.close_window().await;
    assert!(closed >= last_open);
    app.wait_for_window_state(closed, &["netted", "settled"])
        .await;
    // Every window before it is netted (or already settled by the demo rail).
    let client = app.sql().await;
    eventually("all earlier windows netted", || {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT count(*) FROM windows WHERE id <= $1 AND state IN ('open', 'closing')",
                    &[&closed],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 0
        }
    })
    .await;
    let windows_with_transfers: i64 = client
        .query_one(
            "SELECT count(DISTINCT window_id) FROM transfers WHERE status = 'accepted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        windows_with_transfers >= 90,
        "{windows_with_transfers} windows had transfers"
    );
    let counted: i64 = client
        .query_one(
            "SELECT sum(transfer_count) FROM windows WHERE id <= $1",
            &[&closed],
        )
        .await
        .unwrap()
        .get::<_, rust_decimal::Decimal>(0)
        .try_into()
        .unwrap();
    assert_eq!(counted as usize, accepted.load(Ordering::Relaxed));
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_hand_computed_window_nets_exactly_and_settles_instruction_by_instruction() {
    let app = spawn_with_windows(3_600_000, None).await;
    app.update_corridor("INR-AED", &json!({"fx_rate": "0.05"}))
        .await;
    app.update_corridor("AED-INR", &json!({"fx_rate": "20"}))
        .await;
    for (s, r, a, f, t) in [
        ("ICICI", "ENBD", "1000", "INR", "AED"), // ENBD +50 AED
        ("HDFC", "ENBD", "500", "INR", "AED"),   // ENBD +25 AED
        ("ENBD", "ICICI", "40", "AED", "INR"),   // ICICI +800 INR
        ("ADCB", "HDFC", "10", "AED", "INR"),    // HDFC +200 INR
    ] {
        assert_eq!(app.submit(&body(s, r, a, f, t)).await.status, 202);
    }
    let window = app.close_window().await;
    let w = app.wait_for_window_state(window, &["netted"]).await;
    assert_eq!(w["transfer_count"], 4);
    assert_eq!(
        w["positions"],
        json!([
            {"bank": "ADCB", "currency": "AED", "debits": "10.00", "credits": "0.00", "position": "-10.00"},
            {"bank": "ENBD", "currency": "AED", "debits": "40.00", "credits": "75.00", "position": "35.00"},
            {"bank": "HDFC", "currency": "INR", "debits": "500.00", "credits": "200.00", "position": "-300.00"},
            {"bank": "ICICI", "currency": "INR", "debits": "1000.00", "credits": "800.00", "position": "-200.00"},
        ])
    );
    assert_eq!(
        w["currencies"],
        json!([
            {"currency": "AED", "gross": "50.00", "net": "10.00", "efficiency": "0.8",
             "liquidity_used": "10.00", "liquidity_efficiency": "5"},
            {"currency": "INR", "gross": "1500.00", "net": "500.00", "efficiency": "0.666667",
             "liquidity_used": "500.00", "liquidity_efficiency": "3"},
        ])
    );
    assert_eq!(
        w["hub"],
        json!([{"currency": "AED", "position": "-25.00"}, {"currency": "INR", "position": "500.00"}])
    );
    assert_liquidity_figures_match_positions(&w);
    assert_eq!(
        w["fx"],
        json!([
            {"corridor": "AED-INR", "source_amount": "50.00", "destination_amount": "1000.00"},
            {"corridor": "INR-AED", "source_amount": "1500.00", "destination_amount": "75.00"},
        ])
    );
    let listed = app.settlements(window).await;
    let mut instructions: Vec<(String, String, String, String)> = listed.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["payer"].as_str().unwrap().to_string(),
                i["payee"].as_str().unwrap().to_string(),
                i["amount"].as_str().unwrap().to_string(),
                i["currency"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    instructions.sort();
    let expected: Vec<(String, String, String, String)> = [
        ("ADCB", "HUB", "10.00", "AED"),
        ("HDFC", "HUB", "300.00", "INR"),
        ("HUB", "ENBD", "35.00", "AED"),
        ("ICICI", "HUB", "200.00", "INR"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(instructions, expected);
    let transfers = app
        .get(&format!("/api/v1/transfers?window_id={window}"))
        .await;
    for t in transfers.body["transactions"].as_array().unwrap() {
        assert_eq!(t["status"], "netted");
    }
    let ids: Vec<String> = listed.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let reply = app.confirm_instruction(id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["state"], "confirmed");
        let state = app.window(window).await.body["state"].clone();
        assert_eq!(
            state,
            if n + 1 == ids.len() {
                "settled"
            } else {
                "netted"
            }
        );
    }
    let again = app.confirm_instruction(&ids[0]).await;
    assert_eq!(
        (again.status.as_u16(), again.body["changed"].clone()),
        (200, json!(false))
    );
    let status = app
        .get(&format!("/api/v1/settlements/{}/status", ids[0]))
        .await;
    assert_eq!(status.body["state"], "confirmed");
    let unknown = app
        .post_confirm("00000000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "not_found")
    );
    let invalid = app.post_confirm("nope").await;
    assert_eq!(invalid.status, 400);
    let transfers = app
        .get(&format!(
            "/api/v1/transfers?window_id={window}&status=settled"
        ))
        .await;
    assert_eq!(transfers.body["transactions"].as_array().unwrap().len(), 4);
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_bank_at_its_cap_sends_again_only_once_the_window_with_its_debits_is_settled() {
    let app = spawn_with_windows(3_600_000, None).await;
    app.set_cap("ICICI", "INR", "1000").await;
    assert_eq!(app.submit(&inr_to_aed(json!("1000"))).await.status, 202);
    assert_eq!(
        app.submit(&inr_to_aed(json!("1"))).await.code(),
        "limit_exceeded"
    );
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    // Netted is not settled: the debit still counts.
    assert_eq!(
        app.submit(&inr_to_aed(json!("1"))).await.code(),
        "limit_exceeded"
    );
    let listed = app.settlements(window).await;
    for i in listed.body["settlements"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap();
        assert_eq!(app.confirm_instruction(id).await.status, 200);
    }
    app.wait_for_window_state(window, &["settled"]).await;
    eventually("the exposure to be released", || async {
        app.position("ICICI", "INR").await["exposure"] == "0.00"
    })
    .await;
    assert_eq!(app.submit(&inr_to_aed(json!("1"))).await.status, 202);
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_failed_instruction_fails_the_window_and_cannot_be_confirmed_after() {
    let app = spawn_with_windows(3_600_000, None).await;
    assert_eq!(app.submit(&inr_to_aed(json!("10"))).await.status, 202);
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    let listed = app.settlements(window).await;
    let id = listed.body["settlements"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = app.fail_instruction(&id).await;
    assert_eq!(
        (failed.status.as_u16(), failed.body["state"].clone()),
        (200, json!("failed"))
    );
    app.wait_for_window_state(window, &["settlement_failed"])
        .await;
    let confirm = app.post_confirm(&id).await;
    assert_eq!(
        (confirm.status.as_u16(), confirm.code()),
        (409, "instruction_not_pending")
    );
    app.assert_audit_clean().await;
    app.stop().await;
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, not {v}"))
        .parse()
        .unwrap()
}

/// Checks each of a netted window's currencies against its positions: liquidity used
/// is the sum of the banks' negative positions (the hub's leg aside), equal to `net`,
/// and liquidity efficiency is gross ÷ that, rounded to 6 decimals, or null when it
/// is zero.
fn assert_liquidity_figures_match_positions(w: &Value) {
    for c in w["currencies"].as_array().unwrap() {
        let currency = c["currency"].as_str().unwrap();
        let owed: Decimal = w["positions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["currency"] == currency)
            .map(|p| dec(&p["position"]))
            .filter(|p| *p < Decimal::ZERO)
            .map(|p| -p)
            .sum();
        let used = dec(&c["liquidity_used"]);
        assert_eq!(used, owed, "{currency}: {c}");
        assert_eq!(c["liquidity_used"], c["net"], "{currency}");
        let expected = if owed.is_zero() {
            Value::Null
        } else {
            json!((dec(&c["gross"]) / owed)
                .round_dp(6)
                .normalize()
                .to_string())
        };
        assert_eq!(c["liquidity_efficiency"], expected, "{currency}: {c}");
    }
}

/// The sample of `series` in `text`, if it is there.
fn sample_if_any(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

#[actix_web::test]
async fn a_netted_windows_currencies_carry_the_liquidity_used_and_its_efficiency() {
    let app = spawn_with_windows(3_600_000, None).await;
    app.update_corridor("INR-AED", &json!({"fx_rate": "0.05"}))
        .await;
    app.update_corridor("AED-INR", &json!({"fx_rate": "20"}))
        .await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(&json!({"type": "subscribe", "channels": ["windows"]}))
        .await;
    ws.next_of("subscribed").await;
    for (s, r, a, f, t) in [
        ("ICICI", "ENBD", "1000", "INR", "AED"), // ENBD +50 AED
        ("HDFC", "ENBD", "470", "INR", "AED"),   // ENBD +23.50 AED
        ("ENBD", "ICICI", "30", "AED", "INR"),   // ICICI +600 INR
        ("ENBD", "HDFC", "20", "AED", "INR"),    // HDFC +400 INR
        ("ENBD", "ICICI", "3", "AED", "INR"),    // ICICI +60 INR
    ] {
        assert_eq!(app.submit(&body(s, r, a, f, t)).await.status, 202);
    }
    let window = app.close_window().await;
    let w = app.wait_for_window_state(window, &["netted"]).await;
    // INR: ICICI -340, HDFC -70: 410 used for 1470 gross. AED: ENBD alone, a net
    // creditor (+20.50): no bank's liquidity used, no ratio.
    assert_eq!(
        w["currencies"],
        json!([
            {"currency": "AED", "gross": "53.00", "net": "0.00", "efficiency": "1",
             "liquidity_used": "0.00", "liquidity_efficiency": null},
            {"currency": "INR", "gross": "1470.00", "net": "410.00", "efficiency": "0.721088",
             "liquidity_used": "410.00", "liquidity_efficiency": "3.585366"},
        ])
    );
    assert_liquidity_figures_match_positions(&w);
    // The feed's window_netted renders the same view.
    let netted = ws.next_of("window_netted").await;
    assert_eq!(netted["data"]["currencies"], w["currencies"]);
    // The gauge: the ratio where liquidity was used, no series where none was.
    let inr = "deltran_liquidity_efficiency_ratio{currency=\"INR\"}";
    let aed = "deltran_liquidity_efficiency_ratio{currency=\"AED\"}";
    eventually("the liquidity efficiency gauge set", || async {
        sample_if_any(&app.metrics.render(), inr).is_some()
    })
    .await;
    let text = app.metrics.render();
    let ratio = sample_if_any(&text, inr).unwrap();
    assert!((ratio - 1470.0 / 410.0).abs() < 1e-9, "{ratio}");
    assert_eq!(sample_if_any(&text, aed), None);

    // The next window turns it round: ADCB pays AED in, INR is credit only.
    assert_eq!(
        app.submit(&body("ADCB", "ICICI", "12.5", "AED", "INR"))
            .await
            .status,
        202
    );
    let window = app.close_window().await;
    let w = app.wait_for_window_state(window, &["netted"]).await;
    assert_eq!(
        w["currencies"],
        json!([
            {"currency": "AED", "gross": "12.50", "net": "12.50", "efficiency": "0",
             "liquidity_used": "12.50", "liquidity_efficiency": "1"},
            {"currency": "INR", "gross": "0.00", "net": "0.00", "efficiency": "0",
             "liquidity_used": "0.00", "liquidity_efficiency": null},
        ])
    );
    assert_liquidity_figures_match_positions(&w);
    assert_eq!(
        ws.next_of("window_netted").await["data"]["currencies"],
        w["currencies"]
    );
    eventually("the liquidity efficiency gauge moved to AED", || async {
        sample_if_any(&app.metrics.render(), aed).is_some()
    })
    .await;
    let text = app.metrics.render();
    assert_eq!(sample_if_any(&text, aed), Some(1.0));
    assert_eq!(sample_if_any(&text, inr), None);
    drop(ws);
    app.assert_audit_clean().await;
    app.stop().await;
}

/// The value of the sample `series` (name and labels as rendered) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from the metrics"))
        .parse()
        .expect("a number")
}

/// (longest closing, longest netted, oldest pending instruction), in seconds.
fn waits(app: &TestApp) -> (f64, f64, f64) {
    let text = app.metrics.render();
    (
        sample(
            &text,
            "deltran_window_longest_in_state_seconds{state=\"closing\"}",
        ),
        sample(
            &text,
            "deltran_window_longest_in_state_seconds{state=\"netted\"}",
        ),
        sample(
            &text,
            "deltran_settlement_instructions_oldest_pending_seconds",
        ),
    )
}

#[actix_web::test]
async fn the_longest_waits_count_from_the_stored_netting_across_a_restart_until_settled() {
    let app = spawn_with_windows(3_600_000, None).await;
    assert_eq!(waits(&app), (0.0, 0.0, 0.0));
    app.submit_accepted(&inr_to_aed(json!("10"))).await;
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    // The store says netted a moment before the window actor moves the wait from
    // closing to netted (once the netting's transaction is back): poll for it.
    eventually("the netted window left the closing wait", || async {
        waits(&app).0 == 0.0
    })
    .await;
    let (_, netted, pending) = waits(&app);
    assert!(netted > 0.0 && pending > 0.0, "{netted} {pending}");
    // A restart reads the waits back from the store: they go on from where they were.
    let database = app.database.clone();
    app.stop().await;
    let mut settings = test_settings();
    settings.window_duration_ms = 3_600_000;
    let app = TestApp::spawn_with(settings, database).await;
    assert!(waits(&app).2 >= pending);
    eventually("the recovered window's wait", || async {
        waits(&app).1 >= netted
    })
    .await;
    let listed = app.settlements(window).await;
    for instruction in listed.body["settlements"].as_array().unwrap() {
        app.confirm_instruction(instruction["id"].as_str().unwrap())
            .await;
    }
    app.wait_for_window_state(window, &["settled"]).await;
    eventually("no wait left", || async { waits(&app) == (0.0, 0.0, 0.0) }).await;
    app.stop().await;
}
