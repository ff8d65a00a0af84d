/*
 * test_log_format.c — the stderr sink's line formats (mm_log_set_format):
 * text stays "murmer[PID] L module: message"; JSON is one object per line
 * with time (RFC 3339, UTC, milliseconds), level, pid, module and message,
 * whatever the message holds (quotes, backslashes, control characters,
 * bytes that are not UTF-8), cut to fit and still valid when it is long;
 * a program's own line (mm_log_line) loses its "murmer MODULE: " prefix.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "core.h"

static int saved_fd = -1;
static int pipe_rd = -1;

/* fd 2 becomes the write end of a pipe; the read end is non-blocking. */
static int
setup(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    saved_fd = dup(STDERR_FILENO);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    pipe_rd = p[0];
    mm_log_set_level(MM_LOG_DEBUG);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    mm_log_flush(500);
    mm_log_set_format(MM_LOG_FORMAT_TEXT);
    mm_log_set_level(MM_LOG_WARN);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    close(pipe_rd);
    return 0;
}

/* What the pipe holds now (the sink writes at once while idle). */
static char *
drain(void)
{
    assert_int_equal(mm_log_flush(1000), 0);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t n;
    while ((n = read(pipe_rd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return buf;
}

/* Parses one line (without its newline) as a JSON object and checks the
 * fields every line has.  The caller frees the object. */
static cJSON *
json_line(const char *line, size_t len, const char *level, const char *module)
{
    char *copy = strndup(line, len);
    assert_non_null(copy);
    cJSON *o = cJSON_Parse(copy);
    if (o == NULL) fail_msg("not JSON: %s", copy);
    free(copy);
    assert_int_equal(cJSON_GetArraySize(o), 5);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time");
    assert_true(cJSON_IsString(t));
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6]"
                "[0-9]\\.[0-9]{3}Z$",
                REG_EXTENDED | REG_NOSUB),
        0);
    assert_int_equal(regexec(&re, t->valuestring, 0, NULL, 0), 0);
    regfree(&re);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o, "level")->valuestring, level);
    assert_int_equal(
        (int)cJSON_GetObjectItemCaseSensitive(o, "pid")->valuedouble,
        (int)getpid());
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o, "module")->valuestring, module);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "message")));
    return o;
}

static const char *
message(const cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive(o, "message")->valuestring;
}

static void
test_text_default(void **state)
{
    (void)state;
    MM_LOG(MM_LOG_WARN, "quic", "plain %d", 1);
    mm_log_line(MM_LOG_NOTICE, "start", "murmer start: hello");
    char *out = drain();
    char want[128];
    snprintf(want, sizeof(want),
             "murmer[%d] W quic: plain 1\nmurmer start: hello\n",
             (int)getpid());
    assert_string_equal(out, want);
    free(out);
}

static void
test_json_lines(void **state)
{
    (void)state;
    mm_log_set_format(MM_LOG_FORMAT_JSON);
    MM_LOG(MM_LOG_ERR, "quic", "quote \" backslash \\ tab \t nl \n %s",
           "ctl \x01 del \x7f bad \xff\xfe utf8 \xc3\xa9 \xe2\x82\xac end");
    MM_LOG(MM_LOG_INFO, "swim", "a: alive -> left");
    MM_LOG(MM_LOG_DEBUG, "x", "d");
    MM_LOG(MM_LOG_NOTICE, "y", "n");
    mm_log_line(MM_LOG_NOTICE, "start", "murmer start: node a listening");
    mm_log_line(MM_LOG_WARN, "start", "murmer: no command prefix");
    mm_log_line(MM_LOG_WARN, "start", "no prefix at all");
    char *out = drain();
    const char *levels[] = {"error",  "info", "debug", "notice",
                            "notice", "warn", "warn"};
    const char *modules[] = {"quic",  "swim",  "x",    "y",
                             "start", "start", "start"};
    const char *msgs[] = {
        "quote \" backslash \\ tab \t nl \n ctl \x01 del \x7f bad "
        "\xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9 \xe2\x82\xac end",
        "a: alive -> left",
        "d",
        "n",
        "node a listening",
        "no command prefix",
        "no prefix at all"};
    const char *p = out;
    for (size_t i = 0; i < 7; i++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        cJSON *o = json_line(p, (size_t)(nl - p), levels[i], modules[i]);
        assert_string_equal(message(o), msgs[i]);
        cJSON_Delete(o);
        p = nl + 1;
    }
    assert_string_equal(p, "");
    /* Raw control bytes never reach the stream. */
    for (const char *q = out; *q; q++)
        assert_true(*q == '\n' || (unsigned char)*q >= 0x20);
    free(out);
}

/* A message that escapes past the line's room is cut, whole characters
 * only, and the line is still one valid object. */
static void
test_json_long(void **state)
{
    (void)state;
    mm_log_set_format(MM_LOG_FORMAT_JSON);
    size_t n = 3000;
    char *text = malloc(n + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        text[i] = i % 3 == 0 ? '"' : i % 3 == 1 ? '\x02' : 'a';
    text[n] = '\0';
    mm_log_line(MM_LOG_WARN, "start", text);
    /* And an é that would straddle the cut. */
    memset(text, 'a', n);
    for (size_t i = 1000; i + 1 < n; i += 2) {
        text[i] = '\xc3';
        text[i + 1] = '\xa9';
    }
    mm_log_line(MM_LOG_WARN, "start", text);
    char *out = drain();
    const char *p = out;
    for (int k = 0; k < 2; k++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl - p < 2400);
        cJSON *o = json_line(p, (size_t)(nl - p), "warn", "start");
        size_t ml = strlen(message(o));
        assert_true(ml > 300 && ml < n);
        assert_memory_equal(message(o), text, k == 1 ? 1000 : 0);
        cJSON_Delete(o);
        p = nl + 1;
    }
    assert_string_equal(p, "");
    free(out);
    free(text);
}

/* A stderr nobody reads: the lines that do not fit are dropped, and the
 * line that counts them is JSON too. */
static void
test_json_dropped(void **state)
{
    (void)state;
    mm_log_set_format(MM_LOG_FORMAT_JSON);
    for (int i = 0; i < 5000; i++)
        MM_LOG(MM_LOG_INFO, "flood", "line %d of a stderr nobody reads yet", i);
    size_t cap = 4u << 20, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    uint64_t deadline = mm__now_ms() + 10000;
    int idle = 0;
    while (idle < 3 && mm__now_ms() < deadline) {
        ssize_t n = read(pipe_rd, buf + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            idle = 0;
        } else if (mm_log_flush(20) == 0) {
            idle++;
        }
    }
    buf[len] = '\0';
    size_t lines = 0, dropped_lines = 0;
    for (char *p = buf, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        char *copy = strndup(p, (size_t)(nl - p));
        cJSON *o = cJSON_Parse(copy);
        if (o == NULL) fail_msg("not JSON: %s", copy);
        const char *mod =
            cJSON_GetObjectItemCaseSensitive(o, "module")->valuestring;
        if (strcmp(mod, "log") == 0) {
            assert_non_null(strstr(message(o), " log lines dropped"));
            dropped_lines++;
        }
        lines++;
        cJSON_Delete(o);
        free(copy);
    }
    assert_true(lines > 100 && lines < 5000);
    assert_true(dropped_lines >= 1);
    free(buf);
}

/* Back to text: the same line as before JSON was set. */
static void
test_back_to_text(void **state)
{
    (void)state;
    mm_log_set_format(MM_LOG_FORMAT_JSON);
    mm_log_set_format(MM_LOG_FORMAT_TEXT);
    MM_LOG(MM_LOG_WARN, "quic", "plain %d", 2);
    char *out = drain();
    char want[64];
    snprintf(want, sizeof(want), "murmer[%d] W quic: plain 2\n", (int)getpid());
    assert_string_equal(out, want);
    free(out);
}

int
main(void)
{
    unsetenv("JOURNAL_STREAM");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_to_text, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
