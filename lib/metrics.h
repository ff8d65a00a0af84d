/*
 * metrics.h — the node's Prometheus endpoint: `GET /metrics` in the text
 * exposition format 0.0.4, served by a small HTTP/1.1 responder on a
 * thread and a libuv loop of its own (lib/metrics.c).  A scrape posts a
 * function to every shard (mm_node_post) that copies the shard's counters
 * and walks its actors, on the shard's own thread; shard 0 adds the
 * network half's numbers (mm_cluster_ops.metrics).  Nothing stops a
 * shard, and a shard that does not answer within MM_METRICS_GATHER_MS is
 * left out of that scrape (murmer_scrape_shards_missing).
 */
#ifndef MM_METRICS_H
#define MM_METRICS_H

#include "runtime.h"

#include "membership/membership.h"
#include "membership/seal.h"
#include "membership/swim.h"
#include "registry.h"
#include "transport/quic.h"

/* One peer with an up member connection. */
struct mm_metrics_peer {
    char id[33];
    char name[MM_SWIM_NAME_MAX];
    struct mm_quic_conn_stat st;
};

/* The network half's numbers, filled on shard 0 by cluster.c. */
struct mm_metrics_net {
    uint64_t members[MM_SWIM_LEFT + 1]; /* by enum mm_swim_state */
    struct mm_swim_stats swim;
    struct mm_membership_counters mc;
    struct mm_seal_stats seal;
    struct mm_quic_stats quic;
    size_t conns, conns_up;
    struct mm_registry_stats reg;
    size_t reg_entries;
    /* Up to MM_METRICS_PEERS_MAX peers; the rest are only counted. */
    struct mm_metrics_peer *peers; /* owned by the scrape */
    size_t npeers, peers_left_out;
};

/* Starts serving |hostport| ("ip:port", "[v6]:port"; port 0 = any) for
 * |n|.  0, MM_EINVAL (bad address), MM_EEXISTS (already serving) or a
 * UV_E* error (the bind). */
int mm__metrics_start(mm_node *n, const char *hostport);
/* Stops the responder's thread (no new scrapes); memory a shard may still
 * write stays until mm__metrics_free, called once no shard runs. */
void mm__metrics_stop(struct mm_metrics *m);
void mm__metrics_free(struct mm_metrics *m);
/* The bound address "ip:port". */
const char *mm__metrics_addr(const struct mm_metrics *m);

/* ---- the exposition format (tests) --------------------------------------- */

/* A growing text buffer; on allocation failure |oom| is set and further
 * writes are ignored. */
struct mm_mtext {
    char *p;
    size_t len, cap;
    int oom;
};
void mm__mtext_printf(struct mm_mtext *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes |s| as a label value: backslash, quote and newline escaped. */
void mm__mtext_label(struct mm_mtext *t, const char *s);

/* ---- murmer top: one node's numbers, gathered like a scrape -------------
 *
 * mm__top_begin (shard 0) posts to every shard a function that copies the
 * shard's counters and walks its actors (the scrape's walk), keeping the
 * |actors_max| with the deepest mailboxes (then the most handled) in a
 * bounded heap; shard 0 adds the network numbers.  When every shard has
 * answered, |cb| runs on shard 0 with the snapshot (unless released
 * before).  The caller releases the snapshot with mm__top_release, on
 * shard 0, whether or not |cb| ran; a snapshot whose shards never answer
 * (the node stops) is freed by mm__top_free_all on its list, once no shard
 * runs.
 */
struct mm_top_actor {
    uint64_t id;
    char *label; /* NULL: unlabelled */
    const char *type;
    uint64_t mailbox, handled, ht_count, ht_sum_ns;
    unsigned restarts;
};

struct mm_top_snap {
    double cpu_s;     /* process CPU time, user + system */
    uint64_t rss;     /* resident bytes */
    uint64_t wall_ms; /* the node's wall clock at the answer */
    size_t conns, conns_up;
    uint64_t pkts_in, pkts_out, bytes_in, bytes_out;
    struct mm_shard_ctr ctr;  /* summed over the shards */
    uint64_t calls_in_flight; /* live call records (a shard counts at most
                                 MM_TOP_CALLS_WALK) */
    uint64_t actors_total;    /* started actors */
    /* The kept actors, deepest mailbox first; |truncated| when
     * actors_total > nactors. */
    struct mm_top_actor *actors;
    size_t nactors;
    int truncated;
    unsigned shards_missing; /* had not answered (mm__top_now) */
};

struct mm_top;
typedef void (*mm_top_cb)(void *data, struct mm_top *t,
                          const struct mm_top_snap *snap);
/* NULL when out of memory.  |list| links the node's live snapshots.  With
 * |prefix|, only actors whose label starts with it are kept (all are
 * counted in actors_total). */
struct mm_top *mm__top_begin(mm_node *n, struct mm_top **list,
                             size_t actors_max, const char *prefix,
                             mm_top_cb cb, void *data);
/* The bounded wait is over: |cb| at once with what the shards that have
 * answered gave (shards_missing counts the others); |t|'s own callback
 * will not run.  Then release |t|. */
void mm__top_now(struct mm_top *t, mm_top_cb cb, void *data);
void mm__top_release(struct mm_top *t);
void mm__top_free_all(struct mm_top **list);

#endif /* MM_METRICS_H */
