/*
 * trib_yaml -- load a YAML document (libyaml) into a small tree whose every
 * node remembers its line and column, so configuration errors can say
 * "file:line:col: field: problem".
 *
 * Supported: one document of mappings, sequences and scalars (plain or
 * quoted). Anchors/aliases and tags are refused with a clear error; so are
 * duplicate mapping keys.
 *
 * Ownership: trib_yaml_load() returns a tree owned by the caller; free it
 * with trib_yaml_free(). Node strings are owned by the tree.
 * Threading: no shared state.
 */
#ifndef TRIB_YAML_H
#define TRIB_YAML_H

#include <stddef.h>

enum trib_yaml_kind { TRIB_YAML_SCALAR, TRIB_YAML_MAP, TRIB_YAML_SEQ };

struct trib_yaml {
    enum trib_yaml_kind kind;
    int line, col;  /* 1-based position of the node */
    char *str;      /* scalar text (SCALAR)         */
    int quoted;     /* scalar was quoted            */
    size_t n;       /* children (MAP: pairs; SEQ: items) */
    char **keys;    /* MAP: key texts               */
    int *key_lines; /* MAP: key line numbers        */
    struct trib_yaml **vals;
};

/*
 * Parses 'len' bytes. On success returns 0 and sets *out (an empty document
 * yields an empty mapping). On error returns TRIB_EINVAL and writes
 * "line:col: message" into err.
 */
int trib_yaml_parse(const char *text, size_t len, struct trib_yaml **out,
                    char *err, size_t errlen);

/* Reads and parses a file; errors are prefixed with the path. */
int trib_yaml_load(const char *path, struct trib_yaml **out, char *err,
                   size_t errlen);

void trib_yaml_free(struct trib_yaml *node); /* NULL ok */

/* MAP lookup; NULL when absent or node is not a MAP. */
const struct trib_yaml *trib_yaml_get(const struct trib_yaml *map,
                                      const char *key);

#endif /* TRIB_YAML_H */
