//! A node of the cluster (docs/SCALE-OUT.md): an engine process that runs one
//! partition under its lease, answers the coordinator's cut-off markers with its
//! sealed sums, and takes the coordinator's part itself whenever it holds that lease.
//!
//! Joining comes first (`join`): the node waits until it holds its partition's lease,
//! and the engine then opens its store under the lease's epoch (so its fence refuses
//! any writer of an older one). A node that loses its partition's lease stops
//! (`ClusterNode::failed` ends its server): whatever it still had in flight is fenced
//! by its store, and the process that starts again claims the lease afresh.
//!
//! The cut-off: the coordinator asks every partition for its open window, cuts the
//! oldest (W) by sending each partition a marker, and waits for each one's sealed sums
//! of W. A partition whose open window is W cuts it exactly as a lone engine does (its
//! clock has no timer of its own in cluster mode), waits until it is netted, and
//! answers the sums of its stored legs of W; asked again, it answers the same sums.
//! The coordinator adds them (netting is additive), nets the whole, and publishes the
//! result on the log. Partitions that have not answered are asked again until they do,
//! so a partition that is down holds the cluster's result of W back, not its traffic.
//!
//! Beside those: the relay of the partition's outbox of credit legs and the applier
//! of the legs owed to it, and the sharing of keys (each partition publishes the keys
//! its store holds; every node takes the others' into its key ring), so that a key
//! made on any node works on all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::keeper::LeaseKeeper;
use super::leases::{LeaseKey, Leases};
use super::log::Log;
use super::wire::{self, PartitionStatus, SealAnswer};
use super::{ClusterError, TransportSettings};
use crate::actors::clock::{CloseCurrent, CurrentWindow};
use crate::actors::Engine;
use crate::config::ClusterArgs;
use crate::domain::auth::KeyRecord;
use crate::domain::cluster::{Assignment, CutOff, Epoch, Lease, NodeId, PartitionId, SealedSums};
use crate::domain::{netting, Origin, WindowId};
use crate::store::Store;
use crate::telemetry::error_chain;

/// How long a node starting tries to reach NATS and open the streams before its
/// start fails.
const JOIN_WAIT_MAX: Duration = Duration::from_secs(120);
/// The pause between two such tries.
const JOIN_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long the coordinator waits for one partition's answer to a status request.
const STATUS_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long the coordinator waits for one partition's answer to a marker: its
/// cut-off and netting, a few milliseconds to a second under load.
const SEAL_WAIT_MAX: Duration = Duration::from_secs(15);
/// How long one cut-off asks the missing partitions again before it gives up until
/// the next period (and then starts from the partitions' open windows again).
const CUT_WAIT_MAX: Duration = Duration::from_secs(30);
/// The pause between two rounds of markers to partitions that have not answered.
const MARKER_RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// Most credit legs the relay reads from the outbox and publishes at once (all in
/// flight together, each awaiting its acknowledgement).
const RELAY_BATCH_MAX: i64 = 1_000;
/// How often the relay looks into an empty outbox: the most a leg waits there
/// before its publication starts.
const RELAY_IDLE_INTERVAL: Duration = Duration::from_millis(5);
/// Most credit legs the outbox may hold: past it (the log unreachable for long),
/// this partition refuses transfers to other partitions' banks (`503`) until the
/// relay has caught up, so that the legs owed cannot grow without bound.
const OUTBOX_LEGS_MAX: i64 = 1_000_000;
/// How often the relay counts the outbox.
const OUTBOX_COUNT_INTERVAL: Duration = Duration::from_secs(1);
/// Most keys a partition shares with the others (all in one message, well within
/// NATS' 1 MiB payload at about 250 bytes a key).
const SHARED_KEYS_MAX: usize = 3_000;
/// Most credit legs fetched from the log and applied in one statement.
const APPLY_BATCH_MAX: usize = 1_000;
/// The pause after a failure (the store or NATS unavailable) before trying again.
const CREDIT_RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// How often a partition looks whether the window it cut is netted yet.
const NETTED_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The subject a partition's node answers cut-off markers on. Core NATS request and
/// reply: the subjects are outside the stream's `deltran.>`, so the stream does not
/// capture them.
fn cut_subject(partition: PartitionId) -> String {
    format!("deltran-rpc.cut.{}", partition.0)
}

fn status_subject(partition: PartitionId) -> String {
    format!("deltran-rpc.status.{}", partition.0)
}

/// The subject a partition's node answers reads of its transfers on.
fn transfer_subject(partition: PartitionId) -> String {
    format!("deltran-rpc.transfer.{}", partition.0)
}

/// How long a node waits for another's answer to a read of a transfer.
const READ_WAIT_MAX: Duration = Duration::from_secs(5);

/// The subject a partition's node takes forwarded submissions on.
pub fn submit_subject(partition: PartitionId) -> String {
    format!("deltran-rpc.submit.{}", partition.0)
}

/// The subject a partition's node takes any other forwarded request on (an API
/// request for one of its banks, or its part of a list asked of every partition).
pub fn request_subject(partition: PartitionId) -> String {
    format!("deltran-rpc.request.{}", partition.0)
}

/// What a node has once it joined the cluster: its NATS connection, the leases and
/// the log, and its partition's lease.
pub struct Joined {
    client: async_nats::Client,
    leases: Arc<Leases>,
    log: Arc<Log>,
    keeper: LeaseKeeper,
    lease: Lease,
    node: NodeId,
    partition: PartitionId,
    assignment: Assignment,
    lease_ttl: Duration,
    /// Set while the outbox of credit legs is full; read by the engine.
    credits_backlogged: Arc<AtomicBool>,
}

impl Joined {
    /// The epoch every write of this node's store carries.
    pub fn epoch(&self) -> Epoch {
        self.lease.epoch
    }

    pub fn partition(&self) -> PartitionId {
        self.partition
    }

    /// The banks this node's partition owns, for the engine.
    pub fn owned(&self) -> crate::actors::OwnedBanks {
        crate::actors::OwnedBanks {
            assignment: self.assignment.clone(),
            partition: self.partition,
            credits_backlogged: self.credits_backlogged.clone(),
        }
    }
}

/// The operator's move of `partition` to node `to` (`deltran cluster move`).
pub async fn move_partition(
    urls: &str,
    partition: PartitionId,
    to: NodeId,
    lease_ttl: Duration,
    replicas: usize,
) -> Result<Lease, ClusterError> {
    let client = super::connect(urls).await?;
    let js = async_nats::jetstream::new(client);
    let settings = TransportSettings {
        replicas,
        ..TransportSettings::default()
    };
    let leases = Leases::open(&js, &settings).await?;
    leases
        .hand_over(
            LeaseKey::Partition(partition),
            to,
            super::keeper::wall_clock_ms(),
            lease_ttl,
        )
        .await
}

/// Connects to NATS, opens the leases and the log, and waits until this node holds
/// its partition's lease (another node may hold it live: it then waits for its expiry).
pub async fn join(args: &ClusterArgs) -> Result<Joined, ClusterError> {
    let (Some(urls), Some(node), Some(assignment)) =
        (&args.cluster_nats, args.node_id, &args.partitions)
    else {
        return Err(ClusterError::Malformed {
            what: "cluster settings",
            detail: "--cluster-nats needs --node-id and --partitions".into(),
        });
    };
    let settings = TransportSettings {
        replicas: args.cluster_replicas,
        ..TransportSettings::default()
    };
    // NATS may not be up yet, or its JetStream may still be electing its leaders
    // (nodes starting together create the streams at once): retried until
    // `JOIN_WAIT_MAX`, then the start fails.
    let deadline = Instant::now() + JOIN_WAIT_MAX;
    let (client, leases, log) = loop {
        let attempt = async {
            let client = super::connect(urls).await?;
            let js = async_nats::jetstream::new(client.clone());
            let leases = Leases::open(&js, &settings).await?;
            let log = Log::open(js, settings.clone()).await?;
            // One assignment for the whole cluster, kept on the log: a node started
            // with another one would decide banks it does not own.
            let stored = log.assignment(&assignment.text()).await?;
            if stored != assignment.text() {
                return Err(ClusterError::Malformed {
                    what: "the partition assignment",
                    detail: format!(
                        "this node's --partitions ({}) is not the cluster's ({stored}); a \
                         bank moves to another partition only with its data",
                        assignment.text()
                    ),
                });
            }
            Ok::<_, ClusterError>((client, Arc::new(leases), Arc::new(log)))
        };
        match attempt.await {
            Ok(opened) => break opened,
            Err(e @ ClusterError::Unavailable { .. }) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "the cluster's NATS is not ready yet; trying again");
                tokio::time::sleep(JOIN_RETRY_INTERVAL).await;
            }
            Err(e) => return Err(e),
        }
    };
    let partition = PartitionId(args.partition.unwrap_or(node));
    let node = NodeId(node);
    let lease_ttl = Duration::from_millis(args.lease_ttl_ms);
    tracing::info!(node = node.0, %partition, "waiting for the partition's lease (held by another node, it waits for its expiry or a move)");
    let mut keeper = LeaseKeeper::start(
        leases.clone(),
        LeaseKey::Partition(partition),
        node,
        lease_ttl,
    );
    let lease = keeper
        .held()
        .await
        .ok_or_else(|| ClusterError::Unavailable {
            what: "claiming the partition's lease",
            detail: "lost as soon as it was won".into(),
        })?;
    tracing::info!(node = node.0, %partition, epoch = lease.epoch.0, "partition lease held");
    Ok(Joined {
        client,
        leases,
        log,
        keeper,
        lease,
        node,
        partition,
        assignment: assignment.clone(),
        lease_ttl,
        credits_backlogged: Arc::default(),
    })
}

/// A running node: what the HTTP edge and the cluster's services share.
pub struct ClusterNode {
    pub client: async_nats::Client,
    pub node: NodeId,
    pub partition: PartitionId,
    pub assignment: Assignment,
    pub epoch: Epoch,
    pub(super) log: Arc<Log>,
    leases: Arc<Leases>,
    lease_ttl: Duration,
    /// Whether this node holds the coordinator's lease now.
    coordinating: AtomicBool,
    /// The newest coordinator epoch whose marker this partition obeyed: a marker of an
    /// older one (a coordinator that lost its lease and does not know yet) is refused.
    coordinator_obeyed: AtomicU64,
    partition_keeper: Mutex<Option<LeaseKeeper>>,
    /// Why this node can no longer serve its partition, once it cannot.
    failure: tokio::sync::watch::Sender<Option<String>>,
    /// The outbox holds `OUTBOX_LEGS_MAX` legs or more (the engine refuses transfers
    /// to other partitions' banks meanwhile).
    credits_backlogged: Arc<AtomicBool>,
}

impl ClusterNode {
    pub fn new(joined: Joined) -> Arc<Self> {
        Arc::new(ClusterNode {
            client: joined.client,
            node: joined.node,
            partition: joined.partition,
            assignment: joined.assignment,
            epoch: joined.lease.epoch,
            log: joined.log,
            leases: joined.leases,
            lease_ttl: joined.lease_ttl,
            coordinating: AtomicBool::new(false),
            coordinator_obeyed: AtomicU64::new(0),
            partition_keeper: Mutex::new(Some(joined.keeper)),
            failure: tokio::sync::watch::Sender::new(None),
            credits_backlogged: joined.credits_backlogged,
        })
    }

    /// This node can no longer serve its partition (its lease is lost, or NATS
    /// refused a subscription it needs): its cluster services end and the engine
    /// stops.
    pub fn fail(&self, why: String) {
        tracing::error!(partition = %self.partition, %why, "this node stops serving its partition");
        self.failure.send_replace(Some(why));
    }

    /// The engine stopped: the node's cluster services end too (its subscriptions
    /// with them), so that nothing answers for the partition from here.
    pub fn shut_down(&self) {
        self.failure.send_if_modified(|failure| {
            failure.is_none() && {
                *failure = Some("the engine stopped".into());
                true
            }
        });
    }

    /// Waits until the node fails or stops, and says why.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        loop {
            if let Some(why) = failure.borrow_and_update().clone() {
                return why;
            }
            if failure.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The partition that owns `bank`, when it is not this node's.
    pub fn partition_elsewhere(&self, bank: &crate::domain::BankCode) -> Option<PartitionId> {
        self.assignment.elsewhere(bank, self.partition)
    }

    pub fn is_coordinator(&self) -> bool {
        self.coordinating.load(Ordering::Acquire)
    }

    /// The cluster's result of `window`, as the coordinator published it.
    pub async fn window_result(&self, window: WindowId) -> Result<Option<Vec<u8>>, ClusterError> {
        self.log.result(window).await
    }

    /// Starts the node's services on the current (actix) runtime: the watch on its
    /// partition's lease, the answers to status requests and markers, and the
    /// coordinator's loop, which cuts a window every `period` while this node holds
    /// the coordinator's lease.
    pub fn start(self: &Arc<Self>, engine: Engine, store: Store, period: Duration) {
        let keeper = self.partition_keeper.lock().expect("lock").take();
        if let Some(mut keeper) = keeper {
            let node = self.clone();
            self.spawn_until_stopped(async move {
                let lost = keeper.lost().await;
                node.fail(format!(
                    "the partition's lease (epoch {}) is lost; its store fences what this \
                     node still had in flight",
                    lost.map_or(0, |l| l.epoch.0)
                ));
            });
        }
        self.spawn_until_stopped(self.clone().answer_status(engine.clone()));
        self.spawn_until_stopped(self.clone().answer_markers(engine.clone(), store.clone()));
        self.spawn_until_stopped(self.clone().coordinate(period));
        self.spawn_until_stopped(self.clone().answer_transfer_reads(store.clone()));
        self.spawn_until_stopped(self.clone().relay_credits(store.clone()));
        self.spawn_until_stopped(self.clone().apply_credits(store.clone()));
        self.spawn_until_stopped(self.clone().publish_registry(store.clone()));
        self.spawn_until_stopped(self.clone().read_registry(engine.clone(), store.clone()));
        self.spawn_until_stopped(self.clone().relay_feed(engine.clone(), store));
        self.spawn_until_stopped(self.clone().read_feed(engine.clone()));
        self.spawn_until_stopped(self.clone().read_interest(engine.clone()));
        self.spawn_until_stopped(self.clone().publish_keys(engine.keys.stored()));
        self.spawn_until_stopped(self.clone().read_keys(engine.keys));
    }

    /// Answers other nodes' reads of this partition's transfers: the transfer's JSON
    /// (as `GET /transfers/{id}` renders it), or an empty answer when this partition
    /// does not hold it. The node that asked decides what its caller may see.
    async fn answer_transfer_reads(self: Arc<Self>, store: Store) {
        let subject = transfer_subject(self.partition);
        self.serve(subject, "transfer reads", |request| {
            let store = store.clone();
            async move {
                let id = std::str::from_utf8(&request.payload)
                    .ok()
                    .and_then(|text| crate::domain::TransferId::parse(text).ok());
                let Some(id) = id else {
                    return Some(Vec::new());
                };
                match store.transfer(id).await {
                    Ok(transfer) => {
                        Some(crate::views::text(crate::views::transfer(&transfer)).into_bytes())
                    }
                    Err(crate::store::StoreError::NotFound) => Some(Vec::new()),
                    // No answer: the asking node hears nothing in time and says so.
                    Err(_) => None,
                }
            }
        })
        .await
    }

    /// The largest message this node's NATS server takes (its `max_payload`).
    pub fn message_size_max(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Every partition but this node's.
    pub fn other_partitions(&self) -> Vec<PartitionId> {
        self.assignment
            .partitions()
            .into_iter()
            .filter(|p| *p != self.partition)
            .collect()
    }

    /// A transfer held by another partition: that partition, and the transfer's JSON
    /// as it renders it, asked of every other partition at once; `None` when none
    /// holds it. An error when a partition did not answer and none that did holds it.
    pub async fn transfer_elsewhere(
        &self,
        id: crate::domain::TransferId,
    ) -> Result<Option<(PartitionId, Vec<u8>)>, ClusterError> {
        let others = self.other_partitions();
        let answers = futures_util::future::join_all(others.iter().map(|p| {
            self.request(
                transfer_subject(*p),
                id.to_string().into_bytes(),
                READ_WAIT_MAX,
            )
        }))
        .await;
        let mut silent = None;
        for (partition, answer) in others.iter().zip(answers) {
            match answer {
                Ok(message) if !message.payload.is_empty() => {
                    return Ok(Some((*partition, message.payload.to_vec())))
                }
                Ok(_) => {}
                Err(e) => silent = Some(format!("{partition}: {e}")),
            }
        }
        match silent {
            Some(detail) => Err(ClusterError::Unavailable {
                what: "reading a transfer from another partition",
                detail,
            }),
            None => Ok(None),
        }
    }

    /// Shares this partition's keys with the others: publishes them as the key ring
    /// read them from the store at its last reload (every `KEY_RELOAD_INTERVAL`),
    /// whenever they changed, so that a key made or revoked on any node works, or
    /// stops working, on every node within about a second. At most
    /// `SHARED_KEYS_MAX` keys are shared.
    async fn publish_keys(
        self: Arc<Self>,
        mut stored: tokio::sync::watch::Receiver<Vec<KeyRecord>>,
    ) {
        loop {
            let mut records = stored.borrow_and_update().clone();
            if records.len() > SHARED_KEYS_MAX {
                tracing::warn!(
                    keys = records.len(),
                    shared = SHARED_KEYS_MAX,
                    "more keys than the cluster shares: the newest are local only"
                );
                records.sort_by_key(|r| r.created_at);
                records.truncate(SHARED_KEYS_MAX);
            }
            let json = wire::keys_to_json(&records);
            while let Err(e) = self.log.publish_keys(self.partition, json.clone()).await {
                tracing::debug!(error = %e, "keys not shared; trying again");
                tokio::time::sleep(crate::actors::keys::KEY_RELOAD_INTERVAL).await;
            }
            if stored.changed().await.is_err() {
                return;
            }
        }
    }

    /// Takes the other partitions' keys into this node's key ring as they publish them.
    async fn read_keys(self: Arc<Self>, ring: Arc<crate::actors::keys::KeyRing>) {
        loop {
            let mut shared = match self.log.shared_keys().await {
                Ok(shared) => shared,
                Err(e) => {
                    tracing::warn!(error = %e, "the keys' consumer is not open yet");
                    tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
                    continue;
                }
            };
            let mut by_partition: std::collections::BTreeMap<PartitionId, Vec<_>> =
                Default::default();
            while let Some(next) = shared.next().await {
                match next.and_then(|(p, json)| Ok((p, wire::keys_from_json(&json)?))) {
                    Ok((partition, _)) if partition == self.partition => {}
                    Ok((partition, records)) => {
                        by_partition.insert(partition, records);
                        ring.replace_others(by_partition.values().flatten().cloned().collect());
                    }
                    Err(e) => tracing::warn!(error = %e, "shared keys that do not read; skipped"),
                }
            }
            tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
        }
    }

    /// Runs `work` on the current (actix) runtime until it ends or the node stops:
    /// dropped then, with the subscriptions it holds.
    pub fn spawn_until_stopped(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = ()> + 'static,
    ) {
        let node = self.clone();
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = node.failed() => {}
                _ = work => {}
            }
        });
    }

    /// Answers the requests of `subject` one at a time, each with what `answer`
    /// makes of it (nothing: the asker hears nothing in time), until the node stops;
    /// a subscription NATS refuses fails the node.
    async fn serve<F, Fut>(&self, subject: String, what: &str, mut answer: F)
    where
        F: FnMut(async_nats::Message) -> Fut,
        Fut: std::future::Future<Output = Option<Vec<u8>>>,
    {
        let mut requests = match self.client.subscribe(subject).await {
            Ok(requests) => requests,
            Err(e) => return self.fail(format!("subscribing to {what}: {e}")),
        };
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply.clone() else {
                continue;
            };
            if let Some(body) = answer(request).await {
                if let Err(e) = self.client.publish(reply, body.into()).await {
                    tracing::debug!(error = %e, what, "an answer was not sent");
                }
            }
        }
    }

    /// The outbox's relay: publishes the legs this partition owes others, many in
    /// flight at once, and deletes each from the outbox once the log acknowledged it.
    /// A leg published but not deleted (a crash between the two, or a failed delete)
    /// is published again: the log drops it within its duplicate window, and the
    /// receiver's store applies it once whatever comes.
    async fn relay_credits(self: Arc<Self>, store: Store) {
        let mut counted = Instant::now() - OUTBOX_COUNT_INTERVAL;
        loop {
            if counted.elapsed() >= OUTBOX_COUNT_INTERVAL {
                counted = Instant::now();
                if let Ok(owed) = store.owed_leg_count().await {
                    let full = owed >= OUTBOX_LEGS_MAX;
                    if self.credits_backlogged.swap(full, Ordering::AcqRel) != full {
                        tracing::warn!(owed, full, "the outbox of credit legs changed state");
                    }
                }
            }
            let owed = match store
                .owed_legs(RELAY_BATCH_MAX, self.partition, self.epoch)
                .await
            {
                Ok(owed) => owed,
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "the outbox is not readable; retrying");
                    tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
                    continue;
                }
            };
            if owed.is_empty() {
                tokio::time::sleep(RELAY_IDLE_INTERVAL).await;
                continue;
            }
            let acks = futures_util::future::join_all(
                owed.iter().map(|o| self.log.publish_leg(o.to, &o.leg)),
            )
            .await;
            let published: Vec<&crate::domain::cluster::CreditLeg> = owed
                .iter()
                .zip(&acks)
                .filter(|(_, ack)| ack.is_ok())
                .map(|(o, _)| &o.leg)
                .collect();
            if published.len() < owed.len() {
                tracing::warn!(
                    unpublished = owed.len() - published.len(),
                    "credit legs not acknowledged by the log; sending them again"
                );
            }
            if !published.is_empty() {
                if let Err(e) = store.legs_published(&published).await {
                    tracing::warn!(error = %error_chain(&e), "published legs not marked; they go again");
                }
            }
            if published.len() < owed.len() {
                tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
            }
        }
    }

    /// Applies the legs other partitions owe this one, once each, acknowledging them
    /// to the log only once applied: a leg not acknowledged comes again.
    async fn apply_credits(self: Arc<Self>, store: Store) {
        let credits = loop {
            match self.log.credits(self.partition).await {
                Ok(credits) => break credits,
                Err(e) => {
                    tracing::warn!(error = %e, "the credit legs' consumer is not open yet");
                    tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
                }
            }
        };
        loop {
            let delivered = match credits
                .next_batch(APPLY_BATCH_MAX, Duration::from_secs(1))
                .await
            {
                Ok(delivered) => delivered,
                Err(e) => {
                    tracing::debug!(error = %e, "no credit legs fetched");
                    tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
                    continue;
                }
            };
            if delivered.is_empty() {
                continue;
            }
            let mut legs = Vec::with_capacity(delivered.len());
            for d in &delivered {
                match &d.leg {
                    Ok(leg) => legs.push(leg.clone()),
                    // It would never read: recorded here, and acknowledged below.
                    Err(e) => tracing::error!(error = %e, "a credit leg that does not read"),
                }
            }
            if let Err(e) = store.apply_credit_legs(&legs).await {
                tracing::warn!(error = %error_chain(&e), "credit legs not applied; they come again");
                tokio::time::sleep(CREDIT_RETRY_INTERVAL).await;
                continue;
            }
            let acks = futures_util::future::join_all(delivered.into_iter().map(|d| d.ack())).await;
            let failed = acks.iter().filter(|a| a.is_err()).count();
            if failed > 0 {
                tracing::debug!(
                    failed,
                    "acknowledgements not confirmed; those legs come again"
                );
            }
        }
    }

    async fn open_window(engine: &Engine) -> Option<WindowId> {
        engine.clock.send(CurrentWindow).await.ok().flatten()
    }

    async fn answer_status(self: Arc<Self>, engine: Engine) {
        let subject = status_subject(self.partition);
        self.serve(subject, "status requests", |_| {
            let (node, engine) = (self.clone(), engine.clone());
            async move {
                let status = PartitionStatus {
                    node: node.node.0,
                    partition: node.partition.0,
                    epoch: node.epoch.0,
                    open_window: Self::open_window(&engine).await.map(|w| w.get()),
                };
                Some(serde_json::to_vec(&status).expect("a status serialises"))
            }
        })
        .await
    }

    /// Answers markers one at a time: a seal takes the window clock's cut-off and
    /// netting, and the coordinator sends one marker per partition at a time.
    async fn answer_markers(self: Arc<Self>, engine: Engine, store: Store) {
        let subject = cut_subject(self.partition);
        self.serve(subject, "cut-off markers", |message| {
            let (node, engine, store) = (self.clone(), engine.clone(), store.clone());
            async move {
                let marker = match wire::marker_from_json(&message.payload) {
                    Ok(marker) => marker,
                    Err(e) => {
                        tracing::warn!(error = %e, "a cut-off marker that does not read; ignored");
                        return None;
                    }
                };
                let obeyed = node
                    .coordinator_obeyed
                    .fetch_max(marker.coordinator.0, Ordering::AcqRel);
                let answer: SealAnswer = if marker.coordinator.0 < obeyed {
                    Err(format!(
                        "marker of coordinator {} refused: this partition obeys {} already",
                        marker.coordinator, obeyed
                    ))
                } else {
                    node.seal(&engine, &store, marker.window).await
                };
                Some(wire::seal_to_json(marker.window, node.partition, &answer))
            }
        })
        .await
    }

    /// This partition's sealed sums of `window`: cut first if it is the open one, then
    /// read from its stored legs once netted (the same sums however often asked).
    async fn seal(&self, engine: &Engine, store: &Store, window: WindowId) -> SealAnswer {
        let open = Self::open_window(engine)
            .await
            .ok_or("the window clock is starting")?;
        if window > open {
            // A coordinator cuts W only once every partition sealed W − 1: this store
            // never had such a window open.
            return Err(format!(
                "window {window} is ahead of this partition's open window {open}"
            ));
        }
        if window == open {
            let origin = Origin::Engine("cluster coordinator");
            match engine.clock.send(CloseCurrent { origin }).await {
                Ok(Ok((closed, next))) => {
                    tracing::info!(window = %closed, next = %next, "window cut by the coordinator")
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("the window clock is restarting".into()),
            }
        }
        let deadline = Instant::now() + SEAL_WAIT_MAX;
        loop {
            match store.window_state(window).await {
                Ok(Some(state)) if !state.is_live() => break,
                Ok(Some(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(NETTED_POLL_INTERVAL).await
                }
                Ok(Some(_)) => return Err(format!("window {window} is not netted yet")),
                Ok(None) => return Err(format!("window {window} is unknown to this partition")),
                Err(e) => return Err(format!("reading window {window}: {}", error_chain(&e))),
            }
        }
        let sums = store
            .window_sums(window)
            .await
            .map_err(|e| format!("reading window {window}'s sums: {}", error_chain(&e)))?;
        Ok(SealedSums {
            window,
            partition: self.partition,
            sums,
        })
    }

    async fn request(
        &self,
        subject: String,
        payload: Vec<u8>,
        wait: Duration,
    ) -> Result<async_nats::Message, async_nats::RequestError> {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(wait));
        self.client.send_request(subject, request).await
    }

    /// Holds (or waits for) the coordinator's lease, and cuts a window every `period`
    /// while it holds it.
    async fn coordinate(self: Arc<Self>, period: Duration) {
        loop {
            let mut keeper = LeaseKeeper::start(
                self.leases.clone(),
                LeaseKey::Coordinator,
                self.node,
                self.lease_ttl,
            );
            let Some(lease) = keeper.held().await else {
                tokio::time::sleep(self.lease_ttl / 3).await;
                continue;
            };
            self.coordinating.store(true, Ordering::Release);
            tracing::info!(
                epoch = lease.epoch.0,
                "this node coordinates the cluster's cut-offs"
            );
            let mut next_cut = tokio::time::Instant::now() + period;
            loop {
                tokio::select! {
                    _ = keeper.lost() => break,
                    _ = tokio::time::sleep_until(next_cut) => {
                        let started = Instant::now();
                        match self.cut_once(lease.epoch).await {
                            Ok(window) => tracing::info!(window = %window,
                                duration_ms = started.elapsed().as_millis() as u64,
                                "the cluster's window is cut and its result published"),
                            Err(why) => tracing::warn!(%why, "cut-off not completed; again next period"),
                        }
                        next_cut += period;
                        let now = tokio::time::Instant::now();
                        if next_cut < now {
                            next_cut = now;
                        }
                    }
                }
            }
            self.coordinating.store(false, Ordering::Release);
            tracing::warn!(epoch = lease.epoch.0, "the coordinator's lease is lost");
        }
    }

    /// One cut-off: the oldest open window of the partitions, sealed by each, added
    /// and netted, published.
    async fn cut_once(&self, epoch: Epoch) -> Result<WindowId, String> {
        let partitions: Vec<PartitionId> = self.assignment.partitions().into_iter().collect();
        let statuses = futures_util::future::join_all(
            partitions
                .iter()
                .map(|p| self.request(status_subject(*p), Vec::new(), STATUS_WAIT_MAX)),
        )
        .await;
        let mut window: Option<WindowId> = None;
        for (partition, status) in partitions.iter().zip(statuses) {
            let open = status
                .map_err(|e| format!("{partition} did not answer: {e}"))
                .and_then(|m| wire::status_from_json(&m.payload).map_err(|e| e.to_string()))?
                .open_window
                .ok_or_else(|| format!("{partition}'s clock is starting"))?;
            let open = WindowId::new(open).map_err(|e| e.to_string())?;
            window = Some(window.map_or(open, |w| w.min(open)));
        }
        let window = window.ok_or("the cluster has no partition")?;
        let mut cut = CutOff::new(window, partitions);
        let marker = wire::marker_to_json(&cut.marker(epoch));
        let deadline = Instant::now() + CUT_WAIT_MAX;
        loop {
            let missing = cut.missing();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("window {window}: no seal from {missing:?} in time"));
            }
            let answers = futures_util::future::join_all(
                missing
                    .iter()
                    .map(|p| self.request(cut_subject(*p), marker.clone(), SEAL_WAIT_MAX)),
            )
            .await;
            for (partition, answer) in missing.iter().zip(answers) {
                match answer.map(|m| wire::seal_from_json(&m.payload)) {
                    Ok(Ok(Ok(sealed))) => {
                        cut.receive(sealed).map_err(|e| e.to_string())?;
                    }
                    Ok(Ok(Err(why))) => tracing::debug!(%partition, %why, "no seal yet"),
                    Ok(Err(e)) => {
                        tracing::warn!(%partition, error = %e, "a seal that does not read")
                    }
                    Err(e) => tracing::debug!(%partition, error = %e, "no answer to the marker"),
                }
            }
            if !cut.missing().is_empty() {
                tokio::time::sleep(MARKER_RETRY_INTERVAL).await;
            }
        }
        let sums = cut.result().expect("every partition's sums are in");
        // `net` asserts conservation of the whole as it computes.
        let netting = netting::net(&sums);
        let parts: Vec<(PartitionId, u64)> = cut
            .sealed()
            .map(|(partition, sums)| (partition, sums.transfer_count))
            .collect();
        self.log
            .publish_result(window, wire::result_to_json(window, &parts, &netting))
            .await
            .map_err(|e| e.to_string())?;
        Ok(window)
    }
}
