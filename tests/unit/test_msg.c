/* test_msg.c — message storage: short type names and small payloads live
 * in the message, longer ones on the heap; clone and take (the router's
 * move) keep both kinds intact and free each exactly once (ASan checks the
 * frees). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static void
check(const mm_msg *m, const char *type, const char *data, size_t len)
{
    size_t n = 99;
    assert_string_equal(mm_msg_type(m), type);
    const char *d = mm_msg_data(m, &n);
    assert_int_equal(n, len);
    assert_memory_equal(d, data, len);
    assert_int_equal(d[len], '\0'); /* the NUL JSON parsing relies on */
}

static void
test_msg_inline_and_heap_storage(void **state)
{
    char type[MSG_TNAME_INLINE + 2], data[MSG_DATA_INLINE + 2];
    (void)state;
    memset(type, 't', sizeof(type));
    memset(data, '7', sizeof(data));
    /* Each side of both limits: the longest that fit inline, one more. */
    for (size_t tl = MSG_TNAME_INLINE - 1; tl <= MSG_TNAME_INLINE; tl++) {
        for (size_t dl = MSG_DATA_INLINE - 1; dl <= MSG_DATA_INLINE; dl++) {
            char t[sizeof(type)];
            memcpy(t, type, tl);
            t[tl] = '\0';
            mm_msg *m = mm_msg_new_json(t, data, dl);
            assert_non_null(m);
            assert_int_equal(m->type_name == m->tname, tl < MSG_TNAME_INLINE);
            assert_int_equal((const unsigned char *)m->data == m->inl,
                             dl < MSG_DATA_INLINE);
            check(m, t, data, dl);

            mm_msg *c = mm__msg_clone(m);
            assert_non_null(c);
            check(c, t, data, dl);
            assert_ptr_not_equal(c->data, m->data);

            mm_msg *k = mm__msg_take(m);
            assert_non_null(k);
            check(k, t, data, dl);
            /* The source is left empty; its storage is the taker's. */
            assert_string_equal(mm_msg_type(m), "");
            assert_int_equal(mm_msg_content(m), MM_CONTENT_NONE);
            assert_null(mm_msg_data(m, NULL));
            if (dl < MSG_DATA_INLINE)
                assert_ptr_equal(k->data, k->inl); /* not m's inl */
            mm_msg_free(m);
            check(k, t, data, dl); /* still intact after the source went */
            mm_msg_free(k);
            mm_msg_free(c);
        }
    }
}

static void
test_msg_raw_and_empty(void **state)
{
    static const unsigned char raw[3] = {0, 1, 2};
    (void)state;
    mm_msg *m = mm_msg_new_raw("r", raw, sizeof(raw));
    assert_non_null(m);
    assert_int_equal(mm_msg_content(m), MM_CONTENT_RAW);
    check(m, "r", (const char *)raw, sizeof(raw));
    mm_msg_free(m);
    m = mm_msg_new_json(NULL, "", 0);
    assert_non_null(m);
    check(m, "", "", 0);
    mm_msg_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_inline_and_heap_storage),
        cmocka_unit_test(test_msg_raw_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
