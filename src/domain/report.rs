//! What the report endpoints answer: a bank's statement of one window, and a summary
//! of transfers, rejections, netting and window latencies over a time range. Plain
//! records: the store fills them (every sum of money is made in SQL, exactly, in
//! NUMERIC), `views` renders them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::errors::RejectCode;
use super::ids::{BankCode, CorridorId};
use super::money::Currency;
use super::netting;
use super::settlement::InstructionRecord;
use super::transfer::TransferStatus;
use super::window::WindowRecord;

text_enum! {
    /// A transfer seen from one bank: it `sent` it or `received` it.
    Direction {
        Sent => "sent",
        Received => "received",
    }
}

/// A bank's position in one currency of one window, with the number of its legs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementPosition {
    pub currency: Currency,
    pub debits: Decimal,
    pub credits: Decimal,
    /// Credits minus debits.
    pub position: Decimal,
    /// Transfers the bank sent in this currency (its debit legs).
    pub transfers_sent: i64,
    /// Transfers the bank received in this currency (its credit legs).
    pub transfers_received: i64,
}

/// Everything of a bank's statement but its transfers, which are read page by page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementHead {
    pub window: WindowRecord,
    pub bank: BankCode,
    /// As the window's netting recorded them; for a window not netted yet, its
    /// running sums so far (`provisional`).
    pub positions: Vec<StatementPosition>,
    /// The instructions the bank pays or is paid (none before netting).
    pub instructions: Vec<InstructionRecord>,
}

impl StatementHead {
    /// The window is open or closing: its transfers and positions may still grow.
    pub fn provisional(&self) -> bool {
        self.window.state.is_live()
    }

    /// The number of the bank's transfers in the window (a transfer has one debit leg
    /// and one credit leg, and a bank never sends to itself).
    pub fn transfer_count(&self) -> i64 {
        self.positions
            .iter()
            .map(|p| p.transfers_sent + p.transfers_received)
            .sum()
    }
}

/// Transfers of one corridor with one status (and, for a bank, one direction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeLine {
    pub corridor: CorridorId,
    pub status: TransferStatus,
    /// Set when the summary is one bank's.
    pub direction: Option<Direction>,
    pub count: i64,
    /// Sum of the amounts, in the corridor's source currency.
    pub source_amount: Decimal,
    /// Sum of the converted amounts, in the destination currency; `None` for
    /// rejected transfers (nothing was converted).
    pub destination_amount: Option<Decimal>,
}

/// Rejected transfers with one code in one (source) currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionLine {
    pub code: RejectCode,
    pub currency: Currency,
    pub count: i64,
    pub amount: Decimal,
}

/// Gross and net of one currency summed over the windows netted in a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NettingTotal {
    pub currency: Currency,
    pub gross: Decimal,
    pub net: Decimal,
}

impl NettingTotal {
    /// `1 − net / gross`, as the engine defines a window's efficiency
    /// (`netting::efficiency`), over the summed figures.
    pub fn efficiency(&self) -> Decimal {
        netting::efficiency(self.gross, self.net)
    }

    /// The summed liquidity used: `net`, since each window's net is its banks' net
    /// debit positions (for a bank: what it paid in).
    pub fn liquidity_used(&self) -> Decimal {
        self.net
    }

    /// Summed gross ÷ summed liquidity used (`netting::liquidity_efficiency`): the
    /// range's ratio, not an average of the windows' ratios; `None` when none was used.
    pub fn liquidity_efficiency(&self) -> Option<Decimal> {
        netting::liquidity_efficiency(self.gross, self.liquidity_used())
    }
}

/// Durations in milliseconds over a set of windows; the figures are `None` when the
/// set is empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyStats {
    pub windows: i64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The summary over `[from, to)`, of the hub or of one bank.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: the hub's figures; a bank: its own.
    pub bank: Option<BankCode>,
    /// Transfers created in the range, by corridor and status (and direction).
    pub volumes: Vec<VolumeLine>,
    /// Rejected transfers created in the range, by code and currency.
    pub rejections: Vec<RejectionLine>,
    /// Windows netted in the range (for a bank: those in which it had a position).
    pub windows_netted: i64,
    /// Their gross and net per currency (for a bank: its debits and what it paid in).
    pub netting: Vec<NettingTotal>,
    /// Cut-off to netting stored, for the windows netted in the range.
    pub close_latency: LatencyStats,
    /// Netting to the last confirmation, for the windows settled in the range.
    pub settlement_latency: LatencyStats,
}
