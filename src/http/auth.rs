//! Authentication at the edge: every route under `/api/v1` and `/ws` needs an API key
//! (`Authorization: Bearer <key>`; for `/ws` also a `token` query parameter, since
//! browsers cannot set headers on a WebSocket). The caller's `Principal` then rides
//! in the request's extensions, and handlers check what it may do with `Caller`.

use std::net::SocketAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::error::ApiError;
use super::limits;
use super::request_id::current_request_id;
use super::AppState;
use crate::actors::keys::AuthFailure;
use crate::domain::{BankCode, Origin, Principal};

/// The authenticated caller of a request; extracting it fails with 401 if the
/// middleware did not authenticate the request (which it does for every API route).
pub struct Caller(pub Principal);

impl Caller {
    /// Only the operator may change the registry, windows, settlements and keys.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.0.may_operate() {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "operator_only",
                detail: "only the operator may do this".into(),
            })
        }
    }

    /// An auditor reads and changes nothing: `doing` names what it may not do.
    pub fn require_not_auditor(&self, doing: &str) -> Result<(), ApiError> {
        if self.0.role == crate::domain::Role::Auditor {
            return Err(ApiError::Forbidden {
                code: "auditor_read_only",
                detail: format!("an auditor reads; it does not {doing}"),
            });
        }
        Ok(())
    }

    /// The operator and the auditor read everything (lists of keys, the audit log).
    pub fn require_reader_of_everything(&self) -> Result<(), ApiError> {
        if self.0.reads_everything() {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "operator_or_auditor_only",
                detail: "only the operator or an auditor may read this".into(),
            })
        }
    }

    /// Data about `bank` is visible to this caller, or it does not exist for them
    /// (`404 what`: a bank is not told that another bank's data exists).
    pub fn require_sees(&self, bank: &BankCode, what: impl Fn() -> String) -> Result<(), ApiError> {
        if self.0.sees(bank) {
            Ok(())
        } else {
            Err(ApiError::NotFound(what()))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Taken, not cloned: a handler extracts its caller once.
        let principal = req.extensions_mut().remove::<Principal>();
        std::future::ready(
            principal
                .map(Caller)
                .ok_or(ApiError::Unauthenticated(AuthFailure::Missing)),
        )
    }
}

/// The key a request presents: the bearer token, or for `/ws` the `token` parameter.
fn presented_key(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("");
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .unwrap_or("\u{0}");
        return Some(token.trim().to_string());
    }
    if req.path() == "/ws" {
        return web::Query::<TokenQuery>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().token);
    }
    None
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Authenticates the request or answers 401 (`WWW-Authenticate: Bearer`), within the
/// rate limits (`limits`): an address past its failed-authentication budget, or a key
/// past its rate, gets 429.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("the app has its state")
        .clone();
    match authenticated(req.request(), &state) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(error) => Ok(limits::refuse(req, error)),
    }
}

/// The request's caller, within the rate limits: the key is valid and within its
/// rate. A failure counts against the address; an address past its failure budget
/// gets 429 for further failures, while a valid key from it still passes — other
/// clients behind the same address (a proxy, a NAT) are not locked out by one
/// client's bad keys.
fn authenticated(req: &HttpRequest, state: &AppState) -> Result<Principal, ApiError> {
    let address = limits::client_address(req);
    let principal = principal_of(req, state)
        .map_err(|failure| state.rates.authentication_failed(address, failure))?;
    state.rates.check_key(principal.key_id)?;
    Ok(principal)
}

/// Who presents the request's key.
fn principal_of(req: &HttpRequest, state: &AppState) -> Result<Principal, AuthFailure> {
    match presented_key(req) {
        None => Err(AuthFailure::Missing),
        Some(text) => state.engine.keys.authenticate(&text),
    }
}

/// `/ready` and `/metrics`: open to this host (loopback: local probes, a Prometheus
/// beside the engine); from elsewhere they need an operator or auditor key.
pub fn require_local_or_reader(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if from_loopback(req) {
        return Ok(());
    }
    Caller(authenticated(req, state)?).require_reader_of_everything()
}

/// Whether the request comes from this host (loopback): `/ready` and `/metrics` are
/// open to it without a key, for local probes and a Prometheus beside the engine.
fn from_loopback(req: &HttpRequest) -> bool {
    // `to_canonical`: a listener on [::] sees local IPv4 as ::ffff:127.0.0.1.
    req.peer_addr()
        .map(|addr: SocketAddr| addr.ip().to_canonical().is_loopback())
        .unwrap_or(false)
}

impl Caller {
    /// Where a change this caller asks for comes from, for the audit log.
    pub fn origin(&self) -> Origin {
        Origin::Api {
            principal: self.0.clone(),
            request_id: current_request_id()
                .map(|id| id.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}
