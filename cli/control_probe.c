/*
 * control_probe.c -- why a control address does not answer
 * (control_probe.h): a nonblocking connect of our own, since nng's req
 * socket only tells that no reply came.
 */
#include "control_probe.h"
#include "control_client.h"
#include "trib_err.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PROBE_MS 1000

/* Nonblocking connect to one address: 0 connected, else a positive errno
 * (ETIMEDOUT when nothing answered within PROBE_MS). */
static int probe_connect(int family, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd pfd;
    socklen_t elen = sizeof(int);
    int fd, err = 0;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno;
    }
    if (connect(fd, sa, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, PROBE_MS) <= 0) {
                err = ETIMEDOUT;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
                err = errno;
            }
        }
    }
    close(fd);
    return err;
}

/* Writes the reason for a tcp:// address into why; returns the code;
 * *opened = 1 when a connection opened. */
static int probe_tcp(const char *hostport, int *opened, char *why, size_t n)
{
    char host[256], *port;
    struct addrinfo hints, *res = NULL, *ai;
    const char *h = hostport;
    size_t hl;
    int rv, err = ETIMEDOUT;

    if (h[0] == '[') { /* [::1]:7101 */
        const char *close_br = strchr(h, ']');
        if (close_br == NULL || close_br[1] != ':') {
            snprintf(why, n, "malformed address");
            return TRIB_EINVAL;
        }
        hl = (size_t)(close_br - h - 1);
        if (hl >= sizeof(host)) {
            hl = sizeof(host) - 1;
        }
        memcpy(host, h + 1, hl);
        host[hl] = '\0';
        port = (char *)close_br + 2;
    } else {
        snprintf(host, sizeof(host), "%s", h);
        port = strrchr(host, ':');
        if (port == NULL) {
            snprintf(why, n, "no port in the address");
            return TRIB_EINVAL;
        }
        *port++ = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    rv = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rv != 0) {
        snprintf(why, n, "cannot resolve '%s': %s", host, gai_strerror(rv));
        return TRIB_EINVAL;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        err = probe_connect(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
        if (err == 0 || err == ECONNREFUSED) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err == 0) {
        *opened = 1;
        snprintf(why, n,
                 "a TCP connection opens, but no coordinator answered "
                 "within %d s (is this the coordinator's --control "
                 "address?)",
                 TRIB_CTL_CONNECT_MS / 1000);
        return TRIB_ETIMEDOUT;
    }
    if (err == ECONNREFUSED) {
        snprintf(why, n, "connection refused");
        return TRIB_ECONNREFUSED;
    }
    if (err == ETIMEDOUT) {
        snprintf(why, n,
                 "no answer within %d s (host down, wrong address, or "
                 "packets dropped by a firewall)",
                 TRIB_CTL_CONNECT_MS / 1000);
        return TRIB_ETIMEDOUT;
    }
    snprintf(why, n, "%s", strerror(err));
    return TRIB_EIO;
}

static int probe_ipc(const char *path, int *opened, char *why, size_t n)
{
    struct sockaddr_un sun;
    struct stat st;
    int err;

    if (stat(path, &st) != 0) {
        snprintf(why, n, "no socket at %s (%s)", path, strerror(errno));
        return TRIB_ECONNREFUSED;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(why, n, "socket path too long");
        return TRIB_EINVAL;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path));
    err = probe_connect(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun));
    if (err == ECONNREFUSED) {
        snprintf(why, n, "connection refused (a stale socket file?)");
        return TRIB_ECONNREFUSED;
    }
    if (err != 0) {
        snprintf(why, n, "%s", strerror(err));
        return TRIB_EIO;
    }
    *opened = 1;
    snprintf(why, n,
             "the socket accepts connections, but no coordinator answered "
             "within %d s",
             TRIB_CTL_CONNECT_MS / 1000);
    return TRIB_ETIMEDOUT;
}

int trib_ctl_probe(const char *url, int *opened, char *why, size_t n)
{
    static const struct {
        const char *scheme;
        int ipc;
    } schemes[] = {
        {"tcp://", 0},     {"tcp4://", 0},     {"tcp6://", 0},
        {"tls+tcp://", 0}, {"tls+tcp4://", 0}, {"tls+tcp6://", 0},
        {"ipc://", 1},
    };
    size_t i, l;

    *opened = 0;
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        l = strlen(schemes[i].scheme);
        if (strncmp(url, schemes[i].scheme, l) == 0) {
            return schemes[i].ipc ? probe_ipc(url + l, opened, why, n)
                                  : probe_tcp(url + l, opened, why, n);
        }
    }
    snprintf(why, n, "no connection within %d s", TRIB_CTL_CONNECT_MS / 1000);
    return TRIB_ETIMEDOUT;
}
