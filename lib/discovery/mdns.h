/*
 * mdns.h — zero-configuration LAN discovery (docs/design.md, mDNS discovery)
 * through the system's avahi-daemon (avahi-client), on a thread of its own with
 * its own poll loop, so that a hung daemon can never block shard 0.  Results
 * reach shard 0 through uv_async_send and are handed to the discovered callback
 * of struct mm_mdns_deps.
 *
 * Publishes `_murmer._udp` under the node's name with TXT id=, ck= (the key
 * tag of mm__keyring_mdns_tag), v=; browses and resolves the same type and
 * reports nodes whose ck= matches ours (never ourselves).
 */
#ifndef MM_MDNS_H
#define MM_MDNS_H

#include "../common.h"

struct mm_mdns;
struct mm_keyring;

/* What discovery uses, all borrowed for its life. */
struct mm_mdns_deps {
    mm_node *node;               /* name, id, advertised address */
    const struct mm_keyring *kr; /* the key tag published and matched */
    uv_loop_t *loop;             /* shard 0's */
    /* A node with our key at "ip:port" (|id| may be NULL); shard 0. */
    void (*discovered)(void *data, const char *hostport, const uint8_t *id);
    void *data;
};

/* Shard 0 only.  0, or UV_ENOMEM; an absent daemon is not an error (one
 * warning, retried in the background). */
int mm__mdns_new(struct mm_mdns **out, const struct mm_mdns_deps *deps);
void mm__mdns_start(struct mm_mdns *m);
/* Withdraws the service (leave) and stops the thread; closes handles.
 * Waits for the thread at most MM_MDNS_CLOSE_MS (a hung daemon is left
 * behind on its detached thread). */
void mm__mdns_close(struct mm_mdns *m);
void mm__mdns_free(struct mm_mdns *m);

/*
 * For clients with no seed: browses once for up to |timeout_ms| for a
 * node whose ck= matches |kr|, writing "ip:port" to |out|.  0 or
 * MM_ENOTFOUND / MM_EUNREACHABLE (no daemon).  Blocking; any thread.
 */
int mm__mdns_find_seed(const struct mm_keyring *kr, uint32_t timeout_ms,
                       char *out, size_t outlen);

/* ---- TXT record parsing (pure; exposed for tests) ---------------------------
 */

#define MM_MDNS_TYPE "_murmer._udp"
#define MM_MDNS_VERSION 1

struct mm_mdns_txt {
    int has_id, has_ck, bad_v;
    uint8_t id[MM_NODE_ID_LEN];
    char ck[17];
};

/* Folds one TXT item (|len| bytes, not NUL-terminated, peer input) into
 * |t|: id=<32 hex>, ck=<16 hex>, v=<n>; anything else is ignored. */
void mm__mdns_txt_item(struct mm_mdns_txt *t, const uint8_t *item, size_t len);
/* 1 when |t| is a murmer node of our cluster (ck= equals |tag|, v= absent
 * or 1) and not |self| (may be NULL); else 0. */
int mm__mdns_txt_match(const struct mm_mdns_txt *t, const char *tag,
                       const uint8_t *self);

#endif /* MM_MDNS_H */
