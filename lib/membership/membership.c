/* membership.c — placeholder until the SWIM glue lands (see membership.h). */
#include "membership.h"

struct mm_membership {
    int unused;
};

int
mm__membership_new(struct mm_membership **out, struct mm_cluster *c,
                   const mm_node_config *cfg)
{
    (void)c;
    (void)cfg;
    *out = mm__calloc(1, sizeof(**out));
    return *out ? 0 : UV_ENOMEM;
}

void
mm__membership_start(struct mm_membership *m)
{
    (void)m;
}

void
mm__membership_leave(struct mm_membership *m, void (*done)(void *data),
                     void *data)
{
    (void)m;
    done(data);
}

void
mm__membership_close(struct mm_membership *m)
{
    (void)m;
}

void
mm__membership_free(struct mm_membership *m)
{
    mm__free(m);
}
