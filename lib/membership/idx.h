/*
 * idx.h — an index of objects by their 16-byte id, for the member table
 * (swim.c), the broadcast queue (swim.c) and the seal's peer table
 * (seal.c): lookups, inserts and removals in O(1) on average where those
 * tables used to be scanned.
 *
 * The objects stay the caller's: the index holds pointers to them and reads
 * each one's id at |key_off| bytes into it, so an object must not move
 * while indexed (or the index is rebuilt: mm__idx_clear, then an insert of
 * each).  Open addressing with linear probing, at most half full (3/4
 * when |dense| is set: one entry per member), grown by doubling (an insert is
 * amortised O(1)); a removal shifts the entries that follow back, so no deleted
 * marks accumulate.  The hash is keyed by |seed|: ids ground offline to collide
 * in one table do not collide in another's (not a MAC: it only spreads ids; the
 * tables are bounded by their owners).  Pure: no libuv.
 */
#ifndef MM_IDX_H
#define MM_IDX_H

#include <stddef.h>
#include <stdint.h>

#define MM_IDX_KEY_LEN 16

struct mm_idx {
    void **slot; /* cap entries, NULL = empty; owned */
    size_t cap;  /* 0 or a power of two */
    size_t n;    /* entries */
    size_t key_off;
    size_t ptr_off; /* SIZE_MAX, or where the pointer to the id's holder is */
    int dense;      /* set: grows past 3/4 full, not 1/2 (less room) */
    uint64_t k0, k1;
};

/* An empty index (allocates nothing until the first insert). */
void mm__idx_init(struct mm_idx *x, size_t key_off, uint64_t seed);
/* The same for objects that hold a pointer (at |ptr_off|) to what holds
 * the id (at |key_off| in that). */
void mm__idx_init_ind(struct mm_idx *x, size_t ptr_off, size_t key_off,
                      uint64_t seed);
/* Frees the slots (never the objects); the index is empty after. */
void mm__idx_free(struct mm_idx *x);
/* Forgets every entry, keeps the slots. */
void mm__idx_clear(struct mm_idx *x);
/* The object whose id is |id|, or NULL. */
void *mm__idx_find(const struct mm_idx *x, const uint8_t id[MM_IDX_KEY_LEN]);
/* Adds |obj|: 0, MM_EEXISTS when its id is indexed already, or -ENOMEM
 * (nothing added either way). */
int mm__idx_insert(struct mm_idx *x, void *obj);
/* Removes |obj| (found by its id): 0, or MM_ENOTFOUND when the entry for
 * that id is not |obj|. */
int mm__idx_remove(struct mm_idx *x, const void *obj);

#endif /* MM_IDX_H */
