//! Clearing windows. The `WindowClock` opens and closes windows on a timer or when the
//! operator asks; each window has its own `WindowActor`, which nets the window once its
//! transfers are sealed, stores the result and, in demo mode, plays the settlement rail.
//!
//! The cut-off is exact without a delay: the clock moves the store to the next window,
//! tells the writer which banks must answer, then tells each bank actor to cut off.
//! A bank switches to the next window and sends its marker to the writer with
//! `do_send`, on the same path as its transfers, so the marker arrives behind every
//! transfer it stamped with the old window. When every bank's marker is in and all
//! that came before them is committed (a writer barrier), the window is sealed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use super::bank::CutOffBank;
use super::feed::{Channel, Event, Feed};
use super::writer::{BeginCutOff, StoreWriter};
use super::{guard, settlement, BankHandle, Directory, Guarded, InjectPanic};
use crate::domain::netting::{assert_conserved, net, Netting, WindowSums};
use crate::domain::{BankCode, WindowId};
use crate::http::views;
use crate::metrics::Metrics;
use crate::store::windows::{CLOSING, NETTED};
use crate::store::{InstructionRecord, WindowDetail};
use crate::store::{Store, StoreError};
use serde_json::json;

/// How long a window may wait for its banks' cut-off markers before they are asked
/// again (a bank actor that restarted mid-cut-off lost the request).
const SEAL_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long to wait before retrying a store operation that failed.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Window timing and the demo settlement rail.
#[derive(Clone, Copy, Debug)]
pub struct WindowSettings {
    pub duration: Duration,
    /// When set, a simulated rail confirms each instruction this long after netting.
    pub demo_settlement_delay: Option<Duration>,
}

/// Operator: close the open window now. Answers (closed window, next window).
#[derive(Message)]
#[rtype(result = "Result<(WindowId, WindowId), String>")]
pub struct CloseCurrent;

/// The open window's id.
#[derive(Message)]
#[rtype(result = "Option<WindowId>")]
pub struct CurrentWindow;

/// From the writer: every transfer of the window is committed; none can follow.
/// `sums` are its legs as the writer committed them, when the writer saw them all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Sealed {
    pub window: WindowId,
    pub sums: Option<WindowSums<BankCode>>,
}

type CloseReply = tokio::sync::oneshot::Sender<Result<(WindowId, WindowId), String>>;

/// To a window actor: net now (recovery of a window found closing at start).
#[derive(Message)]
#[rtype(result = "()")]
struct NetNow;

/// To a window actor: the cut-off has begun.
#[derive(Message)]
#[rtype(result = "()")]
struct Closing {
    started: Instant,
}

/// To the clock and the window actor: every instruction is confirmed and the banks'
/// exposure from the window is released.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WindowSettled {
    pub window: WindowId,
}

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
    windows: BTreeMap<WindowId, Addr<WindowActor>>,
    timer: Option<SpawnHandle>,
    /// False after a supervisor restart: windows left closing are then still in the
    /// hands of their own actors and the writer, and must not be netted again.
    first_start: bool,
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
            windows: BTreeMap::new(),
            timer: None,
            first_start: true,
        }
    }

    fn window_actor(&mut self, window: WindowId, ctx: &mut Context<Self>) -> Addr<WindowActor> {
        if let Some(addr) = self.windows.get(&window) {
            return addr.clone();
        }
        let actor = WindowActor {
            window,
            store: self.store.clone(),
            directory: self.directory.clone(),
            writer: self.writer.clone(),
            clock: ctx.address(),
            metrics: self.metrics.clone(),
            feed: self.feed.clone(),
            demo_settlement_delay: self.settings.demo_settlement_delay,
            phase: Phase::Open,
            closing_started: None,
            sums: None,
        };
        let addr = Supervisor::start(move |_| actor);
        self.windows.insert(window, addr.clone());
        addr
    }

    fn schedule_close(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.timer = Some(ctx.run_later(self.settings.duration, |act, ctx| {
            act.timer = None;
            act.close(ctx, None);
        }));
    }

    /// Cut-off of the open window; answers `reply` when the store has moved on. A
    /// request that arrives while a cut-off is under way is answered by that one.
    fn close(&mut self, ctx: &mut Context<Self>, reply: Option<CloseReply>) {
        self.waiting.extend(reply);
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
        let cut = async move { store.close_window(window).await };
        ctx.spawn(cut.into_actor(self).map(move |result, act, ctx| {
            act.closing = false;
            match result {
                Ok(next) => {
                    act.current = Some(next);
                    act.window_actor(next, ctx);
                    let closing = act.window_actor(window, ctx);
                    closing.do_send(Closing { started });
                    // One list of banks for both: the writer waits for exactly the
                    // markers of the banks told to cut off.
                    let banks = act.directory.banks();
                    act.writer.do_send(BeginCutOff {
                        window,
                        banks: banks.iter().map(|(code, _)| code.clone()).collect(),
                        sealed_to: closing.recipient(),
                    });
                    cut_off(&banks, window, next);
                    tracing::info!(window = %window, next = %next, "window closing");
                    act.feed.publish_all(vec![
                        Event::new(
                            Channel::Windows,
                            "window_closing",
                            Vec::new(),
                            json!({"id": window.get(), "next_window_id": next.get()}).to_string(),
                        ),
                        Event::new(
                            Channel::Windows,
                            "window_opened",
                            Vec::new(),
                            json!({"id": next.get()}).to_string(),
                        ),
                    ]);
                    act.schedule_close(ctx);
                    for reply in act.waiting.drain(..) {
                        let _ = reply.send(Ok((window, next)));
                    }
                }
                Err(error) => {
                    tracing::warn!(window = %window, %error, "cut-off failed; retrying");
                    for reply in act.waiting.drain(..) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                    act.timer = Some(ctx.run_later(RETRY_INTERVAL, |act, ctx| {
                        act.timer = None;
                        act.close(ctx, None);
                    }));
                }
            }
        }));
    }

    /// Reads the windows from the store: the open one (opening the first), those left
    /// closing by a stopped process (netted now) and those netted but not settled.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let first_start = self.first_start;
        self.first_start = false;
        let load = async move {
            let open = store.open_window().await?;
            let closing = store.windows_in_state(CLOSING).await?;
            let netted = store.windows_in_state(NETTED).await?;
            Ok::<_, StoreError>((open, closing, netted))
        };
        ctx.wait(
            load.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok((open, closing, netted)) => {
                        act.current = Some(open);
                        act.window_actor(open, ctx);
                        if first_start {
                            for window in closing {
                                act.window_actor(window, ctx).do_send(NetNow);
                            }
                            for window in netted {
                                act.window_actor(window, ctx).do_send(NetNow);
                            }
                        }
                        act.schedule_close(ctx);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot read windows; retrying");
                        ctx.run_later(RETRY_INTERVAL, move |act, ctx| {
                            act.first_start = first_start;
                            act.recover(ctx);
                        });
                    }
                }),
        );
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
    type Result = ResponseFuture<Result<(WindowId, WindowId), String>>;

    fn handle(&mut self, _: CloseCurrent, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = tokio::sync::oneshot::channel();
        guard(self, ctx, |act, ctx| act.close(ctx, Some(reply)));
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err("the window clock restarted".into()))
        })
    }
}

impl Handler<CurrentWindow> for WindowClock {
    type Result = Option<WindowId>;

    fn handle(&mut self, _: CurrentWindow, _: &mut Context<Self>) -> Option<WindowId> {
        self.current
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

impl Handler<InjectPanic> for WindowClock {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |_, _| {
            panic!("injected panic in the window clock")
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    Closing,
    Netting,
    Netted,
    Settled,
}

/// One clearing window from its cut-off to its settlement.
pub struct WindowActor {
    window: WindowId,
    store: Store,
    directory: Arc<Directory>,
    writer: Addr<StoreWriter>,
    clock: Addr<WindowClock>,
    metrics: Arc<Metrics>,
    feed: Feed,
    demo_settlement_delay: Option<Duration>,
    phase: Phase,
    closing_started: Option<Instant>,
    /// The legs handed over by the writer at the seal; without them (recovery) the
    /// window's transfers are summed in the store.
    sums: Option<WindowSums<BankCode>>,
}

impl WindowActor {
    fn net_and_store(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Netting;
        let store = self.store.clone();
        let window = self.window;
        let known = self.sums.clone();
        let (feed, metrics) = (self.feed.clone(), self.metrics.clone());
        let closing_started = self.closing_started;
        let work = async move {
            let sums = match known {
                Some(sums) => sums,
                None => store.window_sums(window).await?,
            };
            let netting: Netting<BankCode> = net(&sums);
            let stored_now = store.store_netting(window, &netting).await?;
            let newly = stored_now.is_some();
            if let Some((record, instructions)) = &stored_now {
                // Announce at once: the result is what was just committed. The read-back
                // below checks that the store holds exactly this.
                let detail = WindowDetail {
                    record: record.clone(),
                    positions: netting.positions.clone(),
                    currencies: netting.currencies.clone(),
                    corridors: netting.corridors.clone(),
                };
                announce(&feed, &detail, instructions);
                record_metrics(&metrics, closing_started, &netting);
            }
            // Assert the invariants again on what the store now holds.
            let stored = store.window(window).await?;
            if newly
                && (stored.positions != netting.positions
                    || stored.currencies != netting.currencies
                    || stored.corridors != netting.corridors)
            {
                return Err(StoreError::Corrupt(format!(
                    "window {window}: stored result differs from the netting"
                )));
            }
            let read_back = Netting {
                positions: stored.positions,
                currencies: stored.currencies,
                corridors: stored.corridors,
                instructions: netting.instructions.clone(),
                transfer_count: stored.record.transfer_count.unwrap_or_default() as u64,
            };
            assert_conserved(&read_back).map_err(StoreError::Corrupt)?;
            Ok::<_, StoreError>(netting)
        };
        ctx.wait(work.into_actor(self).map(|result, act, ctx| match result {
            Ok(netting) => {
                act.phase = Phase::Netted;
                tracing::info!(window = %act.window, transfers = netting.transfer_count,
                               instructions = netting.instructions.len(), "window netted");
                act.after_netting(ctx);
            }
            Err(error) => {
                tracing::warn!(window = %act.window, %error, "netting failed; retrying");
                ctx.run_later(RETRY_INTERVAL, |act, ctx| act.net_and_store(ctx));
            }
        }));
    }

    /// Settles a window with nothing to pay, or plays the demo rail.
    fn after_netting(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let window = self.window;
        let pending = async move {
            store
                .instructions(Some(window), Some("pending"), None, i64::MAX)
                .await
        };
        ctx.spawn(pending.into_actor(self).map(|result, act, ctx| {
            let Ok(pending) = result else {
                ctx.run_later(RETRY_INTERVAL, |act, ctx| act.after_netting(ctx));
                return;
            };
            let ids: Vec<Uuid> = pending.iter().map(|i| i.id).collect();
            match (ids.is_empty(), act.demo_settlement_delay) {
                // Nothing pending: every instruction is confirmed (or there were none).
                (true, _) => act.confirm(Vec::new(), ctx),
                (false, Some(delay)) => {
                    ctx.run_later(delay, move |act, ctx| act.confirm(ids, ctx));
                }
                (false, None) => {}
            }
        }));
    }

    /// The simulated rail: confirms `ids`, then settles the window if all are done.
    fn confirm(&mut self, ids: Vec<Uuid>, ctx: &mut Context<Self>) {
        let (store, writer, clock, metrics, feed) = (
            self.store.clone(),
            self.writer.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.feed.clone(),
        );
        let window = self.window;
        let work = async move {
            for id in ids {
                settlement::change(&store, &writer, &clock, &metrics, &feed, id, "confirmed")
                    .await?;
            }
            settlement::settle_if_complete(&writer, &clock, window).await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            if let Err(error) = result {
                tracing::warn!(window = %act.window, %error, "settlement step failed");
            }
        }));
    }
}

impl Actor for WindowActor {
    type Context = Context<Self>;
}

impl Supervised for WindowActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.metrics
            .actor_restarts
            .with_label_values(&["window"])
            .inc();
        self.feed
            .actor_restarted("window", &self.window.to_string(), Vec::new());
        if self.phase == Phase::Netting || self.phase == Phase::Netted {
            self.net_and_store(ctx);
        }
    }
}

impl Guarded for WindowActor {
    fn kind(&self) -> &'static str {
        "window"
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Handler<Closing> for WindowActor {
    type Result = ();

    fn handle(&mut self, msg: Closing, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            act.phase = Phase::Closing;
            act.closing_started = Some(msg.started);
            ctx.run_later(SEAL_WAIT_MAX, |act, ctx| act.ask_again_if_unsealed(ctx));
        });
    }
}

impl WindowActor {
    fn ask_again_if_unsealed(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Closing {
            return;
        }
        let next = WindowId::new(self.window.get() + 1).expect("positive");
        tracing::warn!(window = %self.window, "cut-off markers still missing; asking the banks again");
        cut_off(&self.directory.banks(), self.window, next);
        ctx.run_later(SEAL_WAIT_MAX, |act, ctx| act.ask_again_if_unsealed(ctx));
    }
}

impl Handler<Sealed> for WindowActor {
    type Result = ();

    fn handle(&mut self, msg: Sealed, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            if matches!(act.phase, Phase::Open | Phase::Closing) {
                act.sums = msg.sums;
                act.net_and_store(ctx);
            }
        });
    }
}

impl Handler<NetNow> for WindowActor {
    type Result = ();

    fn handle(&mut self, _: NetNow, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| act.net_and_store(ctx));
    }
}

impl Handler<WindowSettled> for WindowActor {
    type Result = ();

    fn handle(&mut self, msg: WindowSettled, ctx: &mut Context<Self>) {
        tracing::info!(window = %msg.window, "window settled");
        self.feed.publish(Event::new(
            Channel::Windows,
            "window_settled",
            Vec::new(),
            json!({"id": msg.window.get(), "state": "settled"}).to_string(),
        ));
        self.phase = Phase::Settled;
        ctx.stop();
    }
}

/// The window's result on `windows`, and its instructions on `settlements`.
fn announce(feed: &Feed, stored: &WindowDetail, instructions: &[InstructionRecord]) {
    let mut events = vec![Event::new(
        Channel::Windows,
        "window_netted",
        Vec::new(),
        views::window(stored, None).to_string(),
    )];
    for i in instructions {
        events.push(Event::new(
            Channel::Settlements,
            "instruction_created",
            settlement::banks_of(i),
            views::instruction(i).to_string(),
        ));
    }
    feed.publish_all(events);
}

/// Tells each bank to stamp `next` from now on and send the writer its marker for
/// `window` (repeating it is harmless: the writer counts each bank once).
fn cut_off(banks: &[(BankCode, BankHandle)], window: WindowId, next: WindowId) {
    for (_, bank) in banks {
        bank.addr.do_send(CutOffBank { window, next });
    }
}

fn record_metrics(
    metrics: &Metrics,
    closing_started: Option<Instant>,
    netting: &Netting<BankCode>,
) {
    if let Some(started) = closing_started {
        metrics
            .window_close_duration
            .observe(started.elapsed().as_secs_f64());
    }
    metrics
        .window_transfers
        .observe(netting.transfer_count as f64);
    for c in &netting.currencies {
        let efficiency: f64 = c.efficiency().try_into().unwrap_or(0.0);
        metrics
            .netting_efficiency
            .with_label_values(&[c.currency.as_str()])
            .set(efficiency);
    }
    metrics
        .instructions_pending
        .add(netting.instructions.len() as i64);
}
