/*
 * local.h — the node's local control socket (docs/design.md, The local
 * control socket): a Unix-domain stream socket, DATA_DIR/murmer.sock, mode
 * 0600, on which a CLI on the node's own host sends the same CTRL_REQ
 * frames as on a client session's control stream and reads the same
 * CTRL_RESP frames back, without TLS or QUIC.
 *
 * Who may connect is decided by the file's permissions and, on accept, by
 * SO_PEERCRED: the node's effective user or root; anyone else is told so
 * in one CTRL_RESP frame and closed.  The socket runs non-blocking on the
 * loop it is given (shard 0's); this module only frames bytes: what the
 * requests mean is session.c's.
 *
 * Bounds: MM_LOCAL_CONNS_MAX connections (one more is answered
 * `overloaded` and closed), MM_LOCAL_FRAME_MAX bytes per request frame (a
 * larger one is answered with an error and the connection closed), and
 * MM_LOCAL_QUEUE_MAX answer bytes queued per connection: mm__local_send()
 * refuses past it, so a client that does not read never makes the node
 * buffer without bound or block.
 */
#ifndef MM_LOCAL_H
#define MM_LOCAL_H

#include "common.h"

struct mm_local;
struct mm_lconn;

struct mm_local_ops {
    void *data;
    /* A whole frame of |type| (its body: |body|, |len| bytes) from |lc|. */
    void (*frame)(void *data, struct mm_lconn *lc, uint8_t type,
                  const uint8_t *body, size_t len);
    /* |lc| is gone (its peer closed, an error, or mm__local_conn_close):
     * called once, after which |lc| is never seen again. */
    void (*gone)(void *data, struct mm_lconn *lc);
};

struct mm_local_limits {
    size_t max_conns;   /* 0: MM_LOCAL_CONNS_MAX */
    uint32_t max_frame; /* 0: MM_LOCAL_FRAME_MAX */
    size_t max_queued;  /* 0: MM_LOCAL_QUEUE_MAX */
};

/*
 * Listens on |dir|/murmer.sock on |loop| (running on this thread, or not
 * yet running).  The caller holds |dir|'s lock, so a socket file already
 * there is stale: the new one replaces it atomically (bound under a
 * temporary name, chmod 0600, renamed).  |lim| may be NULL.  0, or an
 * error with one log line (the node runs on without the socket).
 */
int mm__local_listen(struct mm_local **out, uv_loop_t *loop, const char *dir,
                     const struct mm_local_limits *lim,
                     const struct mm_local_ops *ops);
/* The socket's path. */
const char *mm__local_path(const struct mm_local *l);
/* |p| if it is one of |l|'s open connections, else NULL. */
struct mm_lconn *mm__local_conn(const struct mm_local *l, const void *p);
/*
 * Queues one frame (|len| bytes, copied) to |lc|: 0, MM_EOVERLOADED when
 * it would take the bytes queued past the limit (nothing queued), or
 * MM_ECLOSED when |lc| is closing.
 */
int mm__local_send(struct mm_lconn *lc, const uint8_t *frame, size_t len);
/* Bytes queued to |lc| that its peer has not read yet. */
size_t mm__local_queued(const struct mm_lconn *lc);
/* The peer's uid and pid (SO_PEERCRED at accept). */
void mm__local_peer(const struct mm_lconn *lc, unsigned *uid, int *pid);
/* Closes |lc| after what is queued is dropped; ops->gone follows from the
 * loop. */
void mm__local_conn_close(struct mm_lconn *lc);
/*
 * Stops listening: removes the socket file and closes every connection
 * (each gets ops->gone from the loop, which must run on).  NULL is fine.
 */
void mm__local_close(struct mm_local *l);
/* Frees |l| after mm__local_close() once the loop has run (or stopped for
 * good).  NULL is fine. */
void mm__local_free(struct mm_local *l);

#endif /* MM_LOCAL_H */
