//! Funding from the settlement bank: a camt.054 (bank-to-customer debit/credit
//! notification) whose booked credit entries are funds-in to the banks' prefunded
//! settlement balances, each booked once by its entry reference.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::messages::{self, NotificationEntry};
use super::Registry;
use crate::actors::CommandError;
use crate::domain::{Amount, Currency};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};
use crate::views::{self, Money};

/// What became of a notification: one line per entry, in message order.
#[derive(Debug, Serialize, ToSchema)]
pub struct FundingReportView {
    /// The notification's `GrpHdr/MsgId`.
    pub message_id: String,
    /// How many entries were booked now.
    pub booked: usize,
    pub entries: Vec<FundingEntryView>,
}

/// One entry of a notification and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FundingEntryView {
    /// The entry's `NtryRef` (else `AcctSvcrRef`).
    pub entry_ref: Option<String>,
    /// `booked` (a funds-in now), `duplicate` (this entry was booked before),
    /// `ignored` (not a booked credit: a debit, or pending or informational) or
    /// `refused` (a booked credit the engine cannot book: see `code`).
    #[schema(example = "booked")]
    pub outcome: &'static str,
    /// With `refused` or `ignored`: why, as a stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub detail: Option<String>,
    /// The bank funded (its debtor agent's BIC), when known.
    pub bank: Option<String>,
    /// With `booked`: the funds-in made, and the balance after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub movement: Option<views::FundsMovementView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub amount: Option<Money>,
}

/// Book funding from a settlement bank's notification.
///
/// `POST /api/v1/iso20022/camt.054`: a camt.054.001.08 from the settlement bank. Each
/// `Ntry` that is a booked credit (`CdtDbtInd` `CRDT`, `Sts/Cd` `BOOK`) is a funds-in
/// to the prefunded balance of the bank named by its transaction's debtor agent
/// (`NtryDtls/TxDtls/RltdAgts/DbtrAgt`), in the entry's currency, audited like any
/// funds-in; its `NtryRef` (else `AcctSvcrRef`) books it once. Other entries are
/// ignored. Operator only.
#[utoipa::path(post, path = "/api/v1/iso20022/camt.054", operation_id = "iso20022_camt054", tag = "iso20022",
    request_body(content = String, content_type = "application/xml", description = "A camt.054.001.08 Document (UTF-8, no DOCTYPE)"),
    responses(
        (status = 200, description = "What became of each entry", body = FundingReportView),
        (status = 400, description = "Problem codes: `xml_malformed`, `xml_doctype_forbidden`, `xml_entity_unknown`, `xml_too_deep`, `xml_too_many_elements`"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 413, description = "Problem codes: `body_too_large`, `iso_too_many_transactions` (entries)"),
        (status = 422, description = "Problem codes: `iso_message_unknown`, `iso_message_wrong_route`, `iso_version_unsupported`, `iso_field_missing`, `iso_no_transactions`"),
        (status = 503, description = "Problem code: `unavailable` (resend: entries booked already answer `duplicate`)"),
    ))]
pub async fn camt054(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let body = read_body(payload, state.limits.iso_message_size_max_bytes).await?;
    let notification = messages::read_notification(&body, state.limits.iso_transactions_max)?;
    let registry = Registry::new(state.store.banks().await?);
    let origin = caller.origin();
    let mut lines = Vec::with_capacity(notification.entries.len());
    // One at a time: funds movements serialise on one lock in the store anyway.
    for entry in &notification.entries {
        lines.push(book(&state, &origin, &registry, entry).await?);
    }
    let booked = lines.iter().filter(|l| l.outcome == "booked").count();
    Ok(HttpResponse::Ok().json(FundingReportView {
        message_id: notification.message_id,
        booked,
        entries: lines,
    }))
}

async fn book(
    state: &AppState,
    origin: &crate::domain::Origin,
    registry: &Registry,
    entry: &NotificationEntry,
) -> Result<FundingEntryView, ApiError> {
    let bank = entry
        .debtor_agent
        .as_deref()
        .and_then(|bic| registry.bank(bic))
        .map(|b| b.code.clone());
    let mut line = FundingEntryView {
        entry_ref: entry.entry_ref.clone(),
        outcome: "refused",
        code: None,
        detail: None,
        bank: bank.as_ref().map(|b| b.to_string()),
        movement: None,
        amount: None,
    };
    let refuse = |mut line: FundingEntryView, outcome, code, detail: String| {
        line.outcome = outcome;
        line.code = Some(code);
        line.detail = Some(detail);
        Ok(line)
    };
    let credit = entry.direction.as_deref() == Some("CRDT");
    let booked = entry.status.as_deref() == Some("BOOK");
    if !(credit && booked) {
        let what = format!(
            "a {} entry with status {}: only booked credits fund a balance",
            entry.direction.as_deref().unwrap_or("?"),
            entry.status.as_deref().unwrap_or("?")
        );
        return refuse(line, "ignored", "not_a_booked_credit", what);
    }
    let Some(entry_ref) = entry.entry_ref.as_deref() else {
        let why = "a booked credit needs an NtryRef or AcctSvcrRef to be booked once";
        return refuse(line, "refused", "entry_ref_missing", why.into());
    };
    if entry_ref.chars().count() > 35 {
        return refuse(
            line,
            "refused",
            "entry_ref_invalid",
            "longer than 35 characters".into(),
        );
    }
    let Some(bank) = bank else {
        let why = format!(
            "the debtor agent {} is not a registered bank",
            entry.debtor_agent.as_deref().unwrap_or("(none)")
        );
        return refuse(line, "refused", "bank_unknown", why);
    };
    let Some(stated) = &entry.amount else {
        return refuse(
            line,
            "refused",
            "amount_invalid",
            "the entry has no Amt".into(),
        );
    };
    let amount = match Currency::parse(&stated.currency)
        .and_then(|c| Amount::parse(super::without_trailing_zeros(stated).as_str(), c))
    {
        Ok(amount) => amount,
        Err(e) => return refuse(line, "refused", e.code(), e.to_string()),
    };
    line.amount = Some(Money::of(amount.currency(), amount.value()));
    let reference = entry
        .remittance
        .clone()
        .or_else(|| entry.end_to_end_id.clone())
        .map(|r| r.chars().take(140).collect());
    match state
        .engine
        .funds_in_entry(origin, bank, amount, reference, entry_ref)
        .await
    {
        Ok(movement) => {
            line.outcome = "booked";
            line.movement = Some(views::funds_movement(&movement));
            Ok(line)
        }
        Err(CommandError::AlreadyExists(what)) => refuse(
            line,
            "duplicate",
            "entry_booked_before",
            format!("{what} was booked before"),
        ),
        // The database or the bank actor cannot say now: the whole message is
        // answered 503, and a resend books what is left.
        Err(e @ (CommandError::Unavailable(_) | CommandError::Store(_))) => Err(e.into()),
        Err(e) => refuse(line, "refused", "funds_in_refused", e.to_string()),
    }
}
