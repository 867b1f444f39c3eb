//! Decoding stored text back into domain types. Only valid values are ever written,
//! so a failure here means the stored data was changed behind the engine's back.

use super::StoreError;
use crate::domain::{BankCode, Currency, WindowId};

pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub fn currency(text: &str) -> Result<Currency, StoreError> {
    Currency::parse(text).map_err(|_| corrupt("currency", text))
}

pub fn bank_code(text: &str) -> Result<BankCode, StoreError> {
    BankCode::parse(text).map_err(|_| corrupt("bank code", text))
}

pub fn window_id(id: i64) -> Result<WindowId, StoreError> {
    WindowId::new(id).map_err(|_| corrupt("window", &id.to_string()))
}
