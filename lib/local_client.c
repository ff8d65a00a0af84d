/*
 * local_client.c — client sessions over the node's local control socket
 * (local_client.h): the same CTRL_REQ / CTRL_RESP frames as a QUIC
 * session's control stream (docs/wire.md), written and read with plain
 * blocking-with-deadline I/O (poll), no loop, no TLS.  client_cmds.c turns
 * the answers into result arrays exactly as for a QUIC session, so the
 * CLI prints the same bytes.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cJSON.h>

#include "buf.h"
#include "client_int.h"
#include "local_client.h"
#include "wire.h"

struct mm_client {
    int fd;
    uint32_t timeout_ms;
    uint32_t next_id;
    volatile sig_atomic_t interrupted;
    char errtext[512];
    char name[64];
    char addr[1100]; /* the socket's path */
};

void (*mm__lclient_fallback)(void);

static char g_dir[1024];
static int g_fd = -1;
static int g_err = -ENOENT;
static char connect_err[2400];

int
mm__lclient_dial(const char *dir)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    int dfd = -1;
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
                     MM_LOCAL_SOCK_NAME);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
        /* A long path: through the directory's descriptor. */
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd,
                 MM_LOCAL_SOCK_NAME);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = errno;
        close(fd);
        fd = -1;
    }
    if (dfd >= 0) close(dfd);
    return fd >= 0 ? fd : -err;
}

void
mm__lclient_use(const char *dir, int fd)
{
    snprintf(g_dir, sizeof(g_dir), "%s", dir);
    if (fd >= 0) {
        g_fd = fd;
        g_err = 0;
    } else {
        g_fd = -1;
        g_err = fd;
    }
}

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

MM_EXTERN const char *
mm_client_error_text(const mm_client *c)
{
    return c ? c->errtext : connect_err;
}

MM_EXTERN void
mm_client_config_init(mm_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

MM_EXTERN int
mm_client_connect(mm_client **out, const mm_client_config *cfg)
{
    *out = NULL;
    if (g_fd < 0) {
        int e = -g_err;
        if (e == EACCES || e == EPERM) {
            snprintf(connect_err, sizeof(connect_err),
                     "%s/%s: %s (only the node's user or root may use it)",
                     g_dir, MM_LOCAL_SOCK_NAME, strerror(e));
            return MM_EUNAUTHORIZED;
        }
        snprintf(connect_err, sizeof(connect_err),
                 "no node is running with data dir %s (%s/%s: %s)", g_dir,
                 g_dir, MM_LOCAL_SOCK_NAME, strerror(e));
        return MM_EUNREACHABLE;
    }
    mm_client *c = mm__calloc(1, sizeof(*c));
    if (!c) return UV_ENOMEM;
    c->fd = g_fd;
    g_fd = -1;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : MM_DEFAULT_TIMEOUT_MS;
    snprintf(c->name, sizeof(c->name), "local");
    snprintf(c->addr, sizeof(c->addr), "%.1000s/%s", g_dir, MM_LOCAL_SOCK_NAME);
    *out = c;
    return 0;
}

MM_EXTERN void
mm_client_close(mm_client *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    mm__free(c);
}

MM_EXTERN void
mm_client_interrupt(mm_client *c)
{
    if (c) c->interrupted = 1;
}

MM_EXTERN const char *
mm_client_seed_name(const mm_client *c)
{
    return c->name;
}

MM_EXTERN const char *
mm_client_seed_addr(const mm_client *c)
{
    return c->addr;
}

uint64_t
mm__client_deadline(mm_client *c)
{
    return mm__now_ms() + c->timeout_ms;
}

/* Waits for |events| on the socket until |deadline|: 0, MM_ETIMEOUT, or
 * MM_ECLOSED once interrupted. */
static int
wait_fd(mm_client *c, short events, uint64_t deadline)
{
    for (;;) {
        if (c->interrupted) return MM_ECLOSED;
        uint64_t now = mm__now_ms();
        if (now >= deadline) return MM_ETIMEOUT;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, (int)MM_MIN(deadline - now, (uint64_t)INT32_MAX));
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return MM_EUNREACHABLE;
    }
}

/* Writes |len| bytes before |deadline|. */
static int
write_all(mm_client *c, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return MM_EUNREACHABLE;
        int rc = wait_fd(c, POLLOUT, deadline);
        if (rc) return rc;
    }
    return 0;
}

/* Reads exactly |len| bytes before |deadline|. */
static int
read_all(mm_client *c, uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t r = recv(c->fd, p, len, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r == 0) return MM_EUNREACHABLE; /* the node closed it */
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return MM_EUNREACHABLE;
        int rc = wait_fd(c, POLLIN, deadline);
        if (rc) return rc;
    }
    return 0;
}

/* Keeps the node's {"error": "..."} text. */
static void
client_errbody(mm_client *c, const uint8_t *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength((const char *)body, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(e)) client_errtext(c, "%s", e->valuestring);
    cJSON_Delete(j);
}

int
mm__client_request(mm_client *c, uint16_t op, const cJSON *body,
                   uint64_t deadline, cJSON **resp)
{
    *resp = NULL;
    c->errtext[0] = '\0';
    if (c->fd < 0) {
        client_errtext(c, "connection to %s lost", c->addr);
        return MM_EUNREACHABLE;
    }
    char *js = body ? cJSON_PrintUnformatted(body) : NULL;
    if (body && !js) return UV_ENOMEM;
    uint32_t id = ++c->next_id;
    struct mm_wire_ctrl m = {.id = id,
                             .code = op,
                             .body = (const uint8_t *)(js ? js : "{}"),
                             .body_len = js ? strlen(js) : 2};
    struct mm_buf b;
    mm__buf_init(&b);
    int rc = mm__wire_ctrl_append(&b, MM_WIRE_CTRL_REQ, &m);
    cJSON_free(js);
    if (rc == 0) rc = write_all(c, b.data, b.len, deadline);
    mm__buf_release(&b);
    /* A node that refused this peer wrote why, then closed: read that. */
    int refused = rc == MM_EUNREACHABLE;
    if (refused) rc = 0;
    uint8_t *frame = NULL;
    while (rc == 0) { /* frames until the answer to |id| */
        uint8_t hdr[MM_WIRE_HDR_LEN];
        uint32_t flen;
        uint8_t type;
        if ((rc = read_all(c, hdr, sizeof(hdr), deadline)) != 0) break;
        if (mm__wire_frame_hdr(hdr, sizeof(hdr), MM_MAX_FRAME, &flen, &type) !=
            0) {
            rc = MM_EDECODE;
            client_errtext(c, "malformed answer from %s", c->addr);
            break;
        }
        frame = mm__malloc(flen ? flen : 1);
        if (!frame) {
            rc = UV_ENOMEM;
            break;
        }
        if ((rc = read_all(c, frame, flen - 1, deadline)) != 0) break;
        struct mm_wire_ctrl a;
        if (type != MM_WIRE_CTRL_RESP ||
            mm__wire_ctrl_decode(&a, frame, flen - 1) != 0 ||
            (a.id != id && a.id != 0) || (refused && a.id != 0)) {
            mm__free(frame); /* an event, or another request's */
            frame = NULL;
            continue;
        }
        rc = a.code ? mm_err_from_wire(a.code) : 0;
        if (rc) {
            client_errbody(c, a.body, a.body_len);
        } else {
            *resp = cJSON_ParseWithLength((const char *)a.body, a.body_len);
            if (!*resp) {
                client_errtext(c, "malformed answer from %s", c->addr);
                rc = MM_EDECODE;
            }
        }
        mm__free(frame);
        frame = NULL;
        return rc;
    }
    mm__free(frame);
    if (rc == MM_ETIMEOUT)
        client_errtext(c, "no answer from %s within %" PRIu32 " ms", c->addr,
                       c->timeout_ms);
    else if (rc == MM_EUNREACHABLE)
        client_errtext(c, "connection to %s lost", c->addr);
    if (rc != UV_ENOMEM && rc != MM_ECLOSED) { /* the stream is out of step */
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

/* ---- what the local socket does not serve: the full CLI does ------------ */

static int
not_served(mm_client *c, const char *what)
{
    if (mm__lclient_fallback) mm__lclient_fallback();
    (void)what;
    client_errtext(c, "not served over the local socket (give --join ADDR)");
    return MM_EINVAL;
}

MM_EXTERN int
mm_client_members_follow(mm_client *c, uint32_t idle_timeout_ms,
                         int (*cb)(void *data, const char *event,
                                   const mm_member_info *m),
                         void *data)
{
    (void)idle_timeout_ms;
    (void)cb;
    (void)data;
    return not_served(c, "members --follow");
}

MM_EXTERN int
mm_client_oplog_follow(mm_client *c, const char *origin,
                       int (*cb)(void *data, const char *origin, uint64_t gen,
                                 const mm_oplog_op *op),
                       void *data)
{
    (void)origin;
    (void)cb;
    (void)data;
    return not_served(c, "oplog --follow");
}
