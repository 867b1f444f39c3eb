-- Compliance screening: the list a transfer's debtor and creditor are matched
-- against before acceptance (domain/screening.rs). Loaded from CSV and managed by
-- the operator; every change is in the audit log.
CREATE TABLE screening_entries (
    id          BIGSERIAL PRIMARY KEY,
    list        TEXT NOT NULL CHECK (list IN ('sanctions', 'pep')),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    aliases     TEXT[] NOT NULL DEFAULT '{}',
    -- ISO 3166 alpha-2 codes.
    countries   TEXT[] NOT NULL DEFAULT '{}',
    -- The list provider's reference for the entry, unique when given.
    reference   TEXT CHECK (length(reference) BETWEEN 1 AND 100),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX screening_entries_reference ON screening_entries (list, reference)
    WHERE reference IS NOT NULL;

-- The audit log records the list's changes (subject: the entry's id, or `import`).
-- The list of actions is 0008's with three more; a later migration that adds actions
-- must repeat the whole list, as this one does.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'bank_created', 'bank_changed', 'corridor_created', 'corridor_changed',
    'window_closed', 'instruction_confirmed', 'instruction_failed',
    'key_created', 'key_revoked', 'funds_in', 'funds_out',
    'screening_entry_added', 'screening_entry_removed', 'screening_list_imported'));
