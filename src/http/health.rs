//! Liveness, readiness and metrics.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::require_local_or_reader;
use super::error::ApiError;
use super::AppState;

/// How long `/ready` waits for the database.
const READY_WAIT_MAX: Duration = Duration::from_secs(2);

/// Liveness.
///
/// Open to anyone; answers as long as the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "engine",
    responses((status = 200, description = "The engine is alive", body = Health)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "healthy",
        service: "deltran",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    status: &'static str,
    #[schema(example = "deltran")]
    service: &'static str,
    version: &'static str,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    #[schema(example = "ok")]
    database: &'static str,
}

/// Readiness: the database answers.
///
/// Open from loopback; from elsewhere it needs an operator or auditor key.
#[utoipa::path(get, path = "/ready", tag = "engine",
    responses(
        (status = 200, description = "Ready to take transfers", body = Ready),
        (status = 403, description = "Called from another host with a bank key. Problem code: `operator_or_auditor_only`."),
    ))]
pub async fn ready(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_local_or_reader(&req, &state)?;
    match tokio::time::timeout(READY_WAIT_MAX, state.store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Ready {
            status: "ready",
            database: "ok",
        })),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::unavailable("the database did not answer in time")),
    }
}

/// Prometheus metrics (text exposition format).
///
/// Open from loopback; from elsewhere it needs an operator or auditor key.
#[utoipa::path(get, path = "/metrics", tag = "engine",
    responses(
        (status = 200, description = "Every `deltran_*` metric", content_type = "text/plain", body = String),
        (status = 403, description = "Called from another host with a bank key. Problem code: `operator_or_auditor_only`."),
    ))]
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_local_or_reader(&req, &state)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
