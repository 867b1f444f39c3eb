-- A funds-in booked from a bank-to-customer notification (camt.054) carries the
-- notification's entry reference, which books it once: the same entry sent again
-- is a duplicate, refused by this index inside the funds-in's transaction.
ALTER TABLE settlement_funds ADD COLUMN entry_ref TEXT
    CHECK (entry_ref IS NULL OR (direction = 'in' AND length(entry_ref) BETWEEN 1 AND 35));
CREATE UNIQUE INDEX settlement_funds_entry_ref ON settlement_funds (entry_ref)
    WHERE entry_ref IS NOT NULL;
