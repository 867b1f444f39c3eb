//! The JSON shapes of resources, in one place for the REST answers, the WebSocket
//! feed and the OpenAPI document alike. Each shape is a struct: serde renders it and
//! `utoipa` derives its schema from the same fields, so the published contract
//! cannot drift from what the engine sends (see docs/ARCHITECTURE.md). It depends
//! only on the domain: the actors render a feed event once here and every
//! subscriber gets the same text. Amounts are decimal strings with their currency's
//! decimals, never JSON numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::domain::books;
use crate::domain::report::{
    LatencyStats, RejectionLine, StatementHead, StatementPosition, Summary,
};
use crate::domain::{
    BankCode, BankPositions, BankRecord, CorridorRecord, Currency, FundsMovement,
    InstructionRecord, RejectCode, Transfer, TransferStatus, WindowDetail, WindowId, WindowRecord,
    WindowState,
};

/// An exact decimal amount as text, with its currency's decimals (`"1250.50"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "1250.50")]
pub struct Money(pub String);

impl Money {
    pub fn of(currency: Currency, value: Decimal) -> Money {
        Money(currency.format(value))
    }
}

/// An RFC 3339 time in UTC with microseconds (`"2026-11-23T17:35:23.123456Z"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = DateTime, example = "2026-11-23T17:35:23.123456Z")]
pub struct Timestamp(pub String);

pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A time as answers carry it.
pub fn time(t: &DateTime<Utc>) -> Timestamp {
    Timestamp(timestamp(t))
}

fn optional_time(t: &Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.as_ref().map(time)
}

/// A shape as a JSON value, for the audit log's `before` and `after`.
pub fn value(shape: impl Serialize) -> Value {
    serde_json::to_value(shape).expect("a view always renders")
}

/// A shape as JSON text, for feed events rendered once for every subscriber.
pub fn text(shape: impl Serialize) -> String {
    serde_json::to_string(&shape).expect("a view always renders")
}

/// A transfer as submitted and decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    /// The engine's id (UUID v7: time-ordered).
    #[schema(format = Uuid)]
    pub transaction_id: String,
    /// `accepted`, `netted`, `settled` or `rejected`; `queued`, `expired` or
    /// `cancelled`.
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// The clearing window it belongs to; null when rejected, queued, expired or
    /// cancelled.
    pub window_id: Option<i64>,
    pub sender_bank: String,
    pub receiver_bank: String,
    /// In `from_currency`.
    pub amount: Money,
    pub from_currency: &'static str,
    /// `amount` at `fx_rate`, in `to_currency`; null when rejected before a rate
    /// was fixed.
    pub converted_amount: Option<Money>,
    pub to_currency: &'static str,
    /// The corridor's rate fixed at acceptance, as a decimal string.
    #[schema(value_type = Option<String>, example = "0.04405")]
    pub fx_rate: Option<String>,
    pub created_at: Timestamp,
    /// Why it was rejected (`limit_exceeded`, `amount_over_corridor_max`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reject_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub sender_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub receiver_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub idempotency_key: Option<String>,
    /// `queue` when the sender asked to wait rather than be rejected at its limit
    /// (absent for the default, `reject`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, example = "queue")]
    pub on_limit: Option<&'static str>,
    /// With `on_limit` `queue`: `normal` or `high`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, example = "normal")]
    pub priority: Option<&'static str>,
    /// The window that was open when it was queued (present iff it was ever queued).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub queued_in_window: Option<i64>,
    /// When it last changed status after it was stored: released from its queue,
    /// expired or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub status_changed_at: Option<Timestamp>,
    /// On a return: the `transaction_id` of the transfer it returns (all or part of).
    /// A return goes the other way at the original's rate (`fx_rate` is the
    /// original's, from this return's `to_currency` to its `from_currency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub return_of: Option<String>,
    /// The `transaction_id`s of this transfer's returns, in the order they were made
    /// (whatever became of them): on `GET /api/v1/transfers/{id}` of a transfer that
    /// has any (lists and feed events leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub returns: Option<Vec<String>>,
    /// From an ISO 20022 credit transfer: its `EndToEndId`, as the debtor set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub end_to_end_id: Option<String>,
    /// From an ISO 20022 credit transfer: its UETR (generated when it had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub uetr: Option<String>,
    /// The paying customer, as the sender named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub debtor: Option<PartyView>,
    /// The paid customer, as the sender named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub creditor: Option<PartyView>,
    /// The compliance screening match that held or rejected it (`held`, or
    /// `compliance_rejected`); absent when screening found nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub screening: Option<ScreeningMatchView>,
    /// `true` when its amount reached its corridor's reporting threshold (absent
    /// otherwise): the compliance report lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub flagged: Option<bool>,
}

/// A debtor or creditor.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    pub name: String,
    pub country: Option<String>,
}

/// A screening match: the list entry, which party matched, and how well.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningMatchView {
    pub entry_id: i64,
    /// `debtor` or `creditor`.
    pub party: &'static str,
    /// 0 to 1 (Jaro–Winkler over the names' tokens).
    #[schema(value_type = String, example = "0.873")]
    pub score: String,
}

pub fn transfer(t: &Transfer) -> TransferView {
    TransferView {
        transaction_id: t.id.to_string(),
        status: t.status().as_str(),
        window_id: t.window_id().map(|w| w.get()),
        sender_bank: t.sender.as_str().to_string(),
        receiver_bank: t.receiver.as_str().to_string(),
        amount: Money(t.amount.to_string()),
        from_currency: t.amount.currency().as_str(),
        converted_amount: t.converted.map(|c| Money(c.to_string())),
        to_currency: t.to_currency.as_str(),
        fx_rate: t.fx_rate.map(|r| r.to_string()),
        created_at: time(&t.created_at),
        reject_code: t.reject_code().map(|code| code.code()),
        sender_account: t.sender_account.clone(),
        receiver_account: t.receiver_account.clone(),
        reference: t.reference.clone(),
        idempotency_key: t.idempotency_key.clone(),
        on_limit: t.queue.map(|_| "queue"),
        priority: t.queue.map(|p| p.as_str()),
        queued_in_window: t.queued_in.map(|w| w.get()),
        status_changed_at: t.status_at.as_ref().map(time),
        return_of: t.return_of.map(|r| r.to_string()),
        returns: t
            .returns
            .as_ref()
            .filter(|ids| !ids.is_empty())
            .map(|ids| ids.iter().map(|id| id.to_string()).collect()),
        end_to_end_id: t.iso.as_ref().and_then(|i| i.end_to_end_id.clone()),
        uetr: t.iso.as_ref().map(|i| i.uetr.to_string()),
        debtor: t.debtor.as_ref().map(party),
        creditor: t.creditor.as_ref().map(party),
        screening: t.screening.as_ref().map(|m| ScreeningMatchView {
            entry_id: m.entry_id,
            party: m.role.as_str(),
            score: m.score.to_string(),
        }),
        flagged: t.flagged.then_some(true),
    }
}

fn party(p: &crate::domain::screening::PartyName) -> PartyView {
    PartyView {
        name: p.name.clone(),
        country: p.country.clone(),
    }
}

/// One transfer of the compliance report and why it is there.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceLineView {
    /// `held` (held by screening, undecided), `released` (held, then released by
    /// the operator), `rejected` (`compliance_rejected`, at submission or by the
    /// operator) or `flagged` (its amount reached its corridor's reporting
    /// threshold). A transfer both matched and flagged has a line of each.
    #[schema(example = "held")]
    pub category: &'static str,
    pub transfer: TransferView,
    /// The screening entry matched (absent for `flagged`); its list and name while
    /// the entry is still on the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub entry_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub entry_list: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub entry_name: Option<String>,
}

/// The compliance report of one day (UTC).
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceReportView {
    #[schema(example = "2026-12-04")]
    pub date: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub held: i64,
    pub released: i64,
    pub rejected: i64,
    pub flagged: i64,
    pub lines: Vec<ComplianceLineView>,
}

/// The report's lines: each matched transfer by what became of it, each flagged one.
pub fn compliance_lines(lines: &[crate::store::ComplianceLine]) -> Vec<ComplianceLineView> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let t = &line.transfer;
        if let Some(m) = &t.screening {
            let category = match t.outcome {
                crate::domain::Outcome::Held => "held",
                crate::domain::Outcome::Rejected(_) => "rejected",
                _ => "released",
            };
            out.push(ComplianceLineView {
                category,
                transfer: transfer(t),
                entry_id: Some(m.entry_id),
                entry_list: line.entry_list.clone(),
                entry_name: line.entry_name.clone(),
            });
        }
        if t.flagged {
            out.push(ComplianceLineView {
                category: "flagged",
                transfer: transfer(t),
                entry_id: None,
                entry_list: None,
                entry_name: None,
            });
        }
    }
    out
}

/// The CSV of the compliance report: a header, then one line per report line.
pub fn compliance_csv(lines: &[ComplianceLineView]) -> String {
    let mut out = String::from(
        "category,transaction_id,created_at,status,reject_code,sender_bank,receiver_bank,amount,\
         from_currency,debtor_name,debtor_country,creditor_name,creditor_country,entry_id,\
         entry_list,entry_name,screening_party,screening_score\n",
    );
    let field = |text: &str| -> String {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    };
    for l in lines {
        let t = &l.transfer;
        let party = |p: &Option<PartyView>| {
            p.as_ref()
                .map(|p| (field(&p.name), p.country.clone().unwrap_or_default()))
                .unwrap_or_default()
        };
        let (debtor, debtor_country) = party(&t.debtor);
        let (creditor, creditor_country) = party(&t.creditor);
        let cells = [
            l.category.to_string(),
            t.transaction_id.clone(),
            t.created_at.0.clone(),
            t.status.to_string(),
            t.reject_code.unwrap_or("").to_string(),
            t.sender_bank.clone(),
            t.receiver_bank.clone(),
            t.amount.0.clone(),
            t.from_currency.to_string(),
            debtor,
            debtor_country,
            creditor,
            creditor_country,
            l.entry_id.map(|i| i.to_string()).unwrap_or_default(),
            l.entry_list.clone().unwrap_or_default(),
            field(l.entry_name.as_deref().unwrap_or("")),
            t.screening
                .as_ref()
                .map(|s| s.party.to_string())
                .unwrap_or_default(),
            t.screening
                .as_ref()
                .map(|s| s.score.clone())
                .unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// A page of transfers.
#[derive(Serialize, ToSchema)]
pub struct TransferPage {
    pub transactions: Vec<TransferView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A participating bank.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankView {
    #[schema(example = "ICICI")]
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "IN")]
    pub country: String,
    /// `active` or `suspended`.
    pub status: &'static str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Net debit cap per currency; present only for the operator, an auditor and
    /// the bank itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub net_debit_caps: Option<BTreeMap<String, Money>>,
    /// How ISO 20022 messages name the bank (null when it has none).
    #[schema(example = "ICICINBB")]
    pub bic: Option<String>,
}

/// A bank; its net debit caps only when `with_caps` (the operator, an auditor, the
/// bank itself: other banks see who their counterparties are, not their limits).
pub fn bank(b: &BankRecord, with_caps: bool) -> BankView {
    BankView {
        code: b.code.as_str().to_string(),
        name: b.name.clone(),
        country: b.country.clone(),
        status: b.status.as_str(),
        created_at: time(&b.created_at),
        updated_at: time(&b.updated_at),
        net_debit_caps: with_caps.then(|| {
            b.net_debit_caps
                .iter()
                .map(|(c, cap)| (c.as_str().to_string(), Money::of(*c, *cap)))
                .collect()
        }),
        bic: b.bic.as_ref().map(|bic| bic.as_str().to_string()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct BankList {
    pub banks: Vec<BankView>,
}

/// One currency of a bank's books in the open window.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerView {
    pub currency: &'static str,
    /// Accepted transfers it sends.
    pub debits: Money,
    /// Accepted transfers it receives.
    pub credits: Money,
    /// `credits − debits`.
    pub position: Money,
    /// Submissions decided but not yet stored.
    pub reserved: Money,
    /// Transfers held by compliance screening: part of the exposure until the
    /// operator releases or rejects them.
    pub held: Money,
    /// `debits + reserved − credits`: what the cap bounds.
    pub exposure: Money,
    pub net_debit_cap: Money,
    /// The settlement balance when the bank is prefunded in the currency (less any
    /// funds-out being stored); null when it is not, and the cap alone bounds it.
    pub settlement_balance: Option<Money>,
    /// `min(net_debit_cap, settlement_balance) − exposure` (the cap alone when not
    /// prefunded).
    pub headroom: Money,
    /// Transfers waiting in the bank's queue in this currency (`on_limit` `queue`),
    /// and their value.
    pub queued_count: u64,
    pub queued_value: Money,
}

/// A bank's live positions (`GET /api/v1/banks/{code}/positions`, and the feed's
/// `position_update`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionsView {
    pub bank: String,
    pub status: &'static str,
    /// The open window the positions belong to.
    pub window_id: Option<i64>,
    /// False while the bank's actor re-reads its books; the figures are then the
    /// last known.
    pub current: bool,
    pub positions: Vec<LedgerView>,
}

pub fn positions(view: &BankPositions) -> PositionsView {
    let mut currencies: Vec<_> = view
        .ledgers
        .keys()
        .chain(view.net_debit_caps.keys())
        .chain(view.queued.keys())
        .chain(view.settlement_balances.keys())
        .copied()
        .collect();
    currencies.sort();
    currencies.dedup();
    let positions = currencies
        .into_iter()
        .map(|c| {
            let ledger = view.ledgers.get(&c).copied().unwrap_or_default();
            let cap = view.net_debit_caps.get(&c).copied().unwrap_or_default();
            let queued = view.queued.get(&c).copied().unwrap_or_default();
            let balance = view.settlement_balances.get(&c).copied();
            LedgerView {
                currency: c.as_str(),
                debits: Money::of(c, ledger.debits),
                credits: Money::of(c, ledger.credits),
                position: Money::of(c, ledger.credits - ledger.debits),
                reserved: Money::of(c, ledger.reserved),
                held: Money::of(c, ledger.held),
                exposure: Money::of(c, ledger.exposure()),
                net_debit_cap: Money::of(c, cap),
                settlement_balance: balance.map(|b| Money::of(c, b)),
                headroom: Money::of(c, books::limit(cap, balance) - ledger.exposure()),
                queued_count: queued.0 as u64,
                queued_value: Money::of(c, queued.1),
            }
        })
        .collect();
    PositionsView {
        bank: view.code.as_str().to_string(),
        status: view.status.as_str(),
        window_id: view.window.map(|w| w.get()),
        current: view.current,
        positions,
    }
}

/// One currency a bank is prefunded in.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub currency: &'static str,
    /// The settlement balance (less any funds-out being stored).
    pub balance: Money,
    /// `debits + reserved − credits` over unsettled windows, as in its positions.
    pub exposure: Money,
    /// `balance − exposure`: what a funds-out may take, and what transfers may still
    /// use within the balance.
    pub free: Money,
}

/// A bank's settlement balances (`GET /api/v1/banks/{code}/balances`): only the
/// currencies it is prefunded in.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalancesView {
    pub bank: String,
    /// False while the bank's actor re-reads its books; the figures are then the
    /// last known.
    pub current: bool,
    pub balances: Vec<BalanceView>,
}

pub fn balances(view: &BankPositions) -> BalancesView {
    let balances = view
        .settlement_balances
        .iter()
        .map(|(c, balance)| {
            let exposure = view
                .ledgers
                .get(c)
                .map(|l| l.exposure())
                .unwrap_or_default();
            BalanceView {
                currency: c.as_str(),
                balance: Money::of(*c, *balance),
                exposure: Money::of(*c, exposure),
                free: Money::of(*c, *balance - exposure),
            }
        })
        .collect();
    BalancesView {
        bank: view.code.as_str().to_string(),
        current: view.current,
        balances,
    }
}

/// A funds-in or funds-out as stored (the answer of both routes, and the audit
/// log's `after`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FundsMovementView {
    /// The movement's id, increasing.
    pub id: i64,
    pub bank: String,
    pub currency: &'static str,
    /// `in` or `out`.
    pub direction: &'static str,
    pub amount: Money,
    pub reference: Option<String>,
    /// The settlement balance after the movement.
    pub balance: Money,
    pub created_at: Timestamp,
}

pub fn funds_movement(m: &FundsMovement) -> FundsMovementView {
    FundsMovementView {
        id: m.id,
        bank: m.bank.as_str().to_string(),
        currency: m.currency.as_str(),
        direction: m.direction.as_str(),
        amount: Money::of(m.currency, m.amount),
        reference: m.reference.clone(),
        balance: Money::of(m.currency, m.balance.balance),
        created_at: time(&m.created_at),
    }
}

/// A settlement balance alone (the audit log's `before` of a funds movement).
#[derive(Debug, Serialize)]
pub struct SettlementBalanceView {
    pub bank: String,
    pub currency: &'static str,
    pub balance: Money,
}

pub fn settlement_balance(
    bank: &BankCode,
    currency: Currency,
    balance: Decimal,
) -> SettlementBalanceView {
    SettlementBalanceView {
        bank: bank.as_str().to_string(),
        currency: currency.as_str(),
        balance: Money::of(currency, balance),
    }
}

/// Feed: a bank's settlement balance moved, by a funds-in or funds-out (`cause`
/// `funds_in`, `funds_out`) or by a settled window (`settlement`, with its id).
pub fn balance_changed(
    bank: &BankCode,
    currency: Currency,
    balance: Decimal,
    cause: &str,
    window: Option<WindowId>,
) -> Value {
    json!({
        "bank": bank.as_str(),
        "currency": currency.as_str(),
        "balance": currency.format(balance),
        "cause": cause,
        "window_id": window.map(|w| w.get()),
    })
}

/// A currency corridor with its rate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorridorView {
    #[schema(example = "INR-AED")]
    pub id: String,
    pub from_currency: &'static str,
    pub to_currency: &'static str,
    /// Units of `to_currency` per unit of `from_currency`, as a decimal string.
    #[schema(example = "0.04405")]
    pub fx_rate: String,
    /// `active` or `suspended`.
    pub status: &'static str,
    /// Largest single transfer, in `from_currency`.
    pub amount_max: Money,
    /// Transfers of this amount or more are flagged for the compliance report (null:
    /// none are).
    pub report_threshold: Option<Money>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn corridor(c: &CorridorRecord) -> CorridorView {
    CorridorView {
        id: c.id.to_string(),
        from_currency: c.id.from.as_str(),
        to_currency: c.id.to.as_str(),
        fx_rate: c.fx_rate.to_string(),
        status: c.status.as_str(),
        amount_max: Money::of(c.id.from, c.amount_max),
        report_threshold: c.report_threshold.map(|t| Money::of(c.id.from, t)),
        created_at: time(&c.created_at),
        updated_at: time(&c.updated_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CorridorList {
    pub corridors: Vec<CorridorView>,
}

/// A clearing window as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowRecordView {
    pub id: i64,
    /// `open`, `closing`, `netted`, `settled` or `settlement_failed`.
    pub state: &'static str,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub netted_at: Option<Timestamp>,
    pub settled_at: Option<Timestamp>,
    /// Accepted transfers in the window: fixed when it is netted; in a list, null
    /// before that; in a single window, the running count while it is open or
    /// closing.
    pub transfer_count: Option<i64>,
}

pub fn window_record(w: &WindowRecord) -> WindowRecordView {
    WindowRecordView {
        id: w.id.get(),
        state: w.state.as_str(),
        opened_at: time(&w.opened_at),
        closed_at: optional_time(&w.closed_at),
        netted_at: optional_time(&w.netted_at),
        settled_at: optional_time(&w.settled_at),
        transfer_count: w.transfer_count,
    }
}

#[derive(Serialize, ToSchema)]
pub struct WindowPage {
    pub windows: Vec<WindowRecordView>,
    /// Pass as `before` for the next (older) page; null on the last.
    pub next_cursor: Option<String>,
}

/// A bank's net position in one currency of a netted window.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetPositionView {
    pub bank: String,
    pub currency: &'static str,
    pub debits: Money,
    pub credits: Money,
    /// `credits − debits`: negative pays, positive receives.
    pub position: Money,
}

/// Gross against net in one currency of a netted window.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyNettingView {
    pub currency: &'static str,
    /// Sum of the transfers' amounts in this currency.
    pub gross: Money,
    /// Sum paid in by net debtors: what the instructions into the hub move.
    pub net: Money,
    /// `1 − net / gross` (0 when nothing moved), as a decimal string.
    #[schema(example = "0.934512")]
    pub efficiency: String,
    /// Liquidity used: the sum of the banks' net debit positions in this currency,
    /// what net debtors pay in to settle (the hub's own leg is not counted). The same
    /// figure as `net`, named for what it measures.
    pub liquidity_used: Money,
    /// Liquidity efficiency: `gross / liquidity_used` as a decimal string, rounded to 6
    /// decimals ("29.4" reads 29.4 : 1); null when no liquidity was used.
    #[schema(example = "29.4")]
    pub liquidity_efficiency: Option<String>,
}

/// A ratio as the API shows it: rounded to 6 decimals, no trailing zeros.
fn ratio_text(ratio: Decimal) -> String {
    ratio.round_dp(6).normalize().to_string()
}

/// The hub's own position in a currency (its FX leg).
#[derive(Debug, Serialize, ToSchema)]
pub struct HubPositionView {
    pub currency: &'static str,
    pub position: Money,
}

/// Queued transfers released into a window in one source currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueReleaseView {
    #[schema(example = "INR")]
    pub currency: &'static str,
    /// How many were released into the window (first in, first out as headroom
    /// appeared, or together by gridlock resolution at its cut-off).
    pub released_count: i64,
    /// Their value, in `currency`.
    pub released_value: Money,
    /// How long they had waited in their queues, from submission to release.
    pub wait_mean_ms: i64,
    pub wait_max_ms: i64,
    /// The queue's depth: transfers in `currency` still queued in every bank when
    /// the window was netted (just after its cut-off), and their value.
    pub left_queued_count: i64,
    pub left_queued_value: Money,
}

/// What the hub converted in one corridor of a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorridorFxView {
    pub corridor: String,
    pub source_amount: Money,
    pub destination_amount: Money,
}

/// A clearing window with its netting result (empty lists until it is netted; a
/// bank sees its own positions only, the totals stay).
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    #[serde(flatten)]
    pub record: WindowRecordView,
    pub positions: Vec<NetPositionView>,
    pub currencies: Vec<CurrencyNettingView>,
    pub hub: Vec<HubPositionView>,
    pub fx: Vec<CorridorFxView>,
    /// Queued transfers released into the window, per currency (empty when none).
    pub queue: Vec<QueueReleaseView>,
}

/// A window with its result; `live_count` is the running count of an unnetted window.
pub fn window(detail: &WindowDetail, live_count: Option<i64>) -> WindowView {
    let mut record = window_record(&detail.record);
    if let Some(count) = live_count {
        record.transfer_count = Some(count);
    }
    WindowView {
        record,
        positions: detail
            .positions
            .iter()
            .map(|p| NetPositionView {
                bank: p.bank.as_str().to_string(),
                currency: p.currency.as_str(),
                debits: Money::of(p.currency, p.debits),
                credits: Money::of(p.currency, p.credits),
                position: Money::of(p.currency, p.position),
            })
            .collect(),
        currencies: detail
            .currencies
            .iter()
            .map(|c| CurrencyNettingView {
                currency: c.currency.as_str(),
                gross: Money::of(c.currency, c.gross),
                net: Money::of(c.currency, c.net),
                efficiency: ratio_text(c.efficiency()),
                liquidity_used: Money::of(c.currency, c.liquidity_used()),
                liquidity_efficiency: c.liquidity_efficiency().map(ratio_text),
            })
            .collect(),
        hub: detail
            .currencies
            .iter()
            .map(|c| HubPositionView {
                currency: c.currency.as_str(),
                position: Money::of(c.currency, c.hub_position),
            })
            .collect(),
        fx: detail
            .corridors
            .iter()
            .map(|(id, source, destination)| CorridorFxView {
                corridor: id.to_string(),
                source_amount: Money::of(id.from, *source),
                destination_amount: Money::of(id.to, *destination),
            })
            .collect(),
        queue: detail
            .queue
            .iter()
            .map(|q| QueueReleaseView {
                currency: q.currency.as_str(),
                released_count: q.count,
                released_value: Money::of(q.currency, q.value),
                wait_mean_ms: q.wait_mean_ms,
                wait_max_ms: q.wait_max_ms,
                left_queued_count: q.left_count,
                left_queued_value: Money::of(q.currency, q.left_value),
            })
            .collect(),
    }
}

/// The answer to closing the current window.
#[derive(Serialize, ToSchema)]
pub struct WindowClosed {
    pub closed_window_id: i64,
    pub next_window_id: i64,
    pub window: WindowView,
}

/// The open window and when the window timer cuts it off.
#[derive(Serialize, ToSchema)]
pub struct CurrentWindowView {
    #[serde(flatten)]
    pub window: WindowView,
    /// When the timer cuts the window off; null while a cut-off is under way.
    pub closes_at: Option<Timestamp>,
}

/// A settlement instruction: one payment that replaces many gross ones.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstructionView {
    #[schema(format = Uuid)]
    pub id: String,
    pub window_id: i64,
    pub currency: &'static str,
    pub payer: String,
    pub payee: String,
    pub amount: Money,
    /// `pending`, `confirmed` or `failed`.
    pub state: &'static str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn instruction(i: &InstructionRecord) -> InstructionView {
    InstructionView {
        id: i.id.to_string(),
        window_id: i.window_id.get(),
        currency: i.currency.as_str(),
        payer: i.payer.as_str().to_string(),
        payee: i.payee.as_str().to_string(),
        amount: Money::of(i.currency, i.amount),
        state: i.state.as_str(),
        created_at: time(&i.created_at),
        updated_at: time(&i.updated_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct InstructionPage {
    pub settlements: Vec<InstructionView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// An instruction after a confirm or fail.
#[derive(Serialize, ToSchema)]
pub struct InstructionChanged {
    #[serde(flatten)]
    pub instruction: InstructionView,
    /// False when it already was in that state (the call changed nothing).
    pub changed: bool,
}

/// Feed: a bank's exposure passed the warning share of its cap.
pub fn limit_warning(
    bank: &BankCode,
    currency: Currency,
    exposure: Decimal,
    cap: Decimal,
    limit: Decimal,
) -> Value {
    json!({
        "bank": bank.as_str(),
        "currency": currency.as_str(),
        "exposure": currency.format(exposure),
        "net_debit_cap": currency.format(cap),
        "limit": currency.format(limit),
    })
}

/// Feed: a supervised actor restarted after a failure.
pub fn actor_restarted(actor: &str, name: &str) -> Value {
    json!({"actor": actor, "name": name})
}

/// Feed: `window` reached its cut-off and `next` is open.
pub fn window_closing(window: WindowId, next: WindowId) -> Value {
    json!({"id": window.get(), "next_window_id": next.get()})
}

/// Feed: `window` opened.
pub fn window_opened(window: WindowId) -> Value {
    json!({"id": window.get()})
}

/// Feed: every instruction of `window` is confirmed.
pub fn window_settled(window: WindowId) -> Value {
    json!({"id": window.get(), "state": WindowState::Settled.as_str()})
}

/// An API key as listed: who it stands for, never its secret or hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// The key's public id (the 32 hex digits after `dtk_`).
    pub id: String,
    /// `operator`, `auditor` or `bank`.
    pub role: &'static str,
    /// The bank a bank key stands for.
    pub bank: Option<String>,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

pub fn key(k: &crate::domain::auth::KeyRecord) -> KeyView {
    KeyView {
        id: k.principal.key_id.to_string(),
        role: k.principal.role.as_str(),
        bank: k.principal.bank.as_ref().map(|b| b.as_str().to_string()),
        label: k.label.clone(),
        created_at: time(&k.created_at),
        revoked_at: optional_time(&k.revoked_at),
    }
}

/// A new key: its text is in this answer only and is never shown again.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated {
    #[serde(flatten)]
    pub record: KeyView,
    /// `dtk_<id>_<secret>`: send as `Authorization: Bearer <key>`.
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// An audit log entry: who changed what, when, from where.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: Timestamp,
    /// `api`, `command_line` or `engine`: where the change came from.
    pub origin: &'static str,
    /// The part of the engine that made the change (`window timer`, `demo rail`,
    /// `first start`), for an `engine` origin.
    pub engine_part: Option<String>,
    pub key_id: Option<String>,
    pub role: Option<&'static str>,
    pub bank: Option<String>,
    pub request_id: Option<String>,
    /// `bank_created`, `bank_changed`, `corridor_created`, `corridor_changed`,
    /// `window_closed`, `instruction_confirmed`, `instruction_failed`, `key_created`,
    /// `key_revoked`, `funds_in`, `funds_out`, `screening_entry_added`,
    /// `screening_entry_removed` or `screening_list_imported`.
    pub action: &'static str,
    /// What it was done to: a bank code, corridor, window, instruction or key id, a
    /// screening entry's id, or `import`.
    pub subject: String,
    /// The record before the change, as the API renders it (null for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Value,
    /// The record after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Value,
}

/// An audit log entry. `before` and `after` are the records as this module renders
/// them, stored as JSON by the store (which reads them back as text).
pub fn audit_entry(e: &crate::domain::AuditEntry) -> AuditEntryView {
    // The text comes from a `jsonb` column, so it always parses.
    let record = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    AuditEntryView {
        id: e.id,
        at: time(&e.at),
        origin: e.origin.as_str(),
        engine_part: e.engine_part.clone(),
        key_id: e.key_id.map(|k| k.to_string()),
        role: e.role.map(|r| r.as_str()),
        bank: e.bank.as_ref().map(|b| b.as_str().to_string()),
        request_id: e.request_id.clone(),
        action: e.action.as_str(),
        subject: e.subject.clone(),
        before: record(&e.before),
        after: record(&e.after),
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// An entry of the screening list (the answer of its routes, and the audit log's
/// record of an entry added or removed).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningEntryView {
    /// The entry's id, increasing: the paging cursor.
    pub id: i64,
    /// `sanctions` or `pep`.
    #[schema(example = "sanctions")]
    pub list: &'static str,
    #[schema(example = "Ahmed Al-Rashid")]
    pub name: String,
    /// Other names it is known by; each screened like the name.
    pub aliases: Vec<String>,
    /// ISO 3166 alpha-2 codes the entry is tied to (nationality, residence, seat).
    pub countries: Vec<String>,
    /// The list provider's own reference, unique within its list.
    pub reference: Option<String>,
    pub created_at: Timestamp,
}

pub fn screening_entry(e: &crate::domain::screening::ScreeningEntry) -> ScreeningEntryView {
    ScreeningEntryView {
        id: e.id,
        list: e.list.as_str(),
        name: e.name.clone(),
        aliases: e.aliases.clone(),
        countries: e.countries.clone(),
        reference: e.reference.clone(),
        created_at: time(&e.created_at),
    }
}

/// A page of the screening list, in id order.
#[derive(Serialize, ToSchema)]
pub struct ScreeningEntryPage {
    pub entries: Vec<ScreeningEntryView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// What an import did to the screening list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScreeningImportView {
    /// Entries stored from the file.
    pub added: u64,
    /// Entries deleted before (the whole list with `replace=true`; otherwise 0).
    pub removed: u64,
}

pub fn screening_import(s: &crate::domain::screening::ImportSummary) -> ScreeningImportView {
    ScreeningImportView {
        added: s.added,
        removed: s.removed,
    }
}

/// An import as the audit log records it (its `after`): the answer and whether it
/// replaced the list.
#[derive(Debug, Serialize)]
pub struct ScreeningImportRecord {
    #[serde(flatten)]
    pub summary: ScreeningImportView,
    pub replace: bool,
}

pub fn screening_import_record(
    s: &crate::domain::screening::ImportSummary,
    replace: bool,
) -> ScreeningImportRecord {
    ScreeningImportRecord {
        summary: screening_import(s),
        replace,
    }
}

/// A bank's position in one currency of a window, as its statement gives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementPositionView {
    pub currency: &'static str,
    /// What the bank sent in this currency.
    pub debits: Money,
    /// What it received in this currency.
    pub credits: Money,
    /// `credits − debits`: negative pays, positive receives.
    pub position: Money,
    /// Transfers it sent in this currency.
    pub transfers_sent: i64,
    /// Transfers it received in this currency.
    pub transfers_received: i64,
}

fn statement_position(p: &StatementPosition) -> StatementPositionView {
    StatementPositionView {
        currency: p.currency.as_str(),
        debits: Money::of(p.currency, p.debits),
        credits: Money::of(p.currency, p.credits),
        position: Money::of(p.currency, p.position),
        transfers_sent: p.transfers_sent,
        transfers_received: p.transfers_received,
    }
}

/// A page of a bank's statement of one window: the window, the bank's positions and
/// instructions (on every page) and a page of its transfers.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementView {
    /// The window, as listed.
    pub window: WindowRecordView,
    #[schema(example = "ICICI")]
    pub bank: String,
    /// True while the window is `open` or `closing`: its transfers and positions may
    /// still grow.
    pub provisional: bool,
    /// The bank's transfers in the window (both directions), over all pages.
    pub transfer_count: i64,
    /// Per currency, as the netting recorded them; for a window not netted yet, its
    /// running sums so far.
    pub positions: Vec<StatementPositionView>,
    /// The instructions the bank pays or is paid (none before netting).
    pub instructions: Vec<InstructionView>,
    /// A page of its accepted transfers of the window, both directions, in id order.
    pub transfers: Vec<TransferView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

pub fn statement(
    head: &StatementHead,
    transfers: &[Transfer],
    next_cursor: Option<String>,
) -> StatementView {
    StatementView {
        window: window_record(&head.window),
        bank: head.bank.as_str().to_string(),
        provisional: head.provisional(),
        transfer_count: head.transfer_count(),
        positions: head.positions.iter().map(statement_position).collect(),
        instructions: head.instructions.iter().map(instruction).collect(),
        transfers: transfers.iter().map(transfer).collect(),
        next_cursor,
    }
}

/// The columns of a statement in CSV; each line is one `record`: a `position`, an
/// `instruction` or a `transfer`, and leaves the other records' columns empty.
pub const STATEMENT_CSV_HEADER: &str = "record,window_id,bank,id,created_at,direction,\
    counterparty,currency,amount,counter_currency,counter_amount,fx_rate,status,debits,\
    credits,position,transfers_sent,transfers_received,reference\r\n";

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Free text a client wrote (a reference): a leading `=`, `+`, `-` or `@` would make a
/// spreadsheet read it as a formula, so such text gets a leading `'`.
fn csv_text(out: &mut String, text: &str) {
    if text.starts_with(['=', '+', '-', '@']) {
        csv_field(out, &format!("'{text}"));
    } else {
        csv_field(out, text);
    }
}

/// One CSV line of the statement's columns, from `(column, value)` pairs in order.
fn csv_line(out: &mut String, fields: [&str; 18], reference: Option<&str>) {
    for field in fields {
        csv_field(out, field);
        out.push(',');
    }
    if let Some(text) = reference {
        csv_text(out, text);
    }
    out.push_str("\r\n");
}

/// The header line and the statement's positions and instructions, in CSV.
pub fn statement_csv_head(head: &StatementHead) -> String {
    let mut out = String::from(STATEMENT_CSV_HEADER);
    let window = head.window.id.get().to_string();
    let bank = head.bank.as_str();
    let status = if head.provisional() {
        "provisional"
    } else {
        "final"
    };
    for p in &head.positions {
        let c = p.currency;
        csv_line(
            &mut out,
            [
                "position",
                &window,
                bank,
                "",
                "",
                "",
                "",
                c.as_str(),
                &c.format(p.position),
                "",
                "",
                "",
                status,
                &c.format(p.debits),
                &c.format(p.credits),
                &c.format(p.position),
                &p.transfers_sent.to_string(),
                &p.transfers_received.to_string(),
            ],
            None,
        );
    }
    for i in &head.instructions {
        let pays = i.payer.bank() == Some(&head.bank);
        let counterparty = if pays { &i.payee } else { &i.payer };
        csv_line(
            &mut out,
            [
                "instruction",
                &window,
                bank,
                &i.id.to_string(),
                &timestamp(&i.created_at),
                if pays { "pay" } else { "receive" },
                counterparty.as_str(),
                i.currency.as_str(),
                &i.currency.format(i.amount),
                "",
                "",
                "",
                i.state.as_str(),
                "",
                "",
                "",
                "",
                "",
            ],
            None,
        );
    }
    out
}

/// One transfer of `bank`'s statement in CSV, appended to `out`: `amount` is the
/// bank's own leg (what it sent, or what it received after conversion), the
/// `counter_` columns the other leg.
pub fn statement_csv_transfer(out: &mut String, bank: &BankCode, t: &Transfer) {
    let sent = &t.sender == bank;
    let received = t.converted.map(|c| c.to_string()).unwrap_or_default();
    let sent_amount = t.amount.to_string();
    let (direction, counterparty, currency, amount, counter_currency, counter_amount) = if sent {
        (
            "sent",
            &t.receiver,
            t.amount.currency(),
            &sent_amount,
            t.to_currency,
            &received,
        )
    } else {
        (
            "received",
            &t.sender,
            t.to_currency,
            &received,
            t.amount.currency(),
            &sent_amount,
        )
    };
    csv_line(
        out,
        [
            "transfer",
            &t.window_id()
                .map(|w| w.get().to_string())
                .unwrap_or_default(),
            bank.as_str(),
            &t.id.to_string(),
            &timestamp(&t.created_at),
            direction,
            counterparty.as_str(),
            currency.as_str(),
            amount,
            counter_currency.as_str(),
            counter_amount,
            &t.fx_rate.map(|r| r.to_string()).unwrap_or_default(),
            t.status().as_str(),
            "",
            "",
            "",
            "",
            "",
        ],
        t.reference.as_deref(),
    );
}

/// Milliseconds to the microsecond (`None` when absent).
fn milliseconds(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| (ms * 1000.0).round() / 1000.0)
}

/// Durations over a set of windows, in milliseconds to the microsecond; the figures
/// are null when the set is empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    /// The windows measured.
    pub windows: i64,
    pub mean_ms: Option<f64>,
    /// The median.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

fn latency(l: &LatencyStats) -> LatencyView {
    LatencyView {
        windows: l.windows,
        mean_ms: milliseconds(l.mean_ms),
        p50_ms: milliseconds(l.p50_ms),
        p95_ms: milliseconds(l.p95_ms),
        max_ms: milliseconds(l.max_ms),
    }
}

/// Transfers counted by status (every status, zero included). Statuses are as of now.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub accepted: i64,
    pub netted: i64,
    pub settled: i64,
    pub rejected: i64,
    pub queued: i64,
    pub expired: i64,
    pub cancelled: i64,
    pub held: i64,
}

/// Transfers of one corridor with one status (and, in a bank's summary, one
/// direction).
#[derive(Debug, Serialize, ToSchema)]
pub struct VolumeLineView {
    #[schema(example = "INR-AED")]
    pub corridor: String,
    /// `accepted`, `netted`, `settled` or `rejected`.
    pub status: &'static str,
    pub count: i64,
    /// Sum of the amounts, in the corridor's source currency.
    pub source_amount: Money,
    /// Sum of the converted amounts, in the destination currency; null for
    /// rejections (nothing was converted).
    pub destination_amount: Option<Money>,
    /// In a bank's summary only: `sent` or `received`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub direction: Option<&'static str>,
}

/// Transfers created in the range.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferVolumesView {
    pub count: i64,
    pub by_status: StatusCounts,
    pub by_corridor: Vec<VolumeLineView>,
}

/// An amount in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyAmountView {
    pub currency: &'static str,
    pub amount: Money,
}

/// Rejected transfers with one code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionCodeView {
    /// `limit_exceeded`, `amount_exceeds_corridor_maximum`, …
    pub code: &'static str,
    pub count: i64,
    /// Their amounts summed per (source) currency.
    pub values: Vec<CurrencyAmountView>,
}

/// Rejected transfers created in the range.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionsView {
    pub count: i64,
    /// By code, in code order.
    pub by_code: Vec<RejectionCodeView>,
}

/// The netting of the windows netted in the range.
#[derive(Debug, Serialize, ToSchema)]
pub struct NettingSummaryView {
    /// Windows netted in the range (in a bank's summary, those it had a position in).
    pub windows: i64,
    /// Gross, net and liquidity used per currency summed over those windows, and the
    /// efficiency and liquidity efficiency of the sums (summed gross ÷ summed liquidity
    /// used, not a mean of the windows' ratios); in a bank's summary its own debits as
    /// gross and what it paid in as net and liquidity used.
    pub currencies: Vec<CurrencyNettingView>,
}

/// How long windows waited.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatenciesView {
    /// Netted minus closed, for the windows netted in the range.
    pub window_close: LatencyView,
    /// Settled minus netted, for the windows settled in the range.
    pub settlement: LatencyView,
}

/// Transfers, rejections, netting and window latencies over `[from, to)`, of the hub
/// or of one bank.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    pub from: Timestamp,
    pub to: Timestamp,
    /// `hub`, or the bank's code.
    #[schema(example = "hub")]
    pub scope: String,
    pub transfers: TransferVolumesView,
    pub rejections: RejectionsView,
    pub netting: NettingSummaryView,
    pub latency: LatenciesView,
}

pub fn summary(s: &Summary) -> SummaryView {
    let mut by_status = StatusCounts::default();
    for v in &s.volumes {
        *match v.status {
            TransferStatus::Accepted => &mut by_status.accepted,
            TransferStatus::Netted => &mut by_status.netted,
            TransferStatus::Settled => &mut by_status.settled,
            TransferStatus::Rejected => &mut by_status.rejected,
            TransferStatus::Queued => &mut by_status.queued,
            TransferStatus::Expired => &mut by_status.expired,
            TransferStatus::Cancelled => &mut by_status.cancelled,
            TransferStatus::Held => &mut by_status.held,
        } += v.count;
    }
    let by_corridor = s
        .volumes
        .iter()
        .map(|v| VolumeLineView {
            corridor: v.corridor.to_string(),
            status: v.status.as_str(),
            count: v.count,
            source_amount: Money::of(v.corridor.from, v.source_amount),
            destination_amount: v.destination_amount.map(|d| Money::of(v.corridor.to, d)),
            direction: v.direction.map(|d| d.as_str()),
        })
        .collect();
    let mut codes: Vec<RejectCode> = s.rejections.iter().map(|r| r.code).collect();
    codes.sort_by_key(|c| c.code());
    codes.dedup();
    let by_code = codes
        .iter()
        .map(|code| {
            let lines: Vec<&RejectionLine> =
                s.rejections.iter().filter(|r| r.code == *code).collect();
            RejectionCodeView {
                code: code.code(),
                count: lines.iter().map(|r| r.count).sum(),
                values: lines
                    .iter()
                    .map(|r| CurrencyAmountView {
                        currency: r.currency.as_str(),
                        amount: Money::of(r.currency, r.amount),
                    })
                    .collect(),
            }
        })
        .collect();
    SummaryView {
        from: time(&s.from),
        to: time(&s.to),
        scope: s.bank.as_ref().map_or("hub", |b| b.as_str()).to_string(),
        transfers: TransferVolumesView {
            count: s.volumes.iter().map(|v| v.count).sum(),
            by_status,
            by_corridor,
        },
        rejections: RejectionsView {
            count: s.rejections.iter().map(|r| r.count).sum(),
            by_code,
        },
        netting: NettingSummaryView {
            windows: s.windows_netted,
            currencies: s
                .netting
                .iter()
                .map(|n| CurrencyNettingView {
                    currency: n.currency.as_str(),
                    gross: Money::of(n.currency, n.gross),
                    net: Money::of(n.currency, n.net),
                    efficiency: ratio_text(n.efficiency()),
                    liquidity_used: Money::of(n.currency, n.liquidity_used()),
                    liquidity_efficiency: n.liquidity_efficiency().map(ratio_text),
                })
                .collect(),
        },
        latency: LatenciesView {
            window_close: latency(&s.close_latency),
            settlement: latency(&s.settlement_latency),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One CSV field read back (RFC 4180): unquoted as it is, quoted with `""` for `"`.
    fn read_field(text: &str) -> String {
        match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => text.to_string(),
        }
    }

    proptest! {
        /// Any text a client may store (no control characters) reads back as written,
        /// or with a leading `'` where a spreadsheet would take it for a formula; a
        /// field never spills into the next (every comma, quote and line break is
        /// inside quotes).
        #[test]
        fn csv_text_reads_back_and_never_starts_a_formula(text in "[^\\p{Cc}]{0,40}") {
            let mut out = String::new();
            csv_text(&mut out, &text);
            let read = read_field(&out);
            if text.starts_with(['=', '+', '-', '@']) {
                prop_assert_eq!(read, format!("'{text}"));
            } else {
                prop_assert_eq!(read, text.clone());
            }
            if out.contains([',', '"']) {
                prop_assert!(out.starts_with('"') && out.ends_with('"'));
                prop_assert!(!out[1..out.len() - 1].replace("\"\"", "").contains('"'));
            }
        }
    }
}
