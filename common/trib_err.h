/*
 * trib_err -- the project's one error vocabulary.
 *
 * Every function that can fail returns 0 (TRIB_OK) or a negative code from
 * this list. System-level codes reuse libuv's values (negative errno), so a
 * libuv status can be returned unchanged; Tributary-specific failures live
 * in the -4000 range. Foreign codes are converted at the edge, in exactly
 * one adapter each: trib_err_from_nng(), trib_err_from_pg() (trib_pg.h) and
 * the msgpack decoder in proto/.
 *
 * Threading: all functions are thread-safe (no state).
 */
#ifndef TRIB_ERR_H
#define TRIB_ERR_H

#include <uv.h>

enum trib_err {
    TRIB_OK = 0,
    /* System codes: identical to libuv's. */
    TRIB_ENOMEM = UV_ENOMEM,
    TRIB_EINVAL = UV_EINVAL,
    TRIB_ENOENT = UV_ENOENT,
    TRIB_EEXIST = UV_EEXIST,
    TRIB_EAGAIN = UV_EAGAIN,
    TRIB_EIO = UV_EIO,
    TRIB_ERANGE = UV_ERANGE,
    TRIB_ETIMEDOUT = UV_ETIMEDOUT,
    TRIB_ECANCELED = UV_ECANCELED,
    TRIB_EPROTO = UV_EPROTO,
    TRIB_ECONNREFUSED = UV_ECONNREFUSED,
    TRIB_ECLOSED = UV_EOF,
    /* Tributary codes (wire-visible in the control protocol: never renumber;
     * append only). */
    TRIB_EDB = -4001,      /* the database rejected a statement        */
    TRIB_EDBCONN = -4002,  /* database connection lost or unavailable  */
    TRIB_ECONFIG = -4003,  /* invalid configuration or flag            */
    TRIB_EVERSION = -4004, /* unsupported protocol or schema version   */
    TRIB_EFULL = -4005,    /* a bounded queue or buffer is full        */
    TRIB_ESCHEMA = -4006,  /* database schema missing or unexpected    */
    TRIB_EBUSY = -4007,    /* resource in use (e.g. shutting down)     */
    TRIB_EARGS = -4008,    /* invalid job arguments                    */
    TRIB_ENOTSUP = -4009,  /* not supported                            */
    TRIB_EAUTH = -4010,    /* authentication failed (shared secret)    */
};

/* Human-readable text for a code; never NULL. */
const char *trib_strerror(int err);

/* Short symbolic name ("EDBCONN"); never NULL. */
const char *trib_errname(int err);

/* nng's positive error numbers -> trib_err. 0 -> 0. */
int trib_err_from_nng(int nng_rv);

#endif /* TRIB_ERR_H */
