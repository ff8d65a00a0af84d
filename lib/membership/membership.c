/*
 * membership.c — the libuv glue that runs the pure SWIM core (swim.c) on
 * shard 0 of a cluster node (see membership.h).
 *
 * Gossip: the core's plaintext packets are sealed (seal.c) and sent as UDP
 * datagrams through the node's QUIC socket; incoming datagrams (first byte
 * 0x01, handed over by net.c) are opened, their claimed sender checked
 * against the sealed one, and fed to the core.  Anything that fails is
 * counted and dropped, never logged above DEBUG.
 *
 * Floods: the socket is shared with QUIC, and a datagram that reuses a
 * real key id (it travels in the clear) costs a key derivation and a GCM
 * check.  So before any crypto each datagram takes a token from a bucket
 * of its source (address and port): a fixed table of
 * MM_GOSSIP_SOURCE_SLOTS buckets, each source hashed (keyed with a random
 * seed) to two of them, and it passes while either has a token; so a
 * flooding source drains its own two and a peer that shares one of them
 * still has its other.  Derivations for senders not known yet are
 * limited too (seal.c, MM_GOSSIP_DERIVE_RATE).  Drops are counted
 * (dropped_flood, seal's dropped_derive) and reported at most once per
 * MM_LOG_REPEAT_MS.
 *
 * Push-pull: when the core asks for a sync we send MEMBER_SYNC_REQ (0x40,
 * body = our encoded state) on the control stream to that peer; it merges
 * ours and answers MEMBER_SYNC_RESP (0x41, body = its state) on the same
 * stream, which we merge.  No answer within the core's sync timeout, or no
 * way to send, ends the sync with mm__swim_sync_done().
 *
 * Timers: one uv_timer follows mm__swim_deadline() (re-armed after every
 * call into the core); a second one polls a graceful leave every 10 ms.
 *
 * Signatures: the core signs our record and verifies others' through two
 * ops (swim.h): we sign with the node's Ed25519 identity key (parsed once
 * from its PEM) and verify with the record's key after checking that the
 * key hashes to the member's id (identity.h).  The core keeps each
 * member's key and last verified record in its member table, so only news
 * costs a verification.
 *
 * Events: every member change goes to the net (peer address, failing
 * pending calls of suspect/failed/left members) and to the member_state
 * callback cluster.c gave us (the registry view).  swim.c logs each state
 * change itself (one INFO line), so we do not repeat it.
 */
#include "membership/membership.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "ckey.h"
#include "crypto.h"
#include "identity.h"
#include "net.h"
#include "transport/quic.h"
#include "wire.h"

#define MEMBER_SYNC_REQ 0x40
#define MEMBER_SYNC_RESP 0x41
/* A local marker: a SYNC_REQ outside the core's. */
#define MEMBER_SYNC_HEAL 0x100
#define LEAVE_POLL_MS 10u
#define DGRAM_MAX 2048u       /* sealed swim packets are <= 1400 bytes */
#define HEAL_GAP_MS 1000u     /* at most one healing push-pull per this */
#define HEAL_STATE_MAX 65536u /* ... and only while our state is this small */

_Static_assert(MM_GOSSIP_SOURCE_SLOTS >= 2, "two buckets per source");

/* A per-source token bucket, in thousandths of a datagram. */
struct src_bucket {
    uint64_t tokens;
    uint64_t last_ms; /* 0: never used (full) */
};

struct mm_membership {
    struct mm_membership_deps d;
    mm_node *node;
    struct mm_swim *swim;
    struct mm_seal *seal;
    struct mm_sign_key *sign_key; /* the identity key */
    struct mm_tmr tmr;            /* the core's deadline, on shard 0's tq */
    uv_timer_t poll;              /* graceful leave */
    int timers_init;
    int started;
    int closed;
    int family; /* our address family, 4 or 6 */
    struct mm_swim_addr self_addr;
    struct mm_swim_addr *seeds;
    size_t nseeds;
    uint32_t max_frame;
    uint32_t sync_timeout_ms;
    /* The sync we run (the core allows one at a time). */
    int sync_active;
    int sync_failed; /* deferred mm__swim_sync_done */
    uint8_t sync_peer[MM_SWIM_ID_LEN];
    uint64_t sync_deadline;
    uint64_t heal_next; /* earliest next healing push-pull */
    /* Graceful leave. */
    void (*leave_done)(void *data);
    void *leave_data;
    uint64_t leave_start;
    struct mm_membership_counters cnt;
    /* Floods (see the top of this file). */
    uint64_t src_seed;
    struct src_bucket src[MM_GOSSIP_SOURCE_SLOTS];
    uint64_t flood_reported; /* dropped_flood + dropped_derive then */
    uint64_t flood_report_ms;
    uint8_t rx[DGRAM_MAX];
    uint8_t tx[DGRAM_MAX];
    mm_membership_change_fn change_fn; /* client sessions' member events */
    void *change_data;
    /* A push-pull state merged MM_SWIM_MERGE_STEP entries a loop turn
     * (each may cost a signature verification, ~0.1 ms): a state of a
     * thousand members never holds the loop for 0.1 s.  One at a time. */
    uint8_t *merge_buf;
    size_t merge_len;
    uint32_t merge_next;
    int merge_gone; /* what is left of merge_buf is gone members */
    struct mm_tmr merge_tmr;
};

static void membership_after(struct mm_membership *m);

/* ---- addresses --------------------------------------------------------------
 */

static int
addr_from_sockaddr(const struct sockaddr *sa, struct mm_swim_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        out->family = 4;
        memcpy(out->ip, &s4->sin_addr, 4);
        out->port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        out->family = 6;
        memcpy(out->ip, &s6->sin6_addr, 16);
        out->port = ntohs(s6->sin6_port);
        return 0;
    }
    return MM_EINVAL;
}

static socklen_t
addr_to_sockaddr(const struct mm_swim_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a->ip, 4);
        s4->sin_port = htons(a->port);
        return sizeof(*s4);
    }
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a->ip, 16);
        s6->sin6_port = htons(a->port);
        return sizeof(*s6);
    }
    return 0;
}

/* "ip:port" or "[v6]:port". */
static void
addr_format(const struct mm_swim_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->family == 6) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, a->port);
    } else {
        inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, a->port);
    }
}

/*
 * Resolves "host:port" / "[v6]:port" (names such as "localhost" too) to one
 * address, of |family| (4 or 6) when non-zero.  0 or MM_EINVAL.
 */
static int
addr_resolve(const char *hostport, int family, struct mm_swim_addr *out)
{
    char host[256];
    const char *port;
    if (!hostport) return MM_EINVAL;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end || end[1] != ':' ||
            (size_t)(end - hostport - 1) >= sizeof(host))
            return MM_EINVAL;
        memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
        host[end - hostport - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(hostport, ':');
        if (!colon || (size_t)(colon - hostport) >= sizeof(host))
            return MM_EINVAL;
        memcpy(host, hostport, (size_t)(colon - hostport));
        host[colon - hostport] = '\0';
        port = colon + 1;
    }
    char *endp;
    long p = strtol(port, &endp, 10);
    if (!*port || *endp || p <= 0 || p > 65535) return MM_EINVAL;
    if (!host[0])
        snprintf(host, sizeof(host), "%s", family == 6 ? "::1" : "127.0.0.1");
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family == 6   ? AF_INET6
                      : family == 4 ? AF_INET
                                    : AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return MM_EINVAL;
    int rc = addr_from_sockaddr(res->ai_addr, out);
    freeaddrinfo(res);
    if (rc) return rc;
    out->port = (uint16_t)p;
    return 0;
}

/* ---- the core's callbacks
 * ---------------------------------------------------- */

static void
swim_send_cb(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
             size_t len)
{
    struct mm_membership *m = data;
    struct mm_quic *q = m->closed ? NULL : mm__net_quic(m->d.net);
    size_t olen;
    if (!q ||
        mm__seal_packet(m->seal, m->tx, sizeof(m->tx), &olen, buf, len) != 0)
        return;
    struct sockaddr_storage ss;
    if (!addr_to_sockaddr(to, &ss)) return;
    if (mm__quic_send_datagram(q, (const struct sockaddr *)&ss, m->tx, olen) ==
        0)
        m->cnt.bytes_out += olen;
}

static void
swim_changed_cb(void *data, const struct mm_swim_member *mb, int was)
{
    struct mm_membership *m = data;
    if (mb->is_self || m->closed) return;
    int st = mb->state;
    if (st == MM_SWIM_ALIVE || st == MM_SWIM_SUSPECT) {
        char addr[96];
        addr_format(&mb->rec->addr, addr, sizeof(addr));
        mm__net_peer_seen(m->d.net, mb->rec->id, mb->rec->generation, addr,
                          mb->rec->name);
    }
    /* Every change, record updates included (a new generation). */
    m->d.member_state(m->d.data, mb->rec->id, mb->rec->generation, st);
    if (st != was &&
        (st == MM_SWIM_SUSPECT || st == MM_SWIM_FAILED || st == MM_SWIM_LEFT))
        mm__net_peer_down(m->d.net, mb->rec->id, MM_EUNREACHABLE);
    MM_LOG(MM_LOG_DEBUG, "membership", "%s %s (generation %llu)", mb->rec->name,
           mm__swim_state_name(st), (unsigned long long)mb->rec->generation);
    if (m->change_fn) m->change_fn(m->change_data, mb, was);
}

static int
swim_sign_cb(void *data, const uint8_t *msg, size_t len,
             uint8_t sig[MM_SWIM_SIG_LEN])
{
    struct mm_membership *m = data;
    return mm__ed25519_sign(m->sign_key, msg, len, sig);
}

static int
swim_verify_cb(void *data, const uint8_t id[MM_SWIM_ID_LEN],
               const uint8_t pub[MM_SWIM_PUB_LEN], const uint8_t *msg,
               size_t len, const uint8_t sig[MM_SWIM_SIG_LEN])
{
    uint8_t want[MM_ID_LEN];
    (void)data;
    mm__identity_id_of(want, pub);
    if (mm__ct_memcmp(want, id, MM_ID_LEN) != 0) return MM_EUNAUTHORIZED;
    return mm__ed25519_verify(pub, msg, len, sig);
}

/* Sends our state as a SYNC_REQ or SYNC_RESP frame.  0 or an error. */
static int
sync_send(struct mm_membership *m, const uint8_t peer[MM_SWIM_ID_LEN],
          struct mm_qconn *conn, int64_t sid, int what)
{
    uint8_t type =
        what == MEMBER_SYNC_RESP ? MEMBER_SYNC_RESP : MEMBER_SYNC_REQ;
    size_t need = mm__swim_state_encode(m->swim, NULL, 0);
    int rc = MM_EINVAL;
    size_t cap = what == MEMBER_SYNC_HEAL ? HEAL_STATE_MAX : m->max_frame;
    if (need > 0 && need + MM_WIRE_HDR_LEN <= cap) {
        uint8_t *state = mm__malloc(need);
        uint8_t *frame = mm__malloc(need + MM_WIRE_HDR_LEN);
        size_t flen = 0;
        rc = UV_ENOMEM;
        if (state && frame &&
            mm__swim_state_encode(m->swim, state, need) == need)
            flen = mm__wire_frame_encode(frame, need + MM_WIRE_HDR_LEN, type,
                                         state, need);
        if (flen)
            rc = conn ? mm__net_reply(conn, sid, frame, flen)
                      : mm__net_send_ctrl(m->d.net, peer, frame, flen);
        mm__free(state);
        mm__free(frame);
    }
    if (what == MEMBER_SYNC_REQ) {
        if (rc == 0) {
            m->cnt.syncs_sent++;
        } else {
            m->cnt.syncs_failed++;
            m->sync_active = 0;
            m->sync_failed = 1;
        }
    } else if (what == MEMBER_SYNC_RESP && rc == 0) {
        m->cnt.syncs_served++;
    }
    return rc;
}

static void
swim_want_sync_cb(void *data, const struct mm_swim_member *peer)
{
    struct mm_membership *m = data;
    if (m->closed) {
        m->sync_failed = 1;
        return;
    }
    memcpy(m->sync_peer, peer->rec->id, MM_SWIM_ID_LEN);
    m->sync_active = 1;
    m->sync_deadline = mm__now_ms() + m->sync_timeout_ms;
    sync_send(m, peer->rec->id, NULL, -1, MEMBER_SYNC_REQ);
}

/* ---- timers -----------------------------------------------------------------
 */

static void
timer_cb(struct mm_tmr *t)
{
    struct mm_membership *m = mm__container_of(t, struct mm_membership, tmr);
    if (m->closed) return;
    uint64_t now = mm__now_ms();
    if (m->sync_active && now >= m->sync_deadline) {
        m->sync_active = 0;
        m->sync_failed = 1;
        m->cnt.syncs_failed++;
    }
    mm__swim_tick(m->swim, now);
    membership_after(m);
}

/* After every call into the core: deferred work, then re-arm the timer. */
static void
membership_after(struct mm_membership *m)
{
    if (m->closed || !m->timers_init) return;
    if (m->sync_failed) {
        m->sync_failed = 0;
        mm__swim_sync_done(m->swim, mm__now_ms());
    }
    uint64_t d = mm__swim_deadline(m->swim);
    if (m->sync_active && m->sync_deadline < d) d = m->sync_deadline;
    if (d == UINT64_MAX) {
        mm__tq_stop(m->d.tq, &m->tmr);
        return;
    }
    mm__tq_start(m->d.tq, &m->tmr, d * 1000000ull);
}

static void
leave_finish(struct mm_membership *m)
{
    void (*done)(void *) = m->leave_done;
    void *data = m->leave_data;
    m->leave_done = NULL;
    m->leave_data = NULL;
    if (m->timers_init) uv_timer_stop(&m->poll);
    if (done) done(data); /* may start the shutdown: touch nothing after */
}

static void
poll_cb(uv_timer_t *t)
{
    struct mm_membership *m = t->data;
    if (m->closed || !m->leave_done) return;
    int rc = mm__swim_left_acked(m->swim);
    if (rc == 0) return;
    MM_LOG(MM_LOG_INFO, "membership", "left the cluster in %llu ms (%s)",
           (unsigned long long)(mm__now_ms() - m->leave_start),
           rc == 1 ? "acknowledged" : "no acknowledgement in time");
    leave_finish(m);
}

/* ---- incoming
 * ---------------------------------------------------------------- */

/* Refills |b| up to |now|; its tokens. */
static uint64_t
src_bucket_refill(struct src_bucket *b, uint64_t now)
{
    const uint64_t full = (uint64_t)MM_GOSSIP_SOURCE_BURST * 1000u;
    if (b->last_ms == 0) {
        b->tokens = full;
    } else if (now > b->last_ms) {
        uint64_t dt = now - b->last_ms;
        uint64_t add = dt >= full ? full : dt * MM_GOSSIP_SOURCE_RATE;
        b->tokens = MM_MIN(b->tokens + add, full);
    }
    if (now > b->last_ms) b->last_ms = now;
    return b->tokens;
}

/* 0 when a datagram from |fa| may go on to the crypto: its source's
 * fuller bucket had a token (now taken). */
static int
source_admit(struct mm_membership *m, const struct mm_swim_addr *fa,
             uint64_t now)
{
    uint64_t w0, w1;
    memcpy(&w0, fa->ip, 8);
    memcpy(&w1, fa->ip + 8, 8);
    uint64_t h = mm__hash_u64(m->src_seed ^ w0);
    h = mm__hash_u64(h ^ w1);
    h = mm__hash_u64(h ^ ((uint64_t)fa->port << 8 | (uint64_t)fa->family));
    size_t i = (size_t)(h % MM_GOSSIP_SOURCE_SLOTS);
    size_t j = (size_t)((h >> 32) % MM_GOSSIP_SOURCE_SLOTS);
    if (j == i) j = (i + 1) % MM_GOSSIP_SOURCE_SLOTS;
    struct src_bucket *a = &m->src[i], *b = &m->src[j];
    uint64_t ta = src_bucket_refill(a, now), tb = src_bucket_refill(b, now);
    struct src_bucket *take = ta >= tb ? a : b;
    if (take->tokens < 1000u) return -1;
    take->tokens -= 1000u;
    return 0;
}

/* One line now and then while floods are dropped. */
static void
flood_report(struct mm_membership *m, uint64_t now)
{
    uint64_t total =
        m->cnt.dropped_flood + mm__seal_stats(m->seal)->dropped_derive;
    if (total == m->flood_reported ||
        (m->flood_report_ms && now - m->flood_report_ms < MM_LOG_REPEAT_MS))
        return;
    MM_LOG(MM_LOG_WARN, "membership",
           "gossip: %llu datagrams dropped before decryption since the "
           "last report (in all: %llu over their source's rate, %llu new "
           "senders over the key derivation rate)",
           (unsigned long long)(total - m->flood_reported),
           (unsigned long long)m->cnt.dropped_flood,
           (unsigned long long)mm__seal_stats(m->seal)->dropped_derive);
    m->flood_reported = total;
    m->flood_report_ms = now;
}

static void
on_datagram(void *data, const struct sockaddr *from, const uint8_t *buf,
            size_t len)
{
    struct mm_membership *m = data;
    if (m->closed || !m->started) return;
    m->cnt.dgram_in++;
    m->cnt.bytes_in += len;
    struct mm_swim_addr fa;
    if (len > sizeof(m->rx) || addr_from_sockaddr(from, &fa) != 0) {
        m->cnt.dropped_other++;
        return;
    }
    uint64_t now = mm__now_ms();
    if (source_admit(m, &fa, now) != 0) {
        m->cnt.dropped_flood++;
        flood_report(m, now);
        return;
    }
    size_t plen;
    uint8_t sender[MM_SWIM_ID_LEN], claimed[MM_SWIM_ID_LEN];
    mm__seal_set_now(m->seal, now);
    if (mm__seal_open(m->seal, m->rx, sizeof(m->rx), &plen, buf, len, sender,
                      NULL) != 0) {
        m->cnt.dropped_seal++;
        flood_report(m, now);
        return;
    }
    if (mm__swim_packet_sender(m->rx, plen, claimed) != 0 ||
        memcmp(claimed, sender, MM_SWIM_ID_LEN) != 0) {
        m->cnt.dropped_sender++;
        MM_LOG(MM_LOG_DEBUG, "membership", "dropped a packet: sender mismatch");
        return;
    }
    mm__swim_recv(m->swim, &fa, m->rx, plen, now);
    /*
     * A member we hold failed or suspect is talking to us: a partition has
     * healed, or it does not know what we believe of it.  Its digest
     * cannot start a pull (the core pulls only from live members, and a
     * suspicion does not show in digests), re-probes of the failed back off
     * up to 30 s, and a node that was cut off probes slowly (Lifeguard
     * awareness) so the buddy system is slow to tell a suspect.  So
     * push-pull with it now over QUIC: each side learns what the other
     * believes of it and refutes at once.  Rate-limited, and only while
     * the state is small.
     */
    const struct mm_swim_member *mb = mm__swim_find(m->swim, sender);
    if (mb && !mb->tombstone &&
        (mb->state == MM_SWIM_FAILED || mb->state == MM_SWIM_SUSPECT) &&
        now >= m->heal_next) {
        m->heal_next = now + HEAL_GAP_MS;
        MM_LOG(MM_LOG_DEBUG, "membership", "%s (%s) talks to us: push-pull",
               mb->rec->name, mm__swim_state_name(mb->state));
        if (sync_send(m, sender, NULL, -1, MEMBER_SYNC_HEAL) == 0)
            m->cnt.syncs_heal++;
    }
    membership_after(m);
}

/* Merges the next share of the state in merge_buf; 0 when done, 1 when
 * more remains (the next loop turn), MM_EDECODE. */
static int
merge_step(struct mm_membership *m)
{
    int rc = mm__swim_state_merge_some(m->swim, m->merge_buf, m->merge_len,
                                       &m->merge_next, MM_SWIM_MERGE_STEP,
                                       mm__now_ms());
    m->cnt.merge_steps++;
    m->merge_gone = rc == 2;
    if (rc == 1 || rc == 2) {
        /* Gone members' records (the end of a state) wait a little
         * between steps: the loop serves what is live first. */
        mm__tq_start_in(m->d.tq, &m->merge_tmr,
                        rc == 2 ? MM_SWIM_MERGE_GONE_MS : 0);
        return 1;
    }
    mm__free(m->merge_buf);
    m->merge_buf = NULL;
    mm__net_trim_soon(m->d.net);
    if (rc == 0) m->cnt.syncs_merged++;
    return rc;
}

static void
merge_cb(struct mm_tmr *t)
{
    struct mm_membership *m =
        mm__container_of(t, struct mm_membership, merge_tmr);
    if (m->closed || !m->merge_buf) return;
    merge_step(m);
    membership_after(m);
}

/* Starts merging |body|: its first share now.  0, 1 (more follows) or
 * MM_EDECODE; MM_EOVERLOADED when a state is still merging (dropped). */
static int
merge_start(struct mm_membership *m, const uint8_t *body, size_t len)
{
    if (m->merge_buf && m->merge_gone) {
        /* What is left of it is gone members: the new state goes first
         * (the next push-pull brings those again). */
        mm__tq_stop(m->d.tq, &m->merge_tmr);
        mm__free(m->merge_buf);
        m->merge_buf = NULL;
        m->merge_gone = 0;
        m->cnt.merges_cut++;
        mm__swim_sync_done(m->swim, mm__now_ms());
    }
    if (m->merge_buf) {
        m->cnt.syncs_busy++;
        return MM_EOVERLOADED;
    }
    if (!(m->merge_buf = mm__malloc(len ? len : 1))) return UV_ENOMEM;
    memcpy(m->merge_buf, body, len);
    m->merge_len = len;
    m->merge_next = 0;
    return merge_step(m);
}

static int
state_sender_is(const uint8_t *body, size_t len,
                const uint8_t peer[MM_NODE_ID_LEN])
{
    /* state = version u8 | sender id [16] | ... (swim.c) */
    return len >= 1 + MM_SWIM_ID_LEN &&
           memcmp(body + 1, peer, MM_SWIM_ID_LEN) == 0;
}

static void
on_sync_frame(void *data, struct mm_qconn *conn,
              const uint8_t peer[MM_NODE_ID_LEN], int role, int64_t sid,
              uint8_t type, const uint8_t *body, size_t len)
{
    struct mm_membership *m = data;
    if (m->closed || !m->started || role != MM_WIRE_ROLE_MEMBER)
        return; /* clients never take part in membership */
    if (!state_sender_is(body, len, peer)) {
        MM_LOG(MM_LOG_DEBUG, "membership", "sync frame: sender mismatch");
        return;
    }
    uint64_t now = mm__now_ms();
    (void)now;
    if (type == MEMBER_SYNC_REQ) {
        /* Answered with our state as it is; theirs is merged in steps. */
        mm__swim_state_serve(m->swim, body, len);
        sync_send(m, peer, conn, sid, MEMBER_SYNC_RESP);
        merge_start(m, body, len);
    } else if (type == MEMBER_SYNC_RESP) {
        if (m->sync_active && memcmp(m->sync_peer, peer, MM_SWIM_ID_LEN) == 0) {
            m->sync_active = 0;
            int rc = merge_start(m, body, len);
            if (rc < 0) m->sync_failed = 1; /* the core's sync ends */
        } else {
            merge_start(m, body, len); /* a late answer is still news */
        }
    }
    membership_after(m);
}

/* ---- timings from the environment
 * ---------------------------------------------- */

struct env_knob {
    const char *name;
    size_t off;
    int wide; /* uint64_t field */
};

#define KNOB(n, f)                                                             \
    {                                                                          \
        n, offsetof(struct mm_swim_config, f), 0                               \
    }
static const struct env_knob env_knobs[] = {
    KNOB("MURMER_SWIM_PROBE_MS", probe_interval_ms),
    KNOB("MURMER_SWIM_PROBE_TIMEOUT_MS", probe_timeout_ms),
    KNOB("MURMER_SWIM_INDIRECT", indirect_checks),
    KNOB("MURMER_SWIM_GOSSIP_MS", gossip_interval_ms),
    KNOB("MURMER_SWIM_GOSSIP_NODES", gossip_nodes),
    KNOB("MURMER_SWIM_GOSSIP_BURST", gossip_burst),
    KNOB("MURMER_SWIM_RETRANSMIT_MULT", retransmit_mult),
    KNOB("MURMER_SWIM_SUSPICION_MULT", suspicion_mult),
    KNOB("MURMER_SWIM_SUSPICION_MAX_MULT", suspicion_max_mult),
    KNOB("MURMER_SWIM_AWARENESS_MAX", awareness_max),
    KNOB("MURMER_SWIM_REPROBE_MIN_MS", reprobe_min_ms),
    KNOB("MURMER_SWIM_REPROBE_MAX_MS", reprobe_max_ms),
    KNOB("MURMER_SWIM_SEED_MIN_MS", seed_min_ms),
    KNOB("MURMER_SWIM_SEED_MAX_MS", seed_max_ms),
    KNOB("MURMER_SWIM_LEAVE_TIMEOUT_MS", leave_timeout_ms),
    KNOB("MURMER_SWIM_SYNC_JITTER_MS", sync_jitter_ms),
    KNOB("MURMER_SWIM_SYNC_TIMEOUT_MS", sync_timeout_ms),
    KNOB("MURMER_SWIM_LATE_MS", late_ms),
    KNOB("MURMER_SWIM_SYNC_GAP_MAX_MS", sync_gap_max_ms),
    {"MURMER_SWIM_RECONNECT_TIMEOUT_MS",
     offsetof(struct mm_swim_config, reconnect_timeout_ms), 1},
};
#undef KNOB

static void
config_from_env(struct mm_swim_config *sc)
{
    for (size_t i = 0; i < sizeof(env_knobs) / sizeof(env_knobs[0]); i++) {
        const struct env_knob *k = &env_knobs[i];
        const char *v = getenv(k->name);
        if (!v || !*v) continue;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (*end || errno || v[0] == '-' || (!k->wide && x > UINT32_MAX)) {
            MM_LOG(MM_LOG_WARN, "membership", "%s=%s ignored: not a number",
                   k->name, v);
            continue;
        }
        if (k->wide) {
            uint64_t w = x;
            memcpy((char *)sc + k->off, &w, sizeof(w));
        } else {
            uint32_t w = (uint32_t)x;
            memcpy((char *)sc + k->off, &w, sizeof(w));
        }
        MM_LOG(MM_LOG_DEBUG, "membership", "%s=%llu", k->name, x);
    }
}

/* ---- lifecycle
 * ---------------------------------------------------------------- */

static int
tags_join(const mm_node_config *cfg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; cfg && i < cfg->ntags; i++) {
        const char *t = cfg->tags[i];
        size_t tl = t ? strlen(t) : 0;
        if (!tl) continue;
        if (strchr(t, ',') || len + tl + (len ? 1 : 0) >= cap) return MM_EINVAL;
        if (len) out[len++] = ',';
        memcpy(out + len, t, tl + 1);
        len += tl;
    }
    return 0;
}

int
mm__membership_new(struct mm_membership **out,
                   const struct mm_membership_deps *deps,
                   const mm_node_config *cfg)
{
    *out = NULL;
    struct mm_membership *m = mm__calloc(1, sizeof(*m));
    if (!m) return UV_ENOMEM;
    m->d = *deps;
    m->node = deps->node;
    m->max_frame =
        m->node->cfg.max_frame ? m->node->cfg.max_frame : MM_MAX_FRAME;
    const struct mm_identity *id = deps->id;
    const struct mm_keyring *kr = deps->kr;
    int rc = MM_EINVAL;
    char tags[MM_SWIM_TAGS_MAX];

    const char *self_addr = mm_node_addr(m->node);
    if (addr_resolve(self_addr, 0, &m->self_addr) != 0) {
        MM_LOG(MM_LOG_ERR, "membership", "cannot use address %s",
               self_addr ? self_addr : "(none)");
        goto fail;
    }
    m->family = m->self_addr.family;
    if (tags_join(cfg, tags, sizeof(tags)) != 0) {
        MM_LOG(MM_LOG_ERR, "membership",
               "tags too long (at most %d bytes joined) or holding a comma",
               MM_SWIM_TAGS_MAX - 1);
        goto fail;
    }

    struct mm_seal_key keys[MM_SEAL_KEYS_MAX];
    size_t nkeys = kr->n < MM_SEAL_KEYS_MAX ? kr->n : MM_SEAL_KEYS_MAX;
    for (size_t i = 0; i < nkeys; i++) {
        keys[i].id = kr->ids[i];
        memcpy(keys[i].key, kr->keys[i], sizeof(keys[i].key));
    }
    rc = mm__seal_new(&m->seal, id->id, id->generation, keys, nkeys);
    mm__wipe(keys, sizeof(keys));
    if (rc) goto fail;
    mm__seal_set_now(m->seal, mm__now_ms());
    mm__seal_set_derive_limit(m->seal, MM_GOSSIP_DERIVE_RATE,
                              MM_GOSSIP_DERIVE_BURST);
    m->src_seed = mm__rand64();

    rc = id->has_seed ? mm__sign_key_from_seed(&m->sign_key, id->seed)
                      : mm__sign_key_from_pem(&m->sign_key, id->key_pem);
    if (rc) {
        MM_LOG(MM_LOG_ERR, "membership", "cannot use the identity key: %s",
               mm_strerror(rc));
        goto fail;
    }
    struct mm_swim_config sc;
    mm__swim_config_init(&sc);
    sc.name = mm_node_name(m->node);
    memcpy(sc.id, id->id, MM_SWIM_ID_LEN);
    memcpy(sc.pub, id->pub, MM_SWIM_PUB_LEN);
    sc.addr = m->self_addr;
    sc.generation = id->generation;
    sc.role = MM_WIRE_ROLE_MEMBER;
    sc.tags = tags;
    config_from_env(&sc);
    m->sync_timeout_ms =
        sc.sync_timeout_ms ? sc.sync_timeout_ms : MM_SWIM_SYNC_TIMEOUT_MS;
    struct mm_swim_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.data = m;
    ops.send = swim_send_cb;
    ops.changed = swim_changed_cb;
    ops.want_sync = swim_want_sync_cb;
    ops.sign = swim_sign_cb;
    ops.verify = swim_verify_cb;
    rc = mm__swim_new(&m->swim, &sc, &ops, mm__now_ms());
    if (rc) {
        MM_LOG(MM_LOG_ERR, "membership",
               "bad membership settings (name \"%s\", timings): %s", sc.name,
               mm_strerror(rc));
        goto fail;
    }

    for (size_t i = 0; cfg && i < cfg->njoin; i++) {
        struct mm_swim_addr a;
        if (addr_resolve(cfg->join[i], m->family, &a) != 0) {
            MM_LOG(MM_LOG_WARN, "membership", "seed %s: cannot resolve",
                   cfg->join[i]);
            continue;
        }
        if (memcmp(&a, &m->self_addr, sizeof(a)) == 0) continue; /* ourselves */
        void *p = mm__realloc(m->seeds, (m->nseeds + 1) * sizeof(*m->seeds));
        if (!p) {
            rc = UV_ENOMEM;
            goto fail;
        }
        m->seeds = p;
        m->seeds[m->nseeds++] = a;
    }

    mm__net_on_datagram(deps->net, on_datagram, m);
    mm__net_on_frame(deps->net, MEMBER_SYNC_REQ, on_sync_frame, m);
    mm__net_on_frame(deps->net, MEMBER_SYNC_RESP, on_sync_frame, m);
    *out = m;
    return 0;
fail:
    mm__membership_free(m);
    return rc;
}

void
mm__membership_start(struct mm_membership *m)
{
    if (m->started || m->closed) return;
    uv_loop_t *loop = m->d.loop;
    uv_timer_init(loop, &m->poll);
    m->poll.data = m;
    m->tmr.fn = timer_cb;
    m->merge_tmr.fn = merge_cb;
    m->timers_init = 1;
    m->started = 1;
    uint64_t now = mm__now_ms();
    for (size_t i = 0; i < m->nseeds; i++)
        mm__swim_join(m->swim, &m->seeds[i], now);
    membership_after(m);
}

int
mm__membership_join(struct mm_membership *m, const char *hostport)
{
    struct mm_swim_addr a;
    if (!m->started || m->closed || addr_resolve(hostport, m->family, &a) != 0)
        return MM_EINVAL;
    if (memcmp(&a, &m->self_addr, sizeof(a)) == 0) return 0; /* ourselves */
    int rc = mm__swim_join(m->swim, &a, mm__now_ms());
    membership_after(m);
    return rc;
}

void
mm__membership_leave(struct mm_membership *m, void (*done)(void *data),
                     void *data)
{
    if (!m->started || m->closed || m->leave_done) {
        done(data);
        return;
    }
    m->leave_start = mm__now_ms();
    int rc = mm__swim_leave(m->swim, m->leave_start);
    membership_after(m);
    if (rc != 0 || mm__swim_left_acked(m->swim) != 0) {
        /* Left before, or nobody to tell. */
        done(data);
        return;
    }
    m->leave_done = done;
    m->leave_data = data;
    uv_timer_start(&m->poll, poll_cb, LEAVE_POLL_MS, LEAVE_POLL_MS);
}

static void
timer_closed_cb(uv_handle_t *h)
{
    (void)h;
}

void
mm__membership_close(struct mm_membership *m)
{
    if (!m || m->closed) return;
    m->closed = 1;
    /* A leave still waiting is dropped: the node is shutting down anyway. */
    m->leave_done = NULL;
    m->leave_data = NULL;
    if (m->timers_init) {
        mm__tq_stop(m->d.tq, &m->tmr);
        mm__tq_stop(m->d.tq, &m->merge_tmr);
        uv_close((uv_handle_t *)&m->poll, timer_closed_cb);
    }
}

void
mm__membership_free(struct mm_membership *m)
{
    if (!m) return;
    if (m->timers_init && !m->closed) {
        /* Started but never closed: close here (the loop no longer runs). */
        m->closed = 1;
        mm__tq_stop(m->d.tq, &m->tmr);
        mm__tq_stop(m->d.tq, &m->merge_tmr);
        uv_close((uv_handle_t *)&m->poll, timer_closed_cb);
        uv_run(m->d.loop, UV_RUN_NOWAIT);
    }
    mm__free(m->merge_buf);
    mm__swim_free(m->swim);
    mm__seal_free(m->seal);
    mm__sign_key_free(m->sign_key);
    mm__free(m->seeds);
    mm__free(m);
}

/* ---- queries
 * -------------------------------------------------------------------- */

struct collect {
    const struct mm_swim_member **v;
    size_t n, cap;
};

static int
collect_cb(void *data, const struct mm_swim_member *mb)
{
    struct collect *cl = data;
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 16;
        void *p = mm__realloc(cl->v, cap * sizeof(*cl->v));
        if (!p) return 1;
        cl->v = p;
        cl->cap = cap;
    }
    cl->v[cl->n++] = mb;
    return 0;
}

static int
by_name(const void *a, const void *b)
{
    const struct mm_swim_member *x = *(const struct mm_swim_member *const *)a;
    const struct mm_swim_member *y = *(const struct mm_swim_member *const *)b;
    int r = strcmp(x->rec->name, y->rec->name);
    return r ? r : memcmp(x->rec->id, y->rec->id, MM_SWIM_ID_LEN);
}

void
mm__membership_foreach(struct mm_membership *m,
                       int (*cb)(void *data, const struct mm_swim_member *mb),
                       void *data)
{
    struct collect cl = {NULL, 0, 0};
    mm__swim_members(m->swim, collect_cb, &cl);
    if (cl.n) qsort(cl.v, cl.n, sizeof(*cl.v), by_name);
    for (size_t i = 0; i < cl.n; i++)
        if (cb(data, cl.v[i])) break;
    mm__free(cl.v);
}

static int
count_cb(void *data, const struct mm_swim_member *mb)
{
    uint64_t *counts = data;
    if (mb->state <= MM_SWIM_LEFT) /* ALIVE is 0 */
        counts[mb->state]++;
    return 0;
}

void
mm__membership_count(struct mm_membership *m, uint64_t counts[MM_SWIM_LEFT + 1])
{
    mm__swim_members(m->swim, count_cb, counts);
}

void
mm__membership_on_change(struct mm_membership *m, mm_membership_change_fn fn,
                         void *data)
{
    m->change_fn = fn;
    m->change_data = data;
}

int
mm__membership_timings(struct mm_membership *m, char *buf, size_t len)
{
    return mm__swim_timings_format(m->swim, buf, len);
}

struct force_target {
    const char *name;
    const struct mm_swim_member *found;
};

static int
force_target_cb(void *data, const struct mm_swim_member *mb)
{
    struct force_target *t = data;
    if (strcmp(mb->rec->name, t->name) != 0) return 0;
    t->found = mb;
    return 1;
}

/*
 * Forced leave is for members this node does not see alive (suspect or
 * failed): one that answers its probes is refused with MM_EALIVE, so a
 * force-leave can never cut a working member's actors off.  The same
 * member the swim call below picks (by id first, then by name).
 */
int
mm__membership_force_leave(struct mm_membership *m, const char *node)
{
    if (!node || !*node) return MM_EINVAL;
    uint64_t now = mm__now_ms();
    int rc = MM_ENOTFOUND;
    uint8_t id[MM_SWIM_ID_LEN];
    int by_id = strlen(node) == 2 * MM_SWIM_ID_LEN &&
                mm__unhex(id, sizeof(id), node) == 0;
    struct force_target t = {node, NULL};
    if (by_id) t.found = mm__swim_find(m->swim, id);
    if (t.found && t.found->tombstone) t.found = NULL;
    if (!t.found) mm__swim_members(m->swim, force_target_cb, &t);
    if (t.found && !t.found->is_self && t.found->state == MM_SWIM_ALIVE)
        return MM_EALIVE;
    if (by_id) rc = mm__swim_force_leave(m->swim, id, NULL, now);
    if (rc == MM_ENOTFOUND) rc = mm__swim_force_leave(m->swim, NULL, node, now);
    membership_after(m);
    return rc;
}

const struct mm_swim_stats *
mm__membership_stats(struct mm_membership *m)
{
    return mm__swim_stats(m->swim);
}

int
mm__membership_send_state(struct mm_membership *m,
                          const uint8_t peer[MM_SWIM_ID_LEN],
                          const uint8_t *state, size_t len)
{
    if (m->closed || len + MM_WIRE_HDR_LEN > m->max_frame) return MM_EINVAL;
    uint8_t *frame = mm__malloc(len + MM_WIRE_HDR_LEN);
    if (!frame) return UV_ENOMEM;
    size_t flen = mm__wire_frame_encode(frame, len + MM_WIRE_HDR_LEN,
                                        MEMBER_SYNC_REQ, state, len);
    int rc = flen ? mm__net_send_ctrl(m->d.net, peer, frame, flen) : MM_EINVAL;
    mm__free(frame);
    return rc;
}

const struct mm_swim_member *
mm__membership_find(struct mm_membership *m, const uint8_t id[MM_SWIM_ID_LEN])
{
    return mm__swim_find(m->swim, id);
}

void
mm__membership_counters(struct mm_membership *m,
                        struct mm_membership_counters *out)
{
    *out = m->cnt;
}

const struct mm_seal_stats *
mm__membership_seal_stats(struct mm_membership *m)
{
    return mm__seal_stats(m->seal);
}

int
mm__membership_set_keys(struct mm_membership *m, const struct mm_keyring *kr)
{
    struct mm_seal_key keys[MM_SEAL_KEYS_MAX];
    size_t nkeys = kr->n < MM_SEAL_KEYS_MAX ? kr->n : MM_SEAL_KEYS_MAX;
    for (size_t i = 0; i < nkeys; i++) {
        keys[i].id = kr->ids[i];
        memcpy(keys[i].key, kr->keys[i], sizeof(keys[i].key));
    }
    int rc = mm__seal_set_keys(m->seal, keys, nkeys);
    mm__wipe(keys, sizeof(keys));
    return rc;
}
