-- API keys. Only the SHA-256 of a key's secret is stored; the key itself is shown
-- once, when it is made. A bank key is bound to one bank; operator and auditor keys
-- to none. A revoked key stays, for the audit trail.
CREATE TABLE api_keys (
    id             UUID PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('operator', 'bank', 'auditor')),
    bank           TEXT REFERENCES banks (code),
    secret_sha256  BYTEA NOT NULL CHECK (octet_length(secret_sha256) = 32),
    label          TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    CHECK ((role = 'bank') = (bank IS NOT NULL))
);
