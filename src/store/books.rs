//! A bank's books as the store holds them: what its actor rebuilds itself from.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::decode::{bank_code, currency};
use super::{Store, StoreError};
use crate::domain::returns::Returned;
use crate::domain::{BankBooks, BankCode, StoredBalance, TransferId};

impl Store {
    /// Banks' committed debits and credits over windows not yet settled: from the
    /// running sums (sql/0005) of windows not yet netted and from the stored positions
    /// of netted ones, so that the cost grows neither with history nor with the number
    /// of transfers in the open window. One statement: one consistent snapshot. A
    /// side counts once its legs summed over the slots do (a cancelled transfer's legs
    /// may be taken off another slot's row than the one that added them). Then
    /// the banks' settlement balances, in a second statement: a balance carries its
    /// version, so the bank actor keeps the newer of it and any funds-in or funds-out
    /// it is told of meanwhile, and no settlement can commit between the two, since
    /// both the snapshot and the release run as barriers of the store writer. Last,
    /// what the banks' returns took of their originals (no batch commits during a
    /// barrier either, so the three reads agree).
    pub async fn bank_books(
        &self,
        banks: &[BankCode],
    ) -> Result<HashMap<BankCode, BankBooks>, StoreError> {
        let client = self.client().await?;
        let codes: Vec<&str> = banks.iter().map(|b| b.as_str()).collect();
        // A side with no leg (a bank that only received in a currency) stays absent.
        let rows = client
            .query(
                "WITH live AS (SELECT id FROM windows WHERE state IN ('open', 'closing'))
                 SELECT bank, 'debit' AS side, currency, sum(debits) AS total
                   FROM window_bank_legs
                  WHERE window_id IN (SELECT id FROM live) AND bank = ANY($1)
                  GROUP BY 1, 3 HAVING sum(debit_count) > 0
                 UNION ALL
                 SELECT bank, 'credit', currency, sum(credits)
                   FROM window_bank_legs
                  WHERE window_id IN (SELECT id FROM live) AND bank = ANY($1)
                  GROUP BY 1, 3 HAVING sum(credit_count) > 0
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
        let mut books: HashMap<BankCode, BankBooks> = banks
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
        let rows = client
            .query(
                "SELECT bank, currency, balance, version FROM settlement_balances
                  WHERE bank = ANY($1)",
                &[&codes],
            )
            .await?;
        for row in rows {
            let bank = bank_code(row.get("bank"))?;
            let cur = currency(row.get("currency"))?;
            let balance = StoredBalance {
                balance: row.get("balance"),
                version: row.get("version"),
            };
            books.entry(bank).or_default().balances.insert(cur, balance);
        }
        // What each bank's returns took of their originals (through the partial index
        // on returns): queued ones count, as they may still be released.
        let rows = client
            .query(
                "SELECT sender_bank, return_of, sum(amount) AS amount,
                        sum(converted_amount) AS converted
                   FROM transfers
                  WHERE return_of IS NOT NULL AND sender_bank = ANY($1)
                    AND status IN ('accepted', 'queued')
                  GROUP BY 1, 2",
                &[&codes],
            )
            .await?;
        for row in rows {
            let bank = bank_code(row.get("sender_bank"))?;
            let returned = Returned {
                amount: row.get("amount"),
                converted: row.get("converted"),
            };
            let original = TransferId::from_uuid(row.get("return_of"));
            books
                .entry(bank)
                .or_default()
                .returned
                .insert(original, returned);
        }
        // What held transfers keep of each bank's exposure (the partial index on held
        // rows).
        let rows = client
            .query(
                "SELECT sender_bank, from_currency, sum(amount) AS held FROM transfers
                  WHERE status = 'held' AND sender_bank = ANY($1) GROUP BY 1, 2",
                &[&codes],
            )
            .await?;
        for row in rows {
            let bank = bank_code(row.get("sender_bank"))?;
            let cur = currency(row.get("from_currency"))?;
            books
                .entry(bank)
                .or_default()
                .held
                .insert(cur, row.get("held"));
        }
        Ok(books)
    }
}
