//! One actor per bank: the single writer of that bank's exposure. It checks each
//! transfer the bank sends against its status and net debit caps, reserves the debit,
//! stamps the open window and hands the transfer to the store writer. Its memory is
//! a cache of the store: at start and after every restart it asks the writer for a
//! snapshot of its books (a barrier, see `writer::RequestSnapshot`).
//!
//! It also holds the bank's settlement balances (the currencies it is prefunded in):
//! a prefunded bank's exposure stays within both its cap and its balance. A balance
//! changes in the store only (funds-in, funds-out, a settled window), and each change
//! raises its version; the actor keeps the newest figure it has been told of, from
//! the snapshot, a funds command or a window release, in whatever order they arrive.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod messages;

use actix::prelude::*;
use rust_decimal::Decimal;

use super::feed::{Channel, Event, Feed};
use super::writer::{CutOffMarker, Persist, PersistOutcome, RequestSnapshot, StoreWriter};
use super::{guard, Guarded, InjectPanic};
use crate::domain::rules::{check_transfer, TransferFacts};
use crate::domain::{
    books, BankCode, BankPositions, BankRecord, BankStatus, Currency, Ledger, Outcome,
    StoredBalance, Transfer, TransferId, WindowId,
};
use crate::metrics::Metrics;
use crate::views;
pub use messages::{
    BookDelta, BookUpdate, CutOffBank, FundsMoved, FundsOutCheck, ProfileChanged, ReadPositions,
    ReserveFundsOut, Resync, Snapshot, SnapshotFailed, SubmitTransfer, WindowReleased,
};

/// Positions are published at most this often per bank (the latest value wins).
const POSITION_PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// A limit warning goes out when exposure passes 80 % of the cap.
const LIMIT_WARNING_NUMERATOR: Decimal = Decimal::from_parts(8, 0, 0, false, 0);
const LIMIT_WARNING_DENOMINATOR: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

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
    /// Settlement balances of the currencies the bank is prefunded in. Kept apart
    /// from `books` (and across a re-read): each figure carries its version.
    balances: BTreeMap<Currency, Balance>,
}

impl BankActor {
    pub fn new(
        profile: BankRecord,
        writer: Addr<StoreWriter>,
        metrics: Arc<Metrics>,
        feed: Feed,
        active: Arc<AtomicBool>,
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
            balances: BTreeMap::new(),
        }
    }

    /// What bounds the bank's exposure in `currency`: its net debit cap, and when it
    /// is prefunded in it also its settlement balance (less funds-out being stored),
    /// whichever is smaller. For gridlock resolution, which needs each account's limit.
    pub fn limit(&self, currency: Currency) -> Decimal {
        let cap = self
            .profile
            .net_debit_caps
            .get(&currency)
            .copied()
            .unwrap_or(Decimal::ZERO);
        books::limit(cap, self.balances.get(&currency).map(Balance::available))
    }

    /// Takes `stored` as the balance in `currency` if it is newer than the one held;
    /// answers whether it was.
    fn apply_balance(&mut self, currency: Currency, stored: StoredBalance) -> bool {
        let entry = self.balances.entry(currency).or_insert(Balance {
            stored,
            funds_out_reserved: Decimal::ZERO,
        });
        if stored.version < entry.stored.version {
            return false;
        }
        entry.stored = stored;
        self.positions_dirty = true;
        true
    }

    /// Sets a funds-out aside if the balance less it still covers the exposure and
    /// stays at or above zero (see `ReserveFundsOut`).
    fn reserve_funds_out(&mut self, currency: Currency, amount: Decimal) -> FundsOutCheck {
        let exposure = match (&self.books, self.recovering) {
            (Some(books), false) => books
                .ledgers
                .get(&currency)
                .map(Ledger::exposure)
                .unwrap_or_default(),
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
        let books = match (&mut self.books, self.recovering) {
            (Some(books), false) => books,
            _ if self.waiting.len() < WAITING_SUBMISSIONS_MAX => {
                self.waiting.push_back(msg);
                return;
            }
            _ => {
                let _ = msg.reply.send(PersistOutcome::Failed(format!(
                    "bank {} is re-reading its books",
                    self.code
                )));
                return;
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
            net_debit_cap: self
                .profile
                .net_debit_caps
                .get(&currency)
                .copied()
                .unwrap_or(Decimal::ZERO),
            settlement_balance: self.balances.get(&currency).map(Balance::available),
        };
        let outcome = match check_transfer(&facts) {
            Ok(()) => {
                ledger.reserved += amount.value();
                Outcome::Accepted(books.window)
            }
            Err(code) => Outcome::Rejected(code),
        };
        let exposure = ledger.exposure();
        self.check_limit_warning(currency, exposure, facts.net_debit_cap);
        let draft = msg.draft;
        let transfer = Transfer {
            id: TransferId::new(),
            sender: draft.sender,
            receiver: draft.receiver,
            amount,
            to_currency: draft.to_currency,
            fx_rate: Some(msg.quote.rate),
            converted: Some(msg.quote.converted),
            outcome,
            sender_account: draft.sender_account,
            receiver_account: draft.receiver_account,
            reference: draft.reference,
            idempotency_key: draft.idempotency_key,
            created_at: msg.created_at,
            window_state: None,
        };
        // do_send keeps this bank's records in order on the way to the writer.
        self.writer.do_send(Persist {
            transfer,
            reply: msg.reply,
        });
    }

    /// Publishes a limit warning when exposure first passes the warning share of the
    /// cap; warns again only after it has dropped below.
    fn check_limit_warning(&mut self, currency: Currency, exposure: Decimal, cap: Decimal) {
        let above = cap > Decimal::ZERO
            && exposure * LIMIT_WARNING_DENOMINATOR > cap * LIMIT_WARNING_NUMERATOR;
        let warned = self.warned.contains(&currency);
        if above && !warned {
            self.warned.push(currency);
            self.feed.publish(Event::new(
                Channel::Notifications,
                "limit_warning",
                vec![self.code.clone()],
                views::limit_warning(&self.code, currency, exposure, cap).to_string(),
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
        // Keep the last books for reads; `started` asks for a fresh snapshot.
        self.recovering = true;
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
            }
            act.positions_dirty = true;
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
            act.set_profile(msg.record);
            for (currency, stored) in msg.books.balances {
                act.apply_balance(currency, stored);
            }
            act.books = Some(Books {
                ledgers,
                window: msg.window.max(act.window_floor.unwrap_or(msg.window)),
                snapshot_batch_seq: msg.batch_seq,
            });
            act.recovering = false;
            tracing::debug!(bank = %act.code, batch_seq = msg.batch_seq, "books rebuilt from store");
            while let Some(waiting) = act.waiting.pop_front() {
                act.submit(waiting);
            }
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
        guard(self, ctx, |act, _| act.set_profile(msg.0));
    }
}

impl Handler<CutOffBank> for BankActor {
    type Result = ();

    fn handle(&mut self, msg: CutOffBank, ctx: &mut Context<Self>) {
        // The marker goes first and unguarded: a cut-off must never wait on this bank.
        self.writer.do_send(CutOffMarker {
            bank: self.code.clone(),
            window: msg.window,
        });
        guard(self, ctx, |act, _| {
            act.window_floor = act.window_floor.max(Some(msg.next));
            if let Some(books) = act.books.as_mut() {
                books.window = books.window.max(msg.next);
            }
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
