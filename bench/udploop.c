/*
 * udploop.c — the W6 UDP floor as an event loop sees it: the same ping-pong
 * as ../shared/anchors/actors/floor/udp_pingpong (two processes, 64-byte
 * datagrams on 127.0.0.1, sequential), but each side waits in a libuv loop
 * (a uv_poll on a non-blocking socket, like murmer's transport) and reads
 * with recvmmsg, instead of blocking in recvfrom.  No protocol work at all:
 * the ceiling for any design that multiplexes its socket with timers and
 * other handles on one loop.
 *
 *   udploop [N] [PAYLOAD]   prints c-floor-uv,W6.udp-uv.seq.{throughput,median}
 *
 * Run it pinned like the floor (bench/run.sh: taskset -c 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bench.h"

struct side {
    int fd;
    struct sockaddr_in peer;
    int client;
    long i, n, warm;
    uint64_t t0, tstart, elapsed;
    uint32_t *lat;
    char buf[2048];
    size_t plen;
    uv_poll_t poll;
};

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    struct side *s = h->data;
    struct mmsghdr mh;
    struct iovec iov = {s->buf, sizeof(s->buf)};
    struct sockaddr_in from;
    (void)events;
    if (status < 0) die("poll");
    memset(&mh, 0, sizeof(mh));
    mh.msg_hdr.msg_iov = &iov;
    mh.msg_hdr.msg_iovlen = 1;
    mh.msg_hdr.msg_name = &from;
    mh.msg_hdr.msg_namelen = sizeof(from);
    int r = recvmmsg(s->fd, &mh, 1, MSG_DONTWAIT, NULL);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("recvmmsg");
    }
    size_t len = mh.msg_len;
    if (!s->client) {
        if (len == 1) { /* the client's stop datagram */
            uv_poll_stop(h);
            return;
        }
        if (sendto(s->fd, s->buf, len, 0, (struct sockaddr *)&from,
                   mh.msg_hdr.msg_namelen) != (ssize_t)len)
            die("server sendto");
        return;
    }
    uint64_t t = bench_now_ns();
    if (s->i >= 0) s->lat[s->i] = (uint32_t)(t - s->t0);
    if (++s->i == s->n) {
        s->elapsed = t - s->tstart;
        uv_poll_stop(h);
        return;
    }
    if (s->i == 0) s->tstart = t;
    s->t0 = bench_now_ns();
    if (sendto(s->fd, s->buf, s->plen, 0, (struct sockaddr *)&s->peer,
               sizeof(s->peer)) != (ssize_t)s->plen)
        die("client sendto");
}

static void
run_loop(struct side *s)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) die("uv_loop_init");
    uv_poll_init_socket(&loop, &s->poll, s->fd);
    s->poll.data = s;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (s->client) {
        s->t0 = bench_now_ns();
        if (sendto(s->fd, s->buf, s->plen, 0, (struct sockaddr *)&s->peer,
                   sizeof(s->peer)) != (ssize_t)s->plen)
            die("client sendto");
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&s->poll, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static int
udp_socket(struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    if (fd < 0) die("socket");
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) die("bind");
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) die("getsockname");
    *bound = sa;
    return fd;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    size_t plen = argc > 2 ? (size_t)atol(argv[2]) : 64;
    struct sockaddr_in srv_addr, cli_addr;
    static struct side s;
    int st;

    if (n < 1 || plen < 2 || plen > sizeof(s.buf)) {
        fprintf(stderr, "usage: udploop [N >= 1] [PAYLOAD 2..2048]\n");
        return 2;
    }
    alarm(60);
    int srv = udp_socket(&srv_addr);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        s.fd = srv;
        run_loop(&s);
        _exit(0);
    }
    close(srv);
    s.fd = udp_socket(&cli_addr);
    s.client = 1;
    s.peer = srv_addr;
    s.n = n;
    s.warm = 10000;
    s.i = -s.warm - 1; /* the first reply answers warm-up datagram 0 */
    s.plen = plen;
    memset(s.buf, 'x', plen);
    s.lat = calloc((size_t)n, sizeof(*s.lat));
    if (s.lat == NULL) die("calloc");
    run_loop(&s);
    if (sendto(s.fd, "q", 1, 0, (struct sockaddr *)&srv_addr,
               sizeof(srv_addr)) != 1)
        die("stop sendto");
    waitpid(pid, &st, 0);
    qsort(s.lat, (size_t)n, sizeof(*s.lat), bench_cmp_u32);
    printf("c-floor-uv,W6.udp-uv.seq.throughput,%.0f,rt/s\n",
           (double)n * 1e9 / (double)s.elapsed);
    printf("c-floor-uv,W6.udp-uv.seq.median,%u,ns\n", s.lat[n / 2]);
    free(s.lat);
    return 0;
}
