//! Settings: command-line flags, each with an environment variable, and an optional
//! config file of `NAME=value` lines (the same names as the variables). A flag wins
//! over the environment, the environment over the file, the file over the default.
//!
//! Every numeric setting has a range, checked by clap whichever way the value came
//! (flag, variable or file): a value outside it stops the engine at start with a
//! message naming the flag, the value and the range, and exit code 2. Nothing is
//! clamped later.

mod file;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub use file::{load_config_file, parse_config_text, value_origin, ConfigFile, ConfigLine};

/// Shortest clearing window: a cut-off and its netting take a few milliseconds.
pub const WINDOW_DURATION_MS_MIN: u64 = 10;
/// One day in milliseconds: the longest window, settlement delay or similar.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A `usize` setting's parser with its range (clap's ranged parser for `usize`).
fn usize_in(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(range)
}

/// A screening score setting: a decimal from 0.5 to 1.
fn screening_score(text: &str) -> Result<f64, String> {
    let score: f64 = text
        .parse()
        .map_err(|_| format!("{text} is not a decimal number"))?;
    if (0.5..=1.0).contains(&score) {
        Ok(score)
    } else {
        Err(format!("{text} is not between 0.5 and 1"))
    }
}

/// Highest per-second rate limit: far above what one engine serves, so a setting at
/// the top means "no limit" in practice.
const RATE_PER_SECOND_MAX: i64 = 10_000_000;

/// A file setting (`--tls-cert`, `--tls-key`) must name a readable file.
fn readable_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    std::fs::File::open(&path)
        .and_then(|file| file.metadata())
        .map_err(|e| e.to_string())
        .and_then(|meta| {
            meta.is_file()
                .then_some(())
                .ok_or_else(|| "not a regular file".to_string())
        })
        .map_err(|e| format!("cannot read {text}: {e}"))?;
    Ok(path)
}

/// `--database-url` must parse as a Postgres URL (or key=value string).
fn postgres_url(text: &str) -> Result<String, String> {
    text.parse::<tokio_postgres::Config>()
        .map(|_| text.to_string())
        .map_err(|e| format!("not a Postgres URL (postgres://user@host/db): {e}"))
}

#[derive(Parser, Debug)]
#[command(name = "deltran", version, about = "DelTran payment netting engine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `Serve` holds every setting: the enum is parsed once per process, so its size
// does not matter and boxing would only add noise where it is matched.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine: HTTP API, actors and (by default) an embedded Postgres.
    Serve(Settings),
    /// Check the rules of the stored data (windows, positions, instructions, the audit
    /// log of every change) and exit
    /// non-zero on any violation. Safe to run while the engine runs.
    Audit(AuditArgs),
    /// Manage API keys (works while the engine runs; it sees changes within a second).
    Keys(KeysArgs),
    /// Print the API's OpenAPI 3.1 document (the one served at
    /// `/api-docs/openapi.json`) and exit.
    Openapi,
    /// Operate a cluster of engines (cluster mode, docs/SCALE-OUT.md).
    Cluster(ClusterCommandArgs),
}

#[derive(Args, Clone, Debug)]
pub struct ClusterCommandArgs {
    #[command(subcommand)]
    pub action: ClusterAction,
}

#[derive(Subcommand, Clone, Debug)]
pub enum ClusterAction {
    /// Move a partition's lease to another node, live holder or not: its epoch is
    /// raised, so the former holder's store refuses it from the new holder's take-over
    /// on, and the former holder stops at its next renewal.
    Move {
        /// NATS servers of the cluster (comma-separated URLs).
        #[arg(long, env = "DELTRAN_CLUSTER_NATS", value_name = "URLS")]
        cluster_nats: String,
        /// The partition to move.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1023))]
        partition: u32,
        /// The node to move it to (started with `--partition` of it, waiting).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1023))]
        to_node: u32,
        /// How long the moved lease lasts before its new holder must renew it.
        #[arg(long, env = "DELTRAN_LEASE_TTL_MS", default_value_t = 5_000,
              value_parser = clap::value_parser!(u64).range(300..=600_000))]
        lease_ttl_ms: u64,
        /// Replicas of the leases' stream, as the nodes set it.
        #[arg(long, env = "DELTRAN_CLUSTER_REPLICAS", default_value_t = 3,
              value_parser = usize_in(1..=5))]
        cluster_replicas: usize,
    },
}

#[derive(Args, Clone, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Subcommand, Clone, Debug)]
pub enum KeysAction {
    /// Make a key. The key is printed alone on the last line of stdout, and only then:
    /// the engine keeps its hash.
    Create {
        /// operator (everything), bank (one bank's own business) or auditor (reads all).
        #[arg(long, value_parser = ["operator", "bank", "auditor"])]
        role: String,
        /// The bank of a bank key (its code, e.g. ICICI).
        #[arg(long)]
        bank: Option<String>,
        /// A note on what the key is for.
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a key by its id; it is refused from then on.
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Args, Clone, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable logs on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
}

/// Where the database is and how to reach it.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Directory of the embedded Postgres cluster (created on first start).
    #[arg(long, env = "DELTRAN_DATA_DIR", default_value = "./deltran-data")]
    pub data_dir: PathBuf,
    /// Use this Postgres instead of the embedded one (postgres://user@host/db).
    #[arg(long, env = "DATABASE_URL", value_parser = postgres_url)]
    pub database_url: Option<String>,
    /// Most connections to Postgres. Range 1 to 1024.
    #[arg(long, env = "DELTRAN_DB_POOL_SIZE_MAX", default_value_t = 16,
          value_parser = usize_in(1..=1024))]
    pub db_pool_size_max: usize,
}

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// A file of NAME=value lines (e.g. DELTRAN_LISTEN=0.0.0.0:8080).
    #[arg(long, env = "DELTRAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the HTTP API listens on.
    #[arg(long, env = "DELTRAN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// HTTP worker threads (each runs its own event loop). Range 1 to 256.
    #[arg(long, env = "DELTRAN_HTTP_WORKERS", default_value_t = 2,
          value_parser = usize_in(1..=256))]
    pub http_workers: usize,
    /// Most transfers in one group commit. Range 1 to 100,000: a batch is one
    /// statement over arrays, so Postgres' parameter limit does not apply; the bound
    /// keeps one statement's arrays to some tens of megabytes.
    #[arg(long, env = "DELTRAN_BATCH_SIZE_MAX", default_value_t = 2000,
          value_parser = usize_in(1..=100_000))]
    pub batch_size_max: usize,
    /// Most group commits in flight at once, each on its own connection. Range 1 to 64.
    #[arg(long, env = "DELTRAN_BATCHES_IN_FLIGHT_MAX", default_value_t = 2,
          value_parser = usize_in(1..=64))]
    pub batches_in_flight_max: usize,
    /// Most submissions admitted and unanswered, working or waiting their turn; beyond
    /// it the API answers 503 at once.
    /// Range 1 to 1,000,000.
    #[arg(long, env = "DELTRAN_SUBMISSIONS_IN_FLIGHT_MAX", default_value_t = 10_000,
          value_parser = usize_in(1..=1_000_000))]
    pub submissions_in_flight_max: usize,
    /// Submissions the engine works on at once; more wait their turn in arrival
    /// order (for at most `--submit-delay-target-ms`). Range 1 to 1,000,000; the
    /// engine reaches its peak with a few hundred.
    #[arg(long, env = "DELTRAN_SUBMISSIONS_IN_ENGINE_MAX", default_value_t = 1024,
          value_parser = usize_in(1..=1_000_000))]
    pub submissions_in_engine_max: usize,
    /// Admission by queueing delay: a submission that waited this long for its turn,
    /// or could not be expected to get it this soon, is refused with 503 `overloaded`
    /// and Retry-After without entering the engine. Range 1 to 600,000 ms (10 minutes).
    #[arg(long, env = "DELTRAN_SUBMIT_DELAY_TARGET_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub submit_delay_target_ms: u64,
    /// How long a submission waits for its commit before answering 503. Range 1 to
    /// 600,000 ms (10 minutes).
    #[arg(long, env = "DELTRAN_SUBMIT_WAIT_MAX_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub submit_wait_max_ms: u64,
    /// Largest request body accepted. Range 4 KiB to 64 MiB: the largest valid transfer
    /// (two 64-character accounts, a 140-character reference and a 128-character key,
    /// in UTF-8) takes under 2 KiB, so a smaller limit would refuse valid transfers.
    #[arg(long, env = "DELTRAN_BODY_SIZE_MAX_BYTES", default_value_t = 16 * 1024,
          value_parser = usize_in(4 * KIB..=64 * MIB))]
    pub body_size_max_bytes: usize,
    /// Most transfers in one `POST /api/v1/transfers/batch`; a batch with more is
    /// refused whole (413). Range 1 to 100,000.
    #[arg(long, env = "DELTRAN_TRANSFER_BATCH_MAX", default_value_t = 1000,
          value_parser = usize_in(1..=100_000))]
    pub transfer_batch_max: usize,
    /// Largest body of a `POST /api/v1/transfers/batch`. Range 4 KiB to 64 MiB; a
    /// transfer takes 150 bytes to 2 KiB of JSON.
    #[arg(long, env = "DELTRAN_TRANSFER_BATCH_SIZE_MAX_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = usize_in(4 * KIB..=64 * MIB))]
    pub transfer_batch_size_max_bytes: usize,
    /// Largest ISO 20022 message accepted (`/api/v1/iso20022/…`). Range 4 KiB to 64
    /// MiB; a credit transfer takes 1 to 3 KiB of XML.
    #[arg(long, env = "DELTRAN_ISO_MESSAGE_SIZE_MAX_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = usize_in(4 * KIB..=64 * MIB))]
    pub iso_message_size_max_bytes: usize,
    /// Most transactions one ISO 20022 message may carry; a message with more is
    /// refused whole (413). Range 1 to 100,000.
    #[arg(long, env = "DELTRAN_ISO_TRANSACTIONS_MAX", default_value_t = 1000,
          value_parser = usize_in(1..=100_000))]
    pub iso_transactions_max: usize,
    /// Largest page a list route returns. Range 1 to 100,000.
    #[arg(long, env = "DELTRAN_PAGE_SIZE_MAX", default_value_t = 1000,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub page_size_max: i64,
    /// Most transfers a summary report may read (those created in its range, of every
    /// bank); a range holding more is refused with 422 `range_too_large`. Range 1 to
    /// 100,000,000.
    #[arg(long, env = "DELTRAN_REPORT_TRANSFERS_MAX", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub report_transfers_max: i64,
    /// Length of a clearing window; it then closes on its own (the operator can close
    /// it earlier). Range 10 ms (a cut-off and its netting take a few milliseconds) to
    /// one day (86,400,000 ms).
    #[arg(long, env = "DELTRAN_WINDOW_DURATION_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(WINDOW_DURATION_MS_MIN..=DAY_MS))]
    pub window_duration_ms: u64,
    /// Demo mode: a simulated settlement rail confirms every instruction on its own
    /// `--settlement-delay-ms` after its window is netted, so windows settle and limits
    /// free up without an operator.
    #[arg(long, env = "DELTRAN_DEMO", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub demo: bool,
    /// Delay of the demo rail's confirmations. Range 0 to one day (86,400,000 ms).
    #[arg(long, env = "DELTRAN_SETTLEMENT_DELAY_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(0..=DAY_MS))]
    pub settlement_delay_ms: u64,
    /// A queued transfer (`on_limit` `queue`) not released within this many windows,
    /// the one it was queued in counted, expires. Range 1 to 100,000.
    #[arg(long, env = "DELTRAN_QUEUE_TTL_WINDOWS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub queue_ttl_windows: u32,
    /// Compliance screening: a debtor or creditor whose name matches a screening
    /// list entry this well or better (Jaro–Winkler over its name's tokens, 0.5 to 1)
    /// has its transfer rejected (`compliance_rejected`).
    #[arg(long, env = "DELTRAN_SCREENING_REJECT_SCORE", default_value_t = 0.92,
          value_parser = screening_score)]
    pub screening_reject_score: f64,
    /// Compliance screening: a match this good or better, below the reject score,
    /// holds the transfer (`held`) until the operator releases or rejects it. 0.5 to
    /// 1, at most the reject score.
    #[arg(long, env = "DELTRAN_SCREENING_HOLD_SCORE", default_value_t = 0.85,
          value_parser = screening_score)]
    pub screening_hold_score: f64,
    /// Largest WebSocket frame a client may send. Range 1 KiB to 16 MiB: a subscribe
    /// message naming all five channels and a bank, pretty-printed, takes about 150
    /// bytes.
    #[arg(long, env = "DELTRAN_WS_FRAME_SIZE_MAX_BYTES", default_value_t = 64 * 1024,
          value_parser = usize_in(KIB..=16 * MIB))]
    pub ws_frame_size_max_bytes: usize,
    /// Messages queued for one WebSocket client before it counts as lagging and is
    /// disconnected. Range 1 to 1,000,000.
    #[arg(long, env = "DELTRAN_WS_QUEUE_MAX", default_value_t = 4096,
          value_parser = usize_in(1..=1_000_000))]
    pub ws_queue_max: usize,
    /// WebSocket sessions open at once; beyond it `/ws` answers 503. Range 1 to
    /// 1,000,000.
    #[arg(long, env = "DELTRAN_WS_SESSIONS_MAX", default_value_t = 10_000,
          value_parser = usize_in(1..=1_000_000))]
    pub ws_sessions_max: usize,
    /// Mount the chaos suite's operator-only `POST /api/v1/faults/panic`, which makes
    /// a chosen actor panic. Off by default: never on in production.
    #[arg(long, env = "DELTRAN_FAULT_INJECTION", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub fault_injection: bool,
    /// Load the reference corridor (ICICI, HDFC, AXIS, ENBD, ADCB; INR-AED, AED-INR)
    /// into an empty database.
    #[arg(long, env = "DELTRAN_SEED", default_value_t = true, action = clap::ArgAction::Set)]
    pub seed: bool,
    /// Log format.
    #[arg(long, env = "DELTRAN_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Where the first start writes the keys it makes (set by `serve` for the
    /// embedded cluster: the data directory's `api-keys`); no keys are made without it.
    #[arg(skip)]
    pub first_start_keys_file: Option<PathBuf>,
    /// Requests one API key may make per second, with a burst of as many; beyond it
    /// `429 rate_limited` with `Retry-After`. Range 1 to 10,000,000.
    #[arg(long, env = "DELTRAN_RATE_PER_KEY_PER_SECOND", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..=RATE_PER_SECOND_MAX))]
    pub rate_per_key_per_second: u32,
    /// Requests one client address (an IPv6 client: its /64) may make per second,
    /// with a burst of as many, before any key is checked; beyond it `429
    /// rate_limited`. Range 1 to 10,000,000.
    #[arg(long, env = "DELTRAN_RATE_PER_ADDRESS_PER_SECOND", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=RATE_PER_SECOND_MAX))]
    pub rate_per_address_per_second: u32,
    /// Failed authentications (401) one client address may have per minute, with a
    /// burst of as many; beyond it every request of that address needing a key gets
    /// `429 rate_limited` until its budget refills. Range 1 to 1,000,000.
    #[arg(long, env = "DELTRAN_AUTH_FAILURES_PER_MINUTE_MAX", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failures_per_minute_max: u32,
    /// TLS: the server's certificate chain (PEM). Needs `--tls-key`; without both the
    /// engine serves plain HTTP (terminate TLS in front of it).
    #[arg(long, env = "DELTRAN_TLS_CERT", value_name = "FILE", requires = "tls_key",
          value_parser = readable_file)]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1). Needs
    /// `--tls-cert`.
    #[arg(long, env = "DELTRAN_TLS_KEY", value_name = "FILE", requires = "tls_cert",
          value_parser = readable_file)]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Cluster mode (docs/SCALE-OUT.md): the node runs one partition of a cluster joined
/// by NATS JetStream. Without `--cluster-nats` the engine runs alone, as always.
#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// NATS servers of the cluster (comma-separated URLs: nats://host:port,…). Turns
    /// cluster mode on; needs `--node-id` and `--partitions`.
    #[arg(long, env = "DELTRAN_CLUSTER_NATS", value_name = "URLS",
          requires_all = ["node_id", "partitions"])]
    pub cluster_nats: Option<String>,
    /// This node's id (0 to 1023), unique in the cluster.
    #[arg(long, env = "DELTRAN_NODE_ID", value_parser = clap::value_parser!(u32).range(0..=1023))]
    pub node_id: Option<u32>,
    /// The partition this node runs (0 to 1023; by default the one numbered as the
    /// node). A node started for a partition another node holds waits until that
    /// lease lapses or the operator moves it here (`deltran cluster move`), then
    /// takes its store over.
    #[arg(long, env = "DELTRAN_PARTITION", value_parser = clap::value_parser!(u32).range(0..=1023))]
    pub partition: Option<u32>,
    /// Which partition owns each bank: BANK=PARTITION pairs, comma-separated
    /// (ICICI=0,HDFC=1,ENBD=2). The same on every node; a bank not named belongs to
    /// partition 0.
    #[arg(long, env = "DELTRAN_PARTITIONS", value_name = "ASSIGNMENT",
          value_parser = partition_assignment)]
    pub partitions: Option<crate::domain::cluster::Assignment>,
    /// Replicas of the cluster's JetStream streams (1 to 5; 3 on a three-server NATS
    /// cluster, so that one server's loss loses nothing).
    #[arg(long, env = "DELTRAN_CLUSTER_REPLICAS", default_value_t = 3,
          value_parser = usize_in(1..=5))]
    pub cluster_replicas: usize,
    /// How long a lease (a partition's, the coordinator's) lasts unrenewed: a dead
    /// node's partition waits this long before another may take it. Renewed every
    /// third of it. Range 300 ms to 10 minutes.
    #[arg(long, env = "DELTRAN_LEASE_TTL_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(300..=600_000))]
    pub lease_ttl_ms: u64,
}

/// `--partitions`: an assignment of banks to partitions.
fn partition_assignment(text: &str) -> Result<crate::domain::cluster::Assignment, String> {
    crate::domain::cluster::Assignment::parse(text).map_err(|e| e.to_string())
}

impl Settings {
    /// Settings with every default, for tests and embedding.
    pub fn defaults() -> Self {
        let cli = Cli::try_parse_from(["deltran", "serve"]).expect("defaults parse");
        match cli.command {
            Command::Serve(settings) => settings,
            Command::Audit(_) | Command::Keys(_) | Command::Openapi | Command::Cluster(_) => {
                unreachable!("parsed serve")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn refused(args: &[&str]) -> clap::Error {
        let args: Vec<&str> = ["deltran"].iter().chain(args).copied().collect();
        Cli::try_parse_from(args).expect_err("refused")
    }

    fn serve(args: &[&str]) -> Result<Settings, clap::Error> {
        let args: Vec<&str> = ["deltran", "serve"].iter().chain(args).copied().collect();
        Cli::try_parse_from(args).map(|cli| match cli.command {
            Command::Serve(settings) => settings,
            Command::Audit(_) | Command::Keys(_) | Command::Openapi | Command::Cluster(_) => {
                unreachable!("parsed serve")
            }
        })
    }

    /// A value out of range: a validation error, exit code 2, and a message naming
    /// the flag, the value and the range.
    fn assert_out_of_range(error: &clap::Error, flag: &str, value: &str, range: &str) {
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{error}");
        assert_eq!(error.exit_code(), 2);
        let message = error.to_string();
        assert!(message.contains(flag), "{message}");
        assert!(message.contains(&format!("'{value}'")), "{message}");
        assert!(message.contains(range), "{message}");
    }

    #[test]
    fn zero_workers_are_refused() {
        let error = serve(&["--http-workers", "0"]).unwrap_err();
        assert_out_of_range(&error, "--http-workers", "0", "1..=256");
    }

    #[test]
    fn a_zero_batch_size_is_refused() {
        let error = serve(&["--batch-size-max", "0"]).unwrap_err();
        assert_out_of_range(&error, "--batch-size-max", "0", "1..=100000");
        let error = serve(&["--batch-size-max=0"]).unwrap_err();
        assert_out_of_range(&error, "--batch-size-max", "0", "1..=100000");
    }

    #[test]
    fn a_one_millisecond_window_is_refused() {
        let error = serve(&["--window-duration-ms", "1"]).unwrap_err();
        assert_out_of_range(&error, "--window-duration-ms", "1", "10..=86400000");
    }

    #[test]
    fn every_numeric_setting_takes_its_bounds_and_refuses_beyond_them() {
        for (flag, min, max) in [
            ("--db-pool-size-max", 1, 1024),
            ("--http-workers", 1, 256),
            ("--batch-size-max", 1, 100_000),
            ("--batches-in-flight-max", 1, 64),
            ("--submissions-in-flight-max", 1, 1_000_000),
            ("--submit-wait-max-ms", 1, 600_000),
            ("--submissions-in-engine-max", 1, 1_000_000),
            ("--submit-delay-target-ms", 1, 600_000),
            ("--body-size-max-bytes", 4096, 64 * 1024 * 1024),
            ("--transfer-batch-max", 1, 100_000),
            ("--transfer-batch-size-max-bytes", 4096, 64 * 1024 * 1024),
            ("--page-size-max", 1, 100_000),
            ("--report-transfers-max", 1, 100_000_000),
            ("--window-duration-ms", 10, 86_400_000),
            ("--settlement-delay-ms", 0, 86_400_000),
            ("--ws-frame-size-max-bytes", 1024, 16 * 1024 * 1024),
            ("--ws-queue-max", 1, 1_000_000),
            ("--ws-sessions-max", 1, 1_000_000),
            ("--rate-per-key-per-second", 1, 10_000_000),
            ("--rate-per-address-per-second", 1, 10_000_000),
            ("--auth-failures-per-minute-max", 1, 1_000_000),
        ] {
            let range = format!("{min}..={max}");
            for ok in [min, max] {
                assert!(serve(&[flag, &ok.to_string()]).is_ok(), "{flag} {ok}");
            }
            let above = (max + 1).to_string();
            assert_out_of_range(&serve(&[flag, &above]).unwrap_err(), flag, &above, &range);
            if min > 0 {
                let below = (min - 1).to_string();
                assert_out_of_range(&serve(&[flag, &below]).unwrap_err(), flag, &below, &range);
            }
        }
    }

    #[test]
    fn the_defaults_are_in_range() {
        let settings = Settings::defaults();
        assert_eq!(settings.http_workers, 2);
        assert_eq!(settings.batch_size_max, 2000);
        assert_eq!(settings.window_duration_ms, 60_000);
        assert_eq!(settings.body_size_max_bytes, 16 * 1024);
        assert_eq!(settings.rate_per_key_per_second, 50_000);
        assert_eq!(settings.rate_per_address_per_second, 100_000);
        assert_eq!(settings.auth_failures_per_minute_max, 20);
        assert!(settings.tls_cert.is_none() && settings.tls_key.is_none());
    }

    #[test]
    fn a_tls_certificate_without_its_key_or_a_key_without_its_certificate_is_refused() {
        let file = std::env::temp_dir().join(format!("deltran-tls-{}.pem", std::process::id()));
        std::fs::write(&file, "not checked here").unwrap();
        let path = file.to_str().unwrap();
        for args in [["--tls-cert", path], ["--tls-key", path]] {
            let error = serve(&args).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{error}");
            assert_eq!(error.exit_code(), 2);
        }
        let both = serve(&["--tls-cert", path, "--tls-key", path]).unwrap();
        assert_eq!(both.tls_cert.as_deref(), Some(file.as_path()));
        let missing = serve(&["--tls-cert", "/nonexistent/cert.pem", "--tls-key", path]);
        let error = missing.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{error}");
        assert!(
            error.to_string().contains("/nonexistent/cert.pem"),
            "{error}"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn audit_checks_the_pool_size_too() {
        let error = refused(&["audit", "--db-pool-size-max", "0"]);
        assert_out_of_range(&error, "--db-pool-size-max", "0", "1..=1024");
    }

    #[test]
    fn a_bad_listen_address_or_database_url_stops_the_start_with_exit_code_2() {
        let error = serve(&["--listen", "localhost"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("--listen"), "{error}");
        let error = serve(&["--database-url", "postgres://a@b:notaport/db"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("not a Postgres URL"), "{error}");
        assert!(serve(&["--database-url", "postgres://deltran@localhost/deltran"]).is_ok());
    }
}
