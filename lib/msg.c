/*
 * msg.c — messages: constructors, accessors, lazy JSON, and a per-thread
 * free list so that the hot path of a shard does not call malloc.
 */
#include "runtime.h"

#include <cJSON.h>

#include "jsonv.h"

#define MSG_CACHE_MAX 4096

/* Only shard threads cache (their cache is freed when the shard ends). */
static MM_TLS mm_msg *msg_cache;
static MM_TLS size_t msg_cache_len;

mm_msg *
mm__msg_alloc(void)
{
    mm_msg *m;
    if (mm__cur_shard && msg_cache) {
        m = msg_cache;
        msg_cache = m->next;
        msg_cache_len--;
    } else {
        m = mm__malloc(sizeof(*m));
        if (!m) return NULL;
    }
    memset(m, 0, offsetof(mm_msg, tname));
    return m;
}

void
mm__msg_cache_free(void)
{
    while (msg_cache) {
        mm_msg *m = msg_cache;
        msg_cache = m->next;
        mm__free(m);
    }
    msg_cache_len = 0;
    mm__typed_thread_free();
}

static void
msg_release(mm_msg *m)
{
    if (mm__cur_shard && msg_cache_len < MSG_CACHE_MAX) {
        m->next = msg_cache;
        msg_cache = m;
        msg_cache_len++;
    } else {
        mm__free(m);
    }
}

void
mm_msg_free(mm_msg *m)
{
    if (!m) return;
    if (m->json) cJSON_Delete(m->json);
    if (m->content == MM_CONTENT_PTR) {
        if (m->dtor) m->dtor(m->data);
    } else if (m->data && !(m->flags & MSG_F_INL_DATA)) {
        mm__free(m->data);
    }
    if (m->flags & MSG_F_OWN_TYPE) mm__free((void *)m->type_name);
    msg_release(m);
}

static mm_msg *
msg_new_typed(const char *type)
{
    mm_msg *m = mm__msg_alloc();
    if (!m) return NULL;
    if (type) {
        size_t n = strlen(type);
        if (n < sizeof(m->tname)) {
            memcpy(m->tname, type, n + 1);
            m->type_name = m->tname;
            return m;
        }
        m->type_name = mm__strdup(type);
        if (!m->type_name) {
            msg_release(m);
            return NULL;
        }
        m->flags |= MSG_F_OWN_TYPE;
    }
    return m;
}

mm_msg *
mm_msg_new(const char *type)
{
    return msg_new_typed(type);
}

static mm_msg *
msg_new_bytes(const char *type, const void *data, size_t len, int content)
{
    mm_msg *m = msg_new_typed(type);
    if (!m) return NULL;
    m->content = (uint8_t)content;
    /* Keep a NUL after the bytes so JSON parsing needs no copy. */
    if (len < sizeof(m->inl)) {
        m->data = m->inl;
        m->flags |= MSG_F_INL_DATA;
    } else if (!(m->data = mm__malloc(len + 1))) {
        mm_msg_free(m);
        return NULL;
    }
    if (len) memcpy(m->data, data, len);
    ((char *)m->data)[len] = '\0';
    m->len = len;
    return m;
}

mm_msg *
mm_msg_new_json(const char *type, const char *json, size_t len)
{
    return msg_new_bytes(type, json, len, MM_CONTENT_JSON);
}

mm_msg *
mm_msg_new_raw(const char *type, const void *data, size_t len)
{
    return msg_new_bytes(type, data, len, MM_CONTENT_RAW);
}

mm_msg *
mm_msg_new_ptr(const char *type, void *ptr, void (*dtor)(void *))
{
    mm_msg *m = msg_new_typed(type);
    if (!m) return NULL;
    m->content = MM_CONTENT_PTR;
    m->data = ptr;
    m->dtor = dtor;
    return m;
}

mm_msg *
mm_msg_new_id(mm_node *n, uint32_t type_id, void *ptr, void (*dtor)(void *))
{
    mm_msg *m = mm__msg_alloc();
    if (!m) return NULL;
    m->type_id = type_id;
    /* Interned names live as long as the node. */
    pthread_rwlock_rdlock(&n->types_lock);
    m->type_name =
        type_id && type_id <= n->nnames ? n->names[type_id - 1] : NULL;
    pthread_rwlock_unlock(&n->types_lock);
    m->content = MM_CONTENT_PTR;
    m->data = ptr;
    m->dtor = dtor;
    return m;
}

mm_msg *
mm__msg_clone(const mm_msg *src)
{
    if (src->content == MM_CONTENT_PTR) return NULL;
    mm_msg *m;
    if (src->content == MM_CONTENT_NONE)
        m = msg_new_typed(src->type_name);
    else
        m = msg_new_bytes(src->type_name, src->data, src->len, src->content);
    if (!m) return NULL;
    m->type_id = src->type_id;
    m->timeout_ms = src->timeout_ms;
    return m;
}

mm_msg *
mm__msg_take(mm_msg *src)
{
    mm_msg *m = mm__msg_alloc();
    if (!m) return NULL;
    m->content = src->content;
    m->flags = src->flags & (MSG_F_OWN_TYPE | MSG_F_INL_DATA);
    m->type_id = src->type_id;
    m->type_name = src->type_name;
    if (src->type_name == src->tname) {
        memcpy(m->tname, src->tname, sizeof(m->tname));
        m->type_name = m->tname;
    }
    m->status = src->status;
    m->data = src->data;
    if (src->flags & MSG_F_INL_DATA) {
        memcpy(m->inl, src->inl, src->len + 1);
        m->data = m->inl;
    }
    m->len = src->len;
    m->dtor = src->dtor;
    m->json = src->json;
    m->json_err = src->json_err;
    src->flags &= (uint16_t) ~(MSG_F_OWN_TYPE | MSG_F_INL_DATA);
    src->type_name = NULL;
    src->content = MM_CONTENT_NONE;
    src->data = NULL;
    src->len = 0;
    src->dtor = NULL;
    src->json = NULL;
    src->json_err = 0;
    return m;
}

void
mm_msg_set_timeout(mm_msg *m, uint32_t ms)
{
    m->timeout_ms = ms;
}

const char *
mm_msg_type(const mm_msg *m)
{
    return m->type_name ? m->type_name : "";
}

int
mm_msg_content(const mm_msg *m)
{
    return m->content;
}

const void *
mm_msg_data(const mm_msg *m, size_t *len)
{
    if (m->content == MM_CONTENT_JSON || m->content == MM_CONTENT_RAW) {
        if (len) *len = m->len;
        return m->data;
    }
    if (len) *len = 0;
    return NULL;
}

void *
mm_msg_ptr(const mm_msg *m)
{
    return m->content == MM_CONTENT_PTR ? m->data : NULL;
}

int
mm__msg_json_ok(mm_msg *m, size_t *err_offset)
{
    if (m->content == MM_CONTENT_JSON && m->data && !m->json && !m->json_err &&
        mm__json_fast_valid(m->data, m->len))
        return 1;
    return mm_msg_json(m, err_offset) != NULL;
}

const struct cJSON *
mm_msg_json(mm_msg *m, size_t *err_offset)
{
    if (m->json) return m->json;
    if (m->content != MM_CONTENT_JSON || !m->data) {
        if (err_offset) *err_offset = 0;
        return NULL;
    }
    if (m->json_err) {
        if (err_offset) *err_offset = m->json_err - 1;
        return NULL;
    }
    const char *end = NULL;
    m->json = cJSON_ParseWithLengthOpts(m->data, m->len, &end, 0);
    if (m->json && end) {
        /* Trailing bytes other than white space are an error too. */
        const char *p = end, *lim = (const char *)m->data + m->len;
        while (p < lim && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p < lim) {
            cJSON_Delete(m->json);
            m->json = NULL;
            end = p;
        }
    }
    if (!m->json) {
        size_t off = end ? (size_t)(end - (const char *)m->data) : 0;
        if (off > m->len) off = m->len;
        m->json_err = off + 1;
        if (err_offset) *err_offset = off;
        return NULL;
    }
    return m->json;
}
