/*
 * report_render -- turns a stress report document (docs/REPORT.md,
 * "tributary.stress.report/1") into what people read: a terminal summary
 * in the manner of k6's end-of-test summary, and one self-contained HTML
 * file with inline SVG charts (no script, font, image or style from the
 * network; opens offline). Also the side-by-side comparison of two runs.
 * Everything works from the JSON document alone, so `tributary report RUN`
 * re-renders a saved run exactly as `tributary stress` rendered it.
 *
 * Ownership: output is appended to a caller's trib_buf; documents are
 * borrowed.
 * Threading: no shared state.
 */
#ifndef TRIB_REPORT_RENDER_H
#define TRIB_REPORT_RENDER_H

#include <jansson.h>
#include <stddef.h>

struct trib_buf;

/* Checks that doc is a report this build can render (schema name and
 * major version). 0, or TRIB_EINVAL / TRIB_ENOTSUP with err. */
int report_check(const json_t *doc, char *err, size_t errlen);

/* The terminal summary. color: use ANSI colours (a terminal). */
void report_text(struct trib_buf *b, const json_t *doc, int color);

/* The HTML report. */
void report_html(struct trib_buf *b, const json_t *doc);

/* Two runs side by side (a = baseline, b = candidate). */
void report_compare_text(struct trib_buf *out, const json_t *a, const json_t *b,
                         int color);
void report_compare_html(struct trib_buf *out, const json_t *a,
                         const json_t *b);

#endif /* TRIB_REPORT_RENDER_H */
