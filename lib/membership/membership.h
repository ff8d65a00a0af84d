/*
 * membership.h — the libuv glue of SWIM (swim.c) on shard 0: one timer,
 * sealed gossip datagrams over the node's UDP socket (net.c), push-pull
 * state sync over QUIC control frames, seeds, graceful leave, and the
 * member list for client sessions.  Created by cluster.c, which hands it
 * what it uses (struct mm_membership_deps).
 */
#ifndef MM_MEMBERSHIP_H
#define MM_MEMBERSHIP_H

#include "../runtime.h"
#include "seal.h"
#include "swim.h"

struct mm_membership;
struct mm_net;
struct mm_tq;
struct mm_identity;
struct mm_keyring;

/* What membership uses, all borrowed for its life. */
struct mm_membership_deps {
    mm_node *node;      /* name, advertised address, max frame */
    struct mm_net *net; /* gossip datagrams, sync frames, peer addresses */
    const struct mm_identity *id;
    const struct mm_keyring *kr;
    uv_loop_t *loop;  /* shard 0's */
    struct mm_tq *tq; /* that loop's timer queue */
    /* Every member change (enum mm_swim_state), record updates included
     * (a new generation), so that the registry view follows it. */
    void (*member_state)(void *data, const uint8_t id[MM_NODE_ID_LEN],
                         uint64_t gen, int swim_state);
    void *data;
};

/*
 * Creates membership for the node of |deps| (shard 0's loop), with the
 * node's identity, keyring, advertised address, tags ("k=v") and seeds
 * ("host:port").  0, MM_EINVAL or UV_ENOMEM.
 *
 * Timings are swim.h's defaults; each may be overridden at run time by an
 * environment variable read here (decimal; a bad value is ignored with a
 * warning), for tests and benchmarks:
 *   MURMER_SWIM_PROBE_MS          probe interval
 *   MURMER_SWIM_PROBE_TIMEOUT_MS  probe timeout (<= probe interval)
 *   MURMER_SWIM_INDIRECT          indirect probes
 *   MURMER_SWIM_GOSSIP_MS         gossip interval
 *   MURMER_SWIM_GOSSIP_NODES      gossip fanout
 *   MURMER_SWIM_RETRANSMIT_MULT   retransmit multiplier
 *   MURMER_SWIM_SUSPICION_MULT    suspicion multiplier
 *   MURMER_SWIM_SUSPICION_MAX_MULT suspicion max multiplier
 *   MURMER_SWIM_AWARENESS_MAX     local-health max multiplier
 *   MURMER_SWIM_REPROBE_MIN_MS / _MAX_MS  re-probe backoff of the failed
 *   MURMER_SWIM_SEED_MIN_MS / _MAX_MS     seed retry backoff
 *   MURMER_SWIM_LEAVE_TIMEOUT_MS  graceful leave bound
 *   MURMER_SWIM_SYNC_JITTER_MS    delay before a digest-mismatch pull
 *   MURMER_SWIM_SYNC_TIMEOUT_MS   a push-pull without answer is over
 *   MURMER_SWIM_RECONNECT_TIMEOUT_MS  reap failed members after
 */
int mm__membership_new(struct mm_membership **out,
                       const struct mm_membership_deps *deps,
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

/* Joins the node at "host:port" (a seed found by mDNS): probes it, and
 * retries with capped backoff like a configured seed.  0 or MM_EINVAL. */
int mm__membership_join(struct mm_membership *m, const char *hostport);

/* Walks every listed member, self included, in name order. */
void mm__membership_foreach(struct mm_membership *m,
                            int (*cb)(void *data,
                                      const struct mm_swim_member *mb),
                            void *data);
/* Adds the listed members (self included) to |counts| by state, without
 * sorting them. */
void mm__membership_count(struct mm_membership *m,
                          uint64_t counts[MM_SWIM_LEFT + 1]);
/* The effective timings, "key: value\n" lines; snprintf semantics. */
int mm__membership_timings(struct mm_membership *m, char *buf, size_t len);
/* Marks a member left at once, by name or 32-hex id.  0, MM_ENOTFOUND,
 * MM_EINVAL (self). */
int mm__membership_force_leave(struct mm_membership *m, const char *node);
/* The keyring changed (a rotation): gossip is sealed with its new primary
 * and opened with any of its keys from now on.  0 or MM_EINVAL. */
int mm__membership_set_keys(struct mm_membership *m,
                            const struct mm_keyring *kr);
/* Counters for benchmarks and tests. */
const struct mm_swim_stats *mm__membership_stats(struct mm_membership *m);

/* For tests: sends |state| (mm__swim_state_encode's format, any content)
 * as a MEMBER_SYNC_REQ to |peer|, as a misbehaving member could.  0 or an
 * error. */
int mm__membership_send_state(struct mm_membership *m,
                              const uint8_t peer[MM_SWIM_ID_LEN],
                              const uint8_t *state, size_t len);

/* The member with node id |id|, or NULL (borrowed until the next event). */
const struct mm_swim_member *
mm__membership_find(struct mm_membership *m, const uint8_t id[MM_SWIM_ID_LEN]);

/* One listener for every member change after the core's (|was| the state
 * before, MM_SWIM_NONE for a new member; the same state for an updated
 * record): the client sessions' member events.  |fn| NULL removes it. */
typedef void (*mm_membership_change_fn)(void *data,
                                        const struct mm_swim_member *mb,
                                        int was);
void mm__membership_on_change(struct mm_membership *m,
                              mm_membership_change_fn fn, void *data);

/* What the glue dropped or did, beyond swim's and seal's own counters. */
struct mm_membership_counters {
    uint64_t dgram_in;       /* datagrams handed to us */
    uint64_t dropped_seal;   /* did not open (mm__seal_open) */
    uint64_t dropped_sender; /* swim sender != sealed sender */
    uint64_t dropped_other;  /* too big, bad source address */
    uint64_t dropped_flood;  /* over its source's rate, before any crypto
                                (MM_GOSSIP_SOURCE_RATE) */
    uint64_t syncs_sent;     /* SYNC_REQ sent */
    uint64_t syncs_served;   /* SYNC_REQ answered */
    uint64_t syncs_merged;   /* SYNC_RESP merged */
    uint64_t syncs_failed;   /* not sent, or no answer in time */
    uint64_t syncs_busy;     /* states dropped: one was still merging */
    uint64_t merge_steps;    /* loop turns that merged part of a state */
    uint64_t merges_cut;     /* states left in their gone part for a new one */
    uint64_t syncs_heal;     /* push-pulls with a failed or suspect member
                                that talks to us */
    uint64_t bytes_in;       /* gossip datagrams' bytes, received */
    uint64_t bytes_out;      /* ... and sent (sealed) */
};
void mm__membership_counters(struct mm_membership *m,
                             struct mm_membership_counters *out);
const struct mm_seal_stats *mm__membership_seal_stats(struct mm_membership *m);

#endif /* MM_MEMBERSHIP_H */
