//! Operator routes for banks and corridors, and a bank's positions.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::{not_found_as, number_text, read_json, AppState};
use crate::actors::bank::ReadPositions;
use crate::domain::money::ExactDecimal;
use crate::domain::rules::text_field;
use crate::domain::{
    Amount, BankCode, BankPatch, BankPositions, BankStatus, Bic, CorridorId, CorridorPatch,
    CorridorStatus, Currency, FxRate, InputError, NewBank, NewCorridor,
};
use crate::views::{self, BankList, BankView, CorridorList, CorridorView, PositionsView};

/// Longest bank name or country code accepted.
const NAME_LEN_MAX: usize = 120;
const COUNTRY_LEN: usize = 2;

fn input(field: &'static str) -> impl Fn(InputError) -> ApiError {
    move |error| ApiError::Input { field, error }
}

/// Caps are zero or more, with no more decimals than their currency has.
fn parse_caps(caps: &HashMap<String, Value>) -> Result<BTreeMap<Currency, Decimal>, ApiError> {
    let invalid = ApiError::Input {
        field: "net_debit_caps",
        error: InputError::NetDebitCapInvalid,
    };
    let mut parsed = BTreeMap::new();
    for (code, value) in caps {
        let currency = Currency::parse(code).map_err(input("net_debit_caps"))?;
        let text = number_text(value, "net_debit_caps", InputError::NetDebitCapInvalid)?;
        let zero = ExactDecimal::parse(&text)
            .map(|d| d.digits.is_empty())
            .unwrap_or(false);
        let cap = if zero {
            Decimal::ZERO
        } else {
            Amount::parse(&text, currency)
                .map_err(|_| ApiError::Input {
                    field: "net_debit_caps",
                    error: InputError::NetDebitCapInvalid,
                })?
                .value()
        };
        parsed.insert(currency, cap);
    }
    if parsed.len() != caps.len() {
        return Err(invalid);
    }
    Ok(parsed)
}

fn bank_code(text: &str) -> Result<BankCode, ApiError> {
    BankCode::parse(text).map_err(input("code"))
}

/// A bank's name: 1 to `NAME_LEN_MAX` characters, none of them a control character.
fn bounded_name(name: &str) -> Result<String, ApiError> {
    // An empty name is refused with the length's code, as it always was.
    let checked = match name.is_empty() {
        true => Err(InputError::TextTooLong),
        false => text_field(name, NAME_LEN_MAX),
    };
    checked.map_err(input("name"))?;
    Ok(name.to_string())
}

/// List banks.
///
/// Every caller may list banks (a bank must know its counterparties); a bank sees
/// the net debit caps of its own record only.
#[utoipa::path(get, path = "/api/v1/banks", tag = "registry",
    responses((status = 200, description = "Every bank; caps only on the caller's own (all for the operator and auditors)", body = BankList)))]
pub async fn list_banks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let banks = state
        .store
        .banks()
        .await?
        .iter()
        .map(|b| views::bank(b, caller.0.sees(&b.code)))
        .collect();
    Ok(HttpResponse::Ok().json(views::BankList { banks }))
}

/// Read a bank.
#[utoipa::path(get, path = "/api/v1/banks/{code}", tag = "registry",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    responses(
        (status = 200, description = "The bank; caps only on the caller's own", body = BankView),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem code: `bank_code_invalid`"),
    ))]
pub async fn get_bank(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = bank_code(&path)?;
    let bank = state
        .store
        .bank(&code)
        .await
        .map_err(not_found_as(format!("bank {code}")))?;
    Ok(HttpResponse::Ok().json(views::bank(&bank, caller.0.sees(&bank.code))))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewBank)]
pub struct NewBankBody {
    /// 2 to 11 upper-case letters or digits, not `HUB`.
    #[schema(example = "FAB", pattern = "^[A-Z0-9]{2,11}$")]
    code: String,
    /// 1 to 120 characters, no control characters.
    #[schema(example = "First Abu Dhabi Bank", min_length = 1, max_length = 120)]
    name: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(example = "AE", pattern = "^[A-Z]{2}$")]
    country: String,
    /// `active` (default) or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    status: Option<String>,
    #[serde(default)]
    #[schema(schema_with = super::openapi::decimal_map)]
    net_debit_caps: HashMap<String, Value>,
    /// How ISO 20022 messages name the bank: 8 or 11 characters, unique on the first
    /// eight among banks.
    #[schema(
        example = "NBADAEAA",
        pattern = "^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$"
    )]
    bic: Option<String>,
}

/// Register a bank (operator).
#[utoipa::path(post, path = "/api/v1/banks", tag = "registry",
    request_body = NewBankBody,
    responses(
        (status = 201, description = "Registered; audited", body = BankView),
        (status = 400, description = "Problem code: `field_invalid` (country)"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 409, description = "Problem code: `already_exists`"),
        (status = 422, description = "Problem codes: `bank_code_invalid`, `text_too_long`, `text_invalid`, `status_invalid`, `currency_code_invalid`, `currency_unknown`, `net_debit_cap_invalid`, `bic_invalid`"),
    ))]
pub async fn create_bank(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let new: NewBankBody = read_json(payload, &state).await?;
    let code = bank_code(&new.code)?;
    let name = bounded_name(&new.name)?;
    if new.country.len() != COUNTRY_LEN || !new.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::FieldInvalid(
            "country is an ISO 3166 two-letter code such as IN or AE".into(),
        ));
    }
    let status = new
        .status
        .as_deref()
        .map(BankStatus::parse)
        .transpose()
        .map_err(input("status"))?
        .unwrap_or(BankStatus::Active);
    let bank = NewBank {
        code,
        name,
        country: new.country,
        status,
        net_debit_caps: parse_caps(&new.net_debit_caps)?,
        bic: parse_bic(new.bic.as_deref())?,
    };
    let record = state.engine.create_bank(&caller.origin(), bank).await?;
    Ok(HttpResponse::Created().json(views::bank(&record, true)))
}

/// What to change of a bank; absent fields stay.
#[derive(Deserialize, ToSchema)]
pub struct BankChange {
    #[schema(min_length = 1, max_length = 120)]
    name: Option<String>,
    /// `active` or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    status: Option<String>,
    /// The caps to set (currencies not named keep theirs).
    #[serde(default)]
    #[schema(schema_with = super::openapi::decimal_map)]
    net_debit_caps: HashMap<String, Value>,
    /// A new BIC (unique on its first eight characters among banks).
    #[schema(pattern = "^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")]
    bic: Option<String>,
}

/// Change a bank's name, status, caps or BIC (operator).
#[utoipa::path(patch, path = "/api/v1/banks/{code}", tag = "registry",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    request_body = BankChange,
    responses(
        (status = 200, description = "The bank as changed; audited", body = BankView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 409, description = "Problem code: `already_exists` (another bank has the BIC)"),
        (status = 422, description = "Problem codes: `bank_code_invalid`, `text_too_long`, `text_invalid`, `status_invalid`, `currency_code_invalid`, `currency_unknown`, `net_debit_cap_invalid`, `bic_invalid`"),
    ))]
pub async fn update_bank(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let code = bank_code(&path)?;
    let change: BankChange = read_json(payload, &state).await?;
    let patch = BankPatch {
        name: change.name.as_deref().map(bounded_name).transpose()?,
        status: change
            .status
            .as_deref()
            .map(BankStatus::parse)
            .transpose()
            .map_err(input("status"))?,
        net_debit_caps: parse_caps(&change.net_debit_caps)?,
        bic: parse_bic(change.bic.as_deref())?,
    };
    let record = state
        .engine
        .update_bank(&caller.origin(), code, patch)
        .await?;
    Ok(HttpResponse::Ok().json(views::bank(&record, true)))
}

fn parse_bic(text: Option<&str>) -> Result<Option<Bic>, ApiError> {
    text.map(Bic::parse).transpose().map_err(input("bic"))
}

/// A bank's live positions.
///
/// `GET /api/v1/banks/{code}/positions`: from the bank actor's cache, so it answers
/// while the database is down (with `current: false` if the books are being re-read).
#[utoipa::path(get, path = "/api/v1/banks/{code}/positions", tag = "registry",
    params(("code" = String, Path, description = "Bank code", example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")),
    responses(
        (status = 200, description = "Exposure and headroom per currency in the open window", body = PositionsView),
        (status = 404, description = "Problem code: `not_found` (also another bank, to a bank key)"),
        (status = 422, description = "Problem code: `bank_code_invalid`"),
    ))]
pub async fn positions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = bank_view(&state, &caller, bank_code(&path)?).await?;
    Ok(HttpResponse::Ok().json(views::positions(&view)))
}

/// Bank `code`'s positions and balances as its actor holds them, to a caller that
/// may see them (another bank's: `404`, as if it did not exist).
pub(super) async fn bank_view(
    state: &AppState,
    caller: &Caller,
    code: BankCode,
) -> Result<BankPositions, ApiError> {
    caller.require_sees(&code, || format!("bank {code}"))?;
    let handle = state
        .engine
        .directory
        .bank(&code)
        .ok_or_else(|| ApiError::NotFound(format!("bank {code}")))?;
    handle
        .addr
        .send(ReadPositions)
        .await
        .map_err(|_| ApiError::unavailable(format!("bank {code} is restarting")))
}

/// List corridors.
#[utoipa::path(get, path = "/api/v1/corridors", tag = "registry",
    responses((status = 200, description = "Every corridor with its rate", body = CorridorList)))]
pub async fn list_corridors(
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let corridors = state
        .store
        .corridors()
        .await?
        .iter()
        .map(views::corridor)
        .collect();
    Ok(HttpResponse::Ok().json(views::CorridorList { corridors }))
}

/// Read a corridor.
#[utoipa::path(get, path = "/api/v1/corridors/{id}", tag = "registry",
    params(("id" = String, Path, description = "Corridor id", example = "INR-AED", pattern = "^[A-Z]{3}-[A-Z]{3}$")),
    responses(
        (status = 200, description = "The corridor", body = CorridorView),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem code: `corridor_id_invalid`"),
    ))]
pub async fn get_corridor(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CorridorId::parse(&path).map_err(input("id"))?;
    let corridor = state
        .store
        .corridor(id)
        .await
        .map_err(not_found_as(format!("corridor {id}")))?;
    Ok(HttpResponse::Ok().json(views::corridor(&corridor)))
}

fn parse_rate(value: &Value, id: CorridorId) -> Result<FxRate, ApiError> {
    let text = number_text(value, "fx_rate", InputError::FxRateInvalid)?;
    let rate = FxRate::parse(&text).map_err(input("fx_rate"))?;
    if id.from == id.to && rate != FxRate::one() {
        return Err(ApiError::Input {
            field: "fx_rate",
            error: InputError::SameCurrencyRateMustBeOne,
        });
    }
    Ok(rate)
}

fn parse_amount_max(value: &Value, currency: Currency) -> Result<Decimal, ApiError> {
    let text = number_text(value, "amount_max", InputError::AmountInvalid)?;
    Ok(Amount::parse(&text, currency)
        .map_err(input("amount_max"))?
        .value())
}

fn parse_threshold(value: &Value, currency: Currency) -> Result<Decimal, ApiError> {
    let text = number_text(value, "report_threshold", InputError::AmountInvalid)?;
    Ok(Amount::parse(&text, currency)
        .map_err(input("report_threshold"))?
        .value())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewCorridor)]
pub struct NewCorridorBody {
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    from_currency: String,
    #[schema(example = "INR", pattern = "^[A-Z]{3}$")]
    to_currency: String,
    /// Units of `to_currency` per unit of `from_currency`: positive, at most 8
    /// decimals (exactly 1 when the currencies are the same).
    #[schema(schema_with = super::openapi::decimal_input)]
    fx_rate: Value,
    /// Largest single transfer, in `from_currency`.
    #[schema(schema_with = super::openapi::decimal_input)]
    amount_max: Value,
    /// Transfers of this amount or more (in `from_currency`) are flagged for the
    /// compliance report (a currency transaction report).
    #[schema(schema_with = super::openapi::decimal_input)]
    report_threshold: Option<Value>,
    /// `active` (default) or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    status: Option<String>,
}

/// Register a corridor (operator).
#[utoipa::path(post, path = "/api/v1/corridors", tag = "registry",
    request_body = NewCorridorBody,
    responses(
        (status = 201, description = "Registered; audited", body = CorridorView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 409, description = "Problem code: `already_exists`"),
        (status = 422, description = "Problem codes: `currency_code_invalid`, `currency_unknown`, `fx_rate_invalid`, `fx_rate_must_be_positive`, `fx_rate_has_too_many_decimals`, `fx_rate_too_large`, `same_currency_rate_must_be_one`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `status_invalid`"),
    ))]
pub async fn create_corridor(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let new: NewCorridorBody = read_json(payload, &state).await?;
    let id = CorridorId::new(
        Currency::parse(&new.from_currency).map_err(input("from_currency"))?,
        Currency::parse(&new.to_currency).map_err(input("to_currency"))?,
    );
    let corridor = NewCorridor {
        id,
        fx_rate: parse_rate(&new.fx_rate, id)?,
        status: new
            .status
            .as_deref()
            .map(CorridorStatus::parse)
            .transpose()
            .map_err(input("status"))?
            .unwrap_or(CorridorStatus::Active),
        amount_max: parse_amount_max(&new.amount_max, id.from)?,
        report_threshold: new
            .report_threshold
            .as_ref()
            .map(|v| parse_threshold(v, id.from))
            .transpose()?,
    };
    let record = state
        .engine
        .create_corridor(&caller.origin(), corridor)
        .await?;
    Ok(HttpResponse::Created().json(views::corridor(&record)))
}

/// What to change of a corridor; absent fields stay. A new rate applies to
/// transfers accepted after it.
#[derive(Deserialize, ToSchema)]
pub struct CorridorChange {
    #[schema(schema_with = super::openapi::decimal_input)]
    fx_rate: Option<Value>,
    /// `active` or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    status: Option<String>,
    #[schema(schema_with = super::openapi::decimal_input)]
    amount_max: Option<Value>,
    /// A new reporting threshold (transfers of this amount or more are flagged).
    #[schema(schema_with = super::openapi::decimal_input)]
    report_threshold: Option<Value>,
}

/// Change a corridor's rate, status or maximum (operator).
#[utoipa::path(patch, path = "/api/v1/corridors/{id}", tag = "registry",
    params(("id" = String, Path, description = "Corridor id", example = "INR-AED", pattern = "^[A-Z]{3}-[A-Z]{3}$")),
    request_body = CorridorChange,
    responses(
        (status = 200, description = "The corridor as changed; audited", body = CorridorView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem codes: `corridor_id_invalid`, `fx_rate_invalid`, `fx_rate_must_be_positive`, `fx_rate_has_too_many_decimals`, `fx_rate_too_large`, `same_currency_rate_must_be_one`, `amount_invalid`, `amount_must_be_positive`, `amount_has_too_many_decimals`, `amount_too_large`, `status_invalid`"),
    ))]
pub async fn update_corridor(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let path = req.match_info().get("id").unwrap_or_default();
    let id = CorridorId::parse(path).map_err(input("id"))?;
    let change: CorridorChange = read_json(payload, &state).await?;
    let patch = CorridorPatch {
        fx_rate: change
            .fx_rate
            .as_ref()
            .map(|v| parse_rate(v, id))
            .transpose()?,
        status: change
            .status
            .as_deref()
            .map(CorridorStatus::parse)
            .transpose()
            .map_err(input("status"))?,
        amount_max: change
            .amount_max
            .as_ref()
            .map(|v| parse_amount_max(v, id.from))
            .transpose()?,
        report_threshold: change
            .report_threshold
            .as_ref()
            .map(|v| parse_threshold(v, id.from))
            .transpose()?,
    };
    let record = state
        .engine
        .update_corridor(&caller.origin(), id, patch)
        .await?;
    Ok(HttpResponse::Ok().json(views::corridor(&record)))
}
