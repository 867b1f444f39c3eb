//! The audit log: one entry per change to the registry, the windows, the settlements
//! and the keys, inserted by `record` inside the transaction that makes the change (so
//! a change and its entry commit or vanish together), and read back a page at a time.
//!
//! The `before` and `after` records are rendered by `views` (the shapes the API shows)
//! from the domain records read in that transaction: a `before` read under the
//! change's row lock, and the reference data the store seeds itself, are only
//! available here.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::decode::{bank_code, corrupt};
use super::{Store, StoreError};
use crate::domain::{AuditAction, AuditEntry, AuditFilter, KeyId, Origin, OriginKind, Role};

/// Inserts the audit entry of a change, in `tx`: the transaction making the change.
pub(super) async fn record(
    tx: &impl GenericClient,
    origin: &Origin,
    action: AuditAction,
    subject: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), StoreError> {
    let (key_id, role, bank, request_id, engine_part) = match origin {
        Origin::Api {
            principal,
            request_id,
        } => (
            Some(principal.key_id.as_uuid()),
            Some(principal.role.as_str()),
            principal.bank.as_ref().map(|b| b.as_str()),
            Some(request_id.as_str()).filter(|id| !id.is_empty()),
            None,
        ),
        Origin::CommandLine => (None, None, None, None, None),
        Origin::Engine(part) => (None, None, None, None, Some(*part)),
    };
    let before = before.map(|v| v.to_string());
    let after = after.map(|v| v.to_string());
    tx.execute(
        "INSERT INTO audit_log (origin, engine_part, key_id, role, bank, request_id,
                                action, subject, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10::text::jsonb)",
        &[
            &origin.kind().as_str(),
            &engine_part,
            &key_id,
            &role,
            &bank,
            &request_id,
            &action.as_str(),
            &subject,
            &before,
            &after,
        ],
    )
    .await?;
    Ok(())
}

const ENTRY_COLUMNS: &str = "id, at, origin, engine_part, key_id, role, bank, request_id, \
                             action, subject, before::text AS before, after::text AS after";

fn entry_from_row(row: &Row) -> Result<AuditEntry, StoreError> {
    let origin: &str = row.get("origin");
    let action: &str = row.get("action");
    let role: Option<&str> = row.get("role");
    let bank: Option<&str> = row.get("bank");
    Ok(AuditEntry {
        id: row.get("id"),
        at: row.get("at"),
        origin: OriginKind::parse(origin).ok_or_else(|| corrupt("audit origin", origin))?,
        engine_part: row.get("engine_part"),
        key_id: row
            .get::<_, Option<uuid::Uuid>>("key_id")
            .map(KeyId::from_uuid),
        role: role
            .map(|r| Role::parse(r).ok_or_else(|| corrupt("role", r)))
            .transpose()?,
        bank: bank.map(bank_code).transpose()?,
        request_id: row.get("request_id"),
        action: AuditAction::parse(action).ok_or_else(|| corrupt("audit action", action))?,
        subject: row.get("subject"),
        before: row.get("before"),
        after: row.get("after"),
    })
}

impl Store {
    /// Audit entries matching `filter`, oldest first, after the entry `after_id` when
    /// given. An id is taken when an entry is inserted and becomes visible when its
    /// transaction commits, so an entry committed late may carry an id below one
    /// already read; a page read while changes are committing can therefore miss it.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let action = filter.action.map(|a| a.as_str());
        client
            .query(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log
                      WHERE ($1::text IS NULL OR action = $1)
                        AND ($2::text IS NULL OR subject = $2)
                        AND ($3::int8 IS NULL OR id > $3)
                      ORDER BY id LIMIT $4"
                ),
                &[&action, &filter.subject, &after_id, &limit],
            )
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::{KeyRecord, SecretHash};
    use crate::domain::{BankCode, Principal};
    use crate::views::key as key_json;
    use chrono::Utc;

    #[test]
    fn a_key_is_recorded_without_its_secret_or_hash() {
        let record = KeyRecord {
            principal: Principal {
                key_id: KeyId::from_uuid(uuid::Uuid::from_u128(7)),
                role: Role::Bank,
                bank: Some(BankCode::parse("ICICI").unwrap()),
            },
            secret_hash: SecretHash([0xab; 32]),
            label: Some("ops".into()),
            created_at: Utc::now(),
            revoked_at: None,
        };
        let text = crate::views::text(key_json(&record));
        assert!(!text.contains("abab"), "{text}");
        let v = crate::views::value(key_json(&record));
        let fields: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            fields.len(),
            6,
            "only id, role, bank, label and times: {fields:?}"
        );
        assert_eq!(v["bank"], "ICICI");
    }
}
