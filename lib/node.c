/*
 * node.c — the composition root: configuration, shards and their threads,
 * actor types and interned message names, node-wide events, shutdown.
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
    cfg->default_timeout_ms = MM_DEFAULT_TIMEOUT_MS;
    cfg->max_frame = MM_MAX_FRAME;
}

static char **
strv_dup(const char *const *v, size_t n)
{
    char **out = mm__calloc(n + 1, sizeof(char *));
    if (!out)
        return NULL;
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
    if (!v)
        return;
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
    if (cfg_in->shards < 0 || cfg_in->shards > 64)
        return MM_EINVAL;
    mm_node *n = mm__calloc(1, sizeof(*n));
    if (!n)
        return UV_ENOMEM;
    int rc = UV_ENOMEM;
    n->cfg = *cfg_in;
    if (!n->cfg.mailbox_capacity)
        n->cfg.mailbox_capacity = MM_MAILBOX_CAPACITY;
    if (!n->cfg.default_timeout_ms)
        n->cfg.default_timeout_ms = MM_DEFAULT_TIMEOUT_MS;
    if (!n->cfg.max_frame)
        n->cfg.max_frame = MM_MAX_FRAME;
    pthread_rwlock_init(&n->types_lock, NULL);
    pthread_mutex_init(&n->ev_lock, NULL);
    char host[256];
    const char *name = cfg_in->name;
    if (!name || !*name) {
        if (gethostname(host, sizeof(host)) != 0)
            strcpy(host, "murmer");
        host[sizeof(host) - 1] = '\0';
        name = host;
    }
    if (!(n->name = mm__strdup(name)))
        goto fail;
    n->cfg.name = n->name;
    /* Strings the node keeps (the caller may free theirs). */
    n->join = strv_dup(cfg_in->join, cfg_in->njoin);
    n->tags = strv_dup(cfg_in->tags, cfg_in->ntags);
    if (!n->join || !n->tags)
        goto fail;
    n->cfg.join = (const char *const *)n->join;
    n->cfg.tags = (const char *const *)n->tags;
    n->cfg.listen = n->cfg.advertise = n->cfg.data_dir = NULL;
    n->cfg.cluster_key_file = NULL;
    /* A local-only node has a random identity and generation 1; a node
     * that listens loads its persistent identity in mm__cluster_new. */
    if ((rc = mm__random_bytes(n->id, sizeof(n->id))) != 0)
        goto fail;
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
        if (rc)
            goto fail;
        n->cluster_ops = &mm__cluster_ops;
    }
    /* The registry's oplog is keyed by the node's id and generation. */
    if ((rc = mm__recep_new(&n->recep, n)) != 0)
        goto fail;
    *out = n;
    return 0;
fail:
    mm_node_free(n);
    return rc;
}

/* ---- types and interned names --------------------------------------------------- */

static uint32_t
intern_find(mm_node *n, const char *name)
{
    for (size_t i = 0; i < n->nnames; i++)
        if (strcmp(n->names[i], name) == 0)
            return (uint32_t)i + 1;
    return 0;
}

int
mm__node_intern(mm_node *n, const char *name, int create, uint32_t *id)
{
    if (!create) {
        pthread_rwlock_rdlock(&n->types_lock);
        *id = intern_find(n, name);
        pthread_rwlock_unlock(&n->types_lock);
        return 0;
    }
    /* Callers that create hold the write lock already. */
    uint32_t found = intern_find(n, name);
    if (found) {
        *id = found;
        return 0;
    }
    if (n->nnames == n->names_cap) {
        size_t cap = n->names_cap ? n->names_cap * 2 : 32;
        char **v = mm__realloc(n->names, cap * sizeof(*v));
        if (!v)
            return UV_ENOMEM;
        n->names = v;
        n->names_cap = cap;
    }
    if (!(n->names[n->nnames] = mm__strdup(name)))
        return UV_ENOMEM;
    *id = (uint32_t)++n->nnames;
    return 0;
}

uint32_t
mm_node_msg_id(mm_node *n, const char *type)
{
    uint32_t id = 0;
    mm__node_intern(n, type, 0, &id);
    return id;
}

const struct mm_type_info *
mm__node_type(mm_node *n, const char *name)
{
    const struct mm_type_info *ti = NULL;
    if (!name)
        return NULL;
    pthread_rwlock_rdlock(&n->types_lock);
    for (size_t i = 0; i < n->ntypes; i++) {
        if (strcmp(n->types[i]->type->name, name) == 0) {
            ti = n->types[i];
            break;
        }
    }
    pthread_rwlock_unlock(&n->types_lock);
    return ti;
}

int
mm_node_register_type(mm_node *n, const mm_actor_type *t)
{
    if (!t || !t->name || !*t->name || t->nhandlers > 65535)
        return MM_EINVAL;
    for (size_t i = 0; i < t->nhandlers; i++)
        if (!t->handlers[i].name || !t->handlers[i].fn)
            return MM_EINVAL;
    if (mm__node_type(n, t->name))
        return MM_EEXISTS;
    struct mm_type_info *ti = mm__calloc(1, sizeof(*ti));
    if (!ti)
        return UV_ENOMEM;
    ti->type = t;
    int rc = 0;
    pthread_rwlock_wrlock(&n->types_lock);
    for (size_t i = 0; i < n->ntypes; i++) {
        if (strcmp(n->types[i]->type->name, t->name) == 0) {
            rc = MM_EEXISTS;
            goto out;
        }
    }
    uint32_t maxid = 0;
    uint32_t *ids = mm__calloc(t->nhandlers ? t->nhandlers : 1, sizeof(*ids));
    if (!ids) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < t->nhandlers && rc == 0; i++) {
        rc = mm__node_intern(n, t->handlers[i].name, 1, &ids[i]);
        if (ids[i] > maxid)
            maxid = ids[i];
    }
    if (rc == 0) {
        ti->nby_id = maxid + 1;
        ti->by_id = mm__calloc(ti->nby_id, sizeof(*ti->by_id));
        if (!ti->by_id)
            rc = UV_ENOMEM;
    }
    if (rc == 0) {
        for (size_t i = 0; i < t->nhandlers; i++)
            if (!ti->by_id[ids[i]]) /* first handler of a name wins */
                ti->by_id[ids[i]] = (uint16_t)(i + 1);
        if (n->ntypes == n->types_cap) {
            size_t cap = n->types_cap ? n->types_cap * 2 : 16;
            struct mm_type_info **v =
                mm__realloc(n->types, cap * sizeof(*v));
            if (!v)
                rc = UV_ENOMEM;
            else {
                n->types = v;
                n->types_cap = cap;
            }
        }
        if (rc == 0)
            n->types[n->ntypes++] = ti;
    }
    mm__free(ids);
out:
    pthread_rwlock_unlock(&n->types_lock);
    if (rc) {
        mm__free(ti->by_id);
        mm__free(ti);
    }
    return rc;
}

/* ---- events ---------------------------------------------------------------------- */

void
mm_node_set_event_cb(mm_node *n, mm_event_cb cb, void *data)
{
    pthread_mutex_lock(&n->ev_lock);
    n->ev_cb = cb;
    n->ev_data = data;
    pthread_mutex_unlock(&n->ev_lock);
}

void
mm__node_emit(mm_node *n, const mm_event *ev)
{
    pthread_mutex_lock(&n->ev_lock);
    mm_event_cb cb = n->ev_cb;
    void *data = n->ev_data;
    pthread_mutex_unlock(&n->ev_lock);
    if (cb)
        cb(data, ev);
}

/* ---- running ---------------------------------------------------------------------- */

struct mm_shard *
mm__node_pick_shard(mm_node *n, int want)
{
    if (want >= 0 && want < n->nshards)
        return &n->shards[want];
    if (mm__cur_shard && mm__cur_shard->node == n)
        return mm__cur_shard;
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
    if (n->cluster && !atomic_load(&n->stopping))
        mm__cluster_start(n->cluster);
}

int
mm_node_run(mm_node *n)
{
    if (n->running)
        return MM_EEXISTS;
    n->running = 1;
    if (n->cluster)
        mm_node_post(n, 0, node_cluster_start, n);
    int rc = start_threads(n, 1);
    if (rc == 0)
        mm__shard_thread_main(&n->shards[0]);
    mm_node_join(n);
    return rc;
}

int
mm_node_start_thread(mm_node *n)
{
    if (n->running)
        return MM_EEXISTS;
    n->running = 1;
    n->threaded = 1;
    if (n->cluster)
        mm_node_post(n, 0, node_cluster_start, n);
    return start_threads(n, 0);
}

void
mm__node_post_all(mm_node *n, int kind)
{
    for (int i = 0; i < n->nshards; i++) {
        mm_msg *m = mm__msg_alloc();
        MM_ASSERT(m != NULL);
        m->kind = (uint8_t)kind;
        if (mm__shard_post(&n->shards[i], m) != 0)
            mm_msg_free(m);
    }
}

static void
node_shutdown_all(void *arg)
{
    mm__node_post_all(arg, MSG_SHUTDOWN);
}

static void
node_leave(void *arg)
{
    mm_node *n = arg;
    mm__cluster_leave(n->cluster, node_shutdown_all, n);
}

void
mm_node_stop(mm_node *n)
{
    if (atomic_exchange(&n->stopping, 1))
        return;
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
    if (!n)
        return;
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
    if (n->recep)
        mm__recep_free(n->recep);
    for (size_t i = 0; i < n->ntypes; i++) {
        mm__free(n->types[i]->by_id);
        mm__free(n->types[i]);
    }
    mm__free(n->types);
    for (size_t i = 0; i < n->nnames; i++)
        mm__free(n->names[i]);
    mm__free(n->names);
    strv_free(n->join);
    strv_free(n->tags);
    mm__free(n->name);
    mm__free(n->addr);
    pthread_rwlock_destroy(&n->types_lock);
    pthread_mutex_destroy(&n->ev_lock);
    mm__free(n);
}

/* ---- accessors ----------------------------------------------------------------------- */

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
    if (shard < 0 || shard >= n->nshards)
        return NULL;
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

/* ---- work and posts ------------------------------------------------------------------- */

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
    if (w->after)
        w->after(w->data, status);
    mm__free(w);
}

static void
node_queue_on_shard(void *arg)
{
    struct node_work *w = arg;
    int rc = uv_queue_work(&mm__cur_shard->loop, &w->req, node_work_cb,
                           node_after_cb);
    if (rc) {
        if (w->after)
            w->after(w->data, rc);
        mm__free(w);
    }
}

int
mm_node_queue_work(mm_node *n, void (*work)(void *data),
                   void (*after)(void *data, int status), void *data)
{
    struct node_work *w = mm__calloc(1, sizeof(*w));
    if (!w)
        return UV_ENOMEM;
    w->req.data = w;
    w->work = work;
    w->after = after;
    w->data = data;
    w->node = n;
    if (mm__cur_shard && mm__cur_shard->node == n) {
        int rc = uv_queue_work(&mm__cur_shard->loop, &w->req, node_work_cb,
                               node_after_cb);
        if (rc)
            mm__free(w);
        return rc;
    }
    int rc = mm_node_post(n, 0, node_queue_on_shard, w);
    if (rc)
        mm__free(w);
    return rc;
}

int
mm_node_post(mm_node *n, int shard, void (*fn)(void *data), void *data)
{
    if (shard < 0 || shard >= n->nshards)
        return MM_EINVAL;
    mm_msg *m = mm__msg_alloc();
    if (!m)
        return UV_ENOMEM;
    m->kind = MSG_FN;
    m->fn = fn;
    m->fn_arg = data;
    int rc = mm__shard_post(&n->shards[shard], m);
    if (rc)
        mm_msg_free(m);
    return rc;
}
