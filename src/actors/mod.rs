//! The actors that hold the engine's changing state: one per bank, corridor and
//! clearing window, the window clock, the feed hub and the store writer that makes
//! transfers durable in group commits; and the commands that change that state
//! (`commands`). Each actor runs under an actix `Supervisor`; handler panics are
//! contained so the supervisor can restart the actor, which then rebuilds its state
//! from the store.

pub mod bank;
pub mod clock;
pub mod commands;
pub mod corridor;
pub mod faults;
pub mod feed;
pub mod keys;
pub mod screening;
mod screening_commands;
mod settlement;
pub mod window;
pub mod writer;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use std::future::Future;

use actix::fut::{ActorFuture, ActorFutureExt, WrapFuture};
use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Message, SpawnHandle};
use futures_util::FutureExt as _;

use crate::domain::{BankCode, BankRecord, BankStatus, CorridorId, CorridorRecord, WindowId};
use crate::metrics::Metrics;
use crate::store::Store;

pub use bank::BankActor;
pub use clock::{WindowClock, WindowSettings};
pub use commands::{ClosedWindow, CommandError, Submitted};
pub use corridor::{CorridorActor, CorridorTerms};
pub use writer::StoreWriter;

/// Mailbox capacity of bank and corridor actors for `send()` callers; `do_send`
/// ignores it, so the real bound on queued work is the HTTP admission limit.
pub const MAILBOX_CAPACITY: usize = 4096;

/// Test hook: makes the receiving actor panic inside its handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// How to reach a bank: its actor and whether it may receive transfers right now
/// (read by HTTP handlers without a round trip to the receiver's actor).
#[derive(Clone)]
pub struct BankHandle {
    pub addr: Addr<BankActor>,
    active: Arc<AtomicBool>,
}

impl BankHandle {
    pub fn new(addr: Addr<BankActor>, active: Arc<AtomicBool>) -> Self {
        BankHandle { addr, active }
    }

    pub fn status(&self) -> BankStatus {
        if self.active.load(Ordering::Acquire) {
            BankStatus::Active
        } else {
            BankStatus::Suspended
        }
    }
}

/// Where each bank and corridor actor lives. Banks and corridors may be added while
/// the engine runs, so the maps sit behind a lock read on every submission.
#[derive(Default)]
pub struct Directory {
    banks: RwLock<HashMap<BankCode, BankHandle>>,
    /// Each corridor's actor and the terms it publishes.
    corridors: RwLock<HashMap<CorridorId, (Addr<CorridorActor>, CorridorTerms)>>,
    /// Transfers queued in every bank's queue (see `bank::QueueSettings`).
    queued_total: Arc<AtomicI64>,
}

impl Directory {
    /// Transfers queued in every bank now.
    pub fn queued_total(&self) -> i64 {
        self.queued_total.load(Ordering::Acquire)
    }

    pub fn bank(&self, code: &BankCode) -> Option<BankHandle> {
        self.banks.read().expect("lock").get(code).cloned()
    }

    /// A bank's status, without a copy of its actor's address (which allocates).
    pub fn bank_status(&self, code: &BankCode) -> Option<BankStatus> {
        self.banks
            .read()
            .expect("lock")
            .get(code)
            .map(BankHandle::status)
    }

    pub fn add_bank(&self, code: BankCode, handle: BankHandle) {
        self.banks.write().expect("lock").insert(code, handle);
    }

    pub fn corridor(&self, id: &CorridorId) -> Option<Addr<CorridorActor>> {
        self.corridors
            .read()
            .expect("lock")
            .get(id)
            .map(|(addr, _)| addr.clone())
    }

    /// The terms a corridor's actor publishes, to quote from.
    pub fn corridor_terms(&self, id: &CorridorId) -> Option<CorridorTerms> {
        self.corridors
            .read()
            .expect("lock")
            .get(id)
            .map(|(_, terms)| terms.clone())
    }

    pub fn add_corridor(&self, id: CorridorId, addr: Addr<CorridorActor>, terms: CorridorTerms) {
        self.corridors
            .write()
            .expect("lock")
            .insert(id, (addr, terms));
    }

    /// Every bank's handle, in code order: one consistent list for a broadcast.
    pub fn banks(&self) -> Vec<(BankCode, BankHandle)> {
        let mut banks: Vec<(BankCode, BankHandle)> = self
            .banks
            .read()
            .expect("lock")
            .iter()
            .map(|(code, handle)| (code.clone(), handle.clone()))
            .collect();
        banks.sort_by(|a, b| a.0.cmp(&b.0));
        banks
    }
}

/// An actor whose handlers run inside `guard`.
pub trait Guarded: Actor<Context = Context<Self>> {
    /// The label for metrics and logs (`bank`, `corridor`).
    fn kind(&self) -> &'static str;
    fn metrics(&self) -> &Metrics;
}

/// Runs a handler body, catching a panic: the panic is counted and logged and the
/// actor is stopped, so that its supervisor restarts it and `restarting()` rebuilds
/// its state. A caller waiting on the panicking message sees its reply dropped.
pub fn guard<A: Guarded, R>(
    act: &mut A,
    ctx: &mut Context<A>,
    body: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(|| body(act, ctx))) {
        Ok(value) => Some(value),
        Err(payload) => {
            panicked(act, ctx, payload);
            None
        }
    }
}

/// Runs `work` on the actor's context, then `then` with its result, both contained as
/// a handler is (`guard`): a panic while the future is polled (a store call, netting)
/// or in its continuation (a batch's completion) is counted, logged and stops the
/// actor for its supervisor to restart, instead of killing it for good.
pub fn spawn_contained<A, T>(
    act: &mut A,
    ctx: &mut Context<A>,
    work: impl Future<Output = T> + 'static,
    then: impl FnOnce(T, &mut A, &mut Context<A>) + 'static,
) -> SpawnHandle
where
    A: Guarded,
    T: 'static,
{
    ctx.spawn(contained(act, work, then))
}

/// `spawn_contained`, but the actor handles no other message until it is done.
pub fn wait_contained<A, T>(
    act: &mut A,
    ctx: &mut Context<A>,
    work: impl Future<Output = T> + 'static,
    then: impl FnOnce(T, &mut A, &mut Context<A>) + 'static,
) where
    A: Guarded,
    T: 'static,
{
    ctx.wait(contained(act, work, then));
}

fn contained<A, T>(
    act: &A,
    work: impl Future<Output = T> + 'static,
    then: impl FnOnce(T, &mut A, &mut Context<A>) + 'static,
) -> impl ActorFuture<A, Output = ()>
where
    A: Guarded,
    T: 'static,
{
    AssertUnwindSafe(work).catch_unwind().into_actor(act).map(
        move |result, act, ctx| match result {
            Ok(value) => {
                guard(act, ctx, |act, ctx| then(value, act, ctx));
            }
            Err(payload) => panicked(act, ctx, payload),
        },
    )
}

/// A contained panic: counted, logged, and the actor stopped so that its supervisor
/// restarts it.
fn panicked<A: Guarded>(act: &mut A, ctx: &mut Context<A>, payload: Box<dyn std::any::Any + Send>) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    act.metrics()
        .actor_panics
        .with_label_values(&[act.kind()])
        .inc();
    tracing::error!(actor = act.kind(), panic = %what, "actor panicked; restarting it");
    ctx.stop();
}

/// Now, to the microsecond the store keeps, so that what is answered before a
/// read-back shows the same time as the row (`created_at`, `status_at`).
pub fn now_micros() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// What the actor tree starts from.
pub struct EngineSetup {
    pub writer: writer::WriterLimits,
    pub windows: WindowSettings,
    /// The open window, if it holds no transfer yet (see `writer::TrustWindowsFrom`).
    pub empty_open_window: Option<WindowId>,
    pub banks: Vec<BankRecord>,
    pub corridors: Vec<CorridorRecord>,
    /// Every stored API key.
    pub keys: Vec<crate::domain::auth::KeyRecord>,
    /// A queued transfer not released within this many windows expires.
    pub queue_ttl_windows: u32,
    /// The screening list as stored, and the scores that decide.
    pub screening: Vec<crate::domain::screening::ScreeningEntry>,
    pub screening_thresholds: crate::domain::screening::Thresholds,
    /// Cluster mode: the banks this engine's partition owns (it decides transfers
    /// only of those); `None` when the engine runs alone and owns every bank.
    pub owned: Option<OwnedBanks>,
}

/// The banks a partition owns, in cluster mode.
#[derive(Clone, Debug)]
pub struct OwnedBanks {
    pub assignment: crate::domain::cluster::Assignment,
    pub partition: crate::domain::cluster::PartitionId,
    /// Set by the node's relay while the outbox of credit legs owed to other
    /// partitions is full (the log unreachable for long): transfers to their banks
    /// are refused until it is not.
    pub credits_backlogged: Arc<AtomicBool>,
}

/// The running actor tree: handles to start new bank and corridor actors on the
/// engine's own arbiter and to reach the store writer.
#[derive(Clone)]
pub struct Engine {
    pub feed: feed::Feed,
    pub directory: Arc<Directory>,
    pub writer: Addr<StoreWriter>,
    pub clock: Addr<WindowClock>,
    /// The keys callers may present, kept in step with the store.
    pub keys: Arc<keys::KeyRing>,
    arbiter: actix::ArbiterHandle,
    store: Store,
    metrics: Arc<Metrics>,
    queue_ttl_windows: u32,
    /// The screening index every submission is checked against.
    pub screening: Arc<screening::Screening>,
    owned: Option<OwnedBanks>,
}

impl Engine {
    /// Starts the writer, the window clock and one supervised actor per bank and
    /// corridor on `arbiter`.
    pub fn start(
        arbiter: actix::ArbiterHandle,
        store: Store,
        metrics: Arc<Metrics>,
        setup: EngineSetup,
    ) -> Self {
        let EngineSetup {
            writer: limits,
            windows,
            empty_open_window,
            banks,
            corridors,
            keys: stored_keys,
            queue_ttl_windows,
            screening,
            screening_thresholds,
            owned,
        } = setup;
        let directory = Arc::new(Directory::default());
        let transactions_wanted = Arc::new(AtomicBool::new(false));
        let feed = {
            let (metrics, wanted) = (metrics.clone(), transactions_wanted.clone());
            let hub = actix::Supervisor::start_in_arbiter(&arbiter, move |_| {
                feed::FeedHub::new(metrics, wanted)
            });
            feed::Feed::new(hub, transactions_wanted)
        };
        let writer = {
            let (store, directory, metrics, feed) = (
                store.clone(),
                directory.clone(),
                metrics.clone(),
                feed.clone(),
            );
            actix::Supervisor::start_in_arbiter(&arbiter, move |_| {
                StoreWriter::new(store, directory, metrics, feed, limits)
            })
        };
        if let Some(window) = empty_open_window {
            writer.do_send(writer::TrustWindowsFrom(window));
        }
        let clock = {
            let (store, directory, writer, metrics, feed) = (
                store.clone(),
                directory.clone(),
                writer.clone(),
                metrics.clone(),
                feed.clone(),
            );
            actix::Supervisor::start_in_arbiter(&arbiter, move |_| {
                WindowClock::new(store, directory, writer, metrics, feed, windows)
            })
        };
        let key_ring = Arc::new(keys::KeyRing::default());
        key_ring.replace_all(stored_keys, key_ring.version());
        reload_keys_forever(&arbiter, store.clone(), key_ring.clone());
        let engine = Engine {
            feed,
            directory,
            writer,
            clock,
            keys: key_ring,
            arbiter,
            store,
            metrics,
            queue_ttl_windows,
            screening: Arc::new(screening::Screening::new(screening, screening_thresholds)),
            owned,
        };
        for bank in banks {
            engine.start_bank(bank);
        }
        for corridor in corridors {
            engine.start_corridor(corridor);
        }
        engine
    }

    fn start_bank(&self, record: BankRecord) {
        let code = record.code.clone();
        let active = Arc::new(AtomicBool::new(false));
        let addr = {
            let (writer, metrics, active, feed) = (
                self.writer.clone(),
                self.metrics.clone(),
                active.clone(),
                self.feed.clone(),
            );
            let queue = bank::QueueSettings {
                ttl_windows: self.queue_ttl_windows,
                queued_total: self.directory.queued_total.clone(),
            };
            actix::Supervisor::start_in_arbiter(&self.arbiter, move |_| {
                BankActor::new(record, writer, metrics, feed, active, queue)
            })
        };
        self.directory.add_bank(code, BankHandle::new(addr, active));
    }

    fn start_corridor(&self, record: CorridorRecord) {
        let id = record.id;
        let terms = CorridorTerms::new(record);
        let addr = {
            let (terms, store, metrics, feed) = (
                terms.clone(),
                self.store.clone(),
                self.metrics.clone(),
                self.feed.clone(),
            );
            actix::Supervisor::start_in_arbiter(&self.arbiter, move |_| {
                CorridorActor::new(terms, store, metrics, feed)
            })
        };
        self.directory.add_corridor(id, addr, terms);
    }

    /// Waits until every transfer handed to the writer so far is committed or failed.
    pub async fn drain(&self) -> bool {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.writer.do_send(writer::Drain { reply });
        done.await.is_ok()
    }
}

/// Re-reads the keys every `KEY_RELOAD_INTERVAL`, so that keys made or revoked with
/// the command line take effect without a restart. A failed read keeps the ring.
fn reload_keys_forever(arbiter: &actix::ArbiterHandle, store: Store, ring: Arc<keys::KeyRing>) {
    arbiter.spawn(async move {
        let mut tick = tokio::time::interval(keys::KEY_RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let version = ring.version();
            match store.keys().await {
                Ok(records) => ring.replace_all(records, version),
                Err(error) => tracing::debug!(error = %crate::telemetry::error_chain(&error),
                                              "keys not re-read; keeping the last ones"),
            }
        }
    });
}
