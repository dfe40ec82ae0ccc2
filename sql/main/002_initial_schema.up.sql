-- Line main, version 2: the job table, its state enum and the leader table.

CREATE TYPE {{schema}}river_job_state AS ENUM (
    'available', 'cancelled', 'completed', 'discarded',
    'retryable', 'running', 'scheduled'
);

-- Physical column order is part of the schema (SELECT * and COPY rely on
-- it), so the columns are declared in River's order.
CREATE TABLE {{schema}}river_job (
    id bigserial PRIMARY KEY,
    state {{schema}}river_job_state NOT NULL DEFAULT 'available',
    attempt smallint NOT NULL DEFAULT 0,
    max_attempts smallint NOT NULL,
    attempted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    priority smallint NOT NULL DEFAULT 1,
    args jsonb,
    attempted_by text[],
    errors jsonb[],
    kind text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    queue text NOT NULL DEFAULT 'default',
    tags varchar(255)[],
    -- The expressions below are written in the same shape as River's so
    -- that pg_get_constraintdef() prints the same text for both.
    CONSTRAINT finalized_or_finalized_at_null CHECK (
        (state IN ('cancelled', 'completed', 'discarded')
            AND finalized_at IS NOT NULL)
        OR finalized_at IS NULL),
    CONSTRAINT max_attempts_is_positive CHECK (max_attempts > 0),
    CONSTRAINT priority_in_range CHECK (priority >= 1 AND priority <= 4),
    CONSTRAINT queue_length
        CHECK (char_length(queue) > 0 AND char_length(queue) < 128),
    CONSTRAINT kind_length
        CHECK (char_length(kind) > 0 AND char_length(kind) < 128)
);

CREATE INDEX river_job_kind ON {{schema}}river_job (kind);
CREATE INDEX river_job_state_and_finalized_at_index
    ON {{schema}}river_job (state, finalized_at)
    WHERE finalized_at IS NOT NULL;
CREATE INDEX river_job_prioritized_fetching_index
    ON {{schema}}river_job (state, queue, priority, scheduled_at, id);
CREATE INDEX river_job_args_index ON {{schema}}river_job USING gin (args);
CREATE INDEX river_job_metadata_index
    ON {{schema}}river_job USING gin (metadata);

-- Insert notification trigger (dropped again in version 4). PostgreSQL keeps
-- a function's source text verbatim in pg_proc.prosrc, so for the catalog of
-- a version-2 or -3 database to equal River's, the body between the dollar
-- quotes must be River's text byte for byte; it is reproduced as such.
CREATE OR REPLACE FUNCTION {{schema}}river_job_notify()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
  payload json;
BEGIN
  IF NEW.state = 'available' THEN
    -- Notify will coalesce duplicate notifications within a transaction, so
    -- keep these payloads generalized:
    payload = json_build_object('queue', NEW.queue);
    PERFORM
      pg_notify('river_insert', payload::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER river_notify
    AFTER INSERT ON {{schema}}river_job
    FOR EACH ROW
    EXECUTE FUNCTION {{schema}}river_job_notify();

-- Leader election: one row at most, not WAL-logged (lost on crash, which
-- only forces a new election).
CREATE UNLOGGED TABLE {{schema}}river_leader (
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    leader_id text NOT NULL,
    name text PRIMARY KEY,
    CONSTRAINT name_length
        CHECK (char_length(name) > 0 AND char_length(name) < 128),
    CONSTRAINT leader_id_length
        CHECK (char_length(leader_id) > 0 AND char_length(leader_id) < 128)
);
