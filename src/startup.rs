//! Builds the whole engine from settings: store, actor tree and HTTP server. Tests
//! use the same function, on port 0 with a database of their own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, HttpServer};
use anyhow::Context as _;

use crate::domain::screening::Thresholds;

use crate::actors::keys;
use crate::actors::writer::WriterLimits;
use crate::actors::{Engine, EngineSetup, WindowSettings};
use crate::config::Settings;
use crate::http::admission::{Admission, AdmissionLimits};
use crate::http::limits::{RateLimits, RateSettings, SWEEP_INTERVAL};
use crate::http::ws::WsLimits;
use crate::http::{self, AppState, HttpLimits};
use crate::metrics::Metrics;
use crate::store::Store;

/// How long the engine waits for its database at start.
const DATABASE_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long in-flight HTTP requests get to finish on shutdown.
/// (Feed sessions are closed at once on a stop signal, so this bounds only requests
/// already admitted.)
const SHUTDOWN_GRACE_SECONDS: u64 = 5;

pub struct Application {
    server: Server,
    port: u16,
    pub engine: Engine,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    arbiter: Arbiter,
    /// Cluster mode: this node.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

impl Application {
    /// Connects, migrates, seeds (if asked and empty), starts the actors and binds.
    pub async fn build(
        settings: &Settings,
        database: tokio_postgres::Config,
    ) -> anyhow::Result<Self> {
        Self::build_node(settings, database, None).await
    }

    /// `build`, for a node of a cluster when `cluster` is given (it joined already and
    /// holds its partition's lease; `database` writes under the lease's epoch): the
    /// store is taken for that epoch (its fence raised) before anything is written,
    /// the engine decides only its partition's banks and its windows are cut by the
    /// cluster's coordinator, and the node's cluster services start with the server.
    pub async fn build_node(
        settings: &Settings,
        database: tokio_postgres::Config,
        cluster: Option<crate::cluster::Joined>,
    ) -> anyhow::Result<Self> {
        // TLS first: a bad certificate stops the start before anything else starts.
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            // The settings refuse one without the other (exit code 2).
            _ => None,
        };
        let store = Store::connect(database, settings.database.db_pool_size_max);
        store
            .wait_until_ready(DATABASE_WAIT_MAX)
            .await
            .context("the database did not become ready")?;
        store.migrate().await.context("migrations failed")?;
        if let Some(joined) = &cluster {
            let before = store
                .take_partition(joined.epoch())
                .await
                .context("cannot take the partition's store")?;
            tracing::info!(partition = %joined.partition(), epoch = joined.epoch().0,
                           fence_before = before.0, "the partition's store is taken");
        }
        if settings.seed && store.seed_reference_data().await? {
            tracing::info!("loaded the reference corridor (India ⇄ UAE)");
        }
        let banks = store.banks().await?;
        if let Some(joined) = &cluster {
            // The banks registered now that other partitions own: their credit legs
            // go through the outbox (a bank registered later needs a restart).
            let owned = joined.owned();
            let remote: Vec<_> = banks
                .iter()
                .filter_map(|bank| {
                    let owner = owned.assignment.elsewhere(&bank.code, owned.partition)?;
                    Some((bank.code.clone(), owner))
                })
                .collect();
            store
                .enable_credit_outbox(&remote)
                .await
                .context("cannot set up the credit legs' outbox")?;
        }
        let mut stored_keys = store.keys().await?;
        if let (Some(file), true) = (&settings.first_start_keys_file, stored_keys.is_empty()) {
            keys::write_first_keys(&store, file).await?;
            stored_keys = store.keys().await?;
        }
        if stored_keys.iter().all(|k| k.revoked_at.is_some()) {
            tracing::warn!(
                "no API key is valid: every API call will be refused; make one with \
                 `deltran keys create --role operator`"
            );
        }
        // Open the first window before any actor asks for it. If it holds no transfer
        // yet, the writer will see every one of them and can sum it in memory.
        let open = store.open_window().await?;
        let empty_open_window = store.window_is_empty(open).await?.then_some(open);
        let metrics = Arc::new(Metrics::new());
        for (window, count, oldest) in store.pending_instructions_by_window().await? {
            metrics
                .waits
                .instructions_pending(window.get(), count, oldest);
        }
        // The domain actors share one arbiter (thread) of their own, away from the
        // HTTP workers; see docs/PERFORMANCE.md for the measurement behind this.
        let arbiter = Arbiter::new();
        if settings.screening_hold_score > settings.screening_reject_score {
            anyhow::bail!(
                "--screening-hold-score {} is above --screening-reject-score {}: a match that \
                 holds must score no higher than one that rejects",
                settings.screening_hold_score,
                settings.screening_reject_score
            );
        }
        let screening = store.screening_entries().await?;
        tracing::info!(entries = screening.len(), "screening list loaded");
        // Every limit below was checked against its range when parsed (the `config` module);
        // none is clamped here.
        let engine = Engine::start(
            arbiter.handle(),
            store.clone(),
            metrics.clone(),
            EngineSetup {
                writer: WriterLimits {
                    batch_size_max: settings.batch_size_max,
                    batches_in_flight_max: settings.batches_in_flight_max,
                },
                windows: WindowSettings {
                    duration: Duration::from_millis(settings.window_duration_ms),
                    cut_by_coordinator: cluster.is_some(),
                    demo_settlement_delay: settings
                        .demo
                        .then(|| Duration::from_millis(settings.settlement_delay_ms)),
                },
                empty_open_window,
                banks,
                corridors: store.corridors().await?,
                keys: stored_keys,
                queue_ttl_windows: settings.queue_ttl_windows,
                screening,
                screening_thresholds: Thresholds {
                    reject: settings.screening_reject_score,
                    hold: settings.screening_hold_score,
                },
                owned: cluster.as_ref().map(|joined| joined.owned()),
            },
        );
        let node = cluster.map(crate::cluster::ClusterNode::new);
        let rates = Arc::new(RateLimits::new(RateSettings {
            per_key_per_second: settings.rate_per_key_per_second,
            per_address_per_second: settings.rate_per_address_per_second,
            auth_failures_per_minute: settings.auth_failures_per_minute_max,
        }));
        RateLimits::sweep_every(Arc::downgrade(&rates), SWEEP_INTERVAL);
        let fault_injection = settings.fault_injection;
        if fault_injection {
            tracing::warn!("fault injection is on: operators may panic actors through POST /api/v1/faults/panic");
        }
        let state = web::Data::new(AppState {
            store: store.clone(),
            engine: engine.clone(),
            metrics: metrics.clone(),
            admission: Admission::new(
                AdmissionLimits {
                    in_flight_max: settings.submissions_in_flight_max,
                    in_engine_max: settings.submissions_in_engine_max,
                    delay_target: Duration::from_millis(settings.submit_delay_target_ms),
                },
                metrics.submissions_waiting.clone(),
            ),
            limits: HttpLimits {
                body_size_max_bytes: settings.body_size_max_bytes,
                batch_transfers_max: settings.transfer_batch_max,
                batch_size_max_bytes: settings.transfer_batch_size_max_bytes,
                iso_message_size_max_bytes: settings.iso_message_size_max_bytes,
                iso_transactions_max: settings.iso_transactions_max,
                page_size_max: settings.page_size_max,
                report_transfers_max: settings.report_transfers_max,
                submit_wait_max: Duration::from_millis(settings.submit_wait_max_ms),
            },
            ws_limits: WsLimits {
                frame_size_max: settings.ws_frame_size_max_bytes,
                queue_max: settings.ws_queue_max,
                sessions_max: settings.ws_sessions_max,
            },
            ws_open: Default::default(),
            rates,
            cluster: node.clone(),
        });
        if let Some(node) = &node {
            node.start(
                engine.clone(),
                store.clone(),
                Duration::from_millis(settings.window_duration_ms),
            );
            http::cluster::serve_forwarded(state.clone(), node.clone(), fault_injection);
        }
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || http::app(state.clone(), fault_injection))
            // No Nagle: a feed message written right after another would otherwise wait
            // for the client's delayed ACK (up to 40 ms on Linux). Set on the TCP stream
            // under TLS too.
            .tcp_nodelay(true)
            .workers(settings.http_workers)
            .backlog(4096)
            .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
            // The engine handles SIGTERM and Ctrl-C itself (`run_until_stopped`): it closes
            // the feeds first, then stops the server gracefully.
            .disable_signals();
        let tls_on = tls.is_some();
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(listen = %settings.listen, port, tls = tls_on, "DelTran engine ready");
        Ok(Application {
            server,
            port,
            engine,
            store,
            metrics,
            arbiter,
            cluster: node,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGTERM, Ctrl-C or a handle; in cluster mode
    /// also when the node can no longer serve its partition, which is then an error),
    /// then lets the writer finish every batch it holds before the actors stop.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let feed = self.engine.feed.clone();
        let node = self.cluster.clone();
        let failure: Arc<std::sync::Mutex<Option<String>>> = Default::default();
        let failed = failure.clone();
        let on_signal = actix_web::rt::spawn(async move {
            let node_failed = async {
                match &node {
                    Some(node) => node.failed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                signal = wait_for_stop_signal() => {
                    if signal.is_err() {
                        return;
                    }
                    tracing::info!("stop signal: closing the feeds, finishing admitted requests");
                }
                why = node_failed => {
                    *failed.lock().expect("lock") = Some(why);
                }
            }
            feed.close_all();
            handle.stop(true).await;
        });
        let served = self.server.await;
        on_signal.abort();
        if let Some(node) = &self.cluster {
            node.shut_down();
        }
        served?;
        let failure = failure.lock().expect("lock").take();
        self.engine.drain().await;
        self.arbiter.stop();
        // Every admitted submission was answered before the server stopped (it waits
        // for running handlers, up to its grace): anything else would show here.
        let unanswered = self.metrics.submissions_in_flight.get();
        tracing::info!(
            submissions_unanswered = unanswered,
            "DelTran engine stopped"
        );
        match failure {
            Some(why) => Err(anyhow::anyhow!("this node stopped: {why}")),
            None => Ok(()),
        }
    }
}

/// Resolves at SIGTERM or SIGINT (Ctrl-C); an error if the handlers cannot be set.
async fn wait_for_stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// The TLS setup of `--tls-cert` and `--tls-key`: the certificate chain and its key
/// (PEM), TLS 1.2 and 1.3 with rustls' safe defaults on the `ring` provider, no client
/// certificates (callers authenticate with API keys).
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-cert {}: not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("--tls-cert {}: holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}: not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| {
            format!(
                "--tls-key {} does not fit --tls-cert {}",
                key.display(),
                cert.display()
            )
        })
}
