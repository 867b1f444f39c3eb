//! Batch submission: `POST /api/v1/transfers/batch`, many transfers in one request,
//! each judged exactly as `POST /api/v1/transfers` would judge it alone.
//!
//! A batch is an envelope, not a unit: its transfers are not all-or-nothing. Each
//! gets the status and the body its single submission would have had (202 with the
//! transfer, or a problem), in the order sent; one that is malformed, refused or
//! rejected never changes the fate of another. What a batch saves is everything
//! that is per request rather than per transfer: the HTTP round trip and its
//! parsing, the admission, the corridor's quote (one message per corridor,
//! `Engine::submit_transfers`), and the wait — every transfer is in the engine
//! before the first answer is awaited, so the writer commits them in the same
//! group commits.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::transfers::{admitted_many, header_key, parse_draft, TransferBody};
use super::{read_body, AppState};
use crate::actors::{CommandError, Submitted};
use crate::domain::rules::TransferDraft;
use crate::domain::{Outcome, Transfer};
use crate::views::{self, TransferView};

/// The body of `POST /api/v1/transfers/batch`. Each item is read on its own, so one
/// that is not a transfer is refused alone.
#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    transfers: Vec<&'a RawValue>,
}

/// The body of `POST /api/v1/transfers/batch` (for the API description).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewTransferBatch {
    /// 1 to `--transfer-batch-max` (1,000) transfers, each as the body of
    /// `POST /api/v1/transfers`. Each carries its own `idempotency_key`.
    transfers: Vec<TransferBody>,
}

/// The query of `POST /api/v1/transfers/batch`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// `full` (the default): each transfer answered 202 as stored, in `transfer`, as
    /// `POST /api/v1/transfers` answers it. `brief`: only what the engine decided,
    /// in `decided` (its id, status, window, rate and converted amount); the rest is
    /// what was sent. A brief answer is about a fifth of the bytes, to render and to
    /// read: for large volumes.
    #[param(pattern = "^(full|brief)$")]
    answer: Option<String>,
}

/// How each accepted transfer is answered (`BatchQuery::answer`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum AnswerForm {
    Full,
    Brief,
}

impl AnswerForm {
    fn of(req: &HttpRequest) -> Result<AnswerForm, ApiError> {
        let query = web::Query::<BatchQuery>::from_query(req.query_string())
            .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
        match query.answer.as_deref() {
            None | Some("full") => Ok(AnswerForm::Full),
            Some("brief") => Ok(AnswerForm::Brief),
            Some(_) => Err(ApiError::QueryInvalid(
                "answer must be full or brief".into(),
            )),
        }
    }
}

/// The answer to a batch: one result per transfer, in the order sent.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// Transfers answered 202: accepted or queued (replays included), and stored.
    pub succeeded: usize,
    /// Every other transfer: rejected (stored), refused, or of unknown fate (503).
    pub failed: usize,
    pub results: Vec<BatchResult>,
}

/// What one transfer of a batch was answered: the status and body its single
/// submission would have had.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    /// Its place in the batch, from 0.
    pub index: usize,
    /// 202, or the problem's status.
    pub status: u16,
    /// `true` when this answers a replay of its idempotency key.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub replayed: bool,
    /// With 202: the transfer as stored (`answer=full`, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub transfer: Option<TransferView>,
    /// With 202 and `answer=brief`: what the engine decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub decided: Option<Decided>,
    /// Otherwise: the problem `POST /api/v1/transfers` would have answered (a
    /// rejected transfer is in its `transfer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub problem: Option<Problem>,
}

/// What the engine decided of a transfer answered 202, for `answer=brief`: rendered
/// straight from the stored transfer, with no text made and copied first.
#[derive(Serialize, ToSchema)]
pub struct Decided {
    /// The engine's id (UUID v7).
    #[schema(value_type = String, format = Uuid)]
    pub transaction_id: uuid::Uuid,
    /// `accepted`, `queued` or `held`.
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// The window it is in; null when queued or held.
    pub window_id: Option<i64>,
    /// The corridor's rate fixed at acceptance, as a decimal string.
    #[schema(value_type = String, example = "0.04405")]
    #[serde(serialize_with = "as_text")]
    pub fx_rate: Option<crate::domain::FxRate>,
    /// `amount` at `fx_rate`, in `to_currency`.
    #[schema(value_type = String, example = "44.05")]
    #[serde(serialize_with = "as_text")]
    pub converted_amount: Option<crate::domain::Amount>,
}

impl Decided {
    fn of(t: &Transfer) -> Decided {
        Decided {
            transaction_id: t.id.as_uuid(),
            status: t.status().as_str(),
            window_id: t.window_id().map(|w| w.get()),
            fx_rate: t.fx_rate,
            converted_amount: t.converted,
        }
    }
}

/// A value as its text (`Display`), written straight into the answer; null if none.
fn as_text<T: std::fmt::Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// Submit many transfers at once.
///
/// `POST /api/v1/transfers/batch`: up to `--transfer-batch-max` (1,000) transfers,
/// each judged exactly as a single `POST /api/v1/transfers`: the same checks in the
/// same order, the sender's limits met in the order of the batch, idempotency per
/// transfer (its `idempotency_key`; the `Idempotency-Key` header is not taken). The
/// answer is `200` with one result per transfer: `202` and the transfer, or the
/// problem its single submission would have had. A `503` result (its fate unknown)
/// is sent again with the same key; what was stored answers as a replay. The batch
/// as a whole is refused only when it cannot be read, is empty or too large, or the
/// engine is overloaded. With `answer=brief`, each accepted transfer is answered by
/// what the engine decided of it rather than the whole transfer.
#[utoipa::path(post, path = "/api/v1/transfers/batch", operation_id = "submit_transfer_batch", tag = "transfers",
    params(BatchQuery),
    request_body = NewTransferBatch,
    responses(
        (status = 200, description = "One result per transfer, in the order sent", body = BatchAnswer),
        (status = 400, description = "Problem codes: `malformed_json`, `json_too_deep`, `field_missing` (no `transfers`), `field_invalid` (`transfers` is not a list, or an `Idempotency-Key` header was sent), `query_invalid` (`answer` is neither `full` nor `brief`)"),
        (status = 403, description = "Problem code: `auditor_read_only`"),
        (status = 413, description = "Problem codes: `body_too_large` (`--transfer-batch-size-max-bytes`), `batch_too_many_transfers` (`--transfer-batch-max`)"),
        (status = 422, description = "Problem code: `batch_empty`"),
        (status = 503, description = "Problem code: `overloaded` (the engine cannot take this many transfers now; retry after `Retry-After`)"),
    ))]
pub async fn submit_batch(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_not_auditor("submit transfers")?;
    let form = AnswerForm::of(&req)?;
    let arrived = Instant::now();
    let body = read_body(payload, state.limits.batch_size_max_bytes).await?;
    if header_key(&req)?.is_some() {
        return Err(ApiError::FieldInvalid(
            "a batch takes each transfer's idempotency_key in the transfer; the \
             Idempotency-Key header is not taken"
                .into(),
        ));
    }
    // Not `ApiError::parse_json`, whose depth check would walk the whole body byte by
    // byte (a batch has more brackets than the bound, so its fast count never
    // passes): the envelope is two levels, serde steps over each item as raw text
    // without recursing, and each item is then checked as its single submission's
    // body would be (`read_item`).
    let batch: BatchBody = serde_json::from_slice(&body).map_err(ApiError::from_json)?;
    let count = batch.transfers.len();
    if count == 0 {
        return Err(ApiError::BatchEmpty);
    }
    let max = state.limits.batch_transfers_max;
    if count > max {
        return Err(ApiError::BatchTooLarge { max, count });
    }
    let work = async {
        let results = decide_all(&state, &caller, &batch.transfers).await;
        let answer = answer(results, form);
        // Rendered into a buffer sized for it at once (a transfer renders in about
        // 400 bytes, 150 brief), not grown and copied while rendering.
        let per_result = if form == AnswerForm::Brief { 192 } else { 512 };
        let mut body = Vec::with_capacity(per_result * answer.results.len() + 64);
        serde_json::to_writer(&mut body, &answer).expect("an answer always renders");
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body))
    };
    admitted_many(&state, arrived, count, work).await
}

/// Reads every item, has the engine decide the readable ones together, and answers
/// each item's fate in the order sent.
async fn decide_all(
    state: &AppState,
    caller: &Caller,
    items: &[&RawValue],
) -> Vec<Result<Submitted, ApiError>> {
    let read = items.iter().map(|item| read_item(caller, item)).collect();
    decide_in_place(state, read).await
}

/// Has the engine decide the transfers of `items` that were read together
/// (`Engine::submit_transfers`; moved, not copied), and answers every item in its
/// place: its fate, or the refusal it already had. Batches and ISO 20022 messages.
pub(super) async fn decide_in_place<E: From<CommandError>>(
    state: &AppState,
    items: Vec<Result<TransferDraft, E>>,
) -> Vec<Result<Submitted, E>> {
    let mut drafts = Vec::with_capacity(items.len());
    let refused: Vec<Option<E>> = items
        .into_iter()
        .map(|item| match item {
            Ok(draft) => {
                drafts.push(draft);
                None
            }
            Err(refusal) => Some(refusal),
        })
        .collect();
    let mut decided = state
        .engine
        .submit_transfers(drafts, state.limits.submit_wait_max)
        .await
        .into_iter();
    refused
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Err(refusal),
            None => decided
                .next()
                .expect("one fate per transfer handed in")
                .map_err(E::from),
        })
        .collect()
}

/// One item as a single submission reads it: a transfer the caller may send.
fn read_item(caller: &Caller, item: &RawValue) -> Result<TransferDraft, ApiError> {
    let body: TransferBody = ApiError::parse_json(item.get().as_bytes())?;
    let draft = parse_draft(None, &body)?;
    super::transfers::check_principal(caller, &draft)?;
    Ok(draft)
}

/// The answer: each fate as its single submission would have been answered (an
/// accepted transfer briefly, by what was decided, when asked).
fn answer(results: Vec<Result<Submitted, ApiError>>, form: AnswerForm) -> BatchAnswer {
    let results: Vec<BatchResult> = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            let failed = |error: ApiError| BatchResult {
                index,
                status: actix_web::ResponseError::status_code(&error).as_u16(),
                replayed: false,
                transfer: None,
                decided: None,
                problem: Some(error.problem()),
            };
            match result {
                Ok(Submitted { transfer, replayed }) => match transfer.outcome {
                    Outcome::Rejected(_) => BatchResult {
                        replayed,
                        ..failed(ApiError::Rejected(transfer))
                    },
                    _ => BatchResult {
                        index,
                        status: 202,
                        replayed,
                        transfer: (form == AnswerForm::Full).then(|| views::transfer(&transfer)),
                        decided: (form == AnswerForm::Brief).then(|| Decided::of(&transfer)),
                        problem: None,
                    },
                },
                Err(error) => failed(error),
            }
        })
        .collect();
    let succeeded = results.iter().filter(|r| r.status == 202).count();
    BatchAnswer {
        succeeded,
        failed: results.len() - succeeded,
        results,
    }
}
