/*
 * leader.c -- river_leader election, interoperable with River's Go clients
 * in the same database (never two leaders).
 *
 * Same protocol as River's elector:
 *  - follower: every elect_interval + [0, 1 s): delete expired rows, then
 *    INSERT (us, now(), now() + ttl) ON CONFLICT DO NOTHING; a row back
 *    means we lead for the term (leader_id, elected_at);
 *  - leader: every elect_interval renew with an UPDATE that matches our
 *    term and an unexpired row; no row back means the term is lost;
 *  - trust window: a leader that has not renewed by attempt start + ttl -
 *    1 s steps down locally, before anyone else may take over;
 *  - resign (shutdown, request_resign): delete our row and notify
 *    river_leadership {"leader_id", "action":"resigned"}; followers that
 *    hear it bid after 0-50 ms.
 * One elector per agent; its leader_id is the agent's first client id.
 */
#include "agent_int.h"
#include "trib_err.h"
#include "trib_json.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_MAX_MS 4000

struct trib_leader {
    struct trib_agent *agent;
    const char *id;
    int is_leader;
    char elected_at[64];
    uint64_t attempt_mono;
    uint64_t trust_until_mono; /* us */
    uv_timer_t timer;
    uv_timer_t trust_timer; /* steps down at trust_until_mono */
    int open_handles;
    int busy;
    int stopping;
    int closed;
    int retry_ms;
    int resign_tries;
    int resign_pending; /* request_resign arrived during a renewal */
    void (*stop_done)(void *);
    void *stop_arg;
};

static void attempt(struct trib_leader *l);
static void finish_stop(struct trib_leader *l);
static void on_resigned(void *arg, int status, PGresult *res);

static uint64_t jitter_ms(uint64_t max)
{
    return max == 0 ? 0 : (uint64_t)rand() % max;
}

static void on_timer(uv_timer_t *t)
{
    attempt(t->data);
}

static void schedule(struct trib_leader *l, uint64_t ms)
{
    if (!l->stopping && !l->closed) {
        uv_timer_start(&l->timer, on_timer, ms, 0);
    }
}

static void set_leader(struct trib_leader *l, int on, const char *why)
{
    if (!on) {
        uv_timer_stop(&l->trust_timer);
    }
    if (l->is_leader == on) {
        return;
    }
    l->is_leader = on;
    if (on) {
        TRIB_INFO("AGT-LEADER", "%s is now the leader", l->id);
    } else {
        TRIB_INFO("AGT-LEADER", "%s is no longer the leader (%s)", l->id, why);
    }
    trib__maint_set_leader(l->agent->maint, on);
}

static uint64_t interval_ms(const struct trib_leader *l)
{
    return (uint64_t)(l->agent->conf->elect_interval_us / 1000);
}

/* The trust window ends: without a renewal by now, step down on our own,
 * a second before the row can expire and someone else be elected. This
 * must not wait for the renewal statement, which hangs as long as the
 * database is unreachable (River bounds it by the same deadline). */
static void on_trust_timer(uv_timer_t *t)
{
    struct trib_leader *l = t->data;
    uint64_t now = trib_mono_us();

    if (!l->is_leader) {
        return;
    }
    if (now < l->trust_until_mono) { /* the loop clock fired early */
        uv_timer_start(&l->trust_timer, on_trust_timer,
                       (l->trust_until_mono - now + 999) / 1000, 0);
        return;
    }
    TRIB_WARN("AGT-LEADER",
              "%s could not renew its leadership in time; stepping down",
              l->id);
    set_leader(l, 0, "could not renew in time");
}

/* A request_resign notification: give the seat up and bid again later. */
static void resign_on_request(struct trib_leader *l)
{
    const char *params[3] = {l->elected_at, l->id, l->agent->sql.ch_leader};

    l->resign_pending = 0;
    TRIB_INFO("AGT-LEADER", "%s resigning on request", l->id);
    set_leader(l, 0, "resign requested");
    trib_pg_query(l->agent->ctl, &l->agent->sql.leader_resign, 3, params, NULL,
                  NULL);
    uv_timer_stop(&l->timer);
    schedule(l, interval_ms(l) + jitter_ms(1000));
}

static void on_result(void *arg, int status, PGresult *res)
{
    struct trib_leader *l = arg;
    int won;

    l->busy = 0;
    if (status == TRIB_ECANCELED || l->closed) {
        return;
    }
    if (status != 0 && l->stopping) {
        finish_stop(l);
        return;
    }
    if (status != 0) {
        if (status == TRIB_EDB) {
            TRIB_WARN("AGT-LEADER", "election statement failed: %s",
                      trib_pg_errmsg(res));
        }
        if (l->is_leader && trib_mono_us() >= l->trust_until_mono) {
            set_leader(l, 0, "could not renew in time");
        }
        l->retry_ms = l->retry_ms == 0                 ? 1000
                      : l->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                       : l->retry_ms * 2;
        schedule(l, (uint64_t)l->retry_ms);
        return;
    }
    l->retry_ms = 0;
    won = PQntuples(res) == 1;
    if (l->stopping) {
        /* stop() waited for this attempt: resign if it made us leader. */
        set_leader(l, 0, "shutting down");
        if (won) {
            const char *params[3] = {PQgetvalue(res, 0, 0), l->id,
                                     l->agent->sql.ch_leader};
            snprintf(l->elected_at, sizeof(l->elected_at), "%s", params[0]);
            trib_pg_query(l->agent->ctl, &l->agent->sql.leader_resign, 3,
                          params, on_resigned, l);
        } else {
            finish_stop(l);
        }
        return;
    }
    if (won) {
        uint64_t now = trib_mono_us();

        snprintf(l->elected_at, sizeof(l->elected_at), "%s",
                 PQgetvalue(res, 0, 0));
        l->trust_until_mono = l->attempt_mono +
                              (uint64_t)l->agent->conf->leader_ttl_us -
                              TRIB_US_PER_S;
        if (now >= l->trust_until_mono) {
            /* The answer came too late to be trusted: the term may be
             * over by now. Bid again later (the row expires on its own). */
            set_leader(l, 0, "renewal answered too late");
            schedule(l, interval_ms(l) + jitter_ms(1000));
            return;
        }
        set_leader(l, 1, NULL);
        uv_timer_start(&l->trust_timer, on_trust_timer,
                       (l->trust_until_mono - now + 999) / 1000, 0);
        schedule(l, interval_ms(l));
        if (l->resign_pending) {
            resign_on_request(l);
        }
    } else {
        l->resign_pending = 0;
        set_leader(l, 0, "term ended");
        schedule(l, interval_ms(l) + jitter_ms(1000));
    }
}

static void attempt(struct trib_leader *l)
{
    struct trib_agent *a = l->agent;
    char ttl[32];

    if (l->busy || l->stopping || l->closed) {
        return;
    }
    if (l->is_leader && trib_mono_us() >= l->trust_until_mono) {
        set_leader(l, 0, "could not renew in time");
    }
    snprintf(ttl, sizeof(ttl), "%.6f",
             (double)a->conf->leader_ttl_us / TRIB_US_PER_S);
    l->busy = 1;
    l->attempt_mono = trib_mono_us();
    if (l->is_leader) {
        const char *params[3] = {ttl, l->elected_at, l->id};
        trib_pg_query(a->ctl, &a->sql.leader_reelect, 3, params, on_result, l);
    } else {
        const char *params[2] = {l->id, ttl};
        trib_pg_query(a->ctl, &a->sql.leader_delete, 0, NULL, NULL, NULL);
        trib_pg_query(a->ctl, &a->sql.leader_elect, 2, params, on_result, l);
    }
}

int trib__leader_create(struct trib_agent *a, struct trib_leader **out)
{
    struct trib_leader *l = TRIB_NEW(struct trib_leader);

    l->agent = a;
    l->id = a->clients[0]->id;
    uv_timer_init(a->loop, &l->timer);
    l->timer.data = l;
    uv_timer_init(a->loop, &l->trust_timer);
    l->trust_timer.data = l;
    l->open_handles = 2;
    *out = l;
    return 0;
}

void trib__leader_start(struct trib_leader *l)
{
    if (l->agent->conf->leader_enabled) {
        schedule(l, jitter_ms(100));
    }
}

int trib__leader_is_leader(const struct trib_leader *l)
{
    return l != NULL && l->is_leader;
}

void trib__leader_on_notify(struct trib_leader *l, const char *payload)
{
    json_t *j;
    const char *action = NULL, *who = NULL;
    char err[128];

    if (l == NULL || !l->agent->conf->leader_enabled || l->stopping ||
        trib_json_parse(payload, strlen(payload), &j, err, sizeof(err)) != 0) {
        return;
    }
    trib_json_str(j, "action", 0, &action, err, sizeof(err));
    trib_json_str(j, "leader_id", 0, &who, err, sizeof(err));
    if (action != NULL && strcmp(action, "resigned") == 0 && !l->is_leader &&
        (who == NULL || strcmp(who, l->id) != 0)) {
        /* The seat is free: bid soon. */
        uv_timer_stop(&l->timer);
        schedule(l, jitter_ms(50));
    } else if (action != NULL && strcmp(action, "request_resign") == 0 &&
               l->is_leader) {
        if (l->busy) {
            l->resign_pending = 1; /* after the renewal in flight */
        } else {
            resign_on_request(l);
        }
    }
    json_decref(j);
}

static void finish_stop(struct trib_leader *l)
{
    void (*done)(void *) = l->stop_done;

    l->stop_done = NULL;
    if (done != NULL) {
        done(l->stop_arg);
    }
}

static void on_resigned(void *arg, int status, PGresult *res)
{
    struct trib_leader *l = arg;

    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status != 0 && ++l->resign_tries < 3) {
        const char *params[3] = {l->elected_at, l->id, l->agent->sql.ch_leader};
        trib_pg_query(l->agent->ctl, &l->agent->sql.leader_resign, 3, params,
                      on_resigned, l);
        return;
    }
    if (status == 0) {
        TRIB_INFO("AGT-LEADER", "%s resigned leadership", l->id);
    } else {
        TRIB_WARN("AGT-LEADER",
                  "%s could not resign (%s); the term expires "
                  "on its own",
                  l->id, trib_pg_errmsg(res));
    }
    finish_stop(l);
}

void trib__leader_stop(struct trib_leader *l, void (*done)(void *), void *arg)
{
    l->stopping = 1;
    l->stop_done = done;
    l->stop_arg = arg;
    uv_timer_stop(&l->timer);
    if (l->busy) {
        return; /* on_result() finishes the stop */
    }
    if (l->is_leader) {
        const char *params[3] = {l->elected_at, l->id, l->agent->sql.ch_leader};
        set_leader(l, 0, "shutting down");
        trib_pg_query(l->agent->ctl, &l->agent->sql.leader_resign, 3, params,
                      on_resigned, l);
        return;
    }
    finish_stop(l);
}

static void on_closed(uv_handle_t *h)
{
    struct trib_leader *l = h->data;

    if (--l->open_handles == 0) {
        trib_free(l);
    }
}

void trib__leader_close(struct trib_leader *l)
{
    if (l == NULL) {
        return;
    }
    l->closed = 1;
    uv_close((uv_handle_t *)&l->timer, on_closed);
    uv_close((uv_handle_t *)&l->trust_timer, on_closed);
}
