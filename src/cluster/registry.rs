//! The hub's registry across the cluster (docs/SCALE-OUT.md, "The registry across
//! partitions"). Every partition decides with the whole registry (a receiver's
//! status, the corridor's rate, the screening list), so every node keeps all of it;
//! each record has one home where it changes: a bank's record at the bank's
//! partition, the corridors and the screening list at partition 0
//! (`REGISTRY_HOME`). The HTTP edge forwards a change to its home
//! (`http::cluster`); the home publishes what it is the home of whenever it changed
//! (checked every `CHECK_INTERVAL`), and every other node brings its copy to what
//! was published, through the engine's own commands (stored and audited as the
//! engine's "cluster registry" changes, the actors told at once).
//!
//! On the log (`DELTRAN_REGISTRY`, the last message of each subject kept): subject
//! `<p>` holds partition p's manifest (its banks; at the home also the corridors and
//! how many chunks the screening list takes), and `<p>.screening.<k>` the list's
//! chunks (a list can be larger than one NATS message). A chunk carries its
//! manifest's generation, so a copy is taken only when every chunk of one
//! publication is there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::node::ClusterNode;
use crate::actors::Engine;
use crate::domain::cluster::PartitionId;
use crate::domain::registry::{BankPatch, BankRecord, CorridorPatch, CorridorRecord};
use crate::domain::registry::{NewBank, NewCorridor};
use crate::domain::screening::{NewScreeningEntry, ScreeningEntry, ScreeningList};
use crate::domain::{
    BankCode, BankStatus, Bic, CorridorId, CorridorStatus, Currency, FxRate, Origin,
};
use crate::store::{Store, StoreError};

/// The partition whose node is the home of the hub-wide records: the corridors and
/// the screening list.
pub const REGISTRY_HOME: PartitionId = PartitionId(0);
/// How often a home checks its store for a change to publish, and a copy that could
/// not be brought up to date is tried again.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Most bytes of screening entries in one chunk (a NATS message is 1 MiB by default).
const CHUNK_BYTES_MAX: usize = 256 * 1024;
/// Who changes a copy, in the audit log.
const REPLICA: Origin = Origin::Engine("cluster registry");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct BankWire {
    code: String,
    name: String,
    country: String,
    status: String,
    caps: BTreeMap<String, Decimal>,
    bic: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CorridorWire {
    id: String,
    fx_rate: Decimal,
    status: String,
    amount_max: Decimal,
    report_threshold: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct EntryWire {
    list: String,
    name: String,
    aliases: Vec<String>,
    countries: Vec<String>,
    reference: Option<String>,
}

/// What a partition is the home of, as read from its store.
#[derive(Clone, Debug, PartialEq)]
struct Home {
    banks: Vec<BankWire>,
    /// At `REGISTRY_HOME` only.
    corridors: Option<Vec<CorridorWire>>,
    /// At `REGISTRY_HOME` only; sorted.
    screening: Option<Vec<EntryWire>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Manifest {
    generation: u64,
    banks: Vec<BankWire>,
    corridors: Option<Vec<CorridorWire>>,
    screening_chunks: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Chunk {
    generation: u64,
    entries: Vec<EntryWire>,
}

fn bank_wire(record: &BankRecord) -> BankWire {
    BankWire {
        code: record.code.as_str().to_string(),
        name: record.name.clone(),
        country: record.country.clone(),
        status: record.status.as_str().to_string(),
        caps: record
            .net_debit_caps
            .iter()
            .map(|(c, cap)| (c.as_str().to_string(), *cap))
            .collect(),
        bic: record.bic.as_ref().map(|b| b.as_str().to_string()),
    }
}

fn corridor_wire(record: &CorridorRecord) -> CorridorWire {
    CorridorWire {
        id: record.id.to_string(),
        fx_rate: record.fx_rate.value(),
        status: record.status.as_str().to_string(),
        amount_max: record.amount_max,
        report_threshold: record.report_threshold,
    }
}

fn entry_wire(entry: &ScreeningEntry) -> EntryWire {
    EntryWire {
        list: entry.list.as_str().to_string(),
        name: entry.name.clone(),
        aliases: entry.aliases.clone(),
        countries: entry.countries.clone(),
        reference: entry.reference.clone(),
    }
}

/// A published bank as the registry's command takes it; `None` when it does not read.
fn new_bank(wire: &BankWire) -> Option<NewBank> {
    let net_debit_caps = wire
        .caps
        .iter()
        .map(|(c, cap)| Currency::parse(c).ok().map(|c| (c, *cap)))
        .collect::<Option<_>>()?;
    Some(NewBank {
        code: BankCode::parse(&wire.code).ok()?,
        name: wire.name.clone(),
        country: wire.country.clone(),
        status: BankStatus::parse(&wire.status).ok()?,
        net_debit_caps,
        bic: wire.bic.as_deref().map(Bic::parse).transpose().ok()?,
    })
}

fn new_corridor(wire: &CorridorWire) -> Option<NewCorridor> {
    Some(NewCorridor {
        id: CorridorId::parse(&wire.id).ok()?,
        fx_rate: FxRate::from_stored(wire.fx_rate),
        status: CorridorStatus::parse(&wire.status).ok()?,
        amount_max: wire.amount_max,
        report_threshold: wire.report_threshold,
    })
}

fn new_entry(wire: &EntryWire) -> Option<NewScreeningEntry> {
    Some(NewScreeningEntry {
        list: ScreeningList::parse(&wire.list)?,
        name: wire.name.clone(),
        aliases: wire.aliases.clone(),
        countries: wire.countries.clone(),
        reference: wire.reference.clone(),
    })
}

/// The screening list's entries in chunks of at most `CHUNK_BYTES_MAX` bytes of
/// JSON each (one entry larger than that alone in its chunk).
fn chunks(entries: &[EntryWire]) -> Vec<Vec<EntryWire>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for entry in entries {
        let size = serde_json::to_vec(entry).map_or(0, |json| json.len());
        let last = chunks.last_mut().expect("one chunk at least");
        if bytes + size > CHUNK_BYTES_MAX && !last.is_empty() {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        chunks
            .last_mut()
            .expect("one chunk at least")
            .push(entry.clone());
    }
    chunks
}

impl ClusterNode {
    /// What this node's partition is the home of, from its store: the banks it owns
    /// and, at the registry's home, the corridors and the screening list (re-read
    /// only when its count or newest id moved; `list` keeps the last read).
    async fn home(
        &self,
        store: &Store,
        list: &mut Option<((i64, i64), Vec<EntryWire>)>,
    ) -> Result<Home, StoreError> {
        let banks = store
            .banks()
            .await?
            .iter()
            .filter(|b| self.assignment.owner(&b.code) == self.partition)
            .map(bank_wire)
            .collect();
        if self.partition != REGISTRY_HOME {
            return Ok(Home {
                banks,
                corridors: None,
                screening: None,
            });
        }
        let corridors = store.corridors().await?.iter().map(corridor_wire).collect();
        let mark = store.screening_mark().await?;
        if list.as_ref().is_none_or(|(seen, _)| *seen != mark) {
            let mut entries: Vec<EntryWire> = store
                .screening_entries()
                .await?
                .iter()
                .map(entry_wire)
                .collect();
            entries.sort();
            *list = Some((mark, entries));
        }
        Ok(Home {
            banks,
            corridors: Some(corridors),
            screening: list.as_ref().map(|(_, entries)| entries.clone()),
        })
    }

    /// Publishes what this partition is the home of whenever it changed: the
    /// screening list's chunks first, then the manifest that names them.
    pub(super) async fn publish_registry(self: Arc<Self>, store: Store) {
        let mut published: Option<Home> = None;
        let mut list = None;
        loop {
            match self.home(&store, &mut list).await {
                Ok(home) if published.as_ref() != Some(&home) => {
                    match self.publish_home(&home).await {
                        Ok(()) => published = Some(home),
                        Err(e) => {
                            tracing::debug!(error = %e, "registry not published; trying again")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "registry not read; trying again"),
            }
            tokio::time::sleep(CHECK_INTERVAL).await;
        }
    }

    async fn publish_home(&self, home: &Home) -> Result<(), super::ClusterError> {
        let generation = super::keeper::wall_clock_ms();
        let p = self.partition.0;
        let chunks = home.screening.as_deref().map(chunks);
        for (k, entries) in chunks.iter().flatten().enumerate() {
            let chunk = Chunk {
                generation,
                entries: entries.clone(),
            };
            let json = serde_json::to_vec(&chunk).expect("serializable");
            self.log
                .publish_registry(&format!("{p}.screening.{k}"), json)
                .await?;
        }
        let manifest = Manifest {
            generation,
            banks: home.banks.clone(),
            corridors: home.corridors.clone(),
            screening_chunks: chunks.map(|c| c.len() as u32),
        };
        let json = serde_json::to_vec(&manifest).expect("serializable");
        self.log.publish_registry(&p.to_string(), json).await
    }

    /// Brings this node's copy of what other partitions are the home of to what they
    /// last published, as they publish it.
    pub(super) async fn read_registry(self: Arc<Self>, engine: Engine, store: Store) {
        let mut manifests: BTreeMap<PartitionId, Manifest> = BTreeMap::new();
        let mut chunks: BTreeMap<(PartitionId, u32), Chunk> = BTreeMap::new();
        let mut applied: BTreeMap<PartitionId, u64> = BTreeMap::new();
        loop {
            let mut messages = match self.log.registry().await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "the registry's consumer is not open yet");
                    tokio::time::sleep(CHECK_INTERVAL).await;
                    continue;
                }
            };
            loop {
                let next = tokio::time::timeout(CHECK_INTERVAL, messages.next()).await;
                match next {
                    Ok(None) | Ok(Some(Err(_))) => break,
                    Ok(Some(Ok((subject, payload)))) => {
                        read_message(&subject, &payload, &mut manifests, &mut chunks)
                    }
                    Err(_) => {}
                }
                for (from, manifest) in &manifests {
                    if *from == self.partition || applied.get(from) == Some(&manifest.generation) {
                        continue;
                    }
                    let Ok(list) = published_list(*from, manifest, &chunks) else {
                        // Not every chunk of this publication is here yet.
                        continue;
                    };
                    match self.take(&engine, &store, *from, manifest, list).await {
                        Ok(()) => {
                            applied.insert(*from, manifest.generation);
                        }
                        Err(e) => tracing::warn!(
                            partition = from.0,
                            error = %e,
                            "the registry's copy is not up to date yet; trying again"
                        ),
                    }
                }
            }
        }
    }

    /// Brings this node's copy of what partition `from` is the home of to `manifest`
    /// (and `list`, the screening list it published): creates what is missing and
    /// changes what differs, nothing else.
    async fn take(
        &self,
        engine: &Engine,
        store: &Store,
        from: PartitionId,
        manifest: &Manifest,
        list: Option<Vec<EntryWire>>,
    ) -> Result<(), String> {
        let error = |e: &dyn std::fmt::Display| e.to_string();
        let local_banks: BTreeMap<BankCode, BankRecord> = store
            .banks()
            .await
            .map_err(|e| error(&e))?
            .into_iter()
            .map(|b| (b.code.clone(), b))
            .collect();
        for published in &manifest.banks {
            let Some(bank) = new_bank(published) else {
                tracing::warn!(bank = published.code, "a published bank does not read");
                continue;
            };
            // A partition is the home of the banks it owns, and of no other.
            if self.assignment.owner(&bank.code) != from {
                continue;
            }
            match local_banks.get(&bank.code) {
                None => {
                    engine
                        .create_bank(&REPLICA, bank)
                        .await
                        .map_err(|e| error(&e))?;
                }
                Some(local) if bank_wire(local) != *published => {
                    let patch = BankPatch {
                        name: (local.name != bank.name).then_some(bank.name),
                        status: (local.status != bank.status).then_some(bank.status),
                        net_debit_caps: bank.net_debit_caps,
                        bic: bank.bic.filter(|b| local.bic.as_ref() != Some(b)),
                    };
                    engine
                        .update_bank(&REPLICA, bank.code, patch)
                        .await
                        .map_err(|e| error(&e))?;
                }
                Some(_) => {}
            }
        }
        if from != REGISTRY_HOME {
            return Ok(());
        }
        let local_corridors: BTreeMap<CorridorId, CorridorRecord> = store
            .corridors()
            .await
            .map_err(|e| error(&e))?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        for published in manifest.corridors.iter().flatten() {
            let Some(corridor) = new_corridor(published) else {
                tracing::warn!(
                    corridor = published.id,
                    "a published corridor does not read"
                );
                continue;
            };
            match local_corridors.get(&corridor.id) {
                None => {
                    engine
                        .create_corridor(&REPLICA, corridor)
                        .await
                        .map_err(|e| error(&e))?;
                }
                Some(local) if corridor_wire(local) != *published => {
                    let patch = CorridorPatch {
                        fx_rate: (local.fx_rate != corridor.fx_rate).then_some(corridor.fx_rate),
                        status: (local.status != corridor.status).then_some(corridor.status),
                        amount_max: (local.amount_max != corridor.amount_max)
                            .then_some(corridor.amount_max),
                        report_threshold: corridor
                            .report_threshold
                            .filter(|t| local.report_threshold != Some(*t)),
                    };
                    engine
                        .update_corridor(&REPLICA, corridor.id, patch)
                        .await
                        .map_err(|e| error(&e))?;
                }
                Some(_) => {}
            }
        }
        if let Some(published) = list {
            let mut local: Vec<EntryWire> = store
                .screening_entries()
                .await
                .map_err(|e| error(&e))?
                .iter()
                .map(entry_wire)
                .collect();
            local.sort();
            if local != published {
                let entries: Vec<NewScreeningEntry> =
                    published.iter().filter_map(new_entry).collect();
                engine
                    .import_screening_entries(&REPLICA, &entries, true)
                    .await
                    .map_err(|e| error(&e))?;
            }
        }
        Ok(())
    }
}

/// The screening list partition `from` published with `manifest` (`None` when it
/// publishes none), once every chunk of that publication is here (`Err` until then).
fn published_list(
    from: PartitionId,
    manifest: &Manifest,
    chunks: &BTreeMap<(PartitionId, u32), Chunk>,
) -> Result<Option<Vec<EntryWire>>, ()> {
    let Some(n) = manifest.screening_chunks else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for k in 0..n {
        let chunk = chunks
            .get(&(from, k))
            .filter(|c| c.generation == manifest.generation)
            .ok_or(())?;
        list.extend(chunk.entries.iter().cloned());
    }
    Ok(Some(list))
}

/// Files one registry message: a partition's manifest (`<p>`) or a chunk of its
/// screening list (`<p>.screening.<k>`); one that does not read is logged and left.
fn read_message(
    subject: &str,
    payload: &[u8],
    manifests: &mut BTreeMap<PartitionId, Manifest>,
    chunks: &mut BTreeMap<(PartitionId, u32), Chunk>,
) {
    let mut parts = subject.split('.');
    let partition = parts.next().and_then(|p| p.parse().ok()).map(PartitionId);
    if subject == super::log::ASSIGNMENT_SUBJECT {
        return;
    }
    let read = match (partition, parts.next(), parts.next()) {
        (Some(p), None, _) => serde_json::from_slice(payload)
            .map(|m| {
                manifests.insert(p, m);
            })
            .ok(),
        (Some(p), Some("screening"), Some(k)) => k.parse().ok().and_then(|k| {
            serde_json::from_slice(payload)
                .map(|c| {
                    chunks.insert((p, k), c);
                })
                .ok()
        }),
        _ => None,
    };
    if read.is_none() {
        tracing::warn!(subject, "a registry message that does not read");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> EntryWire {
        EntryWire {
            list: "sanctions".into(),
            name: name.into(),
            aliases: Vec::new(),
            countries: vec!["IR".into()],
            reference: None,
        }
    }

    #[test]
    fn a_large_list_is_cut_into_chunks_that_keep_every_entry_in_order() {
        let entries: Vec<EntryWire> = (0..5_000).map(|i| entry(&format!("{i:0>150}"))).collect();
        let cut = chunks(&entries);
        assert!(cut.len() > 1, "{} chunks", cut.len());
        for chunk in &cut {
            assert!(serde_json::to_vec(chunk).unwrap().len() <= CHUNK_BYTES_MAX + 1024);
        }
        assert_eq!(cut.concat(), entries);
        assert_eq!(chunks(&[]), vec![Vec::<EntryWire>::new()]);
    }

    #[test]
    fn a_manifest_and_its_chunks_are_filed_by_subject() {
        let (mut manifests, mut chunks) = (BTreeMap::new(), BTreeMap::new());
        let manifest = Manifest {
            generation: 7,
            banks: Vec::new(),
            corridors: Some(Vec::new()),
            screening_chunks: Some(1),
        };
        let chunk = Chunk {
            generation: 7,
            entries: vec![entry("A")],
        };
        read_message(
            "0",
            &serde_json::to_vec(&manifest).unwrap(),
            &mut manifests,
            &mut chunks,
        );
        read_message(
            "0.screening.0",
            &serde_json::to_vec(&chunk).unwrap(),
            &mut manifests,
            &mut chunks,
        );
        read_message("0.other", b"{}", &mut manifests, &mut chunks);
        read_message("x", b"{}", &mut manifests, &mut chunks);
        assert_eq!(manifests[&PartitionId(0)].generation, 7);
        assert_eq!(chunks[&(PartitionId(0), 0)].entries, vec![entry("A")]);
        assert_eq!((manifests.len(), chunks.len()), (1, 1));
    }

    #[test]
    fn a_published_bank_reads_back_as_the_record_it_came_from() {
        let wire = BankWire {
            code: "ICICI".into(),
            name: "ICICI Bank".into(),
            country: "IN".into(),
            status: "suspended".into(),
            caps: [("INR".to_string(), Decimal::new(1_000_000, 2))].into(),
            bic: Some("ICICINBBXXX".into()),
        };
        let bank = new_bank(&wire).unwrap();
        assert_eq!(bank.status, BankStatus::Suspended);
        assert_eq!(
            bank.net_debit_caps[&Currency::parse("INR").unwrap()],
            Decimal::new(10_000, 0)
        );
        let bad = BankWire {
            status: "closed".into(),
            ..wire
        };
        assert!(new_bank(&bad).is_none());
    }
}
