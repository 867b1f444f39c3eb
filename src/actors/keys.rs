//! The keys the engine accepts, held in memory so that authenticating a request
//! costs a map lookup and one SHA-256 (no database round trip). The store is the
//! truth: the ring is loaded at start, updated at once by the key commands, and
//! re-read every `KEY_RELOAD_INTERVAL` so that keys made or revoked with the command
//! line on the engine's host take effect within that interval.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::Context as _;

use super::commands::{naming, CommandError};
use crate::domain::auth::{KeyRecord, NewKey, PresentedKey, SecretHash, KEY_SECRET_BYTES};
use crate::domain::{BankCode, KeyId, Origin, Principal, Role};
use crate::store::{Store, StoreError};

/// How often the ring is re-read from the store.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Why a caller is not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// Something was presented, but it is not a key this engine issued.
    Invalid,
    /// A key that was revoked.
    Revoked,
}

struct Entry {
    principal: Principal,
    secret_hash: SecretHash,
    revoked: bool,
}

/// Every key by id; shared by the HTTP workers (read) and the key commands (write).
pub struct KeyRing {
    keys: RwLock<Keys>,
    /// The keys as the store held them at the last reload, for whoever follows them
    /// (cluster mode shares them with the other nodes).
    stored: tokio::sync::watch::Sender<Vec<KeyRecord>>,
}

impl Default for KeyRing {
    fn default() -> Self {
        KeyRing {
            keys: RwLock::default(),
            stored: tokio::sync::watch::Sender::new(Vec::new()),
        }
    }
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<KeyId, Entry>,
    /// Cluster mode: the keys the other partitions' stores hold, as they shared them
    /// (`cluster::node`), so that a key works on every node. This store's own keys
    /// come first.
    others: HashMap<KeyId, Entry>,
    /// Counts `put`s, so that a reload read before a `put` does not undo it.
    version: u64,
}

impl KeyRing {
    /// The version to pass to `replace_all` for a read of the store starting now.
    pub fn version(&self) -> u64 {
        self.keys.read().expect("lock").version
    }

    /// Replaces the whole ring with what the store held at a read that started at
    /// `version`; skipped if a key was put since (the next reload catches up).
    pub fn replace_all(&self, records: Vec<KeyRecord>, version: u64) {
        self.stored.send_if_modified(|stored| {
            let changed = *stored != records;
            if changed {
                stored.clone_from(&records);
            }
            changed
        });
        let by_id = records
            .into_iter()
            .map(|r| (r.principal.key_id, entry(r)))
            .collect();
        let mut keys = self.keys.write().expect("lock");
        if keys.version == version {
            keys.by_id = by_id;
        }
    }

    /// The keys as the store held them at each reload, as they change.
    pub fn stored(&self) -> tokio::sync::watch::Receiver<Vec<KeyRecord>> {
        self.stored.subscribe()
    }

    /// Cluster mode: replaces the keys of the other partitions.
    pub fn replace_others(&self, records: Vec<KeyRecord>) {
        let others = records
            .into_iter()
            .map(|r| (r.principal.key_id, entry(r)))
            .collect();
        self.keys.write().expect("lock").others = others;
    }

    /// Adds or updates one key (a key made or revoked just now).
    pub fn put(&self, record: KeyRecord) {
        let mut keys = self.keys.write().expect("lock");
        keys.version += 1;
        keys.by_id.insert(record.principal.key_id, entry(record));
    }

    /// Who presents `text` (the part after `Bearer `).
    pub fn authenticate(&self, text: &str) -> Result<Principal, AuthFailure> {
        let presented = PresentedKey::parse(text).ok_or(AuthFailure::Invalid)?;
        let keys = self.keys.read().expect("lock");
        let entry = keys.find(presented.id).ok_or(AuthFailure::Invalid)?;
        if !presented.matches(&entry.secret_hash) {
            return Err(AuthFailure::Invalid);
        }
        if entry.revoked {
            return Err(AuthFailure::Revoked);
        }
        Ok(entry.principal.clone())
    }

    /// Whether `id` is a key the ring holds and has not revoked (for sessions opened
    /// with it, which must end when it is revoked).
    pub fn is_active(&self, id: KeyId) -> bool {
        self.keys
            .read()
            .expect("lock")
            .find(id)
            .is_some_and(|e| !e.revoked)
    }
}

impl Keys {
    fn find(&self, id: KeyId) -> Option<&Entry> {
        self.by_id.get(&id).or_else(|| self.others.get(&id))
    }
}

fn entry(record: KeyRecord) -> Entry {
    Entry {
        revoked: record.revoked_at.is_some(),
        principal: record.principal,
        secret_hash: record.secret_hash,
    }
}

/// A new key with a random id and a secret from the operating system's secure source.
pub fn generate_key() -> NewKey {
    let mut secret = [0u8; KEY_SECRET_BYTES];
    getrandom::getrandom(&mut secret).expect("the operating system gives random bytes");
    NewKey::from_random(uuid::Uuid::new_v4(), secret)
}

/// Makes and stores a key for `role` (and `bank`, exactly for a bank key), with its
/// audit entry from `origin`. Shared by the engine's key command and the command line,
/// which runs without an engine.
pub async fn create_key(
    store: &Store,
    origin: &Origin,
    role: Role,
    bank: Option<BankCode>,
    label: Option<String>,
) -> Result<(KeyRecord, String), CommandError> {
    let key = generate_key();
    let principal = Principal {
        key_id: key.id,
        role,
        bank,
    };
    let record = store
        .insert_key(origin, &key, &principal, label.as_deref())
        .await
        .map_err(|e| match (&e, &principal.bank) {
            // The only reference a key makes is to its bank (SQLSTATE 23503).
            (StoreError::Query(_), Some(code)) if e.sqlstate() == Some("23503") => {
                CommandError::BankUnknown {
                    field: "bank",
                    code: code.clone(),
                }
            }
            _ => e.into(),
        })?;
    Ok((record, key.text))
}

/// Revokes a key in the store, with its audit entry from `origin` (revoking twice
/// keeps the first time and its entry).
pub async fn revoke_key(
    store: &Store,
    origin: &Origin,
    id: KeyId,
) -> Result<KeyRecord, CommandError> {
    store
        .revoke_key(origin, id)
        .await
        .map_err(naming(format!("key {id}")))
}

/// First start of the embedded engine: one operator key and one key per bank, written
/// to `file` (readable by its owner only) and nowhere else; the log names the file,
/// never the keys.
pub async fn write_first_keys(store: &Store, file: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let origin = Origin::Engine("first start");
    let mut lines = vec![
        "# DelTran API keys made at the engine's first start. Each is shown only here;".to_string(),
        "# keep this file secret. Columns: role, bank (- for none), key.".to_string(),
    ];
    let (_, operator) = create_key(
        store,
        &origin,
        Role::Operator,
        None,
        Some("first start".into()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot make the first operator key: {e}"))?;
    lines.push(format!("operator - {operator}"));
    for bank in store.banks().await? {
        let (_, key) = create_key(
            store,
            &origin,
            Role::Bank,
            Some(bank.code.clone()),
            Some("first start".into()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot make a key for bank {}: {e}", bank.code))?;
        lines.push(format!("bank {} {key}", bank.code));
    }
    // A fresh file (create_new: never through a symlink, and the mode applies): a
    // file left by an earlier cluster holds keys that no longer exist.
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot replace {}", file.display()))
        }
        _ => {}
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot write the first keys to {}", file.display()))?;
    out.write_all((lines.join("\n") + "\n").as_bytes())?;
    out.sync_all()?;
    tracing::info!(file = %file.display(), "made an operator key and one key per bank; \
                   they are in this file, readable by its owner only");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BankCode, Role};

    fn record(key: &NewKey, role: Role, revoked: bool) -> KeyRecord {
        KeyRecord {
            principal: Principal {
                key_id: key.id,
                role,
                bank: (role == Role::Bank).then(|| BankCode::parse("ICICI").unwrap()),
            },
            secret_hash: key.secret_hash,
            label: None,
            created_at: chrono::Utc::now(),
            revoked_at: revoked.then(chrono::Utc::now),
        }
    }

    #[test]
    fn a_ring_knows_its_keys_and_refuses_revoked_and_foreign_ones() {
        let ring = KeyRing::default();
        let (bank, gone, foreign) = (generate_key(), generate_key(), generate_key());
        ring.replace_all(
            vec![
                record(&bank, Role::Bank, false),
                record(&gone, Role::Operator, true),
            ],
            ring.version(),
        );
        let principal = ring.authenticate(&bank.text).unwrap();
        assert_eq!((principal.role, principal.key_id), (Role::Bank, bank.id));
        assert_eq!(ring.authenticate(&gone.text), Err(AuthFailure::Revoked));
        assert_eq!(ring.authenticate(&foreign.text), Err(AuthFailure::Invalid));
        assert_eq!(ring.authenticate("nonsense"), Err(AuthFailure::Invalid));
        let read_before_put = ring.version();
        ring.put(record(&bank, Role::Bank, true));
        assert_eq!(ring.authenticate(&bank.text), Err(AuthFailure::Revoked));
        // A reload that read the store before the revocation does not undo it.
        ring.replace_all(vec![record(&bank, Role::Bank, false)], read_before_put);
        assert_eq!(ring.authenticate(&bank.text), Err(AuthFailure::Revoked));
        assert_ne!(generate_key().text, generate_key().text);
    }
}
