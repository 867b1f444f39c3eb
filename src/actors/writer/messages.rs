//! The messages the store writer answers: submissions to store, barriers (snapshots,
//! drains, window releases) and the window cut-off protocol.

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::actors::bank::BankActor;
use crate::actors::window::Sealed;
use crate::domain::{BankCode, Outcome, Transfer, TransferId, WindowId};
use crate::store::StoreError;

/// What became of a transfer handed to the writer.
#[derive(Debug)]
pub enum PersistOutcome {
    /// Committed as decided.
    Stored(Box<Transfer>),
    /// The sender had used this idempotency key before; this is the stored transfer,
    /// and whether the new request asked for the same thing (`asks_the_same_as`): a
    /// replay, or a conflicting reuse of the key.
    Existing {
        stored: Box<Transfer>,
        same_request: bool,
    },
    /// Not known to be committed: the database failed. The client may retry.
    Failed(String),
    /// Certainly not committed: the database refused this transfer's own data (the
    /// SQLSTATE, for the log). The rest of its batch was written without it; the
    /// same request would be refused again.
    Unstorable {
        transaction_id: TransferId,
        sqlstate: String,
    },
    /// A change of status found its row no longer in the status it expected (the
    /// transfer had moved on meanwhile): nothing was written.
    Unchanged,
}

/// A decided transfer to store, or a change of a stored one's status; `reply` (if
/// any) is answered after its batch commits.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist {
    /// The transfer as it is to be stored: with its new outcome, for a change. Boxed
    /// where it is decided, it travels through the writer's queue and batches and
    /// back in its answer without being copied.
    pub transfer: Box<Transfer>,
    /// `None` for a new transfer; for a change, the outcome the stored row must still
    /// have (a queued transfer released, expired or cancelled: `Queued`; an accepted
    /// one cancelled: `Accepted` with its window).
    pub was: Option<Outcome>,
    pub reply: Option<oneshot::Sender<PersistOutcome>>,
}

/// Many records from one bank actor at once, in its order (a batch's transfers of
/// one sender): one message, and one start of the writer's next batch, for all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PersistMany(pub Vec<Persist>);

impl Persist {
    /// A new transfer, answered on `reply`.
    pub fn new(transfer: Transfer, reply: oneshot::Sender<PersistOutcome>) -> Self {
        Persist {
            transfer: Box::new(transfer),
            was: None,
            reply: Some(reply),
        }
    }

    /// The window the record belongs to, if any: the new one, or for a cancellation
    /// the one it leaves. A record for a sealed window is too late.
    pub fn window(&self) -> Option<WindowId> {
        self.transfer
            .window_id()
            .or(self.was.and_then(Outcome::window))
    }
}

/// A bank actor asks for its books. Served as a barrier: every record received before
/// this request is committed (or failed) first, no batch commits while the books are
/// read, and the answer goes back by `do_send` behind every earlier `BookUpdate`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestSnapshot {
    pub bank: BankCode,
    pub reply_to: Addr<BankActor>,
}

/// Answers once every record received before it is committed or failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub reply: oneshot::Sender<()>,
}

/// From the window clock, before it tells the banks to cut off `window`: the banks
/// whose markers seal it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginCutOff {
    pub window: WindowId,
    pub banks: Vec<BankCode>,
    pub sealed_to: Recipient<Sealed>,
}

/// From a bank actor, behind every transfer it stamped with `window`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CutOffMarker {
    pub bank: BankCode,
    pub window: WindowId,
}

/// Settle a window whose instructions are all confirmed and release its exposure from
/// the banks' books. Runs as a barrier, in order with the banks' snapshots.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseWindow {
    pub window: WindowId,
    pub reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// At start, before any bank actor: `window` is open and holds no transfer yet, so
/// this writer will see all of its commits and can vouch for its sums.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TrustWindowsFrom(pub WindowId);

/// How many transfers a window has so far, from the writer's sums; `None` when the
/// writer cannot vouch for the window (it started after the window opened).
#[derive(Message)]
#[rtype(result = "Option<u64>")]
pub struct WindowProgress {
    pub window: WindowId,
}
