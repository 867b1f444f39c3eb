//! The pure business core: money, identifiers, the rules a transfer must pass,
//! netting, and the records the engine keeps. Nothing here does IO or knows about
//! actors, HTTP, JSON or SQL (see docs/ARCHITECTURE.md for the layers).

/// An enum whose variants are stored and shown as fixed words: `ALL`, `as_str`,
/// `parse` (`None` for any other word) and `Display`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod audit;
pub mod auth;
pub mod books;
pub mod cluster;
pub mod errors;
pub mod fx;
pub mod gridlock;
pub mod ids;
pub mod money;
pub mod netting;
pub mod queue;
pub mod registry;
pub mod report;
pub mod returns;
pub mod rules;
pub mod screening;
pub mod settlement;
pub mod transfer;
pub mod window;

pub use audit::{AuditAction, AuditEntry, AuditFilter, OriginKind};
pub use auth::{KeyId, Origin, Principal, Role};
pub use books::{BankBooks, BankPositions, FundsDirection, FundsMovement, Ledger, StoredBalance};
pub use errors::{InputError, RejectCode};
pub use fx::{convert, FxRate};
pub use ids::{BankCode, BankStatus, Bic, CorridorId, CorridorStatus, TransferId, WindowId};
pub use money::{Amount, Currency};
pub use netting::Party;
pub use queue::SenderQueue;
pub use registry::{BankPatch, BankRecord, CorridorPatch, CorridorRecord, NewBank, NewCorridor};
pub use settlement::{InstructionChange, InstructionRecord, InstructionState, ReleasedBooks};
pub use transfer::{IsoIds, Outcome, QueuePriority, Transfer, TransferStatus};
pub use window::{QueueRelease, WindowDetail, WindowRecord, WindowState};
