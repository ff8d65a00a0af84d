/*
 * session.c — the seed side of client sessions (docs/design.md, Client
 * sessions; docs/wire.md "Client sessions").
 *
 * A client (the murmer CLI) sends CTRL_REQ frames on its control stream:
 * u32 request id | u16 op | JSON body.  Each gets exactly one CTRL_RESP
 * with the same id: u16 status (0 or mm_err_to_wire) | JSON body, which
 * on an error is {"error": "text"}.  WATCH and OPLOG_FOLLOW then stream
 * CTRL_EVENT frames carrying the request id until UNWATCH names that id or
 * the connection goes.  Calls are not here: clients send INVOKE frames on
 * their own streams and net.c serves them.
 *
 * Everything runs on shard 0.  Bodies are JSON (cJSON): this is the
 * control plane, never a hot path.
 *
 * Bounds: a connection with more than MM_SESSION_SEND_HIGH bytes
 * unacknowledged gets `overloaded` for its requests, and its watch events
 * wait in the listing's bounded queue; an answer that does not fit is
 * replaced by a short `overloaded` one, and when even that does not fit
 * the connection is closed with MM_EOVERLOADED.  LOOKUP by prefix or key
 * and OPLOG answer a page at a time (a "cursor" asks for the next), each
 * built from a bounded amount of work.  Waiting lookups and subscriptions
 * are capped per connection and end with it.
 */
#include "session.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>

#include <cJSON.h>
#include <uv.h>

#include "buf.h"
#include "ckey.h"
#include "crypto.h"
#include "local.h"
#include "membership/membership.h"
#include "metrics.h"
#include "net.h"
#include "oplog.h"
#include "registry.h"
#include "transport/quic.h"
#include "wire.h"

#define LABEL_MAX 1024

struct sub { /* a WATCH, OPLOG_FOLLOW or MEMBERS_FOLLOW subscription */
    struct sub *next;
    struct mm_session *s;
    struct mm_qconn *conn;
    int64_t sid;
    uint32_t id;
    mm_listing *listing; /* WATCH */
    int follow;          /* OPLOG_FOLLOW: registry handle, 0 = none */
    int held;            /* WATCH: the listing is held (connection full) */
    int dead;            /* OPLOG_FOLLOW ended by the seed: unlink it */
    char origin[2 * MM_NODE_ID_LEN + 1]; /* OPLOG_FOLLOW: id prefix filter */
    int members;                         /* MEMBERS_FOLLOW */
};

struct waiter { /* a LOOKUP waiting for its label */
    struct waiter *next;
    struct mm_session *s;
    struct mm_qconn *conn; /* NULL once the connection went */
    int64_t sid;
    uint32_t id;
    int all;
    char *label;
    char *type; /* a typed LOOKUP's; NULL: any */
};

struct keyop;
struct session_keys {      /* KEYS: key rotation */
    struct mm_keyring *kr; /* the node's, changed in place; NULL: none */
    const char *dir;       /* the data dir it is saved in */
    struct mm_net *net;
    struct keyop *ops; /* steps under way */
    size_t nops;
};

struct mm_session {
    mm_node *n;
    struct session_keys keys;
    struct mm_membership *m; /* the member list */
    struct sub *subs;
    struct waiter *waiters;
    int stopped;
    struct mm_shard *home; /* shard 0: the retry timer's */
    struct mm_tmr retry;   /* held and dead subscriptions */
    struct {
        uint64_t overloaded; /* requests answered `overloaded` */
        uint64_t closed;     /* connections closed: even that did not fit */
        uint64_t held;       /* watch deliveries held */
        uint64_t refused;    /* requests the session's key may not make */
    } st;
    /* Observing (PARTITIONS, PING, PROBE): requests answered later and the
     * questions they asked other members. */
    struct mm_net *net;
    struct gather *gathers;
    size_t ngathers;
    struct oreq *oreqs;
    uint32_t next_oreq;
    struct mm_top *tops;    /* TOP, NODE_STATS: this node's own numbers */
    struct mm_local *local; /* the local control socket, or NULL */
};

static void retry_arm(struct mm_session *s);

/* ---- connections ------------------------------------------------------------
 *
 * A request comes over a client's QUIC connection or over the local
 * control socket (local.c), whose connections pass through here as the
 * same opaque pointer: only these four functions look behind it.  A local
 * peer (the node's user or root) holds the rights of the cluster key.
 */

static int
conn_reply(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           const uint8_t *frame, size_t len)
{
    struct mm_lconn *lc = mm__local_conn(s->local, conn);
    return lc ? mm__local_send(lc, frame, len)
              : mm__net_reply(conn, sid, frame, len);
}

static size_t
conn_unacked(struct mm_session *s, struct mm_qconn *conn)
{
    struct mm_lconn *lc = mm__local_conn(s->local, conn);
    return lc ? mm__local_queued(lc) : mm__quic_conn_unacked(conn);
}

static void
conn_close(struct mm_session *s, struct mm_qconn *conn, int err)
{
    struct mm_lconn *lc = mm__local_conn(s->local, conn);
    if (lc)
        mm__local_conn_close(lc);
    else
        mm__quic_conn_close(conn, err);
}

static int
conn_key_kind(struct mm_session *s, struct mm_qconn *conn)
{
    return mm__local_conn(s->local, conn) ? MM_KEY_CLUSTER
                                          : mm__quic_conn_key_kind(conn);
}

/* ---- framing ----------------------------------------------------------------
 */

static int
send_raw(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint8_t type,
         uint32_t id, uint16_t code, const char *js)
{
    struct mm_wire_ctrl m;
    m.id = id;
    m.code = code;
    m.body = (const uint8_t *)js;
    m.body_len = strlen(js);
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_ctrl_append(&b, type, &m);
    if (rc == 0) rc = conn_reply(s, conn, sid, b.data, b.len);
    mm__buf_release(&b);
    return rc;
}

/* 1 when |conn| has more unacknowledged than a session may add to. */
static int
conn_full(struct mm_session *s, struct mm_qconn *conn)
{
    return conn_unacked(s, conn) > MM_SESSION_SEND_HIGH;
}

/* The last resort: nothing, not even a short answer, fits. */
static void
session_give_up(struct mm_session *s, struct mm_qconn *conn)
{
    s->st.closed++;
    MM_LOG(MM_LOG_WARN, "session",
           "closing a client connection: %zu bytes unacknowledged, an "
           "answer does not fit",
           conn_unacked(s, conn));
    conn_close(s, conn, MM_EOVERLOADED);
}

/*
 * Sends one frame; an answer (CTRL_RESP) that does not fit the connection
 * now is replaced by a short `overloaded` one, and when even that does not
 * fit, or an END event does not, the connection is closed.  0 or the error
 * of the first send.
 */
static int
session_send(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
             uint8_t type, uint32_t id, uint16_t code, const cJSON *body)
{
    char *js = body ? cJSON_PrintUnformatted(body) : NULL;
    size_t len = js ? strlen(js) : 2;
    int rc = send_raw(s, conn, sid, type, id, code, js ? js : "{}");
    cJSON_free(js);
    int answer =
        type == MM_WIRE_CTRL_RESP || (type == MM_WIRE_CTRL_EVENT && code == 0);
    if (!answer || (rc != MM_EOVERLOADED && rc != MM_EINVAL)) return rc;
    if (type == MM_WIRE_CTRL_RESP) {
        char text[160];
        snprintf(text, sizeof(text),
                 "{\"error\":\"overloaded: an answer of %zu bytes does "
                 "not fit this connection now (%zu bytes unacknowledged)\"}",
                 len, conn_unacked(s, conn));
        s->st.overloaded++;
        int rc2 = send_raw(s, conn, sid, type, id,
                           mm_err_to_wire(MM_EOVERLOADED), text);
        if (rc2 != MM_EOVERLOADED) return rc;
    }
    session_give_up(s, conn);
    return rc;
}

static void
session_ok(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           uint32_t id, const cJSON *body)
{
    session_send(s, conn, sid, MM_WIRE_CTRL_RESP, id, 0, body);
}

static void session_err(struct mm_session *s, struct mm_qconn *conn,
                        int64_t sid, uint32_t id, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
session_err(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
            uint32_t id, int err, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "error", text);
    if (err == MM_EOVERLOADED) s->st.overloaded++;
    session_send(s, conn, sid, MM_WIRE_CTRL_RESP, id, mm_err_to_wire(err), o);
    cJSON_Delete(o);
}

/* Per-connection counts, for the caps. */
static size_t conn_waiters(struct mm_session *s, struct mm_qconn *conn);
static size_t conn_subs(struct mm_session *s, struct mm_qconn *conn);

/* ---- helpers
 * ------------------------------------------------------------------ */

static const char *
json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
json_bool(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsTrue(v);
}

static double
json_num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void
json_u64(cJSON *o, const char *name, uint64_t v)
{
    cJSON_AddNumberToObject(o, name, (double)v);
}

static void
addr_format(const struct mm_swim_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->family == 4) {
        inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, (unsigned)a->port);
    } else if (a->family == 6) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)a->port);
    } else {
        snprintf(buf, len, "-");
    }
}

const char *
mm_member_state_name(int state)
{
    if (state < MM_SWIM_ALIVE || state > MM_SWIM_LEFT) return NULL;
    return mm__swim_state_name(state);
}

static const char *
visibility_name(int v)
{
    return v == MM_VIS_PUBLIC    ? "public"
           : v == MM_VIS_PRIVATE ? "private"
                                 : "internal";
}

/* The member name of node |id| ("" when unknown). */
struct name_find {
    const uint8_t *id;
    const char *prefix; /* or a hex id prefix */
    char name[MM_SWIM_NAME_MAX];
    char hex[2 * MM_NODE_ID_LEN + 1];
    int state;
    int found;
};

static int
name_find_cb(void *data, const struct mm_swim_member *mb)
{
    struct name_find *f = data;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
    int hit = f->id ? memcmp(mb->rec->id, f->id, MM_NODE_ID_LEN) == 0
                    : strcmp(mb->rec->name, f->prefix) == 0 ||
                          strcmp(hex, f->prefix) == 0;
    if (!hit) return 0;
    snprintf(f->name, sizeof(f->name), "%s", mb->rec->name);
    memcpy(f->hex, hex, sizeof(hex));
    f->state = mb->state;
    f->found = 1;
    return 1;
}

static void
node_name_of(struct mm_session *s, const uint8_t id[MM_NODE_ID_LEN], char *out,
             size_t len)
{
    out[0] = '\0';
    if (memcmp(id, s->n->id, MM_NODE_ID_LEN) == 0) {
        snprintf(out, len, "%s", s->n->name);
        return;
    }
    struct mm_membership *m = s->m;
    if (!m) return;
    struct name_find f;
    memset(&f, 0, sizeof(f));
    f.id = id;
    mm__membership_foreach(m, name_find_cb, &f);
    if (f.found) snprintf(out, len, "%s", f.name);
}

/* ---- MEMBERS, TIMINGS, FORCE_LEAVE
 * ------------------------------------------- */

static int
members_cb(void *data, const struct mm_swim_member *mb)
{
    cJSON *arr = data;
    if (mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone)
        return 0; /* clients never appear */
    cJSON *o = cJSON_CreateObject();
    if (!o) return 0;
    char hex[2 * MM_NODE_ID_LEN + 1], addr[80];
    mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
    addr_format(&mb->rec->addr, addr, sizeof(addr));
    cJSON_AddStringToObject(o, "name", mb->rec->name);
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddStringToObject(o, "addr", addr);
    cJSON_AddStringToObject(o, "state", mm__swim_state_name(mb->state));
    json_u64(o, "generation", mb->rec->generation);
    json_u64(o, "incarnation", mb->rec->incarnation);
    cJSON_AddStringToObject(o, "tags", mb->rec->tags);
    cJSON_AddNumberToObject(o, "confirmations", mm__swim_confirmations(mb));
    uint64_t now = mm__now_ms();
    if (mb->is_self)
        cJSON_AddNumberToObject(o, "last_ack_ms", 0);
    else if (mb->last_ack && mb->last_ack <= now)
        cJSON_AddNumberToObject(o, "last_ack_ms", (double)(now - mb->last_ack));
    else
        cJSON_AddNumberToObject(o, "last_ack_ms", -1);
    if (mb->last_ack && !mb->is_self)
        cJSON_AddNumberToObject(o, "rtt_us", (double)mb->rtt_ms * 1000.0);
    else
        cJSON_AddNumberToObject(o, "rtt_us", -1);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

static void
op_members(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           uint32_t id)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "members") : NULL;
    if (!arr) {
        cJSON_Delete(doc);
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    struct mm_membership *m = s->m;
    if (m) {
        mm__membership_foreach(m, members_cb, arr);
    } else { /* no membership yet: the seed alone */
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "name", s->n->name);
            cJSON_AddStringToObject(o, "id", s->n->id_hex);
            cJSON_AddStringToObject(o, "addr", s->n->addr ? s->n->addr : "-");
            cJSON_AddStringToObject(o, "state", "alive");
            json_u64(o, "generation", s->n->generation);
            json_u64(o, "incarnation", 0);
            cJSON_AddStringToObject(o, "tags", "");
            cJSON_AddNumberToObject(o, "confirmations", 0);
            cJSON_AddNumberToObject(o, "last_ack_ms", 0);
            cJSON_AddNumberToObject(o, "rtt_us", -1);
            cJSON_AddItemToArray(arr, o);
        }
    }
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
}

static void
op_timings(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           uint32_t id)
{
    struct mm_membership *m = s->m;
    if (!m) {
        session_err(s, conn, sid, id, MM_ENOTFOUND,
                    "this node has no membership timings");
        return;
    }
    char buf[4096];
    int len = mm__membership_timings(m, buf, sizeof(buf));
    if (len < 0) {
        session_err(s, conn, sid, id, len, "timings: %s", mm_strerror(len));
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *t = doc ? cJSON_AddObjectToObject(doc, "timings") : NULL;
    /* "key: value\n" lines, in order. */
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); t && line;
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        unsigned long long v = strtoull(colon + 1, NULL, 10);
        cJSON_AddNumberToObject(t, line, (double)v);
    }
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
}

static void
op_force_leave(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
               uint32_t id, const cJSON *req)
{
    const char *node = json_str(req, "node");
    if (!node || !*node) {
        session_err(s, conn, sid, id, MM_EINVAL, "force-leave needs a node");
        return;
    }
    struct mm_membership *m = s->m;
    if (!m) {
        session_err(s, conn, sid, id, MM_ENOTFOUND, "no member '%s'", node);
        return;
    }
    struct name_find f;
    memset(&f, 0, sizeof(f));
    f.prefix = node;
    mm__membership_foreach(m, name_find_cb, &f);
    if (!f.found) {
        session_err(s, conn, sid, id, MM_ENOTFOUND, "no member '%s'", node);
        return;
    }
    int rc = mm__membership_force_leave(m, node);
    if (rc == MM_EALIVE) {
        session_err(s, conn, sid, id, MM_EALIVE,
                    "'%s' is alive: force-leave is only for a suspect or "
                    "failed member (stop the node to make it leave)",
                    node);
        return;
    }
    if (rc == MM_EINVAL) {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "'%s' is the seed itself; stop it instead", node);
        return;
    }
    if (rc) {
        session_err(s, conn, sid, id, rc, "force-leave '%s': %s", node,
                    mm_strerror(rc));
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    if (doc) {
        cJSON_AddStringToObject(doc, "name", f.name);
        cJSON_AddStringToObject(doc, "id", f.hex);
        cJSON_AddStringToObject(doc, "was", mm__swim_state_name(f.state));
    }
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
}

/* ---- LOOKUP
 * ---------------------------------------------------------------------- */

struct lookup_acc {
    struct mm_session *s;
    cJSON *arr;
    int all;
    size_t n;
    size_t hidden;     /* private entries left out */
    const char *type;  /* a typed LOOKUP: only this type; NULL: any */
    const char *other; /* by label: the winner's type when it differs */
};

static cJSON *
actor_json(struct mm_session *s, const char *label, const mm_endpoint *ep,
           const char *type, int visibility, const char *const *keys,
           size_t nkeys, int shadowed)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char eps[96], node[MM_SWIM_NAME_MAX];
    cJSON_AddStringToObject(o, "label", label);
    cJSON_AddStringToObject(o, "endpoint",
                            mm_endpoint_format(ep, eps, sizeof(eps)));
    if (type && *type) cJSON_AddStringToObject(o, "type", type);
    node_name_of(s, ep->node, node, sizeof(node));
    if (node[0]) cJSON_AddStringToObject(o, "node", node);
    cJSON_AddStringToObject(o, "visibility", visibility_name(visibility));
    cJSON *k = cJSON_AddArrayToObject(o, "keys");
    for (size_t i = 0; k && i < nkeys; i++)
        cJSON_AddItemToArray(k, cJSON_CreateString(keys[i]));
    cJSON_AddBoolToObject(o, "shadowed", shadowed);
    return o;
}

static int
lookup_entry_cb(void *data, const struct mm_registry_entry *e)
{
    struct lookup_acc *a = data;
    if (e->visibility == MM_VIS_PRIVATE) { /* never leaves the node */
        a->hidden++;
        return 0;
    }
    if (!e->winner && !a->all) return 0;
    if (a->type && strcmp(e->type ? e->type : "", a->type) != 0) {
        if (e->winner && !a->other) a->other = e->type ? e->type : "";
        return 0;
    }
    cJSON *o = actor_json(a->s, e->label, &e->ep, e->type, e->visibility,
                          e->keys, e->nkeys, !e->winner);
    if (o) {
        cJSON_AddItemToArray(a->arr, o);
        a->n++;
    }
    return 0;
}

/* A paged request's "limit" and "cursor". */
struct page_req {
    size_t limit;
    struct mm_registry_cursor cur;  /* LOOKUP */
    int found;                      /* LOOKUP: earlier pages gave entries */
    uint8_t origin[MM_NODE_ID_LEN]; /* OPLOG: where the page starts */
    uint64_t seq;
    int paged; /* a cursor was given */
};

/* 0, or MM_EINVAL for a limit or cursor that is not one. */
static int
page_parse(const cJSON *req, int oplog, struct page_req *p)
{
    memset(p, 0, sizeof(*p));
    p->limit = MM_SESSION_PAGE_MAX;
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
    if (lim) {
        if (!cJSON_IsNumber(lim) || lim->valuedouble < 1) return MM_EINVAL;
        if (lim->valuedouble < MM_SESSION_PAGE_MAX)
            p->limit = (size_t)lim->valuedouble;
    }
    const char *c = json_str(req, "cursor");
    if (!c)
        return cJSON_GetObjectItemCaseSensitive(req, "cursor") ? MM_EINVAL : 0;
    p->paged = 1;
    char tail;
    if (!oplog) {
        uint64_t nb, next;
        int found;
        if (sscanf(c, "%" SCNx64 ".%" SCNx64 ".%d%c", &nb, &next, &found,
                   &tail) != 3 ||
            nb == 0)
            return MM_EINVAL;
        p->cur.nbuckets = nb;
        p->cur.next = next;
        p->found = found != 0;
        return 0;
    }
    const char *dot = strchr(c, '.');
    if (!dot || dot - c != 2 * MM_NODE_ID_LEN) return MM_EINVAL;
    for (size_t i = 0; i < MM_NODE_ID_LEN; i++) {
        unsigned v;
        if (sscanf(c + 2 * i, "%2x", &v) != 1) return MM_EINVAL;
        p->origin[i] = (uint8_t)v;
    }
    if (sscanf(dot + 1, "%" SCNu64 "%c", &p->seq, &tail) != 1) return MM_EINVAL;
    return 0;
}

/*
 * Answers a lookup from the current view; MM_ENOTFOUND when empty.  By
 * label: every claimant (a handful); by prefix or key: one page of |pg|,
 * with a "cursor" for the next when the walk is not over.
 */
static int
lookup_answer(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
              uint32_t id, const char *label, const char *prefix,
              const char *key, int all, const char *type,
              const struct page_req *pg)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "actors") : NULL;
    if (!arr) {
        cJSON_Delete(doc);
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return 0;
    }
    struct lookup_acc a = {s, arr, all, 0, 0, type, NULL};
    if (label) {
        mm__registry_claimants(s->n, label, lookup_entry_cb, &a);
        /* The view may lag the local table by a moment: trust mm_lookup
         * (but a private registration is not to be shown). */
        mm_endpoint ep;
        if (a.n == 0 && a.hidden == 0 && !a.other &&
            mm_lookup_typed(s->n, label, type, &ep) == 0) {
            cJSON *o =
                actor_json(s, label, &ep, type, MM_VIS_INTERNAL, NULL, 0, 0);
            if (o) {
                cJSON_AddItemToArray(arr, o);
                a.n++;
            }
        }
    } else {
        struct mm_registry_cursor cur = pg->cur;
        int over = mm__registry_page(s->n, prefix, key, &cur, pg->limit,
                                     MM_SESSION_PAGE_BYTES,
                                     MM_SESSION_PAGE_WORK, lookup_entry_cb, &a);
        if (over < 0) {
            cJSON_Delete(doc);
            session_err(s, conn, sid, id, MM_EINVAL, "bad cursor");
            return MM_EINVAL;
        }
        if (!over || pg->found) { /* more to come, or some came */
            if (!over) {
                char c[64];
                snprintf(c, sizeof(c), "%" PRIx64 ".%" PRIx64 ".%d",
                         cur.nbuckets, cur.next, pg->found || a.n > 0);
                cJSON_AddStringToObject(doc, "cursor", c);
            }
            session_ok(s, conn, sid, id, doc);
            cJSON_Delete(doc);
            return 0;
        }
    }
    if (a.n == 0) {
        cJSON_Delete(doc);
        if (label && a.other) {
            session_err(s, conn, sid, id, MM_ETYPE_MISMATCH,
                        "'%s' is an actor of type '%s', not '%s'", label,
                        *a.other ? a.other : "unknown", type);
            return MM_ETYPE_MISMATCH;
        }
        if (label)
            session_err(s, conn, sid, id, MM_ENOTFOUND,
                        "no actor with label '%s'", label);
        else if (key)
            session_err(s, conn, sid, id, MM_ENOTFOUND,
                        "no actor checked in under key '%s'", key);
        else
            session_err(s, conn, sid, id, MM_ENOTFOUND,
                        "no actor with label prefix '%s'",
                        prefix ? prefix : "");
        return MM_ENOTFOUND;
    }
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
    return 0;
}

static void
waiter_unlink(struct mm_session *s, struct waiter *w)
{
    struct waiter **pp = &s->waiters;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp) *pp = w->next;
}

static void
waiter_cb(void *data, int status, const mm_endpoint *ep)
{
    struct waiter *w = data;
    struct mm_session *s = w->s;
    (void)ep;
    waiter_unlink(s, w);
    if (w->conn && !s->stopped) {
        if (status == 0)
            lookup_answer(s, w->conn, w->sid, w->id, w->label, NULL, NULL,
                          w->all, w->type, NULL);
        else if (status == MM_ETIMEOUT)
            session_err(s, w->conn, w->sid, w->id, MM_ENOTFOUND,
                        "no actor with label '%s' (waited)", w->label);
        else
            session_err(s, w->conn, w->sid, w->id, status, "lookup '%s': %s",
                        w->label, mm_strerror(status));
    }
    mm__free(w->label);
    mm__free(w->type);
    mm__free(w);
}

static void
op_lookup(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
          const cJSON *req)
{
    const char *label = json_str(req, "label");
    const char *prefix = json_str(req, "prefix");
    const char *key = json_str(req, "key");
    const char *type = json_str(req, "type");
    int all = json_bool(req, "all");
    double wait = json_num(req, "wait_ms");
    if (label && (!*label || strlen(label) > LABEL_MAX)) {
        session_err(s, conn, sid, id, MM_EINVAL, "bad label");
        return;
    }
    if (!label && !prefix && !key) {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "lookup needs a label, a prefix or a key");
        return;
    }
    struct page_req pg;
    if (page_parse(req, 0, &pg) != 0) {
        session_err(s, conn, sid, id, MM_EINVAL, "bad limit or cursor");
        return;
    }
    mm_endpoint ep;
    if (!label || wait <= 0 || mm_lookup(s->n, label, &ep) == 0) {
        lookup_answer(s, conn, sid, id, label, prefix, key, all, type, &pg);
        return;
    }
    if (conn_waiters(s, conn) >= MM_SESSION_WAITERS_MAX) {
        session_err(s, conn, sid, id, MM_EOVERLOADED,
                    "overloaded: %u lookups of this connection are waiting "
                    "already",
                    (unsigned)MM_SESSION_WAITERS_MAX);
        return;
    }
    uint32_t wait_ms =
        wait > MM_SESSION_WAIT_MAX_MS ? MM_SESSION_WAIT_MAX_MS : (uint32_t)wait;
    struct waiter *w = mm__calloc(1, sizeof(*w));
    if (!w || !(w->label = mm__strdup(label)) ||
        (type && !(w->type = mm__strdup(type)))) {
        if (w) mm__free(w->label);
        mm__free(w);
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    w->s = s;
    w->conn = conn;
    w->sid = sid;
    w->id = id;
    w->all = all;
    w->next = s->waiters;
    s->waiters = w;
    int rc = mm_lookup_wait(s->n, label, wait_ms, waiter_cb, w);
    if (rc) {
        waiter_unlink(s, w);
        mm__free(w->label);
        mm__free(w->type);
        mm__free(w);
        session_err(s, conn, sid, id, rc, "lookup: %s", mm_strerror(rc));
    }
}

/* ---- subscriptions: WATCH, OPLOG_FOLLOW, UNWATCH
 * ------------------------------------ */

static void
sub_end(struct sub *sb)
{
    if (sb->listing) mm_listing_close(sb->listing);
    if (sb->follow) mm__registry_unfollow(sb->s->n, sb->follow);
    mm__free(sb);
}

static struct sub *
sub_new(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id)
{
    struct sub *sb = mm__calloc(1, sizeof(*sb));
    if (!sb) return NULL;
    sb->s = s;
    sb->conn = conn;
    sb->sid = sid;
    sb->id = id;
    return sb;
}

static void
watch_event_cb(void *data, const mm_listing_event *ev)
{
    struct sub *sb = data;
    struct mm_session *s = sb->s;
    if (s->stopped || !sb->conn) return;
    if (conn_full(sb->s, sb->conn)) {
        /* Not taken: it waits in the listing's queue, which overflows
         * into a RESYNC if the client stays behind. */
        mm__listing_hold(sb->listing);
        sb->held = 1;
        s->st.held++;
        retry_arm(s);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    if (ev->label) cJSON_AddStringToObject(o, "label", ev->label);
    if (ev->kind == MM_LISTING_ADDED || ev->kind == MM_LISTING_REMOVED) {
        char eps[96];
        cJSON_AddStringToObject(o, "endpoint",
                                mm_endpoint_format(&ev->ep, eps, sizeof(eps)));
    }
    if (ev->kind == MM_LISTING_REMOVED)
        cJSON_AddNumberToObject(o, "reason", ev->reason);
    int rc = session_send(s, sb->conn, sb->sid, MM_WIRE_CTRL_EVENT, sb->id,
                          (uint16_t)ev->kind, o);
    cJSON_Delete(o);
    if (rc == MM_EOVERLOADED) { /* the node's cap: hold this one too */
        mm__listing_hold(sb->listing);
        sb->held = 1;
        s->st.held++;
        retry_arm(s);
    }
}

/* A subscription cap: 1 (answered) when |conn| has its fill. */
static int
subs_full(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id)
{
    if (conn_subs(s, conn) < MM_SESSION_SUBS_MAX) return 0;
    session_err(s, conn, sid, id, MM_EOVERLOADED,
                "overloaded: this connection holds %u subscriptions already",
                (unsigned)MM_SESSION_SUBS_MAX);
    return 1;
}

static void
op_watch(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
         const cJSON *req)
{
    for (struct sub *x = s->subs; x; x = x->next)
        if (x->conn == conn && x->id == id) {
            session_err(s, conn, sid, id, MM_EEXISTS,
                        "request id %" PRIu32 " is already a subscription", id);
            return;
        }
    if (subs_full(s, conn, sid, id)) return;
    struct sub *sb = sub_new(s, conn, sid, id);
    if (!sb) {
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.key = json_str(req, "key");
    o.prefix = json_str(req, "prefix");
    o.shard = 0;
    /* Answer first: the backfill follows as events. */
    session_ok(s, conn, sid, id, NULL);
    int rc =
        mm__listing_open_shared(&sb->listing, s->n, &o, watch_event_cb, sb);
    if (rc) {
        mm__free(sb);
        cJSON *e = cJSON_CreateObject();
        if (e) cJSON_AddStringToObject(e, "error", mm_strerror(rc));
        /* An END event (code 0) with the error: the stream is over. */
        session_send(s, conn, sid, MM_WIRE_CTRL_EVENT, id, 0, e);
        cJSON_Delete(e);
        return;
    }
    sb->next = s->subs;
    s->subs = sb;
}

static int
hex_prefix_match(const uint8_t id[MM_NODE_ID_LEN], const char *prefix)
{
    if (!prefix[0]) return 1;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, id, MM_NODE_ID_LEN);
    return strncmp(hex, prefix, strlen(prefix)) == 0;
}

static const char *
op_kind_name(int kind)
{
    switch (kind) {
    case MM_OPLOG_REGISTER:
        return "register";
    case MM_OPLOG_CHECK_IN:
        return "check_in";
    case MM_OPLOG_REMOVE:
        return "remove";
    case MM_OPLOG_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

static void
json_add_strn(cJSON *o, const char *name, const char *s, size_t len)
{
    char buf[LABEL_MAX + 1];
    if (len > LABEL_MAX) len = LABEL_MAX;
    memcpy(buf, s, len);
    buf[len] = '\0';
    cJSON_AddStringToObject(o, name, buf);
}

/* One decoded op as JSON (docs/wire.md "oplog op"). */
static cJSON *
op_json(const struct mm__oplog_op *op)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    json_u64(o, "seq", op->seq);
    cJSON_AddStringToObject(o, "kind", op_kind_name(op->kind));
    switch (op->kind) {
    case MM_OPLOG_REGISTER:
        json_add_strn(o, "label", op->label, op->label_len);
        json_add_strn(o, "type", op->type, op->type_len);
        cJSON_AddStringToObject(o, "visibility",
                                visibility_name(op->visibility));
        char hlc[24]; /* a string: exact beyond 2^53 */
        snprintf(hlc, sizeof(hlc), "%" PRIu64, op->hlc);
        cJSON_AddStringToObject(o, "hlc", hlc);
        break;
    case MM_OPLOG_CHECK_IN:
        json_add_strn(o, "label", op->label, op->label_len);
        json_add_strn(o, "key", op->key, op->key_len);
        break;
    case MM_OPLOG_REMOVE:
        json_add_strn(o, "label", op->label, op->label_len);
        cJSON_AddStringToObject(o, "reason", mm_reason_name(op->reason));
        break;
    case MM_OPLOG_SNAPSHOT:
        cJSON_AddNumberToObject(o, "entries", op->nentries);
        break;
    default:
        break;
    }
    return o;
}

/*
 * A follow (OPLOG_FOLLOW, MEMBERS_FOLLOW) whose connection holds more than
 * it may queue has no queue to fall behind in: it ends with the reason,
 * counted as overloaded, and 1 is returned.  0 while it keeps up.
 */
static int
sub_fell_behind(struct mm_session *s, struct sub *sb)
{
    if (!conn_full(s, sb->conn)) return 0;
    sb->dead = 1;
    s->st.overloaded++;
    cJSON *e = cJSON_CreateObject();
    if (e)
        cJSON_AddStringToObject(e, "error",
                                "overloaded: the follower fell behind");
    session_send(s, sb->conn, sb->sid, MM_WIRE_CTRL_EVENT, sb->id, 0, e);
    cJSON_Delete(e);
    retry_arm(s);
    return 1;
}

static void
follow_cb(void *data, const uint8_t *rec, size_t len)
{
    struct sub *sb = data;
    struct mm_session *s = sb->s;
    struct mm__oplog_op op;
    if (s->stopped || !sb->conn || sb->dead ||
        mm__oplog_op_decode(&op, rec, len) != 0)
        return;
    if (sub_fell_behind(s, sb)) return;
    if (!hex_prefix_match(op.origin, sb->origin)) return;
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, op.origin, MM_NODE_ID_LEN);
    cJSON_AddStringToObject(o, "origin", hex);
    json_u64(o, "generation", op.generation);
    cJSON *j = op_json(&op);
    if (j) cJSON_AddItemToObject(o, "op", j);
    session_send(s, sb->conn, sb->sid, MM_WIRE_CTRL_EVENT, sb->id, 1, o);
    cJSON_Delete(o);
}

static int
origin_ok(const char *origin)
{
    size_t n = strlen(origin);
    if (n > 2 * MM_NODE_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((origin[i] >= '0' && origin[i] <= '9') ||
              (origin[i] >= 'a' && origin[i] <= 'f')))
            return 0;
    return 1;
}

static void
op_oplog_follow(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
                uint32_t id, const cJSON *req)
{
    const char *origin = json_str(req, "origin");
    if (origin && !origin_ok(origin)) {
        session_err(s, conn, sid, id, MM_EINVAL, "bad origin '%s'", origin);
        return;
    }
    if (subs_full(s, conn, sid, id)) return;
    struct sub *sb = sub_new(s, conn, sid, id);
    if (!sb) {
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    if (origin) snprintf(sb->origin, sizeof(sb->origin), "%s", origin);
    session_ok(s, conn, sid, id, NULL);
    int h = mm__registry_follow(s->n, follow_cb, sb);
    if (h <= 0) {
        mm__free(sb);
        return;
    }
    sb->follow = h;
    sb->next = s->subs;
    s->subs = sb;
}

static void
op_unwatch(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           uint32_t id, const cJSON *req)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "sub");
    if (!cJSON_IsNumber(v)) {
        session_err(s, conn, sid, id, MM_EINVAL, "unwatch needs \"sub\"");
        return;
    }
    uint32_t target = (uint32_t)v->valuedouble;
    struct sub **pp = &s->subs;
    while (*pp) {
        struct sub *sb = *pp;
        if (sb->conn == conn && sb->id == target) {
            *pp = sb->next;
            sub_end(sb);
            session_ok(s, conn, sid, id, NULL);
            return;
        }
        pp = &sb->next;
    }
    session_err(s, conn, sid, id, MM_ENOTFOUND, "no subscription %" PRIu32,
                target);
}

/* ---- OPLOG
 * ------------------------------------------------------------------------------
 */

struct oplog_acc {
    cJSON *ops; /* of the origin being walked */
    cJSON *cur;
    size_t left;   /* records this page still takes */
    size_t bytes;  /* about what it holds */
    uint64_t last; /* the seq of the last record taken */
};

static int
oplog_rec_cb(void *data, const uint8_t *rec, size_t len)
{
    struct oplog_acc *a = data;
    struct mm__oplog_op op;
    if (a->left == 0 || a->bytes >= MM_SESSION_PAGE_BYTES) return 1;
    a->left--;
    a->bytes += 2 * len + 64;
    if (mm__oplog_op_decode(&op, rec, len) != 0) return 0;
    a->last = op.seq;
    if (op.kind == MM_OPLOG_SNAPSHOT) {
        cJSON *snap = cJSON_CreateObject();
        if (snap) {
            json_u64(snap, "seq", op.seq);
            cJSON_AddNumberToObject(snap, "entries", op.nentries);
            cJSON_ReplaceItemInObjectCaseSensitive(a->cur, "snapshot", snap);
        }
        return 0;
    }
    cJSON *j = op_json(&op);
    if (j) cJSON_AddItemToArray(a->ops, j);
    return 0;
}

struct origin_list {
    const char *prefix;
    struct mm_registry_origin *v;
    size_t n, cap;
};

/* Copies the origins out: the registry's lock is held during the walk,
 * so the ops are read afterwards, one origin at a time. */
static int
origin_collect_cb(void *data, const struct mm_registry_origin *o)
{
    struct origin_list *l = data;
    if (l->prefix && !hex_prefix_match(o->id, l->prefix)) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct mm_registry_origin *v = mm__realloc(l->v, cap * sizeof(*v));
        if (!v) return 1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *o;
    return 0;
}

static void
op_oplog(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
         const cJSON *req)
{
    const char *origin = json_str(req, "origin");
    if (origin && !origin_ok(origin)) {
        session_err(s, conn, sid, id, MM_EINVAL, "bad origin '%s'", origin);
        return;
    }
    struct page_req pg;
    if (page_parse(req, 1, &pg) != 0) {
        session_err(s, conn, sid, id, MM_EINVAL, "bad limit or cursor");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "origins") : NULL;
    if (!arr) {
        cJSON_Delete(doc);
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    struct origin_list l = {origin, NULL, 0, 0};
    mm__registry_origins(s->n, origin_collect_cb, &l);
    /* A page: the origins from the cursor's on, their records from the
     * cursor's seq, up to |pg.limit| records; an origin cut short comes
     * again at the head of the next page with the rest of its ops. */
    struct oplog_acc a = {NULL, NULL, pg.limit, 0, 0};
    for (size_t i = 0; i < l.n; i++) {
        const struct mm_registry_origin *o = &l.v[i];
        int cmp = pg.paged ? memcmp(o->id, pg.origin, MM_NODE_ID_LEN) : 1;
        if (cmp < 0) continue;
        if (a.left == 0 || a.bytes >= MM_SESSION_PAGE_BYTES) {
            char c[2 * MM_NODE_ID_LEN + 24];
            mm__hex(c, o->id, MM_NODE_ID_LEN);
            snprintf(c + 2 * MM_NODE_ID_LEN, 24, ".1");
            cJSON_AddStringToObject(doc, "cursor", c);
            break;
        }
        cJSON *jo = cJSON_CreateObject();
        if (!jo) break;
        cJSON_AddItemToArray(arr, jo);
        char hex[2 * MM_NODE_ID_LEN + 1], name[MM_SWIM_NAME_MAX];
        mm__hex(hex, o->id, MM_NODE_ID_LEN);
        node_name_of(s, o->id, name, sizeof(name));
        cJSON_AddStringToObject(jo, "id", hex);
        if (name[0]) cJSON_AddStringToObject(jo, "name", name);
        json_u64(jo, "generation", o->generation);
        json_u64(jo, "head", o->seq);
        cJSON_AddNullToObject(jo, "snapshot"); /* replaced by a record */
        a.ops = cJSON_AddArrayToObject(jo, "ops");
        a.cur = jo;
        a.last = 0;
        uint64_t from = cmp == 0 ? pg.seq : 1;
        if (a.ops) mm__registry_ops(s->n, o->id, from, oplog_rec_cb, &a);
        if (a.left == 0 || a.bytes >= MM_SESSION_PAGE_BYTES) {
            /* Full: the next page goes on after the last record taken. */
            char c[2 * MM_NODE_ID_LEN + 24];
            mm__hex(c, o->id, MM_NODE_ID_LEN);
            snprintf(c + 2 * MM_NODE_ID_LEN, 24, ".%" PRIu64,
                     a.last ? a.last + 1 : from + 1);
            cJSON_AddStringToObject(doc, "cursor", c);
            break;
        }
    }
    mm__free(l.v);
    if (origin && !pg.paged && cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(doc);
        session_err(s, conn, sid, id, MM_ENOTFOUND, "no origin '%s'", origin);
        return;
    }
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
}

/* ---- observing: MEMBERS_FOLLOW, PARTITIONS, PING, ECHO, PROBE ---------
 *
 * MEMBERS_FOLLOW streams the member changes membership reports.  The
 * others are answered later: the node asks other members over its member
 * connections (CTRL_REQ frames like a client's; their CTRL_RESP come back
 * to on_ctrl_resp) and answers once every one answered or its bounded wait
 * is over.  A "gather" is such a request; an "oreq" one question it asked.
 */

enum { G_PARTITIONS = 1, G_PING, G_PROBE, G_RELAY, G_TOP, G_NODE_STATS };

struct gather {
    struct gather *next;
    struct mm_session *s;
    int kind;
    struct mm_qconn *conn; /* to answer; NULL once it went */
    int64_t sid;
    uint32_t id;
    struct mm_tmr tmr;
    size_t want, got;
    cJSON *doc; /* the answer being built */
    /* TOP, NODE_STATS: this node's numbers, being gathered (top.c) */
    struct mm_top *top;
    cJSON *top_slot;
    size_t top_bytes; /* actor rows' byte budget */
};

struct oreq {
    struct oreq *next;
    struct gather *g;
    uint32_t id;
    uint8_t peer[MM_NODE_ID_LEN];
    uint64_t sent_ns;
    cJSON *slot; /* in g->doc: what the answer fills */
};

static const char *
member_event_name(int state, int was)
{
    if (was == MM_SWIM_NONE) return "join";
    if (state == was || state == MM_SWIM_NONE) return "updated";
    return mm__swim_state_name(state); /* alive, suspect, ..., reaped */
}

/* A member changed: one event to every MEMBERS_FOLLOW subscription. */
static void
member_change_cb(void *data, const struct mm_swim_member *mb, int was)
{
    struct mm_session *s = data;
    if (s->stopped || mb->rec->role == MM_WIRE_ROLE_CLIENT) return;
    cJSON *o = NULL;
    for (struct sub *sb = s->subs; sb; sb = sb->next) {
        if (!sb->members || !sb->conn || sb->dead) continue;
        if (sub_fell_behind(s, sb)) continue;
        if (!o) {
            o = cJSON_CreateObject();
            if (!o) return;
            char hex[2 * MM_NODE_ID_LEN + 1], addr[80];
            mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
            addr_format(&mb->rec->addr, addr, sizeof(addr));
            cJSON_AddStringToObject(o, "event",
                                    member_event_name(mb->state, was));
            cJSON_AddStringToObject(o, "name", mb->rec->name);
            cJSON_AddStringToObject(o, "id", hex);
            cJSON_AddStringToObject(o, "addr", addr);
            cJSON_AddStringToObject(o, "state", mm__swim_state_name(mb->state));
            cJSON_AddStringToObject(o, "was", mm__swim_state_name(was));
            json_u64(o, "generation", mb->rec->generation);
            json_u64(o, "incarnation", mb->rec->incarnation);
            cJSON_AddStringToObject(o, "tags", mb->rec->tags);
        }
        session_send(s, sb->conn, sb->sid, MM_WIRE_CTRL_EVENT, sb->id, 1, o);
    }
    cJSON_Delete(o);
}

static void
op_members_follow(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
                  uint32_t id)
{
    if (!s->m) {
        session_err(s, conn, sid, id, MM_ENOTFOUND,
                    "this node has no membership");
        return;
    }
    if (subs_full(s, conn, sid, id)) return;
    struct sub *sb = sub_new(s, conn, sid, id);
    if (!sb) {
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return;
    }
    sb->members = 1;
    session_ok(s, conn, sid, id, NULL);
    /* Code 2: in place, every change from here on follows. */
    session_send(s, conn, sid, MM_WIRE_CTRL_EVENT, id, 2, NULL);
    sb->next = s->subs;
    s->subs = sb;
}

static uint64_t
gather_ms(const cJSON *req)
{
    double t = json_num(req, "timeout_ms");
    if (t <= 0) return MM_SESSION_GATHER_MS;
    return t > MM_SESSION_GATHER_MAX_MS ? MM_SESSION_GATHER_MAX_MS
                                        : (uint64_t)t;
}

static void gather_tmr_cb(struct mm_tmr *t);

/* A new gather answering |conn|'s request |id| within |ms|, or NULL
 * (answered: overloaded or out of memory). */
static struct gather *
gather_new(struct mm_session *s, int kind, struct mm_qconn *conn, int64_t sid,
           uint32_t id, uint64_t ms)
{
    if (s->ngathers >= MM_SESSION_GATHERS_MAX) {
        session_err(s, conn, sid, id, MM_EOVERLOADED,
                    "overloaded: this node is already waiting on %u "
                    "gathering requests",
                    (unsigned)MM_SESSION_GATHERS_MAX);
        return NULL;
    }
    struct gather *g = mm__calloc(1, sizeof(*g));
    if (g) g->doc = cJSON_CreateObject();
    if (!g || !g->doc) {
        mm__free(g);
        session_err(s, conn, sid, id, UV_ENOMEM, "out of memory");
        return NULL;
    }
    g->s = s;
    g->kind = kind;
    g->conn = conn;
    g->sid = sid;
    g->id = id;
    g->tmr.fn = gather_tmr_cb;
    g->next = s->gathers;
    s->gathers = g;
    s->ngathers++;
    mm__tmr_start(s->home, &g->tmr, mm__now_ms() + ms);
    return g;
}

/* Asks |peer| |op| with |body| for |g|; the answer fills |slot|.  0 or an
 * error (nothing asked). */
static int
oreq_send(struct gather *g, const uint8_t peer[MM_NODE_ID_LEN], uint16_t op,
          const cJSON *body, cJSON *slot)
{
    struct mm_session *s = g->s;
    struct oreq *r = mm__calloc(1, sizeof(*r));
    if (!r) return UV_ENOMEM;
    r->g = g;
    r->id = ++s->next_oreq;
    memcpy(r->peer, peer, MM_NODE_ID_LEN);
    r->slot = slot;
    char *js = body ? cJSON_PrintUnformatted(body) : NULL;
    struct mm_wire_ctrl m = {r->id, op, (const uint8_t *)(js ? js : "{}"),
                             js ? strlen(js) : 2};
    struct mm_buf b;
    mm__buf_init(&b);
    r->sent_ns = uv_hrtime();
    int rc = mm__wire_ctrl_append(&b, MM_WIRE_CTRL_REQ, &m);
    if (rc == 0) rc = mm__net_send_ctrl(s->net, peer, b.data, b.len);
    mm__buf_release(&b);
    cJSON_free(js);
    if (rc) {
        mm__free(r);
        return rc;
    }
    r->next = s->oreqs;
    s->oreqs = r;
    g->want++;
    return 0;
}

/* The round trip of |r| until now, in microseconds. */
static double
oreq_rtt_us(const struct oreq *r)
{
    return (double)((uv_hrtime() - r->sent_ns) / 1000u);
}

static void gather_finish(struct gather *g);
static void relay_finish(struct mm_session *s, struct gather *g);
static void top_fill_slot(cJSON *slot, const cJSON *body);
static void top_local_cb(void *data, struct mm_top *t,
                         const struct mm_top_snap *x);

/* An answer of |r|: into its slot.  |body| NULL when none came. */
static void
oreq_fill(struct gather *g, struct oreq *r, int status, const cJSON *body)
{
    cJSON *slot = r->slot;
    if (g->kind == G_RELAY && body) { /* SPAWN, STOP: relayed whole */
        cJSON *d = cJSON_Duplicate(body, 1);
        cJSON_AddNumberToObject(slot, "status", status);
        if (d) cJSON_AddItemToObject(slot, "body", d);
        return;
    }
    if (!body) {
        cJSON_AddStringToObject(slot, "error", "no answer");
        return;
    }
    if (status) {
        const char *e = json_str(body, "error");
        cJSON_AddStringToObject(slot, "error", e ? e : "failed");
        return;
    }
    switch (g->kind) {
    case G_PARTITIONS: {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "members");
        cJSON *view = cJSON_AddArrayToObject(slot, "view");
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            cJSON *o = cJSON_CreateObject();
            if (!o || !view) {
                cJSON_Delete(o);
                break;
            }
            const char *f[] = {"name", "id", "state"};
            for (int i = 0; i < 3; i++)
                cJSON_AddStringToObject(
                    o, f[i], json_str(it, f[i]) ? json_str(it, f[i]) : "");
            cJSON_AddItemToArray(view, o);
        }
        break;
    }
    case G_PING:
        cJSON_AddNumberToObject(slot, "rtt_us", oreq_rtt_us(r));
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "rtt_us")))
            cJSON_AddNumberToObject(slot, "leg_us", json_num(body, "rtt_us"));
        break;
    case G_PROBE:
        cJSON_AddNumberToObject(slot, "rtt_us", oreq_rtt_us(r));
        break;
    case G_TOP:
        top_fill_slot(slot, body);
        break;
    }
}

static void on_keys_resp(void *data, struct mm_qconn *conn,
                         const uint8_t peer[MM_NODE_ID_LEN], int role,
                         int64_t sid, uint8_t type, const uint8_t *body,
                         size_t len);

/* A CTRL_RESP from a member: the answer to one of our oreqs, or to a
 * KEYS_MEMBER (the two draw their request ids from one counter). */
static void
on_ctrl_resp(void *data, struct mm_qconn *conn,
             const uint8_t peer[MM_NODE_ID_LEN], int role, int64_t sid,
             uint8_t type, const uint8_t *body, size_t len)
{
    struct mm_session *s = data;
    on_keys_resp(data, conn, peer, role, sid, type, body, len);
    (void)conn;
    (void)sid;
    (void)type;
    struct mm_wire_ctrl resp;
    if (s->stopped || role != MM_WIRE_ROLE_MEMBER ||
        mm__wire_ctrl_decode(&resp, body, len) != 0)
        return;
    struct oreq **pp = &s->oreqs;
    while (*pp && ((*pp)->id != resp.id ||
                   memcmp((*pp)->peer, peer, MM_NODE_ID_LEN) != 0))
        pp = &(*pp)->next;
    struct oreq *r = *pp;
    if (!r) return; /* late, or not ours */
    *pp = r->next;
    cJSON *j = cJSON_ParseWithLength((const char *)resp.body, resp.body_len);
    static const cJSON empty = {0};
    struct gather *g = r->g;
    oreq_fill(g, r, resp.code, j ? j : &empty);
    cJSON_Delete(j);
    mm__free(r);
    if (++g->got >= g->want) gather_finish(g);
}

/* Answers |g| with what came (the rest: "no answer") and frees it. */
static void
gather_finish(struct gather *g)
{
    struct mm_session *s = g->s;
    mm__tmr_stop(s->home, &g->tmr);
    if (g->top) {
        /* Not every shard answered in time: what the others gave. */
        g->want = SIZE_MAX; /* the callback must not finish |g| again */
        mm__top_now(g->top, top_local_cb, g);
    }
    struct oreq **pp = &s->oreqs;
    while (*pp) {
        struct oreq *r = *pp;
        if (r->g != g) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        oreq_fill(g, r, 0, NULL);
        mm__free(r);
    }
    struct gather **gp = &s->gathers;
    while (*gp && *gp != g)
        gp = &(*gp)->next;
    if (*gp) *gp = g->next;
    s->ngathers--;
    if (g->conn && !s->stopped) {
        if (g->kind == G_RELAY) {
            relay_finish(s, g);
        } else if (g->kind == G_PROBE) {
            /* The relay's answer: its round trip to the target. */
            cJSON *t = cJSON_GetObjectItemCaseSensitive(g->doc, "probe");
            const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(t, "rtt_us");
            if (cJSON_IsNumber(rtt)) {
                cJSON *o = cJSON_CreateObject();
                if (o) cJSON_AddNumberToObject(o, "rtt_us", rtt->valuedouble);
                session_ok(s, g->conn, g->sid, g->id, o);
                cJSON_Delete(o);
            } else {
                const char *e = json_str(t, "error");
                session_err(s, g->conn, g->sid, g->id, MM_EUNREACHABLE,
                            "the target: %s", e ? e : "no answer");
            }
        } else if (g->kind == G_NODE_STATS) {
            const char *e = json_str(g->top_slot, "error");
            if (e)
                session_err(s, g->conn, g->sid, g->id, MM_ETIMEOUT, "%s", e);
            else
                session_ok(s, g->conn, g->sid, g->id, g->top_slot);
        } else {
            session_ok(s, g->conn, g->sid, g->id, g->doc);
        }
    }
    cJSON_Delete(g->doc);
    mm__free(g);
}

static void
gather_tmr_cb(struct mm_tmr *t)
{
    gather_finish(mm__container_of(t, struct gather, tmr));
}

/* Observers of a PARTITIONS: every member the seed lists, asked when it
 * is alive or suspect. */
struct part_acc {
    struct mm_session *s;
    struct gather *g;
    cJSON *arr;
    size_t asked;
};

static int
part_cb(void *data, const struct mm_swim_member *mb)
{
    struct part_acc *a = data;
    if (mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone) return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return 0;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
    cJSON_AddStringToObject(o, "name", mb->rec->name);
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddStringToObject(o, "state", mm__swim_state_name(mb->state));
    cJSON_AddItemToArray(a->arr, o);
    if (mb->is_self) {
        cJSON *saved = cJSON_CreateArray();
        if (saved) cJSON_AddItemToObject(o, "view", saved);
        return 0;
    }
    if (mb->state != MM_SWIM_ALIVE && mb->state != MM_SWIM_SUSPECT) {
        cJSON_AddStringToObject(o, "error", "not asked: not alive");
        return 0;
    }
    if (a->asked >= MM_SESSION_GATHER_PEERS) {
        cJSON_AddStringToObject(o, "error", "not asked: too many members");
        return 0;
    }
    if (oreq_send(a->g, mb->rec->id, MM_CTRL_MEMBERS, NULL, o) != 0) {
        cJSON_AddStringToObject(o, "error", "unreachable");
        return 0;
    }
    a->asked++;
    return 0;
}

/* The seed's own row: its member list. */
static int
part_self_cb(void *data, const struct mm_swim_member *mb)
{
    cJSON *view = data;
    if (mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone) return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return 0;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
    cJSON_AddStringToObject(o, "name", mb->rec->name);
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddStringToObject(o, "state", mm__swim_state_name(mb->state));
    cJSON_AddItemToArray(view, o);
    return 0;
}

static void
op_partitions(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
              uint32_t id, const cJSON *req)
{
    if (!s->m) {
        session_err(s, conn, sid, id, MM_ENOTFOUND,
                    "this node has no membership");
        return;
    }
    struct gather *g =
        gather_new(s, G_PARTITIONS, conn, sid, id, gather_ms(req));
    if (!g) return;
    cJSON_AddStringToObject(g->doc, "seed", s->n->name);
    cJSON *arr = cJSON_AddArrayToObject(g->doc, "observers");
    if (!arr) {
        gather_finish(g);
        return;
    }
    struct part_acc a = {s, g, arr, 0};
    /* want stays above got while asking: no answer can finish it early */
    g->want = 1;
    mm__membership_foreach(s->m, part_cb, &a);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        cJSON *view = cJSON_GetObjectItemCaseSensitive(it, "view");
        if (cJSON_IsArray(view) && cJSON_GetArraySize(view) == 0)
            mm__membership_foreach(s->m, part_self_cb, view);
    }
    g->want--;
    if (g->got >= g->want) gather_finish(g);
}

/* The member named |node| (name or 32-hex id): 1 with |f| filled. */
static int
member_by_name(struct mm_session *s, const char *node, struct name_find *f)
{
    memset(f, 0, sizeof(*f));
    f->prefix = node;
    if (s->m) mm__membership_foreach(s->m, name_find_cb, f);
    return f->found;
}

struct relay_pick {
    struct mm_session *s;
    const uint8_t *target;
    struct {
        char name[MM_SWIM_NAME_MAX];
        uint8_t id[MM_SWIM_ID_LEN];
    } v[MM_PING_RELAYS_MAX]; /* copies: the members are the core's */
    size_t n, want;
};

static int
relay_cb(void *data, const struct mm_swim_member *mb)
{
    struct relay_pick *p = data;
    if (p->n >= p->want) return 1;
    if (mb->is_self || mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone ||
        mb->state != MM_SWIM_ALIVE ||
        memcmp(mb->rec->id, p->target, MM_NODE_ID_LEN) == 0)
        return 0;
    snprintf(p->v[p->n].name, sizeof(p->v[p->n].name), "%s", mb->rec->name);
    memcpy(p->v[p->n].id, mb->rec->id, MM_SWIM_ID_LEN);
    p->n++;
    return 0;
}

static void
op_ping(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
        const cJSON *req)
{
    const char *node = json_str(req, "node");
    double k = json_num(req, "relays");
    if (!node || !*node) {
        session_err(s, conn, sid, id, MM_EINVAL, "ping needs a node");
        return;
    }
    if (k < 0 || k > MM_PING_RELAYS_MAX) {
        session_err(s, conn, sid, id, MM_EINVAL, "relays must be 0 to %u",
                    (unsigned)MM_PING_RELAYS_MAX);
        return;
    }
    struct name_find f;
    if (!member_by_name(s, node, &f)) {
        session_err(s, conn, sid, id, MM_ENOTFOUND, "no member '%s'", node);
        return;
    }
    uint8_t target[MM_NODE_ID_LEN];
    for (size_t i = 0; i < MM_NODE_ID_LEN; i++) {
        unsigned v = 0;
        sscanf(f.hex + 2 * i, "%2x", &v);
        target[i] = (uint8_t)v;
    }
    if (memcmp(target, s->n->id, MM_NODE_ID_LEN) == 0) {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "'%s' is the seed itself: ping it through another seed",
                    node);
        return;
    }
    uint64_t ms = gather_ms(req);
    struct gather *g = gather_new(s, G_PING, conn, sid, id, ms);
    if (!g) return;
    cJSON_AddStringToObject(g->doc, "seed", s->n->name);
    cJSON_AddStringToObject(g->doc, "target", f.name);
    cJSON_AddStringToObject(g->doc, "id", f.hex);
    cJSON_AddStringToObject(g->doc, "state", mm__swim_state_name(f.state));
    cJSON *paths = cJSON_AddArrayToObject(g->doc, "paths");
    if (!paths) {
        gather_finish(g);
        return;
    }
    g->want = 1; /* see op_partitions */
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "via", "");
        cJSON_AddItemToArray(paths, d);
        if (oreq_send(g, target, MM_CTRL_ECHO, NULL, d) != 0)
            cJSON_AddStringToObject(d, "error", "unreachable");
    }
    struct relay_pick p;
    memset(&p, 0, sizeof(p));
    p.s = s;
    p.target = target;
    p.want = (size_t)k;
    if (p.want) mm__membership_foreach(s->m, relay_cb, &p);
    cJSON *body = cJSON_CreateObject();
    if (body) {
        /* A relay gives up first, so that its answer says why. */
        cJSON_AddStringToObject(body, "target", f.hex);
        cJSON_AddNumberToObject(body, "timeout_ms", (double)(ms * 3 / 4));
    }
    for (size_t i = 0; body && i < p.n; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        cJSON_AddStringToObject(r, "via", p.v[i].name);
        cJSON_AddItemToArray(paths, r);
        if (oreq_send(g, p.v[i].id, MM_CTRL_PROBE, body, r) != 0)
            cJSON_AddStringToObject(r, "error", "unreachable");
    }
    cJSON_Delete(body);
    g->want--;
    if (g->got >= g->want) gather_finish(g);
}

/* PROBE, from a member that pings through us: our round trip to the
 * target, answered when it came back or at the bound. */
static void
op_probe(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
         const cJSON *req)
{
    const char *t = json_str(req, "target");
    uint8_t target[MM_NODE_ID_LEN];
    int ok = t && strlen(t) == 2 * MM_NODE_ID_LEN;
    for (size_t i = 0; ok && i < MM_NODE_ID_LEN; i++) {
        unsigned v;
        ok = sscanf(t + 2 * i, "%2x", &v) == 1;
        target[i] = (uint8_t)v;
    }
    if (!ok) {
        session_err(s, conn, sid, id, MM_EINVAL, "probe needs a target id");
        return;
    }
    struct gather *g = gather_new(s, G_PROBE, conn, sid, id, gather_ms(req));
    if (!g) return;
    cJSON *slot = cJSON_AddObjectToObject(g->doc, "probe");
    if (!slot || oreq_send(g, target, MM_CTRL_ECHO, NULL, slot) != 0) {
        if (slot) cJSON_AddStringToObject(slot, "error", "unreachable");
        gather_finish(g);
    }
}

static void
op_echo(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "name", s->n->name);
    session_ok(s, conn, sid, id, o);
    cJSON_Delete(o);
}

/* ---- TOP and NODE_STATS: every node's numbers --------------------------
 *
 * A client's TOP {"prefix", "actors_max", "timeout_ms"} goes to its seed,
 * which gathers its own numbers (mm__top_begin: every shard copies its
 * counters and walks its actors, nothing stops) and asks every other
 * alive or suspect member NODE_STATS with the same body and a share of
 * the answer's byte budget; it answers {"seed", "nodes": [...]} once all
 * answered or at the bound, a silent member's entry saying why.
 */

/* One node's numbers as JSON into |o|, its actor rows within |bytes|. */
static void
top_snap_json(struct mm_session *s, cJSON *o, const struct mm_top_snap *x,
              size_t bytes)
{
    cJSON_AddStringToObject(o, "name", s->n->name);
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, s->n->id, MM_NODE_ID_LEN);
    cJSON_AddStringToObject(o, "id", hex);
    json_u64(o, "time_ms", x->wall_ms);
    cJSON_AddNumberToObject(o, "cpu_s", x->cpu_s);
    json_u64(o, "rss", x->rss);
    json_u64(o, "conns", x->conns_up);
    json_u64(o, "handled", x->ctr.handled);
    json_u64(o, "dropped", x->ctr.dropped);
    json_u64(o, "crashes", x->ctr.crashes);
    json_u64(o, "restarts", x->ctr.restarts);
    uint64_t err = 0;
    for (int k = 1; k < MM_CALL_ST_N; k++)
        err += x->ctr.calls[k];
    json_u64(o, "calls_ok", x->ctr.calls[0]);
    json_u64(o, "calls_err", err);
    json_u64(o, "calls_in_flight", x->calls_in_flight);
    json_u64(o, "ht_count", x->ctr.ht_count);
    json_u64(o, "ht_sum_ns", x->ctr.ht_sum_ns);
    json_u64(o, "pkts_in", x->pkts_in);
    json_u64(o, "pkts_out", x->pkts_out);
    json_u64(o, "bytes_in", x->bytes_in);
    json_u64(o, "bytes_out", x->bytes_out);
    json_u64(o, "actors_total", x->actors_total);
    json_u64(o, "shards_missing", x->shards_missing);
    cJSON *arr = cJSON_AddArrayToObject(o, "actors");
    size_t used = 0, k = 0;
    for (; arr && k < x->nactors; k++) {
        const struct mm_top_actor *a = &x->actors[k];
        size_t need = 160 + strlen(a->type) + (a->label ? strlen(a->label) : 0);
        if (used + need > bytes) break;
        cJSON *r = cJSON_CreateObject();
        if (!r) break;
        used += need;
        cJSON_AddItemToArray(arr, r);
        json_u64(r, "id", a->id);
        if (a->label)
            cJSON_AddStringToObject(r, "label", a->label);
        else
            cJSON_AddNullToObject(r, "label");
        cJSON_AddStringToObject(r, "type", a->type);
        json_u64(r, "mailbox", a->mailbox);
        json_u64(r, "handled", a->handled);
        json_u64(r, "ht_count", a->ht_count);
        json_u64(r, "ht_sum_ns", a->ht_sum_ns);
        json_u64(r, "restarts", a->restarts);
    }
    cJSON_AddBoolToObject(o, "truncated",
                          x->truncated || k < x->nactors || !arr);
}

/* A member's NODE_STATS answer into its entry. */
static void
top_fill_slot(cJSON *slot, const cJSON *body)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        if (!it->string || cJSON_GetObjectItemCaseSensitive(slot, it->string))
            continue;
        cJSON *d = cJSON_Duplicate(it, 1);
        if (d) cJSON_AddItemToObject(slot, it->string, d);
    }
}

static void
top_local_cb(void *data, struct mm_top *t, const struct mm_top_snap *x)
{
    struct gather *g = data;
    top_snap_json(g->s, g->top_slot, x, g->top_bytes);
    g->top = NULL;
    mm__top_release(t);
    if (++g->got >= g->want) gather_finish(g);
}

/* Starts gathering this node's numbers into |slot| of |g|. */
static void
top_local(struct gather *g, cJSON *slot, const cJSON *req, size_t bytes)
{
    double cap = json_num(req, "actors_max");
    if (cap <= 0 || cap > MM_TOP_ACTORS_MAX) cap = MM_TOP_ACTORS_MAX;
    g->top_slot = slot;
    g->top_bytes = bytes;
    g->top = mm__top_begin(g->s->n, &g->s->tops, (size_t)cap,
                           json_str(req, "prefix"), top_local_cb, g);
    if (g->top)
        g->want++;
    else
        cJSON_AddStringToObject(slot, "error", "out of memory");
}

struct top_acc {
    struct mm_session *s;
    struct gather *g;
    cJSON *arr;
    const cJSON *req;
    size_t asked, members;
};

static int
top_count_cb(void *data, const struct mm_swim_member *mb)
{
    struct top_acc *a = data;
    if (mb->rec->role != MM_WIRE_ROLE_CLIENT && !mb->tombstone &&
        (mb->is_self || mb->state == MM_SWIM_ALIVE ||
         mb->state == MM_SWIM_SUSPECT))
        a->members++;
    return 0;
}

static int
top_member_cb(void *data, const struct mm_swim_member *mb)
{
    struct top_acc *a = data;
    if (mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone) return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return 0;
    char hex[2 * MM_NODE_ID_LEN + 1];
    mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
    cJSON_AddStringToObject(o, "name", mb->rec->name);
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddStringToObject(o, "state", mm__swim_state_name(mb->state));
    cJSON_AddItemToArray(a->arr, o);
    size_t bytes = MM_TOP_ANSWER_BYTES / (a->members ? a->members : 1);
    if (mb->is_self) {
        top_local(a->g, o, a->req, bytes);
        return 0;
    }
    if (mb->state != MM_SWIM_ALIVE && mb->state != MM_SWIM_SUSPECT) {
        cJSON_AddStringToObject(o, "error", "not asked: not alive");
        return 0;
    }
    if (a->asked >= MM_SESSION_GATHER_PEERS) {
        cJSON_AddStringToObject(o, "error", "not asked: too many members");
        return 0;
    }
    cJSON *body = cJSON_Duplicate(a->req, 1);
    if (!body) body = cJSON_CreateObject();
    if (body) {
        /* The member gives up first, so that its answer says why. */
        cJSON_DeleteItemFromObjectCaseSensitive(body, "timeout_ms");
        cJSON_AddNumberToObject(body, "timeout_ms",
                                (double)(gather_ms(a->req) * 3 / 4));
        cJSON_AddNumberToObject(body, "bytes_max", (double)bytes);
    }
    if (!body || oreq_send(a->g, mb->rec->id, MM_CTRL_NODE_STATS, body, o) != 0)
        cJSON_AddStringToObject(o, "error", "unreachable");
    else
        a->asked++;
    cJSON_Delete(body);
    return 0;
}

static void
op_top(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
       const cJSON *req)
{
    const char *prefix = json_str(req, "prefix");
    if (prefix && strlen(prefix) > LABEL_MAX) {
        session_err(s, conn, sid, id, MM_EINVAL, "prefix longer than %u bytes",
                    (unsigned)LABEL_MAX);
        return;
    }
    struct gather *g = gather_new(s, G_TOP, conn, sid, id, gather_ms(req));
    if (!g) return;
    cJSON_AddStringToObject(g->doc, "seed", s->n->name);
    cJSON *arr = cJSON_AddArrayToObject(g->doc, "nodes");
    if (!arr) {
        gather_finish(g);
        return;
    }
    struct top_acc a = {s, g, arr, req, 0, 0};
    g->want = 1; /* see op_partitions */
    if (s->m) {
        mm__membership_foreach(s->m, top_count_cb, &a);
        mm__membership_foreach(s->m, top_member_cb, &a);
    } else {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "state", "alive");
            top_local(g, o, req, MM_TOP_ANSWER_BYTES);
        }
    }
    g->want--;
    if (g->got >= g->want) gather_finish(g);
}

/* NODE_STATS, from the seed of a TOP: this node's own numbers. */
static void
op_node_stats(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
              uint32_t id, const cJSON *req)
{
    const char *prefix = json_str(req, "prefix");
    if (prefix && strlen(prefix) > LABEL_MAX) {
        session_err(s, conn, sid, id, MM_EINVAL, "prefix longer than %u bytes",
                    (unsigned)LABEL_MAX);
        return;
    }
    struct gather *g =
        gather_new(s, G_NODE_STATS, conn, sid, id, gather_ms(req));
    if (!g) return;
    cJSON *slot = cJSON_AddObjectToObject(g->doc, "node");
    double b = json_num(req, "bytes_max");
    size_t bytes =
        b > 0 && b < MM_TOP_ANSWER_BYTES ? (size_t)b : MM_TOP_ANSWER_BYTES;
    if (slot) top_local(g, slot, req, bytes);
    if (!slot || g->got >= g->want) {
        if (!slot) { /* answered: out of memory */
            g->top_slot = g->doc;
            cJSON_AddStringToObject(g->doc, "error", "out of memory");
        }
        gather_finish(g);
    }
}

/* A connection went: gathers answering it answer nobody. */
static void
gathers_conn_gone(struct mm_session *s, struct mm_qconn *conn)
{
    for (struct gather *g = s->gathers; g; g = g->next)
        if (g->conn == conn) g->conn = NULL;
}

/* Node stop: every gather and question goes, unanswered. */
static void
gathers_free(struct mm_session *s)
{
    while (s->oreqs) {
        struct oreq *r = s->oreqs;
        s->oreqs = r->next;
        mm__free(r);
    }
    while (s->gathers) {
        struct gather *g = s->gathers;
        s->gathers = g->next;
        mm__tmr_stop(s->home, &g->tmr);
        mm__top_release(g->top);
        cJSON_Delete(g->doc);
        mm__free(g);
    }
    s->ngathers = 0;
}

/* ---- SPAWN, STOP: remote spawn and stop ---------------------------------
 *
 * A client's SPAWN names a type, a label and where: a member (`on`), a
 * tag (`where` "K=V": among the alive members with it) or neither (every
 * alive member); among several the one with the fewest actors in this
 * node's registry view wins (ties: by name).  The seed spawns locally, or
 * sends SPAWN_MEMBER to that member over the member connection and relays
 * its answer (a gather of kind G_RELAY).  STOP finds the label's owner in
 * the registry and stops it there the same way (STOP_MEMBER).  At most
 * MM_SPAWN_INFLIGHT_MAX relays wait at once.
 */

/* The spawn options of |req| into |o|; 0, or the error after answering. */
static int
spawn_parse(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
            uint32_t id, const cJSON *req, mm_spawn_opts *o, char **arg)
{
    const char *type = json_str(req, "type");
    const char *label = json_str(req, "label");
    const char *pol = json_str(req, "policy");
    const char *vis = json_str(req, "visibility");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "arg");
    mm_spawn_opts_init(o);
    *arg = NULL;
    if (!type || !*type) {
        session_err(s, conn, sid, id, MM_EINVAL, "spawn needs a type");
        return MM_EINVAL;
    }
    if (!label || !*label || strlen(label) > LABEL_MAX) {
        session_err(s, conn, sid, id, MM_EINVAL, "spawn needs a label");
        return MM_EINVAL;
    }
    o->label = label;
    if (!pol || strcmp(pol, "temporary") == 0)
        o->policy = MM_TEMPORARY;
    else if (strcmp(pol, "transient") == 0)
        o->policy = MM_TRANSIENT;
    else if (strcmp(pol, "permanent") == 0)
        o->policy = MM_PERMANENT;
    else {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "bad policy '%s' (temporary, transient or permanent)", pol);
        return MM_EINVAL;
    }
    if (!vis || strcmp(vis, "internal") == 0)
        o->visibility = MM_VIS_INTERNAL;
    else if (strcmp(vis, "public") == 0)
        o->visibility = MM_VIS_PUBLIC;
    else if (strcmp(vis, "private") == 0)
        o->visibility = MM_VIS_PRIVATE;
    else {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "bad visibility '%s' (public, internal or private)", vis);
        return MM_EINVAL;
    }
    if (a) {
        /* The initial state travels as JSON text: checked here too. */
        cJSON *v = cJSON_IsString(a) ? cJSON_Parse(a->valuestring) : NULL;
        cJSON_Delete(v);
        if (!v) {
            session_err(s, conn, sid, id, MM_EDECODE,
                        "spawn: \"arg\" is not JSON text");
            return MM_EDECODE;
        }
        *arg = a->valuestring;
        o->arg_json = *arg;
    }
    return 0;
}

/* SPAWN on this node (SPAWN_MEMBER, or a SPAWN the seed keeps). */
static void
spawn_local(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
            uint32_t id, const cJSON *req)
{
    mm_spawn_opts o;
    char *arg;
    if (spawn_parse(s, conn, sid, id, req, &o, &arg) != 0) return;
    const char *type = json_str(req, "type");
    mm_endpoint ep;
    int rc = mm_spawn(s->n, type, &o, &ep);
    if (rc == MM_ENOTFOUND) {
        session_err(s, conn, sid, id, rc, "no actor type '%s' on node %s", type,
                    s->n->name);
        return;
    }
    if (rc == MM_EEXISTS) {
        session_err(s, conn, sid, id, rc, "label '%s' is taken on node %s",
                    o.label, s->n->name);
        return;
    }
    if (rc) {
        session_err(s, conn, sid, id, rc, "spawn %s on node %s: %s", type,
                    s->n->name, mm_strerror(rc));
        return;
    }
    char eps[96];
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "label", o.label);
        cJSON_AddStringToObject(r, "type", type);
        cJSON_AddStringToObject(r, "node", s->n->name);
        cJSON_AddStringToObject(r, "endpoint",
                                mm_endpoint_format(&ep, eps, sizeof(eps)));
    }
    session_ok(s, conn, sid, id, r);
    cJSON_Delete(r);
}

/* STOP on this node: the label must be one of its own actors. */
static void
stop_local(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
           uint32_t id, const cJSON *req)
{
    const char *label = json_str(req, "label");
    mm_endpoint ep;
    if (!label || !*label) {
        session_err(s, conn, sid, id, MM_EINVAL, "stop needs a label");
        return;
    }
    if (mm_lookup(s->n, label, &ep) != 0 ||
        memcmp(ep.node, s->n->id, MM_NODE_ID_LEN) != 0) {
        session_err(s, conn, sid, id, MM_ENOTFOUND,
                    "no actor with label '%s' on node %s", label, s->n->name);
        return;
    }
    int rc = mm_actor_stop(s->n, &ep);
    if (rc) {
        session_err(s, conn, sid, id, rc, "stop '%s': %s", label,
                    mm_strerror(rc));
        return;
    }
    char eps[96];
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "label", label);
        cJSON_AddStringToObject(r, "node", s->n->name);
        cJSON_AddStringToObject(r, "endpoint",
                                mm_endpoint_format(&ep, eps, sizeof(eps)));
    }
    session_ok(s, conn, sid, id, r);
    cJSON_Delete(r);
}

/* Forwards |req| as |op| to |peer|; its answer, or unreachable after
 * MM_SPAWN_WAIT_MS, is relayed to the client (overloaded past
 * MM_SPAWN_INFLIGHT_MAX relays waiting). */
static void
relay(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
      const uint8_t peer[MM_NODE_ID_LEN], const char *peer_name, uint16_t op,
      const cJSON *req)
{
    size_t n = 0;
    for (struct gather *g = s->gathers; g; g = g->next)
        n += g->kind == G_RELAY;
    if (n >= MM_SPAWN_INFLIGHT_MAX) {
        session_err(s, conn, sid, id, MM_EOVERLOADED,
                    "overloaded: this node already waits on %u spawns or "
                    "stops",
                    (unsigned)MM_SPAWN_INFLIGHT_MAX);
        return;
    }
    struct gather *g =
        gather_new(s, G_RELAY, conn, sid, id, (uint64_t)MM_SPAWN_WAIT_MS);
    if (!g) return;
    cJSON_AddStringToObject(g->doc, "node", peer_name);
    cJSON *slot = cJSON_AddObjectToObject(g->doc, "relay");
    if (!slot || oreq_send(g, peer, op, req, slot) != 0) {
        if (slot) cJSON_AddStringToObject(slot, "error", "unreachable");
        gather_finish(g);
    }
}

/* A relay's end: the member's answer as ours. */
static void
relay_finish(struct mm_session *s, struct gather *g)
{
    const cJSON *slot = cJSON_GetObjectItemCaseSensitive(g->doc, "relay");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(slot, "status");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(slot, "body");
    const char *node = json_str(g->doc, "node");
    if (!cJSON_IsNumber(st)) {
        const char *e = json_str(slot, "error");
        session_err(s, g->conn, g->sid, g->id, MM_EUNREACHABLE, "node %s: %s",
                    node ? node : "?", e ? e : "no answer");
    } else if (st->valueint != 0) {
        const char *e = json_str(body, "error");
        session_err(s, g->conn, g->sid, g->id,
                    mm_err_from_wire((uint16_t)st->valueint), "%s",
                    e ? e : "failed");
    } else {
        session_ok(s, g->conn, g->sid, g->id, body);
    }
}

struct place {
    struct mm_session *s;
    const char *on;    /* a member's name or hex id */
    const char *where; /* "K=V" */
    struct place_cand {
        uint8_t id[MM_NODE_ID_LEN];
        char name[MM_SWIM_NAME_MAX];
        size_t actors;
    } * v;
    size_t n, cap;
    int on_state; /* `on` found: its state, else -1 */
};

/* 1 when the tag string |tags| ("k=v,k=v") holds |kv| ("k=v"). */
static int
tags_have(const char *tags, const char *kv)
{
    size_t l = strlen(kv);
    for (const char *p = tags; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == l && memcmp(p, kv, l) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int
place_member_cb(void *data, const struct mm_swim_member *mb)
{
    struct place *p = data;
    if (mb->rec->role == MM_WIRE_ROLE_CLIENT || mb->tombstone) return 0;
    if (p->on) {
        char hex[2 * MM_NODE_ID_LEN + 1];
        mm__hex(hex, mb->rec->id, MM_NODE_ID_LEN);
        if (strcmp(mb->rec->name, p->on) != 0 && strcmp(hex, p->on) != 0)
            return 0;
        p->on_state = mb->state;
    }
    if (mb->state != MM_SWIM_ALIVE && !mb->is_self) return 0;
    if (p->where && !tags_have(mb->rec->tags, p->where)) return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        void *v = realloc(p->v, cap * sizeof(*p->v));
        if (!v) return 1;
        p->v = v;
        p->cap = cap;
    }
    struct place_cand *c = &p->v[p->n++];
    memcpy(c->id, mb->rec->id, MM_NODE_ID_LEN);
    snprintf(c->name, sizeof(c->name), "%s", mb->rec->name);
    c->actors = 0;
    return 0;
}

static int
place_count_cb(void *data, const struct mm_registry_entry *e)
{
    struct place *p = data;
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->v[i].id, e->ep.node, MM_NODE_ID_LEN) == 0) {
            p->v[i].actors++;
            break;
        }
    return 0;
}

static void
op_spawn(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
         const cJSON *req)
{
    mm_spawn_opts o;
    char *arg;
    if (spawn_parse(s, conn, sid, id, req, &o, &arg) != 0) return;
    const char *on = json_str(req, "on");
    const char *where = json_str(req, "where");
    if (on && where) {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "spawn takes \"on\" or \"where\", not both");
        return;
    }
    if (where && (!strchr(where, '=') || *where == '=')) {
        session_err(s, conn, sid, id, MM_EINVAL,
                    "bad where '%s' (expected TAG=VALUE)", where);
        return;
    }
    mm_endpoint ep;
    if (mm_lookup(s->n, o.label, &ep) == 0) {
        char node[MM_SWIM_NAME_MAX];
        node_name_of(s, ep.node, node, sizeof(node));
        session_err(s, conn, sid, id, MM_EEXISTS,
                    "label '%s' is taken (on node %s)", o.label,
                    node[0] ? node : "?");
        return;
    }
    if (!s->m) { /* no cluster: here or nowhere */
        if ((on && strcmp(on, s->n->name) != 0) || where) {
            session_err(s, conn, sid, id, MM_ENOTFOUND,
                        "this node has no membership");
            return;
        }
        spawn_local(s, conn, sid, id, req);
        return;
    }
    struct place p;
    memset(&p, 0, sizeof(p));
    p.s = s;
    p.on = on;
    p.where = where;
    p.on_state = -1;
    mm__membership_foreach(s->m, place_member_cb, &p);
    if (p.n == 0) {
        if (on && p.on_state < 0)
            session_err(s, conn, sid, id, MM_ENOTFOUND, "no member '%s'", on);
        else if (on)
            session_err(s, conn, sid, id, MM_EUNREACHABLE, "member '%s' is %s",
                        on, mm__swim_state_name(p.on_state));
        else if (where)
            session_err(s, conn, sid, id, MM_ENOTFOUND,
                        "no alive member has tag %s", where);
        else
            session_err(s, conn, sid, id, MM_ENOTFOUND, "no alive member");
        free(p.v);
        return;
    }
    if (p.n > 1) mm__registry_foreach(s->n, NULL, NULL, place_count_cb, &p);
    size_t best = 0;
    for (size_t i = 1; i < p.n; i++)
        if (p.v[i].actors < p.v[best].actors ||
            (p.v[i].actors == p.v[best].actors &&
             strcmp(p.v[i].name, p.v[best].name) < 0))
            best = i;
    struct place_cand c = p.v[best];
    free(p.v);
    if (memcmp(c.id, s->n->id, MM_NODE_ID_LEN) == 0)
        spawn_local(s, conn, sid, id, req);
    else
        relay(s, conn, sid, id, c.id, c.name, MM_CTRL_SPAWN_MEMBER, req);
}

static void
op_stop(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
        const cJSON *req)
{
    const char *label = json_str(req, "label");
    mm_endpoint ep;
    if (!label || !*label || strlen(label) > LABEL_MAX) {
        session_err(s, conn, sid, id, MM_EINVAL, "stop needs a label");
        return;
    }
    if (mm_lookup(s->n, label, &ep) != 0) {
        session_err(s, conn, sid, id, MM_ENOTFOUND, "no actor with label '%s'",
                    label);
        return;
    }
    if (memcmp(ep.node, s->n->id, MM_NODE_ID_LEN) == 0) {
        stop_local(s, conn, sid, id, req);
        return;
    }
    char node[MM_SWIM_NAME_MAX];
    node_name_of(s, ep.node, node, sizeof(node));
    relay(s, conn, sid, id, ep.node, node[0] ? node : "?", MM_CTRL_STOP_MEMBER,
          req);
}

/* ---- KEYS: key rotation
 * --------------------------------------------------------------------
 *
 * A client's KEYS {"action", "key"} goes to its seed, which applies it to
 * its own keyring and sends KEYS_MEMBER with the same body to every other
 * member not known to have left, over the member connections; each member
 * applies it and answers (its keys' fingerprints for "list").  The seed
 * answers the client once every member did, or after MM_KEYS_WAIT_MS with
 * the silent ones counted as not applied.
 */

enum { KEYS_LIST, KEYS_INSTALL, KEYS_USE, KEYS_REMOVE, KEYS_ACTIONS };
static const char *const keys_action_name[KEYS_ACTIONS] = {"list", "install",
                                                           "use", "remove"};

struct keyop_peer {
    uint8_t id[MM_NODE_ID_LEN];
    char name[64];
    uint32_t req; /* the KEYS_MEMBER request id */
    int done;
};

struct keyop { /* a KEYS step under way */
    struct keyop *next;
    struct mm_session *s;
    struct mm_qconn *conn; /* the client's; NULL once it went */
    int64_t sid;
    uint32_t id;
    int action;
    unsigned total, applied;
    size_t npeers, waiting;
    struct keyop_peer *peers;
    cJSON *failed; /* [{"node", "error"}] */
    cJSON *keys;   /* list: {fingerprint: {"members", "primary"}} */
    struct mm_tmr tmr;
};

static int
keys_action(const char *a)
{
    for (int i = 0; a && i < KEYS_ACTIONS; i++)
        if (strcmp(a, keys_action_name[i]) == 0) return i;
    return -1;
}

/* The action and key of a KEYS or KEYS_MEMBER body; 0 or MM_EINVAL with
 * |err| set. */
static int
keys_parse(const cJSON *req, int *action, uint8_t key[MM_CKEY_LEN], char *err,
           size_t errlen)
{
    *action = keys_action(json_str(req, "action"));
    if (*action < 0) {
        snprintf(err, errlen,
                 "keys needs an action: list, install, use or "
                 "remove");
        return MM_EINVAL;
    }
    if (*action == KEYS_LIST) return 0;
    const char *b64 = json_str(req, "key");
    uint8_t k[MM_CKEY_LEN + 3];
    int n = b64 ? mm__base64_decode(k, sizeof(k), b64, strlen(b64)) : -1;
    if (n != MM_CKEY_LEN) {
        explicit_bzero(k, sizeof(k));
        snprintf(err, errlen, "keys %s needs a key (32 bytes, base64)",
                 keys_action_name[*action]);
        return MM_EINVAL;
    }
    memcpy(key, k, MM_CKEY_LEN);
    explicit_bzero(k, sizeof(k));
    return 0;
}

/* This node's keys as [{"fingerprint", "primary"}]. */
static cJSON *
keys_local_list(const struct mm_keyring *kr)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < kr->n; i++) {
        char fp[MM_KEY_FP_LEN + 1];
        mm__ckey_fingerprint(kr->keys[i], fp);
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "fingerprint", fp);
        cJSON_AddBoolToObject(o, "primary", i == 0);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/*
 * Applies |action| to this node's keyring: on a copy, saved to the data
 * dir, and only then taken (with the gossip keys).  0 or an error with
 * |err| set.
 */
static int
keys_apply(struct mm_session *s, int action, const uint8_t key[MM_CKEY_LEN],
           char *err, size_t errlen)
{
    if (!s->keys.kr) {
        snprintf(err, errlen, "this node has no keyring to change");
        return MM_EINVAL;
    }
    if (action == KEYS_LIST) return 0;
    char fp[MM_KEY_FP_LEN + 1];
    mm__ckey_fingerprint(key, fp);
    struct mm_keyring next = *s->keys.kr;
    int changed = 0, rc;
    if (action == KEYS_INSTALL)
        rc = mm__keyring_install(&next, key, &changed);
    else if (action == KEYS_USE)
        rc = mm__keyring_use(&next, key, &changed);
    else
        rc = mm__keyring_remove(&next, key, &changed);
    if (rc == UV_ENOBUFS)
        snprintf(err, errlen,
                 "keyring full (at most %d keys): remove one "
                 "first",
                 MM_KEYRING_MAX);
    else if (rc == MM_ENOTFOUND)
        snprintf(err, errlen, "key %s is not installed%s", fp,
                 action == KEYS_USE ? ": install it first" : "");
    else if (rc == MM_EINVAL)
        snprintf(err, errlen,
                 "key %s is the primary key: use another key first", fp);
    if (rc == 0 && changed && s->keys.dir)
        rc = mm__keyring_save(&next, s->keys.dir, err, errlen);
    if (rc == 0 && changed) {
        *s->keys.kr = next;
        if (s->m) mm__membership_set_keys(s->m, s->keys.kr);
        MM_LOG(MM_LOG_INFO, "ckey", "keys %s %s: %zu keys, primary %s",
               keys_action_name[action], fp, s->keys.kr->n,
               action == KEYS_USE ? fp : "unchanged");
    }
    mm__keyring_release(&next);
    return rc;
}

/* A member (KEYS_MEMBER from the seed) applies a step and answers. */
static void
op_keys_member(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
               uint32_t id, const cJSON *req)
{
    char err[256];
    int action;
    uint8_t key[MM_CKEY_LEN];
    int rc = keys_parse(req, &action, key, err, sizeof(err));
    if (rc == 0) rc = keys_apply(s, action, key, err, sizeof(err));
    explicit_bzero(key, sizeof(key));
    if (rc) {
        session_err(s, conn, sid, id, rc, "%s", err);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    if (doc && action == KEYS_LIST)
        cJSON_AddItemToObject(doc, "keys", keys_local_list(s->keys.kr));
    session_ok(s, conn, sid, id, doc);
    cJSON_Delete(doc);
}

static void
keyop_fail(struct keyop *op, const char *node, const char *why)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "node", node);
    cJSON_AddStringToObject(o, "error", why);
    cJSON_AddItemToArray(op->failed, o);
}

/* Counts a member's list answer into the totals per fingerprint. */
static void
keyop_count_keys(struct keyop *op, const cJSON *keys)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, keys)
    {
        const char *fp = json_str(it, "fingerprint");
        if (!fp) continue;
        cJSON *k = cJSON_GetObjectItemCaseSensitive(op->keys, fp);
        if (!k) {
            k = cJSON_AddObjectToObject(op->keys, fp);
            if (!k) continue;
            cJSON_AddNumberToObject(k, "members", 0);
            cJSON_AddNumberToObject(k, "primary", 0);
        }
        cJSON *m = cJSON_GetObjectItemCaseSensitive(k, "members");
        cJSON_SetNumberValue(m, m->valuedouble + 1);
        if (json_bool(it, "primary")) {
            cJSON *p = cJSON_GetObjectItemCaseSensitive(k, "primary");
            cJSON_SetNumberValue(p, p->valuedouble + 1);
        }
    }
}

static void
keyop_free(struct keyop *op)
{
    mm__tmr_stop(op->s->home, &op->tmr);
    cJSON_Delete(op->failed);
    cJSON_Delete(op->keys);
    mm__free(op->peers);
    mm__free(op);
}

/* Every member answered, or the wait ended: the client gets the tally. */
static void
keyop_finish(struct keyop *op)
{
    struct mm_session *s = op->s;
    for (struct keyop **pp = &s->keys.ops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            s->keys.nops--;
            break;
        }
    for (size_t i = 0; i < op->npeers; i++)
        if (!op->peers[i].done)
            keyop_fail(op, op->peers[i].name, "no answer in time");
    if (op->conn && !s->stopped) {
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
            cJSON_AddStringToObject(doc, "action",
                                    keys_action_name[op->action]);
            cJSON_AddNumberToObject(doc, "applied", op->applied);
            cJSON_AddNumberToObject(doc, "total", op->total);
            cJSON_AddItemToObject(doc, "failed", op->failed);
            op->failed = NULL;
            if (op->action == KEYS_LIST) {
                cJSON *arr = cJSON_AddArrayToObject(doc, "keys");
                const cJSON *k;
                cJSON_ArrayForEach(k, op->keys)
                {
                    cJSON *o = cJSON_CreateObject();
                    if (!o || !arr) {
                        cJSON_Delete(o);
                        break;
                    }
                    cJSON_AddStringToObject(o, "fingerprint", k->string);
                    cJSON_AddNumberToObject(o, "members",
                                            json_num(k, "members"));
                    cJSON_AddNumberToObject(o, "primary",
                                            json_num(k, "primary"));
                    cJSON_AddItemToArray(arr, o);
                }
            }
        }
        session_ok(s, op->conn, op->sid, op->id, doc);
        cJSON_Delete(doc);
    }
    keyop_free(op);
}

static void
keyop_timeout_cb(struct mm_tmr *t)
{
    keyop_finish(mm__container_of(t, struct keyop, tmr));
}

struct keyop_collect {
    struct keyop *op;
    const uint8_t *self;
};

/* Every member but this node and those that left gets the step; a failed
 * one counts as not applied. */
static int
keyop_member_cb(void *data, const struct mm_swim_member *mb)
{
    struct keyop_collect *kc = data;
    struct keyop *op = kc->op;
    if (mb->is_self || mb->state == MM_SWIM_LEFT ||
        memcmp(mb->rec->id, kc->self, MM_NODE_ID_LEN) == 0)
        return 0;
    op->total++;
    if (mb->state == MM_SWIM_FAILED) {
        keyop_fail(op, mb->rec->name, "failed (down)");
        return 0;
    }
    void *p = mm__realloc(op->peers, (op->npeers + 1) * sizeof(*op->peers));
    if (!p) {
        keyop_fail(op, mb->rec->name, "out of memory");
        return 0;
    }
    op->peers = p;
    struct keyop_peer *kp = &op->peers[op->npeers++];
    memset(kp, 0, sizeof(*kp));
    memcpy(kp->id, mb->rec->id, MM_NODE_ID_LEN);
    snprintf(kp->name, sizeof(kp->name), "%s", mb->rec->name);
    return 0;
}

/* Sends KEYS_MEMBER |body| to each peer of |op|. */
static void
keyop_send(struct keyop *op, const char *body)
{
    struct mm_session *s = op->s;
    for (size_t i = 0; i < op->npeers; i++) {
        struct keyop_peer *kp = &op->peers[i];
        kp->req = ++s->next_oreq; /* one id space with the oreqs */
        struct mm_wire_ctrl m = {.id = kp->req,
                                 .code = MM_CTRL_KEYS_MEMBER,
                                 .body = (const uint8_t *)body,
                                 .body_len = strlen(body)};
        struct mm_buf b;
        mm__buf_init(&b);
        int rc = mm__wire_ctrl_append(&b, MM_WIRE_CTRL_REQ, &m);
        if (rc == 0) rc = mm__net_send_ctrl(s->keys.net, kp->id, b.data, b.len);
        if (b.data) explicit_bzero(b.data, b.len);
        mm__buf_release(&b);
        if (rc) {
            kp->done = 1;
            keyop_fail(op, kp->name, mm_strerror(rc));
        } else {
            op->waiting++;
        }
    }
}

static void
op_keys(struct mm_session *s, struct mm_qconn *conn, int64_t sid, uint32_t id,
        const cJSON *req)
{
    char err[256];
    int action;
    uint8_t key[MM_CKEY_LEN];
    int rc = keys_parse(req, &action, key, err, sizeof(err));
    if (rc == 0 && !s->keys.kr) {
        rc = MM_EINVAL;
        snprintf(err, sizeof(err), "this node has no keyring to change");
    }
    /* What would fail on every member is refused once, here. */
    if (rc == 0 && action == KEYS_REMOVE &&
        mm__ct_memcmp(s->keys.kr->keys[0], key, MM_CKEY_LEN) == 0) {
        char fp[MM_KEY_FP_LEN + 1];
        mm__ckey_fingerprint(key, fp);
        rc = MM_EINVAL;
        snprintf(err, sizeof(err),
                 "key %s is the primary key: removing it is refused (make "
                 "another key the primary with `murmer keys use` first)",
                 fp);
    }
    if (rc == 0 && s->keys.nops >= MM_KEYS_OPS_MAX) {
        rc = MM_EOVERLOADED;
        snprintf(err, sizeof(err), "overloaded: %u key steps under way",
                 MM_KEYS_OPS_MAX);
    }
    struct keyop *op = rc ? NULL : mm__calloc(1, sizeof(*op));
    if (rc == 0 && op) {
        op->failed = cJSON_CreateArray();
        op->keys = cJSON_CreateObject();
    }
    if (rc == 0 && (!op || !op->failed || !op->keys)) {
        rc = UV_ENOMEM;
        snprintf(err, sizeof(err), "out of memory");
    }
    if (rc) {
        explicit_bzero(key, sizeof(key));
        if (op) {
            op->s = s;
            keyop_free(op);
        }
        session_err(s, conn, sid, id, rc, "%s", err);
        return;
    }
    op->s = s;
    op->conn = conn;
    op->sid = sid;
    op->id = id;
    op->action = action;
    op->tmr.fn = keyop_timeout_cb;
    op->next = s->keys.ops;
    s->keys.ops = op;
    s->keys.nops++;

    /* This node first. */
    op->total = 1;
    rc = keys_apply(s, action, key, err, sizeof(err));
    if (rc == 0) {
        op->applied++;
        if (action == KEYS_LIST) {
            cJSON *l = keys_local_list(s->keys.kr);
            keyop_count_keys(op, l);
            cJSON_Delete(l);
        }
    } else {
        keyop_fail(op, mm_node_name(s->n), err);
    }
    struct keyop_collect kc = {op, s->n->id};
    if (s->m) mm__membership_foreach(s->m, keyop_member_cb, &kc);
    char b64[64];
    char body[128];
    if (action == KEYS_LIST) {
        snprintf(body, sizeof(body), "{\"action\":\"list\"}");
    } else {
        b64[mm__base64_encode(b64, key, MM_CKEY_LEN)] = '\0';
        snprintf(body, sizeof(body), "{\"action\":\"%s\",\"key\":\"%s\"}",
                 keys_action_name[action], b64);
    }
    keyop_send(op, body);
    explicit_bzero(b64, sizeof(b64));
    explicit_bzero(body, sizeof(body));
    explicit_bzero(key, sizeof(key));
    if (op->waiting == 0)
        keyop_finish(op);
    else
        mm__tmr_start(s->home, &op->tmr, mm__now_ms() + MM_KEYS_WAIT_MS);
}

/* A member's CTRL_RESP to our KEYS_MEMBER. */
static void
on_keys_resp(void *data, struct mm_qconn *conn,
             const uint8_t peer[MM_NODE_ID_LEN], int role, int64_t sid,
             uint8_t type, const uint8_t *body, size_t len)
{
    struct mm_session *s = data;
    (void)conn;
    (void)sid;
    (void)type;
    struct mm_wire_ctrl resp;
    if (role != MM_WIRE_ROLE_MEMBER ||
        mm__wire_ctrl_decode(&resp, body, len) != 0)
        return;
    for (struct keyop *op = s->keys.ops; op; op = op->next) {
        for (size_t i = 0; i < op->npeers; i++) {
            struct keyop_peer *kp = &op->peers[i];
            if (kp->done || kp->req != resp.id ||
                memcmp(kp->id, peer, MM_NODE_ID_LEN) != 0)
                continue;
            kp->done = 1;
            op->waiting--;
            cJSON *j =
                cJSON_ParseWithLength((const char *)resp.body, resp.body_len);
            if (resp.code == 0) {
                op->applied++;
                if (op->action == KEYS_LIST)
                    keyop_count_keys(
                        op, cJSON_GetObjectItemCaseSensitive(j, "keys"));
            } else {
                const char *e = json_str(j, "error");
                keyop_fail(op, kp->name,
                           e ? e : mm_strerror(mm_err_from_wire(resp.code)));
            }
            cJSON_Delete(j);
            if (op->waiting == 0) keyop_finish(op);
            return;
        }
    }
}

/* The client of a step went: its answer goes nowhere. */
static void
keys_conn_gone(struct mm_session *s, struct mm_qconn *conn)
{
    for (struct keyop *op = s->keys.ops; op; op = op->next)
        if (op->conn == conn) op->conn = NULL;
}

static void
keys_free_all(struct mm_session *s)
{
    while (s->keys.ops) {
        struct keyop *op = s->keys.ops;
        s->keys.ops = op->next;
        keyop_free(op);
    }
    s->keys.nops = 0;
}

void
mm__session_set_keyring(struct mm_session *s, struct mm_keyring *kr,
                        const char *data_dir)
{
    s->keys.kr = kr;
    s->keys.dir = data_dir;
}

/* SPAWN, STOP (not with a read-only key) and their member forms (between
 * members only). */
static void
op_spawn_stop(struct mm_session *s, struct mm_qconn *conn, int64_t sid,
              uint32_t id, int role, uint16_t op, const cJSON *r)
{
    int kind = conn_key_kind(s, conn);
    int member_op = op == MM_CTRL_SPAWN_MEMBER || op == MM_CTRL_STOP_MEMBER;
    const char *what =
        op == MM_CTRL_SPAWN || op == MM_CTRL_SPAWN_MEMBER ? "spawn" : "stop";
    if (kind == MM_KEY_READONLY || (member_op && (role != MM_WIRE_ROLE_MEMBER ||
                                                  kind != MM_KEY_CLUSTER))) {
        s->st.refused++;
        session_err(s, conn, sid, id, MM_EUNAUTHORIZED,
                    member_op ? "%s between members only"
                              : "%s needs a cluster or client key (this "
                                "session holds a read-only key)",
                    what);
        return;
    }
    switch (op) {
    case MM_CTRL_SPAWN:
        op_spawn(s, conn, sid, id, r);
        break;
    case MM_CTRL_STOP:
        op_stop(s, conn, sid, id, r);
        break;
    case MM_CTRL_SPAWN_MEMBER:
        spawn_local(s, conn, sid, id, r);
        break;
    default:
        stop_local(s, conn, sid, id, r);
        break;
    }
}

/* ---- dispatch
 * ------------------------------------------------------------------------------
 */

static void
on_ctrl_req(void *data, struct mm_qconn *conn,
            const uint8_t peer[MM_NODE_ID_LEN], int role, int64_t sid,
            uint8_t type, const uint8_t *body, size_t len)
{
    struct mm_session *s = data;
    (void)peer;
    (void)type;
    if (s->stopped) return;
    struct mm_wire_ctrl req;
    if (mm__wire_ctrl_decode(&req, body, len) != 0)
        return; /* not even an id to answer to */
    cJSON *j = NULL;
    if (req.body_len) {
        j = cJSON_ParseWithLength((const char *)req.body, req.body_len);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            session_err(s, conn, sid, req.id, MM_EDECODE,
                        "request body is not a JSON object");
            return;
        }
    }
    static const cJSON empty = {0};
    const cJSON *r = j ? j : &empty;
    if (req.code != MM_CTRL_UNWATCH && conn_full(s, conn)) {
        /* Unwatching frees: it is always served. */
        session_err(s, conn, sid, req.id, MM_EOVERLOADED,
                    "overloaded: %zu bytes to this client are not "
                    "acknowledged yet",
                    conn_unacked(s, conn));
        cJSON_Delete(j);
        return;
    }
    switch (req.code) {
    case MM_CTRL_MEMBERS:
        op_members(s, conn, sid, req.id);
        break;
    case MM_CTRL_TIMINGS:
        op_timings(s, conn, sid, req.id);
        break;
    case MM_CTRL_LOOKUP:
        op_lookup(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_WATCH:
        op_watch(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_UNWATCH:
        op_unwatch(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_OPLOG:
        op_oplog(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_OPLOG_FOLLOW:
        op_oplog_follow(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_MEMBERS_FOLLOW:
        op_members_follow(s, conn, sid, req.id);
        break;
    case MM_CTRL_PARTITIONS:
        op_partitions(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_PING:
        op_ping(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_ECHO:
        op_echo(s, conn, sid, req.id);
        break;
    case MM_CTRL_TOP:
        op_top(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_NODE_STATS:
        if (role != MM_WIRE_ROLE_MEMBER) { /* clients ask TOP */
            session_err(s, conn, sid, req.id, MM_EINVAL,
                        "node-stats is between members");
            break;
        }
        op_node_stats(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_PROBE:
        if (role != MM_WIRE_ROLE_MEMBER) { /* clients ask PING */
            session_err(s, conn, sid, req.id, MM_EINVAL,
                        "probe is between members");
            break;
        }
        op_probe(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_FORCE_LEAVE:
        /* It changes every member's view: the cluster key only. */
        if (conn_key_kind(s, conn) != MM_KEY_CLUSTER) {
            s->st.refused++;
            session_err(s, conn, sid, req.id, MM_EUNAUTHORIZED,
                        "force-leave needs the cluster key (this session "
                        "holds a %s key)",
                        mm__key_kind_name(conn_key_kind(s, conn)));
            break;
        }
        op_force_leave(s, conn, sid, req.id, r);
        break;
    case MM_CTRL_SPAWN:
    case MM_CTRL_STOP:
    case MM_CTRL_SPAWN_MEMBER:
    case MM_CTRL_STOP_MEMBER:
        op_spawn_stop(s, conn, sid, req.id, role, req.code, r);
        break;
    case MM_CTRL_KEYS:
    case MM_CTRL_KEYS_MEMBER:
        /* Keys change only with the cluster key; a step's fan-out only
         * between members. */
        if (conn_key_kind(s, conn) != MM_KEY_CLUSTER ||
            (req.code == MM_CTRL_KEYS_MEMBER && role != MM_WIRE_ROLE_MEMBER)) {
            s->st.refused++;
            session_err(s, conn, sid, req.id, MM_EUNAUTHORIZED,
                        "keys needs the cluster key (this session holds a "
                        "%s key)",
                        mm__key_kind_name(conn_key_kind(s, conn)));
            break;
        }
        if (req.code == MM_CTRL_KEYS)
            op_keys(s, conn, sid, req.id, r);
        else
            op_keys_member(s, conn, sid, req.id, r);
        break;
    default:
        session_err(s, conn, sid, req.id, MM_EINVAL, "unknown op %u",
                    (unsigned)req.code);
        break;
    }
    cJSON_Delete(j);
}

/* ---- lifecycle
 * ---------------------------------------------------------------------------
 */

static size_t
conn_waiters(struct mm_session *s, struct mm_qconn *conn)
{
    size_t n = 0;
    for (struct waiter *w = s->waiters; w; w = w->next)
        n += w->conn == conn;
    return n;
}

static size_t
conn_subs(struct mm_session *s, struct mm_qconn *conn)
{
    size_t n = 0;
    for (struct sub *sb = s->subs; sb; sb = sb->next)
        n += sb->conn == conn && !sb->dead;
    return n;
}

/* Held watches whose connection drained go on; ended follows go. */
static void
retry_cb(struct mm_tmr *t)
{
    struct mm_session *s = mm__container_of(t, struct mm_session, retry);
    int again = 0;
    struct sub **pp = &s->subs;
    while (*pp) {
        struct sub *sb = *pp;
        if (sb->dead) {
            *pp = sb->next;
            sub_end(sb);
            continue;
        }
        if (sb->held) {
            if (conn_unacked(s, sb->conn) <= MM_SESSION_SEND_HIGH / 2) {
                sb->held = 0;
                mm__listing_release(sb->listing);
            } else {
                again = 1;
            }
        }
        pp = &sb->next;
    }
    if (again) retry_arm(s);
}

static void
retry_arm(struct mm_session *s)
{
    if (s->stopped || mm__tq_active(&s->retry)) return;
    mm__tmr_start(s->home, &s->retry, mm__now_ms() + MM_SESSION_RETRY_MS);
}

/* A connection went down: drop its subscriptions and waiting lookups. */
static void
conn_gone_cb(void *data, struct mm_qconn *conn)
{
    struct mm_session *s = data;
    keys_conn_gone(s, conn);
    struct sub **pp = &s->subs;
    while (*pp) {
        struct sub *sb = *pp;
        if (sb->conn == conn) {
            *pp = sb->next;
            sub_end(sb);
        } else {
            pp = &sb->next;
        }
    }
    struct waiter **wp = &s->waiters;
    while (*wp) {
        struct waiter *w = *wp;
        if (w->conn == conn &&
            mm__lookup_wait_cancel(s->n, waiter_cb, w) == 0) {
            *wp = w->next;
            mm__free(w->label);
            mm__free(w->type);
            mm__free(w);
            continue;
        }
        if (w->conn == conn) w->conn = NULL; /* its answer is posted */
        wp = &w->next;
    }
    gathers_conn_gone(s, conn);
}

/* ---- the local control socket (local.c) ---------------------------------
 */

static void
local_frame_cb(void *data, struct mm_lconn *lc, uint8_t type,
               const uint8_t *body, size_t len)
{
    static const uint8_t no_peer[MM_NODE_ID_LEN];
    if (type != MM_WIRE_CTRL_REQ) { /* calls and the rest: QUIC only */
        MM_LOG(MM_LOG_INFO, "session",
               "closing a local connection: a %s frame (only control "
               "requests go over the local socket)",
               mm__wire_type_name(type));
        mm__local_conn_close(lc);
        return;
    }
    on_ctrl_req(data, (struct mm_qconn *)(void *)lc, no_peer,
                MM_WIRE_ROLE_CLIENT, 0, type, body, len);
}

static void
local_gone_cb(void *data, struct mm_lconn *lc)
{
    conn_gone_cb(data, (struct mm_qconn *)(void *)lc);
}

void
mm__session_local_start(struct mm_session *s, const char *data_dir)
{
    if (s->local || s->stopped || !data_dir) return;
    const struct mm_local_ops ops = {s, local_frame_cb, local_gone_cb};
    struct mm_local *l = NULL;
    if (mm__local_listen(&l, &s->home->loop, data_dir, NULL, &ops) == 0)
        s->local = l;
}

int
mm__session_new(struct mm_session **out, mm_node *n, struct mm_net *net,
                struct mm_membership *m)
{
    struct mm_session *s = mm__calloc(1, sizeof(*s));
    if (!s) return UV_ENOMEM;
    s->n = n;
    s->m = m;
    s->home = &n->shards[0];
    s->retry.fn = retry_cb;
    s->net = net;
    mm__net_on_frame(net, MM_WIRE_CTRL_REQ, on_ctrl_req, s);
    s->keys.net = net;
    mm__net_on_frame(net, MM_WIRE_CTRL_RESP, on_ctrl_resp, s);
    mm__net_on_conn_gone(net, conn_gone_cb, s);
    if (m) mm__membership_on_change(m, member_change_cb, s);
    *out = s;
    return 0;
}

void
mm__session_stop(struct mm_session *s)
{
    s->stopped = 1;
    mm__tmr_stop(s->home, &s->retry);
    mm__local_close(s->local);
    if (s->m) mm__membership_on_change(s->m, NULL, NULL);
    gathers_free(s);
    keys_free_all(s);
    while (s->subs) {
        struct sub *sb = s->subs;
        s->subs = sb->next;
        sub_end(sb);
    }
    for (struct waiter *w = s->waiters; w; w = w->next)
        w->conn = NULL;
}

void
mm__session_free(struct mm_session *s)
{
    if (!s) return;
    mm__tmr_stop(s->home, &s->retry);
    gathers_free(s);
    mm__top_free_all(&s->tops); /* no shard runs now */
    mm__local_free(s->local);
    keys_free_all(s);
    while (s->subs) {
        struct sub *sb = s->subs;
        s->subs = sb->next;
        sub_end(sb);
    }
    /* Lookups still waiting: the node is gone, their timers never fire. */
    while (s->waiters) {
        struct waiter *w = s->waiters;
        s->waiters = w->next;
        mm__free(w->label);
        mm__free(w->type);
        mm__free(w);
    }
    mm__free(s);
}
