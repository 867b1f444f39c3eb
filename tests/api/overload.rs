//! Rule 8 under overload (issue 9): a submission whose turn in the engine does not
//! come within the delay target is refused with `503 overloaded` and `Retry-After`
//! instead of waiting on, on a connection that stays open, and never stored; admission
//! resumes as soon as the engine answers again. The fixed count of submissions in
//! flight stays the outer bound.
//!
//! The engine is slowed by holding the transfers table locked from the test: the
//! writer's insert waits for the lock, so the one submission the engine works on (the
//! tests allow one at a time) waits as long as the test wants, and the next ones can
//! only wait for their turn. No assertion depends on the machine's speed: a turn that
//! cannot come is refused whether the target is short or the machine slow.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{eventually, inr_to_aed, test_settings, TestApp};
use deltran::config::Settings;

/// One answer read off a raw connection.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 connection that sends submissions one after another, so the
/// test sees whether an answer closed it.
struct Connection {
    stream: BufReader<TcpStream>,
    key: String,
}

impl Connection {
    async fn open(app: &TestApp) -> Connection {
        let address = app.address.trim_start_matches("http://");
        let stream = TcpStream::connect(address).await.expect("connects");
        Connection {
            stream: BufReader::new(stream),
            key: app.keys.operator.clone(),
        }
    }

    async fn submit(&mut self, body: &Value) -> RawAnswer {
        let body = body.to_string();
        let request = format!(
            "POST /api/v1/transfers HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.key,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(request.as_bytes()).await.expect("sent");
        self.answer().await
    }

    async fn answer(&mut self) -> RawAnswer {
        let mut line = String::new();
        let read = self.stream.read_line(&mut line).await.expect("status line");
        assert!(read > 0, "the engine closed the connection");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .expect("content-length");
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        RawAnswer {
            status,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }
}

/// One submission in the engine at a time: the next waits its turn.
fn settings(delay_target_ms: u64, in_flight_max: usize) -> Settings {
    let mut settings = test_settings();
    settings.submit_delay_target_ms = delay_target_ms;
    settings.submissions_in_flight_max = in_flight_max;
    settings.submissions_in_engine_max = 1;
    // Nothing gives up waiting for its commit: without admission, waits would grow.
    settings.submit_wait_max_ms = 600_000;
    settings
}

/// Holds the transfers table in a transaction of the test's own until dropped or
/// committed: the writer's inserts wait for it.
async fn lock_transfers(app: &TestApp) -> tokio_postgres::Client {
    let client = app.sql().await;
    client
        .batch_execute("BEGIN; LOCK TABLE transfers IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("table locked");
    client
}

/// Starts a submission that will wait behind the lock, and returns once the engine
/// has admitted it.
async fn submit_stuck(app: &TestApp) -> actix_web::rt::task::JoinHandle<u16> {
    let before = app.metrics.submissions_in_flight.get();
    let mut connection = Connection::open(app).await;
    let stuck =
        actix_web::rt::spawn(
            async move { connection.submit(&inr_to_aed(json!("20"))).await.status },
        );
    let metrics = app.metrics.clone();
    eventually("the stuck submission is admitted", || {
        let metrics = metrics.clone();
        async move { metrics.submissions_in_flight.get() > before }
    })
    .await;
    stuck
}

fn refused(app: &TestApp, reason: &str) -> u64 {
    app.metrics
        .submissions_refused
        .with_label_values(&[reason])
        .get()
}

fn assert_overloaded(answer: &RawAnswer) {
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.body["code"], "overloaded", "{}", answer.body);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_ne!(answer.header("connection"), Some("close"));
}

#[actix_web::test]
async fn a_turn_that_cannot_come_within_the_delay_target_is_refused_and_admission_resumes() {
    let app = TestApp::spawn_with_settings(settings(50, 10_000)).await;
    assert_eq!(app.submit(&inr_to_aed(json!("10"))).await.status, 202);

    let lock = lock_transfers(&app).await;
    let stuck = submit_stuck(&app).await;
    // Each of these waits its turn behind the stuck one, which cannot come within the
    // target, or is refused at once when the engine's recent pace says so.
    let mut connection = Connection::open(&app).await;
    for i in 0..20 {
        let answer = connection.submit(&inr_to_aed(json!(30 + i))).await;
        assert_overloaded(&answer);
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("within its delay target"),
            "{}",
            answer.body
        );
    }
    assert_eq!(refused(&app, "delay"), 20);
    assert!(!stuck.is_finished(), "the stuck submission still waits");

    lock.batch_execute("COMMIT").await.expect("lock released");
    assert_eq!(stuck.await.unwrap(), 202);
    // Nothing waits any more: the same connection is admitted again.
    let answer = connection.submit(&inr_to_aed(json!("40"))).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    // The refused submissions were never stored.
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "3");
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn the_count_in_flight_stays_the_outer_bound() {
    // A target no test reaches: only the count (one, taken by the stuck submission)
    // can refuse.
    let app = TestApp::spawn_with_settings(settings(600_000, 1)).await;
    let lock = lock_transfers(&app).await;
    let stuck = submit_stuck(&app).await;
    let mut connection = Connection::open(&app).await;
    let answer = connection.submit(&inr_to_aed(json!("30"))).await;
    assert_overloaded(&answer);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("limit of submissions in flight"),
        "{}",
        answer.body
    );
    assert_eq!(
        (refused(&app, "overloaded"), refused(&app, "delay")),
        (1, 0)
    );
    lock.batch_execute("COMMIT").await.expect("lock released");
    assert_eq!(stuck.await.unwrap(), 202);
    app.stop().await;
}
