/*
 * node.c — the composition root of the runtime: configuration, shards and
 * their threads, the receptionist and the network half, running, shutdown.
 */
#include "runtime.h"

#include "cluster.h"

#include <unistd.h>

void
mm_node_config_init(mm_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mdns = -1;
    cfg->shards = 1;
    cfg->mailbox_capacity = MM_MAILBOX_CAPACITY;
    cfg->mailbox_bytes = MM_MAILBOX_BYTES;
    cfg->default_timeout_ms = MM_DEFAULT_TIMEOUT_MS;
    cfg->max_frame = MM_MAX_FRAME;
}

static char **
strv_dup(const char *const *v, size_t n)
{
    char **out = mm__calloc(n + 1, sizeof(char *));
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = mm__strdup(v[i]))) {
            for (size_t j = 0; j < i; j++)
                mm__free(out[j]);
            mm__free(out);
            return NULL;
        }
    }
    return out;
}

static void
strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++)
        mm__free(*p);
    mm__free(v);
}

int
mm_node_new(mm_node **out, const mm_node_config *cfg_in)
{
    mm_node_config defaults;
    if (!cfg_in) {
        mm_node_config_init(&defaults);
        cfg_in = &defaults;
    }
    if (cfg_in->shards < 0 || cfg_in->shards > 64) return MM_EINVAL;
    mm_node *n = mm__calloc(1, sizeof(*n));
    if (!n) return UV_ENOMEM;
    int rc = UV_ENOMEM;
    n->cfg = *cfg_in;
    if (!n->cfg.mailbox_capacity) n->cfg.mailbox_capacity = MM_MAILBOX_CAPACITY;
    if (!n->cfg.mailbox_bytes) n->cfg.mailbox_bytes = MM_MAILBOX_BYTES;
    if (!n->cfg.default_timeout_ms)
        n->cfg.default_timeout_ms = MM_DEFAULT_TIMEOUT_MS;
    if (!n->cfg.max_frame) n->cfg.max_frame = MM_MAX_FRAME;
    mm__node_tables_init(n);
    char host[256];
    const char *name = cfg_in->name;
    if (!name || !*name) {
        if (gethostname(host, sizeof(host)) != 0) strcpy(host, "murmer");
        host[sizeof(host) - 1] = '\0';
        name = host;
    }
    if (!(n->name = mm__strdup(name))) goto fail;
    n->cfg.name = n->name;
    /* Strings the node keeps (the caller may free theirs). */
    n->join = strv_dup(cfg_in->join, cfg_in->njoin);
    n->tags = strv_dup(cfg_in->tags, cfg_in->ntags);
    if (!n->join || !n->tags) goto fail;
    n->cfg.join = (const char *const *)n->join;
    n->cfg.tags = (const char *const *)n->tags;
    n->cfg.listen = n->cfg.advertise = n->cfg.data_dir = NULL;
    n->cfg.cluster_key_file = NULL;
    /* A local-only node has a random identity and generation 1; a node
     * that listens loads its persistent identity in mm__cluster_new. */
    if ((rc = mm__random_bytes(n->id, sizeof(n->id))) != 0) goto fail;
    mm__hex(n->id_hex, n->id, sizeof(n->id));
    n->generation = 1;
    n->nshards = cfg_in->shards ? cfg_in->shards : 1;
    n->shards = mm__calloc((size_t)n->nshards, sizeof(*n->shards));
    if (!n->shards) {
        rc = UV_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < n->nshards; i++) {
        if ((rc = mm__shard_init(&n->shards[i], n, i)) != 0) {
            n->nshards = i;
            goto fail;
        }
    }
    if (cfg_in->listen) {
        rc = mm__cluster_new(&n->cluster, n, cfg_in);
        if (rc) goto fail;
        n->cluster_ops = &mm__cluster_ops;
    }
    /* The registry's oplog is keyed by the node's id and generation. */
    if ((rc = mm__recep_new(&n->recep, n)) != 0) goto fail;
    *out = n;
    return 0;
fail:
    mm_node_free(n);
    return rc;
}

/* ---- running
 * ---------------------------------------------------------------------- */

struct mm_shard *
mm__node_pick_shard(mm_node *n, int want)
{
    if (want >= 0 && want < n->nshards) return &n->shards[want];
    if (mm__cur_shard && mm__cur_shard->node == n) return mm__cur_shard;
    uint32_t i = atomic_fetch_add(&n->spawn_rr, 1);
    return &n->shards[i % (uint32_t)n->nshards];
}

static int
start_threads(mm_node *n, int first)
{
    for (int i = first; i < n->nshards; i++) {
        struct mm_shard *s = &n->shards[i];
        int rc = uv_thread_create(&s->thread, mm__shard_thread_main, s);
        if (rc) {
            mm_node_stop(n);
            return rc;
        }
        s->has_thread = 1;
    }
    return 0;
}

static void
node_cluster_start(void *arg)
{
    mm_node *n = arg;
    if (n->cluster && !atomic_load(&n->stopping)) mm__cluster_start(n->cluster);
}

int
mm_node_run(mm_node *n)
{
    if (n->running) return MM_EEXISTS;
    n->running = 1;
    if (n->cluster) mm_node_post(n, 0, node_cluster_start, n);
    int rc = start_threads(n, 1);
    if (rc == 0) mm__shard_thread_main(&n->shards[0]);
    mm_node_join(n);
    return rc;
}

int
mm_node_start_thread(mm_node *n)
{
    if (n->running) return MM_EEXISTS;
    n->running = 1;
    n->threaded = 1;
    if (n->cluster) mm_node_post(n, 0, node_cluster_start, n);
    return start_threads(n, 0);
}

void
mm__node_post_all(mm_node *n, int kind)
{
    for (int i = 0; i < n->nshards; i++) {
        mm_msg *m = mm__msg_alloc();
        MM_ASSERT(m != NULL);
        m->kind = (uint8_t)kind;
        if (mm__shard_post(&n->shards[i], m) != 0) mm_msg_free(m);
    }
}

/* The leave is over (acknowledged, or cut at the deadline): stop the
 * shards, once.  Shard 0. */
static void
node_left(void *arg)
{
    mm_node *n = arg;
    if (n->leave_over) return;
    n->leave_over = 1;
    mm__tmr_stop(&n->shards[0], &n->leave_tmr);
    mm__node_post_all(n, MSG_SHUTDOWN);
}

static void
node_leave_cut(struct mm_tmr *t)
{
    mm_node *n = mm__container_of(t, mm_node, leave_tmr);
    MM_LOG(MM_LOG_INFO, "node",
           "leave not acknowledged within %u ms: "
           "stopping anyway",
           MM_SHUTDOWN_MS);
    node_left(n);
}

static void
node_leave(void *arg)
{
    mm_node *n = arg;
    /* The deadline counts from mm_node_stop: a handler that held shard 0
     * meanwhile used part of it. */
    n->leave_tmr.fn = node_leave_cut;
    mm__tmr_start(&n->shards[0], &n->leave_tmr, n->stop_ms + MM_SHUTDOWN_MS);
    mm__cluster_leave(n->cluster, node_left, n);
}

/*
 * Shutdown: new sends fail at once (MM_ECLOSED), each shard's running
 * handler finishes and what is still queued is answered closed
 * (mm__actor_run); a cluster node then leaves gracefully, for at most
 * MM_SHUTDOWN_MS from here, and every shard stops its actors and closes.
 */
void
mm_node_stop(mm_node *n)
{
    if (atomic_exchange(&n->stopping, 1)) return;
    n->stop_ms = mm__now_ms();
    /* A cluster node leaves gracefully first (bounded), then shuts down. */
    if (n->cluster && n->running && mm_node_post(n, 0, node_leave, n) == 0)
        return;
    mm__node_post_all(n, MSG_SHUTDOWN);
}

int
mm_node_join(mm_node *n)
{
    for (int i = 0; i < n->nshards; i++) {
        struct mm_shard *s = &n->shards[i];
        if (s->has_thread) {
            uv_thread_join(&s->thread);
            s->has_thread = 0;
        }
    }
    return 0;
}

void
mm_node_free(mm_node *n)
{
    if (!n) return;
    if (n->shards) {
        if (!n->running) {
            /* Never ran: stop its actors here, on this thread. */
            for (int i = 0; i < n->nshards; i++) {
                struct mm_shard *s = &n->shards[i];
                mm__cur_shard = s;
                mm__actor_stop_all(s);
            }
            for (int i = 0; i < n->nshards; i++) {
                struct mm_shard *s = &n->shards[i];
                mm__cur_shard = s;
                mm__shard_drain_closed(s);
                mm__calls_fail_all(s);
                mm__msg_cache_free();
                mm__cur_shard = NULL;
            }
        }
        if (n->cluster) {
            mm__cluster_free(n->cluster); /* closes its handles if never ran */
            n->cluster = NULL;
        }
        for (int i = 0; i < n->nshards; i++)
            mm__shard_release(&n->shards[i]);
        mm__free(n->shards);
    }
    if (n->recep) mm__recep_free(n->recep);
    mm__node_tables_release(n);
    strv_free(n->join);
    strv_free(n->tags);
    mm__free(n->name);
    mm__free(n->addr);
    mm__free(n);
    mm__log_flush(MM_LOG_FLUSH_MS); /* its last lines, within a bound */
}

/* ---- accessors
 * ----------------------------------------------------------------------- */

const char *
mm_node_name(const mm_node *n)
{
    return n->name;
}

const char *
mm_node_id(const mm_node *n)
{
    return n->id_hex;
}

uint64_t
mm_node_generation(const mm_node *n)
{
    return n->generation;
}

uv_loop_t *
mm_node_loop(mm_node *n, int shard)
{
    if (shard < 0 || shard >= n->nshards) return NULL;
    return &n->shards[shard].loop;
}

int
mm_node_shards(const mm_node *n)
{
    return n->nshards;
}

const char *
mm_node_addr(const mm_node *n)
{
    return n->addr;
}

/* ---- work and posts
 * ------------------------------------------------------------------- */

struct node_work {
    uv_work_t req;
    void (*work)(void *);
    void (*after)(void *, int);
    void *data;
    mm_node *node;
};

static void
node_work_cb(uv_work_t *req)
{
    struct node_work *w = req->data;
    w->work(w->data);
}

static void
node_after_cb(uv_work_t *req, int status)
{
    struct node_work *w = req->data;
    if (w->after) w->after(w->data, status);
    mm__free(w);
}

static void
node_queue_on_shard(void *arg)
{
    struct node_work *w = arg;
    int rc = uv_queue_work(&mm__cur_shard->loop, &w->req, node_work_cb,
                           node_after_cb);
    if (rc) {
        if (w->after) w->after(w->data, rc);
        mm__free(w);
    }
}

int
mm_node_queue_work(mm_node *n, void (*work)(void *data),
                   void (*after)(void *data, int status), void *data)
{
    struct node_work *w = mm__calloc(1, sizeof(*w));
    if (!w) return UV_ENOMEM;
    w->req.data = w;
    w->work = work;
    w->after = after;
    w->data = data;
    w->node = n;
    if (mm__cur_shard && mm__cur_shard->node == n) {
        int rc = uv_queue_work(&mm__cur_shard->loop, &w->req, node_work_cb,
                               node_after_cb);
        if (rc) mm__free(w);
        return rc;
    }
    int rc = mm_node_post(n, 0, node_queue_on_shard, w);
    if (rc) mm__free(w);
    return rc;
}

int
mm_node_post(mm_node *n, int shard, void (*fn)(void *data), void *data)
{
    if (shard < 0 || shard >= n->nshards) return MM_EINVAL;
    mm_msg *m = mm__msg_alloc();
    if (!m) return UV_ENOMEM;
    m->kind = MSG_FN;
    m->fn = fn;
    m->fn_arg = data;
    int rc = mm__shard_post(&n->shards[shard], m);
    if (rc) mm_msg_free(m);
    return rc;
}
