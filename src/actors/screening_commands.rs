//! The operator's commands on the screening list: add an entry, remove one, import a
//! list. Each stores the change with its audit entry (one transaction), then rebuilds
//! the engine's screening index from the store (`Engine::reload_screening`), so the
//! next submission is screened against the list as stored.

use super::commands::{naming, CommandError};
use super::Engine;
use crate::domain::screening::{ImportSummary, NewScreeningEntry, ScreeningEntry};
use crate::domain::Origin;
use crate::store::StoreError;

/// How often the list is re-read after a change it could not be re-read for.
const RELOAD_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Adds an entry to the list. Another entry of its list with its reference:
    /// `AlreadyExists`.
    pub async fn add_screening_entry(
        &self,
        origin: &Origin,
        entry: NewScreeningEntry,
    ) -> Result<ScreeningEntry, CommandError> {
        let what = match &entry.reference {
            Some(reference) => format!("a {} entry with reference {reference}", entry.list),
            None => "the screening entry".into(),
        };
        let stored = self
            .store
            .add_screening_entry(origin, &entry)
            .await
            .map_err(naming(what))?;
        self.screening_reloaded().await?;
        Ok(stored)
    }

    /// Removes the entry `id` from the list; answers it as it was.
    pub async fn remove_screening_entry(
        &self,
        origin: &Origin,
        id: i64,
    ) -> Result<ScreeningEntry, CommandError> {
        let removed = self
            .store
            .remove_screening_entry(origin, id)
            .await
            .map_err(naming(format!("screening entry {id}")))?;
        self.screening_reloaded().await?;
        Ok(removed)
    }

    /// Stores `entries` as one change (after deleting the whole list when `replace`):
    /// all of them or, when one cannot be stored, none. An entry with the list and
    /// reference of one kept: `AlreadyExists`.
    pub async fn import_screening_entries(
        &self,
        origin: &Origin,
        entries: &[NewScreeningEntry],
        replace: bool,
    ) -> Result<ImportSummary, CommandError> {
        let summary = self
            .store
            .import_screening_entries(origin, entries, replace)
            .await
            .map_err(naming(
                "an entry of the file with the list and reference of an entry on the list \
                 (import with replace=true to replace the list)"
                    .into(),
            ))?;
        self.screening_reloaded().await?;
        Ok(summary)
    }

    /// Rebuilds the screening index after a committed change. If the store cannot
    /// be read now, the change stays stored (and audited): the caller is told so,
    /// and the engine keeps re-reading the list every second until it can.
    async fn screening_reloaded(&self) -> Result<(), CommandError> {
        let error = match self.reload_screening().await {
            Ok(_) => return Ok(()),
            Err(error @ StoreError::Unavailable(_)) => error,
            Err(other) => return Err(other.into()),
        };
        tracing::error!(error = %crate::telemetry::error_chain(&error),
                        "the screening list changed but could not be re-read; retrying");
        let engine = self.clone();
        self.arbiter.spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_RETRY_INTERVAL).await;
                if engine.reload_screening().await.is_ok() {
                    tracing::info!("the screening list was re-read");
                    break;
                }
            }
        });
        Err(CommandError::Unavailable(
            "the change to the screening list is stored, but the engine could not re-read \
             the list; it applies as soon as the database answers again"
                .into(),
        ))
    }
}
