/*
 * test_cli_options.c — the CLI's option machinery and result renderers.
 *
 * The CLI is not part of libmurmer, so this test compiles the CLI sources
 * it covers straight in (cli/options.c, cli/output.c and the renderers in
 * the cmd/ files) and stubs the rest of cli/main.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/options.c"
#include "../../cli/output.c"
#include "../../cli/interrupt.c"
#include "../../cmd/members.c"
#include "../../cmd/send.c"
#include "../../cmd/watch.c"
#include "../../cmd/lookup.c"
#include "../../cmd/oplog.c"
#include "../../cmd/force-leave.c"
#include "../../cmd/keys.c"

/* A NULL-terminated, writable copy of |v| (getopt permutes argv). */
static char **
argv_dup(const char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    char **out = calloc(n + 1, sizeof(*out));
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(v[i]);
    return out;
}
static void
argv_free(char **v)
{
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}
#define ARGV(...) argv_dup((const char *const[]){__VA_ARGS__, NULL})

/* Stubs for cli/main.c. */
static const struct cli_cmd test_cmds[] = {
    {"lookup", NULL, 0, "find"},
    {"secret", NULL, CLI_HIDDEN, "hidden"},
};
const struct cli_cmd *
cli_commands(size_t *n)
{
    *n = 2;
    return test_cmds;
}
void
cli_main_usage(struct cli_ctx *ctx, FILE *f)
{
    (void)ctx;
    fputs("main usage\n", f);
}

/* A context whose stdout and stderr are memory buffers. */
struct cap {
    struct cli_ctx ctx;
    char *out, *err;
    size_t outlen, errlen;
};

static void
cap_init(struct cap *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(cli_ctx_init(&c->ctx), 0);
    c->ctx.out = open_memstream(&c->out, &c->outlen);
    c->ctx.err = open_memstream(&c->err, &c->errlen);
    assert_non_null(c->ctx.out);
    assert_non_null(c->ctx.err);
}

static void
cap_flush(struct cap *c)
{
    fflush(c->ctx.out);
    fflush(c->ctx.err);
}

static void
cap_release(struct cap *c)
{
    fclose(c->ctx.out);
    fclose(c->ctx.err);
    free(c->out);
    free(c->err);
    cli_ctx_release(&c->ctx);
}

static void
test_cli_options_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint32_t ms;
    } cases[] = {
        {"500ms", 0, 500},
        {"5s", 0, 5000},
        {"2m", 0, 120000},
        {"1h", 0, 3600000},
        {"0", 0, 0},
        {"0s", 0, 0},
        {"5", -1, 0},
        {"5x", -1, 0},
        {"1.5s", -1, 0},
        {"-1s", -1, 0},
        {"", -1, 0},
        {"s", -1, 0},
        {"5 s", -1, 0},
        {"4294967295ms", 0, 4294967295u},
        {"4294967296ms", -1, 0},
        {"1193h", 0, 1193u * 3600000u},
        {"1194h", -1, 0},
        {"99999999999999999999s", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t ms = 12345;
        int rc = cli_parse_duration(cases[i].s, &ms);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(ms, cases[i].ms);
        else
            assert_int_equal(ms, 12345); /* untouched on error */
    }
}

static void
test_cli_options_suggest(void **state)
{
    (void)state;
    assert_int_equal(cli_edit_distance("wiat", "wait"), 1);
    assert_int_equal(cli_edit_distance("lokup", "lookup"), 1);
    assert_int_equal(cli_edit_distance("", "abc"), 3);
    assert_int_equal(cli_edit_distance("kitten", "sitting"), 3);
    const char *cmds[] = {"lookup", "members", "send", "start", "watch"};
    assert_string_equal(cli_suggest("lokup", cmds, 5), "lookup");
    assert_string_equal(cli_suggest("memebrs", cmds, 5), "members");
    assert_string_equal(cli_suggest("sned", cmds, 5), "send");
    assert_null(cli_suggest("frobnicate", cmds, 5));
    assert_null(cli_suggest("send", cmds, 5)); /* exact: no suggestion */
    assert_null(cli_suggest("xy", cmds, 5));
}

static void
test_cli_options_parse_permuted_and_globals(void **state)
{
    (void)state;
    struct cap c;
    cap_init(&c);
    unsetenv("MURMER_JOIN");
    const char *key = NULL;
    uint32_t wait = 0;
    int wait_given = 0, all = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_DURATION('w', "wait", &wait, &wait_given, "wait"),
        CLI_OPT_STRING('k', "key", &key, "KEY", "key"),
        CLI_OPT_BOOL(0, "all", &all, "all"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {"murmer t <x>", NULL, opts, 1, 1};
    char **argv = ARGV("t", "label", "--json", "-w", "2s", "--join", "a:1",
                       "--join=b:2", "--timeout", "250ms", "-kK", "-vv");
    char **args;
    int nargs;
    int rc = cli_parse(&c.ctx, &spec, 12, argv, &args, &nargs);
    assert_int_equal(rc, CLI_CONTINUE);
    assert_int_equal(nargs, 1);
    assert_string_equal(args[0], "label");
    assert_int_equal(wait, 2000);
    assert_true(wait_given);
    assert_string_equal(key, "K");
    assert_false(all);
    assert_true(c.ctx.json);
    assert_int_equal(c.ctx.timeout_ms, 250);
    assert_int_equal(c.ctx.join.n, 2);
    assert_string_equal(c.ctx.join.v[0], "a:1");
    assert_string_equal(c.ctx.join.v[1], "b:2");
    assert_int_equal(c.ctx.verbose, 2);
    assert_int_equal(mm_log_get_level(), MM_LOG_DEBUG);
    cap_flush(&c);
    assert_int_equal(c.errlen, 0);
    mm_log_set_level(MM_LOG_WARN);
    cap_release(&c);
    argv_free(argv);
}

static void
test_cli_options_unknown_and_missing(void **state)
{
    (void)state;
    uint32_t wait = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_DURATION('w', "wait", &wait, NULL, "wait"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {"murmer lookup", NULL, opts, 0, 1};
    static const struct {
        const char *arg, *arg2;
        const char *want;
    } cases[] = {
        {"--wiat", NULL,
         "murmer lookup: unknown option '--wiat' (did you "
         "mean '--wait'?)\n"},
        {"--wiat=5s", NULL,
         "murmer lookup: unknown option '--wiat' (did "
         "you mean '--wait'?)\n"},
        {"--jsn", NULL,
         "murmer lookup: unknown option '--jsn' (did you "
         "mean '--json'?)\n"},
        {"--zzzzzzzz", NULL, "murmer lookup: unknown option '--zzzzzzzz'\n"},
        {"-x", NULL, "murmer lookup: unknown option '-x'\n"},
        {"--wait", NULL, "murmer lookup: option '--wait' needs DURATION\n"},
        {"-w", NULL, "murmer lookup: option '--wait' needs DURATION\n"},
        {"--json=1", NULL, "murmer lookup: option '--json' takes no value\n"},
        {"--wait", "7",
         "murmer lookup: invalid duration '7' for --wait (use "
         "e.g. 500ms, 5s, 2m, 1h)\n"},
        {"a", "b",
         "murmer lookup: unexpected argument 'b' (usage: murmer "
         "lookup)\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cap c;
        cap_init(&c);
        c.ctx.cmd = "lookup";
        char **argv = ARGV("lookup", cases[i].arg, cases[i].arg2);
        int argc = cases[i].arg2 ? 3 : 2;
        int rc = cli_parse(&c.ctx, &spec, argc, argv, NULL, NULL);
        cap_flush(&c);
        assert_int_equal(rc, MM_EXIT_USAGE);
        assert_string_equal(c.err, cases[i].want);
        assert_int_equal(c.outlen, 0);
        cap_release(&c);
        argv_free(argv);
    }
}

static void
test_cli_options_help_and_list(void **state)
{
    (void)state;
    struct cap c;
    cap_init(&c);
    c.ctx.cmd = "lookup";
    int all = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_BOOL('a', "all", &all, "everything"),
        CLI_OPT_SET(0, "no-all", &all, 0, "nothing"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {"murmer lookup <x>", "Looks.", opts, 1, 1};
    char **argv1 = ARGV("lookup", "--list-options");
    assert_int_equal(cli_parse(&c.ctx, &spec, 2, argv1, NULL, NULL), 0);
    cap_flush(&c);
    assert_string_equal(c.out, "--all\n-a\n--no-all\n--help\n-h\n");
    cap_release(&c);
    argv_free(argv1);

    cap_init(&c);
    c.ctx.cmd = "lookup";
    char **argv2 = ARGV("lookup", "-h");
    /* --help wins over missing positional arguments. */
    assert_int_equal(cli_parse(&c.ctx, &spec, 2, argv2, NULL, NULL), 0);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "usage: murmer lookup <x>\n\nLooks.\n"));
    assert_non_null(strstr(c.out, "  -a, --all     everything\n"));
    assert_non_null(strstr(c.out, "      --no-all  nothing\n"));
    assert_non_null(strstr(c.out, "  -h, --help    show this help\n"));
    assert_non_null(strstr(c.out, "--timeout DURATION"));
    assert_null(strstr(c.out, "list-options"));
    cap_release(&c);
    argv_free(argv2);

    cap_init(&c);
    char **argv3 = ARGV("murmer", "--list-commands");
    int idx = 0;
    assert_int_equal(cli_parse_global(&c.ctx, 2, argv3, &idx), 0);
    cap_flush(&c);
    assert_string_equal(c.out, "lookup\n"); /* hidden commands stay hidden */
    cap_release(&c);
    argv_free(argv3);

    cap_init(&c);
    char **argv4 = ARGV("murmer", "--json", "-q", "lookup", "--wait", "x");
    assert_int_equal(cli_parse_global(&c.ctx, 6, argv4, &idx), CLI_CONTINUE);
    assert_int_equal(idx, 3); /* stops at the command name */
    assert_true(c.ctx.json);
    assert_int_equal(c.ctx.quiet, 1);
    cap_release(&c);
    argv_free(argv4);
}

static void
test_cli_options_env(void **state)
{
    (void)state;
    struct cap c;
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {"murmer t", NULL, opts, 0, 0};

    cap_init(&c);
    setenv("MURMER_JOIN", "h1:1, h2:2,,h3:3", 1);
    setenv("MURMER_CLUSTER_KEY_FILE", "/k", 1);
    setenv("MURMER_LOG", "info", 1);
    setenv("NO_COLOR", "1", 1);
    char **argv1 = ARGV("t");
    assert_int_equal(cli_parse(&c.ctx, &spec, 1, argv1, NULL, NULL),
                     CLI_CONTINUE);
    assert_int_equal(c.ctx.join.n, 3);
    assert_string_equal(c.ctx.join.v[1], "h2:2");
    assert_string_equal(c.ctx.cluster_key_file, "/k");
    assert_int_equal(mm_log_get_level(), MM_LOG_INFO);
    assert_false(c.ctx.color);
    cap_release(&c);
    argv_free(argv1);

    /* An explicit flag wins over the environment. */
    cap_init(&c);
    char **argv2 = ARGV("t", "--join", "x:9", "--cluster-key", "/f", "-q");
    assert_int_equal(cli_parse(&c.ctx, &spec, 6, argv2, NULL, NULL),
                     CLI_CONTINUE);
    assert_int_equal(c.ctx.join.n, 1);
    assert_string_equal(c.ctx.join.v[0], "x:9");
    assert_string_equal(c.ctx.cluster_key_file, "/f");
    assert_int_equal(mm_log_get_level(), MM_LOG_ERR);
    cap_release(&c);
    argv_free(argv2);

    unsetenv("MURMER_JOIN");
    unsetenv("MURMER_CLUSTER_KEY_FILE");
    unsetenv("MURMER_LOG");
    unsetenv("NO_COLOR");
    mm_log_set_level(MM_LOG_WARN);
}

static cJSON *
parse_out(struct cap *c)
{
    cap_flush(c);
    assert_non_null(c->out);
    assert_int_equal(c->out[c->outlen - 1], '\n');
    /* One line: compact JSON. */
    assert_ptr_equal(strchr(c->out, '\n'), c->out + c->outlen - 1);
    cJSON *doc = cJSON_Parse(c->out);
    assert_non_null(doc);
    return doc;
}

static const mm_member_info test_members[] = {
    {"a", "0123456789abcdef0123456789abcdef", "127.0.0.1:7420", "alive", 3, 0,
     "role=cache,dc=x", 0, 12, 250},
    {"bee", "fedcba9876543210fedcba9876543210", "127.0.0.1:7421", "suspect", 1,
     4, NULL, 2, -1, -1},
};

static void
test_cli_options_members_render(void **state)
{
    (void)state;
    struct cap c;
    cap_init(&c);
    c.ctx.json = 1;
    cli_members_render(&c.ctx, test_members, 2, 0, c.ctx.out);
    cJSON *doc = parse_out(&c);
    assert_string_equal(cJSON_GetObjectItem(doc, "schema")->valuestring,
                        "murmer.members/1");
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "members"), 0);
    assert_string_equal(cJSON_GetObjectItem(m, "name")->valuestring, "a");
    assert_string_equal(cJSON_GetObjectItem(m, "addr")->valuestring,
                        "127.0.0.1:7420");
    assert_string_equal(cJSON_GetObjectItem(m, "state")->valuestring, "alive");
    assert_int_equal(cJSON_GetObjectItem(m, "generation")->valuedouble, 3);
    cJSON *tags = cJSON_GetObjectItem(m, "tags");
    assert_string_equal(cJSON_GetObjectItem(tags, "role")->valuestring,
                        "cache");
    assert_null(cJSON_GetObjectItem(m, "rtt_us")); /* only with --wide */
    cJSON_Delete(doc);
    cap_release(&c);

    cap_init(&c);
    cli_members_render(&c.ctx, test_members, 2, 0, c.ctx.out);
    cap_flush(&c);
    assert_string_equal(c.out,
                        "NAME  ADDR            STATE    TAGS\n"
                        "a     127.0.0.1:7420  alive    role=cache,dc=x\n"
                        "bee   127.0.0.1:7421  suspect  -\n");
    cap_release(&c);

    cap_init(&c);
    cli_members_render(&c.ctx, test_members, 2, 1, c.ctx.out);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "RTT\n"));
    assert_non_null(strstr(c.out, "12ms"));
    assert_non_null(strstr(c.out, "0.250ms\n"));
    assert_null(strchr(c.out, '\033')); /* no colour off a terminal */
    cap_release(&c);

    assert_true(cli_member_match(&test_members[0], "alive",
                                 (const char *const[]){"dc=x"}, 1));
    assert_false(cli_member_match(&test_members[0], "alive",
                                  (const char *const[]){"dc=y"}, 1));
    assert_false(cli_member_match(&test_members[1], "alive", NULL, 0));

    /* The names --status accepts come from the library. */
    assert_string_equal(mm_member_state_name(0), "alive");
    assert_string_equal(mm_member_state_name(1), "suspect");
    assert_string_equal(mm_member_state_name(2), "failed");
    assert_string_equal(mm_member_state_name(3), "left");
    assert_null(mm_member_state_name(4));
    assert_null(mm_member_state_name(-1));
}

static void
test_cli_options_colour_only_when_asked(void **state)
{
    (void)state;
    struct cap c;
    cap_init(&c);
    c.ctx.color = 1;
    cli_members_render(&c.ctx, test_members, 1, 0, c.ctx.out);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "\033[32malive\033[0m"));
    cap_release(&c);
}

static void
test_cli_options_send_render(void **state)
{
    (void)state;
    mm_send_result ok = {"counter/a", {{0}, 1, 2}, 0, "5", 1};
    mm_send_result bad = {"counter/b", {{0}, 1, 3}, MM_EHANDLER, "\"boom\"", 6};
    mm_send_result gone = {"counter/c", {{0}, 1, 4}, MM_ENOTFOUND, NULL, 0};
    struct cap c;

    cap_init(&c);
    c.ctx.cmd = "send";
    assert_int_equal(cli_send_render(&c.ctx, NULL, "get", &ok, 1, c.ctx.out),
                     0);
    cap_flush(&c);
    assert_string_equal(c.out, "5\n");
    assert_int_equal(c.errlen, 0);
    cap_release(&c);

    cap_init(&c);
    c.ctx.cmd = "send";
    assert_int_equal(cli_send_render(&c.ctx, NULL, "get", &bad, 1, c.ctx.out),
                     MM_EXIT_ACTOR);
    cap_flush(&c);
    assert_int_equal(c.outlen, 0);
    assert_string_equal(c.err, "murmer send: counter/b: handler_error: boom\n");
    cap_release(&c);

    cap_init(&c);
    c.ctx.cmd = "send";
    assert_int_equal(cli_send_render(&c.ctx, NULL, "get", &gone, 1, c.ctx.out),
                     MM_EXIT_NOTFOUND);
    cap_release(&c);

    mm_send_result many[] = {ok, bad, gone};
    cap_init(&c);
    c.ctx.cmd = "send";
    c.ctx.json = 1;
    assert_int_equal(cli_send_render(&c.ctx, "k", "get", many, 3, c.ctx.out),
                     MM_EXIT_ACTOR);
    cJSON *doc = parse_out(&c);
    assert_string_equal(cJSON_GetObjectItem(doc, "schema")->valuestring,
                        "murmer.send/1");
    assert_int_equal(cJSON_GetObjectItem(doc, "delivered")->valuedouble, 1);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valuedouble, 3);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0);
    assert_int_equal(cJSON_GetObjectItem(r0, "reply")->valuedouble, 5);
    cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 1);
    assert_string_equal(cJSON_GetObjectItem(r1, "status")->valuestring,
                        "handler_error");
    assert_string_equal(cJSON_GetObjectItem(r1, "error")->valuestring, "boom");
    cJSON_Delete(doc);
    cap_flush(&c);
    assert_string_equal(c.err, "murmer send: delivered 1/3 under key 'k'\n");
    cap_release(&c);

    cap_init(&c);
    c.ctx.json = 1;
    assert_int_equal(cli_send_render(&c.ctx, NULL, "get", &ok, 1, c.ctx.out),
                     0);
    doc = parse_out(&c);
    assert_string_equal(cJSON_GetObjectItem(doc, "label")->valuestring,
                        "counter/a");
    assert_string_equal(cJSON_GetObjectItem(doc, "status")->valuestring, "ok");
    assert_int_equal(cJSON_GetObjectItem(doc, "reply")->valuedouble, 5);
    cJSON_Delete(doc);
    cap_release(&c);

    /* --key with every target ok; and with none at all. */
    mm_send_result two[] = {ok, ok};
    cap_init(&c);
    assert_int_equal(cli_send_render(&c.ctx, "k", "get", two, 2, c.ctx.out), 0);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "delivered 2/2\n"));
    cap_release(&c);
    cap_init(&c);
    assert_int_equal(cli_send_render(&c.ctx, "k", "get", NULL, 0, c.ctx.out),
                     MM_EXIT_NOTFOUND);
    cap_release(&c);
}

static void
test_cli_options_stream_renderers(void **state)
{
    (void)state;
    struct cap c;
    cap_init(&c);
    c.ctx.json = 1;
    mm_listing_event ev = {MM_LISTING_ADDED, "w/1", {{0}, 1, 2}, 0};
    cli_watch_render(&c.ctx, &ev, c.ctx.out);
    mm_listing_event sy = {MM_LISTING_SYNCED, NULL, {{0}, 0, 0}, 0};
    cli_watch_render(&c.ctx, &sy, c.ctx.out);
    cap_flush(&c);
    /* JSON Lines: two documents, one per line. */
    char *nl = strchr(c.out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *a = cJSON_Parse(c.out);
    cJSON *b = cJSON_Parse(nl + 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(a, "schema")->valuestring,
                        "murmer.watch/1");
    assert_string_equal(cJSON_GetObjectItem(a, "event")->valuestring, "added");
    assert_string_equal(cJSON_GetObjectItem(a, "label")->valuestring, "w/1");
    assert_string_equal(cJSON_GetObjectItem(b, "event")->valuestring, "synced");
    assert_null(cJSON_GetObjectItem(b, "label"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cap_release(&c);

    cap_init(&c);
    mm_oplog_op ops[] = {
        {11, "register", "cache/u", "kv", "internal", NULL, NULL, 77},
        {12, "check_in", "cache/u", NULL, NULL, "caches", NULL, 0},
    };
    mm_oplog_origin o = {
        "0123456789abcdef0123456789abcdef", "a", 3, 12, 1, 10, 4, ops, 2};
    cli_oplog_render(&c.ctx, &o, 1, c.ctx.out);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "snapshot through seq 10 (4 entries), "
                                  "then 2 ops\n"));
    assert_non_null(strstr(c.out, "check_in  cache/u  key=caches\n"));
    cap_release(&c);

    cap_init(&c);
    c.ctx.json = 1;
    cli_oplog_render(&c.ctx, &o, 1, c.ctx.out);
    cJSON *doc = parse_out(&c);
    cJSON *jo = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "origins"), 0);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(jo, "snapshot"), "seq")
            ->valuedouble,
        10);
    cJSON *op1 = cJSON_GetArrayItem(cJSON_GetObjectItem(jo, "ops"), 1);
    assert_string_equal(cJSON_GetObjectItem(op1, "op")->valuestring,
                        "check_in");
    assert_string_equal(cJSON_GetObjectItem(op1, "key")->valuestring, "caches");
    cJSON_Delete(doc);
    cap_release(&c);

    cap_init(&c);
    c.ctx.json = 1;
    mm_actor_info act = {"counter/a", {{0}, 1, 2},
                         "counter",   "a",
                         "internal",  (const char *const[]){"k1"},
                         1,           0};
    cli_lookup_render(&c.ctx, &act, 1, c.ctx.out);
    doc = parse_out(&c);
    assert_string_equal(cJSON_GetObjectItem(doc, "schema")->valuestring,
                        "murmer.lookup/1");
    cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "actors"), 0);
    assert_string_equal(cJSON_GetObjectItem(a0, "type")->valuestring,
                        "counter");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(a0, "shadowed")));
    cJSON_Delete(doc);
    cap_release(&c);

    cap_init(&c);
    cli_force_leave_render(&c.ctx, "b", "ff", "failed", c.ctx.out);
    cap_flush(&c);
    assert_string_equal(c.out, "b (ff): failed -> left\n");
    cap_release(&c);
}

static void
test_cli_options_keys_render(void **state)
{
    (void)state;
    struct cap c;
    mm_keys_failure f = {"n3", "no answer in time"};
    mm_keys_result r = {"use", "0123456789abcdef", 2, 3, NULL, 0, &f, 1};
    cap_init(&c);
    c.ctx.cmd = "keys";
    /* Not every member applied it: exit 1, each one named on stderr. */
    assert_int_equal(cli_keys_render(&c.ctx, &r, c.ctx.out), MM_EXIT_ACTOR);
    cap_flush(&c);
    assert_string_equal(c.out,
                        "use 0123456789abcdef: applied on 2/3 members\n");
    assert_string_equal(c.err,
                        "murmer keys: n3: not applied: no answer in time\n");
    cap_release(&c);

    mm_keys_key k[2] = {{"aaaaaaaaaaaaaaaa", 3, 3}, {"bbbbbbbbbbbbbbbb", 3, 0}};
    mm_keys_result l = {"list", "", 3, 3, k, 2, NULL, 0};
    cap_init(&c);
    c.ctx.cmd = "keys";
    assert_int_equal(cli_keys_render(&c.ctx, &l, c.ctx.out), MM_EXIT_OK);
    cap_flush(&c);
    assert_string_equal(c.out, "KEY               MEMBERS   PRIMARY\n"
                               "aaaaaaaaaaaaaaaa  3/3       3\n"
                               "bbbbbbbbbbbbbbbb  3/3       0\n"
                               "applied on 3/3 members\n");
    assert_string_equal(c.err, "");
    cap_release(&c);

    cap_init(&c);
    c.ctx.json = 1;
    assert_int_equal(cli_keys_render(&c.ctx, &l, c.ctx.out), MM_EXIT_OK);
    cJSON *doc = parse_out(&c);
    assert_string_equal(cJSON_GetObjectItem(doc, "schema")->valuestring,
                        "murmer.keys/1");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "keys")), 2);
    cJSON *k1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 1);
    assert_int_equal(cJSON_GetObjectItem(k1, "primary")->valuedouble, 0);
    assert_int_equal(cJSON_GetObjectItem(doc, "applied")->valuedouble, 3);
    assert_null(cJSON_GetObjectItem(doc, "fingerprint"));
    cJSON_Delete(doc);
    cap_release(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_options_duration),
        cmocka_unit_test(test_cli_options_suggest),
        cmocka_unit_test(test_cli_options_parse_permuted_and_globals),
        cmocka_unit_test(test_cli_options_unknown_and_missing),
        cmocka_unit_test(test_cli_options_help_and_list),
        cmocka_unit_test(test_cli_options_env),
        cmocka_unit_test(test_cli_options_members_render),
        cmocka_unit_test(test_cli_options_colour_only_when_asked),
        cmocka_unit_test(test_cli_options_send_render),
        cmocka_unit_test(test_cli_options_stream_renderers),
        cmocka_unit_test(test_cli_options_keys_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
