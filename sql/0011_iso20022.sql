-- ISO 20022: banks are named by their BIC in messages, and a transfer that came in
-- as an ISO 20022 credit transfer keeps the identifiers the banks correlate on.

-- A bank's BIC (ISO 9362), 8 or 11 characters; banks are told apart by the first
-- eight (a branch code does not make another bank).
ALTER TABLE banks
    ADD COLUMN bic TEXT CHECK (bic ~ '^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$');
CREATE UNIQUE INDEX banks_bic ON banks (left(bic, 8)) WHERE bic IS NOT NULL;

-- The reference banks' real BICs, for a database created before this migration (a
-- new one gets them from the reference data).
UPDATE banks SET bic = v.bic FROM (VALUES
    ('ICICI', 'ICICINBB'), ('HDFC', 'HDFCINBB'), ('AXIS', 'AXISINBB'),
    ('ENBD', 'EBILAEAD'), ('ADCB', 'ADCBAEAA')) AS v(code, bic)
 WHERE banks.code = v.code AND banks.bic IS NULL
   AND NOT EXISTS (SELECT 1 FROM banks o WHERE left(o.bic, 8) = v.bic);

-- The payment's end-to-end identification (set by the debtor, at most 35
-- characters) and its UETR (the unique end-to-end transaction reference, a UUID):
-- null for a transfer submitted as JSON.
ALTER TABLE transfers
    ADD COLUMN end_to_end_id TEXT CHECK (length(end_to_end_id) BETWEEN 1 AND 35),
    ADD COLUMN uetr UUID;
