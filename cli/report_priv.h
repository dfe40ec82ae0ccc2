/*
 * report_priv -- helpers shared by the report renderers (report_fmt.c,
 * report_text.c, report_html.c, report_svg.c, report_compare.c); not part
 * of the contract (that is report_render.h).
 *
 *   report_fmt.c  report_check, tolerant path accessors, human units,
 *                 HTML escaping, terminal-safe text
 *   report_svg.c  inline SVG charts: time/CDF line charts and bar panels
 *
 * Every accessor tolerates a missing, null or mistyped field (NaN / NULL /
 * "-"), so the renderers never fail on a document that passed
 * report_check() but is otherwise odd.
 *
 * Ownership: charts own copies of their data (rp_chart_fini frees them);
 * everything else borrows.
 * Threading: no shared state.
 */
#ifndef TRIB_REPORT_PRIV_H
#define TRIB_REPORT_PRIV_H

#include <jansson.h>
#include <stddef.h>

#include "trib_buf.h"

/* ---- accessors (report_fmt.c) -------------------------------------------- */

/* Follows a dotted path of object keys ("latency_ms.end_to_end.p95");
 * NULL when any step is missing or not an object. */
const json_t *rp_get(const json_t *o, const char *path);
/* The number at path, NaN when absent, null or not a number. */
double rp_num(const json_t *o, const char *path);
/* The string at path, NULL when absent or not a string. */
const char *rp_str(const json_t *o, const char *path);
/* The array at path (NULL when not an array). */
const json_t *rp_arr(const json_t *o, const char *path);
/* An array of numbers (nulls and non-numbers -> NaN) as a new C array of
 * *n doubles (NULL when *n == 0); free with trib_free. */
double *rp_doubles(const json_t *arr, size_t *n);

/* ---- human units (report_fmt.c); NaN prints as "-" ----------------------- */

/* Compact durations from ms, trailing zeros dropped: "412us", "4.25ms",
 * "30ms", "141ms", "1.25s", "12.5s", "2m05s", "1h02m". */
void rp_fmt_dur(char *buf, size_t n, double ms);
/* "1,234" (rounded). */
void rp_fmt_count(char *buf, size_t n, double v);
/* "0.50/s", "12.3/s", "1,234/s". */
void rp_fmt_rate(char *buf, size_t n, double per_s);
/* A fraction as a percentage: 0.096 -> "9.60%". */
void rp_fmt_pct(char *buf, size_t n, double frac);
/* Bytes: "512 B", "12.3 KiB", "4.50 MiB", "1.20 GiB". */
void rp_fmt_bytes(char *buf, size_t n, double bytes);
/* A plain number: "0.8", "12.5", "1,234". */
void rp_fmt_num(char *buf, size_t n, double v);
/* Seconds as a duration ("42.5s", "2m05s"). */
void rp_fmt_secs(char *buf, size_t n, double s);
/* Relative change from a to b: "+12.5%", "-3.0%", "0%", "-" (a or b
 * missing, or a == 0 and b != 0). */
void rp_fmt_delta(char *buf, size_t n, double a, double b);

/* How a value is measured; picks the formatter. */
enum rp_unit {
    RP_U_NUM,   /* plain number            */
    RP_U_COUNT, /* integer count           */
    RP_U_MS,    /* duration in ms          */
    RP_U_RATE,  /* per second              */
    RP_U_FRAC,  /* fraction shown as a %   */
    RP_U_PCT,   /* already a percentage    */
    RP_U_BYTES, /* bytes                   */
    RP_U_MIB,   /* MiB                     */
    RP_U_SEC,   /* seconds                 */
};
void rp_fmt(char *buf, size_t n, enum rp_unit u, double v);
/* A threshold's unit string ("ms", "ratio", "jobs/s", "count"). */
enum rp_unit rp_unit_of(const char *threshold_unit);

/* ---- text safety --------------------------------------------------------- */

/* HTML-escapes s (& < > " '); NULL appends "-". Control characters other
 * than tab and newline are dropped. */
void rp_esc(struct trib_buf *b, const char *s);
/* Copies s for a terminal: control characters (ESC included) become '?',
 * cut to at most max characters with "..." and to whole UTF-8 characters
 * when buf is smaller; NULL -> "-". Chart names are copied with it. */
void rp_clean(char *buf, size_t n, const char *s, size_t max);

/* The run's stage names by index ("stage-N" when unnamed). */
const char *rp_stage_name(const json_t *doc, long idx, char *buf, size_t n);

/* ---- charts (report_svg.c) ----------------------------------------------- */

#define RP_MAX_LINES  12
#define RP_MAX_MARKS  24
#define RP_MAX_CATS   48
#define RP_MAX_SER    6
#define RP_MAX_POINTS 600 /* a drawn line never has more (min/max kept) */

struct rp_line {
    char name[64];
    double *x, *y; /* owned; NaN y = gap */
    size_t n;
    int color; /* palette index */
    int dash;
};

struct rp_mark {
    double x;
    char label[64];
    int climb; /* 0: stage boundary, 1: the climb */
};

struct rp_chart {
    const char *id;    /* data-chart */
    const char *title; /* static or caller-owned, outlives render */
    const char *xlabel, *ylabel;
    enum rp_unit xunit, yunit;
    int xlog;  /* logarithmic x (latency CDFs) */
    int yfrac; /* y fixed to 0..1 (CDFs) */
    struct rp_line lines[RP_MAX_LINES];
    int nlines;
    struct rp_mark marks[RP_MAX_MARKS];
    int nmarks;
};

void rp_chart_init(struct rp_chart *c, const char *id, const char *title,
                   const char *xlabel, enum rp_unit xunit, const char *ylabel,
                   enum rp_unit yunit);
/* Adds a line from JSON arrays: ys (numbers/null), xs the x values (NULL:
 * 0, 1, 2, ...). Ignored when the chart is full. */
void rp_chart_series(struct rp_chart *c, const char *name, const json_t *xs,
                     const json_t *ys, int color, int dash);
/* Adds a line from [[x, y], ...] pairs (a CDF). */
void rp_chart_pairs(struct rp_chart *c, const char *name, const json_t *pairs,
                    int color, int dash);
void rp_chart_mark(struct rp_chart *c, double x, const char *label, int climb);
/* Stage boundaries (from series.stage) and the climb of a report. */
void rp_chart_stage_marks(struct rp_chart *c, const json_t *doc);
/* Appends <svg class="chart" data-chart=ID ...>; "no data" in the frame
 * when no line has a point. */
void rp_chart_svg(struct trib_buf *b, const struct rp_chart *c);
void rp_chart_fini(struct rp_chart *c);

/* Grouped bars: categories along x, one bar per series in each. */
struct rp_panel {
    char title[80];
    enum rp_unit unit;
    int ncat, nser;
    char cat[RP_MAX_CATS][40];
    char ser[RP_MAX_SER][40];
    double v[RP_MAX_SER][RP_MAX_CATS]; /* NaN = no bar */
};
void rp_panel_init(struct rp_panel *p, const char *title, enum rp_unit unit);
int rp_panel_cat(struct rp_panel *p, const char *name); /* index or -1 */
int rp_panel_ser(struct rp_panel *p, const char *name); /* index or -1 */
/* One <svg class="chart" data-chart=ID> holding npanels side by side. */
void rp_bars_svg(struct trib_buf *b, const char *id, const char *title,
                 const struct rp_panel *p, int npanels);

/* The palette colour of index i (CSS colour, static). */
const char *rp_color(int i);

/* ---- HTML page pieces (report_html.c) ------------------------------------ */

/* <!DOCTYPE html> ... <body><h1>title</h1> with the inline stylesheet. */
void rp_html_open(struct trib_buf *b, const char *title);
void rp_html_close(struct trib_buf *b, const json_t *doc);
/* A table cell: escaped text; num = right-aligned; cls may be NULL. */
void rp_td(struct trib_buf *b, const char *s, int num, const char *cls);
/* A cell holding v formatted in unit u. */
void rp_td_val(struct trib_buf *b, enum rp_unit u, double v);
/* <tr><th>..</th>...</tr> from a NULL-terminated list of headings. */
void rp_thead(struct trib_buf *b, const char *const *heads);

/* The charts section of one run (report_charts.c): every data-chart of
 * docs/REPORT.md's "Reading the HTML report", placeholders when empty. */
void rp_html_charts(struct trib_buf *b, const json_t *doc);

#endif /* TRIB_REPORT_PRIV_H */
