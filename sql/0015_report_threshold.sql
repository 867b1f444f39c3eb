-- Amount thresholds per corridor for reporting (a currency transaction report): a
-- transfer whose amount reaches its corridor's threshold when it is decided is
-- flagged, and the daily compliance report lists it.
ALTER TABLE corridors ADD COLUMN report_threshold NUMERIC(18, 3)
    CHECK (report_threshold > 0);
ALTER TABLE transfers ADD COLUMN flagged BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX transfers_flagged ON transfers (created_at) WHERE flagged;
