//! One actor per bank: the single writer of that bank's exposure. It checks each
//! transfer the bank sends against its status and net debit caps, reserves the debit,
//! stamps the open window and hands the transfer to the store writer. Its memory is
//! a cache of the store: at start and after every restart it asks the writer for a
//! snapshot of its books (a barrier, see `writer::RequestSnapshot`).
//!
//! It also keeps the bank's queue: transfers that asked to wait rather than be
//! rejected at the limit (`domain::queue`). They are released first in, first out as
//! headroom appears (a credit committed, a window settled, the cap raised), each into
//! the open window at the moment of its release; at a cut-off the clock may release a
//! set of them together (gridlock resolution, `GridlockQuery`), and those not released
//! within `queue_ttl_windows` windows expire.
//! It also holds the bank's settlement balances (the currencies it is prefunded in):
//! a prefunded bank's exposure stays within both its cap and its balance. A balance
//! changes in the store only (funds-in, funds-out, a settled window), and each change
//! raises its version; the actor keeps the newest figure it has been told of, from
//! the snapshot, a funds command or a window release, in whatever order they arrive.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod messages;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::feed::{Channel, Event, Feed};
use super::writer::{
    CutOffMarker, Persist, PersistMany, PersistOutcome, RequestSnapshot, StoreWriter,
};
use super::{guard, now_micros, Guarded, InjectPanic};
use crate::domain::gridlock::Standing;
use crate::domain::returns::Returned;
use crate::domain::rules::{check_transfer, TransferFacts};
use crate::domain::screening::Verdict;
use crate::domain::{
    books, Amount, BankCode, BankPositions, BankRecord, BankStatus, Currency, Ledger, Outcome,
    RejectCode, SenderQueue, StoredBalance, Transfer, TransferId, WindowId,
};
use crate::metrics::Metrics;
use crate::views;
pub use messages::{
    BookDelta, BookUpdate, CancelTransfer, CutOffBank, DecideHeld, FundsMoved, FundsOutCheck,
    GridlockQuery, ProfileChanged, QueueStanding, ReadPositions, ReserveFundsOut, Resync, Snapshot,
    SnapshotFailed, SubmitTransfer, SubmitTransfers, WindowReleased,
};

/// What a bank actor needs to know of the queue's settings and shared figures.
#[derive(Clone)]
pub struct QueueSettings {
    /// A queued transfer not released within this many windows (the one it was
    /// queued in counted) expires.
    pub ttl_windows: u32,
    /// Transfers queued in every bank, kept by the banks (each adds the change of its
    /// own queue's length): the clock skips gridlock resolution when it is zero.
    pub queued_total: Arc<AtomicI64>,
}

/// Positions are published at most this often per bank (the latest value wins).
const POSITION_PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// A limit warning goes out when exposure passes 80 % of the cap.
const LIMIT_WARNING_NUMERATOR: Decimal = Decimal::from_parts(8, 0, 0, false, 0);
const LIMIT_WARNING_DENOMINATOR: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

/// What a status change asked of a bank that is re-reading its books, or holding
/// them still for a cut-off, is answered.
const BUSY: &str = "the bank is busy (re-reading its books or at a cut-off); retry";

/// How long a bank whose snapshot failed waits before asking again.
const SNAPSHOT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Most submissions held while the books are re-read (a start or restart takes
/// milliseconds); beyond it, or if the read fails, they are answered "unavailable".
const WAITING_SUBMISSIONS_MAX: usize = 4096;

struct Books {
    ledgers: BTreeMap<Currency, Ledger>,
    window: WindowId,
    snapshot_batch_seq: u64,
}

impl Books {
    /// What the limit bounds in `currency` (zero where the bank has no books yet).
    fn exposure(&self, currency: Currency) -> Decimal {
        self.ledgers
            .get(&currency)
            .map(Ledger::exposure)
            .unwrap_or_default()
    }
}

/// A settlement balance as the actor holds it.
#[derive(Clone, Copy, Debug)]
struct Balance {
    stored: StoredBalance,
    /// Funds-out checked and being stored: already out of reach of submissions.
    funds_out_reserved: Decimal,
}

impl Balance {
    /// What bounds submissions and further funds-out.
    fn available(&self) -> Decimal {
        self.stored.balance - self.funds_out_reserved
    }
}

pub struct BankActor {
    code: BankCode,
    writer: Addr<StoreWriter>,
    metrics: Arc<Metrics>,
    feed: Feed,
    /// The books changed since positions were last published (at most
    /// every `POSITION_PUBLISH_INTERVAL`: the latest value wins).
    positions_dirty: bool,
    /// Currencies whose exposure is above the warning share of the cap (warned once).
    warned: Vec<Currency>,
    /// Status and caps: from the store at start, then from the operator's changes.
    profile: BankRecord,
    /// Shared with the directory so submissions see the receiver's status directly.
    active: Arc<AtomicBool>,
    books: Option<Books>,
    /// Set while waiting for a snapshot; submissions wait in `waiting` meanwhile.
    recovering: bool,
    waiting: VecDeque<SubmitTransfer>,
    /// The newest window a cut-off named as next: a snapshot read before that cut-off
    /// must not take the bank back to the closed window.
    window_floor: Option<WindowId>,
    /// Transfers waiting for headroom, in release order.
    queue: SenderQueue,
    /// How many of them `queued_total` counts for this bank.
    queue_counted: i64,
    queue_settings: QueueSettings,
    /// Set from a gridlock query until the cut-off that follows it: the queue and
    /// books the clock resolved on must not change, so submissions wait and nothing
    /// is released meanwhile.
    frozen: bool,
    /// Settlement balances of the currencies the bank is prefunded in. Kept apart
    /// from `books` (and across a re-read): each figure carries its version.
    balances: BTreeMap<Currency, Balance>,
    /// What the bank's returns (accepted or queued) took of each original it
    /// returned: from the snapshot, then each return as decided. One entry per
    /// original ever returned (returns are rare; a re-read starts it afresh).
    returned: HashMap<TransferId, Returned>,
}

impl BankActor {
    pub fn new(
        profile: BankRecord,
        writer: Addr<StoreWriter>,
        metrics: Arc<Metrics>,
        feed: Feed,
        active: Arc<AtomicBool>,
        queue_settings: QueueSettings,
    ) -> Self {
        active.store(profile.status == BankStatus::Active, Ordering::Release);
        BankActor {
            code: profile.code.clone(),
            writer,
            metrics,
            feed,
            positions_dirty: false,
            warned: Vec::new(),
            profile,
            active,
            books: None,
            recovering: true,
            waiting: VecDeque::new(),
            window_floor: None,
            queue: SenderQueue::default(),
            queue_counted: 0,
            queue_settings,
            frozen: false,
            balances: BTreeMap::new(),
            returned: HashMap::new(),
        }
    }

    /// What bounds the bank's exposure in `currency`: its net debit cap, and when it
    /// is prefunded in it also its settlement balance (less funds-out being stored),
    /// whichever is smaller. For gridlock resolution, which needs each account's limit.
    pub fn limit(&self, currency: Currency) -> Decimal {
        books::limit(
            self.cap(currency),
            self.balances.get(&currency).map(Balance::available),
        )
    }

    /// The net debit cap in `currency` (no cap is a cap of zero).
    fn cap(&self, currency: Currency) -> Decimal {
        self.profile
            .net_debit_caps
            .get(&currency)
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    /// Takes `stored` as the balance in `currency` if it is newer than the one held.
    fn apply_balance(&mut self, currency: Currency, stored: StoredBalance) {
        let entry = self.balances.entry(currency).or_insert(Balance {
            stored,
            funds_out_reserved: Decimal::ZERO,
        });
        if stored.version >= entry.stored.version {
            entry.stored = stored;
            self.positions_dirty = true;
        }
    }

    /// Sets a funds-out aside if the balance less it still covers the exposure and
    /// stays at or above zero (see `ReserveFundsOut`).
    fn reserve_funds_out(&mut self, currency: Currency, amount: Decimal) -> FundsOutCheck {
        let exposure = match (&self.books, self.recovering) {
            (Some(books), false) => books.exposure(currency),
            _ => return FundsOutCheck::Unavailable,
        };
        let Some(balance) = self.balances.get_mut(&currency) else {
            return FundsOutCheck::Refused {
                free: Decimal::ZERO,
            };
        };
        let free = balance.available() - exposure.max(Decimal::ZERO);
        if amount > free {
            return FundsOutCheck::Refused {
                free: free.max(Decimal::ZERO),
            };
        }
        balance.funds_out_reserved += amount;
        self.positions_dirty = true;
        FundsOutCheck::Reserved
    }

    fn request_snapshot(&mut self, ctx: &mut Context<Self>) {
        self.recovering = true;
        self.writer.do_send(RequestSnapshot {
            bank: self.code.clone(),
            reply_to: ctx.address(),
        });
    }

    fn set_profile(&mut self, record: BankRecord) {
        if record.updated_at >= self.profile.updated_at {
            self.active
                .store(record.status == BankStatus::Active, Ordering::Release);
            self.profile = record;
        }
    }

    fn submit(&mut self, msg: SubmitTransfer) {
        if let Some(record) = self.decide_submission(msg) {
            // do_send keeps this bank's records in order on the way to the writer.
            self.writer.do_send(record);
        }
    }

    /// Decides a new transfer and answers the record for the writer; `None` when it
    /// waits for the books (or was refused for that).
    fn decide_submission(&mut self, msg: SubmitTransfer) -> Option<Persist> {
        let net_debit_cap = self.cap(msg.draft.amount.currency());
        let books = match (&mut self.books, self.recovering || self.frozen) {
            (Some(books), false) => books,
            _ if self.waiting.len() < WAITING_SUBMISSIONS_MAX => {
                self.waiting.push_back(msg);
                return None;
            }
            _ => {
                let _ = msg.reply.send(PersistOutcome::Failed(format!(
                    "bank {} is re-reading its books",
                    self.code
                )));
                return None;
            }
        };
        let amount = msg.draft.amount;
        let currency = amount.currency();
        let ledger = books.ledgers.entry(currency).or_default();
        let facts = TransferFacts {
            sender_status: self.profile.status,
            receiver_status: msg.receiver_status,
            corridor_status: msg.quote.status,
            corridor_amount_max: msg.quote.amount_max,
            amount: amount.value(),
            exposure: ledger.exposure(),
            net_debit_cap,
            settlement_balance: self.balances.get(&currency).map(Balance::available),
        };
        let asks_to_queue = msg.draft.queue;
        // First in, first out: a transfer that asks to queue waits behind those queued
        // before it even when it would fit (a high one only behind high ones).
        let behind_others = asks_to_queue.is_some_and(|p| self.queue.has_ahead(currency, p));
        // A return is priced first: what it gives back depends on what earlier returns
        // of its original took, and one beyond what is left goes no further.
        let mut converted = msg.quote.converted;
        let priced = match &msg.return_terms {
            Some(terms) => {
                let before = self.returned.get(&terms.original).copied();
                terms
                    .price(amount.value(), before.unwrap_or_default())
                    .map(|back| {
                        converted = Amount::from_stored(back, terms.paid.currency());
                    })
            }
            None => Ok(()),
        };
        // Compliance screening decided at the edge: a strong match rejects before
        // anything else; a weaker one holds the transfer if it passes every other
        // check (its exposure kept), and never lets it queue (a queued transfer would
        // leave its queue unscreened).
        let (screened, held, screening) = match msg.screening {
            Verdict::Clear => (Ok(()), false, None),
            Verdict::Hold(m) => (Ok(()), true, Some(m)),
            Verdict::Reject(m) => (Err(RejectCode::ComplianceRejected), false, Some(m)),
        };
        let outcome = match priced.and(screened).and_then(|()| check_transfer(&facts)) {
            Ok(()) if held => {
                ledger.reserved += amount.value();
                Outcome::Held
            }
            Ok(()) if !behind_others => {
                ledger.reserved += amount.value();
                Outcome::Accepted(books.window)
            }
            Ok(()) => Outcome::Queued,
            // Past the cap, or past a prefunded bank's balance: it waits if it asked to.
            Err(RejectCode::LimitExceeded | RejectCode::LiquidityInsufficient)
                if asks_to_queue.is_some() && !held =>
            {
                Outcome::Queued
            }
            Err(code) => Outcome::Rejected(code),
        };
        let exposure = ledger.exposure();
        let window = books.window;
        let limit = self.limit(currency);
        self.check_limit_warning(currency, exposure, facts.net_debit_cap, limit);
        let draft = msg.draft;
        let transfer = Transfer {
            id: TransferId::new(),
            sender: draft.sender,
            receiver: draft.receiver,
            amount,
            to_currency: draft.to_currency,
            fx_rate: Some(msg.quote.rate),
            converted: Some(converted),
            outcome,
            sender_account: draft.sender_account,
            receiver_account: draft.receiver_account,
            reference: draft.reference,
            idempotency_key: draft.idempotency_key,
            created_at: msg.created_at,
            queue: draft.queue,
            queued_in: (outcome == Outcome::Queued).then_some(window),
            status_at: None,
            window_state: None,
            return_of: draft.return_of,
            returns: None,
            iso: draft.iso,
            debtor: draft.debtor,
            creditor: draft.creditor,
            screening,
            flagged: msg
                .quote
                .report_threshold
                .is_some_and(|threshold| amount.value() >= threshold),
        };
        if let (Some(original), Outcome::Accepted(_) | Outcome::Queued) =
            (transfer.return_of, outcome)
        {
            let returned = self.returned.entry(original).or_default();
            returned.add(amount.value(), converted.value());
        }
        if outcome == Outcome::Queued {
            // In the queue from its decision, so that the order is the order of
            // decision; releasable once the writer says its row is stored.
            self.queue.push(transfer.clone(), false);
            self.queue_changed();
        }
        Some(Persist::new(transfer, msg.reply))
    }

    /// Releases from the queue, first in, first out, every transfer that now fits
    /// under the limit, each into the open window. Nothing moves while the books are
    /// re-read or a gridlock resolution holds the queue.
    fn release_queued(&mut self) {
        if self.queue.is_empty() || self.recovering || self.frozen {
            return;
        }
        let currencies: Vec<Currency> = self.queue.currencies().collect();
        let mut released = Vec::new();
        for currency in currencies {
            let limit = self.limit(currency);
            let Some(books) = self.books.as_ref() else {
                return;
            };
            let exposure = books.exposure(currency);
            if exposure >= limit {
                continue;
            }
            released.extend(self.queue.release_fitting(currency, limit - exposure));
        }
        if !released.is_empty() {
            self.release(released, None, "fifo");
        }
    }

    /// Hands queued transfers taken out of the queue to the writer as released into
    /// `window` (or the open window), reserving their amounts like new transfers.
    fn release(&mut self, transfers: Vec<Transfer>, window: Option<WindowId>, how: &str) {
        let Some(books) = self.books.as_mut() else {
            return;
        };
        let window = window.unwrap_or(books.window);
        let now = now_micros();
        for transfer in transfers {
            let amount = transfer.amount;
            books.ledgers.entry(amount.currency()).or_default().reserved += amount.value();
            self.metrics.queue_released(
                how,
                amount.currency().as_str(),
                amount.value(),
                (now - transfer.created_at).to_std().unwrap_or_default(),
            );
            change_status(&self.writer, transfer, Outcome::Accepted(window), now, None);
        }
        self.positions_dirty = true;
        self.queue_changed();
    }

    /// Expires the queued transfers that have had their windows, now that `open` is.
    fn expire_queued(&mut self, open: WindowId) {
        let expired = self.queue.expire(open, self.queue_settings.ttl_windows);
        if expired.is_empty() {
            return;
        }
        let now = now_micros();
        for transfer in expired {
            self.metrics
                .queue_expired(transfer.amount.currency().as_str());
            self.give_back_return(&transfer);
            change_status(&self.writer, transfer, Outcome::Expired, now, None);
        }
        self.queue_changed();
    }

    /// The window the bank stamps now, when its books are steady: not being re-read nor
    /// held still for a cut-off (a status change made now goes in this window).
    fn stamping_window(&self) -> Option<WindowId> {
        match (&self.books, self.recovering || self.frozen) {
            (Some(books), false) => Some(books.window),
            _ => None,
        }
    }

    /// A return that will not be netted after all (expired, cancelled): what it took
    /// of its original is left to return again. Should the change not be stored, the
    /// writer has the bank re-read its books, this figure with them.
    fn give_back_return(&mut self, transfer: &Transfer) {
        let Some(original) = transfer.return_of else {
            return;
        };
        if let (Some(returned), Some(converted)) =
            (self.returned.get_mut(&original), transfer.converted)
        {
            returned.add(-transfer.amount.value(), -converted.value());
        }
    }

    /// Keeps the engine-wide count of queued transfers and the queue gauges in step
    /// with this bank's queue.
    fn queue_changed(&mut self) {
        let len = self.queue.len() as i64;
        self.queue_settings
            .queued_total
            .fetch_add(len - self.queue_counted, Ordering::AcqRel);
        self.queue_counted = len;
        let mut currencies: BTreeSet<Currency> = self.queue.currencies().collect();
        currencies.extend(self.profile.net_debit_caps.keys().copied());
        for currency in currencies {
            let (depth, value) = self.queue.depth(currency);
            self.metrics
                .queue_depth(self.code.as_str(), currency.as_str(), depth, value);
        }
    }

    /// Publishes a limit warning when exposure first passes the warning share of the
    /// limit (the cap, or a prefunded bank's balance where that is lower); warns again
    /// only after it has dropped below.
    fn check_limit_warning(
        &mut self,
        currency: Currency,
        exposure: Decimal,
        cap: Decimal,
        limit: Decimal,
    ) {
        let above = limit > Decimal::ZERO
            && exposure * LIMIT_WARNING_DENOMINATOR > limit * LIMIT_WARNING_NUMERATOR;
        let warned = self.warned.contains(&currency);
        if above && !warned {
            self.warned.push(currency);
            self.feed.publish(Event::new(
                Channel::Notifications,
                "limit_warning",
                vec![self.code.clone()],
                views::limit_warning(&self.code, currency, exposure, cap, limit).to_string(),
            ));
        } else if !above && warned {
            self.warned.retain(|c| *c != currency);
        }
    }

    fn view(&self) -> BankPositions {
        BankPositions {
            code: self.code.clone(),
            status: self.profile.status,
            window: self.books.as_ref().map(|b| b.window),
            ledgers: self
                .books
                .as_ref()
                .map(|b| b.ledgers.clone())
                .unwrap_or_default(),
            net_debit_caps: self.profile.net_debit_caps.clone(),
            queued: self
                .queue
                .currencies()
                .map(|c| (c, self.queue.depth(c)))
                .collect(),
            settlement_balances: self
                .balances
                .iter()
                .map(|(c, b)| (*c, b.available()))
                .collect(),
            current: !self.recovering,
        }
    }
}

impl Actor for BankActor {
    type Context = Context<Self>;

    /// Runs at the first start and again after every restart.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::MAILBOX_CAPACITY);
        self.request_snapshot(ctx);
        ctx.run_interval(POSITION_PUBLISH_INTERVAL, |act, _| {
            if act.positions_dirty && !act.recovering {
                act.positions_dirty = false;
                act.feed.publish(Event::new(
                    Channel::Positions,
                    "position",
                    vec![act.code.clone()],
                    views::text(views::positions(&act.view())),
                ));
            }
        });
    }
}

impl Supervised for BankActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.metrics
            .actor_restarts
            .with_label_values(&["bank"])
            .inc();
        self.feed
            .actor_restarted("bank", self.code.as_str(), vec![self.code.clone()]);
        tracing::warn!(bank = %self.code, "bank actor restarting; its books will be re-read");
        // Keep the last books for reads; `started` asks for a fresh snapshot (the
        // queue is read again with it). A gridlock query answered before the restart
        // no longer holds: its release is skipped.
        self.recovering = true;
        self.frozen = false;
    }
}

impl Guarded for BankActor {
    fn kind(&self) -> &'static str {
        "bank"
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Handler<SubmitTransfer> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: SubmitTransfer, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| act.submit(msg));
    }
}

impl Handler<SubmitTransfers> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: SubmitTransfers, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            let records: Vec<Persist> = msg
                .0
                .into_iter()
                .filter_map(|m| act.decide_submission(m))
                .collect();
            if !records.is_empty() {
                // One message, in this bank's order, like the records sent one by one.
                act.writer.do_send(PersistMany(records));
            }
        });
    }
}

impl Handler<BookUpdate> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: BookUpdate, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            // While recovering, the coming snapshot already includes this batch.
            if act.recovering {
                return;
            }
            let Some(books) = act.books.as_mut() else {
                return;
            };
            debug_assert!(msg.batch_seq >= books.snapshot_batch_seq);
            for (currency, delta) in msg.deltas {
                let ledger = books.ledgers.entry(currency).or_default();
                ledger.reserved -= delta.reserved_released;
                ledger.debits += delta.debits_added;
                ledger.credits += delta.credits_added;
                ledger.held += delta.held_added;
            }
            let queue_moved = !msg.queue.is_empty();
            for (id, stored) in msg.queue {
                if stored {
                    act.queue.confirm(id);
                } else {
                    act.queue.remove(id);
                }
            }
            act.positions_dirty = true;
            // Only when this batch touched the queue: the hot path pays nothing else.
            if queue_moved {
                act.queue_changed();
            }
            // A credit, or a queued transfer now stored, may let the queue move.
            act.release_queued();
        });
    }
}

impl Handler<Snapshot> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: Snapshot, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            let mut ledgers: BTreeMap<Currency, Ledger> = BTreeMap::new();
            for (currency, total) in msg.books.debits {
                ledgers.entry(currency).or_default().debits = total;
            }
            for (currency, total) in msg.books.credits {
                ledgers.entry(currency).or_default().credits = total;
            }
            for (currency, total) in msg.books.held {
                ledgers.entry(currency).or_default().held = total;
            }
            act.set_profile(msg.record);
            act.returned = msg.books.returned;
            for (currency, stored) in msg.books.balances {
                act.apply_balance(currency, stored);
            }
            act.books = Some(Books {
                ledgers,
                window: msg.window.max(act.window_floor.unwrap_or(msg.window)),
                snapshot_batch_seq: msg.batch_seq,
            });
            act.recovering = false;
            act.frozen = false;
            // The queue as stored: every record sent before the snapshot was asked
            // for is committed, so no queued transfer is in flight.
            act.queue = SenderQueue::from_stored(msg.queued);
            act.queue_changed();
            tracing::debug!(bank = %act.code, batch_seq = msg.batch_seq, "books rebuilt from store");
            while let Some(waiting) = act.waiting.pop_front() {
                act.submit(waiting);
            }
            act.release_queued();
        });
    }
}

impl Handler<SnapshotFailed> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: SnapshotFailed, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| {
            tracing::warn!(bank = %act.code, error = %msg.error, "snapshot failed; retrying");
            for waiting in act.waiting.drain(..) {
                let _ = waiting
                    .reply
                    .send(PersistOutcome::Failed(msg.error.clone()));
            }
            ctx.run_later(SNAPSHOT_RETRY_INTERVAL, |act, ctx| {
                act.request_snapshot(ctx)
            });
        });
    }
}

impl Handler<Resync> for BankActor {
    type Result = ();

    /// Asks again even while a snapshot is awaited: a writer that restarted dropped
    /// the requests it held, so the one awaited may never come. A second snapshot is
    /// harmless: each is a barrier read, and the later one is the fresher.
    fn handle(&mut self, _: Resync, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, ctx| act.request_snapshot(ctx));
    }
}

impl Handler<ProfileChanged> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: ProfileChanged, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            act.set_profile(msg.0);
            // A cap raised may let the queue move.
            act.release_queued();
        });
    }
}

impl Handler<CutOffBank> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: CutOffBank, ctx: &mut Context<Self>) {
        // The transfers the gridlock resolution released go first, stamped with the
        // closing window, so that the marker travels behind them. Only a bank still
        // frozen since its answer to the query releases: its queue and books are the
        // ones the resolution was made on.
        guard(self, ctx, |act, _| {
            if !act.frozen {
                if !msg.release.is_empty() {
                    tracing::warn!(bank = %act.code, window = %msg.window,
                                   "gridlock release skipped: the books changed since the query");
                }
                return;
            }
            let released: Vec<Transfer> = msg
                .release
                .iter()
                .filter_map(|id| act.queue.remove(*id))
                .collect();
            if !released.is_empty() {
                act.release(released, Some(msg.window), "gridlock");
            }
        });
        // The marker goes unguarded: a cut-off must never wait on this bank.
        self.writer.do_send(CutOffMarker {
            bank: self.code.clone(),
            window: msg.window,
        });
        guard(self, ctx, |act, _| {
            act.frozen = false;
            act.window_floor = act.window_floor.max(Some(msg.next));
            if let Some(books) = act.books.as_mut() {
                books.window = books.window.max(msg.next);
            }
            if !act.recovering {
                act.expire_queued(msg.next);
                while let Some(waiting) = act.waiting.pop_front() {
                    act.submit(waiting);
                }
                act.release_queued();
            }
        });
    }
}

impl Handler<GridlockQuery> for BankActor {
    type Result = MessageResult<GridlockQuery>;

    /// Answers the bank's standing and stored queue for the gridlock resolution at a
    /// cut-off, and holds both still (`frozen`) until the `CutOffBank` that follows.
    /// A bank re-reading its books takes no part.
    fn handle(&mut self, _: GridlockQuery, ctx: &mut Context<Self>) -> Self::Result {
        let answer = guard(self, ctx, |act, _| {
            let books = act.books.as_ref()?;
            if act.recovering {
                return None;
            }
            let mut currencies: BTreeSet<Currency> = books.ledgers.keys().copied().collect();
            currencies.extend(act.profile.net_debit_caps.keys().copied());
            let accounts = currencies
                .into_iter()
                .map(|currency| {
                    let standing = Standing {
                        exposure: books.exposure(currency),
                        limit: act.limit(currency),
                    };
                    (currency, standing)
                })
                .collect();
            let queued = act
                .queue
                .iter()
                .filter(|e| e.stored)
                .map(|e| e.transfer.clone())
                .collect();
            act.frozen = true;
            Some(QueueStanding {
                bank: act.code.clone(),
                accounts,
                queued,
            })
        });
        MessageResult(answer.flatten())
    }
}

impl Handler<CancelTransfer> for BankActor {
    type Result = ();

    /// Cancels a queued transfer of this bank (taken out of its queue) or an
    /// accepted one whose window is the one the bank stamps now (so its cut-off
    /// marker, which follows on the same path, has not gone yet).
    fn handle(&mut self, msg: CancelTransfer, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            let reply = msg.reply;
            let Some(window) = act.stamping_window() else {
                let _ = reply.send(PersistOutcome::Failed(BUSY.into()));
                return;
            };
            let transfer = msg.transfer;
            let cancellable = match transfer.outcome {
                // Not in the queue: released, expired or still being stored.
                Outcome::Queued => act.queue.remove(transfer.id).is_some(),
                Outcome::Accepted(stamped) => stamped == window,
                _ => false,
            };
            if !cancellable {
                // It moved on: the command says where it is now.
                let _ = reply.send(PersistOutcome::Unchanged);
                return;
            }
            act.queue_changed();
            act.give_back_return(&transfer);
            change_status(
                &act.writer,
                transfer,
                Outcome::Cancelled,
                now_micros(),
                Some(reply),
            );
        });
    }
}

impl Handler<DecideHeld> for BankActor {
    type Result = ();

    /// Releases a held transfer into the window the bank stamps now (its exposure,
    /// held all along, becomes a debit of that window when the change commits), or
    /// rejects it; on the bank's ordered path, like any of its records.
    fn handle(&mut self, msg: DecideHeld, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            let reply = msg.reply;
            let Some(window) = act.stamping_window() else {
                let _ = reply.send(PersistOutcome::Failed(BUSY.into()));
                return;
            };
            if msg.transfer.outcome != Outcome::Held {
                let _ = reply.send(PersistOutcome::Unchanged);
                return;
            }
            let to = if msg.release {
                Outcome::Accepted(window)
            } else {
                Outcome::Rejected(RejectCode::ComplianceRejected)
            };
            act.positions_dirty = true;
            change_status(&act.writer, msg.transfer, to, now_micros(), Some(reply));
        });
    }
}

impl Handler<WindowReleased> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: WindowReleased, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            // A balance the window moved carries its new figure and version: taken
            // even while recovering (the newer figure wins either way).
            for released in &msg.books {
                if let Some(stored) = released.balance {
                    act.apply_balance(released.currency, stored);
                    act.feed.publish(Event::new(
                        Channel::Notifications,
                        "balance_changed",
                        vec![act.code.clone()],
                        views::balance_changed(
                            &act.code,
                            released.currency,
                            stored.balance,
                            "settlement",
                            Some(msg.window),
                        )
                        .to_string(),
                    ));
                }
            }
            // While recovering, the coming snapshot already leaves the window out.
            if act.recovering {
                return;
            }
            let Some(books) = act.books.as_mut() else {
                return;
            };
            for released in msg.books {
                let ledger = books.ledgers.entry(released.currency).or_default();
                ledger.debits -= released.debits;
                ledger.credits -= released.credits;
            }
            act.positions_dirty = true;
            tracing::debug!(bank = %act.code, window = %msg.window, "window released");
            // The settled window's debits left the exposure: the queue may move.
            act.release_queued();
        });
    }
}

impl Handler<ReserveFundsOut> for BankActor {
    type Result = MessageResult<ReserveFundsOut>;

    fn handle(&mut self, msg: ReserveFundsOut, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.reserve_funds_out(msg.currency, msg.amount))
    }
}

impl Handler<FundsMoved> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: FundsMoved, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            if let Some(balance) = act.balances.get_mut(&msg.currency) {
                balance.funds_out_reserved -= msg.funds_out_released;
            }
            if let Some(stored) = msg.balance {
                act.apply_balance(msg.currency, stored);
            }
            act.positions_dirty = true;
            // A funds-in raises a prefunded bank's limit: the queue may move.
            act.release_queued();
        });
    }
}

impl Handler<ReadPositions> for BankActor {
    type Result = MessageResult<ReadPositions>;

    fn handle(&mut self, _: ReadPositions, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.view())
    }
}

impl Handler<InjectPanic> for BankActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            panic!("injected panic in bank {}", act.code)
        });
    }
}

/// Hands the writer a change of a stored transfer's status, from the outcome it has
/// to `to`, on the bank's ordered path (behind its earlier records, ahead of its next
/// cut-off marker).
fn change_status(
    writer: &Addr<StoreWriter>,
    mut transfer: Transfer,
    to: Outcome,
    at: DateTime<Utc>,
    reply: Option<tokio::sync::oneshot::Sender<PersistOutcome>>,
) {
    let was = transfer.outcome;
    transfer.outcome = to;
    transfer.status_at = Some(at);
    transfer.window_state = None;
    writer.do_send(Persist {
        transfer: Box::new(transfer),
        was: Some(was),
        reply,
    });
}
