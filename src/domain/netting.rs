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
    /// Sum paid in by net debtors: what actually moves to settle.
    pub net: Decimal,
    /// The hub's position: minus the banks' sum.
    pub hub_position: Decimal,
}

impl CurrencySummary {
    /// 1 − net / gross; zero when nothing moved.
    pub fn efficiency(&self) -> Decimal {
        efficiency(self.gross, self.net)
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
        let aed_summary = n.currencies.iter().find(|c| c.currency == aed).unwrap();
        assert_eq!((aed_summary.gross, aed_summary.net), (d("50"), d("0")));
        assert_eq!(aed_summary.hub_position, d("-16"));
        assert_eq!(aed_summary.efficiency(), d("1"));
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
}
