//! Cluster mode at the HTTP edge (docs/SCALE-OUT.md): a submission whose sender is
//! on another partition goes to that partition's node over NATS (request and reply)
//! and its answer comes back as if local; this node takes the submissions others
//! forward to it; and the cluster's state and windows' results are read here.
//!
//! A forwarded submission carries the request body as it came and its
//! `Idempotency-Key` header. The node that took the request has authenticated the
//! caller and checked that it may send as the sender; the owner parses the body again
//! (the same parser) and decides it like any submission, so a replay, a rejection or
//! a refusal reads the same whichever node the client called. NATS is the cluster's
//! private network: only nodes publish on the forwarding subjects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::cluster::node::submit_subject;
use crate::cluster::ClusterNode;
use crate::domain::cluster::PartitionId;
use crate::domain::WindowId;

/// Forwarded submissions a node works on at once; more are answered `503` at once
/// (the forwarding node passes that on, and the client retries).
const FORWARDED_IN_FLIGHT_MAX: usize = 4096;
/// Beyond the owner's own wait for a commit, how long the forwarding node waits for
/// its answer.
const FORWARD_MARGIN: Duration = Duration::from_secs(2);

/// A forwarded answer's status, on the wire.
const STATUS_HEADER: &str = "Deltran-Status";
/// The headers of a forwarded answer that travel back to the client as they are.
const CARRIED_HEADERS: [&str; 3] = ["content-type", "idempotent-replayed", "retry-after"];
/// A forwarded submission's idempotency key, as the client's header gave it.
const KEY_HEADER: &str = "Idempotency-Key";

fn cluster_of(state: &AppState) -> Result<&Arc<ClusterNode>, ApiError> {
    state
        .cluster
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("cluster (this engine runs alone)".into()))
}

/// The cluster and the window a cluster route names, for a caller who reads
/// everything.
fn cluster_window<'a>(
    state: &'a AppState,
    caller: &Caller,
    path: &str,
) -> Result<(&'a Arc<ClusterNode>, WindowId), ApiError> {
    caller.require_reader_of_everything()?;
    let window = WindowId::parse(path).map_err(|error| ApiError::Input {
        field: "window_id",
        error,
    })?;
    Ok((cluster_of(state)?, window))
}

/// Sends a submission to the node of partition `owner` and answers what it answered.
pub(super) async fn forward_submission(
    node: &ClusterNode,
    owner: PartitionId,
    idempotency_key: Option<&str>,
    body: &[u8],
    wait_max: Duration,
) -> Result<HttpResponse, ApiError> {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(key) = idempotency_key {
        headers.insert(KEY_HEADER, key);
    }
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(body.to_vec().into())
        .timeout(Some(wait_max + FORWARD_MARGIN));
    let answer = node
        .client
        .send_request(submit_subject(owner), request)
        .await
        .map_err(|e| {
            ApiError::PartitionUnavailable(match e.kind() {
                async_nats::client::RequestErrorKind::NoResponders => format!(
                    "partition {} (the sender's) has no node serving it right now",
                    owner.0
                ),
                _ => format!(
                    "partition {} (the sender's) did not answer in time; the transfer may \
                     or may not be stored: send it again with the same idempotency key",
                    owner.0
                ),
            })
        })?;
    let header = |name: &str| {
        answer
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let status = header(STATUS_HEADER)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            ApiError::PartitionUnavailable(format!("partition {}'s answer does not read", owner.0))
        })?;
    let mut response = HttpResponse::build(status);
    for name in CARRIED_HEADERS {
        if let Some(value) = header(name) {
            response.insert_header((name, value));
        }
    }
    Ok(response.body(answer.payload))
}

/// A transfer another partition holds, read from it and shown to `caller` only if
/// it is a party (or reads everything), as a transfer held here would be.
pub(super) async fn transfer_elsewhere(
    node: &ClusterNode,
    caller: &Caller,
    id: crate::domain::TransferId,
    what: String,
) -> Result<HttpResponse, ApiError> {
    let view = node
        .transfer_elsewhere(id)
        .await
        .map_err(|e| {
            ApiError::PartitionUnavailable(format!(
                "{what} may be on a partition that did not answer ({e}); try again"
            ))
        })?
        .ok_or_else(|| ApiError::NotFound(what.clone()))?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&view).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let party = |field: &str| {
        parsed[field]
            .as_str()
            .and_then(|code| crate::domain::BankCode::parse(code).ok())
    };
    let sees = [party("sender_bank"), party("receiver_bank")]
        .iter()
        .flatten()
        .any(|bank| caller.0.sees(bank));
    if !sees {
        return Err(ApiError::NotFound(what));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(view))
}

/// Takes the submissions other nodes forward to this node's partition, each decided
/// as a submission made here, at most `FORWARDED_IN_FLIGHT_MAX` at once.
pub fn serve_forwarded(state: web::Data<AppState>, node: Arc<ClusterNode>) {
    let serving = node.clone();
    node.spawn_until_stopped(async move {
        let node = serving;
        let mut requests = match node.client.subscribe(submit_subject(node.partition)).await {
            Ok(requests) => requests,
            Err(e) => return node.fail(format!("subscribing to forwarded submissions: {e}")),
        };
        let room = Arc::new(tokio::sync::Semaphore::new(FORWARDED_IN_FLIGHT_MAX));
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply.clone() else {
                continue;
            };
            let (state, node, room) = (state.clone(), node.clone(), room.clone());
            actix_web::rt::spawn(async move {
                let response = match room.try_acquire_owned() {
                    Ok(_permit) => {
                        let key = request
                            .headers
                            .as_ref()
                            .and_then(|h| h.get(KEY_HEADER))
                            .map(|v| v.as_str().to_string());
                        super::transfers::submit_forwarded(
                            &state,
                            key.as_deref(),
                            &request.payload,
                            Instant::now(),
                        )
                        .await
                    }
                    Err(_) => actix_web::ResponseError::error_response(&ApiError::Overloaded(
                        "the sender's partition is at its limit of forwarded submissions",
                    )),
                };
                let (headers, body) = into_wire(response).await;
                if let Err(e) = node
                    .client
                    .publish_with_headers(reply, headers, body.into())
                    .await
                {
                    tracing::debug!(error = %e, "a forwarded submission's answer was not sent");
                }
            });
        }
    });
}

/// An answer as it travels back over NATS: its status, the headers that matter to
/// the client (`CARRIED_HEADERS`) as they are, and the body.
async fn into_wire(response: HttpResponse) -> (async_nats::HeaderMap, Vec<u8>) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        STATUS_HEADER,
        response.status().as_u16().to_string().as_str(),
    );
    for name in CARRIED_HEADERS {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name, value);
        }
    }
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (headers, body)
}

/// The cluster as this node sees it.
///
/// `GET /api/v1/cluster`: the node, its partition and lease epoch, whether it
/// coordinates the cut-offs now, its open window, and the assignment of banks to
/// partitions. Operator and auditor; 404 when the engine runs alone.
#[utoipa::path(get, path = "/api/v1/cluster", operation_id = "get_cluster", tag = "cluster",
    responses(
        (status = 200, description = "This node's view of the cluster"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
        (status = 404, description = "Problem code: `not_found` (the engine runs alone, not in cluster mode)"),
    ))]
pub async fn status(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let node = cluster_of(&state)?;
    let open = state
        .engine
        .clock
        .send(crate::actors::clock::CurrentWindow)
        .await
        .ok()
        .flatten();
    let assignment: serde_json::Map<String, serde_json::Value> = node
        .assignment
        .pairs()
        .map(|(bank, p)| (bank.as_str().to_string(), p.0.into()))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "node": node.node.0,
        "partition": node.partition.0,
        "epoch": node.epoch.0,
        "coordinator": node.is_coordinator(),
        "open_window": open.map(|w| w.get()),
        "partitions": node.assignment.partitions().iter().map(|p| p.0).collect::<Vec<_>>(),
        "assignment": assignment,
    })))
}

/// A window's result across the cluster.
///
/// `GET /api/v1/cluster/windows/{id}`: what the coordinator published once every
/// partition had sealed the window: the netting of their sums added (positions per
/// bank and currency, currencies, instructions) and what each partition sealed.
/// Operator and auditor; 404 until the window is cut everywhere, or when the engine
/// runs alone.
#[utoipa::path(get, path = "/api/v1/cluster/windows/{id}", operation_id = "get_cluster_window", tag = "cluster",
    params(("id" = i64, Path, description = "The window's id")),
    responses(
        (status = 200, description = "The window's result across the cluster"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
        (status = 404, description = "Problem code: `not_found` (not cut everywhere yet, or the engine runs alone)"),
        (status = 422, description = "Problem code: `window_id_invalid`"),
        (status = 503, description = "Problem code: `unavailable` (NATS did not answer)"),
    ))]
pub async fn window(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (node, window) = cluster_window(&state, &caller, &path)?;
    match node.window_result(window).await {
        Ok(Some(view)) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(view)),
        Ok(None) => Err(ApiError::NotFound(format!(
            "window {window}'s result across the cluster"
        ))),
        Err(e) => Err(ApiError::Unavailable {
            detail: "the cluster's log did not answer".into(),
            cause: Some(Box::new(e)),
        }),
    }
}

/// The credit legs of a window this node's partition received.
///
/// `GET /api/v1/cluster/windows/{id}/credits`: what other partitions' transfers of
/// window `id` credited to this partition's banks, applied here once each, per bank
/// and currency (a cancelled transfer's reversal taken off), and how many legs this
/// partition still owes others (its outbox). Operator and auditor; 404 when the
/// engine runs alone.
#[utoipa::path(get, path = "/api/v1/cluster/windows/{id}/credits", operation_id = "get_cluster_window_credits", tag = "cluster",
    params(("id" = i64, Path, description = "The window's id")),
    responses(
        (status = 200, description = "The window's credit legs applied by this partition"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
        (status = 404, description = "Problem code: `not_found` (the engine runs alone)"),
        (status = 422, description = "Problem code: `window_id_invalid`"),
    ))]
pub async fn window_credits(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (node, window) = cluster_window(&state, &caller, &path)?;
    let applied = state.store.applied_credits(window).await?;
    let owed = state.store.owed_leg_count().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "window_id": window.get(),
        "partition": node.partition.0,
        "owed_legs": owed,
        "applied": applied.iter().map(|a| serde_json::json!({
            "bank": a.receiver.as_str(),
            "currency": a.currency.as_str(),
            "amount": a.currency.format(a.amount),
            "legs": a.legs,
        })).collect::<Vec<_>>(),
    })))
}
