//! A clearing window's lifecycle and its stored result.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::ids::{BankCode, CorridorId, WindowId};
use super::money::Currency;
use super::netting::{CurrencySummary, Position};

text_enum! {
    /// Where a window is in its life: `open` → `closing` (cut-off: new transfers go to
    /// the next window) → `netted` (result and instructions stored) → `settled` (every
    /// instruction confirmed), or `settlement_failed`.
    WindowState {
        Open => "open",
        Closing => "closing",
        Netted => "netted",
        Settled => "settled",
        SettlementFailed => "settlement_failed",
    }
}

impl WindowState {
    /// Whether the window may still receive or be waiting for transfers (not netted).
    pub fn is_live(self) -> bool {
        matches!(self, WindowState::Open | WindowState::Closing)
    }
}

/// A window as stored, without its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRecord {
    pub id: WindowId,
    pub state: WindowState,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub netted_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    /// Accepted transfers, fixed when the window is netted.
    pub transfer_count: Option<i64>,
}

/// A window with its netting result (empty until netted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowDetail {
    pub record: WindowRecord,
    pub positions: Vec<Position<BankCode>>,
    pub currencies: Vec<CurrencySummary>,
    /// The hub's FX need per corridor: (source received, destination paid out).
    pub corridors: Vec<(CorridorId, Decimal, Decimal)>,
    /// Queued transfers released into the window, per source currency.
    pub queue: Vec<QueueRelease>,
}

/// What the queue gave a window in one currency: the queued transfers released into
/// it (first in, first out or by gridlock resolution), their value, and how long they
/// had waited; and what was left queued when it was netted (the queue's depth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRelease {
    pub currency: Currency,
    pub count: i64,
    pub value: Decimal,
    pub wait_mean_ms: i64,
    pub wait_max_ms: i64,
    pub left_count: i64,
    pub left_value: Decimal,
}

impl WindowDetail {
    /// The window as `bank` may see it: its own positions only. The totals per
    /// currency and corridor stay, as the product allows; note that where only two
    /// banks trade a currency, the hub's position and a bank's own reveal the other's.
    pub fn seen_by(&self, bank: &BankCode) -> WindowDetail {
        WindowDetail {
            record: self.record.clone(),
            positions: self
                .positions
                .iter()
                .filter(|p| &p.bank == bank)
                .cloned()
                .collect(),
            currencies: self.currencies.clone(),
            corridors: self.corridors.clone(),
            queue: self.queue.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_states_read_back_as_written() {
        for &state in WindowState::ALL {
            assert_eq!(WindowState::parse(state.as_str()), Some(state));
        }
        assert_eq!(WindowState::parse("closed"), None);
        assert!(WindowState::Closing.is_live());
        assert!(!WindowState::Netted.is_live());
    }
}
