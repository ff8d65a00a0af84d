/*
 * results.h — what each client command renders, as plain C structs.
 *
 * Each client command fills one of these from the client session and hands
 * it to its renderer, which prints a text table (people) or one JSON
 * document (--json, programs).  The renderers live in the command's own
 * cmd/<name>.c and are unit-tested in tests/unit/test_cli_options.c.
 * Every pointer in these structs is borrowed for the duration of the call.
 *
 * NEEDSWORK: these mirror the mm_client_* API proposed for murmer.h (see
 * the closing note of the CLI work); once that lands, either fill these
 * from it or replace them with its structs.
 */
#ifndef MM_CLI_RESULTS_H
#define MM_CLI_RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "murmer.h"

struct cli_ctx;

/* members: one SWIM member as the seed sees it. */
struct cli_member {
    const char *name;
    const char *id;    /* 32 lowercase hex */
    const char *addr;  /* "host:port" */
    const char *state; /* "alive", "suspect", "failed", "left" */
    uint64_t generation;
    uint64_t incarnation;
    const char *const *tags; /* "k=v" */
    size_t ntags;
    unsigned confirmations; /* --wide: independent suspicions */
    int64_t last_ack_ms;    /* --wide: age of the last ack; -1 unknown */
    int64_t rtt_us;         /* --wide: smoothed RTT; -1 unknown */
};
/* Whether |m| passes --status and every --tag k=v filter. */
int cli_member_match(const struct cli_member *m, const char *status,
                     const char *const *tags, size_t ntags);
void cli_members_render(struct cli_ctx *ctx, const struct cli_member *m,
                        size_t n, int wide, FILE *f);

/* members --timings: one tunable; |name| carries the unit ("..._ms"). */
struct cli_timing {
    const char *name;
    uint64_t value;
};
void cli_timings_render(struct cli_ctx *ctx, const struct cli_timing *t,
                        size_t n, FILE *f);

/* lookup: one registered actor (or shadowed claimant with --all). */
struct cli_actor {
    const char *label;
    mm_endpoint ep;
    const char *type;        /* actor type name, may be NULL */
    const char *node_name;   /* may be NULL */
    const char *visibility;  /* "public", "internal" */
    const char *const *keys; /* reception keys */
    size_t nkeys;
    int shadowed; /* lost a label conflict (--all only) */
};
void cli_lookup_render(struct cli_ctx *ctx, const struct cli_actor *a, size_t n,
                       FILE *f);

/* send: the reply of one target. */
struct cli_reply {
    const char *label;
    mm_endpoint ep;
    int status;       /* 0 or MM_E* */
    const char *body; /* reply JSON on 0, error text otherwise */
    size_t len;
};
/*
 * Prints the replies of `send` (one target) or `send --key` (|key| not
 * NULL: one row per target then "delivered k/N").  Returns the exit code:
 * 0 when every target replied ok, else the worst error's (1 for a handler
 * error or partial delivery).
 */
int cli_send_render(struct cli_ctx *ctx, const char *key, const char *type,
                    const struct cli_reply *r, size_t n, FILE *f);

/* watch: one listing event (enum mm_listing_event_kind). */
struct cli_watch_event {
    int kind;
    const char *label; /* NULL for resync and synced */
    mm_endpoint ep;
    int reason; /* removals: enum mm_reason */
};
/* One line (text) or one JSON Lines document, flushed. */
void cli_watch_render(struct cli_ctx *ctx, const struct cli_watch_event *ev,
                      FILE *f);

/* oplog: one op of an origin's log. */
struct cli_op {
    uint64_t seq;
    const char *kind; /* "register", "check_in", "remove" */
    const char *label;
    const char *type;       /* register */
    const char *visibility; /* register */
    const char *key;        /* check_in */
    const char *reason;     /* remove */
    uint64_t hlc;           /* register: hybrid logical clock */
};
struct cli_origin {
    const char *id;   /* origin node id */
    const char *name; /* may be NULL when unknown */
    uint64_t generation;
    uint64_t head; /* last seq applied (version vector) */
    int has_snapshot;
    uint64_t snapshot_seq; /* ops <= this are in the snapshot */
    size_t snapshot_entries;
    const struct cli_op *ops; /* the tail after the snapshot */
    size_t nops;
};
void cli_oplog_render(struct cli_ctx *ctx, const struct cli_origin *o, size_t n,
                      FILE *f);
/* oplog --follow: one new op, one line or one JSON Lines document. */
void cli_oplog_render_op(struct cli_ctx *ctx, const char *origin,
                         uint64_t generation, const struct cli_op *op, FILE *f);

/* force-leave: the member that was removed. */
struct cli_left {
    const char *name;
    const char *id;
    const char *was; /* its state before: "failed", "suspect" */
};
void cli_force_leave_render(struct cli_ctx *ctx, const struct cli_left *l,
                            FILE *f);

#endif /* MM_CLI_RESULTS_H */
