//! Cluster mode at the HTTP edge (docs/SCALE-OUT.md): any node takes any request.
//! A request about a bank of another partition goes to that partition's node over
//! NATS (request and reply) and its answer comes back as if local; a list of
//! transfers is asked of every partition and their pages merged; this node serves
//! what others forward to it; and the cluster's state and windows' results are read
//! here.
//!
//! A forwarded submission carries the request body as it came and its
//! `Idempotency-Key` header. The node that took the request has authenticated the
//! caller and checked that it may send as the sender; the owner parses the body again
//! (the same parser) and decides it like any submission, so a replay, a rejection or
//! a refusal reads the same whichever node the client called. Any other forwarded
//! request carries its method, path, body and the client's credentials
//! (`FORWARDED_REQUEST_HEADERS`): the owner runs it through its own application, so
//! it authenticates the caller itself and decides exactly as if the client had
//! called it. NATS is the cluster's private network: only nodes publish on the
//! forwarding subjects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::rc::Rc;

use actix_service::IntoServiceFactory;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use futures_util::StreamExt;

use super::auth::Caller;
use super::limits::refuse;
use super::{ApiError, AppState};
use crate::cluster::node::{request_subject, submit_subject};
use crate::cluster::registry::REGISTRY_HOME;
use crate::cluster::ClusterNode;
use crate::domain::cluster::PartitionId;
use crate::domain::{BankCode, Principal, TransferId, WindowId};

/// Forwarded submissions a node works on at once; more are answered `503` at once
/// (the forwarding node passes that on, and the client retries).
const FORWARDED_IN_FLIGHT_MAX: usize = 4096;
/// Beyond the owner's own wait for a commit, how long the forwarding node waits for
/// its answer.
const FORWARD_MARGIN: Duration = Duration::from_secs(2);

/// A forwarded answer's status, on the wire.
const STATUS_HEADER: &str = "Deltran-Status";
/// The headers of a forwarded answer that travel back to the client as they are.
const CARRIED_HEADERS: [&str; 5] = [
    "content-type",
    "idempotent-replayed",
    "retry-after",
    "www-authenticate",
    "content-disposition",
];
/// A forwarded request's method and path (with its query), on the wire.
const METHOD_HEADER: &str = "Deltran-Method";
const PATH_HEADER: &str = "Deltran-Path";
/// The headers of a client's request that travel with it to the owner: its
/// credentials (the owner authenticates the caller itself), its idempotency key, what
/// it sends and accepts, and its request id (the owner's log then names it too).
const FORWARDED_REQUEST_HEADERS: [&str; 5] = [
    "authorization",
    "idempotency-key",
    "content-type",
    "accept",
    "x-request-id",
];
/// Marks a request another node forwarded (in its extensions, where a client cannot
/// put it): the owner serves it as its own and never forwards it again (a node that
/// disagrees about the owner answers `421`, it does not bounce the request back).
struct Forwarded;
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
    let subject = submit_subject(owner);
    forward(node, owner, subject, headers, body.to_vec(), wait_max).await
}

/// A request as it travels to another node: its method, path and query, and the
/// client's headers that matter, as NATS headers (the body is the message's).
fn wire_request(req: &actix_web::HttpRequest) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(METHOD_HEADER, req.method().as_str());
    let path = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str());
    headers.insert(PATH_HEADER, path);
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Sends a request (`wire_request`) and its body to the node of partition `owner`,
/// and answers what the owner answered.
async fn forward_request(
    node: &ClusterNode,
    owner: PartitionId,
    request: async_nats::HeaderMap,
    body: Vec<u8>,
    wait_max: Duration,
) -> Result<HttpResponse, ApiError> {
    forward(node, owner, request_subject(owner), request, body, wait_max).await
}

/// Sends `body` with `headers` to `subject`, served by partition `owner`'s node, and
/// answers its answer: `503 partition_unavailable` when no node serves the partition
/// or it did not answer within `wait_max` and a margin.
async fn forward(
    node: &ClusterNode,
    owner: PartitionId,
    subject: String,
    headers: async_nats::HeaderMap,
    body: Vec<u8>,
    wait_max: Duration,
) -> Result<HttpResponse, ApiError> {
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(body.into())
        .timeout(Some(wait_max + FORWARD_MARGIN));
    let answer = node
        .client
        .send_request(subject, request)
        .await
        .map_err(|e| {
            ApiError::PartitionUnavailable(match e.kind() {
                async_nats::client::RequestErrorKind::NoResponders => format!(
                    "partition {} (the bank's) has no node serving it right now",
                    owner.0
                ),
                _ => format!(
                    "partition {} (the bank's) did not answer in time; what was asked may \
                     or may not be done: send it again (with the same idempotency key)",
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

/// Where a request is served in cluster mode.
#[derive(Debug, PartialEq)]
enum Destination {
    /// Here: a bank of this partition, a route of the whole hub's registry or of this
    /// partition's windows, or a route that finds its data across the cluster itself
    /// (a submission, a transfer's read).
    Here,
    /// At the partition that owns the bank the request is about.
    Partition(PartitionId),
    /// At the partition that holds the transfer the request acts on.
    HolderOf(TransferId),
    /// At the partition of the bank that the JSON body's `field` names.
    BankInBody(&'static str),
    /// At every partition, their pages merged: a list of transfers.
    Everywhere,
}

/// Where `method path` is served when `caller_bank` (a bank's key; `None` for the
/// hub's) asks it of the node of `here`, under `assignment`.
fn destination(
    method: &Method,
    path: &str,
    caller_bank: Option<&BankCode>,
    assignment: &crate::domain::cluster::Assignment,
    here: PartitionId,
) -> Destination {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Destination::Here;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let at_owner = |bank: Option<&BankCode>| {
        bank.and_then(|b| assignment.elsewhere(b, here))
            .map_or(Destination::Here, Destination::Partition)
    };
    let owner_of = |code: &str| at_owner(BankCode::parse(code).ok().as_ref());
    match (method.as_str(), segments.as_slice()) {
        (_, ["banks", code, ..]) => owner_of(code),
        ("GET", ["reports", "windows", _, "banks", code, "statement"]) => owner_of(code),
        ("GET", ["tokens", "balances", bank]) => owner_of(bank),
        ("POST", ["banks"]) => Destination::BankInBody("code"),
        ("POST", ["tokens", "mint" | "burn"]) => Destination::BankInBody("bank"),
        ("POST", ["transfers", id, "cancel" | "return" | "release" | "reject"]) => {
            TransferId::parse(id).map_or(Destination::Here, Destination::HolderOf)
        }
        ("GET", ["transfers" | "transactions"]) => Destination::Everywhere,
        // The hub-wide records change at their home, which shares them with every
        // node; the screening list is read there too (its entries' ids are the
        // home's).
        ("POST", ["corridors"]) | ("PATCH", ["corridors", _]) | (_, ["screening", ..])
            if here != REGISTRY_HOME =>
        {
            Destination::Partition(REGISTRY_HOME)
        }
        // What a bank sends or reads about itself goes to its own partition.
        ("POST", ["iso20022", "pacs.008" | "pain.001" | "camt.054"])
        | ("POST", ["transfers", "batch"])
        | ("GET", ["reports", "compliance" | "summary"]) => at_owner(caller_bank),
        _ => Destination::Here,
    }
}

/// In cluster mode, sends a request about a bank of another partition to that
/// partition's node and answers what it answered (`destination` says which requests
/// go where); everything else is served here. Inside authentication: a caller that is
/// refused never costs a hop, and the owner authenticates the caller again itself.
pub async fn route_to_owner<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("the app has its state")
        .clone();
    let node = match &state.cluster {
        Some(node) if !req.extensions().contains::<Forwarded>() => node.clone(),
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let caller_bank = req
        .extensions()
        .get::<Principal>()
        .and_then(|p| p.only_bank().cloned());
    let destination = destination(
        req.method(),
        req.path(),
        caller_bank.as_ref(),
        &node.assignment,
        node.partition,
    );
    let mut body = None;
    let owner = match destination {
        Destination::Here => None,
        Destination::Partition(owner) => Some(owner),
        Destination::HolderOf(id) => match holder_elsewhere(&state, &node, id).await {
            Ok(owner) => owner,
            Err(error) => return Ok(refuse(req, error)),
        },
        Destination::BankInBody(field) => {
            let read = match read_forwardable(&mut req, &state, &node).await {
                Ok(read) => read,
                Err(error) => return Ok(refuse(req, error)),
            };
            let bank = serde_json::from_slice::<serde_json::Value>(&read)
                .ok()
                .and_then(|v| v[field].as_str().and_then(|c| BankCode::parse(c).ok()));
            let owner = bank.and_then(|b| node.partition_elsewhere(&b));
            body = Some(read);
            owner
        }
        Destination::Everywhere => return gather_lists(req, next, &state, &node).await,
    };
    let Some(owner) = owner else {
        // Served here: the body read to find the bank goes back where it was.
        if let Some(read) = body {
            req.set_payload(actix_web::dev::Payload::from(read));
        }
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let body = match body {
        Some(read) => read,
        None => match read_forwardable(&mut req, &state, &node).await {
            Ok(read) => read,
            Err(error) => return Ok(refuse(req, error)),
        },
    };
    let wait = state.limits.submit_wait_max;
    let request = wire_request(req.request());
    match forward_request(&node, owner, request, body.to_vec(), wait).await {
        Ok(response) => {
            let (request, _) = req.into_parts();
            Ok(ServiceResponse::new(request, response).map_into_right_body())
        }
        Err(error) => Ok(refuse(req, error)),
    }
}

/// A request's body, to forward: within the largest body this engine takes (an ISO
/// 20022 message's; the owner applies the route's own bound) and within what one
/// NATS message carries.
async fn read_forwardable(
    req: &mut ServiceRequest,
    state: &AppState,
    node: &ClusterNode,
) -> Result<web::Bytes, ApiError> {
    let limit = (state.limits.body_size_max_bytes)
        .max(state.limits.iso_message_size_max_bytes)
        .min(node.message_size_max() - FORWARD_HEADROOM_BYTES);
    super::read_body(req.take_payload(), limit).await
}

/// Room left in a forwarded message for its headers.
const FORWARD_HEADROOM_BYTES: usize = 16 * 1024;

/// The partition that holds transfer `id` when it is not this one (`None`: held here,
/// or nowhere, and this node answers as for any unknown transfer).
async fn holder_elsewhere(
    state: &AppState,
    node: &ClusterNode,
    id: TransferId,
) -> Result<Option<PartitionId>, ApiError> {
    match state.store.transfer(id).await {
        Ok(_) => Ok(None),
        Err(crate::store::StoreError::NotFound) => node
            .transfer_elsewhere(id)
            .await
            .map(|found| found.map(|(partition, _)| partition))
            .map_err(|e| {
                ApiError::PartitionUnavailable(format!(
                    "transfer {id} may be on a partition that did not answer ({e}); try again"
                ))
            }),
        Err(e) => Err(e.into()),
    }
}

/// A list of transfers across the cluster: the same request (as its caller, so each
/// partition shows only what the caller may see) asked of every other partition and
/// of this one at once, and their pages merged by id (the lists' order), cut to the
/// page size with the cursor of the last one when any partition has more. The
/// cursor is an id, so the next page asks every partition for what follows it.
async fn gather_lists<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    state: &AppState,
    node: &ClusterNode,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let query = web::Query::<PageQuery>::from_query(req.query_string()).ok();
    let limit = query
        .as_ref()
        .filter(|q| q.partition_only.as_deref() != Some("true"))
        .and_then(|q| super::page_limit(q.limit.as_deref(), state).ok());
    // A query this node refuses is refused the same by every other one (no hop), and
    // `partition_only=true` asks for this partition's alone.
    let Some(limit) = limit else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let others = node.other_partitions();
    let wait = state.limits.submit_wait_max;
    // The request's parts, not the request: actix routes a request only while
    // nothing else holds it.
    let asked = wire_request(req.request());
    let elsewhere = futures_util::future::join_all(
        others
            .iter()
            .map(|p| forward_request(node, *p, asked.clone(), Vec::new(), wait)),
    );
    let (elsewhere, local) = futures_util::future::join(elsewhere, next.call(req)).await;
    let local = local?;
    if local.status() != StatusCode::OK {
        return Ok(local.map_into_left_body());
    }
    let (request, response) = local.into_parts();
    let mut pages = vec![body_bytes(response).await];
    for answer in elsewhere {
        match answer {
            Ok(page) if page.status() == StatusCode::OK => pages.push(body_bytes(page).await),
            Ok(refused) => return Ok(ServiceResponse::new(request, refused).map_into_right_body()),
            Err(error) => {
                let response = actix_web::ResponseError::error_response(&error);
                return Ok(ServiceResponse::new(request, response).map_into_right_body());
            }
        }
    }
    let merged = merge_pages(&pages, limit);
    let response = match merged {
        Some(merged) => HttpResponse::Ok().json(merged),
        None => actix_web::ResponseError::error_response(&ApiError::PartitionUnavailable(
            "a partition's page of transfers does not read".into(),
        )),
    };
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<String>,
    partition_only: Option<String>,
}

async fn body_bytes<B: MessageBody>(response: HttpResponse<B>) -> web::Bytes {
    actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_default()
}

/// Pages of transfers (`{"transactions": [...], "next_cursor": ...}`) from several
/// partitions merged into one of at most `limit`, by id; `None` when one does not
/// read. More follow when the pages held more than `limit` together, or when any
/// partition had more than it sent.
fn merge_pages(pages: &[web::Bytes], limit: i64) -> Option<serde_json::Value> {
    let mut transfers = Vec::new();
    let mut more_elsewhere = false;
    for page in pages {
        let mut page: serde_json::Value = serde_json::from_slice(page).ok()?;
        more_elsewhere |= !page["next_cursor"].is_null();
        let serde_json::Value::Array(items) = page["transactions"].take() else {
            return None;
        };
        for item in items {
            let id = TransferId::parse(item["transaction_id"].as_str()?).ok()?;
            transfers.push((id, item));
        }
    }
    transfers.sort_by_key(|(id, _)| *id);
    let (page, next) = super::paginate(transfers, limit, |(id, _)| id.to_string());
    let next = next.or_else(|| {
        more_elsewhere
            .then(|| page.last().map(|(id, _)| id.to_string()))
            .flatten()
    });
    Some(serde_json::json!({
        "transactions": page.into_iter().map(|(_, item)| item).collect::<Vec<_>>(),
        "next_cursor": next,
    }))
}

/// A transfer another partition holds, read from it and shown to `caller` only if
/// it is a party (or reads everything), as a transfer held here would be.
pub(super) async fn transfer_elsewhere(
    node: &ClusterNode,
    caller: &Caller,
    id: crate::domain::TransferId,
    what: String,
) -> Result<HttpResponse, ApiError> {
    let (_, view) = node
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

/// Takes what other nodes forward to this node's partition: submissions, each
/// decided as a submission made here, and any other request, run through this
/// node's own application as if its client had called here; at most
/// `FORWARDED_IN_FLIGHT_MAX` at once, more are answered `503` at once.
pub fn serve_forwarded(state: web::Data<AppState>, node: Arc<ClusterNode>, fault_injection: bool) {
    let room = Arc::new(tokio::sync::Semaphore::new(FORWARDED_IN_FLIGHT_MAX));
    node.spawn_until_stopped(serve_submissions(state.clone(), node.clone(), room.clone()));
    node.spawn_until_stopped(serve_requests(state, node.clone(), fault_injection, room));
}

/// Answers each forwarded message of `subject` with what `handle` makes of it, many
/// at once (a task each) within `room`; a message past it is answered `503` at once.
async fn serve_each<F, Fut>(
    node: Arc<ClusterNode>,
    subject: String,
    what: &'static str,
    room: Arc<tokio::sync::Semaphore>,
    handle: F,
) where
    F: Fn(async_nats::Message) -> Fut + 'static,
    Fut: std::future::Future<Output = HttpResponse> + 'static,
{
    let mut messages = match node.client.subscribe(subject).await {
        Ok(messages) => messages,
        Err(e) => return node.fail(format!("subscribing to {what}: {e}")),
    };
    let handle = Rc::new(handle);
    while let Some(message) = messages.next().await {
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let (node, room, handle) = (node.clone(), room.clone(), handle.clone());
        actix_web::rt::spawn(async move {
            let response = match room.try_acquire_owned() {
                Ok(_permit) => handle(message).await,
                Err(_) => overloaded(),
            };
            answer(&node, reply, response).await;
        });
    }
}

async fn serve_submissions(
    state: web::Data<AppState>,
    node: Arc<ClusterNode>,
    room: Arc<tokio::sync::Semaphore>,
) {
    let subject = submit_subject(node.partition);
    serve_each(
        node,
        subject,
        "forwarded submissions",
        room,
        move |message| {
            let state = state.clone();
            async move {
                let key = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(KEY_HEADER))
                    .map(|v| v.as_str().to_string());
                super::transfers::submit_forwarded(
                    &state,
                    key.as_deref(),
                    &message.payload,
                    Instant::now(),
                )
                .await
            }
        },
    )
    .await
}

async fn serve_requests(
    state: web::Data<AppState>,
    node: Arc<ClusterNode>,
    fault_injection: bool,
    room: Arc<tokio::sync::Semaphore>,
) {
    let application = super::app(state, fault_injection)
        .into_factory()
        .new_service(actix_web::dev::AppConfig::default())
        .await;
    let Ok(application) = application.map(Rc::new) else {
        return node.fail("building the application for forwarded requests".into());
    };
    let subject = request_subject(node.partition);
    serve_each(node, subject, "forwarded requests", room, move |message| {
        let application = application.clone();
        async move {
            let Some(request) = forwarded_request(&message) else {
                let error = ApiError::FieldInvalid("a forwarded request that does not read".into());
                return actix_web::ResponseError::error_response(&error);
            };
            match application.call(request).await {
                Ok(response) => response.into_parts().1.map_into_boxed_body(),
                Err(error) => error.error_response(),
            }
        }
    })
    .await
}

fn overloaded() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::Overloaded(
        "the bank's partition is at its limit of forwarded requests",
    ))
}

/// A forwarded request as this node's application takes it: its method, path,
/// headers and body as the client sent them to the node that forwarded it, marked
/// as forwarded.
fn forwarded_request(message: &async_nats::Message) -> Option<actix_http::Request> {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let headers = message.headers.as_ref()?;
    let method = Method::from_bytes(headers.get(METHOD_HEADER)?.as_str().as_bytes()).ok()?;
    let uri = headers.get(PATH_HEADER)?.as_str().parse().ok()?;
    let mut request: actix_http::Request =
        actix_http::Request::with_payload(actix_http::Payload::from(message.payload.clone()));
    request.head_mut().method = method;
    request.head_mut().uri = uri;
    actix_http::HttpMessage::extensions_mut(&request).insert(Forwarded);
    let carried = request.headers_mut();
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = headers.get(name) {
            let value = HeaderValue::from_str(value.as_str()).ok()?;
            carried.insert(HeaderName::from_static(name), value);
        }
    }
    Some(request)
}

/// Sends `response` back to the node that forwarded its request. An answer larger
/// than a NATS message carries is replaced by a refusal that says so.
async fn answer<B: MessageBody>(
    node: &ClusterNode,
    reply: async_nats::Subject,
    response: HttpResponse<B>,
) {
    let (mut headers, mut body) = into_wire(response).await;
    let most = node.message_size_max() - FORWARD_HEADROOM_BYTES;
    if body.len() > most {
        let error = ApiError::RangeTooLarge(format!(
            "the answer ({} bytes) is larger than a node of the cluster forwards ({most} \
             bytes): ask for less at once (a smaller page or range)",
            body.len()
        ));
        (headers, body) = into_wire(actix_web::ResponseError::error_response(&error)).await;
    }
    if let Err(e) = node
        .client
        .publish_with_headers(reply, headers, body.into())
        .await
    {
        tracing::debug!(error = %e, "a forwarded request's answer was not sent");
    }
}

/// An answer as it travels back over NATS: its status, the headers that matter to
/// the client (`CARRIED_HEADERS`) as they are, and the body.
async fn into_wire<B: MessageBody>(response: HttpResponse<B>) -> (async_nats::HeaderMap, Vec<u8>) {
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
    let body = body_bytes(response).await.to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cluster::Assignment;

    fn at(method: Method, path: &str, caller: Option<&str>) -> Destination {
        let assignment = Assignment::parse("ICICI=0,ENBD=1").unwrap();
        let caller = caller.map(|c| BankCode::parse(c).unwrap());
        destination(&method, path, caller.as_ref(), &assignment, PartitionId(0))
    }

    #[test]
    fn a_request_goes_where_its_bank_or_transfer_is() {
        let elsewhere = Destination::Partition(PartitionId(1));
        assert_eq!(at(Method::GET, "/api/v1/banks/ENBD", None), elsewhere);
        assert_eq!(
            at(Method::POST, "/api/v1/banks/ENBD/balances/funds-in", None),
            elsewhere
        );
        assert_eq!(
            at(Method::PATCH, "/api/v1/banks/ICICI", None),
            Destination::Here
        );
        assert_eq!(
            at(
                Method::GET,
                "/api/v1/reports/windows/3/banks/ENBD/statement",
                None
            ),
            elsewhere
        );
        assert_eq!(
            at(Method::GET, "/api/v1/tokens/balances/ENBD", None),
            elsewhere
        );
        assert_eq!(
            at(Method::POST, "/api/v1/banks", None),
            Destination::BankInBody("code")
        );
        let id = TransferId::new();
        assert_eq!(
            at(
                Method::POST,
                &format!("/api/v1/transfers/{id}/cancel"),
                None
            ),
            Destination::HolderOf(id)
        );
        assert_eq!(
            at(Method::POST, "/api/v1/transfers/not-an-id/cancel", None),
            Destination::Here
        );
        assert_eq!(
            at(Method::GET, "/api/v1/transfers", None),
            Destination::Everywhere
        );
        // What a bank sends about itself goes to its partition; the hub's own, and
        // what finds its data across the cluster itself, stays here.
        assert_eq!(
            at(Method::POST, "/api/v1/iso20022/pacs.008", Some("ENBD")),
            elsewhere
        );
        assert_eq!(
            at(Method::POST, "/api/v1/iso20022/pacs.008", Some("ICICI")),
            Destination::Here
        );
        assert_eq!(
            at(Method::POST, "/api/v1/iso20022/pacs.008", None),
            Destination::Here
        );
        assert_eq!(
            at(Method::POST, "/api/v1/transfers/batch", Some("ENBD")),
            elsewhere
        );
        assert_eq!(
            at(Method::POST, "/api/v1/transfers/batch", None),
            Destination::Here
        );
        assert_eq!(
            at(Method::POST, "/api/v1/transfers", Some("ENBD")),
            Destination::Here
        );
        assert_eq!(
            at(Method::GET, &format!("/api/v1/transfers/{id}"), None),
            Destination::Here
        );
        assert_eq!(
            at(Method::GET, "/api/v1/windows", Some("ENBD")),
            Destination::Here
        );
        assert_eq!(at(Method::GET, "/health", None), Destination::Here);
        // The corridors and the screening list change at partition 0, here.
        assert_eq!(
            at(Method::POST, "/api/v1/corridors", None),
            Destination::Here
        );
        let home = |method, path: &str| {
            let assignment = Assignment::parse("ICICI=0,ENBD=1").unwrap();
            destination(&method, path, None, &assignment, PartitionId(1))
        };
        let at_home = Destination::Partition(PartitionId(0));
        assert_eq!(home(Method::POST, "/api/v1/corridors"), at_home);
        assert_eq!(home(Method::PATCH, "/api/v1/corridors/INR-AED"), at_home);
        assert_eq!(home(Method::GET, "/api/v1/corridors"), Destination::Here);
        assert_eq!(home(Method::GET, "/api/v1/screening/entries"), at_home);
        assert_eq!(home(Method::DELETE, "/api/v1/screening/entries/4"), at_home);
        // A bank not named belongs to partition 0, here.
        assert_eq!(
            at(Method::GET, "/api/v1/banks/HDFC", None),
            Destination::Here
        );
    }

    fn page(ids: &[TransferId], next: Option<TransferId>) -> web::Bytes {
        let items: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({"transaction_id": id.to_string()}))
            .collect();
        let next = next.map(|id| id.to_string());
        serde_json::to_vec(&serde_json::json!({"transactions": items, "next_cursor": next}))
            .unwrap()
            .into()
    }

    fn ids_of(merged: &serde_json::Value) -> Vec<String> {
        merged["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["transaction_id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages_merge_in_id_order_with_a_cursor_while_any_partition_has_more() {
        let mut ids: Vec<TransferId> = (0..6).map(|_| TransferId::new()).collect();
        ids.sort();
        let text = |range: std::ops::Range<usize>| {
            ids[range]
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
        };
        // Together more than the page: cut, and the cursor is the last one kept.
        let merged = merge_pages(
            &[page(&[ids[0], ids[3]], None), page(&[ids[1], ids[2]], None)],
            3,
        )
        .unwrap();
        assert_eq!(ids_of(&merged), text(0..3));
        assert_eq!(merged["next_cursor"], ids[2].to_string());
        // Within the page, but a partition has more: the cursor still follows.
        let merged = merge_pages(&[page(&[ids[4]], Some(ids[4])), page(&[], None)], 3).unwrap();
        assert_eq!(ids_of(&merged), text(4..5));
        assert_eq!(merged["next_cursor"], ids[4].to_string());
        // All of it: no cursor.
        let merged = merge_pages(&[page(&[ids[5]], None), page(&[], None)], 3).unwrap();
        assert_eq!(ids_of(&merged), text(5..6));
        assert!(merged["next_cursor"].is_null());
        assert!(merge_pages(&[web::Bytes::from_static(b"{}")], 3).is_none());
    }
}
