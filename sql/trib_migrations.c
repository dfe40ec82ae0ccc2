/*
 * trib_migrations.c -- lookups, template rendering and planning over the
 * embedded migration set (pure: no database, no allocation of our own).
 */
#include "trib_migrations.h"

#include <string.h>

#include "trib_buf.h"
#include "trib_err.h"
#include "trib_pg.h"

#define PLACEHOLDER     "{{schema}}"
#define PLACEHOLDER_LEN (sizeof(PLACEHOLDER) - 1)

const struct trib_migration_line *trib_migration_lines(size_t *n)
{
    *n = trib__migration_nlines;
    return trib__migration_lines;
}

const struct trib_migration_line *trib_migration_line_find(const char *name)
{
    size_t i;

    if (name == NULL) {
        return NULL;
    }
    for (i = 0; i < trib__migration_nlines; i++) {
        if (strcmp(trib__migration_lines[i].name, name) == 0) {
            return &trib__migration_lines[i];
        }
    }
    return NULL;
}

const struct trib_migration *
trib_migration_get(const struct trib_migration_line *l, int64_t version)
{
    if (l == NULL || version < 1 || (uint64_t)version > l->nsteps) {
        return NULL;
    }
    return &l->steps[version - 1];
}

int trib_migration_schema_valid(const char *schema)
{
    size_t n;

    if (schema == NULL) {
        return TRIB_EINVAL;
    }
    n = strlen(schema);
    if (n == 0 || n > TRIB_MIGRATION_SCHEMA_MAX) {
        return TRIB_EINVAL;
    }
    if (strchr(schema, '\'') != NULL) {
        return TRIB_EINVAL;
    }
    return 0;
}

int trib_migration_render(struct trib_buf *b, const char *tmpl,
                          const char *schema)
{
    const char *p = tmpl;
    const char *open;

    while ((open = strstr(p, "{{")) != NULL) {
        trib_buf_append(b, p, (size_t)(open - p));
        if (strncmp(open, PLACEHOLDER, PLACEHOLDER_LEN) != 0) {
            return TRIB_EINVAL; /* a placeholder this runner cannot fill */
        }
        if (schema != NULL && schema[0] != '\0') {
            trib_pg_quote_ident(b, schema);
            trib_buf_putc(b, '.');
        }
        p = open + PLACEHOLDER_LEN;
    }
    trib_buf_puts(b, p);
    return 0;
}

static int is_applied(const int64_t *applied, size_t napplied, int64_t v)
{
    size_t i;

    for (i = 0; i < napplied; i++) {
        if (applied[i] == v) {
            return 1;
        }
    }
    return 0;
}

int trib_migration_plan(const struct trib_migration_line *l,
                        const int64_t *applied, size_t napplied, int64_t target,
                        int64_t *next)
{
    int64_t latest = (int64_t)l->nsteps;
    int64_t v;
    size_t i;

    *next = 0;
    if (target < 0 || target > latest) {
        return TRIB_EINVAL;
    }
    for (i = 0; i < napplied; i++) {
        if (applied[i] > latest) {
            return TRIB_EVERSION;
        }
    }
    if (target == 0) {
        target = latest; /* every missing version, gaps included */
    } else if (is_applied(applied, napplied, target)) {
        return 0; /* explicit target already there: River does nothing */
    }
    for (v = 1; v <= target; v++) {
        if (!is_applied(applied, napplied, v)) {
            *next = v;
            return 0;
        }
    }
    return 0;
}

int64_t trib_migration_lock_key(const char *schema)
{
    static const char prefix[] = "tributary.migrate:";
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    const unsigned char *p;

    for (p = (const unsigned char *)prefix; *p; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    for (p = (const unsigned char *)schema; p != NULL && *p; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    /* Two's-complement reinterpretation: pg_advisory_xact_lock takes a
     * signed bigint. */
    return (int64_t)h;
}
