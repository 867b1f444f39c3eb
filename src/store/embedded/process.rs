//! Running the cluster's programs: as the `postgres` user when the engine is root,
//! finding the server binaries, `initdb`, waiting out a stale postmaster, the socket
//! directory and the log's tail.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{EmbeddedError, EmbeddedOptions, EMBEDDED_USER, STALE_POSTMASTER_WAIT_MAX};

#[derive(Clone, Copy)]
pub(super) struct RunAs {
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
}

pub(super) fn find_binaries() -> Result<PathBuf, EmbeddedError> {
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

pub(super) fn run_as() -> Result<Option<RunAs>, EmbeddedError> {
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

pub(super) fn chown(path: &Path, user: RunAs) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
}

/// Sets the child's user, process group and parent-death signal. Done in one
/// `pre_exec` because changing the uid clears the parent-death signal.
pub(super) fn prepare_child(cmd: &mut Command, run_as: Option<RunAs>, die_with_parent: bool) {
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

pub(super) fn initdb(
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
pub(super) fn wait_for_stale_postmaster(cluster: &Path) -> Result<(), EmbeddedError> {
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
pub(super) fn socket_dir_for(cluster: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cluster.hash(&mut hasher);
    PathBuf::from(format!("/tmp/deltran-{:016x}", hasher.finish()))
}

pub(super) fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
