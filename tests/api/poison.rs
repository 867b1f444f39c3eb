//! One caller's transfer that the store cannot hold never fails anyone else's: text
//! with a control character is refused at parsing (`422 text_invalid`), and a transfer
//! the database refuses anyway (it got past parsing) fails alone with `422
//! transfer_unstorable` while the rest of its batch commits, with every bank's books
//! equal to what the store holds.

use std::time::Duration;

use awc::http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use deltran::actors::writer::WindowProgress;
use deltran::actors::{CommandError, Engine};
use deltran::domain::rules::{RawTransfer, TransferDraft};
use deltran::domain::WindowId;
use deltran::metrics::Metrics;

use crate::helpers::{test_settings, TestApp, REFERENCE_FLOWS};

const BANKS: [&str; 5] = ["ICICI", "HDFC", "AXIS", "ENBD", "ADCB"];
const ORDINARY: usize = 999;

/// The test app, with a client of its own that holds enough connections for every
/// submission of the batch test at once.
struct App {
    app: TestApp,
    address: String,
    engine: Engine,
    metrics: std::sync::Arc<Metrics>,
    key: String,
    client: awc::Client,
}

struct Reply {
    status: StatusCode,
    body: Value,
}

impl App {
    async fn spawn() -> App {
        let app = TestApp::spawn_with_settings(test_settings()).await;
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().limit(1100))
            .finish();
        App {
            address: app.address.clone(),
            engine: app.engine.clone(),
            metrics: app.metrics.clone(),
            key: app.keys.operator.clone(),
            client,
            app,
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .insert_header(("authorization", format!("Bearer {}", self.key)))
            .insert_header(("content-type", "application/json"));
        let sent = match body {
            Some(body) => request.send_body(body.to_string()).await,
            None => request.send().await,
        };
        let mut response = sent.expect("request");
        let bytes = response.body().limit(1 << 24).await.expect("body");
        Reply {
            status: response.status(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn sql(&self) -> tokio_postgres::Client {
        self.app.sql().await
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

/// The `i`th ordinary transfer: every bank sends, to a bank of the other country.
fn ordinary(i: usize) -> Value {
    let (sender, receiver, from, to) = REFERENCE_FLOWS[i % REFERENCE_FLOWS.len()];
    json!({
        "sender_bank": sender,
        "receiver_bank": receiver,
        "amount": format!("{}.{:02}", 100 + i, i % 100),
        "from_currency": from,
        "to_currency": to,
        "reference": format!("INV {i}"),
    })
}

/// A transfer that passed no parsing: its reference holds a NUL, which Postgres
/// cannot store in text (SQLSTATE 22021). `TransferDraft`'s fields are public, so a
/// test builds the draft the input ladder would have refused and hands it to the
/// same command the HTTP route calls: the bank reserves it, the writer batches it.
fn poisoned_draft(i: usize) -> TransferDraft {
    let mut draft = TransferDraft::parse(RawTransfer {
        sender_bank: "ICICI",
        receiver_bank: "ENBD",
        amount: "777.77",
        from_currency: "INR",
        to_currency: "AED",
        sender_account: None,
        receiver_account: None,
        reference: None,
        idempotency_key: None,
        on_limit: None,
        priority: None,
    })
    .expect("valid transfer");
    draft.reference = Some(format!("poison {i} \0 here"));
    draft
}

/// Each bank's positions (from its actor) equal the sums recomputed from the store,
/// with nothing left reserved.
async fn assert_books_match_the_store(app: &App) {
    let sql = app.sql().await;
    for bank in BANKS {
        let reply = app
            .send("GET", &format!("/api/v1/banks/{bank}/positions"), None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["current"], true, "{}", reply.body);
        for row in reply.body["positions"].as_array().expect("positions") {
            let currency = row["currency"].as_str().unwrap();
            let figure = |name: &str| -> Decimal { row[name].as_str().unwrap().parse().unwrap() };
            let stored = sql
                .query_one(
                    "SELECT \
                       (SELECT COALESCE(sum(amount), 0) FROM transfers WHERE status = 'accepted' \
                          AND sender_bank = $1 AND from_currency = $2)::text, \
                       (SELECT COALESCE(sum(converted_amount), 0) FROM transfers \
                          WHERE status = 'accepted' AND receiver_bank = $1 AND to_currency = $2)::text",
                    &[&bank, &currency],
                )
                .await
                .expect("recompute");
            let debits: Decimal = stored.get::<_, String>(0).parse().unwrap();
            let credits: Decimal = stored.get::<_, String>(1).parse().unwrap();
            assert_eq!(figure("debits"), debits, "{bank} {currency} debits");
            assert_eq!(figure("credits"), credits, "{bank} {currency} credits");
            assert_eq!(
                figure("reserved"),
                Decimal::ZERO,
                "{bank} {currency} reserved"
            );
            assert_eq!(
                figure("exposure"),
                debits - credits,
                "{bank} {currency} exposure"
            );
        }
    }
}

#[actix_web::test]
async fn a_poisoned_transfer_fails_alone_and_every_other_in_its_batch_commits() {
    let app = App::spawn().await;
    let window = app.send("GET", "/api/v1/windows/current", None).await.body["id"]
        .as_i64()
        .expect("current window id");
    // The store holds its inserts back while the submissions gather, so that the
    // poisoned transfers surely share a batch with ordinary ones: reads go on, and the
    // writer's batches wait on the lock with everything behind them buffered.
    let sql = app.sql().await;
    sql.batch_execute("BEGIN; LOCK TABLE transfers IN SHARE MODE")
        .await
        .expect("lock");
    // The ordinary submissions, all at once.
    let submissions: Vec<_> = (0..ORDINARY)
        .map(|i| {
            let (client, address, key) = (app.client.clone(), app.address.clone(), app.key.clone());
            actix_web::rt::spawn(async move {
                let mut response = client
                    .post(format!("{address}/api/v1/transfers"))
                    .insert_header(("authorization", format!("Bearer {key}")))
                    .insert_header(("content-type", "application/json"))
                    .send_body(ordinary(i).to_string())
                    .await
                    .expect("request");
                let body: Value =
                    serde_json::from_slice(&response.body().await.expect("body")).unwrap();
                (response.status(), body)
            })
        })
        .collect();
    for _ in 0..500 {
        if app.metrics.submissions_in_flight.get() >= ORDINARY as i64 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        app.metrics.submissions_in_flight.get(),
        ORDINARY as i64,
        "every ordinary submission is in flight"
    );
    // The poisoned ones, injected while the others are in flight.
    let poisons = 3;
    let poisoned: Vec<_> = (0..poisons)
        .map(|i| {
            let engine = app.engine.clone();
            actix_web::rt::spawn(async move {
                engine
                    .submit_transfer(poisoned_draft(i), Duration::from_secs(20))
                    .await
            })
        })
        .collect();
    // Time to reach the writer's buffer (the engine is otherwise idle), then go.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    sql.batch_execute("COMMIT").await.expect("unlock");
    let mut accepted_ids = Vec::new();
    for submission in submissions {
        let (status, body) = submission.await.expect("task");
        assert_eq!(status, 202, "an ordinary transfer failed: {body}");
        accepted_ids.push(body["transaction_id"].as_str().unwrap().to_string());
    }
    assert_eq!(accepted_ids.len(), ORDINARY);
    let mut refused_ids = Vec::new();
    for outcome in poisoned {
        match outcome.await.expect("task") {
            Err(CommandError::TransferUnstorable { transaction_id }) => {
                refused_ids.push(transaction_id.to_string())
            }
            other => panic!("the poisoned transfer got {other:?}"),
        }
    }
    assert!(app.engine.drain().await);

    // Nothing of the poisoned transfers is stored; every ordinary one is.
    let count = |sql_text: &'static str, ids: Vec<String>| {
        let sql = &sql;
        async move {
            let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
            let row = sql.query_one(sql_text, &[&ids]).await.expect("count");
            row.get::<_, i64>(0)
        }
    };
    let query = "SELECT count(*) FROM transfers WHERE id = ANY($1)";
    assert_eq!(count(query, refused_ids.clone()).await, 0);
    assert_eq!(count(query, accepted_ids).await, ORDINARY as i64);
    let total: i64 = sql
        .query_one("SELECT count(*) FROM transfers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, ORDINARY as i64);

    // Each refused alone, inside a batch it shared (a lone transfer needs no split),
    // which was split around it; no batch failed as a whole.
    assert_eq!(app.metrics.store_unstorable_transfers.get(), poisons as u64);
    assert!(
        app.metrics.store_isolating_statements.get() > 0,
        "no poisoned transfer shared a batch"
    );
    assert_eq!(app.metrics.store_flush_failures.get(), 0);

    // The books: the banks' positions and the writer's window sums count exactly what
    // committed; the reservations of the refused transfers were released.
    assert_books_match_the_store(&app).await;
    let progress = app
        .engine
        .writer
        .send(WindowProgress {
            window: WindowId::new(window).expect("window id"),
        })
        .await
        .expect("writer answers");
    assert_eq!(progress, Some(ORDINARY as u64));
    // So do the store's running sums, which a close after a restart starts from: the
    // split added the legs of what went in, and nothing of what it refused.
    let stored = app
        .app
        .store
        .window_sums(WindowId::new(window).expect("window id"))
        .await
        .expect("window sums");
    assert_eq!(stored.transfer_count, ORDINARY as u64);

    // Netting the window from those sums, then auditing it against the store.
    let closed = app
        .send("POST", "/api/v1/windows/current/close", None)
        .await;
    assert!(closed.status.is_success(), "{}", closed.body);
    for _ in 0..200 {
        let state: String = sql
            .query_one("SELECT state FROM windows WHERE id = $1", &[&window])
            .await
            .unwrap()
            .get(0);
        if state == "netted" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    app.app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_control_character_in_a_text_field_is_refused_at_parsing() {
    let app = App::spawn().await;
    let mut body = ordinary(0);
    // "a\u0000b" in the JSON text: valid JSON, refused by the input ladder.
    body["reference"] = json!("a\u{0}b");
    assert!(body.to_string().contains("a\\u0000b"));
    let reply = app.send("POST", "/api/v1/transfers", Some(&body)).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["code"], "text_invalid");
    assert_eq!(reply.body["field"], "reference");
    for (field, text) in [
        ("reference", "line one\nline two"),
        ("reference", "tab\there"),
        ("sender_account", "1234\u{7f}"),
        ("receiver_account", "AE07\u{85}"),
    ] {
        let mut body = ordinary(1);
        body[field] = json!(text);
        let reply = app.send("POST", "/api/v1/transfers", Some(&body)).await;
        assert_eq!(reply.status, 422, "{field} {text:?}: {}", reply.body);
        assert_eq!(reply.body["code"], "text_invalid");
        assert_eq!(reply.body["field"], field);
    }
    // The operator's texts too: a bank's name, a key's label.
    let bank = json!({ "code": "NULB", "name": "Null\u{0}Bank", "country": "IN" });
    let reply = app.send("POST", "/api/v1/banks", Some(&bank)).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["code"], "text_invalid");
    assert_eq!(reply.body["field"], "name");
    let rename = json!({ "name": "ICICI\r\nBank" });
    let reply = app
        .send("PATCH", "/api/v1/banks/ICICI", Some(&rename))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["field"], "name");
    let key = json!({ "role": "auditor", "label": "audit\u{0}" });
    let reply = app.send("POST", "/api/v1/keys", Some(&key)).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["code"], "text_invalid");
    assert_eq!(reply.body["field"], "label");
    // Printable text in any script is kept as sent.
    let mut body = ordinary(2);
    body["reference"] = json!("Rechnung für März / बिल ३१");
    let reply = app.send("POST", "/api/v1/transfers", Some(&body)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["reference"], "Rechnung für März / बिल ३१");
    let stored: i64 = app
        .sql()
        .await
        .query_one("SELECT count(*) FROM transfers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    app.stop().await;
}

/// An input the ladder accepts but the column cannot hold: a converted amount past
/// NUMERIC(18, 3) (SQLSTATE 22003) fails alone with `422 transfer_unstorable`, and its
/// sender's reservation is released.
#[actix_web::test]
async fn a_transfer_the_column_cannot_hold_gets_its_own_422() {
    let app = App::spawn().await;
    let top = "999999999999999.99";
    let reply = app
        .send(
            "PATCH",
            "/api/v1/corridors/AED-INR",
            Some(&json!({ "amount_max": top })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = app
        .send(
            "PATCH",
            "/api/v1/banks/ENBD",
            Some(&json!({ "net_debit_caps": { "AED": top } })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // 1e14 AED at 22.6985 is about 2.3e15 INR: 16 integer digits, the column holds 15.
    let mut huge = ordinary(3);
    huge["amount"] = json!("100000000000000.00");
    let reply = app.send("POST", "/api/v1/transfers", Some(&huge)).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["code"], "transfer_unstorable");
    assert!(reply.body["transaction_id"].is_string(), "{}", reply.body);
    assert!(
        !reply.body["detail"].as_str().unwrap().contains("numeric"),
        "no database text reaches the client: {}",
        reply.body
    );
    let reply = app
        .send("POST", "/api/v1/transfers", Some(&ordinary(3)))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(app.engine.drain().await);
    assert_eq!(app.metrics.store_unstorable_transfers.get(), 1);
    assert_books_match_the_store(&app).await;
    app.app.assert_audit_clean().await;
    app.stop().await;
}
