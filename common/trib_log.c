/*
 * trib_log.c -- line formatting and complaint suppression.
 */
#include "trib_log.h"
#include "trib_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int trib_log_level = TRIB_LOG_INFO;
static const char *log_component = "tributary";

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void trib_log_init(const char *component, int level)
{
    log_component = component;
    trib_log_level = level;
}

int trib_log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    int i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void vwrite_line(int level, const char *id, const char *suffix,
                        const char *fmt, va_list ap)
{
    char line[2048];
    char ts[40];
    int n, m;

    trib_time_rfc3339(trib_now_us(), ts, sizeof(ts), 3);
    n = snprintf(line, sizeof(line), "%s %s [%s] %s: ", ts,
                 level_names[level < 0   ? 0
                             : level > 3 ? 3
                                         : level],
                 log_component, id);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (m < 0) {
        return;
    }
    n += m;
    if ((size_t)n >= sizeof(line) - 64) {
        n = (int)sizeof(line) - 64; /* truncated */
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\n", suffix);
    /* One write per line keeps lines whole across threads. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nothing sensible to do */
    }
}

void trib_log_write(int level, const char *id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwrite_line(level, id, "", fmt, ap);
    va_end(ap);
}

#define COMPLAIN_MIN_MS 1000
#define COMPLAIN_MAX_MS (5 * 60 * 1000)

void trib_complain(struct trib_complain *c, int level, const char *id,
                   const char *fmt, ...)
{
    uint64_t now = trib_mono_us() / 1000;
    char suffix[64] = "";
    va_list ap;

    if (c->active && now - c->last_ms < c->interval_ms) {
        c->suppressed++;
        return;
    }
    if (c->suppressed > 0) {
        snprintf(suffix, sizeof(suffix), " (%llu similar suppressed)",
                 (unsigned long long)c->suppressed);
    }
    c->interval_ms = !c->active ? COMPLAIN_MIN_MS
                     : c->interval_ms * 2 > COMPLAIN_MAX_MS
                         ? COMPLAIN_MAX_MS
                         : c->interval_ms * 2;
    c->active = 1;
    c->last_ms = now;
    c->suppressed = 0;
    if (level <= trib_log_level) {
        va_start(ap, fmt);
        vwrite_line(level, id, suffix, fmt, ap);
        va_end(ap);
    }
}

void trib_complain_release(struct trib_complain *c, const char *id,
                           const char *fmt, ...)
{
    va_list ap;

    if (!c->active) {
        return;
    }
    memset(c, 0, sizeof(*c));
    if (TRIB_LOG_INFO <= trib_log_level) {
        va_start(ap, fmt);
        vwrite_line(TRIB_LOG_INFO, id, "", fmt, ap);
        va_end(ap);
    }
}
