//! API keys: their stored form (role, bank, the hash of the secret) and revocation.

use tokio_postgres::Row;

use super::audit_log;
use super::decode::{bank_code, corrupt};
use super::{Store, StoreError};
use crate::domain::auth::{KeyRecord, NewKey, SecretHash};
use crate::domain::{AuditAction, KeyId, Origin, Principal, Role};
use crate::views;

const KEY_COLUMNS: &str = "id, role, bank, secret_sha256, label, created_at, revoked_at";

fn key_from_row(row: &Row) -> Result<KeyRecord, StoreError> {
    let role_text: &str = row.get("role");
    let role = Role::parse(role_text).ok_or_else(|| corrupt("role", role_text))?;
    let bank: Option<&str> = row.get("bank");
    let hash: &[u8] = row.get("secret_sha256");
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| corrupt("key hash length", &hash.len().to_string()))?;
    Ok(KeyRecord {
        principal: Principal {
            key_id: KeyId::from_uuid(row.get("id")),
            role,
            bank: bank.map(bank_code).transpose()?,
        },
        secret_hash: SecretHash(hash),
        label: row.get("label"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

impl Store {
    /// Stores a new key for `principal` (whose `key_id` is the key's id), with its
    /// audit entry (which never holds the secret or its hash).
    pub async fn insert_key(
        &self,
        origin: &Origin,
        key: &NewKey,
        principal: &Principal,
        label: Option<&str>,
    ) -> Result<KeyRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO api_keys (id, role, bank, secret_sha256, label)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {KEY_COLUMNS}"
                ),
                &[
                    &key.id.as_uuid(),
                    &principal.role.as_str(),
                    &principal.bank.as_ref().map(|b| b.as_str()),
                    &key.secret_hash.0.as_slice(),
                    &label,
                ],
            )
            .await?;
        let record = key_from_row(&row)?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::KeyCreated,
            &key.id.to_string(),
            None,
            Some(views::value(views::key(&record))),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"),
                &[],
            )
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    /// Revokes a key, once: revoking it again keeps the first time and records
    /// nothing new.
    pub async fn revoke_key(&self, origin: &Origin, id: KeyId) -> Result<KeyRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE"),
                &[&id.as_uuid()],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = key_from_row(&row)?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING {KEY_COLUMNS}"
                ),
                &[&id.as_uuid()],
            )
            .await?;
        let after = key_from_row(&row)?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::KeyRevoked,
            &id.to_string(),
            Some(views::value(views::key(&before))),
            Some(views::value(views::key(&after))),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}
