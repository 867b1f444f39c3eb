//! A bank's books: what it sent and received over windows not yet settled, what it
//! has reserved for transfers being committed, and the exposure the limit check uses.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::ids::{BankCode, BankStatus, WindowId};
use super::money::Currency;

/// A bank's committed debits and credits per currency over windows not yet settled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankBooks {
    pub debits: BTreeMap<Currency, Decimal>,
    pub credits: BTreeMap<Currency, Decimal>,
}

/// One currency of a bank's books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub debits: Decimal,
    pub credits: Decimal,
    /// Debits handed to the writer and not yet committed.
    pub reserved: Decimal,
}

impl Ledger {
    /// Net debit counting reservations: what the limit check compares with the cap.
    pub fn exposure(&self) -> Decimal {
        self.debits + self.reserved - self.credits
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
        };
        assert_eq!(ledger.exposure(), Decimal::new(350, 0));
    }
}
