/*
 * local_client.h — the client side of the local control socket (local.h),
 * for the murmer front binary (cli/front/main.c) only: it implements the
 * client-session API that client_cmds.c builds on (mm_client_connect,
 * mm__client_request, ...) over DATA_DIR/murmer.sock, with no TLS or QUIC
 * library.  It is not part of libmurmer (the Makefile keeps it out): the
 * library's client sessions are client.c's.
 */
#ifndef MM_LOCAL_CLIENT_H
#define MM_LOCAL_CLIENT_H

/*
 * Connects to |dir|/murmer.sock: the descriptor, or -errno (-ENOENT: no
 * socket there; -ECONNREFUSED: a stale one; -EACCES: another user's).
 */
int mm__lclient_dial(const char *dir);

/*
 * The socket mm_client_connect() uses: |fd| already connected to |dir|'s
 * (or, when |fd| < 0, the reason -errno it could not be, reported by
 * mm_client_connect()).
 */
void mm__lclient_use(const char *dir, int fd);

/* Called by a call the local socket does not serve (streams: --follow,
 * watch); it is expected to hand the command over to the full CLI and
 * not return.  When it returns, the call fails with MM_EINVAL. */
extern void (*mm__lclient_fallback)(void);

#endif /* MM_LOCAL_CLIENT_H */
