/* test_supervisor.c — restart policy, limits and backoff with a fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"
#include "supervisor.h"

static void
test_supervisor_temporary_never_restarts(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(mm__sup_init(&s, MM_TEMPORARY, -1, 0, 0, 0, 0), 0);
    assert_int_equal(mm__sup_decide(&s, 1, 1000, &d), MM_SUP_TERMINATE);
    assert_int_equal(mm__sup_decide(&s, 0, 1000, &d), MM_SUP_TERMINATE);
    mm__sup_release(&s);
}

static void
test_supervisor_transient_only_after_crash(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(mm__sup_init(&s, MM_TRANSIENT, -1, 0, 0, 0, 0), 0);
    assert_int_equal(mm__sup_decide(&s, 0, 1000, &d), MM_SUP_TERMINATE);
    assert_int_equal(mm__sup_decide(&s, 1, 1000, &d), MM_SUP_RESTART);
    assert_int_equal(d, MM_BACKOFF_INITIAL_MS);
    mm__sup_release(&s);
}

static void
test_supervisor_permanent_after_stop_too(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(mm__sup_init(&s, MM_PERMANENT, -1, 0, 0, 0, 0), 0);
    assert_int_equal(mm__sup_decide(&s, 0, 1000, &d), MM_SUP_RESTART);
    mm__sup_release(&s);
}

static void
test_supervisor_limit_3_means_4_starts(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(mm__sup_init(&s, MM_PERMANENT, 3, 60000, 1, 1000, 0), 0);
    int starts = 1; /* the first start */
    uint64_t now = 5000;
    for (;;) {
        int v = mm__sup_decide(&s, 1, now, &d);
        if (v != MM_SUP_RESTART) {
            assert_int_equal(v, MM_SUP_LIMIT);
            break;
        }
        starts++;
        now += d;
    }
    assert_int_equal(starts, 4);
    mm__sup_release(&s);
}

static void
test_supervisor_window_forgets_old_restarts(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(mm__sup_init(&s, MM_PERMANENT, 2, 1000, 10, 10, 0), 0);
    assert_int_equal(mm__sup_decide(&s, 1, 100, &d), MM_SUP_RESTART);
    assert_int_equal(mm__sup_decide(&s, 1, 200, &d), MM_SUP_RESTART);
    assert_int_equal(mm__sup_decide(&s, 1, 300, &d), MM_SUP_LIMIT);
    struct mm_sup t;
    assert_int_equal(mm__sup_init(&t, MM_PERMANENT, 2, 1000, 10, 10, 0), 0);
    assert_int_equal(mm__sup_decide(&t, 1, 100, &d), MM_SUP_RESTART);
    assert_int_equal(mm__sup_decide(&t, 1, 200, &d), MM_SUP_RESTART);
    /* Both restarts are older than the window now. */
    assert_int_equal(mm__sup_decide(&t, 1, 1300, &d), MM_SUP_RESTART);
    mm__sup_release(&s);
    mm__sup_release(&t);
}

static void
test_supervisor_backoff_doubles_caps_and_resets(void **state)
{
    (void)state;
    struct mm_sup s;
    uint32_t d;
    assert_int_equal(
        mm__sup_init(&s, MM_PERMANENT, 100, 3600000, 100, 30000, 60000), 0);
    uint32_t want[] = {100,  200,   400,   800,   1600, 3200,
                       6400, 12800, 25600, 30000, 30000};
    uint64_t now = 1000;
    for (size_t i = 0; i < MM_ARRAY_SIZE(want); i++) {
        assert_int_equal(mm__sup_decide(&s, 1, now, &d), MM_SUP_RESTART);
        assert_int_equal(d, want[i]);
        now += d + 1;
    }
    /* A quiet minute resets the backoff. */
    now += 60000;
    assert_int_equal(mm__sup_decide(&s, 1, now, &d), MM_SUP_RESTART);
    assert_int_equal(d, 100);
    /* ...but not a shorter pause. */
    now += 59000;
    assert_int_equal(mm__sup_decide(&s, 1, now, &d), MM_SUP_RESTART);
    assert_int_equal(d, 200);
    mm__sup_release(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supervisor_temporary_never_restarts),
        cmocka_unit_test(test_supervisor_transient_only_after_crash),
        cmocka_unit_test(test_supervisor_permanent_after_stop_too),
        cmocka_unit_test(test_supervisor_limit_3_means_4_starts),
        cmocka_unit_test(test_supervisor_window_forgets_old_restarts),
        cmocka_unit_test(test_supervisor_backoff_doubles_caps_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
