//! Rule 7 (docs/ARCHITECTURE.md): while Postgres is down, submissions get 503 with Retry-After, cached
//! reads keep working, and the engine recovers by itself when the database returns.

use std::sync::mpsc;

use crate::helpers::{eventually, inr_to_aed, scratch_dir, test_settings, TestApp};
use deltran::store::embedded::{EmbeddedOptions, EmbeddedPostgres, EMBEDDED_DATABASE};
use deltran::store::prepare_database;
use serde_json::json;

enum Command {
    Start(mpsc::Sender<tokio_postgres::Config>),
    Stop(mpsc::Sender<()>),
}

/// A cluster of this test's own on a thread that lives as long as the test process
/// (the cluster's parent-death signal is tied to it), started and stopped on command.
fn cluster_controller() -> mpsc::Sender<Command> {
    let root = scratch_dir("deltran-outage");
    let (tx, rx) = mpsc::channel::<Command>();
    std::thread::spawn(move || {
        let options = EmbeddedOptions {
            initdb_no_sync: true,
            wal_segment_size_mb: None,
            settings: vec![],
        };
        let mut cluster: Option<EmbeddedPostgres> = None;
        for command in rx {
            match command {
                Command::Start(reply) => {
                    let started = EmbeddedPostgres::start(&root, &options).expect("cluster starts");
                    reply.send(started.config(EMBEDDED_DATABASE)).unwrap();
                    cluster = Some(started);
                }
                Command::Stop(reply) => {
                    if let Some(mut c) = cluster.take() {
                        c.stop();
                    }
                    reply.send(()).unwrap();
                }
            }
        }
    });
    tx
}

fn start(control: &mpsc::Sender<Command>) -> tokio_postgres::Config {
    let (tx, rx) = mpsc::channel();
    control.send(Command::Start(tx)).unwrap();
    rx.recv().unwrap()
}

fn stop(control: &mpsc::Sender<Command>) {
    let (tx, rx) = mpsc::channel();
    control.send(Command::Stop(tx)).unwrap();
    rx.recv().unwrap();
}

#[actix_web::test]
async fn submissions_get_503_while_the_database_is_down_and_recover_when_it_returns() {
    let control = cluster_controller();
    let database = start(&control);
    prepare_database(&database).await.unwrap();
    let mut settings = test_settings();
    settings.submit_wait_max_ms = 3000;
    let app = TestApp::spawn_with(settings, database).await;
    assert_eq!(app.submit(&inr_to_aed(json!("10"))).await.status, 202);

    stop(&control);
    let reply = app.submit(&inr_to_aed(json!("20"))).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (503, "unavailable"));
    assert_eq!(reply.headers.get("retry-after").unwrap(), "1");
    assert_eq!(reply.content_type, "application/problem+json");
    // The answer names the request and never carries the database's own words.
    let request_id = reply.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(reply.body["request_id"], request_id);
    let detail = reply.body["detail"].as_str().unwrap();
    for database_text in ["db error", "SQLSTATE", "connection", "postgres"] {
        assert!(
            !detail
                .to_lowercase()
                .contains(&database_text.to_lowercase()),
            "{detail}"
        );
    }
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert!(
        !ready.body.to_string().contains("db error"),
        "{}",
        ready.body
    );
    // Cached state still reads.
    let positions = app.positions("ICICI").await;
    assert_eq!(positions.status, 200);
    assert_eq!(app.get("/health").await.status, 200);

    start(&control);
    eventually("submissions to succeed again", || async {
        app.submit(&inr_to_aed(json!("30"))).await.status == 202
    })
    .await;
    eventually("ready again", || async {
        app.get("/ready").await.status == 200
    })
    .await;
    // Exposure equals the store again: no lost or doubled reservation.
    let stored = app
        .scalar(
            "SELECT sum(amount) FROM transfers WHERE sender_bank = 'ICICI' AND status = 'accepted'",
        )
        .await;
    let exposure = app.position("ICICI", "INR").await["exposure"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stored.parse::<rust_decimal::Decimal>().unwrap(),
        exposure.parse::<rust_decimal::Decimal>().unwrap()
    );
    app.stop().await;
    stop(&control);
}
