/* test_identity.c — node key, certificate, generation and data-dir lock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common.h"
#include "crypto.h"
#include "identity.h"

struct tdir {
    char path[64];
    char dir[128];
};

static int
setup_dir(void **state)
{
    struct tdir *d = calloc(1, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/tmp/mm-id-XXXXXX");
    if (mkdtemp(d->path) == NULL) return -1;
    snprintf(d->dir, sizeof(d->dir), "%s/a/b/node", d->path);
    mm_log_set_level(MM_LOG_ERR - 1);
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
    mm_log_set_level(MM_LOG_WARN);
    return 0;
}

static void
test_identity_created_once_and_stable(void **state)
{
    struct tdir *d = *state;
    struct mm_identity id;
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 1);
    assert_int_equal(strlen(id.hex), 32);
    assert_non_null(strstr(id.key_pem, "BEGIN PRIVATE KEY"));
    assert_non_null(strstr(id.cert_pem, "BEGIN CERTIFICATE"));

    /* The node id is SHA-256(raw public key)[0:16], from OpenSSL. */
    BIO *bio = BIO_new_mem_buf(id.key_pem, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pk);
    uint8_t raw[32], h[32];
    size_t rl = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &rl), 1);
    EVP_PKEY_free(pk);
    mm__sha256(h, raw, 32);
    assert_memory_equal(h, id.id, 16);
    char hex[33];
    mm__hex(hex, h, 16);
    assert_string_equal(hex, id.hex);

    /* Modes: dir 0700, key 0600. */
    struct stat st;
    char p[256];
    assert_int_equal(stat(d->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof(p), "%s/key.pem", d->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    uint8_t first[16];
    memcpy(first, id.id, 16);
    char *cert = strdup(id.cert_pem);
    mm__identity_release(&id);

    /* Stable across loads; the generation bumps. */
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_memory_equal(id.id, first, 16);
    assert_int_equal(id.generation, 2);
    assert_string_equal(id.cert_pem, cert);
    mm__identity_release(&id);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 3);
    mm__identity_release(&id);
    /* bump = 0 reads without changing it. */
    assert_int_equal(mm__identity_load(&id, d->dir, 0), 0);
    assert_int_equal(id.generation, 3);
    mm__identity_release(&id);
    free(cert);
}

static void
test_identity_lock_refuses_second_load(void **state)
{
    struct tdir *d = *state;
    struct mm_identity a, b;
    assert_int_equal(mm__identity_load(&a, d->dir, 1), 0);
    assert_int_equal(mm__identity_load(&b, d->dir, 1), MM_EEXISTS);
    mm__identity_release(&a);
    /* Released: a load succeeds again. */
    assert_int_equal(mm__identity_load(&b, d->dir, 1), 0);
    assert_int_equal(b.generation, 2);
    mm__identity_release(&b);
}

static void
test_identity_loose_key_refused(void **state)
{
    struct tdir *d = *state;
    struct mm_identity id;
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    mm__identity_release(&id);
    char p[256];
    snprintf(p, sizeof(p), "%s/key.pem", d->dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), MM_EKEY);
    /* And the lock was released on that failure. */
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    mm__identity_release(&id);
}

static void
test_identity_default_dir(void **state)
{
    (void)state;
    char buf[256];
    setenv("XDG_STATE_HOME", "/x/state", 1);
    assert_int_equal(mm__identity_default_dir(buf, sizeof(buf), "n1", 0), 0);
    assert_string_equal(buf, "/x/state/murmer/n1");
    assert_int_equal(mm__identity_default_dir(buf, sizeof(buf), NULL, 1), 0);
    assert_string_equal(buf, "/x/state/murmer-cli");
    assert_int_equal(mm__identity_default_dir(buf, 8, "n1", 0), UV_ENOBUFS);
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(mm__identity_default_dir(buf, sizeof(buf), "n1", 0), 0);
    if (geteuid() == 0)
        assert_string_equal(buf, "/var/lib/murmer/n1");
    else
        assert_non_null(strstr(buf, "/.local/state/murmer/n1"));
}

/* The CLI's read: no lock, the same identity, made on first use. */
static void
test_identity_read_shared(void **state)
{
    struct tdir *d = *state;
    struct mm_identity a, b, n;
    char err[512], p[256];
    /* First use makes it, and lets the lock go. */
    assert_int_equal(mm__identity_read(&a, d->dir, err, sizeof(err)), 0);
    assert_int_equal(a.lock_fd, -1);
    assert_int_equal(mm__identity_load(&n, d->dir, 0), 0);
    assert_memory_equal(n.id, a.id, MM_ID_LEN);
    assert_memory_equal(n.pub, a.pub, MM_ED25519_PUB_LEN);
    /* Read again while the lock is held: the same identity. */
    assert_int_equal(mm__identity_read(&b, d->dir, err, sizeof(err)), 0);
    assert_string_equal(b.hex, n.hex);
    assert_string_equal(b.cert_pem, n.cert_pem);
    mm__identity_release(&b);
    mm__identity_release(&n);

    /* A loose key.pem: refused, with the reason. */
    snprintf(p, sizeof(p), "%s/key.pem", d->dir);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(mm__identity_read(&b, d->dir, err, sizeof(err)), MM_EKEY);
    assert_non_null(strstr(err, "key.pem is accessible by group or others "
                                "(mode 640)"));
    assert_int_equal(chmod(p, 0600), 0);

    /* A cert.pem that holds no Ed25519 key is made again. */
    snprintf(p, sizeof(p), "%s/cert.pem", d->dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(mm__identity_read(&b, d->dir, err, sizeof(err)), 0);
    assert_string_equal(b.hex, a.hex);
    assert_non_null(strstr(b.cert_pem, "BEGIN CERTIFICATE"));
    mm__identity_release(&b);
    mm__identity_release(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_created_once_and_stable,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_lock_refuses_second_load,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_loose_key_refused,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_identity_default_dir),
        cmocka_unit_test_setup_teardown(test_identity_read_shared, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
