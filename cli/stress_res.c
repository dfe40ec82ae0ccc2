/* stress_res.c -- placeholder until resource sampling lands (issue 4). */
#include "stress_res.h"

#include "trib_err.h"

int stress_res_open(PGconn *db, struct trib_ctl *ctl, int64_t t0_us,
                    struct stress_res **out)
{
    *out = NULL;
    return TRIB_ENOTSUP;
}
void stress_res_free(struct stress_res *r)
{
    (void)r;
}
void stress_res_sample(struct stress_res *r)
{
    (void)r;
}
const json_t *stress_res_nodes(const struct stress_res *r)
{
    return NULL;
}
json_t *stress_res_json(const struct stress_res *r)
{
    return json_null();
}
json_t *stress_res_modes_json(const struct stress_res *r)
{
    return NULL;
}
