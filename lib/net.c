/*
 * net.c — the wire half of a cluster node, on shard 0.
 *
 * Peers: every other node we know an address for, by node id.  A remote
 * send finds the peer's connection (dialling on demand, with the expected
 * node id pinned), picks the actor stream for the target actor (one per
 * (connection, target actor), so per-sender order holds), and writes an
 * INVOKE.  Calls wait in a table by call id until their RESPONSE, or until
 * the connection goes down (MM_EUNREACHABLE), or shutdown (MM_ECLOSED).
 *
 * Incoming INVOKEs become ordinary local sends whose reply callback writes
 * the RESPONSE on the same stream.  A label target is looked up in this
 * node's view and forwarded when the winner lives elsewhere: that is how a
 * CLI session on a seed reaches any actor.
 */
#include "net.h"

#include <arpa/inet.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include <cJSON.h>

#include "buf.h"
#include "membership/idx.h"
#include "registry.h"
#include "transport/quic.h"
#include "wire.h"

#define MAX_FRAME_HANDLERS 256
#define STREAM_IDLE_MS 2000u
#define SWEEP_MS 1000u
/* A connection superseded by a crossing dial is closed once nothing is
 * under way on it at two sweeps in a row, or after DRAIN_MS at most. */
#define DRAIN_MS 10000u
/* A call to a node whose address membership has not told us yet waits
 * this long for it (the registry may list the node's actors first), to
 * the next sweep after it: `unreachable` within 0.5-1.5 s. */
#define NOADDR_WAIT_MS 500u
/* Such nodes waited for at once; calls to more fail at once. */
#define NOADDR_PEERS_MAX 256u
/* Frames up to this size are encoded on the stack (the transport copies
 * them into its stream queue anyway). */
#define NET_FRAME_STACK 512

struct ostream { /* an actor stream we opened towards a peer */
    struct ostream *next;
    uint64_t actor;
    int64_t sid;
    uint32_t pending;
    uint64_t last_use;
};

struct peer {
    struct peer *next;
    uint8_t id[MM_NODE_ID_LEN];
    uint64_t gen;
    char addr[96];
    char name[64];
    struct cconn *conn; /* up member connection, or NULL */
    /* net->up: the peers with |conn| (peer_conn_set), walked by the
     * per-connection passes instead of every peer the cluster has. */
    struct peer *up_next, *up_prev;
    int dialing;
    mm_msg *wait_head, *wait_tail; /* MSG_REMOTE waiting for conn/credit */
    uint64_t noaddr_since;         /* calls wait for its address since (ms) */
    int noaddr;      /* made by such a call: freed if no address comes */
    uint8_t *ctrl_q; /* control frames waiting for the conn */
    size_t ctrl_len, ctrl_cap;
    struct ostream *streams;
};

/* A RESPONSE frame that found no send room (the connection's
 * unacknowledged bytes at their cap): sent in order once acknowledgements
 * free some (on_send_room). */
struct rq {
    struct rq *next;
    int64_t sid;
    int fin; /* close the stream once sent (its last owed RESPONSE) */
    size_t len;
    uint8_t data[];
};

struct istream { /* a stream the peer opened towards us */
    struct istream *next;
    int64_t sid;
    uint32_t pending; /* calls still owed a RESPONSE on it */
    int fin;          /* the peer ended its side */
};

struct cconn { /* our state for one QUIC connection */
    struct mm_net *net;
    struct mm_qconn *q; /* NULL once down */
    struct peer *peer;  /* member connections */
    uint8_t id[MM_NODE_ID_LEN];
    int role;
    int key; /* enum mm_key_kind it authenticated with */
    int up;
    int refs; /* inbound calls in flight hold one each */
    /* Set when the connection is down: its calls still queued in
     * mailboxes are dropped unrun (mm_msg.gone). */
    _Atomic unsigned char gone;
    struct istream *istreams;
    char seed_addr[96]; /* a seed dialled by address (id unknown) */
    uint32_t npend;     /* our calls awaiting a RESPONSE on it */
    /* Superseded by a crossing dial: it keeps what is under way on it
     * (|ostreams|, our calls, inbound calls) and is closed once drained. */
    int draining;
    int reported;         /* conn_fn told of it (up) */
    int idle_sweeps;      /* consecutive sweeps that found it drained */
    uint64_t drain_until; /* closed then even if not drained (ms) */
    struct ostream *ostreams;
    struct cconn *dnext; /* net->draining */
    /* Inbound INVOKE bytes whose stream credit is held until their
     * message is handled (at most MM_CONN_RECV_MAX, see serve_invoke). */
    size_t in_held;
    /* Responses waiting for send room (at most MM_CONN_RESP_QUEUE, and
     * MM_CONN_RESP_QUEUE_BYTES but one frame). */
    struct rq *rq_head, *rq_tail;
    unsigned rq_n;
    size_t rq_bytes;
};

struct pend { /* an outgoing call waiting for its RESPONSE */
    struct pend *next;
    uint64_t call_id;
    struct mm_call *call;
    struct mm_shard *home;
    struct peer *peer;
    struct cconn *cc; /* the connection the INVOKE went out on */
    struct ostream *st;
};

struct inbound { /* an incoming call being served */
    struct cconn *cc;
    int64_t sid;
    uint64_t call_id;
    size_t held; /* the INVOKE's bytes, their stream credit held */
};

struct frame_handler {
    mm_net_frame_fn fn;
    void *data;
};

/* Free lists for the per-call records (struct pend, struct inbound): a
 * remote call then costs no malloc on either side.  Shard 0 only (or the
 * freeing thread once the shards are done). */
#define NET_CACHE_MAX 256
struct objcache {
    void *head;
    unsigned n;
};

static void *
cache_get(struct objcache *oc, size_t size)
{
    void *p = oc->head;
    if (p == NULL) return mm__malloc(size);
    memcpy(&oc->head, p, sizeof(void *));
    oc->n--;
    return p;
}

static void
cache_put(struct objcache *oc, void *p)
{
    if (oc->n >= NET_CACHE_MAX) {
        mm__free(p);
        return;
    }
    memcpy(p, &oc->head, sizeof(void *));
    oc->head = p;
    oc->n++;
}

static void
cache_drain(struct objcache *oc)
{
    while (oc->head) {
        void *p = oc->head;
        memcpy(&oc->head, p, sizeof(void *));
        mm__free(p);
    }
    oc->n = 0;
}

struct mm_net {
    mm_node *node;
    struct mm_quic *q;
    char **seeds;
    size_t nseeds;
    struct peer *peers;
    struct peer *up; /* those with a connection (peer.up_next) */
    /* peers by id: a member change, a call, a frame looks its peer up in
     * O(1), not by a walk of a list as long as the cluster. */
    struct mm_idx peer_idx;
    struct pend **pend; /* hash by call id */
    size_t npend_buckets;
    uint64_t next_call_id;
    struct mm_tmr sweep; /* every SWEEP_MS on shard 0's timer queue */
    struct objcache pend_cache, inbound_cache;
    int stopped;
    struct frame_handler handlers[MAX_FRAME_HANDLERS];
    mm_net_conn_fn conn_fn;
    void *conn_data;
    mm_net_conn_gone_fn gone_fn;
    void *gone_data;
    mm_net_dgram_fn dgram_fn;
    void *dgram_data;
    struct cconn *draining;    /* superseded connections, see cconn */
    struct cconn **seed_dials; /* in flight (entries NULL once done) */
    size_t nseed_dials;
    /* Refused for the connection's key or role: member frames from a
     * client (the connection is closed), INVOKEs from a read-only key. */
    uint64_t member_frames_refused, invokes_refused;
    /* Idle member connections kept (MM_CONNS_IDLE_MAX; tests change it),
     * and those closed for it. */
    unsigned idle_max;
    uint64_t idle_evicted;
    /* Heap trims (MM_HEAP_TRIM_GAP_MS): wanted since a connection closed
     * or mm__net_trim_soon; the last at trim_last (ms); how many. */
    int trim_wanted;
    uint64_t trim_last, heap_trims;
    size_t noaddr_peers; /* peers made by calls, waiting for an address */
};

static struct mm_tq *
net_tq(struct mm_net *net)
{
    return &net->node->shards[0].tq;
}

static void peer_flush(struct mm_net *net, struct peer *p);

/* Sets |p|'s member connection, keeping net->up to the peers with one. */
static void
peer_conn_set(struct mm_net *net, struct peer *p, struct cconn *cc)
{
    if (cc && !p->conn) {
        p->up_prev = NULL;
        p->up_next = net->up;
        if (net->up) net->up->up_prev = p;
        net->up = p;
    } else if (!cc && p->conn) {
        if (p->up_prev)
            p->up_prev->up_next = p->up_next;
        else
            net->up = p->up_next;
        if (p->up_next) p->up_next->up_prev = p->up_prev;
        p->up_next = p->up_prev = NULL;
    }
    p->conn = cc;
}

/* ---- helpers ------------------------------------------------------------- */

static struct peer *
peer_find(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN])
{
    return mm__idx_find(&net->peer_idx, id);
}

static struct peer *
peer_get(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN])
{
    struct peer *p = peer_find(net, id);
    if (p) return p;
    p = mm__calloc(1, sizeof(*p));
    if (!p) return NULL;
    memcpy(p->id, id, MM_NODE_ID_LEN);
    if (mm__idx_insert(&net->peer_idx, p) != 0) {
        mm__free(p);
        return NULL;
    }
    p->next = net->peers;
    net->peers = p;
    return p;
}

static void
rq_free(struct cconn *cc)
{
    while (cc->rq_head) {
        struct rq *r = cc->rq_head;
        cc->rq_head = r->next;
        mm__free(r);
    }
    cc->rq_tail = NULL;
    cc->rq_n = 0;
    cc->rq_bytes = 0;
}

static void
cconn_unref(struct cconn *cc)
{
    if (--cc->refs == 0) {
        rq_free(cc);
        struct istream *i = cc->istreams;
        while (i) {
            struct istream *next = i->next;
            mm__free(i);
            i = next;
        }
        mm__free(cc);
    }
}

static struct istream *
istream_find(struct cconn *cc, int64_t sid, int create)
{
    for (struct istream *i = cc->istreams; i; i = i->next)
        if (i->sid == sid) return i;
    if (!create) return NULL;
    struct istream *i = mm__calloc(1, sizeof(*i));
    if (!i) return NULL;
    i->sid = sid;
    i->next = cc->istreams;
    cc->istreams = i;
    return i;
}

static void
istream_drop(struct cconn *cc, int64_t sid)
{
    struct istream **pp = &cc->istreams;
    while (*pp) {
        if ((*pp)->sid == sid) {
            struct istream *i = *pp;
            *pp = i->next;
            mm__free(i);
            return;
        }
        pp = &(*pp)->next;
    }
}

static struct pend **
pend_slot(struct mm_net *net, uint64_t id)
{
    return &net->pend[mm__hash_u64(id) & (net->npend_buckets - 1)];
}

static struct pend *
pend_take(struct mm_net *net, uint64_t id)
{
    struct pend **pp = pend_slot(net, id);
    while (*pp) {
        struct pend *e = *pp;
        if (e->call_id == id) {
            *pp = e->next;
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

/* Answers a pending call with |status| (and an optional text). */
static void
pend_answer(struct mm_net *net, struct pend *e, int status, mm_msg *reply)
{
    if (!reply) reply = mm__msg_alloc();
    if (reply) mm__call_reply(e->home, e->call, status, reply);
    if (e->st && e->st->pending) e->st->pending--;
    if (e->cc && e->cc->npend) e->cc->npend--;
    cache_put(&net->pend_cache, e);
}

static void
ostreams_free(struct ostream *s)
{
    while (s) {
        struct ostream *next = s->next;
        mm__free(s);
        s = next;
    }
}

/* Sets |cc| draining (see cconn), with |ostreams| (our actor streams on
 * it) moved aside; the sweep closes it. */
static void
cconn_drain(struct mm_net *net, struct cconn *cc, struct ostream *ostreams)
{
    if (cc->peer) cc->peer->dialing = 0;
    cc->peer = NULL;
    cc->draining = 1;
    cc->idle_sweeps = 0;
    cc->drain_until = mm__now_ms() + DRAIN_MS;
    cc->ostreams = ostreams;
    cc->dnext = net->draining;
    net->draining = cc;
}

static void
draining_remove(struct mm_net *net, struct cconn *cc)
{
    for (struct cconn **pp = &net->draining; *pp; pp = &(*pp)->dnext)
        if (*pp == cc) {
            *pp = cc->dnext;
            cc->dnext = NULL;
            return;
        }
}

/* Fails every call pending on the member |p|, or on the connection |cc|
 * (every call when both are NULL). */
static void
pend_fail(struct mm_net *net, struct peer *p, struct cconn *cc, int status)
{
    for (size_t b = 0; b < net->npend_buckets; b++) {
        struct pend **pp = &net->pend[b];
        while (*pp) {
            struct pend *e = *pp;
            if ((!p && !cc) || (p && e->peer == p) || (cc && e->cc == cc)) {
                *pp = e->next;
                e->st = NULL;
                pend_answer(net, e, status, NULL);
            } else {
                pp = &e->next;
            }
        }
    }
}

static void
peer_reject_waiting(struct mm_net *net, struct peer *p, int status)
{
    mm_msg *m = p->wait_head;
    p->wait_head = p->wait_tail = NULL;
    while (m) {
        mm_msg *next = m->next;
        mm__msg_reject(net->node, m, status);
        m = next;
    }
    p->ctrl_len = 0;
}

static void
peer_streams_free(struct peer *p)
{
    ostreams_free(p->streams);
    p->streams = NULL;
}

/* ---- sending ------------------------------------------------------------- */

static struct ostream *
stream_for(struct mm_net *net, struct peer *p, uint64_t actor, int *err)
{
    for (struct ostream *s = p->streams; s; s = s->next)
        if (s->actor == actor) return s;
    int64_t sid;
    int rc = mm__quic_stream_open(p->conn->q, &sid);
    if (rc == UV_EAGAIN) {
        /* Out of stream credit: close idle streams; credit follows. */
        struct ostream **pp = &p->streams;
        while (*pp) {
            struct ostream *s = *pp;
            if (s->pending == 0) {
                *pp = s->next;
                mm__quic_stream_close(p->conn->q, s->sid);
                mm__free(s);
            } else {
                pp = &s->next;
            }
        }
    }
    if (rc) {
        *err = rc;
        return NULL;
    }
    struct ostream *s = mm__calloc(1, sizeof(*s));
    if (!s) {
        mm__quic_stream_close(p->conn->q, sid);
        *err = UV_ENOMEM;
        return NULL;
    }
    s->actor = actor;
    s->sid = sid;
    s->next = p->streams;
    p->streams = s;
    (void)net;
    return s;
}

/* Writes one MSG_REMOTE as an INVOKE.  Returns UV_EAGAIN to keep it queued
 * (no stream credit), 0 when sent or answered. */
static int
send_invoke(struct mm_net *net, struct peer *p, mm_msg *m)
{
    int err = 0;
    struct ostream *st = stream_for(net, p, m->target, &err);
    if (!st) {
        if (err == UV_EAGAIN) return UV_EAGAIN;
        mm__msg_reject(net->node, m, MM_EUNREACHABLE);
        return 0;
    }
    /* The shard's clock, which the deadline was computed with. */
    uint64_t now = mm__cur_shard ? mm__shard_now(mm__cur_shard) : mm__now_ms();
    struct mm_wire_invoke inv;
    memset(&inv, 0, sizeof(inv));
    inv.target_kind = MM_WIRE_TARGET_ACTOR;
    inv.generation = m->rgen;
    inv.actor = m->target;
    inv.type = m->type_name;
    inv.type_len = strlen(m->type_name);
    inv.content = m->content;
    if (m->content == MM_CONTENT_JSON || m->content == MM_CONTENT_RAW) {
        inv.payload = m->data;
        inv.payload_len = m->len;
    }
    if (m->call) {
        if (m->deadline && m->deadline <= now) {
            mm__msg_reject(net->node, m, MM_ETIMEOUT);
            return 0;
        }
        inv.call_id = ++net->next_call_id;
        inv.deadline_ms = m->deadline ? (uint32_t)(m->deadline - now) : 0;
    } else {
        inv.flags = MM_WIRE_F_NO_REPLY;
    }
    struct mm_buf b;
    uint8_t frame[NET_FRAME_STACK]; /* small invocations: no allocation */
    mm__buf_init_on(&b, frame, sizeof(frame));
    int rc = mm__wire_invoke_append(&b, &inv);
    if (rc == 0) rc = mm__quic_send_frame(p->conn->q, st->sid, b.data, b.len);
    mm__buf_release(&b);
    if (rc) {
        /* MM_EOVERLOADED: the peer has not acknowledged MM_CONN_SEND_MAX
         * bytes yet; the caller hears it at once. */
        mm__msg_reject(net->node, m,
                       rc == MM_EINVAL        ? MM_EDECODE
                       : rc == MM_EOVERLOADED ? MM_EOVERLOADED
                                              : MM_EUNREACHABLE);
        return 0;
    }
    st->last_use = now;
    if (m->call) {
        struct pend *e = cache_get(&net->pend_cache, sizeof(*e));
        if (!e) {
            mm__msg_reject(net->node, m, UV_ENOMEM);
            return 0;
        }
        memset(e, 0, sizeof(*e));
        e->call_id = inv.call_id;
        e->call = m->call;
        e->home = m->reply_home;
        e->peer = p;
        e->cc = p->conn;
        e->st = st;
        st->pending++;
        p->conn->npend++;
        struct pend **slot = pend_slot(net, e->call_id);
        e->next = *slot;
        *slot = e;
        m->call = NULL;
    }
    mm_msg_free(m);
    return 0;
}

static int seed_dial_in_flight(void *data, const char *addr);

static void
peer_dial(struct mm_net *net, struct peer *p)
{
    if (p->dialing || p->conn || !p->addr[0] || net->stopped) return;
    if (seed_dial_in_flight(net, p->addr)) {
        /* Our seed dial to that address will bring this peer up: a second
         * dial would only lose a crossing race (and cost a handshake). */
        p->dialing = 1;
        return;
    }
    if (mm__quic_inbound_pending(net->q, p->addr)) {
        /*
         * The peer is dialling us (a node that just joined through us
         * sends its join datagram, then dials): its connection brings it
         * up, and what waits here goes out then.  A dial of ours would
         * cross it and double the handshake work on both sides.  Should
         * that handshake fail, the next send or the sweep dials.
         */
        return;
    }
    struct mm_qconn *q;
    int rc = mm__quic_dial(net->q, p->addr, p->id, &q);
    if (rc) {
        MM_LOG(MM_LOG_INFO, "cluster", "dial %s: %s", p->addr, mm_strerror(rc));
        peer_reject_waiting(net, p, MM_EUNREACHABLE);
        return;
    }
    struct cconn *cc = mm__calloc(1, sizeof(*cc));
    if (!cc) {
        mm__quic_conn_close(q, MM_ECLOSED);
        return;
    }
    cc->net = net;
    cc->q = q;
    cc->peer = p;
    cc->refs = 1;
    mm__quic_conn_set_data(q, cc);
    p->dialing = 1;
}

static void
peer_flush(struct mm_net *net, struct peer *p)
{
    if (!p->conn) return;
    if (p->ctrl_len) {
        int64_t sid = mm__quic_control_stream(p->conn->q);
        size_t off = 0;
        while (off + 5 <= p->ctrl_len) {
            uint32_t flen = mm__get_u32(p->ctrl_q + off);
            /* No send room: the rest waits for on_send_room. */
            if (mm__quic_send_frame(p->conn->q, sid, p->ctrl_q + off,
                                    (size_t)flen + 4) == MM_EOVERLOADED)
                break;
            off += (size_t)flen + 4;
        }
        memmove(p->ctrl_q, p->ctrl_q + off, p->ctrl_len - off);
        p->ctrl_len -= off;
        if (p->ctrl_len) return;
    }
    while (p->wait_head) {
        mm_msg *m = p->wait_head;
        p->wait_head = m->next;
        if (!p->wait_head) p->wait_tail = NULL;
        m->next = NULL;
        if (send_invoke(net, p, m) == UV_EAGAIN) {
            m->next = p->wait_head; /* keep order: back to the front */
            p->wait_head = m;
            if (!p->wait_tail) p->wait_tail = m;
            break;
        }
    }
}

void
mm__net_send(struct mm_net *net, mm_msg *m)
{
    if (net->stopped) {
        mm__msg_reject(net->node, m, MM_ECLOSED);
        return;
    }
    struct peer *p = peer_find(net, m->rnode);
    if (!p || (!p->conn && !p->addr[0])) {
        /*
         * A node the registry lists before membership has told us its
         * address (the registry can travel faster than gossip, and
         * nothing else connects the two nodes): the message waits for
         * the address, about NOADDR_WAIT_MS (then `unreachable`, from
         * the sweep).
         */
        if (!p && net->noaddr_peers < NOADDR_PEERS_MAX &&
            memcmp(m->rnode, net->node->id, MM_NODE_ID_LEN) != 0) {
            p = peer_get(net, m->rnode);
            if (p) {
                p->noaddr = 1;
                net->noaddr_peers++;
            }
        }
        if (!p) {
            mm__msg_reject(net->node, m, MM_EUNREACHABLE);
            return;
        }
        if (!p->wait_head) p->noaddr_since = mm__now_ms();
        m->next = NULL;
        if (p->wait_tail)
            p->wait_tail->next = m;
        else
            p->wait_head = m;
        p->wait_tail = m;
        return;
    }
    if (p->gen && m->rgen != p->gen && p->conn) {
        /* An endpoint of another generation of that node: gone. */
        mm__msg_reject(net->node, m, MM_ENOTFOUND);
        return;
    }
    m->next = NULL;
    if (p->conn && !p->wait_head && send_invoke(net, p, m) == 0) return;
    if (p->wait_tail)
        p->wait_tail->next = m;
    else
        p->wait_head = m;
    p->wait_tail = m;
    peer_dial(net, p);
}

int
mm__net_send_ctrl(struct mm_net *net, const uint8_t peer[MM_NODE_ID_LEN],
                  const uint8_t *frame, size_t len)
{
    if (net->stopped || !net->q) return MM_ECLOSED;
    struct peer *p = peer_find(net, peer);
    if (!p || (!p->conn && !p->addr[0])) return MM_EUNREACHABLE;
    if (p->conn) {
        return mm__quic_send_frame(
            p->conn->q, mm__quic_control_stream(p->conn->q), frame, len);
    }
    if (p->ctrl_len + len > p->ctrl_cap) {
        size_t cap = (p->ctrl_len + len) * 2;
        uint8_t *q = mm__realloc(p->ctrl_q, cap);
        if (!q) return UV_ENOMEM;
        p->ctrl_q = q;
        p->ctrl_cap = cap;
    }
    memcpy(p->ctrl_q + p->ctrl_len, frame, len);
    p->ctrl_len += len;
    peer_dial(net, p);
    return 0;
}

int
mm__net_reply(struct mm_qconn *conn, int64_t sid, const uint8_t *frame,
              size_t len)
{
    return mm__quic_send_frame(conn, sid, frame, len);
}

/* ---- serving incoming calls ---------------------------------------------- */

/* The name of |cc|'s peer, for logs. */
static const char *
cconn_name(const struct cconn *cc)
{
    if (cc->peer && cc->peer->name[0]) return cc->peer->name;
    return cc->role == MM_WIRE_ROLE_CLIENT ? "a client" : "a peer";
}

/* Queues |frame| behind the responses waiting for send room; 0, or
 * MM_EOVERLOADED when the queue is full: then the connection is closed
 * with overloaded (the peer logs the reason and fails its calls). */
static int
rq_push(struct cconn *cc, int64_t sid, const uint8_t *frame, size_t len)
{
    if (cc->rq_n >= MM_CONN_RESP_QUEUE ||
        (cc->rq_n > 0 && cc->rq_bytes + len > MM_CONN_RESP_QUEUE_BYTES)) {
        MM_LOG(MM_LOG_WARN, "cluster",
               "%s acknowledges nothing: %u responses (%zu bytes) wait; "
               "closing the connection",
               cconn_name(cc), cc->rq_n, cc->rq_bytes);
        mm__quic_conn_close(cc->q, MM_EOVERLOADED);
        return MM_EOVERLOADED;
    }
    struct rq *r = mm__malloc(sizeof(*r) + len);
    if (!r) return UV_ENOMEM;
    r->next = NULL;
    r->sid = sid;
    r->fin = 0;
    r->len = len;
    memcpy(r->data, frame, len);
    if (cc->rq_tail)
        cc->rq_tail->next = r;
    else
        cc->rq_head = r;
    cc->rq_tail = r;
    cc->rq_n++;
    cc->rq_bytes += len;
    return 0;
}

/* Sends the responses waiting for send room, in order, while there is. */
static void
rq_flush(struct cconn *cc)
{
    while (cc->rq_head && cc->q) {
        struct rq *r = cc->rq_head;
        int rc = mm__quic_send_frame(cc->q, r->sid, r->data, r->len);
        if (rc == MM_EOVERLOADED) return;
        if (rc == 0 && r->fin) mm__quic_stream_close(cc->q, r->sid);
        cc->rq_head = r->next;
        if (!cc->rq_head) cc->rq_tail = NULL;
        cc->rq_n--;
        cc->rq_bytes -= r->len;
        mm__free(r);
    }
}

/* Sends a RESPONSE frame, or queues it while the connection has no send
 * room.  0 sent, 1 queued, or an error. */
static int
resp_send(struct cconn *cc, int64_t sid, const uint8_t *frame, size_t len)
{
    int rc = cc->rq_head ? MM_EOVERLOADED /* in order behind those */
                         : mm__quic_send_frame(cc->q, sid, frame, len);
    if (rc != MM_EOVERLOADED) return rc;
    rc = rq_push(cc, sid, frame, len);
    return rc ? rc : 1;
}

static int respond_text(struct cconn *cc, int64_t sid, uint64_t call_id,
                        int status, const char *text);

/* Answers |call_id| on |sid|: 0 sent, 1 queued (resp_send), or an error. */
static int
respond(struct cconn *cc, int64_t sid, uint64_t call_id, int status,
        int content, const void *body, size_t len)
{
    if (!cc->q || !call_id) return 0;
    struct mm_wire_response r;
    memset(&r, 0, sizeof(r));
    r.call_id = call_id;
    r.status = mm_err_to_wire(status);
    r.content = (uint8_t)content;
    r.body = body;
    r.body_len = len;
    struct mm_buf b;
    uint8_t frame[NET_FRAME_STACK]; /* small responses: no allocation */
    mm__buf_init_on(&b, frame, sizeof(frame));
    int rc = mm__wire_response_append(&b, &r);
    if (rc == 0) rc = resp_send(cc, sid, b.data, b.len);
    mm__buf_release(&b);
    if (rc == MM_EINVAL && len > 0) /* above max_frame: say so instead */
        return respond_text(cc, sid, call_id, MM_EDECODE,
                            "the reply is larger than max_frame");
    return rc;
}

static int
respond_text(struct cconn *cc, int64_t sid, uint64_t call_id, int status,
             const char *text)
{
    cJSON *s = cJSON_CreateString(text);
    char *js = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    int rc = respond(cc, sid, call_id, status,
                     js ? MM_CONTENT_JSON : MM_CONTENT_NONE, js,
                     js ? strlen(js) : 0);
    cJSON_free(js);
    return rc;
}

static void
inbound_reply_cb(void *data, int status, mm_msg *reply)
{
    struct inbound *in = data;
    struct cconn *cc = in->cc;
    struct mm_net *net = cc->net;
    /* The message is handled (or rejected): its stream credit comes back. */
    cc->in_held -= in->held;
    if (cc->q && in->held) mm__quic_credit_return(cc->q, in->sid, in->held);
    if (cc->q && !net->stopped) {
        int rc;
        if (reply && reply->content == MM_CONTENT_PTR) {
            rc = respond_text(cc, in->sid, in->call_id, MM_ENOT_SERIALIZABLE,
                              "the reply has no wire form");
        } else if (reply && (reply->content == MM_CONTENT_JSON ||
                             reply->content == MM_CONTENT_RAW)) {
            rc = respond(cc, in->sid, in->call_id, status, reply->content,
                         reply->data, reply->len);
        } else {
            rc = respond(cc, in->sid, in->call_id, status, MM_CONTENT_NONE,
                         NULL, 0);
        }
        struct istream *is = istream_find(cc, in->sid, 0);
        if (cc->q && is && is->pending && --is->pending == 0 && is->fin) {
            istream_drop(cc, in->sid);
            if (rc == 1)
                cc->rq_tail->fin = 1; /* closed once the response is out */
            else
                mm__quic_stream_close(cc->q, in->sid);
        }
    }
    cconn_unref(cc);
    cache_put(&net->inbound_cache, in);
}

struct shared_pick {
    mm_endpoint ep;
    int found;
};

static int
shared_pick_cb(void *data, const struct mm_registry_entry *e)
{
    struct shared_pick *p = data;
    if (e->winner && e->visibility != MM_VIS_PRIVATE) {
        p->ep = e->ep;
        p->found = 1;
    }
    return 1; /* the winner comes first: nothing after it matters */
}

/* |label| as another node or a client may see it: the view's winner,
 * never a private registration (private never leaves the node). */
static int
lookup_shared(mm_node *n, const char *label, mm_endpoint *ep)
{
    struct shared_pick p = {.found = 0};
    mm__registry_claimants(n, label, shared_pick_cb, &p);
    if (!p.found) return MM_ENOTFOUND;
    *ep = p.ep;
    return 0;
}

static void
serve_invoke(struct mm_net *net, struct cconn *cc, int64_t sid,
             const uint8_t *body, size_t len)
{
    mm_node *n = net->node;
    struct mm_wire_invoke inv;
    if (mm__wire_invoke_decode(&inv, body, len) != 0) {
        mm__quic_stream_reset(cc->q, sid, MM_EDECODE);
        return;
    }
    if (!(inv.flags & MM_WIRE_F_NO_REPLY) && cc->in_held > 0 &&
        cc->in_held + MM_WIRE_HDR_LEN + len > MM_CONN_RECV_MAX) {
        /* The peer's calls not yet handled here hold enough. */
        respond_text(cc, sid, inv.call_id, MM_EOVERLOADED,
                     "too many call bytes in flight on this connection");
        return;
    }
    if (cc->key == MM_KEY_READONLY) {
        net->invokes_refused++;
        respond_text(cc, sid, inv.call_id, MM_EUNAUTHORIZED,
                     "a read-only client key cannot send");
        return;
    }
    mm_endpoint ep;
    if (inv.target_kind == MM_WIRE_TARGET_ACTOR) {
        memcpy(ep.node, n->id, MM_NODE_ID_LEN);
        ep.generation = inv.generation;
        ep.actor = inv.actor;
        if (inv.generation != n->generation) {
            respond_text(cc, sid, inv.call_id, MM_ENOTFOUND,
                         "no such actor (stale generation)");
            return;
        }
    } else {
        char label[1025];
        if (inv.label_len >= sizeof(label)) {
            respond_text(cc, sid, inv.call_id, MM_EDECODE, "label too long");
            return;
        }
        memcpy(label, inv.label, inv.label_len);
        label[inv.label_len] = '\0';
        if (lookup_shared(n, label, &ep) != 0) {
            char text[1100];
            snprintf(text, sizeof(text), "no actor with label '%s'", label);
            respond_text(cc, sid, inv.call_id, MM_ENOTFOUND, text);
            return;
        }
    }
    char type[256];
    if (inv.type_len >= sizeof(type)) {
        respond_text(cc, sid, inv.call_id, MM_EDECODE, "message type too long");
        return;
    }
    memcpy(type, inv.type, inv.type_len);
    type[inv.type_len] = '\0';
    mm_msg *m;
    if (inv.content == MM_CONTENT_JSON)
        m = mm_msg_new_json(type, (const char *)inv.payload, inv.payload_len);
    else if (inv.content == MM_CONTENT_RAW)
        m = mm_msg_new_raw(type, inv.payload, inv.payload_len);
    else
        m = mm_msg_new(type);
    if (!m) {
        respond_text(cc, sid, inv.call_id, UV_ENOMEM, "out of memory");
        return;
    }
    /* Checked on the actor's shard, not here: a typed handler's decoder
     * checks it as it reads (no second pass), and the network loop does
     * no per-byte work for a payload. */
    if (inv.content == MM_CONTENT_JSON) m->flags |= MSG_F_JSON_UNCHECKED;
    if (inv.flags & MM_WIRE_F_NO_REPLY) {
        if (mm_tell(n, &ep, m) != 0) mm_msg_free(m);
        return;
    }
    struct inbound *in = cache_get(&net->inbound_cache, sizeof(*in));
    if (!in) {
        mm_msg_free(m);
        respond_text(cc, sid, inv.call_id, UV_ENOMEM, "out of memory");
        return;
    }
    in->cc = cc;
    in->sid = sid;
    in->call_id = inv.call_id;
    /* A deadline beyond the node's maximum (or 2^32-1 ms) is cut to it:
     * nothing a peer sends is kept longer. */
    uint32_t tmo = MM_MIN(inv.deadline_ms, (uint32_t)MM_MAX_CALL_MS);
    if (tmo) mm_msg_set_timeout(m, tmo);
    struct istream *is = istream_find(cc, sid, 1);
    if (is) is->pending++;
    cc->refs++;
    /* The INVOKE's stream credit stays held until its reply callback:
     * a slow actor stops its sender at the stream window. */
    in->held = mm__quic_frame_hold(cc->q, sid);
    cc->in_held += in->held;
    m->gone = &cc->gone;
    int rc = mm_send(n, &ep, m, inbound_reply_cb, in);
    if (rc) {
        mm_msg_free(m);
        cc->refs--;
        cc->in_held -= in->held;
        mm__quic_credit_return(cc->q, sid, in->held);
        cache_put(&net->inbound_cache, in);
        if (is) is->pending--;
        char text[320];
        if (rc == MM_EUNKNOWN_MESSAGE)
            snprintf(text, sizeof(text), "unknown message '%s'", type);
        else if (rc == MM_ENOTFOUND)
            snprintf(text, sizeof(text), "no such actor");
        else
            snprintf(text, sizeof(text), "%s", mm_strerror(rc));
        respond_text(cc, sid, inv.call_id, rc, text);
    }
}

static void
take_response(struct mm_net *net, struct cconn *cc, const uint8_t *body,
              size_t len)
{
    struct mm_wire_response r;
    if (mm__wire_response_decode(&r, body, len) != 0) return;
    struct pend *e = pend_take(net, r.call_id);
    if (!e) return; /* late or unknown: dropped */
    if (e->cc != cc) {
        /* Not the connection it was sent on: put it back, ignore. */
        struct pend **slot = pend_slot(net, e->call_id);
        e->next = *slot;
        *slot = e;
        return;
    }
    mm_msg *reply;
    if (r.content == MM_CONTENT_JSON)
        reply = mm_msg_new_json(NULL, (const char *)r.body, r.body_len);
    else if (r.content == MM_CONTENT_RAW)
        reply = mm_msg_new_raw(NULL, r.body, r.body_len);
    else
        reply = mm__msg_alloc();
    pend_answer(net, e, mm_err_from_wire(r.status), reply);
}

/* ---- transport callbacks ------------------------------------------------- */

static int
seed_dial_in_flight(void *data, const char *addr)
{
    struct mm_net *net = data;
    for (size_t i = 0; i < net->nseed_dials; i++)
        if (net->seed_dials[i] &&
            strcmp(net->seed_dials[i]->seed_addr, addr) == 0)
            return 1;
    return 0;
}

static void
seed_dial_done(struct mm_net *net, struct cconn *cc)
{
    for (size_t i = 0; i < net->nseed_dials; i++)
        if (net->seed_dials[i] == cc) net->seed_dials[i] = NULL;
}

static void
on_conn_up(void *data, struct mm_qconn *q, const uint8_t peer_id[16],
           uint64_t peer_gen, int role, const char *peer_name,
           const char *peer_addr)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (!cc) { /* accepted */
        cc = mm__calloc(1, sizeof(*cc));
        if (!cc) {
            mm__quic_conn_close(q, MM_ECLOSED);
            return;
        }
        cc->net = net;
        cc->q = q;
        cc->refs = 1;
        mm__quic_conn_set_data(q, cc);
    }
    cc->up = 1;
    cc->role = role;
    cc->key = mm__quic_conn_key_kind(q);
    memcpy(cc->id, peer_id, MM_NODE_ID_LEN);
    if (cc->seed_addr[0]) seed_dial_done(net, cc);
    if (role == MM_WIRE_ROLE_MEMBER && mm__quic_conn_superseded(q)) {
        /* It lost a crossing to a connection that is up already: serve
         * what the peer sends on it, and close it once drained. */
        cconn_drain(net, cc, NULL);
        return;
    }
    if (role == MM_WIRE_ROLE_MEMBER) {
        struct peer *p = cc->peer;
        if (!p || memcmp(p->id, peer_id, MM_NODE_ID_LEN) != 0) {
            /* A seed dialled by address, or an accepted connection. */
            if (p) p->dialing = 0;
            p = peer_get(net, peer_id);
        }
        if (p) {
            if (p->conn && p->conn != cc) {
                /*
                 * Same generation: a crossing dial won over the old one
                 * (the transport keeps one connection per pair).  New
                 * calls go on |cc|; the old one keeps its streams, our
                 * calls on it and the calls we serve on it until they are
                 * done.  A new generation is handled below: the transport
                 * closes the stale connection.
                 */
                p->conn->peer = NULL;
                if (!p->gen || p->gen == peer_gen) {
                    cconn_drain(net, p->conn, p->streams);
                    p->streams = NULL;
                }
            }
            if (p->gen && p->gen != peer_gen) {
                /* A new process of that node: its old streams are void. */
                pend_fail(net, p, NULL, MM_EUNREACHABLE);
                peer_streams_free(p);
            }
            peer_conn_set(net, p, cc);
            p->dialing = 0;
            p->gen = peer_gen;
            cc->peer = p;
            if (peer_addr && *peer_addr)
                snprintf(p->addr, sizeof(p->addr), "%s", peer_addr);
            if (peer_name) snprintf(p->name, sizeof(p->name), "%s", peer_name);
            MM_LOG(MM_LOG_INFO, "cluster", "connected to %s (%s)", p->name,
                   p->addr);
            peer_flush(net, p);
        }
    }
    cc->reported = 1;
    if (net->conn_fn)
        net->conn_fn(net->conn_data, q, peer_id, peer_gen, role, 1);
}

static void
on_conn_down(void *data, struct mm_qconn *q, int err)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (!cc) return;
    mm__quic_conn_set_data(q, NULL);
    net->trim_wanted = 1; /* its buffers go back to the heap */
    if (cc->draining) {
        /* Whatever it still carried is lost. */
        draining_remove(net, cc);
        pend_fail(net, NULL, cc, MM_EUNREACHABLE);
        ostreams_free(cc->ostreams);
        cc->ostreams = NULL;
    }
    if (cc->seed_addr[0] && !cc->up) {
        seed_dial_done(net, cc);
        for (struct peer *w = net->peers; w; w = w->next) {
            if (w->dialing && !w->conn && strcmp(w->addr, cc->seed_addr) == 0) {
                w->dialing = 0;
                peer_reject_waiting(net, w,
                                    err == MM_EUNAUTHORIZED ? MM_EUNAUTHORIZED
                                                            : MM_EUNREACHABLE);
            }
        }
    }
    struct peer *p = cc->peer;
    if (p && (p->conn == cc || (p->dialing && !p->conn))) {
        int was_dialing = !cc->up;
        peer_conn_set(net, p, NULL);
        p->dialing = 0;
        pend_fail(net, NULL, cc,
                  err == MM_EUNAUTHORIZED ? MM_EUNAUTHORIZED : MM_EUNREACHABLE);
        peer_streams_free(p);
        if (was_dialing || err == MM_EUNAUTHORIZED || err == MM_EUNREACHABLE)
            peer_reject_waiting(net, p,
                                err == MM_EUNAUTHORIZED ? MM_EUNAUTHORIZED
                                                        : MM_EUNREACHABLE);
        else if (p->wait_head || p->ctrl_len)
            peer_dial(net, p); /* closed while idle: dial again for these */
        if (err != MM_ECLOSED && err != MM_EEXISTS)
            MM_LOG(MM_LOG_INFO, "cluster", "connection to %s lost: %s",
                   p->name[0] ? p->name : p->addr, mm_strerror(err));
    }
    if (cc->up && net->gone_fn) net->gone_fn(net->gone_data, q);
    if (cc->reported && net->conn_fn)
        net->conn_fn(net->conn_data, q, cc->id, 0, cc->role, 0);
    rq_free(cc); /* nowhere to go */
    atomic_store_explicit(&cc->gone, 1, memory_order_relaxed);
    cc->q = NULL;
    cc->peer = NULL;
    cconn_unref(cc);
}

static void
on_frame(void *data, struct mm_qconn *q, int64_t sid, uint8_t type,
         const uint8_t *body, size_t len)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (!cc || net->stopped) return;
    switch (type) {
    case MM_WIRE_INVOKE:
        serve_invoke(net, cc, sid, body, len);
        return;
    case MM_WIRE_RESPONSE:
        take_response(net, cc, body, len);
        return;
    default:
        break;
    }
    if (type >= MM_WIRE_SYNC_FIRST && type <= MM_WIRE_MEMBER_LAST &&
        cc->role != MM_WIRE_ROLE_MEMBER) {
        /* Registry and membership sync are between members only (the
         * role was proved with the cluster key): a client sending one is
         * not one we talk to. */
        net->member_frames_refused++;
        MM_LOG(MM_LOG_WARN, "cluster",
               "%s sent a member frame (type 0x%02x): closing its "
               "connection",
               cconn_name(cc), (unsigned)type);
        mm__quic_conn_close(q, MM_EUNAUTHORIZED);
        return;
    }
    struct frame_handler *h = &net->handlers[type];
    if (h->fn) h->fn(h->data, q, cc->id, cc->role, sid, type, body, len);
}

/* Acknowledgements freed send room on |q| after a refusal: the responses
 * and control frames waiting for it go first, then our waiting calls. */
static void
on_send_room(void *data, struct mm_qconn *q)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (!cc) return;
    rq_flush(cc);
    if (cc->peer && cc->peer->conn == cc && !cc->draining && !cc->rq_head)
        peer_flush(net, cc->peer);
}

static void
on_stream_credit(void *data, struct mm_qconn *q)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (cc && cc->peer && !cc->draining) peer_flush(net, cc->peer);
}

/* Hot waits of the transport (mm_quic_ops.park): shard 0 runs it. */
static int
on_park(void *data)
{
    struct mm_net *net = data;
    return mm__shard_park(&net->node->shards[0]);
}

static int
on_unpark(void *data)
{
    struct mm_net *net = data;
    return mm__shard_unpark(&net->node->shards[0]);
}

static void
on_run(void *data, uint64_t now_ns)
{
    struct mm_net *net = data;
    mm__shard_run_ready(&net->node->shards[0], now_ns);
}

static void
on_stream_fin(void *data, struct mm_qconn *q, int64_t sid)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    (void)net;
    if (!cc) return;
    struct istream *is = istream_find(cc, sid, 0);
    if (is && is->pending) {
        is->fin = 1; /* closed after the last RESPONSE */
        return;
    }
    if (is) istream_drop(cc, sid);
    if (sid != mm__quic_control_stream(q)) mm__quic_stream_close(q, sid);
}

static void
on_stream_closed(void *data, struct mm_qconn *q, int64_t sid, int err)
{
    struct mm_net *net = data;
    struct cconn *cc = mm__quic_conn_get_data(q);
    if (!cc) return;
    istream_drop(cc, sid);
    struct ostream **pp, *st = NULL;
    if (cc->draining)
        pp = &cc->ostreams;
    else if (cc->peer)
        pp = &cc->peer->streams;
    else
        return;
    /* One of our actor streams ended: a reset fails only its calls. */
    while (*pp) {
        if ((*pp)->sid == sid) {
            st = *pp;
            *pp = st->next;
            break;
        }
        pp = &(*pp)->next;
    }
    if (!st) return;
    for (size_t b = 0; b < net->npend_buckets; b++) {
        struct pend **ep = &net->pend[b];
        while (*ep) {
            struct pend *e = *ep;
            if (e->st == st) {
                *ep = e->next;
                e->st = NULL;
                pend_answer(net, e, err ? err : MM_ECLOSED, NULL);
            } else {
                ep = &e->next;
            }
        }
    }
    mm__free(st);
}

static void
on_datagram(void *data, const struct sockaddr *from, const uint8_t *buf,
            size_t len)
{
    struct mm_net *net = data;
    if (net->dgram_fn && !net->stopped)
        net->dgram_fn(net->dgram_data, from, buf, len);
}

/* Closes actor streams that carried nothing for a while. */
static int
istreams_busy(const struct cconn *cc)
{
    for (const struct istream *i = cc->istreams; i; i = i->next)
        if (i->pending) return 1;
    return 0;
}

/* 1 when |p|'s connection carries nothing: no call of ours pending or
 * waiting, no call being served, no actor stream in use, no control frame
 * waiting, nothing unacknowledged. */
static int
peer_conn_idle(const struct peer *p)
{
    const struct cconn *cc = p->conn;
    if (!cc || !cc->up || !cc->q || !mm__quic_conn_is_up(cc->q) ||
        cc->draining || cc->npend || cc->refs > 1 || cc->rq_n || p->wait_head ||
        p->ctrl_len || istreams_busy(cc) || mm__quic_conn_unacked(cc->q))
        return 0;
    for (const struct ostream *s = p->streams; s; s = s->next)
        if (s->pending) return 0;
    return 1;
}

/*
 * Bounds the idle member connections (MM_CONNS_IDLE_MAX): past the bound
 * the least recently used are closed.  Those that carry calls stay; a
 * closed one is dialled again by the next send to that peer.
 */
static void
idle_sweep(struct mm_net *net)
{
    size_t idle = 0;
    for (struct peer *p = net->up; p; p = p->up_next)
        idle += peer_conn_idle(p);
    while (idle > net->idle_max) {
        struct peer *lru = NULL;
        for (struct peer *p = net->up; p; p = p->up_next)
            if (peer_conn_idle(p) &&
                (!lru || mm__quic_conn_last_use(p->conn->q) <
                             mm__quic_conn_last_use(lru->conn->q)))
                lru = p;
        if (!lru) break;
        MM_LOG(MM_LOG_DEBUG, "cluster", "closing idle connection to %s",
               lru->name[0] ? lru->name : lru->addr);
        net->idle_evicted++;
        struct mm_qconn *q = lru->conn->q;
        /* Its ostreams carry nothing: dropped with it (on_conn_down). */
        mm__quic_conn_close(q, MM_ECLOSED); /* no longer up (is_up) */
        idle--;
    }
}

/* Closes superseded connections that are done (see DRAIN_MS). */
static void
drain_sweep(struct mm_net *net, uint64_t now)
{
    for (struct cconn *d = net->draining, *next; d; d = next) {
        next = d->dnext;
        if (d->npend == 0 && !istreams_busy(d))
            d->idle_sweeps++;
        else
            d->idle_sweeps = 0;
        if (d->q && (d->idle_sweeps >= 2 || now >= d->drain_until))
            mm__quic_conn_close(d->q, MM_EEXISTS);
    }
}

/*
 * Freed memory in the middle of the heap stays resident (glibc returns
 * only the top of it by itself): after a burst of connections and
 * push-pull states a node kept a megabyte more than it used.  So once
 * something large was freed, the free pages go back, at most once per
 * MM_HEAP_TRIM_GAP_MS; a node at rest trims nothing.
 */
static void
heap_trim(struct mm_net *net, uint64_t now)
{
    if (!net->trim_wanted ||
        (net->heap_trims && now - net->trim_last < MM_HEAP_TRIM_GAP_MS))
        return;
    net->trim_wanted = 0;
    net->trim_last = now;
    net->heap_trims++;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void
mm__net_trim_soon(struct mm_net *net)
{
    net->trim_wanted = 1;
}

uint64_t
mm__net_heap_trims(const struct mm_net *net)
{
    return net->heap_trims;
}

static void
sweep_cb(struct mm_tmr *t)
{
    struct mm_net *net = mm__container_of(t, struct mm_net, sweep);
    uint64_t now = mm__now_ms();
    mm__tq_start_in(net_tq(net), &net->sweep, SWEEP_MS);
    drain_sweep(net, now);
    idle_sweep(net);
    heap_trim(net, now);
    for (struct peer **link = &net->peers, *p; (p = *link) != NULL;) {
        if (p->noaddr && (p->conn || p->addr[0] || p->dialing)) {
            p->noaddr = 0; /* its address came: an ordinary peer */
            net->noaddr_peers--;
        }
        if (!p->conn && !p->addr[0]) {
            /* Calls for a node whose address never came. */
            if (p->wait_head && now - p->noaddr_since >= NOADDR_WAIT_MS)
                peer_reject_waiting(net, p, MM_EUNREACHABLE);
            if (p->noaddr && !p->wait_head) {
                *link = p->next; /* made by those calls: gone with them */
                mm__idx_remove(&net->peer_idx, p);
                net->noaddr_peers--;
                mm__free(p->ctrl_q);
                mm__free(p);
                continue;
            }
            link = &p->next;
            continue;
        }
        link = &p->next;
        if (!p->conn) {
            /* Left waiting for an inbound handshake that never finished. */
            if (!p->dialing && (p->wait_head || p->ctrl_len)) peer_dial(net, p);
            continue;
        }
        struct ostream **pp = &p->streams;
        while (*pp) {
            struct ostream *s = *pp;
            if (s->pending == 0 && now - s->last_use > STREAM_IDLE_MS) {
                *pp = s->next;
                mm__quic_stream_close(p->conn->q, s->sid);
                mm__free(s);
            } else {
                pp = &s->next;
            }
        }
    }
}

/* ---- hooks --------------------------------------------------------------- */

void
mm__net_on_frame(struct mm_net *net, uint8_t type, mm_net_frame_fn fn,
                 void *data)
{
    net->handlers[type].fn = fn;
    net->handlers[type].data = data;
}

void
mm__net_on_datagram(struct mm_net *net, mm_net_dgram_fn fn, void *data)
{
    net->dgram_fn = fn;
    net->dgram_data = data;
}

void
mm__net_foreach_conn(struct mm_net *net,
                     int (*cb)(void *data, const uint8_t id[MM_NODE_ID_LEN],
                               struct mm_qconn *conn),
                     void *data)
{
    for (struct peer *p = net->up, *nx; p; p = nx) {
        nx = p->up_next;
        if (p->conn->q && p->conn->up && cb(data, p->id, p->conn->q)) return;
    }
}

int64_t
mm__net_control_stream(struct mm_qconn *conn)
{
    return mm__quic_control_stream(conn);
}

void
mm__net_on_conn(struct mm_net *net, mm_net_conn_fn fn, void *data)
{
    net->conn_fn = fn;
    net->conn_data = data;
}

void
mm__net_peer_seen(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN],
                  uint64_t gen, const char *addr, const char *name)
{
    if (memcmp(id, net->node->id, MM_NODE_ID_LEN) == 0) return;
    struct peer *p = peer_get(net, id);
    if (!p) return;
    if (gen > p->gen && p->gen && p->conn) {
        /* A newer generation: the old connection is stale. */
        mm__quic_conn_close(p->conn->q, MM_ECLOSED);
    }
    if (gen) p->gen = gen;
    if (addr && *addr) snprintf(p->addr, sizeof(p->addr), "%s", addr);
    if (name && *name) snprintf(p->name, sizeof(p->name), "%s", name);
    /* Calls that waited for its address go now. */
    if (!p->conn && p->addr[0] && (p->wait_head || p->ctrl_len))
        peer_dial(net, p);
}

void
mm__net_peer_down(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN], int err)
{
    struct peer *p = peer_find(net, id);
    if (!p) return;
    pend_fail(net, p, NULL, err);
    peer_reject_waiting(net, p, err);
    if (p->conn && p->conn->q) mm__quic_conn_close(p->conn->q, MM_ECLOSED);
    for (struct cconn *d = net->draining, *next; d; d = next) {
        next = d->dnext;
        if (d->q && memcmp(d->id, id, MM_NODE_ID_LEN) == 0)
            mm__quic_conn_close(d->q, MM_ECLOSED);
    }
}

/* ---- lifecycle ----------------------------------------------------------- */

int
mm__net_new(struct mm_net **out, const struct mm_net_config *cfg)
{
    mm_node *n = cfg->node;
    struct mm_net *net = mm__calloc(1, sizeof(*net));
    if (!net) return UV_ENOMEM;
    net->node = n;
    net->sweep.fn = sweep_cb;
    net->idle_max = MM_CONNS_IDLE_MAX;
    mm__idx_init(&net->peer_idx, offsetof(struct peer, id), mm__rand64());
    int rc = UV_ENOMEM;
    net->npend_buckets = 1024;
    net->pend = mm__calloc(net->npend_buckets, sizeof(*net->pend));
    if (!net->pend) goto fail;
    if (cfg->nseeds) {
        net->seeds = mm__calloc(cfg->nseeds, sizeof(char *));
        if (!net->seeds) goto fail;
        for (size_t i = 0; i < cfg->nseeds; i++) {
            if (!(net->seeds[i] = mm__strdup(cfg->seeds[i]))) goto fail;
            net->nseeds++;
        }
    }
    struct mm_quic_config qc;
    mm__quic_config_init(&qc);
    qc.name = n->name;
    qc.advertise = cfg->advertise;
    qc.role = MM_WIRE_ROLE_MEMBER;
    qc.max_frame = cfg->max_frame;
    qc.conns_max = cfg->max_connections; /* 0: MM_CONNS_INBOUND_MAX */
    qc.tq = net_tq(net);
    struct mm_quic_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.data = net;
    ops.conn_up = on_conn_up;
    ops.conn_down = on_conn_down;
    ops.frame = on_frame;
    ops.datagram = on_datagram;
    ops.stream_credit = on_stream_credit;
    ops.send_room = on_send_room;
    ops.stream_fin = on_stream_fin;
    ops.stream_closed = on_stream_closed;
    ops.park = on_park;
    ops.unpark = on_unpark;
    ops.run = on_run;
    rc = mm__quic_new(&net->q, &n->shards[0].loop, cfg->id, cfg->kr, &qc, &ops);
    if (rc) goto fail;
    rc = mm__quic_listen(net->q, cfg->listen);
    if (rc) {
        MM_LOG(MM_LOG_ERR, "cluster", "cannot listen on %s: %s", cfg->listen,
               mm_strerror(rc));
        goto fail;
    }
    *out = net;
    return 0;
fail:
    mm__net_close_now(net);
    mm__net_free(net);
    return rc;
}

void
mm__net_start(struct mm_net *net)
{
    net->seed_dials =
        mm__calloc(net->nseeds ? net->nseeds : 1, sizeof(*net->seed_dials));
    net->nseed_dials = net->seed_dials ? net->nseeds : 0;
    mm__tq_start_in(net_tq(net), &net->sweep, SWEEP_MS);
    /*
     * Seed dials first: their Initials reach the seed ahead of our join
     * datagram, so when the seed learns of us it finds our handshake
     * under way and waits for it instead of dialling back (a crossing
     * dial: two handshakes on each side for one connection).
     */
    for (size_t i = 0; i < net->nseeds; i++) {
        struct mm_qconn *q;
        int rc = net->seed_dials
                     ? mm__quic_dial(net->q, net->seeds[i], NULL, &q)
                     : UV_ENOMEM;
        if (rc) {
            MM_LOG(MM_LOG_WARN, "cluster", "seed %s: %s", net->seeds[i],
                   mm_strerror(rc));
            continue;
        }
        struct cconn *cc = mm__calloc(1, sizeof(*cc));
        if (!cc) {
            mm__quic_conn_close(q, MM_ECLOSED);
            continue;
        }
        cc->net = net;
        cc->q = q;
        cc->refs = 1;
        snprintf(cc->seed_addr, sizeof(cc->seed_addr), "%s", net->seeds[i]);
        mm__quic_conn_set_data(q, cc);
        net->seed_dials[i] = cc;
    }
}

void
mm__net_stop(struct mm_net *net)
{
    net->stopped = 1;
    pend_fail(net, NULL, NULL, MM_ECLOSED);
    for (struct peer *p = net->peers; p; p = p->next)
        peer_reject_waiting(net, p, MM_ECLOSED);
}

static void
quic_closed_cb(void *data)
{
    if (data) *(int *)data = 1;
}

void
mm__net_close(struct mm_net *net)
{
    mm__tq_stop(net_tq(net), &net->sweep);
    if (net->q) {
        mm__quic_close(net->q, quic_closed_cb, NULL);
        net->q = NULL;
    }
}

void
mm__net_close_now(struct mm_net *net)
{
    if (!net) return;
    mm__tq_stop(net_tq(net), &net->sweep);
    if (net->q) { /* never ran: close on the spot */
        int closed = 0;
        mm__quic_close(net->q, quic_closed_cb, &closed);
        net->q = NULL;
        while (!closed)
            uv_run(&net->node->shards[0].loop, UV_RUN_ONCE);
    }
}

void
mm__net_free(struct mm_net *net)
{
    if (!net) return;
    if (net->pend) pend_fail(net, NULL, NULL, MM_ECLOSED);
    struct peer *p = net->peers;
    while (p) {
        struct peer *next = p->next;
        peer_reject_waiting(net, p, MM_ECLOSED);
        peer_streams_free(p);
        mm__free(p->ctrl_q);
        mm__free(p);
        p = next;
    }
    mm__idx_free(&net->peer_idx);
    for (size_t i = 0; i < net->nseeds; i++)
        mm__free(net->seeds[i]);
    mm__free(net->seeds);
    mm__free(net->seed_dials);
    mm__free(net->pend);
    cache_drain(&net->pend_cache);
    cache_drain(&net->inbound_cache);
    mm__free(net);
}

struct mm_quic *
mm__net_quic(struct mm_net *net)
{
    return net->q;
}

int
mm__net_stopped(const struct mm_net *net)
{
    return net->stopped;
}

void
mm__net_set_idle_max(struct mm_net *net, unsigned max)
{
    net->idle_max = max;
}

size_t
mm__net_peer_count(const struct mm_net *net)
{
    size_t n = 0;
    for (const struct peer *p = net->peers; p; p = p->next)
        n++;
    return n;
}

uint64_t
mm__net_idle_evicted(const struct mm_net *net)
{
    return net->idle_evicted;
}

int
mm__net_connected(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN])
{
    struct peer *p = peer_find(net, id);
    return p && p->conn;
}

struct mm_qconn *
mm__net_conn_of(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN])
{
    struct peer *p = peer_find(net, id);
    return p && p->conn && p->conn->q && p->conn->up ? p->conn->q : NULL;
}

void
mm__net_on_conn_gone(struct mm_net *net, mm_net_conn_gone_fn fn, void *data)
{
    net->gone_fn = fn;
    net->gone_data = data;
}
