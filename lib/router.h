/* router.h — internals of router.c that tests reach. */
#ifndef MM_ROUTER_H
#define MM_ROUTER_H

#include "common.h"

/*
 * Applies one listing event to |r|'s member list (what a pool router's
 * listing callback does): ADDED appends, REMOVED drops, RESYNC starts a new
 * epoch, SYNCED after a RESYNC drops the members the new backfill did not
 * confirm.  Thread-safe (takes the router's lock).
 */
void mm__router_apply(mm_router *r, const mm_listing_event *ev);

#endif /* MM_ROUTER_H */
