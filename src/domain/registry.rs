//! The participants and corridors the operator registers, as the engine knows them,
//! and the changes the operator may make to them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::fx::FxRate;
use super::ids::{BankCode, BankStatus, Bic, CorridorId, CorridorStatus};
use super::money::Currency;

/// A bank with its net debit cap per currency (a currency without a cap has cap 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankRecord {
    pub code: BankCode,
    pub name: String,
    /// ISO 3166 two-letter country code.
    pub country: String,
    pub status: BankStatus,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
    /// How ISO 20022 messages name the bank (matched on its first eight characters).
    pub bic: Option<Bic>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A bank the operator registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBank {
    pub code: BankCode,
    pub name: String,
    pub country: String,
    pub status: BankStatus,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
    pub bic: Option<Bic>,
}

/// A change to a bank; caps named here are set, others kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankPatch {
    pub name: Option<String>,
    pub status: Option<BankStatus>,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
    pub bic: Option<Bic>,
}

/// A corridor: its rate (units of `to` per unit of `from`), status and the largest
/// amount one transfer may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorridorRecord {
    pub id: CorridorId,
    pub fx_rate: FxRate,
    pub status: CorridorStatus,
    pub amount_max: Decimal,
    /// Transfers of this amount or more (in the source currency) are flagged for the
    /// compliance report.
    pub report_threshold: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A corridor the operator registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCorridor {
    pub id: CorridorId,
    pub fx_rate: FxRate,
    pub status: CorridorStatus,
    pub amount_max: Decimal,
    pub report_threshold: Option<Decimal>,
}

/// A change to a corridor; fields left `None` are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorridorPatch {
    pub fx_rate: Option<FxRate>,
    pub status: Option<CorridorStatus>,
    pub amount_max: Option<Decimal>,
    pub report_threshold: Option<Decimal>,
}
