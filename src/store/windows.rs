//! Queries for clearing windows, their netting results and settlement instructions.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::ids::HUB;
use crate::domain::netting::{CurrencySummary, Netting, Party, Position, WindowSums};
use crate::domain::{BankCode, CorridorId, Currency, WindowId};

/// A window's lifecycle state, as stored.
pub const OPEN: &str = "open";
pub const CLOSING: &str = "closing";
pub const NETTED: &str = "netted";
pub const SETTLED: &str = "settled";
pub const SETTLEMENT_FAILED: &str = "settlement_failed";

#[derive(Clone, Debug)]
pub struct WindowRecord {
    pub id: WindowId,
    pub state: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub netted_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub transfer_count: Option<i64>,
}

/// A window with its stored netting result (empty until netted).
#[derive(Clone, Debug)]
pub struct WindowDetail {
    pub record: WindowRecord,
    pub positions: Vec<Position<BankCode>>,
    pub currencies: Vec<CurrencySummary>,
    pub corridors: Vec<(CorridorId, Decimal, Decimal)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstructionRecord {
    pub id: Uuid,
    pub window_id: WindowId,
    pub currency: Currency,
    pub payer: String,
    pub payee: String,
    pub amount: Decimal,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What confirming (or failing) an instruction did.
#[derive(Clone, Debug)]
pub struct InstructionChange {
    pub instruction: InstructionRecord,
    /// False when the instruction was already in the asked state (a harmless repeat).
    pub changed: bool,
    /// Every instruction of its window is now confirmed.
    pub window_complete: bool,
}

/// One bank's part of a settled window, to release from its exposure.
#[derive(Clone, Debug)]
pub struct ReleasedBooks {
    pub bank: BankCode,
    pub currency: Currency,
    pub debits: Decimal,
    pub credits: Decimal,
}

use super::decode::{bank_code as bank, currency, window_id};

fn window_from_row(row: &Row) -> Result<WindowRecord, StoreError> {
    Ok(WindowRecord {
        id: window_id(row.get("id"))?,
        state: row.get("state"),
        opened_at: row.get("opened_at"),
        closed_at: row.get("closed_at"),
        netted_at: row.get("netted_at"),
        settled_at: row.get("settled_at"),
        transfer_count: row.get("transfer_count"),
    })
}

fn instruction_from_row(row: &Row) -> Result<InstructionRecord, StoreError> {
    Ok(InstructionRecord {
        id: row.get("id"),
        window_id: window_id(row.get("window_id"))?,
        currency: currency(row.get("currency"))?,
        payer: row.get("payer"),
        payee: row.get("payee"),
        amount: row.get("amount"),
        state: row.get("state"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn party_text(party: &Party<BankCode>) -> &str {
    match party {
        Party::Bank(code) => code.as_str(),
        Party::Hub => HUB,
    }
}

const WINDOW_COLUMNS: &str =
    "id, state, opened_at, closed_at, netted_at, settled_at, transfer_count";
const INSTRUCTION_COLUMNS: &str =
    "id, window_id, currency, payer, payee, amount, state, created_at, updated_at";

impl Store {
    /// Cut-off in the store: `window` goes from open to closing and the next window
    /// opens, in one transaction. Returns the next window.
    pub async fn close_window(&self, window: WindowId) -> Result<WindowId, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let closed = tx
            .execute(
                "UPDATE windows SET state = 'closing', closed_at = now()
                  WHERE id = $1 AND state = 'open'",
                &[&window.get()],
            )
            .await?;
        if closed == 0 {
            return Err(StoreError::NotFound);
        }
        let next = window.get() + 1;
        tx.execute(
            "INSERT INTO windows (id, state) VALUES ($1, 'open')",
            &[&next],
        )
        .await?;
        tx.commit().await?;
        window_id(next)
    }

    pub async fn windows_in_state(&self, state: &str) -> Result<Vec<WindowId>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id FROM windows WHERE state = $1 ORDER BY id",
                &[&state],
            )
            .await?
            .iter()
            .map(|r| window_id(r.get(0)))
            .collect()
    }

    /// The window's legs summed per bank and currency and per corridor, in one scan of
    /// its transfers (found through the BRIN index on `window_id`).
    pub async fn window_sums(&self, window: WindowId) -> Result<WindowSums<BankCode>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT sender_bank, from_currency, receiver_bank, to_currency,
                        sum(amount) AS amount, sum(converted_amount) AS converted,
                        count(*) AS n,
                        GROUPING(sender_bank, from_currency) AS g_debit,
                        GROUPING(receiver_bank, to_currency) AS g_credit
                   FROM transfers
                  WHERE window_id = $1 AND status = 'accepted'
                  GROUP BY GROUPING SETS ((sender_bank, from_currency),
                                          (receiver_bank, to_currency),
                                          (from_currency, to_currency))",
                &[&window.get()],
            )
            .await?;
        let mut sums = WindowSums::default();
        for row in rows {
            let debit_set: i32 = row.get("g_debit");
            let credit_set: i32 = row.get("g_credit");
            if debit_set == 0 {
                let key = (
                    bank(row.get("sender_bank"))?,
                    currency(row.get("from_currency"))?,
                );
                sums.debits.insert(key, row.get("amount"));
                sums.transfer_count += row.get::<_, i64>("n") as u64;
            } else if credit_set == 0 {
                let key = (
                    bank(row.get("receiver_bank"))?,
                    currency(row.get("to_currency"))?,
                );
                sums.credits.insert(key, row.get("converted"));
            } else {
                let id = CorridorId::new(
                    currency(row.get("from_currency"))?,
                    currency(row.get("to_currency"))?,
                );
                sums.corridors
                    .insert(id, (row.get("amount"), row.get("converted")));
            }
        }
        Ok(sums)
    }

    /// Stores a window's netting and moves it from closing to netted, once. Returns the
    /// window as stored and its instructions (as stored: their times are the
    /// transaction's), or `None` — writing nothing — if the window was already netted.
    pub async fn store_netting(
        &self,
        window: WindowId,
        netting: &Netting<BankCode>,
    ) -> Result<Option<(WindowRecord, Vec<InstructionRecord>)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let w = window.get();
        let moved = tx
            .query_opt(
                &format!(
                    "UPDATE windows SET state = 'netted', netted_at = now(), transfer_count = $2
                      WHERE id = $1 AND state = 'closing' RETURNING {WINDOW_COLUMNS}"
                ),
                &[&w, &(netting.transfer_count as i64)],
            )
            .await?;
        let Some(moved) = moved else {
            return Ok(None);
        };
        let record = window_from_row(&moved)?;
        let now = record.netted_at.expect("just set");
        let banks: Vec<&str> = netting.positions.iter().map(|p| p.bank.as_str()).collect();
        let currencies: Vec<&str> = netting
            .positions
            .iter()
            .map(|p| p.currency.as_str())
            .collect();
        let debits: Vec<Decimal> = netting.positions.iter().map(|p| p.debits).collect();
        let credits: Vec<Decimal> = netting.positions.iter().map(|p| p.credits).collect();
        let positions: Vec<Decimal> = netting.positions.iter().map(|p| p.position).collect();
        tx.execute(
            "INSERT INTO window_positions (window_id, bank, currency, debits, credits, position)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[])",
            &[&w, &banks, &currencies, &debits, &credits, &positions],
        )
        .await?;
        let summary_currencies: Vec<&str> = netting
            .currencies
            .iter()
            .map(|c| c.currency.as_str())
            .collect();
        let gross: Vec<Decimal> = netting.currencies.iter().map(|c| c.gross).collect();
        let net: Vec<Decimal> = netting.currencies.iter().map(|c| c.net).collect();
        let hub: Vec<Decimal> = netting.currencies.iter().map(|c| c.hub_position).collect();
        tx.execute(
            "INSERT INTO window_currencies (window_id, currency, gross, net, hub_position)
             SELECT $1, * FROM UNNEST($2::text[], $3::numeric[], $4::numeric[], $5::numeric[])",
            &[&w, &summary_currencies, &gross, &net, &hub],
        )
        .await?;
        let froms: Vec<&str> = netting
            .corridors
            .iter()
            .map(|c| c.0.from.as_str())
            .collect();
        let tos: Vec<&str> = netting.corridors.iter().map(|c| c.0.to.as_str()).collect();
        let sources: Vec<Decimal> = netting.corridors.iter().map(|c| c.1).collect();
        let destinations: Vec<Decimal> = netting.corridors.iter().map(|c| c.2).collect();
        tx.execute(
            "INSERT INTO window_corridors (window_id, from_currency, to_currency,
                                           source_amount, destination_amount)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::numeric[], $5::numeric[])",
            &[&w, &froms, &tos, &sources, &destinations],
        )
        .await?;
        let ids: Vec<Uuid> = netting
            .instructions
            .iter()
            .map(|_| Uuid::now_v7())
            .collect();
        let currencies: Vec<&str> = netting
            .instructions
            .iter()
            .map(|i| i.currency.as_str())
            .collect();
        let payers: Vec<&str> = netting
            .instructions
            .iter()
            .map(|i| party_text(&i.payer))
            .collect();
        let payees: Vec<&str> = netting
            .instructions
            .iter()
            .map(|i| party_text(&i.payee))
            .collect();
        let amounts: Vec<Decimal> = netting.instructions.iter().map(|i| i.amount).collect();
        tx.execute(
            "INSERT INTO settlement_instructions (id, window_id, currency, payer, payee, amount, state)
             SELECT id, $1, currency, payer, payee, amount, 'pending'
               FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[])
                    AS i(id, currency, payer, payee, amount)",
            &[&w, &ids, &currencies, &payers, &payees, &amounts],
        )
        .await?;
        tx.commit().await?;
        let instructions = netting
            .instructions
            .iter()
            .zip(ids)
            .map(|(i, id)| InstructionRecord {
                id,
                window_id: window,
                currency: i.currency,
                payer: party_text(&i.payer).to_string(),
                payee: party_text(&i.payee).to_string(),
                amount: i.amount,
                state: "pending".to_string(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        Ok(Some((record, instructions)))
    }

    /// A window with its stored result. The four reads go out together on one
    /// connection (pipelined), so they cost one round trip.
    pub async fn window(&self, window: WindowId) -> Result<WindowDetail, StoreError> {
        let client = self.client().await?;
        let w = window.get();
        let record_sql = format!("SELECT {WINDOW_COLUMNS} FROM windows WHERE id = $1");
        let (record, positions, currencies, corridors) = futures_util::future::join4(
            client.query_opt(&record_sql, &[&w]),
            client.query(
                "SELECT bank, currency, debits, credits, position FROM window_positions
                  WHERE window_id = $1 ORDER BY bank, currency",
                &[&w],
            ),
            client.query(
                "SELECT currency, gross, net, hub_position FROM window_currencies
                  WHERE window_id = $1 ORDER BY currency",
                &[&w],
            ),
            client.query(
                "SELECT from_currency, to_currency, source_amount, destination_amount
                   FROM window_corridors WHERE window_id = $1 ORDER BY from_currency, to_currency",
                &[&w],
            ),
        )
        .await;
        let record = window_from_row(&record?.ok_or(StoreError::NotFound)?)?;
        let positions = positions?
            .iter()
            .map(|r| {
                Ok(Position {
                    bank: bank(r.get("bank"))?,
                    currency: currency(r.get("currency"))?,
                    debits: r.get("debits"),
                    credits: r.get("credits"),
                    position: r.get("position"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let currencies = currencies?
            .iter()
            .map(|r| {
                Ok(CurrencySummary {
                    currency: currency(r.get("currency"))?,
                    gross: r.get("gross"),
                    net: r.get("net"),
                    hub_position: r.get("hub_position"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let corridors = corridors?
            .iter()
            .map(|r| {
                Ok((
                    CorridorId::new(
                        currency(r.get("from_currency"))?,
                        currency(r.get("to_currency"))?,
                    ),
                    r.get("source_amount"),
                    r.get("destination_amount"),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(WindowDetail {
            record,
            positions,
            currencies,
            corridors,
        })
    }

    /// Windows newest first, before `before` (exclusive) when given.
    pub async fn windows(
        &self,
        before: Option<WindowId>,
        limit: i64,
    ) -> Result<Vec<WindowRecord>, StoreError> {
        let client = self.client().await?;
        let before = before.map(|w| w.get()).unwrap_or(i64::MAX);
        client
            .query(
                &format!(
                    "SELECT {WINDOW_COLUMNS} FROM windows WHERE id < $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&before, &limit],
            )
            .await?
            .iter()
            .map(window_from_row)
            .collect()
    }

    /// Accepted transfers stamped with `window` so far.
    pub async fn window_transfer_count(&self, window: WindowId) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT count(*) FROM transfers WHERE window_id = $1 AND status = 'accepted'",
                &[&window.get()],
            )
            .await?
            .get(0))
    }

    /// Whether no transfer at all (accepted or not) is stamped with `window`.
    pub async fn window_is_empty(&self, window: WindowId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM transfers WHERE window_id = $1)",
                &[&window.get()],
            )
            .await?
            .get(0))
    }

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

    /// Instructions of one window, or of every window (oldest first), paged by id.
    pub async fn instructions(
        &self,
        window: Option<WindowId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<InstructionRecord>, StoreError> {
        let client = self.client().await?;
        let window = window.map(|w| w.get());
        client
            .query(
                &format!(
                    "SELECT {INSTRUCTION_COLUMNS} FROM settlement_instructions
                      WHERE ($1::int8 IS NULL OR window_id = $1)
                        AND ($2::text IS NULL OR state = $2)
                        AND ($3::uuid IS NULL OR id > $3)
                      ORDER BY id LIMIT $4"
                ),
                &[&window, &state, &after, &limit],
            )
            .await?
            .iter()
            .map(instruction_from_row)
            .collect()
    }

    /// Moves a pending instruction to `state` (confirmed or failed). Repeating the same
    /// change is harmless; any other change of a settled instruction is refused with
    /// `StoreError::Conflict`. A failed instruction fails its window.
    pub async fn change_instruction(
        &self,
        id: Uuid,
        state: &str,
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
        if current.state != "pending" {
            return Err(StoreError::Conflict(format!(
                "instruction {id} is {}, not pending",
                current.state
            )));
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE settlement_instructions SET state = $2, updated_at = now()
                      WHERE id = $1 RETURNING {INSTRUCTION_COLUMNS}"
                ),
                &[&id, &state],
            )
            .await?;
        let instruction = instruction_from_row(&row)?;
        let w = instruction.window_id.get();
        if state == "failed" {
            tx.execute(
                "UPDATE windows SET state = 'settlement_failed' WHERE id = $1 AND state = 'netted'",
                &[&w],
            )
            .await?;
        }
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
        let released = tx
            .query(
                "SELECT bank, currency, debits, credits FROM window_positions WHERE window_id = $1",
                &[&w],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ReleasedBooks {
                    bank: bank(r.get("bank"))?,
                    currency: currency(r.get("currency"))?,
                    debits: r.get("debits"),
                    credits: r.get("credits"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(Some(released))
    }

    pub async fn pending_instruction_count(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT count(*) FROM settlement_instructions WHERE state = 'pending'",
                &[],
            )
            .await?
            .get(0))
    }
}
