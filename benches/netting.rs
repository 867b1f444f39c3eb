//! The pure netting of 1,000,000 transfers across 50 banks and 4 currencies: gathering
//! the legs into `WindowSums` and netting them. Run with `cargo bench --bench netting`;
//! prints each run and the median (issue target: ≤ 200 ms).

use std::time::{Duration, Instant};

use deltran::domain::netting::{net, WindowSums};
use deltran::domain::Currency;
use rust_decimal::Decimal;

const TRANSFERS: usize = 1_000_000;
const BANKS: u16 = 50;
const RUNS: usize = 7;

struct Leg {
    sender: u16,
    receiver: u16,
    amount: Decimal,
    from: Currency,
    converted: Decimal,
    to: Currency,
}

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn transfers(seed: u64) -> Vec<Leg> {
    let currencies: Vec<Currency> = ["INR", "AED", "USD", "JPY"]
        .iter()
        .map(|c| Currency::parse(c).unwrap())
        .collect();
    let mut rng = Rng(seed);
    (0..TRANSFERS)
        .map(|_| {
            let sender = (rng.next() % u64::from(BANKS)) as u16;
            let receiver = ((u64::from(sender) + 1 + rng.next() % u64::from(BANKS - 1))
                % u64::from(BANKS)) as u16;
            let from = currencies[(rng.next() % 4) as usize];
            let to = currencies[(rng.next() % 4) as usize];
            let minor = 100_000 + (rng.next() % 100_000_000) as i64;
            Leg {
                sender,
                receiver,
                amount: Decimal::new(minor, from.minor_units()),
                from,
                converted: Decimal::new(minor / 3 + 1, to.minor_units()),
                to,
            }
        })
        .collect()
}

fn main() {
    let seed = 0x5eed_0001;
    let legs = transfers(seed);
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        let started = Instant::now();
        let mut sums = WindowSums::default();
        for l in &legs {
            sums.add_transfer(&l.sender, &l.receiver, l.amount, l.from, l.converted, l.to);
        }
        let netting = net(&sums);
        let elapsed = started.elapsed();
        assert_eq!(netting.transfer_count as usize, TRANSFERS);
        println!(
            "run {run}: {:.1} ms ({} positions, {} instructions)",
            elapsed.as_secs_f64() * 1e3,
            netting.positions.len(),
            netting.instructions.len()
        );
        times.push(elapsed);
    }
    times.sort();
    println!(
        "netting {TRANSFERS} transfers, {BANKS} banks, 4 currencies (seed {seed:#x}): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3
    );
}
