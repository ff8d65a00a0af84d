/*
 * test_wire_vectors.c — the golden vectors of docs/wire.md, read from the
 * document itself.
 *
 * Every vector in docs/wire.md is a line `**Vector `name`**` followed by a
 * fenced block whose first line is the whole frame in lowercase hex.  For
 * each name below, this test builds the frame the document describes with
 * lib/wire.c and asserts that it is byte for byte the document's; it then
 * decodes the document's bytes, checks every field, and re-encodes them
 * (canonical).  A vector in the document that this test does not know, or
 * one it expects and the document lacks, fails the test: the document
 * cannot drift from the code.
 *
 * Also here: the wire-version rules of docs/wire.md ("Versions"), and a
 * live check: a client built on the transport alone sends the document's
 * request vectors, byte for byte, to a real node and gets back the
 * document's answer vectors, byte for byte (the error texts included).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "buf.h"
#include "ckey.h"
#include "identity.h"
#include "murmer.h"
#include "transport/quic.h"
#include "transport/quic_int.h" /* the wire version in use */
#include "wire.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

/* ---- the document -------------------------------------------------------- */

static char *doc; /* docs/wire.md, loaded once */

static void
load_doc(void)
{
    if (doc == NULL) doc = repo_file("docs/wire.md", NULL);
    if (doc == NULL) fail_msg("docs/wire.md not found (run from the tree)");
}

#define VEC_MARK "**Vector `"

/*
 * The hex of vector |name| in the document (a static copy), or NULL.  The
 * vector must appear once.
 */
static const char *
doc_vector(const char *name)
{
    static char hex[8192];
    char mark[128];
    snprintf(mark, sizeof(mark), VEC_MARK "%s`**", name);
    const char *p = strstr(doc, mark);
    if (p == NULL) return NULL;
    if (strstr(p + 1, mark) != NULL)
        fail_msg("vector %s appears twice in docs/wire.md", name);
    const char *fence = strstr(p, "\n```\n");
    if (fence == NULL) fail_msg("vector %s: no fenced block follows", name);
    const char *line = fence + 5;
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    size_t n = (size_t)(end - line);
    assert_true(n > 0 && n < sizeof(hex) && n % 2 == 0);
    memcpy(hex, line, n);
    hex[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') ||
              (hex[i] >= 'a' && hex[i] <= 'f')))
            fail_msg("vector %s: not lowercase hex: %s", name, hex);
    return hex;
}

/* ---- the vectors ----------------------------------------------------------
 */

struct vec {
    const char *name;
    uint8_t type;
    struct mm_wire_hello hello;
    struct mm_wire_auth auth;
    struct mm_wire_auth_result result;
    struct mm_wire_invoke invoke;
    struct mm_wire_response resp;
    struct mm_wire_ctrl ctrl;
};

static const uint8_t node_a[MM_NODE_ID_LEN] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
static const uint8_t node_cli[MM_NODE_ID_LEN] = {
    0xc1, 0x1e, 0x47, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t ext_v2[] = {0x01, 0x02, 0x03, 0x04};
static const uint8_t raw3[] = {1, 2, 3};

/* |obj|.field = a string literal, |obj|.field_len = its length. */
#define SET_STR(obj, field, lit)                                               \
    ((obj).field = (lit), (obj).field##_len = sizeof(lit) - 1)
#define SET_BYTES(obj, field, lit)                                             \
    ((obj).field = (const uint8_t *)(lit), (obj).field##_len = sizeof(lit) - 1)

#define NVEC 32

/* The next vector of |vs|, zeroed and named. */
static struct vec *
add(struct vec *vs, size_t *n, const char *name, uint8_t type)
{
    assert_true(*n < NVEC);
    struct vec *v = &vs[(*n)++];
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->type = type;
    return v;
}

/* The vectors of docs/wire.md, as values; returns how many. */
static size_t
build(struct vec *vs)
{
    size_t n = 0;
    struct vec *v;

    /* HELLO */
    v = add(vs, &n, "hello", MM_WIRE_HELLO);
    v->hello = (struct mm_wire_hello){.version = 1,
                                      .features = 3,
                                      .generation = 7,
                                      .role = MM_WIRE_ROLE_MEMBER};
    memcpy(v->hello.node, node_a, MM_NODE_ID_LEN);
    SET_STR(v->hello, name, "node-a");
    SET_STR(v->hello, addr, "127.0.0.1:7420");
    v = add(vs, &n, "hello-client", MM_WIRE_HELLO);
    v->hello = (struct mm_wire_hello){.version = 1,
                                      .features = 0,
                                      .generation = 1,
                                      .role = MM_WIRE_ROLE_CLIENT};
    memcpy(v->hello.node, node_cli, MM_NODE_ID_LEN);
    SET_STR(v->hello, name, "murmer-cli");
    SET_STR(v->hello, addr, "");
    v = add(vs, &n, "hello-v2", MM_WIRE_HELLO);
    v->hello = (struct mm_wire_hello){.version = 2,
                                      .features = 0,
                                      .generation = 9,
                                      .role = MM_WIRE_ROLE_MEMBER};
    memcpy(v->hello.node, node_a, MM_NODE_ID_LEN);
    SET_STR(v->hello, name, "node-b");
    SET_STR(v->hello, addr, "");
    v->hello.ext = ext_v2;
    v->hello.ext_len = sizeof(ext_v2);

    /* AUTH, AUTH_RESULT */
    v = add(vs, &n, "auth", MM_WIRE_AUTH);
    for (int i = 0; i < MM_WIRE_PROOF_LEN; i++)
        v->auth.proof[i] = (uint8_t)i;
    v = add(vs, &n, "auth-result-ok", MM_WIRE_AUTH_RESULT);
    v->result.status = 0;
    v = add(vs, &n, "auth-result", MM_WIRE_AUTH_RESULT);
    v->result.status = mm_err_to_wire(MM_EUNAUTHORIZED);
    v = add(vs, &n, "auth-result-version", MM_WIRE_AUTH_RESULT);
    v->result.status = mm_err_to_wire(MM_EINVAL);

    /* INVOKE */
    v = add(vs, &n, "invoke-call", MM_WIRE_INVOKE);
    v->invoke = (struct mm_wire_invoke){
        .call_id = 1,
        .target_kind = MM_WIRE_TARGET_ACTOR,
        .generation = 7,
        .actor = 42,
        .content = MM_CONTENT_JSON,
        .deadline_ms = 5000,
    };
    SET_STR(v->invoke, type, "get");
    SET_BYTES(v->invoke, payload, "{}");
    v = add(vs, &n, "invoke-tell", MM_WIRE_INVOKE);
    v->invoke = (struct mm_wire_invoke){
        .call_id = 0,
        .flags = MM_WIRE_F_NO_REPLY,
        .target_kind = MM_WIRE_TARGET_LABEL,
        .content = MM_CONTENT_RAW,
    };
    SET_STR(v->invoke, label, "greeter");
    SET_STR(v->invoke, type, "hello");
    v->invoke.payload = raw3;
    v->invoke.payload_len = sizeof(raw3);
    v = add(vs, &n, "invoke-label-call", MM_WIRE_INVOKE);
    v->invoke = (struct mm_wire_invoke){
        .call_id = 1,
        .target_kind = MM_WIRE_TARGET_LABEL,
        .content = MM_CONTENT_JSON,
        .deadline_ms = 5000,
    };
    SET_STR(v->invoke, label, "echo");
    SET_STR(v->invoke, type, "echo");
    SET_BYTES(v->invoke, payload, "{\"x\":1}");

    /* RESPONSE */
    v = add(vs, &n, "response-ok", MM_WIRE_RESPONSE);
    v->resp = (struct mm_wire_response){
        .call_id = 1, .status = 0, .content = MM_CONTENT_JSON};
    SET_BYTES(v->resp, body, "{\"n\":1}");
    v = add(vs, &n, "response-err", MM_WIRE_RESPONSE);
    v->resp = (struct mm_wire_response){.call_id = 2,
                                        .status = mm_err_to_wire(MM_ENOTFOUND),
                                        .content = MM_CONTENT_NONE};
    v = add(vs, &n, "response-err-text", MM_WIRE_RESPONSE);
    v->resp = (struct mm_wire_response){.call_id = 1,
                                        .status = mm_err_to_wire(MM_ENOTFOUND),
                                        .content = MM_CONTENT_JSON};
    SET_BYTES(v->resp, body, "\"no actor with label 'echo'\"");

    /* CTRL_* */
    v = add(vs, &n, "ctrl-req", MM_WIRE_CTRL_REQ);
    v->ctrl = (struct mm_wire_ctrl){.id = 1, .code = MM_CTRL_LOOKUP};
    SET_BYTES(v->ctrl, body, "{}");
    v = add(vs, &n, "ctrl-req-members", MM_WIRE_CTRL_REQ);
    v->ctrl = (struct mm_wire_ctrl){.id = 1, .code = MM_CTRL_MEMBERS};
    SET_BYTES(v->ctrl, body, "{}");
    v = add(vs, &n, "ctrl-req-lookup", MM_WIRE_CTRL_REQ);
    v->ctrl = (struct mm_wire_ctrl){.id = 2, .code = MM_CTRL_LOOKUP};
    SET_BYTES(v->ctrl, body, "{\"prefix\":\"w/\",\"limit\":2}");
    v = add(vs, &n, "ctrl-resp", MM_WIRE_CTRL_RESP);
    v->ctrl = (struct mm_wire_ctrl){.id = 1, .code = 0};
    v = add(vs, &n, "ctrl-resp-err", MM_WIRE_CTRL_RESP);
    v->ctrl =
        (struct mm_wire_ctrl){.id = 2, .code = mm_err_to_wire(MM_ENOTFOUND)};
    SET_BYTES(v->ctrl, body, "{\"error\":\"no actor with label prefix 'w/'\"}");
    v = add(vs, &n, "ctrl-event", MM_WIRE_CTRL_EVENT);
    v->ctrl = (struct mm_wire_ctrl){.id = 5, .code = 2};
    SET_BYTES(v->ctrl, body, "x");
    v = add(vs, &n, "ctrl-event-watch", MM_WIRE_CTRL_EVENT);
    v->ctrl = (struct mm_wire_ctrl){.id = 3, .code = 1};
    SET_BYTES(v->ctrl, body,
              "{\"label\":\"echo\",\"endpoint\":"
              "\"00112233445566778899aabbccddeeff/7/42\"}");
    return n;
}

static size_t
encode(const struct vec *v, uint8_t *out, size_t cap)
{
    switch (v->type) {
    case MM_WIRE_HELLO:
        return mm__wire_hello_encode(out, cap, &v->hello);
    case MM_WIRE_AUTH:
        return mm__wire_auth_encode(out, cap, &v->auth);
    case MM_WIRE_AUTH_RESULT:
        return mm__wire_auth_result_encode(out, cap, &v->result);
    case MM_WIRE_INVOKE:
        return mm__wire_invoke_encode(out, cap, &v->invoke);
    case MM_WIRE_RESPONSE:
        return mm__wire_response_encode(out, cap, &v->resp);
    default:
        return mm__wire_ctrl_encode(out, cap, v->type, &v->ctrl);
    }
}

static void
assert_bytes(const void *a, size_t an, const void *b, size_t bn)
{
    assert_int_equal(an, bn);
    if (an) assert_memory_equal(a, b, an);
}

/* Decodes |body| as |v|'s type into |d| and checks every field. */
static void
decode_check(const struct vec *v, const uint8_t *body, size_t len,
             struct vec *d)
{
    memset(d, 0, sizeof(*d));
    d->name = v->name;
    d->type = v->type;
    switch (v->type) {
    case MM_WIRE_HELLO: {
        const struct mm_wire_hello *a = &v->hello, *b = &d->hello;
        assert_int_equal(mm__wire_hello_decode(&d->hello, body, len), 0);
        assert_int_equal(a->version, b->version);
        assert_int_equal(a->features, b->features);
        assert_memory_equal(a->node, b->node, MM_NODE_ID_LEN);
        assert_int_equal(a->generation, b->generation);
        assert_int_equal(a->role, b->role);
        assert_bytes(a->name, a->name_len, b->name, b->name_len);
        assert_bytes(a->addr, a->addr_len, b->addr, b->addr_len);
        assert_bytes(a->ext, a->ext_len, b->ext, b->ext_len);
        break;
    }
    case MM_WIRE_AUTH:
        assert_int_equal(mm__wire_auth_decode(&d->auth, body, len), 0);
        assert_memory_equal(v->auth.proof, d->auth.proof, MM_WIRE_PROOF_LEN);
        break;
    case MM_WIRE_AUTH_RESULT:
        assert_int_equal(mm__wire_auth_result_decode(&d->result, body, len), 0);
        assert_int_equal(v->result.status, d->result.status);
        break;
    case MM_WIRE_INVOKE: {
        const struct mm_wire_invoke *a = &v->invoke, *b = &d->invoke;
        assert_int_equal(mm__wire_invoke_decode(&d->invoke, body, len), 0);
        assert_int_equal(a->call_id, b->call_id);
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->target_kind, b->target_kind);
        assert_int_equal(a->generation, b->generation);
        assert_int_equal(a->actor, b->actor);
        assert_bytes(a->label, a->label_len, b->label, b->label_len);
        assert_bytes(a->type, a->type_len, b->type, b->type_len);
        assert_int_equal(a->content, b->content);
        assert_int_equal(a->deadline_ms, b->deadline_ms);
        assert_bytes(a->payload, a->payload_len, b->payload, b->payload_len);
        break;
    }
    case MM_WIRE_RESPONSE: {
        const struct mm_wire_response *a = &v->resp, *b = &d->resp;
        assert_int_equal(mm__wire_response_decode(&d->resp, body, len), 0);
        assert_int_equal(a->call_id, b->call_id);
        assert_int_equal(a->status, b->status);
        assert_int_equal(a->content, b->content);
        assert_bytes(a->body, a->body_len, b->body, b->body_len);
        break;
    }
    default: {
        const struct mm_wire_ctrl *a = &v->ctrl, *b = &d->ctrl;
        assert_int_equal(mm__wire_ctrl_decode(&d->ctrl, body, len), 0);
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->code, b->code);
        assert_bytes(a->body, a->body_len, b->body, b->body_len);
        break;
    }
    }
}

/* Each vector the test knows: encoded == the document's bytes; the
 * document's bytes decode to the same fields and re-encode identically. */
static void
test_vectors_match_doc(void **state)
{
    (void)state;
    load_doc();
    static struct vec vs[NVEC];
    size_t n = build(vs);
    assert_true(n <= NVEC);
    for (size_t i = 0; i < n; i++) {
        const struct vec *v = &vs[i];
        const char *hex = doc_vector(v->name);
        if (hex == NULL)
            fail_msg("vector %s missing from docs/wire.md", v->name);
        size_t flen = strlen(hex) / 2;
        uint8_t *want = malloc(flen); /* exact size: ASan sees overreads */
        assert_non_null(want);
        assert_int_equal(mm__unhex(want, flen, hex), 0);

        uint8_t out[1024];
        size_t got = encode(v, out, sizeof(out));
        if (got != flen || memcmp(out, want, flen) != 0) {
            char ghex[2 * sizeof(out) + 1];
            mm__hex(ghex, out, got);
            fail_msg("vector %s: docs/wire.md has\n  %s\nlib/wire.c encodes\n"
                     "  %s",
                     v->name, hex, ghex);
        }
        /* The header: length counts type + body; the type byte. */
        uint32_t len;
        uint8_t type;
        assert_int_equal(
            mm__wire_frame_hdr(want, flen, MM_MAX_FRAME, &len, &type), 0);
        assert_int_equal(len, flen - 4);
        assert_int_equal(type, v->type);

        struct vec d;
        decode_check(v, want + MM_WIRE_HDR_LEN, flen - MM_WIRE_HDR_LEN, &d);
        uint8_t again[1024];
        assert_int_equal(encode(&d, again, sizeof(again)), flen);
        assert_memory_equal(again, want, flen);
        free(want);
    }
}

/* Every vector in the document is one this test checks. */
static void
test_vectors_all_checked(void **state)
{
    (void)state;
    load_doc();
    static struct vec vs[NVEC];
    size_t n = build(vs), seen = 0;
    for (const char *p = strstr(doc, VEC_MARK); p;
         p = strstr(p + 1, VEC_MARK)) {
        const char *nm = p + strlen(VEC_MARK);
        const char *end = strchr(nm, '`');
        assert_non_null(end);
        size_t k = 0;
        while (k < n && !(strlen(vs[k].name) == (size_t)(end - nm) &&
                          memcmp(vs[k].name, nm, (size_t)(end - nm)) == 0))
            k++;
        if (k == n)
            fail_msg("docs/wire.md has vector %.*s, which no test checks",
                     (int)(end - nm), nm);
        seen++;
    }
    assert_int_equal(seen, n);
}

/* ---- versions (docs/wire.md, Versions) ------------------------------------
 */

static void
test_version_pick(void **state)
{
    (void)state;
    /* This code: 1..1. */
    assert_int_equal(MM_WIRE_VERSION_MIN, 1);
    assert_int_equal(MM_WIRE_PROTO_VERSION, 1);
    assert_int_equal(mm__wire_version_pick(1, 1, 1), 1);
    assert_int_equal(mm__wire_version_pick(1, 1, 2), 1);
    assert_int_equal(mm__wire_version_pick(1, 1, 65535), 1);
    assert_int_equal(mm__wire_version_pick(1, 1, 0), 0);
    /* A node of 1..3: the highest common one, or none. */
    assert_int_equal(mm__wire_version_pick(1, 3, 2), 2);
    assert_int_equal(mm__wire_version_pick(1, 3, 9), 3);
    assert_int_equal(mm__wire_version_pick(2, 3, 1), 0);
    assert_int_equal(mm__wire_version_pick(2, 3, 2), 2);
    /* Both sides compute the same. */
    for (uint16_t a = 1; a <= 4; a++)
        for (uint16_t b = 1; b <= 4; b++)
            assert_int_equal(mm__wire_version_pick(1, a, b),
                             mm__wire_version_pick(1, b, a));
}

/* A HELLO of a later version decodes, with whatever follows the address
 * carried in ext; a version 1 HELLO has nothing after the address; version
 * 0 is refused. */
static void
test_hello_later_version(void **state)
{
    (void)state;
    load_doc();
    const char *hex = doc_vector("hello-v2");
    assert_non_null(hex);
    size_t flen = strlen(hex) / 2;
    uint8_t f[256];
    assert_true(flen <= sizeof(f));
    assert_int_equal(mm__unhex(f, flen, hex), 0);
    struct mm_wire_hello h;
    assert_int_equal(mm__wire_hello_decode(&h, f + 5, flen - 5), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.ext_len, 4);
    assert_int_equal(mm__wire_version_pick(MM_WIRE_VERSION_MIN,
                                           MM_WIRE_PROTO_VERSION, h.version),
                     1);
    /* The same bytes as version 1: trailing bytes are refused. */
    f[5] = 1;
    assert_int_equal(mm__wire_hello_decode(&h, f + 5, flen - 5), MM_EDECODE);
    /* Version 1 without them decodes. */
    assert_int_equal(mm__wire_hello_decode(&h, f + 5, flen - 5 - 4), 0);
    /* Version 0 never does. */
    f[5] = 0;
    assert_int_equal(mm__wire_hello_decode(&h, f + 5, flen - 5 - 4),
                     MM_EDECODE);
}

/* ---- a live node answers as documented ---------------------------------- */

#define LIVE_FRAMES 16

struct live {
    uv_loop_t loop;
    struct mm_tq tq;
    struct mm_identity id;
    struct mm_keyring kr;
    struct mm_quic *q;
    struct mm_qconn *conn;
    int ups, downs, closed;
    size_t nframes;
    struct {
        int64_t sid;
        uint8_t *frame; /* the whole frame, header included */
        size_t len;
    } f[LIVE_FRAMES];
};

static void
live_up(void *d, struct mm_qconn *c, const uint8_t peer_id[16],
        uint64_t peer_gen, int role, const char *peer_name,
        const char *peer_addr)
{
    struct live *l = d;
    MM_UNUSED(peer_id);
    MM_UNUSED(peer_gen);
    MM_UNUSED(peer_addr);
    assert_int_equal(role, MM_WIRE_ROLE_MEMBER);
    assert_string_equal(peer_name, "n1");
    l->conn = c;
    l->ups++;
}

static void
live_down(void *d, struct mm_qconn *c, int err)
{
    struct live *l = d;
    MM_UNUSED(err);
    if (c == l->conn) l->conn = NULL;
    l->downs++;
}

static void
live_frame(void *d, struct mm_qconn *c, int64_t sid, uint8_t type,
           const uint8_t *body, size_t len)
{
    struct live *l = d;
    MM_UNUSED(c);
    assert_true(l->nframes < LIVE_FRAMES);
    size_t n = MM_WIRE_HDR_LEN + len;
    uint8_t *f = malloc(n);
    assert_non_null(f);
    assert_int_equal(mm__wire_frame_encode(f, n, type, body, len), n);
    l->f[l->nframes].sid = sid;
    l->f[l->nframes].frame = f;
    l->f[l->nframes].len = n;
    l->nframes++;
}

static void
live_timeout(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the client's loop until |*count| reaches |want| or 10 s pass. */
static int
live_wait(struct live *l, const int *ip, const size_t *zp, size_t want)
{
    uv_timer_t timer;
    int expired = 0;
    uv_timer_init(&l->loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, live_timeout, 10000, 0);
    for (;;) {
        size_t have = ip ? (size_t)*ip : *zp;
        if (have >= want || expired) break;
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&l->loop, UV_RUN_NOWAIT);
    return ip ? (size_t)*ip >= want : *zp >= want;
}

/* Sends the document's vector |name| as it stands on stream |sid|. */
static void
live_send_vector(struct live *l, int64_t sid, const char *name)
{
    const char *hex = doc_vector(name);
    assert_non_null(hex);
    size_t n = strlen(hex) / 2;
    uint8_t f[1024];
    assert_true(n <= sizeof(f));
    assert_int_equal(mm__unhex(f, n, hex), 0);
    assert_int_equal(mm__quic_send_frame(l->conn, sid, f, n), 0);
}

/* Frame |i| received is the document's vector |name|, byte for byte. */
static void
live_expect_vector(struct live *l, size_t i, const char *name)
{
    const char *hex = doc_vector(name);
    assert_non_null(hex);
    char got[2 * 1024 + 1];
    assert_true(l->f[i].len <= 1024);
    mm__hex(got, l->f[i].frame, l->f[i].len);
    if (strcmp(got, hex) != 0)
        fail_msg("the node answered\n  %s\nwhere docs/wire.md (%s) has\n  %s",
                 got, name, hex);
}

static void
live_closed(void *d)
{
    ((struct live *)d)->closed = 1;
}

static void
test_live_node_answers_as_documented(void **state)
{
    (void)state;
    load_doc();
    char dir[64], key[128], cli[128];
    snprintf(dir, sizeof(dir), "/tmp/mm-wirevec-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/key", dir);
    snprintf(cli, sizeof(cli), "%s/cli", dir);
    assert_int_equal(mm_cluster_keygen(key), 0);
    mm_log_set_level(MM_LOG_ERR);
    mm_node *n = nodefix_new(&(struct nodefix_opts){.name = "n1",
                                                    .dir = dir,
                                                    .listen = "127.0.0.1:0",
                                                    .key = key,
                                                    .no_mdns = 1,
                                                    .builtins = 1});
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "e1";
    assert_int_equal(mm_spawn(n, "echo", &o, NULL), 0);
    nodefix_start(n);

    /* A client: the transport (TLS, HELLO role client, AUTH) and nothing
     * of lib/client.c. */
    static struct live l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(uv_loop_init(&l.loop), 0);
    assert_int_equal(mm__tq_init(&l.tq, &l.loop), 0);
    assert_int_equal(mm__identity_load(&l.id, cli, 1), 0);
    assert_int_equal(mm__keyring_load(&l.kr, key, NULL, 0), 0);
    struct mm_quic_config qc;
    mm__quic_config_init(&qc);
    qc.name = "murmer-cli";
    qc.role = MM_WIRE_ROLE_CLIENT;
    qc.tq = &l.tq;
    struct mm_quic_ops ops = {.data = &l,
                              .conn_up = live_up,
                              .conn_down = live_down,
                              .frame = live_frame};
    assert_int_equal(mm__quic_new(&l.q, &l.loop, &l.id, &l.kr, &qc, &ops), 0);
    assert_int_equal(mm__quic_dial(l.q, mm_node_addr(n), NULL, NULL), 0);
    assert_true(live_wait(&l, &l.ups, NULL, 1));
    assert_int_equal(l.conn->wire_version, 1);
    int64_t ctrl = mm__quic_control_stream(l.conn);
    assert_int_equal(ctrl, 0);

    /* A page of a prefix nobody holds: `ctrl-resp-err`. */
    live_send_vector(&l, ctrl, "ctrl-req-lookup");
    assert_true(live_wait(&l, NULL, &l.nframes, 1));
    assert_int_equal(l.f[0].sid, ctrl);
    live_expect_vector(&l, 0, "ctrl-resp-err");

    /* A call to a label nobody holds: `response-err-text`, on the call's
     * stream. */
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(l.conn, &sid), 0);
    live_send_vector(&l, sid, "invoke-label-call");
    assert_true(live_wait(&l, NULL, &l.nframes, 2));
    assert_int_equal(l.f[1].sid, sid);
    live_expect_vector(&l, 1, "response-err-text");

    /* A label target's generation is not used: 99 is served as 0. */
    struct mm_wire_invoke inv = {.call_id = 2,
                                 .target_kind = MM_WIRE_TARGET_LABEL,
                                 .generation = 99,
                                 .content = MM_CONTENT_JSON,
                                 .deadline_ms = 5000};
    SET_STR(inv, label, "e1");
    SET_STR(inv, type, "echo");
    SET_BYTES(inv, payload, "{\"x\":1}");
    uint8_t f[256];
    size_t fl = mm__wire_invoke_encode(f, sizeof(f), &inv);
    assert_true(fl > 0);
    assert_int_equal(mm__quic_send_frame(l.conn, sid, f, fl), 0);
    assert_true(live_wait(&l, NULL, &l.nframes, 3));
    struct mm_wire_response r;
    assert_int_equal(l.f[2].frame[4], MM_WIRE_RESPONSE);
    assert_int_equal(
        mm__wire_response_decode(&r, l.f[2].frame + 5, l.f[2].len - 5), 0);
    assert_int_equal(r.call_id, 2);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.content, MM_CONTENT_JSON);
    assert_bytes(r.body, r.body_len, "{\"x\":1}", 7);
    assert_int_equal(l.downs, 0);

    mm__quic_close(l.q, live_closed, &l);
    while (!l.closed)
        uv_run(&l.loop, UV_RUN_ONCE);
    mm__tq_close(&l.tq);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l.loop), 0);
    mm__identity_release(&l.id);
    mm__keyring_release(&l.kr);
    for (size_t i = 0; i < l.nframes; i++)
        free(l.f[i].frame);
    nodefix_down(n);
    rm_rf(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_match_doc),
        cmocka_unit_test(test_vectors_all_checked),
        cmocka_unit_test(test_version_pick),
        cmocka_unit_test(test_hello_later_version),
        cmocka_unit_test(test_live_node_answers_as_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
