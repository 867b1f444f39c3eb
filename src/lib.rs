//! DelTran: an actor-based multilateral payment netting engine.
//!
//! `domain` is the pure business core; `actors` hold the state that changes;
//! `http` is the edge; `store` is the only place that speaks SQL.

pub mod actors;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
