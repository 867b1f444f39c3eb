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
//!
//! By default the five flows of `pairs.rs` take turns, so every sender bank sends a
//! fifth of the transfers. `--hot-share 0.7` skews the load (loadtest/fairness.sh):
//! 70% of the transfers come from the first flow's sender (the hot bank) and the four
//! others share the rest evenly. Either way the latencies are also reported for each
//! sender, and for the hot bank against the four others pooled.

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
    /// The fraction of the transfers (0 to 1) sent by the first flow's sender, the
    /// hot bank; the four other flows share the rest evenly. Without it the five
    /// flows take turns.
    #[arg(long, value_parser = hot_share)]
    hot_share: Option<f64>,
}

fn hot_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("`{s}` is not a fraction from 0 to 1")),
    }
}

#[path = "pairs.rs"]
mod pairs;
use pairs::PAIRS;

/// The shares below are counted in millionths, so that which requests are the hot
/// bank's is integer arithmetic: the same on every run, with no rounding drift.
const MILLION: u64 = 1_000_000;

/// The index in `PAIRS` of the flow the `n`th request of a sequence sends.
///
/// Without a hot share the five flows take turns. With one, the `n`th request is the
/// hot bank's (`PAIRS[0]`) when the count of hot requests among the first `n + 1`,
/// `⌊(n + 1) · share⌋`, is one more than among the first `n`: the hot requests are
/// spread as evenly as they can be over the sequence (never in runs longer than
/// needed), and any stretch of it holds the share to within one request. The others
/// go round the four other flows in the order they come, so those share the rest
/// evenly. No random numbers: a rerun sends the same mix in the same order.
fn flow(n: u64, hot_millionths: Option<u64>) -> usize {
    let Some(hot) = hot_millionths else {
        return (n % PAIRS.len() as u64) as usize;
    };
    let hot_before = |n: u64| n * hot / MILLION;
    if hot_before(n + 1) > hot_before(n) {
        0
    } else {
        // This request's place among the ones that are not the hot bank's.
        let cold_before = n - hot_before(n);
        1 + (cold_before % (PAIRS.len() as u64 - 1)) as usize
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    /// The second of the run each latency was scheduled in, for `--timeline`.
    seconds: Vec<u32>,
    /// The flow (index in `PAIRS`) of each latency, to report them by sender.
    flows: Vec<u8>,
    /// Requests answered 202, by flow: the per-sender lines report them too.
    accepted_by_flow: [u64; PAIRS.len()],
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
    let hot_millionths = args.hot_share.map(|s| (s * MILLION as f64).round() as u64);
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        // Every connection carries the whole mix (the hot bank has no connections of
        // its own: its requests queue behind the others' on the same sockets, as
        // through a shared gateway); starting each connection's sequence at its own
        // place keeps the connections, which send one after the other, from all
        // choosing the same flow at once.
        let flow = flow(conn + k, hot_millionths);
        let (sender, receiver, from, to) = PAIRS[flow];
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
        tally.flows.push(flow as u8);
        if status == 202 {
            tally.accepted += 1;
            tally.accepted_by_flow[flow] += 1;
        } else {
            tally.other += 1;
        }
        k += 1;
        next += interval;
    }
    tally
}

/// The `p`th percentile of sorted latencies (µs), in ms; NaN when there are none.
fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[i] as f64 / 1000.0
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
    println!("target_rate={}", args.rate);
    println!("accepted={accepted} other={other} connection_errors={errors}");
    println!("acknowledged_per_second={:.0}", accepted as f64 / elapsed);
    for p in [50.0, 90.0, 99.0, 99.9] {
        println!("latency_p{p}_ms={:.2}", percentile(&latencies, p));
    }
    println!(
        "latency_max_ms={:.2}",
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    print_by_sender(&tallies);
}

/// One line for each sender bank (requests, p50, p99, requests answered 202), then
/// the hot bank's p99 (`PAIRS[0]`'s sender) against the four others' latencies
/// pooled: whether a bank sending most of the load slows the small senders down
/// (loadtest/fairness.sh compares them with a uniform run's).
fn print_by_sender(tallies: &[Tally]) {
    let mut by_flow: [Vec<u32>; PAIRS.len()] = Default::default();
    let mut accepted = [0u64; PAIRS.len()];
    for t in tallies {
        for (flow, latency) in t.flows.iter().zip(&t.latencies_us) {
            by_flow[*flow as usize].push(*latency);
        }
        for (sum, a) in accepted.iter_mut().zip(t.accepted_by_flow) {
            *sum += a;
        }
    }
    for (flow, latencies) in by_flow.iter_mut().enumerate() {
        latencies.sort_unstable();
        println!(
            "sender={} requests={} p50_ms={:.2} p99_ms={:.2} accepted={}",
            PAIRS[flow].0,
            latencies.len(),
            percentile(latencies, 50.0),
            percentile(latencies, 99.0),
            accepted[flow]
        );
    }
    let mut others: Vec<u32> = by_flow[1..].concat();
    others.sort_unstable();
    println!("hot_p99_ms={:.2}", percentile(&by_flow[0], 99.0));
    println!("others_p99_ms={:.2}", percentile(&others, 99.0));
}
