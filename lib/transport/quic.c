/*
 * quic.c — QUIC proper: the connection map by DCID, ngtcp2 0.12.1
 * connections with one expiry timer each on the loop's timer queue, their
 * life from dial or accept to close, and the transport's public functions
 * (see quic.h; quic_int.h says how the transport's files divide the
 * work).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "crypto.h"
#include "transport/quic_int.h"

#define QUIC_CIDLEN 18 /* one fixed local SCID length, client and server */
#define QUIC_MAX_VECS 16
#define QUIC_FLUSH_LINGER 64  /* see quic_flush_cb */
#define QUIC_TIMER_FLOOR_MS 5 /* see conn_arm_timer */
#define QUIC_RETRY_ABOVE 16   /* inbound handshakes before Retry; see accept */
#define QUIC_RETRY_TOKEN_TTL (10 * NGTCP2_SECONDS)
#define QUIC_INITIAL_RTT (10 * NGTCP2_MILLISECONDS) /* LAN scale */

/* ---- CID map ------------------------------------------------------------- */

static size_t
cid_bucket(const uint8_t *data, size_t len)
{
    return (size_t)(mm__hash_bytes(data, len) % QUIC_MAP_BUCKETS);
}

static struct mm_qconn *
cid_find(struct mm_quic *q, const uint8_t *data, size_t len)
{
    if (len == 0 || len > NGTCP2_MAX_CIDLEN) return NULL;
    for (struct cid_ent *e = q->map[cid_bucket(data, len)]; e; e = e->next)
        if (e->len == len && memcmp(e->data, data, len) == 0) return e->c;
    return NULL;
}

static int
cid_add(struct mm_qconn *c, const uint8_t *data, size_t len)
{
    struct cid_ent *e = mm__calloc(1, sizeof(*e));
    if (e == NULL) return UV_ENOMEM;
    size_t b = cid_bucket(data, len);
    e->c = c;
    e->len = (uint8_t)len;
    memcpy(e->data, data, len);
    e->next = c->q->map[b];
    c->q->map[b] = e;
    e->cnext = c->cids;
    c->cids = e;
    return 0;
}

static void
cid_unlink_bucket(struct mm_quic *q, struct cid_ent *e)
{
    struct cid_ent **pp = &q->map[cid_bucket(e->data, e->len)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) *pp = e->next;
}

static void
cid_remove(struct mm_qconn *c, const uint8_t *data, size_t len)
{
    for (struct cid_ent **pp = &c->cids; *pp; pp = &(*pp)->cnext) {
        struct cid_ent *e = *pp;
        if (e->len == len && memcmp(e->data, data, len) == 0) {
            cid_unlink_bucket(c->q, e);
            *pp = e->cnext;
            mm__free(e);
            return;
        }
    }
}

static void
cid_remove_all(struct mm_qconn *c)
{
    while (c->cids) {
        struct cid_ent *e = c->cids;
        c->cids = e->cnext;
        cid_unlink_bucket(c->q, e);
        mm__free(e);
    }
}

/* ---- ngtcp2 callbacks ---------------------------------------------------- */

static void
cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    MM_UNUSED(ctx);
    while (len > 0) {
        uint64_t r = mm__rand64();
        size_t n = MM_MIN(len, sizeof(r));
        memcpy(dest, &r, n);
        dest += n;
        len -= n;
    }
}

static int
cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
               size_t cidlen, void *ud)
{
    struct mm_qconn *c = ud;
    MM_UNUSED(conn);
    if (mm__random_bytes(cid->data, cidlen) != 0 ||
        mm__random_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (cid_add(c, cid->data, cidlen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int
cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *ud)
{
    MM_UNUSED(conn);
    cid_remove(ud, cid->data, cid->datalen);
    return 0;
}

static int
cb_handshake_completed(ngtcp2_conn *conn, void *ud)
{
    struct mm_qconn *c = ud;
    MM_UNUSED(conn);
    c->hs_done = 1;
    c->alpn_ok = mm__tls_alpn_is_murmer(c->tls);
    if (mm__tls_peer_id(c->tls, c->peer_id) == 0) c->have_peer_id = 1;
    /* The exporter is only right from here on. */
    if (!c->have_peer_id || mm__tls_exporter(c->tls, c->exporter) != 0) {
        mm__quic_auth_fail(c, "no verified peer key");
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static void
quic_callbacks(ngtcp2_callbacks *cb, int server)
{
    memset(cb, 0, sizeof(*cb)); /* set by name, never positionally */
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = cb_rand;
    cb->get_new_connection_id = cb_get_new_cid;
    cb->remove_connection_id = cb_remove_cid;
    cb->handshake_completed = cb_handshake_completed;
    mm__quic_stream_callbacks(cb);
}

static ngtcp2_conn *
quic_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct mm_qconn *c = ref->user_data;
    return c->conn;
}

/* ---- connection life ----------------------------------------------------- */

void
mm__quic_conn_request_close(struct mm_qconn *c, int err, int send)
{
    if (c->pending_close || c->state == QC_DEAD) return;
    c->pending_close = 1;
    c->close_err = err ? err : MM_ECLOSED;
    c->close_send = send;
    uint16_t code = mm_err_to_wire(c->close_err);
    ngtcp2_connection_close_error_set_application_error(&c->ccerr, code, NULL,
                                                        0);
}

static void
conn_free(struct mm_qconn *c)
{
    while (!ql_empty(&c->streams))
        mm__quic_stream_free(
            mm__container_of(c->streams.next, struct qstream, link));
    if (c->conn) ngtcp2_conn_del(c->conn);
    mm__tls_session_free(c->tls);
    mm__free(c);
}

static void quic_flush_cb(uv_prepare_t *h);

/*
 * |c| is finished and out of every list: it is freed by the next flush
 * (quic_flush_cb, before the loop polls) or with the transport, not now,
 * as its callers up the stack (a dial that failed at once, a callback that
 * closed it) may still hold it.
 */
static void
conn_bury(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    ql_push(&q->dead, &c->link);
    if (!q->flush_active && !q->closing) {
        uv_prepare_start(&q->flush, quic_flush_cb);
        q->flush_active = 1;
    }
}

static void
quic_free_dead(struct mm_quic *q)
{
    while (!ql_empty(&q->dead)) {
        struct mm_qconn *c =
            mm__container_of(q->dead.next, struct mm_qconn, link);
        ql_remove(&c->link);
        conn_free(c);
    }
}

/* Carries out a requested close: CONNECTION_CLOSE, conn_down, free. */
static void
conn_finish(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    if (c->state == QC_DEAD) return;
    if (c->close_send && c->conn &&
        !ngtcp2_conn_is_in_closing_period(c->conn) &&
        !ngtcp2_conn_is_in_draining_period(c->conn)) {
        ngtcp2_path_storage ps;
        ngtcp2_pkt_info pi;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
            c->conn, &ps.path, &pi, q->txbuf, sizeof(q->txbuf), &c->ccerr,
            quic_now(q));
        if (n > 0)
            mm__udp_send(q, (struct sockaddr *)&c->remote, q->txbuf, (size_t)n);
    }
    c->state = QC_DEAD;
    conn_hs_uncount(c);
    if (!c->dialer) q->inbound_conns--;
    cid_remove_all(c);
    ql_remove(&c->link);
    ql_remove(&c->wlink);
    mm__tq_stop(q->cfg.tq, &c->tmr);
    if (c->dialer || c->reportable || c->auth_failed) {
        if (q->ops.conn_down) q->ops.conn_down(q->ops.data, c, c->close_err);
    }
    conn_bury(c);
}

static int
quic_map_ccerr(const ngtcp2_connection_close_error *e)
{
    switch (e->type) {
    case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION:
        if (e->error_code == 0 || e->error_code > 0xffff) return MM_ECLOSED;
        return mm_err_from_wire((uint16_t)e->error_code);
    case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT:
        if ((e->error_code & ~0xffull) == NGTCP2_CRYPTO_ERROR)
            return MM_EUNAUTHORIZED; /* a TLS alert: key or ALPN refused */
        return MM_ECLOSED;
    default:
        return MM_EUNREACHABLE;
    }
}

/* Writes every packet ngtcp2 has for us. */
static void
conn_write(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    if (c->state == QC_DEAD || c->pending_close || c->conn == NULL) return;
    uint64_t now = quic_now(q);
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_path_storage_zero(&ps);
    size_t maxpl = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
    if (maxpl > sizeof(q->txbuf)) maxpl = sizeof(q->txbuf);
    size_t limit = ngtcp2_conn_get_send_quantum(c->conn) / maxpl;
    if (limit == 0) limit = 1;
    size_t pkts = 0;
    unsigned gen = ++c->write_gen;
    for (;;) {
        struct qstream *s = NULL;
        int data_ok = ngtcp2_conn_get_max_data_left(c->conn) > 0;
        for (struct qlink *l = c->txq.next; l != &c->txq; l = l->next) {
            struct qstream *t = mm__container_of(l, struct qstream, tx);
            if (t->blocked_gen == gen || !stream_has_tx(t)) continue;
            if (t->sent_off < t->queued_off && !data_ok) continue;
            s = t;
            break;
        }
        ngtcp2_vec vec[QUIC_MAX_VECS];
        size_t nvec = 0;
        int64_t sid = -1;
        /*
         * MORE lets further streams share the packet (ngtcp2 answers
         * WRITE_MORE and the next call adds to it).  With one stream
         * waiting it only costs a second call to close the packet.  The
         * streams before |s| in the queue were passed over just now.
         */
        int others = 0;
        for (struct qlink *l = s ? s->tx.next : &c->txq; l != &c->txq;
             l = l->next) {
            struct qstream *t = mm__container_of(l, struct qstream, tx);
            if (t->blocked_gen != gen && stream_has_tx(t)) {
                others = 1;
                break;
            }
        }
        uint32_t flags = s && !others ? 0 : NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (s) {
            sid = s->sid;
            uint64_t off = s->sent_off;
            for (struct chunk *ch = s->send; ch && nvec < QUIC_MAX_VECS;
                 ch = ch->next) {
                size_t skip = off > ch->off ? (size_t)(off - ch->off) : 0;
                vec[nvec].base = ch->data + skip;
                vec[nvec].len = ch->len - skip;
                nvec++;
                off = ch->off + ch->len;
            }
            if (s->fin_req && off == s->queued_off)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
            /* Round robin: the next packet starts with another stream. */
            ql_remove(&s->tx);
            ql_push(&c->txq, &s->tx);
        }
        ngtcp2_ssize ndatalen = -1;
        ngtcp2_ssize nwrite = ngtcp2_conn_writev_stream(
            c->conn, &ps.path, &pi, q->txbuf, maxpl, &ndatalen, flags, sid,
            nvec ? vec : NULL, nvec, now);
        if (nwrite < 0) {
            switch (nwrite) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
            case NGTCP2_ERR_STREAM_SHUT_WR:
            case NGTCP2_ERR_STREAM_NOT_FOUND:
                if (s) s->blocked_gen = gen;
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if (s) {
                    stream_advance(s, ndatalen, flags);
                    if (!stream_has_tx(s)) ql_remove(&s->tx);
                }
                continue;
            default:
                MM_LOG(MM_LOG_WARN, "quic", "write: %s",
                       ngtcp2_strerror((int)nwrite));
                mm__quic_conn_request_close(c, MM_ECLOSED, 1);
                ngtcp2_connection_close_error_set_transport_error_liberr(
                    &c->ccerr, (int)nwrite, NULL, 0);
                return;
            }
        }
        if (s && ndatalen >= 0) {
            stream_advance(s, ndatalen, flags);
            if (!stream_has_tx(s)) ql_remove(&s->tx);
        }
        if (nwrite == 0) break;
        c->bytes_out += (uint64_t)nwrite;
        mm__udp_send(q, (struct sockaddr *)&c->remote, q->txbuf,
                     (size_t)nwrite);
        if (++pkts >= limit) break;
        /*
         * The packet took everything we had (no stream left) and is far
         * from full, so ngtcp2 had nothing more either: it packs ACKs,
         * control frames and retransmissions greedily.  Asking again only
         * to hear 0 costs about 0.5 us per write.  During the handshake
         * coalesced packets may follow; there we always ask.
         */
        if (!others && !(s && stream_has_tx(s)) && c->state == QC_UP &&
            (size_t)nwrite < maxpl / 2)
            break;
    }
    /*
     * Before the first RTT sample ngtcp2 paces with initial_rtt, which
     * would delay the handshake by milliseconds on a LAN; pace only once
     * the handshake is done (initial_rtt is LAN-scale as well).
     */
    /*
     * Pace only while a burst is still queued: the pacing time is part of
     * ngtcp2_conn_get_expiry(), and setting it after the last packet of a
     * request/response exchange only costs a spurious timer wake-up (about
     * two per round trip, measured).
     */
    if (c->hs_done && pkts > 0 && !ql_empty(&c->txq))
        ngtcp2_conn_update_pkt_tx_time(c->conn, now);
}

static void
conn_track_outstanding(struct mm_qconn *c, uint64_t now)
{
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->conn, &st);
    if (st.bytes_in_flight == 0)
        c->outstanding_since = 0;
    else if (c->outstanding_since == 0)
        c->outstanding_since = now;
}

/* The handshake, probe and idle limits of |c|: the earliest. */
static uint64_t
conn_limits(struct mm_qconn *c, uint64_t now)
{
    struct mm_quic *q = c->q;
    uint64_t deadline = UINT64_MAX;
    conn_track_outstanding(c, now);
    if (c->state != QC_UP) {
        uint64_t d = c->created_ns + (uint64_t)q->cfg.handshake_ms * 1000000u;
        deadline = MM_MIN(deadline, d);
    } else {
        if (c->outstanding_since) {
            uint64_t from = MM_MAX(c->outstanding_since, c->last_rx_ns);
            deadline = MM_MIN(deadline,
                              from + (uint64_t)q->cfg.probe_fail_ms * 1000000u);
        }
        if (c->nstreams == 0 && q->cfg.idle_ms)
            deadline = MM_MIN(
                deadline, c->last_use_ns + (uint64_t)q->cfg.idle_ms * 1000000u);
    }
    return deadline;
}

/* When |c| needs its timer: ngtcp2's expiry, put off as below, or earlier
 * for the handshake, probe and idle limits. */
static uint64_t
conn_deadline(struct mm_qconn *c, uint64_t now)
{
    uint64_t deadline = ngtcp2_conn_get_expiry(c->conn);
    /*
     * With nothing queued to send, ngtcp2's next expiry is loss recovery
     * (PTO: about 1 ms on loopback, as ACKs are not delayed) or a stale
     * pacing slot.  Waking for it at that precision buys nothing on a LAN
     * and costs on every sleep: a poll timeout shorter than the kernel's
     * tick re-programs the CPU's timer on the way into epoll_wait and out
     * of it (on a VM, an exit to the hypervisor each way).  So such a
     * wake-up is put off to at least
     * QUIC_TIMER_FLOOR_MS; a burst still queued keeps its precise pacing.
     */
    if (c->hs_done && ql_empty(&c->txq))
        deadline = MM_MAX(deadline, now + QUIC_TIMER_FLOOR_MS * 1000000ull);
    return MM_MIN(deadline, conn_limits(c, now));
}

static void
conn_arm_timer(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    uint64_t now = quic_now(q);
    /*
     * With nothing queued, conn_deadline() is never before now +
     * QUIC_TIMER_FLOOR_MS or the limits; an armed deadline no later than
     * both stays (below) without asking ngtcp2 for its expiry, which is
     * the costly part (~250 instructions, once per packet each way).
     */
    if (c->tmr.idx && c->hs_done && ql_empty(&c->txq) &&
        c->tmr.deadline_ns <= now + QUIC_TIMER_FLOOR_MS * 1000000ull &&
        c->tmr.deadline_ns <= conn_limits(c, now))
        return;
    uint64_t deadline = conn_deadline(c, now);
    /* An armed deadline no later than this one stays: waking early finds
     * nothing due and re-arms (conn_expire), which is cheaper than moving
     * the timer on every packet. */
    if (c->tmr.idx && c->tmr.deadline_ns <= deadline) return;
    mm__tq_start(q->cfg.tq, &c->tmr, deadline);
}

void
mm__quic_conn_settle(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    if (c->state == QC_DEAD) return;
    c->busy++;
    for (int round = 0; round < 16; round++) {
        int progress = 0;
        if (c->state == QC_HANDSHAKE) mm__quic_auth_step(c); /* in auth.c */
        int resets = c->resets_pending; /* a set during the loop stays */
        c->resets_pending = 0;
        for (struct qlink *l = resets ? c->streams.next : &c->streams;
             l != &c->streams; l = l->next) {
            struct qstream *s = mm__container_of(l, struct qstream, link);
            if (s->reset_req && !s->reset_done && !s->closed) {
                s->reset_done = 1;
                ql_remove(&s->tx);
                ngtcp2_conn_shutdown_stream(c->conn, s->sid, s->reset_code);
            }
        }
        if (c->up_pending && !c->pending_close) {
            c->up_pending = 0;
            c->reportable = 1;
            if (q->ops.conn_up)
                q->ops.conn_up(q->ops.data, c, c->peer_id, c->peer_gen,
                               c->peer_role, c->peer_name, c->peer_addr);
            progress = 1;
        }
        while (!ql_empty(&c->closedq) && !c->pending_close) {
            struct qstream *s =
                mm__container_of(c->closedq.next, struct qstream, done);
            ql_remove(&s->done);
            int64_t sid = s->sid;
            int err = s->close_err;
            mm__quic_stream_free(s);
            if (c->state == QC_UP && q->ops.stream_closed)
                q->ops.stream_closed(q->ops.data, c, sid, err);
            progress = 1;
        }
        if (c->room_pending && !c->pending_close) {
            c->room_pending = 0;
            if (q->ops.send_room) q->ops.send_room(q->ops.data, c);
            progress = 1;
        }
        if (c->credit_pending && !c->pending_close) {
            c->credit_pending = 0;
            c->credit_wanted = 0;
            if (q->ops.stream_credit) q->ops.stream_credit(q->ops.data, c);
            progress = 1;
        }
        if (c->pending_close) break;
        /*
         * An up connection writes once per loop turn (quic_flush_cb, just
         * before the loop polls): the frames that every callback of this
         * turn queued share packets, and the peer's packets read in this
         * turn are acknowledged together.  The handshake writes at once.
         */
        if (c->state == QC_UP && !q->flushing && !q->closing)
            mm__quic_defer_write(c);
        else
            conn_write(c);
        if (!progress) break;
    }
    c->busy--;
    if (c->pending_close) {
        /* Let queued stream data (an AUTH_RESULT) go before the close. */
        if (c->close_send && c->auth_failed) {
            c->pending_close = 0;
            conn_write(c);
            c->pending_close = 1;
        }
        conn_finish(c);
    } else if (!ql_linked(&c->wlink)) {
        /*
         * With a write due this turn the timer is armed after that write:
         * arming it now would, for a sub-ms ACK-delay expiry (ngtcp2 caps
         * the ACK delay at smoothed_rtt / 8), run a timer callback at the
         * start of the next turn just before the write that sends the ACK
         * anyway, once per packet received.
         */
        conn_arm_timer(c);
    }
}

void
mm__quic_defer_write(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    if (!ql_linked(&c->wlink)) ql_push(&q->wq, &c->wlink);
    if (!q->flush_active) {
        uv_prepare_start(&q->flush, quic_flush_cb);
        q->flush_active = 1;
    }
}

/* Writes every connection that has a write due (settle writes at once
 * while |flushing| is set). */
void
mm__quic_flush(struct mm_quic *q)
{
    int own_clock = q->now_cache == 0;
    if (own_clock) q->now_cache = uv_hrtime();
    q->flushing = 1;
    while (!ql_empty(&q->wq)) {
        struct mm_qconn *c =
            mm__container_of(q->wq.next, struct mm_qconn, wlink);
        ql_remove(&c->wlink);
        if (c->state == QC_DEAD || c->busy) continue;
        mm__quic_conn_settle(c);
    }
    q->flushing = 0;
    if (own_clock) q->now_cache = 0;
}

/*
 * The flush handle stays started for QUIC_FLUSH_LINGER turns without a
 * write before it stops: under a steady exchange (a write every turn) that
 * saves a uv_prepare_start and a uv_prepare_stop per packet.  A started
 * prepare handle does not keep the loop from sleeping.
 */
static void
quic_flush_cb(uv_prepare_t *h)
{
    struct mm_quic *q = h->data;
    if (MM_UNLIKELY(!ql_empty(&q->dead))) quic_free_dead(q);
    if (!ql_empty(&q->wq)) {
        uint64_t out = q->st.pkts_out;
        mm__quic_flush(q);
        q->flush_idle = 0;
        if (q->hot_ns && q->st.pkts_out != out) mm__udp_hot_wait(q);
    } else if (++q->flush_idle >= QUIC_FLUSH_LINGER && q->flush_active) {
        uv_prepare_stop(&q->flush);
        q->flush_active = 0;
        q->flush_idle = 0;
    }
}

static void conn_expire(struct mm_qconn *c);

static void
conn_tmr_cb(struct mm_tmr *t)
{
    conn_expire(mm__container_of(t, struct mm_qconn, tmr));
}

static void
conn_expire(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    uint64_t now = quic_now(q);
    if (c->state == QC_DEAD) return;
    conn_enter(c);
    if (ngtcp2_conn_get_expiry(c->conn) <= now) {
        int rv = ngtcp2_conn_handle_expiry(c->conn, now);
        if (rv != 0) {
            /* Idle close or handshake timeout: nothing left to send. */
            mm__quic_conn_request_close(c, MM_EUNREACHABLE, 0);
        }
    }
    if (c->state != QC_UP &&
        now >= c->created_ns + (uint64_t)q->cfg.handshake_ms * 1000000u) {
        MM_LOG(MM_LOG_INFO, "quic", "handshake/auth timed out");
        mm__quic_conn_request_close(c, MM_EUNREACHABLE, 1);
    }
    if (c->state == QC_UP && !c->pending_close) {
        conn_track_outstanding(c, now);
        uint64_t from = MM_MAX(c->outstanding_since, c->last_rx_ns);
        if (c->outstanding_since &&
            now >= from + (uint64_t)q->cfg.probe_fail_ms * 1000000u) {
            MM_LOG(MM_LOG_INFO, "quic", "%s: no answer for %u ms", c->peer_name,
                   q->cfg.probe_fail_ms);
            mm__quic_conn_request_close(c, MM_EUNREACHABLE, 1);
        } else if (c->nstreams == 0 && q->cfg.idle_ms &&
                   now >=
                       c->last_use_ns + (uint64_t)q->cfg.idle_ms * 1000000u) {
            MM_LOG(MM_LOG_DEBUG, "quic", "%s: idle, closing", c->peer_name);
            mm__quic_conn_request_close(c, MM_ECLOSED, 1);
        }
    }
    conn_leave(c);
}

static void
conn_recv(struct mm_qconn *c, const struct sockaddr *from, socklen_t fromlen,
          const uint8_t *pkt, size_t len)
{
    struct mm_quic *q = c->q;
    if (c->state == QC_DEAD || c->pending_close) return;
    c->bytes_in += len;
    ngtcp2_path path = {
        .local = {(ngtcp2_sockaddr *)&q->local, q->local_len},
        .remote = {(ngtcp2_sockaddr *)from, fromlen},
    };
    ngtcp2_pkt_info pi;
    memset(&pi, 0, sizeof(pi));
    uint64_t now = quic_now(q);
    conn_enter(c);
    c->last_rx_ns = now;
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, len, now);
    if (rv != 0 && !c->pending_close) {
        ngtcp2_connection_close_error e;
        switch (rv) {
        case NGTCP2_ERR_DRAINING:
            ngtcp2_conn_get_connection_close_error(c->conn, &e);
            mm__quic_conn_request_close(c, quic_map_ccerr(&e), 0);
            if (c->result_rcvd && c->result_status != 0)
                c->close_err = mm_err_from_wire(c->result_status);
            break;
        case NGTCP2_ERR_CRYPTO:
            MM_LOG(MM_LOG_INFO, "quic", "TLS handshake failed%s",
                   mm__tls_id_mismatch(c->tls) ? ": unexpected peer id" : "");
            mm__quic_conn_request_close(c, MM_EUNAUTHORIZED, 1);
            ngtcp2_connection_close_error_set_transport_error_tls_alert(
                &c->ccerr, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
            break;
        case NGTCP2_ERR_DROP_CONN:
            mm__quic_conn_request_close(c, MM_ECLOSED, 0);
            break;
        default:
            if (ngtcp2_err_is_fatal(rv)) {
                MM_LOG(MM_LOG_INFO, "quic", "read: %s", ngtcp2_strerror(rv));
                mm__quic_conn_request_close(c, MM_ECLOSED, 1);
                ngtcp2_connection_close_error_set_transport_error_liberr(
                    &c->ccerr, rv, NULL, 0);
            }
            break;
        }
    }
    conn_leave(c);
}

static struct mm_qconn *
conn_alloc(struct mm_quic *q, const struct sockaddr *remote, int dialer)
{
    struct mm_qconn *c = mm__calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->q = q;
    c->dialer = dialer;
    c->ctrl_sid = -1;
    memcpy(&c->remote, remote, quic_sa_len(remote));
    c->remote_len = quic_sa_len(remote);
    ql_init(&c->streams);
    ql_init(&c->txq);
    ql_init(&c->closedq);
    c->created_ns = c->last_rx_ns = c->last_use_ns = quic_now(q);
    c->tmr.fn = conn_tmr_cb;
    ql_push(&q->conns, &c->link);
    if (!dialer) q->inbound_conns++;
    return c;
}

static void
conn_abort(struct mm_qconn *c)
{
    c->state = QC_DEAD;
    conn_hs_uncount(c);
    if (!c->dialer) c->q->inbound_conns--;
    cid_remove_all(c);
    ql_remove(&c->link);
    mm__tq_stop(c->q->cfg.tq, &c->tmr);
    conn_bury(c);
}

static void
quic_settings(struct mm_quic *q, ngtcp2_settings *s)
{
    ngtcp2_settings_default(s);
    s->initial_ts = quic_now(q);
    s->initial_rtt = QUIC_INITIAL_RTT;
    s->handshake_timeout = (uint64_t)q->cfg.handshake_ms * NGTCP2_MILLISECONDS;
    /*
     * No path MTU discovery: datagrams stay at QUIC's 1200-byte minimum,
     * which every IP path carries.  ngtcp2 0.12 sends its probes (a
     * padded PING of 1406 bytes, then 1444, each way) the moment the
     * handshake is confirmed, ahead of the first stream data in the same
     * write: on a new connection they delay the AUTH_RESULT and the first
     * call by a full-size encrypt, send, receive and decrypt each, an
     * eighth of the time from a node's start to its first answer.
     * murmer's messages are mostly far below 1200 bytes; bulk transfers
     * pay ~20% more packets.
     */
    s->no_pmtud = 1;
}

static void
quic_params(struct mm_quic *q, ngtcp2_transport_params *p, int server)
{
    ngtcp2_transport_params_default(p);
    /* Before auth: the dialer may open the control stream only. */
    p->initial_max_streams_bidi = server ? 1 : 0;
    p->initial_max_streams_uni = 0;
    /* The pre-auth windows; raised once up (mm__quic_credit_up). */
    p->initial_max_data = QUIC_PREAUTH_WINDOW;
    p->initial_max_stream_data_bidi_local = QUIC_PREAUTH_WINDOW;
    p->initial_max_stream_data_bidi_remote = QUIC_PREAUTH_WINDOW;
    p->initial_max_stream_data_uni = 0;
    /* No keep-alive; SWIM is the liveness check.  QUIC's own idle timer
     * only backs up the transport's idle close. */
    uint64_t idle = MM_MAX((uint64_t)q->cfg.idle_ms * 5, 300000u);
    p->max_idle_timeout = idle * NGTCP2_MILLISECONDS;
    p->active_connection_id_limit = 4;
    /*
     * No delayed ACKs: ngtcp2 puts an ACK frame into a packet only once
     * the ACK delay, min(max_ack_delay, smoothed_rtt / 8), has passed.  On
     * loopback that is 2-5 us, so whether a response piggybacked the ACK
     * for its request came down to a race with the clock, and a lost race
     * cost an ACK-only packet (and a timer wake-up) on each side.  Writes
     * are already batched per loop turn, so "ACK at the next write" is the
     * delay we want.  (The peer adds this to its PTO: 0 here keeps loss
     * recovery LAN-fast.)
     */
    p->max_ack_delay = 0;
}

static int
conn_setup_tls(struct mm_qconn *c, int server, const uint8_t *expected)
{
    int rv = mm__tls_session_new(&c->tls, c->q->creds, server, expected,
                                 c->q->cfg.allow_h3);
    if (rv != 0) return rv;
    ngtcp2_crypto_conn_ref *ref = mm__tls_conn_ref(c->tls);
    ref->get_conn = quic_get_conn;
    ref->user_data = c;
    ngtcp2_conn_set_tls_native_handle(c->conn, mm__tls_native_handle(c->tls));
    return 0;
}

/* Answers |hd|'s Initial with a Retry carrying a token for |from|. */
static void
quic_send_retry(struct mm_quic *q, const ngtcp2_pkt_hd *hd,
                const struct sockaddr *from, socklen_t fromlen)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    uint8_t pkt[256];
    ngtcp2_cid scid;
    scid.datalen = QUIC_CIDLEN;
    if (mm__random_bytes(scid.data, QUIC_CIDLEN) != 0) return;
    ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
        token, q->retry_secret, sizeof(q->retry_secret), hd->version,
        (const ngtcp2_sockaddr *)from, fromlen, &scid, &hd->dcid, quic_now(q));
    if (tl < 0) return;
    ngtcp2_ssize n =
        ngtcp2_crypto_write_retry(pkt, sizeof(pkt), hd->version, &hd->scid,
                                  &scid, &hd->dcid, token, (size_t)tl);
    if (n <= 0) return;
    q->st.retries_sent++;
    mm__udp_send(q, from, pkt, (size_t)n);
}

/* Accepted handshakes in progress from |from|'s address (any port). */
static unsigned
quic_hs_from(struct mm_quic *q, const struct sockaddr *from)
{
    unsigned n = 0;
    for (struct qlink *l = q->hs.next; l != &q->hs; l = l->next) {
        struct mm_qconn *c = mm__container_of(l, struct mm_qconn, hslink);
        const struct sockaddr *r = (const struct sockaddr *)&c->remote;
        if (r->sa_family != from->sa_family) continue;
        if (from->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)r;
            const struct sockaddr_in *b = (const void *)from;
            n += a->sin_addr.s_addr == b->sin_addr.s_addr;
        } else if (from->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)r;
            const struct sockaddr_in6 *b = (const void *)from;
            n +=
                memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(b->sin6_addr)) == 0;
        }
    }
    return n;
}

/* At the total cap: closes the oldest accepted handshake if it is older
 * than hs_evict_ms; 1 if a slot is free then. */
static int
quic_hs_evict(struct mm_quic *q)
{
    if (ql_empty(&q->hs)) return 0;
    struct mm_qconn *c = mm__container_of(q->hs.next, struct mm_qconn, hslink);
    if (c->busy ||
        quic_now(q) < c->created_ns + (uint64_t)q->cfg.hs_evict_ms * 1000000u)
        return 0;
    q->st.hs_evicted++;
    mm__quic_conn_close(c, MM_EOVERLOADED);
    return q->hs_inbound < q->cfg.hs_max;
}

static void
quic_accept(struct mm_quic *q, const struct sockaddr *from, socklen_t fromlen,
            const uint8_t *pkt, size_t len)
{
    ngtcp2_pkt_hd hd;
    /* 0-RTT for an unknown connection is dropped (we never resume). */
    if (!q->accepting || q->closing || ngtcp2_accept(&hd, pkt, len) != 0 ||
        hd.type != NGTCP2_PKT_INITIAL) {
        q->st.dropped_in++;
        return;
    }
    /*
     * Address validation under load.  An Initial costs us a key exchange
     * and a signature (~0.3 ms) and a connection kept for handshake_ms,
     * and its source address may be forged.  While few handshakes are in
     * progress every Initial gets a connection (a Retry would cost every
     * dial a round trip); beyond that, an Initial must carry the token of
     * a Retry we sent to its address, which a forger never sees.  A bad
     * token is dropped then (the client accepts one Retry only), and
     * ignored otherwise.
     */
    /*
     * Handshakes in progress are capped in total and per source address:
     * past either cap a new Initial is dropped (the client retransmits it,
     * and gets in once a slot frees), except that at the total cap the
     * oldest handshake gives way if it has had hs_evict_ms (a handshake on
     * a LAN takes about a millisecond): addresses that hold handshakes open
     * cannot lock everyone else out.  Below the caps, Retry (next) keeps
     * forged addresses from taking slots.
     */
    /* Connections accepted (in handshake or up) are capped as well: past
     * conns_max an Initial is dropped like one past the handshake caps. */
    if (q->inbound_conns >= q->cfg.conns_max) {
        q->st.conns_refused++;
        return;
    }
    if (quic_hs_from(q, from) >= q->cfg.hs_per_addr ||
        (q->hs_inbound >= q->cfg.hs_max && !quic_hs_evict(q))) {
        q->st.hs_refused++;
        return;
    }
    ngtcp2_cid odcid;
    int validated = 0;
    int loaded = q->cfg.retry_always || q->hs_inbound >= q->cfg.retry_above;
    if (hd.token.len) {
        validated = hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY &&
                    ngtcp2_crypto_verify_retry_token(
                        &odcid, hd.token.base, hd.token.len, q->retry_secret,
                        sizeof(q->retry_secret), hd.version,
                        (const ngtcp2_sockaddr *)from, fromlen, &hd.dcid,
                        QUIC_RETRY_TOKEN_TTL, quic_now(q)) == 0;
        if (!validated && loaded) {
            q->st.tokens_refused++;
            return;
        }
    } else if (loaded) {
        quic_send_retry(q, &hd, from, fromlen);
        return;
    }
    struct mm_qconn *c = conn_alloc(q, from, 0);
    if (c == NULL) return;
    ngtcp2_cid scid;
    scid.datalen = QUIC_CIDLEN;
    ngtcp2_callbacks cbs;
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    quic_callbacks(&cbs, 1);
    quic_settings(q, &settings);
    quic_params(q, &params, 1);
    params.original_dcid = hd.dcid; /* the client's first DCID */
    if (validated) {
        params.original_dcid = odcid;
        params.retry_scid = hd.dcid;
        params.retry_scid_present = 1;
        settings.token = hd.token;
    }
    params.stateless_reset_token_present = 1;
    ngtcp2_path path = {
        .local = {(ngtcp2_sockaddr *)&q->local, q->local_len},
        .remote = {(ngtcp2_sockaddr *)from, fromlen},
    };
    if (mm__random_bytes(scid.data, QUIC_CIDLEN) != 0 ||
        mm__random_bytes(params.stateless_reset_token,
                         sizeof(params.stateless_reset_token)) != 0 ||
        ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &path, hd.version,
                               &cbs, &settings, &params, NULL, c) != 0 ||
        conn_setup_tls(c, 1, NULL) != 0 ||
        cid_add(c, scid.data, scid.datalen) != 0 ||
        cid_add(c, hd.dcid.data, hd.dcid.datalen) != 0) {
        conn_abort(c);
        return;
    }
    c->hs_counted = 1;
    q->hs_inbound++;
    ql_push(&q->hs, &c->hslink);
    q->st.conns_accepted++;
    conn_recv(c, from, fromlen, pkt, len);
}

void
mm__quic_dispatch(struct mm_quic *q, const uint8_t *pkt, size_t len,
                  const struct sockaddr *from)
{
    q->st.pkts_in++;
    q->st.bytes_in += len;
    if (q->fault.drop_pct && quic_rand(q) % 100 < q->fault.drop_pct) {
        q->st.fault_dropped++;
        return;
    }
    /* 1. The destination connection id first (see quic.h). */
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, QUIC_CIDLEN);
    if (rv == 0) {
        struct mm_qconn *c = cid_find(q, vc.dcid, vc.dcidlen);
        if (c) {
            if (!(pkt[0] & 0x80) && !(pkt[0] & 0x40)) q->st.greased_in++;
            conn_recv(c, from, quic_sa_len(from), pkt, len);
            return;
        }
    }
    /* 2. A long header: a new connection (or junk for the accept path). */
    if (pkt[0] & 0x80) {
        quic_accept(q, from, quic_sa_len(from), pkt, len);
        return;
    }
    /* 3. A gossip datagram, to be opened by the membership layer. */
    if (pkt[0] == 0x01 && q->ops.datagram) {
        q->st.datagrams_in++;
        q->ops.datagram(q->ops.data, from, pkt, len);
        return;
    }
    /* 4. A short header for no connection we know (a stale peer): drop. */
    q->st.dropped_in++;
}

/*
 * A connection's timer stays at its earliest deadline while packets move
 * the real one later (conn_arm_timer), and wakes once early to re-arm: so
 * about every QUIC_TIMER_FLOOR_MS the queue shows a deadline that is not
 * real, which would keep hot waits off for hot_ns each time (a tenth of
 * the round trips of a steady exchange).  Moves such timers to their real
 * deadlines; 1 if a deadline within the wait remains.
 */
int
mm__quic_push_timers(struct mm_quic *q, uint64_t now)
{
    uint64_t soon = now + q->hot_ns;
    for (struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        struct mm_qconn *c = mm__container_of(l, struct mm_qconn, link);
        if (c->state == QC_DEAD || !c->tmr.idx || c->tmr.deadline_ns >= soon)
            continue;
        uint64_t d = conn_deadline(c, now);
        if (d > c->tmr.deadline_ns) mm__tq_start(q->cfg.tq, &c->tmr, d);
    }
    return mm__tq_next(q->cfg.tq) < soon;
}

/* ---- public -------------------------------------------------------------- */

void
mm__quic_config_init(struct mm_quic_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

int
mm__quic_new(struct mm_quic **out, uv_loop_t *loop,
             const struct mm_identity *id, const struct mm_keyring *kr,
             const struct mm_quic_config *cfg, const struct mm_quic_ops *ops)
{
    struct mm_quic *q = mm__calloc(1, sizeof(*q));
    int rv;
    if (q == NULL) return UV_ENOMEM;
    MM_ASSERT(kr->n > 0);
    MM_ASSERT(cfg->tq != NULL);
    q->loop = loop;
    q->id = id;
    q->kr = kr;
    q->cfg = *cfg;
    q->ops = *ops;
    ql_init(&q->conns);
    if (q->cfg.max_frame == 0) q->cfg.max_frame = MM_MAX_FRAME;
    if (q->cfg.conn_send_max == 0) q->cfg.conn_send_max = MM_CONN_SEND_MAX;
    if (q->cfg.send_max == 0) q->cfg.send_max = MM_NODE_SEND_MAX;
    if (q->cfg.partial_max == 0) q->cfg.partial_max = MM_CONN_PARTIAL_MAX;
    if (q->cfg.idle_ms == 0) q->cfg.idle_ms = MM_CONN_IDLE_MS;
    if (q->cfg.probe_fail_ms == 0) q->cfg.probe_fail_ms = MM_PROBE_FAIL_MS;
    if (q->cfg.handshake_ms == 0) q->cfg.handshake_ms = 5000;
    if (q->cfg.stream_window < 2) q->cfg.stream_window = 128;
    if (q->cfg.wire_min == 0) q->cfg.wire_min = MM_WIRE_VERSION_MIN;
    if (q->cfg.wire_max == 0) q->cfg.wire_max = MM_WIRE_PROTO_VERSION;
    q->name = mm__strdup(cfg->name ? cfg->name : "");
    q->advertise = cfg->advertise ? mm__strdup(cfg->advertise) : NULL;
    if (q->name == NULL || (cfg->advertise && q->advertise == NULL)) {
        rv = UV_ENOMEM;
        goto fail;
    }
    q->cfg.name = q->name;
    q->cfg.advertise = q->advertise;
    struct mm_quic_fault f = cfg->fault;
    const char *env = getenv("MURMER_FAULT");
    if (!f.drop_pct && !f.delay_ms && !f.reorder_pct && env && *env &&
        mm__quic_fault_parse(&f, env) != 0)
        MM_LOG(MM_LOG_WARN, "quic", "ignoring malformed MURMER_FAULT '%s'",
               env);
    mm__quic_set_fault(q, &f);
    if (ops->park && ops->unpark && ops->run) {
        uint32_t us =
            q->cfg.hot_wait_us ? q->cfg.hot_wait_us : MM_QUIC_HOT_WAIT_US;
        const char *hw = getenv("MURMER_HOT_WAIT_US");
        if (hw && *hw) {
            char *end;
            unsigned long v = strtoul(hw, &end, 10);
            if (*end || v > 100000)
                MM_LOG(MM_LOG_WARN, "quic",
                       "ignoring MURMER_HOT_WAIT_US '%s' (0..100000)", hw);
            else
                us = (uint32_t)v;
        }
        q->hot_ns = (uint64_t)us * 1000u;
    }
    if ((rv = mm__tls_creds_new(&q->creds, id)) != 0) goto fail;
    if (q->cfg.retry_above == 0) q->cfg.retry_above = QUIC_RETRY_ABOVE;
    if (q->cfg.hs_max == 0) q->cfg.hs_max = MM_HANDSHAKES_MAX;
    if (q->cfg.conns_max == 0) q->cfg.conns_max = MM_CONNS_INBOUND_MAX;
    if (q->cfg.hs_per_addr == 0) q->cfg.hs_per_addr = MM_HANDSHAKES_PER_ADDR;
    if (q->cfg.hs_evict_ms == 0) q->cfg.hs_evict_ms = MM_HANDSHAKE_EVICT_MS;
    ql_init(&q->hs);
    if (mm__random_bytes(q->retry_secret, sizeof(q->retry_secret)) != 0) {
        rv = UV_ENOMEM;
        goto fail;
    }
    /* Derived now, not inside a node's first handshake (cold, ~30 us). */
    for (size_t i = 0; i < kr->n && i < MM_ARRAY_SIZE(q->auth_keys); i++)
        mm__quic_auth_key(q, i);
    mm__udp_init(q);
    ql_init(&q->wq);
    ql_init(&q->dead);
    uv_prepare_init(loop, &q->flush);
    q->flush.data = q;
    q->handles++;
    *out = q;
    return 0;
fail:
    mm__tls_creds_free(q->creds);
    mm__free(q->name);
    mm__free(q->advertise);
    explicit_bzero(q->auth_keys, sizeof(q->auth_keys));
    explicit_bzero(q->retry_secret, sizeof(q->retry_secret));
    explicit_bzero(q->auth_of, sizeof(q->auth_of));
    mm__free(q);
    return rv;
}

int
mm__quic_dial(struct mm_quic *q, const char *hostport,
              const uint8_t *expected_id, struct mm_qconn **out)
{
    struct sockaddr_storage ss;
    int rv;
    if (q->closing) return MM_ECLOSED;
    if (mm__udp_parse_addr(hostport, &ss, "127.0.0.1") != 0) return MM_EINVAL;
    if (!q->bound) {
        const char *any = ss.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
        struct sockaddr_storage la;
        mm__udp_parse_addr(any, &la, "0.0.0.0");
        if ((rv = mm__udp_bind(q, (struct sockaddr *)&la)) != 0) return rv;
    }
    struct mm_qconn *c = conn_alloc(q, (struct sockaddr *)&ss, 1);
    if (c == NULL) return UV_ENOMEM;
    ngtcp2_cid dcid, scid;
    dcid.datalen = QUIC_CIDLEN;
    scid.datalen = QUIC_CIDLEN;
    ngtcp2_callbacks cbs;
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    quic_callbacks(&cbs, 0);
    quic_settings(q, &settings);
    quic_params(q, &params, 0);
    ngtcp2_path path = {
        .local = {(ngtcp2_sockaddr *)&q->local, q->local_len},
        .remote = {(ngtcp2_sockaddr *)&c->remote, c->remote_len},
    };
    if (mm__random_bytes(dcid.data, QUIC_CIDLEN) != 0 ||
        mm__random_bytes(scid.data, QUIC_CIDLEN) != 0 ||
        ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path,
                               NGTCP2_PROTO_VER_V1, &cbs, &settings, &params,
                               NULL, c) != 0 ||
        conn_setup_tls(c, 0, expected_id) != 0 ||
        cid_add(c, scid.data, scid.datalen) != 0) {
        conn_abort(c);
        return UV_ENOMEM;
    }
    q->st.conns_dialled++;
    if (out) *out = c;
    conn_enter(c);
    conn_leave(c); /* writes the Initial */
    return 0;
}

int
mm__quic_inbound_pending(struct mm_quic *q, const char *hostport)
{
    struct sockaddr_storage ss;
    if (mm__udp_parse_addr(hostport, &ss, "0.0.0.0") != 0) return 0;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    for (struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        struct mm_qconn *c = mm__container_of(l, struct mm_qconn, link);
        if (c->dialer || c->state != QC_HANDSHAKE || c->pending_close ||
            c->remote.ss_family != sa->sa_family)
            continue;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)&c->remote;
            const struct sockaddr_in *b = (const void *)sa;
            if (a->sin_port == b->sin_port &&
                a->sin_addr.s_addr == b->sin_addr.s_addr)
                return 1;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)&c->remote;
            const struct sockaddr_in6 *b = (const void *)sa;
            if (a->sin6_port == b->sin6_port &&
                memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(b->sin6_addr)) == 0)
                return 1;
        }
    }
    return 0;
}

struct mm_qconn *
mm__quic_find_peer(struct mm_quic *q, const uint8_t peer_id[16])
{
    for (struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        struct mm_qconn *c = mm__container_of(l, struct mm_qconn, link);
        if (c->state == QC_UP && !c->pending_close && !c->superseded &&
            memcmp(c->peer_id, peer_id, MM_ID_LEN) == 0)
            return c;
    }
    return NULL;
}

void
mm__quic_conn_close(struct mm_qconn *c, int err)
{
    if (c->state == QC_DEAD || c->pending_close) return;
    conn_enter(c);
    mm__quic_conn_request_close(c, err ? err : MM_ECLOSED, 1);
    conn_leave(c);
}

void
mm__quic_conn_stat(const struct mm_qconn *c, struct mm_quic_conn_stat *out)
{
    memset(out, 0, sizeof(*out));
    out->bytes_in = c->bytes_in;
    out->bytes_out = c->bytes_out;
    if (!c->conn) return;
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->conn, &st);
    out->srtt_ns = st.smoothed_rtt;
    out->min_rtt_ns = st.min_rtt == UINT64_MAX ? 0 : st.min_rtt;
    out->latest_rtt_ns = st.latest_rtt;
    out->rttvar_ns = st.rttvar;
    out->cwnd = st.cwnd;
    out->bytes_in_flight = st.bytes_in_flight;
    out->pto_count = st.pto_count;
}

int
mm__quic_conn_is_dialer(const struct mm_qconn *c)
{
    return c->dialer;
}

int
mm__quic_conn_superseded(const struct mm_qconn *c)
{
    return c->superseded;
}

int
mm__quic_conn_is_up(const struct mm_qconn *c)
{
    return c->state == QC_UP && !c->pending_close;
}

uint64_t
mm__quic_conn_last_use(const struct mm_qconn *c)
{
    return c->last_use_ns;
}

const uint8_t *
mm__quic_conn_peer_id(const struct mm_qconn *c)
{
    return c->peer_id;
}

void
mm__quic_conn_set_data(struct mm_qconn *c, void *data)
{
    c->udata = data;
}

void *
mm__quic_conn_get_data(const struct mm_qconn *c)
{
    return c->udata;
}

size_t
mm__quic_conn_count(const struct mm_quic *q, size_t *up)
{
    size_t n = 0, u = 0;
    for (const struct qlink *l = q->conns.next; l != &q->conns; l = l->next) {
        const struct mm_qconn *c =
            mm__container_of(l, const struct mm_qconn, link);
        n++;
        if (c->state == QC_UP && !c->pending_close) u++;
    }
    if (up) *up = u;
    return n;
}

void
mm__quic_stats(const struct mm_quic *q, struct mm_quic_stats *out)
{
    *out = q->st;
}

static void
quic_handle_closed(uv_handle_t *h)
{
    struct mm_quic *q = h->data;
    q->handles--;
    mm__quic_maybe_free(q);
}

void
mm__quic_maybe_free(struct mm_quic *q)
{
    if (!q->closing || q->handles > 0) return;
    void (*cb)(void *) = q->close_cb;
    void *data = q->close_data;
    quic_free_dead(q);
    mm__quic_chunk_pool_drain(q);
    mm__tls_creds_free(q->creds);
    mm__free(q->name);
    mm__free(q->advertise);
    explicit_bzero(q->auth_keys, sizeof(q->auth_keys));
    explicit_bzero(q->retry_secret, sizeof(q->retry_secret));
    explicit_bzero(q->auth_of, sizeof(q->auth_of));
    mm__free(q);
    if (cb) cb(data);
}

void
mm__quic_close(struct mm_quic *q, void (*cb)(void *data), void *data)
{
    if (q->closing) return;
    mm__quic_flush(q); /* what callbacks queued goes out before the closes */
    q->closing = 1;
    q->close_cb = cb;
    q->close_data = data;
    while (!ql_empty(&q->conns)) {
        struct mm_qconn *c =
            mm__container_of(q->conns.next, struct mm_qconn, link);
        if (!c->pending_close) mm__quic_conn_request_close(c, MM_ECLOSED, 1);
        conn_finish(c);
    }
    uv_prepare_stop(&q->flush);
    q->flush_active = 0;
    uv_close((uv_handle_t *)&q->flush, quic_handle_closed);
    mm__udp_close(q); /* |q| is freed once the handles are closed */
}
