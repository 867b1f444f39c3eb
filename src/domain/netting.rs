//! Multilateral netting of one clearing window, as a pure function.
//!
//! Each accepted transfer gives a debit leg (sender, source currency, amount) and a
//! credit leg (receiver, destination currency, converted amount). Per bank and
//! currency the position is credits minus debits; the hub's position is the negation
//! of the banks' sum (its FX book); each net debtor pays the hub and the hub pays
//! each net creditor. `WindowSums` gathers the legs (from transfers one by one, or
//! from sums the store computed), and `net` turns them into the window's result.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use rust_decimal::Decimal;

use super::ids::CorridorId;
use super::money::Currency;

/// A party to a settlement instruction: a bank, or the hub itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party<K> {
    Bank(K),
    Hub,
}

/// Sums of a window's legs, keyed by bank `K` (a `BankCode` in the engine; any
/// ordered key in tests and benchmarks).
/// Hash maps while gathering (a million legs touch a few hundred keys); `net` sorts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSums<K: Ord + Hash> {
    pub debits: HashMap<(K, Currency), Decimal>,
    pub credits: HashMap<(K, Currency), Decimal>,
    /// Per corridor: what the hub receives in the source currency and pays out in the
    /// destination currency.
    pub corridors: HashMap<CorridorId, (Decimal, Decimal)>,
    pub transfer_count: u64,
}

impl<K: Ord + Hash> Default for WindowSums<K> {
    fn default() -> Self {
        WindowSums {
            debits: HashMap::new(),
            credits: HashMap::new(),
            corridors: HashMap::new(),
            transfer_count: 0,
        }
    }
}

impl<K: Ord + Hash + Clone> WindowSums<K> {
    /// Adds one accepted transfer's two legs.
    pub fn add_transfer(
        &mut self,
        sender: &K,
        receiver: &K,
        amount: Decimal,
        from: Currency,
        converted: Decimal,
        to: Currency,
    ) {
        *self.debits.entry((sender.clone(), from)).or_default() += amount;
        *self.credits.entry((receiver.clone(), to)).or_default() += converted;
        let flow = self.corridors.entry(CorridorId::new(from, to)).or_default();
        flow.0 += amount;
        flow.1 += converted;
        self.transfer_count += 1;
    }

    /// Adds another part's sums (another partition's, for one window): netting is
    /// additive, so the sums of the parts are the sums of the whole.
    pub fn add(&mut self, other: &WindowSums<K>) {
        for (key, amount) in &other.debits {
            *self.debits.entry(key.clone()).or_default() += *amount;
        }
        for (key, amount) in &other.credits {
            *self.credits.entry(key.clone()).or_default() += *amount;
        }
        for (corridor, (received, paid)) in &other.corridors {
            let flow = self.corridors.entry(*corridor).or_default();
            flow.0 += *received;
            flow.1 += *paid;
        }
        self.transfer_count += other.transfer_count;
    }
}

/// One bank's result in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position<K> {
    pub bank: K,
    pub currency: Currency,
    pub debits: Decimal,
    pub credits: Decimal,
    /// credits − debits: positive for a net creditor.
    pub position: Decimal,
}

/// One currency's figures for the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrencySummary {
    pub currency: Currency,
    /// Sum of the debit legs in this currency.
    pub gross: Decimal,
    /// Sum paid in by net debtors: what actually moves to settle. The same figure is
    /// the window's liquidity used in this currency (`liquidity_used`).
    pub net: Decimal,
    /// The hub's position: minus the banks' sum.
    pub hub_position: Decimal,
}

impl CurrencySummary {
    /// 1 − net / gross; zero when nothing moved.
    pub fn efficiency(&self) -> Decimal {
        efficiency(self.gross, self.net)
    }

    /// Liquidity used: the sum of the banks' net debit positions (what net debtors
    /// pay in to settle; the hub's own leg is not a bank's and is not counted). It is
    /// `net`, named for what it measures.
    pub fn liquidity_used(&self) -> Decimal {
        self.net
    }

    /// `gross / liquidity used`; `None` when no liquidity was needed.
    pub fn liquidity_efficiency(&self) -> Option<Decimal> {
        liquidity_efficiency(self.gross, self.liquidity_used())
    }
}

/// Netting efficiency: `1 − net / gross`, the share of the gross that netting spared
/// from moving; zero when nothing moved.
pub fn efficiency(gross: Decimal, net: Decimal) -> Decimal {
    if gross.is_zero() {
        Decimal::ZERO
    } else {
        Decimal::ONE - net / gross
    }
}

/// Liquidity efficiency: `gross / used`, the value settled per unit of liquidity the
/// net debtors paid in (29.4 reads 29.4 : 1); `None` when no liquidity was used
/// (nothing had to move, or everything netted out). Exact to `Decimal`'s 28
/// significant digits; amounts within the engine's limits (at most 15 integer digits,
/// at least one minor unit used) keep the quotient far inside its range.
pub fn liquidity_efficiency(gross: Decimal, used: Decimal) -> Option<Decimal> {
    if used.is_zero() {
        None
    } else {
        Some(gross / used)
    }
}

/// A payment that settles part of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction<K> {
    pub currency: Currency,
    pub payer: Party<K>,
    pub payee: Party<K>,
    pub amount: Decimal,
}

/// The window's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netting<K> {
    pub positions: Vec<Position<K>>,
    pub currencies: Vec<CurrencySummary>,
    /// The hub's FX need per corridor: (source received, destination paid out).
    pub corridors: Vec<(CorridorId, Decimal, Decimal)>,
    pub instructions: Vec<Instruction<K>>,
    pub transfer_count: u64,
}

/// Nets a window. Asserts conservation as it goes: the instructions move exactly the
/// positions, and the hub's net in each currency is minus the banks' sum.
pub fn net<K: Ord + Hash + Clone>(sums: &WindowSums<K>) -> Netting<K> {
    let mut keys: Vec<&(K, Currency)> = sums.debits.keys().chain(sums.credits.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut positions = Vec::with_capacity(keys.len());
    let mut by_currency: BTreeMap<Currency, CurrencySummary> = BTreeMap::new();
    let mut instructions = Vec::new();
    for (bank, currency) in keys.into_iter().cloned() {
        let key = (bank, currency);
        let debits = sums.debits.get(&key).copied().unwrap_or_default();
        let credits = sums.credits.get(&key).copied().unwrap_or_default();
        let position = credits - debits;
        let summary = by_currency
            .entry(currency)
            .or_insert_with(|| CurrencySummary {
                currency,
                gross: Decimal::ZERO,
                net: Decimal::ZERO,
                hub_position: Decimal::ZERO,
            });
        summary.gross += debits;
        summary.hub_position -= position;
        let bank = key.0;
        if position < Decimal::ZERO {
            summary.net -= position;
            instructions.push(Instruction {
                currency,
                payer: Party::Bank(bank.clone()),
                payee: Party::Hub,
                amount: -position,
            });
        } else if position > Decimal::ZERO {
            instructions.push(Instruction {
                currency,
                payer: Party::Hub,
                payee: Party::Bank(bank.clone()),
                amount: position,
            });
        }
        positions.push(Position {
            bank,
            currency,
            debits,
            credits,
            position,
        });
    }
    let mut corridors: Vec<(CorridorId, Decimal, Decimal)> = sums
        .corridors
        .iter()
        .map(|(id, (from, to))| (*id, *from, *to))
        .collect();
    corridors.sort_by_key(|(id, ..)| *id);
    let netting = Netting {
        positions,
        currencies: by_currency.into_values().collect(),
        corridors,
        instructions,
        transfer_count: sums.transfer_count,
    };
    assert_conserved(&netting).expect("netting conserves money");
    netting
}

/// Checks a window's result: per currency, the hub's position is minus the sum of the
/// banks', and the instructions into and out of the hub net to exactly that.
pub fn assert_conserved<K: Ord + Clone>(netting: &Netting<K>) -> Result<(), String> {
    for summary in &netting.currencies {
        let c = summary.currency;
        let banks: Decimal = netting
            .positions
            .iter()
            .filter(|p| p.currency == c)
            .map(|p| p.position)
            .sum();
        if summary.hub_position != -banks {
            return Err(format!(
                "{c}: hub position {} is not minus the banks' sum {banks}",
                summary.hub_position
            ));
        }
        let into_hub: Decimal = netting
            .instructions
            .iter()
            .filter(|i| i.currency == c && i.payee == Party::Hub)
            .map(|i| i.amount)
            .sum();
        let out_of_hub: Decimal = netting
            .instructions
            .iter()
            .filter(|i| i.currency == c && i.payer == Party::Hub)
            .map(|i| i.amount)
            .sum();
        if into_hub - out_of_hub != summary.hub_position {
            return Err(format!(
                "{c}: instructions net {} into the hub, its position is {}",
                into_hub - out_of_hub,
                summary.hub_position
            ));
        }
        if into_hub != summary.net {
            return Err(format!(
                "{c}: debtors pay {into_hub}, net value is {}",
                summary.net
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Three banks, two currencies, both corridors, figures worked out by hand.
    /// Positions and instructions come ordered by bank, then currency.
    #[test]
    fn a_hand_computed_window_nets_to_the_expected_positions_and_instructions() {
        let (inr, aed) = (cur("INR"), cur("AED"));
        let mut sums = WindowSums::default();
        // A(INR) -> C(AED): 1000 INR at 0.044 = 44 AED
        sums.add_transfer(&"A", &"C", d("1000"), inr, d("44"), aed);
        // B(INR) -> C(AED): 500 INR at 0.044 = 22 AED
        sums.add_transfer(&"B", &"C", d("500"), inr, d("22"), aed);
        // C(AED) -> A(INR): 50 AED at 22.7 = 1135 INR
        sums.add_transfer(&"C", &"A", d("50"), aed, d("1135"), inr);
        // A(INR) -> B(INR): 200 INR, same currency
        sums.add_transfer(&"A", &"B", d("200"), inr, d("200"), inr);
        let n = net(&sums);
        let position = |bank: &str, c: Currency| {
            n.positions
                .iter()
                .find(|p| p.bank == bank && p.currency == c)
                .map(|p| p.position)
                .unwrap()
        };
        // A: INR credits 1135, debits 1200 -> -65
        assert_eq!(position("A", inr), d("-65"));
        // B: INR credits 200, debits 500 -> -300
        assert_eq!(position("B", inr), d("-300"));
        // C: AED credits 66, debits 50 -> 16
        assert_eq!(position("C", aed), d("16"));
        let inr_summary = n.currencies.iter().find(|c| c.currency == inr).unwrap();
        assert_eq!(inr_summary.gross, d("1700"));
        assert_eq!(inr_summary.net, d("365"));
        assert_eq!(inr_summary.hub_position, d("365"));
        // 1 - 365/1700
        assert_eq!(inr_summary.efficiency().round_dp(6), d("0.785294"));
        // A and B pay in 65 + 300: 1700 / 365
        assert_eq!(inr_summary.liquidity_used(), d("365"));
        assert_eq!(
            inr_summary.liquidity_efficiency().map(|r| r.round_dp(6)),
            Some(d("4.657534"))
        );
        let aed_summary = n.currencies.iter().find(|c| c.currency == aed).unwrap();
        assert_eq!((aed_summary.gross, aed_summary.net), (d("50"), d("0")));
        assert_eq!(aed_summary.hub_position, d("-16"));
        assert_eq!(aed_summary.efficiency(), d("1"));
        // Only a net creditor in AED (the hub pays C): no bank's liquidity was used.
        assert_eq!(aed_summary.liquidity_used(), d("0"));
        assert_eq!(aed_summary.liquidity_efficiency(), None);
        assert_eq!(
            n.instructions,
            vec![
                Instruction {
                    currency: inr,
                    payer: Party::Bank("A"),
                    payee: Party::Hub,
                    amount: d("65")
                },
                Instruction {
                    currency: inr,
                    payer: Party::Bank("B"),
                    payee: Party::Hub,
                    amount: d("300")
                },
                Instruction {
                    currency: aed,
                    payer: Party::Hub,
                    payee: Party::Bank("C"),
                    amount: d("16")
                },
            ]
        );
        assert_eq!(
            n.corridors,
            vec![
                (CorridorId::new(aed, inr), d("50"), d("1135")),
                (CorridorId::new(inr, aed), d("1500"), d("66")),
                (CorridorId::new(inr, inr), d("200"), d("200")),
            ]
        );
        assert_eq!(n.transfer_count, 4);
    }

    #[test]
    fn liquidity_efficiency_is_gross_over_used_and_none_when_nothing_was_used() {
        assert_eq!(
            liquidity_efficiency(d("1470.00"), d("50.00")),
            Some(d("29.4"))
        );
        assert_eq!(liquidity_efficiency(d("50.00"), d("50.00")), Some(d("1")));
        assert_eq!(
            liquidity_efficiency(d("1000"), d("3")).map(|r| r.round_dp(6)),
            Some(d("333.333333"))
        );
        assert_eq!(liquidity_efficiency(d("50.00"), d("0.00")), None);
        assert_eq!(liquidity_efficiency(d("0"), d("0")), None);
    }

    #[derive(Clone, Debug)]
    struct Leg {
        sender: u8,
        receiver: u8,
        amount: Decimal,
        from: Currency,
        converted: Decimal,
        to: Currency,
    }

    fn legs() -> impl Strategy<Value = Vec<Leg>> {
        let currencies = ["INR", "AED", "JPY", "BHD"];
        let amount = prop_oneof![
            Just(1i64),
            Just(999_999_999_999_999i64),
            1i64..1_000_000_000,
        ];
        prop::collection::vec(
            (
                0u8..12,
                0u8..12,
                amount.clone(),
                0usize..4,
                amount,
                0usize..4,
            ),
            0..400,
        )
        .prop_map(move |raw| {
            raw.into_iter()
                .filter(|(s, r, ..)| s != r)
                .map(|(sender, receiver, a, f, c, t)| {
                    let from = cur(currencies[f]);
                    let to = cur(currencies[t]);
                    Leg {
                        sender,
                        receiver,
                        amount: Decimal::new(a, from.minor_units()),
                        from,
                        converted: Decimal::new(c, to.minor_units()),
                        to,
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// Against a slow reference that recomputes every figure from the legs directly.
        #[test]
        fn netting_matches_a_reference_model(legs in legs()) {
            let mut sums = WindowSums::default();
            for l in &legs {
                sums.add_transfer(&l.sender, &l.receiver, l.amount, l.from, l.converted, l.to);
            }
            let n = net(&sums);
            for p in &n.positions {
                let debits: Decimal = legs.iter()
                    .filter(|l| l.sender == p.bank && l.from == p.currency)
                    .map(|l| l.amount).sum();
                let credits: Decimal = legs.iter()
                    .filter(|l| l.receiver == p.bank && l.to == p.currency)
                    .map(|l| l.converted).sum();
                prop_assert_eq!(p.position, credits - debits);
                prop_assert_eq!((p.debits, p.credits), (debits, credits));
            }
            for c in &n.currencies {
                let gross: Decimal = legs.iter().filter(|l| l.from == c.currency).map(|l| l.amount).sum();
                prop_assert_eq!(c.gross, gross);
                let banks: Decimal = n.positions.iter().filter(|p| p.currency == c.currency).map(|p| p.position).sum();
                prop_assert_eq!(c.hub_position, -banks);
                prop_assert!(c.net <= c.gross);
                // Liquidity used is exactly what the banks with a negative position owe;
                // the hub's leg is no bank's.
                let owed: Decimal = n.positions.iter()
                    .filter(|p| p.currency == c.currency && p.position < Decimal::ZERO)
                    .map(|p| -p.position).sum();
                prop_assert_eq!(c.liquidity_used(), owed);
                prop_assert_eq!(c.liquidity_efficiency().is_none(), owed.is_zero());
            }
            // Every bank with a non-zero position has exactly one instruction for it.
            for p in &n.positions {
                let matching = n.instructions.iter().filter(|i| i.currency == p.currency
                    && (i.payer == Party::Bank(p.bank) || i.payee == Party::Bank(p.bank))).count();
                prop_assert_eq!(matching, usize::from(!p.position.is_zero()));
            }
            prop_assert_eq!(n.transfer_count, legs.len() as u64);
            prop_assert!(assert_conserved(&n).is_ok());
        }
    }
    proptest! {
        /// Legs shared out among parts (partitions) in any way: the parts' sums added
        /// are the whole's, and net to the same result.
        #[test]
        fn the_sums_of_the_parts_add_up_to_the_whole(
            legs in legs(),
            parts in prop::collection::vec(0usize..4, 0..64),
        ) {
            let mut whole = WindowSums::default();
            let mut each: Vec<WindowSums<u8>> = vec![WindowSums::default(); 4];
            for (i, l) in legs.iter().enumerate() {
                whole.add_transfer(&l.sender, &l.receiver, l.amount, l.from, l.converted, l.to);
                let part = parts.get(i).copied().unwrap_or(i % 4);
                each[part].add_transfer(&l.sender, &l.receiver, l.amount, l.from, l.converted, l.to);
            }
            let mut added = WindowSums::default();
            for part in &each {
                added.add(part);
            }
            prop_assert_eq!(&added, &whole);
            prop_assert_eq!(net(&added), net(&whole));
        }
    }

    /// Same-currency transfers among `banks` banks: positions that sum to zero.
    fn one_currency_window() -> impl Strategy<Value = Netting<u8>> {
        let amount = prop_oneof![
            Just(1i64),
            Just(999_999_999_999_999i64),
            1i64..1_000_000_000,
        ];
        prop::collection::vec((0u8..8, 0u8..8, amount), 0..200).prop_map(|raw| {
            let inr = cur("INR");
            let mut sums = WindowSums::default();
            for (s, r, a) in raw.into_iter().filter(|(s, r, _)| s != r) {
                let a = Decimal::new(a, inr.minor_units());
                sums.add_transfer(&s, &r, a, inr, a, inr);
            }
            net(&sums)
        })
    }

    proptest! {
        /// For positions summing to zero the ratio times the liquidity used gives the
        /// gross back (exactly up to `Decimal`'s last digit, and up to half a unit in
        /// the sixth decimal once rounded as the API shows it), and it is at least 1.
        #[test]
        fn liquidity_efficiency_times_used_is_gross(n in one_currency_window()) {
            for c in &n.currencies {
                let used = c.liquidity_used();
                let positive: Decimal = n.positions.iter()
                    .filter(|p| p.currency == c.currency && p.position > Decimal::ZERO)
                    .map(|p| p.position).sum();
                // Zero-sum positions: what debtors pay in is what creditors receive.
                prop_assert_eq!(used, positive);
                prop_assert!(c.hub_position.is_zero());
                match c.liquidity_efficiency() {
                    None => prop_assert!(used.is_zero()),
                    Some(ratio) => {
                        prop_assert!(used > Decimal::ZERO && c.gross >= used);
                        prop_assert!(ratio >= Decimal::ONE);
                        let exact_error = (ratio * used - c.gross).abs();
                        prop_assert!(exact_error <= c.gross * Decimal::new(1, 20),
                            "{} x {} is {} off {}", ratio, used, exact_error, c.gross);
                        let shown = ratio.round_dp(6);
                        prop_assert!(shown >= Decimal::ONE);
                        let shown_error = (shown * used - c.gross).abs();
                        prop_assert!(shown_error <= used * Decimal::new(5, 7) + exact_error,
                            "{} x {} is {} off {}", shown, used, shown_error, c.gross);
                    }
                }
            }
        }

        /// The pure function alone: none exactly when nothing was used, at least 1
        /// whenever gross covers what was used, and gross back when multiplied.
        #[test]
        fn liquidity_efficiency_of_any_figures(
            gross in 0i64..=999_999_999_999_999,
            used in 0i64..=999_999_999_999_999,
            scale in 0u32..=3,
        ) {
            let (gross, used) = (Decimal::new(gross, scale), Decimal::new(used, scale));
            match liquidity_efficiency(gross, used) {
                None => prop_assert!(used.is_zero()),
                Some(ratio) => {
                    prop_assert!(!used.is_zero());
                    prop_assert!((ratio * used - gross).abs() <= gross * Decimal::new(1, 20));
                    if gross >= used {
                        prop_assert!(ratio >= Decimal::ONE);
                    }
                }
            }
        }
    }
}
