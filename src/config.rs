//! Settings: command-line flags, each with an environment variable, and an optional
//! config file of `NAME=value` lines (the same names as the variables). A flag wins
//! over the environment, the environment over the file, the file over the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "deltran", version, about = "DelTran payment netting engine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine: HTTP API, actors and (by default) an embedded Postgres.
    Serve(Settings),
    /// Check the rules of the stored data (windows, positions, instructions) and exit
    /// non-zero on any violation. Safe to run while the engine runs.
    Audit(AuditArgs),
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
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Most connections to Postgres.
    #[arg(long, env = "DELTRAN_DB_POOL_SIZE_MAX", default_value_t = 16)]
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
    /// HTTP worker threads (each runs its own event loop).
    #[arg(long, env = "DELTRAN_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,
    /// Most transfers in one group commit.
    #[arg(long, env = "DELTRAN_BATCH_SIZE_MAX", default_value_t = 2000)]
    pub batch_size_max: usize,
    /// Most group commits in flight at once, each on its own connection.
    #[arg(long, env = "DELTRAN_BATCHES_IN_FLIGHT_MAX", default_value_t = 2)]
    pub batches_in_flight_max: usize,
    /// Most submissions admitted and unanswered; beyond it the API answers 503.
    #[arg(
        long,
        env = "DELTRAN_SUBMISSIONS_IN_FLIGHT_MAX",
        default_value_t = 10_000
    )]
    pub submissions_in_flight_max: usize,
    /// How long a submission waits for its commit before answering 503.
    #[arg(long, env = "DELTRAN_SUBMIT_WAIT_MAX_MS", default_value_t = 10_000)]
    pub submit_wait_max_ms: u64,
    /// Largest request body accepted.
    #[arg(long, env = "DELTRAN_BODY_SIZE_MAX_BYTES", default_value_t = 16 * 1024)]
    pub body_size_max_bytes: usize,
    /// Largest page a list route returns.
    #[arg(long, env = "DELTRAN_PAGE_SIZE_MAX", default_value_t = 1000)]
    pub page_size_max: i64,
    /// Length of a clearing window; it then closes on its own (the operator can close
    /// it earlier).
    #[arg(long, env = "DELTRAN_WINDOW_DURATION_MS", default_value_t = 60_000)]
    pub window_duration_ms: u64,
    /// Demo mode: a simulated settlement rail confirms every instruction on its own
    /// `--settlement-delay-ms` after its window is netted, so windows settle and limits
    /// free up without an operator.
    #[arg(long, env = "DELTRAN_DEMO", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub demo: bool,
    /// Delay of the demo rail's confirmations.
    #[arg(long, env = "DELTRAN_SETTLEMENT_DELAY_MS", default_value_t = 1_000)]
    pub settlement_delay_ms: u64,
    /// Largest WebSocket frame a client may send.
    #[arg(long, env = "DELTRAN_WS_FRAME_SIZE_MAX_BYTES", default_value_t = 64 * 1024)]
    pub ws_frame_size_max_bytes: usize,
    /// Messages queued for one WebSocket client before it counts as lagging and is
    /// disconnected.
    #[arg(long, env = "DELTRAN_WS_QUEUE_MAX", default_value_t = 4096)]
    pub ws_queue_max: usize,
    /// WebSocket sessions open at once; beyond it `/ws` answers 503.
    #[arg(long, env = "DELTRAN_WS_SESSIONS_MAX", default_value_t = 10_000)]
    pub ws_sessions_max: usize,
    /// Load the reference corridor (ICICI, HDFC, AXIS, ENBD, ADCB; INR-AED, AED-INR)
    /// into an empty database.
    #[arg(long, env = "DELTRAN_SEED", default_value_t = true, action = clap::ArgAction::Set)]
    pub seed: bool,
    /// Log format.
    #[arg(long, env = "DELTRAN_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
}

impl Settings {
    /// Settings with every default, for tests and embedding.
    pub fn defaults() -> Self {
        let cli = Cli::try_parse_from(["deltran", "serve"]).expect("defaults parse");
        match cli.command {
            Command::Serve(settings) => settings,
            Command::Audit(_) => unreachable!("parsed serve"),
        }
    }
}

/// Reads `--config FILE` (or `DELTRAN_CONFIG`) before the command line is parsed and
/// sets each `NAME=value` not already in the environment. Must run before any thread
/// starts, since it changes the process environment.
pub fn load_config_file(args: &[String]) -> Result<(), String> {
    let from_flag = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=").map(str::to_string).or_else(|| {
            (a == "--config")
                .then(|| args.get(i + 1).cloned())
                .flatten()
        })
    });
    let Some(path) = from_flag.or_else(|| std::env::var("DELTRAN_CONFIG").ok()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(Path::new(&path))
        .map_err(|e| format!("cannot read config file {path}: {e}"))?;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{path}:{}: expected NAME=value", number + 1))?;
        let (name, value) = (name.trim(), value.trim());
        if std::env::var_os(name).is_none() {
            // Safe here: called from main before any other thread exists.
            std::env::set_var(name, value);
        }
    }
    Ok(())
}
