//! The HTTP edge: turns JSON into domain types, calls the engine, and renders the
//! answer with `views`; nothing else. Handlers parse, call, render.

pub mod admission;
mod audit_log;
pub mod auth;
pub mod error;
mod faults;
mod health;
pub mod keys;
pub mod limits;
pub mod middleware;
mod registry;
pub mod request_id;
pub mod transfers;
mod windows;
pub mod ws;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use crate::actors::Engine;
use crate::metrics::Metrics;
use crate::store::Store;
pub use error::ApiError;
pub use middleware::observe;
pub use transfers::HttpLimits;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    /// Admission of submissions, by queueing delay within a fixed count: the bound
    /// on work queued in the engine.
    pub admission: admission::Admission,
    pub limits: HttpLimits,
    pub ws_limits: ws::WsLimits,
    /// WebSocket sessions open now (bounded by `ws_limits.sessions_max`).
    pub ws_open: Arc<std::sync::atomic::AtomicUsize>,
    /// Rate limits per key, per client address and on failed authentications.
    pub rates: Arc<limits::RateLimits>,
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads a JSON body within the body limit and parses it into `T`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    let body = read_body(payload, state.limits.body_size_max_bytes).await?;
    ApiError::parse_json(&body)
}

/// The exact text of a JSON number or string, for money and rates (serde_json's
/// `arbitrary_precision` keeps a number's digits); anything else is `error` on `field`.
pub fn number_text(
    value: &serde_json::Value,
    field: &'static str,
    error: crate::domain::InputError,
) -> Result<String, ApiError> {
    match value {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) => Ok(s.clone()),
        _ => Err(ApiError::Input { field, error }),
    }
}

/// Page size of the list routes when the client names none.
const PAGE_SIZE_DEFAULT: i64 = 100;

/// The `limit` query parameter: 1 to the configured page size maximum.
pub fn page_limit(text: Option<&str>, state: &AppState) -> Result<i64, ApiError> {
    let max = state.limits.page_size_max;
    match text {
        None => Ok(PAGE_SIZE_DEFAULT.min(max)),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| ApiError::QueryInvalid(format!("limit must be 1 to {max}"))),
    }
}

/// Cuts a page fetched with `limit + 1` rows to `limit`, with the cursor of its last
/// item when more follow.
pub fn paginate<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = if more { items.last().map(cursor) } else { None };
    (items, next)
}

/// Maps "not found" from the store to a 404 naming `what`.
pub fn not_found_as(what: String) -> impl Fn(crate::store::StoreError) -> ApiError {
    move |e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound(what.clone()),
        other => other.into(),
    }
}

/// Every route of the v1 API, with the compatibility aliases; with `fault_injection`
/// also the chaos suite's `POST /api/v1/faults/panic` (see `faults`).
pub fn routes(cfg: &mut web::ServiceConfig, fault_injection: bool) {
    let authenticated = || actix_web::middleware::from_fn(auth::authenticate);
    let v1 = web::scope("/api/v1").wrap(authenticated());
    let v1 = if fault_injection {
        v1.route("/faults/panic", web::post().to(faults::panic))
    } else {
        v1
    };
    cfg.route("/health", web::get().to(health::health))
        .service(
            web::resource("/ws")
                .wrap(authenticated())
                .route(web::get().to(ws::connect)),
        )
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            v1.route("/transfers", web::post().to(transfers::submit))
                .route("/transfers", web::get().to(transfers::list))
                .route("/transfers/{id}", web::get().to(transfers::get))
                // Compatibility routes of existing DelTran clients.
                .route("/transfer", web::post().to(transfers::submit))
                .route("/transaction/{id}", web::get().to(transfers::get))
                .route("/transactions", web::get().to(transfers::list))
                .route("/banks", web::get().to(registry::list_banks))
                .route("/banks", web::post().to(registry::create_bank))
                .route("/banks/{code}", web::get().to(registry::get_bank))
                .route("/banks/{code}", web::patch().to(registry::update_bank))
                .route(
                    "/banks/{code}/positions",
                    web::get().to(registry::positions),
                )
                .route("/corridors", web::get().to(registry::list_corridors))
                .route("/corridors", web::post().to(registry::create_corridor))
                .route("/corridors/{id}", web::get().to(registry::get_corridor))
                .route(
                    "/corridors/{id}",
                    web::patch().to(registry::update_corridor),
                )
                .route("/windows", web::get().to(windows::list))
                .route("/windows/current", web::get().to(windows::current))
                .route(
                    "/windows/current/close",
                    web::post().to(windows::close_current),
                )
                .route("/windows/{id}", web::get().to(windows::get))
                .route("/settlements", web::get().to(windows::list_settlements))
                .route(
                    "/settlements/{id}",
                    web::get().to(windows::settlement_status),
                )
                .route(
                    "/settlements/{id}/status",
                    web::get().to(windows::settlement_status),
                )
                .route(
                    "/settlements/{id}/confirm",
                    web::post().to(windows::confirm),
                )
                .route("/settlements/{id}/fail", web::post().to(windows::fail))
                .route("/keys", web::post().to(keys::create))
                .route("/keys", web::get().to(keys::list))
                .route("/keys/{id}/revoke", web::post().to(keys::revoke))
                .route("/audit-log", web::get().to(audit_log::list)),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route".into()))
}
