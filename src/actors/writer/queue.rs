//! The store writer's queue: which records leave in which batch and when each barrier
//! runs. Pure bookkeeping with no IO, so that its ordering can be tested with plain
//! values; the writer actor does the writes and reads it asks for.

use std::collections::VecDeque;

/// Batching limits.
#[derive(Clone, Copy, Debug)]
pub struct WriterLimits {
    /// Most transfers in one batch.
    pub batch_size_max: usize,
    /// Most batches committing at once, each on its own connection.
    pub batches_in_flight_max: usize,
}

/// What the writer should start now.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<R, B> {
    /// Write `records` as one batch, then call `batch_done` with its `slot`. Batches
    /// are numbered from 1 in the order they leave, so that banks can order a snapshot
    /// (taken after batch `seq`) against the book updates of each batch. `slot` is
    /// below `batches_in_flight_max` and held by no other batch in flight: the rows of
    /// the windows' sums the batch adds to (see `store::SumSlot`).
    Batch {
        seq: u64,
        slot: usize,
        records: Vec<R>,
    },
    /// Run this barrier, then call `barrier_done`.
    Barrier(B),
}

/// A barrier with the number of records received before it.
struct Marked<B> {
    mark: u64,
    barrier: B,
}

/// Records waiting to be written and barriers waiting to run, in arrival order.
///
/// A barrier runs once every record received before it has been dispatched and no
/// batch is in flight, so that whatever it reads or answers sees all of them
/// committed (or failed); no record received after it is dispatched before it has
/// run. While a barrier runs nothing else starts.
pub struct WriteQueue<R, B> {
    limits: WriterLimits,
    buffer: VecDeque<R>,
    barriers: VecDeque<Marked<B>>,
    barrier_running: bool,
    in_flight: usize,
    /// Slots no batch in flight holds; the next one handed out is the last.
    free_slots: Vec<usize>,
    received: u64,
    dispatched: u64,
    last_batch_seq: u64,
}

impl<R, B> WriteQueue<R, B> {
    /// Both limits must be at least one (the settings refuse zero at start): with
    /// none, nothing would ever leave.
    pub fn new(limits: WriterLimits) -> Self {
        assert!(
            limits.batch_size_max >= 1 && limits.batches_in_flight_max >= 1,
            "writer limits must be at least 1: {limits:?}"
        );
        WriteQueue {
            limits,
            buffer: VecDeque::new(),
            barriers: VecDeque::new(),
            barrier_running: false,
            in_flight: 0,
            free_slots: all_slots(limits),
            received: 0,
            dispatched: 0,
            last_batch_seq: 0,
        }
    }

    /// Queues a record; it leaves in a batch handed out by `next_step`.
    pub fn push(&mut self, record: R) {
        self.received += 1;
        self.buffer.push_back(record);
    }

    /// Queues a barrier behind every record received so far.
    pub fn push_barrier(&mut self, barrier: B) {
        self.barriers.push_back(Marked {
            mark: self.received,
            barrier,
        });
    }

    /// The next batch or barrier to start, or `None` while the limits allow nothing
    /// more. Call it until it answers `None`, and again after each completion.
    ///
    /// While no batch is in flight a lone record leaves at once (it waits only for
    /// its own commit); while batches are in flight, records gather and leave
    /// together, up to `batch_size_max`, as soon as one finishes.
    pub fn next_step(&mut self) -> Option<Step<R, B>> {
        if self.barrier_running {
            return None;
        }
        let mut take_max = self.limits.batch_size_max;
        if let Some(front) = self.barriers.front() {
            if self.dispatched >= front.mark {
                if self.in_flight > 0 {
                    return None;
                }
                let front = self.barriers.pop_front().expect("front exists");
                self.barrier_running = true;
                return Some(Step::Barrier(front.barrier));
            }
            // A batch never takes records from behind the barrier.
            take_max = take_max.min((front.mark - self.dispatched) as usize);
        }
        if self.buffer.is_empty() || self.in_flight >= self.limits.batches_in_flight_max {
            return None;
        }
        let take = take_max.min(self.buffer.len());
        let records: Vec<R> = self.buffer.drain(..take).collect();
        let slot = self
            .free_slots
            .pop()
            .expect("a slot per batch allowed in flight");
        self.dispatched += take as u64;
        self.in_flight += 1;
        self.last_batch_seq += 1;
        Some(Step::Batch {
            seq: self.last_batch_seq,
            slot,
            records,
        })
    }

    /// While a barrier runs: the barrier queued right behind it, if that one is due
    /// as well (no record between them) and `joins` accepts it. The caller serves it
    /// together with the running one and calls `barrier_done` once for both; this
    /// is how one read answers every bank that asked for its books at once.
    pub fn next_due_barrier_if(&mut self, joins: impl FnOnce(&B) -> bool) -> Option<B> {
        if !self.barrier_running {
            return None;
        }
        let front = self.barriers.front()?;
        if front.mark > self.dispatched || !joins(&front.barrier) {
            return None;
        }
        self.barriers.pop_front().map(|m| m.barrier)
    }

    /// The batch handed out by `next_step` with `slot` finished, committed or failed.
    pub fn batch_done(&mut self, slot: usize) {
        debug_assert!(self.in_flight > 0, "no batch in flight");
        debug_assert!(!self.free_slots.contains(&slot), "slot {slot} is not held");
        self.in_flight = self.in_flight.saturating_sub(1);
        self.free_slots.push(slot);
    }

    /// The barrier handed out by `next_step` finished.
    pub fn barrier_done(&mut self) {
        debug_assert!(self.barrier_running, "no barrier running");
        self.barrier_running = false;
    }

    /// After a restart: what was queued is dropped (its senders see their replies
    /// dropped) and what was running is forgotten, since a restarted actor's spawned
    /// work is cancelled. Everything received counts as dispatched; batch numbers go
    /// on from the last one, so that they keep increasing for the banks.
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.barriers.clear();
        self.barrier_running = false;
        self.in_flight = 0;
        self.free_slots = all_slots(self.limits);
        self.dispatched = self.received;
    }

    /// Number of the last batch handed out; 0 before the first.
    pub fn last_batch_seq(&self) -> u64 {
        self.last_batch_seq
    }

    /// Number of records pushed so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// Every slot, handed out from 0 up.
fn all_slots(limits: WriterLimits) -> Vec<usize> {
    (0..limits.batches_in_flight_max).rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Queue = WriteQueue<u32, &'static str>;

    fn queue(batch_size_max: usize, batches_in_flight_max: usize) -> Queue {
        WriteQueue::new(WriterLimits {
            batch_size_max,
            batches_in_flight_max,
        })
    }

    fn batch(seq: u64, slot: usize, records: Vec<u32>) -> Option<Step<u32, &'static str>> {
        Some(Step::Batch { seq, slot, records })
    }

    fn is_snapshot(b: &&'static str) -> bool {
        b.starts_with("snapshot")
    }

    #[test]
    fn a_lone_record_is_dispatched_at_once() {
        let mut q = queue(100, 4);
        q.push(1);
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        assert_eq!(q.next_step(), None);
    }

    #[test]
    fn records_gather_while_batches_are_in_flight_and_leave_together_up_to_batch_size_max() {
        let mut q = queue(3, 2);
        q.push(1);
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        q.push(2);
        assert_eq!(q.next_step(), batch(2, 1, vec![2]));
        for r in 3..=7 {
            q.push(r);
            assert_eq!(q.next_step(), None);
        }
        // Batch 2 finishes first: batch 3 takes its slot.
        q.batch_done(1);
        assert_eq!(q.next_step(), batch(3, 1, vec![3, 4, 5]));
        assert_eq!(q.next_step(), None);
        q.batch_done(0);
        assert_eq!(q.next_step(), batch(4, 0, vec![6, 7]));
    }

    #[test]
    fn batch_sequence_numbers_increase_by_one_from_one() {
        let mut q = queue(2, 1);
        assert_eq!(q.last_batch_seq(), 0);
        for seq in 1..=5 {
            q.push(0);
            assert!(matches!(q.next_step(), Some(Step::Batch { seq: s, .. }) if s == seq));
            q.batch_done(0);
            assert_eq!(q.last_batch_seq(), seq);
        }
    }

    #[test]
    fn a_barrier_waits_until_every_record_before_it_is_dispatched_and_no_batch_is_in_flight() {
        let mut q = queue(10, 1);
        q.push(1);
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        q.push(2);
        q.push(3);
        q.push_barrier("drain");
        q.push(4);
        assert_eq!(q.next_step(), None);
        q.batch_done(0);
        // The batch is cut at the barrier: record 4 stays behind it.
        assert_eq!(q.next_step(), batch(2, 0, vec![2, 3]));
        assert_eq!(q.next_step(), None);
        q.batch_done(0);
        assert_eq!(q.next_step(), Some(Step::Barrier("drain")));
    }

    #[test]
    fn records_received_after_a_barrier_wait_until_it_has_run_even_with_connections_free() {
        let mut q = queue(10, 4);
        q.push(1);
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        q.push_barrier("seal");
        q.push(2);
        assert_eq!(q.next_step(), None);
        q.batch_done(0);
        assert_eq!(q.next_step(), Some(Step::Barrier("seal")));
        assert_eq!(q.next_step(), None);
        q.barrier_done();
        assert_eq!(q.next_step(), batch(2, 0, vec![2]));
    }

    #[test]
    fn a_barrier_with_nothing_before_it_runs_at_once_and_blocks_batches_while_it_runs() {
        let mut q = queue(10, 4);
        q.push_barrier("release");
        assert_eq!(q.next_step(), Some(Step::Barrier("release")));
        q.push(1);
        q.push(2);
        assert_eq!(q.next_step(), None);
        q.barrier_done();
        assert_eq!(q.next_step(), batch(1, 0, vec![1, 2]));
    }

    #[test]
    fn due_snapshot_barriers_coalesce_but_not_across_another_kind_or_a_record() {
        let mut q = queue(10, 4);
        assert_eq!(q.next_due_barrier_if(is_snapshot), None);
        q.push_barrier("snapshot a");
        q.push_barrier("snapshot b");
        q.push_barrier("drain");
        q.push_barrier("snapshot c");
        q.push(1);
        q.push_barrier("snapshot d");
        assert_eq!(q.next_step(), Some(Step::Barrier("snapshot a")));
        assert_eq!(q.next_due_barrier_if(is_snapshot), Some("snapshot b"));
        assert_eq!(q.next_due_barrier_if(is_snapshot), None);
        q.barrier_done();
        assert_eq!(q.next_step(), Some(Step::Barrier("drain")));
        q.barrier_done();
        assert_eq!(q.next_step(), Some(Step::Barrier("snapshot c")));
        assert_eq!(q.next_due_barrier_if(is_snapshot), None);
        q.barrier_done();
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        assert_eq!(q.next_step(), None);
        q.batch_done(0);
        assert_eq!(q.next_step(), Some(Step::Barrier("snapshot d")));
    }

    #[test]
    fn reset_after_a_restart_drops_what_was_queued_and_numbers_batches_on() {
        let mut q = queue(10, 1);
        q.push(1);
        assert_eq!(q.next_step(), batch(1, 0, vec![1]));
        q.push(2);
        q.push_barrier("drain");
        q.push(3);
        q.reset();
        assert_eq!(q.received(), 3);
        assert_eq!(q.next_step(), None);
        // The batch in flight was cancelled with the actor's work: a connection and
        // its slot are free.
        q.push(4);
        assert_eq!(q.next_step(), batch(2, 0, vec![4]));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        /// A barrier; `true` for a snapshot.
        Barrier(bool),
        /// Finish one of the batches in flight (they may finish in any order).
        BatchDone(usize),
        BarrierDone,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Push),
            2 => any::<bool>().prop_map(Op::Barrier),
            3 => any::<usize>().prop_map(Op::BatchDone),
            1 => Just(Op::BarrierDone),
        ]
    }

    /// The writer as the queue sees it, checking each step against a simple model.
    struct Harness {
        q: WriteQueue<u32, (usize, bool)>,
        limits: WriterLimits,
        /// Each barrier's mark (records pushed before it), by barrier number.
        marks: Vec<u32>,
        dispatched: usize,
        /// By record, whether its batch finished; records are numbered from 0.
        completed: Vec<bool>,
        /// Each batch in flight: its slot and its records.
        in_flight: Vec<(usize, Vec<u32>)>,
        barriers_ran: usize,
        barrier_running: bool,
    }

    impl Harness {
        fn pump(&mut self) {
            while let Some(step) = self.q.next_step() {
                assert!(!self.barrier_running, "nothing starts while a barrier runs");
                match step {
                    Step::Batch { seq, slot, records } => {
                        assert_eq!(seq, self.q.last_batch_seq());
                        // A slot of its own among the batches in flight.
                        assert!(slot < self.limits.batches_in_flight_max);
                        assert!(self.in_flight.iter().all(|(held, _)| *held != slot));
                        assert!(!records.is_empty());
                        assert!(records.len() <= self.limits.batch_size_max);
                        // Never a record from behind a barrier that has not run.
                        if let Some(&mark) = self.marks.get(self.barriers_ran) {
                            assert!(*records.last().unwrap() < mark);
                        }
                        // In order, each exactly once.
                        assert_eq!(records[0] as usize, self.dispatched);
                        assert!(records.windows(2).all(|w| w[1] == w[0] + 1));
                        self.dispatched += records.len();
                        self.in_flight.push((slot, records));
                        assert!(self.in_flight.len() <= self.limits.batches_in_flight_max);
                    }
                    Step::Barrier(first) => {
                        self.ran(first);
                        // As the writer does: a snapshot takes the snapshots due behind it.
                        let snapshot = first.1;
                        while let Some(next) = self.q.next_due_barrier_if(|b| snapshot && b.1) {
                            assert!(next.1, "only snapshots coalesce");
                            self.ran(next);
                        }
                        self.barrier_running = true;
                    }
                }
            }
        }

        fn ran(&mut self, (number, _): (usize, bool)) {
            assert_eq!(number, self.barriers_ran, "barriers run in order");
            let mark = self.marks[number] as usize;
            assert!(self.completed[..mark].iter().all(|&c| c));
            assert_eq!(self.dispatched, mark);
            self.barriers_ran += 1;
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::Push => {
                    self.q.push(self.completed.len() as u32);
                    self.completed.push(false);
                }
                Op::Barrier(snapshot) => {
                    self.q.push_barrier((self.marks.len(), snapshot));
                    self.marks.push(self.completed.len() as u32);
                }
                Op::BatchDone(i) if !self.in_flight.is_empty() => {
                    let i = i % self.in_flight.len();
                    let (slot, records) = self.in_flight.remove(i);
                    for r in records {
                        self.completed[r as usize] = true;
                    }
                    self.q.batch_done(slot);
                }
                Op::BarrierDone if self.barrier_running => {
                    self.barrier_running = false;
                    self.q.barrier_done();
                }
                _ => {}
            }
            self.pump();
            // Never idle with work left: it is running or everything is done.
            if self.in_flight.is_empty() && !self.barrier_running {
                assert_eq!(self.dispatched, self.completed.len());
                assert_eq!(self.barriers_ran, self.marks.len());
            }
        }
    }

    proptest! {
        /// Under any interleaving of records, barriers and completions, every record
        /// is dispatched exactly once and in order, and each barrier runs after every
        /// record before it completed and before any record after it was dispatched.
        #[test]
        fn any_interleaving_keeps_records_in_order_and_barriers_between_them(
            batch_size_max in 1usize..5,
            batches_in_flight_max in 1usize..4,
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let limits = WriterLimits { batch_size_max, batches_in_flight_max };
            let mut h = Harness {
                q: WriteQueue::new(limits),
                limits,
                marks: Vec::new(),
                dispatched: 0,
                completed: Vec::new(),
                in_flight: Vec::new(),
                barriers_ran: 0,
                barrier_running: false,
            };
            for op in ops {
                h.apply(op);
            }
            while h.barrier_running || !h.in_flight.is_empty() {
                h.apply(if h.barrier_running { Op::BarrierDone } else { Op::BatchDone(0) });
            }
            prop_assert!(h.completed.iter().all(|&c| c));
            prop_assert_eq!(h.q.received(), h.completed.len() as u64);
        }
    }
}
