/*
 * trib_buf -- a growable byte buffer with the text encoders the project
 * needs: JSON string escaping and PostgreSQL array-literal quoting.
 *
 * The buffer is always NUL-terminated after any append (data[len] == 0), so
 * it can be handed to libpq or printf as a C string.
 *
 * Ownership: the buffer owns 'data'; trib_buf_fini() frees it;
 * trib_buf_steal() hands it to the caller (free with trib_free).
 * Threading: one owner at a time.
 */
#ifndef TRIB_BUF_H
#define TRIB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct trib_buf {
    char *data;
    size_t len;
    size_t cap;
};

#define TRIB_BUF_INIT                                                          \
    {                                                                          \
        NULL, 0, 0                                                             \
    }

void trib_buf_init(struct trib_buf *b);
void trib_buf_fini(struct trib_buf *b);
void trib_buf_reset(struct trib_buf *b); /* len = 0, keeps capacity */
char *trib_buf_steal(struct trib_buf *b);
void trib_buf_reserve(struct trib_buf *b, size_t extra);

void trib_buf_append(struct trib_buf *b, const void *p, size_t n);
void trib_buf_puts(struct trib_buf *b, const char *s);
void trib_buf_putc(struct trib_buf *b, char c);
void trib_buf_printf(struct trib_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void trib_buf_put_i64(struct trib_buf *b, int64_t v);

/* Appends s (n bytes) as a JSON string literal, quotes included. Invalid
 * UTF-8 bytes and NUL are replaced by U+FFFD, so the output is valid JSON
 * that PostgreSQL's jsonb also accepts (it refuses \u0000). */
void trib_buf_json_str(struct trib_buf *b, const char *s, size_t n);
/* A JSON time value: "RFC 3339 UTC with microseconds", or null for 0. */
void trib_buf_json_time(struct trib_buf *b, int64_t us);
/* A JSON number of milliseconds with three decimals from microseconds,
 * sign kept (-500 us -> -0.500). */
void trib_buf_json_ms(struct trib_buf *b, int64_t us);

/* Appends s as one field of PostgreSQL's COPY text format: backslash,
 * tab, newline and carriage return are escaped. */
void trib_buf_copy_field(struct trib_buf *b, const char *s);

/* Appends s as one double-quoted element of a PostgreSQL array literal
 * ("{...}" text form): backslash and double quote are escaped. */
void trib_buf_pgarray_elem(struct trib_buf *b, const char *s, size_t n);

#endif /* TRIB_BUF_H */
