//! Faults under load, the fast path of the chaos suite: a burst of panics across every
//! kind of actor (banks, corridors, the window clock, the writer after a commit) while
//! transfers stream in and windows close. Clients retry a 503 with the same
//! idempotency key, as the API tells them to; in the end every transfer is stored
//! exactly once, every bank's books equal the store and the audit is clean.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, test_settings, TestApp};
use deltran::actors::bank::Resync;
use deltran::actors::writer::PanicInNextCompletion;
use deltran::actors::InjectPanic;
use deltran::domain::{BankCode, CorridorId, Currency};

const SUBMITTERS: usize = 6;
const TRANSFERS_EACH: usize = 60;
const PANICS: usize = 24;

/// Sender, receiver and currencies of the reference corridor's flows.
const FLOWS: [(&str, &str, &str, &str); 4] = [
    ("ICICI", "ENBD", "INR", "AED"),
    ("HDFC", "ADCB", "INR", "AED"),
    ("ENBD", "AXIS", "AED", "INR"),
    ("ADCB", "ICICI", "AED", "INR"),
];

#[actix_web::test]
async fn a_burst_of_panics_across_actor_kinds_under_load_loses_nothing_and_counts_nothing_twice() {
    // A fault that leaves something stuck must fail here, not hang the suite.
    actix_web::rt::time::timeout(Duration::from_secs(120), panics_under_load())
        .await
        .expect("the burst of panics and its checks finish within 120 s");
}

async fn panics_under_load() {
    // A submission stuck behind a fault answers 503 within a second, so that a bank
    // that never recovers fails the test in seconds instead of hanging it.
    let mut settings = test_settings();
    settings.submit_wait_max_ms = 1_000;
    let app = Rc::new(TestApp::spawn_with_settings(settings).await);
    let acknowledged = Rc::new(RefCell::new(Vec::<String>::new()));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let (app, acknowledged) = (app.clone(), acknowledged.clone());
            actix_web::rt::spawn(async move {
                for i in 0..TRANSFERS_EACH {
                    let (from, to, cur_from, cur_to) = FLOWS[(s + i) % FLOWS.len()];
                    let key = format!("fault-{s}-{i}");
                    let body = json!({"sender_bank": from, "receiver_bank": to,
                        "amount": format!("{}.00", 10 + i), "from_currency": cur_from,
                        "to_currency": cur_to});
                    // A 503 may hide a commit: retry with the same key until answered.
                    let mut tries = 0;
                    loop {
                        let reply = app.submit_with_key(&body, &key).await;
                        match reply.status.as_u16() {
                            202 => break,
                            503 if tries < 30 => {
                                tries += 1;
                                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                            }
                            other => panic!("{key}: {other} {}", reply.body),
                        }
                    }
                    acknowledged.borrow_mut().push(key);
                }
            })
        })
        .collect();
    let engine = app.engine.clone();
    let injector = actix_web::rt::spawn(async move {
        let banks = ["ICICI", "HDFC", "AXIS", "ENBD", "ADCB"];
        let inr_aed = CorridorId::new(
            Currency::parse("INR").unwrap(),
            Currency::parse("AED").unwrap(),
        );
        for n in 0..PANICS {
            match n % 4 {
                0 => {
                    let bank = BankCode::parse(banks[n % banks.len()]).unwrap();
                    engine
                        .directory
                        .bank(&bank)
                        .unwrap()
                        .addr
                        .do_send(InjectPanic);
                }
                1 => engine
                    .directory
                    .corridor(&inr_aed)
                    .unwrap()
                    .do_send(InjectPanic),
                2 => engine.clock.do_send(InjectPanic),
                _ => engine.writer.do_send(PanicInNextCompletion),
            }
            actix_web::rt::time::sleep(Duration::from_millis(40)).await;
        }
    });
    // Windows close while it all happens.
    for _ in 0..4 {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        let reply = app
            .send_raw("POST", "/api/v1/windows/current/close", Vec::new(), &[])
            .await;
        assert!(matches!(reply.status.as_u16(), 202 | 503), "{}", reply.body);
    }
    injector.await.unwrap();
    for submitter in submitters {
        submitter.await.unwrap();
    }
    let acknowledged = acknowledged.borrow().clone();
    assert_eq!(acknowledged.len(), SUBMITTERS * TRANSFERS_EACH);
    let panics: u64 = ["bank", "corridor", "clock", "writer"]
        .iter()
        .map(|kind| app.metrics.actor_panics.with_label_values(&[kind]).get())
        .sum();
    assert!(
        panics >= (PANICS / 2) as u64,
        "only {panics} panics happened"
    );

    // Every acknowledged transfer is stored once (the key is unique per sender, so
    // count the keys), and nothing else was stored.
    let stored: i64 = app
        .scalar("SELECT count(*) FROM transfers WHERE idempotency_key LIKE 'fault-%'")
        .await
        .parse()
        .unwrap();
    assert_eq!(stored as usize, acknowledged.len());
    // Every bank's books equal the store (after the restarts' re-reads).
    for (bank, _, currency, _) in FLOWS {
        let sql = format!(
            "SELECT coalesce(sum(amount), 0)::numeric(20,2) FROM transfers
              WHERE sender_bank = '{bank}' AND status = 'accepted'"
        );
        let expected = app.scalar(&sql).await;
        let app = &app;
        eventually(&format!("{bank}'s debits equal the store"), || {
            let expected = expected.clone();
            async move { app.position(bank, currency).await["debits"] == expected.as_str() }
        })
        .await;
    }
    assert!(app.engine.drain().await);
    app.assert_audit_clean().await;
    match Rc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}

/// A bank that asks for its books more than once before they come (each failed batch
/// it took part in asks) gets its books in every answer: the answers share one read,
/// and once the second answer carried empty books, so the bank forgot its debits and
/// the release of the window drove them below zero (found by `loadtest/chaos.sh
/// dbkill`).
#[actix_web::test]
async fn a_bank_that_asks_for_its_books_twice_gets_them_both_times() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let reply = app
            .submit(&json!({"sender_bank": "ICICI", "receiver_bank": "ENBD",
                            "amount": format!("{}.00", 100 + i), "from_currency": "INR",
                            "to_currency": "AED"}))
            .await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
    }
    assert_eq!(app.position("ICICI", "INR").await["debits"], "510.00");
    let icici = app
        .engine
        .directory
        .bank(&BankCode::parse("ICICI").unwrap())
        .unwrap();
    // Every bank asks, then ICICI twice more: the writer serves the first request
    // while the rest queue behind it, and then one read answers all of those.
    for (_, bank) in app.engine.directory.banks() {
        bank.addr.do_send(Resync);
    }
    icici.addr.do_send(Resync);
    icici.addr.do_send(Resync);
    // The requests pass through the bank actors first; then every answer is in once
    // the writer has drained and ICICI reads as current.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(app.engine.drain().await);
    let shared = &app;
    eventually("ICICI's books are current", || async move {
        shared.positions("ICICI").await.body["current"] == true
    })
    .await;
    assert_eq!(app.position("ICICI", "INR").await["debits"], "510.00");
    app.stop().await;
}

/// The chaos suite's route: absent unless the engine starts with `--fault-injection`,
/// operator-only, clear about bad input, and each kind of fault really panics its
/// actor, which the supervisor restarts so the engine keeps taking transfers.
#[actix_web::test]
async fn the_fault_injection_route_exists_only_when_enabled_and_panics_the_named_actor() {
    let plain = TestApp::spawn().await;
    let reply = plain
        .post("/api/v1/faults/panic", &json!({"actor": "clock"}))
        .await;
    assert_eq!(reply.status.as_u16(), 404, "{}", reply.body);
    plain.stop().await;

    let mut settings = test_settings();
    settings.fault_injection = true;
    let app = TestApp::spawn_with_settings(settings).await;
    let bank_key = app.keys.bank("ICICI").to_string();
    let body = json!({"actor": "bank", "target": "ICICI"}).to_string();
    let reply = app
        .send_as(
            Some(&bank_key),
            "POST",
            "/api/v1/faults/panic",
            body.into_bytes(),
            &[],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 403, "{}", reply.body);
    for (body, status, code) in [
        (json!({"actor": "nobody"}), 422, "fault_actor_invalid"),
        (
            json!({"actor": "clock", "target": "x"}),
            422,
            "fault_target_unexpected",
        ),
        (
            json!({"actor": "corridor", "target": "INR"}),
            422,
            "corridor_id_invalid",
        ),
        (json!({"actor": "bank"}), 400, "field_missing"),
    ] {
        let reply = app.post("/api/v1/faults/panic", &body).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.body);
        assert_eq!(reply.body["code"], code, "{body}: {}", reply.body);
    }
    let reply = app
        .post(
            "/api/v1/faults/panic",
            &json!({"actor": "window", "target": "999"}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 404, "{}", reply.body);

    let faults = [
        (json!({"actor": "bank", "target": "ICICI"}), "bank"),
        (
            json!({"actor": "corridor", "target": "INR-AED"}),
            "corridor",
        ),
        (json!({"actor": "clock"}), "clock"),
        (json!({"actor": "writer"}), "writer"),
    ];
    for (body, kind) in faults {
        let before = app.metrics.actor_panics.with_label_values(&[kind]).get();
        let reply = app.post("/api/v1/faults/panic", &body).await;
        assert_eq!(reply.status.as_u16(), 202, "{body}: {}", reply.body);
        let app = &app;
        eventually(&format!("the {kind} actor panicked"), || async move {
            app.metrics.actor_panics.with_label_values(&[kind]).get() > before
        })
        .await;
    }
    // The continuation faults fire on the next batch and the next netting.
    for body in [
        json!({"actor": "batch_completion"}),
        json!({"actor": "netting"}),
    ] {
        let reply = app.post("/api/v1/faults/panic", &body).await;
        assert_eq!(reply.status.as_u16(), 202, "{body}: {}", reply.body);
    }
    let writer_before = app
        .metrics
        .actor_panics
        .with_label_values(&["writer"])
        .get();
    let window_before = app
        .metrics
        .actor_panics
        .with_label_values(&["window"])
        .get();
    let transfer = json!({"sender_bank": "ICICI", "receiver_bank": "ENBD", "amount": "10.00",
                          "from_currency": "INR", "to_currency": "AED"});
    // The batch whose completion panics answers 503; the client sends it again.
    let mut accepted = false;
    for _ in 0..50 {
        let reply = app.submit_with_key(&transfer, "after-the-faults").await;
        if reply.status.as_u16() == 202 {
            accepted = true;
            break;
        }
        assert_eq!(reply.status.as_u16(), 503, "{}", reply.body);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        accepted,
        "the engine takes transfers again after the faults"
    );
    let reply = app.post("/api/v1/windows/current/close", &json!({})).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.body);
    let app_ref = &app;
    eventually(
        "the batch completion and the netting panicked",
        || async move {
            app_ref
                .metrics
                .actor_panics
                .with_label_values(&["writer"])
                .get()
                > writer_before
                && app_ref
                    .metrics
                    .actor_panics
                    .with_label_values(&["window"])
                    .get()
                    > window_before
        },
    )
    .await;
    let closed: i64 = app
        .scalar("SELECT max(id) FROM windows WHERE state <> 'open'")
        .await
        .parse()
        .unwrap();
    app.wait_for_window_state(closed, &["netted"]).await;
    assert!(app.engine.drain().await);
    app.assert_audit_clean().await;
    app.stop().await;
}
