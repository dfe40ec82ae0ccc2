/*
 * trib_err.c -- error texts and the nng adapter.
 */
#include "trib_err.h"

#include <nng/nng.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} table[] = {
    {TRIB_OK, "OK", "success"},
    {TRIB_ENOMEM, "ENOMEM", "out of memory"},
    {TRIB_EINVAL, "EINVAL", "invalid argument"},
    {TRIB_ENOENT, "ENOENT", "not found"},
    {TRIB_EEXIST, "EEXIST", "already exists"},
    {TRIB_EAGAIN, "EAGAIN", "try again"},
    {TRIB_EIO, "EIO", "input/output error"},
    {TRIB_ERANGE, "ERANGE", "value out of range"},
    {TRIB_ETIMEDOUT, "ETIMEDOUT", "timed out"},
    {TRIB_ECANCELED, "ECANCELED", "operation canceled"},
    {TRIB_EPROTO, "EPROTO", "protocol error"},
    {TRIB_ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {TRIB_ECLOSED, "ECLOSED", "closed"},
    {TRIB_EDB, "EDB", "database error"},
    {TRIB_EDBCONN, "EDBCONN", "database connection unavailable"},
    {TRIB_ECONFIG, "ECONFIG", "invalid configuration"},
    {TRIB_EVERSION, "EVERSION", "unsupported version"},
    {TRIB_EFULL, "EFULL", "queue full"},
    {TRIB_ESCHEMA, "ESCHEMA", "unexpected database schema"},
    {TRIB_EBUSY, "EBUSY", "busy"},
    {TRIB_EARGS, "EARGS", "invalid job arguments"},
    {TRIB_ENOTSUP, "ENOTSUP", "not supported"},
    {TRIB_EAUTH, "EAUTH", "authentication failed"},
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

const char *trib_strerror(int err)
{
    size_t i;

    for (i = 0; i < NTABLE; i++) {
        if (table[i].code == err) {
            return table[i].text;
        }
    }
    return uv_strerror(err);
}

const char *trib_errname(int err)
{
    size_t i;

    for (i = 0; i < NTABLE; i++) {
        if (table[i].code == err) {
            return table[i].name;
        }
    }
    return "EUNKNOWN";
}

int trib_err_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return TRIB_OK;
    case NNG_ENOMEM:
        return TRIB_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_EBADTYPE:
        return TRIB_EINVAL;
    case NNG_ETIMEDOUT:
        return TRIB_ETIMEDOUT;
    case NNG_ECANCELED:
        return TRIB_ECANCELED;
    case NNG_ECLOSED:
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
        return TRIB_ECLOSED;
    case NNG_EAGAIN:
        return TRIB_EAGAIN;
    case NNG_ECONNREFUSED:
        return TRIB_ECONNREFUSED;
    case NNG_EPROTO:
        return TRIB_EPROTO;
    case NNG_EMSGSIZE:
        return TRIB_ERANGE;
    case NNG_ENOENT:
        return TRIB_ENOENT;
    case NNG_EBUSY:
    case NNG_EADDRINUSE:
        return TRIB_EBUSY;
    case NNG_ENOTSUP:
        return TRIB_ENOTSUP;
    default:
        return TRIB_EIO;
    }
}
