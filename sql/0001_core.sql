-- Banks, their per-currency limits, corridors, clearing windows and transfers.
-- Money is NUMERIC, never a float; amounts fit 15 integer digits and 3 decimals,
-- FX rates 6 integer digits and 8 decimals (see src/domain).

CREATE TABLE banks (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    country     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE bank_limits (
    bank           TEXT NOT NULL REFERENCES banks (code),
    currency       TEXT NOT NULL,
    net_debit_cap  NUMERIC(18, 3) NOT NULL CHECK (net_debit_cap >= 0),
    PRIMARY KEY (bank, currency)
);

CREATE TABLE corridors (
    from_currency  TEXT NOT NULL,
    to_currency    TEXT NOT NULL,
    fx_rate        NUMERIC(14, 8) NOT NULL CHECK (fx_rate > 0),
    status         TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    amount_max     NUMERIC(18, 3) NOT NULL CHECK (amount_max > 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (from_currency, to_currency)
);

CREATE TABLE windows (
    id          BIGINT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closing', 'netted', 'settled', 'settlement_failed')),
    opened_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at   TIMESTAMPTZ
);

-- Append-only: a transfer row is written once by the store writer's group commit.
-- The id is a UUIDv7: it sorts by creation time and is the paging cursor, so no
-- extra sequence column or index is paid for on every insert.
-- No foreign keys here on purpose: they cost a lookup per row on the hottest insert
-- path, and only bank actors (which exist only for stored banks) and the open
-- window produce these values; `deltran audit` checks them from the stored data.
CREATE TABLE transfers (
    id                UUID PRIMARY KEY,
    sender_bank       TEXT NOT NULL,
    receiver_bank     TEXT NOT NULL,
    amount            NUMERIC(18, 3) NOT NULL CHECK (amount > 0),
    from_currency     TEXT NOT NULL,
    converted_amount  NUMERIC(18, 3),
    to_currency       TEXT NOT NULL,
    fx_rate           NUMERIC(14, 8),
    status            TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
    reject_code       TEXT,
    window_id         BIGINT,
    idempotency_key   TEXT,
    sender_account    TEXT,
    receiver_account  TEXT,
    reference         TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'accepted') = (window_id IS NOT NULL AND reject_code IS NULL
                                    AND converted_amount IS NOT NULL AND fx_rate IS NOT NULL))
);

CREATE UNIQUE INDEX transfers_idempotency ON transfers (sender_bank, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
