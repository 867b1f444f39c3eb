//! Returns: the receiver of a transfer that was netted or settled sends back all of
//! it or part of it. A return is a transfer the other way (from the original's
//! receiver to its sender, in the reversed currencies) at the original's rate, and
//! what an original's returns take together never exceeds what it credited, nor do
//! they give back more than it paid.
//!
//! A partial return converts back at the original's rate rounded down to the minor
//! unit of the original's currency; the return that completes the original gives back
//! exactly what is left of what it paid. So the returns of an original, once they add
//! up to all it credited, give back all it paid, to the last minor unit.

use rust_decimal::Decimal;

use super::errors::RejectCode;
use super::fx::FxRate;
use super::ids::TransferId;
use super::money::Amount;

/// What has been returned of one original so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Returned {
    /// In the original's destination currency: taken back from what it credited.
    pub amount: Decimal,
    /// In the original's source currency: given back of what it paid.
    pub converted: Decimal,
}

impl Returned {
    pub fn add(&mut self, amount: Decimal, converted: Decimal) {
        self.amount += amount;
        self.converted += converted;
    }
}

/// The original a return refers to: what the returning bank needs to price it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnTerms {
    pub original: TransferId,
    /// What the original paid, in its sender's currency.
    pub paid: Amount,
    /// What the original credited, in its receiver's currency.
    pub received: Amount,
    /// The original's rate (from its source to its destination currency).
    pub rate: FxRate,
}

impl ReturnTerms {
    /// What a return of `amount` (in the original's destination currency) gives back
    /// in the original's source currency, given what was returned before: refused
    /// with `return_exceeds_original` when `amount` is more than is left, and with
    /// `return_amount_too_small` when a partial return would give back nothing.
    pub fn price(&self, amount: Decimal, before: Returned) -> Result<Decimal, RejectCode> {
        let left = self.received.value() - before.amount;
        if amount > left {
            return Err(RejectCode::ReturnExceedsOriginal);
        }
        let paid_left = self.paid.value() - before.converted;
        if amount == left {
            return Ok(paid_left);
        }
        let back = divide_down(
            amount,
            self.rate.value(),
            self.paid.currency().minor_units(),
        )
        .min(paid_left);
        if back <= Decimal::ZERO {
            return Err(RejectCode::ReturnAmountTooSmall);
        }
        Ok(back)
    }
}

/// `amount ÷ rate` rounded down to `decimals` places, exactly (integer arithmetic on
/// the mantissas; both positive, with the store's precision: an amount below 10^15
/// with 3 decimals, a rate below 10^6 with 8).
fn divide_down(amount: Decimal, rate: Decimal, decimals: u32) -> Decimal {
    // amount / rate × 10^decimals = A·10^(sr + decimals − sa) / R.
    let exponent = rate.scale() as i64 + decimals as i64 - amount.scale() as i64;
    let (mut numerator, mut denominator) = (amount.mantissa(), rate.mantissa());
    if exponent >= 0 {
        numerator *= 10i128.pow(exponent as u32);
    } else {
        denominator *= 10i128.pow((-exponent) as u32);
    }
    Decimal::from_i128_with_scale(numerator / denominator, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fx::convert;
    use crate::domain::money::Currency;
    use proptest::prelude::*;

    fn terms(paid: &str, from: &str, rate: &str, to: &str) -> ReturnTerms {
        let from = Currency::parse(from).unwrap();
        let to = Currency::parse(to).unwrap();
        let paid = Amount::parse(paid, from).unwrap();
        let rate = FxRate::parse(rate).unwrap();
        ReturnTerms {
            original: TransferId::new(),
            paid,
            received: convert(paid, rate, to),
            rate,
        }
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn a_partial_return_converts_back_rounded_down() {
        // 1,000 INR at 0.04405 → 44.05 AED; 10 AED back is 227.01475… INR → 227.01.
        let t = terms("1000", "INR", "0.04405", "AED");
        assert_eq!(t.received.value(), dec("44.05"));
        assert_eq!(t.price(dec("10"), Returned::default()), Ok(dec("227.01")));
    }

    #[test]
    fn the_return_that_completes_the_original_gives_back_what_is_left() {
        let t = terms("1000", "INR", "0.04405", "AED");
        let mut before = Returned::default();
        before.add(dec("10"), dec("227.01"));
        assert_eq!(t.price(dec("34.05"), before), Ok(dec("772.99")));
        // A full return in one go gives back exactly what was paid.
        assert_eq!(t.price(dec("44.05"), Returned::default()), Ok(dec("1000")));
    }

    #[test]
    fn a_return_beyond_what_is_left_is_refused() {
        let t = terms("1000", "INR", "0.04405", "AED");
        let mut before = Returned::default();
        before.add(dec("40"), dec("908.06"));
        assert_eq!(
            t.price(dec("4.06"), before),
            Err(RejectCode::ReturnExceedsOriginal)
        );
        assert_eq!(t.price(dec("4.05"), before), Ok(dec("91.94")));
    }

    #[test]
    fn a_partial_return_that_gives_back_nothing_is_refused() {
        // 1 AED at 22.7 → 22.70 INR; 0.01 INR back is 0.00044 AED → nothing.
        let t = terms("1", "AED", "22.7", "INR");
        assert_eq!(
            t.price(dec("0.01"), Returned::default()),
            Err(RejectCode::ReturnAmountTooSmall)
        );
        // As the last part, it gives back what is left.
        let mut before = Returned::default();
        before.add(dec("22.69"), dec("0.99"));
        assert_eq!(t.price(dec("0.01"), before), Ok(dec("0.01")));
    }

    #[test]
    fn division_is_exact_at_the_edges_of_the_stored_precision() {
        assert_eq!(
            divide_down(dec("999999999999999.999"), dec("0.00000001"), 3),
            dec("99999999999999999900000.000")
        );
        assert_eq!(
            divide_down(dec("0.001"), dec("999999.99999999"), 3),
            dec("0")
        );
        assert_eq!(divide_down(dec("3"), dec("1.5"), 2), dec("2"));
    }

    proptest! {
        /// Any sequence of returns of an original: each priced part gives back
        /// something, together they never give back more than it paid nor take
        /// more than it credited, and once they take all it credited they give
        /// back all it paid.
        #[test]
        fn returns_never_exceed_their_original(
            paid_minor in 1i64..100_000_000,
            rate_units in 1i64..100_000_000_000,
            inr_to_aed in any::<bool>(),
            parts in proptest::collection::vec(1u32..1_000, 1..12),
        ) {
            let (from, to) = if inr_to_aed { ("INR", "AED") } else { ("AED", "INR") };
            let paid = Decimal::new(paid_minor, 2).to_string();
            let rate = Decimal::new(rate_units, 8).to_string();
            let t = terms(&paid, from, &rate, to);
            prop_assume!(t.received.value() > Decimal::ZERO);
            let minor = Decimal::new(1, t.received.currency().minor_units());
            let mut before = Returned::default();
            for part in parts {
                let left = t.received.value() - before.amount;
                if left <= Decimal::ZERO {
                    break;
                }
                let amount = (minor * Decimal::from(part)).min(left);
                match t.price(amount, before) {
                    Ok(back) => {
                        prop_assert!(back > Decimal::ZERO);
                        before.add(amount, back);
                    }
                    Err(code) => prop_assert_eq!(code, RejectCode::ReturnAmountTooSmall),
                }
                prop_assert!(before.amount <= t.received.value());
                prop_assert!(before.converted <= t.paid.value());
            }
            // What is left, returned in one go, completes it exactly.
            let left = t.received.value() - before.amount;
            if left > Decimal::ZERO {
                let back = t.price(left, before).unwrap();
                before.add(left, back);
            }
            prop_assert_eq!(before.amount, t.received.value());
            prop_assert_eq!(before.converted, t.paid.value());
            prop_assert_eq!(t.price(minor, before), Err(RejectCode::ReturnExceedsOriginal));
        }
    }
}
