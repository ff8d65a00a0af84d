/*
 * supervisor.h — the pure restart policy (docs/design.md, Supervision).  No
 * libuv: the actor glue passes the time in and arms a timer for the returned
 * delay.
 */
#ifndef MM_SUPERVISOR_H
#define MM_SUPERVISOR_H

#include <stdint.h>

struct mm_sup {
    int policy;       /* enum mm_policy */
    int max_restarts; /* within window_ms */
    uint32_t window_ms;
    uint32_t backoff_initial_ms;
    uint32_t backoff_max_ms;
    uint32_t backoff_reset_ms;
    /* state */
    uint32_t backoff_next_ms; /* delay of the next restart */
    uint64_t last_crash_ms;   /* 0 = never */
    uint64_t *stamps;         /* ring of the last max_restarts restart times */
    int nstamps, head;
    unsigned restarts; /* total, for events */
};

enum mm_sup_verdict {
    MM_SUP_TERMINATE = 0, /* do not restart (policy) */
    MM_SUP_RESTART = 1,   /* restart after *delay_ms */
    MM_SUP_LIMIT = 2      /* restart limit exceeded: terminate */
};

/* |max_restarts| < 0 means the default.  0 or -ENOMEM. */
int mm__sup_init(struct mm_sup *s, int policy, int max_restarts,
                 uint32_t window_ms, uint32_t backoff_initial_ms,
                 uint32_t backoff_max_ms, uint32_t backoff_reset_ms);
void mm__sup_release(struct mm_sup *s);
/*
 * Decides what follows an actor's end at |now_ms|: |crashed| 1 for a crash,
 * 0 for a normal stop (handler returned MM_STOP).  Explicit stops from
 * outside never reach here: they always terminate.
 */
int mm__sup_decide(struct mm_sup *s, int crashed, uint64_t now_ms,
                   uint32_t *delay_ms);

#endif /* MM_SUPERVISOR_H */
