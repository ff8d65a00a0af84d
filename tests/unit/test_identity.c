/* test_identity.c — node key, certificate, generation and data-dir lock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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
    /* The certificate (made by GnuTLS) as OpenSSL reads it: self-signed
     * by that key, v3, CN "murmer <id>", a leaf for TLS either way. */
    bio = BIO_new_mem_buf(id.cert_pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    assert_int_equal(X509_verify(x, pk), 1);
    assert_int_equal(X509_check_private_key(x, pk), 1);
    assert_int_equal(X509_get_version(x), 2);
    char cn[64], want_cn[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                          NID_commonName, cn, sizeof(cn)) > 0);
    snprintf(want_cn, sizeof(want_cn), "murmer %s", id.hex);
    assert_string_equal(cn, want_cn);
    assert_int_equal(
        X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
    assert_true(X509_get_extended_key_usage(x) ==
                (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(x),
                              &(time_t){time(NULL) + (time_t)36000 * 86400}) >
                0);
    X509_free(x);
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

/* A data dir written before murmer moved from OpenSSL to GnuTLS and
 * nettle: its key and certificate load unchanged, with the same node id. */
static const char old_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIgo1R0405CelJSTXwfpryG8VCRkWtJ/kZ6QE52N6j4M\n"
    "-----END PRIVATE KEY-----\n";
static const char old_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBWzCCAQ2gAwIBAgIIHjUB/bewIz4wBQYDK2VwMDIxMDAuBgNVBAMMJ211cm1l\n"
    "ciBlYWQ5NTM0NTI4MzE1YTAwZWE4NzJmMmZiZDY3MjAyNjAgFw0yNjEyMDUyMDIy\n"
    "NTZaGA8yMTI2MTExMjIwMjI1NlowMjEwMC4GA1UEAwwnbXVybWVyIGVhZDk1MzQ1\n"
    "MjgzMTVhMDBlYTg3MmYyZmJkNjcyMDI2MCowBQYDK2VwAyEAAlHK0tY0y2O+XgYz\n"
    "VM2g//N3yGQvn/s770XS34SfXrOjPzA9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/\n"
    "BAQDAgeAMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcDAjAFBgMrZXADQQDO\n"
    "q2zUHucmQ5pnkgkziD+WveMBuDVRAg+t9aJEGkFoE2IpbnYBfdJ8e5WGJkbgnRsI\n"
    "fqZgKGsgHknY8Cn+5QIP\n"
    "-----END CERTIFICATE-----\n";

static void
write_file(const char *dir, const char *name, const char *text, int mode)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(p, (mode_t)mode), 0);
}

static void
test_identity_openssl_files_load_unchanged(void **state)
{
    struct tdir *d = *state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", d->dir);
    assert_int_equal(system(cmd), 0);
    write_file(d->dir, "key.pem", old_key_pem, 0600);
    write_file(d->dir, "cert.pem", old_cert_pem, 0644);
    write_file(d->dir, "generation", "5\n", 0600);
    struct mm_identity id;
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_string_equal(id.hex, "ead9534528315a00ea872f2fbd672026");
    assert_int_equal(id.generation, 6);
    assert_string_equal(id.key_pem, old_key_pem);
    assert_string_equal(id.cert_pem, old_cert_pem); /* kept, not remade */
    assert_true(id.has_seed);
    /* The seed signs for the certificate's key. */
    struct mm_sign_key *k = NULL;
    uint8_t sig[MM_ED25519_SIG_LEN];
    assert_int_equal(mm__sign_key_from_seed(&k, id.seed), 0);
    assert_int_equal(mm__ed25519_sign(k, "m", 1, sig), 0);
    assert_int_equal(mm__ed25519_verify(id.pub, "m", 1, sig), 0);
    mm__sign_key_free(k);
    mm__identity_release(&id);
    /* The CLI's read (no key parse) and its PEM path agree. */
    char err[200];
    assert_int_equal(mm__identity_read(&id, d->dir, err, sizeof(err)), 0);
    assert_string_equal(id.hex, "ead9534528315a00ea872f2fbd672026");
    uint8_t pub[MM_ED25519_KEY_LEN];
    assert_int_equal(mm__sign_key_from_pem(&k, id.key_pem), 0);
    assert_int_equal(mm__sign_key_public(k, pub), 0);
    assert_memory_equal(pub, id.pub, sizeof(pub));
    mm__sign_key_free(k);
    mm__identity_release(&id);
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

static void
put_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *
get_file(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The generation file: a valid one is bumped; a corrupt, truncated or
 * unreadable one, or none beside an existing key, refuses the load (and
 * is left as it was); missing on a fresh dir starts at 1. */
static void
test_identity_generation_file(void **state)
{
    struct tdir *d = *state;
    struct mm_identity id;
    char gp[256];
    snprintf(gp, sizeof(gp), "%s/generation", d->dir);
    /* Fresh: no file, generation 1, and the file says so. */
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 1);
    mm__identity_release(&id);
    assert_string_equal(get_file(gp), "1\n");

    /* Valid, with or without the newline. */
    put_file(gp, "41\n", 3);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 42);
    mm__identity_release(&id);
    assert_string_equal(get_file(gp), "42\n");
    put_file(gp, "1700000000", 10);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 1700000001);
    mm__identity_release(&id);

    static const struct {
        const char *text;
        size_t len;
    } bad[] = {
        {"", 0},        /* truncated to nothing */
        {"\n", 1},      /* no digits */
        {"4", 0},       /* (len 0: empty again) */
        {"12abc\n", 6}, /* garbage after */
        {"-3\n", 3},    /* a sign */
        {" 7\n", 3},    /* leading space */
        {"7\n\n", 3},   /* more than one newline */
        {"3\0"
         "5\n",
         4},                            /* a NUL inside */
        {"18446744073709551616\n", 21}, /* 2^64: out of range */
        {"99999999999999999999999\n", 24},
        {"18446744073709551615\n", 21}, /* 2^64 - 1: cannot bump */
        {"\xff\xfe\x01", 3},            /* binary */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_file(gp, bad[i].text, bad[i].len);
        assert_int_equal(mm__identity_load(&id, d->dir, 1), MM_EDECODE);
        /* Left as it was, and the lock was let go. */
        FILE *f = fopen(gp, "r");
        char buf[64];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        assert_int_equal(n, bad[i].len);
        assert_memory_equal(buf, bad[i].text, n);
    }

    /* Too large to be one. */
    char *big = malloc(2u << 20);
    assert_non_null(big);
    memset(big, '1', 2u << 20);
    put_file(gp, big, 2u << 20);
    free(big);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), MM_EDECODE);

    /* Unreadable: not a regular file. */
    assert_int_equal(unlink(gp), 0);
    assert_int_equal(mkdir(gp, 0700), 0);
    int rc = mm__identity_load(&id, d->dir, 1);
    assert_true(rc < 0 && rc != MM_EEXISTS);
    assert_int_equal(rmdir(gp), 0);

    /* Missing beside an existing identity: refused too. */
    assert_int_equal(mm__identity_load(&id, d->dir, 1), MM_EDECODE);
    assert_null(get_file(gp));
    /* Reading without a bump (the CLI's first use) does not need it. */
    assert_int_equal(mm__identity_load(&id, d->dir, 0), 0);
    mm__identity_release(&id);

    /* Repaired by hand: starts above it. */
    put_file(gp, "1800000000\n", 11);
    assert_int_equal(mm__identity_load(&id, d->dir, 1), 0);
    assert_int_equal(id.generation, 1800000001);
    mm__identity_release(&id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_created_once_and_stable,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_identity_openssl_files_load_unchanged, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_lock_refuses_second_load,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_loose_key_refused,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_identity_default_dir),
        cmocka_unit_test_setup_teardown(test_identity_generation_file,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_identity_read_shared, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
