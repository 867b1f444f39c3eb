//! One way in for integration tests: `TestApp` starts the real engine (real Postgres,
//! port 0, a fresh database per test) and has one typed method per endpoint.
//!
//! The Postgres server is `DATABASE_URL` when set; otherwise one embedded cluster that
//! every test of the binary shares, made in the system temp dir and run as the
//! `postgres` user when the tests run as root. Setup methods (`create_bank`,
//! `set_cap`, `close_window`, ...) fail the test at once when the engine refuses;
//! the `post_`/`patch_` ones return the answer as it is, for tests of refusals.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use awc::http::StatusCode;
use serde_json::{json, Value};

use deltran::config::Settings;
use deltran::startup::Application;
use deltran::store::embedded::{EmbeddedOptions, EmbeddedPostgres, EMBEDDED_DATABASE};
use deltran::store::{create_database_if_missing, prepare_database, Store};

/// Where the test server lives: a base config to which each test adds its database.
static SERVER: OnceLock<tokio_postgres::Config> = OnceLock::new();

/// A scratch directory in the system temp dir, reachable by the `postgres` user.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Removes the scratch directories (`deltran-…-<pid>-<uuid>`) of test processes that
/// have ended: a test run's shared cluster cannot be removed by the process that
/// runs it, so without this every run would leave ~300 MB in the temp dir.
fn remove_scratch_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut parts = name.rsplitn(3, '-');
        let (Some(id), Some(pid), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let ours = prefix.starts_with("deltran-")
            && id.len() == 32
            && id.bytes().all(|b| b.is_ascii_hexdigit());
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let ended = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if ours && ended {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_embedded_server() -> tokio_postgres::Config {
    remove_scratch_of_ended_runs();
    let root = scratch_dir("deltran-test-pg");
    let (tx, rx) = std::sync::mpsc::channel();
    // The cluster's parent-death signal is tied to the thread that starts it, so it
    // gets a thread that lives until the test process exits.
    std::thread::spawn(move || {
        let options = EmbeddedOptions {
            initdb_no_sync: true,
            wal_segment_size_mb: None,
            settings: vec![("max_connections".into(), "300".into())],
        };
        match EmbeddedPostgres::start(&root, &options) {
            Ok(cluster) => {
                tx.send(Ok(cluster.config(EMBEDDED_DATABASE))).unwrap();
                loop {
                    std::thread::park();
                }
            }
            Err(e) => tx.send(Err(e.to_string())).unwrap(),
        }
    });
    rx.recv()
        .expect("cluster thread answers")
        .expect("embedded postgres starts")
}

fn server() -> tokio_postgres::Config {
    SERVER
        .get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) => url.parse().expect("DATABASE_URL is a Postgres URL"),
            Err(_) => start_embedded_server(),
        })
        .clone()
}

/// A fresh, empty database on the test server.
pub async fn fresh_database() -> tokio_postgres::Config {
    let mut config = server();
    prepare_database(&config).await.expect("server is up");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    create_database_if_missing(&config, &name)
        .await
        .expect("create test database");
    config.dbname(&name);
    config
}

pub fn test_settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.db_pool_size_max = 8;
    settings.http_workers = 2;
    // Every test calls from 127.0.0.1, and some make many refused calls on purpose
    // (the role matrix): the budget of failed authentications is its own test's.
    settings.auth_failures_per_minute_max = 1_000_000;
    settings
}

pub struct TestApp {
    pub address: String,
    pub database: tokio_postgres::Config,
    pub store: Store,
    pub engine: deltran::actors::Engine,
    pub metrics: std::sync::Arc<deltran::metrics::Metrics>,
    /// Keys made for this test: the helpers call as the operator unless told otherwise.
    pub keys: TestKeys,
    server: ServerHandle,
    stopped: Option<tokio::task::JoinHandle<()>>,
    client: awc::Client,
}

/// An operator key, an auditor key and a key per bank of the reference corridor.
pub struct TestKeys {
    pub operator: String,
    pub auditor: String,
    banks: std::collections::HashMap<String, String>,
}

impl TestKeys {
    async fn make(engine: &deltran::actors::Engine, store: &Store) -> TestKeys {
        use deltran::domain::{Origin, Role};
        let origin = Origin::Engine("test");
        let origin = &origin;
        let make = |role, bank: Option<deltran::domain::BankCode>| async move {
            engine
                .create_key(origin, role, bank, Some("test".into()))
                .await
                .expect("key made")
                .1
        };
        let mut banks = std::collections::HashMap::new();
        for bank in store.banks().await.expect("banks") {
            let key = make(Role::Bank, Some(bank.code.clone())).await;
            banks.insert(bank.code.to_string(), key);
        }
        TestKeys {
            operator: make(Role::Operator, None).await,
            auditor: make(Role::Auditor, None).await,
            banks,
        }
    }

    /// The key of `bank` (made at spawn for every bank stored then).
    pub fn bank(&self, bank: &str) -> &str {
        self.banks
            .get(bank)
            .unwrap_or_else(|| panic!("no test key for bank {bank}"))
    }
}

/// A response: status, headers and the body parsed as JSON (Null if it is not).
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    /// The body as text (for answers that are not JSON, such as XML).
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing in {}", self.body))
            .to_string()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with_settings(test_settings()).await
    }

    /// With settings of the test's own, on a fresh database.
    pub async fn spawn_with_settings(settings: Settings) -> TestApp {
        Self::spawn_with(settings, fresh_database().await).await
    }

    pub async fn spawn_with(settings: Settings, database: tokio_postgres::Config) -> TestApp {
        Self::spawn_node(settings, database, None).await
    }

    /// A node of a cluster when `joined` is given (`database` writes under its
    /// lease's epoch), else the engine alone.
    pub async fn spawn_node(
        settings: Settings,
        database: tokio_postgres::Config,
        joined: Option<deltran::cluster::Joined>,
    ) -> TestApp {
        let app = Application::build_node(&settings, database.clone(), joined)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (store, engine, metrics) = (app.store.clone(), app.engine.clone(), app.metrics.clone());
        let server = app.server_handle();
        let stopped = actix_web::rt::spawn(async move {
            app.run_until_stopped().await.expect("server runs");
        });
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            // Pooled connections are dropped after 2 s idle, before the server's own
            // keep-alive (5 s) closes them: a slow step (a window netting on a busy
            // box) would otherwise have the next request sent on a connection the
            // server had just closed, failing with `Connect(Disconnected)`.
            .connector(
                awc::Connector::new()
                    .limit(1000)
                    .conn_keep_alive(Duration::from_secs(2)),
            )
            .finish();
        let keys = TestKeys::make(&engine, &store).await;
        TestApp {
            address,
            database,
            store,
            engine,
            metrics,
            keys,
            server,
            stopped: Some(stopped),
            client,
        }
    }

    /// Stops the server gracefully and waits until the writer has drained.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }

    async fn finish(
        mut response: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
                + Unpin,
        >,
    ) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET as the operator.
    pub async fn get(&self, path: &str) -> Reply {
        self.send_as(Some(&self.keys.operator), "GET", path, Vec::new(), &[])
            .await
    }

    /// GET with `key` (`None`: no credentials at all).
    pub async fn get_as(&self, key: Option<&str>, path: &str) -> Reply {
        self.send_as(key, "GET", path, Vec::new(), &[]).await
    }

    /// Makes a key as the operator (asserting 201); the answer carries `key` and `id`.
    pub async fn create_key(&self, role: &str, bank: Option<&str>) -> Value {
        let reply = self
            .post(
                "/api/v1/keys",
                &serde_json::json!({"role": role, "bank": bank}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// A request as the operator.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.send_as(Some(&self.keys.operator), method, path, body, headers)
            .await
    }

    /// A request with `key` as `Authorization: Bearer <key>` (`None`: no header).
    pub async fn send_as(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .insert_header(("content-type", "application/json"));
        if let Some(key) = key {
            request = request.insert_header(("authorization", format!("Bearer {key}")));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = request.send_body(body).await.expect("request");
        Self::finish(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send_raw("POST", path, body.to_string().into_bytes(), &[])
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send_raw("PATCH", path, body.to_string().into_bytes(), &[])
            .await
    }

    pub async fn submit(&self, body: &Value) -> Reply {
        self.post("/api/v1/transfers", body).await
    }

    /// Submits with the key in the `Idempotency-Key` header.
    pub async fn submit_with_key(&self, body: &Value, key: &str) -> Reply {
        self.send_raw(
            "POST",
            "/api/v1/transfers",
            body.to_string().into_bytes(),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn transfer(&self, id: &str) -> Reply {
        self.get(&format!("/api/v1/transfers/{id}")).await
    }

    /// `POST /api/v1/transfers/{id}/cancel` as the operator.
    pub async fn cancel(&self, id: &str) -> Reply {
        self.cancel_as(&self.keys.operator, id).await
    }

    pub async fn cancel_as(&self, key: &str, id: &str) -> Reply {
        let path = format!("/api/v1/transfers/{id}/cancel");
        self.send_as(Some(key), "POST", &path, Vec::new(), &[])
            .await
    }

    pub async fn positions(&self, bank: &str) -> Reply {
        self.get(&format!("/api/v1/banks/{bank}/positions")).await
    }

    /// A bank's position row for one currency from the positions route.
    pub async fn position(&self, bank: &str, currency: &str) -> Value {
        let reply = self.positions(bank).await;
        reply.body["positions"]
            .as_array()
            .expect("positions")
            .iter()
            .find(|p| p["currency"] == currency)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// `POST /api/v1/banks/{bank}/balances/funds-in`, answered as it is.
    pub async fn post_funds_in(&self, bank: &str, currency: &str, amount: &str) -> Reply {
        self.post(
            &format!("/api/v1/banks/{bank}/balances/funds-in"),
            &json!({"currency": currency, "amount": amount}),
        )
        .await
    }

    /// Funds a bank's settlement balance; fails the test unless it is stored.
    pub async fn funds_in(&self, bank: &str, currency: &str, amount: &str) -> Reply {
        let reply = self.post_funds_in(bank, currency, amount).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
    }

    /// `POST /api/v1/banks/{bank}/balances/funds-out`, answered as it is.
    pub async fn post_funds_out(&self, bank: &str, currency: &str, amount: &str) -> Reply {
        self.post(
            &format!("/api/v1/banks/{bank}/balances/funds-out"),
            &json!({"currency": currency, "amount": amount}),
        )
        .await
    }

    /// `GET /api/v1/banks/{bank}/balances`.
    pub async fn balances(&self, bank: &str) -> Reply {
        self.get(&format!("/api/v1/banks/{bank}/balances")).await
    }

    /// A bank's balance row for one currency from the balances route (null when it
    /// is not prefunded in it).
    pub async fn balance(&self, bank: &str, currency: &str) -> Value {
        let reply = self.balances(bank).await;
        reply.body["balances"]
            .as_array()
            .expect("balances")
            .iter()
            .find(|b| b["currency"] == currency)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Closes the current window, waits for its netting, confirms every instruction
    /// and waits until it is settled; its id.
    pub async fn close_and_settle_window(&self) -> i64 {
        let window = self.close_window().await;
        self.wait_for_window_state(window, &["netted"]).await;
        let listed = self.settlements(window).await;
        for i in listed.body["settlements"].as_array().expect("settlements") {
            self.confirm_instruction(i["id"].as_str().expect("an id"))
                .await;
        }
        self.wait_for_window_state(window, &["settled"]).await;
        window
    }

    /// Submits a transfer the test needs accepted; fails the test at once otherwise.
    pub async fn submit_accepted(&self, body: &Value) -> Reply {
        let reply = self.submit(body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply
    }

    /// `POST /api/v1/banks`, answered as it is (for tests of refusals).
    pub async fn post_bank(&self, body: &Value) -> Reply {
        self.post("/api/v1/banks", body).await
    }

    /// Creates a bank; fails the test unless it is created.
    pub async fn create_bank(&self, body: &Value) -> Reply {
        let reply = self.post_bank(body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
    }

    /// `PATCH /api/v1/banks/{bank}`, answered as it is (for tests of refusals).
    pub async fn patch_bank(&self, bank: &str, body: &Value) -> Reply {
        self.patch(&format!("/api/v1/banks/{bank}"), body).await
    }

    /// Changes a bank; fails the test unless the change is made.
    pub async fn update_bank(&self, bank: &str, body: &Value) -> Reply {
        let reply = self.patch_bank(bank, body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    }

    /// Sets a bank's net debit cap in one currency.
    pub async fn set_cap(&self, bank: &str, currency: &str, cap: &str) {
        self.update_bank(bank, &json!({ "net_debit_caps": { currency: cap } }))
            .await;
    }

    /// `POST /api/v1/corridors`, answered as it is (for tests of refusals).
    pub async fn post_corridor(&self, body: &Value) -> Reply {
        self.post("/api/v1/corridors", body).await
    }

    /// Creates a corridor; fails the test unless it is created.
    pub async fn create_corridor(&self, body: &Value) -> Reply {
        let reply = self.post_corridor(body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
    }

    /// `PATCH /api/v1/corridors/{id}`, answered as it is (for tests of refusals).
    pub async fn patch_corridor(&self, id: &str, body: &Value) -> Reply {
        self.patch(&format!("/api/v1/corridors/{id}"), body).await
    }

    /// Changes a corridor; fails the test unless the change is made.
    pub async fn update_corridor(&self, id: &str, body: &Value) -> Reply {
        let reply = self.patch_corridor(id, body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    }

    /// The id of the window open now.
    pub async fn current_window_id(&self) -> i64 {
        let reply = self.get("/api/v1/windows/current").await;
        reply.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no window id in {}", reply.body))
    }

    /// Closes the current window; its id.
    pub async fn close_window(&self) -> i64 {
        let reply = self.post("/api/v1/windows/current/close", &json!({})).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.body["closed_window_id"].as_i64().unwrap()
    }

    pub async fn window(&self, id: i64) -> Reply {
        self.get(&format!("/api/v1/windows/{id}")).await
    }

    /// The settlement instructions of one window.
    pub async fn settlements(&self, window: i64) -> Reply {
        self.get(&format!("/api/v1/settlements?window_id={window}"))
            .await
    }

    /// `POST /api/v1/settlements/{id}/confirm`, answered as it is (for tests of
    /// refusals).
    pub async fn post_confirm(&self, id: &str) -> Reply {
        self.post(&format!("/api/v1/settlements/{id}/confirm"), &json!({}))
            .await
    }

    /// Confirms a settlement instruction; fails the test unless the answer is 200.
    pub async fn confirm_instruction(&self, id: &str) -> Reply {
        let reply = self.post_confirm(id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    }

    /// Marks a settlement instruction failed; fails the test unless the answer is 200.
    pub async fn fail_instruction(&self, id: &str) -> Reply {
        let reply = self
            .post(&format!("/api/v1/settlements/{id}/fail"), &json!({}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    }

    /// Asserts that every rule `deltran audit` checks holds on this test's data.
    pub async fn assert_audit_clean(&self) {
        for check in self.store.audit().await.expect("audit runs") {
            assert!(
                check.violations.is_empty(),
                "{}: {:?}",
                check.rule,
                check.violations
            );
        }
    }

    /// Polls window `window` until it is in one of `states`, up to 10 s; its view.
    pub async fn wait_for_window_state(&self, window: i64, states: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..400 {
            last = self.window(window).await.body;
            if states.iter().any(|s| last["state"] == *s) {
                return last;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("window {window} never reached {states:?}: {last}");
    }

    /// A connection straight to this test's database, for recomputing from the store.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = self
            .database
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        actix_web::rt::spawn(connection);
        client
    }

    /// `SELECT <expr>` over this test's database, as text.
    pub async fn scalar(&self, sql: &str) -> String {
        let client = self.sql().await;
        let row = client
            .query_one(&format!("SELECT ({sql})::text"), &[])
            .await
            .expect("query");
        row.get::<_, Option<String>>(0).unwrap_or_default()
    }
}

/// A transfer body from ICICI to ENBD in INR.
pub fn inr_to_aed(amount: Value) -> Value {
    json!({
        "sender_bank": "ICICI",
        "receiver_bank": "ENBD",
        "amount": amount,
        "from_currency": "INR",
        "to_currency": "AED",
    })
}

/// Polls `check` until it is true, up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A WebSocket client of the engine's `/ws`.
pub struct WsClient {
    framed: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
}

impl WsClient {
    /// A feed connection as the operator.
    pub async fn connect(app: &TestApp) -> WsClient {
        Self::connect_as(app, &app.keys.operator).await
    }

    /// A feed connection with `key` (in the `Authorization` header).
    pub async fn connect_as(app: &TestApp, key: &str) -> WsClient {
        let url = format!("{}/ws", app.address.replace("http://", "ws://"));
        let (_, framed) = awc::Client::new()
            .ws(url)
            .bearer_auth(key)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("websocket connects");
        WsClient { framed }
    }

    pub async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.framed
            .send(awc::ws::Message::Text(text.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, message: &Value) {
        self.send_text(&message.to_string()).await;
    }

    /// A protocol ping: the engine drops a client it has not heard from in 10 s, so a
    /// client that does not read (and so never sees the engine's pings) sends these.
    pub async fn send_ping(&mut self) {
        use futures_util::SinkExt;
        self.framed
            .send(awc::ws::Message::Ping("alive".into()))
            .await
            .expect("send");
    }

    /// The next JSON message; pings are answered with pongs, as a browser does, so
    /// that the engine's heartbeat keeps a reading client connected however long a
    /// test runs. `None` when the server closed or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        use futures_util::{SinkExt, StreamExt};
        loop {
            let frame = actix_web::rt::time::timeout(wait, self.framed.next())
                .await
                .ok()??;
            match frame.ok()? {
                awc::ws::Frame::Text(bytes) => {
                    return Some(serde_json::from_slice(&bytes).expect("server sends JSON"))
                }
                awc::ws::Frame::Ping(payload) => {
                    // A failed send means the connection is gone: the next read says so.
                    let _ = self.framed.send(awc::ws::Message::Pong(payload)).await;
                }
                awc::ws::Frame::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next message of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no {kind} message"));
            if message["type"] == kind {
                return message;
            }
        }
    }
}

/// The `deltran` binary run as a child process: `serve` on an embedded cluster under
/// `dir/data`, JSON log lines appended to `dir/engine.log`. It listens on a port the
/// kernel picks and says which in its log, so no other test of this process can take
/// the port between a look-up and the engine's bind, nor across a restart.
pub struct EngineProcess {
    pub child: std::process::Child,
    pub port: u16,
}

impl EngineProcess {
    pub fn start(dir: &Path, extra: &[&str]) -> EngineProcess {
        let log_path = dir.join("engine.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        // Earlier runs on the same directory logged before this offset.
        let from = log.metadata().unwrap().len();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_deltran"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(extra)
            .env_remove("DATABASE_URL")
            .env("DELTRAN_LOG_FORMAT", "json")
            // The line that says the port is at info.
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("engine starts");
        let mut engine = EngineProcess { child, port: 0 };
        engine.port = engine.wait_for_port(&log_path, from);
        engine
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The operator key the engine wrote to `<data dir>/api-keys` at its first start.
    pub fn operator_key(dir: &Path) -> String {
        let keys = std::fs::read_to_string(dir.join("data").join("api-keys")).expect("keys file");
        keys.lines()
            .find_map(|line| line.strip_prefix("operator - "))
            .expect("an operator key")
            .to_string()
    }

    fn wait_for_port(&mut self, log_path: &Path, from: u64) -> u16 {
        use std::io::{Read, Seek};
        for _ in 0..1200 {
            let mut text = String::new();
            let mut log = std::fs::File::open(log_path).unwrap();
            log.seek(std::io::SeekFrom::Start(from)).unwrap();
            log.read_to_string(&mut text).unwrap();
            let port = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["fields"]["message"] == "DelTran engine ready")
                .and_then(|line| line["fields"]["port"].as_u64());
            if let Some(port) = port {
                return port.try_into().expect("a port");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("engine exited with {status} before listening:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "engine did not say its port within 60 s; see {}",
            log_path.display()
        );
    }

    pub fn kill_9(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill_9();
        }
    }
}

/// Sender, receiver and currencies of five flows over the reference corridor in which
/// every bank sends to a bank of the other country (ICICI also receives INR, from ADCB).
pub const REFERENCE_FLOWS: [(&str, &str, &str, &str); 5] = [
    ("ICICI", "ENBD", "INR", "AED"),
    ("HDFC", "ADCB", "INR", "AED"),
    ("AXIS", "ENBD", "INR", "AED"),
    ("ENBD", "HDFC", "AED", "INR"),
    ("ADCB", "ICICI", "AED", "INR"),
];
