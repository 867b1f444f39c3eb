//! What the writer does once a batch finished: answer its submissions, add its
//! transfers to their windows' sums and tell each bank involved what changed in its
//! books (or, after a failure, to re-read them).

use std::collections::{BTreeMap, HashMap};

use super::{Pending, PersistOutcome, StoreWriter};
use crate::actors::bank::{BookDelta, BookUpdate, Resync};
use crate::domain::{BankCode, Currency, Outcome, Transfer};
use crate::store::{InsertOutcome, StoreError};
use crate::telemetry::error_chain;

impl StoreWriter {
    /// Answers the batch's submissions and sends each bank involved one `BookUpdate`.
    pub(super) fn complete(
        &mut self,
        batch_seq: u64,
        batch: Vec<Pending>,
        result: Result<Vec<InsertOutcome>, StoreError>,
    ) {
        let mut deltas: Deltas = HashMap::new();
        match result {
            Ok(outcomes) => {
                if self.feed.transactions_wanted() {
                    let stored: Vec<Transfer> = batch
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, o)| matches!(o, InsertOutcome::Inserted))
                        .map(|(p, _)| p.transfer.clone())
                        .collect();
                    self.feed.transfers_stored(stored);
                }
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let t = &pending.transfer;
                    if let Outcome::Accepted(window) = t.outcome {
                        let sender = delta(&mut deltas, &t.sender, t.amount.currency());
                        sender.reserved_released += t.amount.value();
                        if let InsertOutcome::Inserted = outcome {
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
                    }
                    let answer = match outcome {
                        InsertOutcome::Inserted => {
                            PersistOutcome::Stored(Box::new(pending.transfer))
                        }
                        InsertOutcome::Existing(stored) => PersistOutcome::Existing(stored),
                    };
                    // The client may have gone away; its transfer is stored regardless.
                    let _ = pending.reply.send(answer);
                }
            }
            Err(error) => {
                self.metrics.store_flush_failures.inc();
                tracing::warn!(batch_seq, error = %error_chain(&error), "batch failed");
                let mut involved: Vec<BankCode> = Vec::new();
                for pending in batch {
                    let t = &pending.transfer;
                    if let Outcome::Accepted(window) = t.outcome {
                        delta(&mut deltas, &t.sender, t.amount.currency()).reserved_released +=
                            t.amount.value();
                        self.untrusted.insert(window);
                    }
                    involved.push(t.sender.clone());
                    involved.push(t.receiver.clone());
                    let _ = pending
                        .reply
                        .send(PersistOutcome::Failed(error.to_string()));
                }
                // A failure can hide a commit whose answer was lost: the banks involved
                // re-read their books from the store once it answers again.
                involved.sort();
                involved.dedup();
                for bank in involved {
                    if let Some(handle) = self.directory.bank(&bank) {
                        handle.addr.do_send(Resync);
                    }
                }
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
