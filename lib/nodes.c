/*
 * nodes.c — a node's tables: registered actor types, interned message
 * names (id = index + 1, shared by every shard) and node-wide events.
 */
#include "runtime.h"

void
mm__node_tables_init(mm_node *n)
{
    pthread_rwlock_init(&n->types_lock, NULL);
    pthread_mutex_init(&n->ev_lock, NULL);
}

void
mm__node_tables_release(mm_node *n)
{
    for (size_t i = 0; i < n->ntypes; i++) {
        mm__free(n->types[i]->by_id);
        mm__free(n->types[i]);
    }
    mm__free(n->types);
    n->types = NULL;
    n->ntypes = n->types_cap = 0;
    for (size_t i = 0; i < n->nnames; i++)
        mm__free(n->names[i]);
    mm__free(n->names);
    n->names = NULL;
    n->nnames = n->names_cap = 0;
    pthread_rwlock_destroy(&n->types_lock);
    pthread_mutex_destroy(&n->ev_lock);
}

/* ---- types and interned names -------------------------------------------- */

/*
 * The names array is followed, in the same block, by an index of 2 *
 * names_cap slots (a power of two) of ids, 0 when empty, by the name's
 * hash with linear probing: a message from the network is interned on
 * arrival, at the cost of a hash and one compare rather than a compare
 * per name interned before it.
 */
static uint32_t *
names_index(const mm_node *n)
{
    return (uint32_t *)(void *)(n->names + n->names_cap);
}

static size_t
name_slot(const char *name, size_t mask)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, as mm__hash_bytes */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 32)) & mask;
}

static void
index_put(mm_node *n, uint32_t id)
{
    uint32_t *ix = names_index(n);
    size_t mask = 2 * n->names_cap - 1;
    size_t i = name_slot(n->names[id - 1], mask);
    while (ix[i])
        i = (i + 1) & mask;
    ix[i] = id;
}

/* The last name this thread found, tried first with one compare (which
 * also makes it right for whichever node |n| is now): a run of messages
 * of one type, the usual case, skips the hash. */
static MM_TLS struct {
    const mm_node *n;
    uint32_t id;
} intern_last;

static __attribute__((noinline)) uint32_t
intern_probe(mm_node *n, const char *name)
{
    if (!n->names_cap) return 0;
    const uint32_t *ix = names_index(n);
    size_t mask = 2 * n->names_cap - 1;
    uint32_t id;
    for (size_t i = name_slot(name, mask); (id = ix[i]) != 0;
         i = (i + 1) & mask)
        if (strcmp(n->names[id - 1], name) == 0) {
            intern_last.n = n;
            intern_last.id = id;
            return id;
        }
    return 0;
}

static inline uint32_t
intern_find(mm_node *n, const char *name)
{
    uint32_t id = intern_last.id;
    if (intern_last.n == n && id && id <= n->nnames &&
        strcmp(n->names[id - 1], name) == 0)
        return id;
    return intern_probe(n, name);
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
        char **v =
            mm__realloc(n->names, cap * (sizeof(*v) + 2 * sizeof(uint32_t)));
        if (!v) return UV_ENOMEM;
        n->names = v;
        n->names_cap = cap;
        memset(names_index(n), 0, 2 * cap * sizeof(uint32_t));
        for (size_t i = 0; i < n->nnames; i++)
            index_put(n, (uint32_t)i + 1);
    }
    if (!(n->names[n->nnames] = mm__strdup(name))) return UV_ENOMEM;
    *id = (uint32_t)++n->nnames;
    index_put(n, *id);
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
    if (!name) return NULL;
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
    if (!t || !t->name || !*t->name || t->nhandlers > 65535) return MM_EINVAL;
    for (size_t i = 0; i < t->nhandlers; i++)
        if (!t->handlers[i].name || !t->handlers[i].fn) return MM_EINVAL;
    if (mm__node_type(n, t->name)) return MM_EEXISTS;
    struct mm_type_info *ti = mm__calloc(1, sizeof(*ti));
    if (!ti) return UV_ENOMEM;
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
        if (ids[i] > maxid) maxid = ids[i];
    }
    if (rc == 0) {
        ti->nby_id = maxid + 1;
        ti->by_id = mm__calloc(ti->nby_id, sizeof(*ti->by_id));
        if (!ti->by_id) rc = UV_ENOMEM;
    }
    if (rc == 0) {
        for (size_t i = 0; i < t->nhandlers; i++)
            if (!ti->by_id[ids[i]]) /* first handler of a name wins */
                ti->by_id[ids[i]] = (uint16_t)(i + 1);
        if (n->ntypes == n->types_cap) {
            size_t cap = n->types_cap ? n->types_cap * 2 : 16;
            struct mm_type_info **v = mm__realloc(n->types, cap * sizeof(*v));
            if (!v)
                rc = UV_ENOMEM;
            else {
                n->types = v;
                n->types_cap = cap;
            }
        }
        if (rc == 0) n->types[n->ntypes++] = ti;
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

/* ---- events -------------------------------------------------------------- */

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
    if (cb) cb(data, ev);
}
