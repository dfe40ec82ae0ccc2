-- Line main, version 6: unique jobs by (unique_key, unique_states).
--
-- river_job_state_in_bitmask(bitmask, state) is true when the state's bit is
-- set; bit 7 (least significant) is 'available', bit 0 'scheduled'. It uses
-- the 'pending' label, which is why version 4 had to commit first.
--
-- As with every function, PostgreSQL stores the body text verbatim, so the
-- text between the dollar quotes is River's, byte for byte.
CREATE OR REPLACE FUNCTION {{schema}}river_job_state_in_bitmask(
    bitmask bit(8), state {{schema}}river_job_state)
    RETURNS boolean
    LANGUAGE sql
    IMMUTABLE
AS $$
    SELECT CASE state
        WHEN 'available' THEN get_bit(bitmask, 7)
        WHEN 'cancelled' THEN get_bit(bitmask, 6)
        WHEN 'completed' THEN get_bit(bitmask, 5)
        WHEN 'discarded' THEN get_bit(bitmask, 4)
        WHEN 'pending'   THEN get_bit(bitmask, 3)
        WHEN 'retryable' THEN get_bit(bitmask, 2)
        WHEN 'running'   THEN get_bit(bitmask, 1)
        WHEN 'scheduled' THEN get_bit(bitmask, 0)
        ELSE 0
    END = 1;
$$;

-- IF NOT EXISTS: the column and index may have been prepared out of band
-- (CREATE INDEX CONCURRENTLY) on large tables.
ALTER TABLE {{schema}}river_job ADD COLUMN IF NOT EXISTS unique_states bit(8);
CREATE UNIQUE INDEX IF NOT EXISTS river_job_unique_idx
    ON {{schema}}river_job (unique_key)
    WHERE unique_key IS NOT NULL
        AND unique_states IS NOT NULL
        AND {{schema}}river_job_state_in_bitmask(unique_states, state);

-- The version-5 index is superseded.
DROP INDEX {{schema}}river_job_kind_unique_key_idx;
