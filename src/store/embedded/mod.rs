//! The embedded Postgres cluster: `initdb` on first start, `postgres` as a child
//! process on a private unix socket, stopped when the engine stops.
//!
//! Postgres refuses to run as root, so when the engine is root the cluster runs as the
//! `postgres` system user. If that user cannot reach the data directory (a checkout
//! under a private home such as `/root`), the cluster lives instead in
//! `/var/lib/deltran/<name>-<hash>`, a directory derived from the data directory's
//! canonical path alone, so a restart and `deltran audit` find the same one. The
//! child asks the kernel to send it SIGQUIT (immediate shutdown) if the engine dies,
//! so a `kill -9` of the engine never leaves an orphan postmaster holding the data
//! directory.

mod keeper;
mod location;
mod process;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use keeper::ClusterKeeper;
pub use location::{relocated_home, Location};

use location::{locate, prepare_relocated_home, remove_if_present};
use process::{
    chown, find_binaries, initdb, log_tail, prepare_child, run_as, socket_dir_for,
    wait_for_stale_postmaster,
};

/// The database role and database the engine uses inside its own cluster.
pub const EMBEDDED_USER: &str = "deltran";
pub const EMBEDDED_DATABASE: &str = "deltran";
/// The port only names the socket file; the cluster listens on no TCP address.
const EMBEDDED_PORT: u16 = 5432;
/// How long a postmaster left by a killed engine may take to exit before we give up.
const STALE_POSTMASTER_WAIT_MAX: Duration = Duration::from_secs(15);
/// How long a fast shutdown may take before the cluster is told to quit at once.
const SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(30);
/// Where clusters live whose data directory the `postgres` user cannot reach.
pub const RELOCATED_BASE: &str = "/var/lib/deltran";
/// The file in a data directory that names where its relocated cluster lives (for
/// people and scripts; the engine derives the place from the path).
pub const LOCATION_FILE: &str = "cluster-location";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) were not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install \
         postgresql-15`) or point the engine at an existing server with --database-url."
    )]
    NotInstalled,
    #[error(
        "the engine runs as root and Postgres refuses to; a `postgres` system user is \
         needed to run the embedded cluster (apt-get install postgresql-15 creates it)"
    )]
    NoPostgresUser,
    #[error(
        "the cluster directory {0} is not reachable by the `postgres` system user (a \
         parent directory is private); make it traversable or choose --data-dir under a \
         path such as /var/lib or /tmp"
    )]
    Unreachable(PathBuf),
    #[error("initdb failed (see {log}): {detail}")]
    InitdbFailed { log: PathBuf, detail: String },
    #[error("another postgres (pid {pid}) still runs on {dir}")]
    AlreadyRunning { pid: i32, dir: PathBuf },
    #[error("the embedded postgres exited at start (see {log}): {detail}")]
    StartFailed { log: PathBuf, detail: String },
    #[error("embedded postgres: {0}")]
    Io(#[from] io::Error),
}

/// How to run the cluster.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedOptions {
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Skip initdb's own fsyncs (tests only: a crash during initdb loses nothing real).
    pub initdb_no_sync: bool,
    /// WAL segment size chosen at initdb (Postgres' default: 16 MB).
    pub wal_segment_size_mb: Option<u32>,
}

impl EmbeddedOptions {
    /// The settings the engine runs its own cluster with. Durability stays at the
    /// defaults (fsync, synchronous commit, full-page writes); what changes is room:
    /// enough shared buffers that backends do not evict dirty pages mid-insert
    /// (`shared_buffers_mb`), and enough WAL between checkpoints that a sustained load
    /// does not force them.
    pub fn engine() -> Self {
        let shared_buffers = format!("{}MB", shared_buffers_mb(memory_mb()));
        EmbeddedOptions {
            settings: [
                ("shared_buffers", shared_buffers.as_str()),
                ("max_wal_size", "4GB"),
                ("wal_buffers", "32MB"),
                // New WAL segments are not zero-filled first: a 64 MB write stall
                // each time one is created. Data is still fsynced at every commit.
                ("wal_init_zero", "off"),
                ("min_wal_size", "1GB"),
                // After a crash, Postgres first fsyncs every file of the cluster
                // before replaying WAL: file by file that took ~4 s here (gigabytes
                // of WAL segments), one syncfs of the filesystem takes a fraction.
                ("recovery_init_sync_method", "syncfs"),
                ("max_connections", "200"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
            initdb_no_sync: false,
            // Large WAL segments: creating one stalls every commit for up to ~100 ms
            // here (file and directory fsync). With the default 16 MB a 10,000
            // transfers/s load made one every ~4 s and the stalls showed in its p99.
            wal_segment_size_mb: Some(256),
        }
    }
}

/// The engine's cluster's shared buffers, for a machine (or container) with
/// `memory_mb` of memory: an eighth of it, from 128 MB to 2 GB (512 MB when the
/// memory is unknown). The cluster is the engine's own, and what its buffers must
/// hold is the transfers table's unique idempotency index, whose pages a load
/// touches in the order of its keys, not of time. Issue 14, 2026-12-07: with 512 MB
/// a 20 s batch load at 112,000 transfers/s filled them in seconds, after which
/// backends wrote out a dirty page before each new one (pg_stat_bgwriter's
/// `buffers_backend`: 96,512 pages, 790 MB, more than the 600 MB the run stored),
/// index pages again and again; with 2 GB the checkpointer writes each once, in
/// the background.
fn shared_buffers_mb(memory_mb: Option<u64>) -> u64 {
    memory_mb.map_or(512, |memory| (memory / 8).clamp(128, 2048))
}

/// The memory this process may use, in MB: the machine's (`/proc/meminfo`), or its
/// container's limit (cgroup v2 `memory.max`) when that is lower.
fn memory_mb() -> Option<u64> {
    let machine = fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024)
    });
    let limit = fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|max| max.trim().parse::<u64>().ok())
        .map(|bytes| bytes / (1024 * 1024));
    match (machine, limit) {
        (Some(machine), Some(limit)) => Some(machine.min(limit)),
        (machine, limit) => machine.or(limit),
    }
}

/// A running embedded cluster; dropping it stops the cluster.
pub struct EmbeddedPostgres {
    child: Option<Child>,
    socket_dir: PathBuf,
    log_path: PathBuf,
    location: Location,
}

impl EmbeddedPostgres {
    /// Initialises the cluster under `root/pg` if needed and starts it. Call from a
    /// thread that lives as long as the cluster should: the kernel ties the child's
    /// parent-death signal to the spawning thread.
    ///
    /// As root, if the `postgres` user cannot reach `root`, the cluster lives in
    /// [`relocated_home`] under [`RELOCATED_BASE`] instead, and `root` holds only a
    /// [`LOCATION_FILE`] naming it; [`EmbeddedPostgres::location`] says which.
    pub fn start(root: &Path, options: &EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let bin = find_binaries()?;
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        let run_as = run_as()?;
        let location = locate(&root, run_as)?;
        let home = &location.home;
        let cluster = location.cluster_dir();
        let log_path = home.join("postgres.log");
        if let Some(user) = run_as {
            if location.relocated {
                prepare_relocated_home(home, user)?;
                fs::write(root.join(LOCATION_FILE), format!("{}\n", home.display()))?;
            } else {
                chown(&root, user)?;
                remove_if_present(&root.join(LOCATION_FILE))?;
            }
        }
        if !cluster.join("PG_VERSION").exists() {
            initdb(&bin, &cluster, home, run_as, options)?;
        }
        wait_for_stale_postmaster(&cluster)?;
        let socket_dir = socket_dir_for(&cluster);
        match fs::create_dir(&socket_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))?;
        if let Some(user) = run_as {
            chown(&socket_dir, user)?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        if let Some(user) = run_as {
            chown(&log_path, user)?;
        }
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&cluster)
            .arg("-k")
            .arg(&socket_dir)
            .arg("-p")
            .arg(EMBEDDED_PORT.to_string())
            .args(["-c", "listen_addresses="]);
        for (name, value) in &options.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        prepare_child(&mut cmd, run_as, true);
        let mut child = cmd.spawn()?;
        std::thread::sleep(Duration::from_millis(50));
        if let Some(status) = child.try_wait()? {
            return Err(EmbeddedError::StartFailed {
                detail: format!("{status}; {}", log_tail(&log_path)),
                log: log_path,
            });
        }
        Ok(EmbeddedPostgres {
            child: Some(child),
            socket_dir,
            log_path,
            location,
        })
    }

    /// Where this cluster lives (the data directory, or its relocated home).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Connection settings of a cluster already running for the data directory `root`
    /// (an engine is using it), read from its `postmaster.pid` wherever
    /// [`EmbeddedPostgres::start`] put it; `None` if none runs.
    pub fn attach(root: &Path, dbname: &str) -> Option<tokio_postgres::Config> {
        let root = fs::canonicalize(root).ok()?;
        let location = locate(&root, run_as().ok()?).ok()?;
        let text = fs::read_to_string(location.cluster_dir().join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let pid: i32 = lines.first()?.trim().parse().ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
            return None;
        }
        let port: u16 = lines.get(3)?.trim().parse().ok()?;
        let socket_dir = lines.get(4)?.trim();
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(socket_dir)
            .port(port)
            .user(EMBEDDED_USER)
            .dbname(dbname)
            .connect_timeout(Duration::from_secs(5));
        Some(config)
    }

    /// Connection settings for a database of this cluster.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(EMBEDDED_PORT)
            .user(EMBEDDED_USER)
            .dbname(dbname)
            .application_name("deltran")
            .connect_timeout(Duration::from_secs(5));
        config
    }

    /// Whether the postmaster is still running; with the log's tail when it is not
    /// (the exited child is then forgotten, so that no signal is ever sent to its
    /// pid, which the kernel may give to another process).
    pub fn check_alive(&mut self) -> Result<(), EmbeddedError> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Err(EmbeddedError::StartFailed {
                    detail: format!("{status}; {}", log_tail(&self.log_path)),
                    log: self.log_path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Fast shutdown: open sessions are ended, committed data is already durable.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as i32;
        // SAFETY: plain signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let started = Instant::now();
        while started.elapsed() < SHUTDOWN_WAIT_MAX {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let _ = child.wait();
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_buffers_are_an_eighth_of_memory_within_bounds() {
        assert_eq!(shared_buffers_mb(Some(24 * 1024)), 2048);
        assert_eq!(shared_buffers_mb(Some(8 * 1024)), 1024);
        assert_eq!(shared_buffers_mb(Some(512)), 128);
        assert_eq!(shared_buffers_mb(None), 512);
    }

    #[test]
    fn the_engine_settings_name_the_shared_buffers_in_mb() {
        let options = EmbeddedOptions::engine();
        let (_, value) = options
            .settings
            .iter()
            .find(|(name, _)| name == "shared_buffers")
            .expect("shared_buffers is set");
        let mb: u64 = value.strip_suffix("MB").expect("in MB").parse().unwrap();
        assert!((128..=2048).contains(&mb), "{value}");
    }
}
