/*
 * registry.c — registry replication between nodes (docs/design.md, Replication
 * and anti-entropy), on shard 0.
 *
 * Frames (control stream, docs/wire.md):
 *   0x30 OPS     body = an oplog batch (records newly applied or missing)
 *   0x31 DIGEST  body = u64 digest of the sender's version vector
 *   0x32 VECTOR  body = u8 flags (bit0: answer with your vector) | vector
 *
 * A node pushes its new ops to connected peers at once; a node that
 * applies new ops forwards them to its own connected peers (the vector
 * dedups, so an echo applies nothing and stops).  When a member connection
 * comes up the two sides exchange vectors and send each other what the
 * other lacks (catch-up).  Every ~10 s (jittered) a digest goes to a random
 * member we are connected to (every AE_RANDOM_EVERY rounds to any live
 * member, which may dial); a mismatch starts the same vector exchange, a
 * match costs one small frame and nothing else.  A member back from failed
 * (a healed partition) gets a digest at once.
 */
#include "registry.h"

#include "buf.h"
#include "membership/swim.h"
#include "net.h"
#include "oplog.h"
#include "wire.h"

#define REG_OPS 0x30
#define REG_DIGEST 0x31
#define REG_VECTOR 0x32
#define VEC_WANT_REPLY 0x01
#define MAX_MEMBERS 4096

struct mm_registry {
    mm_node *node;
    struct mm_net *net;
    struct mm_tq *tq;
    struct mm_tmr ae;                 /* anti-entropy round, on |tq| */
    uint8_t (*alive)[MM_NODE_ID_LEN]; /* live members, for anti-entropy */
    size_t nalive, alive_cap;
    uint8_t (*failed)[MM_NODE_ID_LEN]; /* members now failed */
    size_t nfailed, failed_cap;
    uint64_t frames_out, ops_out;
    unsigned ae_rounds;
};

static int
send_frame(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN],
           struct mm_qconn *conn, int64_t sid, uint8_t type,
           const uint8_t *body, size_t len)
{
    size_t total = len + MM_WIRE_HDR_LEN;
    uint8_t *f = mm__malloc(total);
    if (!f) return UV_ENOMEM;
    mm__wire_frame_encode(f, total, type, body, len);
    int rc = conn ? mm__net_reply(conn, sid, f, total)
                  : mm__net_send_ctrl(r->net, peer, f, total);
    mm__free(f);
    r->frames_out++;
    return rc;
}

static void
send_vector(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN],
            struct mm_qconn *conn, int64_t sid, int want_reply)
{
    uint8_t *vec;
    size_t vlen;
    if (mm__recep_vector(r->node, &vec, &vlen) != 0) return;
    uint8_t *body = mm__malloc(vlen + 1);
    if (body) {
        body[0] = want_reply ? VEC_WANT_REPLY : 0;
        memcpy(body + 1, vec, vlen);
        send_frame(r, peer, conn, sid, REG_VECTOR, body, vlen + 1);
        mm__free(body);
    }
    mm__free(vec);
}

static void
send_digest(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN])
{
    uint8_t body[8];
    mm__put_u64(body, mm__recep_digest(r->node));
    send_frame(r, peer, NULL, -1, REG_DIGEST, body, sizeof(body));
}

/* ---- frames in
 * ---------------------------------------------------------------- */

static void
on_ops(struct mm_registry *r, const uint8_t *body, size_t len)
{
    size_t applied = 0;
    int rc = mm__recep_apply(r->node, body, len, &applied);
    if (rc)
        MM_LOG(MM_LOG_INFO, "registry", "bad ops batch: %s", mm_strerror(rc));
    else
        MM_LOG(MM_LOG_DEBUG, "registry", "ops batch of %zu bytes: %zu applied",
               len, applied);
    /* What was new is forwarded by the receptionist's flush. */
}

static void
on_vector(struct mm_registry *r, struct mm_qconn *conn, int64_t sid,
          const uint8_t *body, size_t len)
{
    if (len < 1) return;
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    long n = mm__recep_missing(r->node, body + 1, len - 1, &b);
    MM_LOG(MM_LOG_DEBUG, "registry", "vector in: the peer lacks %ld records%s",
           n, (body[0] & VEC_WANT_REPLY) ? ", answering with ours" : "");
    if (n > 0 && mm__oplog_batch_finish(&b) == 0) {
        send_frame(r, NULL, conn, sid, REG_OPS, b.buf, b.len);
        r->ops_out += (uint64_t)n;
    }
    mm__oplog_batch_release(&b);
    if (n >= 0 && (body[0] & VEC_WANT_REPLY))
        send_vector(r, NULL, conn, sid, 0);
}

static void
on_digest(struct mm_registry *r, struct mm_qconn *conn, int64_t sid,
          const uint8_t *body, size_t len)
{
    if (len != 8) return;
    int differ = mm__get_u64(body) != mm__recep_digest(r->node);
    MM_LOG(MM_LOG_DEBUG, "registry", "digest in: %s",
           differ ? "differs" : "same");
    if (differ) send_vector(r, NULL, conn, sid, 1);
}

static void
on_frame(void *data, struct mm_qconn *conn, const uint8_t peer[MM_NODE_ID_LEN],
         int role, int64_t sid, uint8_t type, const uint8_t *body, size_t len)
{
    struct mm_registry *r = data;
    (void)peer;
    if (role != MM_WIRE_ROLE_MEMBER)
        return; /* clients never write the registry */
    switch (type) {
    case REG_OPS:
        on_ops(r, body, len);
        break;
    case REG_VECTOR:
        on_vector(r, conn, sid, body, len);
        break;
    case REG_DIGEST:
        on_digest(r, conn, sid, body, len);
        break;
    default:
        break;
    }
}

static void
on_conn(void *data, struct mm_qconn *conn, const uint8_t peer[MM_NODE_ID_LEN],
        uint64_t gen, int role, int up)
{
    struct mm_registry *r = data;
    (void)gen;
    if (!up || role != MM_WIRE_ROLE_MEMBER) return;
    /* Catch up both ways with a new peer. */
    send_vector(r, peer, conn, mm__net_control_stream(conn), 1);
}

/* ---- push and anti-entropy
 * --------------------------------------------------------- */

struct push_ctx {
    struct mm_registry *r;
    const uint8_t *batch;
    size_t len;
    int sent;
};

static int
push_peer(void *data, const uint8_t id[MM_NODE_ID_LEN], struct mm_qconn *conn)
{
    struct push_ctx *p = data;
    send_frame(p->r, id, conn, mm__net_control_stream(conn), REG_OPS, p->batch,
               p->len);
    p->sent++;
    return 0;
}

void
mm__registry_push(struct mm_registry *r, const uint8_t *batch, size_t len)
{
    if (!r) return;
    struct push_ctx p = {r, batch, len, 0};
    mm__net_foreach_conn(r->net, push_peer, &p);
    MM_LOG(MM_LOG_DEBUG, "registry", "push of %zu bytes to %d connections%s",
           len, p.sent,
           p.sent == 0 && r->nalive ? " (none: via a live member)" : "");
    /* No member connection (never made, or closed when a member was
     * suspected): dial one live member; its conn-up vector exchange
     * repairs whatever else was missed. */
    if (p.sent == 0 && r->nalive)
        send_frame(r, r->alive[mm__rand64() % r->nalive], NULL, -1, REG_OPS,
                   batch, len);
}

struct pick_ctx {
    uint8_t id[MM_NODE_ID_LEN];
    unsigned seen;
};

/* Reservoir sampling over the up member connections. */
static int
pick_conn_cb(void *data, const uint8_t id[MM_NODE_ID_LEN],
             struct mm_qconn *conn)
{
    struct pick_ctx *p = data;
    (void)conn;
    if (mm__rand64() % ++p->seen == 0) memcpy(p->id, id, MM_NODE_ID_LEN);
    return 0;
}

/*
 * Anti-entropy: a digest to a random member we are connected to (a small
 * frame on a live connection; a fresh QUIC handshake every 10 s would cost
 * ~600 B/s per node on an idle cluster), and every AE_RANDOM_EVERY rounds
 * to any live member, which bridges nodes that share no connection.
 */
#define AE_RANDOM_EVERY 30

static void
ae_cb(struct mm_tmr *t)
{
    struct mm_registry *r = mm__container_of(t, struct mm_registry, ae);
    struct pick_ctx p = {{0}, 0};
    if (++r->ae_rounds % AE_RANDOM_EVERY != 0)
        mm__net_foreach_conn(r->net, pick_conn_cb, &p);
    if (p.seen)
        send_digest(r, p.id);
    else if (r->nalive)
        send_digest(r, r->alive[mm__rand64() % r->nalive]);
    uint64_t next = MM_OPLOG_ANTI_ENTROPY_MS +
                    mm__rand64() % (MM_OPLOG_ANTI_ENTROPY_MS / 5 + 1);
    mm__tq_start_in(r->tq, &r->ae, next);
}

static int
any_conn_cb(void *data, const uint8_t id[MM_NODE_ID_LEN], struct mm_qconn *conn)
{
    (void)id;
    (void)conn;
    *(int *)data = 1;
    return 1;
}

static int
have_conn(struct mm_registry *r)
{
    int any = 0;
    mm__net_foreach_conn(r->net, any_conn_cb, &any);
    return any;
}

static int
id_index(uint8_t (*set)[MM_NODE_ID_LEN], size_t n,
         const uint8_t id[MM_NODE_ID_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(set[i], id, MM_NODE_ID_LEN) == 0) return (int)i;
    return -1;
}

static int
alive_index(struct mm_registry *r, const uint8_t id[MM_NODE_ID_LEN])
{
    return id_index(r->alive, r->nalive, id);
}

/* Adds |id| to a set of ids (no duplicates).  0, or -1 without memory. */
static int
id_add(uint8_t (**set)[MM_NODE_ID_LEN], size_t *n, size_t *cap,
       const uint8_t id[MM_NODE_ID_LEN])
{
    if (id_index(*set, *n, id) >= 0) return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void *v = mm__realloc(*set, c * MM_NODE_ID_LEN);
        if (!v) return -1;
        *set = v;
        *cap = c;
    }
    memcpy((*set)[(*n)++], id, MM_NODE_ID_LEN);
    return 0;
}

/* Removes |id| from a set; 1 if it was there. */
static int
id_del(uint8_t (*set)[MM_NODE_ID_LEN], size_t *n,
       const uint8_t id[MM_NODE_ID_LEN])
{
    int i = id_index(set, *n, id);
    if (i < 0) return 0;
    memcpy(set[i], set[--*n], MM_NODE_ID_LEN);
    return 1;
}

void
mm__registry_member_state(struct mm_registry *r,
                          const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                          int swim_state)
{
    if (memcmp(id, r->node->id, MM_NODE_ID_LEN) == 0) return;
    int st;
    switch (swim_state) {
    case MM_SWIM_ALIVE:
        st = MM_OPLOG_ALIVE;
        break;
    case MM_SWIM_SUSPECT:
        st = MM_OPLOG_SUSPECT;
        break;
    case MM_SWIM_FAILED:
        st = MM_OPLOG_FAILED;
        break;
    case MM_SWIM_LEFT:
        st = MM_OPLOG_LEFT;
        break;
    case MM_SWIM_REAPED:
        st = MM_OPLOG_REAPED;
        break;
    default:
        return;
    }
    mm__recep_origin_state(r->node, id, gen, st);
    int back = 0; /* failed, now alive again: a healed partition */
    if (st == MM_OPLOG_FAILED) {
        id_add(&r->failed, &r->nfailed, &r->failed_cap, id);
    } else {
        back = id_del(r->failed, &r->nfailed, id) &&
               (st == MM_OPLOG_ALIVE || st == MM_OPLOG_SUSPECT);
    }
    if (st == MM_OPLOG_ALIVE || st == MM_OPLOG_SUSPECT) {
        if (alive_index(r, id) < 0 && r->nalive < MAX_MEMBERS) {
            if (id_add(&r->alive, &r->nalive, &r->alive_cap, id) != 0) return;
            /*
             * A node with no member connection yet (it joined through
             * mDNS, or its seed dial failed) catches up from the first
             * member it learns.  Everyone else already exchanges vectors
             * on its connections: a digest to every new member would dial
             * a full mesh of QUIC connections during a join burst (N^2
             * handshakes; it slowed N=32 convergence by ~1 s).
             *
             * A member back from failed is another matter: both sides
             * changed the registry while apart, and the connections that
             * carry pushes and digests may now join the nodes in groups
             * that never meet (a heal can leave {a, d} and {b, c}
             * connected; digests go to connected members).  A digest to
             * it starts the vector exchange with it directly.
             */
            if (back || !have_conn(r)) send_digest(r, id);
        }
    } else {
        id_del(r->alive, &r->nalive, id);
    }
}

/* ---- lifecycle
 * ---------------------------------------------------------------------- */

int
mm__registry_new(struct mm_registry **out, mm_node *n, struct mm_net *net,
                 struct mm_tq *tq)
{
    struct mm_registry *r = mm__calloc(1, sizeof(*r));
    if (!r) return UV_ENOMEM;
    r->node = n;
    r->net = net;
    r->tq = tq;
    mm__net_on_frame(net, REG_OPS, on_frame, r);
    mm__net_on_frame(net, REG_DIGEST, on_frame, r);
    mm__net_on_frame(net, REG_VECTOR, on_frame, r);
    mm__net_on_conn(net, on_conn, r);
    r->ae.fn = ae_cb;
    *out = r;
    return 0;
}

void
mm__registry_start(struct mm_registry *r)
{
    mm__tq_start_in(r->tq, &r->ae, MM_OPLOG_ANTI_ENTROPY_MS);
}

void
mm__registry_close(struct mm_registry *r)
{
    mm__tq_stop(r->tq, &r->ae);
}

void
mm__registry_free(struct mm_registry *r)
{
    if (!r) return;
    mm__tq_stop(r->tq, &r->ae);
    mm__free(r->alive);
    mm__free(r->failed);
    mm__free(r);
}
