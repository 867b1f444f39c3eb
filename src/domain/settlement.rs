//! Settlement instructions: the payments that settle a netted window, and their states.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::errors::InputError;
use super::ids::{BankCode, WindowId, HUB};
use super::money::Currency;
use super::netting::Party;

text_enum! {
    /// An instruction is `pending` until the settlement rail confirms or fails it.
    InstructionState {
        Pending => "pending",
        Confirmed => "confirmed",
        Failed => "failed",
    }
}

impl Party<BankCode> {
    /// A bank code, or `HUB` for the hub itself.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        if text == HUB {
            Ok(Party::Hub)
        } else {
            BankCode::parse(text).map(Party::Bank)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Party::Bank(code) => code.as_str(),
            Party::Hub => HUB,
        }
    }

    pub fn bank(&self) -> Option<&BankCode> {
        match self {
            Party::Bank(code) => Some(code),
            Party::Hub => None,
        }
    }
}

/// One settlement instruction as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstructionRecord {
    pub id: Uuid,
    pub window_id: WindowId,
    pub currency: Currency,
    pub payer: Party<BankCode>,
    pub payee: Party<BankCode>,
    pub amount: Decimal,
    pub state: InstructionState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl InstructionRecord {
    /// The bank that pays or is paid (the other side is the hub).
    pub fn banks(&self) -> Vec<BankCode> {
        [&self.payer, &self.payee]
            .into_iter()
            .filter_map(|party| party.bank().cloned())
            .collect()
    }
}

/// What confirming (or failing) an instruction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstructionChange {
    pub instruction: InstructionRecord,
    /// False when the instruction was already in the asked state (a harmless repeat).
    pub changed: bool,
    /// Every instruction of its window is now confirmed.
    pub window_complete: bool,
}

/// One bank's part of a settled window, to release from its exposure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedBooks {
    pub bank: BankCode,
    pub currency: Currency,
    pub debits: Decimal,
    pub credits: Decimal,
    /// The bank's settlement balance after the window moved it by `credits −
    /// debits`, when it is prefunded in the currency.
    pub balance: Option<super::books::StoredBalance>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_are_banks_or_the_hub() {
        assert_eq!(Party::parse("HUB"), Ok(Party::Hub));
        let icici = Party::parse("ICICI").unwrap();
        assert_eq!(icici.as_str(), "ICICI");
        assert_eq!(icici.bank().map(|b| b.as_str()), Some("ICICI"));
        assert_eq!(Party::parse("icici"), Err(InputError::BankCodeInvalid));
    }

    #[test]
    fn instruction_states_read_back_as_written() {
        for &state in InstructionState::ALL {
            assert_eq!(InstructionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(InstructionState::parse("done"), None);
    }
}
