/*
 * report_svg.c -- inline SVG charts for the HTML report: line charts over
 * time or over latency (CDFs, log x), with grid, ticks, legend, stage and
 * climb markers; and panels of grouped bars. No script, no external
 * reference (not even an xmlns: inline SVG in HTML needs none).
 *
 * Long series are cut to at most RP_MAX_POINTS points per line by keeping
 * each bucket's minimum and maximum, so spikes survive downsampling.
 */
#include "report_priv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trib_mem.h"

#define W      800.0
#define H      300.0
#define LEFT   64.0
#define RIGHT  18.0
#define BOTTOM 40.0
#define CHARW  6.2 /* average glyph width at 11px, for layout guesses */

static const char *const palette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
};

const char *rp_color(int i)
{
    int n = (int)(sizeof(palette) / sizeof(palette[0]));

    return palette[((i % n) + n) % n];
}

void rp_chart_init(struct rp_chart *c, const char *id, const char *title,
                   const char *xlabel, enum rp_unit xunit, const char *ylabel,
                   enum rp_unit yunit)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->title = title;
    c->xlabel = xlabel;
    c->ylabel = ylabel;
    c->xunit = xunit;
    c->yunit = yunit;
}

static struct rp_line *new_line(struct rp_chart *c, const char *name, size_t n,
                                int color, int dash)
{
    struct rp_line *l;

    if (c->nlines >= RP_MAX_LINES) {
        return NULL;
    }
    l = &c->lines[c->nlines++];
    rp_clean(l->name, sizeof(l->name), name, sizeof(l->name) - 1);
    l->n = n;
    l->x = n ? trib_malloc(n * sizeof(double)) : NULL;
    l->y = n ? trib_malloc(n * sizeof(double)) : NULL;
    l->color = color;
    l->dash = dash;
    return l;
}

void rp_chart_series(struct rp_chart *c, const char *name, const json_t *xs,
                     const json_t *ys, int color, int dash)
{
    size_t i, n = json_is_array(ys) ? json_array_size(ys) : 0;
    struct rp_line *l = new_line(c, name, n, color, dash);
    const json_t *v;

    for (i = 0; l != NULL && i < n; i++) {
        v = json_array_get(ys, i);
        l->y[i] = json_is_number(v) ? json_number_value(v) : NAN;
        if (xs == NULL) {
            l->x[i] = (double)i;
        } else {
            v = json_array_get(xs, i);
            l->x[i] = json_is_number(v) ? json_number_value(v) : NAN;
        }
    }
}

void rp_chart_pairs(struct rp_chart *c, const char *name, const json_t *pairs,
                    int color, int dash)
{
    size_t i, n = json_is_array(pairs) ? json_array_size(pairs) : 0;
    struct rp_line *l = new_line(c, name, n, color, dash);

    for (i = 0; l != NULL && i < n; i++) {
        const json_t *p = json_array_get(pairs, i);
        const json_t *x = json_array_get(p, 0), *y = json_array_get(p, 1);
        l->x[i] = json_is_number(x) ? json_number_value(x) : NAN;
        l->y[i] = json_is_number(y) ? json_number_value(y) : NAN;
    }
}

void rp_chart_mark(struct rp_chart *c, double x, const char *label, int climb)
{
    struct rp_mark *m;

    if (c->nmarks >= RP_MAX_MARKS || !isfinite(x)) {
        return;
    }
    m = &c->marks[c->nmarks++];
    m->x = x;
    m->climb = climb;
    rp_clean(m->label, sizeof(m->label), label ? label : "",
             sizeof(m->label) - 1);
}

void rp_chart_stage_marks(struct rp_chart *c, const json_t *doc)
{
    const json_t *st = rp_arr(doc, "series.stage");
    const json_t *t = rp_arr(doc, "series.t");
    double prev = -1, at;
    char name[64];
    size_t i;

    for (i = 0; st != NULL && i < json_array_size(st); i++) {
        const json_t *v = json_array_get(st, i);
        double s = json_is_number(v) ? json_number_value(v) : -1;
        if (s >= 0 && s < 1e9 && s != prev) { /* (long)s defined */
            v = t ? json_array_get(t, i) : NULL;
            at = json_is_number(v) ? json_number_value(v) : (double)i;
            rp_chart_mark(c, at,
                          rp_stage_name(doc, (long)s, name, sizeof(name)), 0);
        }
        prev = s;
    }
    at = rp_num(doc, "climb.at_s");
    if (isfinite(at)) {
        const char *metric = rp_str(doc, "climb.metric");
        snprintf(name, sizeof(name), "climb (%s)", metric ? metric : "?");
        rp_chart_mark(c, at, name, 1);
    }
}

void rp_chart_fini(struct rp_chart *c)
{
    int i;

    for (i = 0; i < c->nlines; i++) {
        trib_free(c->lines[i].x);
        trib_free(c->lines[i].y);
    }
    c->nlines = 0;
}

/* ---- scales -------------------------------------------------------------- */

/* A round step (1, 2, 5 x 10^k) giving about 'want' intervals. */
static double nice_step(double range, int want)
{
    double raw = range / want, mag, f;

    if (!(raw > 0) || !isfinite(raw)) {
        return 1;
    }
    mag = pow(10, floor(log10(raw)));
    f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* A round step for unit u: bytes step in 1, 2, 5 x 1024^k. */
static double unit_step(enum rp_unit u, double range, int want)
{
    double div = 1;

    if (u == RP_U_BYTES || u == RP_U_MIB) {
        while (range / div >= 1024 * 4 && div < 1e15) {
            div *= 1024;
        }
    }
    return nice_step(range / div, want) * div;
}

/* Tick label: short, unit-aware, no float noise. */
static void tick(char *buf, size_t n, enum rp_unit u, double v)
{
    double a = fabs(v);

    if (v == 0) {
        snprintf(buf, n, "0");
        return;
    }
    switch (u) {
    case RP_U_MS:
        if (a < 1) {
            snprintf(buf, n, "%.3gus", v * 1000);
        } else if (a < 1000) {
            snprintf(buf, n, "%.3gms", v);
        } else if (a < 60000) {
            snprintf(buf, n, "%.3gs", v / 1000);
        } else {
            snprintf(buf, n, "%.3gm", v / 60000);
        }
        return;
    case RP_U_SEC:
        if (a < 60 || fmod(a, 60) != 0) {
            snprintf(buf, n, "%.4gs", v);
        } else {
            snprintf(buf, n, "%.3gm", v / 60);
        }
        return;
    case RP_U_FRAC:
        snprintf(buf, n, "%.3g%%", v * 100);
        return;
    case RP_U_PCT:
        snprintf(buf, n, "%.3g%%", v);
        return;
    case RP_U_BYTES:
    case RP_U_MIB: {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int k = u == RP_U_MIB ? 2 : 0;
        while (a >= 1024 && k < 4) {
            a /= 1024;
            v /= 1024;
            k++;
        }
        snprintf(buf, n, "%.3g %s", v, units[k]);
        return;
    }
    default:
        break;
    }
    if (a >= 1e9) {
        snprintf(buf, n, "%.3gG", v / 1e9);
    } else if (a >= 1e6) {
        snprintf(buf, n, "%.3gM", v / 1e6);
    } else if (a >= 1e3) {
        snprintf(buf, n, "%.3gk", v / 1e3);
    } else {
        snprintf(buf, n, "%.3g", v);
    }
    if (u == RP_U_RATE && strlen(buf) + 3 < n) {
        strcat(buf, "/s");
    }
}

struct scale {
    double lo, hi; /* data range shown (log: log10 of it) */
    double p0, p1; /* pixels */
    int log;
};

static double px(const struct scale *s, double v)
{
    double f;

    if (s->log) {
        v = v > 0 ? log10(v) : s->lo;
    }
    f = (v - s->lo) / (s->hi - s->lo);
    if (isnan(f)) { /* a range beyond doubles (+-1e308): still a picture */
        f = 0;
    }
    if (f < -0.02) {
        f = -0.02;
    } else if (f > 1.02) {
        f = 1.02;
    }
    return s->p0 + f * (s->p1 - s->p0);
}

/* ---- line charts --------------------------------------------------------- */

static void text(struct trib_buf *b, double x, double y, const char *anchor,
                 const char *cls, const char *s)
{
    trib_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"", x, y,
                    anchor);
    if (cls != NULL) {
        trib_buf_printf(b, " class=\"%s\"", cls);
    }
    trib_buf_puts(b, ">");
    rp_esc(b, s);
    trib_buf_puts(b, "</text>");
}

static void svg_open(struct trib_buf *b, const char *id, const char *title,
                     double w, double h)
{
    trib_buf_printf(b,
                    "<svg class=\"chart\" data-chart=\"%s\" viewBox=\"0 0 %.0f "
                    "%.0f\" role=\"img\" aria-label=\"",
                    id, w, h);
    rp_esc(b, title);
    trib_buf_puts(b, "\"><title>");
    rp_esc(b, title);
    trib_buf_printf(b,
                    "</title><rect class=\"bg\" fill=\"#fff\" x=\"0\" y=\"0\" "
                    "width=\"%.0f\" "
                    "height=\"%.0f\"/>",
                    w, h);
    text(b, 10, 18, "start", "ct", title);
}

/* Legend items in rows from the left; returns the y below the legend. */
static double legend(struct trib_buf *b, const struct rp_chart *c, double y)
{
    double x = LEFT;
    int i;

    if (c->nlines < 2) {
        return y;
    }
    trib_buf_puts(b, "<g class=\"legend\">");
    for (i = 0; i < c->nlines; i++) {
        double w = 26 + CHARW * (double)strlen(c->lines[i].name) + 14;
        if (x + w > W - RIGHT && x > LEFT) {
            x = LEFT;
            y += 15;
        }
        trib_buf_printf(b,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                        "stroke=\"%s\" stroke-width=\"3\"%s/>",
                        x, y - 4, x + 20, y - 4, rp_color(c->lines[i].color),
                        c->lines[i].dash ? " stroke-dasharray=\"5 3\"" : "");
        text(b, x + 25, y, "start", NULL, c->lines[i].name);
        x += w;
    }
    trib_buf_puts(b, "</g>");
    return y + 15;
}

/* Emits one line as polylines, a new one after each gap. */
struct pen {
    struct trib_buf *b;
    const struct rp_line *l;
    const struct scale *sx, *sy;
    int open, npts;
    double lastx, lasty;
};

static void pen_point(struct pen *p, size_t i)
{
    double x = px(p->sx, p->l->x[i]), y = px(p->sy, p->l->y[i]);

    if (!p->open) {
        trib_buf_printf(p->b,
                        "<polyline fill=\"none\" stroke=\"%s\" "
                        "stroke-width=\"1.8\"%s points=\"",
                        rp_color(p->l->color),
                        p->l->dash ? " stroke-dasharray=\"5 3\"" : "");
        p->open = 1;
        p->npts = 0;
    }
    trib_buf_printf(p->b, "%s%.1f,%.1f", p->npts ? " " : "", x, y);
    p->npts++;
    p->lastx = x;
    p->lasty = y;
}

static void pen_gap(struct pen *p)
{
    if (!p->open) {
        return;
    }
    trib_buf_puts(p->b, "\"><title>");
    rp_esc(p->b, p->l->name);
    trib_buf_puts(p->b, "</title></polyline>");
    if (p->npts == 1) { /* a lone point: a dot, or it would not show */
        trib_buf_printf(p->b,
                        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                        "fill=\"%s\"/>",
                        p->lastx, p->lasty, rp_color(p->l->color));
    }
    p->open = 0;
}

static int drawable(const struct rp_line *l, size_t i)
{
    return isfinite(l->x[i]) && isfinite(l->y[i]);
}

static void draw_line(struct trib_buf *b, const struct rp_line *l,
                      const struct scale *sx, const struct scale *sy)
{
    size_t i, buckets = RP_MAX_POINTS / 2, k, from, to, imin, imax;
    struct pen p;

    memset(&p, 0, sizeof(p));
    p.b = b;
    p.l = l;
    p.sx = sx;
    p.sy = sy;
    if (l->n <= RP_MAX_POINTS) {
        for (i = 0; i < l->n; i++) {
            if (drawable(l, i)) {
                pen_point(&p, i);
            } else {
                pen_gap(&p);
            }
        }
        pen_gap(&p);
        return;
    }
    /* Downsampling: each bucket gives its minimum and maximum, in order. */
    for (k = 0; k < buckets; k++) {
        from = k * l->n / buckets;
        to = (k + 1) * l->n / buckets;
        imin = imax = l->n;
        for (i = from; i < to; i++) {
            if (!drawable(l, i)) {
                continue;
            }
            if (imin == l->n || l->y[i] < l->y[imin]) {
                imin = i;
            }
            if (imax == l->n || l->y[i] > l->y[imax]) {
                imax = i;
            }
        }
        if (imin == l->n) {
            pen_gap(&p);
            continue;
        }
        pen_point(&p, imin < imax ? imin : imax);
        if (imin != imax) {
            pen_point(&p, imin < imax ? imax : imin);
        }
    }
    pen_gap(&p);
}

static void axis_ticks(struct trib_buf *b, const struct scale *sx,
                       const struct scale *sy, enum rp_unit xu, enum rp_unit yu)
{
    char lab[32];
    double step, v;
    int guard;

    trib_buf_puts(b, "<g class=\"grid\" stroke=\"#e8e8e8\">");
    step = unit_step(yu, sy->hi - sy->lo, 5);
    for (v = sy->lo, guard = 0; v <= sy->hi + step * 1e-6 && guard < 40;
         v += step, guard++) {
        double y = px(sy, v);
        trib_buf_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
            sx->p0, y, sx->p1, y);
        tick(lab, sizeof(lab), yu, fabs(v) < step * 1e-9 ? 0 : v);
        text(b, sx->p0 - 5, y + 4, "end", "tk", lab);
    }
    if (sx->log) {
        for (v = ceil(sx->lo - 1e-9), guard = 0;
             v <= sx->hi + 1e-9 && guard < 40; v += 1, guard++) {
            double x = px(sx, pow(10, v));
            trib_buf_printf(
                b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x,
                sy->p1, x, sy->p0);
            tick(lab, sizeof(lab), xu, pow(10, v));
            text(b, x, sy->p0 + 15, "middle", "tk", lab);
        }
    } else {
        step = nice_step(sx->hi - sx->lo, 8);
        for (v = ceil(sx->lo / step) * step, guard = 0;
             v <= sx->hi + step * 1e-6 && guard < 40; v += step, guard++) {
            double x = px(sx, v);
            trib_buf_printf(
                b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x,
                sy->p1, x, sy->p0);
            tick(lab, sizeof(lab), xu, fabs(v) < step * 1e-9 ? 0 : v);
            text(b, x, sy->p0 + 15, "middle", "tk", lab);
        }
    }
    trib_buf_puts(b, "</g>");
}

/* Data extents over every drawable point; 0 when there is none. */
static int extents(const struct rp_chart *c, double *x0, double *x1, double *y0,
                   double *y1)
{
    int i, any = 0;
    size_t k;

    for (i = 0; i < c->nlines; i++) {
        const struct rp_line *l = &c->lines[i];
        for (k = 0; k < l->n; k++) {
            double x = l->x[k], y = l->y[k];
            if (!isfinite(x) || !isfinite(y) || (c->xlog && x <= 0)) {
                continue;
            }
            if (!any) {
                *x0 = *x1 = x;
                *y0 = *y1 = y;
                any = 1;
            }
            *x0 = fmin(*x0, x);
            *x1 = fmax(*x1, x);
            *y0 = fmin(*y0, y);
            *y1 = fmax(*y1, y);
        }
    }
    /* Time charts show the whole run, also seconds without a value. */
    for (i = 0; any && !c->xlog && i < c->nlines; i++) {
        const struct rp_line *l = &c->lines[i];
        for (k = 0; k < l->n; k++) {
            if (isfinite(l->x[k])) {
                *x0 = fmin(*x0, l->x[k]);
                *x1 = fmax(*x1, l->x[k]);
            }
        }
    }
    return any;
}

void rp_chart_svg(struct trib_buf *b, const struct rp_chart *c)
{
    struct scale sx, sy;
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1, top, step;
    int i, any;

    svg_open(b, c->id, c->title, W, H);
    top = legend(b, c, 36);
    top += 6;
    any = extents(c, &x0, &x1, &y0, &y1);
    for (i = 0; any && !c->xlog && i < c->nmarks; i++) {
        x0 = fmin(x0, c->marks[i].x);
        x1 = fmax(x1, c->marks[i].x);
    }
    memset(&sx, 0, sizeof(sx));
    memset(&sy, 0, sizeof(sy));
    sx.p0 = LEFT;
    sx.p1 = W - RIGHT;
    sy.p0 = H - BOTTOM;
    sy.p1 = top;
    if (c->xlog) {
        sx.log = 1;
        sx.lo = floor(log10(x0));
        sx.hi = ceil(log10(x1));
        if (sx.hi <= sx.lo) {
            sx.hi = sx.lo + 1;
        }
    } else {
        sx.lo = x0 > 0 && c->xunit == RP_U_SEC ? 0 : x0;
        sx.hi = x1 > sx.lo ? x1 : sx.lo + 1;
    }
    y0 = fmin(y0, 0);
    if (c->yfrac) {
        y0 = 0;
        y1 = 1;
    }
    step = unit_step(c->yunit, y1 - y0 > 0 ? y1 - y0 : fabs(y1) + 1, 5);
    sy.lo = floor(y0 / step) * step;
    sy.hi = ceil(y1 / step) * step;
    if (sy.hi <= sy.lo) {
        sy.hi = sy.lo + step;
    }
    trib_buf_printf(b,
                    "<rect class=\"frame\" fill=\"none\" stroke=\"#bbb\" "
                    "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                    "height=\"%.1f\"/>",
                    sx.p0, sy.p1, sx.p1 - sx.p0, sy.p0 - sy.p1);
    if (c->ylabel != NULL) {
        trib_buf_printf(b,
                        "<text class=\"al\" transform=\"translate(13,%.1f) "
                        "rotate(-90)\" text-anchor=\"middle\">",
                        (sy.p0 + sy.p1) / 2);
        rp_esc(b, c->ylabel);
        trib_buf_puts(b, "</text>");
    }
    if (c->xlabel != NULL) {
        text(b, (sx.p0 + sx.p1) / 2, H - 6, "middle", "al", c->xlabel);
    }
    if (!any) {
        text(b, (sx.p0 + sx.p1) / 2, (sy.p0 + sy.p1) / 2, "middle", "nodata",
             "no data");
        trib_buf_puts(b, "</svg>\n");
        return;
    }
    axis_ticks(b, &sx, &sy, c->xunit, c->yunit);
    for (i = 0; i < c->nmarks; i++) {
        const struct rp_mark *m = &c->marks[i];
        double x = px(&sx, m->x);
        trib_buf_printf(b,
                        "<g class=\"%s\"><line x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\" %s/>",
                        m->climb ? "climb" : "stage", x, sy.p1, x, sy.p0,
                        m->climb ? "stroke=\"#d62728\" stroke-width=\"1.5\""
                                 : "stroke=\"#888\" stroke-dasharray=\"4 3\"");
        text(b, x + 3, sy.p1 + 11 + (m->climb ? 12 : 0), "start", NULL,
             m->label);
        trib_buf_puts(b, "</g>");
    }
    for (i = 0; i < c->nlines; i++) {
        draw_line(b, &c->lines[i], &sx, &sy);
    }
    trib_buf_puts(b, "</svg>\n");
}

/* ---- bars ---------------------------------------------------------------- */

void rp_panel_init(struct rp_panel *p, const char *title, enum rp_unit unit)
{
    int s, k;

    memset(p, 0, sizeof(*p));
    snprintf(p->title, sizeof(p->title), "%s", title);
    p->unit = unit;
    for (s = 0; s < RP_MAX_SER; s++) {
        for (k = 0; k < RP_MAX_CATS; k++) {
            p->v[s][k] = NAN;
        }
    }
}

int rp_panel_cat(struct rp_panel *p, const char *name)
{
    if (p->ncat >= RP_MAX_CATS) {
        return -1;
    }
    rp_clean(p->cat[p->ncat], sizeof(p->cat[0]), name, sizeof(p->cat[0]) - 1);
    return p->ncat++;
}

int rp_panel_ser(struct rp_panel *p, const char *name)
{
    if (p->nser >= RP_MAX_SER) {
        return -1;
    }
    rp_clean(p->ser[p->nser], sizeof(p->ser[0]), name, sizeof(p->ser[0]) - 1);
    return p->nser++;
}

static void panel(struct trib_buf *b, const struct rp_panel *p, double x0,
                  double x1, double h)
{
    struct scale sx, sy;
    double vmax = 0, step, gw, bw, x, lx = x0 + 8, top = 58;
    char lab[48];
    int s, k, any = 0, every;

    text(b, (x0 + x1) / 2, 38, "middle", "pt", p->title);
    for (s = 0; p->nser > 1 && s < p->nser; s++) {
        trib_buf_printf(
            b,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" "
            "fill=\"%s\"/>",
            lx, top - 9, rp_color(s));
        text(b, lx + 13, top, "start", "tk", p->ser[s]);
        lx += 22 + CHARW * (double)strlen(p->ser[s]);
    }
    top += 10;
    for (s = 0; s < p->nser; s++) {
        for (k = 0; k < p->ncat; k++) {
            if (isfinite(p->v[s][k])) {
                vmax = fmax(vmax, p->v[s][k]);
                any = 1;
            }
        }
    }
    memset(&sx, 0, sizeof(sx));
    memset(&sy, 0, sizeof(sy));
    sx.p0 = x0 + 56;
    sx.p1 = x1 - 8;
    sx.lo = 0;
    sx.hi = 1;
    sy.p0 = h - 34;
    sy.p1 = top;
    step = unit_step(p->unit, vmax > 0 ? vmax : 1, 4);
    sy.lo = 0;
    sy.hi = ceil((vmax > 0 ? vmax : 1) / step) * step;
    trib_buf_printf(b,
                    "<rect class=\"frame\" fill=\"none\" stroke=\"#bbb\" "
                    "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                    "height=\"%.1f\"/>",
                    sx.p0, sy.p1, sx.p1 - sx.p0, sy.p0 - sy.p1);
    if (!any || p->ncat == 0 || p->nser == 0) {
        text(b, (sx.p0 + sx.p1) / 2, (sy.p0 + sy.p1) / 2, "middle", "nodata",
             "no data");
        return;
    }
    trib_buf_puts(b, "<g class=\"grid\" stroke=\"#e8e8e8\">");
    for (x = 0, k = 0; x <= sy.hi + step * 1e-6 && k < 20; x += step, k++) {
        double y = px(&sy, x);
        trib_buf_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", sx.p0,
            y, sx.p1, y);
        tick(lab, sizeof(lab), p->unit, x);
        text(b, sx.p0 - 4, y + 4, "end", "tk", lab);
    }
    trib_buf_puts(b, "</g>");
    gw = (sx.p1 - sx.p0) / p->ncat;
    bw = gw * 0.8 / p->nser;
    every = (int)ceil(CHARW * 7 / gw);
    every = every < 1 ? 1 : every;
    for (k = 0; k < p->ncat; k++) {
        double gx = sx.p0 + gw * k + gw * 0.1;
        for (s = 0; s < p->nser; s++) {
            double v = p->v[s][k], y;
            if (!isfinite(v)) {
                continue;
            }
            y = px(&sy, v);
            trib_buf_printf(b,
                            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"%s\"><title>",
                            gx + bw * s, y, bw > 1 ? bw - 1 : bw, sy.p0 - y,
                            rp_color(s));
            rp_esc(b, p->cat[k]);
            trib_buf_puts(b, " ");
            rp_esc(b, p->ser[s]);
            rp_fmt(lab, sizeof(lab), p->unit, v);
            trib_buf_puts(b, ": ");
            rp_esc(b, lab);
            trib_buf_puts(b, "</title></rect>");
            if (bw >= CHARW * (double)strlen(lab) * 0.9) {
                text(b, gx + bw * s + bw / 2, y - 3, "middle", "tk", lab);
            }
        }
        if (k % every == 0) {
            char cut[48];
            size_t maxc = (size_t)(gw * every / CHARW);
            rp_clean(cut, sizeof(cut), p->cat[k], maxc < 4 ? 4 : maxc);
            text(b, sx.p0 + gw * k + gw / 2, sy.p0 + 14, "middle", "tk", cut);
        }
    }
}

void rp_bars_svg(struct trib_buf *b, const char *id, const char *title,
                 const struct rp_panel *p, int npanels)
{
    double h = 260, total = npanels > 2 ? 300.0 * npanels : W, w;
    int i;

    svg_open(b, id, title, total, h);
    if (npanels <= 0) {
        text(b, total / 2, h / 2, "middle", "nodata", "no data");
    }
    w = npanels > 0 ? total / npanels : total;
    for (i = 0; i < npanels; i++) {
        panel(b, &p[i], w * i, w * (i + 1), h);
    }
    trib_buf_puts(b, "</svg>\n");
}
