//! Banks, their limits and corridors: the registry the operator keeps.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use super::audit_log;
use super::decode::{bank_code, corrupt, currency};
use super::{Store, StoreError};
use crate::domain::{
    AuditAction, BankCode, BankPatch, BankRecord, BankStatus, Bic, CorridorId, CorridorPatch,
    CorridorRecord, CorridorStatus, FxRate, NewBank, NewCorridor, Origin,
};
use crate::views;

/// What the reference data seeded at first start is recorded as coming from.
const FIRST_START: Origin = Origin::Engine("first start");

/// One bank, read through `client` (a transaction's, to read what it changed).
async fn bank_in(client: &impl GenericClient, code: &BankCode) -> Result<BankRecord, StoreError> {
    banks_where(client, Some(code))
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

async fn banks_where(
    client: &impl GenericClient,
    code: Option<&BankCode>,
) -> Result<Vec<BankRecord>, StoreError> {
    let code = code.map(|c| c.as_str().to_string());
    let rows = client
        .query(
            "SELECT b.code, b.name, b.country, b.status, b.bic, b.created_at, b.updated_at,
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
                bic: match row.get::<_, Option<&str>>("bic") {
                    Some(text) => Some(Bic::parse(text).map_err(|_| corrupt("bic", text))?),
                    None => None,
                },
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

impl Store {
    pub async fn banks(&self) -> Result<Vec<BankRecord>, StoreError> {
        banks_where(&self.client().await?, None).await
    }

    pub async fn bank(&self, code: &BankCode) -> Result<BankRecord, StoreError> {
        bank_in(&self.client().await?, code).await
    }

    /// Registers a bank with its caps; `StoreError::Duplicate` if the code is taken.
    pub async fn insert_bank(
        &self,
        origin: &Origin,
        bank: &NewBank,
    ) -> Result<BankRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO banks (code, name, country, status, bic) VALUES ($1, $2, $3, $4, $5)",
            &[
                &bank.code.as_str(),
                &bank.name,
                &bank.country,
                &bank.status.as_str(),
                &bank.bic.as_ref().map(Bic::as_str),
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
        let record = bank_in(&tx, &bank.code).await?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::BankCreated,
            record.code.as_str(),
            None,
            Some(views::value(views::bank(&record, true))),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Changes a bank's name, status or caps, recording it as it was and as it is.
    pub async fn update_bank(
        &self,
        origin: &Origin,
        code: &BankCode,
        patch: &BankPatch,
    ) -> Result<BankRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row lock orders concurrent changes, so `before` is the record this
        // change starts from.
        tx.query_opt(
            "SELECT 1 FROM banks WHERE code = $1 FOR UPDATE",
            &[&code.as_str()],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let before = bank_in(&tx, code).await?;
        let status = patch.status.map(|s| s.as_str());
        tx.execute(
            "UPDATE banks SET name = COALESCE($2, name), status = COALESCE($3, status),
                    bic = COALESCE($4, bic), updated_at = now()
              WHERE code = $1",
            &[
                &code.as_str(),
                &patch.name,
                &status,
                &patch.bic.as_ref().map(Bic::as_str),
            ],
        )
        .await?;
        for (cur, cap) in &patch.net_debit_caps {
            tx.execute(
                "INSERT INTO bank_limits (bank, currency, net_debit_cap) VALUES ($1, $2, $3)
                 ON CONFLICT (bank, currency) DO UPDATE SET net_debit_cap = EXCLUDED.net_debit_cap",
                &[&code.as_str(), &cur.as_str(), cap],
            )
            .await?;
        }
        let after = bank_in(&tx, code).await?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::BankChanged,
            code.as_str(),
            Some(views::value(views::bank(&before, true))),
            Some(views::value(views::bank(&after, true))),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn corridors(&self) -> Result<Vec<CorridorRecord>, StoreError> {
        corridors_where(&self.client().await?, None).await
    }

    pub async fn corridor(&self, id: CorridorId) -> Result<CorridorRecord, StoreError> {
        corridor_in(&self.client().await?, id).await
    }

    /// Registers a corridor; `StoreError::Duplicate` if it exists.
    pub async fn insert_corridor(
        &self,
        origin: &Origin,
        corridor: &NewCorridor,
    ) -> Result<CorridorRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO corridors (from_currency, to_currency, fx_rate, status, amount_max,
                                    report_threshold)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &corridor.id.from.as_str(),
                &corridor.id.to.as_str(),
                &corridor.fx_rate.value(),
                &corridor.status.as_str(),
                &corridor.amount_max,
                &corridor.report_threshold,
            ],
        )
        .await?;
        let record = corridor_in(&tx, corridor.id).await?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::CorridorCreated,
            &record.id.to_string(),
            None,
            Some(views::value(views::corridor(&record))),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Changes a corridor's rate, status or maximum, recording it as it was and is.
    pub async fn update_corridor(
        &self,
        origin: &Origin,
        id: CorridorId,
        patch: &CorridorPatch,
    ) -> Result<CorridorRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (from, to) = (id.from.as_str(), id.to.as_str());
        tx.query_opt(
            "SELECT 1 FROM corridors WHERE from_currency = $1 AND to_currency = $2 FOR UPDATE",
            &[&from, &to],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let before = corridor_in(&tx, id).await?;
        let rate = patch.fx_rate.map(|r| r.value());
        let status = patch.status.map(|s| s.as_str());
        tx.execute(
            "UPDATE corridors SET fx_rate = COALESCE($3, fx_rate),
                    status = COALESCE($4, status), amount_max = COALESCE($5, amount_max),
                    report_threshold = COALESCE($6, report_threshold), updated_at = now()
              WHERE from_currency = $1 AND to_currency = $2",
            &[
                &from,
                &to,
                &rate,
                &status,
                &patch.amount_max,
                &patch.report_threshold,
            ],
        )
        .await?;
        let after = corridor_in(&tx, id).await?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::CorridorChanged,
            &id.to_string(),
            Some(views::value(views::corridor(&before))),
            Some(views::value(views::corridor(&after))),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Loads the reference corridor (India ⇄ UAE) into an empty database, with an
    /// audit entry for each bank and corridor it registers (from the engine's first
    /// start), in one transaction.
    pub async fn seed_reference_data(&self) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let count: i64 = tx
            .query_one("SELECT count(*) FROM banks", &[])
            .await?
            .get(0);
        if count > 0 {
            return Ok(false);
        }
        tx.batch_execute(include_str!("../../sql/reference_corridor.sql"))
            .await?;
        for bank in banks_where(&tx, None).await? {
            audit_log::record(
                &tx,
                &FIRST_START,
                AuditAction::BankCreated,
                bank.code.as_str(),
                None,
                Some(views::value(views::bank(&bank, true))),
            )
            .await?;
        }
        for corridor in corridors_where(&tx, None).await? {
            audit_log::record(
                &tx,
                &FIRST_START,
                AuditAction::CorridorCreated,
                &corridor.id.to_string(),
                None,
                Some(views::value(views::corridor(&corridor))),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

async fn corridor_in(
    client: &impl GenericClient,
    id: CorridorId,
) -> Result<CorridorRecord, StoreError> {
    corridors_where(client, Some(id))
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

async fn corridors_where(
    client: &impl GenericClient,
    id: Option<CorridorId>,
) -> Result<Vec<CorridorRecord>, StoreError> {
    let from = id.map(|i| i.from.as_str().to_string());
    let to = id.map(|i| i.to.as_str().to_string());
    let rows = client
        .query(
            "SELECT from_currency, to_currency, fx_rate, status, amount_max, report_threshold,
                    created_at, updated_at
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
                report_threshold: row.get("report_threshold"),
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            })
        })
        .collect()
}
