-- Which claim holds an unpublished row (a random token per claim, set with `locked_until`), so
-- that a relay marks or releases only rows it still holds: once its lease has run out and another
-- relay has claimed the row, its late UPDATE matches nothing instead of overwriting the other
-- claim. Rows claimed by a relay older than this column keep it NULL and are claimed again once
-- their lease runs out, as before.
ALTER TABLE outbox ADD COLUMN lease_owner uuid;
