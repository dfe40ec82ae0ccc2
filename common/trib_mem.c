/*
 * trib_mem.c -- allocation wrappers (abort on OOM; see trib_mem.h).
 */
#include "trib_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "FATAL [mem] MEM-OOM: out of memory allocating %zu bytes\n",
            n);
    abort();
}

void *trib_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *trib_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL) {
        oom(nmemb * size);
    }
    return p;
}

void *trib_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        oom(n);
    }
    return q;
}

void trib_free(void *p)
{
    free(p);
}

char *trib_strdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    return trib_strndup(s, strlen(s));
}

char *trib_strndup(const char *s, size_t n)
{
    char *d = trib_malloc(n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
