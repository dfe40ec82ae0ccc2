/*
 * coord -- tributary-coordinator's configuration and lifecycle: flags and
 * environment, then the loop that owns the view, the store, the poller,
 * the ingest socket and the control socket, until SIGTERM/SIGINT.
 *
 * Threading: the whole coordinator runs on one libuv loop thread (plus
 * nng's and libuv's worker threads, which only hand results back to it).
 */
#ifndef TRIB_COORD_H
#define TRIB_COORD_H

/* The coordinator's main(): parses argv, runs until a signal. Exit codes:
 * 0 clean stop, 1 runtime failure, 2 bad flags or configuration. */
int trib_coordinator_main(int argc, char **argv);

#endif /* TRIB_COORD_H */
