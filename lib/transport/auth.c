/*
 * auth.c — the auth exchange on a connection's control stream (see quic.h):
 * once TLS is done the dialer sends HELLO + AUTH, the acceptor checks both
 * and answers HELLO + AUTH + AUTH_RESULT.  A proof binds the key (a cluster
 * key or a client key derived from one) to this TLS session (its exporter)
 * and to both node ids; the kind of key that made it bounds the role the
 * connection may take.  A connection that
 * passes comes up, after the crossing-dial rule picked the connection to
 * keep between two to the same peer.
 */
#include <string.h>

#include "crypto.h"
#include "transport/quic_int.h"

/* ---- proofs -------------------------------------------------------------- */

/* The auth key, HKDF(k, MM_LABEL_AUTH), of ring entry |idx| derived to
 * |kind| (its own kind or a weaker one: see ckey.h).  An HKDF costs ~11 us
 * here, and each handshake computes and checks proofs: derived once per
 * key and kind. */
static const uint8_t *
auth_key_as(struct mm_quic *q, size_t idx, int kind)
{
    const uint8_t *k = q->kr->keys[idx];
    if (!(q->auth_valid & (1u << idx)) ||
        memcmp(q->auth_of[idx], k, MM_CKEY_LEN) != 0) {
        for (int to = q->kr->kinds[idx]; to < MM_KEY_KINDS; to++) {
            uint8_t d[MM_CKEY_LEN];
            if (mm__ckey_derive(d, k, q->kr->kinds[idx], to) == 0)
                mm__hkdf_label(q->auth_keys[idx][to], 32, d, MM_LABEL_AUTH,
                               NULL, 0);
            explicit_bzero(d, sizeof(d));
        }
        memcpy(q->auth_of[idx], k, MM_CKEY_LEN);
        q->auth_valid |= 1u << idx;
    }
    return q->auth_keys[idx][kind];
}

/* The auth key of ring entry |idx| as it is (the one a dialer proves
 * with). */
const uint8_t *
mm__quic_auth_key(struct mm_quic *q, size_t idx)
{
    return auth_key_as(q, idx, q->kr->kinds[idx]);
}

void
mm__quic_proof(const uint8_t auth_key[32],
               const uint8_t exporter[MM_TLS_EXPORTER_LEN], char side,
               const uint8_t client_id[MM_ID_LEN],
               const uint8_t server_id[MM_ID_LEN],
               uint8_t out[MM_WIRE_PROOF_LEN])
{
    uint8_t msg[MM_TLS_EXPORTER_LEN + 1 + 2 * MM_ID_LEN];
    memcpy(msg, exporter, MM_TLS_EXPORTER_LEN);
    msg[MM_TLS_EXPORTER_LEN] = (uint8_t)side;
    memcpy(msg + MM_TLS_EXPORTER_LEN + 1, client_id, MM_ID_LEN);
    memcpy(msg + MM_TLS_EXPORTER_LEN + 1 + MM_ID_LEN, server_id, MM_ID_LEN);
    mm__hmac_sha256(out, auth_key, 32, msg, sizeof(msg));
}

static void
auth_proof(struct mm_quic *q, size_t idx, int kind, const uint8_t *exporter,
           char side, const uint8_t *client_id, const uint8_t *server_id,
           uint8_t out[MM_WIRE_PROOF_LEN])
{
    mm__quic_proof(auth_key_as(q, idx, kind), exporter, side, client_id,
                   server_id, out);
}

/*
 * The ring index whose proof matches |proof|, or -1; |*kind| the kind of
 * key that made it.  The dialer checks the acceptor's proof with its own
 * keys as they are (|derived| 0); the acceptor the dialer's with each key
 * and every client key derived from it (|derived| 1).
 */
static int
auth_check(const struct mm_qconn *c, char side, const uint8_t *proof,
           int derived, int *kind)
{
    struct mm_quic *q = c->q;
    const uint8_t *cid = c->dialer ? q->id->id : c->peer_id;
    const uint8_t *sid = c->dialer ? c->peer_id : q->id->id;
    int found = -1;
    for (size_t i = 0; i < q->kr->n; i++) {
        int from = q->kr->kinds[i];
        int to = derived ? MM_KEY_KINDS - 1 : from;
        for (int k = from; k <= to; k++) {
            uint8_t want[MM_WIRE_PROOF_LEN];
            auth_proof(q, i, k, c->exporter, side, cid, sid, want);
            /* Check every key, so the time does not tell which one
             * matched. */
            if (mm__ct_memcmp(want, proof, MM_WIRE_PROOF_LEN) == 0 &&
                found < 0) {
                found = (int)i;
                *kind = k;
            }
        }
    }
    return found;
}

int
mm__quic_conn_key_kind(const struct mm_qconn *c)
{
    return c->peer_key;
}

static int
ctrl_send_hello_auth(struct mm_qconn *c, size_t idx, int kind, int with_result)
{
    struct mm_quic *q = c->q;
    struct qstream *s = stream_find(c, c->ctrl_sid);
    if (s == NULL) return MM_ENOTFOUND;
    const char *addr = q->advertise ? q->advertise : q->local_str;
    struct mm_wire_hello h = {
        .version = q->cfg.wire_max,
        .features = q->cfg.features,
        .generation = q->id->generation,
        .role = (uint8_t)q->cfg.role,
        .name = q->name,
        .name_len = strlen(q->name),
        .addr = addr,
        .addr_len = strlen(addr),
    };
    memcpy(h.node, q->id->id, MM_ID_LEN);
    struct mm_wire_auth a;
    const uint8_t *cid = c->dialer ? q->id->id : c->peer_id;
    const uint8_t *sid = c->dialer ? c->peer_id : q->id->id;
    auth_proof(q, idx, kind, c->exporter, c->dialer ? 'c' : 's', cid, sid,
               a.proof);
    struct mm_wire_auth_result r = {.status = 0};
    uint8_t buf[1024];
    size_t n = mm__wire_hello_encode(buf, sizeof(buf), &h);
    if (n == 0) return MM_EINVAL;
    size_t m = mm__wire_auth_encode(buf + n, sizeof(buf) - n, &a);
    if (m == 0) return MM_EINVAL;
    n += m;
    if (with_result) {
        m = mm__wire_auth_result_encode(buf + n, sizeof(buf) - n, &r);
        if (m == 0) return MM_EINVAL;
        n += m;
    }
    return mm__quic_stream_queue(s, buf, n);
}

/* A node warns about failed authentication; a client session reports the
 * outcome once, in its own error text, so its transport only informs. */
static int
auth_log_level(const struct mm_quic *q)
{
    return q->cfg.role == MM_WIRE_ROLE_CLIENT ? MM_LOG_INFO : MM_LOG_WARN;
}

void
mm__quic_auth_fail(struct mm_qconn *c, const char *why)
{
    char addr[64], id[33];
    mm__udp_format_addr(addr, sizeof(addr), (struct sockaddr *)&c->remote);
    mm__hex(id, c->peer_id, MM_ID_LEN);
    MM_LOG(auth_log_level(c->q), "quic", "auth failed with %s (%s): %s", addr,
           c->have_peer_id ? id : "?", why);
    c->q->st.auth_failures++;
    if (!c->dialer) c->auth_failed = 1;
    mm__quic_conn_request_close(c, MM_EUNAUTHORIZED, 1);
}

/* ---- coming up ----------------------------------------------------------- */

/* The lower node id's dialled connection wins a crossing-dial race. */
static const uint8_t *
conn_dialer_id(const struct mm_qconn *c)
{
    return c->dialer ? c->q->id->id : c->peer_id;
}

/*
 * |c| just passed auth.  Another up connection to the same peer is either
 * stale (older generation), or a crossing dial: keep one.  Returns 1 if |c|
 * survives.
 */
static int
conn_resolve_dup(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    int survives = 1;
    /* CLI processes share one client identity: sessions are never
     * duplicates of each other, and never of a member connection. */
    if (c->peer_role == MM_WIRE_ROLE_CLIENT) return 1;
    for (struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        struct mm_qconn *d = mm__container_of(l, struct mm_qconn, link);
        if (d == c || d->state != QC_UP || d->pending_close || d->superseded ||
            d->peer_role == MM_WIRE_ROLE_CLIENT ||
            memcmp(d->peer_id, c->peer_id, MM_ID_LEN) != 0)
            continue;
        if (d->peer_gen < c->peer_gen) {
            MM_LOG(MM_LOG_INFO, "quic",
                   "peer restarted: replacing a stale connection");
            mm__quic_conn_request_close(d, MM_ECLOSED, 1);
        } else if (d->peer_gen > c->peer_gen) {
            mm__quic_conn_request_close(c, MM_ECLOSED, 1);
            survives = 0;
            break;
        } else if (memcmp(conn_dialer_id(c), conn_dialer_id(d), MM_ID_LEN) <
                   0) {
            /*
             * A crossing dial won over a connection already in use: |d|
             * stays open, out of the map of peers, so that the calls and
             * responses under way on it complete; the user closes it once
             * drained (conn_up for |c| tells it).  Both ends make the same
             * choice, as the rule is symmetric.
             */
            d->superseded = 1;
            MM_LOG(MM_LOG_DEBUG, "quic",
                   "%s: a crossing dial won; the older connection drains",
                   d->peer_name);
        } else {
            /*
             * Same dialer (a second dial) or a higher one: |c| loses.  It
             * still comes up, superseded: the peer may have passed auth on
             * it first and sent on it already, so it drains like any loser
             * (closing it here would drop what the peer sent).
             */
            c->superseded = 1;
            MM_LOG(MM_LOG_DEBUG, "quic", "%s: a crossing dial lost; it drains",
                   c->peer_name);
            break;
        }
    }
    /* Carry out the closes of the others now (they are not busy). */
again:
    for (struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        struct mm_qconn *d = mm__container_of(l, struct mm_qconn, link);
        if (d != c && d->pending_close && d->state != QC_DEAD && !d->busy) {
            mm__quic_conn_settle(d);
            goto again;
        }
    }
    return survives;
}

static void
conn_become_up(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    c->state = QC_UP;
    conn_hs_uncount(c);
    q->st.conns_up++;
    struct qstream *ctrl = stream_find(c, c->ctrl_sid);
    if (ctrl) ctrl->rd.max = q->cfg.max_frame;
    mm__quic_credit_up(c); /* the full windows, and what auth took */
    c->last_use_ns = quic_now(q);
    /* Now the peer may open streams (the acceptor already granted one). */
    uint64_t win = q->cfg.stream_window;
    ngtcp2_conn_extend_max_streams_bidi(c->conn, c->dialer ? win : win - 1);
    if (conn_resolve_dup(c)) c->up_pending = 1;
}

/* ---- the exchange -------------------------------------------------------- */

void
mm__quic_auth_step(struct mm_qconn *c)
{
    if (!c->hs_done || c->state != QC_HANDSHAKE || c->pending_close ||
        !c->alpn_ok)
        return;
    if (c->dialer) {
        if (c->q->test_hold_auth) return;
        if (!c->ctrl_sent) {
            int64_t sid;
            struct qstream *s = mm__quic_stream_new(c, -1);
            if (s == NULL) {
                mm__quic_conn_request_close(c, UV_ENOMEM, 1);
                return;
            }
            int rv = ngtcp2_conn_open_bidi_stream(c->conn, &sid, s);
            if (rv != 0) {
                mm__quic_stream_free(s);
                mm__quic_conn_request_close(c, MM_ECLOSED, 1);
                return;
            }
            s->sid = sid;
            s->ctrl = 1;
            s->rd.max = QUIC_PREAUTH_MAX_FRAME;
            c->ctrl_sid = sid;
            c->ctrl_sent = 1;
            /* A dialer proves with the primary, ring entry 0, read at
             * each dial: after `murmer keys use` the new key. */
            if (ctrl_send_hello_auth(c, 0, c->q->kr->kinds[0], 0) != 0) {
                mm__quic_conn_request_close(c, UV_ENOMEM, 1);
                return;
            }
        }
        if (c->result_rcvd && c->result_status != 0) {
            int err = mm_err_from_wire(c->result_status);
            MM_LOG(auth_log_level(c->q), "quic", "peer refused us: %s",
                   mm_strerror(err));
            mm__quic_conn_request_close(c, err, 1);
            return;
        }
        if (!(c->hello_rcvd && c->auth_rcvd && c->result_rcvd)) return;
        int kind = MM_KEY_CLUSTER;
        if (auth_check(c, 's', c->peer_proof, 0, &kind) < 0) {
            mm__quic_auth_fail(c, "wrong cluster key (server proof)");
            return;
        }
        c->peer_key = kind;
        conn_become_up(c);
    } else {
        if (!(c->hello_rcvd && c->auth_rcvd)) return;
        int kind = MM_KEY_CLUSTER;
        int idx = auth_check(c, 'c', c->peer_proof, 1, &kind);
        /* Only the cluster key proves a member: the role a HELLO claims
         * is bound to the key that made the proof. */
        int role_bad = idx >= 0 && c->peer_role != MM_WIRE_ROLE_CLIENT &&
                       kind != MM_KEY_CLUSTER;
        if (idx < 0 || role_bad) {
            /* Say why before closing; the close carries it as well. */
            struct qstream *s = stream_find(c, c->ctrl_sid);
            uint8_t buf[16];
            struct mm_wire_auth_result r = {
                .status = mm_err_to_wire(MM_EUNAUTHORIZED)};
            size_t n = mm__wire_auth_result_encode(buf, sizeof(buf), &r);
            if (s && n) mm__quic_stream_queue(s, buf, n);
            if (role_bad) c->q->st.role_refused++;
            mm__quic_auth_fail(c, role_bad ? "a client key claims the member "
                                             "role"
                                           : "wrong cluster key");
            return;
        }
        c->peer_key = kind;
        if (ctrl_send_hello_auth(c, (size_t)idx, kind, 1) != 0) {
            mm__quic_conn_request_close(c, UV_ENOMEM, 1);
            return;
        }
        conn_become_up(c);
    }
}

/*
 * The peer's HELLO names no version this node speaks (docs/wire.md,
 * Versions): the acceptor says so in an AUTH_RESULT, and either side
 * closes with MM_EINVAL.
 */
static void
auth_refuse_version(struct mm_qconn *c, uint16_t peer)
{
    struct mm_quic *q = c->q;
    if (!c->dialer) {
        struct qstream *s = stream_find(c, c->ctrl_sid);
        uint8_t buf[16];
        struct mm_wire_auth_result r = {.status = mm_err_to_wire(MM_EINVAL)};
        size_t n = mm__wire_auth_result_encode(buf, sizeof(buf), &r);
        if (s && n) mm__quic_stream_queue(s, buf, n);
    }
    MM_LOG(auth_log_level(q), "quic",
           "peer speaks wire version %u, this node %u..%u: refused",
           (unsigned)peer, (unsigned)q->cfg.wire_min,
           (unsigned)q->cfg.wire_max);
    q->st.auth_failures++;
    if (!c->dialer) c->auth_failed = 1;
    mm__quic_conn_request_close(c, MM_EINVAL, 1);
}

/* Handles a frame on the control stream before the connection is up. */
int
mm__quic_auth_frame(struct mm_qconn *c, struct qstream *s, uint8_t type,
                    const uint8_t *body, size_t len)
{
    if (!s->ctrl) {
        mm__quic_auth_fail(c, "stream before auth");
        return QUIC_STOP;
    }
    switch (type) {
    case MM_WIRE_HELLO: {
        struct mm_wire_hello h;
        if (c->hello_rcvd || mm__wire_hello_decode(&h, body, len) != 0) {
            mm__quic_auth_fail(c, "bad hello");
            return QUIC_STOP;
        }
        if (!c->have_peer_id || memcmp(h.node, c->peer_id, MM_ID_LEN) != 0) {
            mm__quic_auth_fail(c,
                               "hello node id differs from the certificate's");
            return QUIC_STOP;
        }
        c->wire_version = mm__wire_version_pick(c->q->cfg.wire_min,
                                                c->q->cfg.wire_max, h.version);
        if (c->wire_version == 0) {
            auth_refuse_version(c, h.version);
            return QUIC_STOP;
        }
        c->wire_features = h.features & c->q->cfg.features;
        c->hello_rcvd = 1;
        c->peer_gen = h.generation;
        c->peer_role = h.role;
        size_t n = MM_MIN(h.name_len, sizeof(c->peer_name) - 1);
        memcpy(c->peer_name, h.name, n);
        c->peer_name[n] = '\0';
        n = MM_MIN(h.addr_len, sizeof(c->peer_addr) - 1);
        memcpy(c->peer_addr, h.addr, n);
        c->peer_addr[n] = '\0';
        if (n == 0)
            mm__udp_format_addr(c->peer_addr, sizeof(c->peer_addr),
                                (struct sockaddr *)&c->remote);
        return 0;
    }
    case MM_WIRE_AUTH: {
        struct mm_wire_auth a;
        if (!c->hello_rcvd || c->auth_rcvd ||
            mm__wire_auth_decode(&a, body, len) != 0) {
            mm__quic_auth_fail(c, "bad auth");
            return QUIC_STOP;
        }
        memcpy(c->peer_proof, a.proof, sizeof(a.proof));
        c->auth_rcvd = 1;
        return 0;
    }
    case MM_WIRE_AUTH_RESULT: {
        struct mm_wire_auth_result r;
        if (!c->dialer || c->result_rcvd ||
            mm__wire_auth_result_decode(&r, body, len) != 0) {
            mm__quic_auth_fail(c, "bad auth result");
            return QUIC_STOP;
        }
        c->result_rcvd = 1;
        c->result_status = r.status;
        return 0;
    }
    default:
        mm__quic_auth_fail(c, "frame before auth");
        return QUIC_STOP;
    }
}
