/*
 * render_event.c -- a wire event (proto/trib_wire.h) as the agent's event
 * JSON (agent/events.c, trib_event_to_json), plus "node" and "cursor", for
 * `tributary events`; and the --kind list parser.
 *
 * Same keys, same value forms as the agent writes: times RFC 3339 UTC with
 * microseconds (null when unset), durations in milliseconds with three
 * decimals, "state" as text, "tags" as PostgreSQL array text ("{a,b}").
 */
#include "render.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "events.h" /* agent: trib_event_kind_name(), TRIB_EV_* */
#include "trib_err.h"
#include "trib_time.h"

static void put_tstr(struct trib_buf *b, const char *key, struct trib_str s)
{
    trib_buf_printf(b, ",\"%s\":", key);
    if (s.p == NULL) {
        trib_buf_puts(b, "null");
    } else {
        trib_buf_json_str(b, s.p, s.n);
    }
}

static void put_time(struct trib_buf *b, const char *key, int64_t us)
{
    trib_buf_printf(b, ",\"%s\":", key);
    trib_buf_json_time(b, us);
}

static void put_ms(struct trib_buf *b, const char *key, int64_t us)
{
    trib_buf_printf(b, ",\"%s\":", key);
    trib_buf_json_ms(b, us);
}

/* PostgreSQL's array_out quoting: quote empty elements, "NULL", and those
 * holding a delimiter, brace, quote, backslash or white space. */
static int needs_quotes(struct trib_str s)
{
    uint32_t i;

    if (s.n == 0 || (s.n == 4 && strncasecmp(s.p, "null", 4) == 0)) {
        return 1;
    }
    for (i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == ',' || c == '{' || c == '}' || c == '"' || c == '\\' ||
            isspace((unsigned char)c)) {
            return 1;
        }
    }
    return 0;
}

static void put_tags(struct trib_buf *b, const struct trib_wire_event *ev)
{
    struct trib_buf arr = TRIB_BUF_INIT;
    int i;

    trib_buf_putc(&arr, '{');
    for (i = 0; i < ev->ntags; i++) {
        if (i > 0) {
            trib_buf_putc(&arr, ',');
        }
        if (ev->tags[i].p == NULL) {
            trib_buf_puts(&arr, "NULL");
        } else if (needs_quotes(ev->tags[i])) {
            trib_buf_pgarray_elem(&arr, ev->tags[i].p, ev->tags[i].n);
        } else {
            trib_buf_append(&arr, ev->tags[i].p, ev->tags[i].n);
        }
    }
    trib_buf_putc(&arr, '}');
    trib_buf_puts(b, ",\"tags\":");
    trib_buf_json_str(b, arr.data, arr.len);
    trib_buf_fini(&arr);
}

void trib_render_event_json(struct trib_buf *b, uint64_t cursor,
                            struct trib_str node,
                            const struct trib_wire_event *ev)
{
    trib_buf_puts(b, "{\"event\":\"");
    trib_buf_puts(b, trib_event_kind_name(ev->kind));
    trib_buf_putc(b, '"');
    put_tstr(b, "node", node);
    trib_buf_printf(b, ",\"cursor\":%llu", (unsigned long long)cursor);
    put_tstr(b, "client_id", ev->client_id);
    if (ev->kind == TRIB_EV_QUEUE_PAUSED || ev->kind == TRIB_EV_QUEUE_RESUMED) {
        put_tstr(b, "queue", ev->queue);
        put_time(b, "at", ev->at);
        trib_buf_putc(b, '}');
        return;
    }
    trib_buf_puts(b, ",\"job_id\":");
    trib_buf_put_i64(b, ev->job_id);
    trib_buf_printf(b, ",\"attempt\":%d,\"max_attempts\":%d", (int)ev->attempt,
                    (int)ev->max_attempts);
    put_tstr(b, "queue", ev->queue);
    put_tstr(b, "kind", ev->job_kind);
    if (ev->state == TRIB_WS_UNKNOWN) {
        trib_buf_puts(b, ",\"state\":null");
    } else {
        trib_buf_printf(b, ",\"state\":\"%s\"",
                        trib_wire_state_name(ev->state));
    }
    trib_buf_printf(b, ",\"priority\":%d", (int)ev->priority);
    put_tags(b, ev);
    put_time(b, "created_at", ev->created_at);
    put_time(b, "scheduled_at", ev->scheduled_at);
    put_time(b, "attempted_at", ev->attempted_at);
    put_time(b, "finalized_at", ev->finalized_at);
    put_time(b, "next_scheduled_at", ev->next_scheduled_at);
    put_ms(b, "queue_wait_ms", ev->queue_wait_us);
    put_ms(b, "run_ms", ev->run_us);
    put_ms(b, "complete_ms", ev->complete_us);
    put_tstr(b, "error", ev->error);
    put_time(b, "at", ev->at);
    trib_buf_putc(b, '}');
}

void trib_render_missed_json(struct trib_buf *b, uint64_t missed,
                             uint64_t after)
{
    trib_buf_printf(b, "{\"missed\":%llu,\"after\":%llu}",
                    (unsigned long long)missed, (unsigned long long)after);
}

int trib_event_kinds_parse(const char *list, uint32_t *mask, char *bad,
                           size_t badlen)
{
    const char *p = list, *end;
    uint32_t m = 0;
    size_t len;
    int k;

    while (1) {
        end = strchr(p, ',');
        len = end ? (size_t)(end - p) : strlen(p);
        for (k = 1; k < TRIB_EV_KINDS; k++) {
            const char *name = trib_event_kind_name(k);
            if (strlen(name) == len && strncmp(name, p, len) == 0) {
                m |= 1u << k;
                break;
            }
        }
        if (k == TRIB_EV_KINDS) {
            snprintf(bad, badlen, "%.*s", (int)len, p);
            return TRIB_EINVAL;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    *mask = m;
    return 0;
}
