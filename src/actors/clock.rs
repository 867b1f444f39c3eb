//! The window clock: opens and closes clearing windows, on a timer or when the
//! operator asks, and starts one `WindowActor` per window.
//!
//! The cut-off is exact without a delay: the clock moves the store to the next window,
//! tells the writer which banks must answer, then tells each bank actor to cut off.
//! A bank switches to the next window and sends its marker to the writer with
//! `do_send`, on the same path as its transfers, so the marker arrives behind every
//! transfer it stamped with the old window. When every bank's marker is in and all
//! that came before them is committed (a writer barrier), the window is sealed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::bank::{CutOffBank, GridlockQuery, QueueStanding};
use super::faults::{NettingPanicSwitch, PanicInNextNetting, PanicWindow};
use super::feed::{Channel, Event, Feed};
use super::window::{Closing, NetNow, WindowActor, WindowSettled};
use super::writer::{BeginCutOff, StoreWriter};
use super::{guard, spawn_contained, wait_contained, BankHandle, Directory, Guarded, InjectPanic};
use crate::domain::gridlock::{self, Standing};
use crate::domain::{
    BankCode, CorridorRecord, Origin, QueuePriority, Transfer, TransferId, WindowId, WindowState,
};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;
use crate::views;
use rust_decimal::Decimal;

/// How long a cut-off waits for the banks' answers to a gridlock query; a bank that
/// has not answered by then takes no part in the resolution.
const GRIDLOCK_QUERY_WAIT_MAX: Duration = Duration::from_secs(1);

/// How long to wait before retrying a store operation that failed.
pub(super) const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Window timing and the demo settlement rail.
#[derive(Clone, Copy, Debug)]
pub struct WindowSettings {
    pub duration: Duration,
    /// Cluster mode: windows are cut only when the cluster's coordinator says so
    /// (through `CloseCurrent`), never by this clock's own timer, so that every
    /// partition's window W holds what the cluster's window W holds.
    pub cut_by_coordinator: bool,
    /// When set, a simulated rail confirms each instruction this long after netting.
    pub demo_settlement_delay: Option<Duration>,
}

/// Why a close the operator asked for did not happen (the clock retries on its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseFailed {
    #[error("the window could not be closed: the database is unavailable")]
    StoreUnavailable,
    #[error("the window clock restarted while closing")]
    ClockRestarted,
}

/// Operator: close the open window now. Answers (closed window, next window).
#[derive(Message)]
#[rtype(result = "Result<(WindowId, WindowId), CloseFailed>")]
pub struct CloseCurrent {
    /// Who asked, for the close's audit entry. A request that arrives while a cut-off
    /// is under way is answered by that one, which keeps its own origin.
    pub origin: Origin,
}

/// What a close by the timer (or its retry) is recorded as coming from.
const WINDOW_TIMER: Origin = Origin::Engine("window timer");

/// The open window's id.
#[derive(Message)]
#[rtype(result = "Option<WindowId>")]
pub struct CurrentWindow;

/// The open window's id and when the clock's timer will cut it off (for the
/// countdown of `GET /windows/current`); `None` while no timer is set.
#[derive(Message)]
#[rtype(result = "Option<(WindowId, DateTime<Utc>)>")]
pub struct ScheduledCutOff;

type CloseReply = tokio::sync::oneshot::Sender<Result<(WindowId, WindowId), CloseFailed>>;

pub struct WindowClock {
    store: Store,
    feed: Feed,
    directory: Arc<Directory>,
    writer: Addr<StoreWriter>,
    metrics: Arc<Metrics>,
    settings: WindowSettings,
    current: Option<WindowId>,
    closing: bool,
    /// Callers waiting for the cut-off in progress: one close answers them all.
    waiting: Vec<CloseReply>,
    /// Who asked for the next cut-off (the first request not yet served by one); a
    /// cut-off nobody asked for is the timer's.
    requested_by: Option<Origin>,
    windows: BTreeMap<WindowId, Addr<WindowActor>>,
    /// Windows whose cut-off this clock began (the writer and banks told): after a
    /// restart, a window the store says is closing but that is not here had its
    /// cut-off interrupted between the store's commit and the messages, and gets it.
    cut_off_begun: BTreeSet<WindowId>,
    timer: Option<SpawnHandle>,
    /// When `timer` fires: the open window's cut-off, or the next retry of one.
    timer_due: Option<DateTime<Utc>>,
    /// False after a supervisor restart: windows left closing are then still in the
    /// hands of their own actors and the writer, and must not be netted again.
    first_start: bool,
    /// Fault injection: shared with every window actor (see `faults`).
    netting_panic: NettingPanicSwitch,
}

impl WindowClock {
    pub fn new(
        store: Store,
        directory: Arc<Directory>,
        writer: Addr<StoreWriter>,
        metrics: Arc<Metrics>,
        feed: Feed,
        settings: WindowSettings,
    ) -> Self {
        WindowClock {
            store,
            feed,
            directory,
            writer,
            metrics,
            settings,
            current: None,
            closing: false,
            waiting: Vec::new(),
            requested_by: None,
            windows: BTreeMap::new(),
            cut_off_begun: BTreeSet::new(),
            timer: None,
            timer_due: None,
            first_start: true,
            netting_panic: NettingPanicSwitch::default(),
        }
    }

    fn window_actor(&mut self, window: WindowId, ctx: &mut Context<Self>) -> Addr<WindowActor> {
        if let Some(addr) = self.windows.get(&window) {
            return addr.clone();
        }
        let actor = WindowActor::new(
            window,
            self.store.clone(),
            self.directory.clone(),
            self.writer.clone(),
            ctx.address(),
            self.metrics.clone(),
            self.feed.clone(),
            self.settings.demo_settlement_delay,
            self.netting_panic.clone(),
        );
        let addr = Supervisor::start(move |_| actor);
        self.windows.insert(window, addr.clone());
        addr
    }

    fn schedule_close(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.settings.cut_by_coordinator {
            self.timer_due = None;
            return;
        }
        self.timer_due = due_after(self.settings.duration);
        self.timer = Some(ctx.run_later(self.settings.duration, |act, ctx| {
            act.timer = None;
            act.close(ctx, None);
        }));
    }

    /// Cut-off of the open window; answers the request's reply when the store has
    /// moved on. A request that arrives while a cut-off is under way is answered by
    /// that one. The cut-off is recorded as coming from the request that started it,
    /// or from the timer.
    fn close(&mut self, ctx: &mut Context<Self>, request: Option<(CloseReply, Origin)>) {
        if let Some((reply, origin)) = request {
            self.waiting.push(reply);
            if !self.closing {
                self.requested_by.get_or_insert(origin);
            }
        }
        // Still reading the windows at start: the close follows once they are read.
        let Some(window) = self.current else {
            return;
        };
        if self.closing {
            return;
        }
        self.closing = true;
        let started = Instant::now();
        let store = self.store.clone();
        let origin = self.requested_by.take().unwrap_or(WINDOW_TIMER);
        let cut = async move {
            match store.close_window(&origin, window).await {
                // An earlier attempt committed but its answer was lost (the database
                // went away mid-reply): the store has moved on, so carry on from the
                // window it opened instead of retrying a close that cannot succeed.
                Err(StoreError::NotFound) => match store.open_window().await? {
                    open if open > window => Ok(open),
                    _ => Err(StoreError::NotFound),
                },
                other => other,
            }
        };
        spawn_contained(self, ctx, cut, move |result, act, ctx| {
            act.closing = false;
            match result {
                Ok(next) => {
                    act.current = Some(next);
                    act.resolve_gridlock_and_cut_off(window, next, started, ctx);
                    act.schedule_close(ctx);
                    for reply in act.waiting.drain(..) {
                        let _ = reply.send(Ok((window, next)));
                    }
                }
                Err(error) => {
                    tracing::warn!(window = %window, error = %error_chain(&error), "cut-off failed; retrying");
                    for reply in act.waiting.drain(..) {
                        let _ = reply.send(Err(CloseFailed::StoreUnavailable));
                    }
                    act.timer_due = due_after(RETRY_INTERVAL);
                    act.timer = Some(ctx.run_later(RETRY_INTERVAL, |act, ctx| {
                        act.timer = None;
                        act.close(ctx, None);
                    }));
                }
            }
        });
    }

    /// Gridlock resolution, then the cut-off. When transfers are queued anywhere, the
    /// clock asks every bank for its standing and queue (each bank then holds them
    /// still until its cut-off), finds the set of queued transfers that can be
    /// released together into the closing window (`domain::gridlock::resolve`) and
    /// hands each bank its part with the cut-off, so the releases travel ahead of the
    /// bank's marker: they are in `window`, and the cut-off stays exact. The clock
    /// handles nothing else meanwhile (a few milliseconds; a bank that does not
    /// answer within `GRIDLOCK_QUERY_WAIT_MAX` takes no part).
    fn resolve_gridlock_and_cut_off(
        &mut self,
        window: WindowId,
        next: WindowId,
        started: Instant,
        ctx: &mut Context<Self>,
    ) {
        if self.directory.queued_total() <= 0 {
            self.begin_cut_off(window, next, started, HashMap::new(), ctx);
            return;
        }
        let banks = self.directory.banks();
        let store = self.store.clone();
        let asked = Instant::now();
        let gather = async move {
            let queries = banks.iter().map(|(_, bank)| bank.addr.send(GridlockQuery));
            let answers = tokio::time::timeout(
                GRIDLOCK_QUERY_WAIT_MAX,
                futures_util::future::join_all(queries),
            )
            .await
            .unwrap_or_default();
            let standings: Vec<QueueStanding> = answers
                .into_iter()
                .filter_map(|a| a.ok().flatten())
                .collect();
            // Without the rates every currency counts unit for unit: still feasible.
            let rates = store.corridors().await.unwrap_or_default();
            (standings, rates)
        };
        wait_contained(self, ctx, gather, move |(standings, rates), act, ctx| {
            let releases = gridlock_releases(&standings, &rates);
            act.metrics
                .gridlock_resolution_duration
                .observe(asked.elapsed().as_secs_f64());
            let released: usize = releases.values().map(Vec::len).sum();
            if released > 0 {
                tracing::info!(window = %window, released, "gridlock resolution releases queued transfers");
            }
            act.begin_cut_off(window, next, started, releases, ctx);
        });
    }

    /// Tells the window actors, the writer and every bank that `window` is cut off
    /// and `next` open (the store already says so), handing each bank the queued
    /// transfers of its to release into `window`, and announces it.
    fn begin_cut_off(
        &mut self,
        window: WindowId,
        next: WindowId,
        started: Instant,
        releases: HashMap<BankCode, Vec<TransferId>>,
        ctx: &mut Context<Self>,
    ) {
        self.cut_off_begun.insert(window);
        self.window_actor(next, ctx);
        let closing = self.window_actor(window, ctx);
        closing.do_send(Closing { started });
        // One list of banks for both: the writer waits for exactly the
        // markers of the banks told to cut off.
        let banks = self.directory.banks();
        self.writer.do_send(BeginCutOff {
            window,
            banks: banks.iter().map(|(code, _)| code.clone()).collect(),
            sealed_to: closing.recipient(),
        });
        cut_off(&banks, window, next, releases);
        tracing::info!(window = %window, next = %next, "window closing");
        self.feed.publish_all(vec![
            Event::new(
                Channel::Windows,
                "window_closing",
                Vec::new(),
                views::window_closing(window, next).to_string(),
            ),
            Event::new(
                Channel::Windows,
                "window_opened",
                Vec::new(),
                views::window_opened(next).to_string(),
            ),
        ]);
    }

    /// Reads the windows from the store: the open one (opening the first), those left
    /// closing by a stopped process (netted now) and those netted but not settled.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let first_start = self.first_start;
        self.first_start = false;
        let load = async move {
            let open = store.open_window().await?;
            let closing = store.windows_in_state(WindowState::Closing).await?;
            let netted = store.windows_in_state(WindowState::Netted).await?;
            Ok::<_, StoreError>((open, closing, netted))
        };
        wait_contained(self, ctx, load, move |result, act, ctx| match result {
            Ok((open, closing, netted)) => {
                act.current = Some(open);
                act.window_actor(open, ctx);
                if first_start {
                    for window in closing {
                        // Netted from the store: its cut-off needs nothing more. Its
                        // wait is counted from this start (the store's `closed_at` is
                        // not read here); the netting replaces it at once.
                        act.metrics.waits.window_closing(window.get(), Utc::now());
                        act.cut_off_begun.insert(window);
                        act.window_actor(window, ctx).do_send(NetNow);
                    }
                    for window in netted {
                        act.window_actor(window, ctx).do_send(NetNow);
                    }
                } else {
                    // A restart: a cut-off the store made but whose messages the
                    // restart interrupted is carried out now; the others are in the
                    // hands of their window actors and the writer.
                    act.cut_off_begun.retain(|w| closing.contains(w));
                    for window in closing {
                        if !act.cut_off_begun.contains(&window) {
                            let next = WindowId::new(window.get() + 1).expect("positive");
                            tracing::warn!(window = %window, "finishing a cut-off a restart interrupted");
                            act.begin_cut_off(window, next, Instant::now(), HashMap::new(), ctx);
                        }
                    }
                }
                act.schedule_close(ctx);
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot read windows; retrying");
                ctx.run_later(RETRY_INTERVAL, move |act, ctx| {
                    act.first_start = first_start;
                    act.recover(ctx);
                });
            }
        });
    }
}

impl Actor for WindowClock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::MAILBOX_CAPACITY);
        self.recover(ctx);
    }
}

impl Supervised for WindowClock {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.metrics
            .actor_restarts
            .with_label_values(&["clock"])
            .inc();
        self.feed
            .actor_restarted("clock", "window clock", Vec::new());
        self.closing = false;
        self.timer = None;
        self.timer_due = None;
        // A close under way when the clock stopped is not answered by it any more:
        // its callers hear so now instead of waiting for the next cut-off.
        for reply in self.waiting.drain(..) {
            let _ = reply.send(Err(CloseFailed::ClockRestarted));
        }
        self.requested_by = None;
    }
}

impl Guarded for WindowClock {
    fn kind(&self) -> &'static str {
        "clock"
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Handler<CloseCurrent> for WindowClock {
    type Result = ResponseFuture<Result<(WindowId, WindowId), CloseFailed>>;

    fn handle(&mut self, msg: CloseCurrent, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = tokio::sync::oneshot::channel();
        guard(self, ctx, |act, ctx| {
            act.close(ctx, Some((reply, msg.origin)))
        });
        Box::pin(async move { answer.await.unwrap_or(Err(CloseFailed::ClockRestarted)) })
    }
}

impl Handler<CurrentWindow> for WindowClock {
    type Result = Option<WindowId>;

    fn handle(&mut self, _: CurrentWindow, _: &mut Context<Self>) -> Option<WindowId> {
        self.current
    }
}

impl Handler<ScheduledCutOff> for WindowClock {
    type Result = Option<(WindowId, DateTime<Utc>)>;

    fn handle(&mut self, _: ScheduledCutOff, _: &mut Context<Self>) -> Self::Result {
        match self.timer {
            Some(_) => self.current.zip(self.timer_due),
            None => None,
        }
    }
}

impl Handler<WindowSettled> for WindowClock {
    type Result = ();

    fn handle(&mut self, msg: WindowSettled, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            if let Some(addr) = act.windows.remove(&msg.window) {
                addr.do_send(msg);
            }
        });
    }
}

impl Handler<PanicWindow> for WindowClock {
    type Result = bool;

    fn handle(&mut self, msg: PanicWindow, _: &mut Context<Self>) -> bool {
        match self.windows.get(&msg.window) {
            Some(addr) => {
                addr.do_send(InjectPanic);
                true
            }
            None => false,
        }
    }
}

impl Handler<PanicInNextNetting> for WindowClock {
    type Result = ();

    fn handle(&mut self, _: PanicInNextNetting, _: &mut Context<Self>) {
        self.netting_panic.arm();
    }
}

impl Handler<InjectPanic> for WindowClock {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |_, _| {
            panic!("injected panic in the window clock")
        });
    }
}

/// The wall-clock time `delay` from now (none past the calendar's end).
fn due_after(delay: Duration) -> Option<DateTime<Utc>> {
    Utc::now().checked_add_signed(chrono::Duration::from_std(delay).ok()?)
}

/// Tells each bank to release its part of `releases` into `window`, send the writer
/// its marker for `window` and stamp `next` from now on (repeating it is harmless:
/// the writer counts each bank once, and a repeat carries no releases).
pub(super) fn cut_off(
    banks: &[(BankCode, BankHandle)],
    window: WindowId,
    next: WindowId,
    mut releases: HashMap<BankCode, Vec<TransferId>>,
) {
    for (code, bank) in banks {
        bank.addr.do_send(CutOffBank {
            window,
            next,
            release: releases.remove(code).unwrap_or_default(),
        });
    }
}

/// The queued transfers each bank is to release at a cut-off: the banks' standings
/// and queues put together, every queued transfer valued in one reference currency
/// through the corridors' rates (`gridlock::unit_values`), in release priority order
/// (high first, then oldest first), and resolved.
fn gridlock_releases(
    standings: &[QueueStanding],
    corridors: &[CorridorRecord],
) -> HashMap<BankCode, Vec<TransferId>> {
    let rates: Vec<_> = corridors
        .iter()
        .map(|c| (c.id.from, c.id.to, c.fx_rate.value()))
        .collect();
    let unit_values = gridlock::unit_values(&rates);
    let mut standing: HashMap<gridlock::Account, Standing> = HashMap::new();
    let mut transfers: Vec<&Transfer> = Vec::new();
    for bank in standings {
        for (currency, s) in &bank.accounts {
            standing.insert((bank.bank.clone(), *currency), *s);
        }
        transfers.extend(&bank.queued);
    }
    if transfers.is_empty() {
        return HashMap::new();
    }
    transfers.sort_by_key(|t| (t.queue != Some(QueuePriority::High), t.id));
    let queued: Vec<gridlock::Queued> = transfers
        .iter()
        .map(|t| {
            let converted = t.converted.expect("a queued transfer has its quote");
            let unit = unit_values
                .get(&t.amount.currency())
                .copied()
                .unwrap_or(Decimal::ONE);
            gridlock::Queued {
                sender: t.sender.clone(),
                receiver: t.receiver.clone(),
                amount: t.amount.value(),
                from: t.amount.currency(),
                converted: converted.value(),
                to: converted.currency(),
                value: t.amount.value() * unit,
            }
        })
        .collect();
    let release = gridlock::resolve(&standing, &queued);
    let mut by_bank: HashMap<BankCode, Vec<TransferId>> = HashMap::new();
    for i in release.released {
        let t = transfers[i];
        by_bank.entry(t.sender.clone()).or_default().push(t.id);
    }
    by_bank
}
