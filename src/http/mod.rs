//! The HTTP edge: turns JSON into domain types, calls the engine, and renders the
//! answer with `views`; nothing else. Handlers parse, call, render.

pub mod admission;
mod audit_log;
pub mod auth;
mod balances;
mod batch;
pub mod cluster;
pub mod dashboard;
pub mod error;
mod faults;
mod health;
pub mod iso20022;
pub mod keys;
pub mod limits;
pub mod middleware;
pub mod openapi;
mod registry;
pub(crate) mod reports;
pub mod request_id;
pub mod screening;
pub mod transfers;
mod windows;
pub mod ws;

use std::sync::Arc;

use actix_web::http::Method;
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
    /// Cluster mode: this node of the cluster (`None` when the engine runs alone).
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes.
pub async fn read_body<S>(mut payload: S, limit: usize) -> Result<web::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
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

/// A route as the engine serves it: method and full path (`{name}` marks a path
/// parameter), and the canonical route it is a compatibility alias of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRoute {
    pub method: Method,
    pub path: String,
    pub alias_of: Option<String>,
}

impl ServedRoute {
    /// A `GET` route registered outside `Routes` (a resource with its own middleware,
    /// or static files), written down by hand beside its registration.
    fn get(path: &str) -> Self {
        ServedRoute {
            method: Method::GET,
            path: path.into(),
            alias_of: None,
        }
    }
}

/// A handler actix can route to: what `actix_web::Route::to` asks of one.
trait Endpoint<Args>: actix_web::Handler<Args, Output: actix_web::Responder + 'static> {}

impl<F, Args> Endpoint<Args> for F where
    F: actix_web::Handler<Args, Output: actix_web::Responder + 'static>
{
}

/// Builds routes and writes down each one it builds, so the list the OpenAPI
/// document is checked against (and its aliases are copied from) is the very list
/// actix serves, not a second one kept by hand.
struct Routes<'a> {
    prefix: &'static str,
    built: Vec<(&'static str, actix_web::Route)>,
    served: &'a mut Vec<ServedRoute>,
}

impl<'a> Routes<'a> {
    fn under(prefix: &'static str, served: &'a mut Vec<ServedRoute>) -> Self {
        Routes {
            prefix,
            built: Vec::new(),
            served,
        }
    }

    fn add<Args: actix_web::FromRequest + 'static>(
        mut self,
        method: Method,
        path: &'static str,
        alias_of: Option<&'static str>,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.served.push(ServedRoute {
            method: method.clone(),
            path: format!("{}{path}", self.prefix),
            alias_of: alias_of.map(|canonical| format!("{}{canonical}", self.prefix)),
        });
        self.built.push((path, web::method(method).to(handler)));
        self
    }

    fn get<Args: actix_web::FromRequest + 'static>(
        self,
        path: &'static str,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.add(Method::GET, path, None, handler)
    }

    fn post<Args: actix_web::FromRequest + 'static>(
        self,
        path: &'static str,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.add(Method::POST, path, None, handler)
    }

    fn patch<Args: actix_web::FromRequest + 'static>(
        self,
        path: &'static str,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.add(Method::PATCH, path, None, handler)
    }

    fn delete<Args: actix_web::FromRequest + 'static>(
        self,
        path: &'static str,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.add(Method::DELETE, path, None, handler)
    }

    /// A compatibility route of existing DelTran clients: served by the handler of
    /// `canonical` and documented as its copy, or served by a handler of its own
    /// (its request differs) with its own documentation, marked deprecated.
    fn alias<Args: actix_web::FromRequest + 'static>(
        self,
        method: Method,
        path: &'static str,
        canonical: &'static str,
        handler: impl Endpoint<Args>,
    ) -> Self {
        self.add(method, path, Some(canonical), handler)
    }

    fn into_scope(self) -> actix_web::Scope {
        self.built
            .into_iter()
            .fold(web::scope(self.prefix), |scope, (path, route)| {
                scope.route(path, route)
            })
    }

    fn register(self, cfg: &mut web::ServiceConfig) {
        for (path, route) in self.built {
            cfg.route(path, route);
        }
    }
}

/// The engine's application: its state, the middleware every request passes
/// (`observe`, then the rate and query guard) and every route. The HTTP server builds
/// one per worker; in cluster mode a node builds one more for the requests other
/// nodes forward to it (`cluster::serve_forwarded`).
pub fn app(
    state: web::Data<AppState>,
    fault_injection: bool,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cluster_mode = state.cluster.is_some();
    actix_web::App::new()
        .app_data(state)
        .wrap(actix_web::middleware::from_fn(limits::guard))
        .wrap(actix_web::middleware::from_fn(observe))
        .configure(|cfg| {
            routes_of(cfg, fault_injection, cluster_mode);
        })
}

/// Every route of the v1 API, with the compatibility aliases; with `fault_injection`
/// also the chaos suite's `POST /api/v1/faults/panic` (see `faults`). Answers the
/// list of routes it registered.
pub fn routes(cfg: &mut web::ServiceConfig, fault_injection: bool) -> Vec<ServedRoute> {
    routes_of(cfg, fault_injection, false)
}

/// `routes`, and in cluster mode (`cluster_mode`) the forwarding of requests about
/// other partitions' banks (`cluster::route_to_owner`; a lone engine does not pay
/// for it: it showed as 1% of the engine's CPU at saturation).
fn routes_of(
    cfg: &mut web::ServiceConfig,
    fault_injection: bool,
    cluster_mode: bool,
) -> Vec<ServedRoute> {
    let mut served = Vec::new();
    Routes::under("", &mut served)
        .get("/health", health::health)
        .get("/ready", health::ready)
        .get("/metrics", health::metrics)
        .get("/api-docs/openapi.json", openapi::document)
        .register(cfg);
    // The dashboard's static files (GET and HEAD; no key: they hold no data).
    dashboard::routes(cfg);
    served.extend(dashboard::paths().map(ServedRoute::get));
    // The feed's upgrade needs a key like the API.
    served.push(ServedRoute::get("/ws"));
    cfg.service(
        web::resource("/ws")
            .wrap(actix_web::middleware::from_fn(auth::authenticate))
            .route(web::get().to(ws::connect)),
    );
    let v1 = Routes::under("/api/v1", &mut served);
    let v1 = match fault_injection {
        true => v1.post("/faults/panic", faults::panic),
        false => v1,
    };
    let v1 = v1
        .post("/transfers", transfers::submit)
        .post("/transfers/batch", batch::submit_batch)
        .get("/transfers", transfers::list)
        .get("/transfers/{id}", transfers::get)
        .post("/transfers/{id}/cancel", transfers::cancel)
        .post("/transfers/{id}/return", transfers::return_transfer)
        .get("/reports/compliance", reports::compliance)
        .post("/transfers/{id}/release", transfers::release_held)
        .post("/transfers/{id}/reject", transfers::reject_held)
        .post("/iso20022/pacs.008", iso20022::pacs008)
        .post("/iso20022/pain.001", iso20022::pain001)
        .post("/iso20022/camt.054", iso20022::camt054)
        .post("/iso20022/pacs.002", iso20022::settlement::pacs002)
        .get(
            "/banks/{code}/statements/camt.053",
            iso20022::statement::camt053,
        )
        .alias(Method::POST, "/transfer", "/transfers", transfers::submit)
        .alias(
            Method::GET,
            "/transaction/{id}",
            "/transfers/{id}",
            transfers::get,
        )
        .alias(Method::GET, "/transactions", "/transfers", transfers::list)
        .get("/banks", registry::list_banks)
        .post("/banks", registry::create_bank)
        .get("/banks/{code}", registry::get_bank)
        .patch("/banks/{code}", registry::update_bank)
        .get("/banks/{code}/positions", registry::positions)
        .get("/banks/{code}/balances", balances::balances)
        .post("/banks/{code}/balances/funds-in", balances::funds_in)
        .post("/banks/{code}/balances/funds-out", balances::funds_out)
        // The token routes of existing clients: their own handlers (the bank is in
        // the body or the path), documented as deprecated like the other aliases.
        .alias(
            Method::POST,
            "/tokens/mint",
            "/banks/{code}/balances/funds-in",
            balances::mint,
        )
        .alias(
            Method::POST,
            "/tokens/burn",
            "/banks/{code}/balances/funds-out",
            balances::burn,
        )
        .alias(
            Method::GET,
            "/tokens/balances/{bank}",
            "/banks/{code}/balances",
            balances::token_balances,
        )
        .get("/corridors", registry::list_corridors)
        .post("/corridors", registry::create_corridor)
        .get("/corridors/{id}", registry::get_corridor)
        .patch("/corridors/{id}", registry::update_corridor)
        .get("/windows", windows::list)
        .get("/windows/current", windows::current)
        .post("/windows/current/close", windows::close_current)
        .get("/windows/{id}", windows::get)
        .get("/settlements", windows::list_settlements)
        .get("/settlements/{id}", windows::settlement_status)
        .alias(
            Method::GET,
            "/settlements/{id}/status",
            "/settlements/{id}",
            windows::settlement_status,
        )
        .post("/settlements/{id}/confirm", windows::confirm)
        .post("/settlements/{id}/fail", windows::fail)
        .post("/keys", keys::create)
        .get("/keys", keys::list)
        .post("/keys/{id}/revoke", keys::revoke)
        .get("/audit-log", audit_log::list)
        .get("/screening/entries", screening::list)
        .post("/screening/entries", screening::add)
        .post("/screening/entries/import", screening::import)
        .delete("/screening/entries/{id}", screening::remove)
        .get(
            "/reports/windows/{window_id}/banks/{code}/statement",
            reports::statement,
        )
        .get("/reports/summary", reports::summary)
        .get("/cluster", cluster::status)
        .get("/cluster/windows/{id}", cluster::window)
        .get("/cluster/windows/{id}/credits", cluster::window_credits)
        .into_scope()
        // Inside authentication: only an authenticated request is forwarded.
        .wrap(actix_web::middleware::Condition::new(
            cluster_mode,
            actix_web::middleware::from_fn(cluster::route_to_owner),
        ))
        .wrap(actix_web::middleware::from_fn(auth::authenticate));
    cfg.service(v1).default_service(web::to(not_found));
    served
}

/// The routes `routes` serves (with the fault route when `fault_injection`), without
/// serving them: for the OpenAPI document's aliases and the test that every served
/// route is documented.
pub fn served_routes(fault_injection: bool) -> Vec<ServedRoute> {
    let mut served = Vec::new();
    let _ = actix_web::App::new().configure(|cfg| served = routes(cfg, fault_injection));
    served
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route".into()))
}
