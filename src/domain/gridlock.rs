//! Gridlock resolution: which queued transfers can be released together.
//!
//! A queued transfer waits because releasing it alone would take its sender past its
//! limit. Several together may not: in the classic gridlock A pays B, B pays C and C
//! pays A, each over its cap alone, and all three at once leave every bank where it
//! was. Given each account's exposure now and its limit, and the queued transfers,
//! [`resolve`] picks a set to release at once such that no account ends above its
//! limit (credits among the released count), as large by value as it can find:
//!
//! - up to [`EXACT_MAX`] transfers, the largest set by value, by branch and bound;
//! - beyond, the partial-netting heuristic of Bech and Soramäki: release everything,
//!   then while an account is over its limit, take back the newest queued transfer it
//!   sends from the account with the largest breach (taking one back can push its
//!   receiver over, so this cascades); finally, in queue order, put back each taken
//!   back transfer that now fits.
//!
//! An account is a bank in one currency. Its exposure is what its limit bounds: debits
//! plus reservations minus credits, as the bank's books keep it. Releasing a transfer
//! adds its amount to the sender's exposure in the source currency and takes its
//! converted amount off the receiver's in the destination currency. An account already
//! above its limit (a cap lowered under it) is held where it is: a release may not
//! raise it further, but may lower it. Pure: no IO, no clock.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use rust_decimal::Decimal;

use super::ids::BankCode;
use super::money::Currency;

/// Up to this many queued transfers the released set is the largest by value; the
/// branch and bound visits at most 2^20 (about a million) nodes, tens of
/// milliseconds, and usually far fewer.
pub const EXACT_MAX: usize = 20;

/// A bank in one currency.
pub type Account = (BankCode, Currency);

/// Where an account stands before any release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// Debits plus reservations minus credits now.
    pub exposure: Decimal,
    /// The most exposure the account may reach: its net debit cap (or less, where a
    /// settlement balance bounds it too).
    pub limit: Decimal,
}

/// A queued transfer, as the resolution sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub sender: BankCode,
    pub receiver: BankCode,
    /// In `from`, added to the sender's exposure.
    pub amount: Decimal,
    pub from: Currency,
    /// In `to`, taken off the receiver's exposure.
    pub converted: Decimal,
    pub to: Currency,
    /// What the resolution maximises the sum of: the transfer's value in one unit
    /// across currencies (the caller's choice, e.g. the amount in a reference
    /// currency).
    pub value: Decimal,
}

/// How a release was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The largest set by value.
    Exact,
    /// The partial-netting heuristic: feasible, not always the largest.
    PartialNetting,
}

/// The transfers to release, by their index in the queue (ascending), and their value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub released: Vec<usize>,
    pub value: Decimal,
    pub method: Method,
}

/// Picks the queued transfers to release together. `queued` is in release priority
/// order (high priority first, then first in, first out): the heuristic takes the
/// newest of a sender back first, and puts back in this order.
pub fn resolve(standing: &HashMap<Account, Standing>, queued: &[Queued]) -> Release {
    let problem = Problem::new(standing, queued);
    let (chosen, method) = if queued.len() <= EXACT_MAX {
        (problem.exact(), Method::Exact)
    } else {
        (problem.partial_netting(), Method::PartialNetting)
    };
    let released: Vec<usize> = (0..queued.len()).filter(|&i| chosen[i]).collect();
    let value = released.iter().map(|&i| queued[i].value).sum();
    Release {
        released,
        value,
        method,
    }
}

/// What one unit of each currency is worth in one reference currency, from the
/// corridors' rates (`from`, `to`, units of `to` per unit of `from`): the common
/// measure by which a release's value is summed across currencies. The reference is
/// the first currency by code; a currency reached by no chain of corridors from it
/// counts unit for unit. Each currency is valued through the first chain found
/// (breadth first), using a corridor forwards (divide) or backwards (multiply).
pub fn unit_values(rates: &[(Currency, Currency, Decimal)]) -> HashMap<Currency, Decimal> {
    let mut values: HashMap<Currency, Decimal> = HashMap::new();
    let mut currencies: Vec<Currency> = rates.iter().flat_map(|(f, t, _)| [*f, *t]).collect();
    currencies.sort();
    currencies.dedup();
    for &start in &currencies {
        if values.contains_key(&start) {
            continue;
        }
        // Each group of currencies joined by corridors gets its own reference.
        values.insert(start, Decimal::ONE);
        let mut frontier = vec![start];
        while let Some(known) = frontier.pop() {
            let unit = values[&known];
            for &(from, to, rate) in rates {
                if rate.is_zero() {
                    continue;
                }
                // One `from` buys `rate` of `to`: a unit of `to` is worth 1/rate `from`.
                let (other, value) = if from == known {
                    (to, unit / rate)
                } else if to == known {
                    (from, unit * rate)
                } else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = values.entry(other) {
                    slot.insert(value);
                    frontier.insert(0, other);
                }
            }
        }
    }
    values
}

/// Whether releasing `released` (indices into `queued`) keeps every account within
/// its limit (or, for one already above it, no higher than it is).
pub fn is_feasible(
    standing: &HashMap<Account, Standing>,
    queued: &[Queued],
    released: &[usize],
) -> bool {
    let problem = Problem::new(standing, queued);
    let mut exposure = problem.base.clone();
    for &i in released {
        let item = &problem.items[i];
        exposure[item.debit] += item.amount;
        exposure[item.credit] -= item.converted;
    }
    exposure
        .iter()
        .zip(&problem.limit)
        .all(|(exposure, limit)| exposure <= limit)
}

/// A queued transfer with its accounts as indices.
struct Item {
    debit: usize,
    amount: Decimal,
    credit: usize,
    converted: Decimal,
    value: Decimal,
}

/// The accounts the queue touches, numbered, with their exposure and effective limit.
struct Problem {
    base: Vec<Decimal>,
    limit: Vec<Decimal>,
    items: Vec<Item>,
}

impl Problem {
    fn new<'q>(standing: &HashMap<Account, Standing>, queued: &'q [Queued]) -> Problem {
        let mut index: HashMap<(&'q BankCode, Currency), usize> = HashMap::new();
        let mut base = Vec::new();
        let mut limit = Vec::new();
        let mut account = |bank: &'q BankCode, currency: Currency| -> usize {
            // An account the caller does not know has no exposure and a zero cap.
            let key = (bank, currency);
            if let Some(&i) = index.get(&key) {
                return i;
            }
            let now = standing
                .get(&(bank.clone(), currency))
                .copied()
                .unwrap_or(Standing {
                    exposure: Decimal::ZERO,
                    limit: Decimal::ZERO,
                });
            base.push(now.exposure);
            limit.push(now.limit.max(now.exposure));
            index.insert(key, base.len() - 1);
            base.len() - 1
        };
        let items = queued
            .iter()
            .map(|q| Item {
                debit: account(&q.sender, q.from),
                amount: q.amount,
                credit: account(&q.receiver, q.to),
                converted: q.converted,
                value: q.value,
            })
            .collect();
        Problem { base, limit, items }
    }

    /// The largest feasible set by value: depth-first over the transfers from the most
    /// valuable, taking each before leaving it. A branch is cut when even taking every
    /// credit still undecided cannot bring an account within its limit, or when all the
    /// value still undecided cannot beat the best set found.
    fn exact(&self) -> Vec<bool> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        order.sort_by(|&a, &b| self.items[b].value.cmp(&self.items[a].value));
        let mut suffix_value = vec![Decimal::ZERO; order.len() + 1];
        for k in (0..order.len()).rev() {
            suffix_value[k] = suffix_value[k + 1] + self.items[order[k]].value;
        }
        // The lowest exposure each account can still reach: now, less every credit
        // not yet decided against.
        let mut lowest = self.base.clone();
        for item in &self.items {
            lowest[item.credit] -= item.converted;
        }
        let mut search = Search {
            problem: self,
            order: &order,
            suffix_value: &suffix_value,
            lowest,
            taken: vec![false; self.items.len()],
            value: Decimal::ZERO,
            best: vec![false; self.items.len()],
            best_value: Decimal::ZERO,
        };
        search.visit(0);
        search.best
    }

    /// Release all, take back from the largest breach until none is left, then put
    /// back what fits, in queue order.
    fn partial_netting(&self) -> Vec<bool> {
        let mut released = vec![true; self.items.len()];
        let mut exposure = self.base.clone();
        // The transfers each account sends, newest last: taken back from the end.
        let mut sends: Vec<Vec<usize>> = vec![Vec::new(); self.base.len()];
        for (i, item) in self.items.iter().enumerate() {
            exposure[item.debit] += item.amount;
            exposure[item.credit] -= item.converted;
            sends[item.debit].push(i);
        }
        let breach = |exposure: &[Decimal], account: usize| exposure[account] - self.limit[account];
        // Breaches by size; an entry is stale once its account's breach has changed.
        let mut heap: BinaryHeap<Breach> = (0..self.base.len())
            .map(|account| Breach {
                amount: breach(&exposure, account),
                account,
            })
            .filter(|b| b.amount > Decimal::ZERO)
            .collect();
        let mut taken_back = Vec::new();
        while let Some(top) = heap.pop() {
            if top.amount != breach(&exposure, top.account) || top.amount <= Decimal::ZERO {
                continue;
            }
            let Some(i) = sends[top.account].pop() else {
                // Without its own sends an account is at most where it started,
                // which its limit allows.
                unreachable!("an account over its limit sends something")
            };
            let item = &self.items[i];
            released[i] = false;
            taken_back.push(i);
            exposure[item.debit] -= item.amount;
            exposure[item.credit] += item.converted;
            for account in [item.debit, item.credit] {
                let amount = breach(&exposure, account);
                if amount > Decimal::ZERO {
                    heap.push(Breach { amount, account });
                }
            }
        }
        // Putting a transfer back can only raise its sender's exposure.
        taken_back.sort_unstable();
        for i in taken_back {
            let item = &self.items[i];
            if exposure[item.debit] + item.amount <= self.limit[item.debit] {
                released[i] = true;
                exposure[item.debit] += item.amount;
                exposure[item.credit] -= item.converted;
            }
        }
        released
    }
}

/// An account's excess over its limit, ordered by size (ties by account, so the
/// order is total and the run repeatable).
#[derive(PartialEq, Eq)]
struct Breach {
    amount: Decimal,
    account: usize,
}

impl Ord for Breach {
    fn cmp(&self, other: &Self) -> Ordering {
        self.amount
            .cmp(&other.amount)
            .then(other.account.cmp(&self.account))
    }
}

impl PartialOrd for Breach {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The state of the branch and bound.
struct Search<'a> {
    problem: &'a Problem,
    /// Transfers by value, most valuable first: decided in this order.
    order: &'a [usize],
    /// Value of the transfers from position k on.
    suffix_value: &'a [Decimal],
    /// Per account: exposure if every undecided credit were taken.
    lowest: Vec<Decimal>,
    taken: Vec<bool>,
    value: Decimal,
    best: Vec<bool>,
    best_value: Decimal,
}

impl Search<'_> {
    fn visit(&mut self, k: usize) {
        if k == self.order.len() {
            // Every transfer decided: `lowest` is the set's exposure, and each rise of
            // it was checked, so the set is feasible.
            if self.value > self.best_value {
                self.best_value = self.value;
                self.best.clone_from(&self.taken);
            }
            return;
        }
        if self.value + self.suffix_value[k] <= self.best_value {
            return;
        }
        let i = self.order[k];
        let item = &self.problem.items[i];
        let (debit, credit) = (item.debit, item.credit);
        // Take it: its sender's lowest reachable exposure rises by its amount; its
        // receiver's stays (the credit was counted as reachable already).
        self.lowest[debit] += item.amount;
        if self.lowest[debit] <= self.problem.limit[debit] {
            self.taken[i] = true;
            self.value += item.value;
            self.visit(k + 1);
            self.value -= item.value;
            self.taken[i] = false;
        }
        self.lowest[debit] -= item.amount;
        // Leave it: its receiver loses a reachable credit.
        self.lowest[credit] += item.converted;
        if self.lowest[credit] <= self.problem.limit[credit] {
            self.visit(k + 1);
        }
        self.lowest[credit] -= item.converted;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn unit_values_put_every_currency_in_the_first_ones_terms() {
        let aed = Currency::parse("AED").unwrap();
        let inr = Currency::parse("INR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let rates = vec![
            (inr, aed, Decimal::new(4, 2)),  // 1 INR = 0.04 AED
            (usd, inr, Decimal::new(80, 0)), // 1 USD = 80 INR
            (aed, inr, Decimal::new(25, 0)), // ignored: INR is already valued
        ];
        let values = unit_values(&rates);
        assert_eq!(values[&aed], Decimal::ONE);
        assert_eq!(values[&inr], Decimal::new(4, 2));
        assert_eq!(values[&usd], Decimal::new(32, 1));
        assert!(unit_values(&[]).is_empty());
    }

    use super::*;
    use proptest::prelude::*;

    fn bank(code: &str) -> BankCode {
        BankCode::parse(code).unwrap()
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn pay(from: &str, to: &str, amount: i64) -> Queued {
        let inr = currency("INR");
        Queued {
            sender: bank(from),
            receiver: bank(to),
            amount: Decimal::from(amount),
            from: inr,
            converted: Decimal::from(amount),
            to: inr,
            value: Decimal::from(amount),
        }
    }

    fn caps(banks: &[&str], cap: i64) -> HashMap<Account, Standing> {
        banks
            .iter()
            .map(|b| {
                (
                    (bank(b), currency("INR")),
                    Standing {
                        exposure: Decimal::ZERO,
                        limit: Decimal::from(cap),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_classic_gridlock_is_released_whole() {
        let standing = caps(&["AAA", "BBB", "CCC"], 50);
        let queued = [
            pay("AAA", "BBB", 100),
            pay("BBB", "CCC", 100),
            pay("CCC", "AAA", 100),
        ];
        for alone in 0..3 {
            assert!(!is_feasible(&standing, &queued, &[alone]));
        }
        let release = resolve(&standing, &queued);
        assert_eq!(release.released, [0, 1, 2]);
        assert_eq!(release.method, Method::Exact);
        let problem = Problem::new(&standing, &queued);
        let all = problem.partial_netting();
        assert_eq!(all, [true, true, true], "the heuristic too");
    }

    #[test]
    fn a_transfer_that_cannot_be_covered_stays_queued() {
        let standing = caps(&["AAA", "BBB", "CCC"], 50);
        let queued = [
            pay("AAA", "BBB", 100),
            pay("BBB", "CCC", 100),
            pay("CCC", "AAA", 100),
            pay("AAA", "CCC", 500),
        ];
        let release = resolve(&standing, &queued);
        assert_eq!(release.released, [0, 1, 2]);
        assert_eq!(release.value, Decimal::from(300));
    }

    #[test]
    fn an_account_over_a_lowered_cap_may_only_come_down() {
        let mut standing = caps(&["AAA", "BBB"], 50);
        standing
            .get_mut(&(bank("AAA"), currency("INR")))
            .unwrap()
            .exposure = Decimal::from(80);
        // AAA is at 80 over a cap of 50: it may receive, it may not send more.
        let queued = [pay("AAA", "BBB", 10), pay("BBB", "AAA", 30)];
        let release = resolve(&standing, &queued);
        assert_eq!(
            release.released,
            [0, 1],
            "10 out and 30 in lowers AAA to 60"
        );
        let queued = [pay("AAA", "BBB", 10)];
        assert!(resolve(&standing, &queued).released.is_empty());
    }

    #[test]
    fn the_heuristic_takes_back_the_newest_of_the_largest_breach_first() {
        // AAA sends 60 then 30 to BBB, cap 50, nothing comes back: the newest (30)
        // goes first, then the 60 still breaches and goes too; putting back in queue
        // order finds the 30 fits on its own.
        let standing = caps(&["AAA", "BBB"], 50);
        let queued = [pay("AAA", "BBB", 60), pay("AAA", "BBB", 30)];
        let problem = Problem::new(&standing, &queued);
        assert_eq!(problem.partial_netting(), [false, true]);
    }

    /// Random queues: up to 12 transfers among 4–6 banks in two currencies, random
    /// exposures and limits.
    fn queue() -> impl Strategy<Value = (HashMap<Account, Standing>, Vec<Queued>)> {
        (4usize..=6).prop_flat_map(|banks| {
            let names: Vec<String> = (0..banks).map(|b| format!("B{b}")).collect();
            let accounts = proptest::collection::vec((-200i64..200, 0i64..400), banks * 2);
            let transfers = proptest::collection::vec(
                (
                    0..banks,
                    1..banks,
                    any::<bool>(),
                    any::<bool>(),
                    1i64..300,
                    1i64..4,
                ),
                0..=12,
            );
            (accounts, transfers).prop_map(move |(accounts, transfers)| {
                let currencies = [currency("INR"), currency("AED")];
                let mut standing = HashMap::new();
                for (k, (exposure, limit)) in accounts.into_iter().enumerate() {
                    standing.insert(
                        (bank(&names[k / 2]), currencies[k % 2]),
                        Standing {
                            exposure: Decimal::from(exposure),
                            limit: Decimal::from(limit),
                        },
                    );
                }
                let queued = transfers
                    .into_iter()
                    .map(|(s, offset, from, to, amount, rate)| {
                        let receiver = (s + offset) % names.len();
                        let (from, to) = (currencies[from as usize], currencies[to as usize]);
                        Queued {
                            sender: bank(&names[s]),
                            receiver: bank(&names[receiver]),
                            amount: Decimal::from(amount),
                            from,
                            converted: Decimal::from(amount * rate),
                            to,
                            value: Decimal::from(amount),
                        }
                    })
                    .collect();
                (standing, queued)
            })
        })
    }

    /// The largest feasible value, by trying every subset.
    fn brute_force(standing: &HashMap<Account, Standing>, queued: &[Queued]) -> Decimal {
        let mut best = Decimal::ZERO;
        for mask in 0u32..(1 << queued.len()) {
            let set: Vec<usize> = (0..queued.len()).filter(|i| mask & (1 << i) != 0).collect();
            if is_feasible(standing, queued, &set) {
                best = best.max(set.iter().map(|&i| queued[i].value).sum());
            }
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn the_exact_release_is_feasible_and_the_largest((standing, queued) in queue()) {
            let release = resolve(&standing, &queued);
            prop_assert_eq!(release.method, Method::Exact);
            prop_assert!(is_feasible(&standing, &queued, &release.released));
            prop_assert_eq!(release.value, brute_force(&standing, &queued));
        }

        #[test]
        fn the_heuristic_release_is_feasible((standing, queued) in queue()) {
            let problem = Problem::new(&standing, &queued);
            let chosen = problem.partial_netting();
            let released: Vec<usize> = (0..queued.len()).filter(|&i| chosen[i]).collect();
            prop_assert!(is_feasible(&standing, &queued, &released));
        }
    }
}
