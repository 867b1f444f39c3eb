-- The reference corridor loaded on first start: India (INR) ⇄ UAE (AED).
-- Caps are generous demo limits (10 trillion in the home currency), far above a
-- 5-minute 100 transfers/s load of amounts up to 1,000,000.
-- Each with its real BIC, by which ISO 20022 messages name it.
INSERT INTO banks (code, name, country, status, bic) VALUES
    ('ICICI', 'ICICI Bank', 'IN', 'active', 'ICICINBB'),
    ('HDFC', 'HDFC Bank', 'IN', 'active', 'HDFCINBB'),
    ('AXIS', 'Axis Bank', 'IN', 'active', 'AXISINBB'),
    ('ENBD', 'Emirates NBD', 'AE', 'active', 'EBILAEAD'),
    ('ADCB', 'Abu Dhabi Commercial Bank', 'AE', 'active', 'ADCBAEAA');

INSERT INTO bank_limits (bank, currency, net_debit_cap) VALUES
    ('ICICI', 'INR', 10000000000000),
    ('HDFC', 'INR', 10000000000000),
    ('AXIS', 'INR', 10000000000000),
    ('ENBD', 'AED', 10000000000000),
    ('ADCB', 'AED', 10000000000000);

-- 1 INR = 0.04405 AED and 1 AED = 22.6985 INR (the hub keeps the spread).
INSERT INTO corridors (from_currency, to_currency, fx_rate, status, amount_max) VALUES
    ('INR', 'AED', 0.04405000, 'active', 1000000000),
    ('AED', 'INR', 22.69850000, 'active', 50000000);
