/*
 * quic_int.h — what the QUIC transport's files share (see quic.h for the
 * interface): its types, a few small helpers inlined on the packet path,
 * and the functions that cross files.  Private to lib/transport.
 *
 *   quic.c    QUIC proper: the CID map, the life of a connection (ngtcp2
 *             set-up and callbacks, writes, timers, close), the
 *             demultiplexer, the transport's public functions
 *   stream.c  streams: frames queued until acknowledged, frames read, the
 *             stream callbacks and functions
 *   auth.c    the auth exchange on the control stream (HELLO, AUTH,
 *             AUTH_RESULT, bound to the TLS exporter) and the crossing-dial
 *             rule applied when a connection passes it
 *   udp.c     the UDP socket: sending (with the fault hook and the queue
 *             for a full socket buffer), both read paths, hot waits
 *
 * The rhythm of a connection: a packet read or a timer expiry enters the
 * connection (busy++), ngtcp2 runs its callbacks, which only record state
 * or queue data; when busy drops back to 0 the connection "settles": it
 * runs the auth step, reports events to ops, queues its write for the end
 * of the loop turn (mm__quic_flush: every packet it can, conn_write) and
 * re-arms its timer from ngtcp2_conn_get_expiry().  An error at any point
 * requests a close, which settle carries out (CONNECTION_CLOSE, conn_down,
 * free at the next flush).
 */
#ifndef MM_QUIC_INT_H
#define MM_QUIC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ngtcp2/ngtcp2.h>

#include "common.h"
#include "transport/quic.h"
#include "transport/tls.h"
#include "wire.h"

#define QUIC_MAP_BUCKETS 1024
#define QUIC_MAX_PKT 1500 /* our tx buffer; ngtcp2 caps payloads below */
#define QUIC_RX_BATCH 16  /* datagrams per recvmmsg */
#define QUIC_RX_SLOT 2048 /* > any datagram we send (txbuf, sealed gossip) */
#define QUIC_STOP 1       /* a frame callback asks the reader to stop */
/* HELLO/AUTH are small: the frame cap before auth. */
#define QUIC_PREAUTH_MAX_FRAME 4096
/*
 * Flow-control windows.  Every stream and the connection start with the
 * pre-auth window (our transport parameters), which covers HELLO + AUTH +
 * AUTH_RESULT; nothing more is granted before auth.  Once a connection is
 * up, the connection and each stream (as it opens) are raised to the full
 * windows.
 */
#define QUIC_PREAUTH_WINDOW (16 * 1024)
#define QUIC_STREAM_WINDOW (1024 * 1024)    /* per-stream credit */
#define QUIC_CONN_WINDOW (16 * 1024 * 1024) /* per-connection */

enum qstate { QC_HANDSHAKE = 0, QC_UP = 1, QC_DEAD = 2 };

/* ---- intrusive lists ----------------------------------------------------- */

struct qlink {
    struct qlink *prev, *next;
};

static inline void
ql_init(struct qlink *h)
{
    h->prev = h->next = h;
}

static inline int
ql_empty(const struct qlink *h)
{
    return h->next == h;
}

static inline int
ql_linked(const struct qlink *l)
{
    return l->next != NULL;
}

static inline void
ql_push(struct qlink *h, struct qlink *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}

static inline void
ql_remove(struct qlink *l)
{
    if (!ql_linked(l)) return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* ---- types --------------------------------------------------------------- */

struct cid_ent {
    struct cid_ent *next;  /* bucket chain */
    struct cid_ent *cnext; /* the connection's own list */
    struct mm_qconn *c;
    uint8_t len;
    uint8_t data[NGTCP2_MAX_CIDLEN];
};

/* A queued frame; kept until the peer acknowledged all of it. */
struct chunk {
    struct chunk *next;
    uint64_t off; /* stream offset of data[0] */
    size_t len;
    uint8_t data[];
};

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
    /* Receive credit: the peer may send up to the initial window plus
     * |credited|, and credited = rx - held (never taken back: while held
     * bytes exceed what arrived since, no more is granted). */
    uint64_t rx;       /* bytes received (handed to the frame reader) */
    uint64_t credited; /* stream credit granted beyond the initial window */
    size_t held;       /* bytes of whole frames the upper layer holds */
    size_t frame_len;  /* the frame being delivered (0 outside ops.frame) */
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
    struct mm_tmr tmr;          /* the connection's expiry, on q->cfg.tq */
    int superseded; /* lost a crossing while up: draining, not found */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    struct cid_ent *cids; /* owned, also in q's map */
    struct qlink streams, txq, closedq;
    int dialer;
    int hs_counted;      /* accepted, handshake in progress: in q->hs_inbound */
    struct qlink hslink; /* q->hs while hs_counted */
    enum qstate state;
    int busy;
    unsigned write_gen;
    uint64_t bytes_in, bytes_out; /* its UDP payloads (metrics) */
    /* close request */
    int pending_close, close_err, close_send;
    ngtcp2_connection_close_error ccerr;
    int reportable;     /* conn_down owed to the user */
    int auth_failed;    /* accepted, but auth failed: conn_down owed too */
    int up_pending;     /* conn_up to report */
    int resets_pending; /* a stream has reset_req set, not yet done */
    int credit_wanted, credit_pending;
    int room_wanted, room_pending; /* a frame was refused (send caps) */
    /* handshake and auth */
    int hs_done, alpn_ok;
    uint8_t exporter[MM_TLS_EXPORTER_LEN];
    uint8_t peer_id[MM_ID_LEN];
    int have_peer_id;
    int hello_rcvd, auth_rcvd, result_rcvd, ctrl_sent;
    uint64_t peer_gen;
    int peer_role;
    int peer_key; /* enum mm_key_kind the auth proof was made with */
    char peer_name[256];
    char peer_addr[128];
    uint8_t peer_proof[MM_WIRE_PROOF_LEN];
    uint16_t result_status;
    uint16_t wire_version;  /* the version in use (mm__wire_version_pick) */
    uint32_t wire_features; /* feature bits both HELLOs set */
    int64_t ctrl_sid;
    size_t nstreams;     /* open streams, the control stream excluded */
    size_t tx_unacked;   /* bytes in chunks, queued and not acknowledged */
    uint64_t rx_preauth; /* stream bytes received before auth */
    size_t rx_held;      /* sum of the streams' |held| */
    size_t rx_partial;   /* bytes of incomplete frames, all streams */
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
    uv_prepare_t flush;      /* writes of up connections, once per loop turn */
    struct qlink wq;         /* connections with a write due */
    struct qlink dead;       /* finished connections, freed by the next flush */
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
    /* The packet filter (mm__quic_set_filter); NULL = none.  |hooked|:
     * the filter or the fault hook is on (the send path's one branch). */
    mm_quic_filter_fn filter;
    void *filter_data;
    int hooked;
    uint32_t hold_max; /* bounds of |delayed| */
    size_t hold_bytes_max;
    size_t held_bytes;        /* in |delayed| */
    struct chunk *chunk_pool; /* free small chunks (CHUNK_SMALL) */
    unsigned chunk_pooled;
    uint64_t now_cache; /* quic_now() while a packet or flush is handled */
    uint64_t rx_ns;     /* quic_now() of the last read */
    uint64_t ts_hi;     /* the latest quic_now() handed out */
    /* HKDF(key', MM_LABEL_AUTH) per keyring entry and kind of key' (the
     * entry's own kind and those derived from it, enum mm_key_kind), and
     * the key it is of (the keyring is borrowed and may change: a key that
     * differs from |auth_of| is derived again). */
    uint8_t auth_keys[MM_KEYRING_MAX][MM_KEY_KINDS][32];
    uint8_t auth_of[MM_KEYRING_MAX][MM_CKEY_LEN];
    uint32_t auth_valid; /* bit i: auth_keys[i] is of auth_of[i] */
    /* Address validation (Retry): the key of our Retry tokens, and the
     * accepted connections whose handshake is in progress. */
    uint8_t retry_secret[32];
    unsigned hs_inbound;
    unsigned inbound_conns; /* accepted, not yet dead */
    struct qlink hs; /* those connections (hslink), for the per-address cap */
    /* Tests: a dialer that never sends HELLO/AUTH (a hostile peer's
     * control stream is then written by hand). */
    int test_hold_auth;
    /* Hot waits (udp.c): the socket is in blocking mode with
     * SO_RCVTIMEO = hot_ns, and every other call on it passes
     * MSG_DONTWAIT. */
    uint64_t hot_ns;   /* 0 = no hot waits */
    unsigned hot_skip; /* chances to let pass after a miss */
    int hot_out;       /* the socket is out of the loop's epoll set */
    unsigned hot_next; /* the last miss's skip (doubles per miss) */
    /* recvmmsg batch: one syscall reads what is queued, and a short batch
     * means the queue is empty (epoll is level-triggered), so no read ends
     * in EAGAIN. */
    unsigned rx_want; /* datagrams the next recvmmsg asks for */
    unsigned rx_lone; /* full single reads before asking for two again */
    struct mmsghdr rx_msgs[QUIC_RX_BATCH];
    struct iovec rx_iov[QUIC_RX_BATCH];
    struct sockaddr_storage rx_from[QUIC_RX_BATCH];
    uint8_t rxbuf[QUIC_RX_BATCH][QUIC_RX_SLOT];
    uint8_t txbuf[QUIC_MAX_PKT];
};

/* ---- small helpers, inlined where they are used ------------------------- */

/*
 * The transport's clock.  While one packet (or one batch) is being handled
 * and while the per-turn flush runs, every reader gets the time read when
 * that work began: one clock read per unit of work instead of one per
 * helper (the sequential round trip read the clock 27 times).  A hot-wait
 * round flushes with its read's time, which can be older than a time taken
 * from the clock meanwhile; ngtcp2's timestamps must not go back, so no
 * time earlier than one handed out before is handed out.
 */
static inline uint64_t
quic_now(struct mm_quic *q)
{
    uint64_t t = q->now_cache ? q->now_cache : uv_hrtime();
    if (MM_UNLIKELY(t < q->ts_hi)) return q->ts_hi;
    q->ts_hi = t;
    return t;
}

static inline socklen_t
quic_sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
}

static inline uint64_t
quic_rand(struct mm_quic *q)
{
    /* xorshift64*: seeded, reproducible fault patterns. */
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return q->rng * 2685821657736338717ULL;
}

static inline struct qstream *
stream_find(struct mm_qconn *c, int64_t sid)
{
    for (struct qlink *l = c->streams.next; l != &c->streams; l = l->next) {
        struct qstream *s = mm__container_of(l, struct qstream, link);
        if (s->sid == sid) return s;
    }
    return NULL;
}

static inline int
stream_has_tx(const struct qstream *s)
{
    return s->sent_off < s->queued_off || (s->fin_req && !s->fin_sent);
}

/* |n| more bytes of |s| went into a packet (with FIN if |flags| say so). */
static inline void
stream_advance(struct qstream *s, ngtcp2_ssize n, uint32_t flags)
{
    if (n < 0) return;
    s->sent_off += (uint64_t)n;
    while (s->send && s->send->off + s->send->len <= s->sent_off)
        s->send = s->send->next;
    if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent_off == s->queued_off)
        s->fin_sent = 1;
}

/* An accepted connection whose handshake is over (or that is gone) no
 * longer counts towards the Retry threshold. */
static inline void
conn_hs_uncount(struct mm_qconn *c)
{
    if (c->hs_counted) {
        c->hs_counted = 0;
        c->q->hs_inbound--;
        ql_remove(&c->hslink);
    }
}

/* ---- quic.c -------------------------------------------------------------- */

/* Asks for |c|'s close with |err| (CONNECTION_CLOSE sent if |send|); the
 * close is carried out when |c| settles. */
void mm__quic_conn_request_close(struct mm_qconn *c, int err, int send);
void mm__quic_conn_settle(struct mm_qconn *c);
/* Writes every connection that has a write due. */
void mm__quic_flush(struct mm_quic *q);
/* Hands a datagram read from |from| to its connection, the accept path or
 * ops->datagram. */
void mm__quic_dispatch(struct mm_quic *q, const uint8_t *pkt, size_t len,
                       const struct sockaddr *from);
int mm__quic_push_timers(struct mm_quic *q, uint64_t now);
/* Frees |q| once it is closing and its last handle closed. */
void mm__quic_maybe_free(struct mm_quic *q);

/* Work on a connection enters it; when the last work leaves, it settles. */
static inline void
conn_enter(struct mm_qconn *c)
{
    c->busy++;
}

static inline void
conn_leave(struct mm_qconn *c)
{
    if (--c->busy == 0) mm__quic_conn_settle(c);
}

/* Puts |c| on the list written just before the loop polls (its settle
 * runs then). */
void mm__quic_defer_write(struct mm_qconn *c);

/* ---- stream.c ------------------------------------------------------------ */

struct qstream *mm__quic_stream_new(struct mm_qconn *c, int64_t sid);
void mm__quic_stream_free(struct qstream *s);
/* Queues a copy of |data| on |s|; 0 or UV_ENOMEM. */
int mm__quic_stream_queue(struct qstream *s, const uint8_t *data, size_t len);
/* Frees the pool of small chunks. */
void mm__quic_chunk_pool_drain(struct mm_quic *q);
/* Sets the stream callbacks of |cb|. */
void mm__quic_stream_callbacks(ngtcp2_callbacks *cb);
/* A stream of an up connection opened: raise its window to the full one. */
void mm__quic_stream_window(struct mm_qconn *c, struct qstream *s);
/* |c| just came up: the credit withheld before auth is granted. */
void mm__quic_credit_up(struct mm_qconn *c);

/* ---- auth.c -------------------------------------------------------------- */

/* The auth key of keyring entry |idx| (derived once per key). */
const uint8_t *mm__quic_auth_key(struct mm_quic *q, size_t idx);
/* The AUTH proof: HMAC-SHA256(|auth_key|, exporter ‖ side ‖ client id ‖
 * server id), side 'c' (dialer) or 's' (acceptor) (docs/wire.md, Auth). */
void mm__quic_proof(const uint8_t auth_key[32],
                    const uint8_t exporter[MM_TLS_EXPORTER_LEN], char side,
                    const uint8_t client_id[MM_ID_LEN],
                    const uint8_t server_id[MM_ID_LEN],
                    uint8_t out[MM_WIRE_PROOF_LEN]);
/* Logs and counts an auth failure, and closes |c| with MM_EUNAUTHORIZED. */
void mm__quic_auth_fail(struct mm_qconn *c, const char *why);
/* Advances the auth exchange of a connection in its handshake. */
void mm__quic_auth_step(struct mm_qconn *c);
/* Handles a frame on stream |s| before |c| is up: 0 or QUIC_STOP. */
int mm__quic_auth_frame(struct mm_qconn *c, struct qstream *s, uint8_t type,
                        const uint8_t *body, size_t len);

/* ---- udp.c --------------------------------------------------------------- */

/* Sets up what the socket side needs before a bind. */
void mm__udp_init(struct mm_quic *q);
/* Parses "host:port" (an empty host is |empty_host|); 0 or MM_EINVAL. */
int mm__udp_parse_addr(const char *hostport, struct sockaddr_storage *ss,
                       const char *empty_host);
void mm__udp_format_addr(char *buf, size_t len, const struct sockaddr *sa);
/* Binds the socket to |sa| and puts it in the loop; 0 or a libuv error. */
int mm__udp_bind(struct mm_quic *q, const struct sockaddr *sa);
/* Sends one datagram through the fault hook. */
void mm__udp_send(struct mm_quic *q, const struct sockaddr *to,
                  const uint8_t *data, size_t len);
/* After a flush that sent datagrams: wait in the socket's receive. */
void mm__udp_hot_wait(struct mm_quic *q);
/* Drops held packets and closes the socket (|q| is closing). */
void mm__udp_close(struct mm_quic *q);

#endif /* MM_QUIC_INT_H */
