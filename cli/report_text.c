/* report_text.c -- placeholder until the renderers land (issue 4). */
#include "report_render.h"

#include "trib_buf.h"
#include "trib_err.h"

int report_check(const json_t *doc, char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
void report_text(struct trib_buf *b, const json_t *doc, int color)
{
}
void report_compare_text(struct trib_buf *out, const json_t *a, const json_t *b,
                         int color)
{
}
