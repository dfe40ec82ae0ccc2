/*
 * trib_errtext -- error text normalised for grouping: the coordinator's
 * failure groups (docs/CONTROL.md, failures) and the stress report's
 * (docs/REPORT.md, failures) use this one function, so both group a run's
 * errors identically.
 *
 * Normalisation: hexadecimal/UUID-like tokens (8 or more hex digits, at
 * least one of them a letter, '-' allowed between them, optional 0x
 * prefix, delimited by non-alphanumerics) become "X"; remaining digit runs
 * become "N"; whitespace runs become one space (leading and trailing
 * whitespace dropped); the result is cut to TRIB_ERRTEXT_MAX bytes without
 * splitting a UTF-8 sequence.
 *
 * Ownership: the caller provides 'out' (TRIB_ERRTEXT_MAX + 1 bytes).
 * Threading: no shared state.
 */
#ifndef TRIB_ERRTEXT_H
#define TRIB_ERRTEXT_H

#include <stddef.h>

#define TRIB_ERRTEXT_MAX 200 /* normalised error text, bytes (without NUL) */

/* Normalises err (n bytes, need not be NUL-terminated; NULL with n = 0 ok)
 * into out, NUL-terminated; returns the length. */
size_t trib_errtext_normalise(const char *err, size_t n, char *out);

#endif /* TRIB_ERRTEXT_H */
