//! Prefunded settlement accounts: the operator's funds-in and funds-out, each stored
//! as a movement with its balance and its audit entry in one transaction. The
//! settlement movements are written by `settle_window` (settlements.rs).

use super::audit_log;
use super::{Store, StoreError};
use crate::domain::{
    Amount, AuditAction, BankCode, FundsDirection, FundsMovement, Origin, StoredBalance,
};
use crate::views;

/// The transaction lock (`pg_advisory_xact_lock`) that orders funds movements with
/// settlements, so that every window is settled either before a balance exists (it
/// moves nothing) or after (it moves it): with the balance's `created_at` taken once
/// the lock is held, a window settled after it always has its movement, which the
/// audit checks. Funds movements are the operator's, rare: the wait costs nothing.
pub(super) const BALANCES_LOCK: i64 = 0x6465_6c74_7261_6e01;

impl Store {
    /// Moves `bank`'s settlement balance in `amount`'s currency by `amount`, in or
    /// out, stores the movement and records it in the audit log, in one transaction.
    /// The first funds-in of a currency makes the bank prefunded in it. A funds-out
    /// that would take the balance below zero (or of a bank not prefunded) moves
    /// nothing and is `StoreError::NotFound`: the bank actor checked the free balance
    /// before, so this is only the store's own guard.
    pub async fn move_funds(
        &self,
        origin: &Origin,
        bank: &BankCode,
        direction: FundsDirection,
        amount: Amount,
        reference: Option<&str>,
        entry_ref: Option<&str>,
    ) -> Result<FundsMovement, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let currency = amount.currency();
        let value = amount.value();
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BALANCES_LOCK])
            .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&bank.as_str(), &currency.as_str(), &value];
        let row = match direction {
            FundsDirection::In => {
                tx.query_one(
                    "INSERT INTO settlement_balances (bank, currency, balance, created_at)
                     VALUES ($1, $2, $3, clock_timestamp())
                     ON CONFLICT (bank, currency) DO UPDATE
                        SET balance = settlement_balances.balance + EXCLUDED.balance,
                            version = settlement_balances.version + 1, updated_at = now()
                     RETURNING balance, version",
                    &params,
                )
                .await?
            }
            FundsDirection::Out => tx
                .query_opt(
                    "UPDATE settlement_balances
                        SET balance = balance - $3, version = version + 1, updated_at = now()
                      WHERE bank = $1 AND currency = $2 AND balance >= $3
                      RETURNING balance, version",
                    &params,
                )
                .await?
                .ok_or(StoreError::NotFound)?,
        };
        let balance = StoredBalance {
            balance: row.get("balance"),
            version: row.get("version"),
        };
        let row = tx
            .query_one(
                "INSERT INTO settlement_funds (bank, currency, direction, amount, reference,
                                               entry_ref)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
                &[
                    &bank.as_str(),
                    &currency.as_str(),
                    &direction.as_str(),
                    &value,
                    &reference,
                    &entry_ref,
                ],
            )
            .await?;
        let movement = FundsMovement {
            id: row.get("id"),
            bank: bank.clone(),
            currency,
            direction,
            amount: value,
            reference: reference.map(str::to_string),
            balance,
            created_at: row.get("created_at"),
        };
        // The balance before, unless this funds-in made the account.
        let before = (balance.version > 1).then(|| {
            let moved = match direction {
                FundsDirection::In => value,
                FundsDirection::Out => -value,
            };
            views::value(views::settlement_balance(
                bank,
                currency,
                balance.balance - moved,
            ))
        });
        let action = match direction {
            FundsDirection::In => AuditAction::FundsIn,
            FundsDirection::Out => AuditAction::FundsOut,
        };
        audit_log::record(
            &tx,
            origin,
            action,
            bank.as_str(),
            before,
            Some(views::value(views::funds_movement(&movement))),
        )
        .await?;
        tx.commit().await?;
        Ok(movement)
    }
}
