/*
 * trib_migrations -- the embedded migration set and the pure logic around
 * it (template rendering, planning, names). No database access here; the
 * runner that talks to PostgreSQL is trib_migrate.h.
 *
 * A migration *line* is an independent, numbered sequence of schema steps,
 * recorded in river_migration(line, version) exactly as River records its
 * own: line 'main' is River's schema (versions 1..8 of River v0.51.2);
 * further lines (e.g. a future 'tributary' line for Tributary's own tables)
 * are directories sql/<line>/ and need 'main' at version 5 or later, since
 * river_migration has no line column before that. See sql/README.md.
 *
 * The texts come from sql/<line>/NNN_<name>.up.sql, embedded at build time
 * by sql/embed_sql.cmake (a generated C file); nothing is read at run time.
 * A template may contain the placeholder {{schema}}, which
 * trib_migration_render() replaces with the quoted schema and a dot
 * ("name".) or with nothing when no schema was given.
 *
 * Ownership: everything returned here is static, read-only data: never
 *            free it. trib_migration_render() appends to a caller's buffer.
 * Threading: all functions are thread-safe (no mutable state).
 */
#ifndef TRIB_MIGRATIONS_H
#define TRIB_MIGRATIONS_H

#include <stddef.h>
#include <stdint.h>

struct trib_buf;

#define TRIB_MIGRATION_MAIN "main"

/* Version of line 'main' that introduced river_migration.line. Rows of
 * lower versions are written without a line column. */
#define TRIB_MIGRATION_LINE_COLUMN_VERSION 5

/* Longest schema name PostgreSQL keeps (NAMEDATALEN - 1). */
#define TRIB_MIGRATION_SCHEMA_MAX 63

struct trib_migration {
    const char *line; /* "main"                                      */
    int version;      /* 1, 2, ... (steps[i].version == i + 1)       */
    const char *name; /* "notification_outbox"                       */
    const char *file; /* "sql/main/007_notification_outbox.up.sql"   */
    const char *sql;  /* template text (may hold {{schema}})         */
};

struct trib_migration_line {
    const char *name;
    const struct trib_migration *steps; /* ordered by version, from 1 */
    size_t nsteps;                      /* == latest known version    */
};

/* Every embedded line, 'main' first then alphabetical; *n gets the count. */
const struct trib_migration_line *trib_migration_lines(size_t *n);

/* The line called 'name', or NULL when this build does not know it. */
const struct trib_migration_line *trib_migration_line_find(const char *name);

/* Step 'version' of line l, or NULL when out of range. */
const struct trib_migration *
trib_migration_get(const struct trib_migration_line *l, int64_t version);

/*
 * Checks a schema name given by the user: 1..63 bytes, and no single quote
 * (the name is also used inside a string literal, to_regclass('...')).
 * Double quotes and any other characters are fine (quoted identifiers).
 * Returns 0 or TRIB_EINVAL.
 */
int trib_migration_schema_valid(const char *schema);

/*
 * Appends template 'tmpl' to b with every {{schema}} replaced: by the
 * quoted identifier and a dot when schema is non-empty, by nothing when
 * schema is NULL or "". Returns 0, or TRIB_EINVAL when the template holds
 * another {{...}} placeholder (b then holds a partial text).
 */
int trib_migration_render(struct trib_buf *b, const char *tmpl,
                          const char *schema);

/*
 * Decides the next step of line l given the versions already applied
 * ('applied', any order, duplicates allowed) and a target version
 * (0 = latest known). River's rules: apply every missing version up to and
 * including the target, lowest first; when an explicit target (not 0) is
 * itself already applied there is nothing to do, even if a lower version
 * is missing.
 *
 * Returns 0 and sets *next to the version to apply, or to 0 when there is
 * nothing to do; TRIB_EVERSION when the highest applied version is newer
 * than the line's latest (nothing may be applied then); TRIB_EINVAL when
 * target is negative or beyond the latest version.
 */
int trib_migration_plan(const struct trib_migration_line *l,
                        const int64_t *applied, size_t napplied, int64_t target,
                        int64_t *next);

/* Advisory-lock key serialising migrations of one schema: a 64-bit FNV-1a
 * hash of "tributary.migrate:" followed by the schema name. */
int64_t trib_migration_lock_key(const char *schema);

/* Library-private: the generated table (sql/embed_sql.cmake). */
extern const struct trib_migration_line trib__migration_lines[];
extern const size_t trib__migration_nlines;

#endif /* TRIB_MIGRATIONS_H */
