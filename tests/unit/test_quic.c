/*
 * test_quic.c — the QUIC transport over real UDP on 127.0.0.1: two or three
 * mm_quic instances on one uv loop in one process, each with its own
 * identity in a mkdtemp dir.  Every wait is bounded by a timer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "crypto.h"
#include "ckey.h"
#include "identity.h"
#include "transport/quic.h"
#include "transport/quic_int.h" /* hostile peers write by hand */
#include "wire.h"
#include "helpers/qloop.h"

#define MAXN 3

/*
 * ngtcp2 0.12.1 (Debian 12) leaks a stream frame chain when a retransmitted
 * STREAM frame is split below its pool threshold (ngtcp2 issue #1244, fixed
 * in 1.6.0); only the lossy-path test triggers it, 112 bytes at a time.
 * libngtcp2 has no frame pointers, so LSan's fast unwinder stops inside
 * it: suppress by module.  A connection we forgot to ngtcp2_conn_del() is
 * still caught, through the mm_qconn freed in the same close callback.
 */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libngtcp2.so\n";
}

static int g_replies, g_wanted, g_target;
#define WAIT_MS 10000

struct tnode {
    struct env *env;
    char dir[96];
    struct mm_identity id;
    struct mm_keyring kr;
    struct mm_quic *q;
    struct mm_quic_config cfg;
    int ups, downs, last_down_err;
    int live; /* conn_up minus conn_down of those same connections */
    struct mm_qconn *upset[64];
    /* 1: leave connections superseded by a crossing dial open (the test
     * closes them); 0: close them at once, as a user with nothing under
     * way on them would. */
    int keep_superseded;
    struct mm_qconn *conn; /* the latest up connection */
    uint8_t up_peer[16];
    uint64_t up_gen;
    char up_name[64];
    int up_role;
    /* frames */
    int frames;
    int64_t last_sid;
    uint8_t last_type;
    size_t last_len;
    uint8_t last_body[128];
    int echo;        /* echo frames on non-control streams, then FIN */
    int echo_close;  /* ... and close the stream after echoing */
    int count_close; /* count replies in g_replies, close the stream */
    /* streams */
    int closed, closed_decode, closed_overloaded;
    int64_t last_closed_sid;
    int last_closed_err;
    int credits; /* stream_credit callbacks */
    /* hot waits (ops.park/unpark/run) when |hot| is set before start */
    int hot, parks, unparks, runs;
    /* datagrams */
    int datagrams;
    size_t dgram_len;
    uint8_t dgram[64];
    /* set before node_start */
    const char *listen; /* NULL = 127.0.0.1:0 */
    int hostile;        /* dials without sending HELLO/AUTH */
    int hold;           /* holds every frame's credit (mm__quic_frame_hold) */
    size_t held;        /* bytes held so far */
};

struct env {
    uv_loop_t loop;
    struct mm_tq tq; /* the nodes' timers */
    char root[64];
    struct tnode n[MAXN];
    int nn;
};

/* ---- callbacks ---------------------------------------------------------- */

static struct tnode *
node_of(void *d)
{
    return d;
}

static void
on_up(void *d, struct mm_qconn *c, const uint8_t peer_id[16], uint64_t gen,
      int role, const char *name, const char *addr)
{
    struct tnode *t = node_of(d);
    MM_UNUSED(addr);
    t->ups++;
    /* An older up connection to that member lost a crossing (the contract
     * of conn_up): close it unless the test wants to look at it. */
    if (mm__quic_conn_superseded(c) && !t->keep_superseded)
        mm__quic_conn_close(c, MM_EEXISTS); /* lost, and nothing on it */
    for (int i = 0; i < 64 && !t->keep_superseded; i++) {
        struct mm_qconn *o = t->upset[i];
        if (o && o != c && mm__quic_conn_is_up(o) &&
            memcmp(mm__quic_conn_peer_id(o), peer_id, 16) == 0 &&
            mm__quic_find_peer(t->q, peer_id) == c)
            mm__quic_conn_close(o, MM_EEXISTS);
    }
    t->conn = c;
    for (int i = 0; i < 64; i++)
        if (t->upset[i] == NULL) {
            t->upset[i] = c;
            t->live++;
            break;
        }
    memcpy(t->up_peer, peer_id, 16);
    t->up_gen = gen;
    t->up_role = role;
    snprintf(t->up_name, sizeof(t->up_name), "%s", name);
}

static void
on_down(void *d, struct mm_qconn *c, int err)
{
    struct tnode *t = node_of(d);
    t->downs++;
    t->last_down_err = err;
    for (int i = 0; i < 64; i++)
        if (t->upset[i] == c) {
            t->upset[i] = NULL;
            t->live--;
        }
    if (t->conn == c) t->conn = NULL;
}

static void
on_frame(void *d, struct mm_qconn *c, int64_t sid, uint8_t type,
         const uint8_t *body, size_t len)
{
    struct tnode *t = node_of(d);
    t->frames++;
    if (t->hold) t->held += mm__quic_frame_hold(c, sid);
    t->last_sid = sid;
    t->last_type = type;
    t->last_len = len;
    memcpy(t->last_body, body, MM_MIN(len, sizeof(t->last_body)));
    if (t->echo && sid != mm__quic_control_stream(c)) {
        uint8_t buf[256];
        size_t n = mm__wire_frame_encode(buf, sizeof(buf), type, body,
                                         MM_MIN(len, 200));
        assert_int_equal(mm__quic_send_frame(c, sid, buf, n), 0);
        if (t->echo_close) assert_int_equal(mm__quic_stream_close(c, sid), 0);
    }
    if (t->count_close) {
        g_replies++;
        assert_int_equal(mm__quic_stream_close(c, sid), 0);
    }
}

static void
on_stream_closed(void *d, struct mm_qconn *c, int64_t sid, int err)
{
    struct tnode *t = node_of(d);
    MM_UNUSED(c);
    t->closed++;
    t->last_closed_sid = sid;
    t->last_closed_err = err;
    if (err == MM_EDECODE) t->closed_decode++;
    if (err == MM_EOVERLOADED) t->closed_overloaded++;
}

static void
on_credit(void *d, struct mm_qconn *c)
{
    struct tnode *t = node_of(d);
    MM_UNUSED(c);
    t->credits++;
}

static void
on_datagram(void *d, const struct sockaddr *from, const uint8_t *buf,
            size_t len)
{
    struct tnode *t = node_of(d);
    MM_UNUSED(from);
    t->datagrams++;
    t->dgram_len = len;
    memcpy(t->dgram, buf, MM_MIN(len, sizeof(t->dgram)));
}

/* ---- harness ------------------------------------------------------------- */

static int
on_park(void *d)
{
    node_of(d)->parks++;
    return 1;
}

static int
on_unpark(void *d)
{
    node_of(d)->unparks++;
    return 0;
}

static void
on_run(void *d, uint64_t now_ns)
{
    MM_UNUSED(now_ns);
    node_of(d)->runs++;
}

static void
write_key(const char *path, uint8_t fill)
{
    uint8_t k[32];
    char b[64];
    memset(k, fill, sizeof(k));
    size_t n = mm__base64_encode(b, k, sizeof(k));
    b[n++] = '\n';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

/* Creates node |i| with key byte |key| (keyring file) and config |cfg|. */
static void
node_start(struct env *e, int i, uint8_t key, const struct mm_quic_config *cfg)
{
    struct tnode *t = &e->n[i];
    char kp[128];
    t->env = e;
    snprintf(t->dir, sizeof(t->dir), "%s/node%d", e->root, i);
    assert_int_equal(mm__identity_load(&t->id, t->dir, 1), 0);
    snprintf(kp, sizeof(kp), "%s/key%d", e->root, i);
    write_key(kp, key);
    assert_int_equal(mm__keyring_load(&t->kr, kp, NULL, 0), 0);
    if (cfg)
        t->cfg = *cfg;
    else
        mm__quic_config_init(&t->cfg);
    char name[16];
    snprintf(name, sizeof(name), "n%d", i);
    t->cfg.name = name;
    if (!t->cfg.tq) t->cfg.tq = &e->tq;
    struct mm_quic_ops ops = {
        .data = t,
        .conn_up = on_up,
        .conn_down = on_down,
        .frame = on_frame,
        .stream_closed = on_stream_closed,
        .datagram = on_datagram,
        .stream_credit = on_credit,
    };
    if (t->hot) {
        ops.park = on_park;
        ops.unpark = on_unpark;
        ops.run = on_run;
    }
    assert_int_equal(
        mm__quic_new(&t->q, &e->loop, &t->id, &t->kr, &t->cfg, &ops), 0);
    t->q->test_hold_auth = t->hostile;
    assert_int_equal(
        mm__quic_listen(t->q, t->listen ? t->listen : "127.0.0.1:0"), 0);
    assert_non_null(mm__quic_local_addr(t->q));
    assert_true(mm__quic_local_port(t->q) > 0);
    if (i >= e->nn) e->nn = i + 1;
}

static int
env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (qloop_init(&e->loop, &e->tq, e->root, sizeof(e->root), "quic") != 0)
        return -1;
    *state = e;
    return 0;
}

static void
node_stop(struct env *e, int i)
{
    struct tnode *t = &e->n[i];
    if (t->q == NULL) return;
    qloop_quic_close(&e->loop, &t->q);
    mm__identity_release(&t->id);
    mm__keyring_release(&t->kr);
}

static int
env_teardown(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < e->nn; i++)
        node_stop(e, i);
    int rc = qloop_fini(&e->loop, &e->tq, e->root);
    free(e);
    return rc;
}

static void
deadline_cb(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until |pred|(e) holds or |ms| pass; returns pred's value. */
static int
run_until(struct env *e, int (*pred)(struct env *), unsigned ms)
{
    uv_timer_t timer;
    int expired = 0;
    uv_timer_init(&e->loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, deadline_cb, ms, 0);
    while (!pred(e) && !expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return pred(e);
}

/* Runs the loop for |ms| (to let late events show up). */
static int
never(struct env *e)
{
    MM_UNUSED(e);
    return 0;
}

static int
both_up(struct env *e)
{
    return e->n[0].ups >= 1 && e->n[1].ups >= 1;
}

static int
both_down(struct env *e)
{
    return e->n[0].downs >= 1 && e->n[1].downs >= 1;
}

static int
dialer_down(struct env *e)
{
    return e->n[1].downs >= 1;
}

static void
connect_pair(struct env *e)
{
    struct mm_qconn *c = NULL;
    assert_int_equal(mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q),
                                   e->n[0].id.id, &c),
                     0);
    assert_non_null(c);
    assert_true(run_until(e, both_up, WAIT_MS));
}

static size_t
frame(uint8_t *buf, size_t cap, uint8_t type, const char *body)
{
    return mm__wire_frame_encode(buf, cap, type, body, strlen(body));
}

/* ---- tests --------------------------------------------------------------- */

static int
got_frames_a1(struct env *e)
{
    return e->n[0].frames >= 1;
}

static int
got_frames_b1(struct env *e)
{
    return e->n[1].frames >= 1;
}

static int
got_frames_a2(struct env *e)
{
    return e->n[0].frames >= 2;
}

static int
got_frames_b2(struct env *e)
{
    return e->n[1].frames >= 2;
}

static int
got_frames_b3(struct env *e)
{
    return e->n[1].frames >= 3;
}

static void
test_quic_handshake_auth_and_frames(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    connect_pair(e);
    /* Both sides learnt the other's verified id, generation and name. */
    assert_memory_equal(a->up_peer, b->id.id, 16);
    assert_memory_equal(b->up_peer, a->id.id, 16);
    assert_int_equal(a->up_gen, b->id.generation);
    assert_string_equal(a->up_name, "n1");
    assert_string_equal(b->up_name, "n0");
    assert_int_equal(a->up_role, 0);
    assert_true(mm__quic_conn_is_dialer(b->conn));
    assert_false(mm__quic_conn_is_dialer(a->conn));
    assert_ptr_equal(mm__quic_find_peer(b->q, a->id.id), b->conn);
    int64_t bc = mm__quic_control_stream(b->conn);
    int64_t ac = mm__quic_control_stream(a->conn);
    assert_int_equal(bc, 0);
    assert_int_equal(ac, 0);

    /* Control stream, dialer -> acceptor and back. */
    uint8_t buf[256];
    size_t n = frame(buf, sizeof(buf), MM_WIRE_CTRL_REQ, "ping");
    assert_int_equal(mm__quic_send_frame(b->conn, bc, buf, n), 0);
    assert_true(run_until(e, got_frames_a1, WAIT_MS));
    assert_int_equal(a->last_sid, 0);
    assert_int_equal(a->last_type, MM_WIRE_CTRL_REQ);
    assert_int_equal(a->last_len, 4);
    assert_memory_equal(a->last_body, "ping", 4);
    n = frame(buf, sizeof(buf), MM_WIRE_CTRL_RESP, "pong!");
    assert_int_equal(mm__quic_send_frame(a->conn, ac, buf, n), 0);
    assert_true(run_until(e, got_frames_b1, WAIT_MS));
    assert_int_equal(b->last_type, MM_WIRE_CTRL_RESP);
    assert_memory_equal(b->last_body, "pong!", 5);

    /* A new stream from the dialer, echoed by the acceptor. */
    a->echo = 1;
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    assert_int_not_equal(sid, 0);
    n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "hello over a stream");
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, got_frames_b2, WAIT_MS));
    assert_int_equal(b->last_sid, sid);
    assert_int_equal(b->last_type, MM_WIRE_INVOKE);
    assert_memory_equal(b->last_body, "hello over a stream", 19);

    /* A new stream from the acceptor, the other direction. */
    int64_t sid2;
    assert_int_equal(mm__quic_stream_open(a->conn, &sid2), 0);
    n = frame(buf, sizeof(buf), MM_WIRE_RESPONSE, "from the server");
    assert_int_equal(mm__quic_send_frame(a->conn, sid2, buf, n), 0);
    assert_true(run_until(e, got_frames_b3, WAIT_MS));
    assert_int_equal(b->last_sid, sid2);
    assert_memory_equal(b->last_body, "from the server", 15);
    assert_int_equal(a->downs + b->downs, 0);

    /* Bad arguments. */
    assert_int_equal(mm__quic_send_frame(b->conn, 4000, buf, n), MM_ENOTFOUND);
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, 3), MM_EINVAL);
    assert_int_equal(mm__quic_dial(b->q, "nonsense", NULL, NULL), MM_EINVAL);
    (void)got_frames_a2;
}

static void
test_quic_wrong_key_unauthorized(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 8, NULL); /* another cluster key */
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    assert_true(run_until(e, both_down, WAIT_MS));
    assert_int_equal(e->n[0].ups, 0);
    assert_int_equal(e->n[1].ups, 0);
    assert_int_equal(e->n[0].last_down_err, MM_EUNAUTHORIZED);
    assert_int_equal(e->n[1].last_down_err, MM_EUNAUTHORIZED);
    struct mm_quic_stats st;
    mm__quic_stats(e->n[0].q, &st);
    assert_int_equal(st.auth_failures, 1);
}

/*
 * Wire versions (docs/wire.md, Versions): a peer whose HELLO names a newer
 * version than this node speaks is served in the highest common one, and
 * only feature bits both sides set are in use.
 */
static void
test_quic_wire_version_newer_peer(void **state)
{
    struct env *e = *state;
    struct mm_quic_config c0, c1;
    mm__quic_config_init(&c0);
    mm__quic_config_init(&c1);
    c0.features = 0x6;
    c1.wire_max = 7; /* a newer node dials */
    c1.features = 0x80000005;
    node_start(e, 0, 7, &c0);
    node_start(e, 1, 7, &c1);
    connect_pair(e);
    assert_int_equal(e->n[0].conn->wire_version, MM_WIRE_PROTO_VERSION);
    assert_int_equal(e->n[1].conn->wire_version, MM_WIRE_PROTO_VERSION);
    assert_int_equal(e->n[0].conn->wire_features, 0x4);
    assert_int_equal(e->n[1].conn->wire_features, 0x4);
    assert_int_equal(e->n[0].downs + e->n[1].downs, 0);
}

/* An acceptor that speaks only versions above the dialer's refuses it:
 * AUTH_RESULT `invalid`, and both ends close with `invalid` (15). */
static void
test_quic_wire_version_none_common_acceptor(void **state)
{
    struct env *e = *state;
    struct mm_quic_config c0;
    mm__quic_config_init(&c0);
    c0.wire_min = c0.wire_max = MM_WIRE_PROTO_VERSION + 1;
    node_start(e, 0, 7, &c0);
    node_start(e, 1, 7, NULL);
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    assert_true(run_until(e, both_down, WAIT_MS));
    assert_int_equal(e->n[0].ups + e->n[1].ups, 0);
    assert_int_equal(e->n[0].last_down_err, MM_EINVAL);
    assert_int_equal(e->n[1].last_down_err, MM_EINVAL);
    assert_int_equal(mm_err_to_wire(MM_EINVAL), 15);
    struct mm_quic_stats st;
    mm__quic_stats(e->n[0].q, &st);
    assert_int_equal(st.auth_failures, 1);
}

/* The same refusal by the dialer, which learns the acceptor's version from
 * its HELLO: the acceptor came up and sees the close as `invalid`. */
static void
test_quic_wire_version_none_common_dialer(void **state)
{
    struct env *e = *state;
    struct mm_quic_config c1;
    mm__quic_config_init(&c1);
    c1.wire_min = c1.wire_max = MM_WIRE_PROTO_VERSION + 1;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, &c1);
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    assert_true(run_until(e, both_down, WAIT_MS));
    assert_int_equal(e->n[1].ups, 0);
    assert_int_equal(e->n[0].last_down_err, MM_EINVAL);
    assert_int_equal(e->n[1].last_down_err, MM_EINVAL);
}

static void
test_quic_keyring_rotation_accepts_old_key(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 9, NULL);
    /* Node 0 sends with key 7 and still accepts key 9. */
    struct tnode *a = &e->n[0];
    uint8_t k9[32];
    memset(k9, 9, sizeof(k9));
    memcpy(a->kr.keys[1], k9, 32);
    a->kr.ids[1] = mm__ckey_id(k9);
    a->kr.n = 2;
    connect_pair(e);
    assert_int_equal(e->n[0].downs + e->n[1].downs, 0);
}

static void
test_quic_wrong_expected_id_refused(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    uint8_t wrong[16];
    memcpy(wrong, e->n[0].id.id, 16);
    wrong[0] ^= 0xff;
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), wrong, NULL),
        0);
    assert_true(run_until(e, dialer_down, WAIT_MS));
    assert_int_equal(e->n[1].last_down_err, MM_EUNAUTHORIZED);
    assert_int_equal(e->n[1].ups, 0);
    run_until(e, never, 50);
    assert_int_equal(e->n[0].ups, 0);
    /* Without an expected id, the same peer is fine. */
    connect_pair(e);
}

static int
b_frames_target(struct env *e)
{
    return e->n[1].frames >= g_target;
}

static void
test_quic_greased_packets_still_flow(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    e->n[0].echo = 1;
    struct mm_quic_stats sa, sb;
    /* Each connection decides on its own whether to grease: 1 in 4 has
     * neither side doing it, so try up to 16 connections. */
    int total = 0;
    for (int round = 0; round < 16; round++) {
        struct mm_qconn *c = NULL;
        int ups = e->n[1].ups;
        assert_int_equal(
            mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, &c),
            0);
        g_target = ups + 1;
        for (int k = 0; k < 1000 && e->n[1].ups < g_target; k++)
            uv_run(&e->loop, UV_RUN_ONCE);
        assert_int_equal(e->n[1].ups, g_target);
        int64_t sid;
        assert_int_equal(mm__quic_stream_open(c, &sid), 0);
        for (int i = 0; i < 20; i++) {
            uint8_t buf[64];
            size_t n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "grease me");
            assert_int_equal(mm__quic_send_frame(c, sid, buf, n), 0);
        }
        total += 20;
        g_target = total;
        assert_true(run_until(e, b_frames_target, WAIT_MS));
        mm__quic_conn_close(c, 0);
        mm__quic_stats(e->n[0].q, &sa);
        mm__quic_stats(e->n[1].q, &sb);
        if (sa.greased_in + sb.greased_in > 0 && round >= 1) break;
    }
    assert_true(sa.greased_in + sb.greased_in > 0);
    assert_true(sa.pkts_in > 0 && sb.pkts_out > 0);
    print_message("greased packets received: %" PRIu64 " + %" PRIu64 "\n",
                  sa.greased_in, sb.greased_in);
}

/* 1000 streams, one after another, over one connection. */
static int
replies_reached(struct env *e)
{
    MM_UNUSED(e);
    return g_replies >= g_wanted;
}

/* n0 echoes (and closes each stream), n1 counts the replies: the pair up,
 * n0 with |cfg0| (NULL = defaults); returns n1. */
static struct tnode *
echo_pair(struct env *e, const struct mm_quic_config *cfg0)
{
    node_start(e, 0, 7, cfg0);
    node_start(e, 1, 7, NULL);
    e->n[0].echo = 1;
    e->n[0].echo_close = 1;
    e->n[1].count_close = 1;
    connect_pair(e);
    return &e->n[1];
}

/* |count| requests from n1 to n0's echo, each on a new stream, one after
 * another: every echo comes back on its stream with its body. */
static void
echo_streams(struct env *e, int count, const char *tag)
{
    struct tnode *b = &e->n[1];
    g_replies = 0;
    for (int i = 0; i < count; i++) {
        int64_t sid;
        assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
        uint8_t buf[64];
        char body[32];
        snprintf(body, sizeof(body), "%s %d", tag, i);
        size_t n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, body);
        assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
        g_wanted = i + 1;
        assert_true(run_until(e, replies_reached, WAIT_MS));
        assert_int_equal(b->last_sid, sid);
        assert_memory_equal(b->last_body, body, strlen(body));
    }
}

static void
test_quic_1000_streams_sequential(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.stream_window = 8; /* far below 1000: credit must come back */
    struct tnode *b = echo_pair(e, &cfg);
    int closed0 = e->n[0].closed;
    echo_streams(e, 1000, "req");
    g_target = 1000;
    /* Every stream closes on both sides. */
    for (int k = 0;
         k < 5000 && (b->closed < 1000 || e->n[0].closed - closed0 < 1000); k++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(b->closed, 1000);
    assert_int_equal(e->n[0].closed - closed0, 1000);
    assert_int_equal(b->closed_decode, 0);
    assert_int_equal(b->downs, 0);
}

/*
 * Hot waits where no answer can come: both transports share one loop, so
 * while the dialer waits in its socket's receive the echoing side cannot
 * run.  Every such wait times out, yet every exchange completes, and the
 * back-off (1, 2, 4 ... chances skipped after each miss) keeps the waits
 * to a few: far fewer than the turns that sent datagrams.
 */
static void
test_quic_hot_waits_back_off_when_unanswered(void **state)
{
    struct env *e = *state;
    e->n[1].hot = 1;
    struct tnode *b = echo_pair(e, NULL);
    struct mm_quic_stats st0, st;
    mm__quic_stats(b->q, &st0);
    echo_streams(e, 300, "hot");
    mm__quic_stats(b->q, &st);
    uint64_t misses = st.hot_misses - st0.hot_misses;
    uint64_t hits = st.hot_hits - st0.hot_hits;
    print_message("300 exchanges: %" PRIu64 " hot misses, %" PRIu64
                  " hits, %d parks, %" PRIu64 " packets out\n",
                  misses, hits, b->parks, st.pkts_out - st0.pkts_out);
    assert_true(misses >= 1);
    assert_int_equal(b->parks, b->unparks);
    assert_int_equal(st.hot_woken, 0);
    /* Without the back-off every one of the 300 requests would wait. */
    assert_true(misses + hits < 100);
    assert_true(st.pkts_out - st0.pkts_out >= 300);
    assert_int_equal(b->downs, 0);
    /* Out of the loop's epoll set while it waited, back in since. */
    int fd = mm__quic_fd(b->q);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = fd;
    assert_int_equal(epoll_ctl(uv_backend_fd(&e->loop), EPOLL_CTL_ADD, fd, &ev),
                     -1);
    assert_int_equal(errno, EEXIST);
}

static int
b_credit(struct env *e)
{
    return e->n[1].credits >= 1;
}

static void
test_quic_stream_credit_comes_back(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.stream_window = 4; /* the control stream + 3 */
    struct tnode *b = echo_pair(e, &cfg);
    int64_t sids[8];
    int opened = 0, rv = 0;
    while (opened < 8 &&
           (rv = mm__quic_stream_open(b->conn, &sids[opened])) == 0)
        opened++;
    assert_int_equal(rv, UV_EAGAIN);
    assert_int_equal(opened, 3);
    g_replies = 0;
    uint8_t buf[64];
    size_t n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "one");
    assert_int_equal(mm__quic_send_frame(b->conn, sids[0], buf, n), 0);
    assert_true(run_until(e, b_credit, WAIT_MS));
    assert_int_equal(g_replies, 1);
    assert_int_equal(mm__quic_stream_open(b->conn, &sids[3]), 0);
}

static int
dial_failed(struct env *e)
{
    return e->n[1].downs >= 1;
}

static void
test_quic_dial_nobody_times_out(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.handshake_ms = 300;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, &cfg);
    /* Node 0 drops everything: nobody answers. */
    struct mm_quic_fault f = {.drop_pct = 100, .seed = 5};
    mm__quic_set_fault(e->n[0].q, &f);
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    assert_true(run_until(e, dial_failed, WAIT_MS));
    assert_int_equal(e->n[1].last_down_err, MM_EUNREACHABLE);
    assert_int_equal(e->n[1].ups, 0);
}

static int
a_closed_decode(struct env *e)
{
    return e->n[0].closed_decode >= 1 && e->n[1].closed_decode >= 1;
}

static void
test_quic_max_frame_only_that_stream(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.max_frame = 64 * 1024;
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    size_t body = cfg.max_frame - 1; /* length = type + body = max */
    uint8_t *big = calloc(1, cfg.max_frame + 16);
    uint8_t *src = calloc(1, cfg.max_frame + 16);
    memset(src, 0xab, body + 1);

    /* Exactly max_frame: accepted. */
    int64_t s1, s2, s3;
    assert_int_equal(mm__quic_stream_open(b->conn, &s1), 0);
    size_t n = mm__wire_frame_encode(big, cfg.max_frame + 16, MM_WIRE_INVOKE,
                                     src, body);
    assert_int_equal(n, cfg.max_frame + 4);
    assert_int_equal(mm__quic_send_frame(b->conn, s1, big, n), 0);
    assert_true(run_until(e, got_frames_a1, WAIT_MS));
    assert_int_equal(a->last_len, body);
    assert_int_equal(a->last_sid, s1);

    /* max + 1: only that stream is refused, on both sides. */
    assert_int_equal(mm__quic_stream_open(b->conn, &s2), 0);
    n = mm__wire_frame_encode(big, cfg.max_frame + 16, MM_WIRE_INVOKE, src,
                              body + 1);
    assert_int_equal(mm__quic_send_frame(b->conn, s2, big, n), 0);
    assert_true(run_until(e, a_closed_decode, WAIT_MS));
    assert_int_equal(a->last_closed_sid, s2);
    assert_int_equal(a->last_closed_err, MM_EDECODE);
    assert_int_equal(b->last_closed_sid, s2);
    assert_int_equal(a->frames, 1);

    /* The connection and other streams keep working. */
    a->echo = 1;
    assert_int_equal(mm__quic_stream_open(b->conn, &s3), 0);
    n = frame(big, 64, MM_WIRE_INVOKE, "still fine");
    assert_int_equal(mm__quic_send_frame(b->conn, s3, big, n), 0);
    assert_true(run_until(e, got_frames_b1, WAIT_MS));
    assert_int_equal(b->last_sid, s3);
    assert_memory_equal(b->last_body, "still fine", 10);
    n = frame(big, 64, MM_WIRE_INVOKE, "s1 too");
    assert_int_equal(mm__quic_send_frame(b->conn, s1, big, n), 0);
    assert_true(run_until(e, got_frames_a2, WAIT_MS + 0));
    assert_int_equal(a->downs + b->downs, 0);
    free(big);
    free(src);
}

static int
b_unacked_zero(struct env *e)
{
    return e->n[1].conn && mm__quic_conn_unacked(e->n[1].conn) == 0;
}

/* A peer that acknowledges nothing (here: all its packets are dropped)
 * cannot make the sender queue more than conn_send_max; a frame above
 * max_frame is refused before it is queued. */
static void
test_quic_send_cap_refuses_when_unacknowledged(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.conn_send_max = 64 * 1024;
    cfg.max_frame = 32 * 1024;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, &cfg);
    connect_pair(e);
    struct tnode *b = &e->n[1];
    size_t cap = 40 * 1024;
    uint8_t *buf = calloc(1, cap), *src = calloc(1, cap);
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);

    /* Above max_frame (length field = type + body): refused, nothing
     * queued; exactly max_frame goes. */
    size_t n =
        mm__wire_frame_encode(buf, cap, MM_WIRE_INVOKE, src, cfg.max_frame);
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), MM_EINVAL);
    assert_int_equal(mm__quic_conn_unacked(b->conn), 0);
    n = mm__wire_frame_encode(buf, cap, MM_WIRE_INVOKE, src, cfg.max_frame - 1);
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, b_unacked_zero, WAIT_MS));

    /* The peer goes silent: frames queue up to the cap, then are refused. */
    struct mm_quic_fault f = {.drop_pct = 100, .seed = 3};
    mm__quic_set_fault(e->n[0].q, &f);
    n = mm__wire_frame_encode(buf, cap, MM_WIRE_INVOKE, src, 8 * 1024);
    int sent = 0, rc;
    while ((rc = mm__quic_send_frame(b->conn, sid, buf, n)) == 0 && sent < 100)
        sent++;
    assert_int_equal(rc, MM_EOVERLOADED);
    assert_true(sent >= 7 && sent <= 8);
    assert_true(mm__quic_conn_unacked(b->conn) <= cfg.conn_send_max);
    run_until(e, never, 200); /* some of it is sent, nothing acknowledged */
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), MM_EOVERLOADED);
    struct mm_quic_stats st;
    mm__quic_stats(b->q, &st);
    assert_int_equal(st.send_refused, 2);
    assert_int_equal(st.tx_unacked, mm__quic_conn_unacked(b->conn));

    /* The peer is back: everything is acknowledged and sending resumes. */
    struct mm_quic_fault none = {.seed = 1};
    mm__quic_set_fault(e->n[0].q, &none);
    assert_true(run_until(e, b_unacked_zero, WAIT_MS));
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_int_equal(e->n[0].downs + b->downs, 0);
    free(buf);
    free(src);
}

static int
one_conn_each(struct env *e)
{
    size_t upa, upb;
    size_t na = mm__quic_conn_count(e->n[0].q, &upa);
    size_t nb = mm__quic_conn_count(e->n[1].q, &upb);
    return na == 1 && nb == 1 && upa == 1 && upb == 1;
}

static void
test_quic_crossing_dials_keep_one(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    for (int round = 0; round < 3; round++) {
        struct tnode *a = &e->n[0], *b = &e->n[1];
        assert_int_equal(
            mm__quic_dial(a->q, mm__quic_local_addr(b->q), b->id.id, NULL), 0);
        assert_int_equal(
            mm__quic_dial(b->q, mm__quic_local_addr(a->q), a->id.id, NULL), 0);
        assert_true(run_until(e, one_conn_each, WAIT_MS));
        run_until(e, never, 100); /* nothing changes later */
        assert_true(one_conn_each(e));
        /* Exactly one live (reported up, not down) connection each. */
        assert_int_equal(a->live, 1);
        assert_int_equal(b->live, 1);
        /* Both kept the same one: dialled by the lower id. */
        struct mm_qconn *ca = mm__quic_find_peer(a->q, b->id.id);
        struct mm_qconn *cb = mm__quic_find_peer(b->q, a->id.id);
        assert_non_null(ca);
        assert_non_null(cb);
        int a_lower = memcmp(a->id.id, b->id.id, 16) < 0;
        assert_int_equal(mm__quic_conn_is_dialer(ca), a_lower);
        assert_int_equal(mm__quic_conn_is_dialer(cb), !a_lower);
        /* Frames flow on the survivor. */
        int fb = b->frames;
        uint8_t buf[64];
        size_t n = frame(buf, sizeof(buf), MM_WIRE_CTRL_EVENT, "x");
        assert_int_equal(
            mm__quic_send_frame(ca, mm__quic_control_stream(ca), buf, n), 0);
        g_target = fb + 1;
        assert_true(run_until(e, b_frames_target, WAIT_MS));
        mm__quic_conn_close(ca, 0);
        for (int k = 0; k < 1000 && (mm__quic_conn_count(a->q, NULL) ||
                                     mm__quic_conn_count(b->q, NULL));
             k++)
            uv_run(&e->loop, UV_RUN_ONCE);
        a->ups = a->downs = b->ups = b->downs = 0;
    }
}

static struct mm_qconn *g_old_h, *g_old_l;

static int
crossing_won(struct env *e)
{
    /* Both ends map the member to the new connection. */
    struct tnode *a = &e->n[0], *b = &e->n[1];
    struct mm_qconn *ca = mm__quic_find_peer(a->q, b->id.id);
    struct mm_qconn *cb = mm__quic_find_peer(b->q, a->id.id);
    return ca && cb && ca != g_old_h && ca != g_old_l && cb != g_old_h &&
           cb != g_old_l;
}

/*
 * A crossing dial that wins over a connection already in use does not cut
 * it: the old connection stays up (out of the peer map) and still carries
 * frames both ways until the user closes it.
 */
static void
test_quic_crossing_winner_lets_old_conn_drain(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    a->keep_superseded = b->keep_superseded = 1;
    /* The higher id dials first: the lower id's later dial wins. */
    int a_lower = memcmp(a->id.id, b->id.id, 16) < 0;
    struct tnode *lo = a_lower ? a : b, *hi = a_lower ? b : a;
    assert_int_equal(
        mm__quic_dial(hi->q, mm__quic_local_addr(lo->q), lo->id.id, NULL), 0);
    assert_true(run_until(e, one_conn_each, WAIT_MS));
    g_old_h = mm__quic_find_peer(hi->q, lo->id.id);
    g_old_l = mm__quic_find_peer(lo->q, hi->id.id);
    assert_non_null(g_old_h);
    assert_non_null(g_old_l);
    assert_int_equal(
        mm__quic_dial(lo->q, mm__quic_local_addr(hi->q), hi->id.id, NULL), 0);
    assert_true(run_until(e, crossing_won, WAIT_MS));
    run_until(e, never, 100);
    /* No connection went down: the old one is superseded, not closed. */
    assert_int_equal(a->downs + b->downs, 0);
    assert_int_equal(a->live, 2);
    assert_int_equal(b->live, 2);
    assert_true(mm__quic_conn_is_up(g_old_h));
    assert_true(mm__quic_conn_is_up(g_old_l));
    /* Frames still flow on the old connection, both ways. */
    uint8_t buf[64];
    size_t n = frame(buf, sizeof(buf), MM_WIRE_CTRL_EVENT, "old");
    int fl = lo->frames, fh = hi->frames;
    assert_int_equal(
        mm__quic_send_frame(g_old_h, mm__quic_control_stream(g_old_h), buf, n),
        0);
    assert_int_equal(
        mm__quic_send_frame(g_old_l, mm__quic_control_stream(g_old_l), buf, n),
        0);
    for (int k = 0; k < 2000 && (lo->frames == fl || hi->frames == fh); k++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(lo->frames, fl + 1);
    assert_int_equal(hi->frames, fh + 1);
    /* The user closes it once drained: only it goes down. */
    mm__quic_conn_close(g_old_h, MM_EEXISTS);
    for (int k = 0; k < 2000 && (a->downs + b->downs < 2); k++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(a->downs + b->downs, 2);
    assert_true(one_conn_each(e));
    assert_true(crossing_won(e));
}

static int
a_datagrams2(struct env *e)
{
    return e->n[0].datagrams >= 1;
}

static void
test_quic_gossip_datagram_demux(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    connect_pair(e); /* QUIC traffic on the same socket at the same time */
    struct sockaddr_in to;
    uv_ip4_addr("127.0.0.1", mm__quic_local_port(e->n[0].q), &to);
    uint8_t junk[40], gossip[40];
    memset(junk, 0x02, sizeof(junk));
    memset(gossip, 0x5a, sizeof(gossip));
    gossip[0] = 0x01;
    struct mm_quic_stats st0;
    mm__quic_stats(e->n[0].q, &st0);
    assert_int_equal(mm__quic_send_datagram(e->n[1].q, (struct sockaddr *)&to,
                                            junk, sizeof(junk)),
                     0);
    assert_int_equal(mm__quic_send_datagram(e->n[1].q, (struct sockaddr *)&to,
                                            gossip, sizeof(gossip)),
                     0);
    assert_true(run_until(e, a_datagrams2, WAIT_MS));
    run_until(e, never, 20);
    assert_int_equal(e->n[0].datagrams, 1);
    assert_int_equal(e->n[0].dgram_len, sizeof(gossip));
    assert_memory_equal(e->n[0].dgram, gossip, sizeof(gossip));
    struct mm_quic_stats st;
    mm__quic_stats(e->n[0].q, &st);
    assert_int_equal(st.datagrams_in, 1);
    assert_true(st.dropped_in >= st0.dropped_in + 1);
    assert_int_equal(e->n[0].downs + e->n[1].downs, 0);
}

static int
a_datagrams10(struct env *e)
{
    return e->n[0].datagrams >= 10;
}

/*
 * A datagram longer than a receive slot (2048 bytes) is dropped whole,
 * never handed on cut short: here gossip-typed ones, which would otherwise
 * reach the gossip handler as a 2048-byte prefix.  First one alone (a lone
 * datagram is read with recvfrom), then a burst of 30 with 10 good ones
 * among them (read in batches with recvmmsg once reads come back full).
 */
static void
test_quic_oversized_datagrams_dropped(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct sockaddr_in to;
    uv_ip4_addr("127.0.0.1", mm__quic_local_port(e->n[0].q), &to);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    static uint8_t big[3000];
    memset(big, 0x5a, sizeof(big));
    big[0] = 0x01; /* the gossip type */
    uint8_t small[40];
    memset(small, 0x5a, sizeof(small));
    small[0] = 0x01;
    struct mm_quic_stats st0, st;
    mm__quic_stats(e->n[0].q, &st0);
    assert_int_equal(
        sendto(fd, big, sizeof(big), 0, (struct sockaddr *)&to, sizeof(to)),
        (ssize_t)sizeof(big));
    assert_int_equal(
        sendto(fd, small, sizeof(small), 0, (struct sockaddr *)&to, sizeof(to)),
        (ssize_t)sizeof(small));
    assert_true(run_until(e, a_datagrams2, WAIT_MS));
    assert_int_equal(e->n[0].datagrams, 1);
    assert_int_equal(e->n[0].dgram_len, sizeof(small));
    mm__quic_stats(e->n[0].q, &st);
    assert_int_equal(st.dropped_in, st0.dropped_in + 1);
    e->n[0].datagrams = 0;
    for (int i = 0; i < 30; i++) {
        const uint8_t *d = i % 3 == 2 ? small : big;
        size_t n = i % 3 == 2 ? sizeof(small) : sizeof(big);
        assert_int_equal(
            sendto(fd, d, n, 0, (struct sockaddr *)&to, sizeof(to)),
            (ssize_t)n);
    }
    assert_true(run_until(e, a_datagrams10, WAIT_MS));
    run_until(e, never, 20);
    assert_int_equal(e->n[0].datagrams, 10);
    assert_int_equal(e->n[0].dgram_len, sizeof(small));
    mm__quic_stats(e->n[0].q, &st);
    assert_int_equal(st.dropped_in, st0.dropped_in + 21);
    assert_int_equal(st.datagrams_in, 11);
    assert_int_equal(e->n[0].downs + e->n[1].downs, 0);
    close(fd);
}

static void
test_quic_vanished_peer_unreachable(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.probe_fail_ms = 300;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, &cfg);
    connect_pair(e);
    /* Node 0 goes silent: it drops everything in and out. */
    struct mm_quic_fault f = {.drop_pct = 100, .seed = 3};
    mm__quic_set_fault(e->n[0].q, &f);
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(e->n[1].conn, &sid), 0);
    uint8_t buf[64];
    size_t n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "anyone?");
    uint64_t t0 = uv_hrtime();
    assert_int_equal(mm__quic_send_frame(e->n[1].conn, sid, buf, n), 0);
    assert_true(run_until(e, dialer_down, WAIT_MS));
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(e->n[1].last_down_err, MM_EUNREACHABLE);
    assert_true(ms >= 250 && ms < 3000);
}

static int
a_up2(struct env *e)
{
    return e->n[0].ups >= 2 && e->n[0].downs >= 1;
}

static void
test_quic_new_generation_replaces_stale(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    uint64_t gen1 = e->n[0].up_gen;
    /* Node 1 dies without a word (its CONNECTION_CLOSE is dropped). */
    struct mm_quic_fault f = {.drop_pct = 100, .seed = 1};
    mm__quic_set_fault(e->n[1].q, &f);
    node_stop(e, 1);
    assert_int_equal(e->n[0].downs, 0);
    /* It restarts with the next generation and dials again. */
    node_start(e, 1, 7, NULL);
    assert_int_equal(e->n[1].id.generation, gen1 + 1);
    assert_int_equal(
        mm__quic_dial(e->n[1].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    assert_true(run_until(e, a_up2, WAIT_MS));
    assert_int_equal(e->n[0].up_gen, gen1 + 1);
    assert_int_equal(e->n[0].last_down_err, MM_ECLOSED);
    size_t up;
    assert_int_equal(mm__quic_conn_count(e->n[0].q, &up), 1);
    assert_int_equal(up, 1);
}

static void
test_quic_idle_close(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.idle_ms = 150;
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, &cfg);
    connect_pair(e);
    uint64_t t0 = uv_hrtime();
    assert_true(run_until(e, both_down, WAIT_MS));
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(e->n[0].last_down_err, MM_ECLOSED);
    assert_int_equal(e->n[1].last_down_err, MM_ECLOSED);
    assert_true(ms >= 100);
}

static void
test_quic_lossy_path_delivers(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.fault.drop_pct = 10;
    cfg.fault.delay_ms = 1;
    cfg.fault.reorder_pct = 10;
    cfg.fault.seed = 42;
    node_start(e, 0, 7, &cfg);
    cfg.fault.seed = 43;
    node_start(e, 1, 7, &cfg);
    connect_pair(e);
    e->n[0].echo = 1;
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(e->n[1].conn, &sid), 0);
    /* 200 frames of 3000 bytes each way (several packets per frame). */
    static uint8_t buf[3100], body[3000];
    memset(body, 0x33, sizeof(body));
    for (int i = 0; i < 200; i++) {
        size_t n = mm__wire_frame_encode(buf, sizeof(buf), MM_WIRE_INVOKE, body,
                                         sizeof(body));
        assert_int_equal(mm__quic_send_frame(e->n[1].conn, sid, buf, n), 0);
    }
    g_target = 200;
    assert_true(run_until(e, b_frames_target, 30000));
    struct mm_quic_stats st;
    mm__quic_stats(e->n[0].q, &st);
    assert_true(st.fault_dropped > 0);
    assert_int_equal(e->n[0].downs + e->n[1].downs, 0);
}

static void
test_quic_fault_parse(void **state)
{
    MM_UNUSED(state);
    struct mm_quic_fault f;
    assert_int_equal(
        mm__quic_fault_parse(&f, "drop=5,delay=0,reorder=0,seed=1"), 0);
    assert_int_equal(f.drop_pct, 5);
    assert_int_equal(f.seed, 1);
    assert_int_equal(mm__quic_fault_parse(&f, "delay=20,reorder=3"), 0);
    assert_int_equal(f.delay_ms, 20);
    assert_int_equal(f.reorder_pct, 3);
    assert_int_equal(mm__quic_fault_parse(&f, "drop=101"), MM_EINVAL);
    assert_int_equal(mm__quic_fault_parse(&f, "bogus=1"), MM_EINVAL);
    assert_int_equal(mm__quic_fault_parse(&f, "drop="), MM_EINVAL);
}

/* Node 0's transport counters. */
static struct mm_quic_stats
n0_stats(struct env *e)
{
    struct mm_quic_stats st;
    mm__quic_stats(e->n[0].q, &st);
    return st;
}

/* A config with Retry on every new connection (|always|) or from |above|
 * handshakes in progress. */
static struct mm_quic_config
retry_cfg(int always, uint32_t above)
{
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.retry_always = always;
    cfg.retry_above = above;
    return cfg;
}

/* Retry on every new connection: the dialer answers it, the handshake and
 * auth complete, and the connection carries frames. */
static void
test_quic_retry_validates_address(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg = retry_cfg(1, 0);
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct mm_quic_stats st = n0_stats(e);
    assert_int_equal(st.retries_sent, 1);
    assert_int_equal(st.conns_accepted, 1);
    assert_int_equal(st.tokens_refused, 0);
    uint8_t buf[64];
    size_t n = frame(buf, sizeof(buf), MM_WIRE_CTRL_REQ, "after retry");
    assert_int_equal(mm__quic_send_frame(e->n[1].conn,
                                         mm__quic_control_stream(e->n[1].conn),
                                         buf, n),
                     0);
    assert_true(run_until(e, got_frames_a1, WAIT_MS));
    assert_int_equal(e->n[0].last_len, strlen("after retry"));
}

static int
accepted_one(struct env *e)
{
    return n0_stats(e).conns_accepted >= 1;
}

/* While retry_above handshakes are in progress, a new dial is retried;
 * below that, none is. */
static void
test_quic_retry_only_under_load(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg = retry_cfg(0, 1);
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, NULL);
    node_start(e, 2, 7, NULL);
    /* Node 2's Initial goes out, then node 2 falls silent: its handshake
     * stays in progress on node 0 (handshake_ms, 5 s). */
    assert_int_equal(
        mm__quic_dial(e->n[2].q, mm__quic_local_addr(e->n[0].q), NULL, NULL),
        0);
    struct mm_quic_fault f = {.drop_pct = 100, .seed = 9};
    mm__quic_set_fault(e->n[2].q, &f);
    assert_true(run_until(e, accepted_one, WAIT_MS));
    struct mm_quic_stats st = n0_stats(e);
    assert_int_equal(st.retries_sent, 0); /* nothing in progress then */
    /* Node 1 dials now: one handshake in progress, so a Retry first. */
    connect_pair(e);
    st = n0_stats(e);
    assert_int_equal(st.retries_sent, 1);
    assert_int_equal(st.conns_accepted, 2);
    assert_int_equal(st.conns_up, 1);
}

/* A UDP relay between a dialer and node 0 that records what the dialer
 * sends, so that a test can replay it from another address. */
struct relay {
    uv_udp_t sock;
    struct sockaddr_storage server, client;
    int have_client;
    uint8_t sent[8][1500]; /* the dialer's first datagrams */
    size_t sent_len[8];
    int nsent;
};

static void
relay_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[2048];
    MM_UNUSED(h);
    MM_UNUSED(hint);
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void
relay_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
           const struct sockaddr *from, unsigned flags)
{
    struct relay *r = u->data;
    MM_UNUSED(flags);
    if (n <= 0 || from == NULL) return;
    const struct sockaddr_in *f = (const struct sockaddr_in *)from;
    const struct sockaddr_in *srv = (const struct sockaddr_in *)&r->server;
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    if (f->sin_port == srv->sin_port) {
        if (r->have_client)
            uv_udp_try_send(u, &out, 1, (struct sockaddr *)&r->client);
        return;
    }
    memcpy(&r->client, from, sizeof(struct sockaddr_in));
    r->have_client = 1;
    if (r->nsent < 8 && (size_t)n <= sizeof(r->sent[0])) {
        memcpy(r->sent[r->nsent], buf->base, (size_t)n);
        r->sent_len[r->nsent++] = (size_t)n;
    }
    uv_udp_try_send(u, &out, 1, (struct sockaddr *)&r->server);
}

static int
accepted_two(struct env *e)
{
    return n0_stats(e).conns_accepted >= 2;
}

static int
refused_one(struct env *e)
{
    return n0_stats(e).tokens_refused >= 1;
}

/* A Retry token is good for the address it was sent to only: the dialer's
 * token-bearing Initial replayed from another address is dropped. */
static void
test_quic_retry_token_bound_to_address(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg = retry_cfg(1, 0);
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, NULL);
    static struct relay r;
    memset(&r, 0, sizeof(r));
    struct sockaddr_in any;
    int len = sizeof(struct sockaddr_in);
    uv_ip4_addr("127.0.0.1", 0, &any);
    assert_int_equal(uv_ip4_addr("127.0.0.1", mm__quic_local_port(e->n[0].q),
                                 (struct sockaddr_in *)&r.server),
                     0);
    assert_int_equal(uv_udp_init(&e->loop, &r.sock), 0);
    r.sock.data = &r;
    assert_int_equal(uv_udp_bind(&r.sock, (struct sockaddr *)&any, 0), 0);
    struct sockaddr_in mine;
    assert_int_equal(
        uv_udp_getsockname(&r.sock, (struct sockaddr *)&mine, &len), 0);
    assert_int_equal(uv_udp_recv_start(&r.sock, relay_alloc, relay_recv), 0);
    char via[64];
    snprintf(via, sizeof(via), "127.0.0.1:%d", ntohs(mine.sin_port));
    struct mm_qconn *c = NULL;
    assert_int_equal(mm__quic_dial(e->n[1].q, via, e->n[0].id.id, &c), 0);
    assert_true(run_until(e, both_up, WAIT_MS));
    struct mm_quic_stats st = n0_stats(e);
    assert_int_equal(st.retries_sent, 1);
    /* Datagram 0: the first Initial; 1: the Initial with the token. */
    assert_true(r.nsent >= 2);
    assert_int_equal(r.sent[1][0] & 0xf0, 0xc0); /* long header, Initial */
    /* Closed, so that its connection ids lead nowhere and a replay of
     * that Initial reaches the accept path. */
    r.have_client = 0;
    mm__quic_conn_close(c, 0);
    assert_true(run_until(e, both_down, WAIT_MS));
    uv_udp_t other;
    assert_int_equal(uv_udp_init(&e->loop, &other), 0);
    assert_int_equal(uv_udp_bind(&other, (struct sockaddr *)&any, 0), 0);
    uv_buf_t b = uv_buf_init((char *)r.sent[1], (unsigned)r.sent_len[1]);
    assert_int_equal(
        uv_udp_try_send(&other, &b, 1, (struct sockaddr *)&r.server),
        (int)r.sent_len[1]);
    assert_true(run_until(e, refused_one, WAIT_MS));
    st = n0_stats(e);
    assert_int_equal(st.conns_accepted, 1);
    assert_int_equal(st.retries_sent, 1);
    /* From the address the token was made for, the same bytes pass. */
    assert_int_equal(
        uv_udp_try_send(&r.sock, &b, 1, (struct sockaddr *)&r.server),
        (int)r.sent_len[1]);
    assert_true(run_until(e, accepted_two, WAIT_MS));
    st = n0_stats(e);
    assert_int_equal(st.tokens_refused, 1);
    uv_close((uv_handle_t *)&other, NULL);
    uv_close((uv_handle_t *)&r.sock, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* W5-style numbers, printed, never asserted. */
static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void
test_quic_measure_handshake_and_rtt(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    enum { NCONN = 200, NRTT = 2000 };
    static uint64_t hs[NCONN], rtt[NRTT];
    for (int i = 0; i < NCONN; i++) {
        struct mm_qconn *c;
        int ups = b->ups;
        uint64_t t0 = uv_hrtime();
        assert_int_equal(
            mm__quic_dial(b->q, mm__quic_local_addr(a->q), a->id.id, &c), 0);
        for (int k = 0; k < 1000 && b->ups == ups; k++)
            uv_run(&e->loop, UV_RUN_ONCE);
        assert_int_equal(b->ups, ups + 1);
        hs[i] = uv_hrtime() - t0;
        if (i < NCONN - 1) {
            mm__quic_conn_close(c, 0);
            for (int k = 0; k < 1000 && mm__quic_conn_count(a->q, NULL); k++)
                uv_run(&e->loop, UV_RUN_ONCE);
        }
    }
    a->echo = 1;
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    uint8_t buf[64], body[59];
    memset(body, 'x', sizeof(body));
    size_t n = mm__wire_frame_encode(buf, sizeof(buf), MM_WIRE_INVOKE, body,
                                     sizeof(body));
    assert_int_equal(n, 64);
    for (int i = 0; i < NRTT; i++) {
        int f = b->frames;
        uint64_t t0 = uv_hrtime();
        assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
        for (int k = 0; k < 1000 && b->frames == f; k++)
            uv_run(&e->loop, UV_RUN_ONCE);
        assert_int_equal(b->frames, f + 1);
        rtt[i] = uv_hrtime() - t0;
    }
    qsort(hs, NCONN, sizeof(hs[0]), cmp_u64);
    qsort(rtt, NRTT, sizeof(rtt[0]), cmp_u64);
    print_message("murmer,W5.quic.handshake_auth.median,%" PRIu64 ",ns\n",
                  hs[NCONN / 2]);
    print_message("murmer,W5.quic.handshake_auth.p99,%" PRIu64 ",ns\n",
                  hs[NCONN * 99 / 100]);
    print_message("murmer,W5.quic.rtt_64B.median,%" PRIu64 ",ns\n",
                  rtt[NRTT / 2]);
    print_message("murmer,W5.quic.rtt_64B.p99,%" PRIu64 ",ns\n",
                  rtt[NRTT * 99 / 100]);
}

/* ---- hostile peers ------------------------------------------------------- */

/* A hostile dialer (tnode.hostile: TLS done, no HELLO/AUTH sent) opens its
 * control stream by hand. */
static struct qstream *
hostile_stream(struct mm_qconn *c)
{
    struct qstream *s = mm__quic_stream_new(c, -1);
    int64_t sid;
    assert_non_null(s);
    assert_int_equal(ngtcp2_conn_open_bidi_stream(c->conn, &sid, s), 0);
    s->sid = sid;
    return s;
}

/* Queues raw bytes on |s| (no framing, no caps) and writes them. */
static void
hostile_write(struct mm_qconn *c, struct qstream *s, const uint8_t *d, size_t n)
{
    conn_enter(c);
    assert_int_equal(mm__quic_stream_queue(s, d, n), 0);
    conn_leave(c);
}

static struct mm_qconn *g_hc; /* the hostile connection being watched */

static int
hostile_tls_done(struct env *e)
{
    MM_UNUSED(e);
    return g_hc && g_hc->hs_done;
}

static int
n1_down(struct env *e)
{
    return e->n[1].downs >= 1;
}

/* Node 1 (hostile) dials node 0 and waits for TLS to finish. */
static struct mm_qconn *
hostile_dial(struct env *e, int from)
{
    struct mm_qconn *c = NULL;
    assert_int_equal(
        mm__quic_dial(e->n[from].q, mm__quic_local_addr(e->n[0].q), NULL, &c),
        0);
    g_hc = c;
    assert_true(run_until(e, hostile_tls_done, WAIT_MS));
    return c;
}

/* Before auth: a frame above 4 KiB on the control stream (here the header
 * of one of 4 MiB, then its first bytes) closes the connection at once,
 * not after the handshake timeout. */
static void
test_quic_preauth_big_frame_closes(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.handshake_ms = 60000;
    node_start(e, 0, 7, &cfg);
    e->n[1].hostile = 1;
    node_start(e, 1, 9, &cfg);
    struct mm_qconn *c = hostile_dial(e, 1);
    struct qstream *s = hostile_stream(c);
    uint8_t *buf = calloc(1, 64 * 1024);
    mm__put_u32(buf, 4u * 1024u * 1024u);
    buf[4] = MM_WIRE_HELLO;
    hostile_write(c, s, buf, 64 * 1024);
    assert_true(run_until(e, n1_down, WAIT_MS));
    assert_int_equal(e->n[1].last_down_err, MM_EUNAUTHORIZED);
    assert_int_equal(n0_stats(e).auth_failures, 1);
    assert_int_equal(e->n[0].ups, 0);
    free(buf);
}

static int
n0_auth_failed(struct env *e)
{
    return n0_stats(e).auth_failures >= 1;
}

/* Before auth: the control stream reset by the dialer (the only stream it
 * may have then) closes the connection. */
static void
test_quic_preauth_ctrl_reset_closes(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.handshake_ms = 60000;
    node_start(e, 0, 7, &cfg);
    e->n[1].hostile = 1;
    node_start(e, 1, 9, &cfg);
    struct mm_qconn *c = hostile_dial(e, 1);
    struct qstream *s = hostile_stream(c);
    uint8_t buf[16] = {0, 0, 0, 0, MM_WIRE_HELLO};
    mm__put_u32(buf, 100); /* the start of a legal HELLO */
    hostile_write(c, s, buf, sizeof(buf));
    conn_enter(c);
    ngtcp2_conn_shutdown_stream(c->conn, s->sid, 1);
    conn_leave(c);
    assert_true(run_until(e, n0_auth_failed, WAIT_MS));
    assert_true(run_until(e, n1_down, WAIT_MS));
    assert_int_equal(e->n[1].last_down_err, MM_EUNAUTHORIZED);
    size_t up;
    assert_int_equal(mm__quic_conn_count(e->n[0].q, &up), 0);
}

static int
hostile_acked(struct env *e)
{
    MM_UNUSED(e);
    return g_hc && g_hc->tx_unacked == 0;
}

static int
n2_up(struct env *e)
{
    return e->n[2].ups >= 1;
}

static int
n0_down(struct env *e)
{
    return e->n[0].downs >= 1;
}

static int
n2_up2(struct env *e)
{
    return e->n[2].ups >= 2;
}

/* Before auth no credit is granted: a dialer that sends the start of a
 * legal 4 KiB frame on each of many connections can send no more than the
 * pre-auth window on any of them; a legitimate dial still works. */
static void
test_quic_preauth_no_credit(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.handshake_ms = 60000;
    cfg.retry_above = 1000;
    node_start(e, 0, 7, &cfg);
    e->n[1].hostile = 1;
    node_start(e, 1, 9, &cfg);
    node_start(e, 2, 7, NULL);
    uint8_t buf[4000];
    memset(buf, 'x', sizeof(buf));
    mm__put_u32(buf, QUIC_PREAUTH_MAX_FRAME); /* the largest allowed */
    buf[4] = MM_WIRE_HELLO;
    for (int i = 0; i < 12; i++) {
        struct mm_qconn *c = hostile_dial(e, 1);
        struct qstream *s = hostile_stream(c);
        hostile_write(c, s, buf, sizeof(buf));
        assert_true(run_until(e, hostile_acked, WAIT_MS));
        run_until(e, never, 20);
        /* What the acceptor allows on the stream and the connection:
         * the pre-auth window, less what was sent. */
        assert_int_equal(ngtcp2_conn_get_max_stream_data_left(c->conn, s->sid),
                         QUIC_PREAUTH_WINDOW - sizeof(buf));
        assert_int_equal(ngtcp2_conn_get_max_data_left(c->conn),
                         QUIC_PREAUTH_WINDOW - sizeof(buf));
    }
    g_hc = NULL;
    size_t up;
    assert_int_equal(mm__quic_conn_count(e->n[0].q, &up), 12);
    assert_int_equal(up, 0);
    /* A legitimate member still gets in. */
    struct mm_qconn *c = NULL;
    assert_int_equal(mm__quic_dial(e->n[2].q, mm__quic_local_addr(e->n[0].q),
                                   e->n[0].id.id, &c),
                     0);
    assert_true(run_until(e, n2_up, WAIT_MS));
}

static int
n0_refused_some(struct env *e)
{
    return n0_stats(e).hs_refused >= 1 && e->n[0].q->hs_inbound >= 3;
}

/* Handshakes in progress are capped per source address and in total: the
 * excess Initials are dropped and counted, and a member from another
 * address still gets in; at the total cap, a handshake older than
 * hs_evict_ms gives way to a new one. */
static void
test_quic_handshake_caps(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.handshake_ms = 60000;
    cfg.retry_above = 1000;
    cfg.hs_per_addr = 3;
    cfg.hs_max = 5;
    cfg.hs_evict_ms = 60000;
    node_start(e, 0, 7, &cfg);
    struct mm_quic_config hc;
    mm__quic_config_init(&hc);
    hc.handshake_ms = 60000;
    e->n[1].hostile = 1;
    e->n[1].listen = "127.0.0.1:0";
    node_start(e, 1, 9, &hc);
    e->n[2].listen = "127.0.0.2:0";
    node_start(e, 2, 7, NULL);
    /* 8 dials from one address: 3 handshakes are kept, the rest dropped. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(mm__quic_dial(e->n[1].q,
                                       mm__quic_local_addr(e->n[0].q), NULL,
                                       NULL),
                         0);
    assert_true(run_until(e, n0_refused_some, WAIT_MS));
    run_until(e, never, 300); /* retransmitted Initials are dropped too */
    assert_int_equal(e->n[0].q->hs_inbound, 3);
    uint64_t refused = n0_stats(e).hs_refused;
    assert_true(refused >= 5);
    assert_int_equal(n0_stats(e).conns_accepted, 3);
    /* Another address gets in. */
    assert_int_equal(mm__quic_dial(e->n[2].q, mm__quic_local_addr(e->n[0].q),
                                   e->n[0].id.id, NULL),
                     0);
    assert_true(run_until(e, n2_up, WAIT_MS));
    /* The total: 3 held + 2 more from a third address fill it (5); the
     * next is dropped. */
    e->n[2].hostile = 1;
    e->n[2].q->test_hold_auth = 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(mm__quic_dial(e->n[2].q,
                                       mm__quic_local_addr(e->n[0].q), NULL,
                                       NULL),
                         0);
    run_until(e, never, 500);
    assert_int_equal(e->n[0].q->hs_inbound, 5);
    assert_true(n0_stats(e).hs_refused > refused);
    assert_int_equal(n0_stats(e).conns_accepted, 6);
    assert_int_equal(n0_stats(e).hs_evicted, 0);
    /* Once the oldest handshake has had hs_evict_ms, it gives way at the
     * total cap: a member gets in. */
    e->n[0].q->cfg.hs_evict_ms = MM_HANDSHAKE_EVICT_MS;
    mm__quic_conn_close(e->n[2].conn, 0); /* the member reconnects */
    assert_true(run_until(e, n0_down, WAIT_MS));
    e->n[2].q->test_hold_auth = 0;
    assert_int_equal(mm__quic_dial(e->n[2].q, mm__quic_local_addr(e->n[0].q),
                                   e->n[0].id.id, NULL),
                     0);
    int ok = run_until(e, n2_up2, WAIT_MS);
    if (!ok)
        print_message("n2 ups %d downs %d; n0 ups %d evicted %" PRIu64
                      " refused %" PRIu64 " accepted %" PRIu64 " hs %u\n",
                      e->n[2].ups, e->n[2].downs, e->n[0].ups,
                      n0_stats(e).hs_evicted, n0_stats(e).hs_refused,
                      n0_stats(e).conns_accepted, e->n[0].q->hs_inbound);
    assert_true(ok);
    assert_true(n0_stats(e).hs_evicted >= 1);
    assert_true(e->n[0].q->hs_inbound <= 5);
}

static int
a_decode_closed_100(struct env *e)
{
    return e->n[0].closed_decode >= 100 && e->n[1].closed >= 100;
}

static int
a_decode_closed_200(struct env *e)
{
    return e->n[0].closed_decode >= 200 && e->n[1].closed >= 200;
}

/* A stream that ends (FIN) inside a frame is reset with decode_error: its
 * slot comes back, so 200 such streams (stream window 128) leave the
 * connection usable. */
static void
test_quic_fin_inside_frame_resets(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    uint8_t part[16] = {0, 0, 0, 0, MM_WIRE_INVOKE, 'p', 'a', 'r', 't'};
    mm__put_u32(part, 100); /* 16 bytes of a 104-byte frame */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            int64_t sid;
            assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
            struct qstream *s = stream_find(b->conn, sid);
            hostile_write(b->conn, s, part, sizeof(part));
            assert_int_equal(mm__quic_stream_close(b->conn, sid), 0);
        }
        assert_true(run_until(
            e, round ? a_decode_closed_200 : a_decode_closed_100, WAIT_MS));
    }
    assert_int_equal(a->closed_decode, 200);
    assert_int_equal(b->last_closed_err, MM_EDECODE);
    assert_int_equal(a->frames, 0);
    /* The connection still carries calls. */
    a->echo = 1;
    int64_t sid;
    uint8_t buf[64];
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    size_t n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "after");
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, got_frames_b1, WAIT_MS));
    assert_int_equal(a->downs + b->downs, 0);
}

static int
a_closed_decode_1(struct env *e)
{
    return e->n[0].closed_decode >= 1;
}

/* A frame of unknown type is a bad frame (docs/wire.md): its stream is
 * reset with decode_error; on the control stream the connection closes
 * with decode_error. */
static void
test_quic_unknown_type_is_decode_error(void **state)
{
    struct env *e = *state;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    uint8_t buf[64];
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    size_t n = frame(buf, sizeof(buf), 0x99, "what is this");
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, a_closed_decode_1, WAIT_MS));
    assert_int_equal(a->last_closed_sid, sid);
    assert_int_equal(a->frames, 0);
    assert_int_equal(a->downs, 0);
    /* A known type on another stream still goes through. */
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    n = frame(buf, sizeof(buf), MM_WIRE_INVOKE, "known");
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, got_frames_a1, WAIT_MS));
    /* On the control stream: the connection goes, with decode_error. */
    n = frame(buf, sizeof(buf), 0x7f, "ctrl");
    assert_int_equal(
        mm__quic_send_frame(b->conn, mm__quic_control_stream(b->conn), buf, n),
        0);
    assert_true(run_until(e, both_down, WAIT_MS));
    assert_int_equal(b->last_down_err, MM_EDECODE);
    assert_int_equal(a->frames, 1);
}

static int
a_frames_stalled(struct env *e)
{
    return e->n[0].frames >= 1 && e->n[1].conn &&
           e->n[1].conn->tx_unacked > 0 &&
           ngtcp2_conn_get_max_stream_data_left(e->n[1].conn->conn,
                                                e->n[1].last_sid) == 0;
}

static int
a_frames_32(struct env *e)
{
    return e->n[0].frames >= 32;
}

static int
a_frames_33(struct env *e)
{
    return e->n[0].frames >= 33;
}

/* Held frames keep their stream credit: a receiver that holds everything
 * stops its sender at the stream window; the credit given back lets the
 * rest through.  A frame larger than the window, not held while partial,
 * always completes. */
static void
test_quic_held_credit_bounds_inbound(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.conn_send_max = 16u * 1024u * 1024u;
    node_start(e, 0, 7, NULL);
    node_start(e, 1, 7, &cfg);
    connect_pair(e);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    a->hold = 1;
    size_t body = 64 * 1024;
    uint8_t *buf = calloc(1, 4u * 1024u * 1024u);
    uint8_t *src = calloc(1, 3u * 1024u * 1024u);
    int64_t sid;
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    b->last_sid = sid;
    size_t n = mm__wire_frame_encode(buf, body + 16, MM_WIRE_INVOKE, src, body);
    for (int i = 0; i < 32; i++)
        assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    int stalled = run_until(e, a_frames_stalled, WAIT_MS);
    if (!stalled)
        print_message("frames %d held %zu unacked %zu left %" PRIu64 "\n",
                      a->frames, a->held, b->conn->tx_unacked,
                      ngtcp2_conn_get_max_stream_data_left(b->conn->conn, sid));
    assert_true(stalled);
    run_until(e, never, 100);
    /* At most the stream window and one frame (its partial bytes had
     * their credit back) are held; the sender waits. */
    assert_true(a->held <= QUIC_STREAM_WINDOW + n);
    assert_true(a->frames >= 15 && a->frames <= 17);
    assert_int_equal(mm__quic_conn_held(a->conn), a->held);
    /* Given back (a message consumed): the rest arrives. */
    a->hold = 0;
    mm__quic_credit_return(a->conn, sid, a->held);
    assert_true(run_until(e, a_frames_32, WAIT_MS));
    assert_int_equal(mm__quic_conn_held(a->conn), 0);
    /* A 3 MiB frame on a 1 MiB window completes. */
    n = mm__wire_frame_encode(buf, 4u * 1024u * 1024u, MM_WIRE_INVOKE, src,
                              3u * 1024u * 1024u);
    assert_int_equal(mm__quic_send_frame(b->conn, sid, buf, n), 0);
    assert_true(run_until(e, a_frames_33, WAIT_MS));
    assert_int_equal(a->last_len, 3u * 1024u * 1024u);
    /* Returning credit on a stream that is gone does nothing. */
    mm__quic_credit_return(a->conn, 4242, 100);
    assert_int_equal(a->downs + b->downs, 0);
    free(buf);
    free(src);
}

static int
n1_up(struct env *e)
{
    return e->n[1].ups >= 1;
}

static int
n2_up_first(struct env *e)
{
    return e->n[2].ups >= 1;
}

static int
n0_conns_refused(struct env *e)
{
    return n0_stats(e).conns_refused >= 1;
}

/* Accepted connections are capped (conns_max, here 1): past it an Initial
 * is dropped and counted; once the connection closes, the dialer that
 * waited gets in with its next Initial. */
static void
test_quic_accepted_conns_capped(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.conns_max = 1;
    cfg.retry_above = 1000;
    node_start(e, 0, 7, &cfg);
    struct mm_quic_config dc;
    mm__quic_config_init(&dc);
    dc.handshake_ms = 60000;
    node_start(e, 1, 7, &dc);
    node_start(e, 2, 7, &dc);
    const char *to = mm__quic_local_addr(e->n[0].q);
    assert_int_equal(mm__quic_dial(e->n[1].q, to, e->n[0].id.id, NULL), 0);
    assert_true(run_until(e, n1_up, WAIT_MS));
    assert_int_equal(mm__quic_dial(e->n[2].q, to, e->n[0].id.id, NULL), 0);
    assert_true(run_until(e, n0_conns_refused, WAIT_MS));
    assert_int_equal(n0_stats(e).conns_accepted, 1);
    assert_int_equal(e->n[0].q->inbound_conns, 1);
    assert_int_equal(e->n[2].ups, 0);
    /* It goes: the second dialer gets in. */
    mm__quic_conn_close(e->n[1].conn, 0);
    assert_true(run_until(e, n2_up_first, WAIT_MS));
    assert_int_equal(n0_stats(e).conns_accepted, 2);
    assert_int_equal(e->n[0].q->inbound_conns, 1);
}

static int
a_overloaded_4(struct env *e)
{
    return e->n[0].closed_overloaded >= 4;
}

/* Incomplete frames are bounded per connection, not only per stream: 12
 * streams that each stop 128 KiB into a 2 MiB frame, against a bound of
 * 1 MiB, get the streams past the bound reset with overloaded; what the
 * node buffers stays within the bound and the connection carries calls. */
static void
test_quic_partial_frames_bounded(void **state)
{
    struct env *e = *state;
    struct mm_quic_config cfg;
    mm__quic_config_init(&cfg);
    cfg.partial_max = 1024u * 1024u;
    node_start(e, 0, 7, &cfg);
    node_start(e, 1, 7, NULL);
    connect_pair(e);
    struct tnode *a = &e->n[0], *b = &e->n[1];
    size_t part = 128u * 1024u;
    uint8_t *buf = calloc(1, part);
    mm__put_u32(buf, 2u * 1024u * 1024u);
    buf[4] = MM_WIRE_INVOKE;
    for (int i = 0; i < 12; i++) {
        int64_t sid;
        assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
        hostile_write(b->conn, stream_find(b->conn, sid), buf, part);
    }
    if (!run_until(e, a_overloaded_4, WAIT_MS))
        print_message(
            "overloaded %d decode %d closed %d partial %zu resets %" PRIu64
            "\n",
            a->closed_overloaded, a->closed_decode, a->closed,
            a->conn->rx_partial, n0_stats(e).partial_resets);
    assert_true(a->closed_overloaded >= 4);
    assert_int_equal(a->closed_overloaded, 4);
    assert_int_equal(n0_stats(e).partial_resets, 4);
    assert_true(a->conn->rx_partial <= cfg.partial_max);
    assert_int_equal(a->frames, 0);
    /* The connection still carries calls. */
    a->echo = 1;
    int64_t sid;
    uint8_t small[64];
    assert_int_equal(mm__quic_stream_open(b->conn, &sid), 0);
    size_t n = frame(small, sizeof(small), MM_WIRE_INVOKE, "after");
    assert_int_equal(mm__quic_send_frame(b->conn, sid, small, n), 0);
    assert_true(run_until(e, got_frames_b1, WAIT_MS));
    assert_int_equal(a->downs + b->downs, 0);
    free(buf);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_fault_parse),
        T(test_quic_handshake_auth_and_frames),
        T(test_quic_wrong_key_unauthorized),
        T(test_quic_wire_version_newer_peer),
        T(test_quic_wire_version_none_common_acceptor),
        T(test_quic_wire_version_none_common_dialer),
        T(test_quic_retry_validates_address),
        T(test_quic_retry_only_under_load),
        T(test_quic_retry_token_bound_to_address),
        T(test_quic_keyring_rotation_accepts_old_key),
        T(test_quic_wrong_expected_id_refused),
        T(test_quic_greased_packets_still_flow),
        T(test_quic_hot_waits_back_off_when_unanswered),
        T(test_quic_1000_streams_sequential),
        T(test_quic_max_frame_only_that_stream),
        T(test_quic_send_cap_refuses_when_unacknowledged),
        T(test_quic_stream_credit_comes_back),
        T(test_quic_dial_nobody_times_out),
        T(test_quic_crossing_dials_keep_one),
        T(test_quic_crossing_winner_lets_old_conn_drain),
        T(test_quic_gossip_datagram_demux),
        T(test_quic_oversized_datagrams_dropped),
        T(test_quic_vanished_peer_unreachable),
        T(test_quic_new_generation_replaces_stale),
        T(test_quic_idle_close),
        T(test_quic_lossy_path_delivers),
        T(test_quic_preauth_big_frame_closes),
        T(test_quic_preauth_ctrl_reset_closes),
        T(test_quic_preauth_no_credit),
        T(test_quic_handshake_caps),
        T(test_quic_fin_inside_frame_resets),
        T(test_quic_unknown_type_is_decode_error),
        T(test_quic_partial_frames_bounded),
        T(test_quic_accepted_conns_capped),
        T(test_quic_held_credit_bounds_inbound),
        T(test_quic_measure_handshake_and_rtt),
    };
#undef T
    if (getenv("MM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("MM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
