//! What every request passes through: a request id (the client's `X-Request-Id` when
//! it is a sensible token, a new one otherwise), echoed in the answer, carried by
//! every log line of the request and put in every problem body; request metrics by
//! route pattern; and one log line for every 5xx answer with its cause.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use super::error::ApiError;
use super::request_id::{RequestId, REQUEST_ID, REQUEST_ID_HEADER};
use super::AppState;
use crate::domain::auth::Principal;
use crate::telemetry::error_chain;

/// Gives the request its id and span, counts and times it by its route pattern (never
/// the raw path, which would make one time series per transfer id), and logs a 5xx.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::from_client(req.headers().get(&REQUEST_ID_HEADER));
    // The span carries the request id only: the caller is named on this middleware's
    // own lines below. Recording it into the span once authenticated cost every
    // request the JSON formatter's re-encoding of the span's fields (3 % of an HTTP
    // worker's CPU, issue 14).
    let span = tracing::info_span!("request", request_id = %id);
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let mut response = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await?;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let request = response.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str();
    let status = response.status();
    if status.is_server_error() {
        let caller = request
            .extensions()
            .get::<Principal>()
            .map(|p| p.key_id.to_string())
            .unwrap_or_default();
        let cause = response
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .and_then(|e| e.cause())
            .map(error_chain)
            .unwrap_or_default();
        let problem = response
            .response()
            .error()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // A partition of the cluster that is down, restarting or moving is an
        // outage the operator sees once on the node itself, not once per request.
        let partition_down = response
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .is_some_and(|e| matches!(e, ApiError::PartitionUnavailable(_)));
        if partition_down {
            tracing::info!(parent: &span, status = status.as_u16(), method, route, caller,
                           problem, "answered that a partition is unavailable");
        } else if status == actix_web::http::StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(parent: &span, status = status.as_u16(), method, route, caller,
                            problem, cause, "answered with a server error");
        } else {
            tracing::warn!(parent: &span, status = status.as_u16(), method, route, caller,
                           problem, cause, "answered with a server error");
        }
    }
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[method, &route, status.as_str()])
            .inc();
        metrics
            .http_request_duration
            .with_label_values(&[method, &route])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn failing() -> Result<actix_web::HttpResponse, ApiError> {
        let cause = std::io::Error::other("disk on fire at block 7");
        Err(ApiError::Internal(Box::new(cause)))
    }

    #[actix_web::test]
    async fn a_server_error_is_logged_with_its_request_id_and_cause_and_never_shown() {
        use actix_web::{test, App};
        let log = Captured::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(observe))
                .route("/boom", web::get().to(failing)),
        )
        .await;
        let request = test::TestRequest::get()
            .uri("/boom")
            .insert_header(("X-Request-Id", "req-42"))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers().get("x-request-id").unwrap(), "req-42");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["request_id"], "req-42");
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("disk on fire"), "{body}");
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let line = logged
            .lines()
            .find(|l| l.contains("answered with a server error"))
            .unwrap_or_else(|| panic!("no 5xx line in {logged:?}"));
        assert!(line.contains("req-42"), "{line}");
        assert!(line.contains("disk on fire at block 7"), "{line}");
    }

    #[actix_web::test]
    async fn a_request_without_an_id_gets_one_in_its_answer() {
        use actix_web::{test, App};
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(observe))
                .route("/boom", web::get().to(failing)),
        )
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["request_id"], id.as_str());
    }
}
