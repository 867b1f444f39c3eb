//! The commands that change the engine's state, one function each and all of one
//! shape: `Engine::command(&self, input) -> Result<output, CommandError>`, taking
//! domain types the edge has already parsed. A command stores the change, then tells
//! the actors that cache the state, then publishes what happened on the feed — in
//! that order, so nothing is announced or acted on that is not stored.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::bank::{
    BankActor, CancelTransfer, DecideHeld, FundsMoved, FundsOutCheck, ProfileChanged,
    ReserveFundsOut, SubmitTransfer, SubmitTransfers,
};
use super::clock::CloseCurrent;
use super::corridor::{CorridorTerms, Quote, TermsChanged};
use super::feed::{Channel, Event};
use super::keys;
use super::settlement;
use super::writer::PersistOutcome;
use super::{now_micros, BankHandle, Engine};
use crate::domain::auth::KeyRecord;
use crate::domain::returns::ReturnTerms;
use crate::domain::rules::TransferDraft;
use crate::domain::screening::{PartyName, PartyRole, Verdict};
use crate::domain::{
    Amount, BankCode, BankPatch, BankRecord, BankStatus, CorridorId, CorridorPatch, CorridorRecord,
    CorridorStatus, Currency, FundsDirection, FundsMovement, InstructionChange, InstructionState,
    KeyId, NewBank, NewCorridor, Origin, Outcome, Role, StoredBalance, Transfer, TransferId,
    TransferStatus, WindowId, WindowState,
};
use crate::store::StoreError;
use crate::views;
use actix::Addr;
use rust_decimal::Decimal;

/// Why a command did not happen. Each variant maps to one stable API code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the {field} {code} is not registered")]
    BankUnknown { field: &'static str, code: BankCode },
    #[error("no corridor is registered for {0}")]
    CorridorUnknown(CorridorId),
    #[error(
        "idempotency key {key} was already used by transfer {transaction_id} with a different body"
    )]
    IdempotencyKeyReused { key: String, transaction_id: String },
    #[error("settlement instruction {id} is {state}, not pending")]
    InstructionNotPending { id: Uuid, state: InstructionState },
    /// The database refused the transfer's own data: it was not stored, and the rest
    /// of its batch was. Sending the same transfer again would be refused again.
    #[error("transfer {transaction_id} cannot be stored as submitted; it was not accepted")]
    TransferUnstorable { transaction_id: TransferId },
    /// The transfer is past the point where it may be cancelled: netted, settled,
    /// rejected, expired or cancelled already, or accepted into a window that closed.
    #[error("transfer {transaction_id} is {status} and can no longer be cancelled{why}")]
    TransferNotCancellable {
        transaction_id: TransferId,
        status: TransferStatus,
        why: &'static str,
    },
    /// Only a transfer's sender (or the operator) may cancel it.
    #[error("only the sender of transfer {0} may cancel it")]
    CancelNotSender(TransferId),
    /// The transfer is not held (any more): only a held transfer is released or
    /// rejected by the operator.
    #[error("transfer {transaction_id} is {status}, not held")]
    TransferNotHeld {
        transaction_id: TransferId,
        status: TransferStatus,
    },
    /// Only a transfer's receiver (or the operator) may return it.
    #[error("only the receiver of transfer {0} may return it")]
    ReturnNotReceiver(TransferId),
    /// The transfer may not be returned: not netted or settled yet (or never), or
    /// itself a return.
    #[error("transfer {transaction_id} is {status} and cannot be returned{why}")]
    TransferNotReturnable {
        transaction_id: TransferId,
        status: TransferStatus,
        why: &'static str,
    },
    /// The engine cannot do it right now (an actor restarting, the database down, a
    /// commit not confirmed in time); the text is safe to show a client.
    #[error("{0}")]
    Unavailable(String),
    /// Cluster mode: the bank's transfers are decided by another partition's node,
    /// the single writer of its exposure, and this path does not forward there.
    #[error("bank {bank} is served by partition {partition} of the cluster; send this to that partition's node")]
    BankOnAnotherPartition { bank: BankCode, partition: u32 },
    /// Cluster mode: the credit legs this partition owes others are not reaching the
    /// cluster's log, and its outbox is full; transfers to their banks wait.
    #[error("this partition's credit legs to other partitions are not reaching the cluster's log; transfers to their banks wait until they do")]
    CreditsBacklogged,
    /// A funds-out larger than what the bank's balance has free of its exposure.
    #[error(
        "bank {bank} has {free} {currency} free of its exposure; a funds-out may take no more"
    )]
    FundsOutExceedsFree {
        bank: BankCode,
        currency: Currency,
        free: String,
    },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InstructionNotPending { id, state } => {
                CommandError::InstructionNotPending { id, state }
            }
            other => CommandError::Store(other),
        }
    }
}

/// Maps "not found" and "duplicate" from the store to errors naming `what`.
pub(super) fn naming(what: String) -> impl Fn(StoreError) -> CommandError {
    move |e| match e {
        StoreError::NotFound => CommandError::NotFound(what.clone()),
        StoreError::Duplicate(_) => CommandError::AlreadyExists(what.clone()),
        other => other.into(),
    }
}

/// A transfer as the engine decided it: accepted or rejected (both stored), or the
/// stored answer to an earlier submission with the same idempotency key.
#[derive(Debug)]
pub struct Submitted {
    /// Boxed: a batch's answers are moved through several lists on their way out.
    pub transfer: Box<Transfer>,
    pub replayed: bool,
}

/// The bank actor's answer to a status change it was asked for (`what`: a
/// cancellation, a decision), or `Failed` when it restarted or did not answer within
/// `wait_max`.
async fn status_change(
    answer: oneshot::Receiver<PersistOutcome>,
    wait_max: Duration,
    what: &str,
) -> PersistOutcome {
    match tokio::time::timeout(wait_max, answer).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => PersistOutcome::Failed("the bank actor restarted; retry".into()),
        Err(_) => PersistOutcome::Failed(format!("the {what} was not confirmed in time")),
    }
}

/// A transfer for its sender's bank actor to decide: the draft, the rate it goes at,
/// a return's original, what screening said and the receiver's status.
struct ToDecide {
    draft: TransferDraft,
    quote: Quote,
    return_terms: Option<ReturnTerms>,
    screening: Verdict,
    receiver_status: BankStatus,
}

/// Where a new transfer goes (`Engine::route`).
struct Route {
    sender: BankHandle,
    corridor: CorridorTerms,
    receiver_status: BankStatus,
}

/// A transfer handed to its sender's bank actor, its answer to come, and its
/// corridor, for the counts.
struct Pending {
    answer: oneshot::Receiver<PersistOutcome>,
    corridor: CorridorId,
}

/// The message that hands a transfer to its sender's bank actor, and where its
/// answer will come.
fn submission(to_decide: ToDecide) -> (SubmitTransfer, Pending) {
    let ToDecide {
        draft,
        quote,
        return_terms,
        screening,
        receiver_status,
    } = to_decide;
    let corridor = CorridorId::new(draft.amount.currency(), draft.to_currency);
    let (reply, answer) = oneshot::channel();
    let message = SubmitTransfer {
        draft,
        quote,
        return_terms,
        screening,
        receiver_status,
        created_at: now_micros(),
        reply,
    };
    let pending = Pending { answer, corridor };
    (message, pending)
}

/// The window cut off by `close_window`, and the one that opened.
#[derive(Clone, Copy, Debug)]
pub struct ClosedWindow {
    pub closed: WindowId,
    pub next: WindowId,
}

impl Engine {
    /// Submits a parsed transfer: the corridor quotes it, the sender's bank actor
    /// decides it and the writer commits it. Answers once it is durably stored (or
    /// with the stored original on a replay), or `Unavailable` after `wait_max`.
    pub async fn submit_transfer(
        &self,
        draft: TransferDraft,
        wait_max: Duration,
    ) -> Result<Submitted, CommandError> {
        let route = self.route(&draft)?;
        let quote = route.corridor.quote(draft.amount);
        let to_decide = self.screened(draft, quote, route.receiver_status);
        self.decide(&route.sender, to_decide, wait_max).await
    }

    /// Submits many parsed transfers at once (a batch, the transactions of an ISO
    /// 20022 message), each decided exactly as `submit_transfer` would decide it
    /// alone, and answers each one's fate in the order given. What a batch saves is
    /// the round trips: every transfer handed to its sender's bank actor, one message
    /// per sender, before the first answer is awaited, so the writer's group commits
    /// take them together.
    ///
    /// The transfers of one sender are handed to its bank actor in the order given,
    /// and an actor's mailbox keeps the order of its sender: so they meet the
    /// sender's limits in that order, as they would one after the other. One that
    /// is refused (an unknown bank, a restarting corridor) never stops the others.
    /// Every answer is awaited within one `wait_max` from the start.
    pub async fn submit_transfers(
        &self,
        drafts: Vec<TransferDraft>,
        wait_max: Duration,
    ) -> Vec<Result<Submitted, CommandError>> {
        let deadline = tokio::time::Instant::now() + wait_max;
        // Routed once per sender, receiver and corridor (a batch has few): a route
        // looks up and copies actor addresses, and each copy allocates.
        let mut table: Vec<Route> = Vec::new();
        let mut known: HashMap<(&BankCode, &BankCode, CorridorId), usize> = HashMap::new();
        let routes: Vec<Result<usize, CommandError>> = drafts
            .iter()
            .map(|d| {
                let key = (
                    &d.sender,
                    &d.receiver,
                    CorridorId::new(d.amount.currency(), d.to_currency),
                );
                if let Some(&known) = known.get(&key) {
                    return Ok(known);
                }
                table.push(self.route(d)?);
                known.insert(key, table.len() - 1);
                Ok(table.len() - 1)
            })
            .collect();
        // Handed over before any answer is awaited: each sender's in the order given,
        // in one message to its bank actor, its list sized at once (a message is some
        // hundreds of bytes; a growing list would copy them as it grows).
        let mut by_sender: Vec<(BankHandle, Vec<SubmitTransfer>)> = Vec::new();
        let sender_of: Vec<usize> = table
            .iter()
            .map(|route| {
                let known = by_sender
                    .iter()
                    .position(|(sender, _)| sender.addr == route.sender.addr);
                known.unwrap_or_else(|| {
                    by_sender.push((route.sender.clone(), Vec::new()));
                    by_sender.len() - 1
                })
            })
            .collect();
        let mut counts = vec![0; by_sender.len()];
        for &route in routes.iter().flatten() {
            counts[sender_of[route]] += 1;
        }
        for ((_, messages), count) in by_sender.iter_mut().zip(counts) {
            messages.reserve_exact(count);
        }
        let handed: Vec<Result<Pending, CommandError>> = drafts
            .into_iter()
            .zip(routes)
            .map(|(draft, route)| {
                let route = route?;
                let quote = table[route].corridor.quote(draft.amount);
                let to_decide = self.screened(draft, quote, table[route].receiver_status);
                let (message, pending) = submission(to_decide);
                by_sender[sender_of[route]].1.push(message);
                Ok(pending)
            })
            .collect();
        for (sender, messages) in by_sender {
            sender.addr.do_send(SubmitTransfers(messages));
        }
        let mut fates = Vec::with_capacity(handed.len());
        for pending in handed {
            fates.push(match pending {
                Ok(pending) => self.fate(pending, deadline).await,
                Err(refused) => Err(refused),
            });
        }
        fates
    }

    /// Where a transfer goes: its sender's bank actor and its corridor, with the
    /// receiver's status. Refused when either bank or the corridor is unknown, or (in
    /// cluster mode) when its sender is another partition's.
    fn route(&self, draft: &TransferDraft) -> Result<Route, CommandError> {
        if let Some(owned) = &self.owned {
            if let Some(partition) = owned.assignment.elsewhere(&draft.sender, owned.partition) {
                return Err(CommandError::BankOnAnotherPartition {
                    bank: draft.sender.clone(),
                    partition: partition.0,
                });
            }
            let remote_receiver = owned
                .assignment
                .elsewhere(&draft.receiver, owned.partition)
                .is_some();
            if remote_receiver
                && owned
                    .credits_backlogged
                    .load(std::sync::atomic::Ordering::Acquire)
            {
                return Err(CommandError::CreditsBacklogged);
            }
        }
        let sender =
            self.directory
                .bank(&draft.sender)
                .ok_or_else(|| CommandError::BankUnknown {
                    field: "sender_bank",
                    code: draft.sender.clone(),
                })?;
        let receiver_status = self.directory.bank_status(&draft.receiver).ok_or_else(|| {
            CommandError::BankUnknown {
                field: "receiver_bank",
                code: draft.receiver.clone(),
            }
        })?;
        let corridor_id = CorridorId::new(draft.amount.currency(), draft.to_currency);
        let corridor = self
            .directory
            .corridor_terms(&corridor_id)
            .ok_or(CommandError::CorridorUnknown(corridor_id))?;
        Ok(Route {
            sender,
            corridor,
            receiver_status,
        })
    }

    /// A quoted transfer with what screening says of its parties. Screened here, on
    /// the caller's thread: the bank actor only applies the verdict.
    fn screened(
        &self,
        draft: TransferDraft,
        quote: Quote,
        receiver_status: BankStatus,
    ) -> ToDecide {
        let parties: Vec<(PartyRole, &PartyName)> = [
            (PartyRole::Debtor, draft.debtor.as_ref()),
            (PartyRole::Creditor, draft.creditor.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, party)| Some((role, party?)))
        .collect();
        let screening = self
            .screening
            .screen(&parties, &self.metrics.screening_duration);
        ToDecide {
            draft,
            quote,
            return_terms: None,
            screening,
            receiver_status,
        }
    }

    /// Hands a transfer to its sender's bank actor and waits for its fate: stored as
    /// decided, or the stored original of a replay.
    async fn decide(
        &self,
        sender: &BankHandle,
        to_decide: ToDecide,
        wait_max: Duration,
    ) -> Result<Submitted, CommandError> {
        let (message, pending) = submission(to_decide);
        sender.addr.do_send(message);
        self.fate(pending, tokio::time::Instant::now() + wait_max)
            .await
    }

    /// The fate of a transfer handed over, once stored (or by `deadline`).
    async fn fate(
        &self,
        pending: Pending,
        deadline: tokio::time::Instant,
    ) -> Result<Submitted, CommandError> {
        let Pending { answer, corridor } = pending;
        let outcome = match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => PersistOutcome::Failed("the bank actor restarted".into()),
            Err(_) => {
                self.count_refused("timeout");
                return Err(CommandError::Unavailable(
                    "the transfer was not confirmed in time; retry with the same idempotency key"
                        .into(),
                ));
            }
        };
        let corridor_label = corridor.to_string();
        match outcome {
            PersistOutcome::Stored(transfer) => {
                self.count_transfer(&transfer, &corridor_label, false);
                Ok(Submitted {
                    transfer,
                    replayed: false,
                })
            }
            PersistOutcome::Existing {
                stored,
                same_request,
            } => {
                if !same_request {
                    return Err(CommandError::IdempotencyKeyReused {
                        key: stored.idempotency_key.clone().unwrap_or_default(),
                        transaction_id: stored.id.to_string(),
                    });
                }
                self.count_transfer(&stored, &corridor_label, true);
                Ok(Submitted {
                    transfer: stored,
                    replayed: true,
                })
            }
            PersistOutcome::Failed(detail) => {
                self.count_refused("unavailable");
                Err(CommandError::Unavailable(detail))
            }
            PersistOutcome::Unstorable { transaction_id, .. } => {
                Err(CommandError::TransferUnstorable { transaction_id })
            }
            PersistOutcome::Unchanged => Err(CommandError::Unavailable(
                "the transfer was not stored; retry with the same idempotency key".into(),
            )),
        }
    }

    /// The transfer `id` for a bank (`as_bank`; the operator acts for any) that must be
    /// its `side` (its sender, or its receiver): the other party is answered
    /// `other_party`, and to any other bank the transfer does not exist.
    async fn transfer_for(
        &self,
        id: TransferId,
        as_bank: Option<&BankCode>,
        side: fn(&Transfer) -> &BankCode,
        other_party: CommandError,
    ) -> Result<Transfer, CommandError> {
        let what = format!("transfer {id}");
        let transfer = self
            .store
            .transfer(id)
            .await
            .map_err(naming(what.clone()))?;
        if let Some(bank) = as_bank {
            if side(&transfer) != bank {
                let party = &transfer.sender == bank || &transfer.receiver == bank;
                return Err(if party {
                    other_party
                } else {
                    CommandError::NotFound(what)
                });
            }
        }
        Ok(transfer)
    }

    /// The transfer `id`, if it may be returned by the caller: by its receiver (`as_bank`
    /// when a bank asks; the operator acts for any), once netted or settled, and not
    /// itself a return. Another bank's transfer is not found.
    pub async fn returnable(
        &self,
        id: TransferId,
        as_bank: Option<&BankCode>,
    ) -> Result<Transfer, CommandError> {
        let original = self
            .transfer_for(
                id,
                as_bank,
                |t| &t.receiver,
                CommandError::ReturnNotReceiver(id),
            )
            .await?;
        // Cluster mode: the return is the receiver's transfer, decided by its
        // partition, while the original and the record of its returns are here.
        let receiver_elsewhere = self.owned.as_ref().is_some_and(|o| {
            o.assignment
                .elsewhere(&original.receiver, o.partition)
                .is_some()
        });
        let why = match original.status() {
            _ if original.return_of.is_some() => ": a return cannot itself be returned",
            _ if receiver_elsewhere => {
                ": its sender and receiver are on different partitions of the cluster, and \
                 such a transfer cannot be returned yet: send a new transfer to its sender"
            }
            TransferStatus::Netted | TransferStatus::Settled => return Ok(original),
            TransferStatus::Accepted => ": its window is still open (its sender may cancel it)",
            _ => "",
        };
        Err(CommandError::TransferNotReturnable {
            transaction_id: id,
            status: original.status(),
            why,
        })
    }

    /// Returns all or part of `original` (as `returnable` gave it): `draft` is the
    /// return as `TransferDraft::parse_return` made it, from the original's receiver
    /// to its sender in the reversed currencies, `return_of` naming it. The receiver's bank prices it at the original's rate
    /// against what earlier returns took (`domain::returns`) and checks it like any
    /// transfer of its own (status, limit); the corridor is not asked for a quote.
    pub async fn return_transfer(
        &self,
        original: &Transfer,
        draft: TransferDraft,
        wait_max: Duration,
    ) -> Result<Submitted, CommandError> {
        let (Some(rate), Some(received)) = (original.fx_rate, original.converted) else {
            return Err(CommandError::NotFound(format!("transfer {}", original.id)));
        };
        debug_assert!(
            draft.return_of == Some(original.id)
                && draft.sender == original.receiver
                && draft.receiver == original.sender
                && draft.amount.currency() == received.currency()
                && draft.to_currency == original.amount.currency(),
            "a return's draft reverses its original (TransferDraft::parse_return)"
        );
        let bank = |code: &BankCode| {
            self.directory
                .bank(code)
                .ok_or_else(|| CommandError::NotFound(format!("bank {code}")))
        };
        let sender = bank(&draft.sender)?;
        let receiver_status = bank(&draft.receiver)?.status();
        let terms = ReturnTerms {
            original: original.id,
            paid: original.amount,
            received,
            rate,
        };
        // Not a corridor's quote: the original's rate, open to any amount; the bank
        // works out what the return gives back.
        let quote = Quote {
            status: CorridorStatus::Active,
            amount_max: Decimal::MAX,
            report_threshold: None,
            rate,
            converted: original.amount,
        };
        // A return goes back to whom the original came from: not screened again.
        let to_decide = ToDecide {
            draft,
            quote,
            return_terms: Some(terms),
            screening: Verdict::Clear,
            receiver_status,
        };
        self.decide(&sender, to_decide, wait_max).await
    }

    /// The operator's decision on a transfer compliance screening held: `release`
    /// puts it in the open window (its exposure, kept while held, becomes a debit
    /// there), otherwise it is rejected (`compliance_rejected`). Answers the transfer
    /// as changed, once stored.
    pub async fn decide_held(
        &self,
        id: TransferId,
        release: bool,
        wait_max: Duration,
    ) -> Result<Transfer, CommandError> {
        let what = format!("transfer {id}");
        let transfer = self.store.transfer(id).await.map_err(naming(what))?;
        let not_held = |t: &Transfer| CommandError::TransferNotHeld {
            transaction_id: id,
            status: t.status(),
        };
        if transfer.outcome != Outcome::Held {
            return Err(not_held(&transfer));
        }
        let sender = self
            .directory
            .bank(&transfer.sender)
            .ok_or_else(|| CommandError::NotFound(format!("bank {}", transfer.sender)))?;
        let (reply, answer) = oneshot::channel();
        sender.addr.do_send(DecideHeld {
            transfer,
            release,
            reply,
        });
        match status_change(answer, wait_max, "decision").await {
            PersistOutcome::Stored(changed) => Ok(*changed),
            PersistOutcome::Unchanged => Err(not_held(&self.store.transfer(id).await?)),
            PersistOutcome::Failed(detail) => Err(CommandError::Unavailable(detail)),
            PersistOutcome::Existing { .. } | PersistOutcome::Unstorable { .. } => Err(
                CommandError::Unavailable("the decision could not be stored; retry".into()),
            ),
        }
    }

    /// Cancels a transfer: a queued one at any time, an accepted one while its window
    /// is open (its exposure is released and it is never netted). `as_bank` is the
    /// caller's bank when a bank asks: another bank's transfer is not found, and a
    /// receiver may not cancel. Answers the cancelled transfer once stored.
    pub async fn cancel_transfer(
        &self,
        id: TransferId,
        as_bank: Option<&BankCode>,
        wait_max: Duration,
    ) -> Result<Transfer, CommandError> {
        let transfer = self
            .transfer_for(
                id,
                as_bank,
                |t| &t.sender,
                CommandError::CancelNotSender(id),
            )
            .await?;
        let not_cancellable = |t: &Transfer| {
            let why = match t.status() {
                TransferStatus::Accepted => ": its window closed",
                _ => "",
            };
            CommandError::TransferNotCancellable {
                transaction_id: id,
                status: t.status(),
                why,
            }
        };
        let open = matches!(transfer.window_state, Some(WindowState::Open));
        match transfer.status() {
            TransferStatus::Queued => {}
            TransferStatus::Accepted if open => {}
            _ => return Err(not_cancellable(&transfer)),
        }
        let sender = self
            .directory
            .bank(&transfer.sender)
            .ok_or_else(|| CommandError::NotFound(format!("bank {}", transfer.sender)))?;
        let (reply, answer) = oneshot::channel();
        sender.addr.do_send(CancelTransfer { transfer, reply });
        match status_change(answer, wait_max, "cancellation").await {
            PersistOutcome::Stored(cancelled) => Ok(*cancelled),
            // It moved on meanwhile (released, expired, its window closed): say where
            // it is now. A release still being stored reads as queued: try again.
            PersistOutcome::Unchanged => {
                let now = self.store.transfer(id).await?;
                match now.status() {
                    TransferStatus::Queued => Err(CommandError::Unavailable(
                        "the transfer is being released from its queue; retry".into(),
                    )),
                    TransferStatus::Accepted if now.window_state == Some(WindowState::Open) => {
                        Err(CommandError::Unavailable(
                            "the transfer was just released into the open window; retry".into(),
                        ))
                    }
                    _ => Err(not_cancellable(&now)),
                }
            }
            PersistOutcome::Failed(detail) => Err(CommandError::Unavailable(detail)),
            PersistOutcome::Existing { .. } | PersistOutcome::Unstorable { .. } => Err(
                CommandError::Unavailable("the cancellation could not be stored; retry".into()),
            ),
        }
    }

    /// Registers a bank and starts its actor.
    pub async fn create_bank(
        &self,
        origin: &Origin,
        bank: NewBank,
    ) -> Result<BankRecord, CommandError> {
        let record = self
            .store
            .insert_bank(origin, &bank)
            .await
            .map_err(naming(format!("bank {}", bank.code)))?;
        self.start_bank(record.clone());
        Ok(record)
    }

    /// Changes a bank's name, status or caps; its actor applies them at once.
    pub async fn update_bank(
        &self,
        origin: &Origin,
        code: BankCode,
        patch: BankPatch,
    ) -> Result<BankRecord, CommandError> {
        let what = format!("bank {code}");
        let handle = self
            .directory
            .bank(&code)
            .ok_or_else(|| CommandError::NotFound(what.clone()))?;
        let record = self
            .store
            .update_bank(origin, &code, &patch)
            .await
            .map_err(naming(what))?;
        handle.addr.do_send(ProfileChanged(record.clone()));
        if patch.status.is_some() {
            let kind = match record.status {
                BankStatus::Suspended => "bank_suspended",
                BankStatus::Active => "bank_activated",
            };
            self.feed.publish(Event::new(
                Channel::Notifications,
                kind,
                vec![record.code.clone()],
                views::text(views::bank(&record, true)),
            ));
        }
        Ok(record)
    }

    /// Registers a corridor and starts its actor.
    pub async fn create_corridor(
        &self,
        origin: &Origin,
        corridor: NewCorridor,
    ) -> Result<CorridorRecord, CommandError> {
        let record = self
            .store
            .insert_corridor(origin, &corridor)
            .await
            .map_err(naming(format!("corridor {}", corridor.id)))?;
        self.start_corridor(record);
        Ok(record)
    }

    /// Changes a corridor's rate, status or maximum; quotes use them at once.
    pub async fn update_corridor(
        &self,
        origin: &Origin,
        id: CorridorId,
        patch: CorridorPatch,
    ) -> Result<CorridorRecord, CommandError> {
        let what = format!("corridor {id}");
        let actor = self
            .directory
            .corridor(&id)
            .ok_or_else(|| CommandError::NotFound(what.clone()))?;
        let record = self
            .store
            .update_corridor(origin, id, &patch)
            .await
            .map_err(naming(what))?;
        // Published before the answer, so that the next quote uses them. The actor
        // applies them in its turn; were it stopped, the store already holds them.
        let _ = actor.send(TermsChanged(record)).await;
        if patch.status.is_some() {
            let kind = match record.status {
                CorridorStatus::Suspended => "corridor_suspended",
                CorridorStatus::Active => "corridor_activated",
            };
            self.feed.publish(Event::new(
                Channel::Notifications,
                kind,
                Vec::new(),
                views::text(views::corridor(&record)),
            ));
        }
        Ok(record)
    }

    /// Cuts off the open window now; its netting follows at once.
    pub async fn close_window(&self, origin: &Origin) -> Result<ClosedWindow, CommandError> {
        let (closed, next) = self
            .clock
            .send(CloseCurrent {
                origin: origin.clone(),
            })
            .await
            .map_err(|_| CommandError::Unavailable("the window clock is restarting".into()))?
            .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        Ok(ClosedWindow { closed, next })
    }

    /// Confirms or fails a settlement instruction (the rail's answer); the last
    /// confirmation of a window settles it. Repeating a change is harmless.
    pub async fn change_instruction(
        &self,
        origin: &Origin,
        id: Uuid,
        state: InstructionState,
    ) -> Result<InstructionChange, CommandError> {
        settlement::change(
            &self.store,
            &self.writer,
            &self.clock,
            &self.metrics,
            &self.feed,
            origin,
            id,
            state,
        )
        .await
        .map_err(naming(format!("settlement instruction {id}")))
    }

    /// Makes a key for `role` (and `bank`, for a bank key); the answer carries the
    /// key's text, which is shown this once and stored only as a hash.
    pub async fn create_key(
        &self,
        origin: &Origin,
        role: Role,
        bank: Option<BankCode>,
        label: Option<String>,
    ) -> Result<(KeyRecord, String), CommandError> {
        let (record, text) = keys::create_key(&self.store, origin, role, bank, label).await?;
        self.keys.put(record.clone());
        Ok((record, text))
    }

    /// Revokes a key; it is refused from the next request on. Revoking twice is
    /// harmless.
    pub async fn revoke_key(&self, origin: &Origin, id: KeyId) -> Result<KeyRecord, CommandError> {
        let record = keys::revoke_key(&self.store, origin, id).await?;
        self.keys.put(record.clone());
        Ok(record)
    }

    /// Adds `amount` to the bank's settlement balance in its currency (the first
    /// funds-in of a currency makes the bank prefunded in it): stored as a movement
    /// with its audit entry in one transaction, then told to the bank actor.
    pub async fn funds_in(
        &self,
        origin: &Origin,
        bank: BankCode,
        amount: Amount,
        reference: Option<String>,
    ) -> Result<FundsMovement, CommandError> {
        self.move_funds(origin, bank, FundsDirection::In, amount, reference, None)
            .await
    }

    /// A funds-in booked from a settlement bank's notification entry (camt.054):
    /// `entry_ref` books it once; the same entry again is `AlreadyExists`.
    pub async fn funds_in_entry(
        &self,
        origin: &Origin,
        bank: BankCode,
        amount: Amount,
        reference: Option<String>,
        entry_ref: &str,
    ) -> Result<FundsMovement, CommandError> {
        self.move_funds(
            origin,
            bank,
            FundsDirection::In,
            amount,
            reference,
            Some(entry_ref),
        )
        .await
        .map_err(|e| match e {
            CommandError::Store(StoreError::Duplicate(_)) => {
                CommandError::AlreadyExists(format!("entry {entry_ref}"))
            }
            other => other,
        })
    }

    /// Takes `amount` out of the bank's settlement balance, if what is left still
    /// covers its exposure (and is not below zero).
    ///
    /// Race-free against submissions: the bank actor, the single writer of the
    /// exposure, checks and sets the amount aside first, so every submission it
    /// decides from then on sees the lower balance; only then is the movement stored
    /// (with its audit entry, one transaction), and the set-aside amount is released
    /// when the store has answered, with the stored balance if it committed. Until
    /// then the balance is the lower one for submissions (the safe side), and a
    /// funds-out that fails leaves the balance as it was. The release is sent on
    /// drop, so a request abandoned midway still releases it.
    pub async fn funds_out(
        &self,
        origin: &Origin,
        bank: BankCode,
        amount: Amount,
        reference: Option<String>,
    ) -> Result<FundsMovement, CommandError> {
        self.move_funds(origin, bank, FundsDirection::Out, amount, reference, None)
            .await
    }

    async fn move_funds(
        &self,
        origin: &Origin,
        bank: BankCode,
        direction: FundsDirection,
        amount: Amount,
        reference: Option<String>,
        entry_ref: Option<&str>,
    ) -> Result<FundsMovement, CommandError> {
        let handle = self.bank_handle(&bank)?;
        let currency = amount.currency();
        let set_aside = match direction {
            FundsDirection::In => Decimal::ZERO,
            FundsDirection::Out => {
                self.reserve_funds_out(&handle, &bank, amount).await?;
                amount.value()
            }
        };
        let mut hold = FundsHold {
            bank: handle.addr.clone(),
            currency,
            set_aside,
            stored: None,
        };
        let movement = self
            .store
            .move_funds(
                origin,
                &bank,
                direction,
                amount,
                reference.as_deref(),
                entry_ref,
            )
            .await
            .map_err(|e| match e {
                // The store's own guard: the balance no longer covers the funds-out.
                StoreError::NotFound => CommandError::FundsOutExceedsFree {
                    bank: bank.clone(),
                    currency,
                    free: currency.format(Decimal::ZERO),
                },
                other => other.into(),
            })?;
        hold.stored = Some(movement.balance);
        drop(hold);
        self.publish_balance(&movement);
        Ok(movement)
    }

    /// Asks the bank actor to set a funds-out aside (see `funds_out`).
    async fn reserve_funds_out(
        &self,
        handle: &super::BankHandle,
        bank: &BankCode,
        amount: Amount,
    ) -> Result<(), CommandError> {
        let currency = amount.currency();
        let check = handle
            .addr
            .send(ReserveFundsOut {
                currency,
                amount: amount.value(),
            })
            .await
            .map_err(|_| CommandError::Unavailable(format!("bank {bank} is restarting")))?;
        match check {
            FundsOutCheck::Reserved => Ok(()),
            FundsOutCheck::Refused { free } => Err(CommandError::FundsOutExceedsFree {
                bank: bank.clone(),
                currency,
                free: currency.format(free),
            }),
            FundsOutCheck::Unavailable => Err(CommandError::Unavailable(format!(
                "bank {bank} is re-reading its books"
            ))),
        }
    }

    fn bank_handle(&self, bank: &BankCode) -> Result<super::BankHandle, CommandError> {
        self.directory
            .bank(bank)
            .ok_or_else(|| CommandError::NotFound(format!("bank {bank}")))
    }

    fn publish_balance(&self, m: &FundsMovement) {
        let cause = match m.direction {
            FundsDirection::In => "funds_in",
            FundsDirection::Out => "funds_out",
        };
        self.feed.publish(Event::new(
            Channel::Notifications,
            "balance_changed",
            vec![m.bank.clone()],
            views::balance_changed(&m.bank, m.currency, m.balance.balance, cause, None).to_string(),
        ));
    }

    fn count_transfer(&self, t: &Transfer, corridor: &str, replayed: bool) {
        let (outcome, code) = match (replayed, t.outcome) {
            (true, _) => ("replayed", ""),
            (false, Outcome::Accepted(_)) => ("accepted", ""),
            (false, Outcome::Rejected(code)) => ("rejected", code.code()),
            (false, Outcome::Queued) => ("queued", ""),
            (false, Outcome::Expired) => ("expired", ""),
            (false, Outcome::Cancelled) => ("cancelled", ""),
            (false, Outcome::Held) => ("held", ""),
        };
        self.metrics
            .transfers
            .with_label_values(&[outcome, corridor, code])
            .inc();
    }

    fn count_refused(&self, why: &str) {
        self.metrics
            .submissions_refused
            .with_label_values(&[why])
            .inc();
    }
}

/// A funds movement under way: when dropped it tells the bank actor the stored
/// balance (once the movement committed) and releases the funds-out set aside (none
/// for a funds-in), whether the command finished or was abandoned.
struct FundsHold {
    bank: Addr<BankActor>,
    currency: Currency,
    set_aside: Decimal,
    stored: Option<StoredBalance>,
}

impl Drop for FundsHold {
    fn drop(&mut self) {
        self.bank.do_send(FundsMoved {
            currency: self.currency,
            balance: self.stored,
            funds_out_released: self.set_aside,
        });
    }
}
