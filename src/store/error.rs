//! What can go wrong in the store, keeping the database's own error as the source so
//! that logs show the cause while callers match on the kind.

use uuid::Uuid;

use crate::domain::InstructionState;

/// Any error, boxed: the source of an `Unavailable`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot serve now (connection lost, resources
    /// exhausted, shutting down): the caller may retry later.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("not found")]
    NotFound,
    /// A row with the same key exists (a unique constraint refused the write).
    #[error("already exists")]
    Duplicate(#[source] tokio_postgres::Error),
    /// The instruction was already confirmed or failed; only a pending one may change.
    #[error("settlement instruction {id} is {state}, not pending")]
    InstructionNotPending { id: Uuid, state: InstructionState },
    /// Stored data is not what the engine writes (changed behind its back).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// Any other refusal by the database (a bug, or a value it cannot store).
    #[error("the database refused the statement")]
    Query(#[source] tokio_postgres::Error),
    /// The partition's store was taken over under a later epoch: this node no
    /// longer runs it and may not write to it (sql/0016).
    #[error("the partition's store is fenced: another node took it over")]
    Fenced(#[source] tokio_postgres::Error),
}

impl StoreError {
    /// The SQLSTATE of the database's refusal, if it gave one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Duplicate(e) | StoreError::Query(e) | StoreError::Fenced(e) => {
                e.code().map(|c| c.code())
            }
            _ => None,
        }
    }
}

/// The SQLSTATE of a write refused by the partition's fence (sql/0016).
pub const FENCED: &str = "DTF01";

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(code) = e.code() else {
            // No SQLSTATE: the connection itself failed.
            return StoreError::Unavailable(Box::new(e));
        };
        if code == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION {
            return StoreError::Duplicate(e);
        }
        if code.code() == FENCED {
            return StoreError::Fenced(e);
        }
        let class = &code.code()[..2];
        // Connection exceptions, resource exhaustion, operator intervention.
        if matches!(class, "08" | "53" | "57") {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Query(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(inner) => inner.into(),
            other => StoreError::Unavailable(Box::new(other)),
        }
    }
}
