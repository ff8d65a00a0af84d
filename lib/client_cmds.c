/*
 * client_cmds.c — the client's one-shot control commands (members,
 * timings, force-leave, lookup, oplog): the request bodies, and the
 * answers decoded into result arrays (one block per array, its strings
 * hanging off it, freed with mm_client_free_result).  The session, the
 * connection and the requests in flight are client.c's.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

#include "ckey.h"
#include "client_int.h"
#include "crypto.h"
#include "wire.h"

/* ---- results: one block per array, strings hang off it --------------------
 */

struct res_str {
    struct res_str *next;
    _Alignas(max_align_t) char s[];
};

struct res_hdr {
    struct res_str *strs;
    max_align_t align;
};

void *
mm__res_new(size_t size)
{
    struct res_hdr *h = mm__calloc(1, sizeof(*h) + (size ? size : 1));
    return h ? (void *)(h + 1) : NULL;
}

const char *
mm__res_strn(void *res, const char *s, size_t len)
{
    struct res_hdr *h = (struct res_hdr *)res - 1;
    struct res_str *r = mm__malloc(sizeof(*r) + len + 1);
    if (!r) return "";
    memcpy(r->s, s, len);
    r->s[len] = '\0';
    r->next = h->strs;
    h->strs = r;
    return r->s;
}

/* Zeroed, pointer-aligned memory that lives as long as |res|. */
void *
mm__res_alloc(void *res, size_t size)
{
    struct res_hdr *h = (struct res_hdr *)res - 1;
    struct res_str *r = mm__calloc(1, sizeof(*r) + size + 1);
    if (!r) return NULL;
    r->next = h->strs;
    h->strs = r;
    return r->s;
}

const char *
mm__res_str(void *res, const char *s)
{
    return s ? mm__res_strn(res, s, strlen(s)) : NULL;
}

MM_EXTERN void
mm_client_free_result(mm_client *c, void *result)
{
    (void)c;
    if (!result) return;
    struct res_hdr *h = (struct res_hdr *)result - 1;
    while (h->strs) {
        struct res_str *r = h->strs;
        h->strs = r->next;
        mm__free(r);
    }
    mm__free(h);
}

/*
 * Parses the array (or object) |key| of |resp| into a new result block of
 * |size|-byte elements: |item| fills element |k| of |res| from |it| and
 * returns 1, or 0 to skip |it| (element |k| is then filled again).  0
 * with |*out| (for mm_client_free_result) and |*n|, or UV_ENOMEM.
 */
typedef int (*list_item_fn)(void *res, size_t k, const cJSON *it);

static int
parse_list(const cJSON *resp, const char *key, size_t size, list_item_fn item,
           void **out, size_t *n)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(resp, key);
    size_t cnt = (size_t)cJSON_GetArraySize(arr);
    void *res = mm__res_new(cnt * size);
    if (!res) return UV_ENOMEM;
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (k == cnt) break;
        k += item(res, k, it) ? 1 : 0;
    }
    *n = k;
    *out = res;
    return 0;
}

/* The strings of the JSON array |arr| in |res|: NULL when there are none
 * or no memory, else the vector with |*n| set. */
static const char **
res_strv(void *res, const cJSON *arr, size_t *n)
{
    size_t cnt = (size_t)cJSON_GetArraySize(arr);
    const char **v = cnt ? mm__res_alloc(res, cnt * sizeof(char *)) : NULL;
    if (!v) return NULL;
    size_t j = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (j < cnt && cJSON_IsString(it))
            v[j++] = mm__res_str(res, it->valuestring);
    }
    *n = j;
    return v;
}

/* Sends |op| without a body and parses its answer's array |key|. */
static int
request_list(mm_client *c, uint16_t op, const char *key, size_t size,
             list_item_fn item, void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *resp;
    int rc = mm__client_request(c, op, NULL, mm__client_deadline(c), &resp);
    if (rc) return rc;
    rc = parse_list(resp, key, size, item, out, n);
    cJSON_Delete(resp);
    return rc;
}

/* ---- members, timings, force-leave
 * ---------------------------------------------- */

static int
member_item(void *res, size_t k, const cJSON *it)
{
    mm_member_info *m = res, *x = &m[k];
    x->name = mm__res_str(m, jstr(it, "name") ? jstr(it, "name") : "");
    x->id = mm__res_str(m, jstr(it, "id") ? jstr(it, "id") : "");
    x->addr = mm__res_str(m, jstr(it, "addr") ? jstr(it, "addr") : "");
    x->state = mm__res_str(m, jstr(it, "state") ? jstr(it, "state") : "");
    x->tags = mm__res_str(m, jstr(it, "tags") ? jstr(it, "tags") : "");
    x->generation = ju64(it, "generation");
    x->incarnation = ju64(it, "incarnation");
    x->confirmations = (unsigned)jnum(it, "confirmations", 0);
    x->last_ack_ms = (int64_t)jnum(it, "last_ack_ms", -1);
    x->rtt_us = (int64_t)jnum(it, "rtt_us", -1);
    return 1;
}

MM_EXTERN int
mm_client_members(mm_client *c, mm_member_info **out, size_t *n)
{
    void *res;
    int rc = request_list(c, MM_CTRL_MEMBERS, "members", sizeof(**out),
                          member_item, &res, n);
    *out = res;
    return rc;
}

static int
timing_item(void *res, size_t k, const cJSON *it)
{
    mm_timing *t = res;
    if (!it->string || !cJSON_IsNumber(it)) return 0;
    t[k].name = mm__res_str(t, it->string);
    t[k].value = it->valuedouble > 0 ? (uint64_t)it->valuedouble : 0;
    return 1;
}

MM_EXTERN int
mm_client_timings(mm_client *c, mm_timing **out, size_t *n)
{
    void *res;
    int rc = request_list(c, MM_CTRL_TIMINGS, "timings", sizeof(**out),
                          timing_item, &res, n);
    *out = res;
    return rc;
}

MM_EXTERN int
mm_client_force_leave(mm_client *c, const char *node, char **name, char **id,
                      char **was)
{
    *name = *id = *was = NULL;
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "node", node)) {
        cJSON_Delete(req);
        return UV_ENOMEM;
    }
    cJSON *resp;
    int rc = mm__client_request(c, MM_CTRL_FORCE_LEAVE, req,
                                mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    const char *v[3] = {jstr(resp, "name"), jstr(resp, "id"),
                        jstr(resp, "was")};
    char **o[3] = {name, id, was};
    for (int i = 0; i < 3; i++) {
        const char *t = v[i] ? v[i] : "";
        size_t l = strlen(t);
        *o[i] = mm__res_new(l + 1);
        if (*o[i]) memcpy(*o[i], t, l + 1);
    }
    cJSON_Delete(resp);
    if (!*name || !*id || !*was) {
        mm_client_free_result(c, *name);
        mm_client_free_result(c, *id);
        mm_client_free_result(c, *was);
        *name = *id = *was = NULL;
        return UV_ENOMEM;
    }
    return 0;
}

/* ---- SPAWN, STOP
 * ---------------------------------------------------------------------- */

/* Sends |req| as |op|; the answer's "node" and "endpoint" out. */
static int
spawn_stop_request(mm_client *c, uint16_t op, cJSON *req, char **node,
                   mm_endpoint *ep)
{
    *node = NULL;
    cJSON *resp;
    int rc = mm__client_request(c, op, req, mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    const char *nn = jstr(resp, "node") ? jstr(resp, "node") : "";
    const char *e = jstr(resp, "endpoint");
    if (ep && (!e || mm_endpoint_parse(ep, e) != 0)) rc = MM_EDECODE;
    if (rc == 0) {
        size_t l = strlen(nn);
        *node = mm__res_new(l + 1);
        if (*node)
            memcpy(*node, nn, l + 1);
        else
            rc = UV_ENOMEM;
    }
    cJSON_Delete(resp);
    return rc;
}

MM_EXTERN int
mm_client_spawn(mm_client *c, const mm_client_spawn_req *r, char **node,
                mm_endpoint *ep)
{
    *node = NULL;
    if (!r->type || !r->label) return MM_EINVAL;
    cJSON *req = cJSON_CreateObject();
    const char *names[] = {"type", "label",  "on",        "where",
                           "arg",  "policy", "visibility"};
    const char *vals[] = {r->type,     r->label,  r->on,        r->where,
                          r->arg_json, r->policy, r->visibility};
    for (size_t i = 0; req && i < sizeof(names) / sizeof(names[0]); i++)
        if (vals[i] && !cJSON_AddStringToObject(req, names[i], vals[i])) {
            cJSON_Delete(req);
            req = NULL;
        }
    if (!req) return UV_ENOMEM;
    return spawn_stop_request(c, MM_CTRL_SPAWN, req, node, ep);
}

MM_EXTERN int
mm_client_stop(mm_client *c, const char *label, char **node, mm_endpoint *ep)
{
    *node = NULL;
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "label", label)) {
        cJSON_Delete(req);
        return UV_ENOMEM;
    }
    return spawn_stop_request(c, MM_CTRL_STOP, req, node, ep);
}

/* ---- paged answers
 * ---------------------------------------------------------------------- */

/*
 * Sends |op| with |body| (changed: its "cursor") and follows the answers'
 * "cursor" to the last page: |*resp| is the first page with the items of
 * |arr| of every later one appended.  With |merge|, an item whose "id" is
 * the last one's continues it: its "ops" are appended, its "snapshot"
 * taken when the first had none (an OPLOG origin cut between pages).
 */
static int
request_pages(mm_client *c, uint16_t op, cJSON *body, const char *arr,
              int merge, uint64_t deadline, cJSON **resp)
{
    cJSON *acc = NULL;
    for (;;) {
        cJSON *page;
        int rc = mm__client_request(c, op, body, deadline, &page);
        if (rc) {
            cJSON_Delete(acc);
            return rc;
        }
        const char *cur = jstr(page, "cursor");
        char *next = cur ? mm__strdup(cur) : NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(page, "cursor");
        if (!acc) {
            acc = page;
        } else {
            cJSON *to = cJSON_GetObjectItemCaseSensitive(acc, arr);
            cJSON *from = cJSON_GetObjectItemCaseSensitive(page, arr);
            cJSON *it;
            while (cJSON_IsArray(to) && cJSON_IsArray(from) &&
                   (it = cJSON_DetachItemFromArray(from, 0)) != NULL) {
                cJSON *last =
                    cJSON_GetArrayItem(to, cJSON_GetArraySize(to) - 1);
                const char *a = last ? jstr(last, "id") : NULL;
                const char *b = jstr(it, "id");
                if (!merge || !a || !b || strcmp(a, b) != 0) {
                    cJSON_AddItemToArray(to, it);
                    continue;
                }
                cJSON *ops = cJSON_GetObjectItemCaseSensitive(last, "ops");
                cJSON *more = cJSON_GetObjectItemCaseSensitive(it, "ops");
                cJSON *o;
                while (cJSON_IsArray(ops) && cJSON_IsArray(more) &&
                       (o = cJSON_DetachItemFromArray(more, 0)) != NULL)
                    cJSON_AddItemToArray(ops, o);
                cJSON *snap = cJSON_GetObjectItemCaseSensitive(it, "snapshot");
                if (cJSON_IsObject(snap) &&
                    !cJSON_IsObject(
                        cJSON_GetObjectItemCaseSensitive(last, "snapshot")))
                    cJSON_ReplaceItemInObjectCaseSensitive(
                        last, "snapshot", cJSON_Duplicate(snap, 1));
                cJSON_Delete(it);
            }
            cJSON_Delete(page);
        }
        if (!next) break;
        cJSON_DeleteItemFromObjectCaseSensitive(body, "cursor");
        int ok = cJSON_AddStringToObject(body, "cursor", next) != NULL;
        mm__free(next);
        if (!ok) {
            cJSON_Delete(acc);
            return UV_ENOMEM;
        }
        deadline = mm__client_deadline(c); /* each page its own time */
    }
    *resp = acc;
    return 0;
}

/* ---- lookup
 * ---------------------------------------------------------------------- */

static int
actor_cmp(const void *x, const void *y)
{
    const mm_actor_info *a = x, *b = y;
    return strcmp(a->label, b->label);
}

static int
actor_item(void *res, size_t k, const cJSON *it)
{
    mm_actor_info *a = res, *x = &a[k];
    const char *label = jstr(it, "label");
    const char *ep = jstr(it, "endpoint");
    if (!label || !ep || mm_endpoint_parse(&x->ep, ep) != 0) return 0;
    x->label = mm__res_str(a, label);
    x->type = mm__res_str(a, jstr(it, "type"));
    x->node_name = mm__res_str(a, jstr(it, "node"));
    x->visibility = mm__res_str(
        a, jstr(it, "visibility") ? jstr(it, "visibility") : "internal");
    x->shadowed = cJSON_IsTrue(cJSON_GetObjectItem(it, "shadowed"));
    x->keys =
        res_strv(a, cJSON_GetObjectItemCaseSensitive(it, "keys"), &x->nkeys);
    return 1;
}

cJSON *
mm__client_lookup_body(const char *label, const char *prefix, const char *key,
                       int all, uint32_t wait_ms)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) return NULL;
    if (label) cJSON_AddStringToObject(req, "label", label);
    if (prefix) cJSON_AddStringToObject(req, "prefix", prefix);
    if (key) cJSON_AddStringToObject(req, "key", key);
    if (all) cJSON_AddTrueToObject(req, "all");
    if (wait_ms) cJSON_AddNumberToObject(req, "wait_ms", wait_ms);
    return req;
}

MM_EXTERN int
mm_client_lookup(mm_client *c, const char *label, const char *prefix,
                 const char *key, int all, uint32_t wait_ms,
                 mm_actor_info **out, size_t *n)
{
    return mm_client_lookup_typed(c, label, prefix, key, NULL, all, wait_ms,
                                  out, n);
}

MM_EXTERN int
mm_client_lookup_typed(mm_client *c, const char *label, const char *prefix,
                       const char *key, const char *type, int all,
                       uint32_t wait_ms, mm_actor_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *req = mm__client_lookup_body(label, prefix, key, all, wait_ms);
    if (req && type && !cJSON_AddStringToObject(req, "type", type)) {
        cJSON_Delete(req);
        req = NULL;
    }
    if (!req) return UV_ENOMEM;
    /* A wait gets its own time plus the usual margin for the answer. */
    uint64_t deadline = mm__client_deadline(c) + (label ? wait_ms : 0);
    cJSON *resp;
    int rc =
        request_pages(c, MM_CTRL_LOOKUP, req, "actors", 0, deadline, &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    void *res = NULL;
    rc = parse_list(resp, "actors", sizeof(**out), actor_item, &res, n);
    *out = res;
    cJSON_Delete(resp);
    /* Pages come in the seed's table order: labels sort them. */
    if (rc == 0 && !label && *n > 1) qsort(*out, *n, sizeof(**out), actor_cmp);
    if (rc == 0 && *n == 0) {
        mm_client_free_result(c, *out);
        *out = NULL;
        return MM_ENOTFOUND;
    }
    return rc;
}

/* ---- oplog
 * ---------------------------------------------------------------------- */

void
mm__client_parse_op(void *res, const cJSON *j, mm_oplog_op *op)
{
    op->seq = ju64(j, "seq");
    op->kind = mm__res_str(res, jstr(j, "kind") ? jstr(j, "kind") : "unknown");
    op->label = mm__res_str(res, jstr(j, "label"));
    op->type = mm__res_str(res, jstr(j, "type"));
    op->visibility = mm__res_str(res, jstr(j, "visibility"));
    op->key = mm__res_str(res, jstr(j, "key"));
    op->reason = mm__res_str(res, jstr(j, "reason"));
    const char *hlc = jstr(j, "hlc");
    op->hlc = hlc ? strtoull(hlc, NULL, 10) : ju64(j, "hlc");
}

static int
origin_item(void *res, size_t k, const cJSON *it)
{
    mm_oplog_origin *o = res, *x = &o[k];
    x->id = mm__res_str(o, jstr(it, "id") ? jstr(it, "id") : "");
    x->name = mm__res_str(o, jstr(it, "name"));
    x->generation = ju64(it, "generation");
    x->head = ju64(it, "head");
    const cJSON *snap = cJSON_GetObjectItemCaseSensitive(it, "snapshot");
    if (cJSON_IsObject(snap)) {
        x->has_snapshot = 1;
        x->snapshot_seq = ju64(snap, "seq");
        x->snapshot_entries = (size_t)ju64(snap, "entries");
    }
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(it, "ops");
    size_t nops = (size_t)cJSON_GetArraySize(ops);
    mm_oplog_op *opv = nops ? mm__res_alloc(o, nops * sizeof(*opv)) : NULL;
    if (opv) {
        size_t j = 0;
        const cJSON *oj;
        cJSON_ArrayForEach(oj, ops)
        {
            if (j < nops) mm__client_parse_op(o, oj, &opv[j++]);
        }
        x->ops = opv;
        x->nops = j;
    }
    return 1;
}

MM_EXTERN int
mm_client_oplog(mm_client *c, const char *origin, mm_oplog_origin **out,
                size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *req = cJSON_CreateObject();
    if (!req) return UV_ENOMEM;
    if (origin) cJSON_AddStringToObject(req, "origin", origin);
    cJSON *resp;
    int rc = request_pages(c, MM_CTRL_OPLOG, req, "origins", 1,
                           mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    void *res = NULL;
    rc = parse_list(resp, "origins", sizeof(**out), origin_item, &res, n);
    *out = res;
    cJSON_Delete(resp);
    return rc;
}

/* ---- observing: partitions, ping
 * ---------------------------------------------------------------------- */

/* What a gathering request asks the seed to wait for the members: about
 * half the client's own timeout, so that the answer still comes in it. */
static cJSON *
gather_body(mm_client *c)
{
    cJSON *req = cJSON_CreateObject();
    uint64_t now = mm__now_ms(), dl = mm__client_deadline(c);
    uint64_t ms = dl > now ? (dl - now) / 2 : 0;
    if (req) cJSON_AddNumberToObject(req, "timeout_ms", ms < 50 ? 50 : ms);
    return req;
}

static int
partition_item(void *res, size_t k, const cJSON *it)
{
    mm_partition_row *r = res, *x = &r[k];
    x->name = mm__res_str(r, jstr(it, "name") ? jstr(it, "name") : "");
    x->id = mm__res_str(r, jstr(it, "id") ? jstr(it, "id") : "");
    x->state = mm__res_str(r, jstr(it, "state") ? jstr(it, "state") : "");
    x->error = mm__res_str(r, jstr(it, "error"));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "view");
    size_t cnt = (size_t)cJSON_GetArraySize(v);
    mm_member_view *mv = cnt ? mm__res_alloc(r, cnt * sizeof(*mv)) : NULL;
    if (mv) {
        size_t j = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (j == cnt) break;
            mv[j].name = mm__res_str(r, jstr(e, "name") ? jstr(e, "name") : "");
            mv[j].id = mm__res_str(r, jstr(e, "id") ? jstr(e, "id") : "");
            mv[j].state =
                mm__res_str(r, jstr(e, "state") ? jstr(e, "state") : "");
            j++;
        }
        x->view = mv;
        x->nview = j;
    }
    if (!cJSON_IsArray(v) && !x->error) x->error = "no answer";
    return 1;
}

MM_EXTERN int
mm_client_partitions(mm_client *c, mm_partition_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *req = gather_body(c);
    if (!req) return UV_ENOMEM;
    cJSON *resp;
    int rc = mm__client_request(c, MM_CTRL_PARTITIONS, req,
                                mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    void *res = NULL;
    rc = parse_list(resp, "observers", sizeof(**out), partition_item, &res, n);
    *out = res;
    cJSON_Delete(resp);
    return rc;
}

static int
ping_item(void *res, size_t k, const cJSON *it)
{
    mm_ping_path *p = res, *x = &p[k];
    x->via = mm__res_str(p, jstr(it, "via") ? jstr(it, "via") : "");
    x->rtt_us = (int64_t)jnum(it, "rtt_us", -1);
    x->leg_us = (int64_t)jnum(it, "leg_us", -1);
    x->error = mm__res_str(p, jstr(it, "error"));
    if (x->rtt_us < 0 && !x->error) x->error = "no answer";
    return 1;
}

MM_EXTERN int
mm_client_ping(mm_client *c, const char *node, unsigned relays,
               const char **target, mm_ping_path **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    *target = NULL;
    cJSON *req = gather_body(c);
    if (!req || !cJSON_AddStringToObject(req, "node", node) ||
        !cJSON_AddNumberToObject(req, "relays", relays)) {
        cJSON_Delete(req);
        return UV_ENOMEM;
    }
    cJSON *resp;
    int rc =
        mm__client_request(c, MM_CTRL_PING, req, mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    void *res = NULL;
    rc = parse_list(resp, "paths", sizeof(**out), ping_item, &res, n);
    if (rc == 0)
        *target = mm__res_str(res, jstr(resp, "target") ? jstr(resp, "target")
                                                        : node);
    *out = res;
    cJSON_Delete(resp);
    return rc;
}

/* ---- top ------------------------------------------------------------- */

MM_EXTERN int
mm_client_top(mm_client *c, const char *prefix, size_t actors_max,
              mm_top_result **out)
{
    *out = NULL;
    cJSON *req = gather_body(c);
    if (!req ||
        (prefix && *prefix &&
         !cJSON_AddStringToObject(req, "prefix", prefix)) ||
        (actors_max &&
         !cJSON_AddNumberToObject(req, "actors_max", (double)actors_max))) {
        cJSON_Delete(req);
        return UV_ENOMEM;
    }
    cJSON *resp;
    int rc =
        mm__client_request(c, MM_CTRL_TOP, req, mm__client_deadline(c), &resp);
    cJSON_Delete(req);
    if (rc) return rc;
    char *js = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "nodes"))
                   ? cJSON_PrintUnformatted(resp)
                   : NULL;
    int bad = js == NULL && resp != NULL;
    cJSON_Delete(resp);
    if (!js) return bad ? MM_EDECODE : UV_ENOMEM;
    mm_top_result *r = mm__res_new(sizeof(*r));
    if (r) r->json = mm__res_str(r, js);
    cJSON_free(js);
    if (!r) return UV_ENOMEM;
    *out = r;
    return 0;
}

void
mm__client_parse_member(mm_member_info *res, const cJSON *it)
{
    member_item(res, 0, it);
}

/* ---- key rotation
 * ---------------------------------------------------------------------- */

/* The one cluster key of |path| into |key|.  0 or MM_EKEY with |err|. */
static int
key_file_read(const char *path, uint8_t key[MM_CKEY_LEN], char *err,
              size_t errlen)
{
    struct mm_keyring kr;
    int rc = mm__keyring_load_file(&kr, path, err, errlen);
    if (rc == 0 && mm__keyring_kind(&kr) != MM_KEY_CLUSTER) {
        snprintf(err, errlen, "%s holds a %s key: keys are cluster keys", path,
                 mm__key_kind_name(mm__keyring_kind(&kr)));
        rc = MM_EKEY;
    } else if (rc == 0 && kr.n != 1) {
        snprintf(err, errlen, "%s holds %zu keys: give a file with one key",
                 path, kr.n);
        rc = MM_EKEY;
    }
    if (rc == 0) memcpy(key, kr.keys[0], MM_CKEY_LEN);
    mm__keyring_release(&kr);
    return rc ? MM_EKEY : 0;
}

MM_EXTERN int
mm_key_file_fingerprint(const char *key_file, char out[17], char *err,
                        size_t errlen)
{
    uint8_t key[MM_CKEY_LEN];
    out[0] = '\0';
    int rc = key_file_read(key_file, key, err, errlen);
    if (rc == 0) mm__ckey_fingerprint(key, out);
    explicit_bzero(key, sizeof(key));
    return rc;
}

MM_EXTERN int
mm_client_keys(mm_client *c, const char *action, const char *key_file,
               mm_keys_result **out)
{
    *out = NULL;
    int list = strcmp(action, "list") == 0;
    char fp[MM_KEY_FP_LEN + 1] = "";
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "action", action)) {
        cJSON_Delete(req);
        return UV_ENOMEM;
    }
    if (!list) {
        uint8_t key[MM_CKEY_LEN];
        char err[512], b64[64];
        int rc = key_file ? key_file_read(key_file, key, err, sizeof(err))
                          : MM_EINVAL;
        if (rc) {
            mm__client_set_errtext(c, key_file ? err : "no key file given");
            cJSON_Delete(req);
            return rc;
        }
        mm__ckey_fingerprint(key, fp);
        b64[mm__base64_encode(b64, key, MM_CKEY_LEN)] = '\0';
        explicit_bzero(key, sizeof(key));
        cJSON *v = cJSON_AddStringToObject(req, "key", b64);
        explicit_bzero(b64, sizeof(b64));
        if (!v) {
            cJSON_Delete(req);
            return UV_ENOMEM;
        }
    }
    /* The seed waits up to MM_KEYS_WAIT_MS for the members. */
    uint64_t deadline =
        MM_MAX(mm__client_deadline(c), mm__now_ms() + MM_KEYS_WAIT_MS + 2000);
    cJSON *resp;
    int rc = mm__client_request(c, MM_CTRL_KEYS, req, deadline, &resp);
    cJSON *kv = cJSON_GetObjectItemCaseSensitive(req, "key");
    if (cJSON_IsString(kv))
        explicit_bzero(kv->valuestring, strlen(kv->valuestring));
    cJSON_Delete(req);
    if (rc) return rc;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(resp, "keys");
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(resp, "failed");
    size_t nk = cJSON_IsArray(keys) ? (size_t)cJSON_GetArraySize(keys) : 0;
    size_t nf = cJSON_IsArray(failed) ? (size_t)cJSON_GetArraySize(failed) : 0;
    mm_keys_result *r = mm__res_new(sizeof(*r));
    mm_keys_key *k = r && nk ? mm__res_alloc(r, nk * sizeof(*k)) : NULL;
    mm_keys_failure *f = r && nf ? mm__res_alloc(r, nf * sizeof(*f)) : NULL;
    if (!r || (nk && !k) || (nf && !f)) {
        mm_client_free_result(c, r);
        cJSON_Delete(resp);
        return UV_ENOMEM;
    }
    r->action = mm__res_str(r, action);
    r->fingerprint = mm__res_str(r, fp);
    r->applied = (unsigned)jnum(resp, "applied", 0);
    r->total = (unsigned)jnum(resp, "total", 0);
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, keys)
    {
        if (i >= nk) break;
        const char *s = jstr(it, "fingerprint");
        k[i].fingerprint = mm__res_str(r, s ? s : "");
        k[i].members = (unsigned)jnum(it, "members", 0);
        k[i].primary = (unsigned)jnum(it, "primary", 0);
        i++;
    }
    r->keys = k;
    r->nkeys = i;
    i = 0;
    cJSON_ArrayForEach(it, failed)
    {
        if (i >= nf) break;
        const char *n = jstr(it, "node"), *e = jstr(it, "error");
        f[i].node = mm__res_str(r, n ? n : "?");
        f[i].error = mm__res_str(r, e ? e : "?");
        i++;
    }
    r->failed = f;
    r->nfailed = i;
    cJSON_Delete(resp);
    *out = r;
    return 0;
}
