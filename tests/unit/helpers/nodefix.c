/* nodefix.c — see nodefix.h. */
#include "helpers/nodefix.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers/testutil.h"

mm_node *
nodefix_new(const struct nodefix_opts *o)
{
    static const struct nodefix_opts none;
    if (!o) o = &none;
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    char data[512];
    if (o->dir) {
        snprintf(data, sizeof(data), "%s/%s", o->dir,
                 o->name ? o->name : "node");
        cfg.data_dir = data;
    }
    cfg.name = o->name;
    cfg.listen = o->listen;
    cfg.cluster_key_file = o->key;
    const char *seed[1] = {o->join};
    if (o->join) {
        cfg.join = seed;
        cfg.njoin = 1;
    } else if (o->njoin) {
        cfg.join = o->joins;
        cfg.njoin = o->njoin;
    }
    cfg.tags = o->tags;
    cfg.ntags = o->ntags;
    cfg.shards = o->shards;
    if (o->no_mdns) cfg.mdns = 0;
    mm_node *n = NULL;
    assert_int_equal(mm_node_new(&n, &cfg), 0);
    if (o->builtins) assert_int_equal(mm_node_register_builtins(n), 0);
    return n;
}

/* Heap-held: a shard that answers after the wait gave up still finds it. */
struct up_probe {
    sem_t ran;
};

static void
up_probe_fn(void *data)
{
    struct up_probe *p = data;
    sem_post(&p->ran);
}

void
nodefix_start(mm_node *n)
{
    assert_int_equal(mm_node_start_thread(n), 0);
    struct up_probe *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(sem_init(&p->ran, 0, 0), 0);
    int shards = mm_node_shards(n);
    for (int i = 0; i < shards; i++)
        assert_int_equal(mm_node_post(n, i, up_probe_fn, p), 0);
    for (int i = 0; i < shards; i++) {
        if (sem_wait_s(&p->ran, NODEFIX_UP_S) != 0)
            fail_msg("node %s: shard not running after %d s", mm_node_name(n),
                     NODEFIX_UP_S);
    }
    sem_destroy(&p->ran);
    free(p);
}

mm_node *
nodefix_up(const struct nodefix_opts *o)
{
    mm_node *n = nodefix_new(o);
    nodefix_start(n);
    return n;
}

void
nodefix_down(mm_node *n)
{
    if (!n) return;
    mm_node_stop(n);
    mm_node_join(n);
    mm_node_free(n);
}
