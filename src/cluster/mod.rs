//! The scale-out transport (docs/SCALE-OUT.md): NATS JetStream carries what crosses
//! partitions, and holds who runs each one. `leases` keeps the leases in a stream of
//! their own, written by compare-and-set on the revision read, deciding each claim with
//! `domain::cluster::claim`, and `keeper` holds one (claims, renews, reports its
//! loss); `log` publishes credit legs to a replicated stream
//! (deduplicated by message id) and hands a partition's legs to it from a durable
//! consumer, acknowledged only when the caller has committed them; `wire` is their
//! form on the wire; `node` is the engine's cluster mode built on them: a node that
//! runs one partition under its lease, seals its windows when the coordinator says
//! so, and coordinates the cut-offs while it holds that lease.

pub mod feed;
pub mod keeper;
pub mod leases;
pub mod log;
pub mod node;
pub mod registry;
pub mod wire;

use std::time::Duration;

pub use keeper::{Holding, LeaseKeeper};
pub use leases::{Claimed, LeaseKey, Leases};
pub use log::{Credits, Delivered, Log, Published};
pub use node::{ClusterNode, Joined};

/// What went wrong talking to NATS, or with what it returned.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS did not answer, or refused: the operation may be retried.
    #[error("{what}: {detail}")]
    Unavailable { what: &'static str, detail: String },
    /// A message or entry that does not read as what it should be.
    #[error("{what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

impl ClusterError {
    pub(crate) fn unavailable(what: &'static str, e: &dyn std::fmt::Display) -> Self {
        ClusterError::Unavailable {
            what,
            detail: e.to_string(),
        }
    }

    pub(crate) fn malformed(what: &'static str, e: &dyn std::fmt::Display) -> Self {
        ClusterError::Malformed {
            what,
            detail: e.to_string(),
        }
    }
}

/// How the transport is set up: the same on every node of a cluster.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// Replicas of the stream and the lease bucket (1 to 5; 3 on a three-server
    /// cluster, so that one server's loss loses nothing).
    pub replicas: usize,
    /// How long the stream drops a message whose id it has seen.
    pub duplicate_window: Duration,
    /// How long a delivered message may stay unacknowledged before it is delivered
    /// again.
    pub ack_wait: Duration,
    /// The most messages a partition's consumer has delivered and not acknowledged.
    pub max_ack_pending: i64,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            replicas: 3,
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(10),
            max_ack_pending: 10_000,
        }
    }
}

/// Connects to a NATS cluster (any of its servers' URLs, comma-separated).
pub async fn connect(urls: &str) -> Result<async_nats::Client, ClusterError> {
    let urls: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    async_nats::ConnectOptions::new()
        .name("deltran")
        .connect(urls)
        .await
        .map_err(|e| ClusterError::unavailable("connecting to NATS", &e))
}
