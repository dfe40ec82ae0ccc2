/*
 * trib_buf.c -- growable buffer and text encoders.
 */
#include "trib_buf.h"
#include "trib_time.h"
#include "trib_mem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void trib_buf_init(struct trib_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void trib_buf_fini(struct trib_buf *b)
{
    trib_free(b->data);
    trib_buf_init(b);
}

void trib_buf_reset(struct trib_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

char *trib_buf_steal(struct trib_buf *b)
{
    char *d = b->data;

    if (d == NULL) {
        d = trib_strdup("");
    }
    trib_buf_init(b);
    return d;
}

void trib_buf_reserve(struct trib_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap;

    if (need <= b->cap) {
        return;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    b->data = trib_realloc(b->data, cap);
    b->cap = cap;
}

void trib_buf_append(struct trib_buf *b, const void *p, size_t n)
{
    trib_buf_reserve(b, n);
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void trib_buf_puts(struct trib_buf *b, const char *s)
{
    trib_buf_append(b, s, strlen(s));
}

void trib_buf_putc(struct trib_buf *b, char c)
{
    trib_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void trib_buf_printf(struct trib_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        return;
    }
    trib_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void trib_buf_put_i64(struct trib_buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    trib_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Length of a valid UTF-8 sequence starting at s (max n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

void trib_buf_json_str(struct trib_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0, l;

    trib_buf_reserve(b, n + 2);
    trib_buf_putc(b, '"');
    while (i < n) {
        unsigned char c = p[i];

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        trib_buf_append(b, p + i - run, run);
        run = 0;
        if (c >= 0x80) {
            l = utf8_len(p + i, n - i);
            if (l == 0) {
                trib_buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
                i++;
            } else {
                trib_buf_append(b, p + i, l);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"':
            trib_buf_puts(b, "\\\"");
            break;
        case '\\':
            trib_buf_puts(b, "\\\\");
            break;
        case '\n':
            trib_buf_puts(b, "\\n");
            break;
        case '\r':
            trib_buf_puts(b, "\\r");
            break;
        case '\t':
            trib_buf_puts(b, "\\t");
            break;
        case '\0':
            /* jsonb refuses \u0000: a NUL becomes U+FFFD */
            trib_buf_puts(b, "\\ufffd");
            break;
        default: {
            char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            trib_buf_puts(b, esc);
        }
        }
        i++;
    }
    trib_buf_append(b, p + i - run, run);
    trib_buf_putc(b, '"');
}

void trib_buf_json_time(struct trib_buf *b, int64_t us)
{
    char ts[40];

    if (us == 0) {
        trib_buf_puts(b, "null");
        return;
    }
    trib_time_rfc3339(us, ts, sizeof(ts), 6);
    trib_buf_putc(b, '"');
    trib_buf_puts(b, ts);
    trib_buf_putc(b, '"');
}

void trib_buf_json_ms(struct trib_buf *b, int64_t us)
{
    uint64_t mag = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;

    trib_buf_printf(b, "%s%llu.%03llu", us < 0 ? "-" : "",
                    (unsigned long long)(mag / 1000),
                    (unsigned long long)(mag % 1000));
}

void trib_buf_copy_field(struct trib_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            trib_buf_puts(b, "\\\\");
            break;
        case '\t':
            trib_buf_puts(b, "\\t");
            break;
        case '\n':
            trib_buf_puts(b, "\\n");
            break;
        case '\r':
            trib_buf_puts(b, "\\r");
            break;
        default:
            trib_buf_putc(b, *s);
        }
    }
}

void trib_buf_pgarray_elem(struct trib_buf *b, const char *s, size_t n)
{
    size_t i;

    trib_buf_reserve(b, n + 2);
    trib_buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            trib_buf_putc(b, '\\');
        }
        trib_buf_putc(b, s[i]);
    }
    trib_buf_putc(b, '"');
}
