//! The operator's key routes: make a key (its text is in this one answer only), list
//! keys (never their secrets), revoke one.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::{read_json, AppState};
use crate::domain::auth::KeyRecord;
use crate::domain::rules::text_field;
use crate::domain::{BankCode, InputError, KeyId, Role};
use crate::views::{self, KeyCreated, KeyList, KeyView};

/// Longest label a key may carry.
const LABEL_LEN_MAX: usize = 120;

#[derive(Deserialize, ToSchema)]
#[schema(as = NewKey)]
pub struct NewKeyBody {
    /// `operator`, `auditor` or `bank`.
    #[schema(example = "bank", pattern = "^(operator|auditor|bank)$")]
    role: String,
    /// The bank a bank key stands for (only for `bank`).
    #[schema(example = "ICICI", pattern = "^[A-Z0-9]{2,11}$")]
    bank: Option<String>,
    /// At most 120 characters, no control characters.
    #[schema(max_length = 120)]
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

/// Make an API key (operator); its text is in this answer only.
#[utoipa::path(post, path = "/api/v1/keys", operation_id = "create_key", tag = "keys",
    request_body = NewKeyBody,
    responses(
        (status = 201, description = "The key; audited", body = KeyCreated),
        (status = 400, description = "Problem codes: `field_missing` (a bank key without its bank), `field_invalid` (another key with a bank)"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 422, description = "Problem codes: `role_invalid`, `bank_code_invalid`, `bank_unknown`, `text_too_long`, `text_invalid`"),
    ))]
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
    Ok(HttpResponse::Created().json(views::KeyCreated {
        record: views::key(&record),
        key: text,
    }))
}

/// List API keys (operator, auditor); never their secrets.
#[utoipa::path(get, path = "/api/v1/keys", operation_id = "list_keys", tag = "keys",
    responses(
        (status = 200, description = "Every key", body = KeyList),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
    ))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let keys = state.store.keys().await?.iter().map(views::key).collect();
    Ok(HttpResponse::Ok().json(views::KeyList { keys }))
}

/// Revoke an API key (operator); its open feeds close within a second.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", operation_id = "revoke_key", tag = "keys",
    params(("id" = String, Path, description = "The key's id (32 hex digits)", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "The key, revoked; audited", body = KeyView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem code: `key_id_invalid`"),
    ))]
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
