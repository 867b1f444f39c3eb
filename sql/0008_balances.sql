-- Prefunded settlement accounts (issue 11, item 3). A bank is prefunded in a
-- currency iff it has a row in settlement_balances (made by its first funds-in); a
-- bank without one is bounded by its net debit cap alone, as before.
--
-- No CHECK (balance >= 0) on the balance: the engine keeps a prefunded bank's
-- exposure over every unsettled window within its balance, not each window's net
-- debit. Windows may settle out of order (the rail confirms in any order), so a
-- window whose debits were covered by credits of an earlier window not yet settled
-- takes the balance below zero until that one settles. A CHECK would make
-- settle_window fail there for ever. Funds-out keeps the balance at or above zero
-- and above the exposure (checked by the bank actor, and again in SQL).
CREATE TABLE settlement_balances (
    bank        TEXT NOT NULL REFERENCES banks (code),
    currency    TEXT NOT NULL,
    balance     NUMERIC NOT NULL,
    -- Raised by every change (funds-in, funds-out, a settlement): the bank actor
    -- keeps the newest figure it has been told of, whatever order the news arrives in.
    version     BIGINT NOT NULL DEFAULT 1 CHECK (version > 0),
    -- When the bank became prefunded: the clock once the funds-in holds the balances
    -- lock (see store/balances.rs), so a window settled after it moved the balance.
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bank, currency)
);

-- Every movement of a balance: the operator's funds-in and funds-out (positive
-- amounts), and each settled window's position (credits - debits, of either sign)
-- for every bank prefunded in that currency when the window settled. A balance is
-- therefore the plain sum of its movements, which `deltran audit` checks.
CREATE TABLE settlement_funds (
    id          BIGSERIAL PRIMARY KEY,
    bank        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out', 'settlement')),
    amount      NUMERIC NOT NULL,
    reference   TEXT,
    window_id   BIGINT REFERENCES windows (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (bank, currency) REFERENCES settlement_balances (bank, currency),
    CHECK ((direction = 'settlement') = (window_id IS NOT NULL)),
    CHECK (direction = 'settlement' OR amount > 0)
);

CREATE INDEX settlement_funds_account ON settlement_funds (bank, currency);
CREATE UNIQUE INDEX settlement_funds_window
    ON settlement_funds (window_id, bank, currency) WHERE direction = 'settlement';

-- The audit log records funds-in and funds-out (subject: the bank code). The list
-- is the one of 0004 with the two new actions; a later migration that adds actions
-- must repeat the whole list, as this one does.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'bank_created', 'bank_changed', 'corridor_created', 'corridor_changed',
    'window_closed', 'instruction_confirmed', 'instruction_failed',
    'key_created', 'key_revoked', 'funds_in', 'funds_out'));
