//! The `deltran` command line: help, a clear message when PostgreSQL is missing, and a
//! clean stop on SIGTERM that also stops the embedded cluster.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{scratch_dir, EngineProcess};

fn deltran() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deltran"));
    command
        .env_remove("DATABASE_URL")
        .env("DELTRAN_LOG_FORMAT", "pretty");
    command
}

#[test]
fn serve_help_lists_every_setting_with_its_variable() {
    let output = deltran().args(["serve", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--listen",
        "DELTRAN_LISTEN",
        "--data-dir",
        "DATABASE_URL",
        "--batch-size-max",
        "--submissions-in-flight-max",
        "--body-size-max-bytes",
        "--config",
    ] {
        assert!(help.contains(setting), "{setting} missing from:\n{help}");
    }
}

#[test]
fn a_missing_postgres_installation_gets_a_message_saying_what_to_install() {
    let dir = scratch_dir("deltran-nopg");
    let output = deltran()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("DELTRAN_PG_BIN", dir.join("no-such-dir"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apt-get install postgresql-15"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

fn health_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[test]
fn sigterm_stops_the_engine_and_its_embedded_cluster_cleanly() {
    let dir = scratch_dir("deltran-sigterm");
    let mut engine = EngineProcess::start(&dir, &[]);
    let (port, child) = (engine.port, &mut engine.child);
    let pid_file = dir.join("data/pg/postmaster.pid");
    let mut up = false;
    // Serving /health means the server runs, with its signal handlers installed.
    for _ in 0..300 {
        if health_answers(port) {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "engine did not listen");
    assert!(pid_file.exists(), "embedded postgres is running");
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(!pid_file.exists(), "the embedded cluster was stopped");
    let _ = std::fs::remove_dir_all(dir);
}

/// `GET path` on the engine at `port` with `key`: the status code.
fn status_with_key(port: u16, path: &str, key: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer[9..12].parse().unwrap()
}

/// The postmaster and every backend it started (each backend leads its own process
/// group, so a signal to the postmaster's group would miss them).
fn kill_postgres(postmaster: i32) {
    let children = Command::new("ps")
        .args(["-o", "pid=", "--ppid", &postmaster.to_string()])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&children.stdout).split_whitespace() {
        // SAFETY: plain signals to processes of our own cluster.
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
    }
    unsafe { libc::kill(postmaster, libc::SIGKILL) };
}

/// The pid in a cluster's `postmaster.pid`, if the file is there.
fn postmaster_pid(pid_file: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[test]
fn a_killed_embedded_postgres_is_started_again_and_the_engine_serves_again() {
    let dir = scratch_dir("deltran-pgkill");
    let engine = EngineProcess::start(&dir, &[]);
    let data_dir = dir.join("data");
    let written = std::fs::read_to_string(data_dir.join("api-keys")).unwrap();
    let operator = written
        .lines()
        .find_map(|l| l.strip_prefix("operator - "))
        .unwrap()
        .to_string();
    let pid_file = data_dir.join("pg/postmaster.pid");
    let first = postmaster_pid(&pid_file).expect("the cluster runs");
    assert_eq!(
        status_with_key(engine.port, "/api/v1/windows/current", &operator),
        200
    );
    kill_postgres(first);
    // The engine's keeper starts a new postmaster and the store reconnects.
    let mut status = 0;
    for _ in 0..300 {
        let restarted = postmaster_pid(&pid_file).is_some_and(|pid| pid != first);
        if restarted {
            status = status_with_key(engine.port, "/api/v1/windows/current", &operator);
            if status == 200 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200, "the engine serves from the restarted cluster");
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keys_are_made_listed_and_revoked_from_the_command_line_while_the_engine_runs() {
    let dir = scratch_dir("deltran-keys");
    let engine = EngineProcess::start(&dir, &[]);
    let data_dir = dir.join("data");
    // The first start wrote an operator key and one key per bank, readable by root only.
    let file = data_dir.join("api-keys");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let written = std::fs::read_to_string(&file).unwrap();
    for holder in ["operator -", "bank ICICI", "bank ENBD"] {
        assert!(written.contains(holder), "{holder} missing from {written}");
    }
    let keys = |args: &[&str]| {
        let output = deltran()
            .arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let made = keys(&["create", "--role", "auditor", "--label", "ci"]);
    let key = made.lines().last().unwrap().to_string();
    assert!(
        key.starts_with("dtk_"),
        "the key alone on the last line: {made}"
    );
    let id = &key[4..36];
    // The engine re-reads its keys every second.
    let mut status = 0;
    for _ in 0..50 {
        status = status_with_key(engine.port, "/api/v1/keys", &key);
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200, "the auditor key works");
    let listed = keys(&["list"]);
    assert!(listed.contains(id) && !listed.contains(&key), "{listed}");
    keys(&["revoke", id]);
    for _ in 0..50 {
        status = status_with_key(engine.port, "/api/v1/keys", &key);
        if status == 401 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 401, "the revoked key is refused");
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}

#[actix_web::test]
async fn sigterm_closes_open_feeds_with_a_close_frame_and_the_engine_exits() {
    use futures_util::StreamExt;
    let dir = scratch_dir("deltran-stop-feeds");
    let mut engine = EngineProcess::start(&dir, &[]);
    let key = EngineProcess::operator_key(&dir);
    let url = format!("ws://127.0.0.1:{}/ws", engine.port);
    let (_, mut feed) = awc::Client::new()
        .ws(url.as_str())
        .bearer_auth(&key)
        .connect()
        .await
        .expect("feed connects");
    let started = std::time::Instant::now();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(engine.child.id() as i32, libc::SIGTERM) };
    let closed = loop {
        match actix_web::rt::time::timeout(Duration::from_secs(5), feed.next()).await {
            Ok(Some(Ok(awc::ws::Frame::Close(reason)))) => break reason,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {:?}", other.map(|f| f.map(|r| r.is_ok()))),
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the feed waited"
    );
    assert_eq!(closed.map(|r| r.code), Some(awc::ws::CloseCode::Away));
    let status = loop {
        if let Some(status) = engine.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        !dir.join("data/pg/postmaster.pid").exists(),
        "the cluster stopped"
    );
    let _ = std::fs::remove_dir_all(dir);
}
