//! Settlement instructions: reading them, confirming or failing them, and settling a
//! window once every instruction is confirmed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::audit_log;
use super::decode::{bank_code as bank, corrupt, currency, window_id};
use super::{Store, StoreError};
use crate::domain::{
    AuditAction, BankCode, InstructionChange, InstructionRecord, InstructionState, Origin, Party,
    ReleasedBooks, StoredBalance, WindowId,
};
use crate::views;

pub(super) const INSTRUCTION_COLUMNS: &str =
    "id, window_id, currency, payer, payee, amount, state, created_at, updated_at";

pub(super) fn instruction_from_row(row: &Row) -> Result<InstructionRecord, StoreError> {
    let party = |column: &str| {
        let text: &str = row.get(column);
        Party::parse(text).map_err(|_| corrupt(column, text))
    };
    let state: &str = row.get("state");
    Ok(InstructionRecord {
        id: row.get("id"),
        window_id: window_id(row.get("window_id"))?,
        currency: currency(row.get("currency"))?,
        payer: party("payer")?,
        payee: party("payee")?,
        amount: row.get("amount"),
        state: InstructionState::parse(state).ok_or_else(|| corrupt("instruction state", state))?,
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

impl Store {
    pub async fn instruction(&self, id: Uuid) -> Result<InstructionRecord, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {INSTRUCTION_COLUMNS} FROM settlement_instructions WHERE id = $1"),
                &[&id],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        instruction_from_row(&row)
    }

    /// Instructions of one window, or of every window (oldest first), paged by id;
    /// with `party`, only those it pays or is paid by.
    pub async fn instructions(
        &self,
        window: Option<WindowId>,
        state: Option<InstructionState>,
        party: Option<&BankCode>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<InstructionRecord>, StoreError> {
        let client = self.client().await?;
        let window = window.map(|w| w.get());
        let state = state.map(|s| s.as_str());
        let party = party.map(|b| b.as_str());
        client
            .query(
                &format!(
                    "SELECT {INSTRUCTION_COLUMNS} FROM settlement_instructions
                      WHERE ($1::int8 IS NULL OR window_id = $1)
                        AND ($2::text IS NULL OR state = $2)
                        AND ($3::uuid IS NULL OR id > $3)
                        AND ($5::text IS NULL OR payer = $5 OR payee = $5)
                      ORDER BY id LIMIT $4"
                ),
                &[&window, &state, &after, &limit, &party],
            )
            .await?
            .iter()
            .map(instruction_from_row)
            .collect()
    }

    /// Moves a pending instruction to `state` (confirmed or failed). Repeating the same
    /// change is harmless; any other change of a settled instruction is refused with
    /// `StoreError::InstructionNotPending`. A failed instruction fails its window. A
    /// change (not a repeat) is recorded in the audit log in the same transaction.
    pub async fn change_instruction(
        &self,
        origin: &Origin,
        id: Uuid,
        state: InstructionState,
    ) -> Result<InstructionChange, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {INSTRUCTION_COLUMNS} FROM settlement_instructions WHERE id = $1 FOR UPDATE"
                ),
                &[&id],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let current = instruction_from_row(&row)?;
        if current.state == state {
            return Ok(InstructionChange {
                instruction: current,
                changed: false,
                window_complete: false,
            });
        }
        if current.state != InstructionState::Pending {
            return Err(StoreError::InstructionNotPending {
                id,
                state: current.state,
            });
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE settlement_instructions SET state = $2, updated_at = now()
                      WHERE id = $1 RETURNING {INSTRUCTION_COLUMNS}"
                ),
                &[&id, &state.as_str()],
            )
            .await?;
        let instruction = instruction_from_row(&row)?;
        let w = instruction.window_id.get();
        if state == InstructionState::Failed {
            tx.execute(
                "UPDATE windows SET state = 'settlement_failed' WHERE id = $1 AND state = 'netted'",
                &[&w],
            )
            .await?;
        }
        let action = match state {
            InstructionState::Failed => AuditAction::InstructionFailed,
            _ => AuditAction::InstructionConfirmed,
        };
        audit_log::record(
            &tx,
            origin,
            action,
            &id.to_string(),
            Some(views::value(views::instruction(&current))),
            Some(views::value(views::instruction(&instruction))),
        )
        .await?;
        let open: i64 = tx
            .query_one(
                "SELECT count(*) FROM settlement_instructions
                  WHERE window_id = $1 AND state <> 'confirmed'",
                &[&w],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(InstructionChange {
            instruction,
            changed: true,
            window_complete: open == 0,
        })
    }

    /// Marks a netted window whose instructions are all confirmed as settled, once,
    /// and returns what each bank had in it; `None` if it was not ready or done already.
    /// The settlement balance of every bank prefunded in a currency of the window
    /// moves by its position there (`credits − debits`) in the same transaction.
    pub async fn settle_window(
        &self,
        window: WindowId,
    ) -> Result<Option<Vec<ReleasedBooks>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let w = window.get();
        let moved = tx
            .execute(
                "UPDATE windows SET state = 'settled', settled_at = now()
                  WHERE id = $1 AND state = 'netted'
                    AND NOT EXISTS (SELECT 1 FROM settlement_instructions
                                     WHERE window_id = $1 AND state <> 'confirmed')",
                &[&w],
            )
            .await?;
        if moved == 0 {
            return Ok(None);
        }
        // Each prefunded bank's balance moves by its position in the window, stored
        // as a settlement movement, in this transaction: atomic with the settlement.
        // Under the balances lock, so a balance made meanwhile is either seen here or
        // made after this settlement (see `balances::BALANCES_LOCK`).
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&super::balances::BALANCES_LOCK],
        )
        .await?;
        let balances: HashMap<(String, String), StoredBalance> = tx
            .query(
                "WITH moved AS (
                     INSERT INTO settlement_funds (bank, currency, direction, amount, window_id)
                     SELECT p.bank, p.currency, 'settlement', p.credits - p.debits, p.window_id
                       FROM window_positions p
                       JOIN settlement_balances b ON b.bank = p.bank AND b.currency = p.currency
                      WHERE p.window_id = $1
                     RETURNING bank, currency, amount)
                 UPDATE settlement_balances b
                    SET balance = b.balance + m.amount, version = b.version + 1,
                        updated_at = now()
                   FROM moved m
                  WHERE b.bank = m.bank AND b.currency = m.currency
                 RETURNING b.bank, b.currency, b.balance, b.version",
                &[&w],
            )
            .await?
            .iter()
            .map(|r| {
                let balance = StoredBalance {
                    balance: r.get("balance"),
                    version: r.get("version"),
                };
                ((r.get("bank"), r.get("currency")), balance)
            })
            .collect();
        let released = tx
            .query(
                "SELECT bank, currency, debits, credits FROM window_positions WHERE window_id = $1",
                &[&w],
            )
            .await?
            .iter()
            .map(|r| {
                let key: (String, String) = (r.get("bank"), r.get("currency"));
                Ok(ReleasedBooks {
                    bank: bank(&key.0)?,
                    currency: currency(&key.1)?,
                    debits: r.get("debits"),
                    credits: r.get("credits"),
                    balance: balances.get(&key).copied(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(Some(released))
    }

    /// Per window with pending instructions: how many, and when the oldest was created.
    pub async fn pending_instructions_by_window(
        &self,
    ) -> Result<Vec<(WindowId, i64, DateTime<Utc>)>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT window_id, count(*), min(created_at) FROM settlement_instructions
                  WHERE state = 'pending' GROUP BY window_id",
                &[],
            )
            .await?
            .iter()
            .map(|row| Ok((window_id(row.get(0))?, row.get(1), row.get(2))))
            .collect()
    }
}
