//! Limits at the edge: rates per key, per address and on failed authentications
//! (429 with Retry-After), bounds on the request head (431), the query string (414),
//! JSON nesting (400 json_too_deep) and text fields (422 text_too_long), and TLS.
//!

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{fresh_database, scratch_dir, test_settings, Reply, TestApp};
use deltran::config::Settings;
use deltran::domain::{BankCode, Origin, Role};
use deltran::startup::Application;

fn settings() -> Settings {
    let mut settings = test_settings();
    // The failed-authentication budget of the real default: these tests count on it.
    settings.auth_failures_per_minute_max = Settings::defaults().auth_failures_per_minute_max;
    settings.http_workers = 1;
    settings
}

/// The test app, called with keys made per test.
struct App {
    app: TestApp,
    port: u16,
}

/// Whole seconds of a 429's `Retry-After`.
fn retry_after_seconds(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds")
}

impl App {
    async fn start(settings: Settings) -> App {
        let app = TestApp::spawn_with_settings(settings).await;
        let port = app.address.rsplit(':').next().unwrap().parse().unwrap();
        App { app, port }
    }

    async fn key(&self, role: Role, bank: Option<&str>) -> String {
        let bank = bank.map(|b| BankCode::parse(b).unwrap());
        let (_, text) = self
            .app
            .engine
            .create_key(&Origin::Engine("test"), role, bank, None)
            .await
            .expect("key made");
        text
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let body = body.unwrap_or_default().into_bytes();
        self.app.send_as(key, method, path, body, &[]).await
    }

    async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.send("GET", path, key, None).await
    }

    async fn post(&self, path: &str, key: &str, body: String) -> Reply {
        self.send("POST", path, Some(key), Some(body)).await
    }

    /// Writes `head` on a fresh connection and returns the status line of the answer.
    async fn raw_status_line(&self, head: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connects");
        stream.write_all(head).await.expect("head written");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(2).any(|w| w == b"\r\n") {
                        break;
                    }
                }
                Err(e) => panic!("no answer: {e}"),
            }
        }
        let text = String::from_utf8_lossy(&answer);
        text.lines().next().unwrap_or_default().to_string()
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

/// The first refused of up to 20 requests: a budget refilling a few times a second
/// cannot keep up with 20 requests in a row on any machine.
async fn first_refusal<F, Fut>(request: F) -> Reply
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for _ in 0..20 {
        let reply = request().await;
        if reply.status != StatusCode::OK {
            return reply;
        }
    }
    panic!("20 requests in a row passed the rate limit");
}

fn assert_rate_limited(reply: &Reply, retry_after: std::ops::RangeInclusive<u64>) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "rate_limited", "{}", reply.body);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    let seconds = retry_after_seconds(reply);
    assert!(retry_after.contains(&seconds), "Retry-After {seconds}");
    assert_eq!(reply.body["retry_after_seconds"], seconds);
    assert!(reply.body["request_id"].is_string(), "{}", reply.body);
}

#[actix_web::test]
async fn a_key_past_its_rate_gets_429_with_retry_after_and_another_key_does_not() {
    let mut settings = settings();
    settings.rate_per_key_per_second = 3;
    let app = App::start(settings).await;
    let (busy, other) = (
        app.key(Role::Operator, None).await,
        app.key(Role::Bank, Some("ICICI")).await,
    );
    // Three a second, with a burst of three: the first three pass, and one of the
    // next few is refused (more than one may pass on a slow machine, as the budget
    // refills every third of a second).
    for _ in 0..3 {
        let reply = app.get("/api/v1/banks", Some(&busy)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let refused = first_refusal(|| app.get("/api/v1/banks", Some(&busy))).await;
    assert_rate_limited(&refused, 1..=1);
    let reply = app.get("/api/v1/banks", Some(&other)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A third of a second later the busy key has one request again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = app.get("/api/v1/banks", Some(&busy)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    app.stop().await;
}

#[actix_web::test]
async fn an_address_past_its_rate_gets_429_on_every_route_before_any_key_is_checked() {
    let mut settings = settings();
    settings.rate_per_address_per_second = 4;
    let app = App::start(settings).await;
    let key = app.key(Role::Operator, None).await;
    for _ in 0..4 {
        assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    }
    assert_rate_limited(&first_refusal(|| app.get("/health", None)).await, 1..=1);
    // Refused before authentication: no key, a valid key, the same answer.
    let refused = first_refusal(|| app.get("/api/v1/banks", None)).await;
    assert_rate_limited(&refused, 1..=1);
    let refused = first_refusal(|| app.get("/api/v1/banks", Some(&key))).await;
    assert_rate_limited(&refused, 1..=1);
    app.stop().await;
}

#[actix_web::test]
async fn failed_authentications_past_the_budget_are_refused_but_a_valid_key_still_passes() {
    let mut settings = settings();
    settings.auth_failures_per_minute_max = 3;
    let app = App::start(settings).await;
    let key = app.key(Role::Operator, None).await;
    let wrong = format!("{key}x");
    assert_eq!(
        app.get("/api/v1/banks", None).await.code(),
        "unauthenticated"
    );
    for _ in 0..2 {
        let reply = app.get("/api/v1/banks", Some(&wrong)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.code(), "key_invalid");
    }
    // Three a minute: the next failure is allowed 20 s after the first.
    assert_rate_limited(&app.get("/api/v1/banks", Some(&wrong)).await, 10..=20);
    assert_rate_limited(&app.get("/api/v1/banks", None).await, 1..=20);
    assert_rate_limited(&app.get("/ws?token=dtk_wrong", None).await, 1..=20);
    // Another client behind the same address (a proxy, a NAT) with a valid key is not
    // locked out by the failures: one client's bad keys never hurt another.
    assert_eq!(
        app.get("/api/v1/banks", Some(&key)).await.status,
        StatusCode::OK
    );
    // Routes without a key are not affected.
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    app.stop().await;
}

#[actix_web::test]
async fn a_json_body_nested_too_deep_is_refused_on_every_json_route() {
    let app = App::start(settings()).await;
    let key = app.key(Role::Operator, None).await;
    let deep = format!(r#"{{"sender_bank":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    for path in [
        "/api/v1/transfers",
        "/api/v1/banks",
        "/api/v1/corridors",
        "/api/v1/keys",
    ] {
        let reply = app.post(path, &key, deep.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "json_too_deep", "{path}");
    }
    let reply = app
        .send("PATCH", "/api/v1/banks/ICICI", Some(&key), Some(deep))
        .await;
    assert_eq!(reply.code(), "json_too_deep");
    // Thirty-two levels are within the bound (and then simply not a valid body).
    let nested = format!(r#"{{"name":{}1{}}}"#, "[".repeat(31), "]".repeat(31));
    let reply = app
        .send("PATCH", "/api/v1/banks/ICICI", Some(&key), Some(nested))
        .await;
    assert_eq!(reply.code(), "field_invalid", "{}", reply.body);
    app.stop().await;
}

#[actix_web::test]
async fn a_query_string_longer_than_2_kib_is_414() {
    let app = App::start(settings()).await;
    let key = app.key(Role::Operator, None).await;
    let long = format!("/api/v1/transfers?cursor={}", "a".repeat(2048));
    let reply = app.get(&long, Some(&key)).await;
    assert_eq!(reply.status, StatusCode::URI_TOO_LONG, "{}", reply.body);
    assert_eq!(reply.code(), "query_too_long");
    // Checked before authentication, on any route.
    assert_eq!(app.get(&long, None).await.code(), "query_too_long");
    let within = format!("/api/v1/transfers?cursor={}", "a".repeat(2000));
    let reply = app.get(&within, Some(&key)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.code(), "query_invalid");
    app.stop().await;
}

#[actix_web::test]
async fn a_request_head_with_too_many_or_too_large_headers_is_431() {
    let app = App::start(settings()).await;
    let mut head = String::from("GET /health HTTP/1.1\r\nHost: localhost\r\n");
    for n in 0..95 {
        head.push_str(&format!("X-Filler-{n}: {n}\r\n"));
    }
    let fits = format!("{head}\r\n");
    assert_eq!(
        app.raw_status_line(fits.as_bytes()).await,
        "HTTP/1.1 200 OK"
    );
    let too_many = format!("{head}X-One-Too-Many: 1\r\n\r\n");
    assert_eq!(
        app.raw_status_line(too_many.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let too_large = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(128 * 1024)
    );
    assert_eq!(
        app.raw_status_line(too_large.as_bytes()).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    app.stop().await;
}

#[actix_web::test]
async fn every_text_field_past_its_bound_is_422_text_too_long() {
    let app = App::start(settings()).await;
    let key = app.key(Role::Operator, None).await;
    let long = "x".repeat(141);
    let cases = [
        (
            "/api/v1/banks",
            json!({"code": "FAB", "name": long, "country": "AE"}),
            "name",
        ),
        (
            "/api/v1/keys",
            json!({"role": "auditor", "label": long}),
            "label",
        ),
        (
            "/api/v1/transfers",
            json!({"sender_bank": "ICICI", "receiver_bank": "ENBD", "amount": "1.00",
                   "from_currency": "INR", "to_currency": "AED", "reference": long}),
            "reference",
        ),
        (
            "/api/v1/transfers",
            json!({"sender_bank": "ICICI", "receiver_bank": "ENBD", "amount": "1.00",
                   "from_currency": "INR", "to_currency": "AED", "sender_account": long}),
            "sender_account",
        ),
    ];
    for (path, body, field) in cases {
        let reply = app.post(path, &key, body.to_string()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "text_too_long", "{path}");
        assert_eq!(reply.body["field"], field, "{path}");
    }
    let reply = app
        .send(
            "PATCH",
            "/api/v1/banks/ICICI",
            Some(&key),
            Some(json!({ "name": long }).to_string()),
        )
        .await;
    assert_eq!(reply.code(), "text_too_long", "{}", reply.body);
    app.stop().await;
}

/// A self-signed certificate for localhost, written as PEM files.
fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().to_vec())
}

#[actix_web::test]
async fn with_a_certificate_and_key_the_engine_serves_https() {
    let dir = scratch_dir("deltran-tls");
    let (cert, key, der) = self_signed(&dir);
    let mut settings = settings();
    settings.tls_cert = Some(cert);
    settings.tls_key = Some(key);
    let app = App::start(settings).await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .timeout(Duration::from_secs(30))
        .finish();
    let mut response = client
        .get(format!("https://localhost:{}/health", app.port))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    // The API over TLS, with a key.
    let operator = app.key(Role::Operator, None).await;
    let response = client
        .get(format!("https://localhost:{}/api/v1/banks", app.port))
        .insert_header(("Authorization", format!("Bearer {operator}")))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), StatusCode::OK);
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = awc::Client::new()
        .get(format!("http://127.0.0.1:{}/health", app.port))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP answered: {:?}",
        plain.map(|r| r.status())
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_certificate_file_that_is_not_pem_stops_the_start_with_a_clear_message() {
    let dir = scratch_dir("deltran-tls-bad");
    let (_, key, _) = self_signed(&dir);
    let cert = dir.join("not-a-cert.pem");
    std::fs::write(&cert, "hello").unwrap();
    let mut settings = settings();
    settings.tls_cert = Some(cert);
    settings.tls_key = Some(key.clone());
    let error = Application::build(&settings, fresh_database().await)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("--tls-cert"), "{error:#}");
    // A key that is not the certificate's.
    let (cert, _, _) = self_signed(&scratch_dir("deltran-tls-other"));
    settings.tls_cert = Some(cert);
    settings.tls_key = Some(key);
    let error = Application::build(&settings, fresh_database().await)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("does not fit"), "{error:#}");
}
