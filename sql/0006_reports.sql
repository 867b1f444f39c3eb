-- The report endpoints (src/store/reports.rs).
--
-- The summary reads the transfers created in a time range. `created_at` is stamped at
-- submission and rows are appended in commit order, so it follows the table's physical
-- order within milliseconds: a BRIN index finds a range's rows in a few block ranges
-- and, like `transfers_window`, costs next to nothing on the insert path (no btree is
-- added to the hottest table). Built once here, in one pass over the table.
CREATE INDEX transfers_created_at ON transfers USING brin (created_at) WITH (pages_per_range = 16);

-- The summary's window figures: windows netted, and windows settled, in a range. The
-- windows table is written a few times per window (one row a minute by default), so
-- these btrees cost nothing that matters, and they keep the read to the range's rows.
CREATE INDEX windows_netted_at ON windows (netted_at);
CREATE INDEX windows_settled_at ON windows (settled_at);
