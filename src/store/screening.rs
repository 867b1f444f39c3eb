//! The screening list (sql/0013): the entries the engine screens against, and the
//! operator's changes to them, each with its audit entry in the same transaction.

use super::audit_log;
use super::decode::corrupt;
use super::{Store, StoreError};
use crate::domain::screening::{ImportSummary, NewScreeningEntry, ScreeningEntry, ScreeningList};
use crate::domain::{AuditAction, Origin};
use crate::views;

/// The columns of an entry.
pub(super) const ENTRY_COLUMNS: &str = "id, list, name, aliases, countries, reference, created_at";

/// The transaction lock (`pg_advisory_xact_lock`) every change to the list takes, so
/// changes apply one after another: an import that replaces the list deletes every
/// entry committed before it, and no entry added meanwhile survives beside the new
/// list unseen. Changes are the operator's, rare: the wait costs nothing.
const SCREENING_LOCK: i64 = 0x6465_6c74_7261_6e02;

/// The audit log's subject of an import (an entry's is its id).
const IMPORT_SUBJECT: &str = "import";

pub(super) fn entry_from_row(row: &tokio_postgres::Row) -> Result<ScreeningEntry, StoreError> {
    let list: &str = row.get("list");
    Ok(ScreeningEntry {
        id: row.get("id"),
        list: ScreeningList::parse(list).ok_or_else(|| corrupt("screening list", list))?,
        name: row.get("name"),
        aliases: row.get("aliases"),
        countries: row.get("countries"),
        reference: row.get("reference"),
        created_at: row.get("created_at"),
    })
}

/// A list of texts as a JSON array, to pass a row's array through `unnest` (which
/// cannot take an array of arrays of different lengths).
fn json_array(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

impl Store {
    /// The whole list, in id order: what the engine screens against.
    pub async fn screening_entries(&self) -> Result<Vec<ScreeningEntry>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {ENTRY_COLUMNS} FROM screening_entries ORDER BY id"),
                &[],
            )
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// How many entries the list holds and the newest one's id: a change to the list
    /// (an entry added or removed, a list imported) changes one or the other.
    pub async fn screening_mark(&self) -> Result<(i64, i64), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(max(id), 0) FROM screening_entries",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Entries of `list` (every list when `None`) in id order, after the entry
    /// `after_id` when given, at most `limit`.
    pub async fn screening_entries_page(
        &self,
        list: Option<ScreeningList>,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ScreeningEntry>, StoreError> {
        let client = self.client().await?;
        let list = list.map(|l| l.as_str());
        client
            .query(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM screening_entries
                      WHERE ($1::text IS NULL OR list = $1)
                        AND ($2::int8 IS NULL OR id > $2)
                      ORDER BY id LIMIT $3"
                ),
                &[&list, &after_id, &limit],
            )
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// Adds an entry, with its audit entry (`screening_entry_added`, subject its id).
    /// Another entry of the same list with the same reference: `Duplicate`.
    pub async fn add_screening_entry(
        &self,
        origin: &Origin,
        entry: &NewScreeningEntry,
    ) -> Result<ScreeningEntry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCREENING_LOCK])
            .await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO screening_entries (list, name, aliases, countries, reference)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {ENTRY_COLUMNS}"
                ),
                &[
                    &entry.list.as_str(),
                    &entry.name,
                    &entry.aliases,
                    &entry.countries,
                    &entry.reference,
                ],
            )
            .await?;
        let stored = entry_from_row(&row)?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::ScreeningEntryAdded,
            &stored.id.to_string(),
            None,
            Some(views::value(views::screening_entry(&stored))),
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Removes the entry `id`, with its audit entry (`screening_entry_removed`, the
    /// entry as `before`); `NotFound` if there is none.
    pub async fn remove_screening_entry(
        &self,
        origin: &Origin,
        id: i64,
    ) -> Result<ScreeningEntry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCREENING_LOCK])
            .await?;
        let row = tx
            .query_opt(
                &format!("DELETE FROM screening_entries WHERE id = $1 RETURNING {ENTRY_COLUMNS}"),
                &[&id],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let removed = entry_from_row(&row)?;
        audit_log::record(
            &tx,
            origin,
            AuditAction::ScreeningEntryRemoved,
            &id.to_string(),
            Some(views::value(views::screening_entry(&removed))),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Stores `entries` (in their order) in one transaction, after deleting the whole
    /// list when `replace`, with one audit entry for the import
    /// (`screening_list_imported`, subject `import`, `after` the counts and
    /// `replace`). An entry whose list and reference another entry has (one kept, or
    /// another of `entries`) fails the whole import with `Duplicate`: nothing changes.
    pub async fn import_screening_entries(
        &self,
        origin: &Origin,
        entries: &[NewScreeningEntry],
        replace: bool,
    ) -> Result<ImportSummary, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCREENING_LOCK])
            .await?;
        let removed = match replace {
            true => tx.execute("DELETE FROM screening_entries", &[]).await?,
            false => 0,
        };
        let lists: Vec<&str> = entries.iter().map(|e| e.list.as_str()).collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let aliases: Vec<String> = entries.iter().map(|e| json_array(&e.aliases)).collect();
        let countries: Vec<String> = entries.iter().map(|e| json_array(&e.countries)).collect();
        let references: Vec<Option<&str>> =
            entries.iter().map(|e| e.reference.as_deref()).collect();
        let added = tx
            .execute(
                "INSERT INTO screening_entries (list, name, aliases, countries, reference)
                 SELECT l, n,
                        ARRAY(SELECT jsonb_array_elements_text(a::jsonb)),
                        ARRAY(SELECT jsonb_array_elements_text(c::jsonb)),
                        r
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                        WITH ORDINALITY AS e(l, n, a, c, r, i)
                  ORDER BY i",
                &[&lists, &names, &aliases, &countries, &references],
            )
            .await?;
        let summary = ImportSummary { added, removed };
        audit_log::record(
            &tx,
            origin,
            AuditAction::ScreeningListImported,
            IMPORT_SUBJECT,
            None,
            Some(views::value(views::screening_import_record(
                &summary, replace,
            ))),
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_s_texts_pass_as_a_json_array_whatever_they_hold() {
        assert_eq!(json_array(&[]), "[]");
        let texts = ["O'Brien \"Jr\"".to_string(), "a,b;c\\d".to_string()];
        let back: Vec<String> = serde_json::from_str(&json_array(&texts)).unwrap();
        assert_eq!(back, texts);
    }

    #[test]
    fn an_import_is_recorded_with_its_counts_and_whether_it_replaced() {
        let record = views::value(views::screening_import_record(
            &ImportSummary {
                added: 3,
                removed: 2,
            },
            true,
        ));
        assert_eq!(
            record,
            serde_json::json!({"added": 3, "removed": 2, "replace": true})
        );
    }
}
