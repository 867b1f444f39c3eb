//! Reports against real Postgres: a bank's statement of a window (JSON, paged, and
//! CSV) checked against the submitted transfers and the window's netting; the summary
//! checked against sums made here, in Rust, from the transfers as the API answered
//! them; tenancy; bounds and bad parameters.

use std::collections::BTreeMap;

use chrono::{Duration, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{test_settings, TestApp};

fn body(sender: &str, receiver: &str, amount: &str, from: &str, to: &str) -> Value {
    json!({"sender_bank": sender, "receiver_bank": receiver, "amount": amount,
           "from_currency": from, "to_currency": to})
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, not {v}"))
        .parse()
        .unwrap()
}

/// The transfer an answer carries: the 202 body, or a stored rejection's `transfer`.
fn transfer_of(reply: &crate::helpers::Reply) -> Value {
    match reply.status.as_u16() {
        202 => reply.body.clone(),
        422 => reply.body["transfer"].clone(),
        other => panic!("{other}: {}", reply.body),
    }
}

/// A GET whose body is text (the CSV statement), with `key` and extra headers.
async fn get_text(
    app: &TestApp,
    key: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, awc::http::header::HeaderMap, String) {
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let mut request = client
        .get(format!("{}{path}", app.address))
        .insert_header(("authorization", format!("Bearer {key}")));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.expect("request");
    let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        response.status().as_u16(),
        content_type,
        response.headers().clone(),
        String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    )
}

/// CSV text as rows of fields (RFC 4180: quoted fields, doubled quotes, CRLF).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the CSV ends with a line break"
    );
    rows
}

/// Netted window 1 and a few transfers in the open window 2, with two rejections.
struct Fixture {
    /// Every transfer submitted, as the API answered it (rejections included).
    transfers: Vec<Value>,
    netted: i64,
    open: i64,
}

/// ICICI, HDFC, ENBD and ADCB trade in window 1, which is netted and settled; ICICI
/// sends once more in window 2 (open), with a reference a spreadsheet would take for
/// a formula; two transfers are rejected (one over the corridor's maximum, one over
/// HDFC's cap).
async fn fixture(app: &TestApp) -> Fixture {
    let mut transfers = Vec::new();
    for b in [
        body("ICICI", "ENBD", "1000.00", "INR", "AED"),
        body("ICICI", "ENBD", "250.50", "INR", "AED"),
        body("HDFC", "ADCB", "700.00", "INR", "AED"),
        body("ENBD", "ICICI", "30.00", "AED", "INR"),
        body("ADCB", "HDFC", "12.34", "AED", "INR"),
    ] {
        transfers.push(transfer_of(&app.submit_accepted(&b).await));
    }
    let netted = app.close_window().await;
    app.wait_for_window_state(netted, &["netted"]).await;
    let instructions = app.settlements(netted).await.body["settlements"]
        .as_array()
        .unwrap()
        .clone();
    for i in &instructions {
        app.confirm_instruction(i["id"].as_str().unwrap()).await;
    }
    app.wait_for_window_state(netted, &["settled"]).await;
    let open = app.current_window_id().await;
    let mut late = body("ICICI", "ENBD", "99.99", "INR", "AED");
    late["reference"] = json!("=HYPERLINK(\"x\"), invoice 7");
    transfers.push(transfer_of(&app.submit_accepted(&late).await));
    let too_large = app
        .submit(&body("ICICI", "ENBD", "2000000000.00", "INR", "AED"))
        .await;
    assert_eq!(too_large.code(), "amount_exceeds_corridor_maximum");
    transfers.push(transfer_of(&too_large));
    app.set_cap("HDFC", "INR", "1").await;
    let over_cap = app
        .submit(&body("HDFC", "ADCB", "5.00", "INR", "AED"))
        .await;
    assert_eq!(over_cap.code(), "limit_exceeded");
    transfers.push(transfer_of(&over_cap));
    // Statuses as they are now (window 1 settled).
    let mut now = Vec::new();
    for t in transfers {
        let id = t["transaction_id"].as_str().unwrap();
        now.push(app.transfer(id).await.body);
    }
    Fixture {
        transfers: now,
        netted,
        open,
    }
}

fn statement_path(window: i64, bank: &str) -> String {
    format!("/api/v1/reports/windows/{window}/banks/{bank}/statement")
}

fn party(t: &Value, bank: &str) -> bool {
    t["sender_bank"] == bank || t["receiver_bank"] == bank
}

/// A bank's debits and credits per currency in `window`, from the transfers.
fn legs_of(transfers: &[Value], window: i64, bank: &str) -> BTreeMap<String, [Decimal; 2]> {
    let mut legs: BTreeMap<String, [Decimal; 2]> = BTreeMap::new();
    for t in transfers.iter().filter(|t| t["window_id"] == window) {
        if t["sender_bank"] == bank {
            let from = t["from_currency"].as_str().unwrap().to_string();
            legs.entry(from).or_default()[0] += dec(&t["amount"]);
        }
        if t["receiver_bank"] == bank {
            let to = t["to_currency"].as_str().unwrap().to_string();
            legs.entry(to).or_default()[1] += dec(&t["converted_amount"]);
        }
    }
    legs
}

#[actix_web::test]
async fn a_statement_holds_the_banks_transfers_positions_and_instructions() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let icici = app.keys.bank("ICICI");
    let path = statement_path(f.netted, "ICICI");
    let reply = app.get_as(Some(icici), &path).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let s = &reply.body;
    assert_eq!(s["bank"], "ICICI");
    assert_eq!(s["provisional"], false);
    assert_eq!(s["window"]["id"], f.netted);
    assert_eq!(s["window"]["state"], "settled");
    // Its transfers of the window, both directions, in id order; nobody else's.
    let expected: Vec<&Value> = f
        .transfers
        .iter()
        .filter(|t| t["window_id"] == f.netted && party(t, "ICICI"))
        .collect();
    assert_eq!(expected.len(), 3);
    let mut expected_ids: Vec<&str> = expected
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap())
        .collect();
    expected_ids.sort();
    let listed: Vec<&Value> = s["transfers"].as_array().unwrap().iter().collect();
    let listed_ids: Vec<&str> = listed
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, expected_ids);
    for t in &listed {
        let submitted = expected
            .iter()
            .find(|e| e["transaction_id"] == t["transaction_id"])
            .unwrap();
        assert_eq!(*t, *submitted, "as GET /transfers/{{id}} shows it");
    }
    assert_eq!(s["transfer_count"], 3);
    assert_eq!(s["next_cursor"], Value::Null);
    // Positions: as the netting recorded them, and as the transfers add up.
    let window = app.window(f.netted).await.body;
    let recorded: Vec<&Value> = window["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["bank"] == "ICICI")
        .collect();
    let positions = s["positions"].as_array().unwrap();
    assert_eq!(positions.len(), recorded.len());
    let legs = legs_of(&f.transfers, f.netted, "ICICI");
    for (p, r) in positions.iter().zip(&recorded) {
        for field in ["currency", "debits", "credits", "position"] {
            assert_eq!(p[field], r[field], "{field}");
        }
        let [debits, credits] = legs[p["currency"].as_str().unwrap()];
        assert_eq!(dec(&p["debits"]), debits);
        assert_eq!(dec(&p["credits"]), credits);
        assert_eq!(dec(&p["position"]), credits - debits);
    }
    let inr = positions.iter().find(|p| p["currency"] == "INR").unwrap();
    assert_eq!(
        (&inr["transfers_sent"], &inr["transfers_received"]),
        (&json!(2), &json!(1))
    );
    // Instructions: those ICICI pays or is paid, with their state.
    let mine: Vec<Value> = app.settlements(f.netted).await.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["payer"] == "ICICI" || i["payee"] == "ICICI")
        .cloned()
        .collect();
    assert!(!mine.is_empty());
    assert_eq!(s["instructions"], json!(mine));
    assert!(mine.iter().all(|i| i["state"] == "confirmed"));

    // Paged one by one, the cursor walks the same transfers; every page has the head.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            None => format!("{path}?limit=1"),
            Some(c) => format!("{path}?limit=1&cursor={c}"),
        };
        let page = app.get_as(Some(icici), &page_path).await.body;
        assert_eq!(page["positions"], s["positions"]);
        paged.extend(page["transfers"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(json!(paged), s["transfers"]);

    // CSV (by the format parameter or by Accept): the same statement, line by line.
    let (status, content_type, headers, text) =
        get_text(&app, icici, &format!("{path}?format=csv"), &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(headers.get("x-transfer-count").unwrap(), "3");
    let by_accept = get_text(&app, icici, &path, &[("accept", "text/csv")]).await;
    assert_eq!(by_accept.3, text);
    let rows = csv_rows(&text);
    let header = &rows[0];
    assert_eq!(header[0], "record");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records =
        |kind: &str| -> Vec<&Vec<String>> { rows[1..].iter().filter(|r| r[0] == kind).collect() };
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let csv_positions = records("position");
    assert_eq!(csv_positions.len(), positions.len());
    for (row, p) in csv_positions.iter().zip(positions) {
        assert_eq!(row[column("currency")], p["currency"].as_str().unwrap());
        assert_eq!(row[column("debits")], p["debits"].as_str().unwrap());
        assert_eq!(row[column("credits")], p["credits"].as_str().unwrap());
        assert_eq!(row[column("position")], p["position"].as_str().unwrap());
        assert_eq!(row[column("status")], "final");
    }
    let csv_instructions = records("instruction");
    assert_eq!(csv_instructions.len(), mine.len());
    for (row, i) in csv_instructions.iter().zip(&mine) {
        assert_eq!(row[column("id")], i["id"].as_str().unwrap());
        assert_eq!(row[column("amount")], i["amount"].as_str().unwrap());
        assert_eq!(row[column("status")], "confirmed");
        let pays = i["payer"] == "ICICI";
        assert_eq!(
            row[column("direction")],
            if pays { "pay" } else { "receive" }
        );
        assert_eq!(row[column("counterparty")], "HUB");
    }
    let csv_transfers = records("transfer");
    assert_eq!(csv_transfers.len(), 3);
    for (row, t) in csv_transfers.iter().zip(&listed) {
        assert_eq!(row[column("id")], t["transaction_id"].as_str().unwrap());
        assert_eq!(row[column("status")], "settled");
        if t["sender_bank"] == "ICICI" {
            assert_eq!(row[column("direction")], "sent");
            assert_eq!(
                row[column("counterparty")],
                t["receiver_bank"].as_str().unwrap()
            );
            assert_eq!(
                row[column("currency")],
                t["from_currency"].as_str().unwrap()
            );
            assert_eq!(row[column("amount")], t["amount"].as_str().unwrap());
            assert_eq!(
                row[column("counter_amount")],
                t["converted_amount"].as_str().unwrap()
            );
        } else {
            assert_eq!(row[column("direction")], "received");
            assert_eq!(
                row[column("counterparty")],
                t["sender_bank"].as_str().unwrap()
            );
            assert_eq!(row[column("currency")], t["to_currency"].as_str().unwrap());
            assert_eq!(
                row[column("amount")],
                t["converted_amount"].as_str().unwrap()
            );
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_statement_of_an_open_window_is_provisional_and_a_csv_escapes_its_text() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let icici = app.keys.bank("ICICI");
    let reply = app
        .get_as(Some(icici), &statement_path(f.open, "ICICI"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let s = &reply.body;
    assert_eq!(s["provisional"], true);
    assert_eq!(s["window"]["state"], "open");
    assert_eq!(s["instructions"], json!([]));
    // Rejected transfers belong to no window: only the accepted one is listed.
    let transfers = s["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0]["amount"], "99.99");
    assert_eq!(transfers[0]["status"], "accepted");
    assert_eq!(
        s["positions"],
        json!([{"currency": "INR", "debits": "99.99", "credits": "0.00", "position": "-99.99",
                "transfers_sent": 1, "transfers_received": 0}])
    );
    let (status, _, _, text) = get_text(
        &app,
        icici,
        &format!("{}?format=csv", statement_path(f.open, "ICICI")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let rows = csv_rows(&text);
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let position = rows.iter().find(|r| r[0] == "position").unwrap();
    assert_eq!(position[column("status")], "provisional");
    let transfer = rows.iter().find(|r| r[0] == "transfer").unwrap();
    // Quoted for its comma and quotes; a leading ' so no spreadsheet runs it.
    assert_eq!(
        transfer[column("reference")],
        "'=HYPERLINK(\"x\"), invoice 7"
    );
    assert!(text.contains("\"'=HYPERLINK(\"\"x\"\"), invoice 7\""));
    // A bank with nothing in the window gets an empty statement.
    let axis = app.get(&statement_path(f.netted, "AXIS")).await;
    assert_eq!(axis.status, 200);
    assert_eq!(axis.body["transfers"], json!([]));
    assert_eq!(axis.body["positions"], json!([]));
    assert_eq!(axis.body["transfer_count"], 0);
    app.stop().await;
}

/// The range that holds everything of a fresh test database.
fn whole_range() -> String {
    let t = |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, true);
    let now = Utc::now();
    format!(
        "from={}&to={}",
        t(now - Duration::hours(1)),
        t(now + Duration::hours(1))
    )
}

/// `(corridor, status, direction)` → count, sum of amounts, sum of converted amounts
/// (`None` for rejections), computed here from the transfers.
type Volumes = BTreeMap<(String, String, Option<String>), (i64, Decimal, Option<Decimal>)>;

fn volumes(transfers: &[Value], bank: Option<&str>) -> Volumes {
    let mut out = Volumes::new();
    for t in transfers {
        let direction = match bank {
            None => None,
            Some(b) if t["sender_bank"] == b => Some("sent".to_string()),
            Some(b) if t["receiver_bank"] == b => Some("received".to_string()),
            Some(_) => continue,
        };
        let corridor = format!(
            "{}-{}",
            t["from_currency"].as_str().unwrap(),
            t["to_currency"].as_str().unwrap()
        );
        let status = t["status"].as_str().unwrap().to_string();
        let rejected = status == "rejected";
        let line = out.entry((corridor, status, direction)).or_insert((
            0,
            Decimal::ZERO,
            (!rejected).then_some(Decimal::ZERO),
        ));
        line.0 += 1;
        line.1 += dec(&t["amount"]);
        if let Some(sum) = line.2.as_mut() {
            *sum += dec(&t["converted_amount"]);
        }
    }
    out
}

fn volumes_answered(summary: &Value) -> Volumes {
    summary["transfers"]["by_corridor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                (
                    l["corridor"].as_str().unwrap().to_string(),
                    l["status"].as_str().unwrap().to_string(),
                    l["direction"].as_str().map(str::to_string),
                ),
                (
                    l["count"].as_i64().unwrap(),
                    dec(&l["source_amount"]),
                    (!l["destination_amount"].is_null()).then(|| dec(&l["destination_amount"])),
                ),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_summary_adds_up_the_transfers_the_windows_and_their_latencies() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let path = format!("/api/v1/reports/summary?{}", whole_range());
    for key in [&app.keys.operator, &app.keys.auditor] {
        let reply = app.get_as(Some(key), &path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let s = &reply.body;
        assert_eq!(s["scope"], "hub");
        assert_eq!(volumes_answered(s), volumes(&f.transfers, None));
        assert_eq!(s["transfers"]["count"], 8);
        assert_eq!(
            s["transfers"]["by_status"],
            json!({"accepted": 1, "netted": 0, "settled": 5, "rejected": 2,
                   "queued": 0, "expired": 0, "cancelled": 0, "held": 0})
        );
        assert_eq!(
            s["rejections"],
            json!({"count": 2, "by_code": [
                {"code": "amount_exceeds_corridor_maximum", "count": 1,
                 "values": [{"currency": "INR", "amount": "2000000000.00"}]},
                {"code": "limit_exceeded", "count": 1,
                 "values": [{"currency": "INR", "amount": "5.00"}]},
            ]})
        );
        // The one window netted in the range, with its own gross, net and efficiency.
        let window = app.window(f.netted).await.body;
        assert_eq!(s["netting"]["windows"], 1);
        assert_eq!(s["netting"]["currencies"], window["currencies"]);
        for kind in ["window_close", "settlement"] {
            let l = &s["latency"][kind];
            assert_eq!(l["windows"], 1, "{kind}");
            let mean = l["mean_ms"].as_f64().unwrap();
            assert!(mean >= 0.0 && mean == l["max_ms"].as_f64().unwrap(), "{l}");
        }
    }

    // A bank key: its own figures only, split by direction; the same with bank=.
    let icici = app.keys.bank("ICICI");
    let own = app.get_as(Some(icici), &path).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let s = &own.body;
    assert_eq!(s["scope"], "ICICI");
    assert_eq!(volumes_answered(s), volumes(&f.transfers, Some("ICICI")));
    assert_eq!(
        s["transfers"]["by_status"],
        json!({"accepted": 1, "netted": 0, "settled": 3, "rejected": 1,
               "queued": 0, "expired": 0, "cancelled": 0, "held": 0})
    );
    assert_eq!(s["rejections"]["count"], 1);
    assert_eq!(
        s["rejections"]["by_code"][0]["code"],
        "amount_exceeds_corridor_maximum"
    );
    // Its netting: its debits as gross, what it paid in as net.
    let legs = legs_of(&f.transfers, f.netted, "ICICI");
    let currencies = s["netting"]["currencies"].as_array().unwrap();
    assert_eq!(currencies.len(), legs.len());
    for c in currencies {
        let [debits, credits] = legs[c["currency"].as_str().unwrap()];
        assert_eq!(dec(&c["gross"]), debits);
        assert_eq!(dec(&c["net"]), (debits - credits).max(Decimal::ZERO));
        assert_eq!(c["liquidity_used"], c["net"]);
        let paid_in = dec(&c["liquidity_used"]);
        let ratio = (!paid_in.is_zero())
            .then(|| json!((debits / paid_in).round_dp(6).normalize().to_string()));
        assert_eq!(c["liquidity_efficiency"], ratio.unwrap_or(Value::Null));
    }
    let asked = app.get_as(Some(icici), &format!("{path}&bank=ICICI")).await;
    assert_eq!(asked.body, own.body);
    let by_operator = app.get(&format!("{path}&bank=ICICI")).await;
    assert_eq!(by_operator.body, own.body);
    // AXIS traded nothing: zeros, no windows of its own.
    let axis = app.get(&format!("{path}&bank=AXIS")).await.body;
    assert_eq!(axis["transfers"]["count"], 0);
    assert_eq!(axis["netting"]["windows"], 0);
    assert_eq!(axis["latency"]["window_close"]["mean_ms"], Value::Null);
    app.stop().await;
}

#[actix_web::test]
async fn the_summarys_liquidity_efficiency_is_the_summed_gross_over_the_summed_liquidity_used() {
    let mut settings = test_settings();
    settings.window_duration_ms = 3_600_000;
    let app = TestApp::spawn_with_settings(settings).await;
    app.update_corridor("INR-AED", &json!({"fx_rate": "0.05"}))
        .await;
    app.update_corridor("AED-INR", &json!({"fx_rate": "20"}))
        .await;
    // Window 1: ICICI pays 1000 INR and gets 900 back: 100 used for 1000, 10 : 1;
    // ENBD only gains in AED. Window 2: ICICI pays 300 INR gross and net, 1 : 1.
    let mut windows = Vec::new();
    for transfers in [
        vec![
            body("ICICI", "ENBD", "1000.00", "INR", "AED"),
            body("ENBD", "ICICI", "45.00", "AED", "INR"),
        ],
        vec![body("ICICI", "ENBD", "300.00", "INR", "AED")],
    ] {
        for b in &transfers {
            app.submit_accepted(b).await;
        }
        let window = app.close_window().await;
        windows.push(app.wait_for_window_state(window, &["netted"]).await);
    }
    let inr = |w: &Value| {
        w["currencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["currency"] == "INR")
            .unwrap()
            .clone()
    };
    assert_eq!(inr(&windows[0])["liquidity_efficiency"], "10");
    assert_eq!(inr(&windows[1])["liquidity_efficiency"], "1");
    let path = format!("/api/v1/reports/summary?{}", whole_range());
    let hub = app.get(&path).await.body;
    assert_eq!(hub["netting"]["windows"], 2);
    // 1300 / 400, not the mean of 10 and 1; AED used none in either window.
    assert_eq!(
        hub["netting"]["currencies"],
        json!([
            {"currency": "AED", "gross": "45.00", "net": "0.00", "efficiency": "1",
             "liquidity_used": "0.00", "liquidity_efficiency": null},
            {"currency": "INR", "gross": "1300.00", "net": "400.00", "efficiency": "0.692308",
             "liquidity_used": "400.00", "liquidity_efficiency": "3.25"},
        ])
    );
    // The sums are the windows' own figures added up.
    let summed = |field: &str| -> Decimal { windows.iter().map(|w| dec(&inr(w)[field])).sum() };
    let total = inr(&hub["netting"]);
    assert_eq!(dec(&total["gross"]), summed("gross"));
    assert_eq!(dec(&total["liquidity_used"]), summed("liquidity_used"));
    // A bank's: its debits over what it paid in; ENBD paid nothing in.
    let icici = app.get(&format!("{path}&bank=ICICI")).await.body;
    assert_eq!(
        icici["netting"]["currencies"],
        json!([{"currency": "INR", "gross": "1300.00", "net": "400.00", "efficiency": "0.692308",
                "liquidity_used": "400.00", "liquidity_efficiency": "3.25"}])
    );
    let enbd = app.get(&format!("{path}&bank=ENBD")).await.body;
    assert_eq!(
        enbd["netting"]["currencies"],
        json!([{"currency": "AED", "gross": "45.00", "net": "0.00", "efficiency": "1",
                "liquidity_used": "0.00", "liquidity_efficiency": null}])
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_bank_reads_only_its_own_reports() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let hdfc = Some(app.keys.bank("HDFC"));
    // Another bank's statement does not exist for it, in either format.
    for suffix in ["", "?format=csv", "?limit=1"] {
        let path = format!("{}{suffix}", statement_path(f.netted, "ICICI"));
        let reply = app.get_as(hdfc, &path).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (404, "not_found"),
            "{path}"
        );
    }
    let own = app.get_as(hdfc, &statement_path(f.netted, "HDFC")).await;
    assert_eq!(own.status, 200);
    let listed = own.body["transfers"].as_array().unwrap();
    assert!(listed.iter().all(|t| party(t, "HDFC")) && !listed.is_empty());
    // Its summary is its own whatever it asks; naming another bank is a 404.
    let path = format!("/api/v1/reports/summary?{}", whole_range());
    let summary = app.get_as(hdfc, &path).await;
    assert_eq!(summary.body["scope"], "HDFC");
    let lines = summary.body["transfers"]["by_corridor"].as_array().unwrap();
    let counted: i64 = lines.iter().map(|l| l["count"].as_i64().unwrap()).sum();
    let hdfc_transfers = f.transfers.iter().filter(|t| party(t, "HDFC")).count();
    assert_eq!(counted as usize, hdfc_transfers);
    let other = app.get_as(hdfc, &format!("{path}&bank=ICICI")).await;
    assert_eq!((other.status.as_u16(), other.code()), (404, "not_found"));
    app.stop().await;
}

#[actix_web::test]
async fn bad_report_parameters_are_refused_with_a_clear_code() {
    let mut settings = test_settings();
    settings.report_transfers_max = 2;
    let app = TestApp::spawn_with_settings(settings).await;
    for amount in ["1.00", "2.00", "3.00"] {
        app.submit_accepted(&body("ICICI", "ENBD", amount, "INR", "AED"))
            .await;
    }
    let window = app.current_window_id().await;
    let statement = statement_path(window, "ICICI");
    let summary = "/api/v1/reports/summary";
    let cases = [
        (format!("{statement}?format=xml"), 400, "query_invalid"),
        (
            format!("{statement}?format=csv&limit=10"),
            400,
            "query_invalid",
        ),
        (
            format!("{statement}?format=csv&cursor=x"),
            400,
            "query_invalid",
        ),
        (format!("{statement}?cursor=nonsense"), 400, "query_invalid"),
        (format!("{statement}?limit=0"), 400, "query_invalid"),
        (format!("{statement}?limit=100000"), 400, "query_invalid"),
        (statement_path(999, "ICICI"), 404, "not_found"),
        (
            statement_path(999, "ICICI") + "?format=csv",
            404,
            "not_found",
        ),
        (statement_path(window, "NOBANK"), 404, "not_found"),
        (
            "/api/v1/reports/windows/abc/banks/ICICI/statement".into(),
            422,
            "window_id_invalid",
        ),
        (
            "/api/v1/reports/windows/0/banks/ICICI/statement".into(),
            422,
            "window_id_invalid",
        ),
        (statement_path(window, "icici"), 422, "bank_code_invalid"),
        (summary.to_string(), 400, "query_invalid"),
        (
            format!("{summary}?from=2025-01-01T00:00:00Z"),
            400,
            "query_invalid",
        ),
        (
            format!("{summary}?from=yesterday&to=2025-01-02T00:00:00Z"),
            400,
            "query_invalid",
        ),
        // An unencoded '+' arrives as a space.
        (
            format!("{summary}?from=2025-01-01T00:00:00+04:00&to=2025-01-02T00:00:00Z"),
            400,
            "query_invalid",
        ),
        (
            format!("{summary}?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z"),
            400,
            "query_invalid",
        ),
        (
            format!("{summary}?from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z"),
            400,
            "query_invalid",
        ),
        (
            format!("{summary}?from=2025-01-01T00:00:00Z&to=2025-03-01T00:00:00Z"),
            422,
            "range_too_large",
        ),
        (
            format!("{summary}?{}&bank=nope", whole_range()),
            422,
            "bank_code_invalid",
        ),
        (
            format!("{summary}?{}&bank=NOBANK", whole_range()),
            404,
            "not_found",
        ),
        // Three transfers in the range, over this engine's cap of two.
        (
            format!("{summary}?{}", whole_range()),
            422,
            "range_too_large",
        ),
    ];
    for (path, status, code) in cases {
        let reply = app.get(&path).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.content_type, "application/problem+json", "{path}");
    }
    // A '+' sent as %2B is an offset; a range of at most two transfers passes.
    let ok = app
        .get(&format!(
            "{summary}?from=2000-01-01T04:00:00%2B04:00&to=2000-01-02T00:00:00Z"
        ))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["from"], "2000-01-01T00:00:00.000000Z");
    assert_eq!(ok.body["transfers"]["count"], 0);
    app.stop().await;
}
