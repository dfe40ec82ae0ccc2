-- Line main, version 4: NOT NULL args and metadata, the 'pending' state, a
-- stricter finalized_at check, river_queue, a fixed leader name, and the end
-- of the insert trigger (clients now notify by themselves).

-- args: NOT NULL without a default (the default only serves the backfill).
ALTER TABLE {{schema}}river_job ALTER COLUMN args SET DEFAULT '{}';
UPDATE {{schema}}river_job SET args = '{}' WHERE args IS NULL;
ALTER TABLE {{schema}}river_job ALTER COLUMN args SET NOT NULL;
ALTER TABLE {{schema}}river_job ALTER COLUMN args DROP DEFAULT;

-- metadata: already NOT NULL DEFAULT '{}' since version 2; River repeats
-- the three steps, which leave the catalog as it was.
ALTER TABLE {{schema}}river_job ALTER COLUMN metadata SET DEFAULT '{}';
UPDATE {{schema}}river_job SET metadata = '{}' WHERE metadata IS NULL;
ALTER TABLE {{schema}}river_job ALTER COLUMN metadata SET NOT NULL;

-- Placed between 'discarded' and 'retryable', so PostgreSQL gives it the
-- fractional sort position 4.5. Allowed inside the migration's transaction
-- (PostgreSQL 12+) because nothing in this version uses the new label; the
-- first user, version 6, runs in a later transaction.
ALTER TYPE {{schema}}river_job_state
    ADD VALUE IF NOT EXISTS 'pending' AFTER 'discarded';

ALTER TABLE {{schema}}river_job
    DROP CONSTRAINT finalized_or_finalized_at_null;
ALTER TABLE {{schema}}river_job
    ADD CONSTRAINT finalized_or_finalized_at_null CHECK (
        (finalized_at IS NULL
            AND state NOT IN ('cancelled', 'completed', 'discarded'))
        OR (finalized_at IS NOT NULL
            AND state IN ('cancelled', 'completed', 'discarded')));

DROP TRIGGER river_notify ON {{schema}}river_job;
DROP FUNCTION {{schema}}river_job_notify;

CREATE TABLE {{schema}}river_queue (
    name text PRIMARY KEY NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    paused_at timestamptz,
    updated_at timestamptz NOT NULL
);

ALTER TABLE {{schema}}river_leader
    ALTER COLUMN name SET DEFAULT 'default',
    DROP CONSTRAINT name_length,
    ADD CONSTRAINT name_length CHECK (name = 'default');
