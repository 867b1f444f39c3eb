//! `GET /api/v1/audit-log`: who changed what, when, from where; for the operator and
//! auditors only, paged by entry id (oldest first) like the other lists.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::{page_limit, paginate, AppState};
use crate::domain::{AuditAction, AuditFilter};
use crate::views::{self, AuditPage};

/// Longest `subject` filter: a bank code, corridor, window, instruction or key id is
/// far shorter.
const SUBJECT_LEN_MAX: usize = 64;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// One action, e.g. `bank_changed`.
    action: Option<String>,
    /// A bank code, corridor, window id, instruction id or key id (1 to 64 characters).
    subject: Option<String>,
    /// 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

fn filter(query: &AuditQuery) -> Result<AuditFilter, ApiError> {
    let action = query
        .action
        .as_deref()
        .map(|a| {
            AuditAction::parse(a).ok_or_else(|| {
                let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
                ApiError::QueryInvalid(format!("action must be one of {}", known.join(", ")))
            })
        })
        .transpose()?;
    let subject = match query.subject.as_deref() {
        Some(s) if s.is_empty() || s.len() > SUBJECT_LEN_MAX => {
            return Err(ApiError::QueryInvalid(format!(
                "subject must be 1 to {SUBJECT_LEN_MAX} characters"
            )))
        }
        other => other.map(str::to_string),
    };
    Ok(AuditFilter { action, subject })
}

/// Who changed what, when, from where (operator, auditor).
///
/// `GET /api/v1/audit-log?action=&subject=&limit=&cursor=`: every change to the
/// registry, windows, settlements and keys, written in the same transaction as the
/// change; never a key's secret.
#[utoipa::path(get, path = "/api/v1/audit-log", operation_id = "list_audit_log", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries, oldest first", body = AuditPage),
        (status = 400, description = "Problem code: `query_invalid` (action, subject, limit or cursor)"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let query = web::Query::<AuditQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
    let limit = page_limit(query.limit.as_deref(), &state)?;
    let filter = filter(&query)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| ApiError::QueryInvalid(format!("{c} is not an audit cursor")))
        })
        .transpose()?;
    let entries = state.store.audit_entries(&filter, after, limit + 1).await?;
    let (page, next) = paginate(entries, limit, |e| e.id.to_string());
    Ok(HttpResponse::Ok().json(views::AuditPage {
        entries: page.iter().map(views::audit_entry).collect(),
        next_cursor: next,
    }))
}
