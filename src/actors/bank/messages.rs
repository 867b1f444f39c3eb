//! The messages a bank actor answers: submissions from the edge, book updates and
//! snapshots from the writer, cut-offs from the window clock, and the operator's
//! changes.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use crate::actors::corridor::Quote;
use crate::actors::writer::PersistOutcome;
use crate::domain::rules::TransferDraft;
use crate::domain::{
    BankBooks, BankPositions, BankRecord, BankStatus, Currency, ReleasedBooks, StoredBalance,
    WindowId,
};

/// A new transfer from this bank, with the corridor's quote and the receiver's status.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubmitTransfer {
    pub draft: TransferDraft,
    pub quote: Quote,
    pub receiver_status: BankStatus,
    pub created_at: DateTime<Utc>,
    pub reply: oneshot::Sender<PersistOutcome>,
}

/// What one committed batch changed in one currency of a bank's books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BookDelta {
    /// Reservations that are settled one way or the other (committed, replayed or failed).
    pub reserved_released: Decimal,
    pub debits_added: Decimal,
    pub credits_added: Decimal,
}

/// From the writer, after a batch: the changes to this bank's books, in batch order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BookUpdate {
    pub batch_seq: u64,
    pub deltas: Vec<(Currency, BookDelta)>,
}

/// From the writer: the bank's books as stored after batch `batch_seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Snapshot {
    pub batch_seq: u64,
    pub record: BankRecord,
    pub books: BankBooks,
    pub window: WindowId,
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

/// From the window clock: stamp new transfers with `next`, then send the writer a
/// marker for `window` behind every transfer already stamped with it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CutOffBank {
    pub window: WindowId,
    pub next: WindowId,
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
