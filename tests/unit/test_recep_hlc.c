/*
 * test_recep_hlc.c — the registry's clock on a node: a remote registration
 * whose HLC is near 2^64 (beyond the drift bound) is applied and ranked
 * (it loses every conflict), but does not drag the node's clock: the
 * node's own registrations after it stay on its wall clock and never wrap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common.h"
#include "helpers/nodefix.h"
#include "hlc.h"
#include "oplog.h"
#include "registry.h"

/* The records a fake origin appends, gathered into one batch. */
static void
gather(void *data, const uint8_t *rec, size_t len, int local)
{
    (void)local;
    assert_int_equal(mm__oplog_batch_add(data, rec, len), 0);
}

static int
hlc_of(void *data, const struct mm_registry_entry *e)
{
    if (e->winner) *(uint64_t *)data = e->hlc;
    return 0;
}

static uint64_t
winner_hlc(mm_node *n, const char *label, mm_endpoint *ep)
{
    uint64_t h = 0;
    assert_true(mm__registry_claimants(n, label, hlc_of, &h) >= 1);
    if (ep) assert_int_equal(mm_lookup(n, label, ep), 0);
    return h;
}

static void
spawn(mm_node *n, const char *label, mm_endpoint *ep)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    assert_int_equal(mm_spawn(n, "echo", &o, ep), 0);
}

static void
test_recep_far_future_hlc_does_not_drag_the_clock(void **state)
{
    (void)state;
    mm_log_set_level(MM_LOG_ERR);
    mm_node *n = nodefix_up(&(struct nodefix_opts){.builtins = 1});

    /* A fake origin registers "x/far" and "dup" at 2^64 - 2. */
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    struct mm__oplog_cbs cbs = {NULL, gather, &b};
    uint8_t fake[MM_NODE_ID_LEN];
    memset(fake, 0xee, sizeof(fake));
    mm__oplog *o;
    assert_int_equal(mm__oplog_new(&o, fake, 1, &cbs), 0);
    assert_int_equal(mm__oplog_register(o, "x/far", "echo", MM_VIS_INTERNAL, 1,
                                        NULL, 0, MM_HLC_MAX - 1, NULL),
                     0);
    assert_int_equal(mm__oplog_register(o, "dup", "echo", MM_VIS_INTERNAL, 2,
                                        NULL, 0, MM_HLC_MAX - 1, NULL),
                     0);
    assert_int_equal(mm__oplog_batch_finish(&b), 0);
    size_t applied = 0;
    assert_int_equal(mm__recep_apply(n, b.buf, b.len, &applied), 0);
    assert_int_equal(applied, 2);
    mm__oplog_batch_release(&b);
    mm__oplog_free(o);
    mm_endpoint ep;
    assert_true(winner_hlc(n, "x/far", &ep) == MM_HLC_MAX - 1);

    /* The node's own registrations after it: on its wall clock, strictly
     * increasing, never wrapped to small values. */
    uint64_t prev = 0;
    for (int i = 0; i < 40; i++) {
        char label[32];
        snprintf(label, sizeof(label), "own/%d", i);
        uint64_t before = mm__wall_ms();
        spawn(n, label, &ep);
        uint64_t h = winner_hlc(n, label, NULL);
        uint64_t after = mm__wall_ms();
        assert_true(h > prev);
        assert_true(MM_HLC_WALL(h) >= before);
        assert_true(MM_HLC_WALL(h) <= after + 1);
        prev = h;
    }

    /* The local claim of "dup" is stamped later but ranks first: a stamp
     * beyond the bound never wins a conflict. */
    mm_endpoint mine;
    spawn(n, "dup", &mine);
    assert_int_equal(mm_lookup(n, "dup", &ep), 0);
    assert_true(mm_endpoint_equal(&ep, &mine));
    nodefix_down(n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recep_far_future_hlc_does_not_drag_the_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
