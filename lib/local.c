/*
 * local.c — the node's local control socket (local.h; docs/design.md,
 * The local control socket).  A Unix-domain stream socket in the data
 * dir, served on the loop it is given with non-blocking I/O; it frames
 * bytes into CTRL frames (the same framing as a QUIC stream, docs/wire.md)
 * and hands them to its owner (session.c).
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "wire.h"

#define TMP_NAME ".murmer.sock.new"

struct mm_lconn {
    struct mm_lconn *next;
    struct mm_local *l;
    uv_pipe_t h;
    uint8_t *in; /* bytes read, not yet a whole frame */
    size_t in_len, in_cap;
    int closing;
    int listed; /* in l->conns: the owner knows it */
    unsigned uid;
    int pid;
};

struct mm_local {
    uv_loop_t *loop;
    uv_pipe_t srv;
    int srv_init;
    int dfd; /* the data dir, O_PATH */
    dev_t dev;
    ino_t ino; /* the socket file we made */
    struct mm_local_ops ops;
    struct mm_local_limits lim;
    struct mm_lconn *conns;
    size_t nconns;
    int closing;
    char path[4096];
};

struct wreq {
    uv_write_t w;
    uv_buf_t b;
    _Alignas(max_align_t) uint8_t data[];
};

/* ---- connections ---------------------------------------------------------
 */

static void
write_cb(uv_write_t *w, int status)
{
    (void)status;
    mm__free(mm__container_of(w, struct wreq, w));
}

static void
lconn_close_cb(uv_handle_t *h)
{
    struct mm_lconn *lc = h->data;
    struct mm_local *l = lc->l;
    if (lc->listed) {
        if (l->ops.gone) l->ops.gone(l->ops.data, lc);
        struct mm_lconn **pp = &l->conns;
        while (*pp && *pp != lc)
            pp = &(*pp)->next;
        if (*pp) *pp = lc->next;
        l->nconns--;
    }
    mm__free(lc->in);
    mm__free(lc);
}

void
mm__local_conn_close(struct mm_lconn *lc)
{
    if (lc->closing) return;
    lc->closing = 1;
    uv_close((uv_handle_t *)&lc->h, lconn_close_cb);
}

/* One CTRL_RESP frame {"error": text} with request id |id|, queued. */
static void
send_error(struct mm_lconn *lc, uint32_t id, int err, const char *text)
{
    char body[320];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", text);
    struct mm_wire_ctrl m = {.id = id,
                             .code = mm_err_to_wire(err),
                             .body = (const uint8_t *)body,
                             .body_len = strlen(body)};
    struct mm_buf b;
    mm__buf_init(&b);
    if (mm__wire_ctrl_append(&b, MM_WIRE_CTRL_RESP, &m) == 0)
        mm__local_send(lc, b.data, b.len);
    mm__buf_release(&b);
}

int
mm__local_send(struct mm_lconn *lc, const uint8_t *frame, size_t len)
{
    if (lc->closing) return MM_ECLOSED;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&lc->h);
    if (queued + len > lc->l->lim.max_queued) return MM_EOVERLOADED;
    struct wreq *r = mm__malloc(sizeof(*r) + len);
    if (!r) return UV_ENOMEM;
    memcpy(r->data, frame, len);
    r->b = uv_buf_init((char *)r->data, (unsigned)len);
    int rc = uv_write(&r->w, (uv_stream_t *)&lc->h, &r->b, 1, write_cb);
    if (rc) {
        mm__free(r);
        mm__local_conn_close(lc);
        return MM_ECLOSED;
    }
    return 0;
}

size_t
mm__local_queued(const struct mm_lconn *lc)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&lc->h);
}

void
mm__local_peer(const struct mm_lconn *lc, unsigned *uid, int *pid)
{
    *uid = lc->uid;
    *pid = lc->pid;
}

struct mm_lconn *
mm__local_conn(const struct mm_local *l, const void *p)
{
    if (!l || !p) return NULL;
    for (struct mm_lconn *lc = l->conns; lc; lc = lc->next)
        if ((const void *)lc == p) return lc;
    return NULL;
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct mm_lconn *lc = h->data;
    size_t limit = (size_t)lc->l->lim.max_frame + MM_WIRE_HDR_LEN;
    (void)hint;
    if (lc->in_cap - lc->in_len < 4096 && lc->in_cap < limit) {
        size_t cap = MM_MIN(MM_MAX(lc->in_cap * 2, (size_t)16384), limit);
        uint8_t *in = mm__realloc(lc->in, cap);
        if (in) {
            lc->in = in;
            lc->in_cap = cap;
        }
    }
    *buf = uv_buf_init((char *)lc->in + lc->in_len,
                       (unsigned)(lc->in_cap - lc->in_len));
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct mm_lconn *lc = st->data;
    struct mm_local *l = lc->l;
    (void)buf;
    if (nread < 0) { /* the peer went (EOF) or an error */
        mm__local_conn_close(lc);
        return;
    }
    if (nread == 0 && lc->in_len == lc->in_cap) { /* no room: cannot be */
        mm__local_conn_close(lc);
        return;
    }
    lc->in_len += (size_t)nread;
    size_t off = 0;
    while (!lc->closing && !l->closing) {
        uint32_t flen;
        uint8_t type;
        int r = mm__wire_frame_hdr(lc->in + off, lc->in_len - off,
                                   l->lim.max_frame, &flen, &type);
        if (r < 0) {
            char text[160];
            snprintf(text, sizeof(text),
                     "a request frame is empty or over the local socket's "
                     "limit of %" PRIu32 " bytes",
                     l->lim.max_frame);
            MM_LOG(MM_LOG_WARN, "local", "closing a local connection: %s",
                   text);
            send_error(lc, 0, MM_EINVAL, text);
            mm__local_conn_close(lc);
            return;
        }
        if (r > 0 || lc->in_len - off < 4u + (size_t)flen) break;
        l->ops.frame(l->ops.data, lc, type, lc->in + off + MM_WIRE_HDR_LEN,
                     flen - 1);
        off += 4u + (size_t)flen;
    }
    if (off > 0 && !lc->closing) {
        memmove(lc->in, lc->in + off, lc->in_len - off);
        lc->in_len -= off;
    }
}

/* Tells a peer that may not stay why, then closes it. */
static void
refuse(struct mm_lconn *lc, int err, const char *text)
{
    send_error(lc, 0, err, text);
    mm__local_conn_close(lc);
}

static void
on_connection(uv_stream_t *srv, int status)
{
    struct mm_local *l = srv->data;
    if (status < 0) {
        MM_LOG(MM_LOG_WARN, "local", "accept on %s: %s", l->path,
               uv_strerror(status));
        return;
    }
    struct mm_lconn *lc = mm__calloc(1, sizeof(*lc));
    if (!lc) return; /* stays in the backlog; tried again on the next */
    lc->l = l;
    uv_pipe_init(l->loop, &lc->h, 0);
    lc->h.data = lc;
    if (uv_accept(srv, (uv_stream_t *)&lc->h) != 0) {
        mm__local_conn_close(lc);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cr;
    socklen_t crlen = sizeof(cr);
    if (uv_fileno((uv_handle_t *)&lc->h, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
        MM_LOG(MM_LOG_WARN, "local",
               "refusing a local connection: its credentials are unknown");
        refuse(lc, MM_EUNAUTHORIZED, "unauthorized: unknown credentials");
        return;
    }
    lc->uid = (unsigned)cr.uid;
    lc->pid = (int)cr.pid;
    unsigned me = (unsigned)geteuid();
    if (lc->uid != me && lc->uid != 0) {
        char text[160];
        snprintf(text, sizeof(text),
                 "unauthorized: uid %u may not use this node's socket (only "
                 "uid %u or root)",
                 lc->uid, me);
        MM_LOG(MM_LOG_WARN, "local", "refusing pid %d on %s: %s", lc->pid,
               l->path, text);
        refuse(lc, MM_EUNAUTHORIZED, text);
        return;
    }
    if (l->nconns >= l->lim.max_conns) {
        char text[160];
        snprintf(text, sizeof(text),
                 "overloaded: %zu local connections are open, the most "
                 "this node takes",
                 l->nconns);
        MM_LOG(MM_LOG_WARN, "local", "refusing pid %d: %s", lc->pid, text);
        refuse(lc, MM_EOVERLOADED, text);
        return;
    }
    lc->listed = 1;
    lc->next = l->conns;
    l->conns = lc;
    l->nconns++;
    uv_read_start((uv_stream_t *)&lc->h, alloc_cb, read_cb);
}

/* ---- the listener --------------------------------------------------------
 */

/* |name| in |dir| as a sun_path: directly when it fits, else through the
 * descriptor |dfd| (/proc/self/fd/N/name, always short). */
static int
sun_name(struct sockaddr_un *sa, const char *dir, int dfd, const char *name)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
    if (n > 0 && (size_t)n < sizeof(sa->sun_path)) return 0;
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dfd,
                 name);
    return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : UV_ENAMETOOLONG;
}

static void
local_free(struct mm_local *l)
{
    if (l->dfd >= 0) close(l->dfd);
    mm__free(l);
}

static void
failed_close_cb(uv_handle_t *h)
{
    local_free(h->data);
}

int
mm__local_listen(struct mm_local **out, uv_loop_t *loop, const char *dir,
                 const struct mm_local_limits *lim,
                 const struct mm_local_ops *ops)
{
    *out = NULL;
    struct mm_local *l = mm__calloc(1, sizeof(*l));
    if (!l) return UV_ENOMEM;
    l->loop = loop;
    l->ops = *ops;
    if (lim) l->lim = *lim;
    if (!l->lim.max_conns) l->lim.max_conns = MM_LOCAL_CONNS_MAX;
    if (!l->lim.max_frame) l->lim.max_frame = MM_LOCAL_FRAME_MAX;
    if (!l->lim.max_queued) l->lim.max_queued = MM_LOCAL_QUEUE_MAX;
    snprintf(l->path, sizeof(l->path), "%s/%s", dir, MM_LOCAL_SOCK_NAME);
    int fd = -1, rc;
    const char *what = "open the data dir";
    l->dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (l->dfd < 0) goto sys_fail;
    struct stat st;
    if (fstatat(l->dfd, MM_LOCAL_SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISSOCK(st.st_mode)) {
        MM_LOG(MM_LOG_WARN, "local",
               "%s exists and is not a socket: no local socket (remove "
               "it and restart)",
               l->path);
        local_free(l);
        return UV_EEXIST;
    }
    struct sockaddr_un sa;
    if ((rc = sun_name(&sa, dir, l->dfd, TMP_NAME)) != 0) {
        what = "name the socket";
        errno = ENAMETOOLONG;
        goto sys_fail;
    }
    what = "create the socket";
    unlinkat(l->dfd, TMP_NAME, 0); /* a crash's leftover: we hold the lock */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) goto sys_fail;
    what = "bind the socket";
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) goto sys_fail;
    what = "chmod the socket";
    if (fchmodat(l->dfd, TMP_NAME, 0600, 0) != 0) goto sys_fail;
    if ((rc = uv_pipe_init(loop, &l->srv, 0)) != 0) goto uv_fail;
    l->srv_init = 1;
    l->srv.data = l;
    if ((rc = uv_pipe_open(&l->srv, fd)) != 0) goto uv_fail;
    fd = -1; /* the handle's now */
    if ((rc = uv_listen((uv_stream_t *)&l->srv, 64, on_connection)) != 0)
        goto uv_fail;
    what = "rename the socket into place";
    if (renameat(l->dfd, TMP_NAME, l->dfd, MM_LOCAL_SOCK_NAME) != 0)
        goto sys_fail;
    if (fstatat(l->dfd, MM_LOCAL_SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    MM_LOG(MM_LOG_INFO, "local", "control socket %s", l->path);
    *out = l;
    return 0;
sys_fail:
    rc = uv_translate_sys_error(errno);
uv_fail:
    MM_LOG(MM_LOG_WARN, "local", "no local socket: cannot %s %s: %s", what,
           l->path, uv_strerror(rc));
    if (fd >= 0) close(fd);
    if (l->dfd >= 0) unlinkat(l->dfd, TMP_NAME, 0);
    if (l->srv_init) { /* freed once the loop has closed the handle */
        uv_close((uv_handle_t *)&l->srv, failed_close_cb);
        return rc;
    }
    local_free(l);
    return rc;
}

const char *
mm__local_path(const struct mm_local *l)
{
    return l->path;
}

void
mm__local_close(struct mm_local *l)
{
    if (!l || l->closing) return;
    l->closing = 1;
    struct stat st;
    if (l->dfd >= 0 &&
        fstatat(l->dfd, MM_LOCAL_SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_dev == l->dev && st.st_ino == l->ino)
        unlinkat(l->dfd, MM_LOCAL_SOCK_NAME, 0);
    if (l->srv_init) uv_close((uv_handle_t *)&l->srv, NULL);
    for (struct mm_lconn *lc = l->conns; lc; lc = lc->next)
        mm__local_conn_close(lc);
}

void
mm__local_free(struct mm_local *l)
{
    if (!l) return;
    /* The handles were closed by mm__local_close and the loop ran: what
     * is left is memory only. */
    while (l->conns) {
        struct mm_lconn *lc = l->conns;
        l->conns = lc->next;
        mm__free(lc->in);
        mm__free(lc);
    }
    local_free(l);
}
