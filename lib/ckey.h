/*
 * ckey.h — the cluster key and the keyring (docs/design.md, The cluster key and
 * the keyring).
 *
 * A cluster key is 32 random bytes, stored base64 plus a newline.  Several
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

/* Plain value; the caller provides storage.  Wipe with _release. */
struct mm_keyring {
    size_t n;                                  /* keys held, >= 1 once loaded */
    uint8_t keys[MM_KEYRING_MAX][MM_CKEY_LEN]; /* [0] is the primary */
    uint32_t ids[MM_KEYRING_MAX];              /* key ids, same order */
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
/* The mDNS TXT tag of the primary key: first 8 bytes of
 * HKDF(ck, "murmer mdns") as 16 lowercase hex chars plus NUL. */
void mm__keyring_mdns_tag(const struct mm_keyring *kr, char out[17]);

#endif /* MM_CKEY_H */
