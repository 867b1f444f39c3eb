//! FX rates and conversion. A converted amount is the exact product of amount and
//! rate, rounded half-even once to the destination currency's minor units.

use std::fmt;

use rust_decimal::Decimal;

use super::errors::InputError;
use super::money::{Amount, Currency, ExactDecimal};

/// Most decimals a rate may carry (docs/ARCHITECTURE.md: rates have up to 8 decimals).
pub const FX_RATE_DECIMALS_MAX: i64 = 8;
/// Most integer digits a rate may have; with `AMOUNT_INTEGER_DIGITS_MAX` this bounds
/// every product below 10^38, inside i128.
pub const FX_RATE_INTEGER_DIGITS_MAX: i64 = 6;

/// Units of the destination currency per unit of the source currency.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FxRate(Decimal);

impl FxRate {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let exact = ExactDecimal::parse(text).map_err(|_| InputError::FxRateInvalid)?;
        if exact.negative || exact.digits.is_empty() {
            return Err(InputError::FxRateMustBePositive);
        }
        if exact.scale > FX_RATE_DECIMALS_MAX {
            return Err(InputError::FxRateHasTooManyDecimals);
        }
        if exact.digits.len() as i64 - exact.scale > FX_RATE_INTEGER_DIGITS_MAX {
            return Err(InputError::FxRateTooLarge);
        }
        let mut mantissa: i128 = exact.digits.parse().expect("digits only");
        let mut scale = exact.scale;
        while scale < 0 {
            mantissa *= 10;
            scale += 1;
        }
        Ok(FxRate(
            Decimal::from_i128_with_scale(mantissa, scale as u32).normalize(),
        ))
    }

    /// A rate read back from the store, where only valid rates are written.
    pub fn from_stored(value: Decimal) -> Self {
        FxRate(value.normalize())
    }

    pub fn one() -> Self {
        FxRate(Decimal::ONE)
    }

    pub fn value(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for FxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Converts `amount` at `rate` into `to`, rounding half-even to `to`'s minor units.
/// The product is formed exactly in i128 (amount < 10^15 with ≤ 3 decimals, rate
/// < 10^6 with ≤ 8 decimals) so there is exactly one rounding.
pub fn convert(amount: Amount, rate: FxRate, to: Currency) -> Amount {
    let a = amount.value();
    let r = rate.value();
    let product = a.mantissa() * r.mantissa();
    let product_scale = a.scale() + r.scale();
    let target_scale = to.minor_units();
    let value = if product_scale <= target_scale {
        Decimal::from_i128_with_scale(product, product_scale)
    } else {
        let divisor = 10i128.pow(product_scale - target_scale);
        Decimal::from_i128_with_scale(div_round_half_even(product, divisor), target_scale)
    };
    Amount::from_stored(value, to)
}

/// `n / d` rounded to the nearest integer, ties to even; `n >= 0`, `d > 0`.
fn div_round_half_even(n: i128, d: i128) -> i128 {
    let quotient = n / d;
    let remainder = n % d;
    let twice = remainder * 2;
    if twice > d || (twice == d && quotient % 2 == 1) {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::RoundingStrategy;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn conversion_rounds_half_even_to_destination_minor_units() {
        let inr = cur("INR");
        let aed = cur("AED");
        let rate = FxRate::parse("0.04405").unwrap();
        // 100.10 * 0.04405 = 4.409405 -> 4.41
        let a = Amount::parse("100.10", inr).unwrap();
        assert_eq!(convert(a, rate, aed).to_string(), "4.41");
        // 0.50 * 0.05 = 0.025 -> tie -> 0.02 (even)
        let a = Amount::parse("0.50", inr).unwrap();
        assert_eq!(
            convert(a, FxRate::parse("0.05").unwrap(), aed).to_string(),
            "0.02"
        );
        // 0.70 * 0.05 = 0.035 -> tie -> 0.04 (even)
        let a = Amount::parse("0.70", inr).unwrap();
        assert_eq!(
            convert(a, FxRate::parse("0.05").unwrap(), aed).to_string(),
            "0.04"
        );
        // to a zero-decimal currency
        let a = Amount::parse("10.50", cur("USD")).unwrap();
        assert_eq!(
            convert(a, FxRate::parse("1").unwrap(), cur("JPY")).to_string(),
            "10"
        );
    }

    #[test]
    fn rates_are_refused_with_their_reason() {
        assert_eq!(FxRate::parse("0"), Err(InputError::FxRateMustBePositive));
        assert_eq!(FxRate::parse("-1"), Err(InputError::FxRateMustBePositive));
        assert_eq!(
            FxRate::parse("0.123456789"),
            Err(InputError::FxRateHasTooManyDecimals)
        );
        assert_eq!(FxRate::parse("1000000"), Err(InputError::FxRateTooLarge));
        assert_eq!(FxRate::parse("x"), Err(InputError::FxRateInvalid));
        assert_eq!(FxRate::parse("22.65").unwrap().to_string(), "22.65");
    }

    proptest! {
        /// The i128 path agrees with rust_decimal's own half-even rounding wherever the
        /// latter is exact (small operands), and never overflows at the largest ones.
        #[test]
        fn conversion_matches_decimal_rounding(
            minor in 1i64..100_000_000_000,
            rate_mantissa in 1i64..100_000_000_000_000,
        ) {
            let inr = cur("INR");
            let aed = cur("AED");
            let amount = Amount::from_stored(Decimal::new(minor, 2), inr);
            let rate = FxRate::from_stored(Decimal::new(rate_mantissa, 8));
            let expected = (amount.value() * rate.value())
                .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
            prop_assert_eq!(convert(amount, rate, aed).value(), expected);
        }

        #[test]
        fn conversion_never_overflows_at_the_limits(
            minor in 1i128..100_000_000_000_000_000,
            rate_mantissa in 1i128..100_000_000_000_000,
        ) {
            let amount = Amount::from_stored(Decimal::from_i128_with_scale(minor, 3), cur("BHD"));
            let rate = FxRate::from_stored(Decimal::from_i128_with_scale(rate_mantissa, 8));
            let converted = convert(amount, rate, cur("JPY"));
            prop_assert!(converted.value() >= Decimal::ZERO);
        }
    }
}
