/* fuzz_yaml.c -- libFuzzer: the YAML loader (config and plan files) never
 * crashes, leaks or reads out of bounds; errors always carry a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trib_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trib_yaml *root = NULL;
    char err[256];

    err[0] = '\0';
    if (trib_yaml_parse((const char *)data, size, &root, err, sizeof(err)) ==
        0) {
        if (root == NULL) {
            abort();
        }
        (void)trib_yaml_get(root, "clients");
        trib_yaml_free(root);
    } else if (err[0] == '\0' || root != NULL) {
        abort(); /* a failure must explain itself and return nothing */
    }
    return 0;
}
