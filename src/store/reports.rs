//! The report endpoints' reads: a bank's statement of one window (its head, then its
//! transfers page by page) and the summary over a time range. Every sum of money is
//! made here, in SQL over NUMERIC, exactly; Rust adds no amounts up.
//!
//! What each read costs (docs/ARCHITECTURE.md, "Reports"): a statement's head reads a
//! few rows (running sums, stored positions, instructions); a page of its transfers
//! reads the window's transfers through the BRIN index on `window_id`; the summary
//! reads the transfers created in its range through the BRIN index on `created_at`
//! (sql/0006) after checking, within the same snapshot, that the range holds no more
//! than the caller's cap, and the windows netted or settled in it by their btree
//! indexes.

use chrono::{DateTime, Utc};
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use super::decode::{corrupt, currency};
use super::settlements::{instruction_from_row, INSTRUCTION_COLUMNS};
use super::transfers::{transfer_from_row, TRANSFER_WITH_WINDOW};
use super::windows::{window_from_row, WINDOW_COLUMNS};
use super::{Store, StoreError};
use crate::domain::report::{
    Direction, LatencyStats, NettingTotal, RejectionLine, StatementHead, StatementPosition,
    Summary, VolumeLine,
};
use crate::domain::WindowId;
use crate::domain::{BankCode, CorridorId, RejectCode, Transfer, TransferId, TransferStatus};

/// A transfer's lifecycle status from its decision and its window's state, as
/// `Transfer::status` computes it.
const STATUS_OF_TRANSFER: &str = "CASE WHEN t.status <> 'accepted' THEN t.status \
    WHEN w.state IN ('netted', 'settlement_failed') THEN 'netted' \
    WHEN w.state = 'settled' THEN 'settled' ELSE 'accepted' END";

/// The windows a summary's window figures cover: `$3` null for the hub's, else a bank
/// code: only windows in which that bank had a position.
const WINDOW_OF_SCOPE: &str = "($3::text IS NULL OR EXISTS (SELECT 1 FROM window_positions p \
    WHERE p.window_id = w.id AND p.bank = $3))";

/// Count, mean, median, 95th percentile and maximum of `ms`.
const LATENCY_FIGURES: &str = "count(*)::int8 AS n, avg(ms) AS mean, \
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, \
    percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95, max(ms) AS max";

fn latency(row: &tokio_postgres::Row) -> LatencyStats {
    LatencyStats {
        windows: row.get("n"),
        mean_ms: row.get("mean"),
        p50_ms: row.get("p50"),
        p95_ms: row.get("p95"),
        max_ms: row.get("max"),
    }
}

impl Store {
    /// The head of `bank`'s statement of `window`: the window, the bank's positions per
    /// currency and its instructions. `NotFound` if the window does not exist. The four
    /// reads go out together on one connection (pipelined): one round trip.
    pub async fn statement_head(
        &self,
        window: WindowId,
        bank: &BankCode,
    ) -> Result<StatementHead, StoreError> {
        let client = self.client().await?;
        let (w, b) = (window.get(), bank.as_str());
        let record_sql = format!("SELECT {WINDOW_COLUMNS} FROM windows WHERE id = $1");
        let instructions_sql = format!(
            "SELECT {INSTRUCTION_COLUMNS} FROM settlement_instructions
              WHERE window_id = $1 AND (payer = $2 OR payee = $2) ORDER BY currency, id"
        );
        let (record, legs, netted, instructions) = futures_util::future::join4(
            client.query_opt(&record_sql, &[&w]),
            // The running sums (sql/0005), kept for every window, netted or not.
            client.query(
                "SELECT currency, sum(debits) AS debits, sum(credits) AS credits,
                        sum(credits) - sum(debits) AS position,
                        sum(debit_count)::int8 AS sent, sum(credit_count)::int8 AS received
                   FROM window_bank_legs WHERE window_id = $1 AND bank = $2
                  GROUP BY currency ORDER BY currency",
                &[&w, &b],
            ),
            // The positions the netting stored (none before it).
            client.query(
                "SELECT currency, debits, credits, position FROM window_positions
                  WHERE window_id = $1 AND bank = $2 ORDER BY currency",
                &[&w, &b],
            ),
            client.query(&instructions_sql, &[&w, &b]),
        )
        .await;
        let record = window_from_row(&record?.ok_or(StoreError::NotFound)?)?;
        let legs = legs?
            .iter()
            .map(|r| {
                Ok(StatementPosition {
                    currency: currency(r.get("currency"))?,
                    debits: r.get("debits"),
                    credits: r.get("credits"),
                    position: r.get("position"),
                    transfers_sent: r.get("sent"),
                    transfers_received: r.get("received"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let positions = if record.state.is_live() {
            legs
        } else {
            // As the netting recorded them, with the number of legs from the sums.
            netted?
                .iter()
                .map(|r| {
                    let currency = currency(r.get("currency"))?;
                    let counted = legs.iter().find(|l| l.currency == currency);
                    Ok(StatementPosition {
                        currency,
                        debits: r.get("debits"),
                        credits: r.get("credits"),
                        position: r.get("position"),
                        transfers_sent: counted.map_or(0, |l| l.transfers_sent),
                        transfers_received: counted.map_or(0, |l| l.transfers_received),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        let instructions = instructions?
            .iter()
            .map(instruction_from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(StatementHead {
            window: record,
            bank: bank.clone(),
            positions,
            instructions,
        })
    }

    /// Up to `limit` of the accepted transfers `bank` sent or received in `window`, in
    /// id (creation) order, after `after` and before `before` (both exclusive).
    ///
    /// The inner query is planned without the LIMIT (`OFFSET 0`): with it, Postgres may
    /// walk the primary key from the first transfer ever stored, hoping to meet the
    /// window's rows soon; without it, it takes the window's block ranges from the
    /// BRIN index on `window_id` and sorts the bank's rows of the window.
    pub async fn statement_transfers(
        &self,
        window: WindowId,
        bank: &BankCode,
        after: Option<TransferId>,
        before: Option<TransferId>,
        limit: i64,
    ) -> Result<Vec<Transfer>, StoreError> {
        let client = self.client().await?;
        let after = after.map_or(Uuid::nil(), |t| t.as_uuid());
        let before = before.map_or(Uuid::max(), |t| t.as_uuid());
        let sql = format!(
            "SELECT * FROM (SELECT {TRANSFER_WITH_WINDOW}
                WHERE t.window_id = $1 AND (t.sender_bank = $2 OR t.receiver_bank = $2)
                  AND t.id > $3 AND t.id < $4 OFFSET 0) s
              ORDER BY id LIMIT $5"
        );
        client
            .query(
                &sql,
                &[&window.get(), &bank.as_str(), &after, &before, &limit],
            )
            .await?
            .iter()
            .map(transfer_from_row)
            .collect()
    }

    /// The summary over `[from, to)`: the hub's figures, or with `bank` that bank's
    /// own. `None` — nothing summed — when more than `transfers_max` transfers (of any
    /// bank: that is what the read would scan) were created in the range. All reads see
    /// one snapshot (a read-only repeatable-read transaction).
    pub async fn summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bank: Option<&BankCode>,
        transfers_max: i64,
    ) -> Result<Option<Summary>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // Counts at most one row past the cap, so the check itself is bounded.
        let in_range: i64 = tx
            .query_one(
                "SELECT count(*)::int8 FROM (SELECT 1 FROM transfers
                  WHERE created_at >= $1 AND created_at < $2 LIMIT $3) s",
                &[&from, &to, &(transfers_max + 1)],
            )
            .await?
            .get(0);
        if in_range > transfers_max {
            return Ok(None);
        }
        let b = bank.map(|b| b.as_str());
        // One scan of the range for both groupings: by corridor, status and direction,
        // and by rejection code and currency.
        let lines = format!(
            "SELECT status, from_currency, to_currency, direction, reject_code,
                    GROUPING(reject_code) = 1 AS volume_line,
                    count(*)::int8 AS count, sum(amount) AS source_amount,
                    sum(converted_amount) AS destination_amount
               FROM (SELECT {STATUS_OF_TRANSFER} AS status, t.from_currency, t.to_currency,
                            CASE WHEN t.sender_bank = $3 THEN 'sent'
                                 WHEN t.receiver_bank = $3 THEN 'received' END AS direction,
                            t.reject_code, t.amount, t.converted_amount
                       FROM transfers t LEFT JOIN windows w ON w.id = t.window_id
                      WHERE t.created_at >= $1 AND t.created_at < $2
                        AND ($3::text IS NULL OR t.sender_bank = $3 OR t.receiver_bank = $3)) s
              GROUP BY GROUPING SETS ((status, from_currency, to_currency, direction),
                                      (reject_code, from_currency))
             HAVING GROUPING(reject_code) = 1 OR reject_code IS NOT NULL
              ORDER BY from_currency, to_currency, status, direction, reject_code"
        );
        let netting = "SELECT currency, sum(gross) AS gross, sum(net) AS net
               FROM (SELECT c.currency, c.gross, c.net
                       FROM windows w JOIN window_currencies c ON c.window_id = w.id
                      WHERE $3::text IS NULL AND w.netted_at >= $1 AND w.netted_at < $2
                     UNION ALL
                     SELECT p.currency, p.debits, greatest(p.debits - p.credits, 0)
                       FROM windows w JOIN window_positions p ON p.window_id = w.id
                      WHERE p.bank = $3 AND w.netted_at >= $1 AND w.netted_at < $2) n
              GROUP BY currency ORDER BY currency";
        let close = format!(
            "SELECT {LATENCY_FIGURES} FROM (
                SELECT extract(epoch FROM w.netted_at - w.closed_at)::float8 * 1000 AS ms
                  FROM windows w
                 WHERE w.netted_at >= $1 AND w.netted_at < $2 AND w.closed_at IS NOT NULL
                   AND {WINDOW_OF_SCOPE}) s"
        );
        let settlement = format!(
            "SELECT {LATENCY_FIGURES} FROM (
                SELECT extract(epoch FROM w.settled_at - w.netted_at)::float8 * 1000 AS ms
                  FROM windows w
                 WHERE w.settled_at >= $1 AND w.settled_at < $2 AND w.netted_at IS NOT NULL
                   AND {WINDOW_OF_SCOPE}) s"
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&from, &to, &b];
        let (lines, netting, close, settlement) = futures_util::future::join4(
            tx.query(&lines, &params),
            tx.query(netting, &params),
            tx.query_one(&close, &params),
            tx.query_one(&settlement, &params),
        )
        .await;
        let (close, settlement) = (close?, settlement?);
        tx.commit().await?;
        let mut volumes = Vec::new();
        let mut rejections = Vec::new();
        for row in lines? {
            let from_currency = currency(row.get("from_currency"))?;
            if row.get("volume_line") {
                let status: &str = row.get("status");
                let direction: Option<&str> = row.get("direction");
                volumes.push(VolumeLine {
                    corridor: CorridorId::new(from_currency, currency(row.get("to_currency"))?),
                    status: TransferStatus::parse(status)
                        .ok_or_else(|| corrupt("transfer status", status))?,
                    direction: direction
                        .map(|d| Direction::parse(d).ok_or_else(|| corrupt("direction", d)))
                        .transpose()?,
                    count: row.get("count"),
                    source_amount: row.get("source_amount"),
                    destination_amount: match status {
                        "rejected" => None,
                        _ => row.get("destination_amount"),
                    },
                });
            } else {
                let code: &str = row.get("reject_code");
                rejections.push(RejectionLine {
                    code: RejectCode::from_code(code).ok_or_else(|| corrupt("reject", code))?,
                    currency: from_currency,
                    count: row.get("count"),
                    amount: row.get("source_amount"),
                });
            }
        }
        let netting = netting?
            .iter()
            .map(|r| {
                Ok(NettingTotal {
                    currency: currency(r.get("currency"))?,
                    gross: r.get("gross"),
                    net: r.get("net"),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let close_latency = latency(&close);
        Ok(Some(Summary {
            from,
            to,
            bank: bank.cloned(),
            volumes,
            rejections,
            windows_netted: close_latency.windows,
            netting,
            close_latency,
            settlement_latency: latency(&settlement),
        }))
    }
}

/// A transfer of the compliance report, with the screening entry it matched (when it
/// still exists: an entry removed from the list leaves its id on the transfer).
#[derive(Clone, Debug)]
pub struct ComplianceLine {
    pub transfer: Transfer,
    pub entry_list: Option<String>,
    pub entry_name: Option<String>,
}

impl Store {
    /// The transfers created in `[from, to)` that screening matched or that reached
    /// their corridor's reporting threshold, in creation order, at most `max + 1` of
    /// them (through the partial indexes on matched and on flagged transfers).
    pub async fn compliance_lines(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: i64,
    ) -> Result<Vec<ComplianceLine>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT * FROM (
               SELECT {TRANSFER_WITH_WINDOW}
                 WHERE t.screening_entry IS NOT NULL AND t.created_at >= $1 AND t.created_at < $2
               UNION
               SELECT {TRANSFER_WITH_WINDOW}
                 WHERE t.flagged AND t.created_at >= $1 AND t.created_at < $2) s
             LEFT JOIN (SELECT id AS entry_id, list AS entry_list, name AS entry_name
                          FROM screening_entries) e ON e.entry_id = s.screening_entry
             ORDER BY s.created_at, s.id LIMIT $3"
        );
        client
            .query(&sql, &[&from, &to, &(max + 1)])
            .await?
            .iter()
            .map(|row| {
                Ok(ComplianceLine {
                    transfer: transfer_from_row(row)?,
                    entry_list: row.get("entry_list"),
                    entry_name: row.get("entry_name"),
                })
            })
            .collect()
    }
}
