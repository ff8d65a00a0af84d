/* test_hlc.c — hybrid logical clock with a fake wall clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"
#include "hlc.h"

static void
test_hlc_now_follows_wall_clock(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 0);
    uint64_t a = mm__hlc_now(&h, 1000);
    assert_int_equal(MM_HLC_WALL(a), 1000);
    assert_int_equal(MM_HLC_LOGICAL(a), 0);
    uint64_t b = mm__hlc_now(&h, 1000);
    assert_int_equal(MM_HLC_WALL(b), 1000);
    assert_int_equal(MM_HLC_LOGICAL(b), 1);
    uint64_t c = mm__hlc_now(&h, 2000);
    assert_int_equal(c, MM_HLC_MAKE(2000, 0));
}

static void
test_hlc_now_monotonic_when_wall_goes_back(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 0);
    uint64_t prev = mm__hlc_now(&h, 5000);
    for (uint64_t w = 4999; w > 4000; w--) {
        uint64_t t = mm__hlc_now(&h, w);
        assert_true(t > prev);
        assert_int_equal(MM_HLC_WALL(t), 5000);
        prev = t;
    }
}

static void
test_hlc_logical_overflow_carries(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 0);
    h.last = MM_HLC_MAKE(7, 0xffff);
    uint64_t t = mm__hlc_now(&h, 7);
    assert_true(t > MM_HLC_MAKE(7, 0xffff));
    assert_int_equal(t, MM_HLC_MAKE(8, 0));
}

static void
test_hlc_update_merges_remote(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 0);
    mm__hlc_now(&h, 100);
    /* Remote ahead: adopt its wall, logical + 1. */
    uint64_t r = MM_HLC_MAKE(300, 5);
    uint64_t t = mm__hlc_update(&h, r, 200);
    assert_int_equal(t, MM_HLC_MAKE(300, 6));
    /* Same wall on both sides: max logical + 1. */
    t = mm__hlc_update(&h, MM_HLC_MAKE(300, 9), 250);
    assert_int_equal(t, MM_HLC_MAKE(300, 10));
    /* Local wall clock ahead of both: logical resets. */
    t = mm__hlc_update(&h, MM_HLC_MAKE(300, 50), 400);
    assert_int_equal(t, MM_HLC_MAKE(400, 0));
    /* Remote behind: local logical + 1. */
    t = mm__hlc_update(&h, MM_HLC_MAKE(10, 0), 400);
    assert_int_equal(t, MM_HLC_MAKE(400, 1));
    /* Every later local event is after the merged remote. */
    assert_true(mm__hlc_now(&h, 1) > t);
}

static void
test_hlc_update_ignores_far_future(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 1000);
    uint64_t t = mm__hlc_update(&h, MM_HLC_MAKE(100000, 0), 5000);
    assert_int_equal(MM_HLC_WALL(t), 5000);
    t = mm__hlc_update(&h, MM_HLC_MAKE(5900, 3), 5000);
    assert_int_equal(t, MM_HLC_MAKE(5900, 4));
}

/* A carry past the last millisecond saturates: never a wrap to 0. */
static void
test_hlc_saturates_instead_of_wrapping(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, 0); /* unbounded: a remote may take it anywhere */
    uint64_t t = mm__hlc_update(&h, MM_HLC_MAX - 1, 1000);
    assert_true(t == MM_HLC_MAX);
    uint64_t prev = t;
    for (int i = 0; i < 100; i++) {
        t = mm__hlc_now(&h, 1000 + (uint64_t)i);
        assert_true(t >= prev);
        assert_true(t == MM_HLC_MAX);
        prev = t;
    }
    /* Merging keeps it there too. */
    assert_true(mm__hlc_update(&h, MM_HLC_MAKE(5, 5), 2000) == MM_HLC_MAX);
    assert_true(mm__hlc_update(&h, MM_HLC_MAX, 2000) == MM_HLC_MAX);

    /* The last millisecond's logical counter running out saturates. */
    mm__hlc_init(&h, 0);
    h.last = MM_HLC_MAKE(MM_HLC_WALL_MASK, 0xfffe);
    assert_true(mm__hlc_now(&h, 0) == MM_HLC_MAKE(MM_HLC_WALL_MASK, 0xffff));
    assert_true(mm__hlc_now(&h, 0) == MM_HLC_MAX);
    assert_true(mm__hlc_now(&h, 0) == MM_HLC_MAX);
    /* A remote at the very end, merged: saturates, does not wrap. */
    mm__hlc_init(&h, 0);
    mm__hlc_now(&h, 1000);
    assert_true(mm__hlc_update(&h, MM_HLC_MAKE(MM_HLC_WALL_MASK, 0xffff),
                               1000) == MM_HLC_MAX);
    assert_true(mm__hlc_now(&h, 1001) == MM_HLC_MAX);
}

/* A remote stamp beyond the drift bound is counted, not merged: the local
 * clock stays on the wall clock, however far ahead the remote is. */
static void
test_hlc_drift_bound_keeps_clock(void **state)
{
    (void)state;
    struct mm__hlc h;
    mm__hlc_init(&h, MM_HLC_MAX_DRIFT_MS);
    uint64_t now = 1700000000000ull;
    uint64_t far[] = {MM_HLC_MAX, MM_HLC_MAX - 1,
                      MM_HLC_MAKE(now + MM_HLC_MAX_DRIFT_MS + 1, 0),
                      MM_HLC_MAKE(now + 86400000ull, 7)};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
        assert_false(mm__hlc_trusted(&h, far[i], now));
        uint64_t t = mm__hlc_update(&h, far[i], now);
        assert_int_equal(MM_HLC_WALL(t), now);
        assert_int_equal(h.ahead, i + 1);
    }
    /* Stamps after it follow the wall clock: no wrap, no drag. */
    uint64_t prev = h.last;
    for (int i = 0; i < 20; i++) {
        uint64_t t = mm__hlc_now(&h, now);
        assert_true(t > prev);
        assert_int_equal(MM_HLC_WALL(t), now);
        prev = t;
    }
    /* Right at the bound: trusted and merged. */
    uint64_t edge = MM_HLC_MAKE(now + MM_HLC_MAX_DRIFT_MS, 3);
    assert_true(mm__hlc_trusted(&h, edge, now));
    assert_int_equal(mm__hlc_update(&h, edge, now),
                     MM_HLC_MAKE(now + MM_HLC_MAX_DRIFT_MS, 4));
    assert_int_equal(h.ahead, 4);
    /* Behind or at our wall clock: always trusted. */
    assert_true(mm__hlc_trusted(&h, 0, now));
    assert_true(mm__hlc_trusted(&h, MM_HLC_MAKE(now, 0xffff), now));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_now_follows_wall_clock),
        cmocka_unit_test(test_hlc_now_monotonic_when_wall_goes_back),
        cmocka_unit_test(test_hlc_logical_overflow_carries),
        cmocka_unit_test(test_hlc_update_merges_remote),
        cmocka_unit_test(test_hlc_update_ignores_far_future),
        cmocka_unit_test(test_hlc_saturates_instead_of_wrapping),
        cmocka_unit_test(test_hlc_drift_bound_keeps_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
