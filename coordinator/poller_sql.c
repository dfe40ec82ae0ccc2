/*
 * poller_sql.c -- the polling view's statements and the reading of their
 * results (docs/POLLING.md explains each statement and its plan).
 *
 * Final-state statements (baseline and window) return the same columns:
 *
 *   0 queue   1 kind   2 state   3 client (last attempted_by, <= 200 chars)
 *   4 rescued ('t'/'f')   5 n (rows counted in bulk)
 *   6 unfinalized (final rows with finalized_at NULL)
 *   7 ids (bigint[] text)   8 fins (finalized_at, us since the epoch,
 *                               bigint[] text, same order as ids)
 *
 * plus one header row whose state is NULL and whose column 5 holds the
 * statement's now() in us since the epoch: the database time the cursor
 * advances to. The non-final statement returns queue, kind, state, n.
 *
 * "{S}" in a template becomes the quoted schema and a dot, or nothing.
 */
#include "poller_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_pg.h"
#include "trib_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINAL_NCOLS  9
#define STATES_NCOLS 4

/* The rescuer's error text (River's JobRescuer; our agent writes the
 * same). A row counts as rescued when its last error is the rescue's, made
 * at the row's current attempt, and the row is final but not completed:
 * the rescue itself finalized it (a rescued job that ran again has a
 * higher attempt). */
#define RESCUED                                                                \
    "coalesce(j.state <> 'completed'"                                          \
    " AND j.errors[cardinality(j.errors)]->>'error'"                           \
    "  = 'Stuck job rescued by JobRescuer'"                                    \
    " AND j.errors[cardinality(j.errors)]->>'attempt' = j.attempt::text,"      \
    " false)"

#define CLIENT "left(j.attempted_by[cardinality(j.attempted_by)], 200)"

#define FIN_US "(extract(epoch FROM j.finalized_at) * 1000000)::bigint"

#define HEADER                                                                 \
    "SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::boolean,"    \
    " (extract(epoch FROM now()) * 1000000)::bigint, NULL::bigint,"            \
    " NULL::text, NULL::text"                                                  \
    " UNION ALL "

/* First poll: every final row, one pass. Rows finalized before now() -
 * margin ($1, us) are counted per group; newer ones come back as ids for
 * the window. Plan: a sequential scan (allowed once). */
static const char BASELINE[] = HEADER
    "SELECT j.queue, j.kind, j.state::text, " CLIENT ", " RESCUED ","
    " count(*) FILTER (WHERE j.finalized_at < c.cut),"
    " count(*) FILTER (WHERE j.finalized_at IS NULL),"
    " (array_agg(j.id) FILTER (WHERE j.finalized_at >= c.cut))::text,"
    " (array_agg(" FIN_US ") FILTER (WHERE j.finalized_at >= c.cut))::text"
    " FROM {S}river_job AS j,"
    "  (SELECT now() - $1::bigint * interval '1 microsecond' AS cut) AS c"
    " WHERE j.state IN ('cancelled', 'completed', 'discarded')"
    " GROUP BY 1, 2, 3, 4, 5";

/* Every later poll: the rows finalized since the lower bound ($1, a
 * timestamptz). Plan: river_job_state_and_finalized_at_index, one range
 * per final state. */
static const char WINDOW[] =
    HEADER "SELECT j.queue, j.kind, j.state::text, " CLIENT ", " RESCUED ","
           " 0::bigint, 0::bigint, array_agg(j.id)::text,"
           " array_agg(" FIN_US ")::text"
           " FROM {S}river_job AS j"
           " WHERE j.state IN ('cancelled', 'completed', 'discarded')"
           "  AND j.finalized_at >= $1::timestamptz"
           " GROUP BY 1, 2, 3, 4, 5";

/* Non-final states now. Plan: river_job_prioritized_fetching_index
 * (state leads) when these rows are a small part of the table. */
static const char STATES[] =
    "SELECT j.queue, j.kind, j.state::text, count(*)"
    " FROM {S}river_job AS j"
    " WHERE j.state IN ('available', 'pending', 'retryable', 'running',"
    "  'scheduled')"
    " GROUP BY 1, 2, 3";

static char *expand(const char *tmpl, const char *schema)
{
    struct trib_buf b = TRIB_BUF_INIT;
    const char *p;

    for (p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == 'S' && p[2] == '}') {
            if (schema != NULL && *schema) {
                trib_pg_quote_ident(&b, schema);
                trib_buf_putc(&b, '.');
            }
            p += 2;
        } else {
            trib_buf_putc(&b, *p);
        }
    }
    return trib_buf_steal(&b);
}

void trib__poll_sql_init(struct trib__poll_sql *s, const char *schema)
{
    s->baseline = expand(BASELINE, schema);
    s->window = expand(WINDOW, schema);
    s->states = expand(STATES, schema);
}

void trib__poll_sql_fini(struct trib__poll_sql *s)
{
    trib_free(s->baseline);
    trib_free(s->window);
    trib_free(s->states);
    memset(s, 0, sizeof(*s));
}

/* ----------------------------------------------------------- parsing */

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* Walks "{1,-2,3}": calls back per element when out != NULL. */
static int walk_i64_array(const char *s, int64_t *out, int max)
{
    const char *p;
    char *end;
    int n = 0;
    long long v;

    if (s == NULL || *s != '{') {
        return -1;
    }
    p = s + 1;
    if (*p == '}') {
        return p[1] == '\0' ? 0 : -1;
    }
    for (;;) {
        if (*p != '-' && (*p < '0' || *p > '9')) {
            return -1;
        }
        errno = 0;
        v = strtoll(p, &end, 10);
        if (errno != 0 || end == p) {
            return -1;
        }
        if (out != NULL) {
            if (n >= max) {
                return -1;
            }
            out[n] = (int64_t)v;
        }
        n++;
        p = end;
        if (*p == ',') {
            p++;
        } else if (*p == '}' && p[1] == '\0') {
            return n;
        } else {
            return -1;
        }
    }
}

int trib__parse_i64_array(const char *s, int64_t *out, int max)
{
    return walk_i64_array(s, out, max);
}

int trib__count_i64_array(const char *s)
{
    return walk_i64_array(s, NULL, 0);
}

/* Cell access shared by PGresult and the tests' text tables. */
struct cells {
    const PGresult *res;     /* or */
    const char *const *text; /* row-major, NULL = SQL NULL */
    int nrows, ncols;
};

static const char *cell(const struct cells *c, int row, int col)
{
    if (c->res != NULL) {
        return PQgetisnull(c->res, row, col) ? NULL
                                             : PQgetvalue(c->res, row, col);
    }
    return c->text[row * c->ncols + col];
}

struct final_row {
    struct trib__key key;
    int64_t n, unfinalized;
    const char *ids, *fins;
};

/* Checks and decodes one group row (not the header). */
static int decode_final(const struct cells *c, int r, struct final_row *fr,
                        char *err, size_t errlen)
{
    const char *resc = cell(c, r, 4);
    int nids, nfins;

    memset(fr, 0, sizeof(*fr));
    fr->key.queue = cell(c, r, 0);
    fr->key.kind = cell(c, r, 1);
    fr->key.ws = trib__ws_parse(cell(c, r, 2));
    fr->key.client = cell(c, r, 3);
    if (fr->key.queue == NULL || fr->key.kind == NULL ||
        !trib__ws_final(fr->key.ws)) {
        snprintf(err, errlen, "row %d: queue, kind or a final state missing",
                 r);
        return TRIB_EPROTO;
    }
    if (resc == NULL || (strcmp(resc, "t") != 0 && strcmp(resc, "f") != 0)) {
        snprintf(err, errlen, "row %d: rescued is not a boolean", r);
        return TRIB_EPROTO;
    }
    fr->key.rescued = resc[0] == 't';
    if (parse_i64(cell(c, r, 5), &fr->n) != 0 || fr->n < 0 ||
        parse_i64(cell(c, r, 6), &fr->unfinalized) != 0 ||
        fr->unfinalized < 0) {
        snprintf(err, errlen, "row %d: counts are not integers", r);
        return TRIB_EPROTO;
    }
    fr->ids = cell(c, r, 7);
    fr->fins = cell(c, r, 8);
    if ((fr->ids == NULL) != (fr->fins == NULL)) {
        snprintf(err, errlen, "row %d: ids and finalized_at disagree", r);
        return TRIB_EPROTO;
    }
    if (fr->ids != NULL) {
        nids = trib__count_i64_array(fr->ids);
        nfins = trib__count_i64_array(fr->fins);
        if (nids < 0 || nids != nfins) {
            snprintf(err, errlen, "row %d: malformed id arrays", r);
            return TRIB_EPROTO;
        }
    }
    return 0;
}

static int read_final(struct trib__tally *t, const struct cells *c, int *late,
                      char *err, size_t errlen)
{
    struct final_row fr;
    struct trib__group *g;
    int64_t now = 0, *ids = NULL, *fins = NULL, unfinalized = 0;
    int r, i, n, max = 0, headers = 0, rv;

    if (c->ncols != FINAL_NCOLS) {
        snprintf(err, errlen, "expected %d columns, got %d", FINAL_NCOLS,
                 c->ncols);
        return TRIB_EPROTO;
    }
    /* Pass 1: check everything, find the header, size the buffers. */
    for (r = 0; r < c->nrows; r++) {
        if (cell(c, r, 2) == NULL) {
            if (parse_i64(cell(c, r, 5), &now) != 0) {
                snprintf(err, errlen, "header row without a time");
                return TRIB_EPROTO;
            }
            headers++;
            continue;
        }
        if ((rv = decode_final(c, r, &fr, err, errlen)) != 0) {
            return rv;
        }
        n = fr.ids ? trib__count_i64_array(fr.ids) : 0;
        max = n > max ? n : max;
    }
    if (headers != 1) {
        snprintf(err, errlen, "expected one header row, got %d", headers);
        return TRIB_EPROTO;
    }
    /* Pass 2: count. */
    ids = trib_malloc(((size_t)max + 1) * sizeof(*ids));
    fins = trib_malloc(((size_t)max + 1) * sizeof(*fins));
    trib__tally_final_begin(t, now);
    for (r = 0; r < c->nrows; r++) {
        if (cell(c, r, 2) == NULL) {
            continue;
        }
        decode_final(c, r, &fr, err, errlen);
        g = trib__tally_group(t, &fr.key);
        if (fr.n > 0) {
            trib__tally_bulk(t, g, fr.n);
        }
        unfinalized += fr.unfinalized;
        if (fr.ids != NULL) {
            n = trib__parse_i64_array(fr.ids, ids, max);
            trib__parse_i64_array(fr.fins, fins, max);
            for (i = 0; i < n; i++) {
                trib__tally_row(t, g, ids[i], fins[i]);
            }
        }
    }
    if (unfinalized > 0) {
        trib__tally_unfinalized(t, unfinalized);
    }
    *late = trib__tally_final_end(t);
    trib_free(ids);
    trib_free(fins);
    return 0;
}

int trib__poll_read_final(struct trib__tally *t, const PGresult *res, int *late,
                          char *err, size_t errlen)
{
    struct cells c = {res, NULL, PQntuples(res), PQnfields(res)};

    return read_final(t, &c, late, err, errlen);
}

int trib__poll_read_final_cells(struct trib__tally *t, const char *const *cells,
                                int nrows, int ncols, int *late, char *err,
                                size_t errlen)
{
    struct cells c = {NULL, cells, nrows, ncols};

    return read_final(t, &c, late, err, errlen);
}

int trib__poll_read_states(struct trib__tally *t, const PGresult *res,
                           char *err, size_t errlen)
{
    int r, nrows = PQntuples(res), ws;
    int64_t n;

    if (PQnfields(res) != STATES_NCOLS) {
        snprintf(err, errlen, "expected %d columns, got %d", STATES_NCOLS,
                 PQnfields(res));
        return TRIB_EPROTO;
    }
    for (r = 0; r < nrows; r++) {
        ws = trib__ws_parse(PQgetvalue(res, r, 2));
        if (PQgetisnull(res, r, 0) || PQgetisnull(res, r, 1) ||
            ws == TRIB_WS_UNKNOWN || trib__ws_final(ws) ||
            parse_i64(PQgetvalue(res, r, 3), &n) != 0) {
            snprintf(err, errlen, "row %d: unexpected values", r);
            return TRIB_EPROTO;
        }
    }
    trib__tally_states_begin(t);
    for (r = 0; r < nrows; r++) {
        parse_i64(PQgetvalue(res, r, 3), &n);
        trib__tally_states_add(t, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                               trib__ws_parse(PQgetvalue(res, r, 2)), n);
    }
    trib__tally_states_end(t);
    return 0;
}
