//! A partition's fence (sql/0016): the epoch of the lease under which its owner took
//! the store, checked by a statement trigger on every table against the session's
//! `deltran.epoch`, so that a node that lost the partition cannot write to it by any
//! path. A store never taken has neither fence nor triggers.

use super::{Store, StoreError};
use crate::domain::cluster::Epoch;

/// Makes every session of a store opened with `config` write under `epoch`.
pub fn write_under(config: &mut tokio_postgres::Config, epoch: Epoch) {
    config.options(format!("-c deltran.epoch={}", epoch.0));
}

impl Store {
    /// Takes the store for the owner of `epoch`: the fence's check on every table
    /// that lacks it (each table in its own statement, so that nothing holds the
    /// fence while waiting for a table's lock), then the fence raised to `epoch` once the write
    /// transactions under the former one are done. Returns the epoch before (0 for
    /// a store never taken); `StoreError::Fenced` when the store is at a higher one.
    pub async fn take_partition(&self, epoch: Epoch) -> Result<Epoch, StoreError> {
        let client = self.client().await?;
        let tables = client
            .query(
                "SELECT c.relname FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
                   AND c.relname <> 'partition_fence'
                   AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                                   WHERE t.tgrelid = c.oid AND t.tgname = 'deltran_fence')
                 ORDER BY c.relname",
                &[],
            )
            .await?;
        for row in tables {
            let table: String = row.get(0);
            client
                .batch_execute(&format!(
                    "CREATE OR REPLACE TRIGGER deltran_fence \
                     BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON \"{}\" \
                     FOR EACH STATEMENT EXECUTE FUNCTION deltran_fence_check()",
                    table.replace('"', "\"\"")
                ))
                .await?;
        }
        let epoch = i64::try_from(epoch.0).map_err(|_| {
            StoreError::Corrupt(format!("epoch {} is beyond the store's range", epoch.0))
        })?;
        let row = client
            .query_one("SELECT deltran_raise_fence($1)", &[&epoch])
            .await?;
        Ok(Epoch(row.get::<_, i64>(0) as u64))
    }

    /// The fence's epoch now (none for a store never taken).
    pub async fn fence(&self) -> Result<Option<Epoch>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT epoch FROM partition_fence", &[])
            .await?;
        Ok(row.map(|r| Epoch(r.get::<_, i64>(0) as u64)))
    }
}
