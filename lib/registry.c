/* registry.c — placeholder until registry dissemination lands. */
#include "registry.h"

struct mm_registry {
    int unused;
};

int
mm__registry_new(struct mm_registry **out, mm_node *n, struct mm_cluster *c)
{
    (void)n;
    (void)c;
    *out = mm__calloc(1, sizeof(**out));
    return *out ? 0 : UV_ENOMEM;
}

void
mm__registry_start(struct mm_registry *r)
{
    (void)r;
}

void
mm__registry_close(struct mm_registry *r)
{
    (void)r;
}

void
mm__registry_free(struct mm_registry *r)
{
    mm__free(r);
}

void
mm__registry_member_state(struct mm_registry *r,
                          const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                          int swim_state)
{
    (void)r;
    (void)id;
    (void)gen;
    (void)swim_state;
}
