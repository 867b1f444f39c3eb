//! Operator routes for banks and corridors, and a bank's positions.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use super::{not_found_as, number_text, read_json, AppState};
use crate::actors::bank::ReadPositions;
use crate::domain::money::ExactDecimal;
use crate::domain::rules::text_field;
use crate::domain::{
    Amount, BankCode, BankPatch, BankStatus, CorridorId, CorridorPatch, CorridorStatus, Currency,
    FxRate, InputError, NewBank, NewCorridor,
};
use crate::views;

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

/// Every caller may list banks (a bank must know its counterparties); a bank sees
/// the net debit caps of its own record only.
pub async fn list_banks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let banks: Vec<Value> = state
        .store
        .banks()
        .await?
        .iter()
        .map(|b| views::bank(b, caller.0.sees(&b.code)))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "banks": banks })))
}

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

#[derive(Deserialize)]
struct NewBankBody {
    code: String,
    name: String,
    country: String,
    status: Option<String>,
    #[serde(default)]
    net_debit_caps: HashMap<String, Value>,
}

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
    };
    let record = state.engine.create_bank(&caller.origin(), bank).await?;
    Ok(HttpResponse::Created().json(views::bank(&record, true)))
}

#[derive(Deserialize)]
struct BankChange {
    name: Option<String>,
    status: Option<String>,
    #[serde(default)]
    net_debit_caps: HashMap<String, Value>,
}

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
    };
    let record = state
        .engine
        .update_bank(&caller.origin(), code, patch)
        .await?;
    Ok(HttpResponse::Ok().json(views::bank(&record, true)))
}

/// `GET /api/v1/banks/{code}/positions`: from the bank actor's cache, so it answers
/// while the database is down (with `current: false` if the books are being re-read).
pub async fn positions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = bank_code(&path)?;
    caller.require_sees(&code, || format!("bank {code}"))?;
    let handle = state
        .engine
        .directory
        .bank(&code)
        .ok_or_else(|| ApiError::NotFound(format!("bank {code}")))?;
    let view = handle
        .addr
        .send(ReadPositions)
        .await
        .map_err(|_| ApiError::unavailable(format!("bank {code} is restarting")))?;
    Ok(HttpResponse::Ok().json(views::positions(&view)))
}

pub async fn list_corridors(
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let corridors: Vec<Value> = state
        .store
        .corridors()
        .await?
        .iter()
        .map(views::corridor)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "corridors": corridors })))
}

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

#[derive(Deserialize)]
struct NewCorridorBody {
    from_currency: String,
    to_currency: String,
    fx_rate: Value,
    amount_max: Value,
    status: Option<String>,
}

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
    };
    let record = state
        .engine
        .create_corridor(&caller.origin(), corridor)
        .await?;
    Ok(HttpResponse::Created().json(views::corridor(&record)))
}

#[derive(Deserialize)]
struct CorridorChange {
    fx_rate: Option<Value>,
    status: Option<String>,
    amount_max: Option<Value>,
}

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
    };
    let record = state
        .engine
        .update_corridor(&caller.origin(), id, patch)
        .await?;
    Ok(HttpResponse::Ok().json(views::corridor(&record)))
}
