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

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    /// enough shared buffers that backends do not evict dirty pages mid-insert, and
    /// enough WAL between checkpoints that a sustained load does not force them.
    pub fn engine() -> Self {
        EmbeddedOptions {
            settings: [
                ("shared_buffers", "512MB"),
                ("max_wal_size", "4GB"),
                ("wal_buffers", "32MB"),
                // New WAL segments are not zero-filled first: a 64 MB write stall
                // each time one is created. Data is still fsynced at every commit.
                ("wal_init_zero", "off"),
                ("min_wal_size", "1GB"),
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

/// A running embedded cluster; dropping it stops the cluster.
pub struct EmbeddedPostgres {
    child: Option<Child>,
    socket_dir: PathBuf,
    log_path: PathBuf,
    location: Location,
}

/// Where a data directory's cluster lives: `home` holds `pg/` (the cluster) and the
/// logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub home: PathBuf,
    /// The data directory is out of the `postgres` user's reach, so `home` is
    /// [`relocated_home`] instead of the data directory itself.
    pub relocated: bool,
}

impl Location {
    /// The cluster's own directory (`postgres -D`).
    pub fn cluster_dir(&self) -> PathBuf {
        self.home.join("pg")
    }
}

/// The home of the cluster of `data_dir` (a canonical path) when the `postgres` user
/// cannot reach it: `<base>/<name>-<hash>`, where `name` is the data directory's last
/// component (letters, digits, `.`, `_` and `-` kept, others as `_`, at most 32) and
/// `hash` 12 hex digits of the FNV-1a hash of the whole path. It depends on the path
/// alone, so every process (a restart, `deltran audit`) derives the same place.
pub fn relocated_home(base: &Path, data_dir: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name: String = data_dir
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let name = match name.trim_start_matches('.') {
        "" => "data",
        trimmed => trimmed,
    };
    // FNV-1a, 64 bits: stable across Rust releases, unlike the std hasher.
    let hash = data_dir
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    base.join(format!("{name}-{:012x}", hash >> 16))
}

#[derive(Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
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

    /// Whether the postmaster is still running; with the log's tail when it is not.
    pub fn check_alive(&mut self) -> Result<(), EmbeddedError> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
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

fn find_binaries() -> Result<PathBuf, EmbeddedError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("DELTRAN_PG_BIN").map(PathBuf::from) {
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(EmbeddedError::NotInstalled)
        };
    }
    // Debian's versioned directories first (the newest), then PATH.
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| has_both(p))
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versioned.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).find(|d| has_both(d)))
        .and_then(|found| found)
        .ok_or(EmbeddedError::NotInstalled)
}

fn run_as() -> Result<Option<RunAs>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(EmbeddedError::NoPostgresUser);
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

/// Where the cluster of the (canonical) data directory `root` lives: in `root` itself,
/// unless the engine runs as root and the `postgres` user cannot reach `root`.
fn locate(root: &Path, run_as: Option<RunAs>) -> Result<Location, EmbeddedError> {
    match run_as {
        Some(user) if !is_reachable(root, user)? => Ok(Location {
            home: relocated_home(Path::new(RELOCATED_BASE), root),
            relocated: true,
        }),
        _ => Ok(Location {
            home: root.to_path_buf(),
            relocated: false,
        }),
    }
}

/// Creates [`RELOCATED_BASE`] (root's, mode 0755) if missing and `home` in it (the
/// `postgres` user's, mode 0700).
fn prepare_relocated_home(home: &Path, user: RunAs) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = home.parent().expect("a relocated home has a parent");
    if !base.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(base)?;
        // Whatever the umask: the `postgres` user must pass through.
        fs::set_permissions(base, fs::Permissions::from_mode(0o755))?;
    }
    if !is_reachable(home, user)? {
        return Err(EmbeddedError::Unreachable(home.to_path_buf()));
    }
    match fs::DirBuilder::new().mode(0o700).create(home) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    chown(home, user)?;
    Ok(())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether every ancestor of `dir` lets the postgres user pass through.
fn is_reachable(dir: &Path, user: RunAs) -> Result<bool, EmbeddedError> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)?;
        let mode = meta.mode();
        let passable = mode & 0o001 != 0
            || (meta.uid() == user.uid && mode & 0o100 != 0)
            || (meta.gid() == user.gid && mode & 0o010 != 0);
        if !passable {
            return Ok(false);
        }
    }
    Ok(true)
}

fn chown(path: &Path, user: RunAs) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
}

/// Sets the child's user, process group and parent-death signal. Done in one
/// `pre_exec` because changing the uid clears the parent-death signal.
fn prepare_child(cmd: &mut Command, run_as: Option<RunAs>, die_with_parent: bool) {
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own process group: a Ctrl-C in the terminal reaches only the engine,
            // which then stops the cluster after its last flush.
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(user) = run_as {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(user.gid) != 0
                    || libc::setuid(user.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            if die_with_parent {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() == 1 {
                    libc::_exit(1);
                }
            }
            Ok(())
        });
    }
}

fn initdb(
    bin: &Path,
    cluster: &Path,
    home: &Path,
    run_as: Option<RunAs>,
    options: &EmbeddedOptions,
) -> Result<(), EmbeddedError> {
    // A half-made cluster from an interrupted initdb is useless: start over.
    if cluster.exists() {
        fs::remove_dir_all(cluster)?;
    }
    let log_path = home.join("initdb.log");
    let log = fs::File::create(&log_path)?;
    if let Some(user) = run_as {
        chown(&log_path, user)?;
    }
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D").arg(cluster).args([
        "-U",
        EMBEDDED_USER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if let Some(size) = options.wal_segment_size_mb {
        cmd.arg(format!("--wal-segsize={size}"));
    }
    if options.initdb_no_sync {
        cmd.arg("--no-sync");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    prepare_child(&mut cmd, run_as, false);
    let status = cmd.status()?;
    if !status.success() {
        return Err(EmbeddedError::InitdbFailed {
            detail: format!("{status}; {}", log_tail(&log_path)),
            log: log_path,
        });
    }
    Ok(())
}

/// A postmaster killed with its engine may still be exiting; wait for it.
fn wait_for_stale_postmaster(cluster: &Path) -> Result<(), EmbeddedError> {
    let pid_file = cluster.join("postmaster.pid");
    let started = Instant::now();
    loop {
        let pid = fs::read_to_string(&pid_file).ok().and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
        });
        let Some(pid) = pid else { return Ok(()) };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            return Ok(());
        }
        if started.elapsed() > STALE_POSTMASTER_WAIT_MAX {
            return Err(EmbeddedError::AlreadyRunning {
                pid,
                dir: cluster.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Unix socket paths are limited to about 100 bytes, so the socket lives in a short
/// directory under /tmp named after the cluster's path.
fn socket_dir_for(cluster: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cluster.hash(&mut hasher);
    PathBuf::from(format!("/tmp/deltran-{:016x}", hasher.finish()))
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relocated_home_is_named_after_the_data_dir_and_its_path() {
        let base = Path::new("/var/lib/deltran");
        let home = relocated_home(base, Path::new("/root/deltran/deltran-data"));
        assert_eq!(home.parent(), Some(base));
        let name = home.file_name().unwrap().to_str().unwrap();
        let (stem, hash) = name.rsplit_once('-').unwrap();
        assert_eq!(stem, "deltran-data");
        assert_eq!(hash.len(), 12);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
        assert_eq!(
            relocated_home(base, Path::new("/root/deltran/deltran-data")),
            home,
            "the same path, the same home"
        );
    }

    #[test]
    fn the_relocated_home_is_stable_across_releases() {
        // FNV-1a of the path's bytes, not the std hasher (whose algorithm may change):
        // a restart after an upgrade must find the same cluster. The expected value
        // was computed apart from this code (Python, the FNV-1a 64 constants).
        assert_eq!(
            relocated_home(Path::new("/b"), Path::new("/root/deltran/deltran-data")),
            Path::new("/b/deltran-data-5c78aa2bb93f")
        );
    }

    #[test]
    fn two_data_dirs_of_the_same_name_get_two_homes() {
        let base = Path::new("/var/lib/deltran");
        let a = relocated_home(base, Path::new("/root/a/deltran-data"));
        let b = relocated_home(base, Path::new("/root/b/deltran-data"));
        assert_ne!(a, b);
    }

    #[test]
    fn odd_names_become_short_plain_ones() {
        let base = Path::new("/x");
        let odd = relocated_home(base, Path::new("/root/my data/dé ta;rm -rf"));
        let name = odd.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("d__ta_rm_-rf-"), "{name}");
        let long = relocated_home(base, &Path::new("/root").join("n".repeat(200)));
        let name = long.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 32 + 1 + 12, "{name}");
        let hidden = relocated_home(base, Path::new("/root/.data"));
        assert!(hidden
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("data-"));
        let root = relocated_home(base, Path::new("/"));
        assert!(root
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("data-"));
        // A socket directory under /tmp stays short whatever the data dir's name.
        let cluster = Location {
            home: long,
            relocated: true,
        }
        .cluster_dir();
        assert!(socket_dir_for(&cluster).as_os_str().len() < 40);
    }

    #[test]
    fn a_reachable_data_dir_keeps_its_cluster_and_a_private_one_is_relocated() {
        let scratch = std::env::temp_dir().join(format!(
            "deltran-locate-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let data = scratch.join("home/checkout/deltran-data");
        fs::create_dir_all(&data).unwrap();
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
        // A user that owns nothing here: only the "other" bits let it through.
        let nobody = RunAs {
            uid: 4_000_000_001,
            gid: 4_000_000_001,
        };
        fs::set_permissions(scratch.join("home"), fs::Permissions::from_mode(0o755)).unwrap();
        let here = locate(&data, Some(nobody)).unwrap();
        assert_eq!(
            here,
            Location {
                home: data.clone(),
                relocated: false
            }
        );
        assert_eq!(here.cluster_dir(), data.join("pg"));
        fs::set_permissions(scratch.join("home"), fs::Permissions::from_mode(0o700)).unwrap();
        let moved = locate(&data, Some(nobody)).unwrap();
        assert_eq!(
            moved,
            Location {
                home: relocated_home(Path::new(RELOCATED_BASE), &data),
                relocated: true
            }
        );
        // Not root: the cluster always stays in the data directory.
        assert!(!locate(&data, None).unwrap().relocated);
        fs::remove_dir_all(&scratch).unwrap();
    }
}
