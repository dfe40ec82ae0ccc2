/*
 * view_ring.c -- the ring of the last conf.ring_events applied events, for
 * `tributary events` (DESIGN-NOTES 9: a slow reader never blocks ingest;
 * it is told how many events it missed).
 *
 * Every applied event gets the next cursor number (1, 2, ...) and lands in
 * slot cursor % ring_events, overwriting the oldest. A slot is fixed-size:
 * the event's numbers plus its strings copied into VIEW_RING_TEXT bytes
 * (client, queue, kind, then the error cut to VIEW_RING_ERR_MAX bytes, then
 * as many tags as fit; a string that does not fit is cut at a UTF-8
 * boundary). The ring is not saved: after a load it starts empty at the
 * loaded cursor (ring_base), and readers behind it are told they missed
 * the events in between.
 */
#include <string.h>

#include "trib_mem.h"
#include "view_impl.h"

int trib__view_ring_init(struct trib_view *v)
{
    if (v->conf.ring_events > 0) {
        v->ring = trib__view_alloc(v, (size_t)v->conf.ring_events *
                                          sizeof(struct vslot));
    }
    return 0;
}

/* s[0..n) cut to at most max bytes, not inside a UTF-8 sequence. */
static uint32_t utf8_cut(const char *s, uint32_t n, uint32_t max)
{
    uint32_t cut = max;

    if (n <= max) {
        return n;
    }
    while (cut > 0 && max - cut < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
    }
    if (((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut = max; /* not UTF-8 anyway */
    }
    return cut;
}

/* Copies s into the slot's text (at most cap bytes); returns the next free
 * offset. whole: skip the string rather than cut it (tags). */
static uint32_t put(struct vslot *sl, int i, struct trib_str s, uint32_t pos,
                    uint32_t cap, int whole)
{
    uint32_t room = VIEW_RING_TEXT - pos, n;

    if (s.p == NULL) {
        return pos;
    }
    if (cap > room) {
        cap = room;
    }
    if (whole && s.n > cap) {
        return pos;
    }
    n = utf8_cut(s.p, s.n, cap);
    sl->present |= 1u << i;
    sl->off[i] = (uint16_t)pos;
    sl->len[i] = (uint16_t)n;
    if (n > 0) {
        memcpy(sl->text + pos, s.p, n);
    }
    return pos + n;
}

void trib__view_ring_put(struct trib_view *v, uint64_t cursor, struct vagent *a,
                         const struct trib_wire_event *ev)
{
    struct vslot *sl;
    uint32_t pos = 0;
    int i;

    if (v->ring == NULL) {
        return;
    }
    sl = &v->ring[cursor % v->conf.ring_events];
    sl->cursor = cursor;
    sl->agent = a;
    sl->kind = (int8_t)ev->kind;
    sl->state = (int8_t)ev->state;
    sl->attempt = ev->attempt;
    sl->max_attempts = ev->max_attempts;
    sl->priority = ev->priority;
    sl->job_id = ev->job_id;
    sl->created_at = ev->created_at;
    sl->scheduled_at = ev->scheduled_at;
    sl->attempted_at = ev->attempted_at;
    sl->finalized_at = ev->finalized_at;
    sl->next_scheduled_at = ev->next_scheduled_at;
    sl->queue_wait_us = ev->queue_wait_us;
    sl->run_us = ev->run_us;
    sl->complete_us = ev->complete_us;
    sl->at = ev->at;
    sl->present = 0;
    sl->ntags = 0;
    pos = put(sl, RS_CLIENT, ev->client_id, pos, VIEW_RING_TEXT, 0);
    pos = put(sl, RS_QUEUE, ev->queue, pos, VIEW_RING_TEXT, 0);
    pos = put(sl, RS_KIND, ev->job_kind, pos, VIEW_RING_TEXT, 0);
    pos = put(sl, RS_ERROR, ev->error, pos, VIEW_RING_ERR_MAX, 0);
    for (i = 0; i < ev->ntags && i < TRIB_WIRE_MAX_TAGS; i++) {
        pos = put(sl, RS_TAG0 + sl->ntags, ev->tags[i], pos, VIEW_RING_TEXT, 1);
        if (sl->present & (1u << (RS_TAG0 + sl->ntags))) {
            sl->ntags++;
        }
    }
}

static struct trib_str get(const struct vslot *sl, int i)
{
    struct trib_str s = {NULL, 0};

    if (sl->present & (1u << i)) {
        s.p = sl->text + sl->off[i];
        s.n = sl->len[i];
    }
    return s;
}

static void slot_event(const struct vslot *sl, struct trib_wire_event *ev)
{
    int i;

    memset(ev, 0, sizeof(*ev));
    ev->kind = sl->kind;
    ev->state = sl->state;
    ev->client_id = get(sl, RS_CLIENT);
    ev->queue = get(sl, RS_QUEUE);
    ev->job_kind = get(sl, RS_KIND);
    ev->error = get(sl, RS_ERROR);
    for (i = 0; i < sl->ntags; i++) {
        ev->tags[i] = get(sl, RS_TAG0 + i);
    }
    ev->ntags = sl->ntags;
    ev->attempt = sl->attempt;
    ev->max_attempts = sl->max_attempts;
    ev->priority = sl->priority;
    ev->job_id = sl->job_id;
    ev->created_at = sl->created_at;
    ev->scheduled_at = sl->scheduled_at;
    ev->attempted_at = sl->attempted_at;
    ev->finalized_at = sl->finalized_at;
    ev->next_scheduled_at = sl->next_scheduled_at;
    ev->queue_wait_us = sl->queue_wait_us;
    ev->run_us = sl->run_us;
    ev->complete_us = sl->complete_us;
    ev->at = sl->at;
}

uint64_t trib_view_cursor(const struct trib_view *v)
{
    return v->events_applied + 1;
}

uint32_t trib_view_ring_read(const struct trib_view *v, uint64_t after,
                             uint32_t max, uint32_t kinds, msgpack_sbuffer *sb,
                             uint64_t *next, uint64_t *missed)
{
    uint64_t last = v->events_applied, oldest, c;
    const struct vslot *sl;
    struct trib_wire_event ev;
    struct trib_str node;
    uint32_t n = 0;

    *missed = 0;
    if (after == UINT64_MAX) { /* "from now" */
        *next = last;
        return 0;
    }
    if (after >= last) {
        /* nothing new; a cursor from the future (a coordinator that
         * restarted without its state) restarts at ours */
        *next = last;
        return 0;
    }
    /* the oldest cursor still held */
    oldest = v->ring_base;
    if (v->ring == NULL) {
        oldest = last + 1;
    } else if (last >= v->conf.ring_events &&
               last - v->conf.ring_events + 1 > oldest) {
        oldest = last - v->conf.ring_events + 1;
    }
    c = after + 1;
    if (c < oldest) {
        *missed = oldest - c;
        c = oldest;
    }
    *next = c - 1;
    for (; c <= last && n < max; c++) {
        sl = &v->ring[c % v->conf.ring_events];
        *next = c;
        if (sl->cursor != c ||
            (kinds != 0 && (kinds & (1u << (unsigned)sl->kind)) == 0)) {
            continue;
        }
        slot_event(sl, &ev);
        node.p = sl->agent->id;
        node.n = trib__vstr_len(sl->agent->id);
        trib_wire_enc_events_item(sb, c, node, &ev);
        n++;
    }
    return n;
}
