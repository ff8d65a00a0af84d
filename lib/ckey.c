/* ckey.c — cluster key generation, keyring loading and key derivation. */
#include "ckey.h"

#include <errno.h>
#include <fcntl.h>
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

int
mm_cluster_keygen(const char *path)
{
    uint8_t key[MM_CKEY_LEN];
    char line[CKEY_B64_LEN + 2];
    int rc = mm__random_bytes(key, sizeof(key));
    if (rc != 0) return rc;
    size_t n = mm__base64_encode(line, key, sizeof(key));
    memset(key, 0, sizeof(key));
    line[n++] = '\n';
    line[n] = '\0';

    if (path == NULL) {
        rc = ckey_write_all(STDOUT_FILENO, line, n);
        memset(line, 0, sizeof(line));
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? MM_EEXISTS : -errno;
        memset(line, 0, sizeof(line));
        return rc;
    }
    /* The umask can only remove bits, but make the mode exact anyway. */
    if (fchmod(fd, 0600) != 0) rc = -errno;
    if (rc == 0) rc = ckey_write_all(fd, line, n);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    memset(line, 0, sizeof(line));
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc != 0) unlink(path);
    return rc;
}

uint32_t
mm__ckey_id(const uint8_t key[MM_CKEY_LEN])
{
    uint8_t out[4];
    static const char label[] = "murmer keyid";
    mm__hkdf_sha256(out, sizeof(out), key, MM_CKEY_LEN, label,
                    sizeof(label) - 1);
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

/* Adds one base64 key (|len| chars, surrounding blanks already trimmed). */
static int
keyring_add_b64(struct mm_keyring *kr, const char *s, size_t len)
{
    uint8_t key[MM_CKEY_LEN + 3];
    if (kr->n >= MM_KEYRING_MAX || len != CKEY_B64_LEN) return MM_EKEY;
    int n = mm__base64_decode(key, sizeof(key), s, len);
    if (n != MM_CKEY_LEN) {
        memset(key, 0, sizeof(key));
        return MM_EKEY;
    }
    memcpy(kr->keys[kr->n], key, MM_CKEY_LEN);
    kr->ids[kr->n] = mm__ckey_id(key);
    kr->n++;
    memset(key, 0, sizeof(key));
    return 0;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses one key per line; blank lines and '#' comments are skipped. */
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
        if (kr->n >= MM_KEYRING_MAX) {
            MM_LOG(MM_LOG_ERR, "ckey", "too many keys (at most %d)",
                   MM_KEYRING_MAX);
            return MM_EKEY;
        }
        if (keyring_add_b64(kr, buf + start, end - start) != 0) return MM_EKEY;
    }
    return kr->n > 0 ? 0 : MM_EKEY;
}

int
mm__keyring_load_file(struct mm_keyring *kr, const char *path)
{
    keyring_reset(kr);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        MM_LOG(MM_LOG_ERR, "ckey", "cannot open cluster key file %s: %s", path,
               strerror(errno));
        return MM_EKEY;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        MM_LOG(MM_LOG_ERR, "ckey", "%s: not a regular file", path);
        close(fd);
        return MM_EKEY;
    }
    if (st.st_mode & 077) {
        MM_LOG(MM_LOG_ERR, "ckey",
               "cluster key file %s is accessible by group or others "
               "(mode %03o); run chmod 600 %s",
               path, (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return MM_EKEY;
    }
    if (st.st_size > CKEY_FILE_MAX) {
        MM_LOG(MM_LOG_ERR, "ckey", "%s: too large for a key file", path);
        close(fd);
        return MM_EKEY;
    }
    char *buf = mm__malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    int rc = keyring_parse(kr, buf, got);
    memset(buf, 0, got);
    mm__free(buf);
    if (rc != 0) {
        MM_LOG(MM_LOG_ERR, "ckey",
               "%s: malformed cluster key (expected 32 bytes of base64 per "
               "line)",
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
        MM_LOG(MM_LOG_ERR, "ckey",
               "malformed cluster key value (expected 32 bytes of base64)");
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
mm__keyring_load(struct mm_keyring *kr, const char *path)
{
    const char *v;
    if (path != NULL) return mm__keyring_load_file(kr, path);
    if ((v = env_nonempty("MURMER_CLUSTER_KEY_FILE")) != NULL) {
        int rc = mm__keyring_load_file(kr, v);
        if (rc == 0) keyring_set_source(kr, "env MURMER_CLUSTER_KEY_FILE");
        return rc;
    }
    if ((v = env_nonempty("MURMER_CLUSTER_KEY")) != NULL)
        return mm__keyring_load_b64(kr, v);
    mm__keyring_load_dev(kr);
    MM_LOG(MM_LOG_WARN, "ckey",
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
    uint8_t info[256];
    size_t ll = strlen(label);
    if (idx >= kr->n || ll + ctxlen > sizeof(info) || outlen == 0)
        return MM_EINVAL;
    memcpy(info, label, ll);
    if (ctxlen) memcpy(info + ll, ctx, ctxlen);
    return mm__hkdf_sha256(out, outlen, kr->keys[idx], MM_CKEY_LEN, info,
                           ll + ctxlen);
}

int
mm__keyring_find(const struct mm_keyring *kr, uint32_t id)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->ids[i] == id) return (int)i;
    return -1;
}

void
mm__keyring_mdns_tag(const struct mm_keyring *kr, char out[17])
{
    uint8_t tag[8];
    if (kr->n == 0 ||
        mm__keyring_derive(kr, 0, MM_LABEL_MDNS, NULL, 0, tag, sizeof(tag))) {
        out[0] = '\0';
        return;
    }
    mm__hex(out, tag, sizeof(tag));
}
