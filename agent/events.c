/*
 * events.c -- event bus, JSON form, NDJSON writer.
 */
#include "events.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <errno.h>
#include <string.h>

struct trib_ndjson {
    FILE *f;
    int is_stdout;
    struct trib_buf line;
    struct trib_complain complain;
};

const char *trib_event_kind_name(int kind)
{
    switch (kind) {
    case TRIB_EV_JOB_COMPLETED:
        return "job_completed";
    case TRIB_EV_JOB_FAILED:
        return "job_failed";
    case TRIB_EV_JOB_CANCELLED:
        return "job_cancelled";
    case TRIB_EV_JOB_SNOOZED:
        return "job_snoozed";
    case TRIB_EV_JOB_INTERRUPTED:
        return "job_interrupted";
    case TRIB_EV_QUEUE_PAUSED:
        return "queue_paused";
    case TRIB_EV_QUEUE_RESUMED:
        return "queue_resumed";
    default:
        return "unknown";
    }
}

int trib_event_subscribe(struct trib_event_bus *bus, trib_event_fn fn,
                         void *arg)
{
    if (bus->nsubs >= TRIB_EVENT_MAX_SUBSCRIBERS) {
        return TRIB_EFULL;
    }
    bus->subs[bus->nsubs].fn = fn;
    bus->subs[bus->nsubs].arg = arg;
    bus->nsubs++;
    return 0;
}

void trib_event_publish(struct trib_event_bus *bus,
                        const struct trib_event *evs, size_t n)
{
    int s;

    bus->published += n;
    for (s = 0; s < bus->nsubs; s++) {
        bus->subs[s].fn(bus->subs[s].arg, evs, n);
    }
}

static void put_time(struct trib_buf *b, const char *key, int64_t us)
{
    trib_buf_printf(b, ",\"%s\":", key);
    trib_buf_json_time(b, us);
}

static void put_str(struct trib_buf *b, const char *key, const char *s)
{
    trib_buf_printf(b, ",\"%s\":", key);
    if (s == NULL) {
        trib_buf_puts(b, "null");
    } else {
        trib_buf_json_str(b, s, strlen(s));
    }
}

static void put_ms(struct trib_buf *b, const char *key, int64_t us)
{
    trib_buf_printf(b, ",\"%s\":", key);
    trib_buf_json_ms(b, us);
}

void trib_event_to_json(struct trib_buf *b, const struct trib_event *ev)
{
    trib_buf_puts(b, "{\"event\":\"");
    trib_buf_puts(b, trib_event_kind_name(ev->kind));
    trib_buf_putc(b, '"');
    put_str(b, "client_id", ev->client_id);
    if (ev->kind == TRIB_EV_QUEUE_PAUSED || ev->kind == TRIB_EV_QUEUE_RESUMED) {
        put_str(b, "queue", ev->queue);
        put_time(b, "at", ev->at);
        trib_buf_putc(b, '}');
        return;
    }
    trib_buf_puts(b, ",\"job_id\":");
    trib_buf_put_i64(b, ev->job_id);
    trib_buf_printf(b, ",\"attempt\":%d,\"max_attempts\":%d", ev->attempt,
                    ev->max_attempts);
    put_str(b, "queue", ev->queue);
    put_str(b, "kind", ev->job_kind);
    put_str(b, "state", ev->state);
    trib_buf_printf(b, ",\"priority\":%d", ev->priority);
    put_str(b, "tags", ev->tags);
    put_time(b, "created_at", ev->created_at);
    put_time(b, "scheduled_at", ev->scheduled_at);
    put_time(b, "attempted_at", ev->attempted_at);
    put_time(b, "finalized_at", ev->finalized_at);
    put_time(b, "next_scheduled_at", ev->next_scheduled_at);
    put_ms(b, "queue_wait_ms", ev->queue_wait_us);
    put_ms(b, "run_ms", ev->run_us);
    put_ms(b, "complete_ms", ev->complete_us);
    put_str(b, "error", ev->error);
    put_time(b, "at", ev->at);
    trib_buf_putc(b, '}');
}

int trib_ndjson_open(const char *path, struct trib_ndjson **out)
{
    struct trib_ndjson *w = TRIB_NEW(struct trib_ndjson);

    if (strcmp(path, "-") == 0) {
        w->f = stdout;
        w->is_stdout = 1;
    } else {
        w->f = fopen(path, "a");
        if (w->f == NULL) {
            TRIB_ERROR("AGT-EVOUT", "cannot open events file %s: %s", path,
                       strerror(errno));
            trib_free(w);
            return TRIB_EIO;
        }
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 16);
    *out = w;
    return 0;
}

void trib_ndjson_write(void *arg, const struct trib_event *evs, size_t n)
{
    struct trib_ndjson *w = arg;
    size_t i;

    trib_buf_reset(&w->line);
    for (i = 0; i < n; i++) {
        trib_event_to_json(&w->line, &evs[i]);
        trib_buf_putc(&w->line, '\n');
    }
    if (fwrite(w->line.data, 1, w->line.len, w->f) != w->line.len ||
        fflush(w->f) != 0) {
        trib_complain(&w->complain, TRIB_LOG_ERROR, "AGT-EVOUT",
                      "writing events failed: %s", strerror(errno));
        clearerr(w->f);
    }
}

void trib_ndjson_close(struct trib_ndjson *w)
{
    if (w == NULL) {
        return;
    }
    fflush(w->f);
    if (!w->is_stdout) {
        fclose(w->f);
    }
    trib_buf_fini(&w->line);
    trib_free(w);
}
