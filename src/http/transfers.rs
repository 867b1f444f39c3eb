//! Transfer routes: submission (canonical and compatibility), lookup and listing.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::admission::Refusal;
use super::auth::Caller;
use super::error::ApiError;
use super::{not_found_as, number_text, page_limit, read_body, AppState};
use crate::actors::Submitted;
use crate::domain::rules::{RawReturn, RawTransfer, TransferDraft};
use crate::domain::screening::PartyName;
use crate::domain::{BankCode, InputError, Outcome, TransferId, TransferStatus, WindowId};
use crate::store::TransferFilter;
use crate::views::{self, TransferPage, TransferView};

/// The body of `POST /api/v1/transfers`; unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewTransfer)]
pub struct TransferBody {
    /// The paying bank; a bank key may only name its own bank.
    #[schema(example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")]
    sender_bank: String,
    #[schema(example = "ENBD", pattern = "^[A-Z0-9]{2,11}$")]
    receiver_bank: String,
    /// A JSON number or a decimal string; kept as its exact text (serde_json's
    /// `arbitrary_precision` keeps a number's digits instead of making a float).
    /// Positive, with at most the currency's decimals.
    #[schema(schema_with = super::openapi::decimal_input)]
    amount: Value,
    #[schema(example = "INR", pattern = "^[A-Z]{3}$")]
    from_currency: String,
    #[schema(example = "AED", pattern = "^[A-Z]{3}$")]
    to_currency: String,
    /// At most 64 characters, no control characters (also `receiver_account`).
    #[schema(max_length = 64)]
    sender_account: Option<String>,
    #[schema(max_length = 64)]
    receiver_account: Option<String>,
    /// At most 140 characters, no control characters.
    #[schema(max_length = 140)]
    reference: Option<String>,
    /// Makes retries safe: the same key with the same body answers the original
    /// decision; with another body, 409. Also as the `Idempotency-Key` header.
    #[schema(min_length = 1, max_length = 128)]
    idempotency_key: Option<String>,
    /// What to do when the transfer would take the sender past its limit: `reject`
    /// (the default: 422 `limit_exceeded`) or `queue` (stored as `queued`, answered
    /// 202, and released first in, first out into the open window as headroom
    /// appears, or together with others at a cut-off; `expired` if not released
    /// within the queue's time to live). A transfer that asks to queue also waits
    /// behind the sender's transfers queued before it in the same currency.
    #[schema(pattern = "^(reject|queue)$", example = "queue")]
    on_limit: Option<String>,
    /// With `on_limit` `queue`: `normal` (the default) or `high` (released before
    /// every `normal` one of the sender in that currency).
    #[schema(pattern = "^(normal|high)$", example = "normal")]
    priority: Option<String>,
    /// The paying customer, screened against the compliance list before acceptance.
    debtor: Option<PartyBody>,
    /// The paid customer, screened likewise.
    creditor: Option<PartyBody>,
}

/// A debtor or creditor: screened (sanctions and PEP list) before acceptance.
#[derive(Deserialize, ToSchema)]
#[schema(as = Party)]
pub struct PartyBody {
    /// 1 to 140 characters, no control characters.
    #[schema(example = "Asha Traders Pvt Ltd", min_length = 1, max_length = 140)]
    name: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "IN", pattern = "^[A-Z]{2}$")]
    country: Option<String>,
}

/// `debtor` / `creditor` of a body, parsed (`field` names it in a refusal).
fn party(body: &Option<PartyBody>, field: &'static str) -> Result<Option<PartyName>, ApiError> {
    body.as_ref()
        .map(|p| {
            PartyName::parse(&p.name, p.country.as_deref()).map_err(|(part, error)| {
                ApiError::Input {
                    field: if part == "name" { field } else { "country" },
                    error,
                }
            })
        })
        .transpose()
}

/// The idempotency key from the `Idempotency-Key` header or the body (if both, they
/// must agree).
fn idempotency_key<'a>(
    req: &'a HttpRequest,
    body_key: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    keys_agree(header_key(req)?, body_key)
}

/// The `Idempotency-Key` header's text, if the request has one.
pub(super) fn header_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        Some(value) => value.to_str().map(Some).map_err(|_| ApiError::Input {
            field: "idempotency_key",
            error: InputError::IdempotencyKeyInvalid,
        }),
        None => Ok(None),
    }
}

/// The idempotency key of a header and a body's field: either, or both if they agree.
fn keys_agree<'a>(
    header_key: Option<&'a str>,
    body_key: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    match (header_key, body_key) {
        (Some(h), Some(b)) if h != b => Err(ApiError::FieldInvalid(
            "the Idempotency-Key header and the idempotency_key field differ".into(),
        )),
        (h, b) => Ok(h.or(b)),
    }
}

pub(super) fn parse_draft(
    header_key: Option<&str>,
    body: &TransferBody,
) -> Result<TransferDraft, ApiError> {
    let key = keys_agree(header_key, body.idempotency_key.as_deref())?;
    let amount_text = number_text(&body.amount, "amount", InputError::AmountInvalid)?;
    TransferDraft::parse(RawTransfer {
        sender_bank: &body.sender_bank,
        receiver_bank: &body.receiver_bank,
        amount: &amount_text,
        from_currency: &body.from_currency,
        to_currency: &body.to_currency,
        sender_account: body.sender_account.as_deref(),
        receiver_account: body.receiver_account.as_deref(),
        reference: body.reference.as_deref(),
        idempotency_key: key,
        on_limit: body.on_limit.as_deref(),
        priority: body.priority.as_deref(),
    })
    .map_err(|(field, error)| ApiError::Input { field, error })
    .and_then(|mut draft| {
        draft.debtor = party(&body.debtor, "debtor")?;
        draft.creditor = party(&body.creditor, "creditor")?;
        Ok(draft)
    })
}

/// Submit a transfer.
///
/// `POST /api/v1/transfers` (and `/api/v1/transfer`): 202 once durably stored,
/// 422 when rejected (also stored, its `transaction_id` in the problem), the
/// original answer on an idempotent replay (header `Idempotent-Replayed: true`).
/// Rejections are checked in this order: `sender_bank_suspended`,
/// `receiver_bank_suspended`, `corridor_suspended`, `amount_exceeds_corridor_maximum`,
/// `limit_exceeded` — where the transfer asked to queue (`on_limit` `queue`), it is
/// stored `queued` instead of rejected for its limit and answered 202.
#[utoipa::path(post, path = "/api/v1/transfers", operation_id = "submit_transfer", tag = "transfers",
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as the body's `idempotency_key` (if both, they must agree)")),
    request_body = TransferBody,
    responses(
        (status = 202, description = "Accepted, or queued, and durably stored", body = TransferView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers a replay"))),
        (status = 400, description = "Problem code: `field_invalid` (the header and body keys differ)"),
        (status = 403, description = "Problem codes: `sender_not_principal` (a bank key names another sender), `auditor_read_only`"),
        (status = 409, description = "Problem code: `idempotency_key_reused` (the key was used with another body; `transaction_id` names the first)"),
        (status = 422, description = "Problem codes. Rejected (stored; `transfer` holds it): `sender_bank_suspended`, `receiver_bank_suspended`, `corridor_suspended`, `amount_exceeds_corridor_maximum`, `limit_exceeded`, `liquidity_insufficient`. Refused input (not stored): `bank_code_invalid`, `banks_must_be_different`, `currency_code_invalid`, `currency_unknown`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `text_too_long`, `text_invalid`, `idempotency_key_invalid`, `on_limit_invalid`, `priority_invalid`, `sender_bank_unknown`, `receiver_bank_unknown`, `corridor_unknown`. Not storable: `transfer_unstorable`."),
        (status = 503, description = "Problem codes: `overloaded` (the engine is at its limit of submissions; retry after `Retry-After`), `partition_unavailable` (cluster mode: the sender's partition did not answer; send it again with the same idempotency key)"),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_not_auditor("submit transfers")?;
    let arrived = Instant::now();
    // The body first, even when the answer will be a refusal: it is already in the
    // connection's buffer, and answering before it is read makes actix-http close the
    // connection (the client would reconnect for every refusal, which costs far more).
    let body = read_body(payload, state.limits.body_size_max_bytes).await?;
    // Then admission, before any other work is done for the request.
    admitted(
        &state,
        arrived,
        submit_admitted(&state, &caller, &req, &body),
    )
    .await
}

/// Runs `work` once the admission control lets it in (a submission, or a return):
/// refused with 503 `overloaded` when the engine is at its limit.
pub(super) async fn admitted(
    state: &AppState,
    arrived: Instant,
    work: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    admit(state, arrived, 1, work).await
}

/// How many transfers of a batch take one place in the engine's admission. A place
/// stands for the engine's work on one single submission; a transfer that comes in
/// a batch costs a fraction of that, since the request, its parsing, the corridor's
/// quote and the wait are shared (docs/PERFORMANCE.md, issue 14: about 8 µs of the
/// engine's CPU per batched transfer against 40–70 µs per single submission). Were
/// each batched transfer to take a whole place, one batch of 1,000 would fill the
/// default 1,024 places alone, and batches would go through the engine one at a time
/// (65,000 transfers/s instead of 110,000 in the same session).
const BATCHED_TRANSFERS_PER_PLACE: usize = 8;

/// `admitted` for `count` transfers that arrived together (a batch's, an ISO 20022
/// message's transactions): they take a place per `BATCHED_TRANSFERS_PER_PLACE` in
/// the engine.
pub(super) async fn admitted_many(
    state: &AppState,
    arrived: Instant,
    count: usize,
    work: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let places = count.div_ceil(BATCHED_TRANSFERS_PER_PLACE);
    admit(state, arrived, places, work).await
}

/// Runs `work` once `places` places in the engine are admitted.
async fn admit(
    state: &AppState,
    arrived: Instant,
    places: usize,
    work: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let admission = state.admission.admit_many(arrived, places);
    let _ticket = admission.await.map_err(|refusal| {
        state
            .metrics
            .submissions_refused
            .with_label_values(&[refusal.reason()])
            .inc();
        ApiError::Overloaded(match refusal {
            Refusal::InFlight => "the engine is at its limit of submissions in flight",
            Refusal::Delay => "the engine cannot take this submission within its delay target",
        })
    })?;
    let metrics = &state.metrics;
    let places = places as i64;
    metrics.submissions_in_flight.add(places);
    let result = work.await;
    metrics.submissions_in_flight.sub(places);
    result
}

async fn submit_admitted(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let header_key = header_key(req)?;
    let transfer: TransferBody = ApiError::parse_json(body)?;
    let draft = parse_draft(header_key, &transfer)?;
    check_principal(caller, &draft)?;
    // Cluster mode: the sender's partition decides (its node is the single writer of
    // the sender's exposure); the caller is checked here, the transfer there.
    if let Some(node) = &state.cluster {
        if let Some(owner) = node.partition_elsewhere(&draft.sender) {
            return super::cluster::forward_submission(
                node,
                owner,
                header_key,
                body,
                state.limits.submit_wait_max,
            )
            .await;
        }
    }
    decide(state, draft).await
}

/// A bank's key submits only as its own bank (403 `sender_not_principal`).
pub(super) fn check_principal(caller: &Caller, draft: &TransferDraft) -> Result<(), ApiError> {
    if caller.0.may_send_as(&draft.sender) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "sender_not_principal",
        detail: format!(
            "this key submits only as bank {}",
            caller.0.bank.as_ref().map(|b| b.as_str()).unwrap_or("-")
        ),
    })
}

/// Decides a submission this engine owns and answers it.
async fn decide(state: &AppState, draft: TransferDraft) -> Result<HttpResponse, ApiError> {
    let submitted = state
        .engine
        .submit_transfer(draft, state.limits.submit_wait_max)
        .await?;
    Ok(answer_for(submitted))
}

/// A submission another node of the cluster forwarded to this one (its sender is on
/// this node's partition): the body as the client sent it and its `Idempotency-Key`
/// header, decided as a submission made here, within the same admission.
pub(super) async fn submit_forwarded(
    state: &AppState,
    header_key: Option<&str>,
    body: &[u8],
    arrived: Instant,
) -> HttpResponse {
    let work = async {
        let transfer: TransferBody = ApiError::parse_json(body)?;
        let draft = parse_draft(header_key, &transfer)?;
        decide(state, draft).await
    };
    admitted(state, arrived, work)
        .await
        .unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

/// 202 with the transfer, or 422 with the stored rejection; a replay says so.
fn answer_for(Submitted { transfer, replayed }: Submitted) -> HttpResponse {
    let mut response = match transfer.outcome {
        Outcome::Rejected(_) => {
            actix_web::ResponseError::error_response(&ApiError::Rejected(transfer))
        }
        // Accepted or queued when decided; a replay answers the transfer as it is now
        // (a queued one may have been released, expired or cancelled since).
        _ => HttpResponse::Accepted().json(views::transfer(&transfer)),
    };
    if replayed {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    response
}

/// Read a transfer.
///
/// `GET /api/v1/transfers/{id}` (and `/api/v1/transaction/{id}`).
/// A bank reads a transfer only as its sender or receiver; to anyone else it does
/// not exist (404). In cluster mode any node answers: a transfer held by another
/// partition is read from it (`503 partition_unavailable` when one did not answer).
#[utoipa::path(get, path = "/api/v1/transfers/{id}", operation_id = "get_transfer", tag = "transfers",
    params(("id" = uuid::Uuid, Path, description = "The transfer's `transaction_id`")),
    responses(
        (status = 200, description = "The transfer; its `status` follows its window", body = TransferView),
        (status = 404, description = "Problem code: `not_found` (also another bank's transfer, to a bank key)"),
        (status = 422, description = "Problem code: `transaction_id_invalid`"),
        (status = 503, description = "Problem code: `partition_unavailable` (cluster mode: another partition, which may hold it, did not answer)"),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = TransferId::parse(&path).map_err(|error| ApiError::Input {
        field: "transaction_id",
        error,
    })?;
    let what = || format!("transfer {id}");
    let transfer = match (state.store.transfer(id).await, &state.cluster) {
        (Ok(transfer), _) => transfer,
        // Cluster mode: the transfer is on its sender's partition, maybe not this one.
        (Err(crate::store::StoreError::NotFound), Some(node)) => {
            return super::cluster::transfer_elsewhere(node, &caller, id, what()).await;
        }
        (Err(e), _) => return Err(not_found_as(what())(e)),
    };
    if !(caller.0.sees(&transfer.sender) || caller.0.sees(&transfer.receiver)) {
        return Err(ApiError::NotFound(what()));
    }
    Ok(HttpResponse::Ok().json(views::transfer(&transfer)))
}

/// Cancel a transfer.
///
/// `POST /api/v1/transfers/{id}/cancel`: a queued transfer at any time, an accepted
/// one while its window is open (its sender's exposure is released and it is never
/// netted); answers the transfer, now `cancelled`. The sender's key or the
/// operator's; the receiver may not (403), other banks do not see it (404).
#[utoipa::path(post, path = "/api/v1/transfers/{id}/cancel", operation_id = "cancel_transfer", tag = "transfers",
    params(("id" = uuid::Uuid, Path, description = "The transfer's `transaction_id`")),
    responses(
        (status = 200, description = "Cancelled (stored); the transfer as it now stands", body = TransferView),
        (status = 403, description = "Problem codes: `cancel_not_sender` (the receiver's key), `auditor_read_only`"),
        (status = 404, description = "Problem code: `not_found` (also another bank's transfer, to a bank key)"),
        (status = 409, description = "Problem code: `transfer_not_cancellable` (netted, settled, rejected, expired, cancelled, or accepted into a window that closed)"),
        (status = 422, description = "Problem code: `transaction_id_invalid`"),
    ))]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_not_auditor("cancel transfers")?;
    let id = TransferId::parse(&path).map_err(|error| ApiError::Input {
        field: "transaction_id",
        error,
    })?;
    let cancelled = state
        .engine
        .cancel_transfer(id, caller.0.only_bank(), state.limits.submit_wait_max)
        .await?;
    Ok(HttpResponse::Ok().json(views::transfer(&cancelled)))
}

/// Release a transfer compliance screening held (operator).
///
/// `POST /api/v1/transfers/{id}/release`: the held transfer enters the open window
/// (its exposure, kept while it was held, becomes a debit there); answers it, now
/// `accepted`.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/release", operation_id = "release_held_transfer", tag = "transfers",
    params(("id" = uuid::Uuid, Path, description = "The held transfer's `transaction_id`")),
    responses(
        (status = 200, description = "Released into the open window (stored)", body = TransferView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `transfer_not_held`"),
        (status = 422, description = "Problem code: `transaction_id_invalid`"),
    ))]
pub async fn release_held(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide_held(&state, &caller, &path, true).await
}

/// Reject a transfer compliance screening held (operator).
///
/// `POST /api/v1/transfers/{id}/reject`: the held transfer is rejected
/// (`compliance_rejected`) and its exposure released; answers it, now `rejected`.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/reject", operation_id = "reject_held_transfer", tag = "transfers",
    params(("id" = uuid::Uuid, Path, description = "The held transfer's `transaction_id`")),
    responses(
        (status = 200, description = "Rejected (stored)", body = TransferView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `transfer_not_held`"),
        (status = 422, description = "Problem code: `transaction_id_invalid`"),
    ))]
pub async fn reject_held(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide_held(&state, &caller, &path, false).await
}

async fn decide_held(
    state: &AppState,
    caller: &Caller,
    path: &str,
    release: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let id = TransferId::parse(path).map_err(|error| ApiError::Input {
        field: "transaction_id",
        error,
    })?;
    let transfer = state
        .engine
        .decide_held(id, release, state.limits.submit_wait_max)
        .await?;
    Ok(HttpResponse::Ok().json(views::transfer(&transfer)))
}

/// The body of `POST /api/v1/transfers/{id}/return`; unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewReturn)]
pub struct ReturnBody {
    /// How much of the original to send back, in the original's `to_currency` (a
    /// JSON number or a decimal string, kept exact): at most what is left of what it
    /// credited after earlier returns. All of what is left gives back all that is
    /// left of what the original paid; a part converts back at the original's rate,
    /// rounded down.
    #[schema(schema_with = super::openapi::decimal_input)]
    amount: Value,
    /// At most 140 characters, no control characters.
    #[schema(max_length = 140)]
    reference: Option<String>,
    /// As for a transfer, in the returning bank's keys; also as the
    /// `Idempotency-Key` header.
    #[schema(min_length = 1, max_length = 128)]
    idempotency_key: Option<String>,
    /// As for a transfer: `reject` (the default) or `queue` when the return would
    /// take the returning bank past its limit.
    #[schema(pattern = "^(reject|queue)$")]
    on_limit: Option<String>,
    #[schema(pattern = "^(normal|high)$")]
    priority: Option<String>,
}

/// Return a transfer.
///
/// `POST /api/v1/transfers/{id}/return`: the receiver of a netted or settled transfer
/// sends all or part of it back. The return is a new transfer the other way — from
/// the original's receiver to its sender, from its `to_currency` to its
/// `from_currency`, accounts swapped, at the original's rate — with `return_of`
/// naming the original (whose resource lists its `returns`). It is checked like any
/// transfer of the returning bank (its status and limit; `on_limit` `queue` as for a
/// transfer) and enters the open window, so it is netted in a later window than its
/// original. Answered like a submission: 202 stored, 422 rejected (stored), the
/// original answer on a replay.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/return", operation_id = "return_transfer", tag = "transfers",
    params(("id" = uuid::Uuid, Path, description = "The original's `transaction_id`"),
           ("Idempotency-Key" = Option<String>, Header, description = "Same as the body's `idempotency_key` (if both, they must agree)")),
    request_body = ReturnBody,
    responses(
        (status = 202, description = "The return, accepted or queued, and durably stored", body = TransferView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers a replay"))),
        (status = 400, description = "Problem code: `field_invalid` (the header and body keys differ)"),
        (status = 403, description = "Problem codes: `return_not_receiver` (the original's sender), `auditor_read_only`"),
        (status = 404, description = "Problem code: `not_found` (also another bank's transfer, to a bank key)"),
        (status = 409, description = "Problem codes: `transfer_not_returnable` (not netted or settled, itself a return, or in cluster mode between banks of two partitions), `idempotency_key_reused`"),
        (status = 422, description = "Problem codes. Rejected (stored; `transfer` holds it): `return_exceeds_original` (more than is left of the original), `return_amount_too_small` (a part that gives back nothing at the original's rate), `sender_bank_suspended`, `receiver_bank_suspended`, `limit_exceeded`, `liquidity_insufficient`. Refused input (not stored): `transaction_id_invalid`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `text_too_long`, `text_invalid`, `idempotency_key_invalid`, `on_limit_invalid`, `priority_invalid`. Not storable: `transfer_unstorable`."),
        (status = 503, description = "Problem code: `overloaded` (retry after `Retry-After`)"),
    ))]
pub async fn return_transfer(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_not_auditor("return transfers")?;
    let arrived = Instant::now();
    let body = read_body(payload, state.limits.body_size_max_bytes).await?;
    let id = TransferId::parse(&path).map_err(|error| ApiError::Input {
        field: "transaction_id",
        error,
    })?;
    let work = async {
        let body: ReturnBody = ApiError::parse_json(&body)?;
        let original = state.engine.returnable(id, caller.0.only_bank()).await?;
        let amount = number_text(&body.amount, "amount", InputError::AmountInvalid)?;
        let draft = TransferDraft::parse_return(
            &original,
            RawReturn {
                amount: &amount,
                reference: body.reference.as_deref(),
                idempotency_key: idempotency_key(&req, body.idempotency_key.as_deref())?,
                on_limit: body.on_limit.as_deref(),
                priority: body.priority.as_deref(),
            },
        )
        .map_err(|(field, error)| ApiError::Input { field, error })?;
        let submitted = state
            .engine
            .return_transfer(&original, draft, state.limits.submit_wait_max)
            .await?;
        Ok(answer_for(submitted))
    };
    admitted(&state, arrived, work).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One transfer by id.
    #[param(value_type = Option<uuid::Uuid>)]
    transaction_id: Option<String>,
    #[param(pattern = "^[A-Z0-9]{2,11}$")]
    sender_bank: Option<String>,
    #[param(pattern = "^[A-Z0-9]{2,11}$")]
    receiver_bank: Option<String>,
    /// Either side.
    #[param(pattern = "^[A-Z0-9]{2,11}$")]
    bank: Option<String>,
    /// `accepted`, `netted`, `settled`, `rejected`, `queued`, `expired` or `cancelled`.
    #[param(pattern = "^(accepted|netted|settled|rejected|queued|expired|cancelled)$")]
    status: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1)]
    window_id: Option<String>,
    /// 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
    /// Cluster mode: `true` lists only the transfers the partition of the node called
    /// holds (by default a list gathers every partition's); alone, it changes nothing.
    #[param(value_type = Option<bool>)]
    partition_only: Option<String>,
}

fn query_bank(value: &Option<String>, field: &'static str) -> Result<Option<BankCode>, ApiError> {
    value
        .as_deref()
        .map(BankCode::parse)
        .transpose()
        .map_err(|error| ApiError::Input { field, error })
}

/// List transfers.
///
/// `GET /api/v1/transfers` (and `/api/v1/transactions`): filtered, cursor-paged,
/// oldest first. A bank lists only transfers it sent or received, whatever it
/// filters on.
#[utoipa::path(get, path = "/api/v1/transfers", operation_id = "list_transfers", tag = "transfers",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of transfers", body = TransferPage),
        (status = 400, description = "Problem code: `query_invalid` (a status, window id, limit or cursor out of its form)"),
        (status = 422, description = "Problem codes: `bank_code_invalid`, `transaction_id_invalid`"),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?
        .into_inner();
    let invalid = |what: &str| ApiError::QueryInvalid(what.to_string());
    let limit = page_limit(query.limit.as_deref(), &state)?;
    if !matches!(
        query.partition_only.as_deref(),
        None | Some("true" | "false")
    ) {
        return Err(invalid("partition_only must be true or false"));
    }
    let status = query
        .status
        .as_deref()
        .map(|s| {
            TransferStatus::parse(s).ok_or_else(|| {
                invalid(
                    "status must be accepted, netted, settled, rejected, queued, expired \
                         or cancelled",
                )
            })
        })
        .transpose()?;
    let window_id = query
        .window_id
        .as_deref()
        .map(|w| {
            w.parse::<i64>()
                .ok()
                .and_then(|n| WindowId::new(n).ok())
                .ok_or_else(|| invalid("window_id must be a positive integer"))
        })
        .transpose()?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| TransferId::parse(c).map_err(|_| invalid("cursor is not one this API gave")))
        .transpose()?;
    let transaction_id = query
        .transaction_id
        .as_deref()
        .map(TransferId::parse)
        .transpose()
        .map_err(|error| ApiError::Input {
            field: "transaction_id",
            error,
        })?;
    let filter = TransferFilter {
        transaction_id,
        sender: query_bank(&query.sender_bank, "sender_bank")?,
        receiver: query_bank(&query.receiver_bank, "receiver_bank")?,
        bank: query_bank(&query.bank, "bank")?,
        party: caller.0.only_bank().cloned(),
        status,
        window_id,
        after,
        limit,
    };
    let page = state.store.transfers(&filter).await?;
    Ok(HttpResponse::Ok().json(views::TransferPage {
        transactions: page.transfers.iter().map(views::transfer).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// Limits that bound the HTTP edge.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub body_size_max_bytes: usize,
    /// Most transfers in one batch, and the largest batch body.
    pub batch_transfers_max: usize,
    pub batch_size_max_bytes: usize,
    pub iso_message_size_max_bytes: usize,
    pub iso_transactions_max: usize,
    pub page_size_max: i64,
    /// Most transfers a summary report may read.
    pub report_transfers_max: i64,
    pub submit_wait_max: Duration,
}
