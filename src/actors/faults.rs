//! Fault injection for the chaos suite: a panic in a chosen actor, or in the next
//! async continuation of the writer (a batch completion) or of a window (its
//! netting), so that recovery is exercised under load from outside the process.
//! Reachable only through the operator's `POST /api/v1/faults/panic`, which the HTTP
//! layer mounts only when the engine starts with `--fault-injection`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;

use super::commands::CommandError;
use super::writer::PanicInNextCompletion;
use super::{Engine, InjectPanic};
use crate::domain::{BankCode, CorridorId, WindowId};

/// Where a panic is injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A bank actor's handler.
    Bank(BankCode),
    /// A corridor actor's handler.
    Corridor(CorridorId),
    /// The window clock's handler (the open window's cut-off timer and closes).
    Clock,
    /// The actor of a window between its cut-off and its settlement.
    Window(WindowId),
    /// The store writer's handler.
    Writer,
    /// The writer's next batch completion, after its commit (an async continuation).
    BatchCompletion,
    /// The next window netting's continuation, after the result is stored.
    Netting,
}

/// A one-shot switch shared by the clock and every window actor: the next netting
/// continuation that sees it set panics (and clears it).
#[derive(Clone, Default)]
pub struct NettingPanicSwitch(Arc<AtomicBool>);

impl NettingPanicSwitch {
    pub fn arm(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Panics if armed; called where a netting's result comes back.
    pub fn fire_if_armed(&self) {
        if self.0.swap(false, Ordering::SeqCst) {
            panic!("injected panic in a netting continuation");
        }
    }
}

/// To the clock: panic the actor of `window`; `false` if the window has none (it is
/// open, or settled and gone).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct PanicWindow {
    pub window: WindowId,
}

/// To the clock: the next netting continuation of any window panics.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicInNextNetting;

impl Engine {
    /// Injects `fault`; the panic happens asynchronously, in the actor's own turn.
    pub async fn inject_fault(&self, fault: &Fault) -> Result<(), CommandError> {
        tracing::warn!(?fault, "fault injected by the operator");
        match fault {
            Fault::Bank(code) => {
                let bank = self
                    .directory
                    .bank(code)
                    .ok_or_else(|| CommandError::BankUnknown {
                        field: "target",
                        code: code.clone(),
                    })?;
                bank.addr.do_send(InjectPanic);
            }
            Fault::Corridor(id) => {
                let corridor = self
                    .directory
                    .corridor(id)
                    .ok_or(CommandError::CorridorUnknown(*id))?;
                corridor.do_send(InjectPanic);
            }
            Fault::Clock => self.clock.do_send(InjectPanic),
            Fault::Window(window) => {
                let found = self
                    .clock
                    .send(PanicWindow { window: *window })
                    .await
                    .map_err(|_| {
                        CommandError::Unavailable("the window clock is restarting".into())
                    })?;
                if !found {
                    return Err(CommandError::NotFound(format!(
                        "a window actor for window {window} (only windows between cut-off and settlement have one)"
                    )));
                }
            }
            Fault::Writer => self.writer.do_send(InjectPanic),
            Fault::BatchCompletion => self.writer.do_send(PanicInNextCompletion),
            Fault::Netting => self.clock.do_send(PanicInNextNetting),
        }
        Ok(())
    }
}
