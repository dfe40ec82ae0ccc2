/*
 * stress_report_test.h -- shared by the two sources of
 * cli_stress_report_test: stress_report_test.c (helpers, the eight-job
 * fixture and its tests, main) and stress_report_scale_test.c (exact
 * quantiles, climb, empty and nonsense input, 1,000,000 jobs).
 *
 * Ownership: jp() and entry() return borrowed references.
 * Threading: one thread (cmocka).
 */
#ifndef TRIB_STRESS_REPORT_TEST_H
#define TRIB_STRESS_REPORT_TEST_H

#include <jansson.h>
#include <stdint.h>

#include "stress_report.h"

#define T0   1800000000000000LL /* run start */
#define MS   1000LL
#define S    1000000LL
#define KIND "tributary.fail"

/* "a.b.2.c": object keys and array indexes; fails the test if absent. */
json_t *jp(const json_t *o, const char *path);
int64_t ji(const json_t *o, const char *path); /* an integer there */
double jr(const json_t *o, const char *path);  /* a number there */
void near(double got, double want, const char *what);
/* The breakdown entry of dimension dim with key. */
json_t *entry(const json_t *doc, const char *dim, const char *key);
int64_t sum(const json_t *arr); /* of an integer array */

/* A job event of kind KIND (created at T0 + 100 ms). */
struct trib_wire_event ev(int kind, int64_t id, int attempt, const char *client,
                          const char *queue, int state, int64_t due,
                          int64_t att, int64_t fin, const char *err,
                          int64_t at);
void feed(struct stress_rec *r, const char *node, struct trib_wire_event e);
/* A river_job row of kind KIND (created at T0 + 100 ms). */
void row(struct stress_rec *r, int64_t id, const char *state, const char *queue,
         int attempt, int64_t sched, int64_t att, int64_t fin, int64_t due,
         int stage, const char *client, int nerrors, const char *last_error);

/* A three-stage mixed plan: warm (count 10 at 10/s), ramp (5 s to 20/s),
 * peak (count 20 as fast as possible). stress_plan_fini() it. */
void plan3(struct stress_plan *p);

/* stress_report_scale_test.c */
void test_quantiles(void **state);
void test_climb(void **state);
void test_empty(void **state);
void test_garbage(void **state);
void test_million(void **state);

#endif /* TRIB_STRESS_REPORT_TEST_H */
