//! Compliance screening alone: a transfer's two parties screened against a list of
//! 10,000 generated entries (two or three words of syllables, aliases, countries —
//! as `loadtest/screening_bench.sh` loads) and against an empty list, the same
//! ordinary business names as the wrk load. Run with `cargo bench --bench screening`;
//! prints each run and the median time per transfer.

use std::time::{Duration, Instant};

use chrono::Utc;
use deltran::domain::screening::{
    PartyName, PartyRole, Screener, ScreeningEntry, ScreeningList, Thresholds, Verdict,
};

const RUNS: usize = 7;
const TRANSFERS: usize = 200_000;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const HEADS: &[&str] = &[
    "Ab", "Al", "Am", "Ba", "Da", "Fa", "Ha", "Ja", "Ka", "Ma", "Na", "Ra", "Sa", "Ta", "Ya", "Za",
    "Bo", "Go", "Lu", "Mi", "Ni", "Ro", "Su", "Vi", "Wu", "Xe", "Ze", "Qu", "Po", "To",
];
const TAILS: &[&str] = &[
    "rid", "mal", "sim", "nan", "hir", "kar", "lid", "mud", "raf", "sin", "tar", "vid", "zan",
    "bek", "dov", "gul", "jem", "lov", "mir", "nek", "pov", "rin", "sul", "tov", "vek", "zor",
];

fn list(size: usize) -> Vec<ScreeningEntry> {
    let mut rng = Rng(20_261_204);
    let mut pick = |from: &[&'static str]| from[(rng.next() % from.len() as u64) as usize];
    (0..size)
        .map(|i| {
            let mut word = || format!("{}{}", pick(HEADS), pick(TAILS));
            let words = if i % 3 == 0 { 3 } else { 2 };
            let name = (0..words).map(|_| word()).collect::<Vec<_>>().join(" ");
            let aliases = (0..i % 3)
                .map(|_| format!("{} {}", word(), word()))
                .collect();
            ScreeningEntry {
                id: i as i64,
                list: ScreeningList::Sanctions,
                name,
                aliases,
                countries: vec![["AE", "IN", "IR", "KP"][i % 4].to_string()],
                reference: None,
                created_at: Utc::now(),
            }
        })
        .collect()
}

const FIRSTS: &[&str] = &[
    "Asha", "Ravi", "Meera", "Anil", "Priya", "Sunil", "Kavita", "Farhan", "Layla", "Omar",
    "Noura", "Khalid", "Zainab", "Yusuf", "Samir", "Hana",
];
const LASTS: &[&str] = &[
    "Mehta", "Sharma", "Gupta", "Kapoor", "Reddy", "Nair", "Iyer", "Haddad", "Mansour", "Qasim",
    "Saleh", "Darwish", "Khoury", "Nasser", "Aziz",
];
const TRADES: &[&str] = &[
    "Traders",
    "Exports",
    "Textiles",
    "Spices",
    "Logistics",
    "Foods",
    "Metals",
];

fn name(n: usize) -> String {
    format!(
        "{} {} {}",
        FIRSTS[n % 16],
        LASTS[(n / 7) % 15],
        TRADES[(n / 3) % 7]
    )
}

/// The median time per transfer of screening both parties of `TRANSFERS` transfers.
fn measure(screener: &Screener, label: &str) {
    let thresholds = Thresholds {
        reject: 0.92,
        hold: 0.85,
    };
    let mut runs: Vec<Duration> = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let mut caught = 0;
        let started = Instant::now();
        for i in 0..TRANSFERS {
            let debtor = PartyName {
                name: name(i),
                country: Some("IN".into()),
            };
            let creditor = PartyName {
                name: name(i * 31 + 5),
                country: Some("AE".into()),
            };
            let parties = [
                (PartyRole::Debtor, &debtor),
                (PartyRole::Creditor, &creditor),
            ];
            if screener.screen(&parties, thresholds) != Verdict::Clear {
                caught += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "{label}: run {run}: {:.2} µs per transfer ({caught} not clear)",
            took.as_secs_f64() * 1e6 / TRANSFERS as f64
        );
        runs.push(took);
    }
    runs.sort();
    println!(
        "{label}: median {:.2} µs per transfer\n",
        runs[RUNS / 2].as_secs_f64() * 1e6 / TRANSFERS as f64
    );
}

/// The entries of a list in the import route's CSV format.
fn list_from_csv(path: &str) -> Vec<ScreeningEntry> {
    let text = std::fs::read_to_string(path).expect("the list file");
    deltran::http::screening::read_csv(&text, usize::MAX)
        .expect("a list in the import format")
        .into_iter()
        .enumerate()
        .map(|(i, e)| ScreeningEntry {
            id: i as i64,
            list: e.list,
            name: e.name,
            aliases: e.aliases,
            countries: e.countries,
            reference: e.reference,
            created_at: Utc::now(),
        })
        .collect()
}

fn main() {
    let started = Instant::now();
    // SCREENING_LIST=file.csv times a list in the import format instead (the one
    // loadtest/screening_bench.sh writes, for one).
    let entries = match std::env::var("SCREENING_LIST") {
        Ok(path) => list_from_csv(&path),
        Err(_) => list(10_000),
    };
    let full = Screener::new(entries);
    println!("{} entries indexed in {:?}", full.len(), started.elapsed());
    measure(&full, "10,000 entries");
    measure(&Screener::new(Vec::new()), "empty list");
}
