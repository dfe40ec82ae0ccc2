/* stress_rec.c -- placeholder until the records land (issue 4). */
#include "stress_report.h"

#include <stddef.h>

struct stress_rec *stress_rec_new(void)
{
    return NULL;
}
void stress_rec_free(struct stress_rec *r)
{
    (void)r;
}
void stress_rec_event(struct stress_rec *r, const char *node, size_t nodelen,
                      const struct trib_wire_event *ev)
{
}
void stress_rec_db_row(struct stress_rec *r, const struct stress_db_row *row)
{
}
void stress_rec_client(struct stress_rec *r, const char *client,
                       const char *node, const char *mode)
{
}
int64_t stress_rec_jobs(const struct stress_rec *r)
{
    return 0;
}
int64_t stress_rec_finished(const struct stress_rec *r)
{
    return 0;
}
void stress_rec_event_tally(const struct stress_rec *r, int64_t *completed,
                            int64_t *discarded, int64_t *cancelled)
{
    *completed = *discarded = *cancelled = 0;
}
