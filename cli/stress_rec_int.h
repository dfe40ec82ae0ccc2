/*
 * stress_rec_int.h -- the record store's layout, shared by stress_rec.c
 * (which fills it) and stress_analyze*.c (which read it). Not a public
 * interface: stress_report.h is.
 *
 * Layout (about 130 bytes per job of one event; docs/REPORT.md):
 *   - records: one 72-byte struct jrec per job, in chunks of 64 Ki so the
 *     array never moves or doubles; index = arrival order;
 *   - a job-id index: open addressing of record index + 1 (u32), at most
 *     half full (8 bytes per job);
 *   - events: one 48-byte struct jev per kept (job, attempt, kind) event,
 *     chunked likewise, chained per job (newest first);
 *   - names: every string (node, client, queue, kind, mode, error text) is
 *     interned once and named by a u32 id (0 = "", absent);
 *   - pairs: (node, client) "who" and (kind, text) error groups, u32 ids.
 *
 * Ownership: everything belongs to the struct stress_rec.
 * Threading: one thread.
 */
#ifndef TRIB_STRESS_REC_INT_H
#define TRIB_STRESS_REC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "stress_report.h"

#define REC_CHUNK_BITS 16
#define REC_CHUNK      (1u << REC_CHUNK_BITS)

/* Where a job's due time came from (a higher source wins). */
enum { DUE_NONE = 0, DUE_ROW = 1, DUE_EVENT = 2, DUE_META = 3 };

#define JREC_ROW 0x01 /* a river_job row was seen */

struct jrec {
    int64_t id;
    int64_t due;       /* us; 0 unknown (due_src says from where)       */
    int64_t created;   /* the row's created_at, else an event's         */
    int64_t first_att; /* earliest attempted_at seen (first attempt)    */
    int64_t final_at;  /* finalized_at: the row's, else a final event's */
    uint32_t queue, kind;
    uint32_t row_client; /* attempted_by's last element (string id)      */
    uint32_t row_err;    /* error group + 1 of the row's last error      */
    uint32_t ev_head;    /* newest event index + 1; 0 none               */
    int16_t stage;       /* metadata stage, -1 unknown                   */
    int16_t attempt;     /* the row's attempt (0 without a row)          */
    int16_t nerrors;     /* the row's errors[] length                    */
    uint16_t snoozes;    /* distinct snooze events                       */
    uint8_t row_state;   /* enum trib_wire_state; 0 without a row        */
    uint8_t ev_state;    /* state of the job's latest event; 0 none      */
    uint8_t due_src;
    uint8_t flags;
};

struct jev {
    int64_t at;
    int64_t qw, run, cmp; /* River's statistics, us */
    uint32_t next;        /* older event of the job: index + 1; 0 end */
    uint32_t who;         /* (node, client) pair id */
    uint32_t err;         /* error group + 1; 0 no error text */
    int16_t attempt;
    uint8_t kind; /* enum trib_event_kind 1..5 */
    uint8_t state;
};

/* Interned strings: id -> text; clients also carry node and mode ids. */
struct strtab {
    char *buf; /* NUL-terminated strings back to back */
    size_t len, cap;
    uint32_t *off;           /* id -> offset in buf */
    uint32_t *cnode, *cmode; /* id -> the client's node / mode (0) */
    uint32_t n, capn;
    uint32_t *slots; /* id + 1, 0 empty */
    uint32_t nslots; /* power of two */
};

/* Pairs of string ids -> dense ids 0..n-1. */
struct pairtab {
    uint32_t (*items)[2];
    uint32_t n, cap;
    uint32_t *slots; /* id + 1, 0 empty */
    uint32_t nslots;
};

struct stress_rec {
    struct jrec **recs; /* chunks */
    uint32_t nrecs, nchunks;
    struct jev **evs;
    uint32_t nevs, nevchunks;
    uint32_t *slots; /* job index: record index + 1; 0 empty */
    uint32_t nslots; /* power of two */
    struct strtab str;
    struct pairtab who;               /* (node, client) */
    struct pairtab grp;               /* (kind, normalised error text) */
    uint32_t s_none, s_unknown;       /* "(none)", "(unknown)" */
    int64_t finished;                 /* jobs final by either source */
    int64_t ev_states[TRIB_WS_COUNT]; /* jobs by their latest event */
};

static inline struct jrec *rec_at(const struct stress_rec *r, uint32_t i)
{
    return &r->recs[i >> REC_CHUNK_BITS][i & (REC_CHUNK - 1)];
}

static inline struct jev *ev_at(const struct stress_rec *r, uint32_t i)
{
    return &r->evs[i >> REC_CHUNK_BITS][i & (REC_CHUNK - 1)];
}

static inline const char *rec_str(const struct stress_rec *r, uint32_t id)
{
    return r->str.buf + r->str.off[id];
}

static inline int rec_state_final(int ws)
{
    return ws == TRIB_WS_COMPLETED || ws == TRIB_WS_DISCARDED ||
           ws == TRIB_WS_CANCELLED;
}

/* The job's state: the row's when there is one, else its latest event's. */
static inline int rec_state(const struct jrec *j)
{
    return (j->flags & JREC_ROW) ? j->row_state : j->ev_state;
}

#endif /* TRIB_STRESS_REC_INT_H */
