/*
 * custom_kind.c -- an agent with one kind of your own, next to the built-in
 * ones (see docs/KINDS.md).
 *
 * example.checksum {"text": "...", "rounds": N}: hashes the text N times on
 * a worker thread (BLOCKING) and fails on bad arguments with a clear
 * message.
 */
#include <stdint.h>
#include <string.h>

#include "trib_kind.h"

static void checksum_run(struct trib_job *job, void *arg)
{
    json_t *args = trib_job_args(job);
    json_t *text = json_object_get(args, "text");
    json_t *rounds = json_object_get(args, "rounds");
    uint64_t h = 1469598103934665603ULL;
    json_int_t i, n;
    const char *s;

    (void)arg;
    if (!json_is_string(text)) {
        trib_job_error(job, "example.checksum: field \"text\" must be a "
                            "string");
        return;
    }
    n = json_is_integer(rounds) ? json_integer_value(rounds) : 1;
    if (n < 1 || n > 10000000) {
        trib_job_error(job, "example.checksum: field \"rounds\" must be "
                            "1..10000000");
        return;
    }
    for (i = 0; i < n; i++) {
        for (s = json_string_value(text); *s; s++) {
            h = (h ^ (uint8_t)*s) * 1099511628211ULL;
        }
        if ((i & 1023) == 0 && trib_job_cancelled(job)) {
            trib_job_error(job, "example.checksum: stopped");
            return;
        }
    }
    /* returning without an outcome call means "completed" */
}

static int register_kinds(struct trib_kinds *kinds)
{
    static const struct trib_kind checksum = {
        .name = "example.checksum",
        .mode = TRIB_KIND_BLOCKING,
        .run = checksum_run,
    };

    return trib_kinds_add(kinds, &checksum);
}

int main(int argc, char **argv)
{
    return trib_agent_main(argc, argv, register_kinds);
}
