//! The messages a bank actor answers: submissions from the edge, book updates and
//! snapshots from the writer, cut-offs from the window clock, and the operator's
//! changes.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use crate::actors::corridor::Quote;
use crate::actors::writer::PersistOutcome;
use crate::domain::gridlock::Standing;
use crate::domain::returns::ReturnTerms;
use crate::domain::rules::TransferDraft;
use crate::domain::screening::Verdict;
use crate::domain::{
    BankBooks, BankCode, BankPositions, BankRecord, BankStatus, Currency, ReleasedBooks,
    StoredBalance, Transfer, TransferId, WindowId,
};

/// A new transfer from this bank, with the corridor's quote and the receiver's status.
/// A return carries its original's terms instead of a corridor's quote: the bank
/// prices it against what its earlier returns took of the original.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubmitTransfer {
    pub draft: TransferDraft,
    pub quote: Quote,
    pub return_terms: Option<ReturnTerms>,
    /// What compliance screening said of the transfer's parties.
    pub screening: Verdict,
    pub receiver_status: BankStatus,
    pub created_at: DateTime<Utc>,
    pub reply: oneshot::Sender<PersistOutcome>,
}

/// New transfers from this bank, decided in the order given (a batch's transfers of
/// one sender): one message to the actor, and one to the writer, for all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubmitTransfers(pub Vec<SubmitTransfer>);

/// What one committed batch changed in one currency of a bank's books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BookDelta {
    /// Reservations that are settled one way or the other (committed, replayed or failed).
    pub reserved_released: Decimal,
    pub debits_added: Decimal,
    pub credits_added: Decimal,
    /// Held exposure stored (positive) or released or rejected (negative).
    pub held_added: Decimal,
}

/// From the writer, after a batch: the changes to this bank's books, in batch order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BookUpdate {
    pub batch_seq: u64,
    pub deltas: Vec<(Currency, BookDelta)>,
    /// This bank's queued transfers of the batch: stored (`true`, releasable from
    /// now on) or not (`false`: a replay of an earlier key, or refused) and dropped.
    pub queue: Vec<(TransferId, bool)>,
}

/// From the writer: the bank's books as stored after batch `batch_seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Snapshot {
    pub batch_seq: u64,
    pub record: BankRecord,
    pub books: BankBooks,
    pub window: WindowId,
    /// The bank's queued transfers as stored.
    pub queued: Vec<Transfer>,
}

/// From the writer: the snapshot could not be read (the database is unavailable).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SnapshotFailed {
    pub error: String,
}

/// From the writer: the books may be stale (a batch failed); re-read them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync;

/// From the window clock: release `release` (queued transfers the gridlock
/// resolution chose) into `window`, send the writer a marker for `window` behind every
/// transfer stamped with it, then stamp new transfers with `next`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CutOffBank {
    pub window: WindowId,
    pub next: WindowId,
    pub release: Vec<TransferId>,
}

/// From the window clock, before a cut-off: the bank's standing and queue, for the
/// gridlock resolution. The bank holds both still until the `CutOffBank` that
/// follows. `None` from a bank that is re-reading its books.
#[derive(Message)]
#[rtype(result = "Option<QueueStanding>")]
pub struct GridlockQuery;

/// A bank's part of a gridlock resolution.
#[derive(Debug)]
pub struct QueueStanding {
    pub bank: BankCode,
    /// Exposure and limit per currency.
    pub accounts: Vec<(Currency, Standing)>,
    /// Its stored queued transfers, each currency's in release order.
    pub queued: Vec<Transfer>,
}

/// From a cancel command: cancel this transfer (as the command read it from the
/// store: queued, or accepted). Answered `Stored` with the cancelled transfer once
/// committed, `Unchanged` when it can no longer be cancelled (it moved on: released,
/// expired, or its window closed), `Failed` when the bank cannot say now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelTransfer {
    pub transfer: Transfer,
    pub reply: oneshot::Sender<PersistOutcome>,
}

/// From the operator's command: release a held transfer into the open window, or
/// reject it (`compliance_rejected`). Answered like `CancelTransfer`: `Stored` with the
/// transfer as changed, `Unchanged` when it is no longer held, `Failed` when the bank
/// cannot say now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DecideHeld {
    pub transfer: Transfer,
    pub release: bool,
    pub reply: oneshot::Sender<PersistOutcome>,
}

/// From the writer: `window` is settled; its debits and credits leave the books, and
/// each settlement balance it moved carries its new figure.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WindowReleased {
    pub window: WindowId,
    pub books: Vec<ReleasedBooks>,
}

/// From a funds-out command, before it stores anything: set `amount` aside from the
/// settlement balance (so submissions see the lower balance from now on) if the
/// balance less `amount` still covers the exposure and stays at or above zero.
#[derive(Message)]
#[rtype(result = "FundsOutCheck")]
pub struct ReserveFundsOut {
    pub currency: Currency,
    pub amount: Decimal,
}

/// The bank actor's answer to `ReserveFundsOut`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FundsOutCheck {
    Reserved,
    /// Refused: what a funds-out may take now (zero when not prefunded).
    Refused {
        free: Decimal,
    },
    /// The books are being re-read; nothing was set aside.
    Unavailable,
}

/// From a funds command, after the store answered: the balance as stored (when the
/// movement committed) and the funds-out set aside to release (zero for a funds-in).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FundsMoved {
    pub currency: Currency,
    pub balance: Option<StoredBalance>,
    pub funds_out_released: Decimal,
}

/// The operator changed the bank (status, caps); already stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProfileChanged(pub BankRecord);

/// Reads the bank's cached positions and exposure.
#[derive(Message)]
#[rtype(result = "BankPositions")]
pub struct ReadPositions;
