//! The JSON forms of what goes through NATS: decimal amounts as strings (never a
//! float), codes as text, each read back through the domain's own parsers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::domain::cluster::{CreditLeg, Epoch, Lease, NodeId, PartitionId};
use crate::domain::{BankCode, Currency, TransferId, WindowId};

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
}
