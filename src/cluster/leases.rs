//! Leases in a JetStream stream of their own, one subject per lease (one per
//! partition and one for the cut-off coordinator), keeping only each subject's last
//! message: a `Lease` (holder, fencing epoch, expiry) whose stream sequence is its
//! revision. A claim reads the last message and its sequence, decides with
//! `domain::cluster::claim`, and publishes on condition that the subject's last
//! sequence is still the one read (`Nats-Expected-Last-Subject-Sequence`, 0 for
//! none), so of two nodes claiming on one reading only one wins. This is what a
//! JetStream key-value bucket is underneath; the stream is used directly because
//! the client's bucket creation does not work with the 2.9 server Debian ships.
//! Expiry is compared with the claimant's clock: a skew only moves when a lease may
//! be taken, never whether a stale holder can write — its partition's store fences
//! it.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::wire::{lease_from_json, lease_to_json};
use super::{ClusterError, TransportSettings};
use crate::domain::cluster::{self, ClaimRefused, Lease, NodeId, PartitionId};

/// The stream's name.
pub const STREAM: &str = "DELTRAN_LEASES";

/// What a lease is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseKey {
    Partition(PartitionId),
    Coordinator,
}

impl LeaseKey {
    fn subject(&self) -> String {
        match self {
            LeaseKey::Partition(p) => format!("deltran-lease.partition.{}", p.0),
            LeaseKey::Coordinator => "deltran-lease.coordinator".to_string(),
        }
    }
}

/// A claim's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The claimant holds the lease now (a first claim, a renewal or a takeover).
    Holds(Lease),
    /// Another node holds it, live.
    Refused(ClaimRefused),
    /// Another claimant wrote between the reading and the write: read again.
    Lost,
}

pub struct Leases {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl Leases {
    /// The leases' stream, created if it is not there yet.
    pub async fn open(
        js: &jetstream::Context,
        settings: &TransportSettings,
    ) -> Result<Self, ClusterError> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_string(),
                subjects: vec!["deltran-lease.>".to_string()],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::unavailable("opening the leases' stream", &e))?;
        Ok(Leases {
            js: js.clone(),
            stream,
        })
    }

    /// The lease of `key` now, with its revision.
    pub async fn read(&self, key: LeaseKey) -> Result<Option<(u64, Lease)>, ClusterError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&key.subject())
            .await
        {
            Ok(message) => Ok(Some((message.sequence, lease_from_json(&message.payload)?))),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(ClusterError::unavailable("reading a lease", &e)),
        }
    }

    /// Claims (or renews) `key` for `node` at `now_ms`, for `ttl`.
    pub async fn claim(
        &self,
        key: LeaseKey,
        node: NodeId,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Claimed, ClusterError> {
        let ttl_ms = ttl.as_millis() as u64;
        self.propose(key, |current| cluster::claim(current, node, now_ms, ttl_ms))
            .await
    }

    /// The operator's move of `key` to `node`, whoever holds it: its epoch raised.
    /// Retries while other writers win, a few times.
    pub async fn hand_over(
        &self,
        key: LeaseKey,
        node: NodeId,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Lease, ClusterError> {
        let ttl_ms = ttl.as_millis() as u64;
        for _ in 0..8 {
            let moved = self
                .propose(key, |current| {
                    Ok(cluster::hand_over(current, node, now_ms, ttl_ms))
                })
                .await?;
            if let Claimed::Holds(lease) = moved {
                return Ok(lease);
            }
        }
        Err(ClusterError::Unavailable {
            what: "moving a lease",
            detail: "other writers kept winning".into(),
        })
    }

    /// Reads `key`'s lease, lets `decide` say what to write over it, and writes that
    /// on condition that nobody wrote in between.
    async fn propose(
        &self,
        key: LeaseKey,
        decide: impl FnOnce(Option<&Lease>) -> Result<Lease, ClaimRefused>,
    ) -> Result<Claimed, ClusterError> {
        let current = self.read(key).await?;
        match decide(current.as_ref().map(|(_, lease)| lease)) {
            Ok(lease) => {
                self.write(key, current.map(|(revision, _)| revision), lease)
                    .await
            }
            Err(refused) => Ok(Claimed::Refused(refused)),
        }
    }

    /// Writes `lease` if the subject's last message is still `revision` (none when
    /// `None`).
    async fn write(
        &self,
        key: LeaseKey,
        revision: Option<u64>,
        lease: Lease,
    ) -> Result<Claimed, ClusterError> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(lease_to_json(&lease).into())
            .expected_last_subject_sequence(revision.unwrap_or(0));
        let acked = match self.js.send_publish(key.subject(), publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(_) => Ok(Claimed::Holds(lease)),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(Claimed::Lost)
            }
            Err(e) => Err(ClusterError::unavailable("writing a lease", &e)),
        }
    }
}
