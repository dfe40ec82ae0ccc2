/*
 * stress_plan_int -- what the parts of the plan parser share: the value
 * parsers and setters used by both the plan file (stress_plan_yaml.c) and
 * the flags (stress_plan.c). Private to cli/stress_plan*.c and
 * cli/stress_threshold.c.
 *
 * Every function that can fail returns 0 or TRIB_EINVAL and writes the
 * problem, without a location ("expected an integer 1..4, got '9'"), into
 * msg; the caller puts "file:line:col: field: " or "--flag: " in front.
 * Ownership: strings are copied into the plan; json_t arguments are
 * borrowed. Threading: no shared state.
 */
#ifndef TRIB_STRESS_PLAN_INT_H
#define TRIB_STRESS_PLAN_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stress_plan.h"

#define STRESS_RATE_MAX  10000000.0    /* jobs/s */
#define STRESS_ARGS_MAX  (1024 * 1024) /* bytes of args JSON */
#define STRESS_DELAY_MAX (24 * 3600 * 1000000LL)
/* args bytes x batch: what one batch's text may hold (each stream builds a
 * batch in memory, and libpq takes at most 2 GiB of COPY data at once). */
#define STRESS_BATCH_ARGS_MAX (64 * 1024 * 1024)

/* The plan's single-valued settings, set the same way from the file and
 * from flags (see the table in stress_plan.c). */
enum stress_field {
    SF_NAME,
    SF_KIND,
    SF_ARGS,
    SF_PRIORITY,
    SF_MAX_ATTEMPTS,
    SF_DELAY,
    SF_SPREAD,
    SF_NOTIFY_QUEUE,
    SF_POLL_QUEUE,
    SF_METHOD,
    SF_BATCH,
    SF_STREAMS,
    SF_START_RATE,
    SF_TIMEOUT,
    SF_GRACE,
    SF_MONITOR,
    SF_DATABASE_URL,
    SF_SCHEMA,
    SF_CONTROL,
    SF_OUT,
    SF_COUNT_
};

/* Bits of stress_plan.flag_seen: which list flags were given already. */
#define STRESS_SEEN_STAGES     1u
#define STRESS_SEEN_THRESHOLDS 2u
#define STRESS_SEEN_QUEUES     4u
#define STRESS_SEEN_TAGS       8u

/* The field a plan-file key of 'section' ("" top level, "jobs", "insert",
 * "mixed") names, or -1. */
int stress__field_by_key(const char *section, const char *key);

/* Sets one field from text. */
int stress__set(struct stress_plan *p, int field, const char *val, char *msg,
                size_t n);

/* args from a JSON object (borrowed) or from JSON text. */
int stress__set_args(struct stress_plan *p, const json_t *obj, char *msg,
                     size_t n);
int stress__set_args_text(struct stress_plan *p, const char *text, char *msg,
                          size_t n);

/* Appends to the plan's lists (bounds, syntax and duplicates checked). */
int stress__add_queue(struct stress_plan *p, const char *q, char *msg,
                      size_t n);
int stress__add_tag(struct stress_plan *p, const char *tag, char *msg,
                    size_t n);
int stress__add_stage(struct stress_plan *p, const struct stress_stage *st,
                      char *msg, size_t n);
int stress__add_threshold(struct stress_plan *p, const char *expr, int line,
                          char *msg, size_t n);

/* Value parsers. */
int stress__rate(const char *s, double *out, char *msg, size_t n);
int stress__count(const char *s, int64_t *out, char *msg, size_t n);
int stress__duration(const char *s, int64_t min, int64_t max, int64_t *out,
                     char *msg, size_t n);
int stress__stage_name(const char *s, char *msg, size_t n);
/* A stage written as text: [NAME=]DURATION:TARGET | COUNT@RATE | COUNT. */
int stress__stage_spec(const char *s, struct stress_stage *st, char *msg,
                       size_t n);

/* s for a message: control characters as '?', cut to fit 'n' with "...". */
const char *stress__show(const char *s, char *buf, size_t n);

/* Formats a message into err (errlen bytes); returns TRIB_EINVAL. */
int stress__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when s is one of list's strings (NULL-terminated), else 0. */
int stress__in(const char *const *list, const char *s);

#endif /* TRIB_STRESS_PLAN_INT_H */
