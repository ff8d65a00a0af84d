/* hlc.c — hybrid logical clock (Kulkarni et al.), 48-bit ms | 16-bit count. */
#include "hlc.h"

void
mm__hlc_init(struct mm__hlc *h, uint64_t max_drift_ms)
{
    h->last = 0;
    h->max_drift_ms = max_drift_ms;
    h->ahead = 0;
}

/*
 * Builds (wall, logical) with the carry rule: a logical part past 0xffff
 * moves on to the next millisecond, so the 64-bit value still grows.  A
 * carry past the last millisecond saturates at MM_HLC_MAX: the masking in
 * MM_HLC_MAKE would wrap it to 0.
 */
static uint64_t
hlc_make(uint64_t wall, uint64_t logical)
{
    if (logical > 0xffffu) {
        wall += logical >> MM_HLC_LOGICAL_BITS;
        logical &= 0xffffu;
    }
    if (wall > MM_HLC_WALL_MASK) return MM_HLC_MAX;
    return MM_HLC_MAKE(wall, logical);
}

uint64_t
mm__hlc_now(struct mm__hlc *h, uint64_t wall_ms)
{
    uint64_t pt = wall_ms & MM_HLC_WALL_MASK;
    if (h->last == MM_HLC_MAX) return h->last; /* saturated */
    if (pt > MM_HLC_WALL(h->last))
        h->last = MM_HLC_MAKE(pt, 0);
    else
        h->last = hlc_make(MM_HLC_WALL(h->last),
                           (uint64_t)MM_HLC_LOGICAL(h->last) + 1);
    return h->last;
}

int
mm__hlc_trusted(const struct mm__hlc *h, uint64_t remote, uint64_t wall_ms)
{
    uint64_t pt = wall_ms & MM_HLC_WALL_MASK, rw = MM_HLC_WALL(remote);
    return !(h->max_drift_ms && rw > pt && rw - pt > h->max_drift_ms);
}

uint64_t
mm__hlc_update(struct mm__hlc *h, uint64_t remote, uint64_t wall_ms)
{
    uint64_t pt = wall_ms & MM_HLC_WALL_MASK;
    uint64_t lw = MM_HLC_WALL(h->last), rw = MM_HLC_WALL(remote);
    uint64_t lc = MM_HLC_LOGICAL(h->last), rc = MM_HLC_LOGICAL(remote);

    if (!mm__hlc_trusted(h, remote, wall_ms)) {
        h->ahead++;
        return mm__hlc_now(h, wall_ms);
    }
    if (h->last == MM_HLC_MAX) return h->last; /* saturated */

    uint64_t w = pt;
    if (lw > w) w = lw;
    if (rw > w) w = rw;

    uint64_t c;
    if (w == lw && w == rw)
        c = (lc > rc ? lc : rc) + 1;
    else if (w == lw)
        c = lc + 1;
    else if (w == rw)
        c = rc + 1;
    else
        c = 0;
    h->last = hlc_make(w, c);
    return h->last;
}
