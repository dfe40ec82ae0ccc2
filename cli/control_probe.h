/*
 * control_probe -- why a control address does not answer: a direct probe
 * of the address (a nonblocking TCP connect, or a look at the socket file
 * and a connect to it), for the message the CLI prints when nng's req
 * socket got no reply within TRIB_CTL_CONNECT_MS (control_client.c).
 *
 * Ownership: nothing kept; 'why' is the caller's buffer.
 * Threading: no shared state; blocks up to PROBE_MS per address tried.
 */
#ifndef TRIB_CONTROL_PROBE_H
#define TRIB_CONTROL_PROBE_H

#include <stddef.h>

/*
 * Probes url (tcp://, tcp4://, tcp6://, their tls+ forms, ipc://) and
 * writes the reason into why (no trailing period): "connection refused",
 * "cannot resolve 'h': ...", "no answer within 3 s (...)", "a TCP
 * connection opens, but no coordinator answered ...". Returns the
 * matching trib_err: TRIB_ECONNREFUSED, TRIB_ETIMEDOUT, TRIB_EINVAL
 * (malformed address, unknown host), TRIB_EIO (other errors). Another
 * scheme: "no connection within 3 s", TRIB_ETIMEDOUT. *opened is 1 when
 * a connection opened (the address listens; then a handshake failed or
 * nothing answered), else 0.
 */
int trib_ctl_probe(const char *url, int *opened, char *why, size_t n);

#endif /* TRIB_CONTROL_PROBE_H */
