/*
 * session.h — the seed side of client sessions (docs/design.md, Client
 * sessions): CTRL_REQ frames on a client's control stream (members, timings,
 * lookup, watch, oplog, force-leave, keys), answered with CTRL_RESP and, for
 * subscriptions, CTRL_EVENT frames.  Calls from clients arrive as INVOKE frames
 * and are served by net.c like any other.  Bodies are JSON (docs/wire.md).
 * Shard 0 only.
 */
#ifndef MM_SESSION_H
#define MM_SESSION_H

#include "runtime.h"

struct mm_session;
struct mm_net;
struct mm_membership;

/* Serves the node |n|: registers its frame and connection hooks with |net|
 * and answers member queries from |m|. */
int mm__session_new(struct mm_session **out, mm_node *n, struct mm_net *net,
                    struct mm_membership *m);
/* The node's keyring (|kr|, changed in place by `murmer keys`, shard 0)
 * and the data dir it is saved in; without it KEYS requests are refused. */
struct mm_keyring;
void mm__session_set_keyring(struct mm_session *s, struct mm_keyring *kr,
                             const char *data_dir);
/* On shard 0 once its loop runs: listen on |data_dir|/murmer.sock, the
 * local control socket (local.h) that serves the same requests to the
 * node's user and root on this host.  Without it (an error is logged) the
 * node runs on. */
void mm__session_local_start(struct mm_session *s, const char *data_dir);
/* Shutdown, at the start of phase B: end every subscription. */
void mm__session_stop(struct mm_session *s);
void mm__session_free(struct mm_session *s);

#endif /* MM_SESSION_H */
