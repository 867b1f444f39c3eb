//! Clearing windows and settlement instructions.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::{not_found_as, page_limit, paginate, AppState};
use crate::actors::clock::{CurrentWindow, ScheduledCutOff};
use crate::actors::writer::WindowProgress;
use crate::domain::{InstructionState, WindowId};
use crate::views::{
    self, CurrentWindowView, InstructionChanged, InstructionPage, InstructionView, WindowClosed,
    WindowPage, WindowView,
};

fn window_id(text: &str) -> Result<WindowId, ApiError> {
    WindowId::parse(text).map_err(|error| ApiError::Input {
        field: "window_id",
        error,
    })
}

fn instruction_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::QueryInvalid(format!("{text} is not a settlement id (a UUID)")))
}

async fn current_id(state: &AppState) -> Result<WindowId, ApiError> {
    state
        .engine
        .clock
        .send(CurrentWindow)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::unavailable("the window clock is starting"))
}

/// The window as `caller` may see it (a bank: its own positions only).
async fn window_view(
    state: &AppState,
    caller: &Caller,
    id: WindowId,
) -> Result<views::WindowView, ApiError> {
    let detail = state
        .store
        .window(id)
        .await
        .map_err(not_found_as(format!("window {id}")))?;
    let live_count = match detail.record.state.is_live() {
        true => {
            let counted = state
                .engine
                .writer
                .send(WindowProgress { window: id })
                .await
                .ok()
                .flatten();
            match counted {
                Some(count) => Some(count as i64),
                None => Some(state.store.window_transfer_count(id).await?),
            }
        }
        false => None,
    };
    Ok(match caller.0.only_bank() {
        Some(bank) => views::window(&detail.seen_by(bank), live_count),
        None => views::window(&detail, live_count),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// Windows older than this id: the previous page's `next_cursor`.
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
}

/// List clearing windows.
///
/// `GET /api/v1/windows`: newest first; `before` pages back.
#[utoipa::path(get, path = "/api/v1/windows", operation_id = "list_windows", tag = "windows",
    params(WindowQuery),
    responses(
        (status = 200, description = "A page of windows", body = WindowPage),
        (status = 400, description = "Problem code: `query_invalid` (limit)"),
        (status = 422, description = "Problem code: `window_id_invalid` (before)"),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    _caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<WindowQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
    let limit = page_limit(query.limit.as_deref(), &state)?;
    let before = query.before.as_deref().map(window_id).transpose()?;
    let records = state.store.windows(before, limit + 1).await?;
    let (records, next) = paginate(records, limit, |w| w.id.to_string());
    Ok(HttpResponse::Ok().json(views::WindowPage {
        windows: records.iter().map(views::window_record).collect(),
        next_cursor: next,
    }))
}

/// The open window, with its live transfer count and when it closes.
///
/// `GET /api/v1/windows/current`: the open window, with `closes_at`, when the
/// clock's timer cuts it off (null while a cut-off is under way).
#[utoipa::path(get, path = "/api/v1/windows/current", operation_id = "current_window", tag = "windows",
    responses((status = 200, description = "The open window", body = CurrentWindowView)))]
pub async fn current(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = current_id(&state).await?;
    let window = window_view(&state, &caller, id).await?;
    let due = state
        .engine
        .clock
        .send(ScheduledCutOff)
        .await
        .ok()
        .flatten();
    let closes_at = match due {
        Some((due_window, at)) if due_window == id => Some(views::time(&at)),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(CurrentWindowView { window, closes_at }))
}

/// Read a window with its netting result.
///
/// A bank key sees its own positions only; the totals stay.
#[utoipa::path(get, path = "/api/v1/windows/{id}", operation_id = "get_window", tag = "windows",
    params(("id" = i64, Path, minimum = 1, description = "Window id")),
    responses(
        (status = 200, description = "The window", body = WindowView),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem code: `window_id_invalid`"),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = window_id(&path)?;
    Ok(HttpResponse::Ok().json(window_view(&state, &caller, id).await?))
}

/// Close the open window now (operator).
///
/// `POST /api/v1/windows/current/close`: cut-off now; netting follows at once.
#[utoipa::path(post, path = "/api/v1/windows/current/close", operation_id = "close_current_window", tag = "windows",
    responses(
        (status = 202, description = "Cut off; the next window is open; audited", body = WindowClosed),
        (status = 403, description = "Problem code: `operator_only`"),
    ))]
pub async fn close_current(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let closed = state.engine.close_window(&caller.origin()).await?;
    let window = window_view(&state, &caller, closed.closed).await?;
    Ok(HttpResponse::Accepted().json(views::WindowClosed {
        closed_window_id: closed.closed.get(),
        next_window_id: closed.next.get(),
        window,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    #[param(value_type = Option<i64>, minimum = 1)]
    window_id: Option<String>,
    /// `pending`, `confirmed` or `failed`.
    #[param(pattern = "^(pending|confirmed|failed)$")]
    state: Option<String>,
    /// 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
    /// `json` (the default) or `pacs.009`: the window's pending instructions as one
    /// ISO 20022 pacs.009.001.10 for the settlement bank (needs `window_id`; takes no
    /// `state` or `cursor`).
    #[param(pattern = "^(json|pacs\\.009)$")]
    format: Option<String>,
}

/// List settlement instructions.
///
/// `GET /api/v1/settlements?window_id=`: instructions, paged by id; a bank key
/// sees those it pays or receives. With `format=pacs.009`, the window's pending
/// instructions as one pacs.009.001.10 (each transaction's identifiers are the
/// instruction's id; the settlement bank's pacs.002 names them back to
/// `POST /api/v1/iso20022/pacs.002`).
#[utoipa::path(get, path = "/api/v1/settlements", operation_id = "list_settlements", tag = "settlements",
    params(SettlementQuery),
    responses(
        (status = 404, description = "Problem code: `not_found` (with `format=pacs.009`: the window has no pending instruction the caller sees)"),
        (status = 200, description = "A page of instructions, or with `format=pacs.009` the window's pending ones as XML",
            content((InstructionPage = "application/json"), (String = "application/xml"))),
        (status = 400, description = "Problem code: `query_invalid` (state, limit or cursor)"),
        (status = 422, description = "Problem code: `window_id_invalid`"),
    ))]
pub async fn list_settlements(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<SettlementQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
    match query.format.as_deref() {
        None | Some("json") => {}
        Some("pacs.009") => return settlements_pacs009(&state, &caller, &query).await,
        Some(_) => {
            return Err(ApiError::QueryInvalid(
                "format must be json or pacs.009".into(),
            ))
        }
    }
    let limit = page_limit(query.limit.as_deref(), &state)?;
    let window = query.window_id.as_deref().map(window_id).transpose()?;
    let wanted = query
        .state
        .as_deref()
        .map(|s| {
            InstructionState::parse(s).ok_or_else(|| {
                ApiError::QueryInvalid("state must be pending, confirmed or failed".into())
            })
        })
        .transpose()?;
    let after = query.cursor.as_deref().map(instruction_id).transpose()?;
    let instructions = state
        .store
        .instructions(window, wanted, caller.0.only_bank(), after, limit + 1)
        .await?;
    let more = instructions.len() as i64 > limit;
    let page = instructions
        .iter()
        .take(limit as usize)
        .map(views::instruction)
        .collect();
    let next = if more {
        instructions
            .get(limit as usize - 1)
            .map(|i| i.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(views::InstructionPage {
        settlements: page,
        next_cursor: next,
    }))
}

/// The window's pending instructions (those the caller sees) as one pacs.009, at
/// most a page's maximum of them (a window has one per bank and currency at most).
async fn settlements_pacs009(
    state: &AppState,
    caller: &Caller,
    query: &SettlementQuery,
) -> Result<HttpResponse, ApiError> {
    if query.state.is_some() || query.cursor.is_some() || query.limit.is_some() {
        return Err(ApiError::QueryInvalid(
            "the pacs.009 holds the window's pending instructions: it takes window_id only".into(),
        ));
    }
    let window = query
        .window_id
        .as_deref()
        .ok_or_else(|| ApiError::QueryInvalid("the pacs.009 is of one window: window_id".into()))
        .and_then(window_id)?;
    let max = state.limits.page_size_max;
    let (instructions, banks) = futures_util::future::join(
        state.store.instructions(
            Some(window),
            Some(InstructionState::Pending),
            caller.0.only_bank(),
            None,
            max + 1,
        ),
        state.store.banks(),
    )
    .await;
    let instructions = instructions?;
    // A pacs.009 carries at least one transaction.
    if instructions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "a pending settlement instruction of window {window}"
        )));
    }
    if instructions.len() as i64 > max {
        return Err(ApiError::QueryInvalid(format!(
            "the window has more than {max} pending instructions"
        )));
    }
    let bics = banks?
        .into_iter()
        .filter_map(|b| Some((b.code, b.bic?)))
        .collect();
    let xml = crate::http::iso20022::settlement::fi_credit_transfers(
        window,
        &instructions,
        &bics,
        chrono::Utc::now(),
    );
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

/// Read one settlement instruction (also at `…/{id}/status`).
#[utoipa::path(get, path = "/api/v1/settlements/{id}", operation_id = "get_settlement", tag = "settlements",
    params(("id" = uuid::Uuid, Path, description = "Instruction id")),
    responses(
        (status = 200, description = "The instruction", body = InstructionView),
        (status = 400, description = "Problem code: `query_invalid` (not a UUID)"),
        (status = 404, description = "Problem code: `not_found` (also another bank's, to a bank key)"),
    ))]
pub async fn settlement_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = instruction_id(&path)?;
    let what = || format!("settlement instruction {id}");
    let instruction = state
        .store
        .instruction(id)
        .await
        .map_err(not_found_as(what()))?;
    if let Some(bank) = caller.0.only_bank() {
        if !instruction.banks().contains(bank) {
            return Err(ApiError::NotFound(what()));
        }
    }
    Ok(HttpResponse::Ok().json(views::instruction(&instruction)))
}

async fn change(
    state: &AppState,
    caller: Caller,
    path: &str,
    to: InstructionState,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let id = instruction_id(path)?;
    let change = state
        .engine
        .change_instruction(&caller.origin(), id, to)
        .await?;
    Ok(HttpResponse::Ok().json(views::InstructionChanged {
        instruction: views::instruction(&change.instruction),
        changed: change.changed,
    }))
}

/// The rail paid an instruction (operator).
///
/// `POST /api/v1/settlements/{id}/confirm`: confirming twice is harmless
/// (`changed: false`); the last confirmation of a window settles it and releases
/// the banks' exposure from it.
#[utoipa::path(post, path = "/api/v1/settlements/{id}/confirm", operation_id = "confirm_settlement", tag = "settlements",
    params(("id" = uuid::Uuid, Path, description = "Instruction id")),
    responses(
        (status = 200, description = "The instruction, confirmed; audited", body = InstructionChanged),
        (status = 400, description = "Problem code: `query_invalid` (not a UUID)"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `instruction_not_pending` (it failed)"),
    ))]
pub async fn confirm(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(&state, caller, &path, InstructionState::Confirmed).await
}

/// The rail could not pay an instruction (operator).
///
/// `POST /api/v1/settlements/{id}/fail`: the window becomes `settlement_failed`.
#[utoipa::path(post, path = "/api/v1/settlements/{id}/fail", operation_id = "fail_settlement", tag = "settlements",
    params(("id" = uuid::Uuid, Path, description = "Instruction id")),
    responses(
        (status = 200, description = "The instruction, failed; audited", body = InstructionChanged),
        (status = 400, description = "Problem code: `query_invalid` (not a UUID)"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `instruction_not_pending` (it was confirmed)"),
    ))]
pub async fn fail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(&state, caller, &path, InstructionState::Failed).await
}
