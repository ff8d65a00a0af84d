/*
 * tq.h — the timers of one libuv loop, on a timerfd.
 *
 * Why not uv_timer: while any uv_timer is active, libuv blocks in
 * epoll_wait with a finite timeout, and the kernel then arms and cancels an
 * hrtimer on every sleep.  Measured here (bench/udploop with one idle
 * timer, pinned): 7% of a UDP round trip through the loop, about 1 us,
 * whatever the timeout's length.  A node's loop always has some timer
 * armed (failure detection, call deadlines, connection expiry), so every
 * sleep paid it.  A timer queue keeps its earliest deadline in a timerfd
 * watched like any socket: the loop sleeps with no timeout, and the
 * timerfd is re-armed (one syscall) only when a new deadline comes before
 * the armed one; a timer that moved later just wakes the queue once, early,
 * to re-arm for what is due next.
 *
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds (mm__now_ns).  A timer
 * is a struct embedded in its owner; callbacks run in the loop's poll
 * phase, in deadline order, and may start or stop any timer.  Loop thread
 * only.
 */
#ifndef MM_TQ_H
#define MM_TQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct mm_tmr {
    uint64_t deadline_ns; /* absolute */
    size_t idx;           /* heap index + 1; 0 = not armed */
    void (*fn)(struct mm_tmr *t);
};

struct mm_tq {
    uv_loop_t *loop;
    int fd;         /* the timerfd; -1 before init */
    uv_poll_t poll; /* readable when the timerfd expired */
    struct mm_tmr **heap;
    size_t len, cap;
    uint64_t armed;  /* deadline the timerfd holds; 0 = disarmed */
    uint64_t now_ns; /* the clock read for the last expiry run */
    int running;     /* inside an expiry run */
    int closing;
};

/* 0 or a libuv error (the poll handle is unreferenced: timers alone do not
 * keep a loop alive, like uv_unref'd timers). */
int mm__tq_init(struct mm_tq *q, uv_loop_t *loop);
/* Drops every timer (without touching them) and closes the handle; the fd
 * is closed and the heap freed in the handle's close callback (run the loop
 * once more).  Starting a timer afterwards does nothing; stopping one only
 * marks it stopped. */
void mm__tq_close(struct mm_tq *q);
/* (Re)starts |t| (its fn set) for |deadline_ns|; a past one runs on the next
 * loop turn (never in the expiry run that started it). */
void mm__tq_start(struct mm_tq *q, struct mm_tmr *t, uint64_t deadline_ns);
void mm__tq_stop(struct mm_tq *q, struct mm_tmr *t);
/* mm__tq_start for |ms| milliseconds from now. */
void mm__tq_start_in(struct mm_tq *q, struct mm_tmr *t, uint64_t ms);

static inline int
mm__tq_active(const struct mm_tmr *t)
{
    return t->idx != 0;
}

/* The first deadline (UINT64_MAX when no timer is started).  The timerfd
 * may be armed earlier, for a timer that moved later: that wake-up only
 * re-arms, and may come late. */
static inline uint64_t
mm__tq_next(const struct mm_tq *q)
{
    return q->len ? q->heap[0]->deadline_ns : UINT64_MAX;
}

#endif /* MM_TQ_H */
