//! The integration tests, one binary: every test starts the real engine against one
//! shared Postgres server (an embedded cluster unless `DATABASE_URL` is set), each
//! with a fresh database of its own (`helpers`).

mod helpers;
#[path = "../support/nats.rs"]
mod nats;

mod audit_log;
mod auth;
mod balances;
mod batch;
mod cli;
mod cluster;
mod dashboard;
mod durability;
mod faults;
mod feeds;
mod fence;
mod iso20022;
mod limits;
mod openapi;
mod operator;
mod outage;
mod overload;
mod poison;
mod queue;
mod recovery;
mod reports;
mod returns;
mod screening;
mod screening_list;
mod settings;
mod transfers;
mod windows;
