-- Compliance screening of transfers (domain/screening.rs): the debtor and creditor
-- a sender names, the match that held or rejected a transfer, and the `held` status
-- (stored, in no window, its exposure kept) until the operator releases it into the
-- open window or rejects it (`compliance_rejected`).
ALTER TABLE transfers
    ADD COLUMN debtor_name TEXT CHECK (length(debtor_name) BETWEEN 1 AND 140),
    ADD COLUMN debtor_country TEXT CHECK (debtor_country ~ '^[A-Z]{2}$'),
    ADD COLUMN creditor_name TEXT CHECK (length(creditor_name) BETWEEN 1 AND 140),
    ADD COLUMN creditor_country TEXT CHECK (creditor_country ~ '^[A-Z]{2}$'),
    -- The screening decision: the entry matched, which party, and how well.
    ADD COLUMN screening_entry BIGINT,
    ADD COLUMN screening_role TEXT CHECK (screening_role IN ('debtor', 'creditor')),
    ADD COLUMN screening_score NUMERIC(4, 3) CHECK (screening_score BETWEEN 0 AND 1),
    ADD CONSTRAINT transfers_screening_whole CHECK (
        (screening_entry IS NULL) = (screening_role IS NULL)
        AND (screening_entry IS NULL) = (screening_score IS NULL));

ALTER TABLE transfers DROP CONSTRAINT transfers_status_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_status_check
    CHECK (status IN ('accepted', 'rejected', 'queued', 'expired', 'cancelled', 'held'));
-- A held transfer, like a queued one, has its quote and no window; it was held by a
-- screening match.
ALTER TABLE transfers ADD CONSTRAINT transfers_held_screened
    CHECK (status <> 'held' OR screening_entry IS NOT NULL);

-- The bank actors re-read their held exposure from here; the report lists them.
CREATE INDEX transfers_held ON transfers (sender_bank, id) WHERE status = 'held';
-- Every transfer screening matched: the compliance report reads these.
CREATE INDEX transfers_screened ON transfers (created_at) WHERE screening_entry IS NOT NULL;
