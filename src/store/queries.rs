//! The queries behind the routes and the actors, with the row types they return.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::decode::{bank_code, corrupt, currency, window_id};
use super::{Store, StoreError};
use crate::domain::{
    Amount, BankCode, BankStatus, CorridorId, CorridorStatus, Currency, FxRate, Outcome,
    RejectCode, Transfer, TransferId, WindowId, WindowPhase,
};

/// A bank as stored, with its net debit cap per currency.
#[derive(Clone, Debug)]
pub struct BankRecord {
    pub code: BankCode,
    pub name: String,
    pub country: String,
    pub status: BankStatus,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A change to a bank; caps named here are set, others kept.
#[derive(Clone, Debug, Default)]
pub struct BankPatch {
    pub name: Option<String>,
    pub status: Option<BankStatus>,
    pub net_debit_caps: BTreeMap<Currency, Decimal>,
}

#[derive(Clone, Debug)]
pub struct CorridorRecord {
    pub id: CorridorId,
    pub fx_rate: FxRate,
    pub status: CorridorStatus,
    pub amount_max: Decimal,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct CorridorPatch {
    pub fx_rate: Option<FxRate>,
    pub status: Option<CorridorStatus>,
    pub amount_max: Option<Decimal>,
}

/// A bank's committed debits and credits per currency over windows not yet settled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankBooks {
    pub debits: BTreeMap<Currency, Decimal>,
    pub credits: BTreeMap<Currency, Decimal>,
}

/// What happened to one row of a batch insert.
#[derive(Clone, Debug)]
pub enum InsertOutcome {
    Inserted,
    /// The sender had already used this idempotency key: here is the stored transfer.
    Existing(Box<Transfer>),
}

#[derive(Clone, Debug, Default)]
pub struct TransferFilter {
    pub transaction_id: Option<TransferId>,
    pub sender: Option<BankCode>,
    pub receiver: Option<BankCode>,
    /// Either side.
    pub bank: Option<BankCode>,
    pub status: Option<String>,
    pub window_id: Option<WindowId>,
    /// Only rows after this transfer id (exclusive): the previous page's cursor.
    pub after: Option<TransferId>,
    pub limit: i64,
}

pub struct TransferPage {
    pub transfers: Vec<Transfer>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<TransferId>,
}

/// The columns of a transfer read with its window's state (`t` joined with `w`).
const TRANSFER_WITH_WINDOW: &str = "t.id, t.sender_bank, t.receiver_bank, t.amount, \
    t.from_currency, t.converted_amount, t.to_currency, t.fx_rate, t.status, t.reject_code, \
    t.window_id, t.idempotency_key, t.sender_account, t.receiver_account, t.reference, \
    t.created_at, w.state AS window_state \
    FROM transfers t LEFT JOIN windows w ON w.id = t.window_id";

const TRANSFER_COLUMNS: &str = "id, sender_bank, receiver_bank, amount, from_currency, \
    converted_amount, to_currency, fx_rate, status, reject_code, window_id, \
    idempotency_key, sender_account, receiver_account, reference, created_at";

/// Answers only how many rows went in: one row back instead of one per transfer,
/// since a conflict (a reused idempotency key) is rare and looked up separately.
const INSERT_TRANSFERS: &str =
    "WITH inserted AS (INSERT INTO transfers (id, sender_bank, receiver_bank, amount, \
    from_currency, converted_amount, to_currency, fx_rate, status, reject_code, window_id, \
    idempotency_key, sender_account, receiver_account, reference, created_at) \
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[], \
    $6::numeric[], $7::text[], $8::numeric[], $9::text[], $10::text[], $11::int8[], \
    $12::text[], $13::text[], $14::text[], $15::text[], $16::timestamptz[]) \
    ON CONFLICT (sender_bank, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
    RETURNING 1) SELECT count(*) FROM inserted";

fn transfer_from_row(row: &Row) -> Result<Transfer, StoreError> {
    let from = currency(row.get("from_currency"))?;
    let to = currency(row.get("to_currency"))?;
    let status: &str = row.get("status");
    let outcome = match status {
        "accepted" => {
            let id: i64 = row.get("window_id");
            Outcome::Accepted(window_id(id)?)
        }
        _ => {
            let code: &str = row.get("reject_code");
            Outcome::Rejected(RejectCode::from_code(code).ok_or_else(|| corrupt("reject", code))?)
        }
    };
    let converted: Option<Decimal> = row.get("converted_amount");
    let rate: Option<Decimal> = row.get("fx_rate");
    Ok(Transfer {
        id: TransferId::from_uuid(row.get("id")),
        sender: bank_code(row.get("sender_bank"))?,
        receiver: bank_code(row.get("receiver_bank"))?,
        amount: Amount::from_stored(row.get("amount"), from),
        to_currency: to,
        fx_rate: rate.map(FxRate::from_stored),
        converted: converted.map(|c| Amount::from_stored(c, to)),
        outcome,
        sender_account: row.get("sender_account"),
        receiver_account: row.get("receiver_account"),
        reference: row.get("reference"),
        idempotency_key: row.get("idempotency_key"),
        created_at: row.get("created_at"),
        window_phase: row
            .try_get::<_, Option<&str>>("window_state")
            .ok()
            .flatten()
            .and_then(WindowPhase::parse),
    })
}

impl Store {
    /// Writes a batch of decided transfers in one statement. A row whose idempotency
    /// key the sender already used is not written; its outcome carries the stored one.
    pub async fn insert_transfers(
        &self,
        batch: &[&Transfer],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(INSERT_TRANSFERS).await?;
        let ids: Vec<Uuid> = batch.iter().map(|t| t.id.as_uuid()).collect();
        let senders: Vec<&str> = batch.iter().map(|t| t.sender.as_str()).collect();
        let receivers: Vec<&str> = batch.iter().map(|t| t.receiver.as_str()).collect();
        let amounts: Vec<Decimal> = batch.iter().map(|t| t.amount.value()).collect();
        let froms: Vec<&str> = batch.iter().map(|t| t.amount.currency().as_str()).collect();
        let converted: Vec<Option<Decimal>> = batch
            .iter()
            .map(|t| t.converted.map(|c| c.value()))
            .collect();
        let tos: Vec<&str> = batch.iter().map(|t| t.to_currency.as_str()).collect();
        let rates: Vec<Option<Decimal>> =
            batch.iter().map(|t| t.fx_rate.map(|r| r.value())).collect();
        let statuses: Vec<&str> = batch.iter().map(|t| t.decision()).collect();
        let rejects: Vec<Option<&str>> = batch
            .iter()
            .map(|t| t.reject_code().map(|r| r.code()))
            .collect();
        let windows: Vec<Option<i64>> = batch
            .iter()
            .map(|t| t.window_id().map(|w| w.get()))
            .collect();
        let keys: Vec<Option<&str>> = batch.iter().map(|t| t.idempotency_key.as_deref()).collect();
        let sender_accounts: Vec<Option<&str>> =
            batch.iter().map(|t| t.sender_account.as_deref()).collect();
        let receiver_accounts: Vec<Option<&str>> = batch
            .iter()
            .map(|t| t.receiver_account.as_deref())
            .collect();
        let references: Vec<Option<&str>> = batch.iter().map(|t| t.reference.as_deref()).collect();
        let created: Vec<DateTime<Utc>> = batch.iter().map(|t| t.created_at).collect();
        let params: [&(dyn ToSql + Sync); 16] = [
            &ids,
            &senders,
            &receivers,
            &amounts,
            &froms,
            &converted,
            &tos,
            &rates,
            &statuses,
            &rejects,
            &windows,
            &keys,
            &sender_accounts,
            &receiver_accounts,
            &references,
            &created,
        ];
        let inserted_count: i64 = client.query_one(&statement, &params).await?.get(0);
        if inserted_count as usize == batch.len() {
            return Ok(vec![InsertOutcome::Inserted; batch.len()]);
        }
        // The statement has committed; which of our ids are in the table now?
        let inserted: std::collections::HashSet<Uuid> = client
            .query("SELECT id FROM transfers WHERE id = ANY($1)", &[&ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Some keys were used before (or twice in this batch): read what they hold.
        let conflicted: Vec<&Transfer> = batch
            .iter()
            .copied()
            .filter(|t| !inserted.contains(&t.id.as_uuid()))
            .collect();
        let banks: Vec<&str> = conflicted.iter().map(|t| t.sender.as_str()).collect();
        let keys: Vec<&str> = conflicted
            .iter()
            .map(|t| t.idempotency_key.as_deref().unwrap_or(""))
            .collect();
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers t \
             JOIN UNNEST($1::text[], $2::text[]) AS k(bank, key) \
             ON t.sender_bank = k.bank AND t.idempotency_key = k.key"
        );
        let mut existing = std::collections::HashMap::new();
        for row in client.query(&sql, &[&banks, &keys]).await? {
            let transfer = transfer_from_row(&row)?;
            let key = (
                transfer.sender.clone(),
                transfer.idempotency_key.clone().unwrap_or_default(),
            );
            existing.insert(key, transfer);
        }
        batch
            .iter()
            .map(|t| {
                if inserted.contains(&t.id.as_uuid()) {
                    return Ok(InsertOutcome::Inserted);
                }
                let key = (
                    t.sender.clone(),
                    t.idempotency_key.clone().unwrap_or_default(),
                );
                existing
                    .get(&key)
                    .cloned()
                    .map(|t| InsertOutcome::Existing(Box::new(t)))
                    .ok_or_else(|| StoreError::Duplicate(format!("transaction id {}", t.id)))
            })
            .collect()
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Transfer, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {TRANSFER_WITH_WINDOW} WHERE t.id = $1");
        let statement = client.prepare_cached(&sql).await?;
        let row = client
            .query_opt(&statement, &[&id.as_uuid()])
            .await?
            .ok_or(StoreError::NotFound)?;
        transfer_from_row(&row)
    }

    /// One page of transfers in id order, which is creation order (UUIDv7).
    pub async fn transfers(&self, filter: &TransferFilter) -> Result<TransferPage, StoreError> {
        let client = self.client().await?;
        let mut clauses: Vec<String> = vec!["TRUE".to_string()];
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        // Binds `value` as the next parameter and adds `clause` (if any) with every `?`
        // naming it; answers the parameter's number.
        let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            if !clause.is_empty() {
                clauses.push(clause.replace('?', &format!("${}", params.len())));
            }
            params.len()
        };
        if let Some(id) = filter.transaction_id {
            push("t.id = ?", Box::new(id.as_uuid()));
        }
        if let Some(bank) = &filter.sender {
            push("t.sender_bank = ?", Box::new(bank.as_str().to_string()));
        }
        if let Some(bank) = &filter.receiver {
            push("t.receiver_bank = ?", Box::new(bank.as_str().to_string()));
        }
        if let Some(bank) = &filter.bank {
            push(
                "(t.sender_bank = ? OR t.receiver_bank = ?)",
                Box::new(bank.as_str().to_string()),
            );
        }
        if let Some(window) = filter.window_id {
            push("t.window_id = ?", Box::new(window.get()));
        }
        if let Some(after) = filter.after {
            push("t.id > ?", Box::new(after.as_uuid()));
        }
        let limit = filter.limit;
        let limit_param = push("", Box::new(limit + 1));
        // The lifecycle status is the transfer's decision and its window's state.
        if let Some(status) = &filter.status {
            clauses.push(
                match status.as_str() {
                    "rejected" => "t.status = 'rejected'",
                    "netted" => "w.state IN ('netted', 'settlement_failed')",
                    "settled" => "w.state = 'settled'",
                    _ => "t.status = 'accepted' AND w.state IN ('open', 'closing')",
                }
                .to_string(),
            );
        }
        let sql = format!(
            "SELECT {TRANSFER_WITH_WINDOW} WHERE {} ORDER BY t.id LIMIT ${limit_param}",
            clauses.join(" AND ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&sql, &refs).await?;
        let more = rows.len() as i64 > limit;
        let mut transfers = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            transfers.push(transfer_from_row(row)?);
        }
        let next_cursor = if more {
            transfers.last().map(|t| t.id)
        } else {
            None
        };
        Ok(TransferPage {
            transfers,
            next_cursor,
        })
    }

    /// The open window, opening window 1 on an empty database. Safe to call from
    /// several places at once: a concurrent first insert is absorbed by the conflict.
    pub async fn open_window(&self) -> Result<WindowId, StoreError> {
        let client = self.client().await?;
        let find = "SELECT id FROM windows WHERE state = 'open' ORDER BY id DESC LIMIT 1";
        if let Some(row) = client.query_opt(find, &[]).await? {
            let id: i64 = row.get(0);
            return window_id(id);
        }
        client
            .execute(
                "INSERT INTO windows (id, state)
                 SELECT COALESCE(max(id), 0) + 1, 'open' FROM windows
                 ON CONFLICT DO NOTHING",
                &[],
            )
            .await?;
        let row = client.query_one(find, &[]).await?;
        let id: i64 = row.get(0);
        window_id(id)
    }

    /// Banks' committed debits and credits over windows not yet settled: summed from
    /// the transfers of windows not yet netted (found through the BRIN index on
    /// `window_id`) and from the stored positions of netted ones, so that the cost
    /// does not grow with history. One statement: one consistent snapshot.
    pub async fn bank_books(
        &self,
        banks: &[BankCode],
    ) -> Result<std::collections::HashMap<BankCode, BankBooks>, StoreError> {
        let client = self.client().await?;
        let codes: Vec<&str> = banks.iter().map(|b| b.as_str()).collect();
        let rows = client
            .query(
                "WITH live AS (SELECT id FROM windows WHERE state IN ('open', 'closing')),
                      first AS (SELECT coalesce(min(id), 0) AS id FROM live)
                 SELECT sender_bank AS bank, 'debit' AS side, from_currency AS currency,
                        sum(amount) AS total
                   FROM transfers
                  WHERE window_id >= (SELECT id FROM first) AND window_id IN (SELECT id FROM live)
                    AND status = 'accepted' AND sender_bank = ANY($1)
                  GROUP BY 1, 3
                 UNION ALL
                 SELECT receiver_bank, 'credit', to_currency, sum(converted_amount)
                   FROM transfers
                  WHERE window_id >= (SELECT id FROM first) AND window_id IN (SELECT id FROM live)
                    AND status = 'accepted' AND receiver_bank = ANY($1)
                  GROUP BY 1, 3
                 UNION ALL
                 SELECT p.bank, 'debit', p.currency, sum(p.debits)
                   FROM window_positions p JOIN windows w ON w.id = p.window_id
                  WHERE w.state IN ('netted', 'settlement_failed') AND p.bank = ANY($1)
                  GROUP BY 1, 3
                 UNION ALL
                 SELECT p.bank, 'credit', p.currency, sum(p.credits)
                   FROM window_positions p JOIN windows w ON w.id = p.window_id
                  WHERE w.state IN ('netted', 'settlement_failed') AND p.bank = ANY($1)
                  GROUP BY 1, 3",
                &[&codes],
            )
            .await?;
        let mut books: std::collections::HashMap<BankCode, BankBooks> = banks
            .iter()
            .map(|b| (b.clone(), BankBooks::default()))
            .collect();
        for row in rows {
            let bank = bank_code(row.get("bank"))?;
            let side: &str = row.get("side");
            let cur = currency(row.get("currency"))?;
            let total: Decimal = row.get("total");
            let entry = books.entry(bank).or_default();
            let map = if side == "debit" {
                &mut entry.debits
            } else {
                &mut entry.credits
            };
            *map.entry(cur).or_default() += total;
        }
        Ok(books)
    }

    pub async fn banks(&self) -> Result<Vec<BankRecord>, StoreError> {
        self.banks_where(None).await
    }

    pub async fn bank(&self, code: &BankCode) -> Result<BankRecord, StoreError> {
        self.banks_where(Some(code))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn banks_where(&self, code: Option<&BankCode>) -> Result<Vec<BankRecord>, StoreError> {
        let client = self.client().await?;
        let code = code.map(|c| c.as_str().to_string());
        let rows = client
            .query(
                "SELECT b.code, b.name, b.country, b.status, b.created_at, b.updated_at,
                        l.currency, l.net_debit_cap
                   FROM banks b LEFT JOIN bank_limits l ON l.bank = b.code
                  WHERE $1::text IS NULL OR b.code = $1
                  ORDER BY b.code, l.currency",
                &[&code],
            )
            .await?;
        let mut banks: Vec<BankRecord> = Vec::new();
        for row in rows {
            let code = bank_code(row.get("code"))?;
            if banks.last().map(|b| &b.code) != Some(&code) {
                let status: &str = row.get("status");
                banks.push(BankRecord {
                    code,
                    name: row.get("name"),
                    country: row.get("country"),
                    status: BankStatus::parse(status).map_err(|_| corrupt("status", status))?,
                    net_debit_caps: BTreeMap::new(),
                    created_at: row.get("created_at"),
                    updated_at: row.get("updated_at"),
                });
            }
            let cur: Option<&str> = row.get("currency");
            if let (Some(cur), Some(bank)) = (cur, banks.last_mut()) {
                bank.net_debit_caps
                    .insert(currency(cur)?, row.get("net_debit_cap"));
            }
        }
        Ok(banks)
    }

    pub async fn insert_bank(&self, bank: &BankRecord) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO banks (code, name, country, status) VALUES ($1, $2, $3, $4)",
            &[
                &bank.code.as_str(),
                &bank.name,
                &bank.country,
                &bank.status.as_str(),
            ],
        )
        .await?;
        for (cur, cap) in &bank.net_debit_caps {
            tx.execute(
                "INSERT INTO bank_limits (bank, currency, net_debit_cap) VALUES ($1, $2, $3)",
                &[&bank.code.as_str(), &cur.as_str(), cap],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_bank(
        &self,
        code: &BankCode,
        patch: &BankPatch,
    ) -> Result<BankRecord, StoreError> {
        {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let status = patch.status.map(|s| s.as_str());
            let updated = tx
                .execute(
                    "UPDATE banks SET name = COALESCE($2, name), status = COALESCE($3, status),
                            updated_at = now()
                      WHERE code = $1",
                    &[&code.as_str(), &patch.name, &status],
                )
                .await?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            for (cur, cap) in &patch.net_debit_caps {
                tx.execute(
                    "INSERT INTO bank_limits (bank, currency, net_debit_cap) VALUES ($1, $2, $3)
                     ON CONFLICT (bank, currency) DO UPDATE SET net_debit_cap = EXCLUDED.net_debit_cap",
                    &[&code.as_str(), &cur.as_str(), cap],
                )
                .await?;
            }
            tx.commit().await?;
        }
        self.bank(code).await
    }

    pub async fn corridors(&self) -> Result<Vec<CorridorRecord>, StoreError> {
        self.corridors_where(None).await
    }

    pub async fn corridor(&self, id: CorridorId) -> Result<CorridorRecord, StoreError> {
        self.corridors_where(Some(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn corridors_where(
        &self,
        id: Option<CorridorId>,
    ) -> Result<Vec<CorridorRecord>, StoreError> {
        let client = self.client().await?;
        let from = id.map(|i| i.from.as_str().to_string());
        let to = id.map(|i| i.to.as_str().to_string());
        let rows = client
            .query(
                "SELECT from_currency, to_currency, fx_rate, status, amount_max, created_at, updated_at
                   FROM corridors
                  WHERE ($1::text IS NULL OR from_currency = $1) AND ($2::text IS NULL OR to_currency = $2)
                  ORDER BY from_currency, to_currency",
                &[&from, &to],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let status: &str = row.get("status");
                Ok(CorridorRecord {
                    id: CorridorId::new(
                        currency(row.get("from_currency"))?,
                        currency(row.get("to_currency"))?,
                    ),
                    fx_rate: FxRate::from_stored(row.get("fx_rate")),
                    status: CorridorStatus::parse(status).map_err(|_| corrupt("status", status))?,
                    amount_max: row.get("amount_max"),
                    created_at: row.get("created_at"),
                    updated_at: row.get("updated_at"),
                })
            })
            .collect()
    }

    pub async fn insert_corridor(&self, corridor: &CorridorRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO corridors (from_currency, to_currency, fx_rate, status, amount_max)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &corridor.id.from.as_str(),
                    &corridor.id.to.as_str(),
                    &corridor.fx_rate.value(),
                    &corridor.status.as_str(),
                    &corridor.amount_max,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn update_corridor(
        &self,
        id: CorridorId,
        patch: &CorridorPatch,
    ) -> Result<CorridorRecord, StoreError> {
        let client = self.client().await?;
        let rate = patch.fx_rate.map(|r| r.value());
        let status = patch.status.map(|s| s.as_str());
        let updated = client
            .execute(
                "UPDATE corridors SET fx_rate = COALESCE($3, fx_rate),
                        status = COALESCE($4, status), amount_max = COALESCE($5, amount_max),
                        updated_at = now()
                  WHERE from_currency = $1 AND to_currency = $2",
                &[
                    &id.from.as_str(),
                    &id.to.as_str(),
                    &rate,
                    &status,
                    &patch.amount_max,
                ],
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        drop(client);
        self.corridor(id).await
    }

    /// Loads the reference corridor (India ⇄ UAE) into an empty database.
    pub async fn seed_reference_data(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM banks", &[])
            .await?
            .get(0);
        if count > 0 {
            return Ok(false);
        }
        client
            .batch_execute(include_str!("../../sql/reference_corridor.sql"))
            .await?;
        Ok(true)
    }
}
