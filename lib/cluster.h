/*
 * cluster.h — the network half of a node, on shard 0: identity and cluster
 * key, the QUIC transport, peers and their connections, remote calls
 * (INVOKE/RESPONSE), and the hooks that membership, registry replication
 * and client sessions plug into.
 */
#ifndef MM_CLUSTER_H
#define MM_CLUSTER_H

#include "runtime.h"

struct mm_cluster;
struct mm_qconn;
struct mm_keyring;
struct mm_identity;
struct mm_membership;
struct mm_registry;
struct sockaddr;

/* Creates the cluster half of |n| from |cfg| (listen is set): loads the
 * identity and keys, binds the socket.  Sets n->id and n->generation. */
int mm__cluster_new(struct mm_cluster **out, mm_node *n,
                    const mm_node_config *cfg);
void mm__cluster_free(struct mm_cluster *c);
/* On shard 0 once the loop runs: dial seeds, start timers. */
void mm__cluster_start(struct mm_cluster *c);
/* On shard 0: graceful leave, then |done|(data) (bounded in time). */
void mm__cluster_leave(struct mm_cluster *c, void (*done)(void *data),
                       void *data);
extern const struct mm_cluster_ops mm__cluster_ops;

/* ---- for membership, registry and client sessions (shard 0 only) ---------- */

/* A frame handler for a frame type of the reserved blocks or CTRL_REQ. */
typedef void (*mm_cluster_frame_fn)(void *data, struct mm_qconn *conn,
                                    const uint8_t peer[MM_NODE_ID_LEN],
                                    int role, int64_t sid, uint8_t type,
                                    const uint8_t *body, size_t len);
void mm__cluster_on_frame(struct mm_cluster *c, uint8_t type,
                          mm_cluster_frame_fn fn, void *data);

/* A peer came up (1) or went down (0) as a connection; role 0 = member. */
typedef void (*mm_cluster_conn_fn)(void *data, struct mm_qconn *conn,
                                   const uint8_t peer[MM_NODE_ID_LEN],
                                   uint64_t gen, int role, int up);
void mm__cluster_on_conn(struct mm_cluster *c, mm_cluster_conn_fn fn,
                         void *data);

/* Non-QUIC datagrams (first byte 0x01: sealed gossip) go to |fn|. */
typedef void (*mm_cluster_dgram_fn)(void *data, const struct sockaddr *from,
                                    const uint8_t *buf, size_t len);
void mm__cluster_on_datagram(struct mm_cluster *c, mm_cluster_dgram_fn fn,
                             void *data);

/* Membership reports a member's state (enum mm_swim_state) so that the
 * registry view follows it (alive/suspect: in view; failed/left: out). */
void mm__cluster_member_state(struct mm_cluster *c,
                              const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                              int swim_state);

/* Discovery (mDNS) found a node with our key at "ip:port" (|id| may be
 * NULL): membership joins it. */
void mm__cluster_discovered(struct mm_cluster *c, const char *hostport,
                           const uint8_t *id);

/* Learns or updates a member's address (membership). */
void mm__cluster_peer_seen(struct mm_cluster *c,
                           const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                           const char *addr, const char *name);
/* A member failed or left: fail its pending calls (MM_EUNREACHABLE) and
 * drop its connection. */
void mm__cluster_peer_down(struct mm_cluster *c,
                           const uint8_t id[MM_NODE_ID_LEN], int err);
/* Sends a whole frame on the control stream to |peer|, dialling when
 * needed (queued until up).  0 or MM_EUNREACHABLE (no address known). */
int mm__cluster_send_ctrl(struct mm_cluster *c,
                          const uint8_t peer[MM_NODE_ID_LEN],
                          const uint8_t *frame, size_t len);
/* Sends a frame on |conn|'s stream |sid| (answers to client requests). */
int mm__cluster_reply(struct mm_cluster *c, struct mm_qconn *conn, int64_t sid,
                      const uint8_t *frame, size_t len);

/* Calls |cb| for every peer with an up member connection. */
void mm__cluster_foreach_conn(struct mm_cluster *c,
                              int (*cb)(void *data,
                                        const uint8_t id[MM_NODE_ID_LEN],
                                        struct mm_qconn *conn),
                              void *data);
/* The control stream of |conn|. */
int64_t mm__quic_control_stream_of(struct mm_qconn *conn);

struct mm_quic *mm__cluster_quic(struct mm_cluster *c);
struct mm_membership *mm__cluster_membership(struct mm_cluster *c);
struct mm_registry *mm__cluster_registry(struct mm_cluster *c);
const struct mm_identity *mm__cluster_identity(struct mm_cluster *c);
const struct mm_keyring *mm__cluster_keyring(struct mm_cluster *c);
mm_node *mm__cluster_node(struct mm_cluster *c);
uv_loop_t *mm__cluster_loop(struct mm_cluster *c);
/* That loop's timer queue (tq.h). */
struct mm_tq *mm__cluster_tq(struct mm_cluster *c);

#endif /* MM_CLUSTER_H */
