/*
 * idx.c — an index of objects by 16-byte id (see idx.h).
 */
#include "membership/idx.h"

#include "core.h"

#define IDX_MIN_CAP 16u

static size_t
idx_home(const struct mm_idx *x, const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (size_t)(mm__hash_u64(mm__hash_u64(a ^ x->k0) ^ b ^ x->k1) &
                    (x->cap - 1));
}

static const uint8_t *
idx_key(const struct mm_idx *x, const void *obj)
{
    if (x->ptr_off != SIZE_MAX) {
        const uint8_t *holder;
        memcpy(&holder, (const uint8_t *)obj + x->ptr_off, sizeof(holder));
        return holder + x->key_off;
    }
    return (const uint8_t *)obj + x->key_off;
}

void
mm__idx_init(struct mm_idx *x, size_t key_off, uint64_t seed)
{
    memset(x, 0, sizeof(*x));
    x->key_off = key_off;
    x->ptr_off = SIZE_MAX;
    x->k0 = mm__hash_u64(seed ^ 0x9E3779B97F4A7C15ULL);
    x->k1 = mm__hash_u64(x->k0 ^ seed);
}

void
mm__idx_init_ind(struct mm_idx *x, size_t ptr_off, size_t key_off,
                 uint64_t seed)
{
    mm__idx_init(x, key_off, seed);
    x->ptr_off = ptr_off;
}

void
mm__idx_free(struct mm_idx *x)
{
    mm__free(x->slot);
    x->slot = NULL;
    x->cap = x->n = 0;
}

void
mm__idx_clear(struct mm_idx *x)
{
    if (x->slot) memset(x->slot, 0, x->cap * sizeof(x->slot[0]));
    x->n = 0;
}

/* The slot holding |id|, or the empty slot where it would go. */
static size_t
idx_probe(const struct mm_idx *x, const uint8_t *id)
{
    size_t i = idx_home(x, id), mask = x->cap - 1;
    while (x->slot[i] &&
           memcmp(idx_key(x, x->slot[i]), id, MM_IDX_KEY_LEN) != 0)
        i = (i + 1) & mask;
    return i;
}

void *
mm__idx_find(const struct mm_idx *x, const uint8_t id[MM_IDX_KEY_LEN])
{
    if (x->n == 0) return NULL;
    return x->slot[idx_probe(x, id)];
}

static int
idx_grow(struct mm_idx *x, size_t cap)
{
    void **old = x->slot;
    size_t oldcap = x->cap;
    void **slot = mm__calloc(cap, sizeof(*slot));
    if (!slot) return -ENOMEM;
    x->slot = slot;
    x->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i]) x->slot[idx_probe(x, idx_key(x, old[i]))] = old[i];
    mm__free(old);
    return 0;
}

int
mm__idx_insert(struct mm_idx *x, void *obj)
{
    /* At most half full (dense: 3/4): probes stay short, and one slot is
     * always empty (a probe ends). */
    if (x->dense ? (x->n + 1) * 4 > x->cap * 3 : (x->n + 1) * 2 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : IDX_MIN_CAP;
        if (cap < x->cap || idx_grow(x, cap) != 0) {
            /* Denser, while one slot stays empty. */
            if (x->n + 1 >= x->cap) return -ENOMEM;
        }
    }
    size_t i = idx_probe(x, idx_key(x, obj));
    if (x->slot[i]) return MM_EEXISTS;
    x->slot[i] = obj;
    x->n++;
    return 0;
}

int
mm__idx_remove(struct mm_idx *x, const void *obj)
{
    if (x->n == 0) return MM_ENOTFOUND;
    size_t mask = x->cap - 1, i = idx_probe(x, idx_key(x, obj)), j = i;
    if (x->slot[i] != obj) return MM_ENOTFOUND;
    /* Backward shift: an entry after the hole moves into it unless its
     * home lies cyclically in (hole, its slot]. */
    for (;;) {
        j = (j + 1) & mask;
        if (!x->slot[j]) break;
        size_t k = idx_home(x, idx_key(x, x->slot[j]));
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        x->slot[i] = x->slot[j];
        i = j;
    }
    x->slot[i] = NULL;
    x->n--;
    return 0;
}
