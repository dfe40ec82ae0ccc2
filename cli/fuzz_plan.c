/* fuzz_plan.c -- libFuzzer: stress plans (cli/stress_plan.h). Any bytes as
 * a plan file, and as the value of the flags with a grammar of their own
 * (--stage, --threshold, --queue, --args): never a crash, leak or
 * out-of-bounds read; every failure explains itself with a located message;
 * a plan that finishes has 1..STRESS_MAX_JOBS jobs and a schedule that
 * never goes backwards and ends at each stage's share of that total. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stress_plan.h"
#include "trib_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_schedule(const struct stress_plan *p)
{
    int64_t total = 0, prev, n, t, end;
    int i, k, done;

    for (i = 0; i < p->nstages; i++) {
        const struct stress_stage *st = &p->stages[i];
        end = st->duration_us > 0 ? st->duration_us : 3600LL * 1000000;
        for (prev = 0, k = 0; k <= 16; k++) {
            t = end / 16 * k + (k == 16 ? end % 16 : 0);
            n = stress_stage_due(p, i, t, &done);
            if (n < prev || n < 0) {
                abort(); /* the schedule went backwards */
            }
            prev = n;
        }
        n = stress_stage_due(
            p, i, st->duration_us > 0 ? st->duration_us : INT64_MAX, &done);
        if (n < prev || (st->duration_us > 0 && !done)) {
            abort();
        }
        total += n;
    }
    if (total != stress_plan_jobs(p) || total < 1 || total > STRESS_MAX_JOBS) {
        abort();
    }
}

static void flags(const char *value)
{
    static const char *const names[] = {"stage", "threshold", "queue",
                                        "args",  "tag",       "rate"};
    struct stress_plan p;
    char err[512];
    size_t i;

    stress_plan_init(&p);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        err[0] = '\0';
        if (stress_plan_flag(&p, names[i], value, err, sizeof(err)) != 0 &&
            strncmp(err, "--", 2) != 0) {
            abort(); /* a flag error names its flag */
        }
    }
    stress_plan_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stress_plan p;
    char err[512], *text;
    json_t *j;

    stress_plan_init(&p);
    err[0] = '\0';
    if (stress_plan_parse(&p, (const char *)data, size, "f.yaml", err,
                          sizeof(err)) != 0) {
        if (strncmp(err, "f.yaml:", 7) != 0) {
            abort(); /* errors carry the file */
        }
    } else if (stress_plan_finish(&p, err, sizeof(err)) == 0) {
        check_schedule(&p);
        j = stress_plan_json(&p);
        if (json_object_size(j) == 0) {
            abort(); /* every field, or nothing: a bug */
        }
        stress_thresholds_apply(&p, j); /* any document: no crash */
        json_decref(j);
    } else if (err[0] == '\0') {
        abort();
    }
    stress_plan_fini(&p);

    if (size < 256) {
        text = trib_strndup((const char *)data, size);
        flags(text);
        trib_free(text);
    }
    return 0;
}
