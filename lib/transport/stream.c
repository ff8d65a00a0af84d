/*
 * stream.c — the streams of a connection: frames queued in chunks until the
 * peer acknowledged them, the stream callbacks of ngtcp2, the frames read
 * (to the auth exchange before the connection is up, to ops->frame after),
 * and the stream functions of quic.h.
 */
#include <inttypes.h>
#include <string.h>

#include "transport/quic_int.h"

/* ---- queues -------------------------------------------------------------- */

struct qstream *
mm__quic_stream_new(struct mm_qconn *c, int64_t sid)
{
    struct qstream *s = mm__calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->c = c;
    s->sid = sid;
    mm__wire_reader_init(&s->rd, c->q->cfg.max_frame);
    ql_push(&c->streams, &s->link);
    return s;
}

/* Chunks of up to CHUNK_SMALL bytes are allocated at that size and kept on
 * a free list of up to CHUNK_POOL_MAX when acknowledged: queueing a small
 * frame (a call or its response) then costs no malloc. */
#define CHUNK_SMALL 512
#define CHUNK_POOL_MAX 64

static struct chunk *
chunk_new(struct mm_quic *q, size_t len)
{
    if (len > CHUNK_SMALL) return mm__malloc(sizeof(struct chunk) + len);
    struct chunk *ch = q->chunk_pool;
    if (ch == NULL) return mm__malloc(sizeof(struct chunk) + CHUNK_SMALL);
    q->chunk_pool = ch->next;
    q->chunk_pooled--;
    return ch;
}

static void
chunk_free(struct mm_quic *q, struct chunk *ch)
{
    if (ch->len > CHUNK_SMALL || q->chunk_pooled >= CHUNK_POOL_MAX) {
        mm__free(ch);
        return;
    }
    ch->next = q->chunk_pool;
    q->chunk_pool = ch;
    q->chunk_pooled++;
}

void
mm__quic_chunk_pool_drain(struct mm_quic *q)
{
    while (q->chunk_pool) {
        struct chunk *ch = q->chunk_pool;
        q->chunk_pool = ch->next;
        mm__free(ch);
    }
    q->chunk_pooled = 0;
}

/* |len| queued bytes left the stream (acknowledged, or the stream died). */
static void
stream_unqueued(struct qstream *s, size_t len)
{
    s->c->tx_unacked -= len;
    s->c->q->st.tx_unacked -= len;
}

void
mm__quic_stream_free(struct qstream *s)
{
    ql_remove(&s->link);
    ql_remove(&s->tx);
    ql_remove(&s->done);
    s->c->rx_partial -= mm__wire_reader_partial(&s->rd);
    mm__wire_reader_free(&s->rd);
    while (s->head) {
        struct chunk *ch = s->head;
        s->head = ch->next;
        stream_unqueued(s, ch->len);
        chunk_free(s->c->q, ch);
    }
    mm__free(s);
}

static void
stream_want_tx(struct qstream *s)
{
    if (!ql_linked(&s->tx) && stream_has_tx(s) && !s->closed)
        ql_push(&s->c->txq, &s->tx);
}

int
mm__quic_stream_queue(struct qstream *s, const uint8_t *data, size_t len)
{
    struct chunk *ch = chunk_new(s->c->q, len);
    if (ch == NULL) return UV_ENOMEM;
    ch->next = NULL;
    ch->off = s->queued_off;
    ch->len = len;
    memcpy(ch->data, data, len);
    if (s->tail)
        s->tail->next = ch;
    else
        s->head = ch;
    s->tail = ch;
    if (s->send == NULL) s->send = ch;
    s->queued_off += len;
    s->c->tx_unacked += len;
    s->c->q->st.tx_unacked += len;
    stream_want_tx(s);
    return 0;
}

static void
stream_acked(struct qstream *s, uint64_t end)
{
    while (s->head && s->head->off + s->head->len <= end) {
        struct chunk *ch = s->head;
        s->head = ch->next;
        if (s->send == ch) s->send = ch->next;
        stream_unqueued(s, ch->len);
        chunk_free(s->c->q, ch);
    }
    if (s->head == NULL) s->tail = NULL;
    struct mm_qconn *c = s->c;
    if (c->room_wanted && c->tx_unacked <= c->q->cfg.conn_send_max / 2) {
        c->room_wanted = 0;
        c->room_pending = 1;
    }
}

/* ---- frames in ----------------------------------------------------------- */

/* Grants the peer the credit of |s| the upper layer does not hold (credit
 * = received - held); nothing before auth. */
static void
stream_credit(struct mm_qconn *c, struct qstream *s)
{
    if (c->state != QC_UP || s->closed || s->reset_req) return;
    uint64_t target = s->rx - s->held;
    if (target > s->credited) {
        ngtcp2_conn_extend_max_stream_offset(c->conn, s->sid,
                                             target - s->credited);
        s->credited = target;
    }
}

void
mm__quic_stream_window(struct mm_qconn *c, struct qstream *s)
{
    ngtcp2_conn_extend_max_stream_offset(
        c->conn, s->sid, QUIC_STREAM_WINDOW - QUIC_PREAUTH_WINDOW);
}

void
mm__quic_credit_up(struct mm_qconn *c)
{
    ngtcp2_conn_extend_max_offset(
        c->conn, QUIC_CONN_WINDOW - QUIC_PREAUTH_WINDOW + c->rx_preauth);
    c->rx_preauth = 0;
    for (struct qlink *l = c->streams.next; l != &c->streams; l = l->next) {
        struct qstream *s = mm__container_of(l, struct qstream, link);
        if (s->sid < 0 || s->closed) continue;
        mm__quic_stream_window(c, s);
        stream_credit(c, s);
    }
}

/* A bad frame on |s| of an up connection: the stream is reset with
 * decode_error; the control stream cannot be spared, so there the
 * connection is closed with it. */
static void
stream_bad_frame(struct mm_qconn *c, struct qstream *s, const char *why)
{
    MM_LOG(MM_LOG_INFO, "quic", "%s: stream %" PRId64 ": %s; %s", c->peer_name,
           s->sid, why, s->ctrl ? "closing the connection" : "resetting it");
    if (s->ctrl) {
        mm__quic_conn_request_close(c, MM_EDECODE, 1);
        return;
    }
    s->decode_err = 1;
    if (!s->reset_req) {
        s->reset_req = 1;
        c->resets_pending = 1;
        s->reset_code = mm_err_to_wire(MM_EDECODE);
    }
}

/* |s| took its connection's incomplete frames past partial_max: it is
 * reset with overloaded and its partial frame dropped (the control stream
 * closes the connection).  A murmer sender keeps at most about one frame
 * beyond MM_CONN_SEND_MAX unacknowledged, far below the bound. */
static int
stream_over_partial(struct mm_qconn *c, struct qstream *s)
{
    c->q->st.partial_resets++;
    MM_LOG(MM_LOG_INFO, "quic",
           "%s: stream %" PRId64 ": %zu bytes of incomplete frames on the "
           "connection (max %zu); %s",
           c->peer_name, s->sid, c->rx_partial, c->q->cfg.partial_max,
           s->ctrl ? "closing the connection" : "resetting it");
    if (s->ctrl) {
        mm__quic_conn_request_close(c, MM_EOVERLOADED, 1);
        return QUIC_STOP;
    }
    c->rx_partial -= mm__wire_reader_partial(&s->rd);
    mm__wire_reader_free(&s->rd);
    mm__wire_reader_init(&s->rd, c->q->cfg.max_frame);
    s->decode_err = 1; /* what else arrives is dropped, its credit returned */
    if (!s->reset_req) {
        s->reset_req = 1;
        c->resets_pending = 1;
        s->reset_code = mm_err_to_wire(MM_EOVERLOADED);
    }
    return 0;
}

static int
quic_frame_cb(void *d, uint8_t type, const uint8_t *body, size_t len)
{
    struct qstream *s = d;
    struct mm_qconn *c = s->c;
    if (c->pending_close) return QUIC_STOP;
    if (c->state != QC_UP) {
        /* Advance auth at once: frames that follow AUTH_RESULT in the same
         * chunk (the peer's first control frames) must find us up. */
        int rv = mm__quic_auth_frame(c, s, type, body, len);
        if (rv == 0) mm__quic_auth_step(c);
        /* Report the connection up before any frame that follows in this
         * chunk is handed to the upper layer: it needs the peer's id. */
        if (rv == 0 && c->state == QC_UP && c->up_pending &&
            !c->pending_close) {
            c->up_pending = 0;
            c->reportable = 1;
            if (c->q->ops.conn_up)
                c->q->ops.conn_up(c->q->ops.data, c, c->peer_id, c->peer_gen,
                                  c->peer_role, c->peer_name, c->peer_addr);
        }
        return c->pending_close ? QUIC_STOP : rv;
    }
    /* An unknown frame type is a bad frame (docs/wire.md). */
    if (!mm__wire_type_valid(type)) return MM_EDECODE;
    c->last_use_ns = quic_now(c->q);
    if (c->q->ops.frame) {
        s->frame_len = MM_WIRE_HDR_LEN + len;
        c->q->ops.frame(c->q->ops.data, c, s->sid, type, body, len);
        s->frame_len = 0;
    }
    return c->pending_close ? QUIC_STOP : 0;
}

/* ---- ngtcp2 callbacks ---------------------------------------------------- */

static int
cb_stream_open(ngtcp2_conn *conn, int64_t sid, void *ud)
{
    struct mm_qconn *c = ud;
    if (!ngtcp2_is_bidi_stream(sid)) return 0;
    if (c->state != QC_UP && (c->dialer || c->ctrl_sid >= 0)) {
        /* Before auth only the dialer's control stream exists. */
        mm__quic_auth_fail(c, "stream before auth");
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    struct qstream *s = mm__quic_stream_new(c, sid);
    if (s == NULL) return NGTCP2_ERR_CALLBACK_FAILURE;
    if (c->state != QC_UP) {
        s->ctrl = 1;
        s->rd.max = QUIC_PREAUTH_MAX_FRAME;
        c->ctrl_sid = sid;
    } else {
        c->nstreams++;
        mm__quic_stream_window(c, s);
    }
    c->last_use_ns = quic_now(c->q);
    ngtcp2_conn_set_stream_user_data(conn, sid, s);
    return 0;
}

static int
cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t sid,
                    uint64_t offset, const uint8_t *data, size_t datalen,
                    void *ud, void *sud)
{
    struct mm_qconn *c = ud;
    struct qstream *s = sud ? sud : stream_find(c, sid);
    MM_UNUSED(offset);
    /*
     * Connection credit comes back on arrival: the control stream (the
     * peer's membership and registry traffic, the responses to our calls)
     * shares the connection, and a slow actor must not freeze it.  What a
     * peer can make us hold is bounded per stream by the stream credit
     * (below) and per connection by the upper layer.  Before auth,
     * nothing comes back.
     */
    if (c->state == QC_UP)
        ngtcp2_conn_extend_max_offset(conn, datalen);
    else
        c->rx_preauth += datalen;
    if (s == NULL) return 0;
    s->rx += datalen;
    if (s->decode_err || s->reset_req) {
        stream_credit(c, s);
        return 0;
    }
    if (datalen > 0) {
        size_t was = mm__wire_reader_partial(&s->rd);
        int rv = mm__wire_reader_feed(&s->rd, data, datalen, quic_frame_cb, s);
        c->rx_partial = c->rx_partial - was + mm__wire_reader_partial(&s->rd);
        if (rv == 0 && c->rx_partial > c->q->cfg.partial_max &&
            mm__wire_reader_partial(&s->rd) > 0)
            rv = stream_over_partial(c, s);
        if (rv == QUIC_STOP || c->pending_close)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        if (rv != 0 && c->state != QC_UP) {
            mm__quic_auth_fail(c, "bad frame before auth");
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        if (rv != 0) {
            stream_bad_frame(c, s,
                             rv == MM_EDECODE ? "bad frame" : mm_strerror(rv));
            if (c->pending_close) return NGTCP2_ERR_CALLBACK_FAILURE;
            return 0;
        }
    }
    /* The bytes of partial frames come back: a frame larger than the
     * window completes; a whole frame held by the upper layer does not. */
    stream_credit(c, s);
    if (!(flags & NGTCP2_STREAM_DATA_FLAG_FIN)) return 0;
    if (c->state != QC_UP) {
        mm__quic_auth_fail(c, "control stream ended before auth");
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    if (mm__wire_reader_partial(&s->rd) != 0) {
        /* The stream ended inside a frame. */
        stream_bad_frame(c, s, "ended inside a frame");
        if (c->pending_close) return NGTCP2_ERR_CALLBACK_FAILURE;
    } else if (!c->pending_close && c->q->ops.stream_fin) {
        /* The peer ended its side cleanly: the upper layer closes ours
         * once it has answered what it still owes on this stream. */
        c->q->ops.stream_fin(c->q->ops.data, c, sid);
    }
    return 0;
}

static int
cb_acked_stream_data_offset(ngtcp2_conn *conn, int64_t sid, uint64_t offset,
                            uint64_t datalen, void *ud, void *sud)
{
    struct qstream *s = sud ? sud : stream_find(ud, sid);
    MM_UNUSED(conn);
    if (s) stream_acked(s, offset + datalen);
    return 0;
}

static int
cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t sid,
                uint64_t app_error_code, void *ud, void *sud)
{
    struct mm_qconn *c = ud;
    struct qstream *s = sud ? sud : stream_find(c, sid);
    if (c->state != QC_UP && !c->dialer && !c->pending_close) {
        /* The control stream is the only one before auth, and it must
         * not end (nor its slot come back for another stream). */
        mm__quic_auth_fail(c, "control stream closed before auth");
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    /* Give the peer its stream credit back. */
    if (!ngtcp2_conn_is_local_stream(conn, sid) && ngtcp2_is_bidi_stream(sid))
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    if (s == NULL) return 0;
    s->closed = 1;
    c->rx_held -= s->held;
    s->held = 0;
    ql_remove(&s->tx);
    if (s->decode_err)
        s->close_err = mm_err_from_wire((uint16_t)s->reset_code);
    else if ((flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) &&
             app_error_code != 0)
        s->close_err = app_error_code <= 0xffff
                           ? mm_err_from_wire((uint16_t)app_error_code)
                           : MM_ECLOSED;
    if (!s->ctrl && c->nstreams > 0) c->nstreams--;
    c->last_use_ns = quic_now(c->q);
    ql_push(&c->closedq, &s->done);
    return 0;
}

/* The peer reset or stopped a stream: before auth that can only be the
 * dialer's control stream, which must carry the auth exchange (a dialer
 * that is refused learns it from the close). */
static int
cb_stream_reset(ngtcp2_conn *conn, int64_t sid, uint64_t final_size,
                uint64_t app_error_code, void *ud, void *sud)
{
    struct mm_qconn *c = ud;
    MM_UNUSED(conn);
    MM_UNUSED(sid);
    MM_UNUSED(final_size);
    MM_UNUSED(app_error_code);
    MM_UNUSED(sud);
    if (c->state == QC_UP || c->dialer || c->pending_close) return 0;
    mm__quic_auth_fail(c, "control stream reset before auth");
    return NGTCP2_ERR_CALLBACK_FAILURE;
}

static int
cb_stream_stop_sending(ngtcp2_conn *conn, int64_t sid, uint64_t app_error_code,
                       void *ud, void *sud)
{
    return cb_stream_reset(conn, sid, 0, app_error_code, ud, sud);
}

static int
cb_extend_max_local_streams_bidi(ngtcp2_conn *conn, uint64_t max, void *ud)
{
    struct mm_qconn *c = ud;
    MM_UNUSED(conn);
    MM_UNUSED(max);
    if (c->credit_wanted) c->credit_pending = 1;
    return 0;
}

static int
cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t sid, uint64_t max,
                          void *ud, void *sud)
{
    MM_UNUSED(conn);
    MM_UNUSED(sid);
    MM_UNUSED(max);
    MM_UNUSED(ud);
    MM_UNUSED(sud);
    return 0; /* the write after this read retries blocked streams */
}

/* The stream callbacks' entries of |cb|. */
void
mm__quic_stream_callbacks(ngtcp2_callbacks *cb)
{
    cb->stream_open = cb_stream_open;
    cb->recv_stream_data = cb_recv_stream_data;
    cb->acked_stream_data_offset = cb_acked_stream_data_offset;
    cb->stream_close = cb_stream_close;
    cb->stream_reset = cb_stream_reset;
    cb->stream_stop_sending = cb_stream_stop_sending;
    cb->extend_max_local_streams_bidi = cb_extend_max_local_streams_bidi;
    cb->extend_max_stream_data = cb_extend_max_stream_data;
}

/* ---- public -------------------------------------------------------------- */

int
mm__quic_stream_open(struct mm_qconn *c, int64_t *sid)
{
    if (c->state != QC_UP || c->pending_close) return MM_ECLOSED;
    struct qstream *s = mm__quic_stream_new(c, -1);
    if (s == NULL) return UV_ENOMEM;
    int rv = ngtcp2_conn_open_bidi_stream(c->conn, sid, s);
    if (rv != 0) {
        mm__quic_stream_free(s);
        if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
            c->credit_wanted = 1;
            return UV_EAGAIN;
        }
        return MM_ECLOSED;
    }
    s->sid = *sid;
    c->nstreams++;
    mm__quic_stream_window(c, s);
    c->last_use_ns = quic_now(c->q);
    return 0;
}

int
mm__quic_send_frame(struct mm_qconn *c, int64_t sid, const uint8_t *frame,
                    size_t len)
{
    if (c->state != QC_UP || c->pending_close) return MM_ECLOSED;
    if (frame == NULL || len < MM_WIRE_HDR_LEN ||
        len - (MM_WIRE_HDR_LEN - 1) > c->q->cfg.max_frame)
        return MM_EINVAL;
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->closed || s->fin_req || s->reset_req)
        return MM_ENOTFOUND;
    if (c->tx_unacked > 0 && (c->tx_unacked + len > c->q->cfg.conn_send_max ||
                              c->q->st.tx_unacked + len > c->q->cfg.send_max)) {
        c->q->st.send_refused++;
        c->room_wanted = 1; /* ops.send_room once acknowledgements free it */
        return MM_EOVERLOADED;
    }
    conn_enter(c);
    int rv = mm__quic_stream_queue(s, frame, len);
    /* An open actor stream holds the idle timer off by itself (nstreams),
     * and its close marks the use: only control-stream traffic needs the
     * clock here. */
    if (s->ctrl) c->last_use_ns = quic_now(c->q);
    conn_leave(c);
    return rv;
}

size_t
mm__quic_conn_unacked(const struct mm_qconn *c)
{
    return c->tx_unacked;
}

size_t
mm__quic_frame_hold(struct mm_qconn *c, int64_t sid)
{
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->frame_len == 0) return 0;
    size_t n = s->frame_len;
    s->frame_len = 0; /* held once */
    s->held += n;
    c->rx_held += n;
    return n;
}

void
mm__quic_credit_return(struct mm_qconn *c, int64_t sid, size_t n)
{
    if (c->state != QC_UP || c->pending_close) return;
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->closed) return;
    n = MM_MIN(n, s->held);
    s->held -= n;
    c->rx_held -= n;
    /* Returned in slices of an eighth of the window (or all of it once
     * nothing is held): a sender always has at least 7/8 of the window
     * minus what our actors still hold, and ngtcp2 is not asked once per
     * message. */
    if (s->held > 0 && s->rx - s->held - s->credited < QUIC_STREAM_WINDOW / 8)
        return;
    stream_credit(c, s);
    /* The MAX_STREAM_DATA goes with this turn's write.  No settle here:
     * the reply that usually follows at once settles the connection, and
     * one settle per returned message is measurable in W5. */
    if (c->busy) return;
    if (!c->q->flushing && !c->q->closing) {
        mm__quic_defer_write(c);
    } else {
        conn_enter(c);
        conn_leave(c);
    }
}

size_t
mm__quic_conn_held(const struct mm_qconn *c)
{
    return c->rx_held;
}

int
mm__quic_stream_close(struct mm_qconn *c, int64_t sid)
{
    if (c->state == QC_DEAD || c->pending_close) return MM_ECLOSED;
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->closed) return MM_ENOTFOUND;
    if (s->fin_req) return 0;
    conn_enter(c);
    s->fin_req = 1;
    stream_want_tx(s);
    conn_leave(c);
    return 0;
}

int
mm__quic_stream_reset(struct mm_qconn *c, int64_t sid, int err)
{
    if (c->state == QC_DEAD || c->pending_close) return MM_ECLOSED;
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->closed) return MM_ENOTFOUND;
    conn_enter(c);
    if (!s->reset_req) {
        s->reset_req = 1;
        c->resets_pending = 1;
        s->reset_code = mm_err_to_wire(err ? err : MM_ECLOSED);
    }
    conn_leave(c);
    return 0;
}

int64_t
mm__quic_control_stream(const struct mm_qconn *c)
{
    return c->state == QC_UP ? c->ctrl_sid : -1;
}
