/* mdns.c — placeholder until mDNS discovery lands (see mdns.h). */
#include "mdns.h"

struct mm_mdns {
    int unused;
};

int
mm__mdns_new(struct mm_mdns **out, struct mm_cluster *c,
             const mm_node_config *cfg)
{
    (void)c;
    (void)cfg;
    *out = mm__calloc(1, sizeof(**out));
    return *out ? 0 : UV_ENOMEM;
}

void
mm__mdns_start(struct mm_mdns *m)
{
    (void)m;
}

void
mm__mdns_close(struct mm_mdns *m)
{
    (void)m;
}

void
mm__mdns_free(struct mm_mdns *m)
{
    mm__free(m);
}

int
mm__mdns_find_seed(const struct mm_keyring *kr, uint32_t timeout_ms,
                   char *out, size_t outlen)
{
    (void)kr;
    (void)timeout_ms;
    (void)out;
    (void)outlen;
    return MM_ENOTFOUND;
}
