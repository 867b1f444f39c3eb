//! The pure business core: money, identifiers and the rules a transfer must pass.
//! Nothing here does IO or knows about actors, HTTP or SQL.

pub mod fx;
pub mod ids;
pub mod money;
pub mod netting;
pub mod rules;
pub mod transfer;

pub use fx::{convert, FxRate};
pub use ids::{BankCode, BankStatus, CorridorId, CorridorStatus, TransferId, WindowId};
pub use money::{Amount, Currency};
pub use rules::{InputError, RejectCode};
pub use transfer::{Outcome, Transfer, WindowPhase};
