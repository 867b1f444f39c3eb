-- Queued transfers and the changes of a transfer's status after its insert.
--
-- A transfer submitted with `"on_limit": "queue"` that would pass its sender's limit
-- is stored as `queued`: outside any window, with the rate and converted amount it
-- was quoted. Later it is released into the open window (`accepted`, window stamped),
-- or it `expired`, or its sender `cancelled` it. An accepted transfer may also be
-- cancelled while its window is open (its window is then cleared and its legs taken
-- off the running sums). These changes are the only updates a transfer row sees, each
-- made by the store writer's group commit in the statement that inserts its batch.

ALTER TABLE transfers DROP CONSTRAINT transfers_status_check;
ALTER TABLE transfers DROP CONSTRAINT transfers_check;

-- `queue_priority` is null for a transfer submitted with `on_limit` `reject` (the
-- default) and `normal` or `high` for one that asked to queue; `queued_in` is the
-- window that was open when it was queued (never cleared: it dates the queueing, for
-- expiry and the queue figures); `status_at` is when the row last changed status.
ALTER TABLE transfers
    ADD COLUMN queue_priority TEXT CHECK (queue_priority IN ('normal', 'high')),
    ADD COLUMN queued_in BIGINT,
    ADD COLUMN status_at TIMESTAMPTZ;

ALTER TABLE transfers ADD CONSTRAINT transfers_status_check
    CHECK (status IN ('accepted', 'rejected', 'queued', 'expired', 'cancelled'));

-- What each status requires: an accepted transfer is in a window with its quote; a
-- rejected one has its code and no window; queued, expired and cancelled ones have
-- their quote and no window; only a transfer that asked to queue was ever queued.
ALTER TABLE transfers ADD CONSTRAINT transfers_status_fields CHECK (
    CASE status
        WHEN 'accepted' THEN window_id IS NOT NULL AND reject_code IS NULL
                             AND converted_amount IS NOT NULL AND fx_rate IS NOT NULL
        WHEN 'rejected' THEN window_id IS NULL AND reject_code IS NOT NULL
        ELSE window_id IS NULL AND reject_code IS NULL
             AND converted_amount IS NOT NULL AND fx_rate IS NOT NULL
    END
    AND (queued_in IS NULL OR queue_priority IS NOT NULL)
    AND (status <> 'queued' OR queued_in IS NOT NULL)
    AND (status <> 'expired' OR queued_in IS NOT NULL));

-- The queue is rebuilt from here when a bank actor (re)starts. Partial: a row that
-- is not queued costs the insert path only the predicate.
CREATE INDEX transfers_queued ON transfers (sender_bank, id) WHERE status = 'queued';

-- The queue figures of a window (released into it: count, value, time in queue).
-- Partial as well: only transfers that were ever queued are in it.
CREATE INDEX transfers_released ON transfers (window_id) WHERE queued_in IS NOT NULL;

-- A cancelled transfer's legs are taken off the rows of the slot of the batch that
-- cancels it, which may not be the slot that added them: one slot's row may then
-- count below zero, while the sum over the slots stays exact.
ALTER TABLE window_bank_legs DROP CONSTRAINT window_bank_legs_debit_count_check;
ALTER TABLE window_bank_legs DROP CONSTRAINT window_bank_legs_credit_count_check;
ALTER TABLE window_corridor_legs DROP CONSTRAINT window_corridor_legs_transfer_count_check;
