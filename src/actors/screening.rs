//! The screening list as the engine holds it: an index built from the stored list,
//! swapped whole whenever the list changes, and read by every submission without a
//! lock held across any work.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use prometheus::Histogram;

use super::Engine;
use crate::domain::screening::{
    PartyName, PartyRole, Screener, ScreeningEntry, Thresholds, Verdict,
};
use crate::store::StoreError;

/// The screening index and the scores that decide.
pub struct Screening {
    screener: RwLock<Arc<Screener>>,
    pub thresholds: Thresholds,
    /// Held through a reload, read and swap together: reloads run one at a time, so
    /// the last swap is of a read made after every change before it committed (two
    /// overlapping reloads could otherwise swap in the older read last).
    reloading: tokio::sync::Mutex<()>,
}

impl Screening {
    pub fn new(entries: Vec<ScreeningEntry>, thresholds: Thresholds) -> Self {
        Screening {
            screener: RwLock::new(Arc::new(Screener::new(entries))),
            thresholds,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The index now (cheap: a reference count).
    pub fn current(&self) -> Arc<Screener> {
        self.screener.read().expect("screening lock").clone()
    }

    pub fn replace(&self, entries: Vec<ScreeningEntry>) {
        let screener = Arc::new(Screener::new(entries));
        *self.screener.write().expect("screening lock") = screener;
    }

    /// Screens a transfer's parties against the list as it is now, timing the work
    /// (when there is any) in `took`.
    pub fn screen(&self, parties: &[(PartyRole, &PartyName)], took: &Histogram) -> Verdict {
        let screener = self.current();
        // Nothing to match against: the names need not even be tokenised.
        if parties.is_empty() || screener.is_empty() {
            return Verdict::Clear;
        }
        let started = Instant::now();
        let verdict = screener.screen(parties, self.thresholds);
        took.observe(started.elapsed().as_secs_f64());
        verdict
    }
}

impl Engine {
    /// Rebuilds the screening index from the stored list: after every change to it.
    pub async fn reload_screening(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.screening.reloading.lock().await;
        let entries = self.store.screening_entries().await?;
        let count = entries.len();
        self.screening.replace(entries);
        Ok(count)
    }
}
