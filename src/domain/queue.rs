//! A sender's queue of transfers waiting for headroom, as its bank actor keeps it.
//!
//! A transfer submitted with `on_limit` `queue` that would take its sender past its
//! limit waits here instead of being rejected. Each currency has its own queue (the
//! limit is per currency, so a transfer in one never waits behind one in another),
//! in two lanes: every `high` transfer leaves before any `normal` one, and within a
//! lane first in, first out. A transfer joins the queue when its bank decides it, so
//! the order is the order of decision, and becomes releasable once its row is
//! stored (`confirm`): one that is still being committed holds back those behind it.
//! Pure: no IO, no clock.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::Decimal;

use super::ids::{TransferId, WindowId};
use super::money::Currency;
use super::transfer::{QueuePriority, Transfer};

/// One queued transfer and whether its row is stored yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    pub transfer: Transfer,
    pub stored: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lanes {
    high: VecDeque<QueueEntry>,
    normal: VecDeque<QueueEntry>,
}

impl Lanes {
    fn lane(&mut self, priority: QueuePriority) -> &mut VecDeque<QueueEntry> {
        match priority {
            QueuePriority::High => &mut self.high,
            QueuePriority::Normal => &mut self.normal,
        }
    }

    fn head(&self) -> Option<&QueueEntry> {
        self.high.front().or_else(|| self.normal.front())
    }

    fn pop_head(&mut self) -> Option<QueueEntry> {
        self.high.pop_front().or_else(|| self.normal.pop_front())
    }

    fn iter(&self) -> impl Iterator<Item = &QueueEntry> {
        self.high.iter().chain(self.normal.iter())
    }

    fn is_empty(&self) -> bool {
        self.high.is_empty() && self.normal.is_empty()
    }
}

/// One bank's queued transfers, per currency, in release order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderQueue {
    currencies: BTreeMap<Currency, Lanes>,
}

impl SenderQueue {
    /// The queue as the store holds it (every row stored), from the bank's queued
    /// transfers in any order: within a lane they are put in id order, which is the
    /// order they were decided in (ids are time-ordered UUIDv7, increasing within a
    /// process).
    pub fn from_stored(mut transfers: Vec<Transfer>) -> SenderQueue {
        transfers.sort_by_key(|t| t.id);
        let mut queue = SenderQueue::default();
        for transfer in transfers {
            queue.push(transfer, true);
        }
        queue
    }

    /// Whether a new transfer in `currency` with `priority` must queue behind others
    /// whatever its headroom: a `high` one waits behind queued `high` ones, a
    /// `normal` one behind any.
    pub fn has_ahead(&self, currency: Currency, priority: QueuePriority) -> bool {
        self.currencies
            .get(&currency)
            .is_some_and(|lanes| match priority {
                QueuePriority::High => !lanes.high.is_empty(),
                QueuePriority::Normal => !lanes.is_empty(),
            })
    }

    /// Adds a transfer at the back of its lane; `stored` says whether its row is.
    /// A transfer that did not ask to queue goes in the normal lane.
    pub fn push(&mut self, transfer: Transfer, stored: bool) {
        let priority = transfer.queue.unwrap_or(QueuePriority::Normal);
        self.currencies
            .entry(transfer.amount.currency())
            .or_default()
            .lane(priority)
            .push_back(QueueEntry { transfer, stored });
    }

    /// The row of transfer `id` is stored: it may be released from now on.
    pub fn confirm(&mut self, id: TransferId) {
        if let Some(entry) = self.entry_mut(id) {
            entry.stored = true;
        }
    }

    /// Takes transfer `id` out of the queue, wherever it stands.
    pub fn remove(&mut self, id: TransferId) -> Option<Transfer> {
        for lanes in self.currencies.values_mut() {
            for lane in [&mut lanes.high, &mut lanes.normal] {
                if let Some(at) = lane.iter().position(|e| e.transfer.id == id) {
                    return lane.remove(at).map(|e| e.transfer);
                }
            }
        }
        None
    }

    #[cfg(test)]
    pub fn contains(&self, id: TransferId) -> bool {
        self.iter().any(|e| e.transfer.id == id)
    }

    /// Takes from the head of `currency`'s queue, in order, every stored transfer
    /// that fits in `headroom` (each lowering it by its amount), up to the first that
    /// does not fit or is not stored yet: first in, first out, no overtaking.
    pub fn release_fitting(&mut self, currency: Currency, headroom: Decimal) -> Vec<Transfer> {
        let Some(lanes) = self.currencies.get_mut(&currency) else {
            return Vec::new();
        };
        let mut left = headroom;
        let mut released = Vec::new();
        while let Some(head) = lanes.head() {
            let amount = head.transfer.amount.value();
            if !head.stored || amount > left {
                break;
            }
            left -= amount;
            released.push(lanes.pop_head().expect("a head").transfer);
        }
        released
    }

    /// Takes out every stored transfer queued so long ago that window `open` is the
    /// `ttl_windows`-th window after the one it was queued in: it has had
    /// `ttl_windows` windows to be released in and is now expired.
    pub fn expire(&mut self, open: WindowId, ttl_windows: u32) -> Vec<Transfer> {
        let due = |e: &QueueEntry| {
            e.stored
                && e.transfer
                    .queued_in
                    .is_some_and(|q| open.get() >= q.get().saturating_add(i64::from(ttl_windows)))
        };
        let mut expired = Vec::new();
        for lanes in self.currencies.values_mut() {
            for lane in [&mut lanes.high, &mut lanes.normal] {
                let (gone, kept): (VecDeque<QueueEntry>, VecDeque<QueueEntry>) =
                    lane.drain(..).partition(due);
                *lane = kept;
                expired.extend(gone.into_iter().map(|e| e.transfer));
            }
        }
        expired
    }

    /// Every entry, currency by currency, each in release order.
    pub fn iter(&self) -> impl Iterator<Item = &QueueEntry> {
        self.currencies.values().flat_map(Lanes::iter)
    }

    /// The currencies that have transfers waiting.
    pub fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.currencies
            .iter()
            .filter(|(_, lanes)| !lanes.is_empty())
            .map(|(c, _)| *c)
    }

    /// How many transfers wait in `currency`, and their value.
    pub fn depth(&self, currency: Currency) -> (usize, Decimal) {
        self.currencies
            .get(&currency)
            .map_or((0, Decimal::ZERO), |lanes| {
                lanes.iter().fold((0, Decimal::ZERO), |(n, v), e| {
                    (n + 1, v + e.transfer.amount.value())
                })
            })
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.currencies.values().all(Lanes::is_empty)
    }

    fn entry_mut(&mut self, id: TransferId) -> Option<&mut QueueEntry> {
        self.currencies.values_mut().find_map(|lanes| {
            lanes
                .high
                .iter_mut()
                .chain(lanes.normal.iter_mut())
                .find(|e| e.transfer.id == id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, Outcome};

    fn queued(amount: &str, currency: &str, priority: QueuePriority, window: i64) -> Transfer {
        let currency = Currency::parse(currency).unwrap();
        let amount = Amount::parse(amount, currency).unwrap();
        let aed = Currency::parse("AED").unwrap();
        Transfer {
            converted: Some(amount),
            queue: Some(priority),
            queued_in: Some(WindowId::new(window).unwrap()),
            ..Transfer::for_test("ICICI", "ENBD", amount, aed, Outcome::Queued)
        }
    }

    fn ids(transfers: &[Transfer]) -> Vec<TransferId> {
        transfers.iter().map(|t| t.id).collect()
    }

    const INR: &str = "INR";

    fn inr() -> Currency {
        Currency::parse(INR).unwrap()
    }

    #[test]
    fn releases_first_in_first_out_and_never_lets_a_later_transfer_overtake() {
        let mut q = SenderQueue::default();
        let a = queued("100.00", INR, QueuePriority::Normal, 1);
        let b = queued("300.00", INR, QueuePriority::Normal, 1);
        let c = queued("50.00", INR, QueuePriority::Normal, 1);
        for t in [&a, &b, &c] {
            q.push(t.clone(), true);
        }
        // 350 of headroom: a (100) fits, b (300) does not, so c (50) waits behind b.
        let released = q.release_fitting(inr(), Decimal::new(350, 0));
        assert_eq!(ids(&released), vec![a.id]);
        let released = q.release_fitting(inr(), Decimal::new(350, 0));
        assert_eq!(ids(&released), vec![b.id, c.id]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_high_priority_transfer_leaves_before_every_normal_one() {
        let mut q = SenderQueue::default();
        let normal = queued("10.00", INR, QueuePriority::Normal, 1);
        let high = queued("20.00", INR, QueuePriority::High, 1);
        q.push(normal.clone(), true);
        assert!(!q.has_ahead(inr(), QueuePriority::High));
        assert!(q.has_ahead(inr(), QueuePriority::Normal));
        q.push(high.clone(), true);
        let released = q.release_fitting(inr(), Decimal::new(1000, 0));
        assert_eq!(ids(&released), vec![high.id, normal.id]);
    }

    #[test]
    fn a_transfer_not_yet_stored_holds_back_those_behind_it() {
        let mut q = SenderQueue::default();
        let first = queued("10.00", INR, QueuePriority::Normal, 1);
        let second = queued("10.00", INR, QueuePriority::Normal, 1);
        q.push(first.clone(), false);
        q.push(second.clone(), true);
        assert!(q.release_fitting(inr(), Decimal::new(1000, 0)).is_empty());
        q.confirm(first.id);
        assert_eq!(
            ids(&q.release_fitting(inr(), Decimal::new(1000, 0))),
            vec![first.id, second.id]
        );
    }

    #[test]
    fn currencies_queue_apart() {
        let mut q = SenderQueue::default();
        let rupees = queued("500.00", INR, QueuePriority::Normal, 1);
        let dirhams = queued("5.00", "AED", QueuePriority::Normal, 1);
        q.push(rupees, true);
        q.push(dirhams.clone(), true);
        let aed = Currency::parse("AED").unwrap();
        assert!(!q.has_ahead(Currency::parse("USD").unwrap(), QueuePriority::Normal));
        assert_eq!(
            ids(&q.release_fitting(aed, Decimal::new(10, 0))),
            vec![dirhams.id]
        );
        assert_eq!(q.depth(inr()), (1, Decimal::new(50000, 2)));
        assert_eq!(q.currencies().collect::<Vec<_>>(), vec![inr()]);
    }

    #[test]
    fn a_transfer_expires_once_it_has_had_its_windows() {
        let mut q = SenderQueue::default();
        let old = queued("10.00", INR, QueuePriority::Normal, 3);
        let young = queued("10.00", INR, QueuePriority::High, 4);
        q.push(old.clone(), true);
        q.push(young.clone(), true);
        // ttl 2: queued in window 3, it may be released in 3 and 4; at 5 it expires.
        assert!(q.expire(WindowId::new(4).unwrap(), 2).is_empty());
        assert_eq!(ids(&q.expire(WindowId::new(5).unwrap(), 2)), vec![old.id]);
        assert_eq!(ids(&q.expire(WindowId::new(6).unwrap(), 2)), vec![young.id]);
        assert!(q.is_empty());
    }

    #[test]
    fn the_stored_queue_is_rebuilt_in_decision_order_and_entries_can_be_removed() {
        let a = queued("1.00", INR, QueuePriority::Normal, 1);
        let b = queued("2.00", INR, QueuePriority::Normal, 1);
        let c = queued("3.00", INR, QueuePriority::High, 1);
        let mut q = SenderQueue::from_stored(vec![c.clone(), b.clone(), a.clone()]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.remove(b.id).map(|t| t.id), Some(b.id));
        assert!(!q.contains(b.id));
        assert_eq!(q.remove(b.id), None);
        assert_eq!(
            ids(&q.release_fitting(inr(), Decimal::new(100, 0))),
            vec![c.id, a.id]
        );
    }
}
