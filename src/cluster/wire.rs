//! The JSON forms of what goes through NATS (credit legs, leases, cut-off markers,
//! partitions' sealed sums and status, windows' results, shared keys): decimal amounts as strings
//! (never a float), codes as text, each read back through the domain's own parsers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::domain::auth::{KeyRecord, SecretHash};
use crate::domain::cluster::{
    CreditLeg, CutOffMarker, Epoch, Lease, NodeId, PartitionId, SealedSums,
};
use crate::domain::netting::{Netting, Party, WindowSums};
use crate::domain::{BankCode, CorridorId, Currency, KeyId, Principal, Role, TransferId, WindowId};

#[derive(Serialize, Deserialize)]
struct LegWire {
    transfer: uuid::Uuid,
    receiver: String,
    currency: String,
    amount: Decimal,
    window: i64,
    from: u32,
    epoch: u64,
}

#[derive(Serialize, Deserialize)]
struct LeaseWire {
    holder: u32,
    epoch: u64,
    expires_at_ms: u64,
}

pub fn leg_to_json(leg: &CreditLeg) -> Vec<u8> {
    serde_json::to_vec(&LegWire {
        transfer: leg.transfer.as_uuid(),
        receiver: leg.receiver.as_str().to_string(),
        currency: leg.currency.as_str().to_string(),
        amount: leg.amount,
        window: leg.window.get(),
        from: leg.from.0,
        epoch: leg.epoch.0,
    })
    .expect("a credit leg serialises")
}

pub fn leg_from_json(bytes: &[u8]) -> Result<CreditLeg, ClusterError> {
    let what = "a credit leg";
    let wire: LegWire =
        serde_json::from_slice(bytes).map_err(|e| ClusterError::malformed(what, &e))?;
    Ok(CreditLeg {
        transfer: TransferId::from_uuid(wire.transfer),
        receiver: BankCode::parse(&wire.receiver).map_err(|e| ClusterError::malformed(what, &e))?,
        currency: Currency::parse(&wire.currency).map_err(|e| ClusterError::malformed(what, &e))?,
        amount: wire.amount,
        window: WindowId::new(wire.window).map_err(|e| ClusterError::malformed(what, &e))?,
        from: PartitionId(wire.from),
        epoch: Epoch(wire.epoch),
    })
}

pub fn lease_to_json(lease: &Lease) -> Vec<u8> {
    serde_json::to_vec(&LeaseWire {
        holder: lease.holder.0,
        epoch: lease.epoch.0,
        expires_at_ms: lease.expires_at_ms,
    })
    .expect("a lease serialises")
}

pub fn lease_from_json(bytes: &[u8]) -> Result<Lease, ClusterError> {
    let wire: LeaseWire =
        serde_json::from_slice(bytes).map_err(|e| ClusterError::malformed("a lease", &e))?;
    Ok(Lease {
        holder: NodeId(wire.holder),
        epoch: Epoch(wire.epoch),
        expires_at_ms: wire.expires_at_ms,
    })
}

/// A partition's sums of a window on the wire: each side's legs as
/// `[bank, currency, amount]`, each corridor's flow as `[from, to, source,
/// destination]`.
#[derive(Serialize, Deserialize)]
struct SumsWire {
    transfer_count: u64,
    debits: Vec<(String, String, Decimal)>,
    credits: Vec<(String, String, Decimal)>,
    corridors: Vec<(String, String, Decimal, Decimal)>,
}

fn sums_to_wire(sums: &WindowSums<BankCode>) -> SumsWire {
    let legs = |side: &std::collections::HashMap<(BankCode, Currency), Decimal>| {
        let mut legs: Vec<(String, String, Decimal)> = side
            .iter()
            .map(|((bank, currency), amount)| {
                (
                    bank.as_str().to_string(),
                    currency.as_str().to_string(),
                    *amount,
                )
            })
            .collect();
        legs.sort();
        legs
    };
    let mut corridors: Vec<(String, String, Decimal, Decimal)> = sums
        .corridors
        .iter()
        .map(|(id, (source, destination))| {
            (
                id.from.as_str().to_string(),
                id.to.as_str().to_string(),
                *source,
                *destination,
            )
        })
        .collect();
    corridors.sort();
    SumsWire {
        transfer_count: sums.transfer_count,
        debits: legs(&sums.debits),
        credits: legs(&sums.credits),
        corridors,
    }
}

fn sums_from_wire(wire: SumsWire) -> Result<WindowSums<BankCode>, ClusterError> {
    let what = "a partition's sums";
    let bad = |e: &dyn std::fmt::Display| ClusterError::malformed(what, e);
    let key = |bank: &str, currency: &str| -> Result<(BankCode, Currency), ClusterError> {
        Ok((
            BankCode::parse(bank).map_err(|e| bad(&e))?,
            Currency::parse(currency).map_err(|e| bad(&e))?,
        ))
    };
    let mut sums = WindowSums {
        transfer_count: wire.transfer_count,
        ..WindowSums::default()
    };
    for (bank, currency, amount) in &wire.debits {
        sums.debits.insert(key(bank, currency)?, *amount);
    }
    for (bank, currency, amount) in &wire.credits {
        sums.credits.insert(key(bank, currency)?, *amount);
    }
    for (from, to, source, destination) in &wire.corridors {
        let id = CorridorId::new(
            Currency::parse(from).map_err(|e| bad(&e))?,
            Currency::parse(to).map_err(|e| bad(&e))?,
        );
        sums.corridors.insert(id, (*source, *destination));
    }
    Ok(sums)
}

/// The coordinator's cut-off marker.
#[derive(Serialize, Deserialize)]
struct MarkerWire {
    window: i64,
    coordinator: u64,
}

pub fn marker_to_json(marker: &CutOffMarker) -> Vec<u8> {
    serde_json::to_vec(&MarkerWire {
        window: marker.window.get(),
        coordinator: marker.coordinator.0,
    })
    .expect("a marker serialises")
}

pub fn marker_from_json(bytes: &[u8]) -> Result<CutOffMarker, ClusterError> {
    let what = "a cut-off marker";
    let wire: MarkerWire =
        serde_json::from_slice(bytes).map_err(|e| ClusterError::malformed(what, &e))?;
    Ok(CutOffMarker {
        window: WindowId::new(wire.window).map_err(|e| ClusterError::malformed(what, &e))?,
        coordinator: Epoch(wire.coordinator),
    })
}

/// A partition's answer to a marker: its sealed sums of the window, or why not (yet).
#[derive(Serialize, Deserialize)]
struct SealWire {
    window: i64,
    partition: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    sums: Option<SumsWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// What a partition answers a marker with.
pub type SealAnswer = Result<SealedSums, String>;

pub fn seal_to_json(window: WindowId, partition: PartitionId, answer: &SealAnswer) -> Vec<u8> {
    let (sums, refused) = match answer {
        Ok(sealed) => (Some(sums_to_wire(&sealed.sums)), None),
        Err(why) => (None, Some(why.clone())),
    };
    serde_json::to_vec(&SealWire {
        window: window.get(),
        partition: partition.0,
        sums,
        refused,
    })
    .expect("a seal serialises")
}

pub fn seal_from_json(bytes: &[u8]) -> Result<SealAnswer, ClusterError> {
    let what = "a partition's seal";
    let wire: SealWire =
        serde_json::from_slice(bytes).map_err(|e| ClusterError::malformed(what, &e))?;
    match (wire.sums, wire.refused) {
        (Some(sums), None) => Ok(Ok(SealedSums {
            window: WindowId::new(wire.window).map_err(|e| ClusterError::malformed(what, &e))?,
            partition: PartitionId(wire.partition),
            sums: sums_from_wire(sums)?,
        })),
        (None, Some(why)) => Ok(Err(why)),
        _ => Err(ClusterError::malformed(what, &"neither sums nor a refusal")),
    }
}

/// A partition's state, as its node answers the coordinator and the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub node: u32,
    pub partition: u32,
    pub epoch: u64,
    /// The window its transfers are stamped with now (none while its clock starts).
    pub open_window: Option<i64>,
}

pub fn status_from_json(bytes: &[u8]) -> Result<PartitionStatus, ClusterError> {
    serde_json::from_slice(bytes).map_err(|e| ClusterError::malformed("a partition's status", &e))
}

/// The cluster's result of a window, as published on the log and served by every
/// node (`GET /api/v1/cluster/windows/{id}`): the netting of every partition's
/// sealed sums added, and what each partition sealed.
pub fn result_to_json(
    window: WindowId,
    parts: &[(PartitionId, u64)],
    netting: &Netting<BankCode>,
) -> Vec<u8> {
    let party = |p: &Party<BankCode>| match p {
        Party::Bank(bank) => bank.as_str().to_string(),
        Party::Hub => "HUB".to_string(),
    };
    serde_json::to_vec(&serde_json::json!({
        "window_id": window.get(),
        "transfer_count": netting.transfer_count,
        "partitions": parts.iter().map(|(p, count)| serde_json::json!({
            "partition": p.0, "transfer_count": count,
        })).collect::<Vec<_>>(),
        "positions": netting.positions.iter().map(|p| serde_json::json!({
            "bank": p.bank.as_str(), "currency": p.currency.as_str(),
            "debits": p.currency.format(p.debits), "credits": p.currency.format(p.credits),
            "position": p.currency.format(p.position),
        })).collect::<Vec<_>>(),
        "currencies": netting.currencies.iter().map(|c| serde_json::json!({
            "currency": c.currency.as_str(), "gross": c.currency.format(c.gross),
            "net": c.currency.format(c.net), "hub_position": c.currency.format(c.hub_position),
            "efficiency": c.efficiency().round_dp(6).normalize().to_string(),
        })).collect::<Vec<_>>(),
        "instructions": netting.instructions.iter().map(|i| serde_json::json!({
            "currency": i.currency.as_str(), "payer": party(&i.payer),
            "payee": party(&i.payee), "amount": i.currency.format(i.amount),
        })).collect::<Vec<_>>(),
    }))
    .expect("a result serialises")
}

/// A key as a partition shares it with the others: its public id, role and bank,
/// and the SHA-256 of its secret (never the secret), in hex.
#[derive(Serialize, Deserialize)]
struct KeyWire {
    id: uuid::Uuid,
    role: String,
    bank: Option<String>,
    hash: String,
    label: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn keys_to_json(records: &[KeyRecord]) -> Vec<u8> {
    let wire: Vec<KeyWire> = records
        .iter()
        .map(|r| KeyWire {
            id: r.principal.key_id.as_uuid(),
            role: r.principal.role.as_str().to_string(),
            bank: r.principal.bank.as_ref().map(|b| b.as_str().to_string()),
            hash: r.secret_hash.to_hex(),
            label: r.label.clone(),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
        .collect();
    serde_json::to_vec(&wire).expect("keys serialise")
}

pub fn keys_from_json(bytes: &[u8]) -> Result<Vec<KeyRecord>, ClusterError> {
    let what = "a partition's keys";
    let bad = |e: &dyn std::fmt::Display| ClusterError::malformed(what, e);
    let wire: Vec<KeyWire> = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
    wire.into_iter()
        .map(|k| {
            let role = Role::parse(&k.role).ok_or_else(|| bad(&format!("role {:?}", k.role)))?;
            let bank = k
                .bank
                .as_deref()
                .map(BankCode::parse)
                .transpose()
                .map_err(|e| bad(&e))?;
            if (role == Role::Bank) != bank.is_some() {
                return Err(bad(&"a bank key names its bank, and only it"));
            }
            let secret_hash =
                SecretHash::from_hex(&k.hash).ok_or_else(|| bad(&"a hash is 64 hex digits"))?;
            Ok(KeyRecord {
                principal: Principal {
                    key_id: KeyId::from_uuid(k.id),
                    role,
                    bank,
                },
                secret_hash,
                label: k.label,
                created_at: k.created_at,
                revoked_at: k.revoked_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_and_a_lease_read_back_as_written_and_bad_ones_are_refused() {
        let leg = CreditLeg {
            transfer: TransferId::new(),
            receiver: BankCode::parse("ENBD").unwrap(),
            currency: Currency::parse("AED").unwrap(),
            amount: "12345678901234.56".parse().unwrap(),
            window: WindowId::new(42).unwrap(),
            from: PartitionId(2),
            epoch: Epoch(7),
        };
        let json = leg_to_json(&leg);
        // The amount travels as a string: no float on the way.
        assert!(String::from_utf8_lossy(&json).contains("\"12345678901234.56\""));
        assert_eq!(leg_from_json(&json).unwrap(), leg);
        let lease = Lease {
            holder: NodeId(3),
            epoch: Epoch(9),
            expires_at_ms: 1_700_000_000_000,
        };
        assert_eq!(lease_from_json(&lease_to_json(&lease)).unwrap(), lease);
        let marker = CutOffMarker {
            window: WindowId::new(9).unwrap(),
            coordinator: Epoch(4),
        };
        assert_eq!(marker_from_json(&marker_to_json(&marker)).unwrap(), marker);
        assert!(marker_from_json(br#"{"window":0,"coordinator":1}"#).is_err());
        for bad in [
            &b"{"[..],
            br#"{"transfer":"x","receiver":"ENBD","currency":"AED","amount":"1","window":1,"from":0,"epoch":1}"#,
            br#"{"transfer":"00000000-0000-0000-0000-000000000001","receiver":"e","currency":"AED","amount":"1","window":1,"from":0,"epoch":1}"#,
            br#"{"transfer":"00000000-0000-0000-0000-000000000001","receiver":"ENBD","currency":"XYZ","amount":"1","window":1,"from":0,"epoch":1}"#,
            br#"{"transfer":"00000000-0000-0000-0000-000000000001","receiver":"ENBD","currency":"AED","amount":"1","window":0,"from":0,"epoch":1}"#,
        ] {
            assert!(matches!(leg_from_json(bad), Err(ClusterError::Malformed { .. })));
        }
    }

    #[test]
    fn a_partition_s_sums_read_back_exactly_and_a_refusal_as_a_refusal() {
        let (inr, aed) = (
            Currency::parse("INR").unwrap(),
            Currency::parse("AED").unwrap(),
        );
        let mut sums = WindowSums::default();
        let (icici, enbd) = (
            BankCode::parse("ICICI").unwrap(),
            BankCode::parse("ENBD").unwrap(),
        );
        sums.add_transfer(
            &icici,
            &enbd,
            "123456789012.34".parse().unwrap(),
            inr,
            "5432109876.01".parse().unwrap(),
            aed,
        );
        sums.add_transfer(
            &enbd,
            &icici,
            Decimal::new(1, 2),
            aed,
            Decimal::new(23, 2),
            inr,
        );
        let sealed = SealedSums {
            window: WindowId::new(3).unwrap(),
            partition: PartitionId(1),
            sums,
        };
        let json = seal_to_json(sealed.window, sealed.partition, &Ok(sealed.clone()));
        assert_eq!(seal_from_json(&json).unwrap(), Ok(sealed));
        let refused = seal_to_json(
            WindowId::new(3).unwrap(),
            PartitionId(1),
            &Err("not yet".into()),
        );
        assert_eq!(
            seal_from_json(&refused).unwrap(),
            Err("not yet".to_string())
        );
        assert!(seal_from_json(br#"{"window":3,"partition":1}"#).is_err());
        assert!(seal_from_json(
            br#"{"window":3,"partition":1,"sums":{"transfer_count":1,"debits":[["x","INR","1"]],"credits":[],"corridors":[]}}"#
        )
        .is_err());
    }

    #[test]
    fn shared_keys_read_back_as_written_and_bad_ones_are_refused() {
        let record = KeyRecord {
            principal: Principal {
                key_id: KeyId::from_uuid(uuid::Uuid::from_u128(7)),
                role: Role::Bank,
                bank: Some(BankCode::parse("ENBD").unwrap()),
            },
            secret_hash: SecretHash([0xab; 32]),
            label: Some("ops".into()),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            revoked_at: None,
        };
        let json = keys_to_json(std::slice::from_ref(&record));
        let back = keys_from_json(&json).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].principal, record.principal);
        assert_eq!(back[0].secret_hash.0, record.secret_hash.0);
        assert_eq!(
            (back[0].created_at, back[0].revoked_at),
            (record.created_at, None)
        );
        let text = String::from_utf8(json).unwrap();
        for bad in [
            text.replace("\"role\":\"bank\"", "\"role\":\"auditor\""),
            text.replace("\"ENBD\"", "null"),
            text.replace(&"ab".repeat(32), "zz"),
            text.replace(&"ab".repeat(32), &"zz".repeat(32)),
            "{".to_string(),
        ] {
            assert!(keys_from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
