//! DelTran: an actor-based multilateral payment netting engine.
//!
//! `domain` is the pure business core; `views` its JSON shapes; `store` is the only
//! place that speaks SQL; `actors` hold the state that changes and the commands that
//! change it; `http` is the edge. docs/ARCHITECTURE.md says what each may import.

pub mod actors;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
