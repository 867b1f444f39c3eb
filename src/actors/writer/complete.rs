//! What the writer does once a batch finished: answer its submissions, add its
//! committed transfers to their windows' sums and tell each bank involved what
//! changed in its books (or, after a failure of unknown outcome, to re-read them).

use std::collections::{BTreeMap, HashMap};

use super::isolate::{BatchWritten, Written};
use super::{Pending, PersistOutcome, StoreWriter};
use crate::actors::bank::{BookDelta, BookUpdate, Resync};
use crate::domain::{BankCode, Currency, Outcome, Transfer, TransferId};
use crate::store::{InsertOutcome, StoreError};
use crate::telemetry::error_chain;
use rust_decimal::Decimal;

impl StoreWriter {
    /// Answers the batch's submissions and sends each bank involved one `BookUpdate`.
    ///
    /// Each transfer's fate is its own (see `isolate`): committed ones are answered
    /// and counted in their window's sums and the banks' books; one refused for its
    /// data is answered `Unstorable` and only its sender's reservation is released;
    /// ones whose fate is unknown (the database failed) are answered `Failed`, their
    /// windows are no longer vouched for and their banks re-read their books.
    pub(super) fn complete(
        &mut self,
        batch_seq: u64,
        batch: Vec<Pending>,
        written: BatchWritten<InsertOutcome, StoreError>,
    ) {
        let BatchWritten {
            rows,
            error,
            split_statements,
            path,
        } = written;
        if let Some(path) = path {
            self.metrics
                .store_group_commits
                .with_label_values(&[path.as_str()])
                .inc();
        }
        if self.feed.transactions_wanted() {
            // New transfers stored and status changes made: each is a `transaction`
            // event with the transfer as it now stands.
            let stored: Vec<Transfer> = batch
                .iter()
                .zip(&rows)
                .filter(|(_, w)| {
                    matches!(
                        w,
                        Written::Committed(InsertOutcome::Inserted | InsertOutcome::Changed)
                    )
                })
                .map(|(p, _)| (*p.transfer).clone())
                .collect();
            if !stored.is_empty() {
                self.feed.transfers_stored(stored);
            }
        }
        let failure = error.map(|error| {
            self.metrics.store_flush_failures.inc();
            tracing::warn!(batch_seq, error = %error_chain(&error), "batch failed");
            error.to_string()
        });
        if split_statements > 0 {
            self.metrics
                .store_isolating_statements
                .inc_by(split_statements as u64);
            tracing::debug!(
                batch_seq,
                split_statements,
                "batch split to isolate refused transfers"
            );
        }
        let mut books = Books::default();
        let mut involved: Vec<BankCode> = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        for (pending, row) in batch.into_iter().zip(rows) {
            let t = &pending.transfer;
            let committed = match &row {
                Written::Committed(InsertOutcome::Inserted | InsertOutcome::Changed) => true,
                Written::Failed => {
                    // A failure can hide a commit whose answer was lost.
                    for window in [t.window_id(), pending.was.and_then(Outcome::window)]
                        .into_iter()
                        .flatten()
                    {
                        self.untrusted.insert(window);
                    }
                    false
                }
                _ => false,
            };
            // The bank reserved the amount of a new accepted or held transfer, and of a
            // queued one it released: whatever became of it, the reservation is released.
            // (A held one released by the operator was never reserved: its exposure
            // was held all along.)
            let reserved = match pending.was {
                None => matches!(t.outcome, Outcome::Accepted(_) | Outcome::Held),
                Some(was) => was == Outcome::Queued && matches!(t.outcome, Outcome::Accepted(_)),
            };
            if reserved {
                let sender = books.delta(&t.sender, t.amount.currency());
                sender.reserved_released += t.amount.value();
            }
            // Held exposure: a held transfer stored adds it, one released or rejected
            // by the operator takes it off.
            let held = match (pending.was, t.outcome) {
                (None, Outcome::Held) => Decimal::ONE,
                (Some(Outcome::Held), _) => Decimal::NEGATIVE_ONE,
                _ => Decimal::ZERO,
            };
            if committed && !held.is_zero() {
                books.delta(&t.sender, t.amount.currency()).held_added += held * t.amount.value();
            }
            if let Outcome::Accepted(window) = t.outcome {
                if committed {
                    books.add_legs(t, Decimal::ONE);
                    let converted = t.converted.expect("accepted transfers have a quote");
                    self.sums.entry(window).or_default().add_transfer(
                        &t.sender,
                        &t.receiver,
                        t.amount.value(),
                        t.amount.currency(),
                        converted.value(),
                        converted.currency(),
                    );
                }
            }
            if let (Some(window), true) = (pending.was.and_then(Outcome::window), committed) {
                // An accepted transfer cancelled: its legs leave the books. The
                // writer's sums of the window are not adjusted but no longer vouched
                // for, so the window is netted from the store's running sums, which
                // the same statement took the legs off (cancellations are rare).
                books.add_legs(t, Decimal::NEGATIVE_ONE);
                self.untrusted.insert(window);
            }
            if pending.was.is_none() && t.outcome == Outcome::Queued {
                // The sender's queue holds it from its decision on: releasable once
                // stored, gone if it was not (a replay, or refused). A failure of
                // unknown fate re-reads the queue with the books.
                match &row {
                    Written::Committed(InsertOutcome::Inserted) => {
                        books.queue(&t.sender, t.id, true)
                    }
                    Written::Failed => {}
                    _ => books.queue(&t.sender, t.id, false),
                }
            }
            if pending.was.is_none()
                && t.return_of.is_some()
                && matches!(t.outcome, Outcome::Accepted(_) | Outcome::Queued)
                && matches!(
                    row,
                    Written::Committed(InsertOutcome::Existing(_)) | Written::Unstorable(_)
                )
            {
                // A return its bank counted against its original was not stored (a
                // replay, or refused): the bank re-reads what its returns took.
                // Returns are rare, replayed returns rarer.
                involved.push(t.sender.clone());
            }
            let answer = match row {
                Written::Committed(InsertOutcome::Inserted | InsertOutcome::Changed) => {
                    PersistOutcome::Stored(pending.transfer)
                }
                Written::Committed(InsertOutcome::Existing(stored)) => {
                    let same_request = stored.asks_the_same_as(&pending.transfer);
                    PersistOutcome::Existing {
                        stored,
                        same_request,
                    }
                }
                Written::Committed(InsertOutcome::Unchanged) => {
                    // The row moved on behind the bank's back (its queue or books are
                    // stale): it re-reads them.
                    involved.push(t.sender.clone());
                    PersistOutcome::Unchanged
                }
                Written::Unstorable(sqlstate) => {
                    self.metrics.store_unstorable_transfers.inc();
                    tracing::warn!(
                        batch_seq,
                        transaction_id = %t.id,
                        sender = %t.sender,
                        sqlstate = %sqlstate,
                        "the database refused this transfer's data; it alone failed"
                    );
                    if pending.was.is_some() {
                        involved.push(t.sender.clone());
                    }
                    PersistOutcome::Unstorable {
                        transaction_id: t.id,
                        sqlstate,
                    }
                }
                Written::Failed => {
                    involved.push(t.sender.clone());
                    involved.push(t.receiver.clone());
                    PersistOutcome::Failed(failure.clone().unwrap_or_default())
                }
            };
            if let Some(reply) = pending.reply {
                answers.push((reply, answer));
            }
        }
        // The banks involved in a transfer of unknown fate re-read their books from
        // the store once it answers again.
        involved.sort();
        involved.dedup();
        for bank in involved {
            if let Some(handle) = self.directory.bank(&bank) {
                handle.addr.do_send(Resync);
            }
        }
        for (bank, update) in books.by_bank {
            if let Some(handle) = self.directory.bank(&bank) {
                handle.addr.do_send(BookUpdate {
                    batch_seq,
                    deltas: update.deltas.into_iter().collect(),
                    queue: update.queue,
                });
            }
        }
        // Answered only now: the books' updates are already in the banks' mailboxes,
        // so whatever a client asks a bank after its answer sees its transfer.
        for (reply, answer) in answers {
            // The client may have gone away; its transfer is stored regardless.
            let _ = reply.send(answer);
        }
    }
}

/// What one batch changed for each bank: its books per currency, and which of its
/// queued transfers were stored (`true`) or dropped (`false`).
#[derive(Default)]
struct Books {
    by_bank: HashMap<BankCode, BankChanges>,
}

#[derive(Default)]
struct BankChanges {
    deltas: BTreeMap<Currency, BookDelta>,
    queue: Vec<(TransferId, bool)>,
}

impl Books {
    fn delta(&mut self, bank: &BankCode, currency: Currency) -> &mut BookDelta {
        self.by_bank
            .entry(bank.clone())
            .or_default()
            .deltas
            .entry(currency)
            .or_default()
    }

    /// Adds an accepted transfer's debit to its sender and credit to its receiver
    /// (`sign` 1), or takes them off (`sign` −1, a cancellation).
    fn add_legs(&mut self, t: &Transfer, sign: Decimal) {
        self.delta(&t.sender, t.amount.currency()).debits_added += sign * t.amount.value();
        let converted = t.converted.expect("accepted transfers have a quote");
        self.delta(&t.receiver, converted.currency()).credits_added += sign * converted.value();
    }

    fn queue(&mut self, bank: &BankCode, id: TransferId, stored: bool) {
        self.by_bank
            .entry(bank.clone())
            .or_default()
            .queue
            .push((id, stored));
    }
}
