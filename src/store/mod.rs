//! The only place that speaks SQL: the connection pool, migrations, reference data
//! and every query the engine makes, split by subject. It returns domain types and
//! knows nothing of actors or HTTP.

pub mod audit;
mod audit_log;
mod balances;
mod books;
pub mod credits;
mod decode;
pub mod embedded;
mod error;
pub mod fence;
mod keys;
mod registry;
mod reports;
mod screening;
mod settlements;
mod transfers;
mod windows;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use error::{BoxError, StoreError};
pub use reports::ComplianceLine;
pub use transfers::{
    InsertOutcome, SumSlot, TransferFilter, TransferPage, TransferParts, TransferWrite, WritePath,
};

/// Migrations in order; each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../sql/0001_core.sql")),
    ("0002_windows", include_str!("../../sql/0002_windows.sql")),
    ("0003_keys", include_str!("../../sql/0003_keys.sql")),
    (
        "0004_audit_log",
        include_str!("../../sql/0004_audit_log.sql"),
    ),
    (
        "0005_window_legs",
        include_str!("../../sql/0005_window_legs.sql"),
    ),
    ("0006_reports", include_str!("../../sql/0006_reports.sql")),
    ("0007_queue", include_str!("../../sql/0007_queue.sql")),
    ("0008_balances", include_str!("../../sql/0008_balances.sql")),
    ("0009_returns", include_str!("../../sql/0009_returns.sql")),
    (
        "0010_window_queue",
        include_str!("../../sql/0010_window_queue.sql"),
    ),
    ("0011_iso20022", include_str!("../../sql/0011_iso20022.sql")),
    (
        "0012_funding_entries",
        include_str!("../../sql/0012_funding_entries.sql"),
    ),
    (
        "0013_screening",
        include_str!("../../sql/0013_screening.sql"),
    ),
    (
        "0014_compliance",
        include_str!("../../sql/0014_compliance.sql"),
    ),
    (
        "0015_report_threshold",
        include_str!("../../sql/0015_report_threshold.sql"),
    ),
    (
        "0016_partition_fence",
        include_str!("../../sql/0016_partition_fence.sql"),
    ),
    (
        "0017_credit_legs",
        include_str!("../../sql/0017_credit_legs.sql"),
    ),
];

/// How long a request waits for a free connection before the store says "unavailable".
const POOL_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long opening a new connection may take.
const CONNECT_WAIT_MAX: Duration = Duration::from_secs(5);

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn connect(config: tokio_postgres::Config, pool_size_max: usize) -> Self {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size_max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_MAX))
            .create_timeout(Some(CONNECT_WAIT_MAX))
            .recycle_timeout(Some(CONNECT_WAIT_MAX))
            .build()
            .expect("pool settings are valid");
        Store { pool }
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Waits until the database answers, up to `wait_max`.
    pub async fn wait_until_ready(&self, wait_max: Duration) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        loop {
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() > wait_max => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Applies the migrations not yet applied, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     name TEXT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        for (name, sql) in MIGRATIONS {
            let tx = client.transaction().await?;
            // Serialises concurrent engines starting on one database.
            tx.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE", &[])
                .await?;
            let applied = tx
                .query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[name])
                .await?
                .is_some();
            if !applied {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO schema_migrations (name) VALUES ($1)", &[name])
                    .await?;
                tracing::info!(migration = name, "applied migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Creates `dbname` on the server `config` points at, if it does not exist yet.
pub async fn create_database_if_missing(
    config: &tokio_postgres::Config,
    dbname: &str,
) -> Result<(), StoreError> {
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await?;
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let quoted = dbname.replace('"', "\"\"");
        match client
            .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
            .await
        {
            Ok(()) => {}
            // Another process created it between our check and our create.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = task.await;
    Ok(())
}

/// Waits for a freshly started server to accept connections, then creates the
/// configured database on it if missing.
pub async fn prepare_database(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let dbname = config.get_dbname().unwrap_or("postgres").to_string();
    let started = std::time::Instant::now();
    loop {
        match create_database_if_missing(config, &dbname).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
