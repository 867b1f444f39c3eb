//! Admission of transfer submissions by queueing delay, within a fixed count.
//!
//! The engine works on at most `--submissions-in-engine-max` submissions at once:
//! enough to keep its group commits full (its peak is reached with a few hundred),
//! few enough that each of them is answered within a fraction of a second. Beyond
//! that a submission waits its turn in arrival order (tokio's semaphore is fair), as
//! a parked future costing no CPU, for at most `--submit-delay-target-ms` from its
//! arrival; if its turn has not come by then it is refused with `503 overloaded` and
//! `Retry-After`, having never entered the engine. So an admitted submission waits at
//! most the target for its turn and then what the engine takes for a bounded set of
//! work; when the engine slows down (a stall of the database, more offered than it
//! can take) the waits reach the target and the excess is refused.
//!
//! `--submissions-in-flight-max` stays the outer bound on everything working or
//! waiting: beyond it a submission is refused at once.
//!
//! Why not refuse at once whoever is *expected* to wait too long? It was tried: a
//! client that retries at once (as a load generator does, ignoring `Retry-After`)
//! comes straight back, and at 4,000 connections the refusals took the CPU from the
//! admitted work, which slowed it, which made the expected waits longer — goodput
//! fell to a tenth (docs/PERFORMANCE.md, issue 9). Refused at its deadline, a client
//! has waited the target before it can come back, so refusals cannot feed on
//! themselves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Why a submission was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The fixed bound on submissions in flight (working or waiting) is reached.
    InFlight,
    /// Its turn did not come within the delay target.
    Delay,
}

impl Refusal {
    /// The label of `deltran_submissions_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::InFlight => "overloaded",
            Refusal::Delay => "delay",
        }
    }
}

/// The limits of admission, from the settings.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionLimits {
    pub in_flight_max: usize,
    pub in_engine_max: usize,
    pub delay_target: Duration,
}

/// The admission state shared by every HTTP worker.
pub struct Admission {
    limits: AdmissionLimits,
    /// One permit per submission the engine works on.
    in_engine: Semaphore,
    /// Working and waiting together.
    in_flight: AtomicUsize,
    waiting_gauge: IntGauge,
}

impl Admission {
    /// `waiting_gauge` shows the submissions waiting for their turn.
    pub fn new(limits: AdmissionLimits, waiting_gauge: IntGauge) -> Self {
        Admission {
            limits,
            in_engine: Semaphore::new(limits.in_engine_max),
            in_flight: AtomicUsize::new(0),
            waiting_gauge,
        }
    }

    /// Admits a submission that arrived at `arrived`, waiting for its turn if the
    /// engine is busy, or says why not. The ticket releases its place when dropped
    /// (answered, failed, or the client went away).
    pub async fn admit(&self, arrived: Instant) -> Result<Ticket<'_>, Refusal> {
        self.admit_many(arrived, 1).await
    }

    /// Admits work that takes `count` places at once (a batch's transfers), all or
    /// none, up to all of the engine's places (work larger than the engine's count
    /// takes every place, and so waits until the engine has nothing else in hand
    /// rather than never).
    pub async fn admit_many(&self, arrived: Instant, count: usize) -> Result<Ticket<'_>, Refusal> {
        let weight = count
            .clamp(1, self.limits.in_engine_max.min(self.limits.in_flight_max))
            .min(u32::MAX as usize);
        let counted = Counted::enter(&self.in_flight, self.limits.in_flight_max, weight)
            .ok_or(Refusal::InFlight)?;
        let permit = match self.in_engine.try_acquire_many(weight as u32) {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = Shown::on(&self.waiting_gauge);
                let deadline = tokio::time::Instant::from_std(arrived + self.limits.delay_target);
                match tokio::time::timeout_at(deadline, self.in_engine.acquire_many(weight as u32))
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    // Timed out, or the semaphore closed (it never is).
                    _ => return Err(Refusal::Delay),
                }
            }
        };
        Ok(Ticket {
            _permit: permit,
            _counted: counted,
        })
    }
}

/// Counts on a gauge while it lives (a waiting client may go away mid-wait).
struct Shown<'a>(&'a IntGauge);

impl<'a> Shown<'a> {
    fn on(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Shown(gauge)
    }
}

impl Drop for Shown<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One admitted submission; dropping it frees its place in the engine.
pub struct Ticket<'a> {
    _permit: SemaphorePermit<'a>,
    _counted: Counted<'a>,
}

/// `places` places in a bounded count, given back when dropped.
struct Counted<'a> {
    count: &'a AtomicUsize,
    places: usize,
}

impl<'a> Counted<'a> {
    fn enter(count: &'a AtomicUsize, max: usize, places: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + places <= max).then_some(n + places)
            })
            .ok()?;
        Some(Counted { count, places })
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(self.places, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn admission(in_flight_max: usize, in_engine_max: usize, target: Duration) -> Admission {
        let limits = AdmissionLimits {
            in_flight_max,
            in_engine_max,
            delay_target: target,
        };
        Admission::new(limits, IntGauge::new("waiting", "waiting").unwrap())
    }

    #[tokio::test]
    async fn a_waiting_submission_gets_the_first_free_place_in_arrival_order() {
        let admission = admission(10, 1, Duration::from_secs(600));
        let first = admission.admit(Instant::now()).await.expect("a free place");
        let second = admission.admit(Instant::now());
        let third = admission.admit(Instant::now());
        tokio::pin!(second, third);
        // Both wait while the only place is taken.
        assert!(second.as_mut().now_or_never().is_none());
        assert!(third.as_mut().now_or_never().is_none());
        assert_eq!(admission.waiting_gauge.get(), 2);
        drop(first);
        let second = second.await.expect("its turn");
        assert!(third.as_mut().now_or_never().is_none());
        drop(second);
        third.await.expect("its turn");
        assert_eq!(admission.waiting_gauge.get(), 0);
    }

    #[tokio::test]
    async fn a_submission_whose_turn_does_not_come_within_the_target_is_refused() {
        let admission = admission(10, 1, ms(20));
        let _working = admission.admit(Instant::now()).await.unwrap();
        let refused = admission.admit(Instant::now()).await;
        assert_eq!(refused.err(), Some(Refusal::Delay));
        // It gave its place back.
        assert_eq!(admission.in_flight.load(Ordering::Acquire), 1);
    }

    #[tokio::test]
    async fn a_batch_takes_a_place_per_transfer_up_to_all_of_them() {
        let admission = admission(10, 4, Duration::from_secs(600));
        let batch = admission.admit_many(Instant::now(), 3).await.unwrap();
        // One place is left: a single submission gets it, a second waits.
        let single = admission.admit(Instant::now()).await.unwrap();
        let waiting = admission.admit(Instant::now());
        tokio::pin!(waiting);
        assert!(waiting.as_mut().now_or_never().is_none());
        drop(batch);
        let second = waiting.await.expect("the batch's places came back");
        // A batch larger than the engine's count waits for every place, then enters.
        let large = admission.admit_many(Instant::now(), 1000);
        tokio::pin!(large);
        assert!(large.as_mut().now_or_never().is_none());
        drop(single);
        assert!(
            large.as_mut().now_or_never().is_none(),
            "one place is still taken"
        );
        drop(second);
        large.await.expect("every place is free");
    }

    #[tokio::test]
    async fn the_count_in_flight_stays_the_outer_bound() {
        let admission = admission(1, 1, Duration::from_secs(600));
        let _working = admission.admit(Instant::now()).await.unwrap();
        let refused = admission.admit(Instant::now()).await;
        assert_eq!(refused.err(), Some(Refusal::InFlight));
    }
}
