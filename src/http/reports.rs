//! Reports: a bank's statement of one window (JSON paged by cursor, or CSV streamed in
//! chunks) and a summary over a time range. A bank key reads its own only: another
//! bank's statement answers 404, as another bank's positions do, and its summary is
//! always its own. What they read and their bounds: docs/ARCHITECTURE.md, "Reports".

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::request_id::current_request_id;
use super::{not_found_as, page_limit, paginate, AppState};
use crate::domain::{BankCode, TransferId, WindowId};
use crate::views::{self, ComplianceReportView, StatementView, SummaryView};

/// Transfers read and rendered at a time while streaming a CSV statement: the memory a
/// download holds (a few MB), whatever the window's size.
const CSV_CHUNK_TRANSFERS: i64 = 10_000;

/// Longest range a summary covers.
const SUMMARY_RANGE_DAYS_MAX: i64 = 31;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// `format=json|csv`; without it, CSV when `Accept` names `text/csv`, else JSON.
fn format(asked: Option<&str>, req: &HttpRequest) -> Result<Format, ApiError> {
    match asked {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(_) => Err(ApiError::QueryInvalid("format must be json or csv".into())),
        None => {
            let accepts_csv = req
                .headers()
                .get_all(header::ACCEPT)
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("text/csv"));
            Ok(if accepts_csv {
                Format::Csv
            } else {
                Format::Json
            })
        }
    }
}

pub(crate) fn bank_code(text: &str, field: &'static str) -> Result<BankCode, ApiError> {
    BankCode::parse(text).map_err(|error| ApiError::Input { field, error })
}

/// The bank is registered (from the engine's directory, without a database read).
pub(crate) fn require_registered(state: &AppState, bank: &BankCode) -> Result<(), ApiError> {
    match state.engine.directory.bank(bank) {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("bank {bank}"))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `json` or `csv`; without it, CSV when `Accept` names `text/csv`, else JSON.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
    /// Transfers per page of the JSON statement: 1 to the page size maximum (default
    /// 100). Refused with CSV.
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's `next_cursor` (JSON only; refused with CSV).
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
}

/// A bank's statement of one window.
///
/// `GET /api/v1/reports/windows/{window_id}/banks/{code}/statement`: the bank's
/// transfers of the window (both directions), its positions per currency and its
/// instructions. JSON pages the transfers (`limit`, `cursor`; the rest is on every
/// page); CSV (`format=csv`, or `Accept: text/csv` without `format`) is the whole
/// statement, streamed, one line per `record` (`position`, `instruction`, then
/// `transfer`). A bank key reads its own only.
#[utoipa::path(get, path = "/api/v1/reports/windows/{window_id}/banks/{code}/statement",
    operation_id = "bank_statement", tag = "reports",
    params(
        ("window_id" = i64, Path, minimum = 1, description = "Window id"),
        ("code" = String, Path, pattern = "^[A-Z0-9]{2,11}$", description = "Bank code (not `HUB`)", example = "ICICI"),
        StatementQuery,
    ),
    responses(
        (status = 200, description = "The statement: a page of it in JSON, or all of it in CSV (`Content-Disposition: attachment`; a download cut short by a failure lacks lines, which `X-Transfer-Count` shows)",
            content((StatementView = "application/json"), (String = "text/csv")),
            headers(("X-Transfer-Count" = i64, description = "With CSV: the number of `transfer` lines the statement holds"))),
        (status = 400, description = "Problem code: `query_invalid` (format, limit, cursor, a repeated parameter; limit or cursor with CSV)"),
        (status = 404, description = "Problem code: `not_found` (the window, an unregistered bank, or another bank's statement to a bank key)"),
        (status = 422, description = "Problem codes: `window_id_invalid`, `bank_code_invalid`"),
    ))]
pub async fn statement(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (window, bank) = path.into_inner();
    let window = WindowId::parse(&window).map_err(|error| ApiError::Input {
        field: "window_id",
        error,
    })?;
    let bank = bank_code(&bank, "code")?;
    let query = web::Query::<StatementQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?
        .into_inner();
    let format = format(query.format.as_deref(), &req)?;
    caller.require_sees(&bank, || format!("bank {bank}"))?;
    require_registered(&state, &bank)?;
    match format {
        Format::Json => statement_json(&state, window, bank, &query).await,
        Format::Csv => {
            if query.limit.is_some() || query.cursor.is_some() {
                return Err(ApiError::QueryInvalid(
                    "the CSV statement is the whole window, streamed; limit and cursor page \
                     the JSON one"
                        .into(),
                ));
            }
            statement_csv(&state, window, bank).await
        }
    }
}

async fn statement_json(
    state: &AppState,
    window: WindowId,
    bank: BankCode,
    query: &StatementQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit.as_deref(), state)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            TransferId::parse(c)
                .map_err(|_| ApiError::QueryInvalid("cursor is not one this API gave".into()))
        })
        .transpose()?;
    let (head, transfers) = futures_util::future::join(
        state.store.statement_head(window, &bank),
        state
            .store
            .statement_transfers(window, &bank, after, None, limit + 1),
    )
    .await;
    let head = head.map_err(not_found_as(format!("window {window}")))?;
    let (transfers, next) = paginate(transfers?, limit, |t| t.id.to_string());
    Ok(HttpResponse::Ok().json(views::statement(&head, &transfers, next)))
}

/// The CSV statement: the header, positions and instructions at once, then the
/// transfers in chunks of `CSV_CHUNK_TRANSFERS`, each read when the client has taken
/// the previous one (no connection is held in between). `X-Transfer-Count` says how
/// many transfer lines follow, so a client can tell a complete download from one cut
/// short (a failure mid-stream ends the response without its last chunk).
async fn statement_csv(
    state: &AppState,
    window: WindowId,
    bank: BankCode,
) -> Result<HttpResponse, ApiError> {
    let head = state
        .store
        .statement_head(window, &bank)
        .await
        .map_err(not_found_as(format!("window {window}")))?;
    // A live window still takes transfers: the statement stops at those stamped before
    // now (ids are UUIDv7, in creation order), so that the download ends.
    let before = head.provisional().then(TransferId::new);
    let count = head.transfer_count();
    let first = web::Bytes::from(views::statement_csv_head(&head));
    let store = state.store.clone();
    let request_id = current_request_id().map(|id| id.as_str().to_string());
    let chunks = futures_util::stream::try_unfold(Some(None), move |cursor| {
        let (store, bank, request_id) = (store.clone(), bank.clone(), request_id.clone());
        async move {
            let Some(after) = cursor else {
                return Ok(None);
            };
            let page = store
                .statement_transfers(window, &bank, after, before, CSV_CHUNK_TRANSFERS)
                .await
                .inspect_err(|e| {
                    tracing::error!(
                        request_id = request_id.as_deref().unwrap_or(""),
                        error = %e,
                        "the CSV statement of window {window} for {bank} stopped mid-stream"
                    )
                })?;
            if page.is_empty() {
                return Ok(None);
            }
            let mut text = String::with_capacity(page.len() * 200);
            for t in &page {
                views::statement_csv_transfer(&mut text, &bank, t);
            }
            let next = match page.len() as i64 == CSV_CHUNK_TRANSFERS {
                true => page.last().map(|t| Some(t.id)),
                false => None,
            };
            Ok(Some((web::Bytes::from(text), next)))
        }
    });
    let body = futures_util::stream::once(async move { Ok(first) }).chain(chunks);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"statement-{}-{}.csv\"",
                head.window.id.get(),
                head.bank
            ),
        ))
        .insert_header(("X-Transfer-Count", count.to_string()))
        .streaming::<_, crate::store::StoreError>(body))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Start of the range, included: an RFC 3339 time (a `+` is sent as `%2B`).
    #[param(value_type = String, format = DateTime, example = "2025-01-01T00:00:00Z")]
    from: Option<String>,
    /// End of the range, excluded: after `from`, at most 31 days later.
    #[param(value_type = String, format = DateTime, example = "2025-01-02T00:00:00Z")]
    to: Option<String>,
    /// One bank's figures, by its code (not `HUB`; a bank key may name only its own);
    /// without it, the hub's (a bank key's are always its own).
    #[param(pattern = "^[A-Z0-9]{2,11}$", example = "ICICI")]
    bank: Option<String>,
}

/// An RFC 3339 time from the query.
fn time(text: Option<&str>, name: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = text.ok_or_else(|| {
        ApiError::QueryInvalid(format!(
            "{name} is required: an RFC 3339 time such as 2025-01-31T00:00:00Z"
        ))
    })?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::QueryInvalid(format!(
                "{name} is not an RFC 3339 time such as 2025-01-31T00:00:00Z (a '+' in a \
                 query string is sent as %2B)"
            ))
        })
}

/// A summary over a time range.
///
/// `GET /api/v1/reports/summary?from=&to=`: transfers created in `[from, to)` by
/// corridor and status, rejections by code, the netting of the windows netted in the
/// range and their latencies. The hub's figures for the operator and auditors (or one
/// bank's with `bank=`); a bank key's are always its own.
#[utoipa::path(get, path = "/api/v1/reports/summary", operation_id = "report_summary", tag = "reports",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = SummaryView),
        (status = 400, description = "Problem code: `query_invalid` (from or to missing or not RFC 3339, from not before to, a repeated parameter)"),
        (status = 404, description = "Problem code: `not_found` (bank: an unregistered bank, or another bank to a bank key)"),
        (status = 422, description = "Problem codes: `range_too_large` (longer than 31 days, or more transfers created in it than `--report-transfers-max`), `bank_code_invalid` (bank)"),
    ))]
pub async fn summary(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<SummaryQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?
        .into_inner();
    let from = time(query.from.as_deref(), "from")?;
    let to = time(query.to.as_deref(), "to")?;
    if from >= to {
        return Err(ApiError::QueryInvalid("from must be before to".into()));
    }
    if to - from > Duration::days(SUMMARY_RANGE_DAYS_MAX) {
        return Err(ApiError::RangeTooLarge(format!(
            "a summary covers at most {SUMMARY_RANGE_DAYS_MAX} days"
        )));
    }
    let asked = query
        .bank
        .as_deref()
        .map(|b| bank_code(b, "bank"))
        .transpose()?;
    let bank = match (asked, caller.0.only_bank()) {
        (Some(asked), _) => {
            caller.require_sees(&asked, || format!("bank {asked}"))?;
            require_registered(&state, &asked)?;
            Some(asked)
        }
        (None, own) => own.cloned(),
    };
    let max = state.limits.report_transfers_max;
    let summary = state
        .store
        .summary(from, to, bank.as_ref(), max)
        .await?
        .ok_or_else(|| {
            ApiError::RangeTooLarge(format!(
                "more than {max} transfers were created in this range; ask for a shorter one"
            ))
        })?;
    Ok(HttpResponse::Ok().json(views::summary(&summary)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// The day (UTC) whose transfers the report covers.
    #[param(value_type = String, format = Date, example = "2026-12-04")]
    date: Option<String>,
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// The daily compliance report.
///
/// `GET /api/v1/reports/compliance?date=`: the transfers created that day (UTC) that
/// compliance screening matched — still `held`, `released` by the operator, or
/// `rejected` (`compliance_rejected`) — each with the entry it matched, the party and
/// the score, and those `flagged` because their amount reached their corridor's
/// reporting threshold (a currency transaction report). JSON or CSV; the operator and
/// auditors only.
#[utoipa::path(get, path = "/api/v1/reports/compliance", operation_id = "report_compliance", tag = "reports",
    params(ComplianceQuery),
    responses(
        (status = 200, description = "The report",
            content((ComplianceReportView = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Problem code: `query_invalid` (date missing or not YYYY-MM-DD, format)"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
        (status = 422, description = "Problem code: `range_too_large` (more lines than `--report-transfers-max`)"),
    ))]
pub async fn compliance(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let query = web::Query::<ComplianceQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?
        .into_inner();
    let day = query
        .date
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| ApiError::QueryInvalid("date is required, as YYYY-MM-DD".into()))?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::QueryInvalid("format must be json or csv".into())),
    };
    let from = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let to = from + Duration::days(1);
    let max = state.limits.report_transfers_max;
    let found = state.store.compliance_lines(from, to, max).await?;
    if found.len() as i64 > max {
        return Err(ApiError::RangeTooLarge(format!(
            "the day has more than {max} transfers to report (--report-transfers-max)"
        )));
    }
    let lines = views::compliance_lines(&found);
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"compliance-{day}.csv\""),
            ))
            .body(views::compliance_csv(&lines)));
    }
    let count = |c: &str| lines.iter().filter(|l| l.category == c).count() as i64;
    Ok(HttpResponse::Ok().json(views::ComplianceReportView {
        date: day.to_string(),
        from: views::Timestamp(views::timestamp(&from)),
        to: views::Timestamp(views::timestamp(&to)),
        held: count("held"),
        released: count("released"),
        rejected: count("rejected"),
        flagged: count("flagged"),
        lines,
    }))
}
