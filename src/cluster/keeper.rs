//! Holding a lease: a task that claims it (waiting while another node holds it
//! live), renews it a third of its life at a time, and tells what it holds through a
//! watch channel. It stops at the first sign that the lease is no longer its own —
//! refused at a renewal, re-won under another epoch after lapsing, or NATS silent
//! until the lease ran out — and reports it lost: the node must then stop acting on
//! what the lease covered (its store fences it anyway).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::leases::{Claimed, LeaseKey, Leases};
use crate::domain::cluster::{Lease, NodeId};

/// What the keeper holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Not yet: another node holds the lease live, or NATS has not answered.
    Waiting,
    Holds(Lease),
    /// It held this lease and no longer does; the keeper has stopped.
    Lost(Lease),
}

/// Milliseconds since the Unix epoch: leases' expiries are compared across nodes.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub struct LeaseKeeper {
    state: watch::Receiver<Holding>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts keeping `key` for `node`, each claim for `ttl`.
    pub fn start(leases: Arc<Leases>, key: LeaseKey, node: NodeId, ttl: Duration) -> Self {
        let (tell, state) = watch::channel(Holding::Waiting);
        let task = tokio::spawn(keep(leases, key, node, ttl, tell));
        LeaseKeeper { state, task }
    }

    pub fn state(&self) -> Holding {
        *self.state.borrow()
    }

    /// Waits until the lease is held (the lease), or was lost (`None`).
    pub async fn held(&mut self) -> Option<Lease> {
        self.until(|holding| match holding {
            Holding::Holds(lease) => Some(Some(lease)),
            Holding::Lost(_) => Some(None),
            Holding::Waiting => None,
        })
        .await
        .flatten()
    }

    /// Waits until the lease is lost (the lease it held).
    pub async fn lost(&mut self) -> Option<Lease> {
        self.until(|holding| match holding {
            Holding::Lost(lease) => Some(lease),
            _ => None,
        })
        .await
    }

    /// Waits until `seen` makes something of the state; `None` once the keeper is
    /// gone without it.
    async fn until<T>(&mut self, seen: impl Fn(Holding) -> Option<T>) -> Option<T> {
        loop {
            if let Some(found) = seen(*self.state.borrow_and_update()) {
                return Some(found);
            }
            self.state.changed().await.ok()?;
        }
    }

    /// Stops renewing without a word, as a crashed node does: the lease lapses.
    pub fn abandon(self) {
        drop(self);
    }
}

/// A keeper dropped stops renewing: its lease lapses (the holder's own process may
/// live on, as a node's does in tests, and must not keep a lease it no longer uses).
impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep(
    leases: Arc<Leases>,
    key: LeaseKey,
    node: NodeId,
    ttl: Duration,
    tell: watch::Sender<Holding>,
) {
    let every = ttl / 3;
    let mut held: Option<Lease> = None;
    loop {
        let outcome = leases.claim(key, node, wall_clock_ms(), ttl).await;
        match (outcome, held) {
            (Ok(Claimed::Holds(lease)), Some(before)) if lease.epoch != before.epoch => {
                // It lapsed and was won again: what ran under the former epoch is
                // fenced, and must start again under the new one.
                tracing::warn!(?key, epoch = before.epoch.0, "lease lapsed and was re-won");
                let _ = tell.send(Holding::Lost(before));
                return;
            }
            (Ok(Claimed::Holds(lease)), _) => {
                if held.is_none() {
                    tracing::info!(?key, epoch = lease.epoch.0, "lease won");
                }
                held = Some(lease);
                let _ = tell.send(Holding::Holds(lease));
            }
            (Ok(Claimed::Refused(refused)), Some(before)) => {
                tracing::warn!(?key, epoch = before.epoch.0, %refused, "lease lost");
                let _ = tell.send(Holding::Lost(before));
                return;
            }
            (Ok(Claimed::Refused(_)), None) => {}
            // Another claimant wrote between the reading and the write: read again.
            (Ok(Claimed::Lost), _) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            (Err(e), Some(before))
                if wall_clock_ms() + every.as_millis() as u64 >= before.expires_at_ms =>
            {
                tracing::warn!(?key, epoch = before.epoch.0, error = %e, "lease ran out unrenewed");
                let _ = tell.send(Holding::Lost(before));
                return;
            }
            (Err(e), _) => tracing::debug!(?key, error = %e, "lease claim failed; retrying"),
        }
        tokio::time::sleep(every).await;
    }
}
