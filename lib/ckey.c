/* ckey.c — cluster key generation, keyring loading and key derivation. */
#include "ckey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "crypto.h"

#define CKEY_B64_LEN 44           /* base64 of 32 bytes, padded */
#define CKEY_FILE_MAX (64 * 1024) /* a key file is never larger */

static int
ckey_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes |n| bytes of key text to |path| (created 0600, never
 * overwritten: MM_EEXISTS) or to stdout when NULL; wipes |text|. */
static int
ckey_write_text(const char *path, char *text, size_t n)
{
    int rc = 0;
    if (path == NULL) {
        rc = ckey_write_all(STDOUT_FILENO, text, n);
        explicit_bzero(text, n);
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? MM_EEXISTS : -errno;
        explicit_bzero(text, n);
        return rc;
    }
    /* The umask can only remove bits, but make the mode exact anyway. */
    if (fchmod(fd, 0600) != 0) rc = -errno;
    if (rc == 0) rc = ckey_write_all(fd, text, n);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    explicit_bzero(text, n);
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc != 0) unlink(path);
    return rc;
}

static void ckey_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
mm_cluster_keygen(const char *path)
{
    uint8_t key[MM_CKEY_LEN];
    char line[CKEY_B64_LEN + 2];
    int rc = mm__random_bytes(key, sizeof(key));
    if (rc != 0) return rc;
    size_t n = mm__base64_encode(line, key, sizeof(key));
    explicit_bzero(key, sizeof(key));
    line[n++] = '\n';
    line[n] = '\0';
    return ckey_write_text(path, line, n);
}

static const char *const kind_prefix[MM_KEY_KINDS] = {"",
                                                      "client:", "read-only:"};

const char *
mm__key_kind_name(int kind)
{
    switch (kind) {
    case MM_KEY_CLUSTER:
        return "cluster";
    case MM_KEY_CLIENT:
        return "client";
    case MM_KEY_READONLY:
        return "read-only";
    default:
        return "?";
    }
}

int
mm__ckey_derive(uint8_t out[MM_CKEY_LEN], const uint8_t key[MM_CKEY_LEN],
                int from, int to)
{
    if (from < 0 || to >= MM_KEY_KINDS || to < from) return MM_EINVAL;
    uint8_t k[MM_CKEY_LEN];
    memcpy(k, key, MM_CKEY_LEN);
    for (int kind = from; kind < to; kind++) {
        const char *label =
            kind == MM_KEY_CLUSTER ? MM_LABEL_CLIENT : MM_LABEL_READONLY;
        uint8_t next[MM_CKEY_LEN];
        int rc = mm__hkdf_label(next, MM_CKEY_LEN, k, label, NULL, 0);
        memcpy(k, next, MM_CKEY_LEN);
        explicit_bzero(next, sizeof(next));
        if (rc != 0) {
            explicit_bzero(k, sizeof(k));
            return rc;
        }
    }
    memcpy(out, k, MM_CKEY_LEN);
    explicit_bzero(k, sizeof(k));
    return 0;
}

int
mm_client_keygen(const char *cluster_key_file, const char *path, int read_only,
                 char *err, size_t errlen)
{
    struct mm_keyring kr;
    if (err && errlen) err[0] = '\0';
    int rc = mm__keyring_load(&kr, cluster_key_file, err, errlen);
    if (rc == 0 && kr.dev) {
        ckey_err(err, errlen,
                 "no cluster key given (--cluster-key FILE or "
                 "MURMER_CLUSTER_KEY_FILE)");
        rc = MM_EINVAL;
    }
    int to = read_only ? MM_KEY_READONLY : MM_KEY_CLIENT;
    if (rc == 0 && mm__keyring_kind(&kr) >= to) {
        ckey_err(err, errlen, "the key given is a %s key: it derives no %s key",
                 mm__key_kind_name(mm__keyring_kind(&kr)),
                 mm__key_kind_name(to));
        rc = MM_EINVAL;
    }
    if (rc != 0) {
        mm__keyring_release(&kr);
        return rc;
    }
    /* One line per key of the ring, in its order: the client key file
     * follows a rotation as the cluster key file does. */
    char text[MM_KEYRING_MAX * (CKEY_B64_LEN + 16)];
    size_t n = 0;
    for (size_t i = 0; i < kr.n && rc == 0; i++) {
        uint8_t k[MM_CKEY_LEN];
        rc = mm__ckey_derive(k, kr.keys[i], kr.kinds[i], to);
        if (rc != 0) break;
        size_t pl = strlen(kind_prefix[to]);
        memcpy(text + n, kind_prefix[to], pl);
        n += pl;
        n += mm__base64_encode(text + n, k, sizeof(k));
        text[n++] = '\n';
        explicit_bzero(k, sizeof(k));
    }
    mm__keyring_release(&kr);
    if (rc != 0) {
        explicit_bzero(text, sizeof(text));
        return rc;
    }
    return ckey_write_text(path, text, n);
}

uint32_t
mm__ckey_id(const uint8_t key[MM_CKEY_LEN])
{
    uint8_t out[4];
    mm__hkdf_label(out, sizeof(out), key, MM_LABEL_KEYID, NULL, 0);
    return mm__get_u32(out);
}

static void
keyring_reset(struct mm_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
}

static void
keyring_set_source(struct mm_keyring *kr, const char *src)
{
    snprintf(kr->source, sizeof(kr->source), "%s", src);
}

/* Adds one key: base64, after "client:" or "read-only:" for a client key
 * (|len| chars, surrounding blanks already trimmed). */
static int
keyring_add_b64(struct mm_keyring *kr, const char *s, size_t len)
{
    uint8_t key[MM_CKEY_LEN + 3];
    int kind = MM_KEY_CLUSTER;
    for (int k = MM_KEY_CLUSTER + 1; k < MM_KEY_KINDS; k++) {
        size_t pl = strlen(kind_prefix[k]);
        if (len > pl && memcmp(s, kind_prefix[k], pl) == 0) {
            kind = k;
            s += pl;
            len -= pl;
            break;
        }
    }
    if (kr->n >= MM_KEYRING_MAX || len != CKEY_B64_LEN) return MM_EKEY;
    int n = mm__base64_decode(key, sizeof(key), s, len);
    if (n != MM_CKEY_LEN) {
        memset(key, 0, sizeof(key));
        return MM_EKEY;
    }
    memcpy(kr->keys[kr->n], key, MM_CKEY_LEN);
    kr->ids[kr->n] = mm__ckey_id(key);
    kr->kinds[kr->n] = (uint8_t)kind;
    kr->n++;
    memset(key, 0, sizeof(key));
    return 0;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The text of a refusal into |err| (|errlen| bytes; NULL: dropped). */
static void
ckey_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parses one key per line; blank lines and '#' comments are skipped.
 * 0, MM_EKEY (malformed), MM_EINVAL (keys of different kinds) or
 * UV_ENOBUFS (more than MM_KEYRING_MAX). */
static int
keyring_parse(struct mm_keyring *kr, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && buf[i] != '\n')
            i++;
        size_t end = i;
        i++; /* past '\n' */
        while (start < end && is_blank(buf[start]))
            start++;
        while (end > start && is_blank(buf[end - 1]))
            end--;
        if (end == start || buf[start] == '#') continue;
        if (kr->n >= MM_KEYRING_MAX) return UV_ENOBUFS;
        if (keyring_add_b64(kr, buf + start, end - start) != 0) return MM_EKEY;
        if (kr->kinds[kr->n - 1] != kr->kinds[0]) return MM_EINVAL;
    }
    return kr->n > 0 ? 0 : MM_EKEY;
}

int
mm__keyring_load_file(struct mm_keyring *kr, const char *path, char *err,
                      size_t errlen)
{
    keyring_reset(kr);
    char *buf = NULL;
    size_t got = 0;
    struct stat st;
    int rc = mm__read_small_file(path, CKEY_FILE_MAX, &buf, &got, &st);
    if (rc == UV_ENOMEM) return rc;
    int stated = rc == 0 || rc == UV_EFBIG; /* a regular file, |st| set */
    if (stated && (st.st_mode & 077)) {
        if (buf) {
            memset(buf, 0, got);
            mm__free(buf);
        }
        ckey_err(err, errlen,
                 "cluster key file %s is accessible by group or others "
                 "(mode %03o); run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 0777), path);
        return MM_EKEY;
    }
    if (rc != 0) {
        if (rc == UV_EINVAL)
            ckey_err(err, errlen, "%s: not a regular file", path);
        else if (rc == UV_EFBIG)
            ckey_err(err, errlen, "%s: too large for a key file", path);
        else
            ckey_err(err, errlen, "cannot open cluster key file %s: %s", path,
                     strerror(-rc));
        return MM_EKEY;
    }
    rc = keyring_parse(kr, buf, got);
    memset(buf, 0, got);
    mm__free(buf);
    if (rc != 0) {
        if (rc == UV_ENOBUFS)
            ckey_err(err, errlen, "%s: too many keys (at most %d)", path,
                     MM_KEYRING_MAX);
        else if (rc == MM_EINVAL)
            ckey_err(err, errlen,
                     "%s: mixes cluster and client keys (one kind per file)",
                     path);
        else
            ckey_err(err, errlen,
                     "%s: malformed cluster key (expected 32 bytes of "
                     "base64 per line)",
                     path);
        keyring_reset(kr);
        return MM_EKEY;
    }
    keyring_set_source(kr, "file");
    return 0;
}

int
mm__keyring_load_b64(struct mm_keyring *kr, const char *b64)
{
    keyring_reset(kr);
    size_t len = strlen(b64);
    while (len > 0 && is_blank(b64[len - 1]))
        len--;
    while (len > 0 && is_blank(*b64)) {
        b64++;
        len--;
    }
    if (keyring_add_b64(kr, b64, len) != 0) {
        keyring_reset(kr);
        return MM_EKEY;
    }
    keyring_set_source(kr, "env MURMER_CLUSTER_KEY");
    return 0;
}

void
mm__keyring_load_dev(struct mm_keyring *kr)
{
    static const char seed[] = "murmer dev key";
    keyring_reset(kr);
    mm__sha256(kr->keys[0], seed, sizeof(seed) - 1);
    kr->ids[0] = mm__ckey_id(kr->keys[0]);
    kr->n = 1;
    kr->dev = 1;
    keyring_set_source(kr, "dev");
}

static const char *
env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int
mm__keyring_load(struct mm_keyring *kr, const char *path, char *err,
                 size_t errlen)
{
    const char *v;
    ckey_err(err, errlen, "%s", "");
    if (path != NULL) return mm__keyring_load_file(kr, path, err, errlen);
    if ((v = env_nonempty("MURMER_CLUSTER_KEY_FILE")) != NULL) {
        int rc = mm__keyring_load_file(kr, v, err, errlen);
        if (rc == 0) keyring_set_source(kr, "env MURMER_CLUSTER_KEY_FILE");
        return rc;
    }
    if ((v = env_nonempty("MURMER_CLUSTER_KEY")) != NULL) {
        int rc = mm__keyring_load_b64(kr, v);
        if (rc != 0)
            ckey_err(err, errlen,
                     "malformed cluster key value (expected 32 bytes of "
                     "base64)");
        return rc;
    }
    mm__keyring_load_dev(kr);
    ckey_err(err, errlen,
             "no cluster key given: dev mode with a well-known key "
             "(anyone can join; use murmer keygen)");
    return 0;
}

void
mm__keyring_release(struct mm_keyring *kr)
{
    volatile uint8_t *p = (volatile uint8_t *)kr;
    for (size_t i = 0; i < sizeof(*kr); i++)
        p[i] = 0;
}

int
mm__keyring_derive(const struct mm_keyring *kr, size_t idx, const char *label,
                   const void *ctx, size_t ctxlen, uint8_t *out, size_t outlen)
{
    if (idx >= kr->n) return MM_EINVAL;
    return mm__hkdf_label(out, outlen, kr->keys[idx], label, ctx, ctxlen);
}

int
mm__keyring_find(const struct mm_keyring *kr, uint32_t id)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->ids[i] == id) return (int)i;
    return -1;
}

int
mm__keyring_kind(const struct mm_keyring *kr)
{
    return kr->n ? kr->kinds[0] : MM_KEY_CLUSTER;
}

void
mm__keyring_mdns_tag(const struct mm_keyring *kr, char out[17])
{
    uint8_t tag[8];
    /* Derived from the cluster key, which a client does not hold. */
    if (kr->n == 0 || kr->kinds[0] != MM_KEY_CLUSTER ||
        mm__keyring_derive(kr, 0, MM_LABEL_MDNS, NULL, 0, tag, sizeof(tag))) {
        out[0] = '\0';
        return;
    }
    mm__hex(out, tag, sizeof(tag));
}

/* ---- rotation and persistence ------------------------------------------- */

void
mm__ckey_fingerprint(const uint8_t key[MM_CKEY_LEN],
                     char out[MM_KEY_FP_LEN + 1])
{
    uint8_t fp[MM_KEY_FP_LEN / 2];
    mm__hkdf_label(fp, sizeof(fp), key, MM_LABEL_KEYID, NULL, 0);
    mm__hex(out, fp, sizeof(fp));
}

/* The index of |key| in |kr|, or -1 (constant time per key). */
static int
keyring_index(const struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN])
{
    int found = -1;
    for (size_t i = 0; i < kr->n; i++)
        if (mm__ct_memcmp(kr->keys[i], key, MM_CKEY_LEN) == 0 && found < 0)
            found = (int)i;
    return found;
}

/* Moves entry |from| to |to| (shifting those between). */
static void
keyring_move(struct mm_keyring *kr, size_t from, size_t to)
{
    uint8_t k[MM_CKEY_LEN];
    uint32_t id = kr->ids[from];
    uint8_t kind = kr->kinds[from];
    memcpy(k, kr->keys[from], MM_CKEY_LEN);
    while (from > to) {
        memcpy(kr->keys[from], kr->keys[from - 1], MM_CKEY_LEN);
        kr->ids[from] = kr->ids[from - 1];
        kr->kinds[from] = kr->kinds[from - 1];
        from--;
    }
    while (from < to) {
        memcpy(kr->keys[from], kr->keys[from + 1], MM_CKEY_LEN);
        kr->ids[from] = kr->ids[from + 1];
        kr->kinds[from] = kr->kinds[from + 1];
        from++;
    }
    memcpy(kr->keys[to], k, MM_CKEY_LEN);
    kr->ids[to] = id;
    kr->kinds[to] = kind;
    explicit_bzero(k, sizeof(k));
}

/* A changed ring is no longer the well-known dev key alone. */
static void
keyring_changed(struct mm_keyring *kr, int *changed)
{
    struct mm_keyring dev;
    mm__keyring_load_dev(&dev);
    kr->dev = kr->n == 1 && memcmp(kr->keys[0], dev.keys[0], MM_CKEY_LEN) == 0;
    mm__keyring_release(&dev);
    *changed = 1;
}

int
mm__keyring_install(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                    int *changed)
{
    *changed = 0;
    if (keyring_index(kr, key) >= 0) return 0;
    if (kr->n >= MM_KEYRING_MAX) return UV_ENOBUFS;
    memcpy(kr->keys[kr->n], key, MM_CKEY_LEN);
    kr->ids[kr->n] = mm__ckey_id(key);
    kr->kinds[kr->n] = MM_KEY_CLUSTER;
    kr->n++;
    keyring_changed(kr, changed);
    return 0;
}

int
mm__keyring_use(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                int *changed)
{
    *changed = 0;
    int i = keyring_index(kr, key);
    if (i < 0) return MM_ENOTFOUND;
    if (i == 0) return 0;
    keyring_move(kr, (size_t)i, 0);
    keyring_changed(kr, changed);
    return 0;
}

int
mm__keyring_remove(struct mm_keyring *kr, const uint8_t key[MM_CKEY_LEN],
                   int *changed)
{
    *changed = 0;
    int i = keyring_index(kr, key);
    if (i < 0) return MM_ENOTFOUND;
    if (i == 0) return MM_EINVAL;
    keyring_move(kr, (size_t)i, kr->n - 1);
    kr->n--;
    explicit_bzero(kr->keys[kr->n], MM_CKEY_LEN);
    kr->ids[kr->n] = 0;
    kr->kinds[kr->n] = 0;
    keyring_changed(kr, changed);
    return 0;
}

int
mm__keyring_save(const struct mm_keyring *kr, const char *dir, char *err,
                 size_t errlen)
{
    char path[1024], tmp[1024];
    ckey_err(err, errlen, "%s", "");
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, MM_KEYRING_FILE) >=
            sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir,
                         MM_KEYRING_FILE) >= sizeof(tmp)) {
        ckey_err(err, errlen, "%s: path too long", dir);
        return UV_ENAMETOOLONG;
    }
    if (kr->n == 0 || mm__keyring_kind(kr) != MM_KEY_CLUSTER) {
        ckey_err(err, errlen, "only a ring of cluster keys is saved");
        return MM_EINVAL;
    }
    char text[MM_KEYRING_MAX * (CKEY_B64_LEN + 1)];
    size_t n = 0;
    for (size_t i = 0; i < kr->n; i++) {
        n += mm__base64_encode(text + n, kr->keys[i], MM_CKEY_LEN);
        text[n++] = '\n';
    }
    int rc = 0;
    /* A leftover of a crash is replaced, never followed. */
    unlink(tmp);
    int fd =
        open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) rc = -errno;
    if (rc == 0 && fchmod(fd, 0600) != 0) rc = -errno;
    if (rc == 0) rc = ckey_write_all(fd, text, n);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    explicit_bzero(text, sizeof(text));
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc != 0) {
        if (fd >= 0) unlink(tmp);
        ckey_err(err, errlen, "cannot save the keyring to %s: %s", path,
                 strerror(-rc));
        return rc;
    }
    /* The rename itself is durable once the directory is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) rc = -errno;
    if (dfd >= 0) close(dfd);
    if (rc != 0)
        ckey_err(err, errlen, "cannot sync directory %s: %s", dir,
                 strerror(-rc));
    return rc;
}

int
mm__keyring_load_saved(struct mm_keyring *kr, const char *dir, char *err,
                       size_t errlen)
{
    char path[1024];
    ckey_err(err, errlen, "%s", "");
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, MM_KEYRING_FILE) >=
        sizeof(path)) {
        ckey_err(err, errlen, "%s: path too long", dir);
        return MM_EKEY;
    }
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) return MM_ENOTFOUND;
    struct mm_keyring tmp;
    char e[1400];
    int rc = mm__keyring_load_file(&tmp, path, e, sizeof(e));
    if (rc == 0 && mm__keyring_kind(&tmp) != MM_KEY_CLUSTER) {
        snprintf(e, sizeof(e), "%s holds %s keys", path,
                 mm__key_kind_name(mm__keyring_kind(&tmp)));
        rc = MM_EKEY;
    }
    if (rc != 0) {
        mm__keyring_release(&tmp);
        ckey_err(err, errlen,
                 "saved keyring refused: %s (fix or remove the file to "
                 "start from --cluster-key)",
                 e);
        return MM_EKEY;
    }
    int changed;
    keyring_changed(&tmp, &changed);
    keyring_set_source(&tmp, "data dir");
    *kr = tmp;
    mm__keyring_release(&tmp);
    return 0;
}
