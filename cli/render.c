/*
 * render.c -- the CLI's human formatting: counts with thousands
 * separators, durations with units, rates, tolerant JSON accessors and
 * aligned text tables.
 */
#include "render.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "trib_mem.h"

void trib_fmt_count(char *buf, size_t n, int64_t v)
{
    char digits[32], out[48];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t nd, i, o = 0;

    snprintf(digits, sizeof(digits), "%llu", (unsigned long long)mag);
    nd = strlen(digits);
    if (v < 0) {
        out[o++] = '-';
    }
    for (i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, n, "%s", out);
}

/* "2.00s" -> "2s", "4.50ms" -> "4.5ms" (as k6 prints p(90)=30ms). */
static void trim_zeros(char *buf)
{
    char *dot = strchr(buf, '.'), *end, *z;

    if (dot == NULL) {
        return;
    }
    end = dot + 1;
    while (*end >= '0' && *end <= '9') {
        end++;
    }
    z = end;
    while (z > dot + 1 && z[-1] == '0') {
        z--;
    }
    if (z == dot + 1) {
        z = dot;
    }
    memmove(z, end, strlen(end) + 1);
}

void trib_fmt_dur(char *buf, size_t n, double ms, unsigned flags)
{
    int compact = (flags & TRIB_DUR_COMPACT) != 0;
    const char *sign = "", *sp = compact ? "" : " ";
    double s;

    if (isnan(ms) || isinf(ms)) {
        snprintf(buf, n, "-");
        return;
    }
    if (ms < 0) {
        sign = "-";
        ms = -ms;
    }
    s = ms / 1000.0;
    if (s >= 1e9) { /* a century or more: nonsense, but printable */
        snprintf(buf, n, "%s%.3g%ss", sign, s, sp);
    } else if (compact && ms == 0) {
        snprintf(buf, n, "0s");
    } else if (compact && ms < 0.9995) {
        snprintf(buf, n,
                 ms < 0.00995  ? "%s%.2fus"
                 : ms < 0.0995 ? "%s%.1fus"
                               : "%s%.0fus",
                 sign, ms * 1000.0);
    } else if (ms < 0.9995) {
        snprintf(buf, n, "%s%.3f ms", sign, ms);
    } else if (ms < 9.995) {
        snprintf(buf, n, "%s%.2f%sms", sign, ms, sp);
    } else if (ms < 99.95) {
        snprintf(buf, n, "%s%.1f%sms", sign, ms, sp);
    } else if (ms < 999.5) {
        snprintf(buf, n, "%s%.0f%sms", sign, ms, sp);
    } else if (s < 9.995) {
        snprintf(buf, n, "%s%.2f%ss", sign, s, sp);
    } else if (s < 59.95) {
        snprintf(buf, n, "%s%.1f%ss", sign, s, sp);
    } else if (s < 3599.5) {
        long t = lround(s);
        snprintf(buf, n, "%s%ldm%02lds", sign, t / 60, t % 60);
    } else {
        long t = lround(s / 60.0);
        snprintf(buf, n, "%s%ldh%02ldm", sign, t / 60, t % 60);
    }
    if (compact) {
        trim_zeros(buf);
    }
}

void trib_fmt_ms(char *buf, size_t n, double ms)
{
    trib_fmt_dur(buf, n, ms, 0);
}

void trib_fmt_rate(char *buf, size_t n, double per_s)
{
    char c[32];

    if (isnan(per_s) || per_s < 0) {
        snprintf(buf, n, "-");
    } else if (per_s == 0) {
        snprintf(buf, n, "0/s");
    } else if (per_s < 9.995) {
        snprintf(buf, n, "%.2f/s", per_s);
    } else if (per_s < 99.95) {
        snprintf(buf, n, "%.1f/s", per_s);
    } else {
        trib_fmt_count(c, sizeof(c), (int64_t)llround(per_s));
        snprintf(buf, n, "%s/s", c);
    }
}

int64_t trib_j_int(const json_t *o, const char *key, int *ok)
{
    const json_t *v = o ? json_object_get(o, key) : NULL;

    if (ok != NULL) {
        *ok = json_is_number(v);
    }
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (int64_t)llround(json_real_value(v));
    }
    return 0;
}

double trib_j_num(const json_t *o, const char *key, int *ok)
{
    const json_t *v = o ? json_object_get(o, key) : NULL;

    if (ok != NULL) {
        *ok = json_is_number(v);
    }
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *trib_j_str(const json_t *o, const char *key)
{
    return o ? json_string_value(json_object_get(o, key)) : NULL;
}

void trib_j_count(char *buf, size_t n, const json_t *o, const char *key)
{
    int ok;
    int64_t v = trib_j_int(o, key, &ok);

    if (ok) {
        trib_fmt_count(buf, n, v);
    } else {
        snprintf(buf, n, "-");
    }
}

void trib_j_ms(char *buf, size_t n, const json_t *o, const char *key)
{
    trib_fmt_ms(buf, n, trib_j_num(o, key, NULL));
}

/* ---- text ---------------------------------------------------------------- */

/* Characters (UTF-8 code points) in s. */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            w++;
        }
    }
    return w;
}

/* Drops an incomplete UTF-8 sequence at the end of s (where snprintf cut
 * a character short: the text would no longer be UTF-8). */
static void utf8_whole(char *s)
{
    size_t i = strlen(s), cont = 0, need;
    unsigned char c;

    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0) {
        return;
    }
    c = (unsigned char)s[i - 1];
    need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (cont < need) {
        s[i - 1] = '\0';
    }
}

void trib_fmt_cut(char *buf, size_t n, const char *s, size_t max)
{
    size_t i = 0, chars = 0, len;

    if (s == NULL) {
        snprintf(buf, n, "-");
        return;
    }
    if (width(s) <= max || max < 4) {
        snprintf(buf, n, "%s", s);
    } else {
        len = strlen(s);
        while (i < len) {
            if (((unsigned char)s[i] & 0xC0) != 0x80) {
                if (chars == max - 3) {
                    break;
                }
                chars++;
            }
            i++;
        }
        snprintf(buf, n, "%.*s...", (int)i, s);
    }
    if (n > 0) {
        utf8_whole(buf); /* buf smaller than the text: whole characters */
    }
}

/* ---- tables -------------------------------------------------------------- */

void trib_table_init(struct trib_table *t, const char *align, ...)
{
    va_list ap;
    int i;

    memset(t, 0, sizeof(*t));
    t->ncols = (int)strlen(align);
    if (t->ncols > TRIB_TABLE_MAXCOLS) {
        t->ncols = TRIB_TABLE_MAXCOLS;
    }
    va_start(ap, align);
    for (i = 0; i < t->ncols; i++) {
        t->align[i] = align[i];
        t->head[i] = va_arg(ap, const char *);
    }
    va_end(ap);
}

void trib_table_row(struct trib_table *t, ...)
{
    va_list ap;
    int i;

    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = trib_realloc(t->cells,
                                t->cap * (size_t)t->ncols * sizeof(*t->cells));
    }
    va_start(ap, t);
    for (i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] =
            trib_strdup(s ? s : "-");
    }
    va_end(ap);
    t->nrows++;
}

static void put_cell(struct trib_buf *out, const char *s, size_t w, char align,
                     int last)
{
    size_t pad = w - width(s), k;

    if (align == 'r') {
        for (k = 0; k < pad; k++) {
            trib_buf_putc(out, ' ');
        }
    }
    trib_buf_puts(out, s);
    if (align != 'r' && !last) {
        for (k = 0; k < pad; k++) {
            trib_buf_putc(out, ' ');
        }
    }
    if (!last) {
        trib_buf_puts(out, "  ");
    }
}

void trib_table_render(const struct trib_table *t, struct trib_buf *out,
                       const char *indent)
{
    size_t w[TRIB_TABLE_MAXCOLS], r, k;
    int i;

    for (i = 0; i < t->ncols; i++) {
        w[i] = width(t->head[i]);
        for (r = 0; r < t->nrows; r++) {
            k = width(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (k > w[i]) {
                w[i] = k;
            }
        }
    }
    trib_buf_puts(out, indent);
    for (i = 0; i < t->ncols; i++) {
        put_cell(out, t->head[i], w[i], t->align[i], i == t->ncols - 1);
    }
    trib_buf_putc(out, '\n');
    for (r = 0; r < t->nrows; r++) {
        trib_buf_puts(out, indent);
        for (i = 0; i < t->ncols; i++) {
            put_cell(out, t->cells[r * (size_t)t->ncols + (size_t)i], w[i],
                     t->align[i], i == t->ncols - 1);
        }
        trib_buf_putc(out, '\n');
    }
}

void trib_table_fini(struct trib_table *t)
{
    size_t i;

    for (i = 0; i < t->nrows * (size_t)t->ncols; i++) {
        trib_free(t->cells[i]);
    }
    trib_free(t->cells);
    memset(t, 0, sizeof(*t));
}
