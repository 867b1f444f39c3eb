//! Prefunded settlement accounts: the operator's funds-in and funds-out, and a bank's
//! balances (read from its actor, like its positions), with the compatibility
//! token routes of existing DelTran clients (`/tokens/mint`, `/tokens/burn`,
//! `/tokens/balances/{bank}`), which take the bank in the body or the path.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::{number_text, read_json, AppState};
use crate::domain::rules::{text_field, REFERENCE_LEN_MAX};
use crate::domain::{Amount, BankCode, Currency, FundsDirection, InputError};
use crate::views::{self, BalancesView, FundsMovementView};

fn input(field: &'static str) -> impl Fn(InputError) -> ApiError {
    move |error| ApiError::Input { field, error }
}

/// A funds-in or funds-out of the bank named in the path.
#[derive(Deserialize, ToSchema)]
pub struct FundsBody {
    #[schema(example = "INR", pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Positive, with at most the currency's decimals.
    #[schema(schema_with = super::openapi::decimal_input)]
    amount: Value,
    /// Free text, at most 140 characters, no control characters.
    #[schema(example = "RTGS 2026-12-03 #118", max_length = 140)]
    reference: Option<String>,
}

/// A mint or burn of the token routes: the bank is in the body.
#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    #[schema(example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")]
    bank: String,
    #[serde(flatten)]
    funds: FundsBody,
}

/// The movement as asked: parsed amount (in its currency) and reference.
fn parse_funds(body: &FundsBody) -> Result<(Amount, Option<String>), ApiError> {
    let currency = Currency::parse(&body.currency).map_err(input("currency"))?;
    let text = number_text(&body.amount, "amount", InputError::AmountInvalid)?;
    let amount = Amount::parse(&text, currency).map_err(input("amount"))?;
    if let Some(reference) = &body.reference {
        text_field(reference, REFERENCE_LEN_MAX).map_err(input("reference"))?;
    }
    Ok((amount, body.reference.clone()))
}

fn bank_code(text: &str, field: &'static str) -> Result<BankCode, ApiError> {
    BankCode::parse(text).map_err(input(field))
}

/// Checks the caller, parses the body and moves the funds: the one path of the four
/// moving routes.
async fn move_funds(
    state: &AppState,
    caller: &Caller,
    bank: BankCode,
    body: &FundsBody,
    direction: FundsDirection,
) -> Result<HttpResponse, ApiError> {
    let (amount, reference) = parse_funds(body)?;
    let origin = caller.origin();
    let movement = match direction {
        FundsDirection::In => {
            state
                .engine
                .funds_in(&origin, bank, amount, reference)
                .await?
        }
        FundsDirection::Out => {
            state
                .engine
                .funds_out(&origin, bank, amount, reference)
                .await?
        }
    };
    Ok(HttpResponse::Created().json(views::funds_movement(&movement)))
}

/// The canonical routes: the bank in the path.
async fn move_for_path(
    state: &AppState,
    caller: Caller,
    path: &str,
    payload: web::Payload,
    direction: FundsDirection,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let bank = bank_code(path, "code")?;
    let body: FundsBody = read_json(payload, state).await?;
    move_funds(state, &caller, bank, &body, direction).await
}

/// The token routes: the bank in the body.
async fn move_for_token(
    state: &AppState,
    caller: Caller,
    payload: web::Payload,
    direction: FundsDirection,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let body: TokenBody = read_json(payload, state).await?;
    let bank = bank_code(&body.bank, "bank")?;
    move_funds(state, &caller, bank, &body.funds, direction).await
}

/// Fund a bank's settlement balance (operator).
///
/// Adds the amount to the bank's settlement balance in the currency. The first
/// funds-in of a currency makes the bank prefunded in it: from then on its exposure
/// there must stay within both its net debit cap and its balance (a transfer that
/// fits the cap but not the balance is rejected `liquidity_insufficient`). Stored
/// with its audit entry in one transaction.
#[utoipa::path(post, path = "/api/v1/banks/{code}/balances/funds-in", tag = "balances",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    request_body = FundsBody,
    responses(
        (status = 201, description = "Stored, with the balance it left; audited", body = FundsMovementView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem codes: `bank_code_invalid`, `currency_code_invalid`, `currency_unknown`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `text_too_long`, `text_invalid`"),
    ))]
pub async fn funds_in(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    move_for_path(&state, caller, &path, payload, FundsDirection::In).await
}

/// Take funds out of a bank's settlement balance (operator).
///
/// Refused (`funds_out_exceeds_free_balance`) unless the balance less the amount
/// still covers the bank's exposure in the currency and stays at or above zero.
/// Checked by the bank's actor, which sets the amount aside before it is stored, so
/// no transfer accepted meanwhile can count on it.
#[utoipa::path(post, path = "/api/v1/banks/{code}/balances/funds-out", tag = "balances",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    request_body = FundsBody,
    responses(
        (status = 201, description = "Stored, with the balance it left; audited", body = FundsMovementView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `funds_out_exceeds_free_balance` (also a bank not prefunded in the currency)"),
        (status = 422, description = "Problem codes: `bank_code_invalid`, `currency_code_invalid`, `currency_unknown`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `text_too_long`, `text_invalid`"),
    ))]
pub async fn funds_out(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    move_for_path(&state, caller, &path, payload, FundsDirection::Out).await
}

/// The balances of `code`, to a caller that may see them.
async fn read_balances(
    state: &AppState,
    caller: &Caller,
    code: &str,
    field: &'static str,
) -> Result<HttpResponse, ApiError> {
    let view = super::registry::bank_view(state, caller, bank_code(code, field)?).await?;
    Ok(HttpResponse::Ok().json(views::balances(&view)))
}

/// A bank's settlement balances.
///
/// Per currency the bank is prefunded in: its balance, its exposure and what is
/// free (`balance − exposure`). From the bank actor's cache, like its positions.
/// The operator, auditors and the bank itself; another bank gets 404.
#[utoipa::path(get, path = "/api/v1/banks/{code}/balances", tag = "balances",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    responses(
        (status = 200, description = "The currencies the bank is prefunded in (none: an empty list)", body = BalancesView),
        (status = 404, description = "Problem code: `not_found` (also another bank, to a bank key)"),
        (status = 422, description = "Problem code: `bank_code_invalid`"),
    ))]
pub async fn balances(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    read_balances(&state, &caller, &path, "code").await
}

/// Mint: fund a bank's settlement balance (operator; compatibility route).
///
/// The token route of existing DelTran clients for
/// `POST /api/v1/banks/{code}/balances/funds-in`, with the bank in the body; its
/// answers (documented from that route's).
#[utoipa::path(post, path = "/api/v1/tokens/mint", tag = "balances",
    request_body = TokenBody)]
pub async fn mint(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    move_for_token(&state, caller, payload, FundsDirection::In).await
}

/// Burn: take funds out of a bank's settlement balance (operator; compatibility
/// route).
///
/// The token route of existing DelTran clients for
/// `POST /api/v1/banks/{code}/balances/funds-out`, with the bank in the body; its
/// answers (documented from that route's).
#[utoipa::path(post, path = "/api/v1/tokens/burn", tag = "balances",
    request_body = TokenBody)]
pub async fn burn(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    move_for_token(&state, caller, payload, FundsDirection::Out).await
}

/// A bank's settlement balances (compatibility route).
///
/// The token route of existing DelTran clients for
/// `GET /api/v1/banks/{code}/balances`; its answers (documented from that route's).
#[utoipa::path(get, path = "/api/v1/tokens/balances/{bank}", tag = "balances",
    params(("bank" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")))]
pub async fn token_balances(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    read_balances(&state, &caller, &path, "bank").await
}
