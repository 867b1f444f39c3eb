//! One actor per corridor: the owner of its rate, status and per-transfer maximum.
//! It publishes them (`CorridorTerms`), and each transfer is quoted from what it
//! published, fixing the rate and converted amount at acceptance.

use std::sync::{Arc, RwLock};

use actix::prelude::*;
use rust_decimal::Decimal;

use super::feed::Feed;
use super::{guard, wait_contained, Guarded, InjectPanic};
use crate::domain::{convert, Amount, CorridorRecord, CorridorStatus, FxRate};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::telemetry::error_chain;

/// The corridor's terms for one transfer.
#[derive(Clone, Copy, Debug)]
pub struct Quote {
    pub status: CorridorStatus,
    pub amount_max: Decimal,
    /// The amount from which a transfer is flagged for the compliance report.
    pub report_threshold: Option<Decimal>,
    pub rate: FxRate,
    pub converted: Amount,
}

/// A corridor's terms as its actor last published them. A quote reads them here, on
/// the submitting caller's thread: a quote is a read, and asking the actor for it was
/// a round trip to the engine's thread per submission that carried nothing else
/// (issue 14). The actor stays the only writer: a change the operator made, or the
/// terms it read again from the store after a restart.
#[derive(Clone)]
pub struct CorridorTerms(Arc<RwLock<CorridorRecord>>);

impl CorridorTerms {
    pub fn new(terms: CorridorRecord) -> Self {
        CorridorTerms(Arc::new(RwLock::new(terms)))
    }

    /// The terms for a transfer of `amount` (in the corridor's source currency).
    pub fn quote(&self, amount: Amount) -> Quote {
        let terms = *self.0.read().expect("corridor terms lock");
        Quote {
            status: terms.status,
            amount_max: terms.amount_max,
            report_threshold: terms.report_threshold,
            rate: terms.fx_rate,
            converted: convert(amount, terms.fx_rate, terms.id.to),
        }
    }

    fn current(&self) -> CorridorRecord {
        *self.0.read().expect("corridor terms lock")
    }

    /// Publishes `terms` unless those published are newer (a reload after a restart
    /// that read the store before a change was stored).
    fn publish(&self, terms: CorridorRecord) {
        let mut published = self.0.write().expect("corridor terms lock");
        if terms.updated_at >= published.updated_at {
            *published = terms;
        }
    }
}

/// The operator changed the corridor; already stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TermsChanged(pub CorridorRecord);

pub struct CorridorActor {
    terms: CorridorTerms,
    store: Store,
    metrics: Arc<Metrics>,
    feed: Feed,
}

impl CorridorActor {
    pub fn new(terms: CorridorTerms, store: Store, metrics: Arc<Metrics>, feed: Feed) -> Self {
        CorridorActor {
            terms,
            store,
            metrics,
            feed,
        }
    }
}

impl Actor for CorridorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::MAILBOX_CAPACITY);
    }
}

impl Supervised for CorridorActor {
    /// Re-reads the terms before serving the next quote; if the store is down the last
    /// known terms stay (they are what the store held when last read or written).
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.metrics
            .actor_restarts
            .with_label_values(&["corridor"])
            .inc();
        let id = self.terms.current().id;
        self.feed
            .actor_restarted("corridor", &id.to_string(), Vec::new());
        let store = self.store.clone();
        let reload = async move { store.corridor(id).await };
        wait_contained(self, ctx, reload, move |result, act, _| match result {
            Ok(terms) => act.terms.publish(terms),
            Err(error) => {
                tracing::warn!(corridor = %id, error = %error_chain(&error), "kept last known terms")
            }
        });
    }
}

impl Guarded for CorridorActor {
    fn kind(&self) -> &'static str {
        "corridor"
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Handler<TermsChanged> for CorridorActor {
    type Result = ();

    fn handle(&mut self, msg: TermsChanged, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| act.terms.publish(msg.0));
    }
}

impl Handler<InjectPanic> for CorridorActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            panic!("injected panic in corridor {}", act.terms.current().id)
        });
    }
}
