-- The audit log: every change to the registry, windows, settlements and keys, written
-- in the same transaction as the change. Append-only: the engine never updates or
-- deletes a row. `at` is the transaction's time (now()), so it equals the changed
-- row's own time stamp (updated_at, closed_at, revoked_at...) — `deltran audit`
-- uses that to find each change's entry.
CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Where the change came from: an API request, the command line, or the engine
    -- itself (then `engine_part` says which: 'window timer', 'demo rail', 'first start').
    origin       TEXT NOT NULL CHECK (origin IN ('api', 'command_line', 'engine')),
    engine_part  TEXT,
    -- The caller of an API request: its key, role, bank (a bank key) and request id.
    key_id       UUID,
    role         TEXT CHECK (role IN ('operator', 'bank', 'auditor')),
    bank         TEXT,
    request_id   TEXT,
    action       TEXT NOT NULL CHECK (action IN (
                     'bank_created', 'bank_changed', 'corridor_created', 'corridor_changed',
                     'window_closed', 'instruction_confirmed', 'instruction_failed',
                     'key_created', 'key_revoked')),
    -- What changed: a bank code, a corridor (INR-AED), a window id, an instruction id
    -- or a key id.
    subject      TEXT NOT NULL,
    -- The record as the API shows it before and after the change (never a key's
    -- secret or hash); `before` is null for a creation.
    before       JSONB,
    after        JSONB,
    CHECK ((origin = 'api') = (key_id IS NOT NULL AND role IS NOT NULL)),
    CHECK ((origin = 'engine') = (engine_part IS NOT NULL))
);

-- Paging is by id (the primary key); these serve the `subject` and `action` filters
-- and `deltran audit`, which looks entries up by subject and action.
CREATE INDEX audit_log_subject ON audit_log (subject, action, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
