-- Credit legs between partitions (cluster mode, docs/SCALE-OUT.md). A transfer's
-- sender partition commits it; when its receiver is on another partition, the credit
-- leg goes into this partition's outbox in the same statement (the triggers below, put
-- on `transfers` only in cluster mode by `Store::enable_credit_outbox`), so that a
-- committed leg is never lost: the node's relay publishes it to the log and deletes
-- it once the log acknowledged it. A leg published twice is dropped by the log or by
-- the receiver's `applied_credits`, keyed by transfer: applied once.
--
-- A leg is a credit (`reversal` false) or, when an accepted transfer whose leg was
-- owed is cancelled, its reversal (`reversal` true); amounts are magnitudes.

-- The banks of other partitions and their partitions, as the node was started with.
CREATE TABLE remote_banks (
    bank      TEXT PRIMARY KEY,
    partition INT NOT NULL CHECK (partition >= 0)
);

CREATE TABLE credit_outbox (
    transfer_id  UUID NOT NULL,
    reversal     BOOLEAN NOT NULL,
    receiver     TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount       NUMERIC(18, 3) NOT NULL CHECK (amount > 0),
    window_id    BIGINT NOT NULL,
    partition    INT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (transfer_id, reversal)
);

CREATE TABLE applied_credits (
    transfer_id    UUID NOT NULL,
    reversal       BOOLEAN NOT NULL,
    receiver       TEXT NOT NULL,
    currency       TEXT NOT NULL,
    amount         NUMERIC(18, 3) NOT NULL CHECK (amount > 0),
    window_id      BIGINT NOT NULL,
    from_partition INT NOT NULL,
    epoch          BIGINT NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (transfer_id, reversal)
);
CREATE INDEX applied_credits_window ON applied_credits (window_id);

-- Legs of transfers inserted accepted.
CREATE FUNCTION deltran_outbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_outbox (transfer_id, reversal, receiver, currency, amount, window_id, partition)
    SELECT n.id, false, n.receiver_bank, n.to_currency, n.converted_amount, n.window_id, r.partition
      FROM new_rows n JOIN remote_banks r ON r.bank = n.receiver_bank
     WHERE n.status = 'accepted'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

-- Legs of transfers that became accepted (released from the queue or from a hold),
-- and reversals of accepted ones cancelled.
CREATE FUNCTION deltran_outbox_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_outbox (transfer_id, reversal, receiver, currency, amount, window_id, partition)
    SELECT n.id, n.status = 'cancelled', n.receiver_bank, n.to_currency,
           coalesce(n.converted_amount, o.converted_amount),
           CASE WHEN n.status = 'cancelled' THEN o.window_id ELSE n.window_id END, r.partition
      FROM new_rows n JOIN old_rows o ON o.id = n.id
      JOIN remote_banks r ON r.bank = n.receiver_bank
     WHERE (n.status = 'accepted' AND o.status <> 'accepted')
        OR (n.status = 'cancelled' AND o.status = 'accepted')
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
