/*
 * report_fmt.c -- what every report renderer shares: the schema check,
 * tolerant accessors over the document, human units and escaping.
 */
#include "report_priv.h"
#include "report_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "trib_err.h"
#include "trib_mem.h"

#define SCHEMA_NAME  "tributary.stress.report/"
#define SCHEMA_MAJOR 1

int report_check(const json_t *doc, char *err, size_t errlen)
{
    const char *schema, *ver;
    char *end;
    long major;

    if (!json_is_object(doc)) {
        snprintf(err, errlen, "not a stress report: expected a JSON object");
        return TRIB_EINVAL;
    }
    schema = json_string_value(json_object_get(doc, "schema"));
    if (schema == NULL) {
        snprintf(err, errlen,
                 "not a stress report: no \"schema\" string (expected "
                 "\"" SCHEMA_NAME "%d\")",
                 SCHEMA_MAJOR);
        return TRIB_EINVAL;
    }
    if (strncmp(schema, SCHEMA_NAME, strlen(SCHEMA_NAME)) != 0) {
        snprintf(err, errlen,
                 "not a stress report: schema \"%.80s\" (expected "
                 "\"" SCHEMA_NAME "%d\")",
                 schema, SCHEMA_MAJOR);
        return TRIB_EINVAL;
    }
    ver = schema + strlen(SCHEMA_NAME);
    major = strtol(ver, &end, 10);
    if (end == ver || *end != '\0' || major < 1) {
        snprintf(err, errlen,
                 "bad schema version \"%.80s\" (expected \"%s%d\")", schema,
                 SCHEMA_NAME, SCHEMA_MAJOR);
        return TRIB_EINVAL;
    }
    if (major != SCHEMA_MAJOR) {
        snprintf(err, errlen,
                 "report schema \"%.80s\" is not supported: this build reads "
                 "major version %d (\"" SCHEMA_NAME "%d\")",
                 schema, SCHEMA_MAJOR, SCHEMA_MAJOR);
        return TRIB_ENOTSUP;
    }
    return 0;
}

/* ---- accessors ----------------------------------------------------------- */

const json_t *rp_get(const json_t *o, const char *path)
{
    char key[64];
    const char *dot;
    size_t len;

    while (o != NULL && path != NULL) {
        if (!json_is_object(o)) {
            return NULL;
        }
        dot = strchr(path, '.');
        len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof(key)) {
            return NULL;
        }
        memcpy(key, path, len);
        key[len] = '\0';
        o = json_object_get(o, key);
        path = dot ? dot + 1 : NULL;
    }
    return o;
}

double rp_num(const json_t *o, const char *path)
{
    const json_t *v = rp_get(o, path);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *rp_str(const json_t *o, const char *path)
{
    return json_string_value(rp_get(o, path));
}

const json_t *rp_arr(const json_t *o, const char *path)
{
    const json_t *v = rp_get(o, path);

    return json_is_array(v) ? v : NULL;
}

double *rp_doubles(const json_t *arr, size_t *n)
{
    double *out;
    size_t i;

    *n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (*n == 0) {
        return NULL;
    }
    out = trib_malloc(*n * sizeof(*out));
    for (i = 0; i < *n; i++) {
        const json_t *v = json_array_get(arr, i);
        out[i] = json_is_number(v) ? json_number_value(v) : NAN;
    }
    return out;
}

/* ---- units --------------------------------------------------------------- */

void rp_fmt_dur(char *buf, size_t n, double ms)
{
    trib_fmt_dur(buf, n, ms, TRIB_DUR_COMPACT);
}

void rp_fmt_secs(char *buf, size_t n, double s)
{
    rp_fmt_dur(buf, n, s * 1000.0);
}

void rp_fmt_count(char *buf, size_t n, double v)
{
    if (!isfinite(v) || fabs(v) > 9.0e18) {
        snprintf(buf, n, "-");
        return;
    }
    trib_fmt_count(buf, n, (int64_t)llround(v));
}

void rp_fmt_rate(char *buf, size_t n, double per_s)
{
    if (!isfinite(per_s) || per_s > 9.0e18) {
        snprintf(buf, n, "-");
        return;
    }
    trib_fmt_rate(buf, n, per_s);
}

void rp_fmt_pct(char *buf, size_t n, double frac)
{
    double p = frac * 100.0;

    if (!isfinite(p)) { /* NaN, or too large to be a percentage */
        snprintf(buf, n, "-");
    } else if (p == 0) {
        snprintf(buf, n, "0%%");
    } else if (fabs(p) < 9.995) {
        snprintf(buf, n, "%.2f%%", p);
    } else if (fabs(p) < 99.95) {
        snprintf(buf, n, "%.1f%%", p);
    } else {
        snprintf(buf, n, "%.0f%%", p);
    }
}

void rp_fmt_bytes(char *buf, size_t n, double v)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    int u = -1;

    if (!isfinite(v)) {
        snprintf(buf, n, "-");
        return;
    }
    if (fabs(v) < 1024) {
        snprintf(buf, n, "%.0f B", v);
        return;
    }
    while (fabs(v) >= 1024 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, n, fabs(v) < 9.995 ? "%.2f %s" : "%.1f %s", v, units[u]);
}

void rp_fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "-");
    } else if (fabs(v) >= 1000 || v == floor(v)) {
        rp_fmt_count(buf, n, v);
    } else if (fabs(v) < 10) {
        snprintf(buf, n, "%.2f", v);
    } else {
        snprintf(buf, n, "%.1f", v);
    }
}

void rp_fmt_delta(char *buf, size_t n, double a, double b)
{
    double d;

    if (!isfinite(a) || !isfinite(b)) {
        snprintf(buf, n, "-");
        return;
    }
    if (a == b) {
        snprintf(buf, n, "0%%");
        return;
    }
    if (a == 0) {
        snprintf(buf, n, "-");
        return;
    }
    d = (b - a) / fabs(a) * 100.0;
    if (!isfinite(d)) { /* 1e-300 to 1e300: no percentage says that */
        snprintf(buf, n, "-");
    } else if (fabs(d) < 9.95) {
        snprintf(buf, n, "%+.1f%%", d);
    } else {
        snprintf(buf, n, "%+.0f%%", d);
    }
}

void rp_fmt(char *buf, size_t n, enum rp_unit u, double v)
{
    switch (u) {
    case RP_U_COUNT:
        rp_fmt_count(buf, n, v);
        break;
    case RP_U_MS:
        rp_fmt_dur(buf, n, v);
        break;
    case RP_U_RATE:
        rp_fmt_rate(buf, n, v);
        break;
    case RP_U_FRAC:
        rp_fmt_pct(buf, n, v);
        break;
    case RP_U_PCT:
        rp_fmt_pct(buf, n, v / 100.0);
        break;
    case RP_U_BYTES:
        rp_fmt_bytes(buf, n, v);
        break;
    case RP_U_MIB:
        rp_fmt_bytes(buf, n, v * 1048576.0);
        break;
    case RP_U_SEC:
        rp_fmt_secs(buf, n, v);
        break;
    default:
        rp_fmt_num(buf, n, v);
        break;
    }
}

enum rp_unit rp_unit_of(const char *u)
{
    if (u == NULL) {
        return RP_U_NUM;
    }
    if (strcmp(u, "ms") == 0) {
        return RP_U_MS;
    }
    if (strcmp(u, "ratio") == 0) {
        return RP_U_FRAC;
    }
    if (strcmp(u, "jobs/s") == 0) {
        return RP_U_RATE;
    }
    if (strcmp(u, "count") == 0) {
        return RP_U_COUNT;
    }
    return RP_U_NUM;
}

/* ---- text safety --------------------------------------------------------- */

void rp_esc(struct trib_buf *b, const char *s)
{
    const char *run;

    if (s == NULL) {
        trib_buf_putc(b, '-');
        return;
    }
    for (run = s; *s; s++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)*s;

        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
                rep = "";
            }
            break;
        }
        if (rep != NULL) {
            trib_buf_append(b, run, (size_t)(s - run));
            trib_buf_puts(b, rep);
            run = s + 1;
        }
    }
    trib_buf_append(b, run, (size_t)(s - run));
}

void rp_clean(char *buf, size_t n, const char *s, size_t max)
{
    char tmp[512];
    size_t i;

    if (s == NULL) {
        snprintf(buf, n, "-");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s", s);
    for (i = 0; tmp[i]; i++) {
        unsigned char c = (unsigned char)tmp[i];
        if (c < 0x20 || c == 0x7f) {
            tmp[i] = c == '\t' || c == '\n' ? ' ' : '?';
        }
    }
    trib_fmt_cut(buf, n, tmp, max);
}

const char *rp_stage_name(const json_t *doc, long idx, char *buf, size_t n)
{
    const json_t *st = rp_arr(doc, "stages");
    size_t i;

    for (i = 0; st != NULL && i < json_array_size(st); i++) {
        const json_t *s = json_array_get(st, i);
        double k = rp_num(s, "index");
        const char *name = rp_str(s, "name");
        if (k == (double)idx && name != NULL) { /* (long)1e300: undefined */
            snprintf(buf, n, "%s", name);
            return buf;
        }
    }
    snprintf(buf, n, "stage-%ld", idx + 1);
    return buf;
}
