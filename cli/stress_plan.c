/* stress_plan.c -- placeholder until the plan parser lands (issue 4). */
#include "stress_plan.h"

#include <string.h>

#include "trib_err.h"

void stress_plan_init(struct stress_plan *p)
{
    memset(p, 0, sizeof(*p));
}
void stress_plan_fini(struct stress_plan *p)
{
    (void)p;
}
int stress_plan_load(struct stress_plan *p, const char *path, char *err,
                     size_t errlen)
{
    return TRIB_ENOTSUP;
}
int stress_plan_parse(struct stress_plan *p, const char *text, size_t len,
                      const char *name, char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
int stress_plan_flag(struct stress_plan *p, const char *flag, const char *value,
                     char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
int stress_plan_finish(struct stress_plan *p, char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
int64_t stress_plan_jobs(const struct stress_plan *p)
{
    return 0;
}
double stress_stage_start_rate(const struct stress_plan *p, int i)
{
    return 0;
}
int64_t stress_stage_due(const struct stress_plan *p, int i, int64_t elapsed_us,
                         int *done)
{
    return 0;
}
json_t *stress_plan_json(const struct stress_plan *p)
{
    return json_object();
}
int stress_threshold_parse(const char *expr, struct stress_threshold *t,
                           char *err, size_t errlen)
{
    return TRIB_ENOTSUP;
}
int stress_threshold_eval(const struct stress_threshold *t,
                          const json_t *report, double *actual,
                          const char **why)
{
    return -1;
}
int stress_thresholds_apply(const struct stress_plan *p, json_t *report)
{
    return 1;
}
