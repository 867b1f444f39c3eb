//! The chaos suite's client (driven by `loadtest/chaos.sh`): steady load that lives
//! through the faults the script injects, and the checks run after each of them.
//!
//!   chaos load   --rate 7500 --duration-s 20 --run-id t01 --acks acks.tsv
//!   chaos verify --data-dir DIR --acks acks.tsv
//!
//! `load` keeps `connections` keep-alive connections, each sending at
//! `rate / connections` per second. It behaves as a careful bank does: a request that
//! got no definite answer (connection refused or cut, a timeout, a 503 or 429) is sent
//! again with the same idempotency key and body until it is answered, so a transfer
//! the engine committed before a crash comes back as a replay instead of twice. Each
//! acknowledged transfer (202) is appended to the acks file (`key<TAB>transaction
//! id`); the run's figures are printed as JSON.
//!
//! `verify` checks, from the store (the engine's embedded cluster, attached to) and the
//! API: every acknowledged transfer is stored exactly once under its id; a sample of
//! acknowledged keys sent again answers the original (a replay); every bank's books
//! as its actor holds them equal the store. Exit 1 on any failure.
//!
//! Both read the operator key from `--key` or `DELTRAN_KEY`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[path = "pairs.rs"]
mod pairs;
use pairs::PAIRS;
const BANKS: [&str; 5] = ["ICICI", "HDFC", "AXIS", "ENBD", "ADCB"];

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Load(LoadArgs),
    Verify(VerifyArgs),
}

#[derive(Parser)]
struct Common {
    /// Base URL of the engine (http only).
    #[arg(long, default_value = "http://127.0.0.1:18095")]
    url: String,
    /// The operator key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "DELTRAN_KEY", hide_env_values = true)]
    key: String,
    /// The file of acknowledged transfers (`key<TAB>id` lines), appended by `load`.
    #[arg(long)]
    acks: PathBuf,
}

#[derive(Parser)]
struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// Requests per second offered, all connections together.
    #[arg(long, default_value_t = 7500)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    #[arg(long, default_value_t = 64)]
    connections: u64,
    /// Prefix of every idempotency key: unique per run, since keys are.
    #[arg(long)]
    run_id: String,
    /// A request unanswered this long counts as a timeout and is sent again.
    #[arg(long, default_value_t = 15_000)]
    timeout_ms: u64,
}

#[derive(Parser)]
struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// The engine's data directory (its embedded cluster is attached to).
    #[arg(long)]
    data_dir: PathBuf,
    /// Acknowledged keys sent again to check they answer the original, at random;
    /// the last acknowledged of each connection are sent again as well.
    #[arg(long, default_value_t = 300)]
    replays: usize,
}

/// The transfer behind an idempotency key `<run>-<conn>-<k>`: the body is a function
/// of the key, so `verify` can send any acknowledged one again.
fn body_for(conn: u64, k: u64, key: &str) -> String {
    let (sender, receiver, from, to) = PAIRS[((conn + k) % 5) as usize];
    format!(
        r#"{{"sender_bank":"{sender}","receiver_bank":"{receiver}","amount":"{}.{:02}","from_currency":"{from}","to_currency":"{to}","idempotency_key":"{key}"}}"#,
        100 + k % 900,
        k % 100
    )
}

fn parse_key(key: &str) -> Option<(u64, u64)> {
    let mut parts = key.rsplitn(3, '-');
    let k = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    Some((conn, k))
}

// ---------------------------------------------------------------------------------
// A minimal HTTP/1.1 client over one keep-alive connection: the load generator
// runs on one thread so that it leaves the other core to the engine.

struct Answer {
    status: u16,
    replayed: bool,
    body: Vec<u8>,
}

struct Connection {
    host: String,
    key: String,
    stream: Option<(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    )>,
}

#[derive(Debug)]
enum Failure {
    /// Could not connect (the engine is down or restarting).
    Refused,
    /// Connected, but the connection broke before a whole answer came back.
    Broken,
    Timeout,
}

impl Connection {
    fn new(host: &str, key: &str) -> Self {
        Connection {
            host: host.to_string(),
            key: key.to_string(),
            stream: None,
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        match tokio::time::timeout(timeout, self.exchange(method, path, body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(failure)) => {
                self.stream = None;
                Err(failure)
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, method: &str, path: &str, body: &str) -> Result<Answer, Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.host)
                .await
                .map_err(|_| Failure::Refused)?;
            stream.set_nodelay(true).ok();
            let (read, write) = stream.into_split();
            self.stream = Some((BufReader::new(read), write));
        }
        let (read, write) = self.stream.as_mut().expect("connected");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.key,
            body.len()
        );
        write
            .write_all(request.as_bytes())
            .await
            .map_err(|_| Failure::Broken)?;
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return Err(Failure::Broken);
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(Failure::Broken)?;
        let (mut length, mut replayed, mut close) = (0usize, false, false);
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return Err(Failure::Broken);
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("idempotent-replayed") {
                    replayed = value == "true";
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0; length];
        read.read_exact(&mut body)
            .await
            .map_err(|_| Failure::Broken)?;
        if close {
            self.stream = None;
        }
        Ok(Answer {
            status,
            replayed,
            body,
        })
    }
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn transaction_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["transaction_id"].as_str().map(str::to_string)
}

// ---------------------------------------------------------------------------------
// load

/// What one second of the run saw, by the second its answers came back in.
#[derive(Default, Clone)]
struct Second {
    acknowledged: u64,
    refused_503: u64,
    failures: u64,
}

#[derive(Default)]
struct Tally {
    acks: Vec<(String, String)>,
    /// Answer latencies of acknowledged requests (one attempt: send to answer), µs.
    latencies_us: Vec<u64>,
    /// The second of the run each of `latencies_us` was answered in.
    latency_seconds: Vec<u64>,
    by_status: BTreeMap<u16, u64>,
    /// The slowest answer of any status (a 503 included), µs: no request may hang.
    slowest_answer_us: u64,
    replayed: u64,
    refused: u64,
    broken: u64,
    timeouts: u64,
    seconds: BTreeMap<u64, Second>,
    /// Answers a careful client cannot retry its way out of (4xx other than 429,
    /// 5xx other than 503), with one example body each.
    unexpected: Vec<String>,
}

async fn connection(conn: u64, args: std::rc::Rc<LoadArgs>, start: Instant) -> Tally {
    let mut tally = Tally::default();
    let host = host_of(&args.common.url);
    let mut client = Connection::new(&host, &args.common.key);
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate as f64);
    let timeout = Duration::from_millis(args.timeout_ms);
    let end = start + Duration::from_secs(args.duration_s);
    let mut next = start + interval.mul_f64(conn as f64 / args.connections as f64);
    let mut k: u64 = 0;
    // `k` moves on only once its transfer is answered for good.
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let key = format!("{}-{conn}-{k}", args.run_id);
        let body = body_for(conn, k, &key);
        let sent = Instant::now();
        let outcome = client
            .request("POST", "/api/v1/transfers", &body, timeout)
            .await;
        let second = start.elapsed().as_secs();
        let slot = tally.seconds.entry(second).or_default();
        let mut answered = true;
        match outcome {
            Ok(answer) => {
                *tally.by_status.entry(answer.status).or_default() += 1;
                tally.slowest_answer_us = tally
                    .slowest_answer_us
                    .max(sent.elapsed().as_micros() as u64);
                match answer.status {
                    202 => {
                        slot.acknowledged += 1;
                        tally.replayed += answer.replayed as u64;
                        tally.latencies_us.push(sent.elapsed().as_micros() as u64);
                        tally.latency_seconds.push(second);
                        let id = transaction_id(&answer.body).unwrap_or_default();
                        tally.acks.push((key, id));
                    }
                    503 | 429 => {
                        slot.refused_503 += (answer.status == 503) as u64;
                        answered = false;
                    }
                    _ => {
                        if tally.unexpected.len() < 5 {
                            tally.unexpected.push(format!(
                                "{} {}",
                                answer.status,
                                String::from_utf8_lossy(&answer.body)
                            ));
                        }
                    }
                }
            }
            Err(failure) => {
                slot.failures += 1;
                answered = false;
                match failure {
                    Failure::Refused => tally.refused += 1,
                    Failure::Broken => tally.broken += 1,
                    Failure::Timeout => tally.timeouts += 1,
                }
            }
        }
        if answered {
            k += 1;
        }
        next += interval;
        // After an outage, go on at the offered rate instead of sending the backlog
        // of the missed schedule at once.
        let now = Instant::now();
        if next + Duration::from_secs(1) < now {
            next = now;
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn load(args: LoadArgs) -> anyhow::Result<()> {
    let args = std::rc::Rc::new(args);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now() + Duration::from_millis(100);
    let tallies: Vec<Tally> = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let tasks: Vec<_> = (0..args.connections)
                    .map(|c| tokio::task::spawn_local(connection(c, args.clone(), start)))
                    .collect();
                let mut tallies = Vec::new();
                for task in tasks {
                    tallies.push(task.await.expect("connection task"));
                }
                tallies
            })
            .await
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut file = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.common.acks)?,
    );
    let mut total = Tally::default();
    let mut acknowledged = 0u64;
    for t in tallies {
        for (key, id) in &t.acks {
            writeln!(file, "{key}\t{id}")?;
        }
        acknowledged += t.acks.len() as u64;
        total.latencies_us.extend(t.latencies_us);
        total.latency_seconds.extend(t.latency_seconds);
        for (status, n) in t.by_status {
            *total.by_status.entry(status).or_default() += n;
        }
        total.replayed += t.replayed;
        total.slowest_answer_us = total.slowest_answer_us.max(t.slowest_answer_us);
        total.refused += t.refused;
        total.broken += t.broken;
        total.timeouts += t.timeouts;
        for (s, second) in t.seconds {
            let slot = total.seconds.entry(s).or_default();
            slot.acknowledged += second.acknowledged;
            slot.refused_503 += second.refused_503;
            slot.failures += second.failures;
        }
        total.unexpected.extend(t.unexpected);
    }
    file.flush()?;
    // p99 of each minute of the run: a soak's latency must stay level.
    let mut by_minute: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (latency, second) in total.latencies_us.iter().zip(&total.latency_seconds) {
        by_minute.entry(second / 60).or_default().push(*latency);
    }
    let p99_by_minute: Vec<f64> = by_minute
        .into_values()
        .map(|mut l| {
            l.sort_unstable();
            percentile(&l, 99.0)
        })
        .collect();
    total.latencies_us.sort_unstable();
    // The longest run of seconds in which nothing was acknowledged: the outage as a
    // client saw it (a fault's downtime plus the recovery).
    let last = total.seconds.keys().max().copied().unwrap_or(0);
    let (mut gap, mut longest) = (0u64, 0u64);
    for s in 0..=last {
        if total.seconds.get(&s).map(|x| x.acknowledged).unwrap_or(0) == 0 {
            gap += 1;
            longest = longest.max(gap);
        } else {
            gap = 0;
        }
    }
    let other_5xx: u64 = total
        .by_status
        .iter()
        .filter(|(s, _)| **s >= 500 && **s != 503)
        .map(|(_, n)| n)
        .sum();
    let summary = json!({
        "run_id": args.run_id,
        "offered_rate": args.rate,
        "seconds": elapsed,
        "acknowledged": acknowledged,
        "acknowledged_per_second": acknowledged as f64 / elapsed,
        "replayed": total.replayed,
        "answers": total.by_status.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "other_5xx": other_5xx,
        "connection_refused": total.refused,
        "connection_broken": total.broken,
        "timeouts": total.timeouts,
        "unexpected": total.unexpected,
        "latency_ms": {
            "p50": percentile(&total.latencies_us, 50.0),
            "p99": percentile(&total.latencies_us, 99.0),
            "max": percentile(&total.latencies_us, 100.0),
            "slowest_answer_of_any_status": total.slowest_answer_us as f64 / 1000.0,
        },
        "p99_ms_by_minute": p99_by_minute,
        "longest_seconds_without_ack": longest,
        "timeline": total.seconds.iter().map(|(s, x)| json!([s, x.acknowledged, x.refused_503, x.failures])).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(())
}

// ---------------------------------------------------------------------------------
// verify

fn read_acks(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut acks = Vec::new();
    for line in file.lines() {
        let line = line?;
        if let Some((key, id)) = line.split_once('\t') {
            acks.push((key.to_string(), id.to_string()));
        }
    }
    Ok(acks)
}

/// A small xorshift: enough to pick a sample, without a dependency for it.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The debits and credits of each bank and currency over windows not yet settled,
/// summed straight from the stored transfers and netted positions: what every bank
/// actor's books must equal once the engine is quiet. A transfer is live while its
/// window is not netted, including a window whose row a cut-off has not written yet.
const BOOKS_FROM_STORE: &str = "
    WITH live AS (SELECT DISTINCT window_id AS id FROM transfers WHERE window_id NOT IN
                    (SELECT id FROM windows WHERE state NOT IN ('open', 'closing'))),
         held AS (SELECT id FROM windows WHERE state IN ('netted', 'settlement_failed'))
    SELECT bank, currency, sum(debits)::text AS debits, sum(credits)::text AS credits FROM (
        SELECT sender_bank AS bank, from_currency AS currency, amount AS debits, 0 AS credits
          FROM transfers WHERE status = 'accepted' AND window_id IN (SELECT id FROM live)
        UNION ALL
        SELECT receiver_bank, to_currency, 0, converted_amount
          FROM transfers WHERE status = 'accepted' AND window_id IN (SELECT id FROM live)
        UNION ALL
        SELECT bank, currency, debits, credits
          FROM window_positions WHERE window_id IN (SELECT id FROM held)
    ) legs GROUP BY bank, currency";

type Books = BTreeMap<(String, String), (Decimal, Decimal)>;

async fn books_from_store(client: &tokio_postgres::Client) -> anyhow::Result<Books> {
    let mut books = Books::new();
    for row in client.query(BOOKS_FROM_STORE, &[]).await? {
        let debits: Decimal = row.get::<_, String>("debits").parse()?;
        let credits: Decimal = row.get::<_, String>("credits").parse()?;
        // As the engine's positions: a currency with nothing in it is left out.
        if !(debits.is_zero() && credits.is_zero()) {
            books.insert((row.get("bank"), row.get("currency")), (debits, credits));
        }
    }
    Ok(books)
}

async fn books_from_engine(client: &mut Connection) -> anyhow::Result<Books> {
    let mut books = Books::new();
    for bank in BANKS {
        let answer = client
            .request(
                "GET",
                &format!("/api/v1/banks/{bank}/positions"),
                "",
                Duration::from_secs(10),
            )
            .await
            .map_err(|f| anyhow::anyhow!("positions of {bank}: {f:?}"))?;
        anyhow::ensure!(
            answer.status == 200,
            "positions of {bank}: {}",
            answer.status
        );
        let view: Value = serde_json::from_slice(&answer.body)?;
        for p in view["positions"].as_array().cloned().unwrap_or_default() {
            let debits: Decimal = p["debits"].as_str().unwrap_or("0").parse()?;
            let credits: Decimal = p["credits"].as_str().unwrap_or("0").parse()?;
            if debits.is_zero() && credits.is_zero() {
                continue;
            }
            let currency = p["currency"].as_str().unwrap_or_default().to_string();
            books.insert((bank.to_string(), currency), (debits, credits));
        }
    }
    Ok(books)
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(verify_async(args))
}

async fn verify_async(args: VerifyArgs) -> anyhow::Result<()> {
    let acks = read_acks(&args.common.acks)?;
    let config = deltran::store::embedded::EmbeddedPostgres::attach(&args.data_dir, "deltran")
        .ok_or_else(|| anyhow::anyhow!("no running embedded cluster in {:?}", args.data_dir))?;
    let (db, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    // 1. Every acknowledged transfer stored once, under the id it was acknowledged with.
    let mut stored: HashMap<String, (String, i64)> = HashMap::new();
    for chunk in acks.chunks(20_000) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
        let rows = db
            .query(
                "SELECT idempotency_key, min(id::text) AS id, count(*) AS n FROM transfers
                  WHERE idempotency_key = ANY($1) GROUP BY idempotency_key",
                &[&keys],
            )
            .await?;
        for row in rows {
            stored.insert(row.get("idempotency_key"), (row.get("id"), row.get("n")));
        }
    }
    let (mut missing, mut wrong_id, mut duplicated) = (0u64, 0u64, 0u64);
    let mut examples = Vec::new();
    for (key, id) in &acks {
        match stored.get(key) {
            None => {
                missing += 1;
                if missing <= 3 {
                    examples.push(format!("missing {key}"));
                }
            }
            Some((stored_id, n)) => {
                if stored_id != id {
                    wrong_id += 1;
                    examples.push(format!("{key}: acknowledged {id}, stored {stored_id}"));
                }
                if *n > 1 {
                    duplicated += 1;
                    examples.push(format!("{key} stored {n} times"));
                }
            }
        }
    }

    // 2. Acknowledged keys sent again answer the original transfer.
    let host = host_of(&args.common.url);
    let mut client = Connection::new(&host, &args.common.key);
    let mut last_of_connection: HashMap<u64, (u64, usize)> = HashMap::new();
    for (i, (key, _)) in acks.iter().enumerate() {
        if let Some((conn, k)) = parse_key(key) {
            let entry = last_of_connection.entry(conn).or_insert((k, i));
            if k >= entry.0 {
                *entry = (k, i);
            }
        }
    }
    let mut sample: Vec<usize> = last_of_connection.values().map(|(_, i)| *i).collect();
    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64 | 1;
    let mut random = Random(seed);
    for _ in 0..args.replays.min(acks.len()) {
        sample.push((random.next() % acks.len() as u64) as usize);
    }
    let (mut replays, mut replay_failures) = (0u64, 0u64);
    for i in sample {
        let (key, id) = &acks[i];
        let Some((conn, k)) = parse_key(key) else {
            continue;
        };
        let answer = client
            .request(
                "POST",
                "/api/v1/transfers",
                &body_for(conn, k, key),
                Duration::from_secs(10),
            )
            .await
            .map_err(|f| anyhow::anyhow!("replay of {key}: {f:?}"))?;
        replays += 1;
        let again = transaction_id(&answer.body).unwrap_or_default();
        if answer.status != 202 || !answer.replayed || &again != id {
            replay_failures += 1;
            examples.push(format!(
                "replay of {key}: {} replayed={} id {again} (acknowledged {id})",
                answer.status, answer.replayed
            ));
        }
    }

    // 3. Every bank's books, as its actor holds them, equal the store. Windows close
    // and settle on their own meanwhile, so the two reads are compared a few times.
    let mut books_equal = false;
    let mut last_difference = String::new();
    for _ in 0..20 {
        let store = books_from_store(&db).await?;
        let engine = books_from_engine(&mut client).await?;
        let after = books_from_store(&db).await?;
        if store == engine && store == after {
            books_equal = true;
            break;
        }
        last_difference = format!("store {store:?} engine {engine:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !books_equal {
        examples.push(format!("books differ: {last_difference}"));
    }

    examples.truncate(10);
    let ok =
        missing == 0 && wrong_id == 0 && duplicated == 0 && replay_failures == 0 && books_equal;
    println!(
        "{}",
        json!({
            "acknowledged": acks.len(),
            "lost": missing,
            "stored_under_another_id": wrong_id,
            "duplicated": duplicated,
            "replays": replays,
            "replay_failures": replay_failures,
            "books_equal_store": books_equal,
            "ok": ok,
            "examples": examples,
        })
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load(args) => load(args),
        Command::Verify(args) => verify(args),
    }
}
