/* supervisor.c — restart policies, restart limits and backoff (pure). */
#include "supervisor.h"

#include "core.h"

int
mm__sup_init(struct mm_sup *s, int policy, int max_restarts, uint32_t window_ms,
             uint32_t backoff_initial_ms, uint32_t backoff_max_ms,
             uint32_t backoff_reset_ms)
{
    memset(s, 0, sizeof(*s));
    s->policy = policy;
    s->max_restarts = max_restarts < 0 ? MM_MAX_RESTARTS : max_restarts;
    s->window_ms = window_ms ? window_ms : MM_RESTART_WINDOW_MS;
    s->backoff_initial_ms =
        backoff_initial_ms ? backoff_initial_ms : MM_BACKOFF_INITIAL_MS;
    s->backoff_max_ms = backoff_max_ms ? backoff_max_ms : MM_BACKOFF_MAX_MS;
    if (s->backoff_max_ms < s->backoff_initial_ms)
        s->backoff_max_ms = s->backoff_initial_ms;
    s->backoff_reset_ms =
        backoff_reset_ms ? backoff_reset_ms : MM_BACKOFF_RESET_MS;
    s->backoff_next_ms = s->backoff_initial_ms;
    if (policy != MM_TEMPORARY && s->max_restarts > 0) {
        s->stamps = mm__calloc((size_t)s->max_restarts, sizeof(uint64_t));
        if (!s->stamps) return -ENOMEM;
    }
    return 0;
}

void
mm__sup_release(struct mm_sup *s)
{
    mm__free(s->stamps);
    s->stamps = NULL;
}

/* Restarts recorded within the window ending at |now|. */
static int
sup_recent(const struct mm_sup *s, uint64_t now)
{
    int n = 0;
    for (int i = 0; i < s->nstamps; i++)
        if (now - s->stamps[i] < s->window_ms) n++;
    return n;
}

int
mm__sup_decide(struct mm_sup *s, int crashed, uint64_t now, uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (s->policy == MM_TEMPORARY) return MM_SUP_TERMINATE;
    if (s->policy == MM_TRANSIENT && !crashed) return MM_SUP_TERMINATE;
    /* A quiet spell resets the backoff. */
    if (s->last_crash_ms && now - s->last_crash_ms >= s->backoff_reset_ms)
        s->backoff_next_ms = s->backoff_initial_ms;
    s->last_crash_ms = now ? now : 1;
    if (sup_recent(s, now) >= s->max_restarts) return MM_SUP_LIMIT;
    /* Record this restart (ring of the last max_restarts). */
    if (s->nstamps < s->max_restarts) {
        s->stamps[s->nstamps++] = now;
    } else {
        s->stamps[s->head] = now;
        s->head = (s->head + 1) % s->max_restarts;
    }
    *delay_ms = s->backoff_next_ms;
    uint64_t next = (uint64_t)s->backoff_next_ms * 2;
    s->backoff_next_ms =
        (uint32_t)(next > s->backoff_max_ms ? s->backoff_max_ms : next);
    s->restarts++;
    return MM_SUP_RESTART;
}
