//! The store writer: the one place transfers become real. It group-commits: while no
//! batch is in flight a record is written at once (a lone request waits only for its
//! own commit); while batches are in flight, new records gather and leave in the next
//! batch as soon as a connection is free. After each commit it answers the waiting
//! submissions and tells the banks involved what changed in their books.
//!
//! Which records leave in which batch, and when each barrier runs, is `queue`'s
//! business; this actor does the writes and reads it asks for.

mod complete;
mod isolate;
mod messages;
pub mod queue;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::bank::{BookDelta, BookUpdate, Resync, Snapshot, SnapshotFailed, WindowReleased};
use super::feed::Feed;
use super::window::Sealed;
use super::{guard, spawn_contained, Directory, Guarded, InjectPanic};
use crate::domain::netting::WindowSums;
use crate::domain::{BankCode, Outcome, ReleasedBooks, Transfer, WindowId};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, SumSlot, TransferWrite};
use queue::{Step, WriteQueue};

pub use messages::{
    BeginCutOff, CutOffMarker, Drain, Persist, PersistMany, PersistOutcome, ReleaseWindow,
    RequestSnapshot, TrustWindowsFrom, WindowProgress,
};
pub use queue::WriterLimits;

/// What runs between batches, once everything received before it is written.
enum Barrier {
    Snapshot(RequestSnapshot),
    Drain(oneshot::Sender<()>),
    Seal(WindowId, Recipient<Sealed>),
    Release(ReleaseWindow),
}

/// A window's cut-off: the banks whose markers are still to come.
struct CutOff {
    waiting_for: HashSet<BankCode>,
    sealed_to: Recipient<Sealed>,
}

/// A record waiting for its batch (a new transfer or a change of one's status), with
/// the submission or command to answer, if any.
struct Pending {
    transfer: Box<Transfer>,
    was: Option<Outcome>,
    reply: Option<oneshot::Sender<PersistOutcome>>,
}

/// The actor that writes transfers to the store, one engine-wide.
pub struct StoreWriter {
    store: Store,
    feed: Feed,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    queue: WriteQueue<Pending, Barrier>,
    cutoffs: BTreeMap<WindowId, CutOff>,
    /// Each unsealed window's legs as committed, so that closing a window does not
    /// have to read its transfers back: netting starts from these sums.
    sums: HashMap<WindowId, WindowSums<BankCode>>,
    /// Windows after this one were opened while this writer ran, so it saw every one
    /// of their commits; for older windows (opened before a start or restart) the
    /// window actor reads the sums from the store instead.
    trusted_after: Option<i64>,
    /// Windows with a batch whose fate is unknown (it failed, maybe after its commit).
    untrusted: HashSet<WindowId>,
    /// The newest sealed window: a transfer stamped with it or an older one arrived
    /// too late and is refused (the client retries into the open window).
    sealed_max: Option<WindowId>,
    /// Test hook (`PanicInNextCompletion`): the next batch completion panics.
    panic_in_next_completion: bool,
}

impl StoreWriter {
    pub fn new(
        store: Store,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        feed: Feed,
        limits: WriterLimits,
    ) -> Self {
        StoreWriter {
            store,
            feed,
            directory,
            metrics,
            queue: WriteQueue::new(limits),
            cutoffs: BTreeMap::new(),
            sums: HashMap::new(),
            trusted_after: None,
            untrusted: HashSet::new(),
            sealed_max: None,
            panic_in_next_completion: false,
        }
    }

    /// Starts as many batches and barriers as the limits allow.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while let Some(step) = self.queue.next_step() {
            match step {
                Step::Batch { seq, slot, records } => self.flush(seq, slot, records, ctx),
                Step::Barrier(barrier) => self.run_barrier(barrier, ctx),
            }
        }
    }

    fn flush(&mut self, batch_seq: u64, slot: usize, batch: Vec<Pending>, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        self.metrics.store_batch_size.observe(batch.len() as f64);
        let started = Instant::now();
        // The batch travels with the write and comes back with its result: no copy.
        // A transfer refused for its own data fails alone: the batch is split and
        // written again inside this one write (`isolate`), so the queue still sees one
        // batch and one completion.
        let write = async move {
            let transfers: Vec<TransferWrite> = batch
                .iter()
                .map(|p| TransferWrite {
                    transfer: &p.transfer,
                    was: p.was,
                })
                .collect();
            let written = isolate::write_transfers(&store, &transfers, SumSlot::new(slot)).await;
            (batch, written)
        };
        spawn_contained(self, ctx, write, move |(batch, result), act, ctx| {
            if std::mem::take(&mut act.panic_in_next_completion) {
                panic!("injected panic in a batch completion");
            }
            act.metrics
                .store_flush_duration
                .observe(started.elapsed().as_secs_f64());
            act.queue.batch_done(slot);
            act.complete(batch_seq, batch, result);
            act.pump(ctx);
        });
    }

    /// Runs a barrier `next_step` handed out; it must end with `barrier_done`.
    fn run_barrier(&mut self, barrier: Barrier, ctx: &mut Context<Self>) {
        match barrier {
            Barrier::Drain(reply) => {
                let _ = reply.send(());
                self.queue.barrier_done();
            }
            Barrier::Seal(window, sealed_to) => {
                self.sealed_max = self.sealed_max.max(Some(window));
                let sums = self.sums.remove(&window).unwrap_or_default();
                let sums = self.trusts(window).then_some(sums);
                self.untrusted.remove(&window);
                sealed_to.do_send(Sealed { window, sums });
                self.queue.barrier_done();
            }
            Barrier::Release(request) => {
                let store = self.store.clone();
                let window = request.window;
                let settle = async move { store.settle_window(window).await };
                spawn_contained(self, ctx, settle, move |result, act, ctx| {
                    act.queue.barrier_done();
                    let answer = result.map(|released| {
                        let Some(released) = released else {
                            return false;
                        };
                        let mut by_bank: HashMap<BankCode, Vec<ReleasedBooks>> = HashMap::new();
                        for r in released {
                            by_bank.entry(r.bank.clone()).or_default().push(r);
                        }
                        for (bank, books) in by_bank {
                            if let Some(handle) = act.directory.bank(&bank) {
                                handle.addr.do_send(WindowReleased { window, books });
                            }
                        }
                        true
                    });
                    let _ = request.reply.send(answer);
                    act.pump(ctx);
                });
            }
            Barrier::Snapshot(first) => {
                // Snapshots queued right behind this one and already due are served by
                // the same read: at start every bank asks at once.
                let mut requests = vec![first];
                while let Some(next) = self
                    .queue
                    .next_due_barrier_if(|b| matches!(b, Barrier::Snapshot(_)))
                {
                    if let Barrier::Snapshot(request) = next {
                        requests.push(request);
                    }
                }
                let store = self.store.clone();
                let banks: Vec<BankCode> = requests.iter().map(|r| r.bank.clone()).collect();
                let read = async move {
                    let records = store.banks().await?;
                    let books = store.bank_books(&banks).await?;
                    let window = store.open_window().await?;
                    let queued = store.queued_transfers(&banks).await?;
                    Ok::<_, StoreError>((records, books, window, queued))
                };
                spawn_contained(self, ctx, read, move |result, act, ctx| {
                    act.queue.barrier_done();
                    match result {
                        Ok((records, books, window, queued)) => {
                            for request in requests {
                                let record = records.iter().find(|r| r.code == request.bank);
                                let answer = match record {
                                    Some(record) => Snapshot {
                                        batch_seq: act.queue.last_batch_seq(),
                                        record: record.clone(),
                                        // `get`, not `remove`: a bank may have asked
                                        // more than once (each of its failed batches
                                        // asks), and every answer must carry its books.
                                        books: books
                                            .get(&request.bank)
                                            .cloned()
                                            .unwrap_or_default(),
                                        window,
                                        queued: queued
                                            .get(&request.bank)
                                            .cloned()
                                            .unwrap_or_default(),
                                    },
                                    None => {
                                        request.reply_to.do_send(SnapshotFailed {
                                            error: format!("bank {} is not stored", request.bank),
                                        });
                                        continue;
                                    }
                                };
                                request.reply_to.do_send(answer);
                            }
                        }
                        Err(error) => {
                            for request in requests {
                                request.reply_to.do_send(SnapshotFailed {
                                    error: error.to_string(),
                                });
                            }
                        }
                    }
                    act.pump(ctx);
                });
            }
        }
    }

    fn add_barrier(&mut self, barrier: Barrier, ctx: &mut Context<Self>) {
        self.queue.push_barrier(barrier);
        self.pump(ctx);
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::MAILBOX_CAPACITY);
    }
}

impl Guarded for StoreWriter {
    fn kind(&self) -> &'static str {
        "writer"
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Supervised for StoreWriter {
    /// Buffered submissions are answered "unavailable" (their replies are dropped) and
    /// every bank re-reads its books, since batches in flight may or may not commit.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.feed
            .actor_restarted("writer", "store writer", Vec::new());
        self.metrics
            .actor_restarts
            .with_label_values(&["writer"])
            .inc();
        self.queue.reset();
        // Cut-offs in progress are asked again by their window actors, and windows
        // open now are netted from the store, since their sums were lost.
        self.cutoffs.clear();
        self.sums.clear();
        self.untrusted.clear();
        self.trusted_after = None;
        for (_, handle) in self.directory.banks() {
            handle.addr.do_send(Resync);
        }
    }
}

impl Handler<Persist> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            act.take(msg);
            act.pump(ctx);
        });
    }
}

impl Handler<PersistMany> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: PersistMany, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            for record in msg.0 {
                act.take(record);
            }
            act.pump(ctx);
        });
    }
}

impl StoreWriter {
    /// Queues a record for its batch, or refuses it when its window is sealed.
    fn take(&mut self, msg: Persist) {
        if let (Some(window), Some(sealed)) = (msg.window(), self.sealed_max) {
            if window <= sealed {
                self.refuse_late(msg);
                return;
            }
        }
        self.queue.push(Pending {
            transfer: msg.transfer,
            was: msg.was,
            reply: msg.reply,
        });
    }
}

impl Handler<RequestSnapshot> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: RequestSnapshot, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            act.add_barrier(Barrier::Snapshot(msg), ctx)
        });
    }
}

impl StoreWriter {
    /// A transfer stamped with a window already sealed cannot be netted any more: it
    /// is refused (503, the client retries) and its reservation released; likewise a
    /// cancellation of a transfer whose window is sealed. Only a bank that joined
    /// during a cut-off could produce one. A refused release leaves its transfer
    /// queued in the store, so the bank re-reads its queue.
    fn refuse_late(&mut self, msg: Persist) {
        let t = &msg.transfer;
        tracing::warn!(bank = %t.sender, window = ?msg.window(), "record for a sealed window refused");
        if let Some(handle) = self.directory.bank(&t.sender) {
            if t.window_id().is_some() {
                handle.addr.do_send(BookUpdate {
                    batch_seq: self.queue.last_batch_seq(),
                    deltas: vec![(
                        t.amount.currency(),
                        BookDelta {
                            reserved_released: t.amount.value(),
                            ..BookDelta::default()
                        },
                    )],
                    queue: Vec::new(),
                });
            }
            if msg.was.is_some() {
                handle.addr.do_send(Resync);
            }
        }
        if let Some(reply) = msg.reply {
            let _ = reply.send(PersistOutcome::Failed(
                "the transfer's window closed meanwhile; retry".into(),
            ));
        }
    }
}

impl Handler<BeginCutOff> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: BeginCutOff, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            // The first cut-off this writer sees opens a window it sees from the start.
            act.trusted_after.get_or_insert(msg.window.get());
            act.cutoffs.insert(
                msg.window,
                CutOff {
                    waiting_for: msg.banks.into_iter().collect(),
                    sealed_to: msg.sealed_to,
                },
            );
            act.seal_if_complete(msg.window, ctx);
        });
    }
}

impl Handler<CutOffMarker> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: CutOffMarker, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            if let Some(cutoff) = act.cutoffs.get_mut(&msg.window) {
                cutoff.waiting_for.remove(&msg.bank);
            }
            act.seal_if_complete(msg.window, ctx);
        });
    }
}

impl StoreWriter {
    /// Once every bank's marker is in, everything received so far includes all of the
    /// window's transfers: a barrier then seals it when they are committed.
    fn seal_if_complete(&mut self, window: WindowId, ctx: &mut Context<Self>) {
        let complete = self
            .cutoffs
            .get(&window)
            .is_some_and(|c| c.waiting_for.is_empty());
        if complete {
            let cutoff = self.cutoffs.remove(&window).expect("present");
            self.add_barrier(Barrier::Seal(window, cutoff.sealed_to), ctx);
        }
    }
}

impl StoreWriter {
    fn trusts(&self, window: WindowId) -> bool {
        self.trusted_after.is_some_and(|after| window.get() > after)
            && !self.untrusted.contains(&window)
    }
}

impl Handler<TrustWindowsFrom> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: TrustWindowsFrom, _: &mut Context<Self>) {
        self.trusted_after = Some(msg.0.get() - 1);
    }
}

impl Handler<WindowProgress> for StoreWriter {
    type Result = Option<u64>;

    fn handle(&mut self, msg: WindowProgress, _: &mut Context<Self>) -> Option<u64> {
        self.trusts(msg.window).then(|| {
            self.sums
                .get(&msg.window)
                .map(|s| s.transfer_count)
                .unwrap_or(0)
        })
    }
}

impl Handler<ReleaseWindow> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: ReleaseWindow, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            act.add_barrier(Barrier::Release(msg), ctx)
        });
    }
}

impl Handler<Drain> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            act.add_barrier(Barrier::Drain(msg.reply), ctx)
        });
    }
}

/// Test hook: the next batch's completion (the continuation that answers its
/// submissions and updates the books, run after its commit) panics, to show that a
/// panic outside a handler is contained and the books are rebuilt.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicInNextCompletion;

impl Handler<InjectPanic> for StoreWriter {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |_, _| {
            panic!("injected panic in the store writer")
        });
    }
}

impl Handler<PanicInNextCompletion> for StoreWriter {
    type Result = ();

    fn handle(&mut self, _: PanicInNextCompletion, _: &mut Context<Self>) {
        self.panic_in_next_completion = true;
    }
}
