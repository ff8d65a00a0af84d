/*
 * hlc.h — hybrid logical clock (pure: the wall clock comes in as an argument).
 *
 * A timestamp is 64 bits: the high 48 bits are wall-clock milliseconds since
 * the epoch, the low 16 bits a logical counter.  Timestamps compare as plain
 * integers.  A logical counter that would pass 0xffff carries into the
 * millisecond part, so the clock stays strictly monotonic.
 */
#ifndef MM_HLC_H
#define MM_HLC_H

#include <stdint.h>

#define MM_HLC_LOGICAL_BITS 16
#define MM_HLC_WALL_MASK ((1ull << 48) - 1)
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
};

/* Starts a clock at 0 with the given drift bound (0 = unbounded). */
void mm__hlc_init(struct mm__hlc *h, uint64_t max_drift_ms);

/* A timestamp for a local event at wall time |wall_ms|; strictly greater
 * than every timestamp this clock returned or merged before. */
uint64_t mm__hlc_now(struct mm__hlc *h, uint64_t wall_ms);

/*
 * Merges the timestamp |remote| received from a peer at wall time
 * |wall_ms| and returns the new local timestamp (greater than both |remote|
 * and every earlier local one).  A |remote| whose wall part is more than
 * max_drift_ms ahead of |wall_ms| is ignored (it would drag this clock into
 * the future for good); the result is then mm__hlc_now().
 */
uint64_t mm__hlc_update(struct mm__hlc *h, uint64_t remote, uint64_t wall_ms);

#endif /* MM_HLC_H */
