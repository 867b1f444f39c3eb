//! Transfers: the group-commit insert, lookups and the filtered, paged list.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use super::decode::{bank_code, corrupt, currency, window_id};
use super::{Store, StoreError};
use crate::domain::screening::{PartyName, PartyRole, ScreeningList, ScreeningMatch};
use crate::domain::{
    Amount, BankCode, FxRate, IsoIds, Outcome, QueuePriority, RejectCode, Transfer, TransferId,
    TransferStatus, WindowId, WindowState,
};

/// What happened to one record of a batch.
#[derive(Clone, Debug)]
pub enum InsertOutcome {
    Inserted,
    /// The sender had already used this idempotency key: here is the stored transfer.
    Existing(Box<Transfer>),
    /// A change: the row was in the status the change expected and now has the new one.
    Changed,
    /// A change whose row was not in the status it expected (it had moved on): nothing
    /// was written for it.
    Unchanged,
}

/// One record of a group commit: a new transfer to insert, or a change of a stored
/// transfer's status (`was` is the outcome the row must still have; the transfer
/// carries the new one).
#[derive(Clone, Copy, Debug)]
pub struct TransferWrite<'a> {
    pub transfer: &'a Transfer,
    pub was: Option<Outcome>,
}

#[derive(Clone, Debug, Default)]
pub struct TransferFilter {
    pub transaction_id: Option<TransferId>,
    pub sender: Option<BankCode>,
    pub receiver: Option<BankCode>,
    /// Either side.
    pub bank: Option<BankCode>,
    /// Either side too: the bank whose transfers alone the caller may see.
    pub party: Option<BankCode>,
    pub status: Option<TransferStatus>,
    pub window_id: Option<WindowId>,
    /// Only rows after this transfer id (exclusive): the previous page's cursor.
    pub after: Option<TransferId>,
    pub limit: i64,
}

pub struct TransferPage {
    pub transfers: Vec<Transfer>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<TransferId>,
}

/// The columns of a transfer read with its window's state (`t` joined with `w`).
pub(super) const TRANSFER_WITH_WINDOW: &str = "t.id, t.sender_bank, t.receiver_bank, t.amount, \
    t.from_currency, t.converted_amount, t.to_currency, t.fx_rate, t.status, t.reject_code, \
    t.window_id, t.idempotency_key, t.sender_account, t.receiver_account, t.reference, \
    t.created_at, t.queue_priority, t.queued_in, t.status_at, t.return_of, t.end_to_end_id, \
    t.uetr, t.debtor_name, t.debtor_country, t.creditor_name, t.creditor_country, \
    t.screening_entry, t.screening_role, t.screening_score, t.flagged, \
    w.state AS window_state \
    FROM transfers t LEFT JOIN windows w ON w.id = t.window_id";

const TRANSFER_COLUMNS: &str = "id, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, fx_rate, status, reject_code, window_id, \
    idempotency_key, sender_account, receiver_account, reference, created_at, queue_priority, \
    queued_in, status_at, return_of, end_to_end_id, uetr, debtor_name, debtor_country, \
    creditor_name, creditor_country, screening_entry, screening_role, screening_score, flagged";

/// The columns a new transfer is written with, in the order of `COPY_TYPES` and of
/// the arrays each insert takes them from (`NewRows`).
macro_rules! new_transfer_columns {
    () => {
        "id, sender_bank, receiver_bank, amount, \
    from_currency, converted_amount, to_currency, fx_rate, status, reject_code, window_id, \
    idempotency_key, sender_account, receiver_account, reference, created_at, \
    queue_priority, queued_in, return_of, end_to_end_id, uetr, debtor_name, debtor_country, \
    creditor_name, creditor_country, screening_entry, screening_role, screening_score, \
    flagged"
    };
}

/// Answers how many rows went in and which changes took: one row back instead of one
/// per transfer, since a conflict (a reused idempotency key) is rare and looked up
/// separately.
///
/// `inserted` writes the new transfers (`$1`–`$16`, `$18`–`$19`, `$26`–`$28`,
/// `$30`–`$37`); `changed` moves
/// stored rows from the status they must still have to a new one (`$20`–`$25`: a
/// queued transfer released into a window, expired or cancelled; an accepted one
/// cancelled), reading the old row through a self-join so that a cancelled transfer's
/// old window is known. The same statement keeps the windows' running sums (sql/0005)
/// in the rows of the batch's slot (`$17`): accepted transfers inserted or released add
/// their legs, accepted ones cancelled take them off. One statement, so the sums move
/// exactly with the rows — a replay that `DO NOTHING` skips adds nothing, a change
/// whose row moved on changes nothing, and a statement refused or rolled back to its
/// savepoint adds nothing either. Each upsert takes its rows in key order, so that two
/// statements sharing a slot (a batch left running by a restarted writer) wait on
/// each other rather than deadlock.
const INSERT_TRANSFERS: &str = concat!(
    "WITH inserted AS (INSERT INTO transfers (",
    new_transfer_columns!(),
    ") SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[], \
    $6::numeric[], $7::text[], $8::numeric[], $9::text[], $10::text[], $11::int8[], \
    $12::text[], $13::text[], $14::text[], $15::text[], $16::timestamptz[], $18::text[], \
    $19::int8[], $26::uuid[], $27::text[], $28::uuid[], $30::text[], $31::text[], \
    $32::text[], $33::text[], $34::int8[], $35::text[], $36::numeric[], $37::bool[]) \
    ON CONFLICT (sender_bank, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
    RETURNING window_id, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, status), \
    changed AS (UPDATE transfers t SET status = c.status, window_id = c.window_id, \
    status_at = c.at, reject_code = c.reject_code \
    FROM UNNEST($20::uuid[], $21::text[], $22::int8[], $23::text[], $24::int8[], \
    $25::timestamptz[], $29::text[]) AS c(id, was, was_window, status, window_id, at, \
    reject_code), transfers o \
    WHERE t.id = c.id AND o.id = c.id AND t.status = c.was \
    AND t.window_id IS NOT DISTINCT FROM c.was_window \
    RETURNING t.id, o.status AS was, o.window_id AS was_window, t.window_id, t.sender_bank, \
    t.receiver_bank, t.amount, t.from_currency, t.converted_amount, t.to_currency, \
    t.status), \
    legs AS (SELECT window_id, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, 1::int8 AS sign FROM inserted WHERE status = 'accepted' \
    UNION ALL SELECT window_id, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, 1 FROM changed WHERE status = 'accepted' \
    UNION ALL SELECT was_window, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, -1 FROM changed WHERE was = 'accepted'), \
    bank_legs AS (INSERT INTO window_bank_legs AS l (window_id, slot, bank, currency, \
    debits, credits, debit_count, credit_count) \
    SELECT window_id, $17::int2, bank, currency, sum(debit), sum(credit), sum(debit_n), \
    sum(credit_n) FROM (\
    SELECT window_id, sender_bank AS bank, from_currency AS currency, sign * amount AS debit, \
    0::numeric AS credit, sign AS debit_n, 0::int8 AS credit_n FROM legs \
    UNION ALL SELECT window_id, receiver_bank, to_currency, 0, sign * converted_amount, 0, \
    sign FROM legs) sides \
    GROUP BY window_id, bank, currency ORDER BY window_id, bank, currency \
    ON CONFLICT (window_id, slot, bank, currency) DO UPDATE SET \
    debits = l.debits + excluded.debits, credits = l.credits + excluded.credits, \
    debit_count = l.debit_count + excluded.debit_count, \
    credit_count = l.credit_count + excluded.credit_count), \
    corridor_legs AS (INSERT INTO window_corridor_legs AS l (window_id, slot, \
    from_currency, to_currency, source_amount, destination_amount, transfer_count) \
    SELECT window_id, $17::int2, from_currency, to_currency, sum(sign * amount), \
    sum(sign * converted_amount), sum(sign) FROM legs \
    GROUP BY window_id, from_currency, to_currency \
    ORDER BY window_id, from_currency, to_currency \
    ON CONFLICT (window_id, slot, from_currency, to_currency) DO UPDATE SET \
    source_amount = l.source_amount + excluded.source_amount, \
    destination_amount = l.destination_amount + excluded.destination_amount, \
    transfer_count = l.transfer_count + excluded.transfer_count) \
    SELECT (SELECT count(*) FROM inserted), \
    (SELECT coalesce(array_agg(id), '{}') FROM changed)"
);

/// The fast path of a group commit of new transfers only (`Store::insert_transfers`):
/// the rows go in by binary COPY, which writes each row without the statement's
/// per-row work (the arrays taken apart, the conflict check against the
/// idempotency index before each insert, the RETURNING rows kept for the sums).
/// Its columns are `new_transfer_columns!`, its rows `NewRows::row`.
const COPY_TRANSFERS: &str = concat!(
    "COPY transfers (",
    new_transfer_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// The fewest rows a group commit writes by COPY. COPY takes five round trips to the
/// server (begin, copy, its data, the sums, commit) where the statement takes one;
/// below some hundreds of rows the round trips cost more than the rows save, and a
/// light load's small batches would wait longer for their commit (issue 14: with
/// COPY for every batch, the p99 of single submissions at half the engine's rate
/// went from about 12 ms to 39 ms).
const COPY_ROWS_MIN: usize = 256;

/// The types of `COPY_TRANSFERS`' columns, in its order.
const COPY_TYPES: [Type; 29] = [
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::NUMERIC,
    Type::TEXT,
    Type::NUMERIC,
    Type::TEXT,
    Type::NUMERIC,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
    Type::UUID,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::NUMERIC,
    Type::BOOL,
];

/// The upserts of a batch's pre-summed legs (`LegSums`) into the windows' running sums
/// in the batch's slot (`$1`), as common table expressions and a final statement: the
/// body of `ADD_LEGS` and of `INSERT_NEW_TRANSFERS`. Each upsert takes its rows in key
/// order, as `INSERT_TRANSFERS` does.
macro_rules! add_legs {
    () => {
        "bank_legs AS (INSERT INTO window_bank_legs AS l (window_id, \
    slot, bank, currency, debits, credits, debit_count, credit_count) \
    SELECT w, $1::int2, b, c, d, cr, dn, cn FROM UNNEST($2::int8[], $3::text[], $4::text[], \
    $5::numeric[], $6::numeric[], $7::int8[], $8::int8[]) AS x(w, b, c, d, cr, dn, cn) \
    ORDER BY w, b, c \
    ON CONFLICT (window_id, slot, bank, currency) DO UPDATE SET \
    debits = l.debits + excluded.debits, credits = l.credits + excluded.credits, \
    debit_count = l.debit_count + excluded.debit_count, \
    credit_count = l.credit_count + excluded.credit_count) \
    INSERT INTO window_corridor_legs AS l (window_id, slot, from_currency, to_currency, \
    source_amount, destination_amount, transfer_count) \
    SELECT w, $1::int2, f, t, s, d, n FROM UNNEST($9::int8[], $10::text[], $11::text[], \
    $12::numeric[], $13::numeric[], $14::int8[]) AS x(w, f, t, s, d, n) \
    ORDER BY w, f, t \
    ON CONFLICT (window_id, slot, from_currency, to_currency) DO UPDATE SET \
    source_amount = l.source_amount + excluded.source_amount, \
    destination_amount = l.destination_amount + excluded.destination_amount, \
    transfer_count = l.transfer_count + excluded.transfer_count"
    };
}

/// With `COPY_TRANSFERS`, in the same transaction: the batch's accepted transfers
/// added to the windows' running sums in the batch's slot (`$1`), summed beforehand
/// (`LegSums`).
const ADD_LEGS: &str = concat!("WITH ", add_legs!());

/// The fast path of a small group commit of new transfers only
/// (`Store::insert_transfers`): a plain insert of the rows ($15 on, in
/// `COPY_TRANSFERS`' column order) and the accepted ones' legs, summed beforehand, in
/// one statement and one round trip. Without `ON CONFLICT` Postgres does not probe the
/// idempotency index before each row, keeps no `RETURNING` rows and sums nothing:
/// about half the statement's cost per row (docs/PERFORMANCE.md). A used key or a
/// refused value fails the whole statement, which then wrote nothing, and the batch
/// goes through `INSERT_TRANSFERS`, as with COPY.
const INSERT_NEW_TRANSFERS: &str = concat!(
    "WITH inserted AS (INSERT INTO transfers (",
    new_transfer_columns!(),
    ") SELECT * FROM UNNEST($15::uuid[], $16::text[], $17::text[], $18::numeric[], $19::text[], \
    $20::numeric[], $21::text[], $22::numeric[], $23::text[], $24::text[], $25::int8[], \
    $26::text[], $27::text[], $28::text[], $29::text[], $30::timestamptz[], $31::text[], \
    $32::int8[], $33::uuid[], $34::text[], $35::uuid[], $36::text[], $37::text[], \
    $38::text[], $39::text[], $40::int8[], $41::text[], $42::numeric[], $43::bool[])), ",
    add_legs!()
);

/// What a batch's accepted transfers add to their windows' running sums: per window,
/// bank and currency its debits and credits; per window and corridor what the hub
/// takes in and pays out. Exact: `Decimal` sums, as the statement's `numeric` ones.
#[derive(Debug, Default, PartialEq)]
struct LegSums<'a> {
    /// By (window, bank, currency).
    banks: BTreeMap<(i64, &'a str, &'a str), BankLegs>,
    /// By (window, from currency, to currency).
    corridors: BTreeMap<(i64, &'a str, &'a str), CorridorLegs>,
}

/// A bank's legs in one currency of one window: what it sent and received, and how
/// many of each.
#[derive(Debug, Default, PartialEq)]
struct BankLegs {
    debits: Decimal,
    credits: Decimal,
    debit_count: i64,
    credit_count: i64,
}

/// A corridor's legs in one window: what the hub takes in and pays out, and how many.
#[derive(Debug, Default, PartialEq)]
struct CorridorLegs {
    source: Decimal,
    destination: Decimal,
    count: i64,
}

impl<'a> LegSums<'a> {
    /// The legs of the transfers of `batch` stored as accepted into a window.
    fn of(batch: &[&'a Transfer]) -> Self {
        let mut sums = LegSums::default();
        for t in batch {
            let (Outcome::Accepted(window), Some(converted)) = (t.outcome, t.converted) else {
                continue;
            };
            let window = window.get();
            let (from, to) = (t.amount.currency().as_str(), t.to_currency.as_str());
            let debit = sums
                .banks
                .entry((window, t.sender.as_str(), from))
                .or_default();
            debit.debits += t.amount.value();
            debit.debit_count += 1;
            let credit = sums
                .banks
                .entry((window, t.receiver.as_str(), to))
                .or_default();
            credit.credits += converted.value();
            credit.credit_count += 1;
            let corridor = sums.corridors.entry((window, from, to)).or_default();
            corridor.source += t.amount.value();
            corridor.destination += converted.value();
            corridor.count += 1;
        }
        sums
    }
}

/// `LegSums` as the 13 arrays of `ADD_LEGS`' `$2` to `$14`.
struct LegArrays<'a> {
    windows: Vec<i64>,
    banks: Vec<&'a str>,
    currencies: Vec<&'a str>,
    debits: Vec<Decimal>,
    credits: Vec<Decimal>,
    debit_counts: Vec<i64>,
    credit_counts: Vec<i64>,
    corridor_windows: Vec<i64>,
    froms: Vec<&'a str>,
    tos: Vec<&'a str>,
    sources: Vec<Decimal>,
    destinations: Vec<Decimal>,
    counts: Vec<i64>,
}

impl<'a> LegArrays<'a> {
    fn of(sums: &LegSums<'a>) -> Self {
        let (banks, corridors) = (&sums.banks, &sums.corridors);
        LegArrays {
            windows: banks.keys().map(|k| k.0).collect(),
            banks: banks.keys().map(|k| k.1).collect(),
            currencies: banks.keys().map(|k| k.2).collect(),
            debits: banks.values().map(|v| v.debits).collect(),
            credits: banks.values().map(|v| v.credits).collect(),
            debit_counts: banks.values().map(|v| v.debit_count).collect(),
            credit_counts: banks.values().map(|v| v.credit_count).collect(),
            corridor_windows: corridors.keys().map(|k| k.0).collect(),
            froms: corridors.keys().map(|k| k.1).collect(),
            tos: corridors.keys().map(|k| k.2).collect(),
            sources: corridors.values().map(|v| v.source).collect(),
            destinations: corridors.values().map(|v| v.destination).collect(),
            counts: corridors.values().map(|v| v.count).collect(),
        }
    }

    /// `ADD_LEGS`' parameters, `$1` (the slot) first.
    fn params<'s>(&'s self, slot: &'s i16) -> [&'s (dyn ToSql + Sync); 14] {
        [
            slot,
            &self.windows,
            &self.banks,
            &self.currencies,
            &self.debits,
            &self.credits,
            &self.debit_counts,
            &self.credit_counts,
            &self.corridor_windows,
            &self.froms,
            &self.tos,
            &self.sources,
            &self.destinations,
            &self.counts,
        ]
    }
}

/// `NewRows`' arrays in `COPY_TRANSFERS`' column order, each as `&rows.array`
/// followed by what is given after it: nothing for the whole array, `[i]` for row `i`'s
/// value. One list for the statements' parameters and COPY's rows.
macro_rules! in_column_order {
    ($rows:ident $(, $at:tt)?) => {
        [
            &$rows.ids $($at)?,
            &$rows.senders $($at)?,
            &$rows.receivers $($at)?,
            &$rows.amounts $($at)?,
            &$rows.froms $($at)?,
            &$rows.converted $($at)?,
            &$rows.tos $($at)?,
            &$rows.rates $($at)?,
            &$rows.statuses $($at)?,
            &$rows.rejects $($at)?,
            &$rows.windows $($at)?,
            &$rows.keys $($at)?,
            &$rows.sender_accounts $($at)?,
            &$rows.receiver_accounts $($at)?,
            &$rows.references $($at)?,
            &$rows.created $($at)?,
            &$rows.priorities $($at)?,
            &$rows.queued_in $($at)?,
            &$rows.returns_of $($at)?,
            &$rows.end_to_end_ids $($at)?,
            &$rows.uetrs $($at)?,
            &$rows.debtor_names $($at)?,
            &$rows.debtor_countries $($at)?,
            &$rows.creditor_names $($at)?,
            &$rows.creditor_countries $($at)?,
            &$rows.screened_entries $($at)?,
            &$rows.screened_roles $($at)?,
            &$rows.screened_scores $($at)?,
            &$rows.flagged $($at)?,
        ]
    };
}

/// New transfers as the 29 arrays of their columns, in `COPY_TRANSFERS`' order.
struct NewRows<'a> {
    ids: Vec<Uuid>,
    senders: Vec<&'a str>,
    receivers: Vec<&'a str>,
    amounts: Vec<Decimal>,
    froms: Vec<&'a str>,
    converted: Vec<Option<Decimal>>,
    tos: Vec<&'a str>,
    rates: Vec<Option<Decimal>>,
    statuses: Vec<&'a str>,
    rejects: Vec<Option<&'a str>>,
    windows: Vec<Option<i64>>,
    keys: Vec<Option<&'a str>>,
    sender_accounts: Vec<Option<&'a str>>,
    receiver_accounts: Vec<Option<&'a str>>,
    references: Vec<Option<&'a str>>,
    created: Vec<DateTime<Utc>>,
    priorities: Vec<Option<&'a str>>,
    queued_in: Vec<Option<i64>>,
    returns_of: Vec<Option<Uuid>>,
    end_to_end_ids: Vec<Option<&'a str>>,
    uetrs: Vec<Option<Uuid>>,
    debtor_names: Vec<Option<&'a str>>,
    debtor_countries: Vec<Option<&'a str>>,
    creditor_names: Vec<Option<&'a str>>,
    creditor_countries: Vec<Option<&'a str>>,
    screened_entries: Vec<Option<i64>>,
    screened_roles: Vec<Option<&'a str>>,
    screened_scores: Vec<Option<Decimal>>,
    flagged: Vec<bool>,
}

impl<'a> NewRows<'a> {
    fn of(batch: &[&'a Transfer]) -> Self {
        fn column<'a, T>(batch: &[&'a Transfer], f: impl Fn(&'a Transfer) -> T) -> Vec<T> {
            batch.iter().map(|t| f(t)).collect()
        }
        NewRows {
            ids: column(batch, |t| t.id.as_uuid()),
            senders: column(batch, |t| t.sender.as_str()),
            receivers: column(batch, |t| t.receiver.as_str()),
            amounts: column(batch, |t| t.amount.value()),
            froms: column(batch, |t| t.amount.currency().as_str()),
            converted: column(batch, |t| t.converted.map(|c| c.value())),
            tos: column(batch, |t| t.to_currency.as_str()),
            rates: column(batch, |t| t.fx_rate.map(|r| r.value())),
            statuses: column(batch, |t| t.decision().as_str()),
            rejects: column(batch, |t| t.reject_code().map(|r| r.code())),
            windows: column(batch, |t| t.window_id().map(|w| w.get())),
            keys: column(batch, |t| t.idempotency_key.as_deref()),
            sender_accounts: column(batch, |t| t.sender_account.as_deref()),
            receiver_accounts: column(batch, |t| t.receiver_account.as_deref()),
            references: column(batch, |t| t.reference.as_deref()),
            created: column(batch, |t| t.created_at),
            priorities: column(batch, |t| t.queue.map(|p| p.as_str())),
            queued_in: column(batch, |t| t.queued_in.map(|w| w.get())),
            returns_of: column(batch, |t| t.return_of.map(|r| r.as_uuid())),
            end_to_end_ids: column(batch, |t| {
                t.iso.as_ref().and_then(|i| i.end_to_end_id.as_deref())
            }),
            uetrs: column(batch, |t| t.iso.as_ref().map(|i| i.uetr)),
            debtor_names: column(batch, |t| t.debtor.as_ref().map(|p| p.name.as_str())),
            debtor_countries: column(batch, |t| {
                t.debtor.as_ref().and_then(|p| p.country.as_deref())
            }),
            creditor_names: column(batch, |t| t.creditor.as_ref().map(|p| p.name.as_str())),
            creditor_countries: column(batch, |t| {
                t.creditor.as_ref().and_then(|p| p.country.as_deref())
            }),
            screened_entries: column(batch, |t| t.screening.as_ref().map(|m| m.entry_id)),
            screened_roles: column(batch, |t| t.screening.as_ref().map(|m| m.role.as_str())),
            screened_scores: column(batch, |t| t.screening.as_ref().map(|m| m.score)),
            flagged: column(batch, |t| t.flagged),
        }
    }

    /// The arrays in `COPY_TRANSFERS`' column order.
    fn params(&self) -> [&(dyn ToSql + Sync); 29] {
        in_column_order!(self)
    }

    /// Row `i`'s values, in the same order: a row of `COPY_TRANSFERS`.
    fn row(&self, i: usize) -> [&(dyn ToSql + Sync); 29] {
        in_column_order!(self, [i])
    }
}

/// How a group commit's batch went in (`deltran_store_group_commits_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePath {
    /// Binary COPY (`COPY_TRANSFERS`): large batches of new transfers.
    Copy,
    /// One plain insert (`INSERT_NEW_TRANSFERS`): smaller batches of new transfers.
    Insert,
    /// The full statement (`INSERT_TRANSFERS`): status changes, or a batch the fast
    /// paths could not take (a used key, a refused value).
    Statement,
}

impl WritePath {
    pub fn as_str(self) -> &'static str {
        match self {
            WritePath::Copy => "copy",
            WritePath::Insert => "insert",
            WritePath::Statement => "statement",
        }
    }
}

/// Why the COPY path of a group commit did not commit its batch.
enum CopyFailed {
    /// Before the commit was asked for: nothing of the batch is written, and the
    /// statement may take it (it tells a used idempotency key from a refused row).
    Before(tokio_postgres::Error),
    /// At the commit: the batch's fate is unknown.
    AtCommit(tokio_postgres::Error),
}

/// Which rows of the windows' running sums a batch adds to (sql/0005). The store
/// writer gives each batch in flight a slot no other batch in flight holds, so that
/// batches committing at once never wait on each other's row locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SumSlot(i16);

impl SumSlot {
    /// Slot `n`; the writer's slots are below `batches_in_flight_max` (at most 64).
    pub fn new(n: usize) -> SumSlot {
        SumSlot(i16::try_from(n).expect("a slot number fits a SMALLINT"))
    }
}

pub(super) fn transfer_from_row(row: &Row) -> Result<Transfer, StoreError> {
    let from = currency(row.get("from_currency"))?;
    let to = currency(row.get("to_currency"))?;
    let status: &str = row.get("status");
    let outcome = match TransferStatus::parse(status) {
        Some(TransferStatus::Accepted) => {
            let id: i64 = row.get("window_id");
            Outcome::Accepted(window_id(id)?)
        }
        Some(TransferStatus::Rejected) => {
            let code: &str = row.get("reject_code");
            Outcome::Rejected(RejectCode::from_code(code).ok_or_else(|| corrupt("reject", code))?)
        }
        Some(TransferStatus::Queued) => Outcome::Queued,
        Some(TransferStatus::Expired) => Outcome::Expired,
        Some(TransferStatus::Cancelled) => Outcome::Cancelled,
        Some(TransferStatus::Held) => Outcome::Held,
        _ => return Err(corrupt("transfer status", status)),
    };
    let queue = match row.get::<_, Option<&str>>("queue_priority") {
        Some(text) => {
            Some(QueuePriority::parse(text).ok_or_else(|| corrupt("queue priority", text))?)
        }
        None => None,
    };
    let queued_in = row
        .get::<_, Option<i64>>("queued_in")
        .map(window_id)
        .transpose()?;
    let converted: Option<Decimal> = row.get("converted_amount");
    let rate: Option<Decimal> = row.get("fx_rate");
    Ok(Transfer {
        id: TransferId::from_uuid(row.get("id")),
        sender: bank_code(row.get("sender_bank"))?,
        receiver: bank_code(row.get("receiver_bank"))?,
        amount: Amount::from_stored(row.get("amount"), from),
        to_currency: to,
        fx_rate: rate.map(FxRate::from_stored),
        converted: converted.map(|c| Amount::from_stored(c, to)),
        outcome,
        sender_account: row.get("sender_account"),
        receiver_account: row.get("receiver_account"),
        reference: row.get("reference"),
        idempotency_key: row.get("idempotency_key"),
        created_at: row.get("created_at"),
        queue,
        queued_in,
        status_at: row.get("status_at"),
        window_state: row
            .try_get::<_, Option<&str>>("window_state")
            .ok()
            .flatten()
            .and_then(WindowState::parse),
        return_of: row
            .get::<_, Option<Uuid>>("return_of")
            .map(TransferId::from_uuid),
        returns: None,
        debtor: party(row, "debtor_name", "debtor_country"),
        creditor: party(row, "creditor_name", "creditor_country"),
        flagged: row.get("flagged"),
        screening: match row.get::<_, Option<i64>>("screening_entry") {
            Some(entry_id) => {
                let role: &str = row.get("screening_role");
                Some(ScreeningMatch {
                    entry_id,
                    // The list is the entry's; it is read with the entry when needed.
                    list: ScreeningList::Sanctions,
                    role: PartyRole::parse(role).ok_or_else(|| corrupt("screening role", role))?,
                    matched: String::new(),
                    score: row.get("screening_score"),
                })
            }
            None => None,
        },
        iso: row.get::<_, Option<Uuid>>("uetr").map(|uetr| IsoIds {
            end_to_end_id: row.get("end_to_end_id"),
            uetr,
        }),
    })
}

fn party(row: &Row, name: &str, country: &str) -> Option<PartyName> {
    row.get::<_, Option<String>>(name).map(|name| PartyName {
        name,
        country: row.get(country),
    })
}

/// A transaction in which parts of a batch are inserted one statement each, every
/// statement behind a savepoint: a part the database refuses is rolled back alone and
/// the transaction goes on. `commit` makes every part that went in durable at once.
///
/// Dropped without `commit` (a failure, or the writer's work cancelled by a restart),
/// its connection leaves the pool and closes, so Postgres rolls the transaction back
/// and the connection never serves anyone mid-transaction.
pub struct TransferParts {
    client: Option<deadpool_postgres::Client>,
    slot: SumSlot,
}

impl TransferParts {
    /// Inserts `part` as `Store::insert_transfers` would, inside the transaction. An
    /// error leaves nothing of `part` written and the transaction usable, unless the
    /// error is the rollback's own (the caller then stops).
    pub async fn insert(
        &mut self,
        part: &[TransferWrite<'_>],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let client = self.client.as_ref().expect("open until commit");
        client.batch_execute("SAVEPOINT part").await?;
        match Store::insert_transfers_on(client, part, self.slot).await {
            Ok(outcomes) => {
                client.batch_execute("RELEASE SAVEPOINT part").await?;
                Ok(outcomes)
            }
            Err(refused) => {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT part; RELEASE SAVEPOINT part")
                    .await?;
                Err(refused)
            }
        }
    }

    /// Commits every part that went in. An error leaves their fate unknown.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let client = self.client.take().expect("open until commit");
        match client.batch_execute("COMMIT").await {
            // The connection goes back to the pool, outside any transaction.
            Ok(()) => Ok(()),
            Err(e) => {
                drop(deadpool_postgres::Object::take(client));
                Err(e.into())
            }
        }
    }
}

impl Drop for TransferParts {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Off the pool and closed: Postgres rolls back what was not committed.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Store {
    /// Writes a batch of decided transfers, adding the accepted ones to their windows'
    /// sums in `slot`'s rows, and says how (`WritePath`). A row whose idempotency key
    /// the sender already used is not written; its outcome carries the stored one.
    ///
    /// A batch of new transfers only goes in by a fast path first: binary COPY from
    /// `COPY_ROWS_MIN` rows (`COPY_TRANSFERS`, with `ADD_LEGS` in the same
    /// transaction), one plain insert below (`INSERT_NEW_TRANSFERS`). Either writes
    /// all of its rows or none: a row the table refuses — a key the sender used
    /// before, found by the unique index whether it was used a second or a restart
    /// ago, or data the table's checks refuse — leaves nothing written, and the batch
    /// goes through the statement (`INSERT_TRANSFERS`), which tells those apart row by
    /// row. So idempotency stays exactly the index's, and a replay costs its batch the
    /// fast path, nothing more.
    pub async fn insert_transfers(
        &self,
        batch: &[TransferWrite<'_>],
        slot: SumSlot,
    ) -> Result<(Vec<InsertOutcome>, WritePath), StoreError> {
        let mut client = self.client().await?;
        if batch.iter().all(|w| w.was.is_none()) {
            let transfers: Vec<&Transfer> = batch.iter().map(|w| w.transfer).collect();
            let inserted = || vec![InsertOutcome::Inserted; batch.len()];
            if batch.len() >= COPY_ROWS_MIN {
                match Self::copy_transfers(&mut client, &transfers, slot).await {
                    Ok(()) => return Ok((inserted(), WritePath::Copy)),
                    Err(CopyFailed::AtCommit(e)) => return Err(e.into()),
                    // Rolled back: the statement below takes the batch.
                    Err(CopyFailed::Before(refused)) => {
                        let error = crate::telemetry::error_chain(&refused);
                        tracing::debug!(%error, "COPY did not take the batch; the statement does");
                    }
                }
            } else {
                match Self::insert_new_transfers(&client, &transfers, slot).await {
                    Ok(()) => return Ok((inserted(), WritePath::Insert)),
                    // Refused by the database: the statement failed whole, nothing of
                    // it was written, and the statement below takes the batch.
                    Err(refused) if refused.as_db_error().is_some() => {
                        let error = crate::telemetry::error_chain(&refused);
                        tracing::debug!(%error, "the insert did not take the batch; the statement does");
                    }
                    // The connection failed: the batch's fate is unknown.
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let outcomes = Self::insert_transfers_on(&client, batch, slot).await?;
        Ok((outcomes, WritePath::Statement))
    }

    /// Writes new transfers and adds the accepted ones to their windows' sums in
    /// `slot`'s rows, in one statement (`INSERT_NEW_TRANSFERS`).
    async fn insert_new_transfers(
        client: &deadpool_postgres::Client,
        batch: &[&Transfer],
        slot: SumSlot,
    ) -> Result<(), tokio_postgres::Error> {
        let statement = client.prepare_cached(INSERT_NEW_TRANSFERS).await?;
        let sums = LegSums::of(batch);
        let legs = LegArrays::of(&sums);
        let rows = NewRows::of(batch);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(43);
        params.extend(legs.params(&slot.0));
        params.extend(rows.params());
        client.execute(&statement, &params).await?;
        Ok(())
    }

    /// Writes new transfers by binary COPY and adds the accepted ones to their
    /// windows' sums in `slot`'s rows, in one transaction.
    async fn copy_transfers(
        client: &mut deadpool_postgres::Client,
        batch: &[&Transfer],
        slot: SumSlot,
    ) -> Result<(), CopyFailed> {
        let tx = client.transaction().await.map_err(CopyFailed::Before)?;
        let copy = tx
            .prepare_cached(COPY_TRANSFERS)
            .await
            .map_err(CopyFailed::Before)?;
        let sink = tx.copy_in(&copy).await.map_err(CopyFailed::Before)?;
        let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
        futures_util::pin_mut!(writer);
        // Each row from the same column arrays as the statements' parameters.
        let rows = NewRows::of(batch);
        for i in 0..batch.len() {
            writer
                .as_mut()
                .write(&rows.row(i))
                .await
                .map_err(CopyFailed::Before)?;
        }
        writer.finish().await.map_err(CopyFailed::Before)?;
        let sums = LegSums::of(batch);
        if !sums.banks.is_empty() {
            let add = tx
                .prepare_cached(ADD_LEGS)
                .await
                .map_err(CopyFailed::Before)?;
            let legs = LegArrays::of(&sums);
            tx.execute(&add, &legs.params(&slot.0))
                .await
                .map_err(CopyFailed::Before)?;
        }
        tx.commit().await.map_err(CopyFailed::AtCommit)
    }

    /// Opens a transaction in which a batch is written part by part (`TransferParts`):
    /// for a batch the database refused, so that the transfers it refuses are found
    /// while the others go in together, with one commit.
    pub async fn begin_transfer_parts(&self, slot: SumSlot) -> Result<TransferParts, StoreError> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await?;
        Ok(TransferParts {
            client: Some(client),
            slot,
        })
    }

    /// The group-commit insert on `client`: a pooled connection, or one in a
    /// transaction.
    async fn insert_transfers_on(
        client: &deadpool_postgres::Client,
        writes: &[TransferWrite<'_>],
        slot: SumSlot,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let statement = client.prepare_cached(INSERT_TRANSFERS).await?;
        let batch: Vec<&Transfer> = writes
            .iter()
            .filter(|w| w.was.is_none())
            .map(|w| w.transfer)
            .collect();
        let changes: Vec<(&Transfer, Outcome)> = writes
            .iter()
            .filter_map(|w| w.was.map(|was| (w.transfer, was)))
            .collect();
        let rows = NewRows::of(&batch);
        let change_ids: Vec<Uuid> = changes.iter().map(|(t, _)| t.id.as_uuid()).collect();
        let was: Vec<&str> = changes
            .iter()
            .map(|(_, was)| was.status().as_str())
            .collect();
        let was_windows: Vec<Option<i64>> = changes
            .iter()
            .map(|(_, was)| was.window().map(|w| w.get()))
            .collect();
        let new_statuses: Vec<&str> = changes.iter().map(|(t, _)| t.decision().as_str()).collect();
        let new_windows: Vec<Option<i64>> = changes
            .iter()
            .map(|(t, _)| t.window_id().map(|w| w.get()))
            .collect();
        let changed_at: Vec<DateTime<Utc>> = changes
            .iter()
            .map(|(t, _)| t.status_at.unwrap_or(t.created_at))
            .collect();
        let change_rejects: Vec<Option<&str>> = changes
            .iter()
            .map(|(t, _)| t.reject_code().map(|r| r.code()))
            .collect();
        // The new rows' columns are $1 to $16, $18, $19, $26 to $28 and $30 to $37, in
        // `COPY_TRANSFERS`' order; the slot is $17, the changes $20 to $25 and $29.
        let [ids, senders, receivers, amounts, froms, converted, tos, rates, statuses, rejects, windows, keys, sender_accounts, receiver_accounts, references, created, priorities, queued_in, returns_of, end_to_end_ids, uetrs, debtor_names, debtor_countries, creditor_names, creditor_countries, screened_entries, screened_roles, screened_scores, flagged] =
            rows.params();
        let params: [&(dyn ToSql + Sync); 37] = [
            ids,
            senders,
            receivers,
            amounts,
            froms,
            converted,
            tos,
            rates,
            statuses,
            rejects,
            windows,
            keys,
            sender_accounts,
            receiver_accounts,
            references,
            created,
            &slot.0,
            priorities,
            queued_in,
            &change_ids,
            &was,
            &was_windows,
            &new_statuses,
            &new_windows,
            &changed_at,
            returns_of,
            end_to_end_ids,
            uetrs,
            &change_rejects,
            debtor_names,
            debtor_countries,
            creditor_names,
            creditor_countries,
            screened_entries,
            screened_roles,
            screened_scores,
            flagged,
        ];
        let row = client.query_one(&statement, &params).await?;
        let inserted_count: i64 = row.get(0);
        let changed: HashSet<Uuid> = row.get::<_, Vec<Uuid>>(1).into_iter().collect();
        let change_outcome = |t: &Transfer| {
            if changed.contains(&t.id.as_uuid()) {
                InsertOutcome::Changed
            } else {
                InsertOutcome::Unchanged
            }
        };
        if inserted_count as usize == batch.len() {
            return Ok(writes
                .iter()
                .map(|w| match w.was {
                    None => InsertOutcome::Inserted,
                    Some(_) => change_outcome(w.transfer),
                })
                .collect());
        }
        // The statement went in; which of our ids are in the table now?
        let inserted: HashSet<Uuid> = client
            .query("SELECT id FROM transfers WHERE id = ANY($1)", &[&rows.ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Some keys were used before (or twice in this batch): read what they hold.
        let conflicted: Vec<&Transfer> = batch
            .iter()
            .copied()
            .filter(|t| !inserted.contains(&t.id.as_uuid()))
            .collect();
        let banks: Vec<&str> = conflicted.iter().map(|t| t.sender.as_str()).collect();
        let keys: Vec<&str> = conflicted
            .iter()
            .map(|t| t.idempotency_key.as_deref().unwrap_or(""))
            .collect();
        // With its window's state: a replay answers the transfer as it stands now
        // (netted, settled).
        let sql = format!(
            "SELECT {TRANSFER_WITH_WINDOW} \
             JOIN UNNEST($1::text[], $2::text[]) AS k(bank, key) \
             ON t.sender_bank = k.bank AND t.idempotency_key = k.key"
        );
        let mut existing = HashMap::new();
        for row in client.query(&sql, &[&banks, &keys]).await? {
            let transfer = transfer_from_row(&row)?;
            let key = (
                transfer.sender.clone(),
                transfer.idempotency_key.clone().unwrap_or_default(),
            );
            existing.insert(key, transfer);
        }
        writes
            .iter()
            .map(|w| {
                let t = w.transfer;
                if w.was.is_some() {
                    return Ok(change_outcome(t));
                }
                if inserted.contains(&t.id.as_uuid()) {
                    return Ok(InsertOutcome::Inserted);
                }
                let key = (
                    t.sender.clone(),
                    t.idempotency_key.clone().unwrap_or_default(),
                );
                existing
                    .get(&key)
                    .cloned()
                    .map(|t| InsertOutcome::Existing(Box::new(t)))
                    // Neither inserted nor a reused key: the id itself was taken, which
                    // a UUIDv7 made here cannot be unless the table was changed by hand.
                    .ok_or_else(|| corrupt("transaction id already stored", &t.id.to_string()))
            })
            .collect()
    }

    /// The banks' queued transfers (through the partial index on queued rows).
    pub async fn queued_transfers(
        &self,
        banks: &[BankCode],
    ) -> Result<HashMap<BankCode, Vec<Transfer>>, StoreError> {
        let client = self.client().await?;
        let codes: Vec<&str> = banks.iter().map(|b| b.as_str()).collect();
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers \
              WHERE status = 'queued' AND sender_bank = ANY($1) ORDER BY sender_bank, id"
        );
        let mut queued: HashMap<BankCode, Vec<Transfer>> = HashMap::new();
        for row in client.query(&sql, &[&codes]).await? {
            let transfer = transfer_from_row(&row)?;
            queued
                .entry(transfer.sender.clone())
                .or_default()
                .push(transfer);
        }
        Ok(queued)
    }

    /// One transfer with its window's state and the ids of its returns.
    pub async fn transfer(&self, id: TransferId) -> Result<Transfer, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {TRANSFER_WITH_WINDOW} WHERE t.id = $1");
        let statement = client.prepare_cached(&sql).await?;
        let row = client
            .query_opt(&statement, &[&id.as_uuid()])
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut transfer = transfer_from_row(&row)?;
        let returns = client
            .query(
                "SELECT id FROM transfers WHERE return_of = $1 ORDER BY id",
                &[&id.as_uuid()],
            )
            .await?;
        transfer.returns = Some(
            returns
                .iter()
                .map(|r| TransferId::from_uuid(r.get(0)))
                .collect(),
        );
        Ok(transfer)
    }

    /// One page of transfers in id order, which is creation order (UUIDv7).
    pub async fn transfers(&self, filter: &TransferFilter) -> Result<TransferPage, StoreError> {
        let client = self.client().await?;
        let mut clauses: Vec<String> = vec!["TRUE".to_string()];
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        // Binds `value` as the next parameter and adds `clause` (if any) with every `?`
        // naming it; answers the parameter's number.
        let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            if !clause.is_empty() {
                clauses.push(clause.replace('?', &format!("${}", params.len())));
            }
            params.len()
        };
        if let Some(id) = filter.transaction_id {
            push("t.id = ?", Box::new(id.as_uuid()));
        }
        if let Some(bank) = &filter.sender {
            push("t.sender_bank = ?", Box::new(bank.as_str().to_string()));
        }
        if let Some(bank) = &filter.receiver {
            push("t.receiver_bank = ?", Box::new(bank.as_str().to_string()));
        }
        if let Some(bank) = &filter.bank {
            push(
                "(t.sender_bank = ? OR t.receiver_bank = ?)",
                Box::new(bank.as_str().to_string()),
            );
        }
        if let Some(bank) = &filter.party {
            push(
                "(t.sender_bank = ? OR t.receiver_bank = ?)",
                Box::new(bank.as_str().to_string()),
            );
        }
        if let Some(window) = filter.window_id {
            push("t.window_id = ?", Box::new(window.get()));
        }
        if let Some(after) = filter.after {
            push("t.id > ?", Box::new(after.as_uuid()));
        }
        let limit = filter.limit;
        let limit_param = push("", Box::new(limit + 1));
        // The lifecycle status is the transfer's decision and its window's state.
        if let Some(status) = filter.status {
            clauses.push(
                match status {
                    TransferStatus::Rejected => "t.status = 'rejected'",
                    TransferStatus::Netted => "w.state IN ('netted', 'settlement_failed')",
                    TransferStatus::Settled => "w.state = 'settled'",
                    TransferStatus::Accepted => {
                        "t.status = 'accepted' AND w.state IN ('open', 'closing')"
                    }
                    TransferStatus::Queued => "t.status = 'queued'",
                    TransferStatus::Expired => "t.status = 'expired'",
                    TransferStatus::Cancelled => "t.status = 'cancelled'",
                    TransferStatus::Held => "t.status = 'held'",
                }
                .to_string(),
            );
        }
        let sql = format!(
            "SELECT {TRANSFER_WITH_WINDOW} WHERE {} ORDER BY t.id LIMIT ${limit_param}",
            clauses.join(" AND ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&sql, &refs).await?;
        let more = rows.len() as i64 > limit;
        let mut transfers = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            transfers.push(transfer_from_row(row)?);
        }
        let next_cursor = if more {
            transfers.last().map(|t| t.id)
        } else {
            None
        };
        Ok(TransferPage {
            transfers,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, FxRate};

    /// Each insert takes the new rows' columns (`new_transfer_columns!`) from arrays
    /// of their types (`COPY_TYPES`), in order: the statement from its own parameter
    /// numbers, the plain insert from `$15` on, after `ADD_LEGS`' 14 parameters.
    #[test]
    fn every_insert_takes_each_column_from_an_array_of_its_type() {
        let unnested = |text: &str| -> Vec<(u32, String)> {
            let from = "SELECT * FROM UNNEST(";
            let start = text.find(from).expect("the arrays") + from.len();
            let end = start + text[start..].find(')').expect("their end");
            text[start..end]
                .split(',')
                .map(|p| {
                    let (number, cast) = p.trim().trim_start_matches('$').split_once("::").unwrap();
                    (number.parse().unwrap(), cast.to_string())
                })
                .collect()
        };
        let columns = new_transfer_columns!().split(',').count();
        assert_eq!(columns, COPY_TYPES.len());
        let types: Vec<String> = COPY_TYPES
            .iter()
            .map(|t| format!("{}[]", t.name()))
            .collect();
        let statement = unnested(INSERT_TRANSFERS);
        let plain = unnested(INSERT_NEW_TRANSFERS);
        for arrays in [&statement, &plain] {
            let casts: Vec<&String> = arrays.iter().map(|(_, cast)| cast).collect();
            assert_eq!(casts, types.iter().collect::<Vec<_>>());
        }
        let numbers: Vec<u32> = plain.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (15..15 + columns as u32).collect::<Vec<_>>());
        // `NewRows::params` hands them in that order; the statement places them.
        let placed: Vec<u32> = statement.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            placed,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 26, 27, 28, 30, 31,
                32, 33, 34, 35, 36, 37
            ]
        );
    }

    fn transfer(sender: &str, receiver: &str, amount: &str, outcome: Outcome) -> Transfer {
        let inr = Currency::parse("INR").unwrap();
        let aed = Currency::parse("AED").unwrap();
        let amount = Amount::parse(amount, inr).unwrap();
        let rate = FxRate::parse("0.044").unwrap();
        Transfer {
            fx_rate: Some(rate),
            converted: Some(crate::domain::convert(amount, rate, aed)),
            ..Transfer::for_test(sender, receiver, amount, aed, outcome)
        }
    }

    #[test]
    fn the_sums_hold_the_accepted_transfers_legs_only() {
        let w1 = Outcome::Accepted(WindowId::new(1).unwrap());
        let w2 = Outcome::Accepted(WindowId::new(2).unwrap());
        let batch = [
            transfer("ICICI", "ENBD", "100.50", w1),
            transfer("ICICI", "ENBD", "200", w1),
            transfer("HDFC", "ENBD", "1000", w1),
            transfer("ICICI", "ENBD", "7", w2),
            transfer(
                "ICICI",
                "ENBD",
                "5000",
                Outcome::Rejected(RejectCode::LimitExceeded),
            ),
            transfer("ICICI", "ENBD", "5000", Outcome::Queued),
        ];
        let refs: Vec<&Transfer> = batch.iter().collect();
        let sums = LegSums::of(&refs);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let bank = |debits, credits, debit_count, credit_count| BankLegs {
            debits,
            credits,
            debit_count,
            credit_count,
        };
        assert_eq!(
            sums.banks.get(&(1, "ICICI", "INR")),
            Some(&bank(d("300.50"), d("0"), 2, 0))
        );
        assert_eq!(
            sums.banks.get(&(1, "ENBD", "AED")),
            Some(&bank(d("0"), d("57.22"), 0, 3))
        );
        assert_eq!(
            sums.banks.get(&(2, "ICICI", "INR")),
            Some(&bank(d("7"), d("0"), 1, 0))
        );
        assert_eq!(sums.banks.len(), 5);
        assert_eq!(
            sums.corridors.get(&(1, "INR", "AED")),
            Some(&CorridorLegs {
                source: d("1300.50"),
                destination: d("57.22"),
                count: 3
            })
        );
        assert_eq!(sums.corridors.len(), 2);
    }
}
