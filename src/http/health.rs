//! Liveness, readiness and metrics.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::auth::require_local_or_reader;
use super::error::ApiError;
use super::AppState;

/// How long `/ready` waits for the database.
const READY_WAIT_MAX: Duration = Duration::from_secs(2);

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "healthy",
        "service": "deltran",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn ready(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_local_or_reader(&req, &state)?;
    match tokio::time::timeout(READY_WAIT_MAX, state.store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"}))),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::unavailable("the database did not answer in time")),
    }
}

pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_local_or_reader(&req, &state)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
