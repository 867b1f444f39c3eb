//! The operator's key routes: make a key (its text is in this one answer only), list
//! keys (never their secrets), revoke one.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::{read_json, AppState};
use crate::domain::auth::KeyRecord;
use crate::domain::rules::text_field;
use crate::domain::{BankCode, InputError, KeyId, Role};
use crate::views;

/// Longest label a key may carry.
const LABEL_LEN_MAX: usize = 120;

#[derive(Deserialize)]
struct NewKeyBody {
    role: String,
    bank: Option<String>,
    label: Option<String>,
}

/// The role and bank of a new key: a bank key names its bank, no other key does.
pub fn role_and_bank(role: &str, bank: Option<&str>) -> Result<(Role, Option<BankCode>), ApiError> {
    let role = Role::parse(role).ok_or(ApiError::Input {
        field: "role",
        error: InputError::RoleInvalid,
    })?;
    let bank = bank
        .map(BankCode::parse)
        .transpose()
        .map_err(|error| ApiError::Input {
            field: "bank",
            error,
        })?;
    match (role, &bank) {
        (Role::Bank, None) => Err(ApiError::FieldMissing("a bank key names its bank".into())),
        (Role::Operator | Role::Auditor, Some(_)) => Err(ApiError::FieldInvalid(
            "only a bank key names a bank".into(),
        )),
        _ => Ok((role, bank)),
    }
}

/// A key's label: at most `LABEL_LEN_MAX` characters, none of them a control character.
pub fn label_text(label: &str) -> Result<(), ApiError> {
    text_field(label, LABEL_LEN_MAX).map_err(|error| ApiError::Input {
        field: "label",
        error,
    })
}

pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let new: NewKeyBody = read_json(payload, &state).await?;
    let (role, bank) = role_and_bank(&new.role, new.bank.as_deref())?;
    if let Some(label) = &new.label {
        label_text(label)?;
    }
    let (record, text) = state
        .engine
        .create_key(&caller.origin(), role, bank, new.label)
        .await?;
    let mut view = views::key(&record);
    view["key"] = json!(text);
    Ok(HttpResponse::Created().json(view))
}

pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let keys: Vec<Value> = state.store.keys().await?.iter().map(views::key).collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": keys })))
}

pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let id = KeyId::parse(&path).map_err(|error| ApiError::Input { field: "id", error })?;
    let record: KeyRecord = state.engine.revoke_key(&caller.origin(), id).await?;
    Ok(HttpResponse::Ok().json(views::key(&record)))
}
