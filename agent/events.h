/*
 * events -- per-client job events: River's event kinds and statistics, for
 * every outcome the agent writes back.
 *
 * The completer publishes one batch per write-back statement, after it
 * committed, with each job's row as persisted (River: "events follow the
 * state actually written"). Subscribers are called synchronously on the
 * loop thread and must not block: copy what you keep. This is the one
 * in-process interface the forwarder and the NDJSON writer consume.
 *
 * Ownership: events and their strings are borrowed for the callback only.
 * Threading: loop thread only.
 */
#ifndef TRIB_EVENTS_H
#define TRIB_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* River's event kinds. Wire-visible (proto/): never renumber. */
enum trib_event_kind {
    TRIB_EV_JOB_COMPLETED = 1,
    TRIB_EV_JOB_FAILED = 2,
    TRIB_EV_JOB_CANCELLED = 3,
    TRIB_EV_JOB_SNOOZED = 4,
    TRIB_EV_JOB_INTERRUPTED = 5,
    TRIB_EV_QUEUE_PAUSED = 6,  /* only kind, client_id, queue, at set */
    TRIB_EV_QUEUE_RESUMED = 7, /* likewise                            */
};

#define TRIB_EV_KINDS 8 /* one past the largest kind */

const char *trib_event_kind_name(int kind); /* "job_completed", ... */

struct trib_event {
    int kind; /* enum trib_event_kind                      */
    const char *client_id;
    int64_t job_id;
    int attempt; /* attempt after write-back                  */
    int max_attempts;
    const char *queue;
    const char *job_kind;
    const char *state; /* persisted state ("completed", ...)        */
    int priority;
    const char *tags; /* PostgreSQL array text, e.g. "{a,b}"       */
    /* Timestamps: us since epoch, database clock; 0 when NULL. */
    int64_t created_at;
    int64_t scheduled_at; /* when this attempt was due (as fetched)    */
    int64_t attempted_at;
    int64_t finalized_at;
    int64_t next_scheduled_at; /* scheduled_at after write-back         */
    /* River's JobStatistics (us). */
    int64_t queue_wait_us; /* start - scheduled_at                      */
    int64_t run_us;        /* end - start                               */
    int64_t complete_us;   /* write-back committed - requested          */
    const char *error;     /* this attempt's error text, or NULL        */
    int64_t at;            /* when it happened (database clock): the
                              write-back commit for job events          */
};

typedef void (*trib_event_fn)(void *arg, const struct trib_event *evs,
                              size_t n);

#define TRIB_EVENT_MAX_SUBSCRIBERS 8

struct trib_event_bus {
    struct {
        trib_event_fn fn;
        void *arg;
    } subs[TRIB_EVENT_MAX_SUBSCRIBERS];
    int nsubs;
    uint64_t published;
};

/* 0 or TRIB_EFULL. */
int trib_event_subscribe(struct trib_event_bus *bus, trib_event_fn fn,
                         void *arg);
void trib_event_publish(struct trib_event_bus *bus,
                        const struct trib_event *evs, size_t n);

/* Appends one event as a JSON object (no newline). */
struct trib_buf;
void trib_event_to_json(struct trib_buf *b, const struct trib_event *ev);

/*
 * NDJSON writer: one JSON line per event to a file or stdout ("-").
 * Lines are written with fwrite and flushed once per batch.
 */
struct trib_ndjson;
int trib_ndjson_open(const char *path, struct trib_ndjson **out);
void trib_ndjson_write(void *ndjson, const struct trib_event *evs, size_t n);
void trib_ndjson_close(struct trib_ndjson *w); /* NULL ok */

#endif /* TRIB_EVENTS_H */
