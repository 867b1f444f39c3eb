//! One actor per clearing window, from its cut-off to its settlement: it nets the
//! window once its transfers are sealed, stores the result, announces it and, in
//! demo mode, plays the settlement rail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use super::clock::{cut_off, WindowClock, RETRY_INTERVAL};
use super::faults::NettingPanicSwitch;
use super::feed::{Channel, Event, Feed, SeenBy};
use super::writer::StoreWriter;
use super::{guard, settlement, spawn_contained, wait_contained, Directory, Guarded, InjectPanic};
use crate::domain::netting::{assert_conserved, net, Netting, WindowSums};
use crate::domain::{
    BankCode, InstructionRecord, InstructionState, Origin, WindowDetail, WindowId, WindowState,
};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;
use crate::views;

/// How long a window may wait for its banks' cut-off markers before they are asked
/// again (a bank actor that restarted mid-cut-off lost the request).
const SEAL_WAIT_MAX: Duration = Duration::from_secs(2);

/// What the demo rail's confirmations are recorded as coming from in the audit log.
const DEMO_RAIL: Origin = Origin::Engine("demo rail");

/// From the writer: every transfer of the window is committed; none can follow.
/// `sums` are its legs as the writer committed them, when the writer saw them all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Sealed {
    pub window: WindowId,
    pub sums: Option<WindowSums<BankCode>>,
}

/// From the clock: net now (recovery of a window found closing or netted at start).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct NetNow;

/// From the clock: the cut-off has begun.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Closing {
    pub started: Instant,
}

/// To the clock and the window actor: every instruction is confirmed and the banks'
/// exposure from the window is released.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WindowSettled {
    pub window: WindowId,
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
    /// Where the window is; `netting` is set while its result is being computed and
    /// stored (the state is then still `Closing`, or `Netted` on a recovery).
    state: WindowState,
    netting: bool,
    closing_started: Option<Instant>,
    /// The legs handed over by the writer at the seal; without them (recovery) the
    /// window's transfers are summed in the store.
    sums: Option<WindowSums<BankCode>>,
    /// Fault injection: the next netting continuation panics when armed.
    netting_panic: NettingPanicSwitch,
}

impl WindowActor {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        window: WindowId,
        store: Store,
        directory: Arc<Directory>,
        writer: Addr<StoreWriter>,
        clock: Addr<WindowClock>,
        metrics: Arc<Metrics>,
        feed: Feed,
        demo_settlement_delay: Option<Duration>,
        netting_panic: NettingPanicSwitch,
    ) -> Self {
        WindowActor {
            window,
            store,
            directory,
            writer,
            clock,
            metrics,
            feed,
            demo_settlement_delay,
            state: WindowState::Open,
            netting: false,
            closing_started: None,
            sums: None,
            netting_panic,
        }
    }

    fn net_and_store(&mut self, ctx: &mut Context<Self>) {
        self.netting = true;
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
                    // The release figures are read with the window, not announced.
                    queue: Vec::new(),
                };
                announce(&feed, &detail, instructions);
                record_metrics(&metrics, closing_started, &netting);
                if let Some(oldest) = instructions.iter().map(|i| i.created_at).min() {
                    metrics.waits.instructions_pending(
                        window.get(),
                        instructions.len() as i64,
                        oldest,
                    );
                }
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
            Ok::<_, StoreError>((netting, stored.record))
        };
        wait_contained(self, ctx, work, |result, act, ctx| match result {
            Ok((netting, record)) => {
                act.netting_panic.fire_if_armed();
                act.netting = false;
                act.state = WindowState::Netted;
                // As stored: a recovered window has waited since its first netting, and
                // one whose settlement failed since is done waiting.
                match (record.state, record.netted_at) {
                    (WindowState::Netted, Some(at)) => {
                        act.metrics.waits.window_netted(act.window.get(), at)
                    }
                    _ => act.metrics.waits.window_done(act.window.get()),
                }
                tracing::info!(window = %act.window, transfers = netting.transfer_count,
                               instructions = netting.instructions.len(), "window netted");
                act.after_netting(ctx);
            }
            Err(error) => {
                tracing::warn!(window = %act.window, error = %error_chain(&error), "netting failed; retrying");
                ctx.run_later(RETRY_INTERVAL, |act, ctx| act.net_and_store(ctx));
            }
        });
    }

    /// Settles a window with nothing to pay, or plays the demo rail.
    fn after_netting(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let window = self.window;
        let pending = async move {
            store
                .instructions(
                    Some(window),
                    Some(InstructionState::Pending),
                    None,
                    None,
                    i64::MAX,
                )
                .await
        };
        spawn_contained(self, ctx, pending, |result, act, ctx| {
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
        });
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
                settlement::change(
                    &store,
                    &writer,
                    &clock,
                    &metrics,
                    &feed,
                    &DEMO_RAIL,
                    id,
                    InstructionState::Confirmed,
                )
                .await?;
            }
            settlement::settle_if_complete(&writer, &clock, window).await
        };
        spawn_contained(self, ctx, work, |result, act, _| {
            if let Err(error) = result {
                tracing::warn!(window = %act.window, error = %error_chain(&error), "settlement step failed");
            }
        });
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
        if self.netting || self.state == WindowState::Netted {
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
            act.state = WindowState::Closing;
            act.closing_started = Some(msg.started);
            let since = chrono::TimeDelta::from_std(msg.started.elapsed())
                .map_or_else(|_| Utc::now(), |waited| Utc::now() - waited);
            act.metrics.waits.window_closing(act.window.get(), since);
            ctx.run_later(SEAL_WAIT_MAX, |act, ctx| act.ask_again_if_unsealed(ctx));
        });
    }
}

impl WindowActor {
    fn ask_again_if_unsealed(&mut self, ctx: &mut Context<Self>) {
        if self.state != WindowState::Closing || self.netting {
            return;
        }
        let next = WindowId::new(self.window.get() + 1).expect("positive");
        tracing::warn!(window = %self.window, "cut-off markers still missing; asking the banks again");
        cut_off(
            &self.directory.banks(),
            self.window,
            next,
            Default::default(),
        );
        ctx.run_later(SEAL_WAIT_MAX, |act, ctx| act.ask_again_if_unsealed(ctx));
    }
}

impl Handler<Sealed> for WindowActor {
    type Result = ();

    fn handle(&mut self, msg: Sealed, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            if act.state.is_live() && !act.netting {
                act.sums = msg.sums;
                act.net_and_store(ctx);
            }
        });
    }
}

impl Handler<InjectPanic> for WindowActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            panic!("injected panic in the actor of window {}", act.window)
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
            views::window_settled(msg.window).to_string(),
        ));
        self.state = WindowState::Settled;
        self.metrics.waits.window_done(msg.window.get());
        ctx.stop();
    }
}

/// The window's result on `windows` (a session limited to one bank sees only that
/// bank's positions), and its instructions on `settlements`.
fn announce(feed: &Feed, stored: &WindowDetail, instructions: &[InstructionRecord]) {
    let detail = Arc::new(stored.clone());
    let seen_by: SeenBy =
        Arc::new(move |bank| views::text(views::window(&detail.seen_by(bank), None)).into());
    let mut events = vec![Event::new(
        Channel::Windows,
        "window_netted",
        Vec::new(),
        views::text(views::window(stored, None)),
    )
    .with_seen_by(seen_by)];
    for i in instructions {
        events.push(Event::new(
            Channel::Settlements,
            "instruction_created",
            i.banks(),
            views::text(views::instruction(i)),
        ));
    }
    feed.publish_all(events);
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
        match c.liquidity_efficiency() {
            Some(ratio) => metrics
                .liquidity_efficiency
                .with_label_values(&[c.currency.as_str()])
                .set(ratio.try_into().unwrap_or(f64::NAN)),
            // No liquidity used: no ratio, rather than the previous window's.
            None => {
                let _ = metrics
                    .liquidity_efficiency
                    .remove_label_values(&[c.currency.as_str()]);
            }
        }
    }
}
