/*
 * quic.h — murmer's QUIC transport: one UDP socket per node carrying QUIC
 * connections (ngtcp2 0.12.1 + GnuTLS, ALPN murmer/1) and sealed gossip
 * datagrams.
 *
 * Demultiplexing of an incoming UDP packet, in this order (the QUIC fixed
 * bit is greased, so the first byte alone proves nothing):
 *   1. its destination connection id names a connection  -> that connection
 *   2. long header (0x80 set)                            -> QUIC accept path
 *   3. first byte 0x01                                   -> ops->datagram
 *   4. anything else                                     -> dropped, counted
 *
 * Connection life: mutual TLS 1.3 with key pinning (tls.h), then on the
 * control stream (the dialer's first bidi stream) the dialer sends HELLO +
 * AUTH, the acceptor checks both and answers HELLO + AUTH + AUTH_RESULT.
 * AUTH's proof is HMAC(HKDF(k, "murmer auth"), exporter ‖ side ‖ client id
 * ‖ server id), side 'c' from the dialer and 's' from the acceptor, where k
 * is the dialer's key: a cluster key, or a client key derived from one
 * (ckey.h).  The acceptor checks it in constant time against every key of
 * its ring and the client keys derived from them; the key that matched
 * fixes what the connection may do (mm__quic_conn_key_kind), and a HELLO
 * role member proved with a client key is refused (unauthorized).  Until then
 * the acceptor allows the dialer exactly one stream and the dialer allows none,
 * frames are auth frames of at most 4 KiB, and no flow-control credit is
 * granted beyond the first 16 KiB (QUIC_PREAUTH_WINDOW); anything else closes
 * the connection (MM_EUNAUTHORIZED).  Then ops->conn_up runs on both sides and
 * any stream may carry frames.
 *
 * Threading: everything runs on the loop given to mm__quic_new(); no
 * function is thread-safe.
 *
 * Re-entrancy: ops callbacks may call mm__quic_send_frame, _stream_open,
 * _stream_close, _conn_close and _dial; data is queued and written once the
 * callback returns.  mm__quic_close() must not be called from an ops
 * callback.
 */
#ifndef MM_QUIC_H
#define MM_QUIC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tq.h"

#include "ckey.h"
#include "identity.h"

struct mm_quic;  /* the transport: one per node */
struct mm_qconn; /* one QUIC connection */

/* Seeded fault injection on the UDP path; all 0 = off (the default). */
struct mm_quic_fault {
    unsigned drop_pct;    /* drop this % of packets sent and received */
    unsigned delay_ms;    /* delay every sent packet by this much */
    unsigned reorder_pct; /* hold this % of sent packets behind the next */
    uint64_t seed;        /* PRNG seed (0 = 1) */
};

struct mm_quic_config {
    const char *name;       /* node name sent in HELLO (copied); NULL = "" */
    const char *advertise;  /* "host:port" in HELLO; NULL = the bound addr */
    int role;               /* MM_WIRE_ROLE_MEMBER (0) or _CLIENT (1) */
    uint32_t features;      /* HELLO feature bits */
    uint32_t max_frame;     /* frame length limit; 0 = MM_MAX_FRAME */
    uint32_t idle_ms;       /* close a conn with no streams after; 0 = 60 s */
    uint32_t probe_fail_ms; /* unreachable after this silence with data
                               outstanding; 0 = MM_PROBE_FAIL_MS */
    uint32_t handshake_ms;  /* handshake + auth must finish within; 0 = 5 s */
    uint32_t stream_window; /* concurrent peer streams allowed; 0 = 128 */
    /* Unacknowledged bytes queued per connection / on the whole endpoint
     * before mm__quic_send_frame() says MM_EOVERLOADED; 0 =
     * MM_CONN_SEND_MAX / MM_NODE_SEND_MAX. */
    size_t conn_send_max, send_max;
    /* Bytes of incomplete frames buffered per connection, summed over its
     * streams; past it the stream that crossed it is reset (overloaded).
     * 0 = MM_CONN_PARTIAL_MAX. */
    size_t partial_max;
    int allow_h3; /* also accept ALPN "h3" (interop tests only) */
    /*
     * Address validation: while this many accepted handshakes are in
     * progress, an Initial without a valid token is answered with a Retry
     * (no state kept) instead of a connection; 0 = QUIC_RETRY_ABOVE (16).
     * |retry_always|: every new connection is retried (tests).
     */
    uint32_t retry_above;
    int retry_always;
    /* Accepted handshakes (TLS + auth) in progress, in all and from one
     * source address (any port); past either, new Initials are dropped
     * (counted in hs_refused), except that at hs_max the oldest handshake,
     * if older than hs_evict_ms, is closed to make room (hs_evicted).
     * 0 = MM_HANDSHAKES_MAX / MM_HANDSHAKES_PER_ADDR /
     * MM_HANDSHAKE_EVICT_MS. */
    uint32_t hs_max, hs_per_addr, hs_evict_ms;
    /* Accepted connections (in handshake or up) at most; past it new
     * Initials are dropped (conns_refused).  0 = MM_CONNS_INBOUND_MAX. */
    uint32_t conns_max;
    /* Fault hook.  When all zero, $MURMER_FAULT is read instead:
     * "drop=5,delay=0,reorder=0,seed=1". */
    struct mm_quic_fault fault;
    /* Required: the loop's timer queue (tq.h), for the connections'
     * timers and the fault hook's, so that the loop can sleep without a
     * timeout.  It must outlive the transport. */
    struct mm_tq *tq;
    /* Longest hot wait (see mm_quic_ops.park); 0 = MM_QUIC_HOT_WAIT_US. */
    uint32_t hot_wait_us;
    /* Wire versions spoken (HELLO, docs/wire.md); 0 = MM_WIRE_VERSION_MIN /
     * MM_WIRE_PROTO_VERSION.  Tests set others to play another version. */
    uint16_t wire_min, wire_max;
};

struct mm_quic_ops {
    void *data;
    /*
     * The connection passed auth.  |peer_id| is the peer's verified node id,
     * |peer_gen| its generation, |role| the peer's HELLO role (0 member,
     * proved with the cluster key; 1 client), |peer_name| and |peer_addr| (its
     * advertised address, or its UDP source address if it advertised none) are
     * NUL-terminated and borrowed for the call.
     *
     * Crossing dials (two up connections of the same generation to one
     * member): the transport keeps the one dialled by the lower node id,
     * on both ends, and never cuts the other, as calls may be under way on
     * it.  If the loser was up first, the winner's conn_up follows as
     * usual (mm__quic_find_peer() returns the winner from then on); if the
     * loser comes up second, its conn_up is reported with
     * mm__quic_conn_superseded() true.  Either way the user closes the
     * loser with mm__quic_conn_close(loser, MM_EEXISTS) once drained.
     */
    void (*conn_up)(void *data, struct mm_qconn *c, const uint8_t peer_id[16],
                    uint64_t peer_gen, int role, const char *peer_name,
                    const char *peer_addr);
    /*
     * The connection is gone; |c| is invalid once this returns (call no
     * function on it from here).  Reported exactly once for every dialled
     * connection (also when it never came up: the dial's result), and for an
     * accepted one after its conn_up, or when its auth failed.  |err|:
     *   MM_EUNAUTHORIZED  wrong cluster key, pinned id mismatch, bad HELLO
     *   MM_EUNREACHABLE   handshake timeout, or data outstanding and nothing
     *                     heard for probe_fail_ms
     *   MM_EEXISTS        lost a crossing-dial race (the other connection to
     *                     the same peer stays)
     *   MM_ECLOSED        closed: idle, by the peer, stale generation,
     *                     mm__quic_conn_close(), mm__quic_close()
     *   other MM_E*       the error given to mm__quic_conn_close by a peer
     */
    void (*conn_down)(void *data, struct mm_qconn *c, int err);
    /*
     * A whole frame arrived on stream |sid| (after auth; control-stream
     * frames after the handshake included).  |body| (|len| bytes, after the
     * type byte) is borrowed for the call.
     */
    void (*frame)(void *data, struct mm_qconn *c, int64_t sid, uint8_t type,
                  const uint8_t *body, size_t len);
    /*
     * Stream |sid| is closed in both directions and forgotten.  |err| 0 for
     * a clean close (FIN both ways), MM_EDECODE when a bad frame (too long,
     * zero length) made either side reset it, or the peer's reset code.
     * Only that stream is affected.  May be NULL.
     */
    void (*stream_closed)(void *data, struct mm_qconn *c, int64_t sid, int err);
    /*
     * A non-QUIC UDP datagram whose first byte is 0x01 (a sealed gossip
     * datagram, not yet authenticated: open it before trusting anything).
     * |from| and |buf| are borrowed.  May be NULL (then counted as dropped).
     */
    void (*datagram)(void *data, const struct sockaddr *from,
                     const uint8_t *buf, size_t len);
    /*
     * The peer ended its sending side of |sid| cleanly (FIN after whole
     * frames).  The stream is forgotten once we end ours too
     * (mm__quic_stream_close), e.g. after answering what we still owe on
     * it.  May be NULL.
     */
    void (*stream_fin)(void *data, struct mm_qconn *c, int64_t sid);
    /* The peer granted more stream credit after mm__quic_stream_open
     * returned UV_EAGAIN.  May be NULL. */
    void (*stream_credit)(void *data, struct mm_qconn *c);
    /* After mm__quic_send_frame said MM_EOVERLOADED on |c|: acknowledgements
     * brought its unacknowledged bytes down to half of conn_send_max (a
     * frame may still be refused for the endpoint's cap).  May be NULL. */
    void (*send_room)(void *data, struct mm_qconn *c);
    /*
     * Hot waits (see quic_hot_rounds in udp.c): after a turn that sent
     * datagrams, the loop may sleep in the socket's own receive, for at
     * most hot_wait_us, instead of in epoll.  park() asks the owner whether
     * it has nothing else to do now (nothing runnable, nothing posted from
     * another thread); if it returns 1, then until unpark() a post from
     * another thread must wake the socket with a zero-length datagram to
     * mm__quic_wake_addr().  unpark() returns 1 if that happened.  run()
     * does what the loop's check phase would do with work that the packets
     * read made ready; |now_ns| is the clock (uv_hrtime) when they were
     * read.  All three NULL (the default): no hot waits.
     */
    int (*park)(void *data);
    int (*unpark)(void *data);
    void (*run)(void *data, uint64_t now_ns);
};

struct mm_quic_stats {
    uint64_t pkts_in, pkts_out; /* UDP packets received / sent */
    uint64_t bytes_in, bytes_out;
    uint64_t greased_in;    /* short-header packets, fixed bit clear */
    uint64_t datagrams_in;  /* handed to ops->datagram */
    uint64_t dropped_in;    /* matched nothing (or no datagram cb) */
    uint64_t fault_dropped; /* dropped by the fault hook or the filter */
    uint64_t fault_delayed; /* held back by either, then sent */
    uint64_t fault_full;    /* to be held, dropped: the hold queue was full */
    uint64_t fault_held;    /* held now */
    uint64_t conns_dialled, conns_accepted, conns_up, auth_failures;
    uint64_t retries_sent;   /* Retry packets sent (address validation) */
    uint64_t tokens_refused; /* Initials under load with a bad token */
    uint64_t hs_refused;     /* Initials dropped: too many handshakes */
    uint64_t hs_evicted;     /* handshakes closed to make room for one */
    uint64_t hot_hits;       /* hot waits that a datagram ended */
    uint64_t hot_misses;     /* hot waits that timed out */
    uint64_t hot_woken;      /* hot waits ended by a post (park()) */
    uint64_t send_refused;   /* frames refused: over a send cap */
    uint64_t partial_resets; /* streams reset: over partial_max */
    uint64_t conns_refused;  /* Initials dropped: conns_max accepted */
    uint64_t tx_unacked;     /* bytes queued, not yet acknowledged, now */
    uint64_t role_refused;   /* auth: a client key claimed the member role */
};

/* Sets every field to its default (zeroes). */
void mm__quic_config_init(struct mm_quic_config *cfg);

/*
 * Creates the transport on |loop|.  |id| and |kr| are borrowed and must
 * outlive it; |cfg| and |ops| are copied.  No socket yet: call
 * mm__quic_listen(), or mm__quic_dial() binds an ephemeral port.
 * 0, UV_ENOMEM or MM_EKEY (identity unusable by TLS).
 */
int mm__quic_new(struct mm_quic **out, uv_loop_t *loop,
                 const struct mm_identity *id, const struct mm_keyring *kr,
                 const struct mm_quic_config *cfg,
                 const struct mm_quic_ops *ops);
/*
 * Binds "host:port" (numeric IPv4/IPv6, "[v6]:port", "localhost"; an empty
 * host means 0.0.0.0; port 0 = any) and accepts connections.  0,
 * MM_EINVAL (bad address), MM_EEXISTS (already bound) or a UV_E* error.
 */
int mm__quic_listen(struct mm_quic *q, const char *hostport);
/* The real bound address "ip:port" (NULL before a bind); lives as long as
 * |q|. */
const char *mm__quic_local_addr(const struct mm_quic *q);
/* The port bound (0 before a bind). */
int mm__quic_local_port(const struct mm_quic *q);
/* The UDP socket (tests: its place in the loop's epoll set). */
int mm__quic_fd(const struct mm_quic *q);
/* Where a zero-length wake datagram for a hot wait goes: the bound address,
 * a wildcard host replaced by loopback.  0, or UV_EINVAL before a bind. */
int mm__quic_wake_addr(const struct mm_quic *q, struct sockaddr_storage *ss,
                       socklen_t *len);

/*
 * Dials "host:port".  With |expected_id| (16 bytes) the peer's certificate
 * key must hash to it, else the dial fails with MM_EUNAUTHORIZED.  On 0,
 * |*out| (may be NULL) is the new connection and exactly one of conn_up or
 * conn_down follows for it.  Dialling an already connected peer makes a
 * second connection that loses to the first (MM_EEXISTS): look it up with
 * mm__quic_find_peer() first.  MM_EINVAL for a bad address.
 */
int mm__quic_dial(struct mm_quic *q, const char *hostport,
                  const uint8_t *expected_id, struct mm_qconn **out);
/*
 * 1 while a connection from "host:port" that we accepted is still in its
 * handshake: that peer is dialling us, and a dial of ours would cross it
 * (two handshakes, one connection kept).
 */
int mm__quic_inbound_pending(struct mm_quic *q, const char *hostport);
/* 1 when |c| lost a crossing (see ops.conn_up): drain it, then close. */
int mm__quic_conn_superseded(const struct mm_qconn *c);
/* The up connection to |peer_id| (never a superseded one), or NULL. */
struct mm_qconn *mm__quic_find_peer(struct mm_quic *q,
                                    const uint8_t peer_id[16]);

/*
 * Opens a bidi stream on an up connection.  0, UV_EAGAIN (no stream credit
 * now; ops->stream_credit follows), MM_ECLOSED (not up / closing).
 */
int mm__quic_stream_open(struct mm_qconn *c, int64_t *sid);
/*
 * Queues one whole encoded frame (|len| >= 5 bytes, header included; its
 * length field, type + body, at most max_frame) on |sid|; the bytes are copied.
 * 0, MM_EINVAL (too short or above max_frame), MM_ENOTFOUND (no such open
 * stream, or its sending side is closed), MM_ECLOSED, or MM_EOVERLOADED: the
 * connection already has bytes unacknowledged and this frame would take it past
 * conn_send_max, or the endpoint past send_max.  A frame on a connection
 * with nothing unacknowledged is never refused for the caps.
 */
int mm__quic_send_frame(struct mm_qconn *c, int64_t sid, const uint8_t *frame,
                        size_t len);
/* Bytes queued on |c| that the peer has not acknowledged yet. */
size_t mm__quic_conn_unacked(const struct mm_qconn *c);
/*
 * Receive credit.  A stream's credit comes back as its bytes arrive, except
 * for whole frames the upper layer holds: called inside ops.frame, this
 * holds the frame being delivered on |sid| (its bytes, header included,
 * which it returns; 0 outside ops.frame or when held already), and the
 * peer gets no stream credit for them until mm__quic_credit_return()
 * gives them back (when the message is consumed or rejected).  A stream
 * whose held bytes reach the stream window stops its sender; partial
 * frames are never held, so a frame larger than the window completes.
 * The connection's credit is not held (the control stream shares it).
 */
size_t mm__quic_frame_hold(struct mm_qconn *c, int64_t sid);
/* Gives back |n| held bytes of |sid|; nothing if the stream or connection
 * is gone or closing (do not call it on a connection after its
 * conn_down). */
void mm__quic_credit_return(struct mm_qconn *c, int64_t sid, size_t n);
/* Held bytes on |c| (all streams). */
size_t mm__quic_conn_held(const struct mm_qconn *c);
/*
 * Ends the sending side of |sid| (FIN after the queued data).  The stream is
 * forgotten, and stream_closed runs, once the peer has ended its side too.
 * 0, MM_ENOTFOUND or MM_ECLOSED.
 */
int mm__quic_stream_close(struct mm_qconn *c, int64_t sid);
/* Resets |sid| in both directions with |err| (reported to the peer). */
int mm__quic_stream_reset(struct mm_qconn *c, int64_t sid, int err);
/* The control stream's id (-1 before the connection is up). */
int64_t mm__quic_control_stream(const struct mm_qconn *c);
/*
 * Closes the connection: CONNECTION_CLOSE with |err| (0 = MM_ECLOSED) as
 * application error; conn_down(c, err or MM_ECLOSED) follows (at once, or
 * after the current callback returns).
 */
void mm__quic_conn_close(struct mm_qconn *c, int err);

/* Facts about a connection. */
int mm__quic_conn_is_dialer(const struct mm_qconn *c);
int mm__quic_conn_is_up(const struct mm_qconn *c);
/* When a stream of the connection last opened or closed, or a frame went
 * or came on its control stream (the loop's clock, ns). */
uint64_t mm__quic_conn_last_use(const struct mm_qconn *c);
/* The kind of key (enum mm_key_kind) the connection authenticated with:
 * MM_KEY_CLUSTER for every member connection, and for a client that holds
 * the cluster key. */
int mm__quic_conn_key_kind(const struct mm_qconn *c);
/* Peer id (valid after the TLS handshake). */
const uint8_t *mm__quic_conn_peer_id(const struct mm_qconn *c);
/* Per-connection user pointer (not touched by the transport). */
void mm__quic_conn_set_data(struct mm_qconn *c, void *data);
void *mm__quic_conn_get_data(const struct mm_qconn *c);
/* A connection's path figures (metrics): ngtcp2's estimates and the
 * bytes of its UDP payloads. */
struct mm_quic_conn_stat {
    uint64_t srtt_ns, min_rtt_ns, latest_rtt_ns, rttvar_ns;
    uint64_t cwnd, bytes_in_flight, pto_count;
    uint64_t bytes_in, bytes_out;
};
void mm__quic_conn_stat(const struct mm_qconn *c,
                        struct mm_quic_conn_stat *out);
/* Number of connections (any state) and of up connections. */
size_t mm__quic_conn_count(const struct mm_quic *q, size_t *up);

/* Sends one UDP datagram (a sealed gossip packet) through the fault hook. */
int mm__quic_send_datagram(struct mm_quic *q, const struct sockaddr *to,
                           const uint8_t *buf, size_t len);

/* Counters and the fault hook, at run time. */
void mm__quic_stats(const struct mm_quic *q, struct mm_quic_stats *out);
void mm__quic_set_fault(struct mm_quic *q, const struct mm_quic_fault *f);
/* Parses "drop=5,delay=0,reorder=0,seed=1"; 0 or MM_EINVAL. */
int mm__quic_fault_parse(struct mm_quic_fault *f, const char *s);

/*
 * A packet filter on the UDP send path (the test kit's faults), asked for
 * every datagram about to be sent to |to| on the transport's loop thread:
 * MM_QUIC_PASS (then the fault hook, if on, still applies), MM_QUIC_DROP,
 * or MM_QUIC_DELAY with *delay_ms set (0 = pass).  Datagrams held back by
 * the filter or the fault hook wait in one queue, sorted by due time and
 * sent by a timer on the loop's timer queue; it holds at most |hold_max|
 * datagrams and |hold_bytes| bytes (0: MM_FAULT_HOLD_MAX and
 * MM_FAULT_HOLD_BYTES), past either a datagram to be held is dropped
 * (fault_full).  With |fn| NULL the send path costs one branch that is
 * never taken.  On the loop thread, or before the loop runs.
 */
enum { MM_QUIC_PASS = 0, MM_QUIC_DROP = 1, MM_QUIC_DELAY = 2 };
typedef int (*mm_quic_filter_fn)(void *data, const struct sockaddr *to,
                                 size_t len, uint32_t *delay_ms);
void mm__quic_set_filter(struct mm_quic *q, mm_quic_filter_fn fn, void *data,
                         uint32_t hold_max, size_t hold_bytes);

/*
 * Closes every connection (conn_down(MM_ECLOSED) for those reported) and
 * every handle; frees |q| in the last close callback, then calls |cb|(data)
 * (|cb| may be NULL).  A second call does nothing.
 */
void mm__quic_close(struct mm_quic *q, void (*cb)(void *data), void *data);

#endif /* MM_QUIC_H */
