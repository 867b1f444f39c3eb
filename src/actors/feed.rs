//! The feed hub: fans engine events out to WebSocket sessions. It holds `Recipient`s
//! (never the session type) and sends with `try_send`, so a session that cannot keep
//! up loses messages — and is told so — instead of slowing the engine down. In cluster
//! mode it also hands this node's events to the cluster's relay (`RelayTo`, a bounded
//! queue: full, a publication is not relayed) and fans out the other nodes' events
//! (`Relayed`) to its own sessions, so a session on any node sees the whole cluster.
//! Stored transfers, the feed's bulk, are made and relayed only while a session of
//! this node or of another (`RemoteInterest`) listens to `transactions`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;

use crate::domain::{BankCode, Transfer};
use crate::metrics::Metrics;
use crate::views;

/// The channels a client can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Transactions,
    Windows,
    Settlements,
    Positions,
    Notifications,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Transactions,
        Channel::Windows,
        Channel::Settlements,
        Channel::Positions,
        Channel::Notifications,
    ];

    pub fn parse(text: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Transactions => "transactions",
            Channel::Windows => "windows",
            Channel::Settlements => "settlements",
            Channel::Positions => "positions",
            Channel::Notifications => "notifications",
        }
    }
}

/// Renders an event's `data` as one bank may see it.
pub type SeenBy = Arc<dyn Fn(&BankCode) -> Arc<str> + Send + Sync>;

/// One event, serialised once for every session that receives it.
#[derive(Clone)]
pub struct Event {
    pub channel: Channel,
    /// The message `type`, e.g. `transaction`, `window_netted` (owned when it came
    /// from another node of the cluster).
    pub kind: std::borrow::Cow<'static, str>,
    /// The banks the event concerns; empty for events of general interest (windows).
    pub banks: Vec<BankCode>,
    /// The `data` member, as JSON text.
    pub data: Arc<str>,
    /// For an event of general interest that carries per-bank detail (a netted
    /// window's positions): what a session limited to one bank gets instead of
    /// `data`, rendered once per bank per publication.
    pub seen_by: Option<SeenBy>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("channel", &self.channel)
            .field("kind", &self.kind)
            .field("banks", &self.banks)
            .field("data", &self.data)
            .field("seen_by", &self.seen_by.is_some())
            .finish()
    }
}

/// From any part of the engine: events to publish.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub Vec<Event>);

/// Cluster mode: this node's events go to `0` too (the relay to the other nodes),
/// and `transactions` are made whatever this node's sessions want.
/// Answers the flag of whether a session of this node listens to `transactions`.
#[derive(Message)]
#[rtype(result = "Arc<AtomicBool>")]
pub struct RelayTo(pub tokio::sync::mpsc::Sender<Vec<Event>>);

/// Cluster mode: whether a session of another node listens to `transactions` now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteInterest(pub bool);

/// Cluster mode: events of another node, for this node's sessions only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relayed(pub Vec<Event>);

/// From the store writer, after a batch commits: its transfers, accepted and rejected.
/// Serialised only if some session listens to `transactions`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransfersStored(pub Vec<Transfer>);

impl Event {
    pub fn new(channel: Channel, kind: &'static str, banks: Vec<BankCode>, data: String) -> Self {
        Event {
            channel,
            kind: kind.into(),
            banks,
            data: data.into(),
            seen_by: None,
        }
    }

    /// The same event, shown to a session limited to one bank as `seen_by` renders it.
    pub fn with_seen_by(mut self, seen_by: SeenBy) -> Self {
        self.seen_by = Some(seen_by);
        self
    }
}

/// To a session: the events of one publication that it wants, in order (one message
/// per session per publication, not per event: fan-out cost is per message).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<Event>);

/// To a session: the engine is stopping; close the connection now, with a close frame.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct EngineStopping;

/// To the hub: the engine is stopping; every session closes at once, so a graceful
/// stop does not wait for feed connections to end on their own.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll;

/// To a session: it fell behind and was unsubscribed; `missed` messages were dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Lagged {
    pub missed: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub id: u64,
    pub deliver: Recipient<Deliver>,
    pub lagged: Recipient<Lagged>,
    pub stopping: Recipient<EngineStopping>,
    /// For a bank's key: the only bank the session may ever hear.
    pub bank: Option<BankCode>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub id: u64,
}

/// A session's subscription: the channels, and optionally one bank.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub id: u64,
    pub channels: Vec<Channel>,
    pub bank: Option<BankCode>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: u64,
    pub channels: Vec<Channel>,
}

struct Session {
    deliver: Recipient<Deliver>,
    lagged: Recipient<Lagged>,
    stopping: Recipient<EngineStopping>,
    channels: HashSet<Channel>,
    bank: Option<BankCode>,
}

pub struct FeedHub {
    sessions: HashMap<u64, Session>,
    metrics: Arc<Metrics>,
    /// Whether any session listens to `transactions`: the writer skips copying its
    /// batches for the feed when none does.
    transactions_wanted: Arc<AtomicBool>,
    /// Set by `CloseAll`: a session that connects after it (its upgrade answered just
    /// before the stop) is closed at once too, instead of lingering until the server
    /// drops its connection without a close frame.
    stopping: bool,
    /// Cluster mode: where this node's events go for the other nodes.
    relay: Option<tokio::sync::mpsc::Sender<Vec<Event>>>,
    /// Whether a session of this node listens to `transactions` (what this node tells
    /// the others), and whether one of another node does.
    local_transactions_wanted: Arc<AtomicBool>,
    remote_transactions_wanted: bool,
}

impl FeedHub {
    pub fn new(metrics: Arc<Metrics>, transactions_wanted: Arc<AtomicBool>) -> Self {
        FeedHub {
            sessions: HashMap::new(),
            metrics,
            transactions_wanted,
            stopping: false,
            relay: None,
            local_transactions_wanted: Arc::default(),
            remote_transactions_wanted: false,
        }
    }

    /// Hands this node's events to the cluster's relay, if there is one; a full
    /// queue drops them (the other nodes' sessions miss them, as a lagging session
    /// would), never waits.
    fn relay(&self, events: &[Event]) {
        if let Some(relay) = &self.relay {
            if relay.try_send(events.to_vec()).is_err() {
                self.metrics
                    .ws_messages_dropped
                    .with_label_values(&["relay"])
                    .inc_by(events.len() as u64);
            }
        }
    }

    fn refresh_interest(&self) {
        let local = self
            .sessions
            .values()
            .any(|s| s.channels.contains(&Channel::Transactions));
        self.local_transactions_wanted
            .store(local, Ordering::Release);
        let wanted = local || (self.relay.is_some() && self.remote_transactions_wanted);
        self.transactions_wanted.store(wanted, Ordering::Release);
    }

    fn fan_out(&mut self, events: Vec<Event>) {
        if self.sessions.is_empty() {
            return;
        }
        let mut lagging: Vec<u64> = Vec::new();
        // Per-bank renderings of this publication, made on first need.
        let mut seen: HashMap<(usize, BankCode), Arc<str>> = HashMap::new();
        for (id, session) in &self.sessions {
            let wanted: Vec<Event> = events
                .iter()
                .enumerate()
                .filter(|(_, e)| Self::wants(session, e))
                .map(|(i, e)| match (&e.seen_by, &session.bank) {
                    (Some(render), Some(bank)) => {
                        let data = seen
                            .entry((i, bank.clone()))
                            .or_insert_with(|| render(bank))
                            .clone();
                        Event {
                            data,
                            seen_by: None,
                            ..e.clone()
                        }
                    }
                    _ => e.clone(),
                })
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let count = wanted.len() as u64;
            let channel = wanted[0].channel.as_str();
            match session.deliver.try_send(Deliver(wanted)) {
                Ok(()) => self
                    .metrics
                    .ws_messages_sent
                    .with_label_values(&[channel])
                    .inc_by(count),
                Err(_) => {
                    self.metrics
                        .ws_messages_dropped
                        .with_label_values(&[channel])
                        .inc_by(count);
                    lagging.push(*id);
                }
            }
        }
        for id in lagging {
            if let Some(session) = self.sessions.remove(&id) {
                session.lagged.do_send(Lagged { missed: 1 });
            }
        }
        self.refresh_interest();
    }

    fn wants(session: &Session, event: &Event) -> bool {
        session.channels.contains(&event.channel)
            && match &session.bank {
                None => true,
                Some(bank) => event.banks.is_empty() || event.banks.contains(bank),
            }
    }
}

impl Actor for FeedHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::MAILBOX_CAPACITY);
    }
}

impl Supervised for FeedHub {
    /// Sessions re-register on their next subscribe; until then they hear nothing.
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.metrics
            .actor_restarts
            .with_label_values(&["feed"])
            .inc();
        self.sessions.clear();
        self.refresh_interest();
    }
}

impl Handler<Publish> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        self.relay(&msg.0);
        self.fan_out(msg.0);
    }
}

impl Handler<RelayTo> for FeedHub {
    type Result = MessageResult<RelayTo>;

    fn handle(&mut self, msg: RelayTo, _: &mut Context<Self>) -> Self::Result {
        self.relay = Some(msg.0);
        self.refresh_interest();
        MessageResult(self.local_transactions_wanted.clone())
    }
}

impl Handler<RemoteInterest> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: RemoteInterest, _: &mut Context<Self>) {
        self.remote_transactions_wanted = msg.0;
        self.refresh_interest();
    }
}

impl Handler<Relayed> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Relayed, _: &mut Context<Self>) {
        self.fan_out(msg.0);
    }
}

impl Handler<TransfersStored> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: TransfersStored, _: &mut Context<Self>) {
        let events = msg
            .0
            .iter()
            .map(|t| {
                Event::new(
                    Channel::Transactions,
                    "transaction",
                    vec![t.sender.clone(), t.receiver.clone()],
                    views::text(views::transfer(t)),
                )
            })
            .collect::<Vec<_>>();
        if self.remote_transactions_wanted {
            self.relay(&events);
        }
        self.fan_out(events);
    }
}

impl Handler<Connect> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        if self.stopping {
            msg.stopping.do_send(EngineStopping);
            return;
        }
        self.sessions.insert(
            msg.id,
            Session {
                deliver: msg.deliver,
                lagged: msg.lagged,
                stopping: msg.stopping,
                channels: HashSet::new(),
                bank: msg.bank,
            },
        );
    }
}

impl Handler<CloseAll> for FeedHub {
    type Result = ();

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) {
        self.stopping = true;
        for (_, session) in self.sessions.drain() {
            session.stopping.do_send(EngineStopping);
        }
        self.refresh_interest();
    }
}

impl Handler<Disconnect> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.sessions.remove(&msg.id);
        self.refresh_interest();
    }
}

impl Handler<Subscribe> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        if let Some(session) = self.sessions.get_mut(&msg.id) {
            session.channels.extend(msg.channels);
            session.bank = msg.bank;
        }
        self.refresh_interest();
    }
}

impl Handler<Unsubscribe> for FeedHub {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if let Some(session) = self.sessions.get_mut(&msg.id) {
            for channel in msg.channels {
                session.channels.remove(&channel);
            }
        }
        self.refresh_interest();
    }
}

/// A handle to publish events from anywhere in the engine.
#[derive(Clone)]
pub struct Feed {
    pub hub: Addr<FeedHub>,
    transactions_wanted: Arc<AtomicBool>,
}

impl Feed {
    pub fn new(hub: Addr<FeedHub>, transactions_wanted: Arc<AtomicBool>) -> Self {
        Feed {
            hub,
            transactions_wanted,
        }
    }

    pub fn publish(&self, event: Event) {
        self.publish_all(vec![event]);
    }

    /// Events that belong together; each session gets those it wants in one delivery.
    pub fn publish_all(&self, events: Vec<Event>) {
        self.hub.do_send(Publish(events));
    }

    /// A committed batch's transfers for `transactions` (call only when wanted).
    pub fn transfers_stored(&self, transfers: Vec<Transfer>) {
        self.hub.do_send(TransfersStored(transfers));
    }

    /// Cluster mode: this node's events go to `relay` too; answers the flag of
    /// whether a session of this node listens to `transactions`.
    pub async fn relay_to(
        &self,
        relay: tokio::sync::mpsc::Sender<Vec<Event>>,
    ) -> Result<Arc<AtomicBool>, MailboxError> {
        self.hub.send(RelayTo(relay)).await
    }

    /// Cluster mode: whether a session of another node listens to `transactions`.
    pub fn remote_interest(&self, transactions: bool) {
        self.hub.do_send(RemoteInterest(transactions));
    }

    /// Cluster mode: another node's events, for this node's sessions.
    pub fn relayed(&self, events: Vec<Event>) {
        self.hub.do_send(Relayed(events));
    }

    /// Closes every feed session now (the engine is stopping).
    pub fn close_all(&self) {
        self.hub.do_send(CloseAll);
    }

    pub fn transactions_wanted(&self) -> bool {
        self.transactions_wanted.load(Ordering::Acquire)
    }

    /// The notification that an actor restarted.
    pub fn actor_restarted(&self, actor: &str, name: &str, banks: Vec<BankCode>) {
        self.publish(Event::new(
            Channel::Notifications,
            "actor_restarted",
            banks,
            views::actor_restarted(actor, name).to_string(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Stands in for a session: counts the stop notices it gets.
    struct Probe(Arc<AtomicUsize>);

    impl Actor for Probe {
        type Context = Context<Self>;
    }

    impl Handler<Deliver> for Probe {
        type Result = ();
        fn handle(&mut self, _: Deliver, _: &mut Context<Self>) {}
    }

    impl Handler<Lagged> for Probe {
        type Result = ();
        fn handle(&mut self, _: Lagged, _: &mut Context<Self>) {}
    }

    impl Handler<EngineStopping> for Probe {
        type Result = ();
        fn handle(&mut self, _: EngineStopping, _: &mut Context<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn connect(id: u64, probe: &Addr<Probe>) -> Connect {
        Connect {
            id,
            deliver: probe.clone().recipient(),
            lagged: probe.clone().recipient(),
            stopping: probe.clone().recipient(),
            bank: None,
        }
    }

    #[actix::test]
    async fn a_session_that_connects_after_the_stop_is_told_to_close_too() {
        let metrics = Arc::new(Metrics::new());
        let hub = FeedHub::new(metrics, Arc::new(AtomicBool::new(false))).start();
        let before = Arc::new(AtomicUsize::new(0));
        let after = Arc::new(AtomicUsize::new(0));
        let early = Probe(before.clone()).start();
        let late = Probe(after.clone()).start();
        hub.send(connect(1, &early)).await.unwrap();
        hub.send(CloseAll).await.unwrap();
        hub.send(connect(2, &late)).await.unwrap();
        // Let the probes' mailboxes run.
        for _ in 0..100 {
            if before.load(Ordering::SeqCst) == 1 && after.load(Ordering::SeqCst) == 1 {
                break;
            }
            actix::clock::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            before.load(Ordering::SeqCst),
            1,
            "connected before the stop"
        );
        assert_eq!(after.load(Ordering::SeqCst), 1, "connected after the stop");
    }
}
