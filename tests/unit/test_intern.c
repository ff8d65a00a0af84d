/*
 * test_intern.c — interned message names (lib/nodes.c): ids are stable
 * and distinct across the growth of the table and its index (past 32 and
 * 64 names), unknown names are 0, two nodes asked alternately answer each
 * with its own ids, and a message by name reaches the handler registered
 * for it, whatever the order of registration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "murmer.h"
#include "helpers/nodefix.h"

#define NTYPES 3
#define NPER 50 /* 150 names: the table grows from 32 to 256 */

static char names[NTYPES][NPER][32];
static mm_handler handlers[NTYPES][NPER];
static mm_actor_type types[NTYPES];
static char type_names[NTYPES][16];

/* Replies the name of the message it got. */
static int
reply_name(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    return mm_reply_jsonf(ctx, "\"%s\"", mm_msg_type(msg)) < 0 ? -1 : 0;
}

static void
test_intern_many(void **state)
{
    (void)state;
    mm_node *n = nodefix_new(&(struct nodefix_opts){.name = "intern"});
    uint32_t ids[NTYPES][NPER];
    for (int t = 0; t < NTYPES; t++) {
        for (int i = 0; i < NPER; i++) {
            snprintf(names[t][i], sizeof(names[t][i]), "m%d.%d", t, i);
            handlers[t][i] =
                (mm_handler){.name = names[t][i], .fn = reply_name};
        }
        snprintf(type_names[t], sizeof(type_names[t]), "t%d", t);
        types[t] =
            (mm_actor_type){type_names[t], 0, NULL, NULL, handlers[t], NPER};
        assert_int_equal(mm_node_register_type(n, &types[t]), 0);
        /* Every name so far keeps its id as the table grows. */
        for (int u = 0; u <= t; u++)
            for (int i = 0; i < NPER; i++) {
                uint32_t id = mm_node_msg_id(n, names[u][i]);
                assert_true(id != 0);
                if (u < t) assert_int_equal(id, ids[u][i]);
                ids[u][i] = id;
            }
    }
    /* Distinct ids; unknown names (and a prefix, an extension) are 0. */
    for (int a = 0; a < NTYPES * NPER; a++)
        for (int b = a + 1; b < NTYPES * NPER; b++)
            assert_int_not_equal(ids[a / NPER][a % NPER],
                                 ids[b / NPER][b % NPER]);
    assert_int_equal(mm_node_msg_id(n, "m9.9"), 0);
    assert_int_equal(mm_node_msg_id(n, "m0."), 0);
    assert_int_equal(mm_node_msg_id(n, "m0.10x"), 0);
    assert_int_equal(mm_node_msg_id(n, ""), 0);
    /* A name shared by two types is one id. */
    mm_handler shared[] = {MM_HANDLER("m0.7", reply_name)};
    mm_actor_type st = {"shared", 0, NULL, NULL, shared, 1};
    assert_int_equal(mm_node_register_type(n, &st), 0);
    assert_int_equal(mm_node_msg_id(n, "m0.7"), ids[0][7]);
    /* Another node, its names in another order: each node's own ids,
     * asked alternately (one thread, one node after the other). */
    mm_node *o = nodefix_new(&(struct nodefix_opts){.name = "other"});
    mm_handler rev[] = {MM_HANDLER("m2.3", reply_name),
                        MM_HANDLER("m0.0", reply_name)};
    mm_actor_type rt = {"rev", 0, NULL, NULL, rev, 2};
    assert_int_equal(mm_node_register_type(o, &rt), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(mm_node_msg_id(o, "m2.3"), 1);
        assert_int_equal(mm_node_msg_id(n, "m2.3"), ids[2][3]);
        assert_int_equal(mm_node_msg_id(o, "m0.0"), 2);
        assert_int_equal(mm_node_msg_id(n, "m0.0"), ids[0][0]);
        assert_int_equal(mm_node_msg_id(o, "m0.1"), 0);
    }
    nodefix_down(o);
    /* Messages by name, to the last type registered. */
    nodefix_start(n);
    mm_endpoint ep;
    assert_int_equal(mm_spawn(n, "t2", NULL, &ep), 0);
    for (int i = 0; i < NPER; i += 7) {
        mm_msg *r = NULL;
        assert_int_equal(mm_call(n, &ep, mm_msg_new(names[2][i]), &r), 0);
        size_t len;
        char want[40];
        snprintf(want, sizeof(want), "\"%s\"", names[2][i]);
        assert_string_equal(mm_msg_data(r, &len), want);
        mm_msg_free(r);
    }
    mm_msg *r = NULL;
    assert_int_equal(mm_call(n, &ep, mm_msg_new("m0.1"), &r),
                     MM_EUNKNOWN_MESSAGE);
    mm_msg_free(r);
    nodefix_down(n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
