//! Identifiers and statuses, each parsed once at the edge into a type that cannot
//! hold an invalid value.

use std::fmt;

use uuid::Uuid;

use super::errors::InputError;
use super::money::Currency;

/// Shortest and longest bank code: short names like `HDFC` up to a full 11-letter BIC.
const BANK_CODE_LEN_MIN: usize = 2;
const BANK_CODE_LEN_MAX: usize = 11;
/// The hub's own name in settlement instructions; no bank may take it.
pub const HUB: &str = "HUB";

/// A participant's short code: 2 to 11 upper-case letters or digits, not `HUB`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankCode(String);

impl BankCode {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let valid_len = (BANK_CODE_LEN_MIN..=BANK_CODE_LEN_MAX).contains(&text.len());
        let valid_chars = text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid_len || !valid_chars || text == HUB {
            return Err(InputError::BankCodeInvalid);
        }
        Ok(BankCode(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bank's BIC (ISO 9362): 8 characters (institution, country, location) or 11 with
/// a branch. Banks are told apart by the first eight, so `ICICINBBXXX` (a branch of
/// `ICICINBB`, here the head office) names the same bank as `ICICINBB`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Bic(String);

impl Bic {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bytes = text.as_bytes();
        let alnum = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
        let valid = (bytes.len() == 8 || bytes.len() == 11)
            && bytes[..4].iter().all(alnum)
            && bytes[4..6].iter().all(u8::is_ascii_uppercase)
            && bytes[6..].iter().all(alnum);
        if !valid {
            return Err(InputError::BicInvalid);
        }
        Ok(Bic(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The institution, country and location: what tells banks apart.
    pub fn first_eight(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for BankCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BankCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directed currency pair, written `INR-AED`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CorridorId {
    pub from: Currency,
    pub to: Currency,
}

impl CorridorId {
    pub fn new(from: Currency, to: Currency) -> Self {
        CorridorId { from, to }
    }

    pub fn parse(text: &str) -> Result<Self, InputError> {
        let (from, to) = text.split_once('-').ok_or(InputError::CorridorIdInvalid)?;
        Ok(CorridorId {
            from: Currency::parse(from)?,
            to: Currency::parse(to)?,
        })
    }
}

impl fmt::Display for CorridorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from, self.to)
    }
}

/// A transfer's id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TransferId(Uuid);

impl TransferId {
    pub fn new() -> Self {
        TransferId(Uuid::now_v7())
    }

    pub fn parse(text: &str) -> Result<Self, InputError> {
        Uuid::parse_str(text)
            .map(TransferId)
            .map_err(|_| InputError::TransferIdInvalid)
    }

    pub fn from_uuid(id: Uuid) -> Self {
        TransferId(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for TransferId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A clearing window's number; windows are numbered 1, 2, 3… in opening order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct WindowId(i64);

impl WindowId {
    pub fn new(id: i64) -> Result<Self, InputError> {
        if id > 0 {
            Ok(WindowId(id))
        } else {
            Err(InputError::WindowIdInvalid)
        }
    }

    /// A window id as a path or body carries it: a positive integer in decimal.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let id: i64 = text.parse().map_err(|_| InputError::WindowIdInvalid)?;
        WindowId::new(id)
    }

    pub fn get(&self) -> i64 {
        self.0
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a bank may send and receive transfers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BankStatus {
    Active,
    Suspended,
}

/// Whether a corridor accepts transfers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CorridorStatus {
    Active,
    Suspended,
}

macro_rules! status_text {
    ($ty:ident) => {
        impl $ty {
            pub fn parse(text: &str) -> Result<Self, InputError> {
                match text {
                    "active" => Ok($ty::Active),
                    "suspended" => Ok($ty::Suspended),
                    _ => Err(InputError::StatusInvalid),
                }
            }

            pub fn as_str(&self) -> &'static str {
                match self {
                    $ty::Active => "active",
                    $ty::Suspended => "suspended",
                }
            }
        }
    };
}
status_text!(BankStatus);
status_text!(CorridorStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bic_is_eight_or_eleven_characters_and_banks_differ_in_the_first_eight() {
        for good in [
            "ICICINBB",
            "ICICINBBXXX",
            "EBILAEAD",
            "ADCBAEAA",
            "HDFCINBB123",
        ] {
            assert!(Bic::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ICICINB",
            "ICICINBBXX",
            "ICICI1BB",
            "icicinbb",
            "ICICINBBXXXX",
            "ICIC INBB",
        ] {
            assert_eq!(Bic::parse(bad), Err(InputError::BicInvalid), "{bad}");
        }
        assert_eq!(Bic::parse("ICICINBBXXX").unwrap().first_eight(), "ICICINBB");
    }

    #[test]
    fn bank_codes_are_short_upper_case_and_never_the_hub() {
        assert!(BankCode::parse("ICICI").is_ok());
        assert!(BankCode::parse("EBILAEAD001").is_ok());
        for bad in ["", "I", "icici", "IC-CI", "HUB", "ABCDEFGHIJKL"] {
            assert_eq!(
                BankCode::parse(bad),
                Err(InputError::BankCodeInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn corridor_ids_are_two_known_currencies() {
        let id = CorridorId::parse("INR-AED").unwrap();
        assert_eq!(id.to_string(), "INR-AED");
        assert_eq!(
            CorridorId::parse("INRAED"),
            Err(InputError::CorridorIdInvalid)
        );
        assert_eq!(
            CorridorId::parse("INR-XXX"),
            Err(InputError::CurrencyUnknown)
        );
    }

    #[test]
    fn window_ids_are_positive_and_statuses_are_words() {
        assert!(WindowId::new(0).is_err());
        assert_eq!(WindowId::new(7).unwrap().get(), 7);
        assert_eq!(BankStatus::parse("suspended"), Ok(BankStatus::Suspended));
        assert_eq!(
            CorridorStatus::parse("paused"),
            Err(InputError::StatusInvalid)
        );
    }
}
