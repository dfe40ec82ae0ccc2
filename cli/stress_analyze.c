/* stress_analyze.c -- placeholder until the analysis lands (issue 4). */
#include "stress_report.h"

json_t *stress_report_build(const struct stress_rec *r,
                            const struct stress_run_info *info)
{
    return json_object();
}
