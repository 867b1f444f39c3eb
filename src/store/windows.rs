//! Clearing windows: the cut-off, the sums a netting starts from, the stored result.

use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::audit_log;
use super::decode::{bank_code as bank, corrupt, currency, window_id};
use super::{Store, StoreError};
use crate::domain::netting::{CurrencySummary, Netting, Position, WindowSums};
use crate::domain::{
    AuditAction, BankCode, CorridorId, InstructionRecord, InstructionState, Origin, QueueRelease,
    WindowDetail, WindowId, WindowRecord, WindowState,
};
use crate::views;

pub(super) fn window_from_row(row: &Row) -> Result<WindowRecord, StoreError> {
    let state: &str = row.get("state");
    Ok(WindowRecord {
        id: window_id(row.get("id"))?,
        state: WindowState::parse(state).ok_or_else(|| corrupt("window state", state))?,
        opened_at: row.get("opened_at"),
        closed_at: row.get("closed_at"),
        netted_at: row.get("netted_at"),
        settled_at: row.get("settled_at"),
        transfer_count: row.get("transfer_count"),
    })
}

pub(super) const WINDOW_COLUMNS: &str =
    "id, state, opened_at, closed_at, netted_at, settled_at, transfer_count";

impl Store {
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

    /// Cut-off in the store: `window` goes from open to closing and the next window
    /// opens, in one transaction with the close's audit entry. Returns the next window.
    pub async fn close_window(
        &self,
        origin: &Origin,
        window: WindowId,
    ) -> Result<WindowId, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let before = tx
            .query_opt(
                &format!(
                    "SELECT {WINDOW_COLUMNS} FROM windows WHERE id = $1 AND state = 'open'
                        FOR UPDATE"
                ),
                &[&window.get()],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let after = tx
            .query_one(
                &format!(
                    "UPDATE windows SET state = 'closing', closed_at = now()
                      WHERE id = $1 RETURNING {WINDOW_COLUMNS}"
                ),
                &[&window.get()],
            )
            .await?;
        let next = window.get() + 1;
        tx.execute(
            "INSERT INTO windows (id, state) VALUES ($1, 'open')",
            &[&next],
        )
        .await?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::WindowClosed,
            &window.get().to_string(),
            Some(views::value(views::window_record(&window_from_row(
                &before,
            )?))),
            Some(views::value(views::window_record(&window_from_row(
                &after,
            )?))),
        )
        .await?;
        tx.commit().await?;
        window_id(next)
    }

    /// The windows closed in `[from, to)`, oldest first, at most `limit` of them.
    pub async fn windows_closed_between(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<WindowId>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id FROM windows WHERE closed_at >= $1 AND closed_at < $2
                  ORDER BY id LIMIT $3",
                &[&from, &to, &limit],
            )
            .await?
            .iter()
            .map(|r| window_id(r.get(0)))
            .collect()
    }

    /// The state of `window`, if it exists.
    pub async fn window_state(&self, window: WindowId) -> Result<Option<WindowState>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT state FROM windows WHERE id = $1", &[&window.get()])
            .await?;
        row.map(|r| {
            let state: &str = r.get(0);
            WindowState::parse(state).ok_or_else(|| {
                StoreError::Corrupt(format!("window {window} is in state {state:?}"))
            })
        })
        .transpose()
    }

    pub async fn windows_in_state(&self, state: WindowState) -> Result<Vec<WindowId>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id FROM windows WHERE state = $1 ORDER BY id",
                &[&state.as_str()],
            )
            .await?
            .iter()
            .map(|r| window_id(r.get(0)))
            .collect()
    }

    /// The window's legs summed per bank and currency and per corridor: its running
    /// sums (sql/0005), a few rows per slot, whatever the number of its transfers. The
    /// two reads go out together on one connection (pipelined): one round trip.
    pub async fn window_sums(&self, window: WindowId) -> Result<WindowSums<BankCode>, StoreError> {
        let client = self.client().await?;
        let w = window.get();
        let (banks, corridors) = futures_util::future::join(
            client.query(
                "SELECT bank, currency, sum(debits) AS debits, sum(credits) AS credits,
                        sum(debit_count)::int8 AS debit_count,
                        sum(credit_count)::int8 AS credit_count
                   FROM window_bank_legs WHERE window_id = $1
                  GROUP BY bank, currency",
                &[&w],
            ),
            client.query(
                "SELECT from_currency, to_currency, sum(source_amount) AS source,
                        sum(destination_amount) AS destination
                   FROM window_corridor_legs WHERE window_id = $1
                  GROUP BY from_currency, to_currency HAVING sum(transfer_count) > 0",
                &[&w],
            ),
        )
        .await;
        let mut sums = WindowSums::default();
        for row in banks? {
            let key = (bank(row.get("bank"))?, currency(row.get("currency"))?);
            let debit_count: i64 = row.get("debit_count");
            // A side with no leg stays absent, as when summing the transfers one by one.
            if debit_count > 0 {
                sums.debits.insert(key.clone(), row.get("debits"));
                sums.transfer_count += debit_count as u64;
            }
            if row.get::<_, i64>("credit_count") > 0 {
                sums.credits.insert(key, row.get("credits"));
            }
        }
        for row in corridors? {
            let id = CorridorId::new(
                currency(row.get("from_currency"))?,
                currency(row.get("to_currency"))?,
            );
            sums.corridors
                .insert(id, (row.get("source"), row.get("destination")));
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
        // The queue depth beside the window's figures (sql/0010): what is queued now,
        // just after the cut-off, through the partial index on queued rows.
        tx.execute(
            "INSERT INTO window_queue_left (window_id, currency, count, value)
             SELECT $1, from_currency, count(*), sum(amount) FROM transfers
              WHERE status = 'queued' GROUP BY from_currency",
            &[&w],
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
            .map(|i| i.payer.as_str())
            .collect();
        let payees: Vec<&str> = netting
            .instructions
            .iter()
            .map(|i| i.payee.as_str())
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
                payer: i.payer.clone(),
                payee: i.payee.clone(),
                amount: i.amount,
                state: InstructionState::Pending,
                created_at: now,
                updated_at: now,
            })
            .collect();
        Ok(Some((record, instructions)))
    }

    /// A window with its stored result and its queue figures (released into it, and
    /// left queued when it was netted). The five reads go out
    /// together on one connection (pipelined), so they cost one round trip; the queue
    /// figures read only transfers that were ever queued (a partial index).
    pub async fn window(&self, window: WindowId) -> Result<WindowDetail, StoreError> {
        let client = self.client().await?;
        let w = window.get();
        let record_sql = format!("SELECT {WINDOW_COLUMNS} FROM windows WHERE id = $1");
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&w];
        let queue = client.query(
            "WITH released AS (
                 SELECT from_currency AS currency, count(*) AS n, sum(amount) AS value,
                        (avg(extract(epoch FROM status_at - created_at)) * 1000)::int8 AS wait_mean_ms,
                        (max(extract(epoch FROM status_at - created_at)) * 1000)::int8 AS wait_max_ms
                   FROM transfers WHERE window_id = $1 AND queued_in IS NOT NULL
                  GROUP BY from_currency),
             left_queued AS (SELECT currency, count, value FROM window_queue_left
                              WHERE window_id = $1)
             SELECT coalesce(r.currency, l.currency) AS currency, coalesce(r.n, 0) AS n,
                    coalesce(r.value, 0) AS value, coalesce(r.wait_mean_ms, 0) AS wait_mean_ms,
                    coalesce(r.wait_max_ms, 0) AS wait_max_ms,
                    coalesce(l.count, 0) AS left_count, coalesce(l.value, 0) AS left_value
               FROM released r FULL JOIN left_queued l ON l.currency = r.currency
              ORDER BY 1",
            &params,
        );
        let ((record, positions, currencies, corridors), queue) = futures_util::future::join(
            futures_util::future::join4(
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
            ),
            queue,
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
        let queue = queue?
            .iter()
            .map(|r| {
                Ok(QueueRelease {
                    currency: currency(r.get("currency"))?,
                    count: r.get("n"),
                    value: r.get("value"),
                    wait_mean_ms: r.get("wait_mean_ms"),
                    wait_max_ms: r.get("wait_max_ms"),
                    left_count: r.get("left_count"),
                    left_value: r.get("left_value"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(WindowDetail {
            record,
            positions,
            currencies,
            corridors,
            queue,
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

    /// Accepted transfers stamped with `window` so far, from its running sums.
    pub async fn window_transfer_count(&self, window: WindowId) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT coalesce(sum(debit_count), 0)::int8 FROM window_bank_legs
                  WHERE window_id = $1",
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
}
