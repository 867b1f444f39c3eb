//! The audit log against real Postgres: every operator change (and the engine's own:
//! the window timer, the demo rail, the first start) has one entry with who, when,
//! the request id and the record before and after; only the operator and auditors
//! read it; paging walks it once; `deltran audit` finds a change without its entry.
//!

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{test_settings as settings, Reply, TestApp};

/// The test app with the keys these tests call with.
struct App {
    app: TestApp,
    operator: String,
    auditor: String,
    bank: String,
    operator_key_id: String,
}

impl App {
    async fn spawn(settings: deltran::config::Settings) -> App {
        let app = TestApp::spawn_with_settings(settings).await;
        let operator = app.keys.operator.clone();
        App {
            // A key's id is the 32 hex digits after `dtk_`.
            operator_key_id: operator[4..36].to_string(),
            auditor: app.keys.auditor.clone(),
            bank: app.keys.bank("ICICI").to_string(),
            operator,
            app,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.app
            .send_as(key, method, path, body.into_bytes(), headers)
            .await
    }

    /// As the operator.
    async fn op(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.call(method, path, Some(&self.operator), body, &[])
            .await
    }

    /// Every entry the auditor reads with `query` (one page of up to 1000).
    async fn entries(&self, query: &str) -> Vec<Value> {
        let reply = self
            .call(
                "GET",
                &format!("/api/v1/audit-log?limit=1000&{query}"),
                Some(&self.auditor),
                None,
                &[],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["next_cursor"], Value::Null);
        reply.body["entries"].as_array().unwrap().clone()
    }

    /// The one entry of `action` on `subject`.
    async fn only_entry(&self, action: &str, subject: &str) -> Value {
        let mut found = self
            .entries(&format!("action={action}&subject={subject}"))
            .await;
        assert_eq!(found.len(), 1, "{action} {subject}: {found:?}");
        found.pop().unwrap()
    }

    async fn sql(&self) -> tokio_postgres::Client {
        self.app.sql().await
    }

    /// The rules `deltran audit` reports violated, with their violations.
    async fn audit_violations(&self) -> Vec<(String, Vec<String>)> {
        self.app
            .store
            .audit()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| !c.violations.is_empty())
            .map(|c| (c.rule.to_string(), c.violations))
            .collect()
    }

    /// Submits one transfer ICICI → ENBD (the operator may send for any bank).
    async fn submit(&self) -> i64 {
        let reply = self
            .op(
                "POST",
                "/api/v1/transfers",
                Some(&json!({"sender_bank": "ICICI", "receiver_bank": "ENBD",
                             "amount": "1000.00", "from_currency": "INR", "to_currency": "AED"})),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.body["window_id"].as_i64().unwrap()
    }
}

/// The entry's caller is the operator's key, in its role, with `request_id` if given.
fn assert_by_operator(app: &App, entry: &Value, request_id: Option<&str>) {
    assert_eq!(entry["origin"], "api", "{entry}");
    assert_eq!(entry["key_id"], app.operator_key_id.as_str(), "{entry}");
    assert_eq!(entry["role"], "operator", "{entry}");
    assert_eq!(entry["bank"], Value::Null, "{entry}");
    match request_id {
        Some(id) => assert_eq!(entry["request_id"], id, "{entry}"),
        None => assert!(entry["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())),
    }
}

#[actix_web::test]
async fn every_operator_change_has_one_entry_and_the_audit_finds_a_missing_one() {
    let app = App::spawn(settings()).await;

    // A cap change: who, the client's request id, the caps before and after.
    let patched = app
        .call(
            "PATCH",
            "/api/v1/banks/ICICI",
            Some(&app.operator),
            Some(&json!({"net_debit_caps": {"INR": "5000000"}})),
            &[("X-Request-Id", "audit-cap-change-1")],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let entry = app.only_entry("bank_changed", "ICICI").await;
    assert_by_operator(&app, &entry, Some("audit-cap-change-1"));
    assert_eq!(
        entry["before"]["net_debit_caps"]["INR"], "10000000000000.00",
        "{entry}"
    );
    assert_eq!(entry["after"]["net_debit_caps"]["INR"], "5000000.00");
    assert_eq!(
        entry["after"], patched.body,
        "the record as the API shows it"
    );
    assert!(entry["at"].as_str().is_some());

    // A corridor change.
    let corridor = app
        .op(
            "PATCH",
            "/api/v1/corridors/INR-AED",
            Some(&json!({"fx_rate": "0.045"})),
        )
        .await;
    assert_eq!(corridor.status, 200, "{}", corridor.body);
    let entry = app.only_entry("corridor_changed", "INR-AED").await;
    assert_by_operator(&app, &entry, None);
    assert_eq!(entry["before"]["fx_rate"], "0.04405");
    assert_eq!(entry["after"]["fx_rate"], "0.045");
    assert_eq!(entry["after"], corridor.body);

    // A key made and revoked: never its secret or hash in the log.
    let made = app
        .op(
            "POST",
            "/api/v1/keys",
            Some(&json!({"role": "bank", "bank": "HDFC", "label": "audit test"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let key_id = made.body["id"].as_str().unwrap().to_string();
    let key_text = made.body["key"].as_str().unwrap().to_string();
    let entry = app.only_entry("key_created", &key_id).await;
    assert_by_operator(&app, &entry, None);
    assert_eq!(entry["before"], Value::Null);
    let mut shown = made.body.clone();
    shown.as_object_mut().unwrap().remove("key");
    assert_eq!(entry["after"], shown);
    let secret = key_text.rsplit('_').next().unwrap();
    assert!(!entry.to_string().contains(secret), "{entry}");
    let revoked = app
        .op("POST", &format!("/api/v1/keys/{key_id}/revoke"), None)
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    // Revoking again changes nothing and records nothing.
    app.op("POST", &format!("/api/v1/keys/{key_id}/revoke"), None)
        .await;
    let entry = app.only_entry("key_revoked", &key_id).await;
    assert_by_operator(&app, &entry, None);
    assert_eq!(entry["before"]["revoked_at"], Value::Null);
    assert_eq!(entry["after"], revoked.body);

    // A window closed by the operator, netted, one instruction confirmed, one failed.
    let window = app.submit().await;
    let closed = app
        .op("POST", "/api/v1/windows/current/close", Some(&json!({})))
        .await;
    assert_eq!(closed.status, 202, "{}", closed.body);
    assert_eq!(closed.body["closed_window_id"], window);
    let entry = app.only_entry("window_closed", &window.to_string()).await;
    assert_by_operator(&app, &entry, None);
    assert_eq!(
        (&entry["before"]["state"], &entry["after"]["state"]),
        (&json!("open"), &json!("closing"))
    );
    app.app.wait_for_window_state(window, &["netted"]).await;
    let listed = app
        .op(
            "GET",
            &format!("/api/v1/settlements?window_id={window}"),
            None,
        )
        .await;
    let ids: Vec<String> = listed.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{}", listed.body);
    for (id, verb, action, state) in [
        (&ids[0], "confirm", "instruction_confirmed", "confirmed"),
        (&ids[1], "fail", "instruction_failed", "failed"),
    ] {
        let changed = app
            .op("POST", &format!("/api/v1/settlements/{id}/{verb}"), None)
            .await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        // Repeating it is harmless and records nothing more.
        app.op("POST", &format!("/api/v1/settlements/{id}/{verb}"), None)
            .await;
        let entry = app.only_entry(action, id).await;
        assert_by_operator(&app, &entry, None);
        assert_eq!(entry["before"]["state"], "pending");
        assert_eq!(entry["after"]["state"], state);
    }
    app.app
        .wait_for_window_state(window, &["settlement_failed"])
        .await;

    // The reference data of the first start has its entries too.
    let seeded: Vec<Value> = app
        .entries("")
        .await
        .into_iter()
        .filter(|e| e["engine_part"] == "first start")
        .collect();
    assert_eq!(seeded.len(), 5 + 2, "five banks, two corridors: {seeded:?}");
    assert!(seeded.iter().all(|e| e["origin"] == "engine"));

    let clean = app.audit_violations().await;
    assert!(clean.is_empty(), "{clean:?}");

    // An entry removed behind the engine's back is found missing.
    let sql = app.sql().await;
    sql.execute(
        "DELETE FROM audit_log WHERE action = 'bank_changed' AND subject = 'ICICI'",
        &[],
    )
    .await
    .unwrap();
    sql.execute(
        "DELETE FROM audit_log WHERE action = 'window_closed' AND subject = $1",
        &[&window.to_string()],
    )
    .await
    .unwrap();
    let violated = app.audit_violations().await;
    let named = |what: &str| {
        violated
            .iter()
            .any(|(_, rows)| rows.iter().any(|r| r.starts_with(what)))
    };
    assert_eq!(violated.len(), 2, "{violated:?}");
    assert!(named("bank ICICI changed at "), "{violated:?}");
    assert!(
        named(&format!("window {window} closed at ")),
        "{violated:?}"
    );
}

#[actix_web::test]
async fn closes_by_the_timer_and_confirmations_by_the_demo_rail_are_the_engines() {
    let mut settings = settings();
    settings.window_duration_ms = 200;
    settings.demo = true;
    settings.settlement_delay_ms = 0;
    let app = App::spawn(settings).await;
    let window = app.submit().await;
    app.app.wait_for_window_state(window, &["settled"]).await;

    let entry = app.only_entry("window_closed", &window.to_string()).await;
    assert_eq!(entry["origin"], "engine");
    assert_eq!(entry["engine_part"], "window timer");
    assert_eq!(entry["key_id"], Value::Null);
    let confirmed: Vec<Value> = app
        .entries("action=instruction_confirmed")
        .await
        .into_iter()
        .filter(|e| e["after"]["window_id"] == window)
        .collect();
    assert_eq!(confirmed.len(), 2, "{confirmed:?}");
    for entry in &confirmed {
        assert_eq!(
            (&entry["origin"], &entry["engine_part"]),
            (&json!("engine"), &json!("demo rail")),
            "{entry}"
        );
    }
    // Every window the timer closed so far has its entry.
    let clean = app.audit_violations().await;
    assert!(clean.is_empty(), "{clean:?}");
}

#[actix_web::test]
async fn only_the_operator_and_auditors_read_the_log() {
    let app = App::spawn(settings()).await;
    let path = "/api/v1/audit-log";
    for key in [&app.operator, &app.auditor] {
        let reply = app.call("GET", path, Some(key), None, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body["entries"].is_array());
    }
    let bank = app.call("GET", path, Some(&app.bank), None, &[]).await;
    assert_eq!(bank.status, 403, "{}", bank.body);
    assert_eq!(bank.body["code"], "operator_or_auditor_only");
    let nobody = app.call("GET", path, None, None, &[]).await;
    assert_eq!(nobody.status, 401, "{}", nobody.body);
    for query in ["action=bank_deleted", "cursor=x", "limit=0", "subject="] {
        let reply = app
            .call(
                "GET",
                &format!("{path}?{query}"),
                Some(&app.auditor),
                None,
                &[],
            )
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
    }
}

#[actix_web::test]
async fn paging_with_a_cursor_walks_every_entry_once() {
    let app = App::spawn(settings()).await;
    for cap in ["100", "200", "300"] {
        let reply = app
            .op(
                "PATCH",
                "/api/v1/banks/AXIS",
                Some(&json!({"net_debit_caps": {"INR": cap}})),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    let all: Vec<i64> = app
        .entries("")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    // Seeded banks and corridors, the test keys (operator, auditor, one per bank),
    // three changes.
    assert_eq!(all.len(), 7 + 7 + 3, "{all:?}");
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/audit-log?limit=2&cursor={c}"),
            None => "/api/v1/audit-log?limit=2".to_string(),
        };
        let page = app.call("GET", &query, Some(&app.auditor), None, &[]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let entries = page.body["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        walked.extend(entries.iter().map(|e| e["id"].as_i64().unwrap()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, all, "every entry once, in order");
    assert_eq!(walked.iter().collect::<BTreeSet<_>>().len(), walked.len());

    let changes = app.entries("action=bank_changed&subject=AXIS").await;
    let caps: Vec<&Value> = changes
        .iter()
        .map(|e| &e["after"]["net_debit_caps"]["INR"])
        .collect();
    assert_eq!(caps, [&json!("100.00"), &json!("200.00"), &json!("300.00")]);
    assert_eq!(
        changes[1]["before"]["net_debit_caps"]["INR"], "100.00",
        "each change starts from the one before"
    );
}
