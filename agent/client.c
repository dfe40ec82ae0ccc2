/*
 * client.c -- one River-compatible client: its id, its queues (one producer
 * each), its fetch connection and its completer.
 *
 * Notify-mode clients receive river_insert and river_control notifications
 * from the agent's shared listener (agent.c) and also poll; poll-mode
 * clients never see a notification and rely on their timers alone.
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"

#include <string.h>

int trib__client_create(struct trib_agent *a, const struct trib_client_conf *cf,
                        struct trib_client **out)
{
    struct trib_client *c = TRIB_NEW(struct trib_client);
    char name[160];
    size_t i;
    int rv;

    c->agent = a;
    c->conf = cf;
    c->id = cf->id;
    snprintf(name, sizeof(name), "%s/fetch", c->id);
    rv = trib__agent_pg(a, c->id, name, 1, &c->fetch_pg);
    if (rv != 0) {
        goto fail_client;
    }
    rv = trib__completer_create(c, &c->completer);
    if (rv != 0) {
        goto fail_pg;
    }
    if (cf->fetch_only_known_kinds) {
        /* The registry is complete before the agent runs: build the
         * fetch's kind filter once. */
        struct trib_buf kinds = TRIB_BUF_INIT;
        trib_buf_putc(&kinds, '{');
        for (i = 0; i < a->kinds->n; i++) {
            if (i > 0) {
                trib_buf_putc(&kinds, ',');
            }
            trib_buf_pgarray_elem(&kinds, a->kinds->v[i]->name,
                                  strlen(a->kinds->v[i]->name));
        }
        trib_buf_putc(&kinds, '}');
        c->known_kinds = trib_buf_steal(&kinds);
    }
    c->producers = trib_calloc(cf->nqueues, sizeof(*c->producers));
    for (i = 0; i < cf->nqueues; i++) {
        trib__producer_create(c, cf->queues[i].name, cf->queues[i].max_workers,
                              &c->producers[i]);
        c->nproducers++;
    }
    *out = c;
    return 0;

fail_pg:
    trib_pg_close(c->fetch_pg, NULL, NULL);
fail_client:
    trib_free(c);
    return rv;
}

void trib__client_start(struct trib_client *c)
{
    size_t i;

    trib_pg_start(c->fetch_pg);
    trib__completer_start(c->completer);
    for (i = 0; i < c->nproducers; i++) {
        trib__producer_start(c->producers[i]);
    }
    TRIB_INFO("AGT-CLIENT", "client %s started: %s mode, %zu queue(s)", c->id,
              c->conf->mode == TRIB_MODE_POLL ? "poll" : "notify",
              c->nproducers);
}

static struct trib_producer *find(struct trib_client *c, const char *queue)
{
    size_t i;

    for (i = 0; i < c->nproducers; i++) {
        if (strcmp(c->producers[i]->queue, queue) == 0) {
            return c->producers[i];
        }
    }
    return NULL;
}

void trib__client_on_insert(struct trib_client *c, const char *queue)
{
    struct trib_producer *p;

    if (c->conf->mode != TRIB_MODE_NOTIFY) {
        return;
    }
    if (queue == NULL) { /* listener reconnected: we may have missed some */
        size_t i;
        for (i = 0; i < c->nproducers; i++) {
            trib__producer_trigger(c->producers[i]);
        }
        return;
    }
    p = find(c, queue);
    if (p != NULL) {
        trib__producer_trigger(p);
    }
}

void trib__client_on_control(struct trib_client *c, const char *action,
                             const char *queue, int64_t job_id)
{
    size_t i;

    if (c->conf->mode != TRIB_MODE_NOTIFY || action == NULL || queue == NULL) {
        return;
    }
    if (strcmp(action, "cancel") == 0) {
        struct trib_producer *p = find(c, queue); /* exact queue only */
        if (p != NULL) {
            trib__producer_cancel_job(p, job_id);
        }
        return;
    }
    if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0) {
        return; /* metadata_changed and unknown actions: nothing to do */
    }
    for (i = 0; i < c->nproducers; i++) {
        if (strcmp(queue, "*") == 0 ||
            strcmp(queue, c->producers[i]->queue) == 0) {
            trib__producer_set_paused(c->producers[i],
                                      strcmp(action, "pause") == 0);
        }
    }
}

void trib__client_backpressure(struct trib_client *c, int on)
{
    size_t i;

    if (c->backpressure == on) {
        return;
    }
    c->backpressure = on;
    TRIB_DEBUG("AGT-BACKPRESSURE",
               "client %s: write-back backlog %s; "
               "fetching %s",
               c->id, on ? "high" : "drained", on ? "paused" : "resumed");
    if (!on) {
        for (i = 0; i < c->nproducers; i++) {
            trib__producer_trigger(c->producers[i]);
        }
    }
}

size_t trib__client_running(const struct trib_client *c)
{
    size_t i, n = 0;

    for (i = 0; i < c->nproducers; i++) {
        n += (size_t)c->producers[i]->active;
    }
    return n;
}

void trib__client_stop(struct trib_client *c)
{
    size_t i;

    c->stopping = 1;
    for (i = 0; i < c->nproducers; i++) {
        trib__producer_stop(c->producers[i]);
    }
}

void trib__client_cancel_all(struct trib_client *c, enum trib_cancel_reason r)
{
    size_t i;

    for (i = 0; i < c->nproducers; i++) {
        struct trib_job *j = c->producers[i]->run_head, *next;
        for (; j != NULL; j = next) {
            next = j->next; /* cancel may finish and unlink j */
            trib__job_cancel(j, r);
        }
    }
}

/* Jobs whose blocking run() ignores cancellation: write them back as
 * interrupted now; their threads' results will be dropped. */
static void abandon_threads(struct trib_client *c)
{
    size_t i;

    for (i = 0; i < c->nproducers; i++) {
        struct trib_job *j = c->producers[i]->run_head, *next;
        for (; j != NULL; j = next) {
            next = j->next;
            if (j->in_thread) {
                TRIB_WARN("AGT-ABANDON",
                          "client %s: job %lld (%s) ignores "
                          "cancellation; writing it back as interrupted",
                          c->id, (long long)j->id, j->kind_name);
                j->outcome = OUT_INTERRUPT;
                trib__job_finish(j);
            }
        }
    }
}

int trib__client_idle(const struct trib_client *c)
{
    return trib__client_running(c) == 0 && trib__completer_idle(c->completer);
}

void trib__client_interrupt_stragglers(struct trib_client *c)
{
    abandon_threads(c);
}

void trib__client_close(struct trib_client *c)
{
    size_t i;

    for (i = 0; i < c->nproducers; i++) {
        /* Jobs still running cannot be written back any more. */
        struct trib_job *j = c->producers[i]->run_head, *next;
        for (; j != NULL; j = next) {
            next = j->next;
            j->phase = PHASE_DONE;
            trib__job_free(j);
        }
        c->producers[i]->run_head = NULL;
        trib__producer_close(c->producers[i]);
    }
    trib__completer_close(c->completer);
    trib_pg_close(c->fetch_pg, NULL, NULL);
    trib_free(c->producers);
    trib_free(c->known_kinds);
    trib_free(c);
}
