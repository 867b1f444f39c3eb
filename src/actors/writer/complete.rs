//! What the writer does once a batch finished: answer its submissions, add its
//! committed transfers to their windows' sums and tell each bank involved what
//! changed in its books (or, after a failure of unknown outcome, to re-read them).

use std::collections::{BTreeMap, HashMap};

use super::isolate::{BatchWritten, Written};
use super::{Pending, PersistOutcome, StoreWriter};
use crate::actors::bank::{BookDelta, BookUpdate, Resync};
use crate::domain::{BankCode, Currency, Outcome, Transfer};
use crate::store::{InsertOutcome, StoreError};
use crate::telemetry::error_chain;

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
        } = written;
        if self.feed.transactions_wanted() {
            let stored: Vec<Transfer> = batch
                .iter()
                .zip(&rows)
                .filter(|(_, w)| matches!(w, Written::Committed(InsertOutcome::Inserted)))
                .map(|(p, _)| p.transfer.clone())
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
        let mut deltas: Deltas = HashMap::new();
        let mut involved: Vec<BankCode> = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        for (pending, row) in batch.into_iter().zip(rows) {
            let t = &pending.transfer;
            if let Outcome::Accepted(window) = t.outcome {
                // Whatever became of it, its reservation is released.
                let sender = delta(&mut deltas, &t.sender, t.amount.currency());
                sender.reserved_released += t.amount.value();
                match &row {
                    Written::Committed(InsertOutcome::Inserted) => {
                        sender.debits_added += t.amount.value();
                        let converted = t.converted.expect("accepted transfers have a quote");
                        delta(&mut deltas, &t.receiver, converted.currency()).credits_added +=
                            converted.value();
                        self.sums.entry(window).or_default().add_transfer(
                            &t.sender,
                            &t.receiver,
                            t.amount.value(),
                            t.amount.currency(),
                            converted.value(),
                            converted.currency(),
                        );
                    }
                    // A failure can hide a commit whose answer was lost.
                    Written::Failed => {
                        self.untrusted.insert(window);
                    }
                    Written::Committed(InsertOutcome::Existing(_)) | Written::Unstorable(_) => {}
                }
            }
            let answer = match row {
                Written::Committed(InsertOutcome::Inserted) => {
                    PersistOutcome::Stored(Box::new(pending.transfer))
                }
                Written::Committed(InsertOutcome::Existing(stored)) => {
                    PersistOutcome::Existing(stored)
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
            answers.push((pending.reply, answer));
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
        for (bank, currencies) in deltas {
            if let Some(handle) = self.directory.bank(&bank) {
                handle.addr.do_send(BookUpdate {
                    batch_seq,
                    deltas: currencies.into_iter().collect(),
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

type Deltas = HashMap<BankCode, BTreeMap<Currency, BookDelta>>;

fn delta<'a>(deltas: &'a mut Deltas, bank: &BankCode, currency: Currency) -> &'a mut BookDelta {
    deltas
        .entry(bank.clone())
        .or_default()
        .entry(currency)
        .or_default()
}
