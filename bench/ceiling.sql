-- bench/ceiling.sql -- pgbench script for the "physical ceiling" of a
-- burn-down on River's schema (bench/burndown.sh): one transaction claims a
-- batch of 1,000 jobs with River v0.51.2's own fetch statement
-- (JobGetAvailable in riverdriver/riverpgxv5 internal/dbsqlc/river_job.sql,
-- sqlc parameters replaced by literals: queue 'default', kind filter NULL,
-- now NULL, max_to_lock 1000, max_attempted_by 100, attempted_by 'pgbench')
-- and completes the same jobs in a second UPDATE (state 'completed',
-- finalized_at now()) before COMMIT. The CTE aggregates the returned ids
-- into one value for \gset (River returns river_job.* to the client).
BEGIN;
WITH locked_jobs AS (
    SELECT
        *
    FROM
        river_job
    WHERE
        state = 'available'
        AND queue = 'default'::text
        AND (NULL::text[] IS NULL OR kind = ANY(NULL::text[]))
        AND scheduled_at <= coalesce(NULL::timestamptz, now())
    ORDER BY
        priority ASC,
        scheduled_at ASC,
        id ASC
    LIMIT 1000::integer
    FOR UPDATE
    SKIP LOCKED
), fetched AS (
UPDATE
    river_job
SET
    state = 'running',
    attempt = river_job.attempt + 1,
    attempted_at = coalesce(NULL::timestamptz, now()),
    attempted_by = array_append(
        CASE WHEN array_length(river_job.attempted_by, 1) >= 100::int
        THEN river_job.attempted_by[array_length(river_job.attempted_by, 1) + 2 - 100:]
        ELSE river_job.attempted_by
        END,
        'pgbench'::text
    )
FROM
    locked_jobs
WHERE
    river_job.id = locked_jobs.id
RETURNING
    river_job.*
)
SELECT coalesce(string_agg(id::text, ','), '') AS ids FROM fetched
\gset
UPDATE river_job SET state = 'completed', finalized_at = now()
WHERE id = ANY(ARRAY[:ids]::bigint[]) AND state = 'running';
COMMIT;
