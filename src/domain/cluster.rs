//! The scale-out protocol's decisions, without I/O (docs/SCALE-OUT.md).
//!
//! Banks are assigned to partitions; a partition (a store of its own and the bank
//! actors over it) is run by one node at a time, under a lease whose fencing epoch
//! its store checks on every write. What crosses partitions goes through a
//! replicated log: credit legs to the receiver's partition, the coordinator's
//! cut-off markers to every partition, and each partition's sealed sums of a window
//! back to the coordinator, which adds them (netting is additive: no two-phase
//! commit of transfers).
//!
//! This module decides: who may hold a lease (`claim`, `hand_over`), whether a store
//! admits a write (`admit`, `raise`), which credit legs a partition still owes the
//! log (`Outbox`), what a partition does with a marker (`PartitionWindows`) and when
//! a window's result is whole (`CutOff`). The transport (NATS JetStream: a key-value
//! bucket for leases, streams for the rest) and each partition's Postgres carry the
//! decisions out; `tests/cluster_sim.rs` drives them through a seeded simulation of
//! partitions and the log with loss, duplication, reordering, crashes and paused
//! owners.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::Decimal;

use super::ids::{BankCode, TransferId, WindowId};
use super::money::Currency;
use super::netting::WindowSums;

/// A partition: a store and the banks assigned to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u32);

/// An engine process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// A fencing epoch: raised whenever a lease changes hands, carried by every write
/// and message of its holder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// Which partition each bank belongs to: stable, kept in the registry, changed only
/// by moving a bank's data with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    banks: BTreeMap<BankCode, PartitionId>,
}

impl Assignment {
    /// `BANK=PARTITION` pairs separated by commas: `ICICI=1,HDFC=1,ENBD=2`.
    pub fn parse(text: &str) -> Result<Self, AssignmentInvalid> {
        let invalid = |pair: &str, why: &'static str| AssignmentInvalid {
            pair: pair.to_string(),
            why,
        };
        let mut banks = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (bank, partition) = pair
                .split_once('=')
                .ok_or_else(|| invalid(pair, "a pair is BANK=PARTITION"))?;
            let bank =
                BankCode::parse(bank.trim()).map_err(|_| invalid(pair, "not a bank code"))?;
            let partition: u32 = partition
                .trim()
                .parse()
                .map_err(|_| invalid(pair, "a partition is a number, 0 or more"))?;
            if banks.insert(bank, PartitionId(partition)).is_some() {
                return Err(invalid(pair, "the bank is assigned twice"));
            }
        }
        if banks.is_empty() {
            return Err(invalid(text, "no bank is assigned"));
        }
        Ok(Assignment { banks })
    }

    /// The assignment as `parse` reads it, banks in order: the same text for the
    /// same assignment.
    pub fn text(&self) -> String {
        self.banks
            .iter()
            .map(|(bank, p)| format!("{bank}={}", p.0))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn assign(&mut self, bank: BankCode, partition: PartitionId) {
        self.banks.insert(bank, partition);
    }

    pub fn partition_of(&self, bank: &BankCode) -> Option<PartitionId> {
        self.banks.get(bank).copied()
    }

    /// The partition that owns `bank`: its assigned one, or partition 0 for a bank
    /// the assignment does not name (one registered later, say), so that every bank
    /// has exactly one owner.
    pub fn owner(&self, bank: &BankCode) -> PartitionId {
        self.partition_of(bank).unwrap_or(PartitionId(0))
    }

    /// The partition that owns `bank`, when it is not `partition`: where what
    /// concerns that bank must go from `partition`'s node.
    pub fn elsewhere(&self, bank: &BankCode, partition: PartitionId) -> Option<PartitionId> {
        let owner = self.owner(bank);
        (owner != partition).then_some(owner)
    }

    /// Every partition of the cluster, in order: those some bank is assigned to,
    /// and partition 0, the owner of banks not named.
    pub fn partitions(&self) -> BTreeSet<PartitionId> {
        let mut partitions: BTreeSet<PartitionId> = self.banks.values().copied().collect();
        partitions.insert(PartitionId(0));
        partitions
    }

    /// Each bank named and its partition, in bank order.
    pub fn pairs(&self) -> impl Iterator<Item = (&BankCode, PartitionId)> {
        self.banks.iter().map(|(bank, p)| (bank, *p))
    }

    pub fn banks_of(&self, partition: PartitionId) -> impl Iterator<Item = &BankCode> {
        self.banks
            .iter()
            .filter(move |(_, p)| **p == partition)
            .map(|(bank, _)| bank)
    }
}

/// A partition assignment that does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("partition assignment {pair:?}: {why}")]
pub struct AssignmentInvalid {
    pub pair: String,
    pub why: &'static str,
}

/// A lease as the registry holds it: a partition's ownership, or the coordinator's
/// role. The registry's write of a lease is conditional on the revision its writer
/// read, so of two claimants acting on one reading only one succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub holder: NodeId,
    pub epoch: Epoch,
    pub expires_at_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    #[error("held by node {} until {until_ms} ms", holder.0)]
    Held { holder: NodeId, until_ms: u64 },
}

/// The lease `node` may write at `now_ms`, for `ttl_ms`, over the one the registry
/// holds: a first claim (epoch 1), a renewal by the live holder (its epoch kept), or
/// a takeover of an expired lease (the epoch raised, even by its former holder,
/// whose earlier incarnation may still be writing).
pub fn claim(
    current: Option<&Lease>,
    node: NodeId,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<Lease, ClaimRefused> {
    let expires_at_ms = now_ms + ttl_ms;
    match current {
        None => Ok(Lease {
            holder: node,
            epoch: Epoch(1),
            expires_at_ms,
        }),
        Some(lease) if lease.expires_at_ms <= now_ms => Ok(Lease {
            holder: node,
            epoch: Epoch(lease.epoch.0 + 1),
            expires_at_ms,
        }),
        Some(lease) if lease.holder == node => Ok(Lease {
            expires_at_ms,
            ..*lease
        }),
        Some(lease) => Err(ClaimRefused::Held {
            holder: lease.holder,
            until_ms: lease.expires_at_ms,
        }),
    }
}

/// An operator's move of a lease to `node`, live holder or not: the epoch raised,
/// so that the former holder is fenced at its next write.
pub fn hand_over(current: Option<&Lease>, node: NodeId, now_ms: u64, ttl_ms: u64) -> Lease {
    Lease {
        holder: node,
        epoch: Epoch(current.map_or(0, |lease| lease.epoch.0) + 1),
        expires_at_ms: now_ms + ttl_ms,
    }
}

/// A write refused by a store's fence: its writer's lease has passed to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a write under {writer} is fenced: the store is at {fence}")]
pub struct Fenced {
    pub fence: Epoch,
    pub writer: Epoch,
}

/// Whether a partition's store admits a write under `writer`: only under the epoch
/// of its fence, which the partition's current owner raised when it took over.
pub fn admit(fence: Epoch, writer: Epoch) -> Result<(), Fenced> {
    if writer == fence {
        Ok(())
    } else {
        Err(Fenced { fence, writer })
    }
}

/// The fence after an owner under `owner` takes a store over: raised to its epoch
/// (kept when it restarts under the same one); refused to an older epoch.
pub fn raise(fence: Epoch, owner: Epoch) -> Result<Epoch, Fenced> {
    if owner >= fence {
        Ok(owner)
    } else {
        Err(Fenced {
            fence,
            writer: owner,
        })
    }
}

/// The credit side of a transfer whose receiver is on another partition: published
/// by the sender's partition once the transfer is committed there, applied once by
/// the receiver's (its store keys applied legs by transfer), acknowledged to the log
/// only after that commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditLeg {
    pub transfer: TransferId,
    pub receiver: BankCode,
    pub currency: Currency,
    pub amount: Decimal,
    pub window: WindowId,
    pub from: PartitionId,
    pub epoch: Epoch,
}

impl CreditLeg {
    /// The log's message id (JetStream's `Nats-Msg-Id`): a leg published again
    /// within the stream's duplicate window is dropped there, and one delivered
    /// again is dropped by the receiver's store. A negative amount is the reversal of
    /// the transfer's credit (it was cancelled after its leg was owed): a leg of its
    /// own.
    pub fn message_id(&self) -> String {
        if self.amount.is_sign_negative() {
            format!("reversal-{}", self.transfer)
        } else {
            format!("credit-{}", self.transfer)
        }
    }
}

/// The credit legs a partition has committed and the log has not acknowledged, each
/// sent again after `retry_ms` until it is. After a restart it is rebuilt from the
/// store (the transfers whose leg is not marked published), so a crash between a
/// commit and its publication loses no leg. Bounded: when full, the partition
/// refuses new cross-partition transfers (`503`) rather than hold more.
#[derive(Debug)]
pub struct Outbox {
    pending: BTreeMap<TransferId, (CreditLeg, Option<u64>)>,
    retry_ms: u64,
    capacity: usize,
}

impl Outbox {
    pub fn new(retry_ms: u64, capacity: usize) -> Self {
        Outbox {
            pending: BTreeMap::new(),
            retry_ms,
            capacity,
        }
    }

    pub fn has_room(&self) -> bool {
        self.pending.len() < self.capacity
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// A committed leg, to be sent.
    pub fn committed(&mut self, leg: CreditLeg) {
        self.pending.entry(leg.transfer).or_insert((leg, None));
    }

    /// The legs to send at `now_ms`: never sent, or sent `retry_ms` ago or more
    /// without an acknowledgement; marked sent now.
    pub fn due(&mut self, now_ms: u64) -> Vec<CreditLeg> {
        let retry_ms = self.retry_ms;
        self.pending
            .values_mut()
            .filter(|(_, sent)| sent.is_none_or(|at| now_ms >= at + retry_ms))
            .map(|(leg, sent)| {
                *sent = Some(now_ms);
                leg.clone()
            })
            .collect()
    }

    /// The log acknowledged a leg: it is no longer owed. False when it was not.
    pub fn acknowledged(&mut self, transfer: &TransferId) -> bool {
        self.pending.remove(transfer).is_some()
    }
}

/// The coordinator's order to close `window` everywhere, under its lease's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutOffMarker {
    pub window: WindowId,
    pub coordinator: Epoch,
}

/// A partition's sums of one window, sealed in its store and published to the
/// coordinator (again, unchanged, whenever it is asked again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSums {
    pub window: WindowId,
    pub partition: PartitionId,
    pub sums: WindowSums<BankCode>,
}

/// What a partition does with a cut-off marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// Seal this window (its sums, in one write under the partition's epoch) and
    /// stamp every later transfer with the next.
    Seal(WindowId),
    /// Sealed already: publish the stored sums again (the first publication, or
    /// the coordinator, may have been lost).
    Resend(WindowId),
    /// From a coordinator older than one already obeyed: ignored.
    Stale,
    /// For a window past the open one. A coordinator cuts a window only after
    /// every partition sealed the one before, so this clock is behind its store's:
    /// its owner has lost the partition (the next write will be fenced) and must
    /// not act on it.
    Ahead { open: WindowId },
}

/// A partition's clock of windows: the window its transfers are stamped with now,
/// and the newest coordinator epoch it has obeyed. Both are stored with each seal
/// and read back at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionWindows {
    open: WindowId,
    coordinator: Epoch,
}

impl PartitionWindows {
    pub fn new(open: WindowId, coordinator: Epoch) -> Self {
        PartitionWindows { open, coordinator }
    }

    /// The window a transfer committed now belongs to.
    pub fn open(&self) -> WindowId {
        self.open
    }

    pub fn coordinator(&self) -> Epoch {
        self.coordinator
    }

    /// The marker's outcome. `Seal` moves the clock on at once: the caller stores
    /// the seal before committing anything stamped with the next window, and on a
    /// failed seal rebuilds the clock from its store.
    pub fn on_marker(&mut self, marker: CutOffMarker) -> MarkerOutcome {
        if marker.coordinator < self.coordinator {
            return MarkerOutcome::Stale;
        }
        self.coordinator = marker.coordinator;
        match marker.window.cmp(&self.open) {
            std::cmp::Ordering::Less => MarkerOutcome::Resend(marker.window),
            std::cmp::Ordering::Equal => {
                let sealed = self.open;
                self.open = next(sealed);
                MarkerOutcome::Seal(sealed)
            }
            std::cmp::Ordering::Greater => MarkerOutcome::Ahead { open: self.open },
        }
    }
}

/// The window after `window`.
pub fn next(window: WindowId) -> WindowId {
    WindowId::new(window.get() + 1).expect("a window after a positive one is positive")
}

/// A refused seal: the coordinator keeps the first and reports the other.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealRefused {
    #[error("{partition} is not in this cut-off")]
    UnknownPartition { partition: PartitionId },
    #[error("sums of window {got}, this cut-off is of window {window}")]
    OtherWindow { window: WindowId, got: WindowId },
    #[error("{partition} sent other sums for window {window} than it sealed before")]
    Conflicting {
        partition: PartitionId,
        window: WindowId,
    },
}

/// The coordinator's cut-off of one window: the partitions' sealed sums as they
/// arrive (once each: an identical copy is a resend, a different one a fault), and
/// the window's sums once every partition's are in.
#[derive(Debug)]
pub struct CutOff {
    window: WindowId,
    partitions: BTreeSet<PartitionId>,
    sealed: BTreeMap<PartitionId, WindowSums<BankCode>>,
}

impl CutOff {
    pub fn new(window: WindowId, partitions: impl IntoIterator<Item = PartitionId>) -> Self {
        CutOff {
            window,
            partitions: partitions.into_iter().collect(),
            sealed: BTreeMap::new(),
        }
    }

    pub fn window(&self) -> WindowId {
        self.window
    }

    pub fn marker(&self, coordinator: Epoch) -> CutOffMarker {
        CutOffMarker {
            window: self.window,
            coordinator,
        }
    }

    /// The partitions whose sums are not in yet: the marker goes to them again.
    pub fn missing(&self) -> Vec<PartitionId> {
        self.partitions
            .iter()
            .filter(|p| !self.sealed.contains_key(p))
            .copied()
            .collect()
    }

    /// Takes a partition's sealed sums; true when they are new.
    pub fn receive(&mut self, sealed: SealedSums) -> Result<bool, SealRefused> {
        if sealed.window != self.window {
            return Err(SealRefused::OtherWindow {
                window: self.window,
                got: sealed.window,
            });
        }
        if !self.partitions.contains(&sealed.partition) {
            return Err(SealRefused::UnknownPartition {
                partition: sealed.partition,
            });
        }
        match self.sealed.get(&sealed.partition) {
            Some(before) if *before == sealed.sums => Ok(false),
            Some(_) => Err(SealRefused::Conflicting {
                partition: sealed.partition,
                window: self.window,
            }),
            None => {
                self.sealed.insert(sealed.partition, sealed.sums);
                Ok(true)
            }
        }
    }

    /// Each partition's sums taken so far, in partition order.
    pub fn sealed(&self) -> impl Iterator<Item = (PartitionId, &WindowSums<BankCode>)> {
        self.sealed.iter().map(|(p, sums)| (*p, sums))
    }

    /// The window's sums, every partition's added, once all are in.
    pub fn result(&self) -> Option<WindowSums<BankCode>> {
        if !self.missing().is_empty() {
            return None;
        }
        let mut sums = WindowSums::default();
        for part in self.sealed.values() {
            sums.add(part);
        }
        Some(sums)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_assignment_reads_back_from_its_text() {
        let assignment = Assignment::parse(" HDFC=1, ICICI=0,ENBD=2").unwrap();
        assert_eq!(assignment.text(), "ENBD=2,HDFC=1,ICICI=0");
        assert_eq!(Assignment::parse(&assignment.text()).unwrap(), assignment);
    }

    use super::*;

    fn w(id: i64) -> WindowId {
        WindowId::new(id).unwrap()
    }

    fn bank(code: &str) -> BankCode {
        BankCode::parse(code).unwrap()
    }

    #[test]
    fn an_assignment_is_read_from_pairs_and_refused_when_malformed() {
        let a = Assignment::parse("ICICI=1, HDFC=1,ENBD=2").unwrap();
        assert_eq!(a.partition_of(&bank("HDFC")), Some(PartitionId(1)));
        assert_eq!(a.partition_of(&bank("ADCB")), None);
        assert_eq!(
            a.partitions().into_iter().collect::<Vec<_>>(),
            [PartitionId(0), PartitionId(1), PartitionId(2)]
        );
        // A bank not named belongs to partition 0.
        assert_eq!(a.owner(&bank("ADCB")), PartitionId(0));
        assert_eq!(a.owner(&bank("ENBD")), PartitionId(2));
        assert_eq!(
            a.elsewhere(&bank("ENBD"), PartitionId(1)),
            Some(PartitionId(2))
        );
        assert_eq!(a.elsewhere(&bank("ENBD"), PartitionId(2)), None);
        assert_eq!(a.banks_of(PartitionId(1)).count(), 2);
        for bad in ["", "ICICI", "ICICI=x", "ICICI=1,ICICI=2", "=1", "ICICI=-1"] {
            assert!(Assignment::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_lease_is_renewed_by_its_holder_and_taken_over_only_once_expired() {
        let (a, b) = (NodeId(1), NodeId(2));
        let first = claim(None, a, 0, 100).unwrap();
        assert_eq!((first.holder, first.epoch), (a, Epoch(1)));
        // Renewed while live: the same epoch, a later expiry.
        let renewed = claim(Some(&first), a, 50, 100).unwrap();
        assert_eq!((renewed.epoch, renewed.expires_at_ms), (Epoch(1), 150));
        // Another node waits for the expiry, then takes it with a higher epoch.
        assert_eq!(
            claim(Some(&renewed), b, 149, 100),
            Err(ClaimRefused::Held {
                holder: a,
                until_ms: 150
            })
        );
        let taken = claim(Some(&renewed), b, 150, 100).unwrap();
        assert_eq!((taken.holder, taken.epoch), (b, Epoch(2)));
        // The former holder, back after expiry, gets a new epoch too.
        let back = claim(Some(&taken), a, 400, 100).unwrap();
        assert_eq!((back.holder, back.epoch), (a, Epoch(3)));
        // An operator moves a live lease: the epoch rises all the same.
        let moved = hand_over(Some(&back), b, 410, 100);
        assert_eq!((moved.holder, moved.epoch), (b, Epoch(4)));
    }

    #[test]
    fn a_store_admits_only_its_owner_s_epoch() {
        assert_eq!(admit(Epoch(2), Epoch(2)), Ok(()));
        assert!(admit(Epoch(2), Epoch(1)).is_err());
        // A writer ahead of the fence has not raised it yet: refused too.
        assert!(admit(Epoch(2), Epoch(3)).is_err());
        assert_eq!(raise(Epoch(2), Epoch(3)), Ok(Epoch(3)));
        assert_eq!(raise(Epoch(3), Epoch(3)), Ok(Epoch(3)));
        assert_eq!(
            raise(Epoch(3), Epoch(2)),
            Err(Fenced {
                fence: Epoch(3),
                writer: Epoch(2)
            })
        );
    }

    fn leg(n: u128) -> CreditLeg {
        CreditLeg {
            transfer: TransferId::from_uuid(uuid::Uuid::from_u128(n)),
            receiver: bank("ENBD"),
            currency: Currency::parse("AED").unwrap(),
            amount: Decimal::new(4400, 2),
            window: w(1),
            from: PartitionId(1),
            epoch: Epoch(1),
        }
    }

    #[test]
    fn an_outbox_resends_what_is_not_acknowledged_and_is_bounded() {
        let mut outbox = Outbox::new(100, 2);
        outbox.committed(leg(1));
        outbox.committed(leg(1));
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox.due(0).len(), 1);
        // Sent, not yet due again.
        assert!(outbox.due(99).is_empty());
        outbox.committed(leg(2));
        assert!(!outbox.has_room());
        assert_eq!(outbox.due(100).len(), 2);
        assert!(outbox.acknowledged(&leg(1).transfer));
        assert!(!outbox.acknowledged(&leg(1).transfer));
        assert!(outbox.has_room());
        assert_eq!(outbox.due(300), vec![leg(2)]);
        assert_eq!(leg(2).message_id(), format!("credit-{}", leg(2).transfer));
    }

    #[test]
    fn a_partition_seals_each_window_once_and_ignores_stale_coordinators() {
        let mut clock = PartitionWindows::new(w(3), Epoch(1));
        let marker = |window, epoch| CutOffMarker {
            window: w(window),
            coordinator: Epoch(epoch),
        };
        assert_eq!(clock.on_marker(marker(3, 1)), MarkerOutcome::Seal(w(3)));
        assert_eq!(clock.open(), w(4));
        assert_eq!(clock.on_marker(marker(3, 1)), MarkerOutcome::Resend(w(3)));
        assert_eq!(
            clock.on_marker(marker(5, 1)),
            MarkerOutcome::Ahead { open: w(4) }
        );
        // A new coordinator: its markers are obeyed, the old one's no longer.
        assert_eq!(clock.on_marker(marker(4, 2)), MarkerOutcome::Seal(w(4)));
        assert_eq!(clock.on_marker(marker(5, 1)), MarkerOutcome::Stale);
        assert_eq!((clock.open(), clock.coordinator()), (w(5), Epoch(2)));
    }

    fn sealed(partition: u32, window: i64, amount: i64) -> SealedSums {
        let inr = Currency::parse("INR").unwrap();
        let mut sums = WindowSums::default();
        let amount = Decimal::new(amount, 2);
        sums.add_transfer(&bank("ICICI"), &bank("HDFC"), amount, inr, amount, inr);
        SealedSums {
            window: w(window),
            partition: PartitionId(partition),
            sums,
        }
    }

    #[test]
    fn a_cut_off_adds_every_partition_s_sums_once() {
        let mut cut = CutOff::new(w(7), [PartitionId(1), PartitionId(2)]);
        assert_eq!(cut.marker(Epoch(3)).window, w(7));
        assert_eq!(cut.receive(sealed(1, 7, 100)), Ok(true));
        assert_eq!(cut.result(), None);
        assert_eq!(cut.missing(), [PartitionId(2)]);
        // A resend is taken once; other sums from the same partition are a fault.
        assert_eq!(cut.receive(sealed(1, 7, 100)), Ok(false));
        assert!(matches!(
            cut.receive(sealed(1, 7, 999)),
            Err(SealRefused::Conflicting { .. })
        ));
        assert!(matches!(
            cut.receive(sealed(2, 6, 100)),
            Err(SealRefused::OtherWindow { .. })
        ));
        assert!(matches!(
            cut.receive(sealed(9, 7, 100)),
            Err(SealRefused::UnknownPartition { .. })
        ));
        assert_eq!(cut.receive(sealed(2, 7, 250)), Ok(true));
        let result = cut.result().unwrap();
        assert_eq!(result.transfer_count, 2);
        let inr = Currency::parse("INR").unwrap();
        assert_eq!(result.debits[&(bank("ICICI"), inr)], Decimal::new(350, 2));
    }
}
