/*
 * murmer/testkit.h — an in-process cluster for tests, with faults.
 *
 * Starts N nodes of libmurmer in the calling process, each on 127.0.0.1
 * with a port the OS chose, in a data dir of its own under a scratch dir,
 * all sharing a fresh cluster key, joined and waited for until every node
 * sees every other one alive.  A test registers its actor types on the
 * nodes (the |init| hook, or mm_tk_node() then mm_node_register_type and
 * mm_spawn), calls them across nodes, and breaks the network in between:
 *
 *     mm_tk *tk;
 *     mm_tk_opts o;
 *     mm_tk_opts_init(&o);
 *     o.builtins = 1;
 *     if (mm_tk_cluster_start(&tk, 3, &o) != 0) fail(mm_tk_error());
 *     ... spawn a "counter" labelled "c" on mm_tk_node(tk, 0) ...
 *     mm_tk_wait_label(tk, "c", 0, &ep);
 *     mm_tk_partition(tk, (const int[]){0, 0, 1});  // node 2 alone
 *     mm_tk_wait_state(tk, 2, MM_TK_FAILED, 0);     // the others see it
 *     mm_tk_heal(tk);
 *     mm_tk_wait_converged(tk, 0);
 *     mm_tk_stop(tk);
 *
 * Faults act on the real datagrams of the real transport: each node's UDP
 * send path asks the kit's filter about every datagram (a filter that
 * costs one untaken branch in a node not started by the kit).  A link is
 * one direction, from node |from| to node |to|; it drops (partition,
 * loss) or holds back (delay) what |from| sends to |to|.  Held datagrams
 * wait in the sending node's bounded queue (|hold_max| datagrams,
 * |hold_bytes| bytes; past either they are dropped and counted, see
 * mm_tk_stats) and are sent by a timer on that node's own loop.  Setters
 * take effect at once from any thread (each link is one atomic word the
 * node's loop reads per datagram).
 *
 * Threads: every function that waits (cluster_start, restart, kill, the
 * waits, stats, state, stop) must be called from a thread that is not one
 * of the nodes' loop threads (a test's main thread), never from a handler;
 * one test thread drives a kit at a time.  The fault setters may be called
 * from anywhere.
 *
 * Timing: unless |library_timings| is set, mm_tk_cluster_start() sets the
 * MURMER_SWIM_* variables that the environment does not set already (with
 * setenv, before the nodes start: call it before threads of your own read
 * the environment) so that a node that went silent is seen failed in
 * about 1-2 s, not about 6.
 *
 * Errors are the library's negative codes (murmer_base.h); a failed call
 * also leaves one line saying why in mm_tk_error() (per thread).
 * Compiles alone under -std=c11 -pedantic: no libuv or cJSON types.
 */
#ifndef MURMER_TESTKIT_H
#define MURMER_TESTKIT_H

#include <stddef.h>
#include <stdint.h>

#include "murmer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nodes a kit starts at most. */
#define MM_TK_NODES_MAX 32
/* The longest delay a link takes (ms). */
#define MM_TK_DELAY_MAX_MS 60000u
/* The default bound of the start and of a wait given 0 (ms). */
#define MM_TK_WAIT_MS 20000u

/* Member states, as mm_member_state_name() names them. */
enum mm_tk_state {
    MM_TK_UNLISTED = -1, /* the viewer does not list the member */
    MM_TK_ALIVE = 0,
    MM_TK_SUSPECT = 1,
    MM_TK_FAILED = 2,
    MM_TK_LEFT = 3
};

typedef struct mm_tk mm_tk;

/*
 * Called for node |i| each time the kit creates it (at the start and at
 * every mm_tk_restart), before it runs, on the thread that called the
 * kit: register types, spawn actors (they run once the node does).
 * Nonzero fails the start (or the restart) with that code.
 */
typedef int (*mm_tk_init_fn)(void *data, mm_tk *tk, int i, mm_node *n);

typedef struct mm_tk_opts {
    const char *tmpdir; /* where the scratch dir goes; NULL: $TMPDIR, else
                           /tmp.  The dir is removed by mm_tk_stop. */
    int builtins;       /* 1: echo, counter, kv and greeter on every node */
    mm_tk_init_fn init; /* may be NULL */
    void *init_data;
    int shards;          /* per node; 0: 1 */
    uint32_t wait_ms;    /* bound of the start and of waits given 0;
                            0: MM_TK_WAIT_MS */
    int library_timings; /* 1: leave MURMER_SWIM_* alone (see above) */
    uint64_t seed;       /* of the loss draws; 0: 1 */
    uint32_t hold_max;   /* datagrams held back per node; 0: the
                            library's bound (8192) */
    size_t hold_bytes;   /* bytes held back per node; 0: 16 MiB */
} mm_tk_opts;

MM_EXTERN void mm_tk_opts_init(mm_tk_opts *o);

/*
 * Starts |n| (1..MM_TK_NODES_MAX) nodes named "n0", "n1", ... (node i
 * joins the nodes before it) and waits until every node lists every other
 * one alive, at most |o->wait_ms|.  0 and |*out|; or MM_EINVAL (bad |n|
 * or option), MM_ETIMEOUT (not converged in time), the code of a node
 * that could not be created or of |init|; then |*out| is NULL and
 * everything is stopped and removed.  |o| NULL: every default.
 */
MM_EXTERN int mm_tk_cluster_start(mm_tk **out, int n, const mm_tk_opts *o);
/* Stops every running node (in parallel), frees the kit and removes its
 * scratch dir.  NULL is ignored. */
MM_EXTERN void mm_tk_stop(mm_tk *tk);

/* Why the last failed mm_tk_* call of this thread failed ("" if none). */
MM_EXTERN const char *mm_tk_error(void);

MM_EXTERN int mm_tk_size(const mm_tk *tk);
/* Node |i|, or NULL when it is killed (or |i| is out of range).  A
 * restarted node is another mm_node: take it again after mm_tk_restart. */
MM_EXTERN mm_node *mm_tk_node(mm_tk *tk, int i);
/* The scratch dir (node i's data dir is <dir>/n<i>). */
MM_EXTERN const char *mm_tk_dir(const mm_tk *tk);

/* ---- faults (any thread; take effect at the next datagram) -------------- */

/*
 * Drops |pct| (0..100) % of the datagrams node |from| sends to node |to|,
 * drawn per datagram.  |from| or |to| -1: every node (a node never sends
 * to itself over the network).  0 or MM_EINVAL.
 */
MM_EXTERN int mm_tk_loss(mm_tk *tk, int from, int to, unsigned pct);
/* Holds what |from| sends to |to| for |ms| (0..MM_TK_DELAY_MAX_MS) before
 * sending it: a round trip over the link both ways grows by twice |ms|.
 * -1 as in mm_tk_loss.  0 or MM_EINVAL. */
MM_EXTERN int mm_tk_delay(mm_tk *tk, int from, int to, uint32_t ms);
/*
 * Partitions the nodes: |group|[i] (one entry per node) is node i's side;
 * nodes on different sides exchange no datagram at all, nodes on one side
 * are not affected.  Replaces any earlier partition; loss and delay stay.
 * E.g. {0, 0, 1} cuts node 2 off.  0 or MM_EINVAL.
 */
MM_EXTERN int mm_tk_partition(mm_tk *tk, const int *group);
/* Every link back to normal: no partition, no loss, no delay. */
MM_EXTERN int mm_tk_heal(mm_tk *tk);

/*
 * Kills node |i| abruptly: from now on it sends nothing (no leave, no
 * goodbye to its connections), then it is stopped and freed, its socket
 * closed and its actors gone.  The others find out by failure detection.
 * Returns once it is gone (within about a second).  0, MM_EINVAL (out of
 * range or already killed).
 */
MM_EXTERN int mm_tk_kill(mm_tk *tk, int i);
/*
 * Starts killed node |i| again: the same name, data dir (so the same
 * node id and the next generation) and port when the OS still has it
 * free; runs |init|; joins the running nodes; returns once it runs
 * (wait with mm_tk_wait_converged for the others to see it).  The links
 * from and to it keep their faults.  0, MM_EINVAL (not killed), or the
 * code of the node's creation or of |init|.
 */
MM_EXTERN int mm_tk_restart(mm_tk *tk, int i);

/* ---- what the nodes see ------------------------------------------------- */

/* Member |member| as node |viewer| lists it now: enum mm_tk_state, with
 * its generation in |*gen| (may be NULL; 0 when unlisted); MM_EINVAL when
 * either is out of range or |viewer| is killed; MM_ETIMEOUT when the
 * viewer's loop did not answer within the kit's wait. */
MM_EXTERN int mm_tk_state(mm_tk *tk, int viewer, int member, uint64_t *gen);
/*
 * Waits (polling every 20 ms, at most |timeout_ms|; 0: the kit's wait)
 * until every running node lists every other running node alive, at the
 * generation it runs now.  Killed nodes are not asked and not required.
 * 0 or MM_ETIMEOUT (mm_tk_error() names a pair that did not agree).
 */
MM_EXTERN int mm_tk_wait_converged(mm_tk *tk, uint32_t timeout_ms);
/* Waits until every running node but |member| lists |member| in |state|
 * (enum mm_tk_state).  0, MM_EINVAL or MM_ETIMEOUT. */
MM_EXTERN int mm_tk_wait_state(mm_tk *tk, int member, int state,
                               uint32_t timeout_ms);
/* Waits until |label| resolves (mm_lookup) on every running node to one
 * endpoint, stored in |*out| (may be NULL).  0 or MM_ETIMEOUT. */
MM_EXTERN int mm_tk_wait_label(mm_tk *tk, const char *label,
                               uint32_t timeout_ms, mm_endpoint *out);

/* The fault counters of running node |i|'s transport since it started
 * (the fault hook's and the kit's together). */
typedef struct mm_tk_stats {
    uint64_t dropped; /* partition and loss */
    uint64_t delayed; /* held back, then sent */
    uint64_t full;    /* to be held back, dropped: the hold queue was full */
    uint64_t held;    /* held back now */
} mm_tk_stats;
MM_EXTERN int mm_tk_stats_get(mm_tk *tk, int i, mm_tk_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* MURMER_TESTKIT_H */
