/*
 * udp.c — the transport's UDP socket: our own, watched by a uv_poll handle
 * and read with recvfrom or recvmmsg; sending through the fault hook and
 * the packet filter (bounded hold queue for delays), with
 * a queue for when the socket buffer is full; and hot waits, in which the
 * loop sleeps in the socket's own receive rather than in epoll.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/quic_int.h"

#define QUIC_RX_LONE 8       /* see quic_read_batch */
#define QUIC_HOT_ROUNDS 1024 /* see quic_hot_rounds */
#define QUIC_HOT_BUDGET_NS 16000000u
#define QUIC_HOT_SKIP_MAX 1024

/* ---- addresses ----------------------------------------------------------- */

int
mm__udp_parse_addr(const char *hostport, struct sockaddr_storage *ss,
                   const char *empty_host)
{
    char host[256];
    const char *colon, *h;
    size_t hl;
    if (hostport == NULL) return MM_EINVAL;
    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (rb == NULL || rb[1] != ':') return MM_EINVAL;
        h = hostport + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL) return MM_EINVAL;
        h = hostport;
        hl = (size_t)(colon - hostport);
    }
    if (hl >= sizeof(host)) return MM_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port > 65535)
        return MM_EINVAL;
    if (host[0] == '\0') snprintf(host, sizeof(host), "%s", empty_host);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
    return MM_EINVAL;
}

void
mm__udp_format_addr(char *buf, size_t len, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

/* ---- UDP out, with the fault hook ---------------------------------------- */

static int
quic_fault_on(const struct mm_quic *q)
{
    return q->fault.drop_pct || q->fault.delay_ms || q->fault.reorder_pct;
}

static void
quic_hooked_update(struct mm_quic *q)
{
    q->hooked = q->filter != NULL || quic_fault_on(q);
}

static void quic_poll_cb(uv_poll_t *h, int status, int events);

static void
quic_poll_set(struct mm_quic *q)
{
    int ev = UV_READABLE | (q->sendq ? UV_WRITABLE : 0);
    if (ev == q->poll_events || q->closing) return;
    q->poll_events = ev;
    uv_poll_start(&q->poll, ev, quic_poll_cb);
}

/* 1 = sent (or refused for good), 0 = the kernel wants us to wait. */
static int
quic_sendto(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
            size_t len)
{
    ssize_t n;
    do {
        n = sendto(q->fd, data, len, MSG_DONTWAIT, to, quic_sa_len(to));
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        q->st.pkts_out++;
        q->st.bytes_out += len;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 0;
    MM_LOG(MM_LOG_DEBUG, "quic", "send: %s", strerror(errno));
    return 1;
}

static void
quic_send_raw(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
              size_t len)
{
    if (!q->bound) return;
    if (q->sendq == NULL && quic_sendto(q, to, data, len)) return;
    /* The socket buffer is full: copy and queue, in order. */
    struct sendreq *r = mm__malloc(sizeof(*r) + len);
    if (r == NULL) return;
    r->next = NULL;
    memcpy(&r->to, to, quic_sa_len(to));
    memcpy(r->data, data, len);
    r->len = len;
    *q->sendq_tail = r;
    q->sendq_tail = &r->next;
    quic_poll_set(q);
}

static void
quic_sendq_drain(struct mm_quic *q)
{
    while (q->sendq) {
        struct sendreq *r = q->sendq;
        if (!quic_sendto(q, (const struct sockaddr *)&r->to, r->data, r->len))
            break;
        q->sendq = r->next;
        mm__free(r);
    }
    if (q->sendq == NULL) q->sendq_tail = &q->sendq;
    quic_poll_set(q);
}

static void
quic_sendq_free(struct mm_quic *q)
{
    while (q->sendq) {
        struct sendreq *r = q->sendq;
        q->sendq = r->next;
        mm__free(r);
    }
    q->sendq_tail = &q->sendq;
}

static void
quic_fault_arm(struct mm_quic *q)
{
    if (q->closing) return;
    if (q->delayed == NULL)
        mm__tq_stop(q->cfg.tq, &q->fault_tmr);
    else
        mm__tq_start(q->cfg.tq, &q->fault_tmr, q->delayed->due);
}

static void
quic_fault_tmr_cb(struct mm_tmr *t)
{
    struct mm_quic *q = mm__container_of(t, struct mm_quic, fault_tmr);
    uint64_t now = quic_now(q);
    while (q->delayed && q->delayed->due <= now + 500000u) {
        struct fpkt *p = q->delayed;
        q->delayed = p->next;
        q->st.fault_held--;
        q->held_bytes -= p->len;
        q->st.fault_delayed++;
        quic_send_raw(q, (const struct sockaddr *)&p->to, p->data, p->len);
        mm__free(p);
    }
    quic_fault_arm(q);
}

static void
quic_fault_hold(struct mm_quic *q, const struct sockaddr *to,
                const uint8_t *data, size_t len, uint64_t delay_ns)
{
    if (q->st.fault_held >= q->hold_max ||
        len > q->hold_bytes_max - q->held_bytes) {
        q->st.fault_full++;
        return;
    }
    struct fpkt *p = mm__malloc(sizeof(*p) + len);
    if (p == NULL) return;
    q->st.fault_held++;
    q->held_bytes += len;
    p->due = quic_now(q) + delay_ns;
    memcpy(&p->to, to, quic_sa_len(to));
    p->len = len;
    memcpy(p->data, data, len);
    struct fpkt **pp = &q->delayed;
    while (*pp && (*pp)->due <= p->due)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
    quic_fault_arm(q);
}

/* The filter, then the fault hook: 1 = the datagram was dealt with. */
static int
quic_hooked_send(struct mm_quic *q, const struct sockaddr *to,
                 const uint8_t *data, size_t len)
{
    if (q->filter) {
        uint32_t ms = 0;
        int v = q->filter(q->filter_data, to, len, &ms);
        if (v == MM_QUIC_DROP) {
            q->st.fault_dropped++;
            return 1;
        }
        if (v == MM_QUIC_DELAY && ms) {
            quic_fault_hold(q, to, data, len, (uint64_t)ms * 1000000u);
            return 1;
        }
    }
    if (quic_fault_on(q)) {
        if (q->fault.drop_pct && quic_rand(q) % 100 < q->fault.drop_pct) {
            q->st.fault_dropped++;
            return 1;
        }
        uint64_t delay = (uint64_t)q->fault.delay_ms * 1000000u;
        if (q->fault.reorder_pct && quic_rand(q) % 100 < q->fault.reorder_pct) {
            /* Held behind whatever is sent in the next 2 ms. */
            quic_fault_hold(q, to, data, len, delay + 2000000u);
            return 1;
        }
        if (delay) {
            quic_fault_hold(q, to, data, len, delay);
            return 1;
        }
    }
    return 0;
}

void
mm__udp_send(struct mm_quic *q, const struct sockaddr *to, const uint8_t *data,
             size_t len)
{
    if (MM_UNLIKELY(q->hooked) && quic_hooked_send(q, to, data, len)) return;
    quic_send_raw(q, to, data, len);
}

/* ---- UDP in -------------------------------------------------------------- */

/* Reads one batch (|flags| MSG_DONTWAIT, or MSG_WAITFORONE for a hot
 * wait) and dispatches it; recvmmsg's result (errno kept when < 0). */
static int
quic_read_batch(struct mm_quic *q, int flags)
{
    /*
     * Ask for as many datagrams as the last read brought (doubling while
     * reads come back full): recvmmsg stops at |want| without one more
     * receive attempt that would end in EAGAIN, and a request/response
     * exchange brings one datagram per wake-up.  A short read means the
     * queue is empty; a full one is followed by another wake-up (epoll is
     * level-triggered) that reads with a larger batch.
     */
    unsigned want = q->rx_want ? q->rx_want : 1;
    int n;
    if (want == 1) {
        /*
         * One datagram: recvfrom, not recvmmsg.  The kernel's recvmmsg
         * copies in and imports a msghdr and its iovec and writes back
         * msg_len, msg_namelen and msg_flags one by one: about 0.3 us more
         * per call than recvfrom, a few percent of a pinned UDP round
         * trip.  MSG_TRUNC
         * makes it return a datagram's real length, so one longer than the
         * slot is still seen as truncated.
         */
        socklen_t fl = sizeof(q->rx_from[0]);
        int rf = (flags & MSG_DONTWAIT) | MSG_TRUNC;
        ssize_t r;
        do {
            r = recvfrom(q->fd, q->rxbuf[0], QUIC_RX_SLOT, rf,
                         (struct sockaddr *)&q->rx_from[0], &fl);
        } while (r < 0 && errno == EINTR && flags == MSG_DONTWAIT);
        if (r < 0) return -1;
        q->rx_msgs[0].msg_len = (unsigned)MM_MIN((size_t)r, QUIC_RX_SLOT + 1u);
        q->rx_msgs[0].msg_hdr.msg_flags = r > QUIC_RX_SLOT ? MSG_TRUNC : 0;
        n = 1;
        goto got;
    }
    for (unsigned i = 0; i < want; i++) {
        struct msghdr *h = &q->rx_msgs[i].msg_hdr;
        h->msg_name = &q->rx_from[i];
        h->msg_namelen = sizeof(q->rx_from[i]);
        h->msg_iov = &q->rx_iov[i];
        h->msg_iovlen = 1;
        h->msg_control = NULL;
        h->msg_controllen = 0;
        h->msg_flags = 0;
        q->rx_iov[i].iov_base = q->rxbuf[i];
        q->rx_iov[i].iov_len = QUIC_RX_SLOT;
    }
    do {
        n = recvmmsg(q->fd, q->rx_msgs, want, flags, NULL);
    } while (n < 0 && errno == EINTR && flags == MSG_DONTWAIT);
    if (n <= 0) return n;
got:
    /*
     * A request/response exchange reads one datagram per wake-up, and
     * asking for two when one is queued costs a second receive attempt in
     * the kernel (~1% of a pinned round trip).  So after a read of two
     * found only one, single reads stay single for QUIC_RX_LONE full
     * reads before the batch may grow again.
     */
    if ((unsigned)n == want) {
        if (want > 1 || q->rx_lone == 0)
            q->rx_want = MM_MIN(want * 2, QUIC_RX_BATCH);
        else
            q->rx_lone--;
    } else {
        q->rx_want = (unsigned)n;
        if (n == 1) q->rx_lone = QUIC_RX_LONE;
    }
    int own_clock = q->now_cache == 0;
    if (own_clock) q->now_cache = uv_hrtime();
    q->rx_ns = q->now_cache;
    for (int i = 0; i < n && !q->closing; i++) {
        const struct msghdr *h = &q->rx_msgs[i].msg_hdr;
        size_t len = q->rx_msgs[i].msg_len;
        if (len == 0) continue; /* a hot wait's wake-up (or nothing) */
        if (h->msg_flags & MSG_TRUNC) {
            /* Larger than anything a murmer node sends: not ours. */
            q->st.dropped_in++;
            continue;
        }
        mm__quic_dispatch(q, q->rxbuf[i], len,
                          (const struct sockaddr *)&q->rx_from[i]);
    }
    if (own_clock) q->now_cache = 0;
    return n;
}

static void
quic_read(struct mm_quic *q)
{
    (void)quic_read_batch(q, MSG_DONTWAIT);
}

/*
 * While the loop waits in the socket's receive, the socket leaves the
 * loop's epoll set: a socket in an epoll set has every datagram's arrival
 * run epoll's wake-up callback too (a lock and a ready-list entry), about
 * 5% of a pinned UDP round trip even when nobody waits on that epoll set.
 * Taking it out and back costs two epoll_ctl calls per hot wait, not per
 * round.
 *
 * libuv keeps the socket registered as far as it knows (uv_poll on it, with
 * q->poll_events), so it is back, with those events and the data libuv
 * registers (the fd), before the loop turns again; a socket that is being
 * closed stays out (libuv's own removal then finds it gone, which it
 * ignores).  A datagram that came while it was out makes it readable at
 * once when added back.
 */
static void
quic_epoll_out(struct mm_quic *q)
{
    int ep = uv_backend_fd(q->loop);
    q->hot_out = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_DEL, q->fd, NULL) == 0;
}

static void
quic_epoll_back(struct mm_quic *q)
{
    if (!q->hot_out) return;
    q->hot_out = 0;
    if (q->closing || q->fd < 0) return;
    struct epoll_event e = {0};
    e.events = (q->poll_events & UV_READABLE ? EPOLLIN : 0) |
               (q->poll_events & UV_WRITABLE ? EPOLLOUT : 0);
    e.data.fd = q->fd;
    if (epoll_ctl(uv_backend_fd(q->loop), EPOLL_CTL_ADD, q->fd, &e) != 0 &&
        errno != EEXIST)
        MM_LOG(MM_LOG_ERR, "quic", "socket back into the loop: %s",
               strerror(errno));
}

/*
 * Hot waits.  In a request/response exchange the loop sends, then sleeps in
 * epoll_wait until the answer makes the socket readable, then reads it with
 * recvmmsg.  A task asleep in the socket's own receive is woken directly by
 * the datagram's arrival and returns with it: one syscall instead of two,
 * and no epoll wake-up: the gap between the W6 UDP floor, which blocks in
 * recvfrom, and bench/udploop, which waits in epoll (compare bench/w5 seq
 * with MURMER_HOT_WAIT_US=0).
 *
 * So after a turn that sent datagrams, when the loop has nothing else to do
 * now (no idle or pending handles, no uv timer or tq deadline within the
 * wait, the owner's park() agrees), the loop waits in the socket's receive
 * (recvfrom, or recvmmsg for a batch) for at most hot_ns (SO_RCVTIMEO).
 * What it reads is dispatched, the owner's run()
 * does what the check phase would, the writes are flushed, and if that
 * sent datagrams again the next wait follows, for at most QUIC_HOT_ROUNDS
 * rounds and QUIC_HOT_BUDGET_NS (or hot_ns if longer); then the loop turns
 * normally (epoll sees every other handle).  A post from another thread
 * meanwhile wakes the socket (park()), and uv timers and tq deadlines are
 * looked at before every round; other handles of the loop (signals, the
 * mDNS thread's async) wait at most that budget plus one wait, which the
 * kernel rounds up to its tick (4 ms at HZ=250).  The budget is long (16
 * ms, 1024 rounds) because every end of a hot wait costs a loop turn, an
 * epoll_wait, the socket's two epoll_ctl and an answer woken through epoll
 * (16 ms beat 1 ms on sequential round trips).
 * A wait that times out (no answer within hot_ns: the exchange is not hot)
 * makes the next 1, 2, 4 ... QUIC_HOT_SKIP_MAX chances pass without one.
 */
static void
quic_hot_rounds(struct mm_quic *q)
{
    uint64_t start = mm__now_ns(), now = start;
    for (unsigned round = 0; round < QUIC_HOT_ROUNDS; round++) {
        if (q->closing || !q->bound || q->sendq != NULL) return;
        if (now - start >= MM_MAX(q->hot_ns, QUIC_HOT_BUDGET_NS)) return;
        /*
         * The next uv timer, from the loop's time (which this loop turn
         * set, up to the budget ago) rather than a uv_update_time(), a
         * clock read, per round: what is past of the timer's wait since
         * then counts against it.
         */
        int t = uv_backend_timeout(q->loop);
        uint64_t since = now / 1000000u > uv_now(q->loop)
                             ? now / 1000000u - uv_now(q->loop)
                             : 0;
        if (t >= 0 && ((uint64_t)t <= since ||
                       ((uint64_t)t - since) * 1000000u < q->hot_ns + 1000000u))
            return;
        if (mm__tq_next(q->cfg.tq) < now + q->hot_ns &&
            mm__quic_push_timers(q, now))
            return;
        if (!q->ops.park(q->ops.data)) return;
        if (!q->hot_out) quic_epoll_out(q);
        int n = quic_read_batch(q, MSG_WAITFORONE);
        int err = n < 0 ? errno : 0;
        int woken = q->ops.unpark(q->ops.data);
        if (n <= 0) {
            if (err == EAGAIN || err == EWOULDBLOCK) {
                q->st.hot_misses++;
                q->hot_next = q->hot_next
                                  ? MM_MIN(q->hot_next * 2, QUIC_HOT_SKIP_MAX)
                                  : 1;
                q->hot_skip = q->hot_next;
            }
            return;
        }
        q->hot_next = 0;
        if (woken) {
            q->st.hot_woken++;
            return;
        }
        q->st.hot_hits++;
        if (q->closing) return;
        q->ops.run(q->ops.data, q->rx_ns);
        if (q->closing) return; /* the node stopped meanwhile */
        /*
         * The flush stamps its packets with the time of the read (or a
         * later one that ngtcp2 was handed meanwhile: quic_now()), a clock
         * read less per round.  The few microseconds the handler ran then
         * count as network time in the peer's RTT samples.  The next
         * round's budget check uses that time too.
         */
        now = q->rx_ns;
        uint64_t out = q->st.pkts_out;
        q->now_cache = now;
        mm__quic_flush(q);
        q->now_cache = 0;
        if (q->st.pkts_out == out) return; /* nothing sent: no answer due */
    }
}

void
mm__udp_hot_wait(struct mm_quic *q)
{
    if (q->hot_skip) {
        q->hot_skip--;
        return;
    }
    quic_hot_rounds(q);
    quic_epoll_back(q);
    /* The loop computes its poll timeout from its time next. */
    uv_update_time(q->loop);
}

static void
quic_poll_cb(uv_poll_t *h, int status, int events)
{
    struct mm_quic *q = h->data;
    if (q->closing) return;
    if (status < 0) {
        MM_LOG(MM_LOG_WARN, "quic", "socket: %s", uv_strerror(status));
        events = UV_READABLE | (q->sendq ? UV_WRITABLE : 0);
    }
    if (events & UV_WRITABLE) quic_sendq_drain(q);
    if (events & UV_READABLE) quic_read(q);
}

/*
 * The socket is our own, watched by a uv_poll handle, rather than a
 * uv_udp_t: libuv's UDP reader reads until EAGAIN (a wasted syscall per
 * wake-up, two per round trip), and its recvmmsg mode does the same.
 * Returns 0 or a libuv error code.
 */
int
mm__udp_bind(struct mm_quic *q, const struct sockaddr *sa)
{
    int fd =
        socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int sz = 4 * 1024 * 1024;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    socklen_t namelen = sizeof(q->local);
    int rv;
    if (bind(fd, sa, quic_sa_len(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&q->local, &namelen) != 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    if ((rv = uv_poll_init_socket(q->loop, &q->poll, fd)) != 0) {
        close(fd);
        return rv;
    }
    q->poll.data = q;
    q->handles++;
    q->fd = fd;
    if (q->hot_ns) {
        /* uv_poll_init_socket made the socket non-blocking. */
        struct timeval tv = {.tv_sec = (time_t)(q->hot_ns / 1000000000u),
                             .tv_usec =
                                 (suseconds_t)(q->hot_ns / 1000u % 1000000u)};
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
            q->hot_ns = 0;
    }
    q->local_len = namelen;
    mm__udp_format_addr(q->local_str, sizeof(q->local_str),
                        (struct sockaddr *)&q->local);
    q->bound = 1;
    quic_poll_set(q);
    return 0;
}

/* ---- the socket's side of the interface ---------------------------------- */

void
mm__udp_init(struct mm_quic *q)
{
    q->fd = -1;
    q->sendq_tail = &q->sendq;
    q->fault_tmr.fn = quic_fault_tmr_cb;
    q->hold_max = MM_FAULT_HOLD_MAX;
    q->hold_bytes_max = MM_FAULT_HOLD_BYTES;
}

int
mm__quic_fault_parse(struct mm_quic_fault *f, const char *s)
{
    struct mm_quic_fault r = {0, 0, 0, 1};
    char buf[256];
    if (s == NULL || strlen(s) >= sizeof(buf)) return MM_EINVAL;
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) return MM_EINVAL;
        *eq = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (*end != '\0' || eq[1] == '\0' || errno) return MM_EINVAL;
        if (strcmp(tok, "drop") == 0 && v <= 100)
            r.drop_pct = (unsigned)v;
        else if (strcmp(tok, "delay") == 0 && v <= 60000)
            r.delay_ms = (unsigned)v;
        else if (strcmp(tok, "reorder") == 0 && v <= 100)
            r.reorder_pct = (unsigned)v;
        else if (strcmp(tok, "seed") == 0)
            r.seed = v;
        else
            return MM_EINVAL;
    }
    *f = r;
    return 0;
}

void
mm__quic_set_fault(struct mm_quic *q, const struct mm_quic_fault *f)
{
    q->fault = *f;
    q->rng = f->seed ? f->seed : 1;
    quic_hooked_update(q);
}

void
mm__quic_set_filter(struct mm_quic *q, mm_quic_filter_fn fn, void *data,
                    uint32_t hold_max, size_t hold_bytes)
{
    q->filter = fn;
    q->filter_data = data;
    q->hold_max = hold_max ? hold_max : MM_FAULT_HOLD_MAX;
    q->hold_bytes_max = hold_bytes ? hold_bytes : MM_FAULT_HOLD_BYTES;
    quic_hooked_update(q);
}

int
mm__quic_listen(struct mm_quic *q, const char *hostport)
{
    struct sockaddr_storage ss;
    if (q->bound) return MM_EEXISTS;
    if (mm__udp_parse_addr(hostport, &ss, "0.0.0.0") != 0) return MM_EINVAL;
    int rv = mm__udp_bind(q, (struct sockaddr *)&ss);
    if (rv != 0) {
        MM_LOG(MM_LOG_ERR, "quic", "cannot listen on %s: %s", hostport,
               uv_strerror(rv));
        return rv;
    }
    q->accepting = 1;
    return 0;
}

const char *
mm__quic_local_addr(const struct mm_quic *q)
{
    return q->bound ? q->local_str : NULL;
}

int
mm__quic_fd(const struct mm_quic *q)
{
    return q->fd;
}

int
mm__quic_local_port(const struct mm_quic *q)
{
    if (!q->bound) return 0;
    if (q->local.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&q->local)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&q->local)->sin_port);
}

int
mm__quic_wake_addr(const struct mm_quic *q, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    if (!q->bound) return UV_EINVAL;
    memcpy(ss, &q->local, sizeof(*ss));
    *len = q->local_len;
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
            a->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (a->sin_addr.s_addr == htonl(INADDR_ANY))
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return 0;
}

int
mm__quic_send_datagram(struct mm_quic *q, const struct sockaddr *to,
                       const uint8_t *buf, size_t len)
{
    if (q->closing) return MM_ECLOSED;
    if (!q->bound) return MM_EINVAL;
    if (len == 0 || len > QUIC_RX_SLOT) return MM_EINVAL;
    mm__udp_send(q, to, buf, len);
    return 0;
}

static void
quic_poll_closed(uv_handle_t *h)
{
    struct mm_quic *q = h->data;
    close(q->fd);
    q->fd = -1;
    q->handles--;
    mm__quic_maybe_free(q);
}

void
mm__udp_close(struct mm_quic *q)
{
    while (q->delayed) {
        struct fpkt *p = q->delayed;
        q->delayed = p->next;
        mm__free(p);
    }
    q->st.fault_held = 0;
    q->held_bytes = 0;
    mm__tq_stop(q->cfg.tq, &q->fault_tmr);
    if (!q->bound) return;
    /* CONNECTION_CLOSEs the kernel could not take yet: one more try. */
    if (q->sendq) {
        int was = q->closing;
        q->closing = 0;
        quic_sendq_drain(q);
        q->closing = was;
    }
    quic_sendq_free(q);
    uv_poll_stop(&q->poll);
    uv_close((uv_handle_t *)&q->poll, quic_poll_closed);
}
