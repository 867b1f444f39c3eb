//! Settlement through the settlement bank in ISO 20022: a window's pending
//! instructions written as pacs.009 (financial institution credit transfers) for it
//! to execute, and its pacs.002 status report taken back to confirm or fail them.

use std::collections::HashMap;
use std::fmt::Write;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::messages::{read_status_report, StatusLine};
use crate::actors::CommandError;
use crate::domain::{BankCode, Bic, InstructionRecord, InstructionState, Party, WindowId};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};

/// The credit transfer version written: the one whose schema the tests validate
/// against.
pub const FI_CREDIT_TRANSFER: &str = "pacs.009.001.10";

/// A window's instructions as one pacs.009: one `CdtTrfTxInf` per instruction, the
/// paying side as debtor agent and the paid side as creditor agent, each named by
/// its BIC (the hub's side names none: the settlement bank keeps the hub's account).
/// Every identifier of a transaction is the instruction's id (32 hexadecimal digits),
/// which the settlement bank's pacs.002 names back as `OrgnlEndToEndId`.
pub fn fi_credit_transfers(
    window: WindowId,
    instructions: &[InstructionRecord],
    bics: &HashMap<BankCode, Bic>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::with_capacity(512 + instructions.len() * 400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:{FI_CREDIT_TRANSFER}\"><FICdtTrf>\
         <GrpHdr><MsgId>W{}-SETTLEMENT-{}</MsgId><CreDtTm>{}</CreDtTm><NbOfTxs>{}</NbOfTxs>\
         <IntrBkSttlmDt>{}</IntrBkSttlmDt><SttlmInf><SttlmMtd>INDA</SttlmMtd></SttlmInf></GrpHdr>",
        window.get(),
        now.timestamp(),
        now.to_rfc3339_opts(SecondsFormat::Millis, true),
        instructions.len(),
        now.format("%Y-%m-%d"),
    );
    let agent = |party: &Party<BankCode>, element: &str, out: &mut String| {
        if let Party::Bank(bank) = party {
            if let Some(bic) = bics.get(bank) {
                let _ = write!(
                    out,
                    "<{element}><FinInstnId><BICFI>{}</BICFI></FinInstnId></{element}>",
                    bic.as_str()
                );
            }
        }
    };
    for i in instructions {
        let id = i.id.simple().to_string();
        let _ = write!(
            out,
            "<CdtTrfTxInf><PmtId><InstrId>{id}</InstrId><EndToEndId>{id}</EndToEndId>\
             <TxId>{id}</TxId></PmtId><IntrBkSttlmAmt Ccy=\"{}\">{}</IntrBkSttlmAmt>",
            i.currency,
            i.currency.format(i.amount),
        );
        agent(&i.payer, "DbtrAgt", &mut out);
        agent(&i.payee, "CdtrAgt", &mut out);
        out.push_str("</CdtTrfTxInf>");
    }
    out.push_str("</FICdtTrf></Document>\n");
    out
}

/// What a settlement bank's status report line did to an instruction.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementStatusLineView {
    /// The line's `OrgnlEndToEndId` (else `OrgnlTxId`).
    pub original_id: Option<String>,
    /// The instruction it names, when it names one.
    pub instruction_id: Option<String>,
    /// The line's `TxSts`.
    pub status: Option<String>,
    /// `confirmed` or `failed` (now, or already: see `changed`), `ignored` (a status
    /// that settles nothing yet: `ACCP`, `ACSP`, `PDNG`, …) or `refused` (see `code`).
    #[schema(example = "confirmed")]
    pub outcome: &'static str,
    /// Whether this line changed the instruction (false for a repeat).
    pub changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub detail: Option<String>,
}

/// What a status report did, line by line in its order.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementStatusView {
    /// The report's `GrpHdr/MsgId`.
    pub message_id: String,
    pub lines: Vec<SettlementStatusLineView>,
}

/// Take the settlement bank's status report.
///
/// `POST /api/v1/iso20022/pacs.002`: a pacs.002 (.001.10 to .12) answering the
/// pacs.009 of `GET /api/v1/settlements?window_id=&format=pacs.009`. A line whose
/// `OrgnlEndToEndId` (else `OrgnlTxId`) is an instruction's id and whose `TxSts` is
/// `ACSC` confirms it, `RJCT` fails it, as `POST /api/v1/settlements/{id}/confirm`
/// and `/fail` do (audited; a repeat changes nothing). Operator only.
#[utoipa::path(post, path = "/api/v1/iso20022/pacs.002", operation_id = "iso20022_pacs002", tag = "iso20022",
    request_body(content = String, content_type = "application/xml", description = "A pacs.002.001.10 to .12 Document (UTF-8, no DOCTYPE)"),
    responses(
        (status = 200, description = "What each line did", body = SettlementStatusView),
        (status = 400, description = "Problem codes: `xml_malformed`, `xml_doctype_forbidden`, `xml_entity_unknown`, `xml_too_deep`, `xml_too_many_elements`"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 413, description = "Problem codes: `body_too_large`, `iso_too_many_transactions`"),
        (status = 422, description = "Problem codes: `iso_message_unknown`, `iso_message_wrong_route`, `iso_version_unsupported`, `iso_field_missing`, `iso_no_transactions`"),
        (status = 503, description = "Problem code: `unavailable` (resend: lines done already change nothing)"),
    ))]
pub async fn pacs002(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let body = read_body(payload, state.limits.iso_message_size_max_bytes).await?;
    let report = read_status_report(&body, state.limits.iso_transactions_max)?;
    let origin = caller.origin();
    let mut lines = Vec::with_capacity(report.lines.len());
    for StatusLine {
        original_id: original,
        status,
    } in report.lines
    {
        let mut view = SettlementStatusLineView {
            original_id: original.clone(),
            instruction_id: None,
            status: status.clone(),
            outcome: "refused",
            changed: false,
            code: None,
            detail: None,
        };
        let Some(id) = original
            .as_deref()
            .and_then(|o| uuid::Uuid::try_parse(o).ok())
        else {
            view.code = Some("instruction_unknown");
            view.detail = Some("the line names no settlement instruction".into());
            lines.push(view);
            continue;
        };
        view.instruction_id = Some(id.to_string());
        let to = match status.as_deref() {
            Some("ACSC") => InstructionState::Confirmed,
            Some("RJCT") => InstructionState::Failed,
            _ => {
                view.outcome = "ignored";
                lines.push(view);
                continue;
            }
        };
        match state.engine.change_instruction(&origin, id, to).await {
            Ok(change) => {
                view.outcome = change.instruction.state.as_str();
                view.changed = change.changed;
            }
            Err(CommandError::NotFound(what)) => {
                view.code = Some("instruction_unknown");
                view.detail = Some(format!("{what} not found"));
            }
            Err(e @ CommandError::InstructionNotPending { .. }) => {
                view.code = Some("instruction_not_pending");
                view.detail = Some(e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
        lines.push(view);
    }
    Ok(HttpResponse::Ok().json(SettlementStatusView {
        message_id: report.message_id,
        lines,
    }))
}
