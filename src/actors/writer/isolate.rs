//! Writing one batch so that a transfer the database refuses for its own data fails
//! alone. The batch is written whole first; if the database refuses it for a reason
//! that belongs to its data (SQLSTATE class 22, data exception, or 23, integrity
//! constraint violation), it is split in halves and each half written again,
//! recursively, until every transfer that can be stored is committed and each one
//! that cannot is known by itself. This is IO only: the queue still sees one batch
//! and one completion.

use std::future::Future;
use std::ops::Range;

use crate::domain::Transfer;
use crate::store::{InsertOutcome, Store, StoreError};

/// What became of one record of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written<O> {
    /// Committed (for a transfer: inserted, or the stored transfer its idempotency
    /// key points to).
    Committed(O),
    /// Refused alone for its own data, with the SQLSTATE: certainly not committed.
    Unstorable(String),
    /// Not known to be committed: the database failed (the batch's `error`).
    Failed,
}

/// The fate of every record of a batch, in the batch's order, and the failure that
/// left some of them unknown, if any.
#[derive(Debug)]
pub(super) struct BatchWritten<O, E> {
    pub rows: Vec<Written<O>>,
    pub error: Option<E>,
    /// Statements run after the first (0 when the batch went in whole).
    pub retries: usize,
}

/// The SQLSTATE when the database refused the statement for the data it was given
/// rather than for its own state. A failed statement commits nothing, and the insert's
/// later reads (which transfers went in, what a reused idempotency key holds) select
/// only by values the insert has just accepted, so a refusal of this kind means that
/// none of the statement's transfers is stored.
pub(super) fn refused_for_its_data(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Query(_) | StoreError::Duplicate(_) => error
            .sqlstate()
            .filter(|code| code.starts_with("22") || code.starts_with("23"))
            .map(str::to_string),
        _ => None,
    }
}

/// Writes `batch` to the store, isolating what the database refuses for its data.
pub(super) async fn write_transfers(
    store: &Store,
    batch: &[&Transfer],
) -> BatchWritten<InsertOutcome, StoreError> {
    isolate(
        batch.len(),
        |range| store.insert_transfers(&batch[range]),
        refused_for_its_data,
    )
    .await
}

/// Writes records `0..len` with `write` (one statement per call, for the records in
/// the range), splitting a range whose statement `refused_for_its_data` in halves
/// until each refused record stands alone. The first half is written before the
/// second, so records go in the order they arrived (the first of two transfers with
/// one idempotency key wins, as in one statement). After a failure of any other kind
/// nothing more is tried: the rest is `Failed` with it, as a whole batch was before.
pub(super) async fn isolate<O, E, W, F>(
    len: usize,
    mut write: W,
    refused_for_its_data: impl Fn(&E) -> Option<String>,
) -> BatchWritten<O, E>
where
    W: FnMut(Range<usize>) -> F,
    F: Future<Output = Result<Vec<O>, E>>,
{
    let mut rows: Vec<Option<Written<O>>> = (0..len).map(|_| None).collect();
    let mut error: Option<E> = None;
    let mut statements = 0usize;
    // Ranges still to write, the next one last: first the whole batch.
    let mut to_write: Vec<Range<usize>> = Vec::new();
    to_write.push(0..len);
    while let Some(range) = to_write.pop() {
        if range.is_empty() {
            continue;
        }
        if error.is_some() {
            fill_failed(&mut rows, range);
            continue;
        }
        statements += 1;
        match write(range.clone()).await {
            Ok(outcomes) => {
                debug_assert_eq!(outcomes.len(), range.len(), "one outcome per record");
                for (row, outcome) in rows[range].iter_mut().zip(outcomes) {
                    *row = Some(Written::Committed(outcome));
                }
            }
            Err(failure) => match refused_for_its_data(&failure) {
                Some(code) if range.len() == 1 => {
                    rows[range.start] = Some(Written::Unstorable(code));
                }
                Some(_) => {
                    let middle = range.start + range.len() / 2;
                    to_write.push(middle..range.end);
                    to_write.push(range.start..middle);
                }
                None => {
                    fill_failed(&mut rows, range);
                    error = Some(failure);
                }
            },
        }
    }
    BatchWritten {
        rows: rows
            .into_iter()
            .map(|row| row.unwrap_or(Written::Failed))
            .collect(),
        error,
        retries: statements.saturating_sub(1),
    }
}

fn fill_failed<O>(rows: &mut [Option<Written<O>>], range: Range<usize>) {
    for row in &mut rows[range] {
        *row = Some(Written::Failed);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Fake {
        /// The data refused, as Postgres refuses a NUL byte in text.
        Data,
        /// The connection dropped.
        Down,
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn data(e: &Fake) -> Option<String> {
        (*e == Fake::Data).then(|| "22021".to_string())
    }

    /// A store that refuses any statement holding a poisoned record and goes down at
    /// statement `down_at` (counted from 0); answers what it committed, in order.
    fn write_with(
        len: usize,
        poisoned: &BTreeSet<usize>,
        down_at: Option<usize>,
    ) -> (BatchWritten<usize, Fake>, Vec<usize>) {
        let committed = RefCell::new(Vec::new());
        let statements = RefCell::new(0usize);
        let written = run(isolate(
            len,
            |range: Range<usize>| {
                let n = {
                    let mut s = statements.borrow_mut();
                    *s += 1;
                    *s - 1
                };
                let result = if Some(n) == down_at {
                    Err(Fake::Down)
                } else if range.clone().any(|i| poisoned.contains(&i)) {
                    Err(Fake::Data)
                } else {
                    committed.borrow_mut().extend(range.clone());
                    Ok(range.collect())
                };
                std::future::ready(result)
            },
            data,
        ));
        (written, committed.into_inner())
    }

    #[test]
    fn a_clean_batch_is_one_statement() {
        let (written, committed) = write_with(5, &BTreeSet::new(), None);
        assert_eq!(written.retries, 0);
        assert!(written.error.is_none());
        assert_eq!(committed, vec![0, 1, 2, 3, 4]);
        assert_eq!(
            written.rows,
            (0..5).map(Written::Committed).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_poisoned_record_fails_alone_and_the_others_commit_in_order() {
        let (written, committed) = write_with(8, &BTreeSet::from([5]), None);
        assert_eq!(committed, vec![0, 1, 2, 3, 4, 6, 7]);
        assert_eq!(written.rows[5], Written::Unstorable("22021".into()));
        // Whole batch, then halves down to the record: 1 + 2 log2(8).
        assert_eq!(written.retries, 6);
    }

    #[test]
    fn a_failure_of_the_database_fails_the_rest_without_trying_it() {
        // Statement 0 (the whole batch) is refused for its data; statement 1 (the first
        // half) commits; statement 2 (the second half) meets the database down.
        let (written, committed) = write_with(4, &BTreeSet::from([3]), Some(2));
        assert_eq!(committed, vec![0, 1]);
        assert_eq!(written.error, Some(Fake::Down));
        assert_eq!(
            written.rows,
            vec![
                Written::Committed(0),
                Written::Committed(1),
                Written::Failed,
                Written::Failed
            ]
        );
        let (written, committed) = write_with(4, &BTreeSet::new(), Some(0));
        assert!(committed.is_empty());
        assert!(written.rows.iter().all(|r| *r == Written::Failed));
    }

    proptest! {
        /// Whatever records are poisoned, each clean one commits exactly once and in
        /// order, each poisoned one is unstorable, and the retries stay within
        /// 2 log2(len) per poisoned record.
        #[test]
        fn only_the_poisoned_records_fail(
            len in 1usize..300,
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let poisoned: BTreeSet<usize> = picks.iter().map(|p| p.index(len)).collect();
            let (written, committed) = write_with(len, &poisoned, None);
            let clean: Vec<usize> = (0..len).filter(|i| !poisoned.contains(i)).collect();
            prop_assert_eq!(committed, clean);
            prop_assert!(written.error.is_none());
            for (i, row) in written.rows.iter().enumerate() {
                if poisoned.contains(&i) {
                    prop_assert_eq!(row, &Written::Unstorable("22021".into()));
                } else {
                    prop_assert_eq!(row, &Written::Committed(i));
                }
            }
            let depth = (usize::BITS - len.leading_zeros()) as usize;
            prop_assert!(written.retries <= 2 * depth * poisoned.len());
        }
    }
}
