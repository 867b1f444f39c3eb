//! Clearing windows and settlement instructions.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::{not_found_as, page_limit, paginate, AppState};
use crate::actors::clock::CurrentWindow;
use crate::actors::writer::WindowProgress;
use crate::domain::{InstructionState, WindowId};
use crate::views;

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
async fn window_view(state: &AppState, caller: &Caller, id: WindowId) -> Result<Value, ApiError> {
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

#[derive(Deserialize)]
struct WindowQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /api/v1/windows`: newest first; `before` pages back.
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
    let windows: Vec<Value> = records.iter().map(views::window_record).collect();
    Ok(HttpResponse::Ok().json(json!({ "windows": windows, "next_cursor": next })))
}

pub async fn current(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = current_id(&state).await?;
    Ok(HttpResponse::Ok().json(window_view(&state, &caller, id).await?))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = window_id(&path)?;
    Ok(HttpResponse::Ok().json(window_view(&state, &caller, id).await?))
}

/// `POST /api/v1/windows/current/close`: cut-off now; netting follows at once.
pub async fn close_current(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let closed = state.engine.close_window(&caller.origin()).await?;
    let window = window_view(&state, &caller, closed.closed).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "closed_window_id": closed.closed.get(),
        "next_window_id": closed.next.get(),
        "window": window,
    })))
}

#[derive(Deserialize)]
struct SettlementQuery {
    window_id: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/settlements?window_id=`: instructions, paged by id.
pub async fn list_settlements(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<SettlementQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
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
    let page: Vec<Value> = instructions
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
    Ok(HttpResponse::Ok().json(json!({ "settlements": page, "next_cursor": next })))
}

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
    let mut view = views::instruction(&change.instruction);
    view["changed"] = json!(change.changed);
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/settlements/{id}/confirm`: confirming twice is harmless.
pub async fn confirm(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(&state, caller, &path, InstructionState::Confirmed).await
}

/// `POST /api/v1/settlements/{id}/fail`: the rail reports the payment failed; the
/// window becomes `settlement_failed`.
pub async fn fail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(&state, caller, &path, InstructionState::Failed).await
}
