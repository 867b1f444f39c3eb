//! DelTran: an actor-based multilateral payment netting engine.
//!
//! `domain` is the pure business core; `views` its JSON shapes; `store` is the only
//! place that speaks SQL; `actors` hold the state that changes and the commands that
//! change it; `http` is the edge; `cluster` is the NATS JetStream transport between
//! partitions (docs/SCALE-OUT.md). docs/ARCHITECTURE.md says what each may import.

pub mod actors;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
