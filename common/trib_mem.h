/*
 * trib_mem -- the only allocation entry points of the project.
 *
 * OOM policy (agent, coordinator, CLI): abort. A daemon that cannot allocate
 * a few bytes cannot keep its promises (nothing lost, exact counts) by
 * limping on, so trib_malloc() and friends never return NULL: they log and
 * abort(), as redis' zmalloc does. Memory whose size comes from the network
 * or from a file is bounded *before* allocation (see proto/), so hostile
 * input cannot trigger this path.
 *
 * Threading: thread-safe.
 */
#ifndef TRIB_MEM_H
#define TRIB_MEM_H

#include <stddef.h>

void *trib_malloc(size_t n);
void *trib_calloc(size_t nmemb, size_t size);
void *trib_realloc(void *p, size_t n);
void trib_free(void *p); /* NULL is a no-op */

/* Heap copy of a NUL-terminated string; NULL stays NULL. Free: trib_free. */
char *trib_strdup(const char *s);
/* Heap copy of n bytes plus a terminating NUL. Free: trib_free. */
char *trib_strndup(const char *s, size_t n);

#define TRIB_NEW(type) ((type *)trib_calloc(1, sizeof(type)))

#endif /* TRIB_MEM_H */
