/* fuzz_report.c -- libFuzzer: saved stress reports (`tributary report`
 * reads report.json files someone else may have written). Any bytes as a
 * report document: parsed, checked (report_check), and when accepted
 * rendered as the terminal summary, the HTML report and a comparison with
 * itself -- never a crash, leak or out-of-bounds read, whatever the types
 * and values of the fields. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "report_render.h"
#include "trib_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_error_t jerr;
    json_t *doc;
    char err[256];

    doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        return 0;
    }
    if (report_check(doc, err, sizeof(err)) == 0) {
        report_text(&b, doc, 1);
        trib_buf_reset(&b);
        report_html(&b, doc);
        trib_buf_reset(&b);
        report_compare_text(&b, doc, doc, 0);
        trib_buf_reset(&b);
        report_compare_html(&b, doc, doc);
    }
    trib_buf_fini(&b);
    json_decref(doc);
    return 0;
}
