/* identity.c — node key, self-signed certificate, generation, data-dir lock. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/eddsa.h>

#include "common.h"
#include "crypto.h"
#include "transport/certkey.h"

#define IDENTITY_FILE_MAX (1024 * 1024)

void
mm__identity_id_of(uint8_t id[MM_ID_LEN], const uint8_t pub[MM_ED25519_PUB_LEN])
{
    uint8_t h[MM_SHA256_LEN];
    mm__sha256(h, pub, MM_ED25519_PUB_LEN);
    memcpy(id, h, MM_ID_LEN);
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int
identity_mkdirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path)) return UV_EINVAL;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            int err = -errno;
            MM_LOG(MM_LOG_ERR, "identity", "cannot create %s: %s", path,
                   strerror(errno));
            return err;
        }
        path[i] = c;
    }
    return 0;
}

static int
identity_path(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= len ? UV_ENAMETOOLONG : 0;
}

/* Reads a whole small file; *out is NUL-terminated, owned by the caller. */
static int
identity_read_file(const char *path, char **out)
{
    return mm__read_small_file(path, IDENTITY_FILE_MAX, out, NULL, NULL);
}

/* 0 when key.pem's |st| is private to its owner; else MM_EKEY and why. */
static int
identity_key_mode(const char *path, const struct stat *st, char *err,
                  size_t errlen)
{
    if ((st->st_mode & 077) == 0) return 0;
    snprintf(err, errlen,
             "key file %s is accessible by group or others (mode %03o); "
             "refusing it (chmod 600)",
             path, (unsigned)(st->st_mode & 0777));
    return MM_EKEY;
}

/*
 * Makes a rename in the directory of |path| durable: fsync of the
 * directory.  A file system that cannot sync a directory (EINVAL) has
 * nothing more to do.
 */
static int
identity_sync_dir(const char *path)
{
    char dir[4200];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof(dir)) return UV_ENAMETOOLONG;
    if (slash == path) n = 1; /* "/file" */
    if (n)
        memcpy(dir, path, n);
    else
        dir[n++] = '.';
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) rc = -errno;
    close(fd);
    return rc;
}

/* Writes |data| to |path| atomically: a temp file, fsync, rename, and
 * with |sync_dir| an fsync of the directory (the rename itself is durable
 * once this returns 0; without it, once the caller synced the directory).
 */
static int
identity_write_atomic(const char *path, const char *data, size_t len,
                      mode_t mode, int sync_dir)
{
    char tmp[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) return UV_ENAMETOOLONG;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    int rc = 0;
    if (fchmod(fd, mode) != 0) rc = -errno;
    while (rc == 0 && len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        data += w;
        len -= (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc != 0) unlink(tmp);
    if (rc == 0 && sync_dir) rc = identity_sync_dir(path);
    return rc;
}

/* A GnuTLS copy of the identity's key pair, for PEM output and signing. */
static int
identity_gnutls_key(const struct mm_identity *id, gnutls_x509_privkey_t *out)
{
    gnutls_datum_t x = {(unsigned char *)id->pub, sizeof(id->pub)};
    gnutls_datum_t k = {(unsigned char *)id->seed, sizeof(id->seed)};
    if (gnutls_x509_privkey_init(out) < 0) return UV_ENOMEM;
    if (gnutls_x509_privkey_import_ecc_raw(*out, GNUTLS_ECC_CURVE_ED25519, &x,
                                           NULL, &k) < 0) {
        gnutls_x509_privkey_deinit(*out);
        *out = NULL;
        return MM_EKEY;
    }
    return 0;
}

/* A copy of GnuTLS's output as our NUL-terminated string; frees |d|. */
static char *
identity_datum_string(gnutls_datum_t *d)
{
    char *s = d->data ? mm__strndup((const char *)d->data, d->size) : NULL;
    if (d->data) {
        mm__wipe(d->data, d->size);
        gnutls_free(d->data);
    }
    d->data = NULL;
    return s;
}

/*
 * The self-signed certificate: v3, a random positive 64-bit serial,
 * subject = issuer = CN "murmer <node id hex>", valid from a day ago for
 * 36500 days, basicConstraints CA:FALSE and keyUsage digitalSignature
 * (both critical), extKeyUsage serverAuth and clientAuth.  Peers pin only
 * its Ed25519 key (transport/certkey.h); the rest is for other readers.
 */
static char *
identity_make_cert(gnutls_x509_privkey_t xkey, const char *hex)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_privkey_t key = NULL;
    gnutls_datum_t pem = {NULL, 0};
    uint8_t serial[8];
    char cn[64];
    time_t now = time(NULL);
    if (mm__random_bytes(serial, sizeof(serial)) != 0) return NULL;
    serial[0] = (uint8_t)(0x40 | (serial[0] & 0x3f)); /* positive, minimal */
    /* The CN as a DER UTF8String (tag 12), the type it always had. */
    int n = snprintf(cn + 2, sizeof(cn) - 2, "murmer %s", hex);
    if (n < 0 || (size_t)n >= sizeof(cn) - 2) return NULL; /* short form */
    cn[0] = 12;
    cn[1] = (char)n;
    n += 2;
    int ok =
        gnutls_x509_crt_init(&crt) >= 0 && gnutls_privkey_init(&key) >= 0 &&
        gnutls_privkey_import_x509(key, xkey, 0) >= 0 &&
        gnutls_x509_crt_set_version(crt, 3) >= 0 &&
        gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) >= 0 &&
        gnutls_x509_crt_set_activation_time(crt, now - 86400) >= 0 &&
        gnutls_x509_crt_set_expiration_time(crt, now + (time_t)36500 * 86400) >=
            0 &&
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, cn,
                                      (unsigned)n) >= 0 &&
        gnutls_x509_crt_set_key(crt, xkey) >= 0 &&
        gnutls_x509_crt_set_basic_constraints(crt, 0, -1) >= 0 &&
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) >= 0 &&
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) >=
            0 &&
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0) >=
            0 &&
        /* Ed25519 hashes inside the signature: no separate digest. */
        gnutls_x509_crt_privkey_sign(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0) >=
            0 &&
        gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) >= 0;
    char *out = ok ? identity_datum_string(&pem) : NULL;
    if (pem.data) gnutls_free(pem.data);
    if (key) gnutls_privkey_deinit(key);
    if (crt) gnutls_x509_crt_deinit(crt);
    return out;
}

/* Loads key.pem, or makes and stores a new key; fills key_pem, seed and
 * pub. */
static int
identity_key(struct mm_identity *id)
{
    char path[4096];
    int rc = identity_path(path, sizeof(path), id->dir, "key.pem");
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) == 0) {
        char err[4200];
        if (identity_key_mode(path, &st, err, sizeof(err)) != 0) {
            MM_LOG(MM_LOG_ERR, "identity", "%s", err);
            return MM_EKEY;
        }
        if ((rc = identity_read_file(path, &id->key_pem)) != 0) return rc;
        if (mm__ed25519_seed_from_pem(id->seed, id->key_pem) != 0) {
            MM_LOG(MM_LOG_ERR, "identity", "%s: not an Ed25519 private key",
                   path);
            return MM_EKEY;
        }
        ed25519_sha512_public_key(id->pub, id->seed);
    } else if (errno == ENOENT) {
        if (mm__random_bytes(id->seed, sizeof(id->seed)) != 0) return UV_EIO;
        ed25519_sha512_public_key(id->pub, id->seed);
        gnutls_x509_privkey_t xkey;
        if ((rc = identity_gnutls_key(id, &xkey)) != 0) return rc;
        gnutls_datum_t pem = {NULL, 0};
        /* Unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), as before. */
        if (gnutls_x509_privkey_export2_pkcs8(xkey, GNUTLS_X509_FMT_PEM, NULL,
                                              GNUTLS_PKCS_PLAIN, &pem) >= 0)
            id->key_pem = identity_datum_string(&pem);
        gnutls_x509_privkey_deinit(xkey);
        if (id->key_pem == NULL) return UV_ENOMEM;
        /* The directory is synced once the certificate is stored too
         * (identity_cert): a new key always comes with a new certificate,
         * and a certificate left without its key is made again. */
        rc = identity_write_atomic(path, id->key_pem, strlen(id->key_pem), 0600,
                                   0);
        if (rc) {
            MM_LOG(MM_LOG_ERR, "identity", "cannot write %s: %s", path,
                   uv_strerror(rc));
            return rc;
        }
        MM_LOG(MM_LOG_INFO, "identity", "new identity key in %s", path);
    } else {
        return -errno;
    }
    id->has_seed = 1;
    return 0;
}

static int identity_cert_pubkey(const char *pem,
                                uint8_t pub[MM_ED25519_PUB_LEN]);

/* Loads cert.pem if it certifies the key, else makes and stores one. */
static int
identity_cert(struct mm_identity *id)
{
    char path[4096];
    int rc = identity_path(path, sizeof(path), id->dir, "cert.pem");
    if (rc) return rc;
    if (identity_read_file(path, &id->cert_pem) == 0) {
        uint8_t pub[MM_ED25519_PUB_LEN];
        if (identity_cert_pubkey(id->cert_pem, pub) == 0 &&
            memcmp(pub, id->pub, sizeof(pub)) == 0)
            return 0;
        MM_LOG(MM_LOG_WARN, "identity",
               "%s does not match the key; making a new certificate", path);
        mm__free(id->cert_pem);
        id->cert_pem = NULL;
    }
    gnutls_x509_privkey_t xkey;
    if ((rc = identity_gnutls_key(id, &xkey)) != 0) return rc;
    id->cert_pem = identity_make_cert(xkey, id->hex);
    gnutls_x509_privkey_deinit(xkey);
    if (id->cert_pem == NULL) return UV_EIO;
    return identity_write_atomic(path, id->cert_pem, strlen(id->cert_pem), 0644,
                                 1);
}

/*
 * Parses the generation file's text: decimal digits, at most one newline
 * after them, nothing else, no overflow.  0 or MM_EDECODE with the reason.
 */
static int
identity_generation_parse(const char *text, uint64_t *out, const char **why)
{
    uint64_t v = 0;
    const char *p = text;
    if (*p < '0' || *p > '9') {
        *why = *p ? "not a decimal number" : "empty";
        return MM_EDECODE;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *why = "out of range";
            return MM_EDECODE;
        }
        v = v * 10 + d;
    }
    if (*p == '\n') p++;
    if (*p != '\0') {
        *why = "bytes after the number";
        return MM_EDECODE;
    }
    *out = v;
    return 0;
}

/*
 * Reads the generation and, with |bump|, stores the next one before the
 * node uses it.  A data dir never goes backwards: a generation file that is
 * corrupt (MM_EDECODE), cannot be read (its errno), or is missing while
 * the identity already existed (|key_existed|; MM_EDECODE) refuses the
 * start with one line that names the file, rather than restarting at a
 * generation that peers may already have seen and would ignore.  Missing on
 * a fresh data dir: generation 1.
 */
static int
identity_generation(struct mm_identity *id, int bump, int key_existed)
{
    char path[4096];
    int rc = identity_path(path, sizeof(path), id->dir, "generation");
    if (rc) return rc;
    static const char fix[] =
        "refusing to start at a generation peers may already have seen "
        "(write a larger one into it, e.g. the output of date +%s)";
    char *text = NULL;
    uint64_t gen = 0;
    size_t tlen = 0;
    rc = mm__read_small_file(path, IDENTITY_FILE_MAX, &text, &tlen, NULL);
    if (rc == 0) {
        const char *why = "a NUL byte";
        rc = strlen(text) == tlen ? identity_generation_parse(text, &gen, &why)
                                  : MM_EDECODE;
        mm__free(text);
        if (rc == 0 && bump && gen == UINT64_MAX) {
            why = "at its largest value";
            rc = MM_EDECODE;
        }
        if (rc) {
            MM_LOG(MM_LOG_ERR, "identity",
                   "generation file %s is corrupt (%s); %s", path, why, fix);
            return rc;
        }
    } else if (rc == UV_EFBIG) {
        MM_LOG(MM_LOG_ERR, "identity",
               "generation file %s is corrupt (too large); %s", path, fix);
        return MM_EDECODE;
    } else if (rc == UV_ENOENT) {
        if (bump && key_existed) {
            MM_LOG(MM_LOG_ERR, "identity",
                   "generation file %s is missing but the identity in %s "
                   "exists; %s",
                   path, id->dir, fix);
            return MM_EDECODE;
        }
    } else {
        MM_LOG(MM_LOG_ERR, "identity",
               "generation file %s cannot be read (%s); %s", path,
               uv_strerror(rc), fix);
        return rc;
    }
    if (bump) {
        char buf[32];
        gen++;
        int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", gen);
        rc = identity_write_atomic(path, buf, (size_t)n, 0600, 1);
        if (rc) {
            MM_LOG(MM_LOG_ERR, "identity", "cannot write %s: %s", path,
                   uv_strerror(rc));
            return rc;
        }
    }
    id->generation = gen;
    return 0;
}

int
mm__identity_load(struct mm_identity *id, const char *dir, int bump)
{
    char path[4096];
    int rc;

    memset(id, 0, sizeof(*id));
    id->lock_fd = -1;
    if ((rc = identity_mkdirs(dir)) != 0) return rc;
    if ((id->dir = mm__strdup(dir)) == NULL) return UV_ENOMEM;
    if ((rc = identity_path(path, sizeof(path), dir, "lock")) != 0) goto fail;
    id->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (id->lock_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (flock(id->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? MM_EEXISTS : -errno;
        if (rc == MM_EEXISTS)
            MM_LOG(MM_LOG_ERR, "identity", "data dir %s in use by another node",
                   dir);
        goto fail;
    }
    /* The generation first: stored before a new key is, so that a data
     * dir with a key always has its generation file too. */
    if ((rc = identity_path(path, sizeof(path), dir, "key.pem")) != 0)
        goto fail;
    struct stat kst;
    int key_existed = lstat(path, &kst) == 0 || errno != ENOENT;
    if ((rc = identity_generation(id, bump, key_existed)) != 0) goto fail;
    if ((rc = identity_key(id)) != 0) goto fail;
    mm__identity_id_of(id->id, id->pub);
    mm__hex(id->hex, id->id, MM_ID_LEN);
    if ((rc = identity_cert(id)) != 0) goto fail;
    return 0;
fail:
    mm__identity_release(id);
    return rc;
}

/* The raw Ed25519 key of a PEM certificate, by the strict DER walker. */
static int
identity_cert_pubkey(const char *pem, uint8_t pub[MM_ED25519_PUB_LEN])
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    const char *p = strstr(pem, begin);
    const char *end = p ? strstr(p, "-----END CERTIFICATE-----") : NULL;
    if (!p || !end) return MM_EKEY;
    p += sizeof(begin) - 1;
    size_t n = (size_t)(end - p);
    uint8_t *der = mm__malloc(n ? n : 1);
    if (!der) return UV_ENOMEM;
    int dl = mm__base64_decode(der, n, p, n);
    int rc =
        dl > 0 && mm__cert_ed25519_key(der, (size_t)dl, pub) == 0 ? 0 : MM_EKEY;
    mm__free(der);
    return rc;
}

/* mm__identity_read's look at the files; UV_ENOENT: make it first. */
static int
identity_read_files(struct mm_identity *id, const char *dir, char *err,
                    size_t errlen)
{
    char path[4096];
    struct stat st;
    memset(id, 0, sizeof(*id));
    id->lock_fd = -1;
    int rc = identity_path(path, sizeof(path), dir, "key.pem");
    if (rc) return rc;
    if (stat(path, &st) != 0) return errno == ENOENT ? UV_ENOENT : -errno;
    if (identity_key_mode(path, &st, err, errlen) != 0) return MM_EKEY;
    if ((rc = identity_read_file(path, &id->key_pem)) != 0) goto fail;
    if ((rc = identity_path(path, sizeof(path), dir, "cert.pem")) != 0)
        goto fail;
    rc = identity_read_file(path, &id->cert_pem);
    if (rc == UV_EFBIG ||
        (rc == 0 && identity_cert_pubkey(id->cert_pem, id->pub) != 0))
        rc = UV_ENOENT; /* let mm__identity_load repair it */
    if (rc) goto fail;
    if (!(id->dir = mm__strdup(dir))) {
        rc = UV_ENOMEM;
        goto fail;
    }
    mm__identity_id_of(id->id, id->pub);
    mm__hex(id->hex, id->id, MM_ID_LEN);
    return 0;
fail:
    mm__identity_release(id);
    return rc;
}

int
mm__identity_read(struct mm_identity *id, const char *dir, char *err,
                  size_t errlen)
{
    snprintf(err, errlen, "%s", "");
    for (int tries = 0; tries < 100; tries++) {
        int rc = identity_read_files(id, dir, err, errlen);
        if (rc != UV_ENOENT) return rc == 0 || rc == MM_EKEY ? rc : MM_EKEY;
        /* First use: make it (under the lock), then let the lock go. */
        rc = mm__identity_load(id, dir, 0);
        if (rc == 0) {
            close(id->lock_fd);
            id->lock_fd = -1;
            return 0;
        }
        if (rc != MM_EEXISTS) {
            snprintf(err, errlen, "cannot make the client identity in %s: %s",
                     dir, mm_strerror(rc));
            return MM_EKEY;
        }
        uv_sleep(10); /* another murmer is making it right now */
    }
    snprintf(err, errlen, "client identity in %s is locked", dir);
    return MM_EKEY;
}

void
mm__identity_release(struct mm_identity *id)
{
    if (id->key_pem) {
        memset(id->key_pem, 0, strlen(id->key_pem));
        mm__free(id->key_pem);
    }
    mm__wipe(id->seed, sizeof(id->seed));
    mm__free(id->cert_pem);
    mm__free(id->dir);
    if (id->lock_fd >= 0) close(id->lock_fd); /* drops the flock */
    memset(id, 0, sizeof(*id));
    id->lock_fd = -1;
}

int
mm__identity_default_dir(char *buf, size_t len, const char *name, int cli)
{
    const char *app = cli ? "murmer-cli" : "murmer";
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *sep = name && *name ? "/" : "";
    const char *nm = name ? name : "";
    int n;
    if (xdg && *xdg) {
        n = snprintf(buf, len, "%s/%s%s%s", xdg, app, sep, nm);
    } else if (geteuid() == 0) {
        n = snprintf(buf, len, "/var/lib/%s%s%s", app, sep, nm);
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || *home == '\0') return UV_ENOENT;
        n = snprintf(buf, len, "%s/.local/state/%s%s%s", home, app, sep, nm);
    }
    return n < 0 || (size_t)n >= len ? UV_ENOBUFS : 0;
}
