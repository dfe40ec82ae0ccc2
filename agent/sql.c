/*
 * sql.c -- every statement the agent runs, written for River's schema with
 * River's semantics (see /work/shared/RIVER.md and docs/RIVER-COMPAT.md),
 * qualified with the configured schema.
 *
 * "{S}" in a template becomes the quoted schema plus a dot. Named
 * statements are prepared once per connection (trib_pg).
 *
 * Times the agent writes come from the database clock: either now() or a
 * value computed from the local clock plus the measured offset
 * (trib__db_now).
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"

#include <string.h>

/* Fetch: lock up to $2 available jobs of queue $1 that are due, in
 * priority/scheduled_at/id order, skipping rows locked by other clients;
 * mark them running, count the attempt, record the client id ($3) in
 * attempted_by (keeping the last 100).
 *
 * When fewer than $2 jobs were due, one more row (id NULL) follows: in its
 * last column, the milliseconds until the next 'available' job of the
 * queue that is not yet due becomes due, if that is within $4 seconds
 * (NULL otherwise) -- one index probe per priority, so short retries,
 * snoozes and delayed jobs are fetched when due without another round
 * trip. */
static const char FETCH[] =
    "WITH locked AS ("
    " SELECT id FROM {S}river_job"
    " WHERE state = 'available' AND queue = $1::text"
    "   AND scheduled_at <= now()%s"
    " ORDER BY priority ASC, scheduled_at ASC, id ASC"
    " LIMIT $2::integer FOR UPDATE SKIP LOCKED),"
    " fetched AS ("
    " UPDATE {S}river_job AS j SET"
    "  state = 'running', attempt = j.attempt + 1, attempted_at = now(),"
    "  attempted_by = array_append(CASE"
    "   WHEN array_length(j.attempted_by, 1) >= 100"
    "   THEN j.attempted_by[array_length(j.attempted_by, 1) + 2 - 100:]"
    "   ELSE j.attempted_by END, $3::text)"
    " FROM locked WHERE j.id = locked.id"
    " RETURNING j.id, j.attempt, j.max_attempts, j.priority, j.attempted_at,"
    "  j.created_at, j.scheduled_at,"
    "  coalesce(array_length(j.errors, 1), 0) AS nerrors,"
    "  j.kind, j.args, j.metadata, j.tags)"
    " SELECT *, NULL::bigint AS due_ms FROM fetched"
    " UNION ALL"
    " SELECT NULL::bigint, NULL::smallint, NULL::smallint, NULL::smallint,"
    "  NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::integer,"
    "  NULL::text, NULL::jsonb, NULL::jsonb, NULL::varchar(255)[],"
    "  (SELECT ceil(extract(epoch FROM min(t) - now()) * 1000)::bigint"
    "   FROM (SELECT (SELECT scheduled_at FROM {S}river_job"
    "     WHERE state = 'available' AND queue = $1::text AND priority = p"
    "      AND scheduled_at > now() ORDER BY scheduled_at LIMIT 1) AS t"
    "    FROM generate_series(1, 4) AS p) AS next"
    "   WHERE t <= now() + make_interval(secs => $4::float8))"
    " WHERE (SELECT count(*) FROM fetched) < $2::integer";

/* Write-back, fast path: every job in the batch completed. Only rows still
 * running the attempt we worked ($3) change: a write-back delayed past a
 * rescue must not complete someone else's later attempt. Returns the ids
 * updated. */
static const char COMPLETE_FAST[] =
    "UPDATE {S}river_job AS j SET state = 'completed',"
    " finalized_at = i.finalized_at"
    " FROM (SELECT unnest($1::bigint[]) AS id,"
    "  unnest($2::timestamptz[]) AS finalized_at,"
    "  unnest($3::integer[]) AS worked) AS i"
    " WHERE j.id = i.id AND j.state = 'running' AND j.attempt = i.worked"
    " RETURNING j.id";

/* Write-back, general: per row a target state and optional attempt, error
 * element, finalized_at, scheduled_at and metadata merge (NULL = leave).
 * Only rows still running the attempt we worked ($8) change, except that a
 * metadata merge also applies to a row no longer running (River). A job
 * whose metadata carries cancel_attempted_at and whose target is
 * available/retryable/scheduled is cancelled instead. Every input row comes
 * back with its persisted state. */
/* The row still runs the attempt this agent worked. */
#define MINE         "(j.state = 'running' AND j.attempt = i.worked)"
#define RETRYING     "i.state IN ('available', 'retryable', 'scheduled')"
#define CANCEL_ASKED "j.metadata ? 'cancel_attempted_at'"

static const char COMPLETE[] =
    "WITH i AS ("
    " SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS state,"
    "  unnest($3::integer[]) AS attempt, unnest($4::jsonb[]) AS error,"
    "  unnest($5::timestamptz[]) AS finalized_at,"
    "  unnest($6::timestamptz[]) AS scheduled_at,"
    "  unnest($7::jsonb[]) AS metadata, unnest($8::integer[]) AS worked),"
    " u AS ("
    " UPDATE {S}river_job AS j SET"
    "  attempt = CASE WHEN " MINE " AND i.attempt IS NOT NULL"
    "   AND NOT (" RETRYING " AND " CANCEL_ASKED ")"
    "   THEN i.attempt ELSE j.attempt END,"
    "  errors = CASE WHEN " MINE " AND i.error IS NOT NULL"
    "   THEN array_append(j.errors, i.error) ELSE j.errors END,"
    "  finalized_at = CASE"
    "   WHEN " MINE " AND " RETRYING " AND " CANCEL_ASKED " THEN now()"
    "   WHEN " MINE " AND i.finalized_at IS NOT NULL THEN i.finalized_at"
    "   ELSE j.finalized_at END,"
    "  metadata = CASE WHEN i.metadata IS NOT NULL"
    "   THEN j.metadata || i.metadata ELSE j.metadata END,"
    "  scheduled_at = CASE WHEN " MINE " AND i.scheduled_at IS NOT NULL"
    "   AND NOT (" RETRYING " AND " CANCEL_ASKED ")"
    "   THEN i.scheduled_at ELSE j.scheduled_at END,"
    "  state = CASE"
    "   WHEN " MINE " AND " RETRYING " AND " CANCEL_ASKED
    "   THEN 'cancelled'::{S}river_job_state"
    "   WHEN " MINE " THEN i.state::{S}river_job_state"
    "   ELSE j.state END"
    " FROM i WHERE j.id = i.id"
    "  AND (" MINE " OR (j.state <> 'running' AND i.metadata IS NOT NULL))"
    " RETURNING j.id, j.state, j.attempt, j.finalized_at, j.scheduled_at)"
    " SELECT id, state::text, attempt, finalized_at, scheduled_at FROM u"
    " UNION ALL"
    " SELECT j.id, j.state::text, j.attempt, j.finalized_at, j.scheduled_at"
    " FROM {S}river_job AS j JOIN i ON j.id = i.id"
    " WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = j.id)";

static const char JOB_STATES[] =
    "SELECT id, state::text, attempt, finalized_at, scheduled_at"
    " FROM {S}river_job WHERE id = ANY($1::bigint[])";

/* A producer's queue row: created if missing, else only updated_at moves.
 * Returns whether the queue is paused. */
static const char QUEUE_UPSERT[] =
    "INSERT INTO {S}river_queue (created_at, metadata, name, paused_at,"
    " updated_at) VALUES (now(), '{}'::jsonb, $1::text, NULL, now())"
    " ON CONFLICT (name) DO UPDATE SET updated_at = EXCLUDED.updated_at"
    " RETURNING paused_at IS NOT NULL";

static const char QUEUE_GET[] =
    "SELECT paused_at IS NOT NULL FROM {S}river_queue WHERE name = $1::text";

static const char CANCEL_REQUESTED[] =
    "SELECT id FROM {S}river_job WHERE id = ANY($1::bigint[])"
    " AND metadata ? 'cancel_attempted_at' AND state = 'running'"
    " ORDER BY id";

/* Leader election (River: delete expired, then insert if absent; the term
 * is (leader_id, elected_at); renewal also requires an unexpired row). */
static const char LEADER_DELETE[] =
    "DELETE FROM {S}river_leader WHERE expires_at < now()";
static const char LEADER_ELECT[] =
    "INSERT INTO {S}river_leader (leader_id, elected_at, expires_at)"
    " VALUES ($1::text, now(), now() + make_interval(secs => $2::float8))"
    " ON CONFLICT (name) DO NOTHING RETURNING elected_at";
static const char LEADER_REELECT[] =
    "UPDATE {S}river_leader"
    " SET expires_at = now() + make_interval(secs => $1::float8)"
    " WHERE elected_at = $2::timestamptz AND expires_at >= now()"
    "  AND leader_id = $3::text RETURNING elected_at";
static const char LEADER_RESIGN[] =
    "WITH held AS (SELECT leader_id FROM {S}river_leader"
    "  WHERE elected_at = $1::timestamptz AND leader_id = $2::text"
    "  FOR UPDATE),"
    " told AS (SELECT pg_notify($3::text, json_build_object("
    "  'leader_id', leader_id, 'action', 'resigned')::text) FROM held)"
    " DELETE FROM {S}river_leader USING told";

/* Scheduler: due retryable/scheduled jobs (scheduled_at <= $1) become
 * available, at most $2 per run. Of jobs sharing a unique key only the
 * first (priority, scheduled_at, id) is made available, and only if no
 * other row holds the key in one of its unique states; the others are
 * discarded with metadata unique_key_conflict (River's rule). Returns the
 * queue and scheduled_at of the jobs made available. */
static const char SCHEDULE[] =
    "WITH due AS ("
    " SELECT id, unique_key, unique_states, priority, scheduled_at"
    " FROM {S}river_job"
    " WHERE state IN ('retryable', 'scheduled') AND priority >= 0"
    "  AND queue IS NOT NULL AND scheduled_at <= $1::timestamptz"
    " ORDER BY priority, scheduled_at, id LIMIT $2::bigint FOR UPDATE),"
    " ranked AS ("
    " SELECT *, CASE WHEN unique_key IS NOT NULL AND unique_states IS NOT NULL"
    "  THEN row_number() OVER (PARTITION BY unique_key"
    "   ORDER BY priority, scheduled_at, id) END AS rn FROM due),"
    " conflicts AS ("
    " SELECT j.unique_key FROM {S}river_job AS j JOIN ranked AS r"
    "  ON j.unique_key = r.unique_key AND j.id <> r.id"
    " WHERE j.unique_key IS NOT NULL AND j.unique_states IS NOT NULL"
    "  AND {S}river_job_state_in_bitmask(j.unique_states, j.state)),"
    " decided AS ("
    " SELECT r.id, CASE WHEN r.rn IS NULL THEN false"
    "  WHEN c.unique_key IS NOT NULL THEN true"
    "  ELSE r.rn > 1 END AS discard"
    " FROM ranked AS r LEFT JOIN conflicts AS c ON r.unique_key = c.unique_key)"
    " UPDATE {S}river_job AS j SET"
    "  state = CASE WHEN d.discard THEN 'discarded'::{S}river_job_state"
    "   ELSE 'available'::{S}river_job_state END,"
    "  finalized_at = CASE WHEN d.discard THEN $1::timestamptz"
    "   ELSE j.finalized_at END,"
    "  metadata = CASE WHEN d.discard THEN j.metadata ||"
    "   '{\"unique_key_conflict\": \"scheduler_discarded\"}'::jsonb"
    "   ELSE j.metadata END"
    " FROM decided AS d WHERE j.id = d.id"
    " RETURNING j.queue, j.scheduled_at, d.discard";

static const char NOTIFY_MANY[] = "SELECT pg_notify($1::text, payload)"
                                  " FROM unnest($2::text[]) AS payload";

/* Rescuer: running jobs attempted before the horizon, paged by id. */
static const char RESCUE_SELECT[] =
    "SELECT id, kind, attempt, max_attempts,"
    " coalesce(array_length(errors, 1), 0),"
    " metadata ? 'cancel_attempted_at', attempted_at"
    " FROM {S}river_job WHERE state = 'running' AND id > $1::bigint"
    "  AND attempted_at < $2::timestamptz ORDER BY id LIMIT $3::bigint";

static const char RESCUE_UPDATE[] =
    "UPDATE {S}river_job AS j SET"
    " errors = array_append(j.errors, r.error),"
    " finalized_at = r.finalized_at, scheduled_at = r.scheduled_at,"
    " metadata = j.metadata || jsonb_build_object('river:rescue_count',"
    "  coalesce(CASE WHEN jsonb_typeof(j.metadata -> 'river:rescue_count')"
    "   = 'number' THEN (j.metadata ->> 'river:rescue_count')::int END, 0)"
    "  + 1),"
    " state = r.state::{S}river_job_state"
    " FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::jsonb[]) AS error,"
    "  unnest($3::timestamptz[]) AS finalized_at,"
    "  unnest($4::timestamptz[]) AS scheduled_at,"
    "  unnest($5::text[]) AS state) AS r"
    " WHERE j.id = r.id AND j.state = 'running'"
    "  AND j.attempted_at < $6::timestamptz";

/* Cleaner: finalized jobs past their retention ($1..$3 horizons, NULL =
 * keep), at most $4 per statement. */
static const char CLEAN[] =
    "DELETE FROM {S}river_job WHERE id IN ("
    " SELECT id FROM {S}river_job WHERE"
    "  (state = 'cancelled' AND finalized_at < $1::timestamptz)"
    "  OR (state = 'completed' AND finalized_at < $2::timestamptz)"
    "  OR (state = 'discarded' AND finalized_at < $3::timestamptz)"
    " ORDER BY id LIMIT $4::bigint)";

static const char QUEUE_CLEAN[] =
    "DELETE FROM {S}river_queue WHERE name IN ("
    " SELECT name FROM {S}river_queue"
    " WHERE updated_at < now() - make_interval(secs => $1::float8)"
    " ORDER BY name LIMIT 10000)";

static const char CLOCK[] =
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/* Expands "{S}" (and one optional "%s" with 'extra'). */
static char *expand(const char *tmpl, const char *schema_prefix,
                    const char *extra)
{
    struct trib_buf b = TRIB_BUF_INIT;
    const char *p = tmpl;

    while (*p) {
        if (p[0] == '{' && p[1] == 'S' && p[2] == '}') {
            trib_buf_puts(&b, schema_prefix);
            p += 3;
        } else if (p[0] == '%' && p[1] == 's') {
            trib_buf_puts(&b, extra ? extra : "");
            p += 2;
        } else {
            trib_buf_putc(&b, *p++);
        }
    }
    return trib_buf_steal(&b);
}

static void def(struct trib_sql *sql, struct trib_pg_stmt *st, const char *name,
                const char *tmpl, int nparams, const char *prefix,
                const char *extra)
{
    char *text = expand(tmpl, prefix, extra);

    sql->texts[sql->ntexts++] = text;
    st->name = name;
    st->sql = text;
    st->nparams = nparams;
}

int trib__sql_init(struct trib_sql *sql, const char *schema)
{
    struct trib_buf prefix = TRIB_BUF_INIT;
    struct trib_buf ch = TRIB_BUF_INIT;

    memset(sql, 0, sizeof(*sql));
    sql->schema = trib_strdup(schema);
    trib_pg_quote_ident(&prefix, schema);
    trib_buf_putc(&prefix, '.');
    trib_buf_printf(&ch, "%s.river_insert", schema);
    sql->ch_insert = trib_buf_steal(&ch);
    trib_buf_printf(&ch, "%s.river_control", schema);
    sql->ch_control = trib_buf_steal(&ch);
    trib_buf_printf(&ch, "%s.river_leadership", schema);
    sql->ch_leader = trib_buf_steal(&ch);

    def(sql, &sql->fetch, "trib_fetch", FETCH, 4, prefix.data, NULL);
    def(sql, &sql->fetch_known, "trib_fetch_known", FETCH, 5, prefix.data,
        " AND kind = ANY($5::text[])");
    def(sql, &sql->complete_fast, "trib_complete_fast", COMPLETE_FAST, 3,
        prefix.data, NULL);
    def(sql, &sql->complete, "trib_complete", COMPLETE, 8, prefix.data, NULL);
    def(sql, &sql->job_states, "trib_job_states", JOB_STATES, 1, prefix.data,
        NULL);
    def(sql, &sql->queue_upsert, "trib_queue_upsert", QUEUE_UPSERT, 1,
        prefix.data, NULL);
    def(sql, &sql->queue_get, "trib_queue_get", QUEUE_GET, 1, prefix.data,
        NULL);
    def(sql, &sql->cancel_requested, "trib_cancel_requested", CANCEL_REQUESTED,
        1, prefix.data, NULL);
    def(sql, &sql->leader_delete, "trib_leader_delete", LEADER_DELETE, 0,
        prefix.data, NULL);
    def(sql, &sql->leader_elect, "trib_leader_elect", LEADER_ELECT, 2,
        prefix.data, NULL);
    def(sql, &sql->leader_reelect, "trib_leader_reelect", LEADER_REELECT, 3,
        prefix.data, NULL);
    def(sql, &sql->leader_resign, "trib_leader_resign", LEADER_RESIGN, 3,
        prefix.data, NULL);
    def(sql, &sql->schedule, "trib_schedule", SCHEDULE, 2, prefix.data, NULL);
    def(sql, &sql->notify_many, "trib_notify_many", NOTIFY_MANY, 2, prefix.data,
        NULL);
    def(sql, &sql->rescue_select, "trib_rescue_select", RESCUE_SELECT, 3,
        prefix.data, NULL);
    def(sql, &sql->rescue_update, "trib_rescue_update", RESCUE_UPDATE, 6,
        prefix.data, NULL);
    def(sql, &sql->clean, "trib_clean", CLEAN, 4, prefix.data, NULL);
    def(sql, &sql->queue_clean, "trib_queue_clean", QUEUE_CLEAN, 1, prefix.data,
        NULL);
    def(sql, &sql->clock, "trib_clock", CLOCK, 0, prefix.data, NULL);

    trib_buf_fini(&prefix);
    return 0;
}

void trib__sql_fini(struct trib_sql *sql)
{
    int i;

    for (i = 0; i < sql->ntexts; i++) {
        trib_free(sql->texts[i]);
    }
    trib_free(sql->schema);
    trib_free(sql->ch_insert);
    trib_free(sql->ch_control);
    trib_free(sql->ch_leader);
    memset(sql, 0, sizeof(*sql));
}

static const char *const state_names[] = {
    "available", "cancelled", "completed", "discarded",
    "pending",   "retryable", "running",   "scheduled",
};

const char *trib__state_name(int state)
{
    if (state < 0 || state >= JS_UNKNOWN) {
        return "unknown";
    }
    return state_names[state];
}

int trib__state_parse(const char *s)
{
    int i;

    for (i = 0; i < JS_UNKNOWN; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            return i;
        }
    }
    return JS_UNKNOWN;
}
