//! A bank's books: what it sent and received over windows not yet settled, what it
//! has reserved for transfers being committed, and the exposure the limit check uses.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::ids::{BankCode, BankStatus, TransferId, WindowId};
use super::money::Currency;
use super::returns::Returned;

/// A bank's committed debits and credits per currency over windows not yet settled,
/// its settlement balances (the currencies it is prefunded in), and what its returns
/// have taken of each original it returned (returns accepted or queued).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankBooks {
    pub debits: BTreeMap<Currency, Decimal>,
    pub credits: BTreeMap<Currency, Decimal>,
    pub balances: BTreeMap<Currency, StoredBalance>,
    pub returned: HashMap<TransferId, Returned>,
    /// What the bank's held transfers keep of its exposure, per currency.
    pub held: BTreeMap<Currency, Decimal>,
}

/// A prefunded bank's settlement balance in one currency as stored, with the version
/// of its last change: every change raises it, so of two figures the newer is the
/// one with the higher version, whichever arrived first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBalance {
    pub balance: Decimal,
    pub version: i64,
}

text_enum! {
    /// Which way the operator moved a settlement balance.
    FundsDirection {
        In => "in",
        Out => "out",
    }
}

/// A funds-in or funds-out as stored, with the balance it left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FundsMovement {
    pub id: i64,
    pub bank: BankCode,
    pub currency: Currency,
    pub direction: FundsDirection,
    pub amount: Decimal,
    pub reference: Option<String>,
    pub balance: StoredBalance,
    pub created_at: DateTime<Utc>,
}

/// What bounds a bank's exposure in a currency: its net debit cap, and its
/// settlement balance too when it is prefunded in it (the smaller of the two).
pub fn limit(cap: Decimal, settlement_balance: Option<Decimal>) -> Decimal {
    settlement_balance.map_or(cap, |balance| balance.min(cap))
}

/// One currency of a bank's books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub debits: Decimal,
    pub credits: Decimal,
    /// Debits handed to the writer and not yet committed.
    pub reserved: Decimal,
    /// Transfers held by compliance screening (stored, in no window): they keep their
    /// exposure until the operator releases or rejects them.
    pub held: Decimal,
}

impl Ledger {
    /// Net debit counting reservations and held transfers: what the limit check
    /// compares with the cap.
    pub fn exposure(&self) -> Decimal {
        self.debits + self.reserved + self.held - self.credits
    }
}

/// A bank's positions as its actor holds them (`GET /banks/{code}/positions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankPositions {
    pub code: BankCode,
    pub status: BankStatus,
    pub window: Option<WindowId>,
    pub ledgers: BTreeMap<Currency, Ledger>,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
    /// Transfers waiting in the bank's queue per currency: how many, and their value.
    pub queued: BTreeMap<Currency, (usize, Decimal)>,
    /// Settlement balances of the currencies the bank is prefunded in, less any
    /// funds-out being stored.
    pub settlement_balances: BTreeMap<Currency, Decimal>,
    /// False while the actor re-reads its books; figures are then the last known.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_counts_reservations_and_credits_as_headroom() {
        let ledger = Ledger {
            debits: Decimal::new(500, 0),
            credits: Decimal::new(200, 0),
            reserved: Decimal::new(50, 0),
            held: Decimal::new(25, 0),
        };
        assert_eq!(ledger.exposure(), Decimal::new(375, 0));
    }
}
