//! A transfer as the engine decided it: accepted into a window or rejected with a code.

use chrono::{DateTime, Utc};

use super::errors::RejectCode;
use super::fx::FxRate;
use super::ids::{BankCode, TransferId, WindowId};
use super::money::{Amount, Currency};
use super::screening::{PartyName, ScreeningMatch};
use super::window::WindowState;

/// Where a transfer stands in the store: the decision its batch committed, or the
/// status a later change gave it (a queued transfer released, expired or cancelled;
/// an accepted one cancelled while its window was open).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Accepted(WindowId),
    Rejected(RejectCode),
    /// Waiting for its sender's headroom, outside any window.
    Queued,
    /// Queued and not released within the queue's time to live.
    Expired,
    /// Cancelled by its sender: queued, or accepted while its window was open.
    Cancelled,
    /// Held by compliance screening (a weaker match) until the operator releases it
    /// (accepted into the open window) or rejects it (`compliance_rejected`).
    Held,
}

impl Outcome {
    /// The status stored for this outcome (netted and settled are its window's).
    pub fn status(self) -> TransferStatus {
        match self {
            Outcome::Accepted(_) => TransferStatus::Accepted,
            Outcome::Rejected(_) => TransferStatus::Rejected,
            Outcome::Queued => TransferStatus::Queued,
            Outcome::Expired => TransferStatus::Expired,
            Outcome::Cancelled => TransferStatus::Cancelled,
            Outcome::Held => TransferStatus::Held,
        }
    }

    /// The window of an accepted transfer.
    pub fn window(self) -> Option<WindowId> {
        match self {
            Outcome::Accepted(w) => Some(w),
            _ => None,
        }
    }
}

text_enum! {
    /// How urgently a queued transfer wants out of its sender's queue: `high` ones
    /// are released before any `normal` one of the same currency.
    QueuePriority {
        High => "high",
        Normal => "normal",
    }
}

/// One transfer with everything stored about it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transfer {
    pub id: TransferId,
    pub sender: BankCode,
    pub receiver: BankCode,
    pub amount: Amount,
    pub to_currency: Currency,
    /// The rate and converted amount quoted by the corridor; absent only when the
    /// transfer was rejected before a quote existed.
    pub fx_rate: Option<FxRate>,
    pub converted: Option<Amount>,
    pub outcome: Outcome,
    pub sender_account: Option<String>,
    pub receiver_account: Option<String>,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set when the sender asked to queue rather than be rejected at its limit
    /// (`on_limit` `queue`), with the priority it asked for.
    pub queue: Option<QueuePriority>,
    /// The window that was open when the transfer was queued (it was queued iff set).
    pub queued_in: Option<WindowId>,
    /// When the transfer last changed status after it was stored (released, expired,
    /// cancelled); `None` for a row as first written.
    pub status_at: Option<DateTime<Utc>>,
    /// Where its window is now, when read with it: an accepted transfer reads as
    /// `netted` or `settled` once its window is, without its own row changing.
    pub window_state: Option<WindowState>,
    /// Set on a return: the transfer it returns (all or part of).
    pub return_of: Option<TransferId>,
    /// The returns of this transfer, in the order they were made, when read on its
    /// own (`None` when read in a list or as decided).
    pub returns: Option<Vec<TransferId>>,
    /// The identifiers of a transfer that came in as an ISO 20022 credit transfer.
    pub iso: Option<IsoIds>,
    /// Its debtor and creditor, when the sender named them (screened against the
    /// list before acceptance).
    pub debtor: Option<PartyName>,
    pub creditor: Option<PartyName>,
    /// The screening match that held or rejected it.
    pub screening: Option<ScreeningMatch>,
    /// Its amount reached its corridor's reporting threshold when it was decided.
    pub flagged: bool,
}

/// What an ISO 20022 credit transfer is known by end to end: the debtor's
/// `EndToEndId` (at most 35 characters) and the UETR (a UUID; generated when the
/// message had none).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IsoIds {
    pub end_to_end_id: Option<String>,
    pub uetr: uuid::Uuid,
}

text_enum! {
    /// A transfer's lifecycle as clients see it: `accepted` → `netted` (its window
    /// closed) → `settled` (its window settled); or `rejected` at submission; or
    /// `queued` → `accepted` (released into the open window), `expired` or
    /// `cancelled`; an accepted transfer may be `cancelled` while its window is open.
    TransferStatus {
        Accepted => "accepted",
        Netted => "netted",
        Settled => "settled",
        Rejected => "rejected",
        Queued => "queued",
        Expired => "expired",
        Cancelled => "cancelled",
        Held => "held",
    }
}

impl Transfer {
    /// Whether `other` (a transfer decided from a new request) asks for the same
    /// thing as this stored transfer, field by field over what a request carries: the
    /// test that tells an idempotent replay from a conflicting reuse of a key. Made
    /// where both meet (the writer), so no copy of the request travels to compare.
    pub fn asks_the_same_as(&self, other: &Transfer) -> bool {
        self.sender == other.sender
            && self.receiver == other.receiver
            && self.amount == other.amount
            && self.to_currency == other.to_currency
            && self.sender_account == other.sender_account
            && self.receiver_account == other.receiver_account
            && self.reference == other.reference
            && self.queue == other.queue
            && self.return_of == other.return_of
            && self.iso == other.iso
            && self.debtor == other.debtor
            && self.creditor == other.creditor
    }

    /// A new transfer of `amount` from `sender` to `receiver`, decided `outcome`, with
    /// nothing optional set: tests set what they need over it.
    #[cfg(test)]
    pub(crate) fn for_test(
        sender: &str,
        receiver: &str,
        amount: Amount,
        to_currency: Currency,
        outcome: Outcome,
    ) -> Transfer {
        Transfer {
            id: TransferId::new(),
            sender: BankCode::parse(sender).unwrap(),
            receiver: BankCode::parse(receiver).unwrap(),
            amount,
            to_currency,
            fx_rate: None,
            converted: None,
            outcome,
            sender_account: None,
            receiver_account: None,
            reference: None,
            idempotency_key: None,
            created_at: Utc::now(),
            queue: None,
            queued_in: None,
            status_at: None,
            window_state: None,
            return_of: None,
            returns: None,
            iso: None,
            debtor: None,
            creditor: None,
            screening: None,
            flagged: false,
        }
    }

    /// The status as stored: `accepted`, `rejected`, `queued`, `expired` or
    /// `cancelled` (netted and settled are its window's states).
    pub fn decision(&self) -> TransferStatus {
        self.outcome.status()
    }

    /// The lifecycle status clients see: an accepted transfer follows its window
    /// (accepted → netted → settled); the others are as stored.
    pub fn status(&self) -> TransferStatus {
        match (self.outcome, self.window_state) {
            (Outcome::Accepted(_), Some(WindowState::Netted | WindowState::SettlementFailed)) => {
                TransferStatus::Netted
            }
            (Outcome::Accepted(_), Some(WindowState::Settled)) => TransferStatus::Settled,
            _ => self.decision(),
        }
    }

    pub fn window_id(&self) -> Option<WindowId> {
        self.outcome.window()
    }

    pub fn reject_code(&self) -> Option<RejectCode> {
        match self.outcome {
            Outcome::Rejected(r) => Some(r),
            _ => None,
        }
    }
}
