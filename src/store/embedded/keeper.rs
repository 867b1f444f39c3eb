//! Keeps the engine's embedded cluster running: if its postmaster dies (killed, or
//! crashed past its own crash recovery), the keeper starts it again on the same data,
//! so the engine comes back on its own once Postgres does. While it is gone, the
//! engine answers `503` with `Retry-After` (the store's pool fails fast) and loses
//! nothing it acknowledged: an acknowledgement follows the commit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{EmbeddedOptions, EmbeddedPostgres};

/// How often the keeper looks at the postmaster, and waits between failed starts.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);
const RESTART_RETRY: Duration = Duration::from_secs(1);

/// The thread that owns the running cluster; [`ClusterKeeper::stop`] stops both.
pub struct ClusterKeeper {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClusterKeeper {
    /// Takes over `cluster`, started from `root` with `options`. A restarted
    /// postmaster is the keeper thread's child, so its parent-death signal is tied to
    /// that thread, which lives until `stop`.
    pub fn spawn(cluster: EmbeddedPostgres, root: PathBuf, options: EmbeddedOptions) -> Self {
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("postgres-keeper".into())
            .spawn(move || keep(cluster, &root, &options, &flag))
            .expect("spawn the cluster keeper thread");
        ClusterKeeper {
            stopping,
            thread: Some(thread),
        }
    }

    /// Stops the cluster (a fast shutdown) and waits for it.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClusterKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keep(
    mut cluster: EmbeddedPostgres,
    root: &std::path::Path,
    options: &EmbeddedOptions,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(CHECK_INTERVAL);
        let Err(died) = cluster.check_alive() else {
            continue;
        };
        tracing::error!(error = %died, "the embedded Postgres stopped; starting it again");
        loop {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            match EmbeddedPostgres::start(root, options) {
                Ok(started) => {
                    tracing::info!("the embedded Postgres is running again");
                    cluster = started;
                    break;
                }
                Err(error) => {
                    tracing::error!(error = %error, "the embedded Postgres did not start; retrying");
                    std::thread::sleep(RESTART_RETRY);
                }
            }
        }
    }
    cluster.stop();
}
