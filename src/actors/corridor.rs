//! One actor per corridor: its rate, status and per-transfer maximum. It quotes each
//! transfer, fixing the rate and converted amount at acceptance.

use std::sync::Arc;

use actix::prelude::*;
use rust_decimal::Decimal;

use super::feed::Feed;
use super::{guard, wait_contained, Guarded, InjectPanic};
use crate::domain::{convert, Amount, CorridorRecord, CorridorStatus, FxRate};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::telemetry::error_chain;

/// The corridor's terms for one transfer.
#[derive(Clone, Copy, Debug, MessageResponse)]
pub struct Quote {
    pub status: CorridorStatus,
    pub amount_max: Decimal,
    /// The amount from which a transfer is flagged for the compliance report.
    pub report_threshold: Option<Decimal>,
    pub rate: FxRate,
    pub converted: Amount,
}

/// Asks for a quote for `amount` (in the corridor's source currency).
#[derive(Message)]
#[rtype(result = "Quote")]
pub struct QuoteTransfer {
    pub amount: Amount,
}

/// Asks for quotes for many amounts at once (a batch submission's transfers in this
/// corridor, in their order): one round trip instead of one per transfer.
#[derive(Message)]
#[rtype(result = "Vec<Quote>")]
pub struct QuoteTransfers {
    pub amounts: Vec<Amount>,
}

/// The operator changed the corridor; already stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TermsChanged(pub CorridorRecord);

pub struct CorridorActor {
    terms: CorridorRecord,
    store: Store,
    metrics: Arc<Metrics>,
    feed: Feed,
}

impl CorridorActor {
    pub fn new(terms: CorridorRecord, store: Store, metrics: Arc<Metrics>, feed: Feed) -> Self {
        CorridorActor {
            terms,
            store,
            metrics,
            feed,
        }
    }

    fn quote(&self, amount: Amount) -> Quote {
        Quote {
            status: self.terms.status,
            amount_max: self.terms.amount_max,
            report_threshold: self.terms.report_threshold,
            rate: self.terms.fx_rate,
            converted: convert(amount, self.terms.fx_rate, self.terms.id.to),
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
        self.feed
            .actor_restarted("corridor", &self.terms.id.to_string(), Vec::new());
        let store = self.store.clone();
        let id = self.terms.id;
        let reload = async move { store.corridor(id).await };
        wait_contained(self, ctx, reload, |result, act, _| match result {
            Ok(terms) => act.terms = terms,
            Err(error) => {
                tracing::warn!(corridor = %act.terms.id, error = %error_chain(&error), "kept last known terms")
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

impl Handler<QuoteTransfer> for CorridorActor {
    type Result = Quote;

    fn handle(&mut self, msg: QuoteTransfer, _: &mut Context<Self>) -> Quote {
        // Pure arithmetic on validated inputs; nothing here can panic.
        self.quote(msg.amount)
    }
}

impl Handler<QuoteTransfers> for CorridorActor {
    type Result = MessageResult<QuoteTransfers>;

    fn handle(&mut self, msg: QuoteTransfers, _: &mut Context<Self>) -> Self::Result {
        // Pure arithmetic on validated inputs, as for one quote.
        MessageResult(msg.amounts.into_iter().map(|a| self.quote(a)).collect())
    }
}

impl Handler<TermsChanged> for CorridorActor {
    type Result = ();

    fn handle(&mut self, msg: TermsChanged, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            if msg.0.updated_at >= act.terms.updated_at {
                act.terms = msg.0;
            }
        });
    }
}

impl Handler<InjectPanic> for CorridorActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guard(self, ctx, |act, _| {
            panic!("injected panic in corridor {}", act.terms.id)
        });
    }
}
