/* stress_insert.c -- placeholder until the inserter lands (issue 4). */
#include "stress_insert.h"

#include "trib_err.h"

int stress_ins_start(const struct stress_ins_opts *o, struct stress_ins **out,
                     char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
void stress_ins_stop(struct stress_ins *s)
{
    (void)s;
}
void stress_ins_progress(struct stress_ins *s, struct stress_ins_progress *p)
{
    (void)s;
    (void)p;
}
int stress_ins_join(struct stress_ins *s)
{
    return TRIB_ENOTSUP;
}
void stress_ins_free(struct stress_ins *s)
{
    (void)s;
}
