/*
 * report.c -- `tributary report`: re-renders a saved stress run (its
 * report.json, docs/REPORT.md) as the terminal summary and the HTML file,
 * or compares two runs side by side.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_render.h"
#include "trib_buf.h"
#include "trib_mem.h"

#define PROG     "tributary report"
#define MAX_FILE (1024L * 1024 * 1024) /* a report.json larger is refused */

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary report RUN [--html FILE | --no-html] [--json] "
            "[--no-color]\n"
            "       tributary report --compare A B [--html FILE] [--no-color]"
            "\n"
            "\n"
            "Renders a saved stress run again (`tributary stress --out DIR` "
            "wrote it):\n"
            "prints the terminal summary and re-writes the self-contained "
            "HTML report.\n"
            "RUN is a run's directory (holding report.json) or the path of "
            "a report.json;\n"
            "the HTML goes to RUN/report.html (for a file X.json: X.html) "
            "unless --html\n"
            "says where. --compare puts two runs side by side (A = "
            "baseline, B =\n"
            "candidate): latencies, rates, counts, notify vs poll, "
            "thresholds, with the\n"
            "change from A to B; with --html also overlaid charts.\n"
            "\n"
            "Options:\n"
            "  --html FILE    write the HTML report to FILE (atomically: a "
            "temporary file,\n"
            "                 then rename)\n"
            "  --no-html      do not write any HTML file\n"
            "  --json         print the report document (JSON) instead of "
            "the summary\n"
            "  --no-color     no ANSI colours (also when NO_COLOR is set or "
            "stdout is not a\n"
            "                 terminal)\n"
            "  --compare      compare two runs: the two arguments are A and "
            "B\n"
            "  -h, --help     show this help\n"
            "\n"
            "Exit status:\n"
            "  0  rendered\n"
            "  1  I/O error: a report cannot be read, or the HTML file "
            "cannot be written\n"
            "  2  usage error, or not a readable report (bad JSON: "
            "file:line:col; another\n"
            "     schema or a newer major version)\n"
            "\n"
            "Examples:\n"
            "  tributary report stress-20261127-160000-3fa2\n"
            "  tributary report runs/a/report.json --html /tmp/a.html\n"
            "  tributary report stress-x --json | jq .latency_ms.end_to_end\n"
            "  tributary report --compare runs/before runs/after --html "
            "compare.html\n");
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s (see 'tributary report --help')\n", msg,
            arg ? " " : "", arg ? arg : "");
    return TRIB_EXIT_USAGE;
}

/* RUN -> the path of its report.json (heap). */
static char *json_path(const char *run)
{
    struct stat st;
    struct trib_buf p = TRIB_BUF_INIT;

    trib_buf_puts(&p, run);
    if (stat(run, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (p.len == 0 || p.data[p.len - 1] != '/') {
            trib_buf_putc(&p, '/');
        }
        trib_buf_puts(&p, "report.json");
    }
    return trib_buf_steal(&p);
}

/* The HTML next to a report.json: X.json -> X.html, else X.html. */
static char *html_path(const char *json)
{
    struct trib_buf p = TRIB_BUF_INIT;
    size_t n = strlen(json);

    if (n > 5 && strcmp(json + n - 5, ".json") == 0) {
        n -= 5;
    }
    trib_buf_append(&p, json, n);
    trib_buf_puts(&p, ".html");
    return trib_buf_steal(&p);
}

/* Reads and checks one report. 0, TRIB_EXIT_ERROR or TRIB_EXIT_USAGE
 * (message printed). */
static int load(const char *path, json_t **out)
{
    struct trib_buf text = TRIB_BUF_INIT;
    char chunk[65536], err[256];
    json_error_t je;
    size_t n;
    FILE *f;
    int rc = TRIB_EXIT_ERROR;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(errno));
        return TRIB_EXIT_ERROR;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        trib_buf_append(&text, chunk, n);
        if (text.len > (size_t)MAX_FILE) {
            fprintf(stderr, PROG ": %s: larger than %ld MiB, not a report\n",
                    path, MAX_FILE >> 20);
            rc = TRIB_EXIT_USAGE;
            goto out;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    *out = json_loadb(text.data ? text.data : "", text.len, 0, &je);
    if (*out == NULL) {
        fprintf(stderr, PROG ": %s:%d:%d: not valid JSON: %s\n", path, je.line,
                je.column, je.text);
        rc = TRIB_EXIT_USAGE;
        goto out;
    }
    if (report_check(*out, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        json_decref(*out);
        *out = NULL;
        rc = TRIB_EXIT_USAGE;
        goto out;
    }
    rc = TRIB_EXIT_OK;
out:
    fclose(f);
    trib_buf_fini(&text);
    return rc;
}

/* Writes b to path through path.tmp.PID and rename(2). */
static int write_atomic(const char *path, const struct trib_buf *b)
{
    struct trib_buf tmp = TRIB_BUF_INIT;
    FILE *f;
    int rc = -1;

    trib_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp.data, "wb");
    if (f == NULL) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", tmp.data,
                strerror(errno));
        goto out;
    }
    if (fwrite(b->data, 1, b->len, f) != b->len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", tmp.data,
                strerror(errno));
        fclose(f);
        unlink(tmp.data);
        goto out;
    }
    if (fclose(f) != 0 || rename(tmp.data, path) != 0) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp.data);
        goto out;
    }
    rc = 0;
out:
    trib_buf_fini(&tmp);
    return rc;
}

static int print_buf(const struct trib_buf *b)
{
    if (b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) {
        return -1;
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

struct opts {
    const char *html;
    int no_html, json, color, compare;
};

static int one(const struct opts *o, const char *run)
{
    struct trib_buf b = TRIB_BUF_INIT;
    char *jp = json_path(run), *hp = NULL;
    json_t *doc = NULL;
    char *text;
    int rc;

    rc = load(jp, &doc);
    if (rc != 0) {
        goto out;
    }
    if (o->json) {
        text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
        if (text != NULL) {
            fputs(text, stdout);
            fputc('\n', stdout);
        }
        free(text); /* jansson's allocator */
    } else {
        report_text(&b, doc, o->color);
        print_buf(&b);
    }
    if (!o->no_html) {
        hp = o->html ? trib_strdup(o->html) : html_path(jp);
        trib_buf_reset(&b);
        report_html(&b, doc);
        if (write_atomic(hp, &b) != 0) {
            rc = TRIB_EXIT_ERROR;
            goto out;
        }
        fprintf(o->json ? stderr : stdout, "\nHTML report: %s\n", hp);
    }
    rc = TRIB_EXIT_OK;
out:
    json_decref(doc);
    trib_free(jp);
    trib_free(hp);
    trib_buf_fini(&b);
    return rc;
}

static int compare(const struct opts *o, const char *ra, const char *rb)
{
    struct trib_buf b = TRIB_BUF_INIT;
    char *pa = json_path(ra), *pb = json_path(rb);
    json_t *a = NULL, *d = NULL;
    int rc;

    rc = load(pa, &a);
    if (rc == 0) {
        rc = load(pb, &d);
    }
    if (rc != 0) {
        goto out;
    }
    report_compare_text(&b, a, d, o->color);
    print_buf(&b);
    if (o->html != NULL) {
        trib_buf_reset(&b);
        report_compare_html(&b, a, d);
        if (write_atomic(o->html, &b) != 0) {
            rc = TRIB_EXIT_ERROR;
            goto out;
        }
        printf("\nHTML comparison: %s\n", o->html);
    }
out:
    json_decref(a);
    json_decref(d);
    trib_free(pa);
    trib_free(pb);
    trib_buf_fini(&b);
    return rc;
}

int trib_cli_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"html", required_argument, NULL, 'o'},
        {"no-html", no_argument, NULL, 'N'},
        {"json", no_argument, NULL, 'j'},
        {"no-color", no_argument, NULL, 'C'},
        {"compare", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o;
    const char *nc = getenv("NO_COLOR");
    int c, nargs;

    memset(&o, 0, sizeof(o));
    o.color = isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0');
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (optarg[0] == '\0') {
                return usage_error("empty value for", "--html");
            }
            o.html = optarg;
            break;
        case 'N':
            o.no_html = 1;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'C':
            o.color = 0;
            break;
        case 'c':
            o.compare = 1;
            break;
        case 'h':
            help(stdout);
            return TRIB_EXIT_OK;
        case ':':
            return usage_error("option needs a value:", argv[optind - 1]);
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    nargs = argc - optind;
    if (o.html != NULL && o.no_html) {
        return usage_error("--html and --no-html exclude each other", NULL);
    }
    if (o.compare) {
        if (o.json || o.no_html) {
            return usage_error(o.json ? "--json" : "--no-html",
                               "does not apply to --compare");
        }
        if (nargs != 2) {
            return usage_error("--compare needs two runs: A B", NULL);
        }
        return compare(&o, argv[optind], argv[optind + 1]);
    }
    if (nargs == 0) {
        return usage_error("which run? give a directory or a report.json",
                           NULL);
    }
    if (nargs > 1) {
        return usage_error("unexpected argument (did you mean --compare?)",
                           argv[optind + 1]);
    }
    return one(&o, argv[optind]);
}
