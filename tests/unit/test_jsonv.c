/* test_jsonv.c — the ingress JSON check (lib/jsonv.c): strict JSON is
 * accepted without a tree, malformed text and cJSON's leniencies are left
 * to cJSON, and a message's verdict (mm__msg_json_ok) is cJSON's in every
 * case.  tests/fuzz/fuzz_jsonv.c checks the same property on random input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "jsonv.h"
#include "runtime.h"

/* What mm_msg_json accepts: cJSON on exactly |len| bytes, then only JSON
 * white space. */
static int
cjson_accepts(const char *s, size_t len, size_t *off)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (j) cJSON_Delete(j);
    if (j && end) {
        while (end < s + len &&
               (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end < s + len) j = NULL;
    }
    if (off) *off = end ? (size_t)(end - s) : 0;
    return j != NULL;
}

static int
fast(const char *s)
{
    return mm__json_fast_valid(s, strlen(s));
}

static void
test_jsonv_accepts_strict_json(void **state)
{
    static const char *ok[] = {
        "0",
        "-0",
        "1",
        "-12.5e+3",
        "1E-7",
        "0.25",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
        "\"caf\xc3\xa9\"",
        "[]",
        "{}",
        " [ 1 , 2 ,3 ] ",
        "\t{\"a\":{\"b\":[true,false,null]}}\r\n",
        "{\"seq\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "[[],{},[{}],\"\",0]",
        "{\"a\":1,\"a\":2}", /* duplicate keys: RFC SHOULD */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!fast(ok[i])) fail_msg("refused: %s", ok[i]);
        assert_true(cjson_accepts(ok[i], strlen(ok[i]), NULL));
    }
}

static void
test_jsonv_refuses_malformed(void **state)
{
    static const char *bad[] = {
        "",          " ",
        "[",         "]",
        "{",         "[1,]",
        "[1 2]",     "{\"a\"}",
        "{\"a\":}",  "{\"a\":1,}",
        "{a:1}",     "{\"a\" 1}",
        "tru",       "truex",
        "nul",       "[true",
        "\"open",    "\"bad \\x escape\"",
        "\"\\",      "1 2",
        "[1]]",      "{}}",
        "-",         "--1",
        "1.",        ".5",
        "1e",        "1e+",
        "+1",        "01",
        "[01]",      "\"tab\there\"",
        "'single'",  "[1,2",
        "{\"a\":[}", "[}",
        "{]",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (fast(bad[i])) fail_msg("accepted: %s", bad[i]);
}

/* What the check leaves to cJSON although cJSON may accept it. */
static void
test_jsonv_unsure_cases_defer(void **state)
{
    char deep[2 * (MM_JSONV_MAX_DEPTH + 1) + 1];
    char num[MM_JSONV_MAX_NUMBER + 2];
    (void)state;
    /* \u escapes (surrogate pairing is cJSON's to judge). */
    assert_false(fast("\"\\u00e9\""));
    /* A number longer than the check vouches for. */
    memset(num, '1', sizeof(num) - 1);
    num[sizeof(num) - 1] = '\0';
    assert_false(fast(num));
    num[sizeof(num) - 2] = '\0'; /* MM_JSONV_MAX_NUMBER digits: fine */
    assert_true(fast(num));
    /* Nesting: MM_JSONV_MAX_DEPTH levels pass, one more is deferred. */
    memset(deep, '[', MM_JSONV_MAX_DEPTH);
    memset(deep + MM_JSONV_MAX_DEPTH, ']', MM_JSONV_MAX_DEPTH);
    deep[2 * MM_JSONV_MAX_DEPTH] = '\0';
    assert_true(fast(deep));
    memset(deep, '[', MM_JSONV_MAX_DEPTH + 1);
    memset(deep + MM_JSONV_MAX_DEPTH + 1, ']', MM_JSONV_MAX_DEPTH + 1);
    deep[2 * (MM_JSONV_MAX_DEPTH + 1)] = '\0';
    assert_false(fast(deep));
    assert_true(cjson_accepts(deep, strlen(deep), NULL));
    /* cJSON's leniencies: control bytes as white space, a byte order mark,
     * and a NUL inside the length. */
    assert_false(fast("\x01[1]"));
    assert_false(fast("\xef\xbb\xbf[1]"));
    assert_false(mm__json_fast_valid("[1]\0", 4));
    assert_false(mm__json_fast_valid(NULL, 0));
}

/* The message-level verdict is cJSON's, fast path or not: the same
 * acceptance, the same error offset, and a tree only when cJSON built one. */
static void
test_jsonv_msg_verdict_is_cjsons(void **state)
{
    static const char *in[] = {
        "{\"seq\":1}", "[1,2,3]", "\"\\u00e9\"", "\x01 7",      "{\"a\" 1}",
        "[1,",         "01",      "1 2",         "\"\\ud800\"", "",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        size_t len = strlen(in[i]), want_off = 0, off = 12345;
        int want = cjson_accepts(in[i], len, &want_off);
        mm_msg *m = mm_msg_new_json("t", in[i], len);
        assert_non_null(m);
        int got = mm__msg_json_ok(m, &off);
        if (got != want)
            fail_msg("%s: got %d, cJSON says %d", in[i], got, want);
        if (!want) {
            assert_int_equal(off, want_off);
            /* The verdict sticks: asked again, the same answer. */
            assert_false(mm__msg_json_ok(m, &off));
            assert_int_equal(off, want_off);
        } else if (fast(in[i])) {
            assert_null(m->json); /* no tree was built */
        }
        /* Either way the actor can parse what was accepted. */
        assert_int_equal(mm_msg_json(m, NULL) != NULL, want);
        mm_msg_free(m);
    }
}

/* Strings are scanned a word at a time: a quote, a backslash or a control
 * byte must be seen at every position of a word, whatever bytes share it
 * (high bytes of UTF-8 included), and the verdict stays cJSON's. */
static void
test_jsonv_string_bytes_at_every_offset(void **state)
{
    static const char *ins[] = {
        "\"", "\\n", "\\u0041", "\x01", "\x1f",
        "\t", "\\",  " ",       "\x7f", "\xc3\xa9",
    };
    (void)state;
    for (size_t k = 0; k < sizeof(ins) / sizeof(ins[0]); k++) {
        for (size_t at = 0; at < 24; at++) {
            char s[64];
            size_t n = 0;
            s[n++] = '"';
            for (size_t i = 0; i < at; i++) /* ASCII and high bytes */
                s[n++] = (char)(i % 2 ? 'a' : 0xc3);
            memcpy(s + n, ins[k], strlen(ins[k]));
            n += strlen(ins[k]);
            for (size_t i = 0; i < 17; i++)
                s[n++] = 'z';
            s[n++] = '"';
            s[n] = '\0';
            int f = mm__json_fast_valid(s, n);
            int c = cjson_accepts(s, n, NULL);
            if (f && !c)
                fail_msg("accepted what cJSON refuses: %s at %zu", ins[k], at);
            /* Plain bytes and simple escapes take the fast path. */
            int plain = strcmp(ins[k], "\"") != 0 && ins[k][0] != '\\' &&
                        (unsigned char)ins[k][0] >= 0x20;
            int simple = strcmp(ins[k], "\\n") == 0;
            if ((plain || simple) != f)
                fail_msg("%s at %zu: fast %d", ins[k], at, f);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonv_accepts_strict_json),
        cmocka_unit_test(test_jsonv_refuses_malformed),
        cmocka_unit_test(test_jsonv_unsure_cases_defer),
        cmocka_unit_test(test_jsonv_msg_verdict_is_cjsons),
        cmocka_unit_test(test_jsonv_string_bytes_at_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
