/* util.c — allocation, logging, clocks, hex, random numbers, small files. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void
mm__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "murmer[%d] assertion failed: %s (%s:%d)\n", (int)getpid(),
            what, file, line);
    abort();
}

/* ---- allocation -------------------------------------------------------- */

static _Atomic unsigned long alloc_countdown;

static int
alloc_should_fail(void)
{
    unsigned long c =
        atomic_load_explicit(&alloc_countdown, memory_order_relaxed);
    if (MM_LIKELY(c == 0)) return 0;
    c = atomic_fetch_sub(&alloc_countdown, 1);
    return c == 1;
}

void
mm__alloc_fail_after(unsigned long n)
{
    atomic_store(&alloc_countdown, n);
}

void *
mm__malloc(size_t n)
{
    return alloc_should_fail() ? NULL : malloc(n ? n : 1);
}

void *
mm__calloc(size_t count, size_t n)
{
    return alloc_should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *
mm__realloc(void *p, size_t n)
{
    return alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *
mm__strdup(const char *s)
{
    return s ? mm__strndup(s, strlen(s)) : NULL;
}

char *
mm__strndup(const char *s, size_t n)
{
    char *d = mm__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void
mm__free(void *p)
{
    free(p);
}

/* ---- logging ----------------------------------------------------------- */

static _Atomic int log_level = MM_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static mm_log_fn log_fn;
static void *log_data;

void
mm_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

int
mm_log_get_level(void)
{
    return atomic_load(&log_level);
}

void
mm_log_set_handler(mm_log_fn fn, void *data)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_data = data;
    pthread_mutex_unlock(&log_lock);
}

int
mm__log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

static char
level_char(int level)
{
    switch (level) {
    case MM_LOG_ERR:
        return 'E';
    case MM_LOG_WARN:
        return 'W';
    case MM_LOG_NOTICE:
        return 'N';
    case MM_LOG_INFO:
        return 'I';
    default:
        return 'D';
    }
}

void
mm__log(int level, const char *component, const char *fmt, ...)
{
    if (!mm__log_enabled(level)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (log_fn) {
        log_fn(log_data, level, component, line);
    } else {
        fprintf(stderr, "murmer[%d] %c %s: %s\n", (int)getpid(),
                level_char(level), component, line);
    }
    pthread_mutex_unlock(&log_lock);
}

/* ---- clocks ------------------------------------------------------------ */

uint64_t
mm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
mm__now_ms(void)
{
    return mm__now_ns() / 1000000ull;
}

uint64_t
mm__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* ---- hex --------------------------------------------------------------- */

void
mm__hex(char *out, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
mm__unhex(uint8_t *out, size_t len, const char *in)
{
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(in[2 * i]);
        int lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0) return MM_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- random ------------------------------------------------------------ */

int
mm__random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -EIO;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static _Thread_local uint64_t rng_state[2];

uint64_t
mm__rand64(void)
{
    if (MM_UNLIKELY(rng_state[0] == 0 && rng_state[1] == 0)) {
        if (mm__random_bytes(rng_state, sizeof(rng_state)) != 0 ||
            (rng_state[0] | rng_state[1]) == 0) {
            rng_state[0] = mm__now_ns() | 1;
            rng_state[1] = (uint64_t)(uintptr_t)&rng_state;
        }
    }
    /* xorshift128+ */
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return rng_state[1] + s0;
}

/* ---- small files ------------------------------------------------------- */

int
mm__read_small_file(const char *path, size_t max, char **out, size_t *outlen,
                    struct stat *st)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (fstat(fd, &sb) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (st) *st = sb;
    if (!S_ISREG(sb.st_mode) || sb.st_size < 0) {
        close(fd);
        return UV_EINVAL;
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return UV_EFBIG;
    }
    size_t size = (size_t)sb.st_size;
    char *buf = mm__malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = -errno;
            close(fd);
            memset(buf, 0, got);
            mm__free(buf);
            return err;
        }
        if (n == 0) break; /* shrank under us: what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    if (outlen) *outlen = got;
    return 0;
}
