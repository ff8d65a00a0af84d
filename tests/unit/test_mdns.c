/*
 * test_mdns.c — the pure half of lib/discovery/mdns.c (TXT parsing and
 * matching) and mm__mdns_find_seed without a daemon.  The avahi half runs
 * against real daemons in network namespaces: tests/bats/60-mdns.bats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "ckey.h"
#include "discovery/mdns.h"

static const char *TAG = "0123456789abcdef";

/* Feeds |item| through an exact-size heap copy (so ASan sees overreads). */
static void
feed(struct mm_mdns_txt *t, const char *item)
{
    size_t n = strlen(item);
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, item, n);
    mm__mdns_txt_item(t, p, n);
    free(p);
}

static void
test_mdns_txt_parses_fields(void **state)
{
    (void)state;
    struct mm_mdns_txt t;
    memset(&t, 0, sizeof(t));
    feed(&t, "id=00112233445566778899AABBCCDDEEFF");
    feed(&t, "ck=0123456789ABCDEF");
    feed(&t, "v=1");
    feed(&t, "org.freedesktop.Avahi.cookie=12345");
    assert_true(t.has_id);
    assert_true(t.has_ck);
    assert_false(t.bad_v);
    assert_int_equal(t.id[0], 0x00);
    assert_int_equal(t.id[10], 0xaa);
    assert_int_equal(t.id[15], 0xff);
    assert_string_equal(t.ck, "0123456789abcdef"); /* lower-cased */
    assert_int_equal(mm__mdns_txt_match(&t, TAG, NULL), 1);
}

static void
test_mdns_txt_rejects_malformed(void **state)
{
    (void)state;
    struct mm_mdns_txt t;
    memset(&t, 0, sizeof(t));
    feed(&t, "id=0011");                               /* short */
    feed(&t, "id=00112233445566778899aabbccddeeff00"); /* long */
    feed(&t, "id=zz112233445566778899aabbccddeeff");   /* not hex */
    feed(&t, "ck=0123456789abcde");                    /* short */
    feed(&t, "ck=0123456789abcdeg");                   /* not hex */
    feed(&t, "ck");                                    /* no '=' */
    feed(&t, "ck=");
    feed(&t, "");
    feed(&t, "idx=00112233445566778899aabbccddeeff"); /* other key */
    mm__mdns_txt_item(&t, NULL, 5);
    assert_false(t.has_id);
    assert_false(t.has_ck);
    assert_int_equal(mm__mdns_txt_match(&t, TAG, NULL), 0);
}

static void
test_mdns_txt_match_key_self_version(void **state)
{
    (void)state;
    uint8_t self[MM_NODE_ID_LEN];
    memset(self, 0x11, sizeof(self));
    struct mm_mdns_txt t;

    /* Another key's tag: no match. */
    memset(&t, 0, sizeof(t));
    feed(&t, "ck=fedcba9876543210");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 0);

    /* Our own id: never ourselves. */
    memset(&t, 0, sizeof(t));
    feed(&t, "ck=0123456789abcdef");
    feed(&t, "id=11111111111111111111111111111111");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 0);
    assert_int_equal(mm__mdns_txt_match(&t, TAG, NULL), 1);

    /* Another id, our key: a match; without id= too (id unknown). */
    memset(&t, 0, sizeof(t));
    feed(&t, "ck=0123456789abcdef");
    feed(&t, "id=22222222222222222222222222222222");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 1);
    memset(&t, 0, sizeof(t));
    feed(&t, "ck=0123456789abcdef");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 1);

    /* A version we do not speak: ignored. */
    feed(&t, "v=2");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 0);
    feed(&t, "v=1");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 1);
    feed(&t, "v=10");
    assert_int_equal(mm__mdns_txt_match(&t, TAG, self), 0);

    /* No tag of ours (no key): nothing matches. */
    memset(&t, 0, sizeof(t));
    feed(&t, "ck=0123456789abcdef");
    assert_int_equal(mm__mdns_txt_match(&t, "", self), 0);
    assert_int_equal(mm__mdns_txt_match(&t, NULL, self), 0);
}

/* The tag depends on the key only: the same key gives the same tag, two
 * keys give different tags, and it is 16 lowercase hex chars. */
static void
test_mdns_tag_depends_on_key(void **state)
{
    (void)state;
    struct mm_keyring a, b, a2;
    char ta[17], tb[17], ta2[17];
    assert_int_equal(mm__keyring_load_b64(
                         &a, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                     0);
    assert_int_equal(mm__keyring_load_b64(
                         &a2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                     0);
    assert_int_equal(mm__keyring_load_b64(
                         &b, "HwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                     0);
    mm__keyring_mdns_tag(&a, ta);
    mm__keyring_mdns_tag(&a2, ta2);
    mm__keyring_mdns_tag(&b, tb);
    assert_int_equal(strlen(ta), 16);
    assert_int_equal(strspn(ta, "0123456789abcdef"), 16);
    assert_string_equal(ta, ta2);
    assert_string_not_equal(ta, tb);
    mm__keyring_release(&a);
    mm__keyring_release(&a2);
    mm__keyring_release(&b);
}

/* No system bus at all: MM_EUNREACHABLE, well within the bound.  In a
 * child process: libdbus caches the bus address for the process's life. */
static void
test_mdns_find_seed_without_daemon(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mm_keyring kr;
        char out[64] = "untouched";
        if (mm__keyring_load_b64(
                &kr, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") != 0)
            _exit(10);
        setenv("DBUS_SYSTEM_BUS_ADDRESS",
               "unix:path=/nonexistent/murmer-test-bus", 1);
        uint64_t t0 = mm__now_ms();
        int rc = mm__mdns_find_seed(&kr, 3000, out, sizeof(out));
        uint64_t took = mm__now_ms() - t0;
        if (rc != MM_EUNREACHABLE) _exit(11);
        if (took >= 3500) _exit(12);
        if (strcmp(out, "untouched") != 0) _exit(13);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * Against a real daemon: tests/bats/60-mdns.bats runs this binary inside a
 * test namespace with MM_TEST_MDNS_KEY (base64 cluster key) and
 * MM_TEST_MDNS_EXPECT ("ip:port" of the node published there).  Skipped
 * otherwise: never browse the machine's real network.
 */
static void
test_mdns_find_seed_finds_node(void **state)
{
    (void)state;
    const char *key = getenv("MM_TEST_MDNS_KEY");
    const char *want = getenv("MM_TEST_MDNS_EXPECT");
    if (!key || !want) {
        skip();
        return;
    }
    struct mm_keyring kr, other;
    char out[64] = "", tiny[4] = "";
    assert_int_equal(mm__keyring_load_b64(&kr, key), 0);
    assert_int_equal(mm__mdns_find_seed(&kr, 5000, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    /* Too small a buffer: not found rather than truncated. */
    assert_int_equal(mm__mdns_find_seed(&kr, 5000, tiny, sizeof(tiny)),
                     MM_ENOTFOUND);
    /* Another key: not found, and bounded (a browse ends ~1 s). */
    assert_int_equal(
        mm__keyring_load_b64(&other,
                             "HwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        0);
    uint64_t t0 = mm__now_ms();
    assert_int_equal(mm__mdns_find_seed(&other, 3000, out, sizeof(out)),
                     MM_ENOTFOUND);
    assert_true(mm__now_ms() - t0 < 3600);
    mm__keyring_release(&kr);
    mm__keyring_release(&other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mdns_txt_parses_fields),
        cmocka_unit_test(test_mdns_txt_rejects_malformed),
        cmocka_unit_test(test_mdns_txt_match_key_self_version),
        cmocka_unit_test(test_mdns_tag_depends_on_key),
        cmocka_unit_test(test_mdns_find_seed_without_daemon),
        cmocka_unit_test(test_mdns_find_seed_finds_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
