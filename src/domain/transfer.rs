//! A transfer as the engine decided it: accepted into a window or rejected with a code.

use chrono::{DateTime, Utc};

use super::errors::RejectCode;
use super::fx::FxRate;
use super::ids::{BankCode, TransferId, WindowId};
use super::money::{Amount, Currency};
use super::rules::TransferDraft;
use super::window::WindowState;

/// The decision on a transfer, fixed when its batch commits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Accepted(WindowId),
    Rejected(RejectCode),
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
    /// Where its window is now, when read with it: an accepted transfer reads as
    /// `netted` or `settled` once its window is, without its own row changing.
    pub window_state: Option<WindowState>,
}

text_enum! {
    /// A transfer's lifecycle as clients see it: `accepted` → `netted` (its window
    /// closed) → `settled` (its window settled); or `rejected` at submission.
    TransferStatus {
        Accepted => "accepted",
        Netted => "netted",
        Settled => "settled",
        Rejected => "rejected",
    }
}

impl Transfer {
    /// Whether `draft` asks for the same thing as this stored transfer, field by field:
    /// the test that tells an idempotent replay from a conflicting reuse of a key.
    pub fn matches_request(&self, draft: &TransferDraft) -> bool {
        self.sender == draft.sender
            && self.receiver == draft.receiver
            && self.amount == draft.amount
            && self.to_currency == draft.to_currency
            && self.sender_account == draft.sender_account
            && self.receiver_account == draft.receiver_account
            && self.reference == draft.reference
    }

    /// The decision as stored: `Accepted` or `Rejected`.
    pub fn decision(&self) -> TransferStatus {
        match self.outcome {
            Outcome::Accepted(_) => TransferStatus::Accepted,
            Outcome::Rejected(_) => TransferStatus::Rejected,
        }
    }

    /// The lifecycle status clients see: accepted → netted → settled, or rejected.
    pub fn status(&self) -> TransferStatus {
        match (self.outcome, self.window_state) {
            (Outcome::Rejected(_), _) => TransferStatus::Rejected,
            (_, Some(WindowState::Netted | WindowState::SettlementFailed)) => {
                TransferStatus::Netted
            }
            (_, Some(WindowState::Settled)) => TransferStatus::Settled,
            _ => TransferStatus::Accepted,
        }
    }

    pub fn window_id(&self) -> Option<WindowId> {
        match self.outcome {
            Outcome::Accepted(w) => Some(w),
            Outcome::Rejected(_) => None,
        }
    }

    pub fn reject_code(&self) -> Option<RejectCode> {
        match self.outcome {
            Outcome::Accepted(_) => None,
            Outcome::Rejected(r) => Some(r),
        }
    }
}
