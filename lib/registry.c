/*
 * registry.c — registry replication between nodes (docs/design.md, Replication
 * and anti-entropy), on shard 0.
 *
 * Frames (control stream, docs/wire.md):
 *   0x30 OPS     body = an oplog batch (records newly applied or missing),
 *                sealed: each origin's records under its signed head,
 *                verified before anything is applied (see on_ops)
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
 *
 * Bounded batches.  No OPS frame carries more than the batch bound
 * (MM_REGISTRY_BATCH_MAX, never more than max_frame allows): a push is cut
 * into pieces, and the answer to a VECTOR is a catch-up that sends what
 * the peer lacks one batch at a time (mm__oplog_missing_batch), from a
 * copy of the peer's vector advanced past every batch sent
 * (mm__oplog_vec_advance).  Replication keeps the connection's
 * unacknowledged bytes within MM_REGISTRY_SEND_SHARE, below the
 * transport's cap (MM_CONN_SEND_MAX, past which it says MM_EOVERLOADED),
 * so that calls on the same connection always find room.  The next batch
 * of a catch-up goes once there is room for it (it looks again after
 * MM_REGISTRY_CATCHUP_RETRY_MS), at most MM_REGISTRY_TURN_BATCHES a loop
 * turn over all peers: the missing part is never built whole and the loop
 * is never held by it.  A push that finds no room is not sent: the peer's
 * vector is asked for (VECTOR with the reply bit) and the catch-up that
 * answer starts carries the push's records.  A VECTOR from the peer while
 * its catch-up is under way is merged into where the catch-up stands (what
 * is on its way is not sent twice); a connection that goes down ends it
 * (the next vector exchange resumes from what arrived).  A push goes at
 * once when there is room, catch-up or not.
 *
 * Bounded applying.  What arrives is applied at most
 * MM_REGISTRY_APPLY_OPS_MAX records a loop turn, in arrival order over all
 * peers, with the credit of waiting batches held and their bytes bounded
 * per peer (MM_REGISTRY_APPLY_QUEUE_MAX): see on_ops().
 */
#include "registry.h"

#include "buf.h"
#include "membership/swim.h"
#include "net.h"
#include "oplog.h"
#include "transport/quic.h"
#include "wire.h"

#define REG_OPS 0x30
#define REG_DIGEST 0x31
#define REG_VECTOR 0x32
#define VEC_WANT_REPLY 0x01
#define MAX_MEMBERS 4096

/* A catch-up under way: what |peer| lacks, one bounded batch at a time. */
struct catchup {
    struct catchup *next;
    uint8_t peer[MM_NODE_ID_LEN];
    uint8_t *vec; /* the peer's vector once it has applied what we sent;
                     NULL: we asked for its vector (at |asked_ns|) */
    size_t vlen;
    uint64_t asked_ns;
};

/* A received OPS batch waiting for its turns (a copy). */
struct inbatch {
    struct inbatch *next;
    uint8_t peer[MM_NODE_ID_LEN];
    struct mm_qconn *conn; /* NULL once it went down */
    int64_t sid;
    size_t held;                     /* its stream credit, held */
    struct mm__oplog_verify ver;     /* verification, ahead of ... */
    struct mm__oplog_batch_iter app; /* ... applying */
    int checked;                     /* verified whole */
    size_t applied;                  /* records newly applied */
    size_t len;
    uint8_t data[];
};

/* Records verified for one applied: decoding and hashing cost a fraction
 * of applying. */
#define CHECK_PER_APPLY 4u
/* What counts as one turn for records applied on arrival (the apply
 * timer's run starts a new one). */
#define TURN_NS 1000000u

struct mm_registry {
    mm_node *node;
    struct mm_net *net;
    struct mm_tq *tq;
    struct mm_tmr ae;   /* anti-entropy round, on |tq| */
    struct mm_tmr pump; /* the catch-ups' next batches */
    struct catchup *cu; /* catch-ups, served in turn */
    size_t ncu;
    struct mm_tmr apply;           /* the waiting batches' next share */
    struct inbatch *in, **in_tail; /* received batches waiting, in order */
    size_t apply_ops_max, apply_peer_max;
    uint64_t turn_ns; /* when the current turn's count began */
    size_t turn_ops;  /* records applied in it */
    struct mm_registry_stats st;
    uint8_t (*alive)[MM_NODE_ID_LEN]; /* live members, for anti-entropy */
    size_t nalive, alive_cap;
    uint8_t (*failed)[MM_NODE_ID_LEN]; /* members now failed */
    size_t nfailed, failed_cap;
    unsigned ae_rounds;
    /* Digests that dial (see digest_to): the last one's time, and the
     * members back from failed still owed one (at most MAX_MEMBERS). */
    uint64_t dialled_ms;
    int dialled;
    uint8_t (*owed)[MM_NODE_ID_LEN];
    size_t nowed, owed_cap;
    struct mm_tmr owe; /* the next owed digest, on |tq| */
};

/* 1 when an OPS frame of |len| bytes fits in replication's share of
 * |conn|'s send queue. */
static int
has_room(struct mm_qconn *conn, size_t len)
{
    size_t unacked = mm__quic_conn_unacked(conn);
    return unacked == 0 || unacked + len <= MM_REGISTRY_SEND_SHARE;
}

/* The largest frame body max_frame lets us send. */
static size_t
body_max(const struct mm_registry *r)
{
    size_t f = r->node->cfg.max_frame ? r->node->cfg.max_frame : MM_MAX_FRAME;
    return f > MM_WIRE_HDR_LEN ? f - MM_WIRE_HDR_LEN : 0;
}

/* Bytes an OPS batch may take: the bound, within what max_frame allows.
 * Only a batch of one record larger than that alone may pass it, up to
 * body_max(); a record above body_max() cannot travel (counted). */
static size_t
batch_max(const struct mm_registry *r)
{
    size_t m = MM_REGISTRY_BATCH_MAX;
    return body_max(r) < m ? body_max(r) : m;
}

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
    if (rc == 0) {
        r->st.frames_out++;
        r->st.bytes_out += total;
        if (type == REG_OPS) {
            r->st.batches_out++;
            if (len > r->st.batch_largest) r->st.batch_largest = len;
        }
    } else if (rc == MM_EOVERLOADED) {
        r->st.overloaded++;
    } else {
        r->st.send_failed++;
    }
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

static int alive_index(struct mm_registry *r, const uint8_t id[MM_NODE_ID_LEN]);
static int id_add(uint8_t (**set)[MM_NODE_ID_LEN], size_t *n, size_t *cap,
                  const uint8_t id[MM_NODE_ID_LEN]);

/* 1 when a digest that has to dial may go now (one per
 * MM_REGISTRY_DIAL_GAP_MS), counted; 0 when one went within the gap. */
static int
dial_allowed(struct mm_registry *r, uint64_t now)
{
    if (r->dialled && now - r->dialled_ms < MM_REGISTRY_DIAL_GAP_MS) return 0;
    r->dialled = 1;
    r->dialled_ms = now;
    r->st.dials++;
    return 1;
}

/*
 * A digest to member |id| outside anti-entropy.  On a connection it costs
 * one small frame and goes at once.  Without one it dials (a QUIC
 * handshake on both sides), and those go out one per
 * MM_REGISTRY_DIAL_GAP_MS: a node whose connections are gone or not yet
 * up (a joiner the seed's handshake caps keep waiting) learns members by
 * the hundred in a join burst, and a digest to each was a full mesh of
 * handshakes.  Past the gap, |owe| (a member back from failed, whose
 * digest bridges a healed partition) remembers the member and serves it
 * later (owe_cb); otherwise (a node without connections catching up) the
 * digest is dropped, counted: the one that went, or anti-entropy, brings
 * the catch-up.
 */
static void
digest_to(struct mm_registry *r, const uint8_t id[MM_NODE_ID_LEN], int owe)
{
    if (mm__net_connected(r->net, id)) {
        send_digest(r, id);
        return;
    }
    uint64_t now = mm__now_ms();
    if (dial_allowed(r, now)) {
        send_digest(r, id);
        return;
    }
    if (!owe) {
        r->st.dials_skipped++;
        return;
    }
    if (id_add(&r->owed, &r->nowed, &r->owed_cap, id) != 0) return;
    r->st.dials_deferred++;
    if (!mm__tq_active(&r->owe))
        mm__tq_start_in(r->tq, &r->owe,
                        r->dialled_ms + MM_REGISTRY_DIAL_GAP_MS - now);
}

/* The owed digests: those to members now connected at once, one that
 * dials, the rest a gap later.  Members no longer alive are forgotten. */
static void
owe_cb(struct mm_tmr *t)
{
    struct mm_registry *r = mm__container_of(t, struct mm_registry, owe);
    uint64_t now = mm__now_ms();
    int dialled = 0;
    size_t i = 0;
    while (i < r->nowed) {
        const uint8_t *id = r->owed[i];
        int go = alive_index(r, id) >= 0 &&
                 (mm__net_connected(r->net, id) ||
                  (!dialled && (dialled = dial_allowed(r, now))));
        if (go) send_digest(r, id);
        if (go || alive_index(r, id) < 0)
            memcpy(r->owed[i], r->owed[--r->nowed], MM_NODE_ID_LEN);
        else
            i++;
    }
    if (r->nowed) mm__tq_start_in(r->tq, &r->owe, MM_REGISTRY_DIAL_GAP_MS);
}

/* ---- frames in
 * ---------------------------------------------------------------- */

/*
 * Applying what peers send.  A batch of at most apply_ops_max records,
 * when nothing waits, is applied at once.  A larger one (a catch-up batch,
 * or up to max_frame from a hostile member) is applied apply_ops_max
 * records a loop turn, after being validated whole the same way (nothing
 * of a bad batch is applied, as when applied at once), and every batch
 * received meanwhile, from any peer, waits behind it: batches are applied
 * in arrival order, whole or not, so the result is the same.  A waiting
 * batch's stream credit is held until it is applied, which stops a peer
 * that follows flow control at its stream window; a peer whose waiting
 * batches would pass apply_peer_max bytes has its connection closed with
 * overloaded (a batch alone always waits).
 */

/* A batch refused whole: counted (forged_in) unless memory ran out. */
static void
refused(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN], size_t len,
        int rc)
{
    if (rc != -ENOMEM) r->st.forged_in++;
    /* Logged the first time, then at every power of two. */
    uint64_t k = r->st.forged_in;
    if (rc != -ENOMEM && (k & (k - 1)) != 0) return;
    MM_LOG(MM_LOG_WARN, "registry",
           "member %02x%02x%02x%02x: ops batch of %zu bytes refused (%llu so "
           "far): %s",
           peer[0], peer[1], peer[2], peer[3], len, (unsigned long long)k,
           rc == MM_EUNAUTHORIZED
               ? "a record its origin did not sign (forged, tampered or "
                 "unsigned)"
               : mm_strerror(rc));
}

static void
apply_now(struct mm_registry *r, const uint8_t *body, size_t len)
{
    size_t applied = 0;
    uint64_t t0 = mm__now_ns();
    int rc = mm__recep_apply(r->node, body, len, &applied);
    uint64_t took = mm__now_ns() - t0;
    r->st.ops_applied += applied;
    r->st.ops_bytes_in += len;
    if (took > r->st.apply_longest_ns) r->st.apply_longest_ns = took;
    if (rc)
        MM_LOG(MM_LOG_INFO, "registry", "bad ops batch: %s", mm_strerror(rc));
    else
        MM_LOG(MM_LOG_DEBUG, "registry",
               "ops batch of %zu bytes: %zu applied in %llu us", len, applied,
               (unsigned long long)(took / 1000));
    /* What was new is forwarded by the receptionist's flush. */
}

/* Bytes of |peer|'s batches waiting. */
static size_t
peer_waiting(const struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN])
{
    size_t n = 0;
    for (const struct inbatch *b = r->in; b; b = b->next)
        if (memcmp(b->peer, peer, MM_NODE_ID_LEN) == 0) n += b->len;
    return n;
}

/* The head batch is through (|rc|: 0 or why it stopped). */
static void
inbatch_done(struct mm_registry *r, int rc)
{
    struct inbatch *b = r->in;
    r->in = b->next;
    if (!r->in) r->in_tail = &r->in;
    r->st.apply_queued -= b->len;
    r->st.ops_applied += b->applied;
    r->st.ops_bytes_in += b->len;
    if (b->conn && b->held) mm__quic_credit_return(b->conn, b->sid, b->held);
    mm__oplog_verify_end(&b->ver);
    if (rc)
        MM_LOG(MM_LOG_INFO, "registry", "bad ops batch: %s", mm_strerror(rc));
    else
        MM_LOG(MM_LOG_DEBUG, "registry",
               "ops batch of %zu bytes: %zu applied over turns", b->len,
               b->applied);
    mm__free(b);
}

/* Applies the waiting batches' share of this turn. */
static void
apply_step(struct mm_registry *r)
{
    size_t budget =
        r->turn_ops < r->apply_ops_max ? r->apply_ops_max - r->turn_ops : 0;
    size_t vbudget = budget * CHECK_PER_APPLY, ops = 0;
    uint64_t t0 = mm__now_ns();
    while (r->in && budget) {
        struct inbatch *b = r->in;
        size_t done = 0;
        int rc;
        if (!b->checked) {
            rc = mm__oplog_verify_some(&b->ver, vbudget, &done);
            vbudget -= done;
            if (rc == 1) break; /* verified further next turn */
            if (rc) {
                refused(r, b->peer, b->len, rc);
                inbatch_done(r, rc);
                continue;
            }
            r->st.sigs_verified += b->ver.nsigs;
            mm__oplog_verify_end(&b->ver);
            b->checked = 1;
        }
        rc = mm__recep_apply_some(r->node, &b->app, budget, &done, &b->applied);
        budget -= done;
        ops += done;
        if (rc == 1) break;
        inbatch_done(r, rc);
    }
    uint64_t took = mm__now_ns() - t0;
    if (took > r->st.apply_longest_ns) r->st.apply_longest_ns = took;
    if (ops) r->st.apply_turns++;
    if (ops > r->st.apply_turn_ops_max) r->st.apply_turn_ops_max = ops;
    r->turn_ops += ops;
    if (r->in && !mm__tq_active(&r->apply))
        mm__tq_start_in(r->tq, &r->apply, 0); /* the next loop turn */
}

static void
apply_cb(struct mm_tmr *t)
{
    struct mm_registry *r = mm__container_of(t, struct mm_registry, apply);
    r->turn_ns = mm__now_ns();
    r->turn_ops = 0;
    apply_step(r);
}

static void
on_ops(struct mm_registry *r, struct mm_qconn *conn,
       const uint8_t peer[MM_NODE_ID_LEN], int64_t sid, const uint8_t *body,
       size_t len)
{
    r->st.batches_in++;
    struct mm__oplog_batch_iter it;
    int vrc = mm__oplog_batch_iter_init(&it, body, len);
    if (vrc != 0) {
        refused(r, peer, len, vrc);
        return;
    }
    uint64_t now = mm__now_ns();
    if (now - r->turn_ns > TURN_NS) {
        r->turn_ns = now;
        r->turn_ops = 0;
    }
    if (!r->in && r->turn_ops + it.count <= r->apply_ops_max) {
        /* Every record must be its origin's own: the whole batch is
         * refused otherwise, whoever sent it (a larger batch is verified
         * over turns, before any of it is applied). */
        size_t nsigs = 0;
        vrc = mm__recep_verify(r->node, body, len, &nsigs);
        r->st.sigs_verified += nsigs;
        if (vrc != 0) {
            refused(r, peer, len, vrc);
            return;
        }
        r->turn_ops += it.count;
        apply_now(r, body, len);
        return;
    }
    size_t mine = peer_waiting(r, peer);
    if (mine > 0 && mine + len > r->apply_peer_max) {
        r->st.apply_overflow++;
        MM_LOG(MM_LOG_WARN, "registry",
               "member %02x%02x%02x%02x: its registry batches would wait past "
               "the bound (%zu + %zu bytes, bound %zu): closing its "
               "connection (overloaded)",
               peer[0], peer[1], peer[2], peer[3], mine, len,
               r->apply_peer_max);
        mm__quic_conn_close(conn, MM_EOVERLOADED);
        return;
    }
    struct inbatch *b = mm__malloc(sizeof(*b) + len);
    if (!b) return; /* anti-entropy repairs it */
    memset(b, 0, sizeof(*b));
    memcpy(b->data, body, len);
    b->len = len;
    memcpy(b->peer, peer, MM_NODE_ID_LEN);
    if ((vrc = mm__recep_verify_begin(r->node, &b->ver, b->data, len)) != 0) {
        refused(r, peer, len, vrc);
        mm__free(b);
        return;
    }
    b->app = b->ver.it;
    b->conn = conn;
    b->sid = sid;
    b->held = mm__quic_frame_hold(conn, sid);
    int first = r->in == NULL;
    *r->in_tail = b;
    r->in_tail = &b->next;
    r->st.apply_waited++;
    r->st.apply_queued += len;
    if (r->st.apply_queued > r->st.apply_queued_peak)
        r->st.apply_queued_peak = r->st.apply_queued;
    if (first) apply_step(r); /* what is left of this turn's share */
}

/* |conn| went down: its waiting batches are still applied, their credit
 * goes nowhere. */
static void
inbatch_conn_gone(struct mm_registry *r, struct mm_qconn *conn)
{
    for (struct inbatch *b = r->in; b; b = b->next)
        if (b->conn == conn) b->conn = NULL;
}

static void
inbatch_free_all(struct mm_registry *r)
{
    while (r->in) {
        struct inbatch *b = r->in;
        r->in = b->next;
        mm__oplog_verify_end(&b->ver);
        mm__free(b);
    }
    r->in_tail = &r->in;
    r->st.apply_queued = 0;
}

/* ---- catch-up ----------------------------------------------------------- */

static void
catchup_free(struct catchup *c)
{
    mm__free(c->vec);
    mm__free(c);
}

static void
catchup_drop(struct mm_registry *r, struct catchup **pp)
{
    struct catchup *c = *pp;
    *pp = c->next;
    r->ncu--;
    catchup_free(c);
}

/* The up member connection to |id|, or NULL. */
static struct mm_qconn *
conn_of(struct mm_registry *r, const uint8_t id[MM_NODE_ID_LEN])
{
    return mm__net_conn_of(r->net, id);
}

enum { STEP_SENT, STEP_DONE, STEP_WAIT, STEP_GONE };

/* Sends |c|'s next batch if the connection has room for it. */
static int
catchup_step(struct mm_registry *r, struct catchup *c)
{
    struct mm_qconn *conn = conn_of(r, c->peer);
    if (!conn) return STEP_GONE;
    size_t max = batch_max(r);
    if (!has_room(conn, max + MM_WIRE_HDR_LEN)) return STEP_WAIT;
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    long n = mm__recep_missing_batch(r->node, c->vec, c->vlen, max, &b);
    int step = STEP_DONE;
    if (n > 0 && mm__oplog_batch_finish(&b) == 0) {
        int rc = 0;
        if (b.len > body_max(r)) {
            /* One record alone (a snapshot) above what a frame can carry:
             * skipped. */
            r->st.too_large++;
            MM_LOG(MM_LOG_WARN, "registry",
                   "a record of %zu bytes is above max_frame: not sent", b.len);
        } else {
            rc = send_frame(r, NULL, conn, mm__net_control_stream(conn),
                            REG_OPS, b.buf, b.len);
        }
        uint8_t *next = NULL;
        size_t nlen = 0;
        if (rc == MM_EOVERLOADED) {
            step = STEP_WAIT;
        } else if (rc) {
            step = STEP_GONE;
        } else if (mm__oplog_vec_advance(c->vec, c->vlen, b.buf, b.len, &next,
                                         &nlen) == 0) {
            mm__free(c->vec);
            c->vec = next;
            c->vlen = nlen;
            r->st.ops_out += (uint64_t)n;
            step = STEP_SENT;
        } else {
            step = STEP_GONE; /* no memory: the next vector exchange */
        }
    } else if (n < 0) {
        step = STEP_GONE;
    }
    mm__oplog_batch_release(&b);
    return step;
}

/*
 * Serves the catch-ups in turn, at most MM_REGISTRY_TURN_BATCHES batches
 * a loop turn; the one served last goes to the back of the line.  Comes
 * back on the next turn while one could send, after
 * MM_REGISTRY_CATCHUP_RETRY_MS while all wait for acknowledgements.
 */
static void
pump(struct mm_registry *r)
{
    unsigned sent = 0;
    int more = 0, active = 0;
    uint64_t now = mm__now_ns();
    struct catchup **pp = &r->cu;
    while (*pp && sent < MM_REGISTRY_TURN_BATCHES) {
        struct catchup *c = *pp;
        if (!c->vec) {
            /* Asked for its vector; given up after an anti-entropy
             * period (the rounds repair what is left). */
            if (now - c->asked_ns >
                (uint64_t)MM_OPLOG_ANTI_ENTROPY_MS * 1000000u)
                catchup_drop(r, pp);
            else
                pp = &c->next;
            continue;
        }
        active = 1;
        int step = catchup_step(r, c);
        if (step == STEP_DONE || step == STEP_GONE) {
            if (step == STEP_DONE) r->st.catchups_done++;
            MM_LOG(MM_LOG_DEBUG, "registry", "catch-up %s",
                   step == STEP_DONE ? "complete" : "ended (no connection)");
            catchup_drop(r, pp);
            continue;
        }
        if (step == STEP_SENT) {
            sent++;
            more = 1;
        }
        pp = &c->next;
    }
    if (*pp && sent == MM_REGISTRY_TURN_BATCHES) more = active = 1;
    if (sent && r->cu && r->cu->next) {
        /* Round robin: the head was served; it goes to the back. */
        struct catchup *h = r->cu, **tail = &r->cu;
        r->cu = h->next;
        while (*tail)
            tail = &(*tail)->next;
        h->next = NULL;
        *tail = h;
    }
    for (struct catchup *c = r->cu; c && !active; c = c->next)
        active = c->vec != NULL;
    if (active)
        mm__tq_start_in(r->tq, &r->pump,
                        more ? 0 : MM_REGISTRY_CATCHUP_RETRY_MS);
}

static void
pump_cb(struct mm_tmr *t)
{
    pump(mm__container_of(t, struct mm_registry, pump));
}

static struct catchup *
catchup_find(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN])
{
    struct catchup *c = r->cu;
    while (c && memcmp(c->peer, peer, MM_NODE_ID_LEN) != 0)
        c = c->next;
    return c;
}

/* Starts (or restarts, from the vector it now reports) the catch-up of
 * |peer|. */
static void
catchup_start(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN],
              const uint8_t *vec, size_t len)
{
    struct catchup *c = catchup_find(r, peer);
    uint8_t *v = NULL;
    size_t vlen = len;
    if (c && c->vec) {
        /* Under way: what we sent meanwhile is on its way, not lost. */
        if (mm__oplog_vec_merge(c->vec, c->vlen, vec, len, &v, &vlen) != 0)
            return;
    } else if ((v = mm__malloc(len ? len : 1)) != NULL) {
        memcpy(v, vec, len);
    }
    if (!v) return;
    if (!c) {
        if (r->ncu >= MAX_MEMBERS || !(c = mm__calloc(1, sizeof(*c)))) {
            mm__free(v);
            return;
        }
        memcpy(c->peer, peer, MM_NODE_ID_LEN);
        c->next = r->cu;
        r->cu = c;
        r->ncu++;
    }
    if (!c->vec) r->st.catchups++;
    mm__free(c->vec);
    c->vec = v;
    c->vlen = vlen;
    if (!mm__tq_active(&r->pump)) mm__tq_start_in(r->tq, &r->pump, 0);
}

static void
catchup_end(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN])
{
    for (struct catchup **pp = &r->cu; *pp; pp = &(*pp)->next) {
        if (memcmp((*pp)->peer, peer, MM_NODE_ID_LEN) == 0) {
            catchup_drop(r, pp);
            return;
        }
    }
}

static void
on_vector(struct mm_registry *r, struct mm_qconn *conn,
          const uint8_t peer[MM_NODE_ID_LEN], int64_t sid, const uint8_t *body,
          size_t len)
{
    if (len < 1) return;
    struct mm__oplog_vec v;
    if (mm__oplog_vec_decode(&v, body + 1, len - 1) != 0) {
        MM_LOG(MM_LOG_INFO, "registry", "bad vector: %s",
               mm_strerror(MM_EDECODE));
        return;
    }
    /* Whether a catch-up is due at all. */
    long n = mm__recep_lacks(r->node, body + 1, len - 1);
    MM_LOG(MM_LOG_DEBUG, "registry", "vector in: the peer lacks %s%s",
           n > 0 ? "records" : "nothing",
           (body[0] & VEC_WANT_REPLY) ? ", answering with ours" : "");
    if (n > 0)
        catchup_start(r, peer, body + 1, len - 1);
    else if (n == 0)
        catchup_end(r, peer); /* nothing to send (maybe asked for) */
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
    if (role != MM_WIRE_ROLE_MEMBER)
        return; /* clients never write the registry */
    switch (type) {
    case REG_OPS:
        on_ops(r, conn, peer, sid, body, len);
        break;
    case REG_VECTOR:
        on_vector(r, conn, peer, sid, body, len);
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
    if (!up) inbatch_conn_gone(r, conn);
    if (role != MM_WIRE_ROLE_MEMBER) return;
    if (!up) {
        catchup_end(r, peer);
        return;
    }
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
    struct mm_registry *r = p->r;
    p->sent++;
    /* Sent at once when there is room, even while a catch-up of the peer
     * is under way: a new record must not wait for the catch-up's paced
     * batches (it may come twice; applying it again changes nothing). */
    if (has_room(conn, p->len + MM_WIRE_HDR_LEN) &&
        send_frame(r, id, conn, mm__net_control_stream(conn), REG_OPS, p->batch,
                   p->len) == 0)
        return 0;
    if (catchup_find(r, id)) return 0; /* its catch-up carries these too */
    /* No room (the peer is slow to acknowledge): ask for its vector; the
     * catch-up its answer starts sends what it lacks, paced. */
    struct catchup *c = r->ncu < MAX_MEMBERS ? mm__calloc(1, sizeof(*c)) : NULL;
    if (!c) return 0; /* anti-entropy repairs it */
    memcpy(c->peer, id, MM_NODE_ID_LEN);
    c->asked_ns = mm__now_ns();
    c->next = r->cu;
    r->cu = c;
    r->ncu++;
    r->st.push_deferred++;
    send_vector(r, id, conn, mm__net_control_stream(conn), 1);
    return 0;
}

/* Pushes one batch that fits the bound; the number of connections it went
 * to (0: sent to one live member, dialling it). */
static int
push_one(struct mm_registry *r, const uint8_t *batch, size_t len)
{
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
    return p.sent;
}

static int have_conn(struct mm_registry *r);

void
mm__registry_push(struct mm_registry *r, const uint8_t *batch, size_t len)
{
    if (!r) return;
    /* Nobody to push to: nothing to seal (sign) either. */
    if (r->nalive == 0 && !have_conn(r)) return;
    size_t max = batch_max(r);
    /*
     * Pushed in pieces within the bound (a record alone above it in a
     * piece of its own), each sealed with its origins' signed heads (a
     * head per origin counted in the bound).  With no member connection
     * only the first piece goes: it dials a live member, whose conn-up
     * vector exchange brings the rest as a paced catch-up.
     */
    struct mm__oplog_batch_iter it;
    struct mm__oplog_batch b;
    const uint8_t *rec;
    size_t rl, heads = 0;
    const uint8_t *last_origin = NULL;
    if (mm__oplog_batch_iter_init(&it, batch, len) != 0) return;
    mm__oplog_batch_init(&b);
    for (;;) {
        int more = mm__oplog_batch_iter_next(&it, &rec, &rl) == 1;
        int new_origin = more && rl > MM_NODE_ID_LEN &&
                         (last_origin == NULL ||
                          memcmp(last_origin, rec + 1, MM_NODE_ID_LEN) != 0);
        if (b.count &&
            (!more ||
             b.len + 4 + rl + (heads + new_origin) * MM_OPLOG_HEAD_LEN > max)) {
            int sent = 1;
            if (mm__recep_seal(r->node, &b) == 0 && b.count)
                sent = push_one(r, b.buf, b.len);
            mm__oplog_batch_release(&b);
            heads = 0;
            last_origin = NULL;
            new_origin = more;
            if (!sent) break;
        }
        if (!more) break;
        heads += new_origin;
        if (rl > MM_NODE_ID_LEN) last_origin = rec + 1;
        if (5 + 4 + rl > body_max(r)) {
            r->st.too_large++; /* cannot travel; a catch-up skips it too */
            continue;
        }
        if (mm__oplog_batch_add(&b, rec, rl) != 0) break;
    }
    mm__oplog_batch_release(&b);
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
            if (back || !have_conn(r)) digest_to(r, id, back);
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
    r->owe.fn = owe_cb;
    r->pump.fn = pump_cb;
    r->apply.fn = apply_cb;
    r->in_tail = &r->in;
    r->apply_ops_max = MM_REGISTRY_APPLY_OPS_MAX;
    r->apply_peer_max = MM_REGISTRY_APPLY_QUEUE_MAX;
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
    mm__tq_stop(r->tq, &r->owe);
    mm__tq_stop(r->tq, &r->pump);
    mm__tq_stop(r->tq, &r->apply);
    while (r->cu)
        catchup_drop(r, &r->cu);
    inbatch_free_all(r);
}

void
mm__registry_free(struct mm_registry *r)
{
    if (!r) return;
    mm__tq_stop(r->tq, &r->ae);
    mm__tq_stop(r->tq, &r->owe);
    mm__tq_stop(r->tq, &r->pump);
    mm__tq_stop(r->tq, &r->apply);
    while (r->cu)
        catchup_drop(r, &r->cu);
    inbatch_free_all(r);
    mm__free(r->owed);
    mm__free(r->alive);
    mm__free(r->failed);
    mm__free(r);
}

void
mm__registry_stats(const struct mm_registry *r, struct mm_registry_stats *out)
{
    *out = r->st;
    out->catchups_active = r->ncu;
    out->batch_max = batch_max(r);
    out->ae_rounds = r->ae_rounds;
    out->dials_owed = r->nowed;
}

int
mm__registry_send_ops(struct mm_registry *r, const uint8_t peer[MM_NODE_ID_LEN],
                      const uint8_t *body, size_t len)
{
    return send_frame(r, peer, NULL, -1, REG_OPS, body, len);
}

void
mm__registry_set_apply_limits(struct mm_registry *r, size_t ops,
                              size_t peer_bytes)
{
    if (ops) r->apply_ops_max = ops;
    if (peer_bytes) r->apply_peer_max = peer_bytes;
}
