//! Open-loop load generator for `POST /api/v1/transfers`: each of `connections`
//! keep-alive connections sends at `rate / connections` per second on a fixed
//! schedule, and a request's latency runs from its *scheduled* send time, so a slow
//! answer is charged for the requests it delayed (as wrk2 does). It runs on one
//! thread with hand-written HTTP/1.1 so that it leaves the other core to the engine.
//!
//!   DELTRAN_KEY=dtk_… loadgen --url http://127.0.0.1:8080 --rate 12000 --duration-s 20
//!
//! Every request carries `Authorization: Bearer <key>` (`--key` or `DELTRAN_KEY`;
//! an operator key, which may submit as every bank).

use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of the engine (http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Requests per second, all connections together.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    #[arg(long, default_value_t = 128)]
    connections: u64,
    /// Prefix of every idempotency key, to count the run's transfers afterwards.
    #[arg(long, default_value = "loadgen")]
    run_id: String,
    /// Also print p99 and max latency for each second of the run.
    #[arg(long)]
    timeline: bool,
    /// The API key sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "DELTRAN_KEY", hide_env_values = true)]
    key: String,
}

#[path = "pairs.rs"]
mod pairs;
use pairs::PAIRS;

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    /// The second of the run each latency was scheduled in, for `--timeline`.
    seconds: Vec<u32>,
    accepted: u64,
    other: u64,
    errors: u64,
}

async fn connection(host: String, conn: u64, args: std::sync::Arc<Args>, start: Instant) -> Tally {
    let mut tally = Tally::default();
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate as f64);
    let end = start + Duration::from_secs(args.duration_s);
    // Spread the connections' schedules evenly over one interval.
    let mut next = start + interval.mul_f64(conn as f64 / args.connections as f64);
    let Ok(stream) = TcpStream::connect(&host).await else {
        tally.errors += 1;
        return tally;
    };
    stream.set_nodelay(true).ok();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::new();
    let mut k: u64 = 0;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let (sender, receiver, from, to) = PAIRS[((conn + k) % 5) as usize];
        let payload = format!(
            r#"{{"sender_bank":"{sender}","receiver_bank":"{receiver}","amount":"{}.{:02}","from_currency":"{from}","to_currency":"{to}","idempotency_key":"{}-{conn}-{k}"}}"#,
            100 + k % 900,
            k % 100,
            args.run_id
        );
        let request = format!(
            "POST /api/v1/transfers HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            args.key,
            payload.len()
        );
        if write.write_all(request.as_bytes()).await.is_err() {
            tally.errors += 1;
            return tally;
        }
        // Status line, headers, body.
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            tally.errors += 1;
            return tally;
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                tally.errors += 1;
                return tally;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        if read.read_exact(&mut body).await.is_err() {
            tally.errors += 1;
            return tally;
        }
        let latency = next.elapsed();
        tally
            .latencies_us
            .push(latency.as_micros().min(u32::MAX as u128) as u32);
        tally
            .seconds
            .push(next.saturating_duration_since(start).as_secs() as u32);
        if status == 202 {
            tally.accepted += 1;
        } else {
            tally.other += 1;
        }
        k += 1;
        next += interval;
    }
    tally
}

fn main() {
    let args = std::sync::Arc::new(Args::parse());
    let host = args
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now() + Duration::from_millis(200);
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|c| tokio::spawn(connection(host.clone(), c, args.clone(), start)))
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.expect("task"));
        }
        tallies
    });
    let elapsed = start.elapsed().as_secs_f64();
    if args.timeline {
        let mut by_second: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for t in &tallies {
            for (s, l) in t.seconds.iter().zip(&t.latencies_us) {
                by_second.entry(*s).or_default().push(*l);
            }
        }
        for (second, mut l) in by_second {
            l.sort_unstable();
            let p99 = l[((l.len() - 1) as f64 * 0.99) as usize] as f64 / 1000.0;
            let max = *l.last().unwrap() as f64 / 1000.0;
            println!(
                "second={second} requests={} p99_ms={p99:.2} max_ms={max:.2}",
                l.len()
            );
        }
    }
    let mut latencies: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.clone())
        .collect();
    latencies.sort_unstable();
    let accepted: u64 = tallies.iter().map(|t| t.accepted).sum();
    let other: u64 = tallies.iter().map(|t| t.other).sum();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[i] as f64 / 1000.0
    };
    println!("target_rate={}", args.rate);
    println!("accepted={accepted} other={other} connection_errors={errors}");
    println!("acknowledged_per_second={:.0}", accepted as f64 / elapsed);
    for p in [50.0, 90.0, 99.0, 99.9] {
        println!("latency_p{p}_ms={:.2}", percentile(p));
    }
    println!(
        "latency_max_ms={:.2}",
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}
