//! Prometheus metrics, named `deltran_*` with their unit last.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

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
    pub actor_restarts: IntCounterVec,
    pub actor_panics: IntCounterVec,
    pub faults_injected: IntCounterVec,
    pub window_close_duration: Histogram,
    pub window_transfers: Histogram,
    pub netting_efficiency: GaugeVec,
    pub instructions_pending: IntGauge,
    pub ws_sessions: IntGauge,
    pub ws_messages_sent: IntCounterVec,
    pub ws_messages_dropped: IntCounterVec,
    pub ws_lagged_disconnects: IntCounter,
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
        let instructions_pending = IntGauge::new(
            "deltran_settlement_instructions_pending",
            "Settlement instructions not yet confirmed or failed",
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
            Box::new(actor_restarts.clone()),
            Box::new(actor_panics.clone()),
            Box::new(faults_injected.clone()),
            Box::new(window_close_duration.clone()),
            Box::new(window_transfers.clone()),
            Box::new(netting_efficiency.clone()),
            Box::new(instructions_pending.clone()),
            Box::new(ws_sessions.clone()),
            Box::new(ws_messages_sent.clone()),
            Box::new(ws_messages_dropped.clone()),
            Box::new(ws_lagged_disconnects.clone()),
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
            actor_restarts,
            actor_panics,
            faults_injected,
            window_close_duration,
            window_transfers,
            netting_efficiency,
            instructions_pending,
            ws_sessions,
            ws_messages_sent,
            ws_messages_dropped,
            ws_lagged_disconnects,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
