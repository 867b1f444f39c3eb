//! The rules a new transfer must pass, as two ladders of one-line checks:
//! `TransferDraft::parse` for input (refused, never stored) and `check_transfer`
//! for business rules (rejected, stored for audit and idempotent replay).

use rust_decimal::Decimal;

use super::errors::{InputError, RejectCode};
use super::ids::{BankCode, BankStatus, CorridorStatus, TransferId};
use super::money::{Amount, Currency};
use super::screening::PartyName;
use super::transfer::{IsoIds, QueuePriority, Transfer};

/// Longest account number or name a transfer may carry.
pub const ACCOUNT_LEN_MAX: usize = 64;
/// Longest free-text reference (the length of a SWIFT remittance field, 140).
pub const REFERENCE_LEN_MAX: usize = 140;
/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;

/// A transfer as a client asked for it, before any actor has looked at it.
#[derive(Clone, Copy, Debug)]
pub struct RawTransfer<'a> {
    pub sender_bank: &'a str,
    pub receiver_bank: &'a str,
    pub amount: &'a str,
    pub from_currency: &'a str,
    pub to_currency: &'a str,
    pub sender_account: Option<&'a str>,
    pub receiver_account: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// `reject` (the default) or `queue`: what to do when the transfer would pass the
    /// sender's limit.
    pub on_limit: Option<&'a str>,
    /// `normal` (the default) or `high`; only with `on_limit` `queue`.
    pub priority: Option<&'a str>,
}

/// A transfer whose every field is valid; routing and business rules come next.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TransferDraft {
    pub sender: BankCode,
    pub receiver: BankCode,
    pub amount: Amount,
    pub to_currency: Currency,
    pub sender_account: Option<String>,
    pub receiver_account: Option<String>,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
    /// Queue (with this priority) rather than be rejected at the sender's limit.
    pub queue: Option<QueuePriority>,
    /// Set on a return: the transfer it returns (see `domain::returns`).
    pub return_of: Option<TransferId>,
    /// Set on a transfer that came in as an ISO 20022 credit transfer.
    pub iso: Option<IsoIds>,
    /// The debtor and creditor, when the sender names them (screened).
    pub debtor: Option<PartyName>,
    pub creditor: Option<PartyName>,
}

impl TransferDraft {
    /// The input ladder, in order of precedence; the first failing check names the
    /// field it refused.
    pub fn parse(raw: RawTransfer<'_>) -> Result<Self, (&'static str, InputError)> {
        let sender = BankCode::parse(raw.sender_bank).map_err(|e| ("sender_bank", e))?;
        let receiver = BankCode::parse(raw.receiver_bank).map_err(|e| ("receiver_bank", e))?;
        if sender == receiver {
            return Err(("receiver_bank", InputError::BanksMustBeDifferent));
        }
        let from = Currency::parse(raw.from_currency).map_err(|e| ("from_currency", e))?;
        let to_currency = Currency::parse(raw.to_currency).map_err(|e| ("to_currency", e))?;
        let amount = Amount::parse(raw.amount, from).map_err(|e| ("amount", e))?;
        let sender_account =
            bounded_text(raw.sender_account, ACCOUNT_LEN_MAX).map_err(|e| ("sender_account", e))?;
        let receiver_account = bounded_text(raw.receiver_account, ACCOUNT_LEN_MAX)
            .map_err(|e| ("receiver_account", e))?;
        let reference =
            bounded_text(raw.reference, REFERENCE_LEN_MAX).map_err(|e| ("reference", e))?;
        let idempotency_key =
            idempotency_key(raw.idempotency_key).map_err(|e| ("idempotency_key", e))?;
        let queue = match raw.on_limit {
            None | Some("reject") => None,
            Some("queue") => Some(QueuePriority::Normal),
            Some(_) => return Err(("on_limit", InputError::OnLimitInvalid)),
        };
        let queue = match (queue, raw.priority) {
            (_, None) => queue,
            (Some(_), Some(p)) => {
                Some(QueuePriority::parse(p).ok_or(("priority", InputError::PriorityInvalid))?)
            }
            (None, Some(_)) => return Err(("priority", InputError::PriorityInvalid)),
        };
        Ok(TransferDraft {
            sender,
            receiver,
            amount,
            to_currency,
            sender_account,
            receiver_account,
            reference,
            idempotency_key,
            queue,
            return_of: None,
            iso: None,
            debtor: None,
            creditor: None,
        })
    }
}

/// The fields a return's sender gives (the rest comes from the original).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawReturn<'a> {
    /// In the original's destination currency.
    pub amount: &'a str,
    pub reference: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub on_limit: Option<&'a str>,
    pub priority: Option<&'a str>,
}

impl TransferDraft {
    /// A return of `original`: from its receiver to its sender, from its destination
    /// currency to its source currency, the accounts swapped, `return_of` naming it;
    /// the amount, reference, key and queueing as the returning bank gives them, on
    /// the same input ladder as a transfer.
    pub fn parse_return(
        original: &Transfer,
        raw: RawReturn<'_>,
    ) -> Result<Self, (&'static str, InputError)> {
        let mut draft = TransferDraft::parse(RawTransfer {
            sender_bank: original.receiver.as_str(),
            receiver_bank: original.sender.as_str(),
            amount: raw.amount,
            from_currency: original.to_currency.as_str(),
            to_currency: original.amount.currency().as_str(),
            sender_account: original.receiver_account.as_deref(),
            receiver_account: original.sender_account.as_deref(),
            reference: raw.reference,
            idempotency_key: raw.idempotency_key,
            on_limit: raw.on_limit,
            priority: raw.priority,
        })?;
        draft.return_of = Some(original.id);
        Ok(draft)
    }
}

/// An optional free-text field (see `text_field`).
fn bounded_text(text: Option<&str>, len_max: usize) -> Result<Option<String>, InputError> {
    text.map(|t| text_field(t, len_max).map(|()| t.to_string()))
        .transpose()
}

/// A free-text field: its length first (at most `len_max` characters), then its
/// characters (see `printable_text`).
pub fn text_field(text: &str, len_max: usize) -> Result<(), InputError> {
    if text.chars().count() > len_max {
        return Err(InputError::TextTooLong);
    }
    printable_text(text)
}

/// Free text the engine stores (account numbers, references, names, labels) holds no
/// control character: none of C0 (U+0000–U+001F: NUL, tab, line breaks…), DEL or C1
/// (U+0080–U+009F). NUL is the one Postgres cannot store at all (a whole batch would
/// fail with it); the others have no place in a one-line field and, like SWIFT
/// remittance text, a reference allows none of them, tab and newline included.
pub fn printable_text(text: &str) -> Result<(), InputError> {
    if text.chars().any(char::is_control) {
        return Err(InputError::TextInvalid);
    }
    Ok(())
}

fn idempotency_key(key: Option<&str>) -> Result<Option<String>, InputError> {
    match key {
        None => Ok(None),
        Some(k)
            if !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_LEN_MAX
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(k.to_string()))
        }
        Some(_) => Err(InputError::IdempotencyKeyInvalid),
    }
}

/// Everything the business ladder needs to know, gathered from the actors that own it.
#[derive(Clone, Copy, Debug)]
pub struct TransferFacts {
    pub sender_status: BankStatus,
    pub receiver_status: BankStatus,
    pub corridor_status: CorridorStatus,
    pub corridor_amount_max: Decimal,
    pub amount: Decimal,
    /// The sender's net debit in the source currency now: debits (committed and
    /// reserved) minus credits, over unsettled windows. Negative means net credit.
    pub exposure: Decimal,
    pub net_debit_cap: Decimal,
    /// The sender's settlement balance in the source currency when it is prefunded
    /// (less any funds-out being stored); `None` when it is not, and the cap alone
    /// bounds it.
    pub settlement_balance: Option<Decimal>,
}

/// The business ladder, in order of precedence.
pub fn check_transfer(f: &TransferFacts) -> Result<(), RejectCode> {
    if f.sender_status != BankStatus::Active {
        return Err(RejectCode::SenderBankSuspended);
    }
    if f.receiver_status != BankStatus::Active {
        return Err(RejectCode::ReceiverBankSuspended);
    }
    if f.corridor_status != CorridorStatus::Active {
        return Err(RejectCode::CorridorSuspended);
    }
    if f.amount > f.corridor_amount_max {
        return Err(RejectCode::AmountExceedsCorridorMaximum);
    }
    if f.exposure + f.amount > f.net_debit_cap {
        return Err(RejectCode::LimitExceeded);
    }
    if f.settlement_balance
        .is_some_and(|balance| f.exposure + f.amount > balance)
    {
        return Err(RejectCode::LiquidityInsufficient);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawTransfer<'static> {
        RawTransfer {
            sender_bank: "ICICI",
            receiver_bank: "ENBD",
            amount: "100.00",
            from_currency: "INR",
            to_currency: "AED",
            sender_account: None,
            receiver_account: None,
            reference: None,
            idempotency_key: Some("k-1"),
            on_limit: None,
            priority: None,
        }
    }

    #[test]
    fn input_ladder_names_the_first_failing_field_in_order() {
        let long = "x".repeat(200);
        let long_with_nul = format!("{long}\0");
        let cases: Vec<(RawTransfer, &str, InputError)> = vec![
            (
                RawTransfer {
                    sender_bank: "x",
                    receiver_bank: "y",
                    ..raw()
                },
                "sender_bank",
                InputError::BankCodeInvalid,
            ),
            (
                RawTransfer {
                    receiver_bank: "y",
                    ..raw()
                },
                "receiver_bank",
                InputError::BankCodeInvalid,
            ),
            (
                RawTransfer {
                    receiver_bank: "ICICI",
                    ..raw()
                },
                "receiver_bank",
                InputError::BanksMustBeDifferent,
            ),
            (
                RawTransfer {
                    from_currency: "XXX",
                    amount: "x",
                    ..raw()
                },
                "from_currency",
                InputError::CurrencyUnknown,
            ),
            (
                RawTransfer {
                    to_currency: "aed",
                    amount: "x",
                    ..raw()
                },
                "to_currency",
                InputError::CurrencyCodeInvalid,
            ),
            (
                RawTransfer {
                    amount: "1.001",
                    ..raw()
                },
                "amount",
                InputError::AmountHasTooManyDecimals,
            ),
            // Each text field: its length, then its characters, before the next field.
            (
                RawTransfer {
                    sender_account: Some(&long_with_nul),
                    receiver_account: Some("\0"),
                    ..raw()
                },
                "sender_account",
                InputError::TextTooLong,
            ),
            (
                RawTransfer {
                    sender_account: Some("12\0 3"),
                    receiver_account: Some(&long),
                    ..raw()
                },
                "sender_account",
                InputError::TextInvalid,
            ),
            (
                RawTransfer {
                    receiver_account: Some(&long_with_nul),
                    reference: Some("\0"),
                    ..raw()
                },
                "receiver_account",
                InputError::TextTooLong,
            ),
            (
                RawTransfer {
                    receiver_account: Some("AE07\u{7f}"),
                    reference: Some(&long),
                    ..raw()
                },
                "receiver_account",
                InputError::TextInvalid,
            ),
            (
                RawTransfer {
                    reference: Some(&long_with_nul),
                    idempotency_key: Some(""),
                    ..raw()
                },
                "reference",
                InputError::TextTooLong,
            ),
            (
                RawTransfer {
                    reference: Some("a\0b"),
                    idempotency_key: Some(""),
                    ..raw()
                },
                "reference",
                InputError::TextInvalid,
            ),
            (
                RawTransfer {
                    idempotency_key: Some(""),
                    ..raw()
                },
                "idempotency_key",
                InputError::IdempotencyKeyInvalid,
            ),
            (
                RawTransfer {
                    idempotency_key: Some("a b"),
                    ..raw()
                },
                "idempotency_key",
                InputError::IdempotencyKeyInvalid,
            ),
            (
                RawTransfer {
                    on_limit: Some("wait"),
                    ..raw()
                },
                "on_limit",
                InputError::OnLimitInvalid,
            ),
            (
                RawTransfer {
                    priority: Some("high"),
                    ..raw()
                },
                "priority",
                InputError::PriorityInvalid,
            ),
            (
                RawTransfer {
                    on_limit: Some("queue"),
                    priority: Some("urgent"),
                    ..raw()
                },
                "priority",
                InputError::PriorityInvalid,
            ),
        ];
        for (input, field, error) in cases {
            assert_eq!(
                TransferDraft::parse(input).unwrap_err(),
                (field, error),
                "{input:?}"
            );
        }
        assert!(TransferDraft::parse(raw()).is_ok());
    }

    #[test]
    fn on_limit_and_priority_say_whether_and_how_a_transfer_queues() {
        let queue = |on_limit, priority| {
            TransferDraft::parse(RawTransfer {
                on_limit,
                priority,
                ..raw()
            })
            .unwrap()
            .queue
        };
        assert_eq!(queue(None, None), None);
        assert_eq!(queue(Some("reject"), None), None);
        assert_eq!(queue(Some("queue"), None), Some(QueuePriority::Normal));
        assert_eq!(
            queue(Some("queue"), Some("normal")),
            Some(QueuePriority::Normal)
        );
        assert_eq!(
            queue(Some("queue"), Some("high")),
            Some(QueuePriority::High)
        );
    }

    #[test]
    fn text_fields_refuse_every_control_character_and_keep_other_text() {
        // C0 (NUL, tab, line feed, carriage return, escape), DEL and C1 (NEL, CSI).
        for bad in [
            "a\0b",
            "a\tb",
            "a\nb",
            "a\rb",
            "\u{1b}[0m",
            "a\u{7f}",
            "a\u{85}b",
            "\u{9b}",
        ] {
            assert_eq!(printable_text(bad), Err(InputError::TextInvalid), "{bad:?}");
            let refused = TransferDraft::parse(RawTransfer {
                reference: Some(bad),
                ..raw()
            });
            assert_eq!(refused, Err(("reference", InputError::TextInvalid)));
        }
        for good in [
            "",
            "INV 2024/07-001",
            "Zahlung für Mär",
            "बिल ३१",
            "ﺩﻓﻌﺔ",
            "a\u{a0}b",
        ] {
            assert_eq!(printable_text(good), Ok(()), "{good:?}");
            let draft = TransferDraft::parse(RawTransfer {
                reference: Some(good),
                sender_account: Some(good),
                ..raw()
            })
            .expect("printable text is accepted");
            assert_eq!(draft.reference.as_deref(), Some(good));
        }
        // The length is counted in characters, so the longest reference may be non-ASCII.
        let longest = "é".repeat(REFERENCE_LEN_MAX);
        assert!(TransferDraft::parse(RawTransfer {
            reference: Some(&longest),
            ..raw()
        })
        .is_ok());
    }

    fn facts() -> TransferFacts {
        TransferFacts {
            sender_status: BankStatus::Active,
            receiver_status: BankStatus::Active,
            corridor_status: CorridorStatus::Active,
            corridor_amount_max: Decimal::new(1_000, 0),
            amount: Decimal::new(100, 0),
            exposure: Decimal::new(800, 0),
            net_debit_cap: Decimal::new(1_000, 0),
            settlement_balance: Some(Decimal::new(950, 0)),
        }
    }

    #[test]
    fn business_ladder_walks_every_code_in_order_of_precedence() {
        // Each row breaks one more rule than the next, so only precedence picks the code.
        let all_broken = TransferFacts {
            sender_status: BankStatus::Suspended,
            receiver_status: BankStatus::Suspended,
            corridor_status: CorridorStatus::Suspended,
            amount: Decimal::new(5_000, 0),
            ..facts()
        };
        let ladder = [
            (all_broken, RejectCode::SenderBankSuspended),
            (
                TransferFacts {
                    sender_status: BankStatus::Active,
                    ..all_broken
                },
                RejectCode::ReceiverBankSuspended,
            ),
            (
                TransferFacts {
                    sender_status: BankStatus::Active,
                    receiver_status: BankStatus::Active,
                    ..all_broken
                },
                RejectCode::CorridorSuspended,
            ),
            (
                TransferFacts {
                    corridor_status: CorridorStatus::Active,
                    sender_status: BankStatus::Active,
                    receiver_status: BankStatus::Active,
                    ..all_broken
                },
                RejectCode::AmountExceedsCorridorMaximum,
            ),
            (
                TransferFacts {
                    amount: Decimal::new(201, 0),
                    ..facts()
                },
                RejectCode::LimitExceeded,
            ),
            (
                TransferFacts {
                    amount: Decimal::new(151, 0),
                    ..facts()
                },
                RejectCode::LiquidityInsufficient,
            ),
        ];
        for (f, code) in ladder {
            assert_eq!(check_transfer(&f), Err(code));
            assert_eq!(RejectCode::from_code(code.code()), Some(code));
        }
        assert_eq!(
            check_transfer(&TransferFacts {
                amount: Decimal::new(150, 0),
                ..facts()
            }),
            Ok(())
        );
        // Not prefunded: the cap alone bounds the sender, as before balances existed.
        assert_eq!(
            check_transfer(&TransferFacts {
                amount: Decimal::new(200, 0),
                settlement_balance: None,
                ..facts()
            }),
            Ok(())
        );
    }

    #[test]
    fn credits_received_count_as_headroom() {
        let net_creditor = TransferFacts {
            exposure: Decimal::new(-500, 0),
            amount: Decimal::new(1_000, 0),
            net_debit_cap: Decimal::new(600, 0),
            settlement_balance: Some(Decimal::new(600, 0)),
            ..facts()
        };
        assert_eq!(check_transfer(&net_creditor), Ok(()));
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        /// One event in a bank's life: it sends `amount`, or receives a credit.
        #[derive(Clone, Debug)]
        enum Event {
            Send(i64),
            Credit(i64),
        }

        fn events() -> impl Strategy<Value = Vec<Event>> {
            prop::collection::vec(
                prop_oneof![
                    3 => (1i64..=500_000).prop_map(Event::Send),
                    1 => (1i64..=300_000).prop_map(Event::Credit),
                ],
                1..200,
            )
        }

        proptest! {
            /// Against a reference model that recomputes exposure from the whole history:
            /// the ladder accepts exactly the sends that keep the net debit within the cap,
            /// so exposure never passes the cap, whatever the order of sends and credits;
            /// for a prefunded sender, never past the smaller of its cap and balance.
            #[test]
            fn accepted_sends_never_push_exposure_past_the_cap(
                cap_minor in 0i64..=2_000_000,
                balance_minor in prop::option::of(0i64..=2_000_000),
                events in events(),
            ) {
                let balance = balance_minor.map(|minor| Decimal::new(minor, 2));
                let cap = Decimal::new(cap_minor, 2);
                let limit = balance.map_or(cap, |b| b.min(cap));
                let mut accepted: Vec<Decimal> = Vec::new();
                let mut credits: Vec<Decimal> = Vec::new();
                for event in events {
                    // The model: exposure recomputed from scratch each time.
                    let exposure: Decimal =
                        accepted.iter().sum::<Decimal>() - credits.iter().sum::<Decimal>();
                    match event {
                        Event::Credit(minor) => credits.push(Decimal::new(minor, 2)),
                        Event::Send(minor) => {
                            let amount = Decimal::new(minor, 2);
                            let decision = check_transfer(&TransferFacts {
                                amount,
                                exposure,
                                net_debit_cap: cap,
                                settlement_balance: balance,
                                corridor_amount_max: Decimal::new(1_000_000, 0),
                                ..facts()
                            });
                            let fits = exposure + amount <= limit;
                            prop_assert_eq!(decision.is_ok(), fits);
                            if fits {
                                accepted.push(amount);
                            }
                        }
                    }
                    let exposure: Decimal =
                        accepted.iter().sum::<Decimal>() - credits.iter().sum::<Decimal>();
                    prop_assert!(exposure <= limit);
                }
            }
        }
    }
}
