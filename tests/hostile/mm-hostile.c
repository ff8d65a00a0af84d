/*
 * mm-hostile.c — a hostile (or merely slow) peer of a murmer node, for
 * bench/hostile.sh and by hand.  It links the static library and speaks
 * the wire protocol through the library's own transport and framing, but
 * behaves as a well-behaved client would not.  Every subcommand is bounded
 * in count (--n) and time (--time), stops by itself and prints one line of
 * what it did on stdout.
 *
 *   mm-hostile lookups  --seed ADDR --key FILE [--n 200] [--prefix P]
 *                       [--no-read] [--hold S]
 *       N pipelined LOOKUPs of prefix P (default "fill/"); with --no-read
 *       the loop stops once the requests are acknowledged (no more QUIC
 *       acknowledgements, no flow-control credit) for --hold seconds.
 *   mm-hostile watches  ... [--n 100] [--prefix P] [--no-read] [--hold S]
 *       The same with WATCH subscriptions.
 *   mm-hostile waiters  ... [--n 50000]
 *       N LOOKUPs of missing labels with wait_ms 24 h, then disconnects.
 *   mm-hostile deadline ... [--n 1000] [--target hold/n1] [--type hold]
 *       N INVOKEs with deadline 2^32-1 ms to an actor that defers, then
 *       disconnects.
 *   mm-hostile invokes  ... [--n 150] [--size 4MiB] [--target slow/n1]
 *                       [--type work] [--hold S]
 *       N large INVOKEs (raw payload, frame of --size bytes) to a slow
 *       actor, as fast as the transport takes them; then disconnects.
 *   mm-hostile partial-streams ... [--n 127] [--hold S]
 *       N streams that each end (FIN) inside a frame; then, over --hold
 *       seconds, counts the streams the node resets and tries a call on a
 *       fresh stream (echo/<seed name>).
 *   mm-hostile unknown-frames ... [--n 10] [--hold S]
 *       The same with N streams that each carry one whole frame of a type
 *       nobody defines (0x7e), then end.
 *   mm-hostile handshakes --seed ADDR --key WRONGFILE [--n 4000]
 *                       [--addrs 16] [--concurrency 64]
 *       N QUIC handshakes with a wrong cluster key, from 127.0.0.2,
 *       127.0.0.3, ... (--addrs loopback source addresses).
 *   mm-hostile preauth --seed ADDR --key ANYFILE [--n 100] [--size 4MiB]
 *       N connections that never authenticate: each opens and resets a
 *       first stream, then on a second one streams a frame announcing
 *       --size bytes that never ends (until the node closes it or --time).
 *   mm-hostile gossip-flood --seed ADDR --key FILE [--n 20000] [--rate R]
 *       N sealed-gossip lookalike datagrams carrying the cluster's real key
 *       id (public on the wire: --key is only used to compute it), each
 *       from a new random sender id, so that each costs the node a key
 *       derivation and a failed GCM check.
 *
 *   mm-hostile member-frames --seed ADDR --key FILE [--role member|client]
 *                       [--frame TYPE] [--hold S]
 *       Connects in the HELLO role given (default client), then sends one
 *       frame of type TYPE (default 0x30, registry ops; 0x40 is a
 *       membership sync request) with a short body on the control stream,
 *       and reports over --hold seconds (default 3) whether the node
 *       closed the connection.  With a client key and --role member it
 *       reports the refused auth instead.
 * Common options: --time S bounds the sending phase (default 30),
 * --state DIR is the client identity's directory (default
 * $XDG_STATE_HOME/murmer-hostile or /tmp/murmer-hostile-<uid>).
 */
#include "common.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "buf.h"
#include "ckey.h"
#include "client_int.h"
#include "identity.h"
#include "membership/seal.h"
#include "transport/quic.h"
#include "transport/quic_int.h"
#include "tq.h"
#include "wire.h"

struct opts {
    const char *cmd, *seed, *key, *state, *prefix, *target, *type;
    unsigned long n;
    size_t size;
    double hold, time;
    int no_read;
    unsigned addrs, concurrency;
    unsigned long rate;
    int role;       /* member-frames: the HELLO role */
    unsigned frame; /* member-frames: the frame type */
};

/* One hostile endpoint: a transport, and the connection it dials. */
struct hx {
    uv_loop_t loop;
    struct mm_tq tq;
    struct mm_tmr turn_tmr;
    struct mm_identity id;
    struct mm_keyring kr;
    struct mm_quic *q;
    struct mm_qconn *conn;
    char seed_name[64];
    int dial_done, down_err;
    /* what came back */
    uint64_t resp_ok, resp_err, events, calls_ok, calls_err;
    uint64_t resets, fins, overloaded;
    uint64_t bytes_in;
    uint64_t last_err_code;
    /* handshakes */
    unsigned long inflight, hs_done, hs_refused, hs_unreach, hs_up, hs_other;
};

static struct opts O;

/* One connection of the preauth attack (its transport user data). */
struct pa {
    struct mm_qconn *c;
    int stage; /* 0 dialled, 1 first stream reset, 2 second stream open */
    int64_t sid;
    size_t queued; /* bytes of the second stream queued */
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Says why on stderr and exits 2. */
#define die(...)                                                               \
    do {                                                                       \
        fprintf(stderr, "mm-hostile: ");                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        exit(2);                                                               \
    } while (0)

/* ---- transport callbacks ------------------------------------------------ */

static void
on_up(void *data, struct mm_qconn *c, const uint8_t peer_id[16],
      uint64_t peer_gen, int role, const char *peer_name, const char *peer_addr)
{
    struct hx *h = data;
    (void)peer_id;
    (void)peer_gen;
    (void)role;
    (void)peer_addr;
    if (!strcmp(O.cmd, "handshakes")) { /* a right key after all */
        h->hs_up++;
        mm__quic_conn_close(c, MM_ECLOSED);
        return;
    }
    h->conn = c;
    h->dial_done = 1;
    snprintf(h->seed_name, sizeof(h->seed_name), "%s",
             peer_name ? peer_name : "");
}

static void
on_down(void *data, struct mm_qconn *c, int err)
{
    struct hx *h = data;
    if (!strcmp(O.cmd, "handshakes") || !strcmp(O.cmd, "preauth")) {
        struct pa *p = mm__quic_conn_get_data(c);
        if (p) p->c = NULL; /* |c| is freed after this */
        h->inflight--;
        h->hs_done++;
        if (err == MM_EUNAUTHORIZED)
            h->hs_refused++;
        else if (err == MM_EUNREACHABLE)
            h->hs_unreach++;
        else if (err != MM_ECLOSED)
            h->hs_other++;
        return;
    }
    if (c == h->conn) h->conn = NULL;
    h->dial_done = 1;
    h->down_err = err ? err : MM_ECLOSED;
}

static void
on_frame(void *data, struct mm_qconn *c, int64_t sid, uint8_t type,
         const uint8_t *body, size_t len)
{
    struct hx *h = data;
    (void)c;
    (void)sid;
    h->bytes_in += len;
    if (type == MM_WIRE_CTRL_RESP || type == MM_WIRE_CTRL_EVENT) {
        struct mm_wire_ctrl m;
        if (mm__wire_ctrl_decode(&m, body, len) != 0) return;
        if (type == MM_WIRE_CTRL_EVENT) {
            h->events++;
        } else if (m.code == 0) {
            h->resp_ok++;
        } else {
            h->resp_err++;
            h->last_err_code = m.code;
            if (mm_err_from_wire(m.code) == MM_EOVERLOADED) h->overloaded++;
        }
    } else if (type == MM_WIRE_RESPONSE) {
        struct mm_wire_response r;
        if (mm__wire_response_decode(&r, body, len) != 0) return;
        if (r.status == 0) {
            h->calls_ok++;
        } else {
            h->calls_err++;
            h->last_err_code = r.status;
            if (mm_err_from_wire(r.status) == MM_EOVERLOADED) h->overloaded++;
        }
    }
}

static void
on_stream_closed(void *data, struct mm_qconn *c, int64_t sid, int err)
{
    struct hx *h = data;
    (void)c;
    (void)sid;
    if (err)
        h->resets++;
    else
        h->fins++;
}

/* ---- the loop ------------------------------------------------------------ */

static void
turn_cb(struct mm_tmr *t)
{
    (void)t;
}

/* One turn of the loop, waking up after at most |ms|. */
static void
turn(struct hx *h, unsigned ms)
{
    mm__tq_start(&h->tq, &h->turn_tmr, (mm__now_ms() + ms) * 1000000u);
    uv_run(&h->loop, UV_RUN_ONCE);
    mm__tq_stop(&h->tq, &h->turn_tmr);
}

/* Runs the loop until |until| (now_s() time). */
static void
run_for(struct hx *h, double until)
{
    while (now_s() < until)
        turn(h, 20);
}

static void
hx_init(struct hx *h, uint32_t handshake_ms)
{
    memset(h, 0, sizeof(*h));
    h->id.lock_fd = -1;
    char err[512] = "";
    if (mm__keyring_load(&h->kr, O.key, err, sizeof(err)) != 0)
        die("cannot load the key: %s", err);
    char dir[1024];
    if (O.state) {
        snprintf(dir, sizeof(dir), "%s", O.state);
    } else if (getenv("XDG_STATE_HOME")) {
        snprintf(dir, sizeof(dir), "%s/murmer-hostile",
                 getenv("XDG_STATE_HOME"));
    } else {
        snprintf(dir, sizeof(dir), "/tmp/murmer-hostile-%u",
                 (unsigned)getuid());
    }
    if (mm__identity_read(&h->id, dir, err, sizeof(err)) != 0)
        die("cannot make an identity: %s", err);
    if (uv_loop_init(&h->loop) != 0) die("%s", "uv_loop_init failed");
    if (mm__tq_init(&h->tq, &h->loop) != 0) die("%s", "mm__tq_init failed");
    h->turn_tmr.fn = turn_cb;
    struct mm_quic_config qc;
    mm__quic_config_init(&qc);
    qc.name = "mm-hostile";
    qc.role = O.role;
    qc.handshake_ms = handshake_ms;
    qc.tq = &h->tq;
    /* Our own queue may hold a whole attack: the node is the one tested. */
    qc.conn_send_max = 64u * 1024u * 1024u;
    qc.send_max = 256u * 1024u * 1024u;
    struct mm_quic_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.data = h;
    ops.conn_up = on_up;
    ops.conn_down = on_down;
    ops.frame = on_frame;
    ops.stream_closed = on_stream_closed;
    if (mm__quic_new(&h->q, &h->loop, &h->id, &h->kr, &qc, &ops) != 0)
        die("%s", "cannot set up QUIC");
}

static void
closed_cb(void *data)
{
    *(int *)data = 1;
}

/* Closes everything (CONNECTION_CLOSE to the node), bounded. */
static void
hx_close(struct hx *h)
{
    int closed = 0;
    mm__quic_close(h->q, closed_cb, &closed);
    double until = now_s() + 2;
    while (!closed && now_s() < until)
        turn(h, 20);
    if (closed) {
        mm__tq_close(&h->tq);
        uv_run(&h->loop, UV_RUN_DEFAULT);
        uv_loop_close(&h->loop);
    }
    mm__identity_release(&h->id);
    mm__keyring_release(&h->kr);
}

/* Dials the seed and waits (5 s at most) for the connection. */
static void
hx_connect(struct hx *h)
{
    if (mm__quic_dial(h->q, O.seed, NULL, NULL) != 0)
        die("bad seed address '%s'", O.seed);
    double until = now_s() + 5;
    while (!h->dial_done && now_s() < until)
        turn(h, 50);
    if (!h->conn)
        die("cannot connect to %s (wrong key, or nobody there)", O.seed);
}

/*
 * Queues one frame on |sid|; while the transport refuses it for its send
 * cap, runs the loop (the node's acknowledgements free room).  0, or the
 * error (also MM_ETIMEOUT past |until|).
 */
static int
send_paced(struct hx *h, int64_t sid, const uint8_t *f, size_t len,
           double until)
{
    for (;;) {
        if (!h->conn) return MM_ECLOSED;
        int rc = mm__quic_send_frame(h->conn, sid, f, len);
        if (rc != MM_EOVERLOADED) return rc;
        if (now_s() >= until) return MM_ETIMEOUT;
        turn(h, 10);
    }
}

/* Runs the loop until the node acknowledged all we sent (or |until|). */
static void
drain_acks(struct hx *h, double until)
{
    while (h->conn && mm__quic_conn_unacked(h->conn) > 0 && now_s() < until)
        turn(h, 10);
}

/* Sleeps |s| seconds without running the loop: nothing is read, nothing
 * acknowledged, no credit given. */
static void
hold_silent(double s)
{
    double until = now_s() + s;
    while (now_s() < until)
        usleep(50000);
}

static int
send_ctrl(struct hx *h, uint32_t id, uint16_t op, const cJSON *body,
          double until)
{
    char *js = cJSON_PrintUnformatted(body);
    struct mm_wire_ctrl m;
    m.id = id;
    m.code = op;
    m.body = (const uint8_t *)js;
    m.body_len = strlen(js);
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_ctrl_append(&b, MM_WIRE_CTRL_REQ, &m);
    if (rc == 0)
        rc = send_paced(h, mm__quic_control_stream(h->conn), b.data, b.len,
                        until);
    mm__buf_release(&b);
    cJSON_free(js);
    return rc;
}

static int
send_invoke(struct hx *h, int64_t sid, uint64_t call, const char *label,
            const char *type, const uint8_t *payload, size_t plen,
            uint32_t deadline_ms, double until)
{
    struct mm_wire_invoke inv;
    memset(&inv, 0, sizeof(inv));
    inv.call_id = call;
    inv.target_kind = MM_WIRE_TARGET_LABEL;
    inv.label = label;
    inv.label_len = strlen(label);
    inv.type = type;
    inv.type_len = strlen(type);
    inv.content = plen ? MM_CONTENT_RAW : MM_CONTENT_NONE;
    inv.payload = payload;
    inv.payload_len = plen;
    inv.deadline_ms = deadline_ms;
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_invoke_append(&b, &inv);
    if (rc == 0) rc = send_paced(h, sid, b.data, b.len, until);
    mm__buf_release(&b);
    return rc;
}

/* Opens a stream, waiting for stream credit until |until|. */
static int
open_stream(struct hx *h, int64_t *sid, double until)
{
    for (;;) {
        if (!h->conn) return MM_ECLOSED;
        int rc = mm__quic_stream_open(h->conn, sid);
        if (rc != UV_EAGAIN) return rc;
        if (now_s() >= until) return MM_ETIMEOUT;
        turn(h, 10);
    }
}

static const char *
conn_state(const struct hx *h)
{
    return h->conn ? "open" : mm_strerror(h->down_err);
}

/*
 * After the line in words, one line "figures: name=value ..." for
 * bench/hostile.sh: what was sent and what came back.
 */
static void
report_answers(const struct hx *h, unsigned long sent)
{
    printf(" answers ok=%" PRIu64 " err=%" PRIu64 " overloaded=%" PRIu64
           " events=%" PRIu64 " calls_ok=%" PRIu64 " calls_err=%" PRIu64
           " last_err=%s bytes_in=%" PRIu64 " conn=%s\n",
           h->resp_ok, h->resp_err, h->overloaded, h->events, h->calls_ok,
           h->calls_err,
           h->last_err_code
               ? mm_strerror(mm_err_from_wire((uint16_t)h->last_err_code))
               : "-",
           h->bytes_in, conn_state(h));
    printf("figures: sent=%lu answered=%" PRIu64 " overloaded=%" PRIu64
           " errors=%" PRIu64 " events=%" PRIu64 " conn_open=%d\n",
           sent, h->resp_ok + h->resp_err + h->calls_ok + h->calls_err,
           h->overloaded, h->resp_err + h->calls_err, h->events,
           h->conn != NULL);
}

/* ---- control requests: lookups, watches, waiters ------------------------- */

static int
cmd_ctrl(int op)
{
    struct hx h;
    hx_init(&h, 5000);
    hx_connect(&h);
    double t0 = now_s(), until = t0 + O.time;
    unsigned long sent = 0;
    int rc = 0;
    for (unsigned long i = 0; i < O.n && rc == 0; i++) {
        cJSON *body;
        if (op == MM_CTRL_WATCH) {
            body = cJSON_CreateObject();
            cJSON_AddStringToObject(body, "prefix", O.prefix);
        } else if (!strcmp(O.cmd, "waiters")) {
            char label[64];
            snprintf(label, sizeof(label), "nope/%lu", i);
            body = mm__client_lookup_body(label, NULL, NULL, 0, 86400000u);
        } else {
            body = mm__client_lookup_body(NULL, O.prefix, NULL, 0, 0);
        }
        rc = send_ctrl(&h, (uint32_t)(i + 1), (uint16_t)op, body, until);
        cJSON_Delete(body);
        if (rc == 0) sent++;
    }
    /* The requests reach the node; what it sent back meanwhile is read. */
    drain_acks(&h, until);
    double t_sent = now_s() - t0;
    uint64_t answered = 0;
    if (O.no_read) {
        hold_silent(O.hold);
    } else if (!strcmp(O.cmd, "waiters")) {
        run_for(&h, now_s() + O.hold);
    } else {
        /* Read until every request is answered (and, for watches, --hold
         * seconds of events), or --time. */
        double end = op == MM_CTRL_WATCH ? now_s() + O.hold : until;
        while (now_s() < end && h.conn && h.resp_ok + h.resp_err < sent)
            turn(&h, 20);
        if (op == MM_CTRL_WATCH) run_for(&h, end);
    }
    answered = h.resp_ok + h.resp_err;
    printf("%s: sent %lu of %lu %s requests in %.2f s (%s)%s; answered %" PRIu64
           " in %.2f s;",
           O.cmd, sent, O.n, op == MM_CTRL_WATCH ? "WATCH" : "LOOKUP", t_sent,
           rc ? mm_strerror(rc) : "ok", O.no_read ? ", then read nothing" : "",
           answered, now_s() - t0);
    report_answers(&h, sent);
    hx_close(&h);
    return 0;
}

/* ---- calls: invokes, deadline -------------------------------------------- */

static int
cmd_calls(int deadline)
{
    struct hx h;
    hx_init(&h, 5000);
    hx_connect(&h);
    char target[160];
    snprintf(target, sizeof(target), "%s",
             O.target   ? O.target
             : deadline ? "hold/"
                        : "slow/");
    if (target[strlen(target) - 1] == '/')
        snprintf(target + strlen(target), sizeof(target) - strlen(target), "%s",
                 h.seed_name);
    const char *type = O.type ? O.type : deadline ? "hold" : "work";
    size_t plen = 0;
    uint8_t *payload = NULL;
    if (!deadline) {
        /* The frame is --size bytes: header and fields take ~64 of them. */
        size_t over = 64 + strlen(target) + strlen(type);
        plen = O.size > over ? O.size - over : 1;
        if (!(payload = malloc(plen))) die("%s", "out of memory");
        memset(payload, 'h', plen);
    }
    double t0 = now_s(), until = t0 + O.time;
    int64_t sid;
    int rc = open_stream(&h, &sid, until);
    unsigned long sent = 0;
    for (unsigned long i = 0; i < O.n && rc == 0; i++) {
        rc = send_invoke(&h, sid, i + 1, target, type, payload, plen,
                         deadline ? UINT32_MAX : 0, until);
        if (rc == 0) sent++;
    }
    drain_acks(&h, until);
    double t_sent = now_s() - t0;
    if (O.no_read)
        hold_silent(O.hold);
    else
        run_for(&h, now_s() + O.hold);
    printf("%s: sent %lu of %lu INVOKEs (%zu-byte payload, deadline %s) to "
           "%s %s in %.2f s (%s);",
           O.cmd, sent, O.n, plen, deadline ? "2^32-1 ms" : "none", target,
           type, t_sent, rc ? mm_strerror(rc) : "ok");
    report_answers(&h, sent);
    free(payload);
    hx_close(&h);
    return 0;
}

/* ---- partial streams ----------------------------------------------------- */

static int
cmd_partial(int unknown)
{
    struct hx h;
    hx_init(&h, 5000);
    hx_connect(&h);
    double t0 = now_s(), until = t0 + O.time;
    /* A frame header announcing 64 bytes (an INVOKE), then 10 of them; or
     * a whole frame of a type nobody defines (0x7e, 10 bytes of body). */
    uint8_t f[MM_WIRE_HDR_LEN + 10];
    memset(f, 0, sizeof(f));
    f[0] = unknown ? 11 : 64;
    f[4] = unknown ? 0x7e : MM_WIRE_INVOKE;
    unsigned long opened = 0;
    int rc = 0;
    for (unsigned long i = 0; i < O.n; i++) {
        int64_t sid;
        if ((rc = open_stream(&h, &sid, until)) != 0) break;
        /* Queued as is: the transport does not read the header. */
        if ((rc = send_paced(&h, sid, f, sizeof(f), until)) != 0) break;
        if ((rc = mm__quic_stream_close(h.conn, sid)) != 0) break;
        opened++;
        turn(&h, 0);
    }
    drain_acks(&h, until);
    /* Over --hold: streams the node resets, and a call on a fresh stream. */
    double end = now_s() + O.hold;
    while (now_s() < end && h.resets < opened && h.conn)
        turn(&h, 20);
    char echo[96];
    snprintf(echo, sizeof(echo), "echo/%s", h.seed_name);
    int64_t sid;
    int crc = open_stream(&h, &sid, now_s() + 2);
    if (crc == 0)
        crc = send_invoke(&h, sid, 1, echo, "echo", (const uint8_t *)"\"x\"", 3,
                          2000, now_s() + 2);
    double cend = now_s() + 3;
    while (crc == 0 && now_s() < cend && h.conn &&
           h.calls_ok + h.calls_err == 0)
        turn(&h, 20);
    const char *call = crc           ? mm_strerror(crc)
                       : h.calls_ok  ? "ok"
                       : h.calls_err ? "error"
                                     : "no answer";
    printf("%s: %lu of %lu streams %s (%s); "
           "reset by the node: %" PRIu64 " (ended cleanly: %" PRIu64
           "); a new call on a fresh stream: %s; conn=%s\n",
           O.cmd, opened, O.n,
           unknown ? "carried a frame of unknown type 0x7e, then ended"
                   : "ended inside a frame",
           rc ? mm_strerror(rc) : "ok", h.resets, h.fins, call, conn_state(&h));
    printf("figures: sent=%lu reset_by_node=%" PRIu64 " fresh_call_ok=%d "
           "conn_open=%d\n",
           opened, h.resets, crc == 0 && h.calls_ok > 0, h.conn != NULL);
    hx_close(&h);
    return 0;
}

/* ---- member frames from a client ----------------------------------------- */

static int
cmd_member_frames(void)
{
    struct hx h;
    hx_init(&h, 5000);
    if (mm__quic_dial(h.q, O.seed, NULL, NULL) != 0)
        die("bad seed address '%s'", O.seed);
    double until = now_s() + 5;
    while (!h.dial_done && now_s() < until)
        turn(&h, 50);
    const char *role = O.role == MM_WIRE_ROLE_MEMBER ? "member" : "client";
    if (!h.conn) {
        printf("member-frames: auth as %s: %s\n", role,
               h.dial_done ? mm_err_name(h.down_err) : "no answer");
        hx_close(&h);
        return 0;
    }
    /* A short body: the node must refuse it for who sent it, whatever it
     * holds. */
    uint8_t body[24];
    memset(body, 0, sizeof(body));
    body[0] = 1;
    uint8_t f[MM_WIRE_HDR_LEN + sizeof(body)];
    size_t n = mm__wire_frame_encode(f, sizeof(f), (uint8_t)O.frame, body,
                                     sizeof(body));
    int rc =
        n ? mm__quic_send_frame(h.conn, mm__quic_control_stream(h.conn), f, n)
          : MM_EINVAL;
    double end = now_s() + (O.hold > 0 ? O.hold : 3);
    while (rc == 0 && h.conn && now_s() < end)
        turn(&h, 20);
    printf("member-frames: auth as %s: ok; frame 0x%02x %s; conn=%s\n", role,
           O.frame, rc ? mm_strerror(rc) : "sent",
           h.conn ? "open" : mm_err_name(h.down_err));
    hx_close(&h);
    return 0;
}

/* ---- handshakes with a wrong key ----------------------------------------- */

static int
cmd_handshakes(void)
{
    unsigned na = O.addrs ? O.addrs : 1;
    if (na > 200) na = 200;
    struct hx *hs = calloc(na, sizeof(*hs));
    if (!hs) die("%s", "out of memory");
    for (unsigned i = 0; i < na; i++) {
        hx_init(&hs[i], 3000);
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.%u:0", 2 + i);
        if (mm__quic_listen(hs[i].q, addr) != 0) die("cannot bind %s", addr);
    }
    /* Each endpoint has its own loop; they are turned in rounds. */
    double t0 = now_s(), until = t0 + O.time;
    unsigned long dialled = 0, failed = 0;
    unsigned per = O.concurrency / na ? O.concurrency / na : 1;
    for (;;) {
        unsigned long inflight = 0;
        for (unsigned i = 0; i < na; i++) {
            struct hx *h = &hs[i];
            while (h->inflight < per && dialled < O.n && now_s() < until) {
                if (mm__quic_dial(h->q, O.seed, NULL, NULL) != 0) {
                    failed++;
                    dialled++;
                    continue;
                }
                h->inflight++;
                dialled++;
            }
            uv_run(&h->loop, UV_RUN_NOWAIT);
            inflight += h->inflight;
        }
        if ((dialled >= O.n || now_s() >= until) && inflight == 0) break;
        if (now_s() >= until + 5) break; /* handshake_ms bounds the rest */
        usleep(1000);
    }
    unsigned long done = 0, refused = 0, unreach = 0, up = 0, other = 0;
    for (unsigned i = 0; i < na; i++) {
        done += hs[i].hs_done;
        refused += hs[i].hs_refused;
        unreach += hs[i].hs_unreach;
        up += hs[i].hs_up;
        other += hs[i].hs_other;
    }
    printf("handshakes: %lu of %lu dialled from %u loopback addresses in "
           "%.2f s (%lu not started); finished %lu: refused "
           "(unauthorized) %lu, unreachable/timed out %lu, other %lu, "
           "accepted %lu\n",
           dialled, O.n, na, now_s() - t0, failed, done, refused, unreach,
           other, up);
    printf("figures: sent=%lu refused=%lu unreachable=%lu accepted=%lu\n",
           dialled, refused, unreach, up);
    for (unsigned i = 0; i < na; i++)
        hx_close(&hs[i]);
    free(hs);
    return 0;
}

/* ---- before auth: a second stream and a frame that never ends ------------ */

/*
 * The transport's own auth is kept from starting (the control stream is
 * marked as sent), so the connection stays before auth; the first stream
 * is opened and reset at once, which closes it and gives back its credit,
 * and on the second one a frame header announcing --size bytes is followed
 * by as many bytes as the node takes, never the whole frame.  Needs no key.
 */
static int
cmd_preauth(void)
{
    struct hx h;
    hx_init(&h, (uint32_t)(O.time * 1000) + 5000);
    struct pa *pa = calloc(O.n ? O.n : 1, sizeof(*pa));
    uint8_t *junk = calloc(1, 65536);
    if (!pa || !junk) die("out of memory");
    double t0 = now_s(), until = t0 + O.time;
    unsigned long dialled = 0;
    for (unsigned long i = 0; i < O.n; i++) {
        if (mm__quic_dial(h.q, O.seed, NULL, &pa[i].c) != 0)
            die("bad seed address '%s'", O.seed);
        pa[i].c->ctrl_sent = 1;
        mm__quic_conn_set_data(pa[i].c, &pa[i]);
        dialled++;
    }
    uint32_t flen = O.size > 16 ? (uint32_t)O.size - 4 : 16;
    uint64_t queued = 0;
    unsigned long second = 0, max_live = 0;
    while (now_s() < until) {
        unsigned long live = 0;
        for (unsigned long i = 0; i < O.n; i++) {
            struct pa *p = &pa[i];
            if (!p->c) continue; /* gone (on_down) */
            live++;
            if (p->c->state == QC_DEAD || p->c->pending_close) continue;
            if (!p->c->hs_done) continue;
            struct mm_qconn *c = p->c;
            conn_enter(c);
            if (p->stage == 0) {
                struct qstream *st = mm__quic_stream_new(c, -1);
                int64_t sid;
                if (st &&
                    ngtcp2_conn_open_bidi_stream(c->conn, &sid, st) == 0) {
                    st->sid = sid;
                    mm__quic_stream_reset(c, sid, MM_ECLOSED);
                    p->stage = 1;
                } else if (st) {
                    mm__quic_stream_free(st);
                }
            } else if (p->stage == 1 &&
                       ngtcp2_conn_get_streams_bidi_left(c->conn) > 0) {
                struct qstream *st = mm__quic_stream_new(c, -1);
                int64_t sid;
                if (st &&
                    ngtcp2_conn_open_bidi_stream(c->conn, &sid, st) == 0) {
                    st->sid = sid;
                    uint8_t hdr[MM_WIRE_HDR_LEN] = {
                        (uint8_t)flen, (uint8_t)(flen >> 8),
                        (uint8_t)(flen >> 16), (uint8_t)(flen >> 24),
                        MM_WIRE_INVOKE};
                    mm__quic_stream_queue(st, hdr, sizeof(hdr));
                    p->sid = sid;
                    p->stage = 2;
                    second++;
                } else if (st) {
                    mm__quic_stream_free(st);
                }
            } else if (p->stage == 2) {
                struct qstream *st = NULL;
                for (struct qlink *l = c->streams.next; l != &c->streams;
                     l = l->next) {
                    struct qstream *x = (struct qstream *)l;
                    if (x->sid == p->sid) st = x;
                }
                /* At most 1 MiB unacknowledged per connection here. */
                while (st && !st->closed && !st->reset_req &&
                       c->tx_unacked < 1024 * 1024 &&
                       p->queued + 65536 < flen &&
                       mm__quic_stream_queue(st, junk, 65536) == 0) {
                    p->queued += 65536;
                    queued += 65536;
                }
            }
            conn_leave(c);
        }
        if (live > max_live) max_live = live;
        if (live == 0 && dialled) break;
        turn(&h, 5);
    }
    unsigned long closed = h.hs_done;
    printf("preauth: %lu connections without auth; %lu opened a second "
           "stream and queued %.1f MiB of frames announcing %" PRIu32
           " bytes; %lu closed by the node (unauthorized %lu, unreachable "
           "%lu) in %.2f s\n",
           dialled, second, (double)queued / 1048576.0, flen, closed,
           h.hs_refused, h.hs_unreach, now_s() - t0);
    printf("figures: sent=%lu second_stream=%lu mib_queued=%.0f closed=%lu\n",
           dialled, second, (double)queued / 1048576.0, closed);
    free(junk);
    free(pa);
    hx_close(&h);
    return 0;
}

/* ---- gossip flood -------------------------------------------------------- */

static int
cmd_gossip(void)
{
    struct mm_keyring kr;
    char err[512] = "";
    if (mm__keyring_load(&kr, O.key, err, sizeof(err)) != 0)
        die("cannot load the key: %s", err);
    uint32_t kid = kr.ids[0];
    mm__keyring_release(&kr);
    char host[64];
    snprintf(host, sizeof(host), "%s", O.seed);
    char *colon = strrchr(host, ':');
    if (!colon) die("bad seed address '%s'", O.seed);
    *colon = '\0';
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1)
        die("bad seed address '%s' (numeric IPv4 only)", O.seed);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("%s", "socket failed");
    uint8_t d[MM_SEAL_OVERHEAD + 120];
    uint64_t rnd = (uint64_t)now_s() * 6364136223846793005ull + 1;
    double t0 = now_s(), until = t0 + O.time;
    unsigned long sent = 0, i;
    for (i = 0; i < O.n && now_s() < until; i++) {
        for (size_t k = 0; k < sizeof(d); k++) {
            rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
            d[k] = (uint8_t)(rnd >> 56);
        }
        d[0] = MM_SEAL_VERSION;
        d[1] = (uint8_t)kid;
        d[2] = (uint8_t)(kid >> 8);
        d[3] = (uint8_t)(kid >> 16);
        d[4] = (uint8_t)(kid >> 24);
        /* bytes 5..20: a new sender id each time; generation, counter,
         * ciphertext and tag: noise. */
        if (sendto(fd, d, sizeof(d), 0, (struct sockaddr *)&to, sizeof(to)) ==
            (ssize_t)sizeof(d))
            sent++;
        else
            usleep(100); /* the socket buffer is full */
        if (O.rate) {    /* pace: i datagrams take i / rate seconds */
            double ahead = t0 + (double)(i + 1) / (double)O.rate - now_s();
            if (ahead > 0.0005) usleep((useconds_t)(ahead * 1e6));
        }
    }
    close(fd);
    double el = now_s() - t0;
    printf("gossip-flood: sent %lu of %lu sealed-gossip lookalikes (key id "
           "%08" PRIx32 ", random sender ids) to %s in %.2f s (%.0f/s)\n",
           sent, O.n, kid, O.seed, el, el > 0 ? (double)sent / el : 0.0);
    printf("figures: sent=%lu\n", sent);
    return 0;
}

/* ---- options ------------------------------------------------------------- */

static size_t
parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!strcasecmp(end, "kib") || !strcasecmp(end, "k"))
        v *= 1024;
    else if (!strcasecmp(end, "mib") || !strcasecmp(end, "m"))
        v *= 1024 * 1024;
    else if (*end)
        die("bad size '%s'", s);
    return (size_t)v;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: mm-hostile lookups|watches|waiters|deadline|invokes|"
            "partial-streams|unknown-frames|handshakes|preauth|gossip-flood|"
            "member-frames\n"
            "       --seed ADDR --key FILE\n"
            "       [--n N] [--no-read] [--hold S] [--time S] [--prefix P]\n"
            "       [--target LABEL] [--type T] [--size BYTES|KiB|MiB]\n"
            "       [--addrs K] [--concurrency C] [--rate R] [--state DIR]\n"
            "       [--role member|client] [--frame TYPE]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    if (argc < 2) usage();
    O.cmd = argv[1];
    O.prefix = "fill/";
    O.time = 30;
    O.hold = 0;
    O.addrs = 16;
    O.concurrency = 64;
    O.size = 4u * 1024u * 1024u;
    unsigned long dflt_n = 0;
    if (!strcmp(O.cmd, "lookups"))
        dflt_n = 200;
    else if (!strcmp(O.cmd, "watches"))
        dflt_n = 100;
    else if (!strcmp(O.cmd, "waiters"))
        dflt_n = 50000;
    else if (!strcmp(O.cmd, "deadline"))
        dflt_n = 1000;
    else if (!strcmp(O.cmd, "invokes"))
        dflt_n = 150;
    else if (!strcmp(O.cmd, "partial-streams"))
        dflt_n = 127;
    else if (!strcmp(O.cmd, "unknown-frames"))
        dflt_n = 10;
    else if (!strcmp(O.cmd, "handshakes"))
        dflt_n = 4000;
    else if (!strcmp(O.cmd, "gossip-flood"))
        dflt_n = 20000;
    else if (!strcmp(O.cmd, "preauth"))
        dflt_n = 100;
    else if (!strcmp(O.cmd, "member-frames"))
        dflt_n = 1;
    else
        usage();
    O.role = MM_WIRE_ROLE_CLIENT;
    O.frame = 0x30;
    O.n = dflt_n;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-read")) {
            O.no_read = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--seed"))
            O.seed = v;
        else if (!strcmp(a, "--key"))
            O.key = v;
        else if (!strcmp(a, "--state"))
            O.state = v;
        else if (!strcmp(a, "--prefix"))
            O.prefix = v;
        else if (!strcmp(a, "--target"))
            O.target = v;
        else if (!strcmp(a, "--type"))
            O.type = v;
        else if (!strcmp(a, "--n"))
            O.n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            O.size = parse_size(v);
        else if (!strcmp(a, "--hold"))
            O.hold = atof(v);
        else if (!strcmp(a, "--time"))
            O.time = atof(v);
        else if (!strcmp(a, "--addrs"))
            O.addrs = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--concurrency"))
            O.concurrency = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--rate"))
            O.rate = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--role") &&
                 (!strcmp(v, "member") || !strcmp(v, "client")))
            O.role = !strcmp(v, "member") ? MM_WIRE_ROLE_MEMBER
                                          : MM_WIRE_ROLE_CLIENT;
        else if (!strcmp(a, "--frame"))
            O.frame = (unsigned)strtoul(v, NULL, 0) & 0xff;
        else
            usage();
    }
    if (!O.seed || !O.key) usage();
    if (O.time <= 0 || O.time > 600) O.time = 30;
    if (O.hold < 0 || O.hold > 600) O.hold = 0;
    mm_log_set_level(MM_LOG_ERR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(O.cmd, "lookups") || !strcmp(O.cmd, "waiters"))
        return cmd_ctrl(MM_CTRL_LOOKUP);
    if (!strcmp(O.cmd, "watches")) return cmd_ctrl(MM_CTRL_WATCH);
    if (!strcmp(O.cmd, "deadline")) return cmd_calls(1);
    if (!strcmp(O.cmd, "invokes")) return cmd_calls(0);
    if (!strcmp(O.cmd, "partial-streams")) return cmd_partial(0);
    if (!strcmp(O.cmd, "unknown-frames")) return cmd_partial(1);
    if (!strcmp(O.cmd, "handshakes")) return cmd_handshakes();
    if (!strcmp(O.cmd, "preauth")) return cmd_preauth();
    if (!strcmp(O.cmd, "member-frames")) return cmd_member_frames();
    return cmd_gossip();
}
