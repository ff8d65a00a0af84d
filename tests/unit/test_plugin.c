/* test_plugin.c — loading actor types from shared objects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "murmer.h"
#include "helpers/nodefix.h"

static char plugdir[512];

static void
plugin_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", plugdir, name);
}

static void
test_plugin_hello_hosts_its_actor(void **state)
{
    (void)state;
    mm_node *n = nodefix_new(NULL);
    char path[600], why[256] = "";
    plugin_path(path, sizeof(path), "hello_plugin.so");
    int rc = mm_node_load_plugin(n, path, why, sizeof(why));
    if (rc) fprintf(stderr, "load: %s\n", why);
    assert_int_equal(rc, 0);
    /* A second load brings a type that exists already. */
    assert_int_equal(mm_node_load_plugin(n, path, why, sizeof(why)),
                     MM_EEXISTS);
    nodefix_start(n);
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "hello/1";
    mm_endpoint ep;
    assert_int_equal(mm_spawn(n, "hello", &o, &ep), 0);
    mm_msg *r = NULL;
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_json("hello", "\"world\"", 7), &r), 0);
    assert_string_equal(mm_msg_data(r, NULL),
                        "\"Hello from a plugin, world!\"");
    mm_msg_free(r);
    assert_int_equal(mm_call(n, &ep, mm_msg_new("count"), &r), 0);
    assert_string_equal(mm_msg_data(r, NULL), "1");
    mm_msg_free(r);
    nodefix_down(n);
}

static void
test_plugin_bad_ones_are_refused_clearly(void **state)
{
    (void)state;
    mm_node *n = nodefix_new(NULL);
    char path[600], why[256] = "";
    plugin_path(path, sizeof(path), "bad_abi.so");
    assert_int_equal(mm_node_load_plugin(n, path, why, sizeof(why)), MM_EINVAL);
    assert_non_null(strstr(why, "ABI"));
    plugin_path(path, sizeof(path), "no-such-plugin.so");
    assert_int_equal(mm_node_load_plugin(n, path, why, sizeof(why)), MM_EINVAL);
    assert_non_null(strstr(why, "cannot load"));
    /* Not a plugin at all: a shared object without the symbols. */
    assert_int_equal(mm_node_load_plugin(n, "libm.so.6", why, sizeof(why)),
                     MM_EINVAL);
    assert_non_null(strstr(why, "not a murmer plugin"));
    mm_node_free(n);
}

int
main(int argc, char **argv)
{
    (void)argc;
    /* <build>/tests/test_plugin -> <build>/plugins */
    char self[512];
    snprintf(self, sizeof(self), "%s", argv[0]);
    snprintf(plugdir, sizeof(plugdir), "%s/../plugins", dirname(self));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_hello_hosts_its_actor),
        cmocka_unit_test(test_plugin_bad_ones_are_refused_clearly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
