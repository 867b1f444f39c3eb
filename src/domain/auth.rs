//! Who a caller is and what their role lets them do, and the API keys that say so.
//!
//! A key is `dtk_<id>_<secret>`: a public id (32 hex digits) that finds the key and a
//! secret of 32 random bytes (64 hex digits). Only the SHA-256 of the secret is kept:
//! a key is a long random secret, not a password, so a fast hash is a safe stored
//! form and costs well under a microsecond per request, where a password hash would
//! cost milliseconds. Secrets are compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::errors::InputError;
use super::ids::BankCode;

/// What a key's text starts with, so a leaked key is easy to recognise and scan for.
const KEY_PREFIX: &str = "dtk_";
/// Random bytes in a key's secret.
pub const KEY_SECRET_BYTES: usize = 32;

text_enum! {
    /// The three kinds of caller: the hub's operator (does everything), a bank
    /// (bound to one bank code: its own transfers and data only), and an auditor
    /// (reads everything, changes nothing).
    Role {
        Operator => "operator",
        Bank => "bank",
        Auditor => "auditor",
    }
}

/// A key's public id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct KeyId(Uuid);

impl KeyId {
    pub fn from_uuid(id: Uuid) -> Self {
        KeyId(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, InputError> {
        Uuid::parse_str(text)
            .map(KeyId)
            .map_err(|_| InputError::KeyIdInvalid)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

/// The SHA-256 of a key's secret: the only form in which a key is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    fn of(secret: &[u8]) -> Self {
        SecretHash(Sha256::digest(secret).into())
    }

    /// The hash in hex (64 digits), as the cluster's nodes share keys.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// A hash from 64 hex digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut hash = [0u8; 32];
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SecretHash(hash))
    }

    /// Equal, in time that does not depend on where the two differ.
    fn matches(&self, other: &SecretHash) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

/// Who a caller is: the key it presented, its role and, for a bank, which bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: KeyId,
    pub role: Role,
    /// Set exactly when `role` is `Bank`.
    pub bank: Option<BankCode>,
}

impl Principal {
    /// The operator may change the registry, windows, settlements and keys.
    pub fn may_operate(&self) -> bool {
        self.role == Role::Operator
    }

    /// The operator and the auditor read everything; a bank reads its own.
    pub fn reads_everything(&self) -> bool {
        matches!(self.role, Role::Operator | Role::Auditor)
    }

    /// Whether this caller may submit a transfer sent by `sender`: the operator on
    /// behalf of any bank (test traffic, corrections), a bank only as itself.
    pub fn may_send_as(&self, sender: &BankCode) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Bank => self.bank.as_ref() == Some(sender),
            Role::Auditor => false,
        }
    }

    /// Whether data concerning `bank` is this caller's to see.
    pub fn sees(&self, bank: &BankCode) -> bool {
        self.reads_everything() || self.bank.as_ref() == Some(bank)
    }

    /// For a bank, its own code; `None` for callers who see every bank.
    pub fn only_bank(&self) -> Option<&BankCode> {
        if self.reads_everything() {
            None
        } else {
            self.bank.as_ref()
        }
    }
}

/// Where a change came from, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An authenticated API request.
    Api {
        principal: Principal,
        request_id: String,
    },
    /// The `deltran` command line on the engine's host (e.g. `deltran keys create`).
    CommandLine,
    /// The engine itself: its first start (reference keys) or the demo settlement rail.
    Engine(&'static str),
}

/// A stored key: who it stands for, and the hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub principal: Principal,
    pub secret_hash: SecretHash,
    pub label: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A new key: its full text (shown once) and what is stored of it.
pub struct NewKey {
    pub text: String,
    pub id: KeyId,
    pub secret_hash: SecretHash,
}

impl NewKey {
    /// A key from a fresh id and `secret`, which must come from a secure random source.
    pub fn from_random(id: Uuid, secret: [u8; KEY_SECRET_BYTES]) -> Self {
        let secret_hex = hex(&secret);
        NewKey {
            text: format!("{KEY_PREFIX}{}_{secret_hex}", id.simple()),
            id: KeyId(id),
            secret_hash: SecretHash::of(secret_hex.as_bytes()),
        }
    }
}

/// A key as a caller presented it, split into its id and the hash of its secret.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: KeyId,
    hash: SecretHash,
}

impl PresentedKey {
    /// `None` when the text is not shaped like a key at all.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id_is_hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let secret_is_hex =
            secret.len() == 2 * KEY_SECRET_BYTES && secret.bytes().all(|b| b.is_ascii_hexdigit());
        if !(id_is_hex && secret_is_hex) {
            return None;
        }
        Some(PresentedKey {
            id: KeyId(Uuid::parse_str(id).ok()?),
            hash: SecretHash::of(secret.as_bytes()),
        })
    }

    /// Whether the secret is the one whose hash was stored.
    pub fn matches(&self, stored: &SecretHash) -> bool {
        self.hash.matches(stored)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[(b >> 4) as usize] as char);
        text.push(DIGITS[(b & 0xf) as usize] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> NewKey {
        NewKey::from_random(Uuid::from_u128(seed as u128 + 1), [seed; KEY_SECRET_BYTES])
    }

    #[test]
    fn a_key_presented_as_issued_matches_its_stored_hash_and_no_other() {
        let (a, b) = (key(1), key(2));
        let presented = PresentedKey::parse(&a.text).expect("well formed");
        assert_eq!(presented.id, a.id);
        assert!(presented.matches(&a.secret_hash));
        assert!(!presented.matches(&b.secret_hash));
        assert!(a.text.starts_with("dtk_") && a.text.len() == 4 + 32 + 1 + 64);
    }

    #[test]
    fn text_that_is_not_shaped_like_a_key_is_refused() {
        let good = key(3).text;
        let tampered = format!("{}0", &good[..good.len() - 1]);
        assert!(!PresentedKey::parse(&tampered)
            .unwrap()
            .matches(&key(3).secret_hash));
        for bad in [
            "",
            "dtk_",
            "Bearer x",
            &good[4..],
            &good[..good.len() - 1],
            &good.replace('_', "-"),
            &format!("{good}x"),
        ] {
            assert_eq!(PresentedKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn roles_decide_what_a_caller_may_do() {
        let icici = BankCode::parse("ICICI").unwrap();
        let enbd = BankCode::parse("ENBD").unwrap();
        let who = |role, bank: Option<&BankCode>| Principal {
            key_id: KeyId(Uuid::nil()),
            role,
            bank: bank.cloned(),
        };
        let operator = who(Role::Operator, None);
        let auditor = who(Role::Auditor, None);
        let bank = who(Role::Bank, Some(&icici));
        assert!(operator.may_operate() && operator.may_send_as(&enbd));
        assert!(!auditor.may_operate() && !auditor.may_send_as(&icici) && auditor.sees(&enbd));
        assert!(!bank.may_operate() && bank.may_send_as(&icici) && !bank.may_send_as(&enbd));
        assert!(bank.sees(&icici) && !bank.sees(&enbd));
        assert_eq!(bank.only_bank(), Some(&icici));
        assert_eq!(auditor.only_bank(), None);
        for &role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
