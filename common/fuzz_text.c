/* fuzz_text.c -- libFuzzer: the text parsers that read values from the
 * database and the command line (timestamps, durations) and the JSON/array
 * encoders never crash, and encoders always produce valid output. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trib_buf.h"
#include "trib_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *j;
    int64_t v;

    memcpy(s, data, size);
    s[size] = '\0';
    (void)trib_pgtime_parse(s, &v);
    (void)trib_duration_parse(s, 1, &v);
    trib_buf_json_str(&b, (const char *)data, size);
    j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    if (j == NULL || !json_is_string(j)) {
        abort(); /* the JSON encoder produced invalid JSON */
    }
    json_decref(j);
    trib_buf_reset(&b);
    trib_buf_pgarray_elem(&b, (const char *)data, size);
    trib_buf_fini(&b);
    free(s);
    return 0;
}
