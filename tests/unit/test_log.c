/*
 * test_log.c — the logger never blocks its caller: stderr that nobody
 * reads fills a bounded buffer, lines past it are dropped and counted, and
 * a line says so once stderr takes lines again; repeated lines of one
 * (component, format) are summarised; a user handler is still called
 * synchronously, and an idle stderr gets each line at once; a program's
 * own lines (mm_log_line) take the same way, without prefix or summary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "helpers/testutil.h"

#define FLOOD_LINES 100000

/* fd 2 becomes the write end of a new pipe; returns the read end (made
 * non-blocking) and keeps the old fd 2 in *saved. */
static int
stderr_to_pipe(int *saved)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    *saved = dup(STDERR_FILENO);
    assert_true(*saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    return p[0];
}

static void
stderr_restore(int saved)
{
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
}

/* Reads what is in the pipe into |buf| (NUL-terminated, the tail kept). */
static size_t
pipe_read_some(int fd, char *buf, size_t cap, size_t len)
{
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            if (len == cap - 1) {
                memmove(buf, buf + cap / 2, len - cap / 2);
                len -= cap / 2;
            }
            buf[len++] = tmp[i];
        }
    }
    buf[len] = '\0';
    return len;
}

struct flood {
    sem_t done;
    uint64_t took_ms;
};

static void *
flood_thread(void *arg)
{
    struct flood *f = arg;
    uint64_t t0 = now_ms();
    for (int i = 0; i < FLOOD_LINES; i++)
        MM_LOG(MM_LOG_INFO, "test", "flood line %d of a stderr nobody reads",
               i);
    f->took_ms = now_ms() - t0;
    sem_post(&f->done);
    return NULL;
}

static void
test_log_unread_stderr_never_blocks(void **state)
{
    (void)state;
    int saved, rd = stderr_to_pipe(&saved);
    mm_log_set_level(MM_LOG_INFO);
    uint64_t dropped0 = mm__log_dropped();

    struct flood f;
    pthread_t th;
    sem_init(&f.done, 0, 0);
    assert_int_equal(pthread_create(&th, NULL, flood_thread, &f), 0);
    /* Nobody reads the pipe meanwhile: with a blocking logger the thread
     * would stop at the first full pipe and never post. */
    int rc = sem_wait_s(&f.done, 30);
    if (rc != 0) {
        char junk[1 << 16];
        pipe_read_some(rd, junk, sizeof(junk), 0); /* unblock, then fail */
        stderr_restore(saved);
        fail_msg("%d log lines did not return within 30 s", FLOOD_LINES);
    }
    pthread_join(th, NULL);
    sem_destroy(&f.done);
    uint64_t dropped = mm__log_dropped() - dropped0;
    assert_true(dropped > 0);
    assert_true(dropped < FLOOD_LINES);

    /* A flush gives up in its time; a second one, with nothing written
     * meanwhile, does not wait again (node free, then exit). */
    uint64_t t1 = now_ms();
    int flush1 = mm__log_flush(300);
    int flush2 = mm__log_flush(60000);
    uint64_t flush_ms = now_ms() - t1;

    /* Now read: the queued lines come out, then the count of the lost. */
    static char got[1 << 16];
    size_t len = 0;
    char want[64];
    snprintf(want, sizeof(want), "%llu log lines dropped",
             (unsigned long long)dropped);
    uint64_t t0 = now_ms();
    while (!strstr(got, want)) {
        if (now_ms() - t0 > 10000) {
            stderr_restore(saved);
            fail_msg("no \"%s\" line after 10 s of reading", want);
        }
        len = pipe_read_some(rd, got, sizeof(got), len);
        usleep(1000);
    }
    /* Lines flow again, after the count. */
    MM_LOG(MM_LOG_WARN, "test", "after the flood");
    int flushed = mm__log_flush(5000);
    len = pipe_read_some(rd, got, sizeof(got), len);
    stderr_restore(saved);
    close(rd);
    assert_int_equal(flushed, 0);
    assert_int_equal(flush1, -ETIMEDOUT);
    assert_int_equal(flush2, -ETIMEDOUT);
    assert_true(flush_ms >= 300 && flush_ms < 30000);
    const char *after = strstr(got, "W test: after the flood\n");
    assert_non_null(after);
    assert_true(after > strstr(got, want));
    mm_log_set_level(MM_LOG_WARN);
    fprintf(stderr,
            "# %d lines in %llu ms with stderr unread, %llu dropped, "
            "%zu bytes buffered\n",
            FLOOD_LINES, (unsigned long long)f.took_ms,
            (unsigned long long)dropped, (size_t)MM_LOG_BUFFER);
}

/* While nothing is queued, a line is in the pipe when MM_LOG returns (a
 * CLI's warnings stay in order with its own stderr output). */
static void
test_log_idle_stderr_is_written_at_once(void **state)
{
    (void)state;
    int saved, rd = stderr_to_pipe(&saved);
    char got[4096];
    assert_int_equal(mm__log_flush(5000), 0);
    MM_LOG(MM_LOG_WARN, "test", "first %d", 1);
    size_t len = pipe_read_some(rd, got, sizeof(got), 0);
    fprintf(stderr, "between\n");
    MM_LOG(MM_LOG_ERR, "test", "second %d", 2);
    len = pipe_read_some(rd, got, sizeof(got), len);
    /* A program's own line: as it stands, no prefix, at once too. */
    mm_log_line(MM_LOG_WARN, "start", "murmer start: third");
    len = pipe_read_some(rd, got, sizeof(got), len);
    stderr_restore(saved);
    close(rd);
    char want[160];
    snprintf(want, sizeof(want),
             "murmer[%d] W test: first 1\nbetween\nmurmer[%d] E test: second "
             "2\nmurmer start: third\n",
             (int)getpid(), (int)getpid());
    assert_string_equal(got, want);
}

struct captured {
    int n;
    int levels[64];
    char lines[64][256];
};

static void
capture(void *data, int level, const char *component, const char *line)
{
    struct captured *c = data;
    if (c->n < 64) {
        c->levels[c->n] = level;
        snprintf(c->lines[c->n], sizeof(c->lines[c->n]), "%s: %s", component,
                 line);
    }
    c->n++;
}

static void
log_auth_failure(int i)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 40000 + i);
    MM_LOG(MM_LOG_WARN, "quic", "auth failed with %s (%s): %s", addr, "?",
           "wrong cluster key");
}

static void
test_log_repeats_are_summarised(void **state)
{
    (void)state;
    struct captured c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(mm__log_flush(5000), 0);
    mm_log_set_handler(capture, &c);
    for (int i = 0; i < 1000; i++)
        log_auth_failure(i);
    /* The handler is called synchronously, for the first lines only. */
    assert_int_equal(c.n, (int)MM_LOG_REPEAT_MAX);
    assert_string_equal(c.lines[0],
                        "quic: auth failed with 127.0.0.1:40000 (?): wrong "
                        "cluster key");
    /* Another format of the same component is not held back. */
    MM_LOG(MM_LOG_WARN, "quic", "something else %d", 1);
    assert_int_equal(c.n, (int)MM_LOG_REPEAT_MAX + 1);
    assert_string_equal(c.lines[MM_LOG_REPEAT_MAX], "quic: something else 1");
    /* Levels below NOTICE are never summarised. */
    mm_log_set_level(MM_LOG_INFO);
    for (int i = 0; i < 50; i++)
        MM_LOG(MM_LOG_INFO, "quic", "info %d", i);
    mm_log_set_level(MM_LOG_WARN);
    assert_int_equal(c.n, (int)MM_LOG_REPEAT_MAX + 51);
    /* The summary: at the end of the window, or when flushed. */
    assert_int_equal(mm__log_flush(5000), 0);
    assert_int_equal(c.n, (int)MM_LOG_REPEAT_MAX + 52);
    char want[128];
    snprintf(want, sizeof(want),
             "quic: %d more 'auth failed with ...' in the last ",
             1000 - (int)MM_LOG_REPEAT_MAX);
    const char *got = c.lines[MM_LOG_REPEAT_MAX + 51];
    assert_memory_equal(got, want, strlen(want));
    assert_non_null(strstr(got + strlen(want), "."));
    assert_string_equal(got + strlen(got) - 2, " s");
    assert_int_equal(c.levels[MM_LOG_REPEAT_MAX + 51], MM_LOG_WARN);
    /* A new window writes again. */
    log_auth_failure(0);
    assert_int_equal(c.n, (int)MM_LOG_REPEAT_MAX + 53);
    /* A program's own lines reach the handler, never summarised. */
    for (int i = 0; i < 2 * (int)MM_LOG_REPEAT_MAX; i++)
        mm_log_line(MM_LOG_ERR, "start", "murmer start: own line");
    assert_int_equal(c.n, 3 * (int)MM_LOG_REPEAT_MAX + 53);
    assert_string_equal(c.lines[MM_LOG_REPEAT_MAX + 53],
                        "start: murmer start: own line");
    assert_int_equal(c.levels[MM_LOG_REPEAT_MAX + 53], MM_LOG_ERR);
    mm_log_set_handler(NULL, NULL);
}

/* With nothing else logged, the summary still comes when the window ends
 * (from the writer thread). */
static pthread_mutex_t late_lock = PTHREAD_MUTEX_INITIALIZER;

static void
capture_locked(void *data, int level, const char *component, const char *line)
{
    pthread_mutex_lock(&late_lock);
    capture(data, level, component, line);
    pthread_mutex_unlock(&late_lock);
}

static void
test_log_repeat_summary_comes_by_itself(void **state)
{
    (void)state;
    struct captured c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(mm__log_flush(5000), 0);
    mm_log_set_handler(capture_locked, &c);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 25; i++)
        MM_LOG(MM_LOG_WARN, "test", "again and again %d", i);
    int n;
    char last[256];
    for (;;) {
        pthread_mutex_lock(&late_lock);
        n = c.n;
        snprintf(last, sizeof(last), "%s", c.lines[MM_LOG_REPEAT_MAX]);
        pthread_mutex_unlock(&late_lock);
        if (n > (int)MM_LOG_REPEAT_MAX ||
            now_ms() - t0 > MM_LOG_REPEAT_MS + 5000)
            break;
        usleep(10000);
    }
    uint64_t took = now_ms() - t0;
    mm_log_set_handler(NULL, NULL);
    assert_int_equal(n, (int)MM_LOG_REPEAT_MAX + 1);
    char want[128];
    snprintf(want, sizeof(want),
             "test: %d more 'again and again ...' in the last 10 s",
             25 - (int)MM_LOG_REPEAT_MAX);
    assert_string_equal(last, want);
    assert_true(took >= MM_LOG_REPEAT_MS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_unread_stderr_never_blocks),
        cmocka_unit_test(test_log_idle_stderr_is_written_at_once),
        cmocka_unit_test(test_log_repeats_are_summarised),
        cmocka_unit_test(test_log_repeat_summary_comes_by_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
