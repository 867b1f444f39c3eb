//! The audit log: who changed what, when, from where. Every change to the registry,
//! the windows, the settlements, the keys, the settlement balances and the screening
//! list has one entry, written in the same transaction as the change.

use chrono::{DateTime, Utc};

use super::auth::{KeyId, Origin, Role};
use super::ids::BankCode;

text_enum! {
    /// What an audit entry records.
    AuditAction {
        BankCreated => "bank_created",
        BankChanged => "bank_changed",
        CorridorCreated => "corridor_created",
        CorridorChanged => "corridor_changed",
        WindowClosed => "window_closed",
        InstructionConfirmed => "instruction_confirmed",
        InstructionFailed => "instruction_failed",
        KeyCreated => "key_created",
        KeyRevoked => "key_revoked",
        FundsIn => "funds_in",
        FundsOut => "funds_out",
        ScreeningEntryAdded => "screening_entry_added",
        ScreeningEntryRemoved => "screening_entry_removed",
        ScreeningListImported => "screening_list_imported",
    }
}

text_enum! {
    /// Where a change came from, as stored (the kind of an `Origin`).
    OriginKind {
        Api => "api",
        CommandLine => "command_line",
        Engine => "engine",
    }
}

impl Origin {
    pub fn kind(&self) -> OriginKind {
        match self {
            Origin::Api { .. } => OriginKind::Api,
            Origin::CommandLine => OriginKind::CommandLine,
            Origin::Engine(_) => OriginKind::Engine,
        }
    }
}

/// One entry of the audit log, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increases with every entry: the paging cursor.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub origin: OriginKind,
    /// Which part of the engine made the change (`window timer`, `demo rail`, `first
    /// start`), for an `Engine` origin.
    pub engine_part: Option<String>,
    /// The caller's key, role and bank and the request's id, for an `Api` origin.
    pub key_id: Option<KeyId>,
    pub role: Option<Role>,
    pub bank: Option<BankCode>,
    pub request_id: Option<String>,
    pub action: AuditAction,
    /// What changed: a bank code, a corridor id, a window id, an instruction id, a
    /// key id, a screening entry's id, or `import` for a screening list import.
    pub subject: String,
    /// The record before and after the change, as JSON text (the domain knows no
    /// JSON); `before` is `None` for a creation.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Which entries to read; every field `None` reads them all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub subject: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_origins_are_stored_as_fixed_words() {
        for &action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::ALL.len(), 14);
        assert_eq!(AuditAction::parse("bank_deleted"), None);
        assert_eq!(Origin::CommandLine.kind().as_str(), "command_line");
        assert_eq!(Origin::Engine("window timer").kind().as_str(), "engine");
    }
}
