/*
 * endpoint.c — actor endpoints (node id, generation, actor id): equality
 * and the text form "<32 hex>/<generation>/<actor>".
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>

int
mm_endpoint_equal(const mm_endpoint *a, const mm_endpoint *b)
{
    return a->actor == b->actor && a->generation == b->generation &&
           memcmp(a->node, b->node, MM_NODE_ID_LEN) == 0;
}

char *
mm_endpoint_format(const mm_endpoint *ep, char *buf, size_t len)
{
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, ep->node, MM_NODE_ID_LEN);
    snprintf(buf, len, "%s/%llu/%llu", hex, (unsigned long long)ep->generation,
             (unsigned long long)ep->actor);
    return buf;
}

int
mm_endpoint_parse(mm_endpoint *out, const char *s)
{
    if (!s || strlen(s) < 2 * MM_NODE_ID_LEN + 4 ||
        s[2 * MM_NODE_ID_LEN] != '/')
        return MM_EINVAL;
    mm_endpoint ep;
    if (mm__unhex(ep.node, MM_NODE_ID_LEN, s) != 0) return MM_EINVAL;
    const char *p = s + 2 * MM_NODE_ID_LEN + 1;
    char *end;
    errno = 0;
    unsigned long long g = strtoull(p, &end, 10);
    if (end == p || *end != '/' || errno) return MM_EINVAL;
    p = end + 1;
    unsigned long long a = strtoull(p, &end, 10);
    if (end == p || *end != '\0' || errno) return MM_EINVAL;
    ep.generation = g;
    ep.actor = a;
    *out = ep;
    return 0;
}
