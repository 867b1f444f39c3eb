//! Settlement steps shared by the operator's commands and the demo rail: confirming or
//! failing an instruction, and settling a window once all its instructions are
//! confirmed, which releases the banks' exposure from it.

use actix::Addr;
use uuid::Uuid;

use super::clock::WindowClock;
use super::feed::{Channel, Event, Feed};
use super::window::WindowSettled;
use super::writer::{ReleaseWindow, StoreWriter};
use crate::domain::{InstructionChange, InstructionState, Origin, WindowId};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::views;

/// Moves an instruction to `state` (confirmed or failed); settles its window when
/// that was the last pending one. Repeating a change is harmless. The change is
/// recorded in the audit log as coming from `origin`.
// The engine's handles it touches, then the change itself; shared by the command and
// the demo rail, which hold those handles separately.
#[allow(clippy::too_many_arguments)]
pub async fn change(
    store: &Store,
    writer: &Addr<StoreWriter>,
    clock: &Addr<WindowClock>,
    metrics: &Metrics,
    feed: &Feed,
    origin: &Origin,
    id: Uuid,
    state: InstructionState,
) -> Result<InstructionChange, StoreError> {
    let change = store.change_instruction(origin, id, state).await?;
    if change.changed {
        let window = change.instruction.window_id.get();
        metrics.waits.instruction_settled(window);
        if state == InstructionState::Failed {
            // The window is `settlement_failed` now: no longer waiting in `netted`.
            metrics.waits.window_done(window);
        }
        let kind = match state {
            InstructionState::Failed => "instruction_failed",
            _ => "instruction_confirmed",
        };
        feed.publish(Event::new(
            Channel::Settlements,
            kind,
            change.instruction.banks(),
            views::text(views::instruction(&change.instruction)),
        ));
    }
    if change.window_complete {
        settle_if_complete(writer, clock, change.instruction.window_id).await?;
    }
    Ok(change)
}

/// Settles `window` if every instruction is confirmed. The store change and the
/// release of the banks' exposure go through the writer, in order with the bank
/// actors' snapshots, so that no bank counts a window's release twice or never.
pub async fn settle_if_complete(
    writer: &Addr<StoreWriter>,
    clock: &Addr<WindowClock>,
    window: WindowId,
) -> Result<bool, StoreError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    writer.do_send(ReleaseWindow { window, reply });
    let settled = answer
        .await
        .map_err(|_| StoreError::Unavailable("the store writer restarted".into()))??;
    if settled {
        clock.do_send(WindowSettled { window });
    }
    Ok(settled)
}
