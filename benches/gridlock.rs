//! Gridlock resolution at cut-off: 100,000 queued transfers among 50 banks in two
//! currencies (the partial-netting heuristic), and the exact method at its bound of
//! `EXACT_MAX` queued transfers. Run with `cargo bench --bench gridlock`; prints each
//! run and the median (issue target: 100,000 within 500 ms).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deltran::domain::gridlock::{resolve, Account, Method, Queued, Standing, EXACT_MAX};
use deltran::domain::{BankCode, Currency};
use rust_decimal::Decimal;

const RUNS: usize = 7;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// `count` queued transfers among `BANKS` banks, INR and AED, amounts 1,000 to
/// 1,000,000 at a rate of 0.044 or its inverse, every bank with a random exposure and
/// a cap of `cap_percent` or twice that of what its queue would send alone.
fn queue(
    count: usize,
    banks: u64,
    cap_percent: u64,
    seed: u64,
) -> (HashMap<Account, Standing>, Vec<Queued>) {
    let currencies = [
        Currency::parse("INR").unwrap(),
        Currency::parse("AED").unwrap(),
    ];
    let bank_count = banks;
    let banks: Vec<BankCode> = (0..bank_count)
        .map(|b| BankCode::parse(&format!("BANK{b:02}")).unwrap())
        .collect();
    let mut rng = Rng(seed);
    let per_account = count as u64 / (bank_count * 2) + 1;
    let mut standing = HashMap::new();
    for bank in &banks {
        for currency in currencies {
            let cap = per_account * 500_000 * cap_percent / 100 * (1 + rng.next() % 2);
            standing.insert(
                (bank.clone(), currency),
                Standing {
                    exposure: Decimal::from(rng.next() % 1_000_000) - Decimal::from(500_000),
                    limit: Decimal::from(cap),
                },
            );
        }
    }
    let queued = (0..count)
        .map(|_| {
            let sender = (rng.next() % bank_count) as usize;
            let receiver =
                (sender + 1 + (rng.next() % (bank_count - 1)) as usize) % bank_count as usize;
            let from = currencies[(rng.next() % 2) as usize];
            let to = currencies[(rng.next() % 2) as usize];
            let amount = Decimal::new(100_000 + (rng.next() % 99_900_000) as i64, 2);
            let rate = match (from.as_str(), to.as_str()) {
                ("INR", "AED") => Decimal::new(44, 3),
                ("AED", "INR") => Decimal::new(2270, 2),
                _ => Decimal::ONE,
            };
            Queued {
                sender: banks[sender].clone(),
                receiver: banks[receiver].clone(),
                amount,
                from,
                converted: (amount * rate).round_dp(2),
                to,
                value: if from.as_str() == "AED" {
                    amount * Decimal::new(2270, 2)
                } else {
                    amount
                },
            }
        })
        .collect();
    (standing, queued)
}

fn measure(name: &str, count: usize, banks: u64, cap_percent: u64, seed: u64, method: Method) {
    let (standing, queued) = queue(count, banks, cap_percent, seed);
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        let started = Instant::now();
        let release = resolve(&standing, &queued);
        let elapsed = started.elapsed();
        assert_eq!(release.method, method);
        println!(
            "{name} run {run}: {:.1} ms, {} of {count} released",
            elapsed.as_secs_f64() * 1e3,
            release.released.len()
        );
        times.push(elapsed);
    }
    times.sort();
    println!(
        "{name}: {count} queued, {banks} banks, 2 currencies (seed {seed:#x}): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3
    );
}

fn main() {
    let heuristic = Method::PartialNetting;
    measure(
        "partial netting, loose caps",
        100_000,
        50,
        33,
        0x5eed_0002,
        heuristic,
    );
    // Tight caps: most of the queue is taken back, in long cascades.
    measure(
        "partial netting, tight caps",
        100_000,
        50,
        1,
        0x5eed_0002,
        heuristic,
    );
    // Few banks make many subsets feasible: the branch and bound's hard case.
    measure("exact", EXACT_MAX, 3, 10, 0x5eed_0003, Method::Exact);
    measure("exact", EXACT_MAX, 50, 10, 0x5eed_0004, Method::Exact);
}
