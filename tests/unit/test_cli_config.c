/*
 * test_cli_config.c — `murmer start --config FILE`: the JSON file read
 * through an option table (cli/config.c).  Every kind of row, the
 * precedence of flags and environment, and each refusal (one line naming
 * the file and the key, exit 6, nothing stored).
 *
 * The CLI is not part of libmurmer: the sources are compiled straight in,
 * as test_cli_options.c does, with cli/main.c stubbed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/options.c"
#include "../../cli/config.c"

/* Stubs for cli/main.c. */
const struct cli_cmd *
cli_commands(size_t *n)
{
    *n = 0;
    return NULL;
}
void
cli_main_usage(struct cli_ctx *ctx, FILE *f)
{
    (void)ctx;
    (void)f;
}

/* What a table of every kind points at. */
struct vals {
    const char *name, *listen;
    struct cli_strv join, tags;
    unsigned shards;
    int shards_given;
    int mdns, demo;
    uint32_t timeout_ms;
    int timeout_given;
};

#define NROWS 8

struct fixture {
    struct cli_ctx ctx;
    char *err;
    size_t errlen;
    struct vals v;
    struct cli_opt rows[NROWS + 1];
    struct cli_config_key keys[NROWS];
    char path[256];
    cJSON *doc;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(cli_ctx_init(&f->ctx), 0);
    f->ctx.cmd = "start";
    f->ctx.err = open_memstream(&f->err, &f->errlen);
    f->v.mdns = -1;
    const struct cli_opt rows[] = {
        CLI_OPT_STRING('n', "name", &f->v.name, "NAME", "name"),
        CLI_OPT_STRING('l', "listen", &f->v.listen, "ADDR", "listen"),
        CLI_OPT_LIST(0, "join", &f->v.join, "ADDR", "seeds"),
        CLI_OPT_LIST(0, "tag", &f->v.tags, "K=V", "tags"),
        CLI_OPT_UINT(0, "shards", &f->v.shards, &f->v.shards_given, "N", "n"),
        CLI_OPT_SET(0, "mdns", &f->v.mdns, 1, "mdns"),
        CLI_OPT_BOOL(0, "demo", &f->v.demo, "demo"),
        CLI_OPT_DURATION(0, "timeout", &f->v.timeout_ms, &f->v.timeout_given,
                         "t"),
        CLI_OPT_END,
    };
    memcpy(f->rows, rows, sizeof(rows));
    for (size_t i = 0; i < NROWS; i++) {
        f->keys[i].opt = &f->rows[i];
        f->keys[i].kv_object = strcmp(f->rows[i].longopt, "tag") == 0;
    }
    snprintf(f->path, sizeof(f->path), "/tmp/mm-test-config-%d.json",
             (int)getpid());
    unsetenv("MM_TEST_CONFIG_ENV");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    fclose(f->ctx.err);
    free(f->err);
    cJSON_Delete(f->doc);
    cli_strv_free(&f->v.join);
    cli_strv_free(&f->v.tags);
    cli_ctx_release(&f->ctx);
    unlink(f->path);
    unsetenv("MM_TEST_CONFIG_ENV");
    free(f);
    return 0;
}

static void
err_reset(struct fixture *f)
{
    fclose(f->ctx.err);
    free(f->err);
    f->err = NULL;
    f->ctx.err = open_memstream(&f->err, &f->errlen);
    assert_non_null(f->ctx.err);
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Applies |text|; returns the exit code, the message in f->err. */
static int
apply(struct fixture *f, const char *text)
{
    write_file(f->path, text);
    cJSON_Delete(f->doc);
    f->doc = NULL;
    int rc = cli_config_apply(&f->ctx, f->path, f->keys, NROWS, &f->doc);
    fflush(f->ctx.err);
    return rc;
}

/* The one line f->err must hold: "murmer start: PATH: |rest|\n". */
static void
assert_err(struct fixture *f, const char *rest)
{
    char want[512];
    snprintf(want, sizeof(want), "murmer start: %s: %s\n", f->path, rest);
    assert_string_equal(f->err, want);
}

static void
test_key_name(void **state)
{
    (void)state;
    char out[32];
    cli_config_key_name("mailbox-bytes", out, sizeof(out));
    assert_string_equal(out, "mailbox_bytes");
    cli_config_key_name("check-in", out, 4);
    assert_string_equal(out, "che");
}

static void
test_every_kind(void **state)
{
    struct fixture *f = *state;
    int rc = apply(f, "{\"name\": \"a\", \"listen\": \"127.0.0.1:1\",\n"
                      " \"join\": [\"h1:1\", \"h2:2\"],\n"
                      " \"tag\": {\"role\": \"web\", \"dc\": \"x=y\"},\n"
                      " \"shards\": 4, \"mdns\": false, \"demo\": true,\n"
                      " \"timeout\": \"2m\"}");
    assert_int_equal(rc, 0);
    assert_int_equal(f->errlen, 0);
    assert_string_equal(f->v.name, "a");
    assert_string_equal(f->v.listen, "127.0.0.1:1");
    assert_int_equal(f->v.join.n, 2);
    assert_string_equal(f->v.join.v[1], "h2:2");
    assert_int_equal(f->v.tags.n, 2);
    assert_string_equal(f->v.tags.v[0], "role=web");
    assert_string_equal(f->v.tags.v[1], "dc=x=y");
    assert_int_equal(f->v.shards, 4);
    assert_int_equal(f->v.shards_given, 1);
    assert_int_equal(f->v.mdns, 0); /* false: the opposite of the row's 1 */
    assert_int_equal(f->v.demo, 1);
    assert_int_equal(f->v.timeout_ms, 120000);
    assert_int_equal(f->v.timeout_given, 1);
    for (size_t i = 0; i < NROWS; i++)
        assert_int_equal(f->keys[i].from_file, 1);
}

static void
test_tag_array_and_empty(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{\"tag\": [\"a=1\"], \"join\": []}"), 0);
    assert_int_equal(f->v.tags.n, 1);
    assert_string_equal(f->v.tags.v[0], "a=1");
    assert_int_equal(f->v.join.n, 0);
    assert_int_equal(apply(f, "{}"), 0);
    assert_null(f->v.name);
}

static void
test_flag_and_env_outrank(void **state)
{
    struct fixture *f = *state;
    f->v.name = "fromflag";
    f->keys[0].given = 1;
    f->keys[2].env[0] = "MM_TEST_CONFIG_ENV";
    setenv("MM_TEST_CONFIG_ENV", "h9:9", 1);
    assert_int_equal(apply(f, "{\"name\": \"fromfile\", \"join\": [\"h1:1\"], "
                              "\"listen\": \"x:1\"}"),
                     0);
    assert_string_equal(f->v.name, "fromflag");
    assert_int_equal(f->keys[0].from_file, 0);
    assert_int_equal(f->v.join.n, 0); /* the caller took the env's */
    assert_int_equal(f->keys[2].from_file, 0);
    assert_string_equal(f->v.listen, "x:1");
    /* An empty variable does not count. */
    setenv("MM_TEST_CONFIG_ENV", "", 1);
    assert_int_equal(apply(f, "{\"join\": [\"h1:1\"]}"), 0);
    assert_int_equal(f->v.join.n, 1);
}

static void
test_unknown_key(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{\"name\": \"a\", \"lisen\": \"x:1\"}"),
                     MM_EXIT_INPUT);
    assert_err(f, "unknown key 'lisen' (did you mean 'listen'?)");
    assert_null(f->v.name); /* nothing stored */
}

static void
test_unknown_key_no_suggestion(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{\"metrics-addr\": 1}"), MM_EXIT_INPUT);
    assert_err(f, "unknown key 'metrics-addr'");
}

static void
test_wrong_types(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"name\": 1}", "key 'name': expected a string"},
        {"{\"name\": null}", "key 'name': expected a string"},
        {"{\"join\": \"h:1\"}", "key 'join': expected an array of strings"},
        {"{\"join\": [\"h:1\", 2]}",
         "key 'join': expected an array of strings"},
        {"{\"join\": {\"a\": \"b\"}}",
         "key 'join': expected an array of strings"},
        {"{\"tag\": {\"a\": 1}}",
         "key 'tag': expected an object of strings (or an array of \"K=V\" "
         "strings)"},
        {"{\"shards\": \"2\"}", "key 'shards': expected a whole number"},
        {"{\"shards\": -1}", "key 'shards': expected a whole number"},
        {"{\"shards\": 1.5}", "key 'shards': expected a whole number"},
        {"{\"shards\": 4294967296}", "key 'shards': expected a whole number"},
        {"{\"demo\": 1}", "key 'demo': expected true or false"},
        {"{\"mdns\": \"yes\"}", "key 'mdns': expected true or false"},
        {"{\"timeout\": 5}",
         "key 'timeout': expected a duration string such as \"5s\""},
        {"{\"timeout\": \"5 s\"}",
         "key 'timeout': expected a duration string such as \"5s\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_reset(f);
        assert_int_equal(apply(f, cases[i].json), MM_EXIT_INPUT);
        assert_err(f, cases[i].msg);
    }
    assert_int_equal(f->v.shards_given, 0);
    assert_int_equal(f->v.join.n, 0);
    assert_int_equal(f->v.tags.n, 0);
}

static void
test_twice(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{\"demo\": true, \"name\": \"a\", \"name\": "
                              "\"b\"}"),
                     MM_EXIT_INPUT);
    assert_err(f, "key 'name' given twice");
    assert_int_equal(f->v.demo, 0);
}

static void
test_malformed(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{\"name\": \"a\",\n  \"demo\" true}"),
                     MM_EXIT_INPUT);
    assert_err(f, "malformed JSON at line 2, column 10");
}

static void
test_trailing_garbage(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "{} x"), MM_EXIT_INPUT);
    assert_err(f, "malformed JSON at line 1, column 4");
}

static void
test_not_object(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, "[1, 2]"), MM_EXIT_INPUT);
    assert_err(f, "expected a JSON object of options");
}

static void
test_nul_byte(void **state)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fwrite("{}\0{}", 1, 5, fp);
    fclose(fp);
    assert_int_equal(
        cli_config_apply(&f->ctx, f->path, f->keys, NROWS, &f->doc),
        MM_EXIT_INPUT);
    fflush(f->ctx.err);
    assert_err(f, "a NUL byte: not JSON");
}

static void
test_missing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cli_config_apply(&f->ctx, "/nonexistent/mm.json", f->keys,
                                      NROWS, &f->doc),
                     MM_EXIT_INPUT);
    fflush(f->ctx.err);
    assert_string_equal(f->err, "murmer start: cannot read "
                                "/nonexistent/mm.json: No such file or "
                                "directory\n");
}

/* Exactly the bound is read; one byte more is refused. */
static void
test_size_bound(void **state)
{
    struct fixture *f = *state;
    size_t n = CLI_CONFIG_MAX_BYTES;
    char *text = malloc(n + 2);
    assert_non_null(text);
    memset(text, ' ', n + 1);
    memcpy(text, "{\"name\": \"big\"}", 15);
    text[n] = '\0';
    assert_int_equal(apply(f, text), 0);
    assert_string_equal(f->v.name, "big");
    f->v.name = NULL;
    text[n] = ' ';
    text[n + 1] = '\0';
    assert_int_equal(apply(f, text), MM_EXIT_INPUT);
    assert_err(f, "larger than 1048576 bytes: not a config file");
    assert_null(f->v.name);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_name),
        cmocka_unit_test_setup_teardown(test_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_array_and_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flag_and_env_outrank, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_no_suggestion, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
