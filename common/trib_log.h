/*
 * trib_log -- leveled, attributed, rate-limited logging.
 *
 * Every line: "<UTC time> <LEVEL> [<component>] <ID>: <message>", where ID is
 * a short stable message identifier ("AGT-PGCONN") operators can grep and
 * alert on. Macros check the level before formatting anything.
 *
 * Repeating failures go through a trib_complain: the first occurrence is
 * logged, repeats are suppressed with a doubling interval (1 s .. 5 min) and
 * counted; trib_complain_release() logs the recovery once.
 *
 * Threading: trib_log_write() may be called from any thread (one write(2) per
 * line). A trib_complain is owned by one thread.
 */
#ifndef TRIB_LOG_H
#define TRIB_LOG_H

#include <stdint.h>

enum trib_log_level {
    TRIB_LOG_ERROR = 0,
    TRIB_LOG_WARN = 1,
    TRIB_LOG_INFO = 2,
    TRIB_LOG_DEBUG = 3,
};

extern int trib_log_level; /* lines above this level are skipped */

/* Set the component prefix (static string) and level. Not thread-safe: call
 * once at start-up. */
void trib_log_init(const char *component, int level);

/* Parse "error|warn|info|debug"; returns level or -1. */
int trib_log_level_parse(const char *s);

void trib_log_write(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TRIB_LOG(lvl, id, ...)                                                 \
    do {                                                                       \
        if ((lvl) <= trib_log_level) {                                         \
            trib_log_write((lvl), (id), __VA_ARGS__);                          \
        }                                                                      \
    } while (0)
#define TRIB_ERROR(id, ...) TRIB_LOG(TRIB_LOG_ERROR, id, __VA_ARGS__)
#define TRIB_WARN(id, ...)  TRIB_LOG(TRIB_LOG_WARN, id, __VA_ARGS__)
#define TRIB_INFO(id, ...)  TRIB_LOG(TRIB_LOG_INFO, id, __VA_ARGS__)
#define TRIB_DEBUG(id, ...) TRIB_LOG(TRIB_LOG_DEBUG, id, __VA_ARGS__)

/* Rate limiter for a repeating complaint. Zero-initialise. */
struct trib_complain {
    uint64_t last_ms;     /* monotonic time of the last line logged   */
    uint64_t interval_ms; /* current suppression interval             */
    uint64_t suppressed;  /* occurrences not logged since last line   */
    int active;           /* a complaint is outstanding               */
};

void trib_complain(struct trib_complain *c, int level, const char *id,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Logs "fmt" once at INFO if a complaint is outstanding, then resets. */
void trib_complain_release(struct trib_complain *c, const char *id,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TRIB_LOG_H */
