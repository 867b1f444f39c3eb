//! Prometheus metrics, named `deltran_*` with their unit last.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Every metric the engine exports; one instance per running engine.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    pub transfers: IntCounterVec,
    pub submissions_in_flight: IntGauge,
    pub submissions_waiting: IntGauge,
    pub submissions_refused: IntCounterVec,
    pub store_batch_size: Histogram,
    pub store_flush_duration: Histogram,
    pub store_flush_failures: IntCounter,
    pub store_unstorable_transfers: IntCounter,
    pub store_isolating_statements: IntCounter,
    pub store_group_commits: IntCounterVec,
    pub actor_restarts: IntCounterVec,
    pub actor_panics: IntCounterVec,
    pub faults_injected: IntCounterVec,
    pub window_close_duration: Histogram,
    pub window_transfers: Histogram,
    pub netting_efficiency: GaugeVec,
    pub liquidity_efficiency: GaugeVec,
    instructions_pending: IntGauge,
    /// Since when windows and settlement instructions wait, for the two gauges below,
    /// which are set from it when the metrics are rendered.
    pub waits: Waits,
    window_longest_in_state: GaugeVec,
    instructions_oldest_pending: Gauge,
    pub ws_sessions: IntGauge,
    pub ws_messages_sent: IntCounterVec,
    pub ws_messages_dropped: IntCounterVec,
    pub ws_lagged_disconnects: IntCounter,
    queue_depth_transfers: IntGaugeVec,
    queue_depth_value: GaugeVec,
    queue_released: IntCounterVec,
    queue_released_value: CounterVec,
    queue_expired: IntCounterVec,
    queue_wait: Histogram,
    pub gridlock_resolution_duration: Histogram,
    pub screening_duration: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency_buckets = vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let http_requests = IntCounterVec::new(
            Opts::new(
                "deltran_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "deltran_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(latency_buckets.clone()),
            &["method", "route"],
        )
        .expect("valid metric");
        let transfers = IntCounterVec::new(
            Opts::new(
                "deltran_transfers_total",
                "Transfers decided, by outcome (accepted, rejected, replayed) and corridor",
            ),
            &["outcome", "corridor", "code"],
        )
        .expect("valid metric");
        let submissions_in_flight = IntGauge::new(
            "deltran_submissions_in_flight",
            "Transfer submissions in the engine (admitted, their turn come) and not yet answered",
        )
        .expect("valid metric");
        let submissions_waiting = IntGauge::new(
            "deltran_submissions_waiting",
            "Transfer submissions waiting for their turn to enter the engine",
        )
        .expect("valid metric");
        let submissions_refused = IntCounterVec::new(
            Opts::new(
                "deltran_submissions_refused_total",
                "Submissions answered 503 by reason: overloaded (the count in flight), delay (its \
                 turn did not come, or could not be expected, within the delay target), \
                 unavailable, timeout",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let store_batch_size = Histogram::with_opts(
            HistogramOpts::new("deltran_store_batch_size", "Transfers per group commit").buckets(
                vec![
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                ],
            ),
        )
        .expect("valid metric");
        let store_flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_store_flush_duration_seconds",
                "Time to write and commit one batch",
            )
            .buckets(latency_buckets),
        )
        .expect("valid metric");
        let store_flush_failures = IntCounter::new(
            "deltran_store_flush_failures_total",
            "Batches that failed to commit",
        )
        .expect("valid metric");
        let store_unstorable_transfers = IntCounter::new(
            "deltran_store_unstorable_transfers_total",
            "Transfers the database refused for their own data (SQLSTATE class 22 or 23); \
             each failed alone and the rest of its batch was written",
        )
        .expect("valid metric");
        let store_isolating_statements = IntCounter::new(
            "deltran_store_isolating_statements_total",
            "Statements written again, on parts of a batch, to isolate the transfers \
             the database refused for their own data",
        )
        .expect("valid metric");
        let store_group_commits = IntCounterVec::new(
            Opts::new(
                "deltran_store_group_commits_total",
                "Group commits that went in whole, by how: copy (binary COPY, large \
                 batches of new transfers), insert (one plain insert, smaller ones), \
                 statement (status changes, or a batch with a used key)",
            ),
            &["path"],
        )
        .expect("valid metric");
        let actor_restarts = IntCounterVec::new(
            Opts::new(
                "deltran_actor_restarts_total",
                "Supervisor restarts by actor kind",
            ),
            &["actor"],
        )
        .expect("valid metric");
        let actor_panics = IntCounterVec::new(
            Opts::new(
                "deltran_actor_panics_total",
                "Panics caught in actor handlers by actor kind",
            ),
            &["actor"],
        )
        .expect("valid metric");
        let faults_injected = IntCounterVec::new(
            Opts::new(
                "deltran_faults_injected_total",
                "Panics injected through the fault-injection route, by actor",
            ),
            &["actor"],
        )
        .expect("valid metric");
        let window_close_duration = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_window_close_duration_seconds",
                "From cut-off to netting stored and instructions ready",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let screening_duration = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_screening_duration_seconds",
                "Time to screen one transfer's parties against a non-empty screening list",
            )
            .buckets(vec![
                1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2,
            ]),
        )
        .expect("valid metric");
        let window_transfers = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_window_transfers",
                "Accepted transfers per netted window",
            )
            .buckets(prometheus::exponential_buckets(1.0, 10.0, 8).expect("valid buckets")),
        )
        .expect("valid metric");
        let netting_efficiency = GaugeVec::new(
            Opts::new(
                "deltran_netting_efficiency_ratio",
                "1 - net/gross of the last netted window, per currency",
            ),
            &["currency"],
        )
        .expect("valid metric");
        // The ratio only: liquidity used is money, which a float gauge would round; it
        // stays exact in the API.
        let liquidity_efficiency = GaugeVec::new(
            Opts::new(
                "deltran_liquidity_efficiency_ratio",
                "gross / liquidity used (sum of the banks' net debit positions) of the last \
                 netted window, per currency; absent when that window used none",
            ),
            &["currency"],
        )
        .expect("valid metric");
        let instructions_pending = IntGauge::new(
            "deltran_settlement_instructions_pending",
            "Settlement instructions not yet confirmed or failed",
        )
        .expect("valid metric");
        let window_longest_in_state = GaugeVec::new(
            Opts::new(
                "deltran_window_longest_in_state_seconds",
                "Seconds the window longest in this state (closing, netted) has been in it; \
                 0 when no window is",
            ),
            &["state"],
        )
        .expect("valid metric");
        let instructions_oldest_pending = Gauge::new(
            "deltran_settlement_instructions_oldest_pending_seconds",
            "Seconds since the oldest pending settlement instruction was created; 0 when none is",
        )
        .expect("valid metric");
        let ws_sessions =
            IntGauge::new("deltran_ws_sessions", "WebSocket sessions open").expect("valid metric");
        let ws_messages_sent = IntCounterVec::new(
            Opts::new(
                "deltran_ws_messages_sent_total",
                "Feed messages handed to sessions",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let ws_messages_dropped = IntCounterVec::new(
            Opts::new(
                "deltran_ws_messages_dropped_total",
                "Feed messages dropped for sessions that could not keep up",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let ws_lagged_disconnects = IntCounter::new(
            "deltran_ws_lagged_disconnects_total",
            "Sessions closed because they fell behind",
        )
        .expect("valid metric");
        // Values of money in these gauges and counters are floats, for graphs; the
        // exact figures are in the API (a window's queue figures, a bank's positions).
        let queue_depth_transfers = IntGaugeVec::new(
            Opts::new(
                "deltran_queue_depth_transfers",
                "Transfers waiting in a bank's queue, per currency",
            ),
            &["bank", "currency"],
        )
        .expect("valid metric");
        let queue_depth_value = GaugeVec::new(
            Opts::new(
                "deltran_queue_depth_value",
                "Value of the transfers waiting in a bank's queue, in its currency",
            ),
            &["bank", "currency"],
        )
        .expect("valid metric");
        let queue_released = IntCounterVec::new(
            Opts::new(
                "deltran_queue_released_total",
                "Queued transfers released into a window, by how (fifo: headroom appeared; \
                 gridlock: released together at a cut-off)",
            ),
            &["how", "currency"],
        )
        .expect("valid metric");
        let queue_released_value = CounterVec::new(
            Opts::new(
                "deltran_queue_released_value_total",
                "Value of the queued transfers released, in their currency, by how",
            ),
            &["how", "currency"],
        )
        .expect("valid metric");
        let queue_expired = IntCounterVec::new(
            Opts::new(
                "deltran_queue_expired_total",
                "Queued transfers that expired unreleased",
            ),
            &["currency"],
        )
        .expect("valid metric");
        let queue_wait = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_queue_wait_seconds",
                "Time a released transfer waited in its queue",
            )
            .buckets(vec![
                0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
        )
        .expect("valid metric");
        let gridlock_resolution_duration = Histogram::with_opts(
            HistogramOpts::new(
                "deltran_gridlock_resolution_duration_seconds",
                "Time a cut-off spent on gridlock resolution: asking the banks for their \
                 queues and finding the set to release",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_request_duration.clone()),
            Box::new(transfers.clone()),
            Box::new(submissions_in_flight.clone()),
            Box::new(submissions_waiting.clone()),
            Box::new(submissions_refused.clone()),
            Box::new(store_batch_size.clone()),
            Box::new(store_flush_duration.clone()),
            Box::new(store_flush_failures.clone()),
            Box::new(store_unstorable_transfers.clone()),
            Box::new(store_isolating_statements.clone()),
            Box::new(store_group_commits.clone()),
            Box::new(actor_restarts.clone()),
            Box::new(actor_panics.clone()),
            Box::new(faults_injected.clone()),
            Box::new(window_close_duration.clone()),
            Box::new(window_transfers.clone()),
            Box::new(netting_efficiency.clone()),
            Box::new(liquidity_efficiency.clone()),
            Box::new(instructions_pending.clone()),
            Box::new(window_longest_in_state.clone()),
            Box::new(instructions_oldest_pending.clone()),
            Box::new(ws_sessions.clone()),
            Box::new(ws_messages_sent.clone()),
            Box::new(ws_messages_dropped.clone()),
            Box::new(ws_lagged_disconnects.clone()),
            Box::new(queue_depth_transfers.clone()),
            Box::new(queue_depth_value.clone()),
            Box::new(queue_released.clone()),
            Box::new(queue_released_value.clone()),
            Box::new(queue_expired.clone()),
            Box::new(queue_wait.clone()),
            Box::new(gridlock_resolution_duration.clone()),
            Box::new(screening_duration.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_request_duration,
            transfers,
            submissions_in_flight,
            submissions_waiting,
            submissions_refused,
            store_batch_size,
            store_flush_duration,
            store_flush_failures,
            store_unstorable_transfers,
            store_isolating_statements,
            store_group_commits,
            actor_restarts,
            actor_panics,
            faults_injected,
            window_close_duration,
            window_transfers,
            netting_efficiency,
            liquidity_efficiency,
            instructions_pending,
            waits: Waits::default(),
            window_longest_in_state,
            instructions_oldest_pending,
            ws_sessions,
            ws_messages_sent,
            ws_messages_dropped,
            ws_lagged_disconnects,
            queue_depth_transfers,
            queue_depth_value,
            queue_released,
            queue_released_value,
            queue_expired,
            queue_wait,
            gridlock_resolution_duration,
            screening_duration,
        }
    }

    /// A bank's queue in `currency` now holds `depth` transfers worth `value`.
    pub fn queue_depth(&self, bank: &str, currency: &str, depth: usize, value: Decimal) {
        self.queue_depth_transfers
            .with_label_values(&[bank, currency])
            .set(depth as i64);
        self.queue_depth_value
            .with_label_values(&[bank, currency])
            .set(value.to_f64().unwrap_or(f64::MAX));
    }

    /// A queued transfer of `value` in `currency` was released (`how`: `fifo` or
    /// `gridlock`) after waiting `waited`.
    pub fn queue_released(&self, how: &str, currency: &str, value: Decimal, waited: Duration) {
        self.queue_released
            .with_label_values(&[how, currency])
            .inc();
        self.queue_released_value
            .with_label_values(&[how, currency])
            .inc_by(value.to_f64().unwrap_or(0.0));
        self.queue_wait.observe(waited.as_secs_f64());
    }

    pub fn queue_expired(&self, currency: &str) {
        self.queue_expired.with_label_values(&[currency]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.set_waits(Utc::now());
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("prometheus text is UTF-8")
    }
}

impl Metrics {
    /// Sets the gauges kept in `waits` (the longest waits, as of `now`, and the count
    /// of pending instructions).
    fn set_waits(&self, now: DateTime<Utc>) {
        let seconds = |since: Option<DateTime<Utc>>| {
            since.map_or(0.0, |since| {
                ((now - since).num_milliseconds() as f64 / 1000.0).max(0.0)
            })
        };
        let waits = self.waits.inner.lock().expect("waits lock");
        for (state, windows) in [("closing", &waits.closing), ("netted", &waits.netted)] {
            self.window_longest_in_state
                .with_label_values(&[state])
                .set(seconds(windows.values().min().copied()));
        }
        self.instructions_pending
            .set(waits.pending.values().map(|p| p.count).sum());
        let oldest = waits.pending.values().filter_map(|p| p.oldest).min();
        self.instructions_oldest_pending.set(seconds(oldest));
    }
}

/// Since when each window has been `closing` or `netted`, and since when each window's
/// pending settlement instructions wait. Changed only where a window changes state or
/// an instruction is confirmed or failed, never per transfer; the ages are computed
/// when the metrics are rendered. Windows are keyed by their id.
#[derive(Default)]
pub struct Waits {
    inner: Mutex<WaitsInner>,
}

#[derive(Default)]
struct WaitsInner {
    closing: BTreeMap<i64, DateTime<Utc>>,
    netted: BTreeMap<i64, DateTime<Utc>>,
    pending: BTreeMap<i64, Pending>,
}

/// A window's pending instructions. Counted by addition: a confirmation that is
/// counted before the netting that created its instruction leaves the count right
/// once both are. `deltran_settlement_instructions_pending` is the sum over windows.
#[derive(Default)]
struct Pending {
    count: i64,
    oldest: Option<DateTime<Utc>>,
}

impl Waits {
    fn with<T>(&self, change: impl FnOnce(&mut WaitsInner) -> T) -> T {
        change(&mut self.inner.lock().expect("waits lock"))
    }

    /// `window` is closing since `since`.
    pub fn window_closing(&self, window: i64, since: DateTime<Utc>) {
        self.with(|w| w.closing.insert(window, since));
    }

    /// `window` is netted since `since` (repeating it is harmless).
    pub fn window_netted(&self, window: i64, since: DateTime<Utc>) {
        self.with(|w| {
            w.closing.remove(&window);
            w.netted.insert(window, since);
        });
    }

    /// `window` is neither closing nor netted any more (settled, or settlement failed).
    pub fn window_done(&self, window: i64) {
        self.with(|w| {
            w.closing.remove(&window);
            w.netted.remove(&window);
        });
    }

    /// `count` instructions of `window`, the oldest created at `oldest`, are pending.
    pub fn instructions_pending(&self, window: i64, count: i64, oldest: DateTime<Utc>) {
        self.with(|w| {
            let pending = w.pending.entry(window).or_default();
            pending.count += count;
            pending.oldest = Some(pending.oldest.map_or(oldest, |o| o.min(oldest)));
            if pending.count == 0 {
                w.pending.remove(&window);
            }
        });
    }

    /// One pending instruction of `window` was confirmed or failed.
    pub fn instruction_settled(&self, window: i64) {
        self.with(|w| {
            let pending = w.pending.entry(window).or_default();
            pending.count -= 1;
            if pending.count == 0 {
                w.pending.remove(&window);
            }
        });
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid time")
    }

    fn waits_at(metrics: &Metrics, now: i64) -> (f64, f64, f64) {
        metrics.set_waits(at(now));
        let state = |s| {
            metrics
                .window_longest_in_state
                .with_label_values(&[s])
                .get()
        };
        (
            state("closing"),
            state("netted"),
            metrics.instructions_oldest_pending.get(),
        )
    }

    #[test]
    fn the_longest_waits_follow_windows_and_instructions() {
        let metrics = Metrics::new();
        assert_eq!(waits_at(&metrics, 0), (0.0, 0.0, 0.0));
        metrics.waits.window_closing(1, at(0));
        metrics.waits.window_closing(2, at(10));
        assert_eq!(waits_at(&metrics, 12), (12.0, 0.0, 0.0));
        metrics.waits.window_netted(1, at(13));
        metrics.waits.instructions_pending(1, 2, at(13));
        assert_eq!(waits_at(&metrics, 15), (5.0, 2.0, 2.0));
        metrics.waits.window_netted(2, at(16));
        metrics.waits.window_netted(2, at(16));
        assert_eq!(waits_at(&metrics, 20), (0.0, 7.0, 7.0));
        // Window 1 fails one instruction and leaves `netted`; its other stays pending.
        metrics.waits.instruction_settled(1);
        metrics.waits.window_done(1);
        assert_eq!(waits_at(&metrics, 20), (0.0, 4.0, 7.0));
        metrics.waits.instruction_settled(1);
        metrics.waits.window_done(2);
        assert_eq!(waits_at(&metrics, 30), (0.0, 0.0, 0.0));
        let text = metrics.render();
        assert!(text.contains("deltran_window_longest_in_state_seconds{state=\"closing\"} 0"));
        assert!(text.contains("deltran_settlement_instructions_oldest_pending_seconds 0"));
    }

    #[test]
    fn a_confirmation_counted_before_its_netting_leaves_the_count_right() {
        let metrics = Metrics::new();
        metrics.waits.instruction_settled(3);
        assert_eq!(waits_at(&metrics, 5).2, 0.0);
        metrics.waits.instructions_pending(3, 1, at(1));
        assert_eq!(waits_at(&metrics, 5).2, 0.0);
        metrics.waits.instructions_pending(4, 2, at(2));
        metrics.waits.instruction_settled(4);
        assert_eq!(waits_at(&metrics, 5).2, 3.0);
    }
}
