-- Returns: a receiver sends back (all or part of) a transfer that was netted or
-- settled. A return is an ordinary transfer the other way, from the original's
-- receiver to its sender, in the reversed currencies and at the original's rate,
-- whose `return_of` names the original. The link the other way (an original's
-- returns) is read through the index below.
--
-- No foreign key: the check would run on every insert of the group commit, for a
-- column that is null on nearly every row. `deltran audit` checks instead that every
-- return names a stored original it reverses and that an original's returns never
-- exceed it (sql is only the last line of that defence: the returning bank's actor
-- refuses a return beyond what is left of its original).
ALTER TABLE transfers
    ADD COLUMN return_of UUID,
    ADD CONSTRAINT transfers_return_not_self CHECK (return_of <> id);

-- Partial: a transfer that is not a return costs the insert path only the predicate.
CREATE INDEX transfers_returns ON transfers (return_of) WHERE return_of IS NOT NULL;
