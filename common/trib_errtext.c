/*
 * trib_errtext.c -- error text normalised for grouping (trib_errtext.h).
 * Moved unchanged from coordinator/view_failures.c so the CLI's stress
 * report groups errors exactly as the coordinator does.
 */
#include "trib_errtext.h"

#include <stdint.h>

/* ------------------------------------------------------- normalising */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_word(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_';
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/*
 * Length of a hex/UUID-like token starting at s[i] (a word start), or 0:
 * hex digits and '-' (optionally after "0x"), cut at the last point that
 * ends a word -- the run's end, or a '-' inside it (so "trace-9f86...-end"
 * keeps "-end") -- where it has 8+ hex digits, one of them a letter.
 */
static size_t hex_token(const unsigned char *s, size_t i, size_t n)
{
    size_t j = i, digits = 0, letters = 0, best = 0;

    if (j + 1 < n && s[j] == '0' && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
        j += 2;
        letters = 1; /* 0x... is hex however its digits look */
    }
    if (j >= n || !(is_digit(s[j]) || is_hex_letter(s[j]))) {
        return 0;
    }
    for (;; j++) {
        if (j == n || s[j] == '-' || !(is_digit(s[j]) || is_hex_letter(s[j]))) {
            /* a candidate end: a '-', or the end of the run when what
             * follows is not part of a word */
            if ((j == n || s[j] == '-' || !is_word(s[j])) && s[j - 1] != '-' &&
                digits >= 8 && letters > 0) {
                best = j;
            }
            if (j == n || s[j] != '-') {
                break;
            }
        } else {
            digits++;
            letters += is_hex_letter(s[j]);
        }
    }
    return best > i ? best - i : 0;
}

/* Bytes in the UTF-8 sequence led by c (1 for ASCII and stray bytes). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8) {
        return 4;
    }
    if (c >= 0xe0) {
        return c < 0xf0 ? 3 : 1;
    }
    if (c >= 0xc0) {
        return 2;
    }
    return 1;
}

size_t trib_errtext_normalise(const char *err, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)err;
    size_t i = 0, o = 0, t, k;
    int space = 0;

    while (i < n) {
        if (is_space(s[i])) {
            while (i < n && is_space(s[i])) {
                i++;
            }
            space = o > 0; /* written only before something that follows */
            continue;
        }
        if (space) {
            if (o + 1 > TRIB_ERRTEXT_MAX) {
                break;
            }
            out[o++] = ' ';
            space = 0;
        }
        if (o + 1 > TRIB_ERRTEXT_MAX) {
            break;
        }
        if ((i == 0 || !is_word(s[i - 1])) && (t = hex_token(s, i, n)) > 0) {
            out[o++] = 'X';
            i += t;
            continue;
        }
        if (is_digit(s[i])) {
            while (i < n && is_digit(s[i])) {
                i++;
            }
            out[o++] = 'N';
            continue;
        }
        t = utf8_len(s[i]);
        if (t > n - i) {
            t = 1;
        }
        if (o + t > TRIB_ERRTEXT_MAX) {
            break; /* do not split a multi-byte character */
        }
        for (k = 0; k < t; k++) {
            out[o++] = (char)s[i++];
        }
    }
    out[o] = 0;
    return o;
}
