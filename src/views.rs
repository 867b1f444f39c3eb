//! The JSON shapes of resources, in one place for the REST answers and the WebSocket
//! feed alike. It depends only on the domain: the actors render a feed event once
//! here and every subscriber gets the same text (see docs/ARCHITECTURE.md). Amounts
//! are strings with their currency's decimals.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::domain::{
    BankCode, BankPositions, BankRecord, CorridorRecord, Currency, InstructionRecord, Transfer,
    WindowDetail, WindowId, WindowRecord, WindowState,
};

pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn transfer(t: &Transfer) -> Value {
    let mut v = Map::new();
    v.insert("transaction_id".into(), json!(t.id.to_string()));
    v.insert("status".into(), json!(t.status().as_str()));
    v.insert("window_id".into(), json!(t.window_id().map(|w| w.get())));
    v.insert("sender_bank".into(), json!(t.sender.as_str()));
    v.insert("receiver_bank".into(), json!(t.receiver.as_str()));
    v.insert("amount".into(), json!(t.amount.to_string()));
    v.insert("from_currency".into(), json!(t.amount.currency().as_str()));
    v.insert(
        "converted_amount".into(),
        json!(t.converted.map(|c| c.to_string())),
    );
    v.insert("to_currency".into(), json!(t.to_currency.as_str()));
    v.insert("fx_rate".into(), json!(t.fx_rate.map(|r| r.to_string())));
    v.insert("created_at".into(), json!(timestamp(&t.created_at)));
    if let Some(code) = t.reject_code() {
        v.insert("reject_code".into(), json!(code.code()));
    }
    for (name, value) in [
        ("sender_account", &t.sender_account),
        ("receiver_account", &t.receiver_account),
        ("reference", &t.reference),
        ("idempotency_key", &t.idempotency_key),
    ] {
        if let Some(value) = value {
            v.insert(name.into(), json!(value));
        }
    }
    Value::Object(v)
}

/// A bank; its net debit caps only when `with_caps` (the operator, an auditor, the
/// bank itself: other banks see who their counterparties are, not their limits).
pub fn bank(b: &BankRecord, with_caps: bool) -> Value {
    let mut v = json!({
        "code": b.code.as_str(),
        "name": b.name,
        "country": b.country,
        "status": b.status.as_str(),
        "created_at": timestamp(&b.created_at),
        "updated_at": timestamp(&b.updated_at),
    });
    if with_caps {
        let caps: Map<String, Value> = b
            .net_debit_caps
            .iter()
            .map(|(c, cap)| (c.as_str().to_string(), json!(c.format(*cap))))
            .collect();
        v["net_debit_caps"] = Value::Object(caps);
    }
    v
}

pub fn positions(view: &BankPositions) -> Value {
    let mut currencies: Vec<_> = view
        .ledgers
        .keys()
        .chain(view.net_debit_caps.keys())
        .copied()
        .collect();
    currencies.sort();
    currencies.dedup();
    let positions: Vec<Value> = currencies
        .into_iter()
        .map(|c| {
            let ledger = view.ledgers.get(&c).copied().unwrap_or_default();
            let cap = view.net_debit_caps.get(&c).copied().unwrap_or_default();
            json!({
                "currency": c.as_str(),
                "debits": c.format(ledger.debits),
                "credits": c.format(ledger.credits),
                "position": c.format(ledger.credits - ledger.debits),
                "reserved": c.format(ledger.reserved),
                "exposure": c.format(ledger.exposure()),
                "net_debit_cap": c.format(cap),
                "headroom": c.format(cap - ledger.exposure()),
            })
        })
        .collect();
    json!({
        "bank": view.code.as_str(),
        "status": view.status.as_str(),
        "window_id": view.window.map(|w| w.get()),
        "current": view.current,
        "positions": positions,
    })
}

pub fn corridor(c: &CorridorRecord) -> Value {
    json!({
        "id": c.id.to_string(),
        "from_currency": c.id.from.as_str(),
        "to_currency": c.id.to.as_str(),
        "fx_rate": c.fx_rate.to_string(),
        "status": c.status.as_str(),
        "amount_max": c.id.from.format(c.amount_max),
        "created_at": timestamp(&c.created_at),
        "updated_at": timestamp(&c.updated_at),
    })
}

fn optional_time(t: &Option<DateTime<Utc>>) -> Value {
    json!(t.as_ref().map(timestamp))
}

pub fn window_record(w: &WindowRecord) -> Value {
    json!({
        "id": w.id.get(),
        "state": w.state.as_str(),
        "opened_at": timestamp(&w.opened_at),
        "closed_at": optional_time(&w.closed_at),
        "netted_at": optional_time(&w.netted_at),
        "settled_at": optional_time(&w.settled_at),
        "transfer_count": w.transfer_count,
    })
}

/// A window with its result; `live_count` is the running count of an unnetted window.
pub fn window(detail: &WindowDetail, live_count: Option<i64>) -> Value {
    let mut v = window_record(&detail.record);
    if let Some(count) = live_count {
        v["transfer_count"] = json!(count);
    }
    v["positions"] = detail
        .positions
        .iter()
        .map(|p| {
            json!({
                "bank": p.bank.as_str(),
                "currency": p.currency.as_str(),
                "debits": p.currency.format(p.debits),
                "credits": p.currency.format(p.credits),
                "position": p.currency.format(p.position),
            })
        })
        .collect();
    v["currencies"] = detail
        .currencies
        .iter()
        .map(|c| {
            json!({
                "currency": c.currency.as_str(),
                "gross": c.currency.format(c.gross),
                "net": c.currency.format(c.net),
                "efficiency": c.efficiency().round_dp(6).normalize().to_string(),
            })
        })
        .collect();
    v["hub"] = detail
        .currencies
        .iter()
        .map(|c| json!({"currency": c.currency.as_str(), "position": c.currency.format(c.hub_position)}))
        .collect();
    v["fx"] = detail
        .corridors
        .iter()
        .map(|(id, source, destination)| {
            json!({
                "corridor": id.to_string(),
                "source_amount": id.from.format(*source),
                "destination_amount": id.to.format(*destination),
            })
        })
        .collect();
    v
}

pub fn instruction(i: &InstructionRecord) -> Value {
    json!({
        "id": i.id.to_string(),
        "window_id": i.window_id.get(),
        "currency": i.currency.as_str(),
        "payer": i.payer.as_str(),
        "payee": i.payee.as_str(),
        "amount": i.currency.format(i.amount),
        "state": i.state.as_str(),
        "created_at": timestamp(&i.created_at),
        "updated_at": timestamp(&i.updated_at),
    })
}

/// Feed: a bank's exposure passed the warning share of its cap.
pub fn limit_warning(
    bank: &BankCode,
    currency: Currency,
    exposure: Decimal,
    cap: Decimal,
) -> Value {
    json!({
        "bank": bank.as_str(),
        "currency": currency.as_str(),
        "exposure": currency.format(exposure),
        "net_debit_cap": currency.format(cap),
    })
}

/// Feed: a supervised actor restarted after a failure.
pub fn actor_restarted(actor: &str, name: &str) -> Value {
    json!({"actor": actor, "name": name})
}

/// Feed: `window` reached its cut-off and `next` is open.
pub fn window_closing(window: WindowId, next: WindowId) -> Value {
    json!({"id": window.get(), "next_window_id": next.get()})
}

/// Feed: `window` opened.
pub fn window_opened(window: WindowId) -> Value {
    json!({"id": window.get()})
}

/// Feed: every instruction of `window` is confirmed.
pub fn window_settled(window: WindowId) -> Value {
    json!({"id": window.get(), "state": WindowState::Settled.as_str()})
}

/// An API key as listed: who it stands for, never its secret or hash.
pub fn key(k: &crate::domain::auth::KeyRecord) -> Value {
    json!({
        "id": k.principal.key_id.to_string(),
        "role": k.principal.role.as_str(),
        "bank": k.principal.bank.as_ref().map(|b| b.as_str()),
        "label": k.label,
        "created_at": timestamp(&k.created_at),
        "revoked_at": optional_time(&k.revoked_at),
    })
}

/// An audit log entry. `before` and `after` are the records as this module renders
/// them, stored as JSON by the store (which reads them back as text).
pub fn audit_entry(e: &crate::domain::AuditEntry) -> Value {
    // The text comes from a `jsonb` column, so it always parses.
    let record = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "id": e.id,
        "at": timestamp(&e.at),
        "origin": e.origin.as_str(),
        "engine_part": e.engine_part,
        "key_id": e.key_id.map(|k| k.to_string()),
        "role": e.role.map(|r| r.as_str()),
        "bank": e.bank.as_ref().map(|b| b.as_str()),
        "request_id": e.request_id,
        "action": e.action.as_str(),
        "subject": e.subject,
        "before": record(&e.before),
        "after": record(&e.after),
    })
}
