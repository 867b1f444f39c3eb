//! Writing one batch so that a transfer the database refuses for its own data fails
//! alone. The batch is written whole first, as always. If the database refuses it for
//! a reason that belongs to its data (SQLSTATE class 22, data exception, or 23,
//! integrity constraint violation), it is written again in one transaction, split in
//! halves, recursively, each part behind a savepoint, until each refused transfer
//! stands alone; the parts that went in then commit together (one commit, however
//! many parts). This is IO only: the queue still sees one batch and one completion.

use std::ops::Range;

use crate::store::{
    InsertOutcome, Store, StoreError, SumSlot, TransferParts, TransferWrite, WritePath,
};

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
    /// Statements run to isolate refused records (0 when the batch went in whole).
    pub split_statements: usize,
    /// How the batch went in, when it went in whole.
    pub path: Option<WritePath>,
}

impl<O, E> BatchWritten<O, E> {
    fn all_failed(len: usize, error: E) -> Self {
        BatchWritten {
            rows: (0..len).map(|_| Written::Failed).collect(),
            error: Some(error),
            split_statements: 0,
            path: None,
        }
    }
}

/// The SQLSTATE when the database refused the statement for the data it was given
/// rather than for its own state. A failed statement writes nothing, and the insert's
/// later reads (which transfers went in, what a reused idempotency key holds) select
/// only by values the insert has just accepted, so a refusal of this kind means that
/// none of the statement's transfers is written.
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
/// Every statement adds what it inserts to the windows' sums in `slot`'s rows.
pub(super) async fn write_transfers(
    store: &Store,
    batch: &[TransferWrite<'_>],
    slot: SumSlot,
) -> BatchWritten<InsertOutcome, StoreError> {
    let refusal = match store.insert_transfers(batch, slot).await {
        Ok((outcomes, path)) => {
            return BatchWritten {
                rows: outcomes.into_iter().map(Written::Committed).collect(),
                error: None,
                split_statements: 0,
                path: Some(path),
            }
        }
        Err(error) => match refused_for_its_data(&error) {
            Some(code) => code,
            None => return BatchWritten::all_failed(batch.len(), error),
        },
    };
    if batch.len() == 1 {
        return BatchWritten {
            rows: vec![Written::Unstorable(refusal)],
            error: None,
            split_statements: 0,
            path: None,
        };
    }
    let mut parts = match store.begin_transfer_parts(slot).await {
        Ok(parts) => Parts { parts, batch },
        Err(error) => return BatchWritten::all_failed(batch.len(), error),
    };
    let mut written = split(batch.len(), &refusal, &mut parts, refused_for_its_data).await;
    let committed = match written.error {
        None => parts.parts.commit().await,
        // Not committed: dropping the parts rolls the transaction back.
        Some(_) => Ok(()),
    };
    if let Err(error) = committed {
        written.error = Some(error);
    }
    if written.error.is_some() {
        // What went in was in the transaction, which is gone (or its commit's fate is
        // unknown): those transfers share the batch's failure.
        for row in &mut written.rows {
            if matches!(row, Written::Committed(_)) {
                *row = Written::Failed;
            }
        }
    }
    written
}

/// Writes the records of a range as one statement.
pub(super) trait PartWriter {
    type Outcome;
    type Error;
    async fn write(&mut self, range: Range<usize>) -> Result<Vec<Self::Outcome>, Self::Error>;
}

struct Parts<'a> {
    parts: TransferParts,
    batch: &'a [TransferWrite<'a>],
}

impl PartWriter for Parts<'_> {
    type Outcome = InsertOutcome;
    type Error = StoreError;

    async fn write(&mut self, range: Range<usize>) -> Result<Vec<InsertOutcome>, StoreError> {
        self.parts.insert(&self.batch[range]).await
    }
}

/// Records `0..len`, refused together for their data with SQLSTATE `code`, written
/// again in halves, recursively: each range `refused_for_its_data` is halved until a
/// refused record stands alone. The first half is written before the second, so
/// records go in the order they arrived (the first of two transfers with one
/// idempotency key wins, as in one statement). After a failure of any other kind
/// nothing more is tried: the rest is `Failed` with it, as a whole batch was before.
pub(super) async fn split<W: PartWriter>(
    len: usize,
    code: &str,
    writer: &mut W,
    refused_for_its_data: impl Fn(&W::Error) -> Option<String>,
) -> BatchWritten<W::Outcome, W::Error> {
    let mut rows: Vec<Option<Written<W::Outcome>>> = (0..len).map(|_| None).collect();
    let mut error: Option<W::Error> = None;
    let mut statements = 0usize;
    // Ranges known to be refused are halved; the others are still to write, the next
    // one last.
    let mut to_write: Vec<Range<usize>> = Vec::new();
    halve(0..len, code.to_string(), &mut rows, &mut to_write);
    while let Some(range) = to_write.pop() {
        if error.is_some() {
            fill_failed(&mut rows, range);
            continue;
        }
        statements += 1;
        match writer.write(range.clone()).await {
            Ok(outcomes) => {
                debug_assert_eq!(outcomes.len(), range.len(), "one outcome per record");
                for (row, outcome) in rows[range].iter_mut().zip(outcomes) {
                    *row = Some(Written::Committed(outcome));
                }
            }
            Err(failure) => match refused_for_its_data(&failure) {
                Some(code) => halve(range, code, &mut rows, &mut to_write),
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
        split_statements: statements,
        path: None,
    }
}

/// A refused range: a lone record is unstorable; a longer one is written again in
/// halves, the first one next.
fn halve<O>(
    range: Range<usize>,
    code: String,
    rows: &mut [Option<Written<O>>],
    to_write: &mut Vec<Range<usize>>,
) {
    if range.len() == 1 {
        rows[range.start] = Some(Written::Unstorable(code));
    } else if !range.is_empty() {
        let middle = range.start + range.len() / 2;
        to_write.push(middle..range.end);
        to_write.push(range.start..middle);
    }
}

fn fill_failed<O>(rows: &mut [Option<Written<O>>], range: Range<usize>) {
    for row in &mut rows[range] {
        *row = Some(Written::Failed);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::future::Future;

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
    /// statement `down_at` (counted from 0); keeps what went in, in order.
    struct FakeStore {
        poisoned: BTreeSet<usize>,
        down_at: Option<usize>,
        statements: usize,
        written: Vec<usize>,
    }

    impl PartWriter for FakeStore {
        type Outcome = usize;
        type Error = Fake;

        async fn write(&mut self, range: Range<usize>) -> Result<Vec<usize>, Fake> {
            let n = self.statements;
            self.statements += 1;
            if Some(n) == self.down_at {
                return Err(Fake::Down);
            }
            if range.clone().any(|i| self.poisoned.contains(&i)) {
                return Err(Fake::Data);
            }
            self.written.extend(range.clone());
            Ok(range.collect())
        }
    }

    /// Splits a batch of `len` records that was refused whole.
    fn split_with(
        len: usize,
        poisoned: &BTreeSet<usize>,
        down_at: Option<usize>,
    ) -> (BatchWritten<usize, Fake>, Vec<usize>) {
        let mut store = FakeStore {
            poisoned: poisoned.clone(),
            down_at,
            statements: 0,
            written: Vec::new(),
        };
        let written = run(split(len, "22021", &mut store, data));
        assert_eq!(written.split_statements, store.statements);
        (written, store.written)
    }

    #[test]
    fn one_poisoned_record_fails_alone_and_the_others_go_in_in_order() {
        let (written, went_in) = split_with(8, &BTreeSet::from([5]), None);
        assert_eq!(went_in, vec![0, 1, 2, 3, 4, 6, 7]);
        assert_eq!(written.rows[5], Written::Unstorable("22021".into()));
        assert!(written.error.is_none());
        // Halves down to the record: 2 per level below the whole batch, log2(8) levels.
        assert_eq!(written.split_statements, 6);
        // A lone record refused whole needs no statement more.
        let (written, went_in) = split_with(1, &BTreeSet::from([0]), None);
        assert!(went_in.is_empty());
        assert_eq!(written.rows, vec![Written::Unstorable("22021".into())]);
        assert_eq!(written.split_statements, 0);
    }

    #[test]
    fn a_failure_of_the_database_fails_the_rest_without_trying_it() {
        // Statement 0 (the first half) goes in; statement 1 (the second half) meets
        // the database down: nothing more is tried.
        let (written, went_in) = split_with(4, &BTreeSet::from([3]), Some(1));
        assert_eq!(went_in, vec![0, 1]);
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
        assert_eq!(written.split_statements, 2);
    }

    proptest! {
        /// Whatever records are poisoned (at least one, since the batch was refused),
        /// each clean one goes in exactly once and in order, each poisoned one is
        /// unstorable, and the statements stay within 2 log2(len) per poisoned record.
        #[test]
        fn only_the_poisoned_records_fail(
            len in 1usize..300,
            first in any::<prop::sample::Index>(),
            more in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let poisoned: BTreeSet<usize> =
                std::iter::once(&first).chain(&more).map(|p| p.index(len)).collect();
            let (written, went_in) = split_with(len, &poisoned, None);
            let clean: Vec<usize> = (0..len).filter(|i| !poisoned.contains(i)).collect();
            prop_assert_eq!(went_in, clean);
            prop_assert!(written.error.is_none());
            for (i, row) in written.rows.iter().enumerate() {
                if poisoned.contains(&i) {
                    prop_assert_eq!(row, &Written::Unstorable("22021".into()));
                } else {
                    prop_assert_eq!(row, &Written::Committed(i));
                }
            }
            let depth = (usize::BITS - len.leading_zeros()) as usize;
            prop_assert!(written.split_statements <= 2 * depth * poisoned.len());
        }
    }
}
