/*
 * trib_yaml.c -- libyaml event stream -> trib_yaml tree.
 */
#include "trib_yaml.h"
#include "trib_err.h"
#include "trib_mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_FILE  (16 * 1024 * 1024)

struct loader {
    yaml_parser_t parser;
    char *err;
    size_t errlen;
    int failed;
};

static void fail(struct loader *ld, int line, int col, const char *msg)
{
    if (!ld->failed) {
        snprintf(ld->err, ld->errlen, "%d:%d: %s", line, col, msg);
        ld->failed = 1;
    }
}

void trib_yaml_free(struct trib_yaml *n)
{
    size_t i;

    if (n == NULL) {
        return;
    }
    for (i = 0; i < n->n; i++) {
        if (n->keys != NULL) {
            trib_free(n->keys[i]);
        }
        trib_yaml_free(n->vals[i]);
    }
    trib_free(n->keys);
    trib_free(n->key_lines);
    trib_free(n->vals);
    trib_free(n->str);
    trib_free(n);
}

static struct trib_yaml *node_new(enum trib_yaml_kind kind,
                                  const yaml_event_t *ev)
{
    struct trib_yaml *n = TRIB_NEW(struct trib_yaml);

    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static void add_child(struct trib_yaml *parent, char *key, int key_line,
                      struct trib_yaml *child)
{
    parent->vals =
        trib_realloc(parent->vals, (parent->n + 1) * sizeof(*parent->vals));
    if (parent->kind == TRIB_YAML_MAP) {
        parent->keys =
            trib_realloc(parent->keys, (parent->n + 1) * sizeof(*parent->keys));
        parent->key_lines = trib_realloc(
            parent->key_lines, (parent->n + 1) * sizeof(*parent->key_lines));
        parent->keys[parent->n] = key;
        parent->key_lines[parent->n] = key_line;
    }
    parent->vals[parent->n++] = child;
}

/* Parses the node whose first event is 'ev' (consumed by the caller). */
static struct trib_yaml *parse_node(struct loader *ld, yaml_event_t *ev,
                                    int depth);

static int next_event(struct loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev)) {
        fail(ld, (int)ld->parser.problem_mark.line + 1,
             (int)ld->parser.problem_mark.column + 1,
             ld->parser.problem ? ld->parser.problem : "YAML syntax error");
        return -1;
    }
    return 0;
}

static struct trib_yaml *parse_mapping(struct loader *ld, struct trib_yaml *map,
                                       int depth)
{
    yaml_event_t ev;

    for (;;) {
        struct trib_yaml *key, *val;
        size_t i;

        if (next_event(ld, &ev) != 0) {
            goto fail_map;
        }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return map;
        }
        key = parse_node(ld, &ev, depth + 1);
        if (key == NULL) {
            goto fail_map;
        }
        if (key->kind != TRIB_YAML_SCALAR) {
            fail(ld, key->line, key->col, "mapping keys must be scalars");
            trib_yaml_free(key);
            goto fail_map;
        }
        for (i = 0; i < map->n; i++) {
            if (strcmp(map->keys[i], key->str) == 0) {
                char msg[160];
                snprintf(msg, sizeof(msg), "duplicate key '%.100s'", key->str);
                fail(ld, key->line, key->col, msg);
                trib_yaml_free(key);
                goto fail_map;
            }
        }
        if (next_event(ld, &ev) != 0) {
            trib_yaml_free(key);
            goto fail_map;
        }
        val = parse_node(ld, &ev, depth + 1);
        if (val == NULL) {
            trib_yaml_free(key);
            goto fail_map;
        }
        add_child(map, trib_strdup(key->str), key->line, val);
        trib_yaml_free(key);
    }

fail_map:
    trib_yaml_free(map);
    return NULL;
}

static struct trib_yaml *parse_sequence(struct loader *ld,
                                        struct trib_yaml *seq, int depth)
{
    yaml_event_t ev;

    for (;;) {
        struct trib_yaml *item;

        if (next_event(ld, &ev) != 0) {
            goto fail_seq;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return seq;
        }
        item = parse_node(ld, &ev, depth + 1);
        if (item == NULL) {
            goto fail_seq;
        }
        add_child(seq, NULL, 0, item);
    }

fail_seq:
    trib_yaml_free(seq);
    return NULL;
}

static struct trib_yaml *parse_node(struct loader *ld, yaml_event_t *ev,
                                    int depth)
{
    struct trib_yaml *n = NULL;
    int line = (int)ev->start_mark.line + 1;
    int col = (int)ev->start_mark.column + 1;

    if (depth > MAX_DEPTH) {
        fail(ld, line, col, "nesting too deep");
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor != NULL) {
            fail(ld, line, col, "anchors are not supported");
            break;
        }
        n = node_new(TRIB_YAML_SCALAR, ev);
        n->str = trib_strndup((const char *)ev->data.scalar.value,
                              ev->data.scalar.length);
        if (strlen(n->str) != ev->data.scalar.length) {
            fail(ld, line, col, "NUL byte in scalar");
            trib_yaml_free(n);
            n = NULL;
            break;
        }
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        break;
    case YAML_MAPPING_START_EVENT:
        if (ev->data.mapping_start.anchor != NULL) {
            fail(ld, line, col, "anchors are not supported");
            break;
        }
        n = node_new(TRIB_YAML_MAP, ev);
        yaml_event_delete(ev);
        return parse_mapping(ld, n, depth);
    case YAML_SEQUENCE_START_EVENT:
        if (ev->data.sequence_start.anchor != NULL) {
            fail(ld, line, col, "anchors are not supported");
            break;
        }
        n = node_new(TRIB_YAML_SEQ, ev);
        yaml_event_delete(ev);
        return parse_sequence(ld, n, depth);
    case YAML_ALIAS_EVENT:
        fail(ld, line, col, "aliases are not supported");
        break;
    default:
        fail(ld, line, col, "unexpected YAML event");
        break;
    }
    yaml_event_delete(ev);
    return n;
}

int trib_yaml_parse(const char *text, size_t len, struct trib_yaml **out,
                    char *err, size_t errlen)
{
    struct loader ld;
    struct trib_yaml *root = NULL;
    yaml_event_t ev;
    int done = 0;

    memset(&ld, 0, sizeof(ld));
    ld.err = err;
    ld.errlen = errlen;
    *out = NULL;
    if (!yaml_parser_initialize(&ld.parser)) {
        snprintf(err, errlen, "cannot initialise YAML parser");
        return TRIB_ENOMEM;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    while (!done && !ld.failed) {
        if (next_event(&ld, &ev) != 0) {
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
            yaml_event_delete(&ev);
            break;
        case YAML_DOCUMENT_END_EVENT:
            yaml_event_delete(&ev);
            done = 1; /* only the first document is read */
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            done = 1;
            break;
        default:
            if (root != NULL) {
                fail(&ld, (int)ev.start_mark.line + 1,
                     (int)ev.start_mark.column + 1, "more than one root node");
                yaml_event_delete(&ev);
                break;
            }
            root = parse_node(&ld, &ev, 0);
            break;
        }
    }
    yaml_parser_delete(&ld.parser);
    if (ld.failed) {
        trib_yaml_free(root);
        return TRIB_EINVAL;
    }
    if (root == NULL) {
        root = TRIB_NEW(struct trib_yaml);
        root->kind = TRIB_YAML_MAP;
        root->line = root->col = 1;
    }
    *out = root;
    return 0;
}

int trib_yaml_load(const char *path, struct trib_yaml **out, char *err,
                   size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char inner[256];
    int rv;

    *out = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TRIB_ENOENT;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            text = trib_realloc(text, cap);
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
        if (len > MAX_FILE) {
            fclose(f);
            trib_free(text);
            snprintf(err, errlen, "%s: file too large (max 16 MiB)", path);
            return TRIB_ERANGE;
        }
    }
    fclose(f);
    rv = trib_yaml_parse(text ? text : "", len, out, inner, sizeof(inner));
    trib_free(text);
    if (rv != 0) {
        snprintf(err, errlen, "%s:%s", path, inner);
    }
    return rv;
}

const struct trib_yaml *trib_yaml_get(const struct trib_yaml *map,
                                      const char *key)
{
    size_t i;

    if (map == NULL || map->kind != TRIB_YAML_MAP) {
        return NULL;
    }
    for (i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            return map->vals[i];
        }
    }
    return NULL;
}
