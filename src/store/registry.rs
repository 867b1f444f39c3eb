//! Banks, their limits and corridors: the registry the operator keeps.

use std::collections::BTreeMap;

use super::decode::{bank_code, corrupt, currency};
use super::{Store, StoreError};
use crate::domain::{
    BankCode, BankPatch, BankRecord, BankStatus, CorridorId, CorridorPatch, CorridorRecord,
    CorridorStatus, FxRate, NewBank, NewCorridor,
};

impl Store {
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

    /// Registers a bank with its caps; `StoreError::Duplicate` if the code is taken.
    pub async fn insert_bank(&self, bank: &NewBank) -> Result<BankRecord, StoreError> {
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
        drop(client);
        self.bank(&bank.code).await
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

    /// Registers a corridor; `StoreError::Duplicate` if it exists.
    pub async fn insert_corridor(
        &self,
        corridor: &NewCorridor,
    ) -> Result<CorridorRecord, StoreError> {
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
        drop(client);
        self.corridor(corridor.id).await
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
