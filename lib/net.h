/*
 * net.h — the wire half of a cluster node, on shard 0: the QUIC transport,
 * peers and their connections, remote calls (INVOKE/RESPONSE), actor
 * stream choice, superseded connections that drain, and the hooks that
 * membership, registry replication and client sessions register with.
 *
 * Built by cluster.c, which hands its handle to the modules above it; it
 * calls nothing above itself (frames, connections and datagrams reach the
 * modules through the hooks they registered).
 */
#ifndef MM_NET_H
#define MM_NET_H

#include "runtime.h"

struct mm_net;
struct mm_qconn;
struct mm_quic;
struct mm_identity;
struct mm_keyring;
struct sockaddr;

struct mm_net_config {
    mm_node *node; /* shard 0 runs the net; calls are served on the node */
    const struct mm_identity *id; /* borrowed for the net's life */
    const struct mm_keyring *kr;  /* borrowed for the net's life */
    const char *listen;
    const char *advertise; /* may be NULL */
    size_t max_frame;
    uint32_t max_connections; /* accepted at most; 0 = MM_CONNS_INBOUND_MAX */
    const char *const *seeds; /* "host:port", dialled by _start */
    size_t nseeds;
};

/* Creates the transport and binds |cfg->listen|.  0 or an error (logged). */
int mm__net_new(struct mm_net **out, const struct mm_net_config *cfg);
/* On shard 0 once the loop runs: dial the seeds, start the sweep. */
void mm__net_start(struct mm_net *net);
/* A MSG_REMOTE message (call or tell) to send; takes ownership. */
void mm__net_send(struct mm_net *net, mm_msg *m);
/* Shutdown, at the start of phase B (after every shard answered its queue):
 * answer pending calls and waiting messages (MM_ECLOSED); nothing is sent or
 * served afterwards. */
void mm__net_stop(struct mm_net *net);
/* Shutdown phase B: stop the sweep, close the transport. */
void mm__net_close(struct mm_net *net);
/* Closes the transport on the spot when it never ran (runs shard 0's loop
 * until it is closed); a no-op after mm__net_close. */
void mm__net_close_now(struct mm_net *net);
void mm__net_free(struct mm_net *net);

struct mm_quic *mm__net_quic(struct mm_net *net);
/* 1 once mm__net_stop ran. */
int mm__net_stopped(const struct mm_net *net);
/* Idle member connections kept (default MM_CONNS_IDLE_MAX; tests), and
 * how many were closed for that bound.  Shard 0. */
void mm__net_set_idle_max(struct mm_net *net, unsigned max);
uint64_t mm__net_idle_evicted(const struct mm_net *net);
/* Something large was freed (a merged push-pull state): the next sweep
 * gives the heap's free pages back (MM_HEAP_TRIM_GAP_MS), as after a
 * connection closes.  How many trims ran (tests).  Shard 0. */
void mm__net_trim_soon(struct mm_net *net);
uint64_t mm__net_heap_trims(const struct mm_net *net);
/* Peers known (tests).  Shard 0. */
size_t mm__net_peer_count(const struct mm_net *net);
/* 1 when |id| has an up member connection. */
int mm__net_connected(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN]);
/* The up member connection to |id| (an index lookup), or NULL. */
struct mm_qconn *mm__net_conn_of(struct mm_net *net,
                                 const uint8_t id[MM_NODE_ID_LEN]);

/* ---- hooks (shard 0) ----------------------------------------------------- */

/* A frame handler for a frame type of the reserved blocks or CTRL_REQ. */
typedef void (*mm_net_frame_fn)(void *data, struct mm_qconn *conn,
                                const uint8_t peer[MM_NODE_ID_LEN], int role,
                                int64_t sid, uint8_t type, const uint8_t *body,
                                size_t len);
void mm__net_on_frame(struct mm_net *net, uint8_t type, mm_net_frame_fn fn,
                      void *data);

/* A peer came up (1) or went down (0) as a connection; role 0 = member. */
typedef void (*mm_net_conn_fn)(void *data, struct mm_qconn *conn,
                               const uint8_t peer[MM_NODE_ID_LEN], uint64_t gen,
                               int role, int up);
void mm__net_on_conn(struct mm_net *net, mm_net_conn_fn fn, void *data);

/* Any connection that was up went down (client sessions drop its
 * subscriptions). */
typedef void (*mm_net_conn_gone_fn)(void *data, struct mm_qconn *conn);
void mm__net_on_conn_gone(struct mm_net *net, mm_net_conn_gone_fn fn,
                          void *data);

/* Non-QUIC datagrams (first byte 0x01: sealed gossip) go to |fn|. */
typedef void (*mm_net_dgram_fn)(void *data, const struct sockaddr *from,
                                const uint8_t *buf, size_t len);
void mm__net_on_datagram(struct mm_net *net, mm_net_dgram_fn fn, void *data);

/* ---- peers and frames (shard 0) ------------------------------------------ */

/* Learns or updates a member's address (membership). */
void mm__net_peer_seen(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN],
                       uint64_t gen, const char *addr, const char *name);
/* A member failed or left: fail its pending calls with |err| and drop its
 * connection. */
void mm__net_peer_down(struct mm_net *net, const uint8_t id[MM_NODE_ID_LEN],
                       int err);
/* Sends a whole frame on the control stream to |peer|, dialling when
 * needed (queued until up).  0 or MM_EUNREACHABLE (no address known). */
int mm__net_send_ctrl(struct mm_net *net, const uint8_t peer[MM_NODE_ID_LEN],
                      const uint8_t *frame, size_t len);
/* Sends a frame on |conn|'s stream |sid| (answers to requests). */
int mm__net_reply(struct mm_qconn *conn, int64_t sid, const uint8_t *frame,
                  size_t len);
/* Calls |cb| for every peer with an up member connection, until it
 * returns non-zero. */
void mm__net_foreach_conn(struct mm_net *net,
                          int (*cb)(void *data,
                                    const uint8_t id[MM_NODE_ID_LEN],
                                    struct mm_qconn *conn),
                          void *data);
/* The control stream of |conn|. */
int64_t mm__net_control_stream(struct mm_qconn *conn);

#endif /* MM_NET_H */
