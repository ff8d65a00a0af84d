/*
 * hlc.h — hybrid logical clock (pure: the wall clock comes in as an argument).
 *
 * A timestamp is 64 bits: the high 48 bits are wall-clock milliseconds since
 * the epoch, the low 16 bits a logical counter.  Timestamps compare as plain
 * integers.  A logical counter that would pass 0xffff carries into the
 * millisecond part, so the clock stays strictly monotonic, up to
 * MM_HLC_MAX: a carry past the last millisecond saturates there instead of
 * wrapping to 0, and a saturated clock stays at MM_HLC_MAX (equal stamps,
 * which rank by node id).  With a drift bound no remote stamp can take a
 * clock there before the wall clock does (the year 10889).
 */
#ifndef MM_HLC_H
#define MM_HLC_H

#include <stdint.h>

#define MM_HLC_LOGICAL_BITS 16
#define MM_HLC_WALL_MASK ((1ull << 48) - 1)
#define MM_HLC_MAX UINT64_MAX
#define MM_HLC_MAKE(wall_ms, logical)                                          \
    ((((uint64_t)(wall_ms)&MM_HLC_WALL_MASK) << MM_HLC_LOGICAL_BITS) |         \
     ((uint64_t)(logical)&0xffffu))
#define MM_HLC_WALL(t) ((uint64_t)(t) >> MM_HLC_LOGICAL_BITS)
#define MM_HLC_LOGICAL(t) ((uint16_t)((t)&0xffffu))

/* Default bound on how far a remote clock may run ahead of ours. */
#ifndef MM_HLC_MAX_DRIFT_MS
#define MM_HLC_MAX_DRIFT_MS 60000u
#endif

/* Caller-provided storage; no resources to release. */
struct mm__hlc {
    uint64_t last;         /* the last timestamp handed out or merged */
    uint64_t max_drift_ms; /* 0 = accept any remote clock */
    uint64_t ahead;        /* remote stamps not merged: beyond the bound */
};

/* Starts a clock at 0 with the given drift bound (0 = unbounded). */
void mm__hlc_init(struct mm__hlc *h, uint64_t max_drift_ms);

/* A timestamp for a local event at wall time |wall_ms|; strictly greater
 * than every timestamp this clock returned or merged before, unless the
 * clock is saturated (then MM_HLC_MAX again). */
uint64_t mm__hlc_now(struct mm__hlc *h, uint64_t wall_ms);

/* 1 when |remote| is within the drift bound at wall time |wall_ms| (its
 * wall part at most max_drift_ms ahead of |wall_ms|), else 0.  Always 1
 * for an unbounded clock. */
int mm__hlc_trusted(const struct mm__hlc *h, uint64_t remote, uint64_t wall_ms);

/*
 * Merges the timestamp |remote| received from a peer at wall time
 * |wall_ms| and returns the new local timestamp (greater than both |remote|
 * and every earlier local one, short of saturation).  A |remote| that is
 * not mm__hlc_trusted() is not merged (it would drag this clock into the
 * future for good): it is counted in |ahead| and the result is
 * mm__hlc_now().
 */
uint64_t mm__hlc_update(struct mm__hlc *h, uint64_t remote, uint64_t wall_ms);

#endif /* MM_HLC_H */
