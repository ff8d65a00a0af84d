/* test_ckey.c — cluster key generation, keyring sources and derivation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "helpers/testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "crypto.h"
#include "ckey.h"
#include "transport/quic_int.h" /* mm__quic_proof */

struct tdir {
    char path[64];
};

static int
setup_dir(void **state)
{
    struct tdir *d = calloc(1, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/tmp/mm-ckey-XXXXXX");
    if (mkdtemp(d->path) == NULL) return -1;
    unsetenv("MURMER_CLUSTER_KEY");
    unsetenv("MURMER_CLUSTER_KEY_FILE");
    mm_log_set_level(MM_LOG_ERR - 1); /* quiet: failures are expected */
    *state = d;
    return 0;
}

static int
teardown_dir(void **state)
{
    struct tdir *d = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d->path);
    if (system(cmd) != 0) return -1;
    free(d);
    unsetenv("MURMER_CLUSTER_KEY");
    unsetenv("MURMER_CLUSTER_KEY_FILE");
    mm_log_set_level(MM_LOG_WARN);
    return 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_ckey_keygen_file_mode_and_exists(void **state)
{
    struct tdir *d = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/ck", d->path);
    assert_int_equal(mm_cluster_keygen(path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 45); /* 44 base64 chars + newline */
    /* A second keygen does not overwrite. */
    assert_int_equal(mm_cluster_keygen(path), MM_EEXISTS);

    struct mm_keyring kr;
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), 0);
    assert_int_equal(kr.n, 1);
    assert_int_equal(kr.dev, 0);
    assert_int_equal(kr.ids[0], mm__ckey_id(kr.keys[0]));

    /* Two keygens give two different keys. */
    char path2[128];
    snprintf(path2, sizeof(path2), "%s/ck2", d->path);
    assert_int_equal(mm_cluster_keygen(path2), 0);
    struct mm_keyring kr2;
    assert_int_equal(mm__keyring_load(&kr2, path2, NULL, 0), 0);
    assert_memory_not_equal(kr.keys[0], kr2.keys[0], 32);
    mm__keyring_release(&kr);
    mm__keyring_release(&kr2);
}

static void
test_ckey_loose_permissions_refused(void **state)
{
    struct tdir *d = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/ck", d->path);
    assert_int_equal(mm_cluster_keygen(path), 0);
    struct mm_keyring kr;
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), 0);
    /* Missing file. */
    snprintf(path, sizeof(path), "%s/nope", d->path);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
}

static void
test_ckey_malformed_refused(void **state)
{
    struct tdir *d = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/bad", d->path);
    struct mm_keyring kr;
    write_file(path, "not base64 at all!\n", 0600);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
    /* 31 bytes of base64. */
    write_file(path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", 0600);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
    write_file(path, "\n\n", 0600);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);
    assert_int_equal(mm__keyring_load_b64(&kr, "abcd"), MM_EKEY);
    /* 32 bytes exactly. */
    assert_int_equal(mm__keyring_load_b64(
                         &kr, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"),
                     0);
    assert_int_equal(kr.n, 1);
}

static void
test_ckey_keyring_several_lines(void **state)
{
    struct tdir *d = *state;
    uint8_t k1[32], k2[32];
    char b1[48], b2[48], text[128], path[128];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    mm__base64_encode(b1, k1, 32);
    mm__base64_encode(b2, k2, 32);
    snprintf(text, sizeof(text), "%s\n# old key\n\n%s\n", b1, b2);
    snprintf(path, sizeof(path), "%s/ring", d->path);
    write_file(path, text, 0600);
    struct mm_keyring kr;
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), 0);
    assert_int_equal(kr.n, 2);
    assert_memory_equal(kr.keys[0], k1, 32); /* primary first */
    assert_memory_equal(kr.keys[1], k2, 32);
    assert_int_equal(mm__keyring_find(&kr, mm__ckey_id(k2)), 1);
    assert_int_equal(mm__keyring_find(&kr, mm__ckey_id(k1)), 0);
    assert_int_not_equal(kr.ids[0], kr.ids[1]);

    /* derive = HKDF(ck_idx, label ‖ ctx) */
    uint8_t out[32], want[32];
    uint8_t info[32];
    memcpy(info, "murmer gossip", 13);
    memcpy(info + 13, "xyz", 3);
    assert_int_equal(
        mm__keyring_derive(&kr, 1, MM_LABEL_GOSSIP, "xyz", 3, out, 32), 0);
    mm__hkdf_sha256(want, 32, k2, 32, info, 16);
    assert_memory_equal(out, want, 32);
    assert_int_equal(
        mm__keyring_derive(&kr, 2, MM_LABEL_AUTH, NULL, 0, out, 32), MM_EINVAL);

    /* mDNS tag: 16 hex chars of HKDF(ck, "murmer mdns")[0:8] */
    char tag[17], wtag[17];
    mm__keyring_mdns_tag(&kr, tag);
    mm__hkdf_sha256(want, 8, k1, 32, "murmer mdns", 11);
    mm__hex(wtag, want, 8);
    assert_string_equal(tag, wtag);
    assert_int_equal(strlen(tag), 16);
}

static void
test_ckey_env_precedence(void **state)
{
    struct tdir *d = *state;
    uint8_t k1[32], k2[32], k3[32];
    char b1[48], b2[48], b3[48], p1[128], p2[128], line[64];
    memset(k1, 0x11, 32);
    memset(k2, 0x22, 32);
    memset(k3, 0x33, 32);
    mm__base64_encode(b1, k1, 32);
    mm__base64_encode(b2, k2, 32);
    mm__base64_encode(b3, k3, 32);
    snprintf(p1, sizeof(p1), "%s/k1", d->path);
    snprintf(p2, sizeof(p2), "%s/k2", d->path);
    snprintf(line, sizeof(line), "%s\n", b1);
    write_file(p1, line, 0600);
    snprintf(line, sizeof(line), "%s\n", b2);
    write_file(p2, line, 0600);
    struct mm_keyring kr;

    /* Nothing set: dev mode, a fixed key. */
    assert_int_equal(mm__keyring_load(&kr, NULL, NULL, 0), 0);
    assert_int_equal(kr.dev, 1);
    uint8_t dev[32];
    mm__sha256(dev, "murmer dev key", 14);
    assert_memory_equal(kr.keys[0], dev, 32);

    setenv("MURMER_CLUSTER_KEY", b3, 1);
    assert_int_equal(mm__keyring_load(&kr, NULL, NULL, 0), 0);
    assert_int_equal(kr.dev, 0);
    assert_memory_equal(kr.keys[0], k3, 32);

    setenv("MURMER_CLUSTER_KEY_FILE", p2, 1);
    assert_int_equal(mm__keyring_load(&kr, NULL, NULL, 0), 0);
    assert_memory_equal(kr.keys[0], k2, 32);

    /* The explicit path wins over both. */
    assert_int_equal(mm__keyring_load(&kr, p1, NULL, 0), 0);
    assert_memory_equal(kr.keys[0], k1, 32);

    /* A bad env file is an error, not a fallback. */
    chmod(p2, 0644);
    assert_int_equal(mm__keyring_load(&kr, NULL, NULL, 0), MM_EKEY);
    setenv("MURMER_CLUSTER_KEY", "garbage", 1);
    unsetenv("MURMER_CLUSTER_KEY_FILE");
    assert_int_equal(mm__keyring_load(&kr, NULL, NULL, 0), MM_EKEY);
}

static int log_lines;

static void
count_log(void *data, int level, const char *component, const char *msg)
{
    (void)data;
    (void)level;
    (void)component;
    (void)msg;
    log_lines++;
}

/* The loader says what is wrong in one line of text, and logs nothing. */
static void
test_ckey_load_returns_error_text(void **state)
{
    struct tdir *d = *state;
    char path[128], want[512], err[512];
    struct mm_keyring kr;
    log_lines = 0;
    mm_log_set_handler(count_log, NULL);
    mm_log_set_level(MM_LOG_DEBUG);

    snprintf(path, sizeof(path), "%s/ck", d->path);
    assert_int_equal(mm_cluster_keygen(path), 0);
    strcpy(err, "stale");
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_string_equal(err, "");

    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want),
             "cluster key file %s is accessible by group or others (mode "
             "644); run chmod 600 %s",
             path, path);
    assert_string_equal(err, want);
    /* The same through the environment. */
    setenv("MURMER_CLUSTER_KEY_FILE", path, 1);
    assert_int_equal(mm__keyring_load(&kr, NULL, err, sizeof(err)), MM_EKEY);
    assert_string_equal(err, want);
    unsetenv("MURMER_CLUSTER_KEY_FILE");

    snprintf(path, sizeof(path), "%s/nope", d->path);
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want),
             "cannot open cluster key file %s: No such file or directory",
             path);
    assert_string_equal(err, want);

    assert_int_equal(mm__keyring_load(&kr, d->path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want), "%s: not a regular file", d->path);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/bad", d->path);
    write_file(path, "not base64 at all!\n", 0600);
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want),
             "%s: malformed cluster key (expected 32 bytes of base64 per "
             "line)",
             path);
    assert_string_equal(err, want);

    /* Nine keys: one too many. */
    char text[9 * 46 + 1] = "";
    for (int i = 0; i < 9; i++)
        strcat(text, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    write_file(path, text, 0600);
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want), "%s: too many keys (at most 8)", path);
    assert_string_equal(err, want);

    /* Too large for a key file (64 KiB). */
    char *big = calloc(1, 70000);
    assert_non_null(big);
    memset(big, '#', 69999);
    write_file(path, big, 0600);
    free(big);
    assert_int_equal(mm__keyring_load(&kr, path, err, sizeof(err)), MM_EKEY);
    snprintf(want, sizeof(want), "%s: too large for a key file", path);
    assert_string_equal(err, want);

    setenv("MURMER_CLUSTER_KEY", "garbage", 1);
    assert_int_equal(mm__keyring_load(&kr, NULL, err, sizeof(err)), MM_EKEY);
    assert_string_equal(err, "malformed cluster key value (expected 32 "
                             "bytes of base64)");
    unsetenv("MURMER_CLUSTER_KEY");

    /* Dev mode: success, and the warning to show. */
    assert_int_equal(mm__keyring_load(&kr, NULL, err, sizeof(err)), 0);
    assert_int_equal(kr.dev, 1);
    assert_non_null(strstr(err, "dev mode with a well-known key"));

    /* A short buffer truncates; NULL drops the text. */
    char small[8];
    assert_int_equal(mm__keyring_load(&kr, path, small, sizeof(small)),
                     MM_EKEY);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(mm__keyring_load(&kr, path, NULL, 0), MM_EKEY);

    mm_log_set_handler(NULL, NULL);
    assert_int_equal(log_lines, 0);
    mm__keyring_release(&kr);
}

/* Every derivation goes through the label table. */
static void
test_ckey_derive_labels(void **state)
{
    (void)state;
    uint8_t ck[32], out[32], want[32];
    memset(ck, 7, sizeof(ck));
    uint8_t info[13 + 3];
    memcpy(info, "murmer gossip", 13);
    memcpy(info + 13, "abc", 3);
    assert_int_equal(mm__hkdf_label(out, 32, ck, MM_LABEL_GOSSIP, "abc", 3), 0);
    mm__hkdf_sha256(want, 32, ck, 32, info, sizeof(info));
    assert_memory_equal(out, want, 32);
    /* The key id: HKDF(ck, "murmer keyid")[0:4] LE. */
    mm__hkdf_sha256(want, 4, ck, 32, "murmer keyid", 12);
    assert_int_equal(mm__ckey_id(ck), mm__get_u32(want));
    assert_int_equal(mm__hkdf_label(out, 0, ck, MM_LABEL_AUTH, NULL, 0),
                     MM_EINVAL);
    uint8_t huge[300] = {0};
    assert_int_equal(
        mm__hkdf_label(out, 32, ck, MM_LABEL_AUTH, huge, sizeof(huge)),
        MM_EINVAL);
}

/* ---- client keys: golden vectors (the same lines are in docs/wire.md) -- */

/* Cluster key 00 01 .. 1f; exporter 40 41 .. 5f; client id a0 .. af;
 * server id b0 .. bf. */
#define G_CLUSTER_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define G_CLIENT_HEX                                                           \
    "1dca03ecf4e39ab31eb3921c6f3fffaa102c5e921d40728615358d48ef8b1728"
#define G_CLIENT_LINE "client:HcoD7PTjmrMes5Icbz//qhAsXpIdQHKGFTWNSO+LFyg="
#define G_READONLY_HEX                                                         \
    "684128d1c43f752c60e6b9524b89ba36de2fda87e48881252e3ee3c513540269"
#define G_READONLY_LINE "read-only:aEEo0cQ/dSxg5rlSS4m6Nt4v2ofkiIElLj7jxRNUAmk="

static const char *const auth_golden[][3] = {
    /* kind, side 'c' proof, side 's' proof */
    {"cluster",
     "49219ac9ac5ea45b70789c109ce77d3d1e035fa53796c173e8639166b013ff73",
     "48629c5721e8aa086be04288d594875f88aa361ab420906cc902f42fa2ba4376"},
    {"client",
     "5a04a265bee5b475fbfb306cdebceb5fec5e3d624f94d4d44f49bd70d79c840a",
     "614d4d7c4e224305280d1e418a03b97443c14788730f5907ec4735eae6b3888e"},
    {"read-only",
     "399a5e9827fabd6ec050e367692581f0d039f2c661fa518a35aadd3d98f81849",
     "28bec51f48ffaf2c78db9b8f51959850d17274739044ae184ef67d9b6aadf647"},
};

static void
hex_of(char *out, const uint8_t *b, size_t n)
{
    mm__hex(out, b, n);
}

static void
test_ckey_client_golden(void **state)
{
    (void)state;
    uint8_t ck[32], k[MM_KEY_KINDS][32];
    char hex[65];
    for (int i = 0; i < 32; i++)
        ck[i] = (uint8_t)i;
    for (int kind = 0; kind < MM_KEY_KINDS; kind++)
        assert_int_equal(mm__ckey_derive(k[kind], ck, MM_KEY_CLUSTER, kind), 0);
    assert_memory_equal(k[0], ck, 32);
    hex_of(hex, k[1], 32);
    assert_string_equal(hex, G_CLIENT_HEX);
    hex_of(hex, k[2], 32);
    assert_string_equal(hex, G_READONLY_HEX);
    /* The read-only key from the client key is the same key. */
    uint8_t ro[32];
    assert_int_equal(mm__ckey_derive(ro, k[1], MM_KEY_CLIENT, MM_KEY_READONLY),
                     0);
    assert_memory_equal(ro, k[2], 32);
    /* Nothing goes back up. */
    assert_int_equal(mm__ckey_derive(ro, k[1], MM_KEY_CLIENT, MM_KEY_CLUSTER),
                     MM_EINVAL);
    /* The proofs. */
    uint8_t exp[32], cid[16], sid[16], ak[32], proof[32];
    for (int i = 0; i < 32; i++)
        exp[i] = (uint8_t)(0x40 + i);
    for (int i = 0; i < 16; i++) {
        cid[i] = (uint8_t)(0xa0 + i);
        sid[i] = (uint8_t)(0xb0 + i);
    }
    for (int kind = 0; kind < MM_KEY_KINDS; kind++) {
        assert_string_equal(mm__key_kind_name(kind), auth_golden[kind][0]);
        assert_int_equal(
            mm__hkdf_label(ak, 32, k[kind], MM_LABEL_AUTH, NULL, 0), 0);
        mm__quic_proof(ak, exp, 'c', cid, sid, proof);
        hex_of(hex, proof, 32);
        assert_string_equal(hex, auth_golden[kind][1]);
        mm__quic_proof(ak, exp, 's', cid, sid, proof);
        hex_of(hex, proof, 32);
        assert_string_equal(hex, auth_golden[kind][2]);
    }
}

/* Every line above appears verbatim in docs/wire.md. */
static void
test_ckey_client_golden_in_doc(void **state)
{
    (void)state;
    char *doc = repo_file("docs/wire.md", NULL);
    if (doc == NULL) {
        print_message("docs/wire.md not found from this directory\n");
        skip();
    }
    const char *lines[] = {G_CLUSTER_B64,         G_CLIENT_HEX,
                           G_CLIENT_LINE,         G_READONLY_HEX,
                           G_READONLY_LINE,       "murmer client key",
                           "murmer read-only key"};
    for (size_t i = 0; i < MM_ARRAY_SIZE(lines); i++)
        if (strstr(doc, lines[i]) == NULL)
            fail_msg("golden vector missing from docs/wire.md: %s", lines[i]);
    for (size_t i = 0; i < MM_ARRAY_SIZE(auth_golden); i++)
        for (int j = 1; j < 3; j++)
            if (strstr(doc, auth_golden[i][j]) == NULL)
                fail_msg("golden proof missing from docs/wire.md: %s",
                         auth_golden[i][j]);
    free(doc);
}

static void
read_text(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void
test_ckey_client_keygen_files(void **state)
{
    struct tdir *d = *state;
    char ckp[128], clp[128], rop[128], ro2[128], text[512], err[256];
    snprintf(ckp, sizeof(ckp), "%s/cluster", d->path);
    snprintf(clp, sizeof(clp), "%s/client", d->path);
    snprintf(rop, sizeof(rop), "%s/ro", d->path);
    snprintf(ro2, sizeof(ro2), "%s/ro2", d->path);
    write_file(ckp, "# the golden cluster key\n" G_CLUSTER_B64 "\n", 0600);
    assert_int_equal(mm_client_keygen(ckp, clp, 0, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(clp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    read_text(clp, text, sizeof(text));
    assert_string_equal(text, G_CLIENT_LINE "\n");
    /* Never overwritten. */
    assert_int_equal(mm_client_keygen(ckp, clp, 0, err, sizeof(err)),
                     MM_EEXISTS);
    /* Read-only, from the cluster key and from the client key. */
    assert_int_equal(mm_client_keygen(ckp, rop, 1, err, sizeof(err)), 0);
    read_text(rop, text, sizeof(text));
    assert_string_equal(text, G_READONLY_LINE "\n");
    assert_int_equal(mm_client_keygen(clp, ro2, 1, err, sizeof(err)), 0);
    read_text(ro2, text, sizeof(text));
    assert_string_equal(text, G_READONLY_LINE "\n");

    /* Loading: the kind, and no mDNS tag (it needs the cluster key). */
    struct mm_keyring kr;
    char tag[17];
    assert_int_equal(mm__keyring_load(&kr, clp, NULL, 0), 0);
    assert_int_equal(mm__keyring_kind(&kr), MM_KEY_CLIENT);
    mm__keyring_mdns_tag(&kr, tag);
    assert_string_equal(tag, "");
    assert_int_equal(mm__keyring_load(&kr, rop, NULL, 0), 0);
    assert_int_equal(mm__keyring_kind(&kr), MM_KEY_READONLY);
    assert_int_equal(mm__keyring_load(&kr, ckp, NULL, 0), 0);
    assert_int_equal(mm__keyring_kind(&kr), MM_KEY_CLUSTER);
    mm__keyring_mdns_tag(&kr, tag);
    assert_int_equal(strlen(tag), 16);
    /* The value form takes the prefix too. */
    assert_int_equal(mm__keyring_load_b64(&kr, G_CLIENT_LINE), 0);
    assert_int_equal(mm__keyring_kind(&kr), MM_KEY_CLIENT);
    assert_int_equal(mm__keyring_load_b64(&kr, "client:"), MM_EKEY);
    assert_int_equal(mm__keyring_load_b64(&kr, "cluster:" G_CLUSTER_B64),
                     MM_EKEY);

    /* Nothing to derive: a client key again, or anything from read-only;
     * and no key at all. */
    snprintf(text, sizeof(text), "%s/x", d->path);
    assert_int_equal(mm_client_keygen(clp, text, 0, err, sizeof(err)),
                     MM_EINVAL);
    assert_string_equal(err,
                        "the key given is a client key: it derives no client "
                        "key");
    assert_int_equal(mm_client_keygen(rop, text, 1, err, sizeof(err)),
                     MM_EINVAL);
    assert_int_equal(mm_client_keygen(NULL, text, 0, err, sizeof(err)),
                     MM_EINVAL);
    assert_non_null(strstr(err, "no cluster key given"));
    assert_int_equal(access(text, F_OK), -1);

    /* A file mixing kinds is refused. */
    char mix[128];
    snprintf(mix, sizeof(mix), "%s/mix", d->path);
    write_file(mix, G_CLUSTER_B64 "\n" G_CLIENT_LINE "\n", 0600);
    assert_int_equal(mm__keyring_load(&kr, mix, err, sizeof(err)), MM_EKEY);
    assert_non_null(strstr(err, "mixes cluster and client keys"));

    /* A rotating ring gives one client line per key, in order. */
    char two[128], two_cl[128];
    snprintf(two, sizeof(two), "%s/two", d->path);
    snprintf(two_cl, sizeof(two_cl), "%s/two.client", d->path);
    write_file(two,
               "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n" G_CLUSTER_B64
               "\n",
               0600);
    assert_int_equal(mm_client_keygen(two, two_cl, 0, err, sizeof(err)), 0);
    assert_int_equal(mm__keyring_load(&kr, two_cl, NULL, 0), 0);
    assert_int_equal(kr.n, 2);
    char hex[65];
    hex_of(hex, kr.keys[1], 32);
    assert_string_equal(hex, G_CLIENT_HEX);
    mm__keyring_release(&kr);
}

/* ---- rotation and the saved keyring ------------------------------------ */

static void
fill_key(uint8_t k[MM_CKEY_LEN], uint8_t b)
{
    memset(k, b, MM_CKEY_LEN);
}

static void
test_ckey_rotation_steps(void **state)
{
    (void)state;
    struct mm_keyring kr;
    uint8_t k1[MM_CKEY_LEN], k2[MM_CKEY_LEN], k3[MM_CKEY_LEN];
    fill_key(k1, 1);
    fill_key(k2, 2);
    fill_key(k3, 3);
    mm__keyring_load_dev(&kr);
    memcpy(kr.keys[0], k1, MM_CKEY_LEN);
    kr.ids[0] = mm__ckey_id(k1);
    int changed;
    /* install: appended, not primary; twice is a no-op. */
    assert_int_equal(mm__keyring_install(&kr, k2, &changed), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(kr.n, 2);
    assert_int_equal(kr.dev, 0);
    assert_memory_equal(kr.keys[0], k1, MM_CKEY_LEN);
    assert_int_equal(kr.ids[1], mm__ckey_id(k2));
    assert_int_equal(mm__keyring_install(&kr, k2, &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(kr.n, 2);
    /* use: a key not installed is refused; an installed one moves first. */
    assert_int_equal(mm__keyring_use(&kr, k3, &changed), MM_ENOTFOUND);
    assert_int_equal(mm__keyring_use(&kr, k2, &changed), 0);
    assert_int_equal(changed, 1);
    assert_memory_equal(kr.keys[0], k2, MM_CKEY_LEN);
    assert_memory_equal(kr.keys[1], k1, MM_CKEY_LEN);
    assert_int_equal(kr.ids[0], mm__ckey_id(k2));
    assert_int_equal(kr.ids[1], mm__ckey_id(k1));
    /* remove: never the primary; then k1 goes. */
    assert_int_equal(mm__keyring_remove(&kr, k2, &changed), MM_EINVAL);
    assert_int_equal(kr.n, 2);
    assert_int_equal(mm__keyring_remove(&kr, k3, &changed), MM_ENOTFOUND);
    assert_int_equal(mm__keyring_remove(&kr, k1, &changed), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(kr.n, 1);
    assert_memory_equal(kr.keys[0], k2, MM_CKEY_LEN);
    assert_int_equal(mm__keyring_find(&kr, mm__ckey_id(k1)), -1);
    /* The bound: MM_KEYRING_MAX keys, one more refused. */
    for (int i = 1; i < MM_KEYRING_MAX; i++) {
        uint8_t k[MM_CKEY_LEN];
        fill_key(k, (uint8_t)(0x40 + i));
        assert_int_equal(mm__keyring_install(&kr, k, &changed), 0);
    }
    assert_int_equal(kr.n, MM_KEYRING_MAX);
    assert_int_equal(mm__keyring_install(&kr, k3, &changed), UV_ENOBUFS);
    assert_int_equal(changed, 0);
    assert_int_equal(kr.n, MM_KEYRING_MAX);
    /* Fingerprints: 16 hex chars, the key id first (LE), distinct. */
    char f1[MM_KEY_FP_LEN + 1], f2[MM_KEY_FP_LEN + 1];
    mm__ckey_fingerprint(k1, f1);
    mm__ckey_fingerprint(k2, f2);
    assert_int_equal(strlen(f1), MM_KEY_FP_LEN);
    assert_string_not_equal(f1, f2);
    char idhex[9];
    uint32_t id = mm__ckey_id(k1);
    uint8_t le[4] = {(uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16),
                     (uint8_t)(id >> 24)};
    mm__hex(idhex, le, 4);
    assert_memory_equal(f1, idhex, 8);
    mm__keyring_release(&kr);
}

static void
test_ckey_saved_keyring(void **state)
{
    struct tdir *d = *state;
    struct mm_keyring kr, back;
    char err[2048], path[128], tmp[128];
    snprintf(path, sizeof(path), "%s/keyring", d->path);
    snprintf(tmp, sizeof(tmp), "%s/.keyring.tmp", d->path);
    /* Nothing saved yet: not found, |back| untouched. */
    memset(&back, 0x5a, sizeof(back));
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     MM_ENOTFOUND);
    assert_int_equal(back.n, (size_t)0x5a5a5a5a5a5a5a5aull);

    uint8_t k1[MM_CKEY_LEN], k2[MM_CKEY_LEN];
    fill_key(k1, 1);
    fill_key(k2, 2);
    mm__keyring_load_dev(&kr);
    int changed;
    memcpy(kr.keys[0], k1, MM_CKEY_LEN);
    kr.ids[0] = mm__ckey_id(k1);
    assert_int_equal(mm__keyring_install(&kr, k2, &changed), 0);
    assert_int_equal(mm__keyring_use(&kr, k2, &changed), 0);
    assert_int_equal(mm__keyring_save(&kr, d->path, err, sizeof(err)), 0);
    /* One base64 key per line, primary first; mode 0600; no temp left. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(access(tmp, F_OK), -1);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(mm__read_small_file(path, 4096, &text, &len, &st), 0);
    assert_int_equal(len, 2 * 45);
    char b64[64];
    b64[mm__base64_encode(b64, k2, MM_CKEY_LEN)] = '\0';
    assert_memory_equal(text, b64, 44);
    mm__free(text);

    /* Reloaded: same keys, same order, ids, not dev. */
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     0);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.dev, 0);
    assert_string_equal(back.source, "data dir");
    assert_memory_equal(back.keys[0], k2, MM_CKEY_LEN);
    assert_memory_equal(back.keys[1], k1, MM_CKEY_LEN);
    assert_int_equal(back.ids[0], mm__ckey_id(k2));

    /* A save replaces the file (a leftover temp file of a crash does not
     * stop it), the old content is gone whole. */
    write_file(tmp, "half a keyr", 0600);
    assert_int_equal(mm__keyring_remove(&kr, k1, &changed), 0);
    assert_int_equal(mm__keyring_save(&kr, d->path, err, sizeof(err)), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     0);
    assert_int_equal(back.n, 1);
    assert_memory_equal(back.keys[0], k2, MM_CKEY_LEN);

    /* Corrupt, loose, or of client keys: refused, with the file named. */
    write_file(path, "garbage\n", 0600);
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     MM_EKEY);
    assert_non_null(strstr(err, "saved keyring refused"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "malformed"));
    b64[44] = '\n';
    b64[45] = '\0';
    write_file(path, b64, 0644);
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     MM_EKEY);
    assert_non_null(strstr(err, "chmod 600"));
    char line[80];
    snprintf(line, sizeof(line), "client:%s", b64);
    write_file(path, line, 0600);
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     MM_EKEY);
    assert_non_null(strstr(err, "client keys"));
    write_file(path, "", 0600); /* truncated to nothing */
    assert_int_equal(mm__keyring_load_saved(&back, d->path, err, sizeof(err)),
                     MM_EKEY);

    /* A client keyring is never saved; nor into a missing directory. */
    back.kinds[0] = MM_KEY_CLIENT;
    back.n = 1;
    assert_int_equal(mm__keyring_save(&back, d->path, err, sizeof(err)),
                     MM_EINVAL);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/nope", d->path);
    assert_true(mm__keyring_save(&kr, missing, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "cannot save the keyring"));
    mm__keyring_release(&kr);
    mm__keyring_release(&back);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ckey_keygen_file_mode_and_exists,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ckey_loose_permissions_refused,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ckey_malformed_refused, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_ckey_keyring_several_lines,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ckey_env_precedence, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_ckey_load_returns_error_text,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_ckey_derive_labels),
        cmocka_unit_test(test_ckey_client_golden),
        cmocka_unit_test(test_ckey_client_golden_in_doc),
        cmocka_unit_test_setup_teardown(test_ckey_client_keygen_files,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_ckey_rotation_steps),
        cmocka_unit_test_setup_teardown(test_ckey_saved_keyring, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
