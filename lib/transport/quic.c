/*
 * quic.c — the QUIC transport: one UDP socket (under a uv_poll, read with
 * recvmmsg), a connection map by DCID, ngtcp2 0.12.1 connections with one
 * expiry timer each, HELLO/AUTH on the control stream, and the
 * gossip-datagram side door.  See quic.h.
 *
 * The rhythm of a connection (style §7): a packet read or a timer expiry
 * enters the connection (busy++), ngtcp2 runs its callbacks, which only
 * record state or queue data; when busy drops back to 0 the connection
 * "settles": it runs the auth step, reports events to ops, queues its
 * write for the end of the loop turn (quic_flush: every packet it can,
 * conn_write) and re-arms its timer from ngtcp2_conn_get_expiry().  An error at
 * any point requests a close, which settle carries out (CONNECTION_CLOSE,
 * conn_down, handle close, free).
 */
#include "transport/quic.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "common.h"
#include "crypto.h"
#include "transport/tls.h"
#include "wire.h"

#define QUIC_CIDLEN 18 /* one fixed local SCID length, client and server */
#define QUIC_MAP_BUCKETS 1024
#define QUIC_MAX_PKT 1500 /* our tx buffer; ngtcp2 caps payloads below */
#define QUIC_RX_BATCH 16  /* datagrams per recvmmsg */
#define QUIC_RX_LONE 8    /* see quic_read */
#define QUIC_RX_SLOT 2048 /* > any datagram we send (txbuf, sealed gossip) */
#define QUIC_MAX_VECS 16
#define QUIC_FLUSH_LINGER 64 /* see quic_flush_cb */
#define QUIC_HOT_ROUNDS 1024 /* see quic_hot_rounds */
#define QUIC_HOT_BUDGET_NS 16000000u
#define QUIC_HOT_SKIP_MAX 1024
#define QUIC_TIMER_FLOOR_MS 5                       /* see conn_arm_timer */
#define QUIC_RETRY_ABOVE 16 /* inbound handshakes before Retry; see accept */
#define QUIC_RETRY_TOKEN_TTL (10 * NGTCP2_SECONDS)
#define QUIC_INITIAL_RTT (10 * NGTCP2_MILLISECONDS) /* P1: LAN scale */
#define QUIC_STREAM_WINDOW (1024 * 1024)            /* per-stream credit */
#define QUIC_CONN_WINDOW (16 * 1024 * 1024)         /* per-connection */
#define QUIC_STOP 1 /* a frame callback asks the reader to stop */
#define QUIC_PREAUTH_MAX_FRAME                                                 \
    4096 /* HELLO/AUTH are small: cap before auth                              \
          */

enum qstate { QC_HANDSHAKE = 0, QC_UP = 1, QC_DEAD = 2 };

/* ---- intrusive lists ------------------------------------------------------
 */

struct qlink {
    struct qlink *prev, *next;
};

static void
ql_init(struct qlink *h)
{
    h->prev = h->next = h;
}

static int
ql_empty(const struct qlink *h)
{
    return h->next == h;
}

static int
ql_linked(const struct qlink *l)
{
    return l->next != NULL;
}

static void
ql_push(struct qlink *h, struct qlink *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}

static void
ql_remove(struct qlink *l)
{
    if (!ql_linked(l)) return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* ---- types ----------------------------------------------------------------
 */

struct cid_ent {
    struct cid_ent *next;  /* bucket chain */
    struct cid_ent *cnext; /* the connection's own list */
    struct mm_qconn *c;
    uint8_t len;
    uint8_t data[NGTCP2_MAX_CIDLEN];
};

/* A queued frame; kept until the peer acknowledged all of it (P2). */
struct chunk {
    struct chunk *next;
    uint64_t off; /* stream offset of data[0] */
    size_t len;
    uint8_t data[];
};

/* Chunks of up to CHUNK_SMALL bytes are allocated at that size and kept on
 * a free list of up to CHUNK_POOL_MAX when acknowledged: queueing a small
 * frame (a call or its response) then costs no malloc. */
#define CHUNK_SMALL 512
#define CHUNK_POOL_MAX 64

struct qstream {
    struct qlink link; /* c->streams */
    struct qlink tx;   /* c->txq while it has something to send */
    struct qlink done; /* c->closedq once ngtcp2 closed it */
    struct mm_qconn *c;
    int64_t sid;
    struct mm_wire_reader rd;
    struct chunk *head, *tail; /* unacknowledged chunks, in order */
    struct chunk *send;        /* first chunk with unsent bytes */
    uint64_t queued_off;       /* end of queued data */
    uint64_t sent_off;         /* end of data handed to ngtcp2 */
    unsigned blocked_gen;      /* conn_write generation it was blocked in */
    unsigned fin_req : 1, fin_sent : 1, closed : 1, decode_err : 1,
        reset_req : 1, reset_done : 1, ctrl : 1;
    uint64_t reset_code;
    int close_err;
};

struct fpkt { /* a packet held by the fault hook */
    struct fpkt *next;
    uint64_t due;
    struct sockaddr_storage to;
    size_t len;
    uint8_t data[];
};

/* A datagram the kernel would not take yet (EAGAIN), sent in order once
 * the socket is writable again. */
struct sendreq {
    struct sendreq *next;
    struct sockaddr_storage to;
    size_t len;
    uint8_t data[];
};

struct mm_qconn {
    struct qlink link;  /* q->conns */
    struct qlink wlink; /* q->wq while a write is due */
    struct mm_quic *q;
    ngtcp2_conn *conn;          /* owned */
    struct mm_tls_session *tls; /* owned */
    struct mm_tmr tmr;  /* the connection's expiry, on q->cfg.tq */
    int superseded;     /* lost a crossing while up: draining, not found */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    struct cid_ent *cids; /* owned, also in q's map */
    struct qlink streams, txq, closedq;
    int dialer;
    int hs_counted; /* accepted, handshake in progress: in q->hs_inbound */
    enum qstate state;
    int busy;
    unsigned write_gen;
    /* close request */
    int pending_close, close_err, close_send;
    ngtcp2_connection_close_error ccerr;
    int reportable;  /* conn_down owed to the user */
    int auth_failed; /* accepted, but auth failed: conn_down owed too */
    int up_pending;  /* conn_up to report */
    int resets_pending; /* a stream has reset_req set, not yet done */
    int credit_wanted, credit_pending;
    /* handshake and auth */
    int hs_done, alpn_ok;
    uint8_t exporter[MM_TLS_EXPORTER_LEN];
    uint8_t peer_id[MM_ID_LEN];
    int have_peer_id;
    int hello_rcvd, auth_rcvd, result_rcvd, ctrl_sent;
    uint64_t peer_gen;
    int peer_role;
    char peer_name[256];
    char peer_addr[128];
    uint8_t peer_proof[MM_WIRE_PROOF_LEN];
    uint16_t result_status;
    int64_t ctrl_sid;
    size_t nstreams; /* open streams, the control stream excluded */
    /* clocks (uv_hrtime ns) */
    uint64_t created_ns, last_rx_ns, last_use_ns, outstanding_since;
    void *udata;
};

struct mm_quic {
    uv_loop_t *loop;
    int fd;         /* the UDP socket; -1 until bound */
    uv_poll_t poll; /* readable always; writable while |sendq| is not empty */
    int poll_events;
    struct sendreq *sendq, **sendq_tail;
    struct mm_tmr fault_tmr; /* sends held packets when due, on cfg.tq */
    uv_prepare_t flush; /* writes of up connections, once per loop turn */
    struct qlink wq;    /* connections with a write due */
    struct qlink dead;  /* finished connections, freed by the next flush */
    int flush_active, flushing;
    unsigned flush_idle; /* turns the started flush found nothing to do */
    int bound, accepting, closing;
    unsigned handles; /* open uv handles; q is freed when 0 after close */
    void (*close_cb)(void *);
    void *close_data;
    const struct mm_identity *id; /* borrowed */
    const struct mm_keyring *kr;  /* borrowed */
    struct mm_quic_config cfg;
    char *name;      /* owned */
    char *advertise; /* owned; NULL = local_str */
    struct mm_quic_ops ops;
    struct mm_tls_creds *creds; /* owned */
    struct sockaddr_storage local;
    socklen_t local_len;
    char local_str[64];
    struct qlink conns;
    struct cid_ent *map[QUIC_MAP_BUCKETS];
    struct mm_quic_stats st;
    struct mm_quic_fault fault;
    uint64_t rng;
    struct fpkt *delayed; /* sorted by due */
    struct chunk *chunk_pool; /* free small chunks (CHUNK_SMALL) */
    unsigned chunk_pooled;
    uint64_t now_cache;   /* quic_now() while a packet or flush is handled */
    uint64_t rx_ns;       /* quic_now() of the last read */
    uint64_t ts_hi;       /* the latest quic_now() handed out */
    /* HKDF(key, MM_LABEL_AUTH) per keyring entry, and the key it is of
     * (the keyring is borrowed and may change: a key that differs from
     * |auth_of| is derived again). */
    uint8_t auth_keys[MM_KEYRING_MAX][32];
    uint8_t auth_of[MM_KEYRING_MAX][MM_CKEY_LEN];
    uint32_t auth_valid; /* bit i: auth_keys[i] is of auth_of[i] */
    /* Address validation (Retry): the key of our Retry tokens, and the
     * accepted connections whose handshake is in progress. */
    uint8_t retry_secret[32];
    unsigned hs_inbound;
    /* recvmmsg batch: one syscall reads what is queued, and a short batch
     * means the queue is empty (epoll is level-triggered), so no read ends
     * in EAGAIN. */
    /* Hot waits (quic_hot_wait): the socket is in blocking mode with
     * SO_RCVTIMEO = hot_ns, and every other call on it passes
     * MSG_DONTWAIT. */
    uint64_t hot_ns;    /* 0 = no hot waits */
    unsigned hot_skip;  /* chances to let pass after a miss */
    int hot_out;        /* the socket is out of the loop's epoll set */
    unsigned hot_next;  /* the last miss's skip (doubles per miss) */
    unsigned rx_want; /* datagrams the next recvmmsg asks for */
    unsigned rx_lone; /* full single reads before asking for two again */
    struct mmsghdr rx_msgs[QUIC_RX_BATCH];
    struct iovec rx_iov[QUIC_RX_BATCH];
    struct sockaddr_storage rx_from[QUIC_RX_BATCH];
    uint8_t rxbuf[QUIC_RX_BATCH][QUIC_RX_SLOT];
    uint8_t txbuf[QUIC_MAX_PKT];
};

static void conn_settle(struct mm_qconn *c);
static void conn_hs_uncount(struct mm_qconn *c);
static void conn_request_close(struct mm_qconn *c, int err, int send);
static void quic_maybe_free(struct mm_quic *q);
static void quic_fault_tmr_cb(struct mm_tmr *t);
static void quic_defer_write(struct mm_qconn *c);

/*
 * The transport's clock.  While one packet (or one batch) is being handled
 * and while the per-turn flush runs, every reader gets the time read when
 * that work began: one clock read per unit of work instead of one per
 * helper (the sequential round trip read the clock 27 times).  A hot-wait
 * round flushes with its read's time, which can be older than a time taken
 * from the clock meanwhile; ngtcp2's timestamps must not go back, so no
 * time earlier than one handed out before is handed out.
 */
static uint64_t
quic_now(struct mm_quic *q)
{
    uint64_t t = q->now_cache ? q->now_cache : uv_hrtime();
    if (MM_UNLIKELY(t < q->ts_hi)) return q->ts_hi;
    q->ts_hi = t;
    return t;
}

/* ---- CID map ---------------------------------------------------------------
 */

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

/* ---- addresses
 * --------------------------------------------------------------- */

static int
quic_parse_addr(const char *hostport, struct sockaddr_storage *ss,
                const char *empty_host)
{
    char host[256];
    const char *colon, *h;
    size_t hl;
    if (hostport == NULL) return MM_EINVAL;
    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (rb == NULL || rb[1] != ':') return MM_EINVAL;
        h = hostport + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL) return MM_EINVAL;
        h = hostport;
        hl = (size_t)(colon - hostport);
    }
    if (hl >= sizeof(host)) return MM_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port > 65535)
        return MM_EINVAL;
    if (host[0] == '\0') snprintf(host, sizeof(host), "%s", empty_host);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
    return MM_EINVAL;
}

static socklen_t
quic_sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
}

static void
quic_format_addr(char *buf, size_t len, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

/* ---- UDP out, with the fault hook -------------------------------------------
 */

static uint64_t
quic_rand(struct mm_quic *q)
{
    /* xorshift64*: seeded, reproducible fault patterns. */
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return q->rng * 2685821657736338717ULL;
}

static int
quic_fault_on(const struct mm_quic *q)
{
    return q->fault.drop_pct || q->fault.delay_ms || q->fault.reorder_pct;
}

static void quic_poll_cb(uv_poll_t *h, int status, int events);

static void
quic_poll_set(struct mm_quic *q)
{
    int ev = UV_READABLE | (q->sendq ? UV_WRITABLE : 0);
    if (ev == q->poll_events || q->closing) return;
    q->poll_events = ev;
    uv_poll_start(&q->poll, ev, quic_poll_cb);
}

/* 1 = sent (or refused for good), 0 = the kernel wants us to wait. */
static int
quic_sendto(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
            size_t len)
{
    ssize_t n;
    do {
        n = sendto(q->fd, data, len, MSG_DONTWAIT, to, quic_sa_len(to));
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        q->st.pkts_out++;
        q->st.bytes_out += len;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 0;
    MM_LOG(MM_LOG_DEBUG, "quic", "send: %s", strerror(errno));
    return 1;
}

static void
quic_send_raw(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
              size_t len)
{
    if (!q->bound) return;
    if (q->sendq == NULL && quic_sendto(q, to, data, len)) return;
    /* The socket buffer is full: copy and queue, in order. */
    struct sendreq *r = mm__malloc(sizeof(*r) + len);
    if (r == NULL) return;
    r->next = NULL;
    memcpy(&r->to, to, quic_sa_len(to));
    memcpy(r->data, data, len);
    r->len = len;
    *q->sendq_tail = r;
    q->sendq_tail = &r->next;
    quic_poll_set(q);
}

static void
quic_sendq_drain(struct mm_quic *q)
{
    while (q->sendq) {
        struct sendreq *r = q->sendq;
        if (!quic_sendto(q, (const struct sockaddr *)&r->to, r->data, r->len))
            break;
        q->sendq = r->next;
        mm__free(r);
    }
    if (q->sendq == NULL) q->sendq_tail = &q->sendq;
    quic_poll_set(q);
}

static void
quic_sendq_free(struct mm_quic *q)
{
    while (q->sendq) {
        struct sendreq *r = q->sendq;
        q->sendq = r->next;
        mm__free(r);
    }
    q->sendq_tail = &q->sendq;
}

static void
quic_fault_arm(struct mm_quic *q)
{
    if (q->closing) return;
    if (q->delayed == NULL)
        mm__tq_stop(q->cfg.tq, &q->fault_tmr);
    else
        mm__tq_start(q->cfg.tq, &q->fault_tmr, q->delayed->due);
}

static void
quic_fault_tmr_cb(struct mm_tmr *t)
{
    struct mm_quic *q = mm__container_of(t, struct mm_quic, fault_tmr);
    uint64_t now = quic_now(q);
    while (q->delayed && q->delayed->due <= now + 500000u) {
        struct fpkt *p = q->delayed;
        q->delayed = p->next;
        quic_send_raw(q, (const struct sockaddr *)&p->to, p->data, p->len);
        mm__free(p);
    }
    quic_fault_arm(q);
}

static void
quic_fault_hold(struct mm_quic *q, const struct sockaddr *to,
                const uint8_t *data, size_t len, uint64_t delay_ns)
{
    struct fpkt *p = mm__malloc(sizeof(*p) + len);
    if (p == NULL) return;
    p->due = quic_now(q) + delay_ns;
    memcpy(&p->to, to, quic_sa_len(to));
    p->len = len;
    memcpy(p->data, data, len);
    struct fpkt **pp = &q->delayed;
    while (*pp && (*pp)->due <= p->due)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
    quic_fault_arm(q);
}

static void
quic_send(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
          size_t len)
{
    if (quic_fault_on(q)) {
        if (q->fault.drop_pct && quic_rand(q) % 100 < q->fault.drop_pct) {
            q->st.fault_dropped++;
            return;
        }
        uint64_t delay = (uint64_t)q->fault.delay_ms * 1000000u;
        if (q->fault.reorder_pct && quic_rand(q) % 100 < q->fault.reorder_pct) {
            /* Held behind whatever is sent in the next 2 ms. */
            quic_fault_hold(q, to, data, len, delay + 2000000u);
            return;
        }
        if (delay) {
            quic_fault_hold(q, to, data, len, delay);
            return;
        }
    }
    quic_send_raw(q, to, data, len);
}

/* ---- streams
 * ------------------------------------------------------------------ */

static struct qstream *
stream_new(struct mm_qconn *c, int64_t sid)
{
    struct qstream *s = mm__calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->c = c;
    s->sid = sid;
    mm__wire_reader_init(&s->rd, c->q->cfg.max_frame);
    ql_push(&c->streams, &s->link);
    return s;
}

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

static void
chunk_pool_drain(struct mm_quic *q)
{
    while (q->chunk_pool) {
        struct chunk *ch = q->chunk_pool;
        q->chunk_pool = ch->next;
        mm__free(ch);
    }
    q->chunk_pooled = 0;
}

static void
stream_free(struct qstream *s)
{
    ql_remove(&s->link);
    ql_remove(&s->tx);
    ql_remove(&s->done);
    mm__wire_reader_free(&s->rd);
    while (s->head) {
        struct chunk *ch = s->head;
        s->head = ch->next;
        chunk_free(s->c->q, ch);
    }
    mm__free(s);
}

static struct qstream *
stream_find(struct mm_qconn *c, int64_t sid)
{
    for (struct qlink *l = c->streams.next; l != &c->streams; l = l->next) {
        struct qstream *s = mm__container_of(l, struct qstream, link);
        if (s->sid == sid) return s;
    }
    return NULL;
}

static int
stream_has_tx(const struct qstream *s)
{
    return s->sent_off < s->queued_off || (s->fin_req && !s->fin_sent);
}

static void
stream_want_tx(struct qstream *s)
{
    if (!ql_linked(&s->tx) && stream_has_tx(s) && !s->closed)
        ql_push(&s->c->txq, &s->tx);
}

static int
stream_queue(struct qstream *s, const uint8_t *data, size_t len)
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
    stream_want_tx(s);
    return 0;
}

static void
stream_advance(struct qstream *s, ngtcp2_ssize n, uint32_t flags)
{
    if (n < 0) return;
    s->sent_off += (uint64_t)n;
    while (s->send && s->send->off + s->send->len <= s->sent_off)
        s->send = s->send->next;
    if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent_off == s->queued_off)
        s->fin_sent = 1;
}

static void
stream_acked(struct qstream *s, uint64_t end)
{
    while (s->head && s->head->off + s->head->len <= end) {
        struct chunk *ch = s->head;
        s->head = ch->next;
        if (s->send == ch) s->send = ch->next;
        chunk_free(s->c->q, ch);
    }
    if (s->head == NULL) s->tail = NULL;
}

/* ---- the auth step
 * --------------------------------------------------------------- */

/* The auth key of ring entry |idx| (an HKDF costs ~11 us here, and each
 * handshake computes and checks proofs: derived once per key). */
static const uint8_t *
auth_key(struct mm_quic *q, size_t idx)
{
    const uint8_t *k = q->kr->keys[idx];
    if (!(q->auth_valid & (1u << idx)) ||
        memcmp(q->auth_of[idx], k, MM_CKEY_LEN) != 0) {
        mm__keyring_derive(q->kr, idx, MM_LABEL_AUTH, NULL, 0,
                           q->auth_keys[idx], sizeof(q->auth_keys[idx]));
        memcpy(q->auth_of[idx], k, MM_CKEY_LEN);
        q->auth_valid |= 1u << idx;
    }
    return q->auth_keys[idx];
}

static void
auth_proof(struct mm_quic *q, size_t idx, const uint8_t *exporter, char role,
           const uint8_t *client_id, const uint8_t *server_id,
           uint8_t out[MM_WIRE_PROOF_LEN])
{
    uint8_t msg[MM_TLS_EXPORTER_LEN + 1 + 2 * MM_ID_LEN];
    memcpy(msg, exporter, MM_TLS_EXPORTER_LEN);
    msg[MM_TLS_EXPORTER_LEN] = (uint8_t)role;
    memcpy(msg + MM_TLS_EXPORTER_LEN + 1, client_id, MM_ID_LEN);
    memcpy(msg + MM_TLS_EXPORTER_LEN + 1 + MM_ID_LEN, server_id, MM_ID_LEN);
    mm__hmac_sha256(out, auth_key(q, idx), 32, msg, sizeof(msg));
}

/* The ring index whose proof matches |proof|, or -1. */
static int
auth_check(const struct mm_qconn *c, char role, const uint8_t *proof)
{
    struct mm_quic *q = c->q;
    const uint8_t *cid = c->dialer ? q->id->id : c->peer_id;
    const uint8_t *sid = c->dialer ? c->peer_id : q->id->id;
    int found = -1;
    for (size_t i = 0; i < q->kr->n; i++) {
        uint8_t want[MM_WIRE_PROOF_LEN];
        auth_proof(q, i, c->exporter, role, cid, sid, want);
        /* Check every key, so the time does not tell which one matched. */
        if (mm__ct_memcmp(want, proof, MM_WIRE_PROOF_LEN) == 0 && found < 0)
            found = (int)i;
    }
    return found;
}

static int
ctrl_send_hello_auth(struct mm_qconn *c, size_t idx, int with_result)
{
    struct mm_quic *q = c->q;
    struct qstream *s = stream_find(c, c->ctrl_sid);
    if (s == NULL) return MM_ENOTFOUND;
    const char *addr = q->advertise ? q->advertise : q->local_str;
    struct mm_wire_hello h = {
        .version = MM_WIRE_PROTO_VERSION,
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
    auth_proof(q, idx, c->exporter, c->dialer ? 'c' : 's', cid, sid, a.proof);
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
    return stream_queue(s, buf, n);
}

static void
auth_fail(struct mm_qconn *c, const char *why)
{
    char addr[64], id[33];
    quic_format_addr(addr, sizeof(addr), (struct sockaddr *)&c->remote);
    mm__hex(id, c->peer_id, MM_ID_LEN);
    MM_LOG(MM_LOG_WARN, "quic", "auth failed with %s (%s): %s", addr,
           c->have_peer_id ? id : "?", why);
    c->q->st.auth_failures++;
    if (!c->dialer) c->auth_failed = 1;
    conn_request_close(c, MM_EUNAUTHORIZED, 1);
}

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
            conn_request_close(d, MM_ECLOSED, 1);
        } else if (d->peer_gen > c->peer_gen) {
            conn_request_close(c, MM_ECLOSED, 1);
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
            conn_settle(d);
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
    c->last_use_ns = quic_now(q);
    /* Now the peer may open streams (the acceptor already granted one). */
    uint64_t win = q->cfg.stream_window;
    ngtcp2_conn_extend_max_streams_bidi(c->conn, c->dialer ? win : win - 1);
    if (conn_resolve_dup(c)) c->up_pending = 1;
}

static void
auth_step(struct mm_qconn *c)
{
    if (!c->hs_done || c->state != QC_HANDSHAKE || c->pending_close ||
        !c->alpn_ok)
        return;
    if (c->dialer) {
        if (!c->ctrl_sent) {
            int64_t sid;
            struct qstream *s = stream_new(c, -1);
            if (s == NULL) {
                conn_request_close(c, UV_ENOMEM, 1);
                return;
            }
            int rv = ngtcp2_conn_open_bidi_stream(c->conn, &sid, s);
            if (rv != 0) {
                stream_free(s);
                conn_request_close(c, MM_ECLOSED, 1);
                return;
            }
            s->sid = sid;
            s->ctrl = 1;
            s->rd.max = QUIC_PREAUTH_MAX_FRAME;
            c->ctrl_sid = sid;
            c->ctrl_sent = 1;
            if (ctrl_send_hello_auth(c, 0, 0) != 0) {
                conn_request_close(c, UV_ENOMEM, 1);
                return;
            }
        }
        if (c->result_rcvd && c->result_status != 0) {
            int err = mm_err_from_wire(c->result_status);
            MM_LOG(MM_LOG_WARN, "quic", "peer refused us: %s",
                   mm_strerror(err));
            conn_request_close(c, err, 1);
            return;
        }
        if (!(c->hello_rcvd && c->auth_rcvd && c->result_rcvd)) return;
        if (auth_check(c, 's', c->peer_proof) < 0) {
            auth_fail(c, "wrong cluster key (server proof)");
            return;
        }
        conn_become_up(c);
    } else {
        if (!(c->hello_rcvd && c->auth_rcvd)) return;
        int idx = auth_check(c, 'c', c->peer_proof);
        if (idx < 0) {
            /* Say why before closing; the close carries it as well. */
            struct qstream *s = stream_find(c, c->ctrl_sid);
            uint8_t buf[16];
            struct mm_wire_auth_result r = {
                .status = mm_err_to_wire(MM_EUNAUTHORIZED)};
            size_t n = mm__wire_auth_result_encode(buf, sizeof(buf), &r);
            if (s && n) stream_queue(s, buf, n);
            auth_fail(c, "wrong cluster key");
            return;
        }
        if (ctrl_send_hello_auth(c, (size_t)idx, 1) != 0) {
            conn_request_close(c, UV_ENOMEM, 1);
            return;
        }
        conn_become_up(c);
    }
}

/* Handles a frame on the control stream before the connection is up. */
static int
auth_frame(struct mm_qconn *c, struct qstream *s, uint8_t type,
           const uint8_t *body, size_t len)
{
    if (!s->ctrl) {
        auth_fail(c, "stream before auth");
        return QUIC_STOP;
    }
    switch (type) {
    case MM_WIRE_HELLO: {
        struct mm_wire_hello h;
        if (c->hello_rcvd || mm__wire_hello_decode(&h, body, len) != 0) {
            auth_fail(c, "bad hello");
            return QUIC_STOP;
        }
        if (!c->have_peer_id || memcmp(h.node, c->peer_id, MM_ID_LEN) != 0) {
            auth_fail(c, "hello node id differs from the certificate's");
            return QUIC_STOP;
        }
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
            quic_format_addr(c->peer_addr, sizeof(c->peer_addr),
                             (struct sockaddr *)&c->remote);
        return 0;
    }
    case MM_WIRE_AUTH: {
        struct mm_wire_auth a;
        if (!c->hello_rcvd || c->auth_rcvd ||
            mm__wire_auth_decode(&a, body, len) != 0) {
            auth_fail(c, "bad auth");
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
            auth_fail(c, "bad auth result");
            return QUIC_STOP;
        }
        c->result_rcvd = 1;
        c->result_status = r.status;
        return 0;
    }
    default:
        auth_fail(c, "frame before auth");
        return QUIC_STOP;
    }
}

static void auth_step(struct mm_qconn *c);

static int
quic_frame_cb(void *d, uint8_t type, const uint8_t *body, size_t len)
{
    struct qstream *s = d;
    struct mm_qconn *c = s->c;
    if (c->pending_close) return QUIC_STOP;
    if (c->state != QC_UP) {
        /* Advance auth at once: frames that follow AUTH_RESULT in the same
         * chunk (the peer's first control frames) must find us up. */
        int rv = auth_frame(c, s, type, body, len);
        if (rv == 0) auth_step(c);
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
    c->last_use_ns = quic_now(c->q);
    if (c->q->ops.frame)
        c->q->ops.frame(c->q->ops.data, c, s->sid, type, body, len);
    return c->pending_close ? QUIC_STOP : 0;
}

/* ---- ngtcp2 callbacks
 * --------------------------------------------------------- */

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
    /* P15: the exporter is only right from here on. */
    if (!c->have_peer_id || mm__tls_exporter(c->tls, c->exporter) != 0) {
        auth_fail(c, "no verified peer key");
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int
cb_stream_open(ngtcp2_conn *conn, int64_t sid, void *ud)
{
    struct mm_qconn *c = ud;
    if (!ngtcp2_is_bidi_stream(sid)) return 0;
    struct qstream *s = stream_new(c, sid);
    if (s == NULL) return NGTCP2_ERR_CALLBACK_FAILURE;
    if (c->state != QC_UP && c->ctrl_sid < 0 && !c->dialer) {
        s->ctrl = 1;
        s->rd.max = QUIC_PREAUTH_MAX_FRAME;
        c->ctrl_sid = sid;
    } else {
        c->nstreams++;
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
    /* The data is consumed (or dropped) at once: give the credit back. */
    ngtcp2_conn_extend_max_stream_offset(conn, sid, datalen);
    ngtcp2_conn_extend_max_offset(conn, datalen);
    if (s == NULL || s->decode_err || s->reset_req) return 0;
    if (datalen > 0) {
        int rv = mm__wire_reader_feed(&s->rd, data, datalen, quic_frame_cb, s);
        if (rv == QUIC_STOP || c->pending_close)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        if (rv != 0) {
            MM_LOG(MM_LOG_INFO, "quic",
                   "stream %" PRId64 ": bad frame (%s); "
                   "resetting it",
                   sid, mm_strerror(rv));
            s->decode_err = 1;
            s->reset_req = 1;
            c->resets_pending = 1;
            s->reset_code = mm_err_to_wire(MM_EDECODE);
            return 0;
        }
    }
    if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) &&
        mm__wire_reader_partial(&s->rd) != 0) {
        s->decode_err = 1; /* the stream ended inside a frame */
    } else if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && c->state == QC_UP &&
               !c->pending_close && c->q->ops.stream_fin) {
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
    /* P12: give the peer its stream credit back. */
    if (!ngtcp2_conn_is_local_stream(conn, sid) && ngtcp2_is_bidi_stream(sid))
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    if (s == NULL) return 0;
    s->closed = 1;
    ql_remove(&s->tx);
    if (s->decode_err)
        s->close_err = MM_EDECODE;
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

static void
quic_callbacks(ngtcp2_callbacks *cb, int server)
{
    memset(cb, 0, sizeof(*cb)); /* P4: by name, never positional */
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
    cb->stream_open = cb_stream_open;
    cb->recv_stream_data = cb_recv_stream_data;
    cb->acked_stream_data_offset = cb_acked_stream_data_offset;
    cb->stream_close = cb_stream_close;
    cb->extend_max_local_streams_bidi = cb_extend_max_local_streams_bidi;
    cb->extend_max_stream_data = cb_extend_max_stream_data;
}

static ngtcp2_conn *
quic_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct mm_qconn *c = ref->user_data;
    return c->conn;
}

/* ---- connection life
 * --------------------------------------------------------- */

static void
conn_request_close(struct mm_qconn *c, int err, int send)
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
        stream_free(mm__container_of(c->streams.next, struct qstream, link));
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
            quic_send(q, (struct sockaddr *)&c->remote, q->txbuf, (size_t)n);
    }
    c->state = QC_DEAD;
    conn_hs_uncount(c);
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

/* Writes every packet ngtcp2 has for us (P7). */
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
                conn_request_close(c, MM_ECLOSED, 1);
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
        quic_send(q, (struct sockaddr *)&c->remote, q->txbuf, (size_t)nwrite);
        if (++pkts >= limit) break;
        /*
         * The packet took everything we had (no stream left) and is far
         * from full, so ngtcp2 had nothing more either: it packs ACKs,
         * control frames and retransmissions greedily.  Asking again only
         * to hear 0 costs ~0.5 us per write, 1 us per round trip (user
         * time, W5 seq pinned: 7.3 -> 6.1 us).  During the handshake
         * coalesced packets may follow; there we always ask.
         */
        if (!others && !(s && stream_has_tx(s)) && c->state == QC_UP &&
            (size_t)nwrite < maxpl / 2)
            break;
    }
    /*
     * P1: before the first RTT sample ngtcp2 paces with initial_rtt, which
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
     * of it (an exit to the hypervisor on a VM: 33 us instead of 21 us per
     * pinned round trip here).  So such a wake-up is put off to at least
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

static void
conn_settle(struct mm_qconn *c)
{
    struct mm_quic *q = c->q;
    if (c->state == QC_DEAD) return;
    c->busy++;
    for (int round = 0; round < 16; round++) {
        int progress = 0;
        auth_step(c);
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
            stream_free(s);
            if (c->state == QC_UP && q->ops.stream_closed)
                q->ops.stream_closed(q->ops.data, c, sid, err);
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
            quic_defer_write(c);
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

static void
conn_enter(struct mm_qconn *c)
{
    c->busy++;
}

static void quic_hot_wait(struct mm_quic *q);

static void
quic_defer_write(struct mm_qconn *c)
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
static void
quic_flush(struct mm_quic *q)
{
    int own_clock = q->now_cache == 0;
    if (own_clock) q->now_cache = uv_hrtime();
    q->flushing = 1;
    while (!ql_empty(&q->wq)) {
        struct mm_qconn *c =
            mm__container_of(q->wq.next, struct mm_qconn, wlink);
        ql_remove(&c->wlink);
        if (c->state == QC_DEAD || c->busy) continue;
        conn_settle(c);
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
        quic_flush(q);
        q->flush_idle = 0;
        if (q->hot_ns && q->st.pkts_out != out) quic_hot_wait(q);
    } else if (++q->flush_idle >= QUIC_FLUSH_LINGER && q->flush_active) {
        uv_prepare_stop(&q->flush);
        q->flush_active = 0;
        q->flush_idle = 0;
    }
}

static void
conn_leave(struct mm_qconn *c)
{
    if (--c->busy == 0) conn_settle(c);
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
            conn_request_close(c, MM_EUNREACHABLE, 0);
        }
    }
    if (c->state != QC_UP &&
        now >= c->created_ns + (uint64_t)q->cfg.handshake_ms * 1000000u) {
        MM_LOG(MM_LOG_INFO, "quic", "handshake/auth timed out");
        conn_request_close(c, MM_EUNREACHABLE, 1);
    }
    if (c->state == QC_UP && !c->pending_close) {
        conn_track_outstanding(c, now);
        uint64_t from = MM_MAX(c->outstanding_since, c->last_rx_ns);
        if (c->outstanding_since &&
            now >= from + (uint64_t)q->cfg.probe_fail_ms * 1000000u) {
            MM_LOG(MM_LOG_INFO, "quic", "%s: no answer for %u ms", c->peer_name,
                   q->cfg.probe_fail_ms);
            conn_request_close(c, MM_EUNREACHABLE, 1);
        } else if (c->nstreams == 0 && q->cfg.idle_ms &&
                   now >=
                       c->last_use_ns + (uint64_t)q->cfg.idle_ms * 1000000u) {
            MM_LOG(MM_LOG_DEBUG, "quic", "%s: idle, closing", c->peer_name);
            conn_request_close(c, MM_ECLOSED, 1);
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
            conn_request_close(c, quic_map_ccerr(&e), 0);
            if (c->result_rcvd && c->result_status != 0)
                c->close_err = mm_err_from_wire(c->result_status);
            break;
        case NGTCP2_ERR_CRYPTO:
            MM_LOG(MM_LOG_INFO, "quic", "TLS handshake failed%s",
                   mm__tls_id_mismatch(c->tls) ? ": unexpected peer id" : "");
            conn_request_close(c, MM_EUNAUTHORIZED, 1);
            ngtcp2_connection_close_error_set_transport_error_tls_alert(
                &c->ccerr, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
            break;
        case NGTCP2_ERR_DROP_CONN:
            conn_request_close(c, MM_ECLOSED, 0);
            break;
        default:
            if (ngtcp2_err_is_fatal(rv)) {
                MM_LOG(MM_LOG_INFO, "quic", "read: %s", ngtcp2_strerror(rv));
                conn_request_close(c, MM_ECLOSED, 1);
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
    return c;
}

/* Frees a connection that never got going (no conn_down owed). */
static void
conn_hs_uncount(struct mm_qconn *c)
{
    if (c->hs_counted) {
        c->hs_counted = 0;
        c->q->hs_inbound--;
    }
}

static void
conn_abort(struct mm_qconn *c)
{
    c->state = QC_DEAD;
    conn_hs_uncount(c);
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
     * call by a full-size encrypt, send, receive and decrypt each, about
     * 0.25 ms of a 1.9 ms node-start-to-first-answer (W5 connect,
     * measured).  murmer's messages are mostly far below 1200 bytes; bulk
     * transfers pay ~20% more packets (pipelined W5: within run noise).
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
    p->initial_max_data = QUIC_CONN_WINDOW;
    p->initial_max_stream_data_bidi_local = QUIC_STREAM_WINDOW;
    p->initial_max_stream_data_bidi_remote = QUIC_STREAM_WINDOW;
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
        (const ngtcp2_sockaddr *)from, fromlen, &scid, &hd->dcid,
        quic_now(q));
    if (tl < 0) return;
    ngtcp2_ssize n =
        ngtcp2_crypto_write_retry(pkt, sizeof(pkt), hd->version, &hd->scid,
                                  &scid, &hd->dcid, token, (size_t)tl);
    if (n <= 0) return;
    q->st.retries_sent++;
    quic_send(q, from, pkt, (size_t)n);
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
    params.original_dcid = hd.dcid; /* P5 */
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
    q->st.conns_accepted++;
    conn_recv(c, from, fromlen, pkt, len);
}

/* ---- UDP in
 * --------------------------------------------------------------------- */

static void quic_dispatch(struct mm_quic *q, const uint8_t *pkt, size_t len,
                          const struct sockaddr *from);

/* Reads one batch (|flags| MSG_DONTWAIT, or MSG_WAITFORONE for a hot
 * wait) and dispatches it; recvmmsg's result (errno kept when < 0). */
static int
quic_read_batch(struct mm_quic *q, int flags)
{
    /*
     * Ask for as many datagrams as the last read brought (doubling while
     * reads come back full): recvmmsg stops at |want| without one more
     * receive attempt that would end in EAGAIN, and a request/response
     * exchange brings one datagram per wake-up.  A short read means the
     * queue is empty; a full one is followed by another wake-up (epoll is
     * level-triggered) that reads with a larger batch.
     */
    unsigned want = q->rx_want ? q->rx_want : 1;
    int n;
    if (want == 1) {
        /*
         * One datagram: recvfrom, not recvmmsg.  The kernel's recvmmsg
         * copies in and imports a msghdr and its iovec and writes back
         * msg_len, msg_namelen and msg_flags one by one: about 0.3 us more
         * per call than recvfrom here, 3% of the pinned UDP floor's round
         * trip (measured with the floor's ping-pong both ways).  MSG_TRUNC
         * makes it return a datagram's real length, so one longer than the
         * slot is still seen as truncated.
         */
        socklen_t fl = sizeof(q->rx_from[0]);
        int rf = (flags & MSG_DONTWAIT) | MSG_TRUNC;
        ssize_t r;
        do {
            r = recvfrom(q->fd, q->rxbuf[0], QUIC_RX_SLOT, rf,
                         (struct sockaddr *)&q->rx_from[0], &fl);
        } while (r < 0 && errno == EINTR && flags == MSG_DONTWAIT);
        if (r < 0) return -1;
        q->rx_msgs[0].msg_len = (unsigned)MM_MIN((size_t)r, QUIC_RX_SLOT + 1u);
        q->rx_msgs[0].msg_hdr.msg_flags = r > QUIC_RX_SLOT ? MSG_TRUNC : 0;
        n = 1;
        goto got;
    }
    for (unsigned i = 0; i < want; i++) {
        struct msghdr *h = &q->rx_msgs[i].msg_hdr;
        h->msg_name = &q->rx_from[i];
        h->msg_namelen = sizeof(q->rx_from[i]);
        h->msg_iov = &q->rx_iov[i];
        h->msg_iovlen = 1;
        h->msg_control = NULL;
        h->msg_controllen = 0;
        h->msg_flags = 0;
        q->rx_iov[i].iov_base = q->rxbuf[i];
        q->rx_iov[i].iov_len = QUIC_RX_SLOT;
    }
    do {
        n = recvmmsg(q->fd, q->rx_msgs, want, flags, NULL);
    } while (n < 0 && errno == EINTR && flags == MSG_DONTWAIT);
    if (n <= 0) return n;
got:
    /*
     * A request/response exchange reads one datagram per wake-up, and
     * asking for two when one is queued costs a second receive attempt in
     * the kernel (~1% of a pinned round trip).  So after a read of two
     * found only one, single reads stay single for QUIC_RX_LONE full
     * reads before the batch may grow again.
     */
    if ((unsigned)n == want) {
        if (want > 1 || q->rx_lone == 0)
            q->rx_want = MM_MIN(want * 2, QUIC_RX_BATCH);
        else
            q->rx_lone--;
    } else {
        q->rx_want = (unsigned)n;
        if (n == 1) q->rx_lone = QUIC_RX_LONE;
    }
    int own_clock = q->now_cache == 0;
    if (own_clock) q->now_cache = uv_hrtime();
    q->rx_ns = q->now_cache;
    for (int i = 0; i < n && !q->closing; i++) {
        const struct msghdr *h = &q->rx_msgs[i].msg_hdr;
        size_t len = q->rx_msgs[i].msg_len;
        if (len == 0) continue; /* a hot wait's wake-up (or nothing) */
        if (h->msg_flags & MSG_TRUNC) {
            /* Larger than anything a murmer node sends: not ours. */
            q->st.dropped_in++;
            continue;
        }
        quic_dispatch(q, q->rxbuf[i], len,
                      (const struct sockaddr *)&q->rx_from[i]);
    }
    if (own_clock) q->now_cache = 0;
    return n;
}

static void
quic_read(struct mm_quic *q)
{
    (void)quic_read_batch(q, MSG_DONTWAIT);
}

/*
 * A connection's timer stays at its earliest deadline while packets move
 * the real one later (conn_arm_timer), and wakes once early to re-arm: so
 * about every QUIC_TIMER_FLOOR_MS the queue shows a deadline that is not
 * real, which would keep hot waits off for hot_ns each time (a tenth of
 * the round trips of a steady exchange).  Moves such timers to their real
 * deadlines; 1 if a deadline within the wait remains.
 */
static int
quic_push_timers(struct mm_quic *q, uint64_t now)
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

/*
 * While the loop waits in the socket's receive, the socket leaves the
 * loop's epoll set: a socket in an epoll set has every datagram's arrival
 * run epoll's wake-up callback too (a lock and a ready-list entry), which
 * cost the pinned UDP floor 5.5% of its round trips (0.945x over 8 pairs,
 * with both sockets in an epoll set that nobody waits on).  Taking it out
 * and back costs two epoll_ctl calls per hot wait, not per round.
 *
 * libuv keeps the socket registered as far as it knows (uv_poll on it, with
 * q->poll_events), so it is back, with those events and the data libuv
 * registers (the fd), before the loop turns again; a socket that is being
 * closed stays out (libuv's own removal then finds it gone, which it
 * ignores).  A datagram that came while it was out makes it readable at
 * once when added back.
 */
static void
quic_epoll_out(struct mm_quic *q)
{
    int ep = uv_backend_fd(q->loop);
    q->hot_out = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_DEL, q->fd, NULL) == 0;
}

static void
quic_epoll_back(struct mm_quic *q)
{
    if (!q->hot_out) return;
    q->hot_out = 0;
    if (q->closing || q->fd < 0) return;
    struct epoll_event e = {0};
    e.events = (q->poll_events & UV_READABLE ? EPOLLIN : 0) |
               (q->poll_events & UV_WRITABLE ? EPOLLOUT : 0);
    e.data.fd = q->fd;
    if (epoll_ctl(uv_backend_fd(q->loop), EPOLL_CTL_ADD, q->fd, &e) != 0 &&
        errno != EEXIST)
        MM_LOG(MM_LOG_ERR, "quic", "socket back into the loop: %s",
               strerror(errno));
}

/*
 * Hot waits.  In a request/response exchange the loop sends, then sleeps in
 * epoll_wait until the answer makes the socket readable, then reads it with
 * recvmmsg.  A task asleep in the socket's own receive is woken directly by
 * the datagram's arrival and returns with it: one syscall instead of two,
 * and no epoll wake-up.  Measured here (pinned, bench/w5 seq against
 * MURMER_HOT_WAIT_US=0 in the same run): +2-16% round trips/s, from the
 * same gap as between the W6 UDP floor that blocks in recvfrom and
 * bench/udploop that waits in epoll.
 *
 * So after a turn that sent datagrams, when the loop has nothing else to do
 * now (no idle or pending handles, no uv timer or tq deadline within the
 * wait, the owner's park() agrees), the loop waits in the socket's receive
 * (recvfrom, or recvmmsg for a batch) for at most hot_ns (SO_RCVTIMEO).
 * What it reads is dispatched, the owner's run()
 * does what the check phase would, the writes are flushed, and if that
 * sent datagrams again the next wait follows, for at most QUIC_HOT_ROUNDS
 * rounds and QUIC_HOT_BUDGET_NS (or hot_ns if longer); then the loop turns
 * normally (epoll sees every other handle).  A post from another thread
 * meanwhile wakes the socket (park()), and uv timers and tq deadlines are
 * looked at before every round; other handles of the loop (signals, the
 * mDNS thread's async) wait at most that budget plus one wait, which the
 * kernel rounds up to its tick (4 ms at HZ=250).  The budget is long (16
 * ms, 1024 rounds) because every end of a hot wait costs a loop turn, an
 * epoll_wait, the socket's two epoll_ctl and an answer woken through epoll:
 * 16 ms against 1 ms gave 1.02x in 24 pinned w5 seq pairs (ahead in 17).
 * A wait that times out (no answer within hot_ns: the exchange is not hot)
 * makes the next 1, 2, 4 ... QUIC_HOT_SKIP_MAX chances pass without one.
 */
static void
quic_hot_rounds(struct mm_quic *q)
{
    uint64_t start = mm__now_ns(), now = start;
    for (unsigned round = 0; round < QUIC_HOT_ROUNDS; round++) {
        if (q->closing || !q->bound || q->sendq != NULL) return;
        if (now - start >= MM_MAX(q->hot_ns, QUIC_HOT_BUDGET_NS)) return;
        /*
         * The next uv timer, from the loop's time (which this loop turn
         * set, up to the budget ago) rather than a uv_update_time(), a
         * clock read, per round: what is past of the timer's wait since
         * then counts against it.
         */
        int t = uv_backend_timeout(q->loop);
        uint64_t since = now / 1000000u > uv_now(q->loop)
                             ? now / 1000000u - uv_now(q->loop)
                             : 0;
        if (t >= 0 && ((uint64_t)t <= since ||
                       ((uint64_t)t - since) * 1000000u < q->hot_ns + 1000000u))
            return;
        if (mm__tq_next(q->cfg.tq) < now + q->hot_ns &&
            quic_push_timers(q, now))
            return;
        if (!q->ops.park(q->ops.data)) return;
        if (!q->hot_out) quic_epoll_out(q);
        int n = quic_read_batch(q, MSG_WAITFORONE);
        int err = n < 0 ? errno : 0;
        int woken = q->ops.unpark(q->ops.data);
        if (n <= 0) {
            if (err == EAGAIN || err == EWOULDBLOCK) {
                q->st.hot_misses++;
                q->hot_next =
                    q->hot_next ? MM_MIN(q->hot_next * 2, QUIC_HOT_SKIP_MAX)
                                : 1;
                q->hot_skip = q->hot_next;
            }
            return;
        }
        q->hot_next = 0;
        if (woken) {
            q->st.hot_woken++;
            return;
        }
        q->st.hot_hits++;
        if (q->closing) return;
        q->ops.run(q->ops.data, q->rx_ns);
        if (q->closing) return; /* the node stopped meanwhile */
        /*
         * The flush stamps its packets with the time of the read (or a
         * later one that ngtcp2 was handed meanwhile: quic_now()), a clock
         * read less per round.  The few microseconds the handler ran then
         * count as network time in the peer's RTT samples.  The next
         * round's budget check uses that time too.
         */
        now = q->rx_ns;
        uint64_t out = q->st.pkts_out;
        q->now_cache = now;
        quic_flush(q);
        q->now_cache = 0;
        if (q->st.pkts_out == out) return; /* nothing sent: no answer due */
    }
}

static void
quic_hot_wait(struct mm_quic *q)
{
    if (q->hot_skip) {
        q->hot_skip--;
        return;
    }
    quic_hot_rounds(q);
    quic_epoll_back(q);
    /* The loop computes its poll timeout from its time next. */
    uv_update_time(q->loop);
}

static void
quic_poll_cb(uv_poll_t *h, int status, int events)
{
    struct mm_quic *q = h->data;
    if (q->closing) return;
    if (status < 0) {
        MM_LOG(MM_LOG_WARN, "quic", "socket: %s", uv_strerror(status));
        events = UV_READABLE | (q->sendq ? UV_WRITABLE : 0);
    }
    if (events & UV_WRITABLE) quic_sendq_drain(q);
    if (events & UV_READABLE) quic_read(q);
}

static void
quic_dispatch(struct mm_quic *q, const uint8_t *pkt, size_t len,
              const struct sockaddr *from)
{
    q->st.pkts_in++;
    q->st.bytes_in += len;
    if (q->fault.drop_pct && quic_rand(q) % 100 < q->fault.drop_pct) {
        q->st.fault_dropped++;
        return;
    }
    /* 1. The destination connection id first (P13). */
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
 * The socket is our own, watched by a uv_poll handle, rather than a
 * uv_udp_t: libuv's UDP reader reads until EAGAIN (a wasted syscall per
 * wake-up, two per round trip), and its recvmmsg mode does the same.
 * Returns 0 or a libuv error code.
 */
static int
quic_bind(struct mm_quic *q, const struct sockaddr *sa)
{
    int fd =
        socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int sz = 4 * 1024 * 1024;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    socklen_t namelen = sizeof(q->local);
    int rv;
    if (bind(fd, sa, quic_sa_len(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&q->local, &namelen) != 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    if ((rv = uv_poll_init_socket(q->loop, &q->poll, fd)) != 0) {
        close(fd);
        return rv;
    }
    q->poll.data = q;
    q->handles++;
    q->fd = fd;
    if (q->hot_ns) {
        /* uv_poll_init_socket made the socket non-blocking. */
        struct timeval tv = {.tv_sec = (time_t)(q->hot_ns / 1000000000u),
                             .tv_usec = (suseconds_t)(q->hot_ns / 1000u %
                                                      1000000u)};
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
            q->hot_ns = 0;
    }
    q->local_len = namelen;
    quic_format_addr(q->local_str, sizeof(q->local_str),
                     (struct sockaddr *)&q->local);
    q->bound = 1;
    quic_poll_set(q);
    return 0;
}

/* ---- public
 * ----------------------------------------------------------------------- */

void
mm__quic_config_init(struct mm_quic_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

int
mm__quic_fault_parse(struct mm_quic_fault *f, const char *s)
{
    struct mm_quic_fault r = {0, 0, 0, 1};
    char buf[256];
    if (s == NULL || strlen(s) >= sizeof(buf)) return MM_EINVAL;
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) return MM_EINVAL;
        *eq = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (*end != '\0' || eq[1] == '\0' || errno) return MM_EINVAL;
        if (strcmp(tok, "drop") == 0 && v <= 100)
            r.drop_pct = (unsigned)v;
        else if (strcmp(tok, "delay") == 0 && v <= 60000)
            r.delay_ms = (unsigned)v;
        else if (strcmp(tok, "reorder") == 0 && v <= 100)
            r.reorder_pct = (unsigned)v;
        else if (strcmp(tok, "seed") == 0)
            r.seed = v;
        else
            return MM_EINVAL;
    }
    *f = r;
    return 0;
}

void
mm__quic_set_fault(struct mm_quic *q, const struct mm_quic_fault *f)
{
    q->fault = *f;
    q->rng = f->seed ? f->seed : 1;
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
    if (q->cfg.idle_ms == 0) q->cfg.idle_ms = MM_CONN_IDLE_MS;
    if (q->cfg.probe_fail_ms == 0) q->cfg.probe_fail_ms = MM_PROBE_FAIL_MS;
    if (q->cfg.handshake_ms == 0) q->cfg.handshake_ms = 5000;
    if (q->cfg.stream_window < 2) q->cfg.stream_window = 128;
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
        uint32_t us = q->cfg.hot_wait_us ? q->cfg.hot_wait_us
                                         : MM_QUIC_HOT_WAIT_US;
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
    if (mm__random_bytes(q->retry_secret, sizeof(q->retry_secret)) != 0) {
        rv = UV_ENOMEM;
        goto fail;
    }
    /* Derived now, not inside a node's first handshake (cold, ~30 us). */
    for (size_t i = 0; i < kr->n && i < MM_ARRAY_SIZE(q->auth_keys); i++)
        auth_key(q, i);
    q->fd = -1;
    q->sendq_tail = &q->sendq;
    q->fault_tmr.fn = quic_fault_tmr_cb;
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
mm__quic_listen(struct mm_quic *q, const char *hostport)
{
    struct sockaddr_storage ss;
    if (q->bound) return MM_EEXISTS;
    if (quic_parse_addr(hostport, &ss, "0.0.0.0") != 0) return MM_EINVAL;
    int rv = quic_bind(q, (struct sockaddr *)&ss);
    if (rv != 0) {
        MM_LOG(MM_LOG_ERR, "quic", "cannot listen on %s: %s", hostport,
               uv_strerror(rv));
        return rv;
    }
    q->accepting = 1;
    return 0;
}

const char *
mm__quic_local_addr(const struct mm_quic *q)
{
    return q->bound ? q->local_str : NULL;
}

int
mm__quic_fd(const struct mm_quic *q)
{
    return q->fd;
}

int
mm__quic_local_port(const struct mm_quic *q)
{
    if (!q->bound) return 0;
    if (q->local.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&q->local)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&q->local)->sin_port);
}

int
mm__quic_wake_addr(const struct mm_quic *q, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    if (!q->bound) return UV_EINVAL;
    memcpy(ss, &q->local, sizeof(*ss));
    *len = q->local_len;
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) a->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (a->sin_addr.s_addr == htonl(INADDR_ANY))
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return 0;
}

int
mm__quic_dial(struct mm_quic *q, const char *hostport,
              const uint8_t *expected_id, struct mm_qconn **out)
{
    struct sockaddr_storage ss;
    int rv;
    if (q->closing) return MM_ECLOSED;
    if (quic_parse_addr(hostport, &ss, "127.0.0.1") != 0) return MM_EINVAL;
    if (!q->bound) {
        const char *any = ss.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
        struct sockaddr_storage la;
        quic_parse_addr(any, &la, "0.0.0.0");
        if ((rv = quic_bind(q, (struct sockaddr *)&la)) != 0) return rv;
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
    if (quic_parse_addr(hostport, &ss, "0.0.0.0") != 0) return 0;
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

int
mm__quic_stream_open(struct mm_qconn *c, int64_t *sid)
{
    if (c->state != QC_UP || c->pending_close) return MM_ECLOSED;
    struct qstream *s = stream_new(c, -1);
    if (s == NULL) return UV_ENOMEM;
    int rv = ngtcp2_conn_open_bidi_stream(c->conn, sid, s);
    if (rv != 0) {
        stream_free(s);
        if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
            c->credit_wanted = 1;
            return UV_EAGAIN;
        }
        return MM_ECLOSED;
    }
    s->sid = *sid;
    c->nstreams++;
    c->last_use_ns = quic_now(c->q);
    return 0;
}

int
mm__quic_send_frame(struct mm_qconn *c, int64_t sid, const uint8_t *frame,
                    size_t len)
{
    if (c->state != QC_UP || c->pending_close) return MM_ECLOSED;
    if (frame == NULL || len < MM_WIRE_HDR_LEN) return MM_EINVAL;
    struct qstream *s = stream_find(c, sid);
    if (s == NULL || s->closed || s->fin_req || s->reset_req)
        return MM_ENOTFOUND;
    conn_enter(c);
    int rv = stream_queue(s, frame, len);
    /* An open actor stream holds the idle timer off by itself (nstreams),
     * and its close marks the use: only control-stream traffic needs the
     * clock here. */
    if (s->ctrl) c->last_use_ns = quic_now(c->q);
    conn_leave(c);
    return rv;
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

void
mm__quic_conn_close(struct mm_qconn *c, int err)
{
    if (c->state == QC_DEAD || c->pending_close) return;
    conn_enter(c);
    conn_request_close(c, err ? err : MM_ECLOSED, 1);
    conn_leave(c);
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

const uint8_t *
mm__quic_conn_peer_id(const struct mm_qconn *c)
{
    return c->peer_id;
}

uint64_t
mm__quic_conn_peer_gen(const struct mm_qconn *c)
{
    return c->peer_gen;
}

const struct sockaddr *
mm__quic_conn_remote(const struct mm_qconn *c)
{
    return (const struct sockaddr *)&c->remote;
}

uint64_t
mm__quic_conn_rtt_ns(struct mm_qconn *c)
{
    ngtcp2_conn_stat st;
    if (c->conn == NULL) return 0;
    ngtcp2_conn_get_conn_stat(c->conn, &st);
    return st.first_rtt_sample_ts == UINT64_MAX ? 0 : st.smoothed_rtt;
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

int
mm__quic_send_datagram(struct mm_quic *q, const struct sockaddr *to,
                       const uint8_t *buf, size_t len)
{
    if (q->closing) return MM_ECLOSED;
    if (!q->bound) return MM_EINVAL;
    if (len == 0 || len > QUIC_RX_SLOT) return MM_EINVAL;
    quic_send(q, to, buf, len);
    return 0;
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
    quic_maybe_free(q);
}

static void
quic_poll_closed(uv_handle_t *h)
{
    struct mm_quic *q = h->data;
    close(q->fd);
    q->fd = -1;
    quic_handle_closed(h);
}

static void
quic_maybe_free(struct mm_quic *q)
{
    if (!q->closing || q->handles > 0) return;
    void (*cb)(void *) = q->close_cb;
    void *data = q->close_data;
    quic_free_dead(q);
    chunk_pool_drain(q);
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
    quic_flush(q); /* what callbacks queued goes out before the closes */
    q->closing = 1;
    q->close_cb = cb;
    q->close_data = data;
    while (!ql_empty(&q->conns)) {
        struct mm_qconn *c =
            mm__container_of(q->conns.next, struct mm_qconn, link);
        if (!c->pending_close) conn_request_close(c, MM_ECLOSED, 1);
        conn_finish(c);
    }
    while (q->delayed) {
        struct fpkt *p = q->delayed;
        q->delayed = p->next;
        mm__free(p);
    }
    mm__tq_stop(q->cfg.tq, &q->fault_tmr);
    uv_prepare_stop(&q->flush);
    q->flush_active = 0;
    uv_close((uv_handle_t *)&q->flush, quic_handle_closed);
    if (q->bound) {
        /* CONNECTION_CLOSEs the kernel could not take yet: one more try. */
        if (q->sendq) {
            int was = q->closing;
            q->closing = 0;
            quic_sendq_drain(q);
            q->closing = was;
        }
        quic_sendq_free(q);
        uv_poll_stop(&q->poll);
        uv_close((uv_handle_t *)&q->poll, quic_poll_closed);
    } else {
        quic_maybe_free(q);
    }
}
