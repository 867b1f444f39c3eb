//! Exact money: currencies with their minor units, and amounts parsed from text
//! without ever passing through binary floating point.

use std::fmt;

use rust_decimal::Decimal;

use super::errors::InputError;

/// The most integer digits an amount may have: below 10^15 in any currency.
/// Keeps every product with an FX rate inside exact 128-bit arithmetic.
pub const AMOUNT_INTEGER_DIGITS_MAX: u32 = 15;

/// The currency of each country whose currency the engine knows (ISO 3166 alpha-2 to
/// ISO 4217), for a bank's home currency.
const HOME_CURRENCIES: &[(&str, &str)] = &[
    ("AE", "AED"),
    ("AT", "EUR"),
    ("BE", "EUR"),
    ("BH", "BHD"),
    ("CH", "CHF"),
    ("CN", "CNY"),
    ("DE", "EUR"),
    ("ES", "EUR"),
    ("FI", "EUR"),
    ("FR", "EUR"),
    ("GB", "GBP"),
    ("GR", "EUR"),
    ("HK", "HKD"),
    ("IE", "EUR"),
    ("IN", "INR"),
    ("IT", "EUR"),
    ("JP", "JPY"),
    ("KW", "KWD"),
    ("LU", "EUR"),
    ("NL", "EUR"),
    ("OM", "OMR"),
    ("PT", "EUR"),
    ("QA", "QAR"),
    ("SA", "SAR"),
    ("SG", "SGD"),
    ("US", "USD"),
];

/// The home currency of a bank in `country`, when the engine knows it.
pub fn home_currency(country: &str) -> Option<Currency> {
    HOME_CURRENCIES
        .iter()
        .find(|(c, _)| *c == country)
        .and_then(|(_, currency)| Currency::parse(currency).ok())
}

/// The currencies the engine knows, with their ISO 4217 minor units.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("BHD", 3),
    ("CHF", 2),
    ("CNY", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("OMR", 3),
    ("QAR", 2),
    ("SAR", 2),
    ("SGD", 2),
    ("USD", 2),
];

/// An ISO 4217 currency the engine knows, with its number of minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

impl Currency {
    /// Parses a three-letter code; lower case is refused so that codes stay canonical.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(InputError::CurrencyCodeInvalid);
        }
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == text)
            .map(|(code, minor_units)| Currency {
                code,
                minor_units: *minor_units,
            })
            .ok_or(InputError::CurrencyUnknown)
    }

    pub fn as_str(&self) -> &'static str {
        self.code
    }

    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }

    /// Formats an amount of this currency with exactly its minor units ("1.50", "100").
    pub fn format(&self, value: Decimal) -> String {
        let mut v = value;
        v.rescale(self.minor_units);
        v.to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strictly positive amount of one currency, with no more decimals than the
/// currency allows and fewer than `AMOUNT_INTEGER_DIGITS_MAX` integer digits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Amount {
    value: Decimal,
    currency: Currency,
}

impl Amount {
    /// Parses the exact text of a JSON number or a decimal string
    /// (`12.50`, `1e3`, `0.1`, `1.5E+2`). Never rounds: extra decimals are refused.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, InputError> {
        let exact = ExactDecimal::parse(text)?;
        if exact.negative && !exact.digits.is_empty() {
            return Err(InputError::AmountMustBePositive);
        }
        if exact.digits.is_empty() {
            return Err(InputError::AmountMustBePositive);
        }
        if exact.scale > i64::from(currency.minor_units) {
            return Err(InputError::AmountHasTooManyDecimals);
        }
        let integer_digits = exact.digits.len() as i64 - exact.scale;
        if integer_digits > i64::from(AMOUNT_INTEGER_DIGITS_MAX) {
            return Err(InputError::AmountTooLarge);
        }
        // Now at most 15 integer digits and at most 3 decimals: fits an i128 exactly.
        let mut mantissa: i128 = exact.digits.parse().expect("digits only");
        let mut scale = exact.scale;
        while scale < 0 {
            mantissa *= 10;
            scale += 1;
        }
        let mut value = Decimal::from_i128_with_scale(mantissa, scale as u32);
        value.rescale(currency.minor_units);
        Ok(Amount { value, currency })
    }

    /// Builds an amount from a stored decimal (already validated when it was stored).
    pub fn from_stored(value: Decimal, currency: Currency) -> Self {
        let mut value = value;
        value.rescale(currency.minor_units);
        Amount { value, currency }
    }

    pub fn value(&self) -> Decimal {
        self.value
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.currency.format(self.value))
    }
}

/// A decimal number as written, reduced to significant digits and a power of ten:
/// value = (-1 if negative) × digits × 10^(-scale). Trailing zeros are dropped, so
/// `1.50` has scale 1 and `1e3` has scale -3; an empty `digits` is zero.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExactDecimal {
    pub negative: bool,
    pub digits: String,
    pub scale: i64,
}

/// Longest number text accepted; anything longer is not a plausible amount.
const NUMBER_TEXT_LEN_MAX: usize = 64;

impl ExactDecimal {
    /// Grammar: `-? digits ( . digits )? ( [eE] [+-]? digits )?`, as in JSON, except that
    /// leading zeros and a missing integer part (`.5`) are tolerated in strings.
    pub(crate) fn parse(text: &str) -> Result<Self, InputError> {
        if text.is_empty() || text.len() > NUMBER_TEXT_LEN_MAX {
            return Err(InputError::AmountInvalid);
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = bytes[0] == b'-';
        if negative || bytes[0] == b'+' {
            i += 1;
        }
        let mut all_digits = String::new();
        let mut fraction_len: i64 = 0;
        let mut seen_digit = false;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            all_digits.push(bytes[i] as char);
            seen_digit = true;
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let mut fraction_digit = false;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                all_digits.push(bytes[i] as char);
                fraction_len += 1;
                fraction_digit = true;
                i += 1;
            }
            if !fraction_digit {
                return Err(InputError::AmountInvalid);
            }
            seen_digit = true;
        }
        if !seen_digit {
            return Err(InputError::AmountInvalid);
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let exponent_negative = i < bytes.len() && bytes[i] == b'-';
            if i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b'+') {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Saturate: a huge exponent is "too large" or "too many decimals", not a crash.
                exponent = (exponent * 10 + i64::from(bytes[i] - b'0')).min(1_000_000);
                i += 1;
            }
            if i == start {
                return Err(InputError::AmountInvalid);
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(InputError::AmountInvalid);
        }
        let significant = all_digits.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let dropped_trailing = (significant.len() - trimmed.len()) as i64;
        let scale = if trimmed.is_empty() {
            0
        } else {
            fraction_len - exponent - dropped_trailing
        };
        Ok(ExactDecimal {
            negative,
            digits: trimmed.to_string(),
            scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inr() -> Currency {
        Currency::parse("INR").unwrap()
    }

    #[test]
    fn currencies_parse_with_their_minor_units() {
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().minor_units(), 3);
        assert_eq!(inr().minor_units(), 2);
        assert_eq!(Currency::parse("inr"), Err(InputError::CurrencyCodeInvalid));
        assert_eq!(Currency::parse("XXX"), Err(InputError::CurrencyUnknown));
        assert_eq!(
            Currency::parse("INRR"),
            Err(InputError::CurrencyCodeInvalid)
        );
    }

    #[test]
    fn amounts_parse_exactly_and_format_with_minor_units() {
        let cases = [
            ("0.1", "0.10"),
            ("12345678901234.57", "12345678901234.57"),
            ("1e3", "1000.00"),
            ("1.5E+2", "150.00"),
            ("250e-2", "2.50"),
            ("1.50", "1.50"),
            ("007", "7.00"),
            ("999999999999999.99", "999999999999999.99"),
        ];
        for (text, expected) in cases {
            let amount = Amount::parse(text, inr()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(amount.to_string(), expected, "{text}");
        }
    }

    #[test]
    fn amounts_are_refused_with_their_reason() {
        let cases = [
            ("0", InputError::AmountMustBePositive),
            ("0.00", InputError::AmountMustBePositive),
            ("-5", InputError::AmountMustBePositive),
            ("0.001", InputError::AmountHasTooManyDecimals),
            ("1e-3", InputError::AmountHasTooManyDecimals),
            ("1000000000000000", InputError::AmountTooLarge),
            ("1e15", InputError::AmountTooLarge),
            ("1e999999999", InputError::AmountTooLarge),
            ("abc", InputError::AmountInvalid),
            ("", InputError::AmountInvalid),
            ("1.", InputError::AmountInvalid),
            ("1e", InputError::AmountInvalid),
            ("1.2.3", InputError::AmountInvalid),
            ("NaN", InputError::AmountInvalid),
            (" 1", InputError::AmountInvalid),
        ];
        for (text, expected) in cases {
            assert_eq!(Amount::parse(text, inr()), Err(expected), "{text}");
        }
    }

    #[test]
    fn zero_decimal_currencies_refuse_fractions_but_accept_trailing_zeros() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Amount::parse("100.0", jpy).unwrap().to_string(), "100");
        assert_eq!(
            Amount::parse("100.5", jpy),
            Err(InputError::AmountHasTooManyDecimals)
        );
    }
}
