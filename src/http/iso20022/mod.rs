//! ISO 20022 at the edge: credit transfers in (pacs.008, pain.001), each transaction
//! mapped to a transfer and decided like any other, and a pacs.002 status report out,
//! one line per transaction. One bad transaction never harms its siblings: each gets
//! its own status and reason. A message that cannot be read at all (malformed,
//! hostile, of another kind or version) is refused whole with a problem (4xx).

pub mod funding;
mod messages;
pub mod settlement;
pub mod statement;
pub mod xml;

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::error::ApiError;
use super::transfers::admitted_many;
use super::{read_body, AppState};
use crate::actors::{CommandError, Submitted};
use crate::domain::rules::{RawTransfer, TransferDraft};
use crate::domain::screening::PartyName;
use crate::domain::{
    money, BankCode, BankRecord, Bic, InputError, IsoIds, Outcome, RejectCode, TransferStatus,
};
pub use funding::camt054;
use messages::{CreditTransfer, StatedAmount, TransactionStatus};
pub use messages::{Message, MessageError, MessageKind};

/// Take in an ISO 20022 FI-to-FI customer credit transfer.
///
/// `POST /api/v1/iso20022/pacs.008`: a pacs.008 (versions .001.08 to .001.13), one or
/// many credit transfers; answered `200` with a pacs.002.001.12 status report, one
/// `TxInfAndSts` per transaction.
#[utoipa::path(post, path = "/api/v1/iso20022/pacs.008", operation_id = "iso20022_pacs008", tag = "iso20022",
    request_body(content = String, content_type = "application/xml", description = "A pacs.008.001.08 to .13 Document (UTF-8, no DOCTYPE)"),
    responses(
        (status = 200, description = "A pacs.002.001.12 status report: per transaction `ACCP` (accepted), `ACSC` (its window settled, on a replay), `PDNG` (queued) or `RJCT` with an ISO reason code", body = String, content_type = "application/xml"),
        (status = 400, description = "Problem codes: `xml_malformed`, `xml_doctype_forbidden`, `xml_entity_unknown`, `xml_too_deep`, `xml_too_many_elements`"),
        (status = 403, description = "Problem code: `auditor_read_only`"),
        (status = 413, description = "Problem codes: `body_too_large`, `iso_too_many_transactions`"),
        (status = 422, description = "Problem codes: `iso_message_unknown`, `iso_message_wrong_route`, `iso_version_unsupported`, `iso_field_missing`, `iso_no_transactions`, `iso_transaction_count_mismatch`"),
        (status = 503, description = "Problem codes: `overloaded`, `unavailable` (resend the same message: every transaction is keyed by its UETR, so what was stored answers as a replay)"),
    ))]
pub async fn pacs008(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    take_in(MessageKind::Pacs008, &state, &caller, payload).await
}

/// Take in an ISO 20022 customer credit transfer initiation.
///
/// `POST /api/v1/iso20022/pain.001`: a pain.001 (versions .001.09 to .001.11), its
/// payment information blocks' credit transfers; answered like a pacs.008.
#[utoipa::path(post, path = "/api/v1/iso20022/pain.001", operation_id = "iso20022_pain001", tag = "iso20022",
    request_body(content = String, content_type = "application/xml", description = "A pain.001.001.09 to .11 Document (UTF-8, no DOCTYPE)"),
    responses(
        (status = 200, description = "A pacs.002.001.12 status report, one line per credit transfer", body = String, content_type = "application/xml"),
        (status = 400, description = "Problem codes: `xml_malformed`, `xml_doctype_forbidden`, `xml_entity_unknown`, `xml_too_deep`, `xml_too_many_elements`"),
        (status = 403, description = "Problem code: `auditor_read_only`"),
        (status = 413, description = "Problem codes: `body_too_large`, `iso_too_many_transactions`"),
        (status = 422, description = "Problem codes: `iso_message_unknown`, `iso_message_wrong_route`, `iso_version_unsupported`, `iso_field_missing`, `iso_no_transactions`, `iso_transaction_count_mismatch`"),
        (status = 503, description = "Problem codes: `overloaded`, `unavailable` (resend the same message)"),
    ))]
pub async fn pain001(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    take_in(MessageKind::Pain001, &state, &caller, payload).await
}

async fn take_in(
    kind: MessageKind,
    state: &AppState,
    caller: &Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_not_auditor("send payment messages")?;
    let arrived = Instant::now();
    let body = read_body(payload, state.limits.iso_message_size_max_bytes).await?;
    let message = messages::read(kind, &body, state.limits.iso_transactions_max)?;
    // Its transactions take places in the engine's admission as a batch's do.
    let count = message.transactions.len();
    admitted_many(state, arrived, count, answer(state, caller, message)).await
}

/// Decides every transaction of `message` and writes the status report.
async fn answer(
    state: &AppState,
    caller: &Caller,
    message: Message,
) -> Result<HttpResponse, ApiError> {
    let registry = Registry::new(state.store.banks().await?);
    let planned: Vec<Result<TransferDraft, Refusal>> = message
        .transactions
        .iter()
        .map(|tx| plan(tx, &message, &registry, caller))
        .collect();
    // Decided together, as a batch is: each on its own, a sender's transactions in
    // the message's order.
    let decided: Vec<Result<Submitted, Refusal>> =
        super::batch::decide_in_place(state, planned).await;
    // A transaction whose fate is unknown makes the whole message "try again": each
    // is keyed by its UETR, so a resend answers what was stored as a replay.
    if let Some(detail) = decided.iter().find_map(|d| match d {
        Err(Refusal::Unavailable(detail)) => Some(detail.clone()),
        _ => None,
    }) {
        return Err(ApiError::unavailable(format!(
            "{detail}; resend the whole message: what was stored answers as a replay"
        )));
    }
    let lines: Vec<TransactionStatus> = message
        .transactions
        .iter()
        .zip(decided)
        .map(|(tx, decided)| status_line(tx, decided))
        .collect();
    let report_id = uuid::Uuid::now_v7().simple().to_string();
    let report = messages::status_report(&message, &lines, &report_id, chrono::Utc::now());
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(report))
}

/// The registered banks by the first eight characters of their BIC.
struct Registry {
    by_bic: HashMap<String, BankRecord>,
}

impl Registry {
    fn new(banks: Vec<BankRecord>) -> Self {
        let by_bic = banks
            .into_iter()
            .filter_map(|b| Some((b.bic.as_ref()?.first_eight().to_string(), b)))
            .collect();
        Registry { by_bic }
    }

    fn bank(&self, bic: &str) -> Option<&BankRecord> {
        let bic = Bic::parse(bic).ok()?;
        self.by_bic.get(bic.first_eight())
    }
}

/// Why a transaction was not decided: its ISO reason code and what to tell.
#[derive(Debug)]
enum Refusal {
    Reason(&'static str, String),
    /// Its fate is unknown (the engine could not confirm in time).
    Unavailable(String),
}

impl From<CommandError> for Refusal {
    fn from(e: CommandError) -> Self {
        let text = e.to_string();
        match e {
            CommandError::Unavailable(detail) => Refusal::Unavailable(detail),
            CommandError::Store(_) => Refusal::Unavailable(text),
            CommandError::CorridorUnknown(_) => {
                Refusal::Reason("AM03", format!("corridor_unknown: {text}"))
            }
            CommandError::BankUnknown { .. } => {
                Refusal::Reason("RC01", format!("bank_unknown: {text}"))
            }
            CommandError::IdempotencyKeyReused { .. } => Refusal::Reason(
                "AM05",
                format!("idempotency_key_reused: the UETR names another transfer: {text}"),
            ),
            _ => Refusal::Reason("NARR", text),
        }
    }
}

/// Maps one transaction to a transfer draft: its banks through their BICs (the
/// debtor agent must be the caller's bank), its currencies (the instructed amount's
/// to the settlement amount's; with one currency only, to the creditor agent's home
/// currency), its amount (trailing zeros past the currency's decimals dropped), its
/// identifiers (a missing UETR made from the message, so that a resend finds it).
fn plan(
    tx: &CreditTransfer,
    message: &Message,
    registry: &Registry,
    caller: &Caller,
) -> Result<TransferDraft, Refusal> {
    let agent = |bic: &Option<String>, side: &str| {
        let bic = bic
            .as_deref()
            .ok_or_else(|| Refusal::Reason("RC01", format!("the {side} agent has no BICFI")))?;
        registry.bank(bic).ok_or_else(|| {
            Refusal::Reason(
                "RC01",
                format!("the {side} agent {bic} is not a registered bank"),
            )
        })
    };
    let debtor = agent(&tx.debtor_agent, "debtor")?;
    let creditor = agent(&tx.creditor_agent, "creditor")?;
    if !caller.0.may_send_as(&debtor.code) {
        return Err(Refusal::Reason(
            "AG01",
            format!(
                "the debtor agent is {}; this key sends only as its own bank",
                debtor.code
            ),
        ));
    }
    let (amount, to_currency) = match (&tx.instructed, &tx.settlement) {
        (Some(instructed), Some(settled)) if instructed.currency != settled.currency => {
            (instructed, settled.currency.clone())
        }
        (Some(one), _) | (None, Some(one)) => {
            let home = money::home_currency(&creditor.country)
                .map(|c| c.as_str().to_string())
                .unwrap_or_else(|| one.currency.clone());
            (one, home)
        }
        (None, None) => {
            return Err(Refusal::Reason(
                "AM12",
                "the transaction states no amount".into(),
            ));
        }
    };
    let uetr = match &tx.uetr {
        Some(text) => uuid::Uuid::parse_str(text)
            .map_err(|_| Refusal::Reason("FF01", format!("the UETR {text} is not a UUID")))?,
        None => made_uetr(message, tx, &debtor.code),
    };
    let key = format!("uetr:{uetr}");
    let amount_text = without_trailing_zeros(amount);
    let mut draft = TransferDraft::parse(RawTransfer {
        sender_bank: debtor.code.as_str(),
        receiver_bank: creditor.code.as_str(),
        amount: &amount_text,
        from_currency: &amount.currency,
        to_currency: &to_currency,
        sender_account: tx.debtor_account.as_deref(),
        receiver_account: tx.creditor_account.as_deref(),
        reference: tx.remittance.as_deref(),
        idempotency_key: Some(&key),
        on_limit: None,
        priority: None,
    })
    .map_err(|(field, error)| {
        Refusal::Reason(
            input_reason(error),
            format!("{}: {error} ({field})", error.code()),
        )
    })?;
    // The parties as the message names them, screened like a JSON transfer's: control
    // characters (line breaks in the XML text) read as spaces, and a country that is
    // not a code is left out; the name itself is never left out, or it would escape
    // screening.
    let named = |p: &messages::Party| {
        let name: String = p
            .name
            .as_deref()?
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(140)
            .collect();
        PartyName::parse(&name, p.country.as_deref())
            .or_else(|_| PartyName::parse(&name, None))
            .ok()
    };
    draft.debtor = named(&tx.debtor);
    draft.creditor = named(&tx.creditor);
    draft.iso = Some(IsoIds {
        end_to_end_id: tx
            .end_to_end_id
            .clone()
            .map(|id| id.chars().take(35).collect()),
        uetr,
    });
    Ok(draft)
}

/// A UETR for a transaction that has none, the same every time the same message is
/// sent: a version-4-shaped UUID from a hash of what identifies the transaction.
fn made_uetr(message: &Message, tx: &CreditTransfer, sender: &BankCode) -> uuid::Uuid {
    let mut hash = Sha256::new();
    for part in [
        sender.as_str(),
        &message.definition,
        &message.message_id,
        &tx.index.to_string(),
        tx.end_to_end_id.as_deref().unwrap_or(""),
        tx.transaction_id.as_deref().unwrap_or(""),
        tx.instruction_id.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// ISO amounts may carry up to five decimals: `440.500` is `440.50`.
fn without_trailing_zeros(amount: &StatedAmount) -> String {
    let text = amount.text.as_str();
    if !text.contains('.') {
        return text.to_string();
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The ISO external status reason for an input the engine refuses.
fn input_reason(error: InputError) -> &'static str {
    match error {
        InputError::AmountMustBePositive => "AM01",
        InputError::AmountInvalid
        | InputError::AmountHasTooManyDecimals
        | InputError::AmountTooLarge => "AM12",
        InputError::CurrencyCodeInvalid | InputError::CurrencyUnknown => "AM03",
        InputError::BanksMustBeDifferent => "AG01",
        _ => "NARR",
    }
}

/// The ISO external status reason for an engine rejection.
fn reject_reason(code: RejectCode) -> &'static str {
    match code {
        RejectCode::LimitExceeded | RejectCode::LiquidityInsufficient => "AM04",
        RejectCode::SenderBankSuspended | RejectCode::ReceiverBankSuspended => "AG01",
        RejectCode::CorridorSuspended => "AM03",
        RejectCode::AmountExceedsCorridorMaximum => "AM02",
        RejectCode::ReturnExceedsOriginal => "AM09",
        RejectCode::ReturnAmountTooSmall => "AM12",
        RejectCode::ComplianceRejected => "RR04",
    }
}

fn status_line(tx: &CreditTransfer, decided: Result<Submitted, Refusal>) -> TransactionStatus {
    let mut line = TransactionStatus {
        end_to_end_id: tx.end_to_end_id.clone(),
        transaction_id: tx
            .transaction_id
            .clone()
            .or_else(|| tx.instruction_id.clone()),
        status: "RJCT",
        reason: None,
        information: None,
    };
    match decided {
        Ok(Submitted { transfer, .. }) => {
            let id = transfer.id;
            (line.status, line.reason, line.information) =
                match (transfer.outcome, transfer.status()) {
                    (Outcome::Rejected(code), _) => (
                        "RJCT",
                        Some(reject_reason(code)),
                        Some(format!("{} transaction_id {id}", code.code())),
                    ),
                    (_, TransferStatus::Settled) => {
                        ("ACSC", None, Some(format!("transaction_id {id}")))
                    }
                    (_, status @ (TransferStatus::Queued | TransferStatus::Held)) => {
                        ("PDNG", None, Some(format!("{status} transaction_id {id}")))
                    }
                    (_, status @ (TransferStatus::Expired | TransferStatus::Cancelled)) => (
                        "RJCT",
                        Some("NARR"),
                        Some(format!("{status} transaction_id {id}")),
                    ),
                    _ => ("ACCP", None, Some(format!("transaction_id {id}"))),
                };
        }
        Err(Refusal::Reason(code, text)) => {
            line.reason = Some(code);
            line.information = Some(text);
        }
        // Not reached: a message with such a transaction is answered 503 first.
        Err(Refusal::Unavailable(text)) => {
            line.reason = Some("NARR");
            line.information = Some(text);
        }
    }
    line
}
