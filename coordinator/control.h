/*
 * control -- the CLI's side of the coordinator (docs/CONTROL.md): an nng
 * rep socket on --control answering QUERY (status, nodes, failures, wait)
 * with JSON documents and EVENTS with the event ring.
 *
 * `wait` and `events` are long polls: a request whose condition does not
 * hold yet is parked (up to its wait_ms, at most 30 s) and answered the
 * moment it holds -- re-checked after applied batches, at most every 5 ms --
 * or at its deadline with the current state. Readers never slow ingest:
 * the ring is read, never waited on.
 *
 * Ownership: borrows the view, poller (may be NULL) and 'describe' hook.
 * Threading: loop thread only.
 */
#ifndef TRIB_CONTROL_H
#define TRIB_CONTROL_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "view.h"

struct nng_tls_config;

struct trib_control;
struct trib_poller;

struct trib_control_opts {
    const char *url;
    int contexts; /* concurrent requests, parked ones included (64) */
    struct nng_tls_config *tls; /* for a tls+tcp:// URL; borrowed */
    /* Adds the coordinator's own fields to status' "coordinator" object. */
    void (*describe)(void *arg, json_t *coordinator);
    void *arg;
};

int trib_control_start(uv_loop_t *loop, const struct trib_control_opts *o,
                       struct trib_view *v, struct trib_poller *poller,
                       struct trib_control **out);
/* New events were applied: parked requests are re-checked soon. */
void trib_control_kick(struct trib_control *c);
int trib_control_port(const struct trib_control *c);
/* Answers parked requests with their current state, then closes. */
void trib_control_close(struct trib_control *c); /* NULL ok */

#endif /* TRIB_CONTROL_H */
