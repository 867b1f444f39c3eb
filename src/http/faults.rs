//! `POST /api/v1/faults/panic`: the chaos suite's way into the engine. Mounted only
//! when the engine starts with `--fault-injection` (off by default: without it the
//! route does not exist and answers 404 like any unknown path), and operator-only.
//!
//! Body: `{"actor": "bank", "target": "ICICI"}`; `actor` is `bank` (target: a bank
//! code), `corridor` (target: `INR-AED`), `window` (target: the id of a window
//! between cut-off and settlement), or `clock`, `writer`, `batch_completion`,
//! `netting` (no target). Answers 202 once the panic is on its way.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::{read_json, AppState};
use crate::actors::faults::Fault;
use crate::domain::{BankCode, CorridorId, InputError, WindowId};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PanicBody {
    /// `bank`, `corridor`, `window`, `clock`, `writer`, `batch_completion` or
    /// `netting`.
    #[schema(example = "bank")]
    actor: String,
    /// A bank code, a corridor id, or the id of a window between cut-off and
    /// settlement; none for the other actors.
    #[schema(example = "ICICI")]
    target: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PanicInjected {
    #[schema(example = "panic")]
    injected: &'static str,
    actor: String,
    target: Option<String>,
}

/// Make an actor panic (operator; only with `--fault-injection`).
///
/// For the chaos suite: the route exists only when the engine starts with
/// `--fault-injection` (without it, 404 like any unknown path). The actor panics
/// in its handler; its supervisor restarts it and it rebuilds its state.
#[utoipa::path(post, path = "/api/v1/faults/panic", operation_id = "inject_panic", tag = "engine",
    request_body = PanicBody,
    responses(
        (status = 202, description = "The panic is on its way", body = PanicInjected),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found` (no such bank, corridor or live window; or the engine runs without `--fault-injection`)"),
        (status = 422, description = "Problem codes: `fault_actor_invalid`, `fault_target_unexpected`, `bank_code_invalid`, `corridor_id_invalid`, `window_id_invalid`"),
    ))]
pub async fn panic(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let body: PanicBody = read_json(payload, &state).await?;
    let fault = fault(&body.actor, body.target.as_deref())?;
    state.engine.inject_fault(&fault).await?;
    state
        .metrics
        .faults_injected
        .with_label_values(&[body.actor.as_str()])
        .inc();
    Ok(HttpResponse::Accepted().json(PanicInjected {
        injected: "panic",
        actor: body.actor,
        target: body.target,
    }))
}

fn fault(actor: &str, target: Option<&str>) -> Result<Fault, ApiError> {
    let target_or_missing = || {
        target.ok_or_else(|| ApiError::FieldMissing(format!("a {actor} fault names its target")))
    };
    let invalid = |error| ApiError::Input {
        field: "target",
        error,
    };
    let untargeted = |fault: Fault| match target {
        Some(_) => Err(ApiError::Input {
            field: "target",
            error: InputError::FaultTargetUnexpected,
        }),
        None => Ok(fault),
    };
    match actor {
        "bank" => Ok(Fault::Bank(
            BankCode::parse(target_or_missing()?).map_err(invalid)?,
        )),
        "corridor" => Ok(Fault::Corridor(
            CorridorId::parse(target_or_missing()?).map_err(invalid)?,
        )),
        "window" => Ok(Fault::Window(
            WindowId::parse(target_or_missing()?).map_err(invalid)?,
        )),
        "clock" => untargeted(Fault::Clock),
        "writer" => untargeted(Fault::Writer),
        "batch_completion" => untargeted(Fault::BatchCompletion),
        "netting" => untargeted(Fault::Netting),
        _ => Err(ApiError::Input {
            field: "actor",
            error: InputError::FaultActorInvalid,
        }),
    }
}
