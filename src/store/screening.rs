//! The screening list (sql/0013).

use super::decode::corrupt;
use super::{Store, StoreError};
use crate::domain::screening::{ScreeningEntry, ScreeningList};

/// The columns of an entry.
pub(super) const ENTRY_COLUMNS: &str = "id, list, name, aliases, countries, reference, created_at";

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
}
