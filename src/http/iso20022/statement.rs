//! A bank's statement of one window as ISO 20022 camt.053 (bank-to-customer
//! statement): one `Stmt` per currency of the bank's clearing account at the hub,
//! opening at zero, an entry per transfer (sent: debit; received: credit) and per
//! settlement instruction (paid in: credit; paid out: debit), closing at its position
//! plus what settlement booked — zero once the window is settled.

use std::collections::BTreeSet;
use std::fmt::Write;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::IntoParams;

use super::xml::escape;
use crate::domain::report::StatementHead;
use crate::domain::{
    BankCode, Bic, Currency, InstructionRecord, InstructionState, Party, Transfer, TransferId,
    WindowId,
};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::reports::{bank_code, require_registered};
use crate::http::{not_found_as, page_limit, AppState};

/// The statement's version: the one whose schema the tests validate against.
pub const STATEMENT: &str = "camt.053.001.08";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Camt053Query {
    /// The window the statement covers (or give `from` and `to`).
    #[param(value_type = Option<i64>, minimum = 1)]
    window_id: Option<String>,
    /// With `to`, instead of `window_id`: every window closed in `[from, to)` (RFC 3339
    /// times, at most 31 days apart), one `Stmt` per window and currency, unpaged.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Transfers per page: 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's cursor (`X-Next-Cursor`, also in `GrpHdr/AddtlInf`).
    cursor: Option<String>,
}

/// A bank's statement of a window as camt.053.
///
/// `GET /api/v1/banks/{code}/statements/camt.053?window_id=`: a camt.053.001.08, one
/// `Stmt` per currency, the transfers paged (`limit`, `cursor`; `GrpHdr/MsgPgntn`
/// numbers the pages and says which is last; the balances and the settlement
/// entries are on every page). A bank key reads its own only.
#[utoipa::path(get, path = "/api/v1/banks/{code}/statements/camt.053", operation_id = "bank_statement_camt053", tag = "iso20022",
    params(
        ("code" = String, Path, pattern = "^[A-Z0-9]{2,11}$", description = "Bank code", example = "ICICI"),
        Camt053Query,
    ),
    responses(
        (status = 200, description = "A camt.053.001.08 page", body = String, content_type = "application/xml",
            headers(("X-Next-Cursor" = String, description = "The next page's cursor; absent on the last page"))),
        (status = 400, description = "Problem code: `query_invalid` (window_id missing, limit, cursor)"),
        (status = 404, description = "Problem code: `not_found` (the window, an unregistered bank, or another bank's statement to a bank key)"),
        (status = 422, description = "Problem codes: `window_id_invalid`, `bank_code_invalid`"),
    ))]
pub async fn camt053(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let bank = bank_code(&path, "code")?;
    let query = web::Query::<Camt053Query>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?
        .into_inner();
    if query.from.is_some() || query.to.is_some() {
        caller.require_sees(&bank, || format!("bank {bank}"))?;
        require_registered(&state, &bank)?;
        return range_statement(&state, &bank, &query).await;
    }
    let window = query.window_id.as_deref().ok_or_else(|| {
        ApiError::QueryInvalid(
            "window_id names the window to state (or from and to a range)".into(),
        )
    })?;
    let window = WindowId::parse(window).map_err(|error| ApiError::Input {
        field: "window_id",
        error,
    })?;
    caller.require_sees(&bank, || format!("bank {bank}"))?;
    require_registered(&state, &bank)?;
    let limit = page_limit(query.limit.as_deref(), &state)?;
    let (page, after) = match query.cursor.as_deref() {
        None => (1, None),
        Some(cursor) => parse_cursor(cursor)
            .ok_or_else(|| ApiError::QueryInvalid("cursor is not one this API gave".into()))?,
    };
    let (head, transfers, record) = futures_util::future::join3(
        state.store.statement_head(window, &bank),
        state
            .store
            .statement_transfers(window, &bank, after, None, limit + 1),
        state.store.bank(&bank),
    )
    .await;
    let head = head.map_err(not_found_as(format!("window {window}")))?;
    let mut transfers = transfers?;
    let more = transfers.len() as i64 > limit;
    transfers.truncate(limit as usize);
    let next = more
        .then(|| transfers.last().map(|t| format!("p{}.{}", page + 1, t.id)))
        .flatten();
    let page = Page {
        number: page,
        last: next.is_none(),
        next: next.clone(),
    };
    let xml = statement(&head, record?.bic.as_ref(), &transfers, &page, Utc::now());
    let mut response = HttpResponse::Ok();
    response.content_type("application/xml; charset=utf-8");
    if let Some(next) = next {
        response.insert_header(("X-Next-Cursor", next));
    }
    Ok(response.body(xml))
}

/// The longest range a statement covers.
const RANGE_DAYS_MAX: i64 = 31;
/// The most windows a range statement covers.
const RANGE_WINDOWS_MAX: i64 = 1000;

/// Every window closed in the range, whole: refused when they hold more transfers
/// of the bank than a report may read (`--report-transfers-max`), or more windows
/// than `RANGE_WINDOWS_MAX` — state those window by window, paged.
async fn range_statement(
    state: &AppState,
    bank: &BankCode,
    query: &Camt053Query,
) -> Result<HttpResponse, ApiError> {
    if query.window_id.is_some() || query.cursor.is_some() || query.limit.is_some() {
        return Err(ApiError::QueryInvalid(
            "a range statement takes from and to only".into(),
        ));
    }
    let time = |text: Option<&str>, name: &str| {
        text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                ApiError::QueryInvalid(format!("{name} is an RFC 3339 time (a '+' is sent as %2B)"))
            })
    };
    let from = time(query.from.as_deref(), "from")?;
    let to = time(query.to.as_deref(), "to")?;
    if from >= to {
        return Err(ApiError::QueryInvalid("from must be before to".into()));
    }
    if to - from > chrono::Duration::days(RANGE_DAYS_MAX) {
        return Err(ApiError::RangeTooLarge(format!(
            "a range statement covers at most {RANGE_DAYS_MAX} days"
        )));
    }
    let windows = state
        .store
        .windows_closed_between(from, to, RANGE_WINDOWS_MAX + 1)
        .await?;
    if windows.len() as i64 > RANGE_WINDOWS_MAX {
        return Err(ApiError::RangeTooLarge(format!(
            "more than {RANGE_WINDOWS_MAX} windows closed in the range; state them by window_id"
        )));
    }
    let budget = state.limits.report_transfers_max;
    let mut parts = Vec::with_capacity(windows.len());
    let mut read = 0i64;
    for window in windows {
        let head = state.store.statement_head(window, bank).await?;
        let transfers = state
            .store
            .statement_transfers(window, bank, None, None, budget - read + 1)
            .await?;
        read += transfers.len() as i64;
        if read > budget {
            return Err(ApiError::RangeTooLarge(format!(
                "the range holds more than {budget} of the bank's transfers \
                 (--report-transfers-max); state it by window_id, paged"
            )));
        }
        parts.push((head, transfers));
    }
    let record = state.store.bank(bank).await?;
    let page = Page {
        number: 1,
        last: true,
        next: None,
    };
    let id = format!("R{}-{}", from.format("%Y%m%d"), bank);
    let xml = document(&id, &page, Utc::now(), |out, now| {
        for (head, transfers) in &parts {
            stmts(out, head, record.bic.as_ref(), transfers, now);
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

/// `p<page>.<transfer id>`: the next page's number and the last transfer before it.
fn parse_cursor(cursor: &str) -> Option<(u32, Option<TransferId>)> {
    let (page, id) = cursor.strip_prefix('p')?.split_once('.')?;
    let page: u32 = page.parse().ok().filter(|p| (2..=99_999).contains(p))?;
    Some((page, Some(TransferId::parse(id).ok()?)))
}

/// Which page this is of the statement.
pub struct Page {
    pub number: u32,
    pub last: bool,
    pub next: Option<String>,
}

/// Writes the camt.053 page: per currency, the balances and the settlement entries,
/// and the page's transfers of that currency.
pub fn statement(
    head: &StatementHead,
    bic: Option<&Bic>,
    transfers: &[Transfer],
    page: &Page,
    now: DateTime<Utc>,
) -> String {
    let id = format!("W{}-{}-P{}", head.window.id.get(), head.bank, page.number);
    document(&id, page, now, |out, now| {
        stmts(out, head, bic, transfers, now)
    })
}

/// A camt.053 document: its group header (`MsgId` `id`, the page), then what
/// `body` writes.
fn document(
    id: &str,
    page: &Page,
    now: DateTime<Utc>,
    body: impl FnOnce(&mut String, DateTime<Utc>),
) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:{STATEMENT}\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm>\
         <MsgPgntn><PgNb>{}</PgNb><LastPgInd>{}</LastPgInd></MsgPgntn>",
        escape(&id.chars().take(35).collect::<String>()),
        now.to_rfc3339_opts(SecondsFormat::Millis, true),
        page.number,
        page.last
    );
    if let Some(next) = &page.next {
        let _ = write!(out, "<AddtlInf>next_cursor {}</AddtlInf>", escape(next));
    }
    out.push_str("</GrpHdr>");
    body(&mut out, now);
    out.push_str("</BkToCstmrStmt></Document>\n");
    out
}

/// One `Stmt` per currency of `head`'s window: balances, settlement entries and the
/// given transfers of that currency.
fn stmts(
    out: &mut String,
    head: &StatementHead,
    bic: Option<&Bic>,
    transfers: &[Transfer],
    now: DateTime<Utc>,
) {
    let window = &head.window;
    let bank = &head.bank;
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut currencies: BTreeSet<Currency> = head.positions.iter().map(|p| p.currency).collect();
    currencies.extend(head.instructions.iter().map(|i| i.currency));
    let to = window.settled_at.or(window.closed_at).unwrap_or(now);
    for currency in currencies {
        let position = head
            .positions
            .iter()
            .find(|p| p.currency == currency)
            .map_or(Decimal::ZERO, |p| p.position);
        let instructions: Vec<&InstructionRecord> = head
            .instructions
            .iter()
            .filter(|i| i.currency == currency && i.state != InstructionState::Failed)
            .collect();
        // Paid in by the bank: a credit to its clearing account; paid out to it: a debit.
        let booked: Decimal = instructions
            .iter()
            .filter(|i| i.state == InstructionState::Confirmed)
            .map(|i| signed_settlement(i, bank))
            .sum();
        let _ = write!(
            out,
            "<Stmt><Id>W{}-{}-{}</Id><CreDtTm>{}</CreDtTm>\
             <FrToDt><FrDtTm>{}</FrDtTm><ToDtTm>{}</ToDtTm></FrToDt>\
             <Acct><Id><Othr><Id>{}-{}</Id></Othr></Id><Ccy>{}</Ccy>",
            window.id.get(),
            escape(bank.as_str()),
            currency,
            time(&now),
            time(&window.opened_at),
            time(&to),
            escape(bank.as_str()),
            currency,
            currency,
        );
        if let Some(bic) = bic {
            let _ = write!(
                out,
                "<Ownr><Id><OrgId><AnyBIC>{}</AnyBIC></OrgId></Id></Ownr>",
                bic.as_str()
            );
        }
        out.push_str("</Acct>");
        balance(
            out,
            "OPBD",
            currency,
            Decimal::ZERO,
            &time(&window.opened_at),
        );
        balance(out, "CLBD", currency, position + booked, &time(&to));
        for instruction in &instructions {
            settlement_entry(out, instruction, bank, &time);
        }
        for t in transfers {
            transfer_entry(out, t, bank, currency, &time);
        }
        out.push_str("</Stmt>");
    }
}

fn signed_settlement(i: &InstructionRecord, bank: &BankCode) -> Decimal {
    match &i.payer {
        Party::Bank(payer) if payer == bank => i.amount,
        _ => -i.amount,
    }
}

fn balance(out: &mut String, code: &str, currency: Currency, amount: Decimal, at: &str) {
    let _ = write!(
        out,
        "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{currency}\">{}</Amt>\
         <CdtDbtInd>{}</CdtDbtInd><Dt><DtTm>{at}</DtTm></Dt></Bal>",
        currency.format(amount.abs()),
        if amount < Decimal::ZERO {
            "DBIT"
        } else {
            "CRDT"
        },
    );
}

/// One entry: its amount and side, status, booking time, the engine's reference,
/// and a bank transaction code (payments: issued or received credit transfers).
#[allow(clippy::too_many_arguments)]
fn entry(
    out: &mut String,
    currency: Currency,
    amount: Decimal,
    credit: bool,
    status: &str,
    booked_at: &str,
    reference: &str,
    sub_family: &str,
    details: &str,
) {
    let _ = write!(
        out,
        "<Ntry><Amt Ccy=\"{currency}\">{}</Amt><CdtDbtInd>{}</CdtDbtInd><Sts><Cd>{status}</Cd></Sts>\
         <BookgDt><DtTm>{booked_at}</DtTm></BookgDt><AcctSvcrRef>{reference}</AcctSvcrRef>\
         <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{}</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn></BkTxCd>\
         {details}</Ntry>",
        currency.format(amount),
        if credit { "CRDT" } else { "DBIT" },
        if credit { "RCDT" } else { "ICDT" },
    );
}

fn settlement_entry(
    out: &mut String,
    i: &InstructionRecord,
    bank: &BankCode,
    time: &impl Fn(&DateTime<Utc>) -> String,
) {
    let status = match i.state {
        InstructionState::Confirmed => "BOOK",
        _ => "PDNG",
    };
    let credit = signed_settlement(i, bank) > Decimal::ZERO;
    entry(
        out,
        i.currency,
        i.amount,
        credit,
        status,
        &time(&i.updated_at),
        &i.id.simple().to_string(),
        "FICT",
        "<AddtlNtryInf>settlement instruction</AddtlNtryInf>",
    );
}

fn transfer_entry(
    out: &mut String,
    t: &Transfer,
    bank: &BankCode,
    currency: Currency,
    time: &impl Fn(&DateTime<Utc>) -> String,
) {
    let sent = &t.sender == bank;
    let (amount, on) = if sent {
        (t.amount.value(), t.amount.currency())
    } else {
        match t.converted {
            Some(c) => (c.value(), c.currency()),
            None => return,
        }
    };
    if on != currency {
        return;
    }
    let id = t.id.as_uuid().simple().to_string();
    let mut details = String::from("<NtryDtls><TxDtls><Refs>");
    if let Some(iso) = &t.iso {
        if let Some(e2e) = &iso.end_to_end_id {
            let _ = write!(details, "<EndToEndId>{}</EndToEndId>", escape(e2e));
        }
        let _ = write!(details, "<UETR>{}</UETR>", iso.uetr);
    }
    let _ = write!(details, "<TxId>{id}</TxId></Refs>");
    if let Some(reference) = &t.reference {
        let text: String = reference.chars().take(140).collect();
        let _ = write!(details, "<RmtInf><Ustrd>{}</Ustrd></RmtInf>", escape(&text));
    }
    details.push_str("</TxDtls></NtryDtls>");
    let cross_border = t.amount.currency() != t.to_currency;
    entry(
        out,
        currency,
        amount,
        !sent,
        "BOOK",
        &time(&t.created_at),
        &id,
        if cross_border { "XBCT" } else { "DMCT" },
        &details,
    );
}
