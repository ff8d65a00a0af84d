/*
 * identity.h — a node's (or the CLI's) persistent identity (docs/design.md,
 * Identity).
 *
 * The data dir holds key.pem (Ed25519, unencrypted PKCS#8 PEM, mode 0600),
 * cert.pem (a self-signed X.509 certificate for that key, made by GnuTLS;
 * those OpenSSL made load unchanged), generation (a decimal u64,
 * bumped on every start) and lock (held with flock while the identity is
 * loaded, so two nodes never share an identity).
 *
 * Node id = first 16 bytes of SHA-256 over the raw 32-byte Ed25519 public
 * key; its text form is 32 lowercase hex chars.
 */
#ifndef MM_IDENTITY_H
#define MM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define MM_ID_LEN 16
#define MM_ED25519_PUB_LEN 32

struct mm_identity {
    uint8_t id[MM_ID_LEN];
    char hex[2 * MM_ID_LEN + 1];
    uint8_t pub[MM_ED25519_PUB_LEN]; /* raw Ed25519 public key */
    uint64_t generation;
    char *key_pem; /* owned, NUL-terminated PKCS#8 PEM */
    /* The raw Ed25519 private key (its 32-byte seed), when has_seed
     * (always after mm__identity_load): signing keys are built from it
     * (mm__sign_key_from_seed) without parsing key_pem again. */
    uint8_t seed[MM_ED25519_PUB_LEN];
    int has_seed;
    char *cert_pem; /* owned, NUL-terminated X.509 PEM */
    int lock_fd;    /* flock'ed lock file; -1 when none */
    char *dir;      /* owned copy of the data dir path */
};

/*
 * Loads (or on first use creates) the identity in |dir|, creating the dir
 * and its parents with mode 0700.  With |bump| the generation is
 * incremented and persisted (atomically, through rename) before returning.
 * Returns 0, MM_EEXISTS ("data dir in use by another node": the lock is
 * held), MM_EKEY (key.pem has group/other permission bits, or does not
 * parse), or a UV_E* errno.  On error |id| holds nothing to release.
 */
int mm__identity_load(struct mm_identity *id, const char *dir, int bump);
/*
 * Reads the identity in |dir| for a CLI process: without the data-dir lock
 * (many CLI processes share one identity) and without parsing the key
 * (start-up cost); the generation is not read (0).  Only on first use, or when
 * cert.pem does not hold an Ed25519 key, is it made (or repaired) through
 * mm__identity_load, whose lock is let go at once.  Logs nothing: 0, or
 * MM_EKEY with one line of text in |err| (|errlen| bytes; empty when the
 * reason is only the error code).
 */
int mm__identity_read(struct mm_identity *id, const char *dir, char *err,
                      size_t errlen);
/* Releases the lock and frees the PEMs.  Safe on a zeroed identity. */
void mm__identity_release(struct mm_identity *id);

/*
 * The default data dir: $XDG_STATE_HOME/murmer/<name> when XDG_STATE_HOME
 * is set, else /var/lib/murmer/<name> for root, else
 * $HOME/.local/state/murmer/<name>.  |cli| selects "murmer-cli" instead of
 * "murmer"; |name| NULL or "" omits the last component.  0, UV_ENOBUFS
 * (|len| too small) or UV_ENOENT (no HOME).
 */
int mm__identity_default_dir(char *buf, size_t len, const char *name, int cli);

/* Node id of a raw Ed25519 public key. */
void mm__identity_id_of(uint8_t id[MM_ID_LEN],
                        const uint8_t pub[MM_ED25519_PUB_LEN]);

#endif /* MM_IDENTITY_H */
