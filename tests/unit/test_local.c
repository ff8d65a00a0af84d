/* test_local.c — the node's local control socket (lib/local.c) on a real
 * Unix socket and loop: mode 0600, a stale socket replaced and a
 * non-socket left alone, frames split across writes, and its bounds:
 * connections (one more is told `overloaded` and closed), frame size (an
 * error, then closed), answer bytes queued to a peer that does not read
 * (refused past the bound, the loop never blocked), and close (the file
 * gone, every connection's `gone` called). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "common.h"
#include "local.h"
#include "wire.h"

struct fx {
    uv_loop_t loop;
    char dir[64];
    char sock[100];
    struct mm_local *l;
    struct mm_lconn *last; /* the connection of the last frame */
    int frames, gone;
    size_t last_len;
    int overloaded; /* sends refused with MM_EOVERLOADED */
    size_t answer;  /* bytes to answer each frame with (0: none) */
};

static void
on_frame(void *data, struct mm_lconn *lc, uint8_t type, const uint8_t *body,
         size_t len)
{
    struct fx *f = data;
    (void)body;
    assert_int_equal(type, MM_WIRE_CTRL_REQ);
    f->frames++;
    f->last = lc;
    f->last_len = len;
    if (f->answer) {
        uint8_t *b = calloc(1, f->answer);
        assert_non_null(b);
        int rc = mm__local_send(lc, b, f->answer);
        if (rc == MM_EOVERLOADED) f->overloaded++;
        free(b);
    }
}

static void
on_gone(void *data, struct mm_lconn *lc)
{
    struct fx *f = data;
    (void)lc;
    f->gone++;
}

static int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/mm-local-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%.60s/%s", f->dir, MM_LOCAL_SOCK_NAME);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static void
listen_small(struct fx *f)
{
    const struct mm_local_limits lim = {
        .max_conns = 2, .max_frame = 256, .max_queued = 64 * 1024};
    const struct mm_local_ops ops = {f, on_frame, on_gone};
    assert_int_equal(mm__local_listen(&f->l, &f->loop, f->dir, &lim, &ops), 0);
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;
    mm__local_close(f->l);
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    mm__local_free(f->l);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->sock);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int
dial(struct fx *f)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Runs the loop until |*n| reaches |want| (bounded). */
static void
run_until(struct fx *f, const int *n, int want)
{
    for (int i = 0; i < 2000 && *n < want; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(*n, want);
}

/* One CTRL_REQ frame with a body of |blen| bytes into |out|. */
static size_t
req(uint8_t *out, size_t cap, size_t blen)
{
    static uint8_t body[4096];
    struct mm_wire_ctrl m = {
        .id = 7, .code = 1, .body = body, .body_len = blen};
    return mm__wire_ctrl_encode(out, cap, MM_WIRE_CTRL_REQ, &m);
}

/* Reads one frame's CTRL body (blocking, bounded): its status and text. */
static int
read_answer(int fd, uint16_t *code, char *text, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint8_t buf[1024];
    size_t got = 0;
    for (int i = 0; i < 2000; i++) {
        if (poll(&p, 1, 5) <= 0) continue;
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r <= 0) return -1;
        got += (size_t)r;
        uint32_t flen;
        if (mm__wire_frame_hdr(buf, got, 1024, &flen, NULL) != 0) continue;
        if (got < 4 + flen) continue;
        struct mm_wire_ctrl m;
        assert_int_equal(mm__wire_ctrl_decode(&m, buf + 5, flen - 1), 0);
        *code = m.code;
        snprintf(text, len, "%.*s", (int)m.body_len, (const char *)m.body);
        return 0;
    }
    return -1;
}

/* 1 once |fd|'s peer has closed (EOF), within a bound. */
static int
peer_closed(struct fx *f, int fd)
{
    char c;
    for (int i = 0; i < 2000; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
        if (r == 0) return 1;
        if (r < 0 && errno != EAGAIN) return 1;
        usleep(1000);
    }
    return 0;
}

static void
test_mode_stale_and_close(void **state)
{
    struct fx *f = *state;
    /* A stale socket: bound by a process that is gone. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    listen_small(f);
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    int fd = dial(f);
    uint8_t b[512];
    size_t n = req(b, sizeof(b), 10);
    /* Split across three writes: one frame all the same. */
    assert_int_equal(write(fd, b, 3), 3);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(write(fd, b + 3, 5), 5);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(write(fd, b + 8, n - 8), (ssize_t)(n - 8));
    run_until(f, &f->frames, 1);
    assert_int_equal(f->last_len, 6 + 10);
    assert_ptr_equal(mm__local_conn(f->l, f->last), f->last);
    assert_null(mm__local_conn(f->l, f));
    mm__local_close(f->l);
    assert_int_equal(stat(f->sock, &st), -1); /* the file goes at once */
    run_until(f, &f->gone, 1);
    close(fd);
}

static void
test_not_a_socket(void **state)
{
    struct fx *f = *state;
    FILE *file = fopen(f->sock, "w");
    assert_non_null(file);
    fclose(file);
    const struct mm_local_ops ops = {f, on_frame, on_gone};
    assert_int_equal(mm__local_listen(&f->l, &f->loop, f->dir, NULL, &ops),
                     UV_EEXIST);
    assert_null(f->l);
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* left alone */
}

static void
test_conn_cap(void **state)
{
    struct fx *f = *state;
    listen_small(f);
    int a = dial(f), b = dial(f);
    uint8_t fr[512];
    size_t n = req(fr, sizeof(fr), 1);
    assert_int_equal(write(a, fr, n), (ssize_t)n);
    assert_int_equal(write(b, fr, n), (ssize_t)n);
    run_until(f, &f->frames, 2);
    int c = dial(f);
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    uint16_t code;
    char text[256];
    assert_int_equal(read_answer(c, &code, text, sizeof(text)), 0);
    assert_int_equal(code, mm_err_to_wire(MM_EOVERLOADED));
    assert_non_null(strstr(text, "2 local connections are open"));
    assert_true(peer_closed(f, c));
    assert_int_equal(f->gone, 0); /* the owner never saw it */
    close(a);
    run_until(f, &f->gone, 1);
    close(b);
    close(c);
}

static void
test_frame_cap(void **state)
{
    struct fx *f = *state;
    listen_small(f);
    int fd = dial(f);
    uint8_t fr[1024];
    size_t n = req(fr, sizeof(fr), 300); /* over max_frame 256 */
    assert_int_equal(write(fd, fr, n), (ssize_t)n);
    uint16_t code;
    char text[256];
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(read_answer(fd, &code, text, sizeof(text)), 0);
    assert_int_equal(code, mm_err_to_wire(MM_EINVAL));
    assert_non_null(strstr(text, "limit of 256 bytes"));
    assert_true(peer_closed(f, fd));
    run_until(f, &f->gone, 1);
    assert_int_equal(f->frames, 0);
    close(fd);
}

static void
test_queue_cap(void **state)
{
    struct fx *f = *state;
    listen_small(f);
    f->answer = 16 * 1024;
    int fd = dial(f);
    int rcv = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    uint8_t fr[512];
    size_t n = req(fr, sizeof(fr), 1);
    /* 64 requests, never a read: 1 MiB of answers against a 64 KiB
     * bound. */
    for (int i = 0; i < 64; i++)
        assert_int_equal(write(fd, fr, n), (ssize_t)n);
    run_until(f, &f->frames, 64);
    assert_true(f->overloaded > 0);
    assert_true(mm__local_queued(f->last) <= 64 * 1024);
    /* The loop was never blocked: another peer is served meanwhile. */
    f->answer = 0;
    int other = dial(f);
    assert_int_equal(write(other, fr, n), (ssize_t)n);
    run_until(f, &f->frames, 65);
    close(other);
    close(fd);
    run_until(f, &f->gone, 2);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_mode_stale_and_close),
        T(test_not_a_socket),
        T(test_conn_cap),
        T(test_frame_cap),
        T(test_queue_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
