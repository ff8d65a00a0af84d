/*
 * ckey.h — the cluster key and the keyring (docs/design.md, The cluster key and
 * the keyring).
 *
 * A cluster key is 32 random bytes, stored base64 plus a newline.  A client
 * key (enum mm_key_kind) is derived from one and stored with a prefix.  Several
 * keys (one per line of a key file) make a keyring: the first is the
 * primary, used to send; all are accepted when receiving, which is how keys
 * are rotated.  Every use derives its own key with HKDF and a label
 * ("murmer gossip", "murmer auth", "murmer mdns").
 */
#ifndef MM_CKEY_H
#define MM_CKEY_H

#include <stddef.h>
#include <stdint.h>

#define MM_CKEY_LEN 32
#define MM_KEYRING_MAX 8

/* The HKDF labels, one per use of the cluster key; every derivation
 * goes through mm__hkdf_label (crypto.h) with one of them. */
#define MM_LABEL_GOSSIP "murmer gossip" /* membership/seal.c */
#define MM_LABEL_AUTH "murmer auth"     /* transport: the auth exchange */
#define MM_LABEL_MDNS "murmer mdns"     /* discovery: the TXT tag */
#define MM_LABEL_KEYID "murmer keyid"   /* key ids */
/* Client keys: client = HKDF(ck, MM_LABEL_CLIENT), read-only =
 * HKDF(client, MM_LABEL_READONLY) (docs/wire.md, Auth). */
#define MM_LABEL_CLIENT "murmer client key"
#define MM_LABEL_READONLY "murmer read-only key"

/*
 * What a key lets its holder do, from most to least.  A key file line
 * "client:<base64>" or "read-only:<base64>" holds a client key; a bare
 * base64 line a cluster key.  Every key of one file is of one kind.
 */
enum mm_key_kind {
    MM_KEY_CLUSTER = 0,  /* a member's: join, gossip, every request */
    MM_KEY_CLIENT = 1,   /* a client's: members, lookup, watch, oplog, send */
    MM_KEY_READONLY = 2, /* as a client's, without send and force-leave */
};
#define MM_KEY_KINDS 3

/* Plain value; the caller provides storage.  Wipe with _release. */
struct mm_keyring {
    size_t n;                                  /* keys held, >= 1 once loaded */
    uint8_t keys[MM_KEYRING_MAX][MM_CKEY_LEN]; /* [0] is the primary */
    uint32_t ids[MM_KEYRING_MAX];              /* key ids, same order */
    uint8_t kinds[MM_KEYRING_MAX];             /* enum mm_key_kind, all equal */
    int dev;                                   /* 1: the well-known dev key */
    char source[64];                           /* "file", "env", "dev"... */
};

/*
 * Loads the keyring from, in order: |path| (--cluster-key FILE) when not
 * NULL, $MURMER_CLUSTER_KEY_FILE, $MURMER_CLUSTER_KEY (base64 value);
 * none of them → dev mode (a fixed, well-known key, kr->dev = 1).  Logs
 * nothing: |err| (|errlen| bytes, may be NULL) gets one line of text, the
 * refusal or, in dev mode, the warning to show; "" otherwise.  0, MM_EKEY
 * (unreadable or loose-permission file, malformed key) or UV_ENOMEM.
 */
int mm__keyring_load(struct mm_keyring *kr, const char *path, char *err,
                     size_t errlen);
/* One source only: a key file (one base64 key per line, mode 0600 or
 * stricter); as mm__keyring_load. */
int mm__keyring_load_file(struct mm_keyring *kr, const char *path, char *err,
                          size_t errlen);
/* One source only: a base64 value (a single key).  0 or MM_EKEY. */
int mm__keyring_load_b64(struct mm_keyring *kr, const char *b64);
/* The dev keyring: SHA-256("murmer dev key"). */
void mm__keyring_load_dev(struct mm_keyring *kr);
/* Wipes the key material. */
void mm__keyring_release(struct mm_keyring *kr);

/*
 * HKDF-SHA256(ck_idx, info = |label| ‖ |ctx|) into |out| (|outlen| bytes):
 * mm__hkdf_label (crypto.h) with key |idx|.  0, or MM_EINVAL (bad index or
 * lengths).
 */
int mm__keyring_derive(const struct mm_keyring *kr, size_t idx,
                       const char *label, const void *ctx, size_t ctxlen,
                       uint8_t *out, size_t outlen);
/* The index of the key with id |id|, or -1. */
int mm__keyring_find(const struct mm_keyring *kr, uint32_t id);
/* The key id of a raw key: u32 LE of the first 4 bytes of
 * HKDF(ck, MM_LABEL_KEYID). */
uint32_t mm__ckey_id(const uint8_t key[MM_CKEY_LEN]);
/* The kind of the keyring's keys (enum mm_key_kind). */
int mm__keyring_kind(const struct mm_keyring *kr);
/* "cluster", "client" or "read-only". */
const char *mm__key_kind_name(int kind);
/*
 * The key of kind |to| derived from |key| of kind |from| (to >= from):
 * client = HKDF(cluster, MM_LABEL_CLIENT), read-only = HKDF(client,
 * MM_LABEL_READONLY); to == from copies.  0 or MM_EINVAL (to < from).
 */
int mm__ckey_derive(uint8_t out[MM_CKEY_LEN], const uint8_t key[MM_CKEY_LEN],
                    int from, int to);
/* The mDNS TXT tag of the primary key (a client key has none: ""): first 8
 * bytes of HKDF(ck, "murmer mdns") as 16 lowercase hex chars plus NUL. */
void mm__keyring_mdns_tag(const struct mm_keyring *kr, char out[17]);

/* ---- rotation and persistence (docs/design.md, Key rotation) ------------ */

/* The file a node keeps its keyring in, under its data dir. */
#define MM_KEYRING_FILE "keyring"
#define MM_KEY_FP_LEN 16 /* hex chars of a fingerprint */

/* A key's fingerprint, safe to show: the first 8 bytes of HKDF(ck,
 * MM_LABEL_KEYID) as 16 lowercase hex chars plus NUL (its first 4 bytes
 * are the key id). */
void mm__ckey_fingerprint(const uint8_t key[MM_CKEY_LEN],
                          char out[MM_KEY_FP_LEN + 1]);
/* The rotation steps, on a cluster-key keyring.  install: appends |key|
 * (0 when already held; UV_ENOBUFS past MM_KEYRING_MAX).  use: moves an
 * installed |key| first (MM_ENOTFOUND when not installed).  remove: drops
 * a non-primary |key| (MM_EINVAL for the primary, MM_ENOTFOUND when not
 * held).  0 on success; |*changed| 1 when the ring changed. */
int mm__keyring_install(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                        int *changed);
int mm__keyring_use(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                    int *changed);
int mm__keyring_remove(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                       int *changed);
/*
 * Writes |kr| (cluster keys) to |dir|/keyring atomically: a temporary file
 * (mode 0600) written and fsynced, renamed over the old one, the directory
 * fsynced.  0 or a negative errno; |err| gets the text.
 */
int mm__keyring_save(const struct mm_keyring *kr, const char *dir, char *err,
                     size_t errlen);
/*
 * Loads |dir|/keyring into |kr| (source "data dir").  0, MM_ENOTFOUND (no
 * file: |kr| untouched) or MM_EKEY (unreadable, loose mode, malformed or
 * not cluster keys; |err| says which and names the file).
 */
int mm__keyring_load_saved(struct mm_keyring *kr, const char *dir, char *err,
                           size_t errlen);

#endif /* MM_CKEY_H */
