/* test_ckey.c — cluster key generation, keyring sources and derivation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "crypto.h"
#include "ckey.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
