/*
 * client.c — client sessions (murmer.h "Client sessions"; docs/design.md,
 * Client sessions): what the murmer CLI uses to talk to a cluster without
 * joining it.
 *
 * A session owns a private uv loop, run only inside its blocking calls, and
 * one QUIC connection in role CLIENT to a seed.  Control requests (members,
 * lookup, watch, oplog, force-leave) travel as CTRL_REQ frames on the
 * control stream (docs/wire.md "Client sessions"); calls travel as INVOKE
 * frames with a label target on a stream of their own, which the seed
 * serves or forwards to the owner.  The one-shot control commands and
 * their result arrays are in client_cmds.c.
 *
 * Start-up cost matters (`murmer members` <= 10 ms including process
 * start): the identity is read from its files without OpenSSL and without
 * the data-dir lock (many CLI processes may share it); only the very first
 * run makes it (see mm__identity_read()).
 */
#include "common.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <cJSON.h>

#include "buf.h"
#include "client_int.h"
#include "ckey.h"
#include "identity.h"
#include "transport/quic.h"
#include "discovery/mdns.h"
#include "wire.h"

#define DEFAULT_SEED "127.0.0.1:7420"
#define PING_MS 1000u /* liveness probe of a subscription's seed */

/* A request waiting for its answer: a control request (CTRL_REQ, answered
 * by CTRL_RESP) or a call (INVOKE, answered by RESPONSE). */
struct pend {
    struct pend *next;
    uint64_t id; /* the control request id (u32 on the wire) or call id */
    int call;    /* 1: an INVOKE */
    int done;
    int detached; /* nobody waits: freed when answered */
    int status;
    char *body; /* owned, NUL-terminated */
    size_t len;
};

struct cevent { /* a CTRL_EVENT queued for its subscriber */
    struct cevent *next;
    uint32_t sub;
    uint16_t code;
    char *body; /* owned, NUL-terminated */
    size_t len;
};

struct mm_client {
    uv_loop_t loop;
    struct mm_tmr turn_tmr; /* wakes a turn at its deadline */
    struct mm_tmr ping_tmr; /* a subscription's liveness ping, every PING_MS */
    struct mm_identity id;
    struct mm_keyring kr;
    struct mm_quic *q;
    struct mm_tq tq; /* the transport's timers; .loop set once initialised */
    struct mm_qconn *conn; /* the up connection, or NULL */
    struct mm_qconn *dialing;
    int dial_done;
    int down_err;
    uint32_t timeout_ms;
    char **seeds;
    size_t nseeds;
    char seed_name[64];
    char seed_addr[96];
    char errtext[512];
    uint32_t next_id;
    uint64_t next_call;
    struct pend *pending;
    struct cevent *ev_head, *ev_tail;
    int loop_init;
    uv_async_t intr; /* mm_client_interrupt() wakes the loop */
    int intr_init;
    volatile sig_atomic_t interrupted;
};

/* ---- errors
 * -------------------------------------------------------------------- */

static void client_errtext(mm_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_errtext(mm_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errtext, sizeof(c->errtext), fmt, ap);
    va_end(ap);
}

void
mm__client_set_errtext(mm_client *c, const char *text)
{
    client_errtext(c, "%s", text);
}

/* Keeps the seed's {"error": "..."} text. */
static void
client_errbody(mm_client *c, const char *body)
{
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(e)) client_errtext(c, "%s", e->valuestring);
    cJSON_Delete(j);
}

/* The text of this thread's last failed mm_client_connect(). */
static _Thread_local char connect_err[512];

/* With |c| NULL: why this thread's last mm_client_connect() failed. */
MM_EXTERN const char *
mm_client_error_text(const mm_client *c)
{
    return c ? c->errtext : connect_err;
}

/* ---- transport callbacks ---------------------------------------------------
 */

static void
on_conn_up(void *data, struct mm_qconn *q, const uint8_t peer_id[16],
           uint64_t peer_gen, int role, const char *peer_name,
           const char *peer_addr)
{
    mm_client *c = data;
    (void)peer_id;
    (void)peer_gen;
    (void)role;
    if (q != c->dialing) {
        mm__quic_conn_close(q, MM_ECLOSED);
        return;
    }
    c->conn = q;
    c->dialing = NULL;
    c->dial_done = 1;
    c->down_err = 0;
    snprintf(c->seed_name, sizeof(c->seed_name), "%s",
             peer_name ? peer_name : "");
    if (peer_addr && *peer_addr)
        snprintf(c->seed_addr, sizeof(c->seed_addr), "%s", peer_addr);
}

static void
fail_pending(mm_client *c, int err)
{
    for (struct pend *p = c->pending; p; p = p->next)
        if (!p->done && !p->detached) {
            p->done = 1;
            p->status = err;
        }
}

static void
on_conn_down(void *data, struct mm_qconn *q, int err)
{
    mm_client *c = data;
    if (q == c->dialing) {
        c->dialing = NULL;
        c->dial_done = 1;
        c->down_err = err;
        return;
    }
    if (q != c->conn) return;
    c->conn = NULL;
    c->down_err = err == MM_EUNAUTHORIZED ? err : MM_EUNREACHABLE;
    fail_pending(c, c->down_err);
}

static char *
dup_body(const uint8_t *b, size_t len)
{
    return mm__strndup((const char *)b, len);
}

/* Settles the pending request or call |id| with its answer. */
static void
pend_answer(mm_client *c, int call, uint64_t id, uint16_t code,
            const uint8_t *body, size_t len)
{
    for (struct pend **pp = &c->pending; *pp; pp = &(*pp)->next) {
        struct pend *p = *pp;
        if (p->call != call || p->id != id || p->done) continue;
        if (p->detached) {
            *pp = p->next;
            mm__free(p);
            return;
        }
        p->done = 1;
        p->status = code ? mm_err_from_wire(code) : 0;
        if (len || !call) { /* a call's empty body stays NULL */
            p->body = dup_body(body, len);
            p->len = p->body ? len : 0;
            if (!p->body) p->status = UV_ENOMEM;
        }
        return;
    }
}

/* Unlinks and frees |p|. */
static void
pend_free(mm_client *c, struct pend *p)
{
    struct pend **pp = &c->pending;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    mm__free(p->body);
    mm__free(p);
}

static void
on_frame(void *data, struct mm_qconn *q, int64_t sid, uint8_t type,
         const uint8_t *body, size_t len)
{
    mm_client *c = data;
    (void)sid;
    if (q != c->conn) return;
    if (type == MM_WIRE_CTRL_RESP || type == MM_WIRE_CTRL_EVENT) {
        struct mm_wire_ctrl m;
        if (mm__wire_ctrl_decode(&m, body, len) != 0) return;
        if (type == MM_WIRE_CTRL_RESP) {
            pend_answer(c, 0, m.id, m.code, m.body, m.body_len);
            return;
        }
        struct cevent *e = mm__calloc(1, sizeof(*e));
        if (!e || !(e->body = dup_body(m.body, m.body_len))) {
            mm__free(e);
            return;
        }
        e->sub = m.id;
        e->code = m.code;
        e->len = m.body_len;
        if (c->ev_tail)
            c->ev_tail->next = e;
        else
            c->ev_head = e;
        c->ev_tail = e;
        return;
    }
    if (type == MM_WIRE_RESPONSE) {
        struct mm_wire_response r;
        if (mm__wire_response_decode(&r, body, len) == 0)
            pend_answer(c, 1, r.call_id, r.status, r.body, r.body_len);
    }
}

/* ---- the loop
 * ------------------------------------------------------------------ */

static void ping_tmr_cb(struct mm_tmr *t);

/* Only wakes the loop: client_turn() checks the deadline itself. */
static void
turn_tmr_cb(struct mm_tmr *t)
{
    (void)t;
}

/*
 * Runs one turn of the loop, waking up at |deadline| (absolute ms; 0 =
 * none).  0, MM_ETIMEOUT once the deadline has passed, or, when
 * |need_conn|, the connection's error once it is gone.
 */
static int
client_turn(mm_client *c, uint64_t deadline, int need_conn)
{
    if (need_conn && !c->conn)
        return c->down_err ? c->down_err : MM_EUNREACHABLE;
    uint64_t now = mm__now_ms();
    if (deadline && now >= deadline) return MM_ETIMEOUT;
    if (c->interrupted) return MM_ECLOSED;
    if (deadline) mm__tq_start(&c->tq, &c->turn_tmr, deadline * 1000000u);
    uv_run(&c->loop, UV_RUN_ONCE);
    mm__tq_stop(&c->tq, &c->turn_tmr);
    return c->interrupted ? MM_ECLOSED : 0;
}

MM_EXTERN void
mm_client_interrupt(mm_client *c)
{
    if (!c) return;
    c->interrupted = 1;
    if (c->intr_init) uv_async_send(&c->intr);
}

/* Runs the loop until |*flag| is set (0) or client_turn() fails. */
static int
client_pump(mm_client *c, const int *flag, uint64_t deadline, int need_conn)
{
    while (!*flag) {
        int rc = client_turn(c, deadline, need_conn);
        if (rc) return rc;
    }
    return 0;
}

uint64_t
mm__client_deadline(mm_client *c)
{
    return mm__now_ms() + c->timeout_ms;
}

/* ---- connecting
 * --------------------------------------------------------------- */

/* The identity of this CLI user (shared by its processes, read without
 * the lock); the error text says what is wrong. */
static int
client_identity(mm_client *c, const char *state_dir)
{
    char dir[1024];
    if (!state_dir) {
        int rc = mm__identity_default_dir(dir, sizeof(dir), NULL, 1);
        if (rc) {
            client_errtext(c, "no state dir for the client identity: %s",
                           mm_strerror(rc));
            return MM_EKEY;
        }
        state_dir = dir;
    }
    return mm__identity_read(&c->id, state_dir, c->errtext, sizeof(c->errtext));
}

/* Loads the cluster key; the error text says what is wrong.  Dev mode's
 * warning is not shown: the CLI says nothing about it. */
static int
client_keyring(mm_client *c, const char *path)
{
    int rc = mm__keyring_load(&c->kr, path, c->errtext, sizeof(c->errtext));
    if (rc == 0) c->errtext[0] = '\0';
    return rc;
}

/* Dials |addr| and waits for the connection; 0 or its error. */
static int
client_dial(mm_client *c, const char *addr, uint64_t deadline)
{
    struct mm_qconn *q = NULL;
    c->dial_done = 0;
    c->down_err = 0;
    int rc = mm__quic_dial(c->q, addr, NULL, &q);
    if (rc) {
        client_errtext(c, "bad seed address '%s'", addr);
        return rc == MM_EINVAL ? MM_EINVAL : MM_EUNREACHABLE;
    }
    c->dialing = q;
    rc = client_pump(c, &c->dial_done, deadline, 0);
    if (rc == MM_ETIMEOUT) {
        if (c->dialing) {
            mm__quic_conn_close(c->dialing, MM_ECLOSED);
            client_pump(c, &c->dial_done, mm__now_ms() + 100, 0);
            c->dialing = NULL;
        }
        return MM_EUNREACHABLE;
    }
    if (c->conn) {
        if (!c->seed_addr[0])
            snprintf(c->seed_addr, sizeof(c->seed_addr), "%s", addr);
        return 0;
    }
    return c->down_err == MM_EUNAUTHORIZED ? MM_EUNAUTHORIZED : MM_EUNREACHABLE;
}

MM_EXTERN void
mm_client_config_init(mm_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

static void
client_closed_cb(void *data)
{
    *(int *)data = 1;
}

MM_EXTERN void
mm_client_close(mm_client *c)
{
    if (!c) return;
    if (c->q) {
        int closed = 0;
        mm__quic_close(c->q, client_closed_cb, &closed);
        c->q = NULL;
        while (!closed)
            uv_run(&c->loop, UV_RUN_ONCE);
    }
    if (c->tq.loop) mm__tq_close(&c->tq);
    if (c->intr_init) uv_close((uv_handle_t *)&c->intr, NULL);
    if (c->loop_init) {
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
    }
    while (c->pending)
        pend_free(c, c->pending);
    while (c->ev_head) {
        struct cevent *e = c->ev_head;
        c->ev_head = e->next;
        mm__free(e->body);
        mm__free(e);
    }
    for (size_t i = 0; i < c->nseeds; i++)
        mm__free(c->seeds[i]);
    mm__free(c->seeds);
    mm__identity_release(&c->id);
    mm__keyring_release(&c->kr);
    mm__free(c);
}

MM_EXTERN int
mm_client_connect(mm_client **out, const mm_client_config *cfg)
{
    *out = NULL;
    mm_client *c = mm__calloc(1, sizeof(*c));
    if (!c) return UV_ENOMEM;
    c->id.lock_fd = -1;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : MM_DEFAULT_TIMEOUT_MS;
    int rc = UV_ENOMEM;
    size_t ns = cfg->nseeds ? cfg->nseeds : 1;
    if (!(c->seeds = mm__calloc(ns, sizeof(char *)))) goto fail;
    for (size_t i = 0; i < ns; i++) {
        if (!(c->seeds[i] =
                  mm__strdup(cfg->nseeds ? cfg->seeds[i] : DEFAULT_SEED)))
            goto fail;
        c->nseeds++;
    }
    if ((rc = client_keyring(c, cfg->cluster_key_file)) != 0) goto fail;
    if ((rc = client_identity(c, cfg->state_dir)) != 0) goto fail;
    if ((rc = uv_loop_init(&c->loop)) != 0) goto fail;
    c->loop_init = 1;
    if ((rc = uv_async_init(&c->loop, &c->intr, NULL)) != 0) goto fail;
    uv_unref((uv_handle_t *)&c->intr);
    c->intr_init = 1;
    if ((rc = mm__tq_init(&c->tq, &c->loop)) != 0) goto fail;
    c->turn_tmr.fn = turn_tmr_cb;
    c->ping_tmr.fn = ping_tmr_cb;

    struct mm_quic_config qc;
    mm__quic_config_init(&qc);
    qc.name = "murmer-cli";
    qc.role = MM_WIRE_ROLE_CLIENT;
    qc.handshake_ms = c->timeout_ms;
    qc.tq = &c->tq;
    struct mm_quic_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.data = c;
    ops.conn_up = on_conn_up;
    ops.conn_down = on_conn_down;
    ops.frame = on_frame;
    if ((rc = mm__quic_new(&c->q, &c->loop, &c->id, &c->kr, &qc, &ops)) != 0) {
        client_errtext(c, "cannot set up QUIC: %s", mm_strerror(rc));
        goto fail;
    }
    uint64_t deadline = mm__client_deadline(c);
    rc = MM_EUNREACHABLE;
    size_t seed = 0;
    /* The implicit local seed either answers at once or not at all: keep
     * time for the mDNS fallback. */
    uint64_t seed_deadline = deadline;
    if (cfg->nseeds == 0 && !c->kr.dev)
        seed_deadline = MM_MIN(deadline, mm__now_ms() + 500u);
    for (seed = 0; seed < c->nseeds; seed++) {
        rc = client_dial(c, c->seeds[seed], seed_deadline);
        if (rc == 0 || rc == MM_EUNAUTHORIZED) break;
    }
    if (seed >= c->nseeds) seed = c->nseeds - 1;
    /*
     * No explicit seed and 127.0.0.1:7420 silent: browse mDNS for a member
     * with our key (about a second; docs/design.md, Client sessions).  An
     * explicit seed never falls back, and the dev key never uses mDNS.
     */
    if (rc == MM_EUNREACHABLE && cfg->nseeds == 0 && !c->kr.dev) {
        uint64_t now = mm__now_ms();
        uint32_t left = deadline > now ? (uint32_t)(deadline - now) : 0;
        char found[96];
        if (left > 0 && mm__mdns_find_seed(&c->kr, MM_MIN(left, 2000u), found,
                                           sizeof(found)) == 0) {
            MM_LOG(MM_LOG_INFO, "client", "mDNS: found a member at %s", found);
            char *dup = mm__strdup(found);
            if (dup) {
                mm__free(c->seeds[0]);
                c->seeds[0] = dup;
                seed = 0;
                rc = client_dial(c, c->seeds[0], deadline);
            }
        }
    }
    if (rc == MM_EUNAUTHORIZED) {
        client_errtext(c,
                       "seed %s refused the cluster key (wrong key, or a "
                       "different cluster)",
                       c->seeds[seed]);
        goto fail;
    }
    if (rc) {
        if (c->nseeds == 1)
            client_errtext(c, "no answer from seed %s", c->seeds[0]);
        else
            client_errtext(c, "no answer from any of %zu seeds", c->nseeds);
        rc = MM_EUNREACHABLE;
        goto fail;
    }
    c->errtext[0] = '\0';
    MM_LOG(MM_LOG_INFO, "client", "connected to %s (%s)", c->seed_name,
           c->seed_addr);
    *out = c;
    return 0;
fail:
    snprintf(connect_err, sizeof(connect_err), "%s", c->errtext);
    mm_client_close(c);
    return rc;
}

MM_EXTERN const char *
mm_client_seed_name(const mm_client *c)
{
    return c->seed_name;
}

MM_EXTERN const char *
mm_client_seed_addr(const mm_client *c)
{
    return c->seed_addr;
}

/* ---- control requests
 * --------------------------------------------------------- */

/*
 * Sends the frame that built into |b| (|rc| 0) on stream |sid|, releases
 * |b|, and queues |p| among the pending: |p|, or NULL with |*err| and |p|
 * freed (MM_EINVAL or UV_ENOMEM as they are, any other failure
 * MM_EUNREACHABLE).
 */
static struct pend *
pend_send(mm_client *c, struct pend *p, int64_t sid, struct mm_buf *b, int rc,
          int *err)
{
    if (rc == 0) rc = mm__quic_send_frame(c->conn, sid, b->data, b->len);
    mm__buf_release(b);
    if (rc) {
        mm__free(p);
        *err = rc == UV_ENOMEM || rc == MM_EINVAL ? rc : MM_EUNREACHABLE;
        return NULL;
    }
    p->next = c->pending;
    c->pending = p;
    return p;
}

static struct pend *
req_send(mm_client *c, uint16_t op, const cJSON *body, int *err)
{
    if (!c->conn) {
        *err = c->down_err ? c->down_err : MM_EUNREACHABLE;
        return NULL;
    }
    struct pend *r = mm__calloc(1, sizeof(*r));
    char *js = body ? cJSON_PrintUnformatted(body) : NULL;
    if (!r || (body && !js)) {
        mm__free(r);
        cJSON_free(js);
        *err = UV_ENOMEM;
        return NULL;
    }
    r->id = ++c->next_id;
    struct mm_wire_ctrl m;
    m.id = c->next_id;
    m.code = op;
    m.body = (const uint8_t *)(js ? js : "{}");
    m.body_len = js ? strlen(js) : 2;
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_ctrl_append(&b, MM_WIRE_CTRL_REQ, &m);
    cJSON_free(js);
    return pend_send(c, r, mm__quic_control_stream(c->conn), &b, rc, err);
}

/*
 * Sends a request and waits for its answer: 0 with |*resp| the parsed body
 * (the caller's, cJSON_Delete), or an error (the seed's text kept).
 */
int
mm__client_request(mm_client *c, uint16_t op, const cJSON *body,
                   uint64_t deadline, cJSON **resp)
{
    int rc;
    *resp = NULL;
    c->errtext[0] = '\0';
    struct pend *r = req_send(c, op, body, &rc);
    if (!r) {
        client_errtext(c, "connection to %s lost", c->seed_addr);
        return rc;
    }
    rc = client_pump(c, &r->done, deadline, 1);
    if (rc == 0) rc = r->status;
    if (rc == 0) {
        *resp = cJSON_ParseWithLength(r->body, r->len);
        if (!*resp) {
            client_errtext(c, "malformed answer from the seed");
            rc = MM_EDECODE;
        }
    } else if (r->body) {
        client_errbody(c, r->body);
    } else if (rc == MM_ETIMEOUT) {
        client_errtext(c, "no answer from %s within %" PRIu32 " ms",
                       c->seed_addr, c->timeout_ms);
    } else if (rc == MM_EUNREACHABLE) {
        client_errtext(c, "connection to %s lost", c->seed_addr);
    }
    pend_free(c, r);
    return rc;
}

/* ---- send
 * ------------------------------------------------------------------------- */

/*
 * Sends |n| copies of a request at once, without waiting in between, then
 * runs the loop until |want| of them are answered or |deadline| passes;
 * counts[0] gets the answers with status 0, counts[1] the `overloaded`
 * ones, counts[2] the others.  The rest are forgotten.  0 or MM_ETIMEOUT.
 * For tests and benchmarks of the seed's bounds.
 */
int
mm__client_pipeline(mm_client *c, uint16_t op, const cJSON *body, size_t n,
                    size_t want, uint64_t deadline, size_t counts[3])
{
    counts[0] = counts[1] = counts[2] = 0;
    struct pend **v = mm__calloc(n ? n : 1, sizeof(*v));
    if (!v) return UV_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        v[i] = req_send(c, op, body, &rc);
    size_t got = 0;
    while (rc == 0) {
        got = 0;
        for (size_t i = 0; i < n; i++)
            got += v[i] && v[i]->done;
        if (got >= want) break;
        rc = client_turn(c, deadline, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (!v[i]) continue;
        if (v[i]->done)
            counts[v[i]->status == 0                ? 0
                   : v[i]->status == MM_EOVERLOADED ? 1
                                                    : 2]++;
        pend_free(c, v[i]);
    }
    mm__free(v);
    return rc;
}

static struct pend *
call_send(mm_client *c, int64_t sid, const char *label, const char *type,
          const char *json, size_t len, uint32_t deadline_ms, int *err)
{
    struct pend *k = mm__calloc(1, sizeof(*k));
    if (!k) {
        *err = UV_ENOMEM;
        return NULL;
    }
    k->call = 1;
    k->id = ++c->next_call;
    struct mm_wire_invoke inv;
    memset(&inv, 0, sizeof(inv));
    inv.call_id = k->id;
    inv.target_kind = MM_WIRE_TARGET_LABEL;
    inv.label = label;
    inv.label_len = strlen(label);
    inv.type = type;
    inv.type_len = strlen(type);
    inv.content = MM_CONTENT_JSON;
    inv.payload = (const uint8_t *)json;
    inv.payload_len = len;
    inv.deadline_ms = deadline_ms;
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_invoke_append(&b, &inv);
    return pend_send(c, k, sid, &b, rc, err);
}

static int
calls_done(struct pend *const *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (calls[i] && !calls[i]->done) return 0;
    return 1;
}

MM_EXTERN int
mm_client_send(mm_client *c, const char *label, const char *key,
               const char *type, const char *json, size_t len,
               mm_send_result **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    c->errtext[0] = '\0';
    if ((!label) == (!key) || !type || !*type) return MM_EINVAL;
    if (!json) {
        json = "null";
        len = 4;
    }
    if (!c->conn) return c->down_err ? c->down_err : MM_EUNREACHABLE;
    uint64_t deadline = mm__client_deadline(c);
    int rc;
    mm_actor_info *targets = NULL;
    size_t ntargets = 0;
    struct pend *lk = NULL;
    if (key) {
        rc = mm_client_lookup(c, NULL, NULL, key, 0, 0, &targets, &ntargets);
        if (rc == MM_ENOTFOUND) {
            mm_send_result *r = mm__res_new(0);
            if (!r) return UV_ENOMEM;
            *out = r;
            return 0; /* delivered 0/0 */
        }
        if (rc) return rc;
    } else {
        /* The endpoint for the report, asked in the same round trip. */
        cJSON *req = mm__client_lookup_body(label, NULL, NULL, 0, 0);
        if (req) lk = req_send(c, MM_CTRL_LOOKUP, req, &rc);
        cJSON_Delete(req);
    }
    size_t cnt = key ? ntargets : 1;
    mm_send_result *res = mm__res_new(cnt * sizeof(*res));
    struct pend **calls = mm__calloc(cnt ? cnt : 1, sizeof(*calls));
    int64_t sid = -1;
    rc = 0;
    if (!res || !calls) {
        rc = UV_ENOMEM;
        goto out;
    }
    if ((rc = mm__quic_stream_open(c->conn, &sid)) != 0) {
        client_errtext(c, "cannot open a stream to %s", c->seed_addr);
        rc = rc == UV_EAGAIN ? MM_EOVERLOADED : MM_EUNREACHABLE;
        goto out;
    }
    uint64_t now = mm__now_ms();
    uint32_t left = deadline > now ? (uint32_t)(deadline - now) : 1;
    for (size_t i = 0; i < cnt; i++) {
        const char *tl = key ? targets[i].label : label;
        res[i].label = mm__res_str(res, tl);
        if (key) res[i].ep = targets[i].ep;
        int err = 0;
        calls[i] = call_send(c, sid, tl, type, json, len, left, &err);
        if (!calls[i]) res[i].status = err;
    }
    /* All answered (and the endpoint's lookup), the deadline, or the
     * connection lost. */
    while (!calls_done(calls, cnt) || (lk && !lk->done))
        if (client_turn(c, deadline, 1) != 0) break;
    for (size_t i = 0; i < cnt; i++) {
        struct pend *k = calls[i];
        if (!k) continue;
        if (!k->done)
            res[i].status = c->conn ? MM_ETIMEOUT : MM_EUNREACHABLE;
        else
            res[i].status = k->status;
        if (k->done && k->body) {
            res[i].body = mm__res_strn(res, k->body, k->len);
            res[i].len = k->len;
        }
        pend_free(c, k);
    }
    if (lk && lk->done && lk->status == 0 && lk->body) {
        cJSON *j = cJSON_ParseWithLength(lk->body, lk->len);
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "actors");
        const char *ep = jstr(cJSON_GetArrayItem(arr, 0), "endpoint");
        if (ep) mm_endpoint_parse(&res[0].ep, ep);
        cJSON_Delete(j);
    }
    if (c->conn) mm__quic_stream_close(c->conn, sid);
    *out = res;
    *n = cnt;
    res = NULL;
out:
    if (lk) pend_free(c, lk);
    mm__free(calls);
    mm_client_free_result(c, res);
    mm_client_free_result(c, targets);
    return rc;
}

/* One call of mm_client_send_stream(): in flight (|k|) or answered
 * without one (|local|). */
struct sslot {
    struct pend *k;
    uint64_t deadline; /* ms */
    int local, status;
    char *text; /* |local|: the JSON text of the answer */
};

static void
sslot_answer(mm_client *c, struct sslot *s, uint64_t index, int status,
             mm_client_done_fn done, void *data)
{
    if (s->local) {
        done(data, index, s->status, s->text, s->text ? strlen(s->text) : 0);
    } else if (s->k && s->k->done) {
        done(data, index, s->k->status, s->k->body, s->k->len);
    } else {
        char text[160];
        snprintf(text, sizeof(text), "\"%s\"", mm_strerror(status));
        done(data, index, status, text, strlen(text));
    }
    if (s->k) pend_free(c, s->k);
    mm__free(s->text);
    memset(s, 0, sizeof(*s));
}

MM_EXTERN int
mm_client_send_stream(mm_client *c, const char *label, unsigned window,
                      mm_client_next_fn next, mm_client_done_fn done,
                      void *data)
{
    c->errtext[0] = '\0';
    if (!label || !*label || !next || !done || window < 1 || window > 1024)
        return MM_EINVAL;
    struct sslot *ring = mm__calloc(window, sizeof(*ring));
    if (!ring) return UV_ENOMEM;
    int64_t sid = -1;
    int lost = c->conn ? 0 : (c->down_err ? c->down_err : MM_EUNREACHABLE);
    if (!lost && mm__quic_stream_open(c->conn, &sid) != 0)
        lost = MM_EOVERLOADED;
    uint64_t timeout = mm__client_deadline(c) - mm__now_ms();
    uint64_t head = 0, count = 0; /* ring[head % window]: the oldest */
    int rc = 0, eof = 0;
    for (;;) {
        while (!eof && count < window) {
            const char *type = NULL, *json = NULL;
            size_t len = 0;
            int r = next(data, &type, &json, &len);
            if (r <= 0) {
                eof = 1;
                rc = r;
                break;
            }
            struct sslot *s = &ring[(head + count) % window];
            count++;
            if (type == NULL || lost) {
                s->local = 1;
                s->status = type == NULL ? MM_EINVAL : lost;
                if (type == NULL) s->text = mm__strndup(json, len);
                continue;
            }
            int err = 0;
            s->deadline = mm__now_ms() + timeout;
            s->k = call_send(c, sid, label, type, json, len,
                             (uint32_t)MM_MIN(timeout, UINT32_MAX), &err);
            if (!s->k) {
                s->local = 1;
                s->status = err;
            }
        }
        /* Answers go out in order: the oldest first. */
        while (count > 0) {
            struct sslot *s = &ring[head % window];
            if (!s->local && !(s->k && s->k->done) && !lost) break;
            sslot_answer(c, s, head, lost, done, data);
            head++;
            count--;
        }
        if (count == 0 && eof) break;
        if (count == 0) continue;
        struct sslot *s = &ring[head % window];
        int t = client_turn(c, s->deadline, 1);
        if (t == MM_ETIMEOUT) {
            if (s->k && !s->k->done) {
                s->k->done = 1;
                s->k->status = MM_ETIMEOUT;
                mm__free(s->k->body);
                s->k->body = NULL;
                s->k->len = 0;
            }
        } else if (t != 0) {
            lost = t;
        }
    }
    if (sid >= 0 && c->conn) mm__quic_stream_close(c->conn, sid);
    mm__free(ring);
    return rc;
}

/* ---- subscriptions
 * -------------------------------------------------------------- */

/* Takes the first queued event of |sub| (or NULL). */
static struct cevent *
event_take(mm_client *c, uint32_t sub)
{
    struct cevent **pp = &c->ev_head, *prev = NULL;
    while (*pp) {
        struct cevent *e = *pp;
        if (e->sub == sub) {
            *pp = e->next;
            if (c->ev_tail == e) c->ev_tail = prev;
            e->next = NULL;
            return e;
        }
        prev = e;
        pp = &e->next;
    }
    return NULL;
}

static void
event_drop_all(mm_client *c)
{
    while (c->ev_head) {
        struct cevent *e = c->ev_head;
        c->ev_head = e->next;
        mm__free(e->body);
        mm__free(e);
    }
    c->ev_tail = NULL;
}

/* Starts a subscription; 0 and |*sub| its id. */
static int
sub_start(mm_client *c, uint16_t op, const cJSON *body, uint32_t *sub)
{
    cJSON *resp;
    int rc = mm__client_request(c, op, body, mm__client_deadline(c), &resp);
    if (rc) return rc;
    cJSON_Delete(resp);
    *sub = c->next_id; /* the request id just used */
    return 0;
}

/* A cheap request that keeps data outstanding, so that a vanished seed is
 * noticed within the transport's probe_fail_ms. */
static void
ping_tmr_cb(struct mm_tmr *t)
{
    mm_client *c = mm__container_of(t, mm_client, ping_tmr);
    mm__tq_start_in(&c->tq, &c->ping_tmr, PING_MS);
    if (!c->conn) return;
    int err;
    struct pend *r = req_send(c, MM_CTRL_TIMINGS, NULL, &err);
    if (r) r->detached = 1;
}

/*
 * Waits for the next event of |sub|: 0 with |*e|, MM_ETIMEOUT after
 * |idle_ms| of silence (0 = wait for ever), or the connection's error.
 */
static int
sub_next(mm_client *c, uint32_t sub, uint32_t idle_ms, struct cevent **e)
{
    uint64_t deadline = idle_ms ? mm__now_ms() + idle_ms : 0;
    for (;;) {
        *e = event_take(c, sub);
        if (*e) return 0;
        int rc = client_turn(c, deadline, 1);
        if (rc) return rc;
    }
}

struct member_addr {
    char addr[96];
};

static int
watch_candidates(mm_client *c, struct member_addr **out, size_t *n)
{
    mm_member_info *m;
    size_t cnt;
    *out = NULL;
    *n = 0;
    int rc = mm_client_members(c, &m, &cnt);
    if (rc) return rc;
    struct member_addr *a = mm__calloc(cnt ? cnt : 1, sizeof(*a));
    if (!a) {
        mm_client_free_result(c, m);
        return UV_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (strcmp(m[i].state, "alive") != 0 ||
            strcmp(m[i].addr, c->seed_addr) == 0)
            continue;
        snprintf(a[k++].addr, sizeof(a->addr), "%s", m[i].addr);
    }
    mm_client_free_result(c, m);
    *out = a;
    *n = k;
    return 0;
}

/* After the seed went: dial the other members in turn. */
static int
client_reconnect(mm_client *c, const struct member_addr *cand, size_t n)
{
    if (c->conn) return 0;
    event_drop_all(c);
    for (size_t i = 0; i < n; i++) {
        c->seed_addr[0] = '\0';
        if (client_dial(c, cand[i].addr, mm__client_deadline(c)) == 0) {
            MM_LOG(MM_LOG_INFO, "client", "reconnected through %s",
                   cand[i].addr);
            return 0;
        }
    }
    client_errtext(c, "the seed went away and no other member answered");
    return MM_EUNREACHABLE;
}

/* An event of code 0: the seed ended the subscription (its reason is
 * kept for mm_client_error_text).  Frees |e|; MM_ECLOSED. */
static int
sub_ended(mm_client *c, struct cevent *e)
{
    client_errbody(c, e->body);
    mm__free(e->body);
    mm__free(e);
    return MM_ECLOSED;
}

/* The next event of subscription |sub| before |idle_end| (ms; 0: no
 * bound), or MM_ETIMEOUT with the error text "no |what| within |idle| ms",
 * or the connection's error. */
static int
sub_next_idle(mm_client *c, uint32_t sub, uint64_t idle_end,
              uint32_t idle_timeout_ms, const char *what, struct cevent **e)
{
    uint32_t idle = 0;
    if (idle_end) {
        uint64_t now = mm__now_ms();
        if (now >= idle_end) return MM_ETIMEOUT;
        idle = (uint32_t)(idle_end - now);
    }
    int rc = sub_next(c, sub, idle, e);
    if (rc == MM_ETIMEOUT)
        client_errtext(c, "no %s within %" PRIu32 " ms", what, idle_timeout_ms);
    return rc;
}

MM_EXTERN int
mm_client_watch(mm_client *c, const char *key, const char *prefix,
                uint32_t idle_timeout_ms,
                int (*cb)(void *data, const mm_listing_event *ev), void *data)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) return UV_ENOMEM;
    if (key) cJSON_AddStringToObject(req, "key", key);
    if (prefix) cJSON_AddStringToObject(req, "prefix", prefix);
    struct member_addr *cand = NULL;
    size_t ncand = 0;
    int rc = watch_candidates(c, &cand, &ncand);
    uint32_t sub = 0;
    if (rc == 0) rc = sub_start(c, MM_CTRL_WATCH, req, &sub);
    mm__tq_start_in(&c->tq, &c->ping_tmr, PING_MS);
    uint64_t idle_end = idle_timeout_ms ? mm__now_ms() + idle_timeout_ms : 0;
    while (rc == 0) {
        struct cevent *e = NULL;
        rc = sub_next_idle(c, sub, idle_end, idle_timeout_ms, "event", &e);
        if (rc == MM_ETIMEOUT) break;
        if (rc && c->interrupted) break;
        if (rc) {
            /* The seed went: another member, a resync, a new backfill. */
            rc = client_reconnect(c, cand, ncand);
            if (rc) break;
            mm_listing_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = MM_LISTING_RESYNC;
            if (cb(data, &ev)) {
                rc = 0;
                goto done;
            }
            rc = sub_start(c, MM_CTRL_WATCH, req, &sub);
            continue;
        }
        if (e->code == 0) { /* the seed ended the subscription */
            rc = sub_ended(c, e);
            break;
        }
        cJSON *j = cJSON_ParseWithLength(e->body, e->len);
        mm_listing_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = e->code;
        ev.label = jstr(j, "label");
        const char *ep = jstr(j, "endpoint");
        if (ep) mm_endpoint_parse(&ev.ep, ep);
        ev.reason = (int)jnum(j, "reason", 0);
        int stop = cb(data, &ev);
        cJSON_Delete(j);
        mm__free(e->body);
        mm__free(e);
        if (stop) break;
        if (idle_timeout_ms && ev.kind != MM_LISTING_SYNCED)
            idle_end = mm__now_ms() + idle_timeout_ms;
    }
done:
    if (rc == 0 && c->conn) { /* tell the seed; no need to wait */
        cJSON *u = cJSON_CreateObject();
        int err;
        if (u && cJSON_AddNumberToObject(u, "sub", sub)) {
            struct pend *r = req_send(c, MM_CTRL_UNWATCH, u, &err);
            if (r) r->detached = 1;
        }
        cJSON_Delete(u);
    }
    mm__tq_stop(&c->tq, &c->ping_tmr);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    cJSON_Delete(req);
    mm__free(cand);
    return rc;
}

/* ---- oplog
 * ---------------------------------------------------------------------- */

MM_EXTERN int
mm_client_oplog_follow(mm_client *c, const char *origin,
                       int (*cb)(void *data, const char *origin, uint64_t gen,
                                 const mm_oplog_op *op),
                       void *data)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) return UV_ENOMEM;
    if (origin) cJSON_AddStringToObject(req, "origin", origin);
    uint32_t sub = 0;
    int rc = sub_start(c, MM_CTRL_OPLOG_FOLLOW, req, &sub);
    cJSON_Delete(req);
    mm__tq_start_in(&c->tq, &c->ping_tmr, PING_MS);
    while (rc == 0) {
        struct cevent *e = NULL;
        rc = sub_next(c, sub, 0, &e);
        if (rc) {
            client_errtext(c, "connection to %s lost", c->seed_addr);
            break;
        }
        if (e->code == 0) { /* the seed ended the subscription */
            rc = sub_ended(c, e);
            break;
        }
        cJSON *j = cJSON_ParseWithLength(e->body, e->len);
        void *res = mm__res_new(0);
        int stop = 0;
        if (j && res) {
            mm_oplog_op op;
            memset(&op, 0, sizeof(op));
            mm__client_parse_op(res, cJSON_GetObjectItemCaseSensitive(j, "op"),
                                &op);
            const char *org = jstr(j, "origin");
            stop = cb(data, org ? org : "", ju64(j, "generation"), &op);
        }
        mm_client_free_result(c, res);
        cJSON_Delete(j);
        mm__free(e->body);
        mm__free(e);
        if (stop) break;
    }
    mm__tq_stop(&c->tq, &c->ping_tmr);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return rc;
}

/* ---- member events
 * ---------------------------------------------------------------------- */

MM_EXTERN int
mm_client_members_follow(mm_client *c, uint32_t idle_timeout_ms,
                         int (*cb)(void *data, const char *event,
                                   const mm_member_info *m),
                         void *data)
{
    uint32_t sub = 0;
    int rc = sub_start(c, MM_CTRL_MEMBERS_FOLLOW, NULL, &sub);
    mm__tq_start_in(&c->tq, &c->ping_tmr, PING_MS);
    uint64_t idle_end = idle_timeout_ms ? mm__now_ms() + idle_timeout_ms : 0;
    while (rc == 0) {
        struct cevent *e = NULL;
        rc = sub_next_idle(c, sub, idle_end, idle_timeout_ms, "member event",
                           &e);
        if (rc == MM_ETIMEOUT) break;
        if (rc) {
            client_errtext(c, "connection to %s lost", c->seed_addr);
            break;
        }
        if (e->code == 0) { /* the seed ended the subscription */
            rc = sub_ended(c, e);
            break;
        }
        if (e->code == 2) { /* subscribed: live from here */
            mm__free(e->body);
            mm__free(e);
            if (cb(data, "synced", NULL)) break;
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(e->body, e->len);
        mm_member_info *m = mm__res_new(sizeof(*m));
        int stop = 0;
        if (j && m) {
            mm__client_parse_member(m, j);
            const char *ev = jstr(j, "event");
            stop = cb(data, ev ? ev : "updated", m);
        }
        mm_client_free_result(c, m);
        cJSON_Delete(j);
        mm__free(e->body);
        mm__free(e);
        if (stop) break;
        if (idle_timeout_ms) idle_end = mm__now_ms() + idle_timeout_ms;
    }
    if (rc == 0 && c->conn) { /* tell the seed; no need to wait */
        cJSON *u = cJSON_CreateObject();
        int err;
        if (u && cJSON_AddNumberToObject(u, "sub", sub)) {
            struct pend *r = req_send(c, MM_CTRL_UNWATCH, u, &err);
            if (r) r->detached = 1;
        }
        cJSON_Delete(u);
    }
    mm__tq_stop(&c->tq, &c->ping_tmr);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return rc;
}
