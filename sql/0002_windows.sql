-- Clearing windows: results of netting, settlement instructions, and the index that
-- lets a window's transfers be read without scanning the whole table.

ALTER TABLE windows
    ADD COLUMN netted_at       TIMESTAMPTZ,
    ADD COLUMN settled_at      TIMESTAMPTZ,
    ADD COLUMN transfer_count  BIGINT;

-- Transfers are appended roughly in window order, so a BRIN index finds a window's
-- rows in a few block ranges and costs next to nothing on the insert path.
CREATE INDEX transfers_window ON transfers USING brin (window_id) WITH (pages_per_range = 16);

-- Sums over a window are not bounded by the per-transfer limits: plain NUMERIC.
CREATE TABLE window_positions (
    window_id  BIGINT NOT NULL REFERENCES windows (id),
    bank       TEXT NOT NULL,
    currency   TEXT NOT NULL,
    debits     NUMERIC NOT NULL,
    credits    NUMERIC NOT NULL,
    position   NUMERIC NOT NULL CHECK (position = credits - debits),
    PRIMARY KEY (window_id, bank, currency)
);

CREATE TABLE window_currencies (
    window_id     BIGINT NOT NULL REFERENCES windows (id),
    currency      TEXT NOT NULL,
    gross         NUMERIC NOT NULL,
    net           NUMERIC NOT NULL,
    hub_position  NUMERIC NOT NULL,
    PRIMARY KEY (window_id, currency)
);

CREATE TABLE window_corridors (
    window_id           BIGINT NOT NULL REFERENCES windows (id),
    from_currency       TEXT NOT NULL,
    to_currency         TEXT NOT NULL,
    source_amount       NUMERIC NOT NULL,
    destination_amount  NUMERIC NOT NULL,
    PRIMARY KEY (window_id, from_currency, to_currency)
);

CREATE TABLE settlement_instructions (
    id            UUID PRIMARY KEY,
    window_id     BIGINT NOT NULL REFERENCES windows (id),
    currency      TEXT NOT NULL,
    payer         TEXT NOT NULL,
    payee         TEXT NOT NULL,
    amount        NUMERIC NOT NULL CHECK (amount > 0),
    state         TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'failed')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((payer = 'HUB') <> (payee = 'HUB'))
);

CREATE INDEX settlement_instructions_window ON settlement_instructions (window_id);
CREATE UNIQUE INDEX windows_one_open ON windows ((state)) WHERE state = 'open';
