//! The live feeds across the cluster (docs/SCALE-OUT.md): every node relays the events
//! its engine publishes (transfers stored, windows netted, instructions, notices) to
//! the other nodes, and fans theirs out to its own WebSocket sessions, so a session on
//! any node sees the whole cluster — a bank its own transfers wherever they were
//! decided, the operator everything.
//!
//! Core NATS publish and subscribe on `deltran-feed.<p>`, not the stream: a feed is
//! live, and a session that misses events is told so by its own node, as for a
//! session that lags. Each relay message holds a publication's events, in order (cut
//! into messages of at most `MESSAGE_BYTES_MAX`). An event that a session limited to
//! one bank sees differently (a netted window: only that bank's positions) travels
//! with its rendering for each bank of the registry. Stored transfers, the feed's
//! bulk, are relayed only while some other node has a session listening to
//! `transactions`: each node says whether it has one on `deltran-feed-interest.<p>`
//! when that changes and every second, and a node not heard from for
//! `INTEREST_EXPIRY` counts as having none.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::node::ClusterNode;
use crate::actors::feed::{Channel, Event, SeenBy};
use crate::actors::Engine;
use crate::domain::cluster::PartitionId;
use crate::domain::BankCode;
use crate::store::Store;

/// Publications waiting for the relay; past this the hub drops them.
const RELAY_QUEUE_MAX: usize = 1024;
/// Most bytes of events in one relay message (a NATS message is 1 MiB by default).
const MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// How long the relay renders per-bank views for the banks it last read.
const BANKS_REREAD_AFTER: Duration = Duration::from_secs(5);

/// How often a node looks at its sessions' interest, says it again when unchanged,
/// and forgets another node's when not heard from.
const INTEREST_CHECK: Duration = Duration::from_millis(250);
const INTEREST_REPEAT: Duration = Duration::from_secs(1);
const INTEREST_EXPIRY: Duration = Duration::from_secs(3);

fn feed_subject(partition: PartitionId) -> String {
    format!("deltran-feed.{}", partition.0)
}

fn interest_subject(partition: PartitionId) -> String {
    format!("deltran-feed-interest.{}", partition.0)
}

#[derive(Serialize, Deserialize)]
struct EventWire {
    channel: String,
    kind: String,
    banks: Vec<String>,
    /// The `data` member as JSON text.
    data: String,
    /// For an event a bank's session sees differently: its `data` per bank.
    seen: Option<BTreeMap<String, String>>,
}

fn to_wire(event: &Event, banks: &[BankCode]) -> EventWire {
    EventWire {
        channel: event.channel.as_str().to_string(),
        kind: event.kind.to_string(),
        banks: event.banks.iter().map(|b| b.as_str().to_string()).collect(),
        data: event.data.to_string(),
        seen: event.seen_by.as_ref().map(|render| {
            banks
                .iter()
                .map(|b| (b.as_str().to_string(), render(b).to_string()))
                .collect()
        }),
    }
}

/// An event of another node, as this node's hub fans it out; `None` when it does
/// not read. A bank the sending node did not know yet (registered within the last
/// seconds) sees a per-bank event's `data` as `null`, never another bank's detail.
fn from_wire(wire: EventWire) -> Option<Event> {
    let channel = Channel::parse(&wire.channel)?;
    let banks = wire
        .banks
        .iter()
        .map(|b| BankCode::parse(b).ok())
        .collect::<Option<Vec<_>>>()?;
    let mut event = Event {
        channel,
        kind: wire.kind.into(),
        banks,
        data: wire.data.into(),
        seen_by: None,
    };
    if let Some(seen) = wire.seen {
        let seen: BTreeMap<String, Arc<str>> = seen
            .into_iter()
            .map(|(bank, data)| (bank, data.into()))
            .collect();
        let render: SeenBy = Arc::new(move |bank: &BankCode| {
            seen.get(bank.as_str())
                .cloned()
                .unwrap_or_else(|| Arc::from("null"))
        });
        event = event.with_seen_by(render);
    }
    Some(event)
}

/// A publication's events as relay messages of at most `MESSAGE_BYTES_MAX` bytes
/// each (an event larger than that alone in its message).
fn messages(events: &[EventWire]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let json = serde_json::to_string(event).expect("serializable");
        if bytes + json.len() > MESSAGE_BYTES_MAX && !current.is_empty() {
            messages.push(format!("[{}]", current.join(",")).into_bytes());
            current.clear();
            bytes = 0;
        }
        bytes += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() {
        messages.push(format!("[{}]", current.join(",")).into_bytes());
    }
    messages
}

impl ClusterNode {
    /// Relays this node's events to the other nodes as its engine publishes them.
    pub(super) async fn relay_feed(self: Arc<Self>, engine: Engine, store: Store) {
        let (relay, mut published) = tokio::sync::mpsc::channel(RELAY_QUEUE_MAX);
        let local_interest = loop {
            match engine.feed.relay_to(relay.clone()).await {
                Ok(flag) => break flag,
                // The hub is restarting: its next incarnation takes it.
                Err(_) => tokio::time::sleep(INTEREST_CHECK).await,
            }
        };
        drop(relay);
        self.spawn_until_stopped(self.clone().share_interest(local_interest));
        let subject = feed_subject(self.partition);
        let mut banks: Vec<BankCode> = Vec::new();
        let mut banks_read: Option<Instant> = None;
        while let Some(events) = published.recv().await {
            let stale = banks_read.is_none_or(|at| at.elapsed() > BANKS_REREAD_AFTER);
            if stale && events.iter().any(|e| e.seen_by.is_some()) {
                if let Ok(read) = store.banks().await {
                    banks = read.into_iter().map(|b| b.code).collect();
                    banks_read = Some(Instant::now());
                }
            }
            let wire: Vec<EventWire> = events.iter().map(|e| to_wire(e, &banks)).collect();
            for message in messages(&wire) {
                if let Err(e) = self.client.publish(subject.clone(), message.into()).await {
                    tracing::debug!(error = %e, "feed events not relayed");
                }
            }
        }
    }

    /// Tells the other nodes whether a session of this node listens to
    /// `transactions`: when it changes, and every `INTEREST_REPEAT`.
    async fn share_interest(self: Arc<Self>, local: Arc<AtomicBool>) {
        let subject = interest_subject(self.partition);
        let mut said: Option<(bool, Instant)> = None;
        loop {
            let wanted = local.load(Ordering::Acquire);
            if said.is_none_or(|(w, at)| w != wanted || at.elapsed() >= INTEREST_REPEAT) {
                let payload = if wanted { "1" } else { "0" };
                if let Err(e) = self.client.publish(subject.clone(), payload.into()).await {
                    tracing::debug!(error = %e, "the feed's interest not said");
                }
                said = Some((wanted, Instant::now()));
            }
            tokio::time::sleep(INTEREST_CHECK).await;
        }
    }

    /// Tells this node's hub whether a session of another node listens to
    /// `transactions`, as the other nodes say it.
    pub(super) async fn read_interest(self: Arc<Self>, engine: Engine) {
        let own = interest_subject(self.partition);
        let mut heard = match self.client.subscribe("deltran-feed-interest.*").await {
            Ok(heard) => heard,
            Err(e) => return self.fail(format!("subscribing to the feed's interest: {e}")),
        };
        let mut others: HashMap<String, (bool, Instant)> = HashMap::new();
        let mut told = None;
        loop {
            if let Ok(message) = tokio::time::timeout(INTEREST_CHECK, heard.next()).await {
                let Some(message) = message else { return };
                if message.subject.as_str() != own {
                    let wanted = message.payload.as_ref() == b"1";
                    others.insert(message.subject.to_string(), (wanted, Instant::now()));
                }
            }
            let wanted = others
                .values()
                .any(|(w, at)| *w && at.elapsed() < INTEREST_EXPIRY);
            if told != Some(wanted) {
                engine.feed.remote_interest(wanted);
                told = Some(wanted);
            }
        }
    }

    /// Fans the other nodes' events out to this node's sessions.
    pub(super) async fn read_feed(self: Arc<Self>, engine: Engine) {
        let own = feed_subject(self.partition);
        let mut relayed = match self.client.subscribe("deltran-feed.*").await {
            Ok(relayed) => relayed,
            Err(e) => return self.fail(format!("subscribing to the cluster's feed: {e}")),
        };
        while let Some(message) = relayed.next().await {
            if message.subject.as_str() == own {
                continue;
            }
            match serde_json::from_slice::<Vec<EventWire>>(&message.payload) {
                Ok(wire) => engine
                    .feed
                    .relayed(wire.into_iter().filter_map(from_wire).collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "feed events of another node that do not read")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_travels_whole_and_a_bank_sees_only_its_rendering() {
        let icici = BankCode::parse("ICICI").unwrap();
        let enbd = BankCode::parse("ENBD").unwrap();
        let render: SeenBy = Arc::new(|bank: &BankCode| format!("{{\"bank\":\"{bank}\"}}").into());
        let event = Event::new(
            Channel::Windows,
            "window_netted",
            Vec::new(),
            "{\"all\":true}".into(),
        )
        .with_seen_by(render);
        let wire = to_wire(&event, std::slice::from_ref(&icici));
        let back = from_wire(serde_json::from_slice(&serde_json::to_vec(&wire).unwrap()).unwrap())
            .unwrap();
        assert_eq!(
            (back.channel, &*back.kind),
            (Channel::Windows, "window_netted")
        );
        assert_eq!(&*back.data, "{\"all\":true}");
        let seen_by = back.seen_by.unwrap();
        assert_eq!(&*seen_by(&icici), "{\"bank\":\"ICICI\"}");
        assert_eq!(&*seen_by(&enbd), "null");
        let bad = EventWire {
            channel: "gossip".into(),
            kind: "x".into(),
            banks: Vec::new(),
            data: "{}".into(),
            seen: None,
        };
        assert!(from_wire(bad).is_none());
    }

    #[test]
    fn a_large_publication_is_cut_into_messages_that_read_back_in_order() {
        let events: Vec<EventWire> = (0..3_000)
            .map(|i| EventWire {
                channel: "transactions".into(),
                kind: "transaction".into(),
                banks: vec!["ICICI".into()],
                data: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(400)),
                seen: None,
            })
            .collect();
        let cut = messages(&events);
        assert!(cut.len() > 1);
        let mut read = Vec::new();
        for message in &cut {
            assert!(message.len() <= MESSAGE_BYTES_MAX + 1024);
            let part: Vec<EventWire> = serde_json::from_slice(message).unwrap();
            read.extend(part.into_iter().map(|e| e.data));
        }
        let sent: Vec<String> = events.into_iter().map(|e| e.data).collect();
        assert_eq!(read, sent);
        assert!(messages(&[]).is_empty());
    }
}
