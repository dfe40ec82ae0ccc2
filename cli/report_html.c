/* report_html.c -- placeholder until the renderers land (issue 4). */
#include "report_render.h"

#include "trib_buf.h"

void report_html(struct trib_buf *b, const json_t *doc)
{
}
void report_compare_html(struct trib_buf *out, const json_t *a, const json_t *b)
{
}
