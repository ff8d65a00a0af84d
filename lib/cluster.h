/*
 * cluster.h — the network half of a node, on shard 0: it loads the identity
 * and cluster key and composes the wire (net.h), membership, registry
 * replication, client sessions and mDNS discovery.  Only node.c drives it.
 */
#ifndef MM_CLUSTER_H
#define MM_CLUSTER_H

#include "runtime.h"

struct mm_cluster;
struct mm_quic;
struct mm_membership;
struct mm_registry;
struct mm_identity;

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

/* ---- for tests and benchmarks (shard 0 only) ----------------------------- */

struct mm_quic *mm__cluster_quic(struct mm_cluster *c);
struct mm_net *mm__cluster_net(struct mm_cluster *c);
struct mm_membership *mm__cluster_membership(struct mm_cluster *c);
struct mm_registry *mm__cluster_registry(struct mm_cluster *c);
/* The node's identity (node.c hands its key to the registry). */
const struct mm_identity *mm__cluster_identity(struct mm_cluster *c);

#endif /* MM_CLUSTER_H */
