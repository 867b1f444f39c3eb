-- The fence of a partition's store (docs/SCALE-OUT.md): the epoch of the lease under
-- which its current owner took it. In cluster mode every write statement, on every
-- table, passes `deltran_fence_check` (a statement trigger that
-- `Store::take_partition` puts on each table): it reads the fence FOR SHARE and refuses (SQLSTATE DTF01) a session
-- whose `deltran.epoch` setting is not the fence's epoch. A takeover's update of the
-- fence waits for the write transactions holding it shared, so once it commits, the
-- former owner's next write is refused, whatever path it takes. A store that was
-- never taken has no fence row and no triggers: the single-process engine pays
-- nothing.
CREATE TABLE partition_fence (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch BIGINT NOT NULL CHECK (epoch > 0),
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION deltran_fence_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fence BIGINT;
    mine TEXT := current_setting('deltran.epoch', true);
BEGIN
    SELECT epoch INTO fence FROM partition_fence FOR SHARE;
    IF fence IS NOT NULL AND (mine IS NULL OR mine !~ '^[0-9]{1,18}$' OR mine::BIGINT <> fence) THEN
        RAISE EXCEPTION 'partition fenced: this session writes under epoch %, the store is at epoch %',
            coalesce(nullif(mine, ''), 'none'), fence
            USING ERRCODE = 'DTF01';
    END IF;
    RETURN NULL;
END;
$$;

-- Raises the fence to `new_epoch` (never lowers it; the same epoch again is a
-- restart), after waiting for the write transactions holding it shared. Returns
-- the epoch before (0 for none); raises DTF01 when the store is at a higher one.
-- The check goes on the tables beforehand, one table per transaction
-- (`Store::take_partition`), so that no transaction holds the fence while waiting
-- for a table's lock.
CREATE FUNCTION deltran_raise_fence(new_epoch BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    before BIGINT;
BEGIN
    SELECT epoch INTO before FROM partition_fence FOR UPDATE;
    IF before IS NOT NULL AND before > new_epoch THEN
        RAISE EXCEPTION 'partition fenced: epoch % cannot take a store at epoch %', new_epoch, before
            USING ERRCODE = 'DTF01';
    END IF;
    INSERT INTO partition_fence (singleton, epoch) VALUES (true, new_epoch)
        ON CONFLICT (singleton) DO UPDATE SET epoch = EXCLUDED.epoch, taken_at = now();
    RETURN coalesce(before, 0);
END;
$$;
