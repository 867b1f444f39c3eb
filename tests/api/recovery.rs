//! Recovery reads a window's running sums (sql/0005) instead of its transfers: after a
//! restart the window is netted and the banks' books are rebuilt from a few rows. The
//! sums the group commit keeps must therefore always equal a full scan of the
//! transfers — through replays, rejections, restarts and an upgrade from a database
//! that had none — and the audit must catch a sum that does not.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use deltran::actors::writer::WindowProgress;
use deltran::domain::netting::WindowSums;
use deltran::domain::{BankCode, Currency, WindowId};

use crate::helpers::{test_settings, TestApp, REFERENCE_FLOWS};

const BANKS: [&str; 5] = ["ICICI", "HDFC", "AXIS", "ENBD", "ADCB"];
/// The running-sums rule as `deltran audit` names it.
const SUMS_RULE: &str = "every window's running sums equal its accepted transfers' legs and counts";

/// The `i`th transfer of a mix in which some banks both send and receive one currency
/// (ICICI sends INR and receives INR from ADCB), so that one bank and currency has
/// debit and credit legs in the same row of the sums.
fn mixed(i: usize) -> Value {
    let (sender, receiver, from, to) = REFERENCE_FLOWS[i % REFERENCE_FLOWS.len()];
    json!({
        "sender_bank": sender,
        "receiver_bank": receiver,
        "amount": format!("{}.{:02}", 10 + i * 7, i % 100),
        "from_currency": from,
        "to_currency": to,
    })
}

/// Submits `mixed(from..to)` at once, each with idempotency key `<prefix>-<i>`;
/// asserts every one is answered 202.
async fn submit_all(app: &TestApp, prefix: &str, from: usize, to: usize) {
    let submissions = (from..to).map(|i| async move {
        let reply = app
            .submit_with_key(&mixed(i), &format!("{prefix}-{i}"))
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    });
    futures_util::future::join_all(submissions).await;
}

/// The window's sums the way the store summed them before it kept running sums: every
/// accepted transfer of the window, one by one.
async fn scanned(app: &TestApp, window: i64) -> WindowSums<BankCode> {
    let rows = app
        .sql()
        .await
        .query(
            "SELECT sender_bank, receiver_bank, amount, from_currency, converted_amount,
                    to_currency
               FROM transfers WHERE window_id = $1 AND status = 'accepted'",
            &[&window],
        )
        .await
        .expect("scan");
    let mut sums = WindowSums::default();
    for row in rows {
        let bank = |column: &str| BankCode::parse(row.get(column)).expect("bank");
        let currency = |column: &str| Currency::parse(row.get(column)).expect("currency");
        sums.add_transfer(
            &bank("sender_bank"),
            &bank("receiver_bank"),
            row.get("amount"),
            currency("from_currency"),
            row.get("converted_amount"),
            currency("to_currency"),
        );
    }
    sums
}

/// The store's sums of `window` (what netting after a restart starts from) equal a
/// full scan of its transfers, with `count` transfers.
async fn assert_sums_match_a_scan(app: &TestApp, window: i64, count: u64) {
    let id = WindowId::new(window).expect("window id");
    let stored = app.store.window_sums(id).await.expect("window sums");
    assert_eq!(stored, scanned(app, window).await, "window {window}");
    assert_eq!(stored.transfer_count, count, "window {window}");
}

/// Each bank's debits and credits (rebuilt by its actor from the store at start) equal
/// the transfers stored in windows not yet settled.
async fn assert_books_match_the_transfers(app: &TestApp) {
    let sql = app.sql().await;
    for bank in BANKS {
        let positions = app.positions(bank).await.body;
        for row in positions["positions"].as_array().expect("positions") {
            let currency = row["currency"].as_str().unwrap();
            let stored = sql
                .query_one(
                    "SELECT
                       (SELECT coalesce(sum(amount), 0) FROM transfers t JOIN windows w
                           ON w.id = t.window_id
                         WHERE w.state <> 'settled' AND t.status = 'accepted'
                           AND sender_bank = $1 AND from_currency = $2)::text,
                       (SELECT coalesce(sum(converted_amount), 0) FROM transfers t
                          JOIN windows w ON w.id = t.window_id
                         WHERE w.state <> 'settled' AND t.status = 'accepted'
                           AND receiver_bank = $1 AND to_currency = $2)::text",
                    &[&bank, &currency],
                )
                .await
                .expect("recompute");
            let figure = |name: &str| -> Decimal { row[name].as_str().unwrap().parse().unwrap() };
            let debits: Decimal = stored.get::<_, String>(0).parse().unwrap();
            let credits: Decimal = stored.get::<_, String>(1).parse().unwrap();
            assert_eq!(figure("debits"), debits, "{bank} {currency} debits");
            assert_eq!(figure("credits"), credits, "{bank} {currency} credits");
        }
    }
}

/// Whether the writer vouches for the window's sums from memory (it does not after a
/// restart: then the store's running sums are what the close starts from).
async fn writer_vouches_for(app: &TestApp, window: i64) -> bool {
    app.engine
        .writer
        .send(WindowProgress {
            window: WindowId::new(window).expect("window id"),
        })
        .await
        .expect("writer answers")
        .is_some()
}

#[actix_web::test]
async fn running_sums_equal_a_full_scan_through_replays_a_rejection_and_a_restart() {
    let app = TestApp::spawn().await;
    let database = app.database.clone();
    let window = app.current_window_id().await;
    // A rejection is stored too, in no window: it adds nothing.
    app.set_cap("HDFC", "INR", "1").await;
    let rejected = app.submit(&mixed(1)).await;
    assert_eq!(
        (rejected.status.as_u16(), rejected.code()),
        (422, "limit_exceeded")
    );
    app.set_cap("HDFC", "INR", "10000000000").await;

    submit_all(&app, "first", 0, 300).await;
    // Every one again: replays add nothing...
    submit_all(&app, "first", 0, 300).await;
    // ...nor do duplicates submitted at once, which may share a batch (the insert
    // skips all but the first) or race each other into separate ones.
    let body = mixed(7);
    let duplicates = (0..8).map(|_| app.submit_with_key(&body, "same-key"));
    for reply in futures_util::future::join_all(duplicates).await {
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    assert!(app.engine.drain().await);
    assert_sums_match_a_scan(&app, window, 301).await;
    app.stop().await;

    // After a restart the writer's sums are gone: the window is counted, netted and
    // the books rebuilt from the store's running sums, which new batches add to.
    let app = TestApp::spawn_with(test_settings(), database).await;
    assert!(!writer_vouches_for(&app, window).await);
    let current = app.get("/api/v1/windows/current").await.body;
    assert_eq!(current["id"], window);
    assert_eq!(current["transfer_count"], 301);
    assert_books_match_the_transfers(&app).await;
    submit_all(&app, "second", 300, 500).await;
    submit_all(&app, "first", 0, 50).await;
    assert!(app.engine.drain().await);
    assert_sums_match_a_scan(&app, window, 501).await;
    assert_books_match_the_transfers(&app).await;

    let closed = app.close_window().await;
    assert_eq!(closed, window);
    let netted = app.wait_for_window_state(window, &["netted"]).await;
    assert_eq!(netted["transfer_count"], 501);
    // The positions netted from the running sums are the transfers' (audit rule 3).
    app.assert_audit_clean().await;
    assert_books_match_the_transfers(&app).await;
    app.stop().await;
}

#[actix_web::test]
async fn the_audit_finds_running_sums_that_differ_from_the_transfers() {
    let app = TestApp::spawn().await;
    let window = app.current_window_id().await;
    submit_all(&app, "t", 0, 20).await;
    assert!(app.engine.drain().await);
    app.assert_audit_clean().await;
    let sql = app.sql().await;
    let violations = || async {
        let checks = app.store.audit().await.expect("audit runs");
        let check = checks
            .into_iter()
            .find(|c| c.rule == SUMS_RULE)
            .expect("the running-sums rule is checked");
        check.violations
    };
    // One of the rows moves by a thousandth, then the count of another side, then a
    // corridor's row goes: each is named, and undone.
    let tampering = [
        (
            "UPDATE window_bank_legs SET debits = debits + 0.001
              WHERE bank = 'ICICI' AND currency = 'INR'",
            "UPDATE window_bank_legs SET debits = debits - 0.001
              WHERE bank = 'ICICI' AND currency = 'INR'",
            "ICICI INR",
        ),
        (
            "UPDATE window_bank_legs SET credit_count = credit_count + 1
              WHERE bank = 'ENBD' AND currency = 'AED'",
            "UPDATE window_bank_legs SET credit_count = credit_count - 1
              WHERE bank = 'ENBD' AND currency = 'AED'",
            "ENBD AED",
        ),
        (
            "CREATE TEMP TABLE kept AS SELECT * FROM window_corridor_legs
              WHERE from_currency = 'AED';
             DELETE FROM window_corridor_legs WHERE from_currency = 'AED'",
            "INSERT INTO window_corridor_legs SELECT * FROM kept",
            "corridor AED-INR",
        ),
    ];
    for (tamper, undo, named) in tampering {
        sql.batch_execute(tamper).await.expect("tamper");
        let found = violations().await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!("window {window} {named}")),
            "{found:?}"
        );
        sql.batch_execute(undo).await.expect("undo");
        assert!(violations().await.is_empty());
    }
    app.stop().await;
}

#[actix_web::test]
async fn an_upgrade_fills_the_running_sums_of_every_window_from_its_transfers() {
    let app = TestApp::spawn().await;
    let database = app.database.clone();
    let first = app.current_window_id().await;
    submit_all(&app, "a", 0, 120).await;
    app.close_window().await;
    app.wait_for_window_state(first, &["netted"]).await;
    let second = app.current_window_id().await;
    submit_all(&app, "b", 120, 200).await;
    app.stop().await;

    // The database as it was before migration 0005.
    app_sql(&database)
        .await
        .batch_execute(
            "DROP TABLE window_bank_legs, window_corridor_legs;
             DELETE FROM schema_migrations WHERE name = '0005_window_legs'",
        )
        .await
        .expect("downgrade");

    // The engine migrates at start, summing every window's transfers once.
    let app = TestApp::spawn_with(test_settings(), database).await;
    assert_sums_match_a_scan(&app, first, 120).await;
    assert_sums_match_a_scan(&app, second, 80).await;
    assert_books_match_the_transfers(&app).await;
    submit_all(&app, "c", 200, 260).await;
    app.close_window().await;
    app.wait_for_window_state(second, &["netted"]).await;
    assert_sums_match_a_scan(&app, second, 140).await;
    app.assert_audit_clean().await;
    app.stop().await;
}

/// A connection to `database` while no engine runs on it.
async fn app_sql(database: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = database
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    actix_web::rt::spawn(connection);
    client
}
