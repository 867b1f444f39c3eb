//! A bank's books as the store holds them: what its actor rebuilds itself from.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::decode::{bank_code, currency};
use super::{Store, StoreError};
use crate::domain::{BankBooks, BankCode};

impl Store {
    /// Banks' committed debits and credits over windows not yet settled: summed from
    /// the transfers of windows not yet netted (found through the BRIN index on
    /// `window_id`) and from the stored positions of netted ones, so that the cost
    /// does not grow with history. One statement: one consistent snapshot.
    pub async fn bank_books(
        &self,
        banks: &[BankCode],
    ) -> Result<HashMap<BankCode, BankBooks>, StoreError> {
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
        Ok(books)
    }
}
