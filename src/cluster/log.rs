//! The replicated log between partitions: one stream (`DELTRAN_LEGS`) holding the
//! credit legs, on one subject per receiving partition, each until its receiver
//! acknowledged it; each leg published with its message
//! id (`CreditLeg::message_id`) so the stream drops a republication within its
//! duplicate window; each partition reading its subject through a durable pull
//! consumer whose messages stay unacknowledged (and come again after `ack_wait`)
//! until the caller has committed them and acknowledges. The cluster's result of each
//! window and the keys each partition shares are kept on another stream (`DELTRAN`),
//! the last message of each subject (a window's, a partition's) only; the registry's
//! records each partition is the home of, on a third (`DELTRAN_REGISTRY`), likewise.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;

use super::wire::{leg_from_json, leg_to_json};
use super::{ClusterError, TransportSettings};
use crate::domain::cluster::{CreditLeg, PartitionId};
use crate::domain::WindowId;

/// The credit legs' stream: a work queue, so a leg stays until its receiver's
/// consumer has acknowledged it (and only until then), whether or not that consumer
/// exists yet when the leg is published: the stream holds what is in flight.
pub const LEGS_STREAM: &str = "DELTRAN_LEGS";
/// The cluster's state on the log: each window's result and each partition's keys,
/// the last message of each subject only.
pub const STATE_STREAM: &str = "DELTRAN";
/// The registry as each partition last published what it is the home of
/// (`cluster::registry`), the last message of each subject only.
pub const REGISTRY_STREAM: &str = "DELTRAN_REGISTRY";
/// The registry stream's subjects begin so.
pub const REGISTRY_SUBJECTS: &str = "deltran.registry.";

fn credit_subject(partition: PartitionId) -> String {
    format!("deltran.credit.{}", partition.0)
}

/// The log as one node sees it.
pub struct Log {
    js: jetstream::Context,
    legs: stream::Stream,
    state: stream::Stream,
    registry: stream::Stream,
    settings: TransportSettings,
}

/// The stream's acknowledgement of a publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// The stream had the message already (within its duplicate window).
    pub duplicate: bool,
}

impl Log {
    /// The streams, created if they are not there yet.
    pub async fn open(
        js: jetstream::Context,
        settings: TransportSettings,
    ) -> Result<Self, ClusterError> {
        // File storage and the settings' replicas for all three.
        let open = |config: stream::Config, what: &'static str| {
            let js = &js;
            let config = stream::Config {
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                ..config
            };
            async move {
                js.get_or_create_stream(config)
                    .await
                    .map_err(|e| ClusterError::unavailable(what, &e))
            }
        };
        let legs = open(
            stream::Config {
                name: LEGS_STREAM.to_string(),
                subjects: vec!["deltran.credit.>".to_string()],
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: settings.duplicate_window,
                ..Default::default()
            },
            "opening the legs' stream",
        )
        .await?;
        let state = open(
            stream::Config {
                name: STATE_STREAM.to_string(),
                subjects: vec!["deltran.result.>".to_string(), "deltran.keys.>".to_string()],
                max_messages_per_subject: 1,
                duplicate_window: settings.duplicate_window,
                ..Default::default()
            },
            "opening the state's stream",
        )
        .await?;
        let registry = open(
            stream::Config {
                name: REGISTRY_STREAM.to_string(),
                subjects: vec![format!("{REGISTRY_SUBJECTS}>")],
                max_messages_per_subject: 1,
                ..Default::default()
            },
            "opening the registry's stream",
        )
        .await?;
        Ok(Log {
            js,
            legs,
            state,
            registry,
            settings,
        })
    }

    /// Publishes a credit leg to its receiver's partition and waits for the
    /// stream's acknowledgement: only then may the sender mark it published.
    pub async fn publish_leg(
        &self,
        to: PartitionId,
        leg: &CreditLeg,
    ) -> Result<Published, ClusterError> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(leg_to_json(leg).into())
            .message_id(leg.message_id());
        self.publish(credit_subject(to), publish, "publishing a credit leg")
            .await
    }

    /// Publishes `message` on `subject` and waits for the stream's acknowledgement.
    async fn publish(
        &self,
        subject: String,
        message: jetstream::message::PublishMessage,
        what: &'static str,
    ) -> Result<Published, ClusterError> {
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(|e| ClusterError::unavailable(what, &e))?
            .await
            .map_err(|e| ClusterError::unavailable("the stream's acknowledgement", &e))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// The credit legs for `partition`, through its durable consumer (created if
    /// it is not there yet).
    pub async fn credits(&self, partition: PartitionId) -> Result<Credits, ClusterError> {
        let name = format!("credits-{}", partition.0);
        let consumer = self
            .legs
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: credit_subject(partition),
                    // A work queue's consumer acknowledges each message.
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_ack_pending: self.settings.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ClusterError::unavailable("opening a partition's consumer", &e))?;
        Ok(Credits { consumer })
    }

    /// How many legs the legs' stream holds (those not acknowledged yet).
    pub async fn message_count(&self) -> Result<u64, ClusterError> {
        let mut stream = self.legs.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| ClusterError::unavailable("reading the stream's state", &e))?;
        Ok(info.state.messages)
    }
}

fn result_subject(window: WindowId) -> String {
    format!("deltran.result.{}", window.get())
}

impl Log {
    /// Publishes the cluster's result of `window` (its JSON view) and waits for the
    /// stream's acknowledgement. The message id is the window's, so that a second
    /// coordinator publishing the same window (a former one, not yet aware it was
    /// replaced) is dropped within the duplicate window; its result would be the same
    /// anyway, since it adds the same sealed sums.
    pub async fn publish_result(
        &self,
        window: WindowId,
        view: Vec<u8>,
    ) -> Result<Published, ClusterError> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(view.into())
            .message_id(format!("result-{}", window.get()));
        self.publish(
            result_subject(window),
            publish,
            "publishing a window's result",
        )
        .await
    }

    /// The cluster's result of `window` as published (its JSON view), if it is.
    pub async fn result(&self, window: WindowId) -> Result<Option<Vec<u8>>, ClusterError> {
        match self
            .state
            .get_last_raw_message_by_subject(&result_subject(window))
            .await
        {
            Ok(message) => Ok(Some(message.payload.to_vec())),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(ClusterError::unavailable("reading a window's result", &e)),
        }
    }
}

fn keys_subject(partition: PartitionId) -> String {
    format!("deltran.keys.{}", partition.0)
}

impl Log {
    /// Publishes the keys `partition`'s store holds (their JSON: ids, roles, banks and
    /// hashes, never secrets), all of them in one message that replaces the last.
    pub async fn publish_keys(
        &self,
        partition: PartitionId,
        keys: Vec<u8>,
    ) -> Result<(), ClusterError> {
        let publish = jetstream::message::PublishMessage::build().payload(keys.into());
        self.publish(keys_subject(partition), publish, "publishing keys")
            .await
            .map(|_| ())
    }

    /// Every partition's keys as last published, then each new publication: an
    /// ordered consumer (recreated by the client when it misses a message) starting
    /// at the last message of each partition's subject.
    pub async fn shared_keys(&self) -> Result<SharedKeys, ClusterError> {
        let messages = last_per_subject(&self.state, "deltran.keys.>", "the keys").await?;
        Ok(SharedKeys { messages })
    }
}

impl Log {
    /// Publishes `payload` on the registry's `subject` (after `REGISTRY_SUBJECTS`),
    /// replacing its last message.
    pub async fn publish_registry(
        &self,
        subject: &str,
        payload: Vec<u8>,
    ) -> Result<(), ClusterError> {
        let publish = jetstream::message::PublishMessage::build().payload(payload.into());
        let subject = format!("{REGISTRY_SUBJECTS}{subject}");
        self.publish(subject, publish, "publishing the registry")
            .await
            .map(|_| ())
    }

    /// The last message of every registry subject, then each new one, as (subject
    /// after `REGISTRY_SUBJECTS`, payload): an ordered consumer.
    pub async fn registry(&self) -> Result<RegistryMessages, ClusterError> {
        let filter = format!("{REGISTRY_SUBJECTS}>");
        let messages = last_per_subject(&self.registry, &filter, "the registry").await?;
        Ok(RegistryMessages { messages })
    }
}

/// The registry's subject of the cluster's assignment of banks to partitions.
pub const ASSIGNMENT_SUBJECT: &str = "assignment";

impl Log {
    /// The cluster's assignment of banks to partitions, as the log keeps it: the one
    /// stored, or `proposed` when none is (the first node to start stores its own;
    /// of two storing at once, one wins and the other reads it).
    pub async fn assignment(&self, proposed: &str) -> Result<String, ClusterError> {
        let subject = format!("{REGISTRY_SUBJECTS}{ASSIGNMENT_SUBJECT}");
        loop {
            match self
                .registry
                .get_last_raw_message_by_subject(&subject)
                .await
            {
                Ok(stored) => {
                    return String::from_utf8(stored.payload.to_vec())
                        .map_err(|e| ClusterError::malformed("the stored assignment", &e))
                }
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(ClusterError::unavailable("reading the assignment", &e)),
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(proposed.as_bytes().to_vec().into())
                .expected_last_subject_sequence(0);
            let stored = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match stored {
                Ok(_) => return Ok(proposed.to_string()),
                // Another node stored one first: read it.
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {}
                Err(e) => return Err(ClusterError::unavailable("storing the assignment", &e)),
            }
        }
    }
}

/// The last message of each of `stream`'s subjects under `filter`, then each new one:
/// an ordered consumer (recreated by the client when it misses a message).
async fn last_per_subject(
    stream: &stream::Stream,
    filter: &str,
    what: &'static str,
) -> Result<pull::Ordered, ClusterError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            // The server takes "last per subject" only with a filter.
            filter_subject: filter.to_string(),
            deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::unavailable(what, &e))?;
    consumer
        .messages()
        .await
        .map_err(|e| ClusterError::unavailable(what, &e))
}

/// The registry's messages as they are published.
pub struct RegistryMessages {
    messages: pull::Ordered,
}

impl RegistryMessages {
    pub async fn next(&mut self) -> Option<Result<(String, Vec<u8>), ClusterError>> {
        let message = self.messages.next().await?;
        Some(
            message
                .map_err(|e| ClusterError::unavailable("reading the registry", &e))
                .map(|m| {
                    let subject = m
                        .subject
                        .strip_prefix(REGISTRY_SUBJECTS)
                        .unwrap_or_default();
                    (subject.to_string(), m.payload.to_vec())
                }),
        )
    }
}

/// The partitions' keys as they are published.
pub struct SharedKeys {
    messages: pull::Ordered,
}

impl SharedKeys {
    /// The next publication: the partition and its keys' JSON.
    pub async fn next(&mut self) -> Option<Result<(PartitionId, Vec<u8>), ClusterError>> {
        let message = self.messages.next().await?;
        Some(
            message
                .map_err(|e| ClusterError::unavailable("reading the keys", &e))
                .and_then(|m| {
                    let partition = m
                        .subject
                        .strip_prefix("deltran.keys.")
                        .and_then(|p| p.parse().ok())
                        .map(PartitionId)
                        .ok_or_else(|| ClusterError::malformed("a keys subject", &m.subject))?;
                    Ok((partition, m.payload.to_vec()))
                }),
        )
    }
}

/// A partition's credit legs as they are delivered.
pub struct Credits {
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

/// One delivered leg, to be acknowledged once its credit is committed (or, when
/// it does not read, once the fault is recorded: it would never read).
pub struct Delivered {
    pub leg: Result<CreditLeg, ClusterError>,
    /// How many times it has been delivered, this time included.
    pub deliveries: i64,
    message: jetstream::Message,
}

impl Delivered {
    /// Acknowledges it, waiting for the server's confirmation: a leg whose
    /// acknowledgement is not confirmed may come again (and is applied once).
    pub async fn ack(self) -> Result<(), ClusterError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| ClusterError::unavailable("acknowledging a credit leg", &*e))
    }
}

impl Credits {
    /// Up to `max` legs, waiting at most `wait` for the first.
    pub async fn next_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivered>, ClusterError> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| ClusterError::unavailable("fetching credit legs", &e))?;
        let mut batch = Vec::new();
        while let Some(message) = messages.next().await {
            let message =
                message.map_err(|e| ClusterError::unavailable("fetching credit legs", &*e))?;
            let deliveries = message.info().map_or(1, |info| info.delivered);
            batch.push(Delivered {
                leg: leg_from_json(&message.payload),
                deliveries,
                message,
            });
        }
        Ok(batch)
    }
}
