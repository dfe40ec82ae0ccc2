/*
 * trib_wire_decode.c -- reading frames: size cap, structure check, unpack,
 * envelope, then the body of the message type (PROTOCOL.md, "Frames").
 *
 * Each body decoder walks its map once: unknown keys and nil values are
 * skipped, a known key with a wrong type (or a string or array over its
 * limit) fails the frame with TRIB_EPROTO, and a bit per required key
 * tells at the end whether each one was seen. The only allocation is
 * msgpack-c's, into the caller's zone; strings point into the frame.
 */
#include "trib_mp.h"
#include "trib_wire.h"
#include "trib_wire_codec.h"

/* Iterate the entries of a body map; 'k' is the entry's key or -1 (unknown
 * key type or nil value: skipped). */
#define FOR_KEYS(obj, kv, k)                                                   \
    for ((kv) = (obj)->via.map.ptr;                                            \
         (kv) < (obj)->via.map.ptr + (obj)->via.map.size &&                    \
         ((k) = trib__key(kv), 1);                                             \
         (kv)++)

/* An array of str: at most cap elements (more is TRIB_EPROTO). */
static int get_str_array(const msgpack_object *o, struct trib_str *out, int cap,
                         int *n)
{
    uint32_t i;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > (uint32_t)cap) {
        return TRIB_EPROTO;
    }
    for (i = 0; i < o->via.array.size; i++) {
        if (trib__get_str(&o->via.array.ptr[i], TRIB_WIRE_STR_MAX, &out[i])) {
            return TRIB_EPROTO;
        }
    }
    *n = (int)o->via.array.size;
    return 0;
}

/* An array of at most cap elements. */
static int get_array(const msgpack_object *o, uint32_t cap)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > cap) {
        return TRIB_EPROTO;
    }
    return 0;
}

static int dec_client(const msgpack_object *o, struct trib_wire_client *c)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int rc = 0;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    FOR_KEYS(o, kv, k)
    {
        if (k == 0) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &c->id);
        } else if (k == 1) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &c->mode);
        } else if (k == 2) {
            rc = get_str_array(&kv->val, c->queues, TRIB_WIRE_MAX_QUEUES,
                               &c->nqueues);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return c->id.p != NULL ? 0 : TRIB_EPROTO; /* id is required */
}

static int dec_clients(const msgpack_object *o, struct trib_wire_hello *m)
{
    uint32_t i;

    if (get_array(o, TRIB_WIRE_MAX_CLIENTS) != 0) {
        return TRIB_EPROTO;
    }
    for (i = 0; i < o->via.array.size; i++) {
        memset(&m->clients[i], 0, sizeof(m->clients[i]));
        if (dec_client(&o->via.array.ptr[i], &m->clients[i]) != 0) {
            return TRIB_EPROTO;
        }
    }
    m->nclients = (int)o->via.array.size;
    return 0;
}

static int dec_boots(const msgpack_object *o, struct trib_wire_hello *m)
{
    uint32_t i;

    if (get_array(o, TRIB_WIRE_MAX_BOOTS) != 0) {
        return TRIB_EPROTO;
    }
    for (i = 0; i < o->via.array.size; i++) {
        if (trib__get_u64(&o->via.array.ptr[i], &m->boots[i]) != 0) {
            return TRIB_EPROTO;
        }
    }
    m->nboots = (int)o->via.array.size;
    return 0;
}

static int dec_hello(const msgpack_object *b, struct trib_wire_hello *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    unsigned seen = 0;
    int rc = 0;

    FOR_KEYS(b, kv, k)
    {
        const msgpack_object *v = &kv->val;

        switch (k) {
        case 0:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &m->agent_id);
            seen |= 1;
            break;
        case 1:
            rc = trib__get_u64(v, &m->boot_id);
            seen |= 2;
            break;
        case 2:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &m->host);
            break;
        case 3:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &m->version);
            break;
        case 4:
            rc = trib__get_i64(v, &m->pid);
            break;
        case 5:
            rc = get_str_array(v, m->caps, TRIB_WIRE_MAX_CAPS, &m->ncaps);
            break;
        case 6:
            rc = dec_clients(v, m);
            break;
        case 7:
            rc = trib__get_bin(v, m->nonce, TRIB_WIRE_NONCE);
            seen |= 4;
            break;
        case 8:
            rc = dec_boots(v, m);
            break;
        case 9:
            rc = trib__get_i64(v, &m->started_at);
            break;
        case 10:
            rc = trib__get_i64(v, &m->heartbeat_ms);
            break;
        default:
            break;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen == 7 ? 0 : TRIB_EPROTO; /* agent_id, boot_id, nonce */
}

static int dec_challenge(const msgpack_object *b, struct trib_wire_challenge *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_bin(&kv->val, m->nonce, TRIB_WIRE_NONCE);
            seen = 1;
        } else if (k == 1) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &m->coordinator_id);
        } else if (k == 2) {
            rc = trib__get_bool(&kv->val, &m->auth_required);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* nonce */
}

static int dec_auth(const msgpack_object *b, struct trib_wire_auth *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int seen = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            if (trib__get_bin(&kv->val, m->mac, TRIB_WIRE_MAC) != 0) {
                return TRIB_EPROTO;
            }
            seen = 1;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* mac */
}

static int dec_boot_pos(const msgpack_object *o, struct trib_wire_boot_pos *p)
{
    const msgpack_object *a;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3) {
        return TRIB_EPROTO;
    }
    a = o->via.array.ptr; /* extra elements: ignored */
    if (trib__get_u64(&a[0], &p->boot_id) != 0 ||
        trib__get_u64(&a[1], &p->applied) != 0 ||
        trib__get_u64(&a[2], &p->durable) != 0) {
        return TRIB_EPROTO;
    }
    return 0;
}

static int dec_welcome(const msgpack_object *b, struct trib_wire_welcome *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    uint32_t i;
    int rc = 0;

    FOR_KEYS(b, kv, k)
    {
        const msgpack_object *v = &kv->val;

        if (k == 0) {
            rc = trib__get_bin(v, m->mac, TRIB_WIRE_MAC);
        } else if (k == 1) {
            rc = get_array(v, TRIB_WIRE_MAX_BOOTS);
            for (i = 0; rc == 0 && i < v->via.array.size; i++) {
                rc = dec_boot_pos(&v->via.array.ptr[i], &m->boots[i]);
            }
            m->nboots = rc == 0 ? (int)v->via.array.size : 0;
        } else if (k == 2) {
            rc = trib__get_i64(v, &m->heartbeat_ms);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int dec_batch(const msgpack_object *b, struct trib_wire_batch *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    unsigned seen = 0;
    int rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_u64(&kv->val, &m->boot_id);
            seen |= 1;
        } else if (k == 1) {
            rc = trib__get_u64(&kv->val, &m->first_seq);
            seen |= 2;
        } else if (k == 2) {
            rc = get_array(&kv->val, TRIB_WIRE_BATCH_MAX);
            m->events = &kv->val;
            seen |= 4;
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (seen != 7 || m->first_seq == 0 ||
        m->first_seq - 1 > UINT64_MAX - m->events->via.array.size) {
        return TRIB_EPROTO; /* missing key, or sequences out of range */
    }
    return 0;
}

/* ACK {boot_id, applied, durable}. */
static int dec_ack(const msgpack_object *b, struct trib_wire_ack *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_u64(&kv->val, &m->boot_id);
            seen = 1;
        } else if (k == 1) {
            rc = trib__get_u64(&kv->val, &m->applied);
        } else if (k == 2) {
            rc = trib__get_u64(&kv->val, &m->durable);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* boot_id */
}

static int dec_sample(const msgpack_object *o,
                      struct trib_wire_client_sample *c)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int rc = 0;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    memset(c, 0, sizeof(*c));
    FOR_KEYS(o, kv, k)
    {
        if (k == 0) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &c->id);
        } else if (k == 1) {
            rc = trib__get_i64(&kv->val, &c->in_flight);
        } else if (k == 2) {
            rc = trib__get_bool(&kv->val, &c->fetch_paused);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return c->id.p != NULL ? 0 : TRIB_EPROTO; /* id is required */
}

static int dec_heartbeat(const msgpack_object *b, struct trib_wire_heartbeat *m)
{
    int64_t *const ints[] = {
        NULL,          &m->at,      &m->cpu_user_us,   &m->cpu_sys_us,
        &m->rss_bytes, &m->threads, &m->outbox_events, &m->outbox_bytes,
        &m->db_conns};
    const msgpack_object_kv *kv;
    int64_t k;
    uint32_t i;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        const msgpack_object *v = &kv->val;

        if (k == 0) {
            rc = trib__get_u64(v, &m->boot_id);
            seen = 1;
        } else if (k >= 1 && k <= 8) {
            rc = trib__get_i64(v, ints[k]);
        } else if (k == 9) {
            rc = get_array(v, TRIB_WIRE_MAX_CLIENTS);
            for (i = 0; rc == 0 && i < v->via.array.size; i++) {
                rc = dec_sample(&v->via.array.ptr[i], &m->clients[i]);
            }
            m->nclients = rc == 0 ? (int)v->via.array.size : 0;
        } else if (k == 10) {
            rc = trib__get_u64(v, &m->last_seq);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* boot_id */
}

static int dec_error(const msgpack_object *b, struct trib_wire_error *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int32_t code = 0;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_i32(&kv->val, &code);
            seen = 1;
        } else if (k == 1) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_ERROR_MAX, &m->message);
        } else if (k == 2) {
            rc = trib__get_u64(&kv->val, &m->expected_seq);
        }
        if (rc != 0) {
            return rc;
        }
    }
    m->code = code;
    return seen ? 0 : TRIB_EPROTO; /* code */
}

static int dec_goodbye(const msgpack_object *b, struct trib_wire_goodbye *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_u64(&kv->val, &m->boot_id);
            seen = 1;
        } else if (k == 1) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_ERROR_MAX, &m->reason);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* boot_id */
}

/* QUERY args: map str -> str | int; a nil value is an absent argument. */
static int dec_args(const msgpack_object *o, struct trib_wire_query *m)
{
    const msgpack_object_kv *kv, *end;

    if (o->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    m->nargs = 0;
    end = o->via.map.ptr + o->via.map.size;
    for (kv = o->via.map.ptr; kv < end; kv++) {
        struct trib_wire_arg *a = &m->args[m->nargs];

        if (kv->val.type == MSGPACK_OBJECT_NIL) {
            continue;
        }
        if (m->nargs == TRIB_WIRE_MAX_ARGS) {
            return TRIB_EPROTO; /* more arguments than any query takes */
        }
        memset(a, 0, sizeof(*a));
        if (trib__get_str(&kv->key, TRIB_WIRE_STR_MAX, &a->key) != 0) {
            return TRIB_EPROTO;
        }
        if (kv->val.type == MSGPACK_OBJECT_STR) {
            a->is_str = 1;
            if (trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &a->str) != 0) {
                return TRIB_EPROTO;
            }
        } else if (trib__get_i64(&kv->val, &a->num) != 0) {
            return TRIB_EPROTO;
        }
        m->nargs++;
    }
    return 0;
}

static int dec_query(const msgpack_object *b, struct trib_wire_query *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_STR_MAX, &m->name);
            seen = 1;
        } else if (k == 1) {
            rc = dec_args(&kv->val, m);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen ? 0 : TRIB_EPROTO; /* name */
}

static int dec_query_reply(const msgpack_object *b,
                           struct trib_wire_query_reply *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int32_t code = 0;
    int seen = 0, rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_i32(&kv->val, &code);
            seen = 1;
        } else if (k == 1) {
            rc = trib__get_str(&kv->val, TRIB_WIRE_FRAME_MAX, &m->json);
        }
        if (rc != 0) {
            return rc;
        }
    }
    m->code = code;
    return seen ? 0 : TRIB_EPROTO; /* code */
}

static int dec_events_req(const msgpack_object *b,
                          struct trib_wire_events_req *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    int rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_u64(&kv->val, &m->after);
        } else if (k == 1) {
            rc = trib__get_u32(&kv->val, &m->max);
        } else if (k == 2) {
            rc = trib__get_u32(&kv->val, &m->kinds);
        } else if (k == 3) {
            rc = trib__get_i64(&kv->val, &m->wait_ms);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0; /* every key is optional */
}

static int dec_events_reply(const msgpack_object *b,
                            struct trib_wire_events_reply *m)
{
    const msgpack_object_kv *kv;
    int64_t k;
    unsigned seen = 0;
    int rc = 0;

    FOR_KEYS(b, kv, k)
    {
        if (k == 0) {
            rc = trib__get_u64(&kv->val, &m->next);
            seen |= 1;
        } else if (k == 1) {
            rc = trib__get_u64(&kv->val, &m->missed);
        } else if (k == 2) {
            rc = get_array(&kv->val, UINT32_MAX);
            m->events = &kv->val;
            seen |= 2;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return seen == 3 ? 0 : TRIB_EPROTO; /* next, events */
}

/* The one adapter from msgpack-c's unpack results to trib_err. */
static int err_from_unpack(msgpack_unpack_return r)
{
    switch (r) {
    case MSGPACK_UNPACK_SUCCESS:
        return 0;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return TRIB_ENOMEM;
    case MSGPACK_UNPACK_EXTRA_BYTES: /* more than one object */
    case MSGPACK_UNPACK_CONTINUE:    /* truncated */
    case MSGPACK_UNPACK_PARSE_ERROR:
    default:
        return TRIB_EPROTO;
    }
}

/* Each body decoder starts from a zeroed struct: only the member in use is
 * cleared (a HELLO is ~70 KiB, a batch 24 bytes). */
#define BODY(member, fn)                                                       \
    (memset(&out->u.member, 0, sizeof(out->u.member)), fn(body, &out->u.member))

int trib_wire_decode(const void *frame, size_t len, msgpack_zone *zone,
                     struct trib_wire_msg *out)
{
    msgpack_object root, *env, *body;
    size_t off = 0;
    int rc;

    out->version = 0;
    out->type = 0;
    if (len > TRIB_WIRE_FRAME_MAX) {
        return TRIB_ERANGE;
    }
    if (frame == NULL || len == 0) {
        return TRIB_EPROTO;
    }
    /* Structure first, without allocating: msgpack-c would allocate from
     * container headers before it sees the elements (TOOLCHAIN.md). */
    rc = trib_mp_check(frame, len, TRIB_MP_MAX_DEPTH);
    if (rc != 0) {
        return rc;
    }
    rc = err_from_unpack(msgpack_unpack(frame, len, &off, zone, &root));
    if (rc != 0) {
        return rc;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < 3) {
        return TRIB_EPROTO;
    }
    env = root.via.array.ptr; /* elements after the body: ignored */
    body = &env[2];
    if (env[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || env[0].via.u64 == 0 ||
        env[0].via.u64 > UINT32_MAX ||
        env[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        env[1].via.u64 > UINT32_MAX || body->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    /* Any version >= 1 is read: versions only add keys and types. */
    out->version = (uint32_t)env[0].via.u64;
    out->type = (uint32_t)env[1].via.u64;
    switch (out->type) {
    case TRIB_MSG_HELLO:
        return BODY(hello, dec_hello);
    case TRIB_MSG_CHALLENGE:
        return BODY(challenge, dec_challenge);
    case TRIB_MSG_AUTH:
        return BODY(auth, dec_auth);
    case TRIB_MSG_WELCOME:
        return BODY(welcome, dec_welcome);
    case TRIB_MSG_EVENT_BATCH:
        return BODY(batch, dec_batch);
    case TRIB_MSG_ACK:
        return BODY(ack, dec_ack);
    case TRIB_MSG_HEARTBEAT:
        return BODY(heartbeat, dec_heartbeat);
    case TRIB_MSG_ERROR:
        return BODY(error, dec_error);
    case TRIB_MSG_GOODBYE:
        return BODY(goodbye, dec_goodbye);
    case TRIB_MSG_QUERY:
        return BODY(query, dec_query);
    case TRIB_MSG_QUERY_REPLY:
        return BODY(query_reply, dec_query_reply);
    case TRIB_MSG_EVENTS:
        return BODY(events_req, dec_events_req);
    case TRIB_MSG_EVENTS_REPLY:
        return BODY(events_reply, dec_events_reply);
    default:
        return TRIB_ENOTSUP; /* version and type set: answer ERROR */
    }
}
