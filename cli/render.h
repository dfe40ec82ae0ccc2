/*
 * render -- turning the coordinator's JSON documents (docs/CONTROL.md) and
 * wire events into what the CLI prints.
 *
 *   render.c         number/duration formatting, JSON accessors, tables
 *   render_status.c  the status document: full view, watch frame, one-line
 *                    summary, and wait's "what is missing" report
 *   render_nodes.c   the nodes and failures documents
 *   render_event.c   a wire event as the agent's event JSON (+ node, cursor)
 *
 * Renderers never fail: a field that is missing, null or of the wrong type
 * prints as "-" (documents only ever gain fields). Output is appended to a
 * caller-owned trib_buf.
 *
 * Threading: no shared state.
 */
#ifndef TRIB_CLI_RENDER_H
#define TRIB_CLI_RENDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "trib_buf.h"
#include "trib_wire.h"

/* ---- formatting (render.c) ---------------------------------------------- */

/* "1,234,567"; negative numbers keep their sign. */
void trib_fmt_count(char *buf, size_t n, int64_t v);
/* A duration given in milliseconds, with its unit: "0.412 ms", "12.3 ms",
 * "250 ms", "1.25 s", "12.5 s", "2m05s", "1h02m"; negative values keep
 * their sign; NaN (an absent value) -> "-". */
void trib_fmt_ms(char *buf, size_t n, double ms);
/* The one duration formatter behind trib_fmt_ms (flags 0) and the stress
 * report's compact form (TRIB_DUR_COMPACT: no space before the unit,
 * microseconds below 1 ms, trailing zeros dropped: "412us", "4.5ms",
 * "41ms", "1.1s", "2m05s", "0s"). A century or more prints as "1e+09 s" /
 * "1e+09s". */
#define TRIB_DUR_COMPACT 1u
void trib_fmt_dur(char *buf, size_t n, double ms, unsigned flags);
/* Jobs per second: "0/s", "0.50/s", "12.3/s", "1,234/s". */
void trib_fmt_rate(char *buf, size_t n, double per_s);

/* JSON accessors: *ok (may be NULL) = 0 when the field is absent, null or
 * not a number / string. */
int64_t trib_j_int(const json_t *o, const char *key, int *ok);
double trib_j_num(const json_t *o, const char *key, int *ok);
const char *trib_j_str(const json_t *o, const char *key); /* NULL if none */
/* Number formatted with trib_fmt_count / trib_fmt_ms, "-" when absent. */
void trib_j_count(char *buf, size_t n, const json_t *o, const char *key);
void trib_j_ms(char *buf, size_t n, const json_t *o, const char *key);

/* A text table: columns sized to their widest cell (UTF-8 aware), two
 * spaces apart; align[i] is 'l' or 'r'. Cells are copied. */
#define TRIB_TABLE_MAXCOLS 16
struct trib_table {
    int ncols;
    const char *head[TRIB_TABLE_MAXCOLS];
    char align[TRIB_TABLE_MAXCOLS];
    char **cells; /* nrows * ncols */
    size_t nrows, cap;
};
void trib_table_init(struct trib_table *t, const char *align, ...);
/* Adds one row of t->ncols strings (NULL prints as "-"). */
void trib_table_row(struct trib_table *t, ...);
/* Appends the table, each line prefixed by indent. */
void trib_table_render(const struct trib_table *t, struct trib_buf *out,
                       const char *indent);
void trib_table_fini(struct trib_table *t);

/* Copies s into buf, cut to at most max characters (UTF-8) with "...";
 * a buf too small for that holds whole characters only. */
void trib_fmt_cut(char *buf, size_t n, const char *s, size_t max);

/* ---- documents (render_status.c, render_nodes.c) ------------------------ */

/* The full `tributary status` view. */
void trib_render_status(struct trib_buf *b, const json_t *status);
/* `tributary watch`: a screenful (at most 'rows' lines, 'cols' wide). */
void trib_render_watch(struct trib_buf *b, const json_t *status, int rows,
                       int cols);
/* One line (no newline): finished, rates, in flight, failures, nodes. */
void trib_render_status_line(struct trib_buf *b, const json_t *status);
/* `tributary wait` at its timeout: what is missing, and where. 'status'
 * (same filters) may be NULL when it could not be fetched. */
void trib_render_wait_missing(struct trib_buf *b, const json_t *wait,
                              const json_t *status);

void trib_render_nodes(struct trib_buf *b, const json_t *nodes);
void trib_render_failures(struct trib_buf *b, const json_t *failures);

/* ---- events (render_event.c) -------------------------------------------- */

/* Appends one event as a JSON object (no newline): the agent's event JSON
 * (agent/events.c) with "node" and "cursor" after "event". */
void trib_render_event_json(struct trib_buf *b, uint64_t cursor,
                            struct trib_str node,
                            const struct trib_wire_event *ev);
/* Appends {"missed":N,"after":A} (no newline). */
void trib_render_missed_json(struct trib_buf *b, uint64_t missed,
                             uint64_t after);
/* Parses "job_completed,job_failed,..." into an EVENTS kinds bitmask. 0, or
 * TRIB_EINVAL with the offending name in bad (at most badlen bytes). */
int trib_event_kinds_parse(const char *list, uint32_t *mask, char *bad,
                           size_t badlen);

#endif /* TRIB_CLI_RENDER_H */
