-- What was left in the banks' queues when a window was netted, per source currency:
-- the queue depth the window's figures show beside what the queue released into it.
-- Written in the netting transaction from the queued rows (the partial index on
-- queued transfers), so it is the queue just after the window's cut-off (netting
-- follows the seal by milliseconds; a window netted on recovery shows the queue at
-- that later time). A window netted with nothing queued has no row.
CREATE TABLE window_queue_left (
    window_id BIGINT NOT NULL REFERENCES windows (id),
    currency  TEXT NOT NULL,
    count     BIGINT NOT NULL CHECK (count > 0),
    value     NUMERIC(24, 3) NOT NULL CHECK (value > 0),
    PRIMARY KEY (window_id, currency)
);
