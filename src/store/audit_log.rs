//! The audit log: one entry per change to the registry, the windows, the settlements
//! and the keys, inserted by `record` inside the transaction that makes the change (so
//! a change and its entry commit or vanish together), and read back a page at a time.
//!
//! The `before` and `after` records are rendered here, from the domain records read in
//! that transaction, in the shapes the API shows them (`views`). The store may not
//! import `views` (docs/ARCHITECTURE.md, layers), and JSON passed in from the command
//! layer could not hold a `before` read under the transaction's row lock, nor cover
//! the reference data seeded by the store itself. So the few record shapes are
//! repeated below; tests/audit_log.rs asserts that an entry's `after` equals the API's
//! answer for the same change, so the two cannot drift apart unnoticed.

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Map, Value};
use tokio_postgres::Row;

use super::decode::{bank_code, corrupt};
use super::{Store, StoreError};
use crate::domain::auth::KeyRecord;
use crate::domain::{
    AuditAction, AuditEntry, AuditFilter, BankRecord, CorridorRecord, InstructionRecord, KeyId,
    Origin, OriginKind, Role, WindowRecord,
};

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

// The records as the API shows them (see the module's comment for why they are here).

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn optional_time(t: &Option<DateTime<Utc>>) -> Value {
    json!(t.as_ref().map(timestamp))
}

/// A bank with its caps (`views::bank(b, true)`).
pub(crate) fn bank_json(b: &BankRecord) -> Value {
    let caps: Map<String, Value> = b
        .net_debit_caps
        .iter()
        .map(|(c, cap)| (c.as_str().to_string(), json!(c.format(*cap))))
        .collect();
    json!({
        "code": b.code.as_str(),
        "name": b.name,
        "country": b.country,
        "status": b.status.as_str(),
        "created_at": timestamp(&b.created_at),
        "updated_at": timestamp(&b.updated_at),
        "net_debit_caps": caps,
    })
}

/// `views::corridor`.
pub(crate) fn corridor_json(c: &CorridorRecord) -> Value {
    json!({
        "id": c.id.to_string(),
        "from_currency": c.id.from.as_str(),
        "to_currency": c.id.to.as_str(),
        "fx_rate": c.fx_rate.to_string(),
        "status": c.status.as_str(),
        "amount_max": c.id.from.format(c.amount_max),
        "created_at": timestamp(&c.created_at),
        "updated_at": timestamp(&c.updated_at),
    })
}

/// `views::window_record`.
pub(crate) fn window_json(w: &WindowRecord) -> Value {
    json!({
        "id": w.id.get(),
        "state": w.state.as_str(),
        "opened_at": timestamp(&w.opened_at),
        "closed_at": optional_time(&w.closed_at),
        "netted_at": optional_time(&w.netted_at),
        "settled_at": optional_time(&w.settled_at),
        "transfer_count": w.transfer_count,
    })
}

/// `views::instruction`.
pub(crate) fn instruction_json(i: &InstructionRecord) -> Value {
    json!({
        "id": i.id.to_string(),
        "window_id": i.window_id.get(),
        "currency": i.currency.as_str(),
        "payer": i.payer.as_str(),
        "payee": i.payee.as_str(),
        "amount": i.currency.format(i.amount),
        "state": i.state.as_str(),
        "created_at": timestamp(&i.created_at),
        "updated_at": timestamp(&i.updated_at),
    })
}

/// `views::key`: who a key stands for, never its secret or hash.
pub(crate) fn key_json(k: &KeyRecord) -> Value {
    json!({
        "id": k.principal.key_id.to_string(),
        "role": k.principal.role.as_str(),
        "bank": k.principal.bank.as_ref().map(|b| b.as_str()),
        "label": k.label,
        "created_at": timestamp(&k.created_at),
        "revoked_at": optional_time(&k.revoked_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::SecretHash;
    use crate::domain::{BankCode, Principal};

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
        let text = key_json(&record).to_string();
        assert!(!text.contains("abab"), "{text}");
        let v = key_json(&record);
        let fields: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            fields.len(),
            6,
            "only id, role, bank, label and times: {fields:?}"
        );
        assert_eq!(v["bank"], "ICICI");
    }
}
