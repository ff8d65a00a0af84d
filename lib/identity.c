/* identity.c — node key, self-signed certificate, generation, data-dir lock. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

/* PEM text of |pkey| (private) or |x| (certificate), NUL-terminated. */
static char *
identity_bio_string(BIO *bio)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0) return NULL;
    return mm__strndup(p, (size_t)n);
}

static X509 *
identity_make_cert(EVP_PKEY *pkey, const char *hex)
{
    X509 *x = X509_new();
    if (x == NULL) return NULL;
    uint64_t serial = 0;
    mm__random_bytes(&serial, sizeof(serial));
    serial >>= 2; /* positive and small enough for a long */
    char cn[64];
    snprintf(cn, sizeof(cn), "murmer %s", hex);
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, 2) &&
             ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
             X509_time_adj_ex(X509_getm_notAfter(x), 36500, 0, NULL) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_issuer_name(x, name) && X509_set_pubkey(x, pkey);
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        static const struct {
            int nid;
            const char *val;
        } exts[] = {
            {NID_basic_constraints, "critical,CA:FALSE"},
            {NID_key_usage, "critical,digitalSignature"},
            {NID_ext_key_usage, "serverAuth,clientAuth"},
        };
        for (size_t i = 0; ok && i < MM_ARRAY_SIZE(exts); i++) {
            X509_EXTENSION *e =
                X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].val);
            ok = e != NULL && X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
        }
    }
    /* Ed25519 signs without a separate digest: md = NULL. */
    if (!ok || X509_sign(x, pkey, NULL) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Loads key.pem, or makes and stores a new key; fills key_pem and pub. */
static int
identity_key(struct mm_identity *id, EVP_PKEY **out)
{
    char path[4096];
    int rc = identity_path(path, sizeof(path), id->dir, "key.pem");
    if (rc) return rc;
    struct stat st;
    EVP_PKEY *pkey = NULL;
    if (stat(path, &st) == 0) {
        char err[4200];
        if (identity_key_mode(path, &st, err, sizeof(err)) != 0) {
            MM_LOG(MM_LOG_ERR, "identity", "%s", err);
            return MM_EKEY;
        }
        if ((rc = identity_read_file(path, &id->key_pem)) != 0) return rc;
        BIO *bio = BIO_new_mem_buf(id->key_pem, -1);
        if (bio) pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
            MM_LOG(MM_LOG_ERR, "identity", "%s: not an Ed25519 private key",
                   path);
            EVP_PKEY_free(pkey);
            return MM_EKEY;
        }
    } else if (errno == ENOENT) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (pkey == NULL) return UV_EIO;
        BIO *bio = BIO_new(BIO_s_mem());
        if (bio &&
            PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) > 0)
            id->key_pem = identity_bio_string(bio);
        BIO_free(bio);
        if (id->key_pem == NULL) {
            EVP_PKEY_free(pkey);
            return UV_ENOMEM;
        }
        /* The directory is synced once the certificate is stored too
         * (identity_cert): a new key always comes with a new certificate,
         * and a certificate left without its key is made again. */
        rc = identity_write_atomic(path, id->key_pem, strlen(id->key_pem), 0600,
                                   0);
        if (rc) {
            MM_LOG(MM_LOG_ERR, "identity", "cannot write %s: %s", path,
                   uv_strerror(rc));
            EVP_PKEY_free(pkey);
            return rc;
        }
        MM_LOG(MM_LOG_INFO, "identity", "new identity key in %s", path);
    } else {
        return -errno;
    }
    size_t publen = sizeof(id->pub), seedlen = sizeof(id->seed);
    if (EVP_PKEY_get_raw_public_key(pkey, id->pub, &publen) != 1 ||
        publen != sizeof(id->pub)) {
        EVP_PKEY_free(pkey);
        return MM_EKEY;
    }
    id->has_seed =
        EVP_PKEY_get_raw_private_key(pkey, id->seed, &seedlen) == 1 &&
        seedlen == sizeof(id->seed);
    *out = pkey;
    return 0;
}

/* Loads cert.pem if it certifies |pkey|, else makes and stores one. */
static int
identity_cert(struct mm_identity *id, EVP_PKEY *pkey)
{
    char path[4096];
    int rc = identity_path(path, sizeof(path), id->dir, "cert.pem");
    if (rc) return rc;
    if (identity_read_file(path, &id->cert_pem) == 0) {
        BIO *bio = BIO_new_mem_buf(id->cert_pem, -1);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        int match = x != NULL && X509_check_private_key(x, pkey) == 1;
        X509_free(x);
        if (match) return 0;
        MM_LOG(MM_LOG_WARN, "identity",
               "%s does not match the key; making a new certificate", path);
        mm__free(id->cert_pem);
        id->cert_pem = NULL;
    }
    X509 *x = identity_make_cert(pkey, id->hex);
    if (x == NULL) return UV_EIO;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && PEM_write_bio_X509(bio, x) > 0)
        id->cert_pem = identity_bio_string(bio);
    BIO_free(bio);
    X509_free(x);
    if (id->cert_pem == NULL) return UV_ENOMEM;
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
    EVP_PKEY *pkey = NULL;
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
    if ((rc = identity_key(id, &pkey)) != 0) goto fail;
    mm__identity_id_of(id->id, id->pub);
    mm__hex(id->hex, id->id, MM_ID_LEN);
    if ((rc = identity_cert(id, pkey)) != 0) goto fail;
    EVP_PKEY_free(pkey);
    return 0;
fail:
    EVP_PKEY_free(pkey);
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
    OPENSSL_cleanse(id->seed, sizeof(id->seed));
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
