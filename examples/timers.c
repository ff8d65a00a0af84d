/*
 * timers.c — an actor that schedules messages to itself.
 *
 *   make && ./build/timers
 *
 * The start hook arms a periodic timer (`tick` every 50 ms) and a one-shot
 * (`timeout` in 10 s, a safety net).  The third tick cancels the periodic
 * timer and arms a one-shot `done` 100 ms later, which stops the actor;
 * main waits for that with mm_watch().  Timers belong to the actor: the
 * one-shot still armed when it stops is cancelled with it.  Prints:
 *
 *   tick 1
 *   tick 2
 *   tick 3
 *   cancelled the ticks
 *   done
 */
#define _POSIX_C_SOURCE 200809L /* semaphores under -std=c11 */
#include <semaphore.h>
#include <stdio.h>

#include <murmer.h>

struct ticker {
    int ticks;
    mm_timer_id every; /* names the periodic timer for mm_timer_cancel */
};

/* A message |type| to self in |ms| (once), or every |ms| when |every|
 * is not NULL (then *every names the timer for mm_timer_cancel). */
static int
schedule(mm_ctx *ctx, uint32_t ms, const char *type, mm_timer_id *every)
{
    mm_msg *m = mm_msg_new(type);
    int rc = every ? mm_send_every(ctx, NULL, ms, m, every)
                   : mm_send_after(ctx, NULL, ms, m, NULL);
    if (rc != 0) mm_msg_free(m); /* refused: the message is still ours */
    return rc;
}

static int
start(mm_ctx *ctx, void *state)
{
    struct ticker *t = state;
    int rc = schedule(ctx, 50, "tick", &t->every);
    return rc ? rc : schedule(ctx, 10000, "timeout", NULL);
}

static int
tick(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct ticker *t = state;
    (void)msg;
    printf("tick %d\n", ++t->ticks);
    if (t->ticks < 3) return 0;
    if (mm_timer_cancel(ctx, t->every) == 0) printf("cancelled the ticks\n");
    return schedule(ctx, 100, "done", NULL);
}

static int
done(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx, (void)state, (void)msg;
    printf("done\n");
    return MM_STOP;
}

static int
timeout(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state, (void)msg;
    return mm_fail(ctx, "no `done` within 10 s");
}

MM_ACTOR_TYPE(ticker, struct ticker, start, NULL, MM_HANDLER("tick", tick),
              MM_HANDLER("done", done), MM_HANDLER("timeout", timeout));

static sem_t stopped;
static int why = -1;

static void
on_stop(void *data, const mm_endpoint *ep, int reason)
{
    (void)data, (void)ep;
    why = reason;
    sem_post(&stopped);
}

int
main(void)
{
    mm_node *node = NULL;
    mm_endpoint ep;
    sem_init(&stopped, 0, 0);
    int rc = mm_node_new(&node, NULL); /* local only */
    if (rc == 0 && (rc = mm_node_register_type(node, &ticker_type)) == 0 &&
        (rc = mm_node_start_thread(node)) == 0 &&
        (rc = mm_spawn(node, "ticker", NULL, &ep)) == 0 &&
        (rc = mm_watch(node, NULL, &ep, on_stop, NULL)) == 0)
        sem_wait(&stopped);
    if (rc != 0) fprintf(stderr, "timers: %s\n", mm_strerror(rc));
    if (node) mm_node_stop(node), mm_node_join(node), mm_node_free(node);
    return rc != 0 || why != MM_REASON_NORMAL;
}
