/*
 * membership.h — the libuv glue of SWIM (swim.c) on shard 0: one timer,
 * sealed gossip datagrams over the node's UDP socket (cluster.c), push-pull
 * state sync over QUIC control frames, seeds, graceful leave, and the
 * member list for client sessions.  Created by cluster.c.
 */
#ifndef MM_MEMBERSHIP_H
#define MM_MEMBERSHIP_H

#include "../cluster.h"
#include "swim.h"

struct mm_membership;

/*
 * Creates membership for the node of |c| (shard 0's loop), with the node's
 * identity, keyring, advertised address, tags ("k=v") and seeds
 * ("host:port").  0, MM_EINVAL or UV_ENOMEM.
 */
int mm__membership_new(struct mm_membership **out, struct mm_cluster *c,
                       const mm_node_config *cfg);
/* On shard 0 once the loop runs: arm the timer, join the seeds. */
void mm__membership_start(struct mm_membership *m);
/*
 * Graceful leave: broadcast LEFT and call |done|(data) once acknowledged or
 * after a bounded time (at most MM_SWIM_LEAVE_TIMEOUT_MS).  Shard 0 only.
 */
void mm__membership_leave(struct mm_membership *m, void (*done)(void *data),
                          void *data);
/* Shutdown phase B: close the timer (the struct stays until _free). */
void mm__membership_close(struct mm_membership *m);
void mm__membership_free(struct mm_membership *m);

/* Walks every listed member, self included, in name order. */
void mm__membership_foreach(struct mm_membership *m,
                            int (*cb)(void *data,
                                      const struct mm_swim_member *mb),
                            void *data);
/* The effective timings, "key: value\n" lines; snprintf semantics. */
int mm__membership_timings(struct mm_membership *m, char *buf, size_t len);
/* Marks a member left at once, by name or 32-hex id.  0, MM_ENOTFOUND,
 * MM_EINVAL (self). */
int mm__membership_force_leave(struct mm_membership *m, const char *node);
/* Counters for benchmarks and tests. */
const struct mm_swim_stats *mm__membership_stats(struct mm_membership *m);

#endif /* MM_MEMBERSHIP_H */
