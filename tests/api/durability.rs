//! Rule 1 (docs/ARCHITECTURE.md): a 2xx answer means the transfer is committed. The engine binary runs
//! as a child process with its embedded Postgres, is killed with SIGKILL right after
//! an acknowledgement while other submissions are in flight, and restarted on the same
//! data directory: every acknowledged transfer is there, once.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{scratch_dir, EngineProcess};

/// Acknowledgements to collect before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 1500;
/// Concurrent submitters.
const SUBMITTERS: usize = 16;

/// A client that calls as the operator whose key the engine wrote at its first start.
fn http_client(dir: &std::path::Path) -> awc::Client {
    awc::Client::builder()
        .add_default_header((
            "authorization",
            format!("Bearer {}", EngineProcess::operator_key(dir)),
        ))
        .timeout(Duration::from_secs(30))
        .connector(awc::Connector::new().limit(100))
        .finish()
}

async fn wait_healthy(client: &awc::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/health")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("engine did not become healthy");
}

#[actix_web::test]
async fn every_acknowledged_transfer_survives_a_kill_9_of_the_engine() {
    let dir = scratch_dir("deltran-durability");
    let mut engine = EngineProcess::start(&dir, &[]);
    let client = http_client(&dir);
    let base = engine.base();
    wait_healthy(&client, &base).await;

    let acknowledged: Arc<Mutex<HashMap<String, (String, String)>>> = Default::default();
    let count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(Mutex::new(false));
    let pid = engine.child.id() as i32;
    let submitters = (0..SUBMITTERS).map(|worker| {
        let (client, base) = (client.clone(), base.clone());
        let (acknowledged, count, killed) = (acknowledged.clone(), count.clone(), killed.clone());
        async move {
            for i in 0.. {
                let (sender, receiver, from, to) = if (worker + i) % 3 == 0 {
                    ("ENBD", "AXIS", "AED", "INR")
                } else {
                    ("ICICI", "ADCB", "INR", "AED")
                };
                let amount = format!("{}.{:02}", 1000 + worker * 7 + i, i % 100);
                let body = json!({"sender_bank": sender, "receiver_bank": receiver,
                    "amount": amount, "from_currency": from, "to_currency": to,
                    "idempotency_key": format!("d-{worker}-{i}")});
                let Ok(mut response) = client
                    .post(format!("{base}/api/v1/transfers"))
                    .send_json(&body)
                    .await
                else {
                    return; // the engine is gone
                };
                if response.status() != 202 {
                    return;
                }
                let Ok(reply) = response.json::<Value>().await else {
                    return;
                };
                let id = reply["transaction_id"].as_str().unwrap().to_string();
                acknowledged
                    .lock()
                    .unwrap()
                    .insert(id, (sender.to_string(), amount));
                if count.fetch_add(1, Ordering::SeqCst) + 1 == ACKNOWLEDGED_BEFORE_KILL {
                    let mut killed = killed.lock().unwrap();
                    // SAFETY: a signal to the engine child, right after this ack.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    *killed = true;
                }
                if *killed.lock().unwrap() {
                    return;
                }
            }
        }
    });
    futures_util::future::join_all(submitters).await;
    engine.kill_9();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL);

    let mut engine = EngineProcess::start(&dir, &[]);
    let base = engine.base();
    wait_healthy(&client, &base).await;
    // Every stored transfer, page by page.
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut sent_by_icici = rust_decimal::Decimal::ZERO;
    let mut cursor = String::new();
    loop {
        let mut response = client
            .get(format!("{base}/api/v1/transfers?limit=1000{cursor}"))
            .send()
            .await
            .unwrap();
        let page: Value = response.json().limit(64 << 20).await.unwrap();
        for t in page["transactions"].as_array().unwrap() {
            *stored
                .entry(t["transaction_id"].as_str().unwrap().to_string())
                .or_default() += 1;
            if t["sender_bank"] == "ICICI" && t["status"] == "accepted" {
                sent_by_icici += t["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap();
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let missing: Vec<&String> = acknowledged
        .keys()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged transfers lost: {missing:?}",
        missing.len()
    );
    assert!(
        stored.values().all(|n| *n == 1),
        "a transfer is stored twice"
    );
    // The restarted bank actor's exposure is what the store says.
    let mut response = client
        .get(format!("{base}/api/v1/banks/ICICI/positions"))
        .send()
        .await
        .unwrap();
    let positions: Value = response.json().await.unwrap();
    let inr = positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["currency"] == "INR")
        .unwrap();
    assert_eq!(
        inr["debits"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        sent_by_icici
    );
    // The windows' running sums, which the restarted engine rebuilt the books from,
    // are exactly the stored transfers': a batch's sums commit with its rows or not
    // at all, whatever the kill interrupted.
    assert_audit_clean(&dir);
    engine.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The audit, run as an operator would while the engine runs, finds nothing wrong.
fn assert_audit_clean(dir: &std::path::Path) {
    let audit = Command::new(env!("CARGO_BIN_EXE_deltran"))
        .args(["audit", "--data-dir"])
        .arg(dir.join("data"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "audit failed:\n{report}");
    assert!(report.contains("0 violated"), "{report}");
}

#[actix_web::test]
async fn a_window_killed_while_closing_is_netted_exactly_once_after_restart() {
    let dir = scratch_dir("deltran-close-kill");
    // Windows close only when asked, so the kill lands right after a cut-off.
    let manual = ["--window-duration-ms", "3600000"];
    let mut engine = EngineProcess::start(&dir, &manual);
    let client = http_client(&dir);
    let base = engine.base();
    wait_healthy(&client, &base).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let submitters = (0..8).map(|worker| {
        let (client, base, acknowledged, stop) = (
            client.clone(),
            base.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let body = json!({"sender_bank": "AXIS", "receiver_bank": "ADCB",
                    "amount": format!("{}.25", 10 + worker + i), "from_currency": "INR",
                    "to_currency": "AED"});
                let Ok(mut response) = client
                    .post(format!("{base}/api/v1/transfers"))
                    .send_json(&body)
                    .await
                else {
                    return;
                };
                if response.status() == 202 {
                    if let Ok(reply) = response.json::<Value>().await {
                        let id = reply["transaction_id"].as_str().unwrap().to_string();
                        acknowledged.lock().unwrap().push(id);
                    }
                }
                i += 1;
            }
        }
    });
    let closer = async {
        actix_web::rt::time::sleep(Duration::from_millis(700)).await;
        let mut response = client
            .post(format!("{base}/api/v1/windows/current/close"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        // SAFETY: a signal to the engine child, right after its cut-off.
        unsafe { libc::kill(engine.child.id() as i32, libc::SIGKILL) };
        stop.store(true, Ordering::SeqCst);
        let reply: Value = response.json().await.unwrap();
        reply["closed_window_id"].as_i64().unwrap()
    };
    let (_, closed) =
        futures_util::future::join(futures_util::future::join_all(submitters), closer).await;
    engine.kill_9();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());

    let mut engine = EngineProcess::start(&dir, &manual);
    let base = engine.base();
    wait_healthy(&client, &base).await;
    let mut state = Value::Null;
    for _ in 0..200 {
        let mut response = client
            .get(format!("{base}/api/v1/windows/{closed}"))
            .send()
            .await
            .unwrap();
        state = response.json::<Value>().limit(16 << 20).await.unwrap();
        if state["state"] == "netted" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "netted", "{state}");
    // Every acknowledged transfer is stored and in a window netted (or still open).
    for id in &acknowledged {
        let mut response = client
            .get(format!("{base}/api/v1/transfers/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged transfer {id} lost");
        let t: Value = response.json().await.unwrap();
        let window = t["window_id"].as_i64().unwrap();
        assert!(window <= closed + 1);
        assert_eq!(
            t["status"],
            if window <= closed {
                "netted"
            } else {
                "accepted"
            }
        );
    }
    assert_audit_clean(&dir);
    engine.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
