//! The trust boundary: every route answers each kind of caller as the role matrix in
//! the README says — no key, a malformed key, a revoked key, bank A, bank B, an
//! auditor, the operator — and a bank sees only what concerns it, over REST and on
//! the feed.

use serde_json::{json, Value};

use crate::helpers::{inr_to_aed, TestApp, WsClient};

/// The four authenticated callers of the matrix, in the order of `Case::expect`.
const CALLERS: [&str; 4] = ["bank A (ICICI)", "bank B (HDFC)", "auditor", "operator"];

struct Case {
    method: &'static str,
    path: String,
    body: Value,
    /// Status for bank A, bank B, the auditor and the operator.
    expect: [u16; 4],
}

fn case(method: &'static str, path: impl Into<String>, body: Value, expect: [u16; 4]) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        expect,
    }
}

/// ICICI sends to ENBD; the window closes; ICICI's instruction (it pays the hub INR)
/// and ENBD's (the hub pays it AED) exist. HDFC has nothing to do with any of it.
async fn fixture(app: &TestApp) -> (String, i64, String, String) {
    let transfer = app.submit(&inr_to_aed(json!("1000.00"))).await;
    assert_eq!(transfer.status, 202, "{}", transfer.body);
    let window = app.close_window().await;
    let mut instructions = Vec::new();
    for _ in 0..100 {
        instructions = app.settlements(window).await.body["settlements"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if instructions.len() == 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let of = |bank: &str| {
        instructions
            .iter()
            .find(|i| i["payer"] == bank || i["payee"] == bank)
            .unwrap_or_else(|| panic!("an instruction of {bank} in {instructions:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (
        transfer.str("transaction_id"),
        window,
        of("ICICI"),
        of("ENBD"),
    )
}

/// Whether a concrete path (query left off) fits a route template (`{name}` is one
/// segment).
fn fits(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

/// The matrix covers every route that needs a key, as the router serves them (the
/// chaos suite's fault route aside: it has its own tests), so a new route cannot
/// skip it.
fn assert_every_keyed_route_is_in_the_matrix(cases: &[Case]) {
    for route in deltran::http::served_routes(false) {
        if !route.path.starts_with("/api/v1") {
            continue;
        }
        let covered = cases
            .iter()
            .any(|c| c.method == route.method.as_str() && fits(&route.path, &c.path));
        assert!(
            covered,
            "{} {} is not in the role matrix",
            route.method, route.path
        );
    }
}

#[actix_web::test]
async fn every_route_answers_each_kind_of_caller_as_the_role_matrix_says() {
    let app = TestApp::spawn().await;
    let (transfer, window, icici_instruction, enbd_instruction) = fixture(&app).await;
    let revoked = app.create_key("operator", None).await;
    let revoked_id = revoked["id"].as_str().unwrap().to_string();
    let reply = app
        .send_raw(
            "POST",
            &format!("/api/v1/keys/{revoked_id}/revoke"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let revoked = revoked["key"].as_str().unwrap().to_string();
    let spare = app.create_key("auditor", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let screening_entry = app
        .post(
            "/api/v1/screening/entries",
            &json!({"list": "sanctions", "name": "Matrix Person"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let icici_transfer = inr_to_aed(json!("10.00"));
    let new_bank = |code: &str| json!({"code": code, "name": "Test Bank", "country": "AE"});
    let ok = [200, 200, 200, 200];
    let operator_only = |status| [403, 403, 403, status];
    let cases = vec![
        case(
            "POST",
            "/api/v1/transfers",
            icici_transfer.clone(),
            [202, 403, 403, 202],
        ),
        case(
            "POST",
            "/api/v1/transfer",
            icici_transfer.clone(),
            [202, 403, 403, 202],
        ),
        // Another bank's key is answered per transfer (403 inside the 200).
        case(
            "POST",
            "/api/v1/transfers/batch",
            json!({"transfers": [icici_transfer.clone()]}),
            [200, 200, 403, 200],
        ),
        case(
            "GET",
            format!("/api/v1/transfers/{transfer}"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        // The fixture's transfer is in a closed window: its sender and the operator
        // are told it can no longer be cancelled.
        case(
            "POST",
            format!("/api/v1/transfers/{transfer}/cancel"),
            Value::Null,
            [409, 404, 403, 409],
        ),
        case(
            "GET",
            "/api/v1/reports/compliance?date=2026-01-01",
            Value::Null,
            [403, 403, 200, 200],
        ),
        // Deciding on a held transfer is the operator's (the fixture's is not held).
        case(
            "POST",
            format!("/api/v1/transfers/{transfer}/release"),
            Value::Null,
            operator_only(409),
        ),
        case(
            "POST",
            format!("/api/v1/transfers/{transfer}/reject"),
            Value::Null,
            operator_only(409),
        ),
        // ISO 20022 intake: an auditor is refused before the message is read; the
        // others get to the message (empty here: 400). Per-transaction tenancy (the
        // debtor agent is the sender) is tested in iso20022.rs.
        case(
            "POST",
            "/api/v1/iso20022/pacs.008",
            Value::Null,
            [400, 400, 403, 400],
        ),
        case(
            "POST",
            "/api/v1/iso20022/pain.001",
            Value::Null,
            [400, 400, 403, 400],
        ),
        // The settlement bank's status report, through the operator.
        case(
            "POST",
            "/api/v1/iso20022/pacs.002",
            Value::Null,
            [403, 403, 403, 400],
        ),
        // Funding notifications come from the settlement bank, through the operator.
        case(
            "POST",
            "/api/v1/iso20022/camt.054",
            Value::Null,
            [403, 403, 403, 400],
        ),
        case(
            "GET",
            format!("/api/v1/banks/ICICI/statements/camt.053?window_id={window}"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        // Its sender may not return it, another bank does not see it; the operator
        // returns it for its receiver (ENBD), netted as it is.
        case(
            "POST",
            format!("/api/v1/transfers/{transfer}/return"),
            json!({"amount": "0.01"}),
            [403, 404, 403, 202],
        ),
        case(
            "GET",
            format!("/api/v1/transaction/{transfer}"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        case("GET", "/api/v1/transfers", Value::Null, ok),
        case(
            "GET",
            format!("/api/v1/transactions?transaction_id={transfer}"),
            Value::Null,
            ok,
        ),
        case("GET", "/api/v1/banks", Value::Null, ok),
        case("GET", "/api/v1/banks/ICICI", Value::Null, ok),
        case("POST", "/api/v1/banks", new_bank("FAB"), operator_only(201)),
        case(
            "PATCH",
            "/api/v1/banks/ICICI",
            json!({"name": "ICICI Bank"}),
            operator_only(200),
        ),
        case(
            "GET",
            "/api/v1/banks/ICICI/positions",
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "POST",
            "/api/v1/banks/ICICI/balances/funds-in",
            json!({"currency": "INR", "amount": "5000.00"}),
            operator_only(201),
        ),
        case(
            "POST",
            "/api/v1/banks/ICICI/balances/funds-out",
            json!({"currency": "INR", "amount": "1.00"}),
            operator_only(201),
        ),
        case(
            "GET",
            "/api/v1/banks/ICICI/balances",
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "POST",
            "/api/v1/tokens/mint",
            json!({"bank": "ICICI", "currency": "INR", "amount": "5000.00"}),
            operator_only(201),
        ),
        case(
            "POST",
            "/api/v1/tokens/burn",
            json!({"bank": "ICICI", "currency": "INR", "amount": "1.00"}),
            operator_only(201),
        ),
        case(
            "GET",
            "/api/v1/tokens/balances/ICICI",
            Value::Null,
            [200, 404, 200, 200],
        ),
        case("GET", "/api/v1/corridors", Value::Null, ok),
        case("GET", "/api/v1/corridors/INR-AED", Value::Null, ok),
        case(
            "POST",
            "/api/v1/corridors",
            json!({"from_currency": "USD", "to_currency": "INR", "fx_rate": "83", "amount_max": "1000"}),
            operator_only(201),
        ),
        case(
            "PATCH",
            "/api/v1/corridors/INR-AED",
            json!({"fx_rate": "0.0441"}),
            operator_only(200),
        ),
        case("GET", "/api/v1/windows", Value::Null, ok),
        case("GET", "/api/v1/windows/current", Value::Null, ok),
        case("GET", format!("/api/v1/windows/{window}"), Value::Null, ok),
        case(
            "GET",
            format!("/api/v1/settlements?window_id={window}"),
            Value::Null,
            ok,
        ),
        case(
            "GET",
            format!("/api/v1/settlements/{icici_instruction}"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "GET",
            format!("/api/v1/settlements/{icici_instruction}/status"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "POST",
            format!("/api/v1/settlements/{icici_instruction}/confirm"),
            Value::Null,
            operator_only(200),
        ),
        case(
            "POST",
            format!("/api/v1/settlements/{enbd_instruction}/fail"),
            Value::Null,
            operator_only(200),
        ),
        case(
            "POST",
            "/api/v1/windows/current/close",
            Value::Null,
            operator_only(202),
        ),
        case(
            "POST",
            "/api/v1/keys",
            json!({"role": "auditor"}),
            operator_only(201),
        ),
        case("GET", "/api/v1/keys", Value::Null, [403, 403, 200, 200]),
        case(
            "GET",
            "/api/v1/audit-log",
            Value::Null,
            [403, 403, 200, 200],
        ),
        case(
            "GET",
            "/api/v1/screening/entries",
            Value::Null,
            [403, 403, 200, 200],
        ),
        case(
            "POST",
            "/api/v1/screening/entries",
            json!({"list": "pep", "name": "Matrix Person"}),
            operator_only(201),
        ),
        // A CSV body: a JSON string is sent as its text.
        case(
            "POST",
            "/api/v1/screening/entries/import?replace=false",
            json!("list,name,aliases,countries,reference\npep,Matrix Import,,,\n"),
            operator_only(200),
        ),
        case(
            "DELETE",
            format!("/api/v1/screening/entries/{screening_entry}"),
            Value::Null,
            operator_only(200),
        ),
        case(
            "GET",
            format!("/api/v1/reports/windows/{window}/banks/ICICI/statement"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "GET",
            format!("/api/v1/reports/windows/{window}/banks/ICICI/statement?format=csv"),
            Value::Null,
            [200, 404, 200, 200],
        ),
        case(
            "GET",
            "/api/v1/reports/summary?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
            Value::Null,
            ok,
        ),
        case(
            "POST",
            format!("/api/v1/keys/{spare}/revoke"),
            Value::Null,
            operator_only(200),
        ),
        // The engine runs alone here: the cluster's routes are not found, to those
        // who may read them.
        case("GET", "/api/v1/cluster", Value::Null, [403, 403, 404, 404]),
        case(
            "GET",
            format!("/api/v1/cluster/windows/{window}"),
            Value::Null,
            [403, 403, 404, 404],
        ),
        case(
            "GET",
            format!("/api/v1/cluster/windows/{window}/credits"),
            Value::Null,
            [403, 403, 404, 404],
        ),
    ];
    assert_every_keyed_route_is_in_the_matrix(&cases);
    let keys = [
        app.keys.bank("ICICI").to_string(),
        app.keys.bank("HDFC").to_string(),
        app.keys.auditor.clone(),
        app.keys.operator.clone(),
    ];
    for c in &cases {
        let body = match &c.body {
            Value::Null => Vec::new(),
            Value::String(text) => text.clone().into_bytes(),
            body => body.to_string().into_bytes(),
        };
        // The unauthenticated three: refused before anything else, each with its code.
        for (key, code) in [
            (None, "unauthenticated"),
            (Some("dtk_nonsense"), "key_invalid"),
            (Some(revoked.as_str()), "key_revoked"),
        ] {
            let reply = app.send_as(key, c.method, &c.path, body.clone(), &[]).await;
            let what = format!("{} {} with {code}", c.method, c.path);
            assert_eq!((reply.status.as_u16(), reply.code()), (401, code), "{what}");
            assert_eq!(
                reply.headers.get("www-authenticate").unwrap(),
                "Bearer",
                "{what}"
            );
            assert_eq!(reply.content_type, "application/problem+json", "{what}");
        }
        for ((key, caller), expected) in keys.iter().zip(CALLERS).zip(c.expect) {
            let reply = app
                .send_as(Some(key), c.method, &c.path, body.clone(), &[])
                .await;
            assert_eq!(
                reply.status.as_u16(),
                expected,
                "{} {} as {caller}: {}",
                c.method,
                c.path,
                reply.body
            );
            if expected == 403 {
                assert!(!reply.code().is_empty(), "{caller}: {}", reply.body);
            }
        }
    }
    // Open routes (the test calls from loopback, where /ready and /metrics are open).
    for path in ["/health", "/ready", "/metrics"] {
        assert_eq!(app.get_as(None, path).await.status, 200, "{path}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_bank_submits_only_as_itself_and_sees_only_its_own_business() {
    let app = TestApp::spawn().await;
    let (transfer, window, icici_instruction, _) = fixture(&app).await;
    let hdfc = Some(app.keys.bank("HDFC"));
    let icici = Some(app.keys.bank("ICICI"));
    let refused = app
        .send_as(
            hdfc,
            "POST",
            "/api/v1/transfers",
            inr_to_aed(json!("1")).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "sender_not_principal")
    );

    // Lists: HDFC sees none of ICICI's transfers, whatever it filters on.
    for path in [
        "/api/v1/transfers".to_string(),
        "/api/v1/transfers?sender_bank=ICICI".to_string(),
        format!("/api/v1/transactions?transaction_id={transfer}"),
    ] {
        let list = app.get_as(hdfc, &path).await;
        assert_eq!(list.body["transactions"], json!([]), "{path}");
        let own = app.get_as(icici, &path).await;
        assert_eq!(
            own.body["transactions"].as_array().unwrap().len(),
            1,
            "{path}"
        );
    }
    // A window: each bank sees its own position only; the totals stay.
    let full = app.get(&format!("/api/v1/windows/{window}")).await;
    let seen = app
        .get_as(icici, &format!("/api/v1/windows/{window}"))
        .await;
    assert_eq!(full.body["positions"].as_array().unwrap().len(), 2);
    let positions = seen.body["positions"].as_array().unwrap();
    assert!(positions.iter().all(|p| p["bank"] == "ICICI") && positions.len() == 1);
    assert_eq!(seen.body["currencies"], full.body["currencies"]);
    let none = app.get_as(hdfc, &format!("/api/v1/windows/{window}")).await;
    assert_eq!(none.body["positions"], json!([]));
    // Instructions: only its own.
    let own = app
        .get_as(icici, &format!("/api/v1/settlements?window_id={window}"))
        .await;
    let ids: Vec<&str> = own.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [icici_instruction.as_str()]);
    let other = app
        .get_as(hdfc, &format!("/api/v1/settlements?window_id={window}"))
        .await;
    assert_eq!(other.body["settlements"], json!([]));
    // The registry: everyone sees the banks, only the bank itself (and the hub's
    // operator and auditors) its caps.
    let banks = app.get_as(hdfc, "/api/v1/banks").await;
    for bank in banks.body["banks"].as_array().unwrap() {
        assert_eq!(
            bank["net_debit_caps"].is_object(),
            bank["code"] == "HDFC",
            "{bank}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_bank_session_hears_only_its_own_events_whatever_it_subscribes_to() {
    let app = TestApp::spawn().await;
    let everything = json!({"type": "subscribe",
        "channels": ["transactions", "windows", "settlements", "positions", "notifications"]});
    let mut hdfc = WsClient::connect_as(&app, app.keys.bank("HDFC")).await;
    hdfc.send(&everything).await;
    let ack = hdfc.next_of("subscribed").await;
    assert_eq!(ack["data"]["bank"], "HDFC");
    let mut icici = WsClient::connect_as(&app, app.keys.bank("ICICI")).await;
    icici.send(&everything).await;
    icici.next_of("subscribed").await;
    // Asking for another bank's events is refused and changes nothing.
    hdfc.send(&json!({"type": "subscribe", "channels": ["transactions"], "bank": "ICICI"}))
        .await;
    let refusal = hdfc.next_of("error").await;
    assert_eq!(refusal["data"]["code"], "bank_not_principal");

    let (transfer, window, _, _) = fixture(&app).await;
    let heard = icici.next_of("transaction").await;
    assert_eq!(heard["data"]["transaction_id"], transfer.as_str());
    let netted = icici.next_of("window_netted").await;
    assert_eq!(netted["data"]["id"], window);
    let positions = netted["data"]["positions"].as_array().unwrap();
    assert!(
        positions.len() == 1 && positions[0]["bank"] == "ICICI",
        "{positions:?}"
    );
    // HDFC hears the window (general interest) with no positions, and nothing of
    // ICICI's transfer, position or instruction.
    let netted = hdfc.next_of("window_netted").await;
    assert_eq!(netted["data"]["positions"], json!([]));
    while let Some(message) = hdfc.next(std::time::Duration::from_millis(300)).await {
        let kind = message["type"].as_str().unwrap_or("");
        assert!(
            !matches!(
                kind,
                "transaction" | "position" | "instruction_created" | "limit_warning"
            ),
            "HDFC heard {message}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_feed_needs_a_key_in_its_header_or_its_token_parameter() {
    let app = TestApp::spawn().await;
    let url = format!("{}/ws", app.address.replace("http://", "ws://"));
    for refused in [url.clone(), format!("{url}?token=dtk_nonsense")] {
        match awc::Client::new().ws(refused.as_str()).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                assert_eq!(status, 401, "{refused}")
            }
            other => panic!("{refused}: expected 401, got {:?}", other.map(|_| ())),
        }
    }
    let with_token = format!("{url}?token={}", app.keys.auditor);
    let (_, mut ws) = awc::Client::new()
        .ws(with_token.as_str())
        .connect()
        .await
        .expect("a browser-style token connects");
    use futures_util::SinkExt;
    ws.send(awc::ws::Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn a_revoked_key_is_refused_from_the_next_request_on() {
    let app = TestApp::spawn().await;
    let made = app.create_key("bank", Some("AXIS")).await;
    let key = made["key"].as_str().unwrap().to_string();
    assert_eq!(made["bank"], "AXIS");
    assert_eq!(
        app.get_as(Some(&key), "/api/v1/banks/AXIS/positions")
            .await
            .status,
        200
    );
    let listed = app.get("/api/v1/keys").await;
    assert!(
        !listed.body.to_string().contains(&key),
        "a listing never shows a key's secret"
    );
    let id = made["id"].as_str().unwrap();
    let revoked = app
        .send_raw(
            "POST",
            &format!("/api/v1/keys/{id}/revoke"),
            Vec::new(),
            &[],
        )
        .await;
    assert!(revoked.body["revoked_at"].is_string(), "{}", revoked.body);
    let refused = app.get_as(Some(&key), "/api/v1/banks/AXIS/positions").await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (401, "key_revoked")
    );
    // A bank key names an existing bank; an operator key names none.
    for (body, status) in [
        (json!({"role": "bank"}), 400),
        (json!({"role": "bank", "bank": "NOPE"}), 422),
        (json!({"role": "operator", "bank": "AXIS"}), 400),
        (json!({"role": "king"}), 422),
    ] {
        let reply = app.post("/api/v1/keys", &body).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.body);
    }
    app.stop().await;
}

#[actix_web::test]
async fn revoking_a_key_closes_the_feeds_it_opened() {
    let app = TestApp::spawn().await;
    let made = app.create_key("bank", Some("AXIS")).await;
    let mut feed = WsClient::connect_as(&app, made["key"].as_str().unwrap()).await;
    feed.send(&json!({"type": "subscribe", "channels": ["transactions"]}))
        .await;
    feed.next_of("subscribed").await;
    let id = made["id"].as_str().unwrap();
    let revoked = app
        .send_raw(
            "POST",
            &format!("/api/v1/keys/{id}/revoke"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200);
    // The session checks its key every second: it ends with a close, not a message.
    let started = std::time::Instant::now();
    while let Some(message) = feed.next(std::time::Duration::from_secs(5)).await {
        assert!(started.elapsed().as_secs() < 5, "still open: {message}");
    }
    assert!(
        started.elapsed().as_secs() < 5,
        "the feed was not closed in time"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_client_flooding_its_feed_is_told_and_its_excess_dropped() {
    let app = TestApp::spawn().await;
    let mut feed = WsClient::connect_as(&app, app.keys.bank("ICICI")).await;
    for _ in 0..200 {
        feed.send(&json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut told = 0;
    while let Some(message) = feed.next(std::time::Duration::from_millis(500)).await {
        match message["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if message["data"]["code"] == "rate_limited" => told += 1,
            _ => {}
        }
    }
    assert_eq!(told, 1, "told once");
    assert!(
        pongs <= 100,
        "at most a second's budget answered per second: {pongs}"
    );
    assert!(pongs >= 50, "the budget itself is answered: {pongs}");
    app.stop().await;
}
