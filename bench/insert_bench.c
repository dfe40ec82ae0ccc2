/*
 * insert_bench -- jobs/s of the stress inserter (cli/stress_insert.c):
 * one count stage of N jobs "as fast as insertion goes", inserted into
 * River's river_job by S streams with COPY or multi-row INSERT in
 * transactions of B rows. Prints one line of figures. Not a test; used
 * by bench/insert.sh (which starts a private PostgreSQL).
 *
 *   trib-insert-bench --database-url URL [--jobs N] [--streams S]
 *                     [--method copy|insert] [--batch B] [--schema NAME]
 *                     [--queues Q] [--delay D] [--spread D] [--args JSON]
 *
 * Output (one line, tab-separated): method streams batch jobs seconds
 * jobs/s. Exit status 0, 1 on a database error, 2 on bad flags.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress_insert.h"
#include "stress_plan.h"
#include "trib_buf.h"
#include "trib_mem.h"
#include "trib_time.h"

struct bopts {
    const char *url;
    const char *schema;
    const char *args;
    long long jobs;
    int streams, batch, queues;
    enum stress_method method;
    int64_t delay_us, spread_us;
};

static int usage(const char *why)
{
    fprintf(stderr,
            "trib-insert-bench: %s\n"
            "usage: trib-insert-bench --database-url URL [--jobs N] "
            "[--streams S] [--method copy|insert]\n"
            "                         [--batch B] [--schema NAME] "
            "[--queues Q] [--delay D] [--spread D]\n"
            "                         [--args JSON]\n",
            why);
    return 2;
}

static int num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct bopts *o)
{
    static const struct option lo[] = {
        {"database-url", required_argument, NULL, 'u'},
        {"jobs", required_argument, NULL, 'n'},
        {"streams", required_argument, NULL, 's'},
        {"method", required_argument, NULL, 'm'},
        {"batch", required_argument, NULL, 'b'},
        {"schema", required_argument, NULL, 'S'},
        {"queues", required_argument, NULL, 'q'},
        {"delay", required_argument, NULL, 'd'},
        {"spread", required_argument, NULL, 'r'},
        {"args", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    long long v;
    int c;

    memset(o, 0, sizeof(*o));
    o->schema = "public";
    o->args = "{}";
    o->jobs = 200000;
    o->streams = 2;
    o->batch = 5000;
    o->queues = 1;
    o->method = STRESS_METHOD_COPY;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'n':
            if (num(optarg, 1, STRESS_MAX_JOBS, &v)) {
                return usage("--jobs: expected 1..100000000");
            }
            o->jobs = v;
            break;
        case 's':
            if (num(optarg, 1, 16, &v)) {
                return usage("--streams: expected 1..16");
            }
            o->streams = (int)v;
            break;
        case 'b':
            if (num(optarg, 1, 100000, &v)) {
                return usage("--batch: expected 1..100000");
            }
            o->batch = (int)v;
            break;
        case 'q':
            if (num(optarg, 1, STRESS_MAX_QUEUES, &v)) {
                return usage("--queues: expected 1..16");
            }
            o->queues = (int)v;
            break;
        case 'm':
            if (strcmp(optarg, "copy") == 0) {
                o->method = STRESS_METHOD_COPY;
            } else if (strcmp(optarg, "insert") == 0) {
                o->method = STRESS_METHOD_INSERT;
            } else {
                return usage("--method: copy or insert");
            }
            break;
        case 'S':
            o->schema = optarg;
            break;
        case 'a':
            o->args = optarg;
            break;
        case 'd':
        case 'r':
            if (trib_duration_parse(optarg, 0,
                                    c == 'd' ? &o->delay_us : &o->spread_us)) {
                return usage("bad duration (e.g. 10s)");
            }
            break;
        default:
            return usage("unknown option");
        }
    }
    if (o->url == NULL) {
        return usage("--database-url is required");
    }
    return 0;
}

/* The plan by hand (its fields are public): one count stage at full
 * speed, so the figure is the inserter's ceiling. */
static void make_plan(const struct bopts *o, struct stress_plan *p)
{
    int q;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "insert-bench");
    snprintf(p->kind, sizeof(p->kind), "tributary.noop");
    p->args_json = (char *)o->args;
    p->priority = 1;
    p->max_attempts = 25;
    for (q = 0; q < o->queues; q++) {
        snprintf(p->queues[q], sizeof(p->queues[q]),
                 q == 0 ? "default" : "bench-%d", q);
    }
    p->nqueues = o->queues;
    p->delay_us = o->delay_us;
    p->spread_us = o->spread_us;
    p->method = o->method;
    p->batch = o->batch;
    p->streams = o->streams;
    snprintf(p->stages[0].name, sizeof(p->stages[0].name), "stage-1");
    p->stages[0].count = o->jobs;
    p->nstages = 1;
}

int main(int argc, char **argv)
{
    struct bopts o;
    struct stress_plan plan;
    struct stress_ins_opts io;
    struct stress_ins *ins = NULL;
    struct stress_ins_progress pr;
    struct trib_buf table = TRIB_BUF_INIT, chan = TRIB_BUF_INIT;
    char err[512], run_id[32], run_tag[64];
    double secs;
    int rv;

    rv = parse(argc, argv, &o);
    if (rv != 0) {
        return rv;
    }
    make_plan(&o, &plan);
    trib_buf_printf(&table, "\"%s\".river_job", o.schema);
    trib_buf_printf(&chan, "%s.river_insert", o.schema);
    snprintf(run_id, sizeof(run_id), "bench-%lld",
             (long long)(trib_now_us() / TRIB_US_PER_S));
    snprintf(run_tag, sizeof(run_tag), "tributary-run-%s", run_id);
    memset(&io, 0, sizeof(io));
    io.plan = &plan;
    io.conninfo = o.url;
    io.table = table.data;
    io.notify_channel = chan.data;
    io.run_id = run_id;
    io.run_tag = run_tag;

    rv = stress_ins_start(&io, &ins, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "trib-insert-bench: %s\n", err);
        trib_buf_fini(&table);
        trib_buf_fini(&chan);
        return 1;
    }
    rv = stress_ins_join(ins);
    stress_ins_progress(ins, &pr);
    /* from the stage's start (connections are open) to its end */
    secs = (double)(pr.stages[0].ended_us - pr.stages[0].started_us) / 1e6;
    if (rv != 0) {
        fprintf(stderr, "trib-insert-bench: %s\n", pr.error);
    } else {
        printf("%s\t%d\t%d\t%lld\t%.3f\t%.0f\n",
               o.method == STRESS_METHOD_COPY ? "copy" : "insert", o.streams,
               o.batch, (long long)pr.inserted, secs,
               secs > 0 ? (double)pr.inserted / secs : 0.0);
    }
    stress_ins_free(ins);
    trib_buf_fini(&table);
    trib_buf_fini(&chan);
    return rv == 0 ? 0 : 1;
}
