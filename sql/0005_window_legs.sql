-- Running sums of every window's legs, kept by the group commit in the statement that
-- inserts the transfers, so that a window's sums (to net it) and a bank's books (to
-- rebuild its actor) are read from a few hundred rows instead of summed over the
-- window's transfers — after a restart those are a million rows.
--
-- Each batch in flight holds a slot (0 up to batches_in_flight_max - 1) that no other
-- batch in flight holds, and adds only to its slot's rows: batches committing at once
-- on separate connections never wait for each other's row locks (and so for each
-- other's fsync). A window's sums are its rows summed over the slots.
--
-- Only accepted transfers count, and only rows actually inserted: a replay that
-- `ON CONFLICT DO NOTHING` skips adds nothing. `deltran audit` checks the sums against
-- the transfers. No foreign keys, as for transfers: these rows are written on the
-- hottest path, and the audit checks them.
--
-- Sums over a window are not bounded by the per-transfer limits: plain NUMERIC. The
-- rows are updated by every batch: a low fill factor leaves room for HOT updates.

CREATE TABLE window_bank_legs (
    window_id     BIGINT NOT NULL,
    slot          SMALLINT NOT NULL CHECK (slot >= 0),
    bank          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    -- What the bank sent in this currency (its debit legs) and received (its credit
    -- legs), and how many of each: a row may hold one side only.
    debits        NUMERIC NOT NULL,
    credits       NUMERIC NOT NULL,
    debit_count   BIGINT NOT NULL CHECK (debit_count >= 0),
    credit_count  BIGINT NOT NULL CHECK (credit_count >= 0),
    PRIMARY KEY (window_id, slot, bank, currency)
) WITH (fillfactor = 50);

CREATE TABLE window_corridor_legs (
    window_id           BIGINT NOT NULL,
    slot                SMALLINT NOT NULL CHECK (slot >= 0),
    from_currency       TEXT NOT NULL,
    to_currency         TEXT NOT NULL,
    -- What the hub receives in the source currency and pays out in the destination.
    source_amount       NUMERIC NOT NULL,
    destination_amount  NUMERIC NOT NULL,
    transfer_count      BIGINT NOT NULL CHECK (transfer_count >= 0),
    PRIMARY KEY (window_id, slot, from_currency, to_currency)
) WITH (fillfactor = 50);

-- A database from before these tables: every window's sums from its transfers (slot
-- 0), once, so that the upgrade is exact and the audit's check holds for every window.
INSERT INTO window_bank_legs (window_id, slot, bank, currency, debits, credits,
                              debit_count, credit_count)
SELECT window_id, 0, bank, currency, sum(debit), sum(credit), sum(debit_n), sum(credit_n)
  FROM (SELECT window_id, sender_bank AS bank, from_currency AS currency,
               amount AS debit, 0::numeric AS credit, 1 AS debit_n, 0 AS credit_n
          FROM transfers WHERE status = 'accepted'
        UNION ALL
        SELECT window_id, receiver_bank, to_currency, 0, converted_amount, 0, 1
          FROM transfers WHERE status = 'accepted') legs
 GROUP BY window_id, bank, currency;

INSERT INTO window_corridor_legs (window_id, slot, from_currency, to_currency,
                                  source_amount, destination_amount, transfer_count)
SELECT window_id, 0, from_currency, to_currency, sum(amount), sum(converted_amount), count(*)
  FROM transfers WHERE status = 'accepted'
 GROUP BY window_id, from_currency, to_currency;
