//! WebSocket fan-out benchmark: `--subscribers` clients subscribe to `windows` and
//! `notifications`; every `--close-every-ms` the current window is closed over HTTP
//! and each client notes when its `window_netted` arrives. Prints the delay from the
//! close request to each subscriber's message (p50/p99/max over all subscribers and
//! closes) and, per close, to the *last* subscriber. Submissions run separately
//! (loadtest/ws_bench.sh runs loadgen beside it). One thread, hand-written WebSocket
//! client frames, so it leaves the other core to the engine.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 10)]
    closes: usize,
    #[arg(long, default_value_t = 2000)]
    close_every_ms: u64,
    /// The API key: sent as `Authorization: Bearer <key>` on the WebSocket handshake
    /// and on the close requests (which need an operator key).
    #[arg(long, env = "DELTRAN_KEY", hide_env_values = true)]
    key: String,
}

/// One masked client text frame (clients must mask; the mask may be fixed).
fn text_frame(text: &str) -> Vec<u8> {
    client_frame(0x1, text.as_bytes())
}

fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80u8 | opcode];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads server frames (unmasked), answers pings (the server drops silent clients)
/// and calls `on_text` for each text frame.
async fn read_frames(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    mut on_text: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        // Parse every complete frame in the buffer.
        loop {
            if buf.len() < 2 {
                break;
            }
            let opcode = buf[0] & 0x0f;
            let mut len = (buf[1] & 0x7f) as usize;
            let mut header = 2;
            if len == 126 {
                if buf.len() < 4 {
                    break;
                }
                len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                header = 4;
            } else if len == 127 {
                if buf.len() < 10 {
                    break;
                }
                len = u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize;
                header = 10;
            }
            if buf.len() < header + len {
                break;
            }
            if opcode == 1 {
                if let Ok(text) = std::str::from_utf8(&buf[header..header + len]) {
                    on_text(text);
                }
            } else if opcode == 8 {
                return Ok(());
            } else if opcode == 9 {
                let pong = client_frame(0xA, &buf[header..header + len]);
                write.write_all(&pong).await?;
            }
            buf.drain(..header + len);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn http_post(addr: &str, key: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("engine reachable");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

type Received = Rc<RefCell<HashMap<i64, Vec<Instant>>>>;

async fn subscriber(addr: String, key: String, received: Received, ready: Rc<RefCell<usize>>) {
    let stream = TcpStream::connect(&addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let (mut read, mut write) = stream.into_split();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    write.write_all(handshake.as_bytes()).await.unwrap();
    // Read the 101 answer up to the blank line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        read.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "handshake refused: {}",
        String::from_utf8_lossy(&head)
    );
    let subscribe = r#"{"type":"subscribe","channels":["windows","notifications"]}"#;
    write.write_all(&text_frame(subscribe)).await.unwrap();
    let _ = read_frames(&mut read, &mut write, |text| {
        if text.contains(r#""type":"subscribed""#) {
            *ready.borrow_mut() += 1;
        } else if text.contains(r#""type":"window_netted""#) {
            let now = Instant::now();
            let id = text
                .split(r#""data":{"#)
                .nth(1)
                .and_then(|d| d.split(r#""id":"#).nth(1))
                .and_then(|s| s.split([',', '}']).next())
                .and_then(|s| s.parse::<i64>().ok());
            if let Some(id) = id {
                received.borrow_mut().entry(id).or_default().push(now);
            }
        }
    })
    .await;
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let received: Received = Rc::new(RefCell::new(HashMap::new()));
        let ready = Rc::new(RefCell::new(0usize));
        for _ in 0..args.subscribers {
            tokio::task::spawn_local(subscriber(
                args.addr.clone(),
                args.key.clone(),
                received.clone(),
                ready.clone(),
            ));
        }
        while *ready.borrow() < args.subscribers {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("subscribers_ready={}", args.subscribers);
        let mut closes: Vec<(i64, Instant)> = Vec::new();
        for _ in 0..args.closes {
            tokio::time::sleep(Duration::from_millis(args.close_every_ms)).await;
            let started = Instant::now();
            let answer = http_post(&args.addr, &args.key, "/api/v1/windows/current/close").await;
            let id = answer
                .split(r#""closed_window_id":"#)
                .nth(1)
                .and_then(|s| s.split([',', '}']).next())
                .and_then(|s| s.parse::<i64>().ok())
                .expect("close answered with the window id");
            closes.push((id, started));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let received = received.borrow();
        let mut all: Vec<f64> = Vec::new();
        let mut last: Vec<f64> = Vec::new();
        let mut missing = 0;
        for (id, started) in &closes {
            let times = received.get(id).cloned().unwrap_or_default();
            missing += args.subscribers - times.len();
            let delays: Vec<f64> = times
                .iter()
                .map(|t| t.duration_since(*started).as_secs_f64() * 1000.0)
                .collect();
            if let Some(max) = delays
                .iter()
                .cloned()
                .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
            {
                last.push(max);
            }
            all.extend(delays);
        }
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        last.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!(
            "closes={} deliveries={} missing={missing}",
            closes.len(),
            all.len()
        );
        println!(
            "close_to_netted_ms p50={:.2} p99={:.2} max={:.2}",
            pct(&all, 0.5),
            pct(&all, 0.99),
            all.last().unwrap()
        );
        let mut first: Vec<f64> = closes
            .iter()
            .filter_map(|(id, started)| {
                received
                    .get(id)
                    .and_then(|t| t.iter().min())
                    .map(|t| t.duration_since(*started).as_secs_f64() * 1000.0)
            })
            .collect();
        first.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "close_to_first_subscriber_ms p50={:.2} max={:.2}",
            pct(&first, 0.5),
            first.last().unwrap()
        );
        println!(
            "close_to_last_subscriber_ms p50={:.2} max={:.2} (per close: {:?})",
            pct(&last, 0.5),
            last.last().unwrap(),
            last.iter()
                .map(|d| (d * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
    });
}
