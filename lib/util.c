/* util.c — allocation, logging, clocks, hex, random numbers, small files. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
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

/* ---- logging -----------------------------------------------------------
 *
 * A user handler (mm_log_set_handler) is called synchronously, under
 * log_lock, as it always was.  The stderr sink never blocks its caller:
 * while nothing is queued a line is written at once with a write that
 * cannot block (so a short-lived CLI keeps its warnings in order with its
 * own stderr output); whatever stderr does not take at once goes into a
 * ring of MM_LOG_BUFFER bytes that a writer thread drains.  A line that
 * does not fit whole is dropped and counted; once output flows again a
 * line "N log lines dropped" says how many.
 *
 * Repeats: lines at NOTICE and above with the same (component, format),
 * beyond MM_LOG_REPEAT_MAX in MM_LOG_REPEAT_MS, are counted instead of
 * written, and one line per window summarises them ("quic: 583 more 'auth
 * failed with ...' in the last 10 s").  The format string's address is the
 * key, so no call site has to take part.
 */

static _Atomic int log_level = MM_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_work = PTHREAD_COND_INITIALIZER;    /* writer */
static pthread_cond_t log_drained = PTHREAD_COND_INITIALIZER; /* flushers */
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static mm_log_fn log_fn;
static void *log_data;
/* The stderr sink's line format (MM_LOG_FORMAT_*), and whether fd 2 is
 * the journal's stream ($JOURNAL_STREAM names its device and inode): text
 * lines then start with the syslog priority "<N>", which journald reads. */
static _Atomic int log_format = MM_LOG_FORMAT_TEXT;
static int log_journal;

/* The stderr ring; bytes [ring_head, ring_head + ring_len) modulo its size
 * are queued.  Producers append under log_lock; only the writer consumes,
 * and it writes from the ring outside the lock (producers never touch the
 * queued bytes). */
_Static_assert(MM_LOG_BUFFER >= 4096, "a line and the rest of another fit");
static char log_ring[MM_LOG_BUFFER];
static size_t ring_head, ring_len;
static uint64_t log_dropped;       /* since the last "dropped" line */
static uint64_t log_dropped_total; /* ever, for tests */
static int writer_started;         /* the thread runs (in this process) */
static int writer_busy;            /* it is inside write(2) */
/* A flush timed out: until the writer has emptied the ring, later flushes
 * (mm_node_free, then exit) do not wait again, so that a stderr that is
 * stuck or merely slow costs an exiting process one flush time, not one
 * per flush. */
static int flush_stuck;

/* A non-blocking descriptor on the pipe or FIFO that fd 2 is, opened
 * through /proc (its own open file description, so fd 2's flags, which
 * other processes share, stay as they are). */
static int nb_fd = -1;
static dev_t nb_dev;
static ino_t nb_ino;

#define LOG_REPEAT_SLOTS 64
struct log_repeat {
    const char *fmt; /* NULL: free slot */
    const char *component;
    int level;
    uint32_t count;      /* lines of this window */
    uint64_t start_ms;   /* the window's start */
    uint64_t suppressed; /* lines counted, not written */
};
static struct log_repeat log_repeats[LOG_REPEAT_SLOTS];
static uint64_t repeat_due_ms = UINT64_MAX; /* earliest summary due */

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

void
mm_log_set_format(int format)
{
    atomic_store(&log_format, format == MM_LOG_FORMAT_JSON
                                  ? MM_LOG_FORMAT_JSON
                                  : MM_LOG_FORMAT_TEXT);
}

int
mm__log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

static const char *
level_name(int level)
{
    switch (level) {
    case MM_LOG_ERR:
        return "error";
    case MM_LOG_WARN:
        return "warn";
    case MM_LOG_NOTICE:
        return "notice";
    case MM_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
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

/* fork(): the child has no writer thread and must not write the parent's
 * queued lines a second time. */
static void
log_atfork_prepare(void)
{
    pthread_mutex_lock(&log_lock);
}

static void
log_atfork_parent(void)
{
    pthread_mutex_unlock(&log_lock);
}

static void
log_atfork_child(void)
{
    writer_started = 0;
    writer_busy = 0;
    flush_stuck = 0;
    ring_head = ring_len = 0;
    /* The parent's writer may have been waiting on these. */
    pthread_cond_init(&log_work, NULL);
    pthread_cond_init(&log_drained, NULL);
    pthread_mutex_unlock(&log_lock);
}

static void
log_init_once(void)
{
    pthread_atfork(log_atfork_prepare, log_atfork_parent, log_atfork_child);
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        log_journal = 1;
}

/*
 * Appends |s| to |out| (of |cap| bytes, |*len| used) as the inside of a
 * JSON string: quotes, backslashes and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD.  Stops, whole characters only,
 * when |cap| is reached.
 */
static void
json_escape_into(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        const char *src = esc;
        size_t sl, adv = 1;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sl = 2;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            sl = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            sl = 6;
        } else if (c < 0x80) {
            src = (const char *)p;
            sl = 1;
        } else {
            /* One UTF-8 sequence, checked: lead byte, continuation bytes,
             * no overlong forms, no surrogates, nothing past U+10FFFF. */
            size_t need = c >= 0xf0 && c <= 0xf4   ? 4
                          : c >= 0xe0 && c <= 0xef ? 3
                          : c >= 0xc2 && c <= 0xdf ? 2
                                                   : 0;
            size_t k = 1;
            while (need && k < need && (p[k] & 0xc0) == 0x80)
                k++;
            int ok = need != 0 && k == need;
            if (ok && need == 3)
                ok =
                    !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
            if (ok && need == 4)
                ok =
                    !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
            if (ok) {
                src = (const char *)p;
                sl = adv = need;
            } else {
                memcpy(esc, "\\ufffd", 6);
                sl = 6;
            }
        }
        if (n + sl >= cap) break;
        memcpy(out + n, src, sl);
        n += sl;
        p += adv;
    }
    out[n] = '\0';
    *len = n;
}

/*
 * One JSON object and its newline in |line| (of |cap| >= 256 bytes):
 * {"time":"2026-01-02T03:04:05.678Z","level":"warn","pid":N,
 * "module":"quic","message":"..."}; the message is cut to fit.  Its length.
 */
static size_t
log_format_json(char *line, size_t cap, int level, const char *component,
                const char *text)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000L);
    int h = snprintf(line, cap,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,"
                     "\"module\":\"",
                     when, level_name(level), (int)getpid());
    if (h <= 0 || (size_t)h >= cap / 2) return 0;
    size_t len = (size_t)h;
    const char *tail = "\",\"message\":\"";
    json_escape_into(line, cap / 2, &len, component ? component : "");
    memcpy(line + len, tail, strlen(tail));
    len += strlen(tail);
    json_escape_into(line, cap - 3, &len, text);
    memcpy(line + len, "\"}\n", 3);
    return len + 3;
}

/* Appends |n| bytes to the ring; the caller checked the room. */
static void
ring_put(const char *p, size_t n)
{
    size_t tail = (ring_head + ring_len) % sizeof(log_ring);
    size_t first = MM_MIN(n, sizeof(log_ring) - tail);
    memcpy(log_ring + tail, p, first);
    memcpy(log_ring, p + first, n - first);
    ring_len += n;
}

/* The "dropped" line goes in first, as soon as it fits. */
static int
ring_note_dropped(void)
{
    if (log_dropped == 0) return 0;
    char note[320];
    int n;
    if (atomic_load(&log_format) == MM_LOG_FORMAT_JSON) {
        char text[64];
        snprintf(text, sizeof(text), "%llu log lines dropped",
                 (unsigned long long)log_dropped);
        n = (int)log_format_json(note, sizeof(note), MM_LOG_WARN, "log", text);
    } else {
        n = snprintf(note, sizeof(note),
                     "%smurmer[%d] W log: %llu log lines dropped\n",
                     log_journal ? "<4>" : "", (int)getpid(),
                     (unsigned long long)log_dropped);
    }
    if (n <= 0 || (size_t)n > sizeof(log_ring) - ring_len) return -1;
    ring_put(note, (size_t)n);
    log_dropped = 0;
    return 0;
}

/* Queues a whole line, or drops and counts it. */
static void
ring_line(const char *p, size_t n)
{
    if (ring_note_dropped() != 0 || n > sizeof(log_ring) - ring_len) {
        log_dropped++;
        log_dropped_total++;
        return;
    }
    ring_put(p, n);
}

/*
 * Writes what fd 2 takes without blocking: the byte count, 0 when it
 * would block, -1 when it is gone (the bytes are lost).  Regular files
 * and devices that are not terminals are written directly (they do not
 * wait for a reader).
 */
static ssize_t
stderr_write_nb(const char *p, size_t n)
{
    struct stat st;
    ssize_t w;
    if (fstat(STDERR_FILENO, &st) != 0) return -1;
    if (S_ISSOCK(st.st_mode)) {
        w = send(STDERR_FILENO, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (S_ISFIFO(st.st_mode)) {
        if (nb_fd >= 0 && (nb_dev != st.st_dev || nb_ino != st.st_ino)) {
            close(nb_fd);
            nb_fd = -1;
        }
        if (nb_fd < 0) {
            char path[64];
            snprintf(path, sizeof(path), "/proc/self/fd/%d", STDERR_FILENO);
            nb_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            nb_dev = st.st_dev;
            nb_ino = st.st_ino;
        }
        if (nb_fd >= 0) {
            w = write(nb_fd, p, n);
        } else {
            /* No /proc: a pipe with room takes a line of up to PIPE_BUF
             * bytes whole. */
            struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
            if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) return 0;
            w = write(STDERR_FILENO, p, MM_MIN(n, (size_t)PIPE_BUF));
        }
    } else if (S_ISCHR(st.st_mode) && isatty(STDERR_FILENO)) {
        struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
        if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) return 0;
        w = write(STDERR_FILENO, p, n);
    } else {
        w = write(STDERR_FILENO, p, n);
    }
    if (w >= 0) return w;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -1;
}

static void log_repeats_flush(uint64_t now, int all);

static void *
log_writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_lock);
    for (;;) {
        if (repeat_due_ms != UINT64_MAX && mm__now_ms() >= repeat_due_ms)
            log_repeats_flush(mm__now_ms(), 0);
        ring_note_dropped(); /* output flows: say what was lost */
        if (ring_len == 0) {
            flush_stuck = 0;
            pthread_cond_broadcast(&log_drained);
            if (repeat_due_ms == UINT64_MAX) {
                pthread_cond_wait(&log_work, &log_lock);
            } else {
                uint64_t due = repeat_due_ms, now = mm__now_ms();
                uint64_t wait_ms = due > now ? due - now : 0;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(wait_ms / 1000u);
                ts.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&log_work, &log_lock, &ts);
            }
            continue;
        }
        size_t chunk = MM_MIN(ring_len, sizeof(log_ring) - ring_head);
        const char *p = log_ring + ring_head;
        writer_busy = 1;
        pthread_mutex_unlock(&log_lock);
        ssize_t w = write(STDERR_FILENO, p, chunk);
        int err = w < 0 ? errno : 0;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            /* Somebody made fd 2 non-blocking: wait for room. */
            struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
            poll(&pfd, 1, 100);
        }
        pthread_mutex_lock(&log_lock);
        writer_busy = 0;
        if (w > 0) {
            ring_head = (ring_head + (size_t)w) % sizeof(log_ring);
            ring_len -= (size_t)w;
        } else if (err != EINTR && err != EAGAIN && err != EWOULDBLOCK) {
            ring_head = ring_len = 0; /* fd 2 is gone: nowhere to go */
        }
        if (ring_len == 0) ring_head = 0;
    }
    return NULL;
}

static void log_atexit(void);

/* Starts the writer (once per process) and wakes it. */
static void
log_writer_kick(void)
{
    if (!writer_started) {
        pthread_t th;
        pthread_attr_t attr;
        sigset_t all, old;
        /* Signals stay with the threads that wait for them; a write to a
         * pipe without reader gives EPIPE here instead of SIGPIPE. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64u * 1024u);
        if (pthread_create(&th, &attr, log_writer, NULL) == 0) {
            static int atexit_done;
            writer_started = 1;
            if (!atexit_done) {
                atexit_done = 1;
                atexit(log_atexit);
            }
        }
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_cond_signal(&log_work);
}

/* Writes or queues |len| bytes (whole lines) for stderr, log_lock held. */
static void
stderr_put(const char *line, size_t len)
{
    if (ring_len == 0 && !writer_busy && log_dropped == 0) {
        ssize_t w = stderr_write_nb(line, len);
        if (w < 0 || (size_t)w == len) return;
        ring_put(line + w, len - (size_t)w); /* the rest of the line */
    } else {
        ring_line(line, len);
    }
    log_writer_kick();
}

/* A formatted line of |n| bytes (snprintf's count) in |line| of |cap|:
 * cut to fit, still ending in a newline.  0 when there is nothing. */
static size_t
line_fit(char *line, size_t cap, int n)
{
    if (n <= 0) return 0;
    size_t len = MM_MIN((size_t)n, cap - 1);
    if (len == cap - 1) line[len - 1] = '\n';
    return len;
}

/* Emits one line to the sink, log_lock held. */
static void
log_emit(int level, const char *component, const char *text)
{
    if (log_fn) {
        log_fn(log_data, level, component, text);
        return;
    }
    char line[2400];
    size_t len;
    if (atomic_load(&log_format) == MM_LOG_FORMAT_JSON) {
        len = log_format_json(line, sizeof(line), level, component, text);
    } else {
        char prio[8] = "";
        if (log_journal) snprintf(prio, sizeof(prio), "<%d>", level);
        int n = snprintf(line, 1200, "%smurmer[%d] %c %s: %s\n", prio,
                         (int)getpid(), level_char(level), component, text);
        len = line_fit(line, 1200, n);
    }
    if (len) stderr_put(line, len);
}

/* The summary of |r|'s window, and a new window. */
static void
log_repeat_summary(struct log_repeat *r, uint64_t now)
{
    if (r->suppressed > 0) {
        const char *pct = strchr(r->fmt, '%');
        int plen = pct ? (int)(pct - r->fmt) : (int)strlen(r->fmt);
        while (plen > 0 && r->fmt[plen - 1] == ' ')
            plen--;
        char text[256];
        /* Tenths of a second, whole seconds from 10 s. */
        unsigned long long ds = (now - r->start_ms + 50u) / 100u;
        char span[32];
        if (ds >= 100)
            snprintf(span, sizeof(span), "%llu", (ds + 5) / 10);
        else
            snprintf(span, sizeof(span), "%llu.%llu", ds / 10, ds % 10);
        snprintf(text, sizeof(text), "%llu more '%.*s%s' in the last %s s",
                 (unsigned long long)r->suppressed, MM_MIN(plen, 160), r->fmt,
                 pct ? " ..." : "", span);
        log_emit(r->level, r->component, text);
    }
    r->count = 0;
    r->suppressed = 0;
    r->start_ms = now;
}

/* Summarises every window that ended (all of them with |all|). */
static void
log_repeats_flush(uint64_t now, int all)
{
    uint64_t due = UINT64_MAX;
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        struct log_repeat *r = &log_repeats[i];
        if (!r->fmt || r->suppressed == 0) continue;
        if (all || now - r->start_ms >= MM_LOG_REPEAT_MS)
            log_repeat_summary(r, now);
        else
            due = MM_MIN(due, r->start_ms + MM_LOG_REPEAT_MS);
    }
    repeat_due_ms = due;
}

/* 1 when a line of (|component|, |fmt|) is to be written now. */
static int
log_repeat_admit(int level, const char *component, const char *fmt,
                 uint64_t now)
{
    uintptr_t h = (uintptr_t)fmt * 0x9e3779b97f4a7c15ull;
    struct log_repeat *r = &log_repeats[(h >> 32) % LOG_REPEAT_SLOTS];
    if (r->fmt != fmt || r->component != component) {
        if (r->fmt) log_repeat_summary(r, now); /* evicted */
        r->fmt = fmt;
        r->component = component;
        r->level = level;
        r->count = 0;
        r->suppressed = 0;
        r->start_ms = now;
    } else if (now - r->start_ms >= MM_LOG_REPEAT_MS) {
        log_repeat_summary(r, now);
    }
    if (r->count < MM_LOG_REPEAT_MAX) {
        r->count++;
        return 1;
    }
    r->suppressed++;
    if (r->start_ms + MM_LOG_REPEAT_MS < repeat_due_ms) {
        repeat_due_ms = r->start_ms + MM_LOG_REPEAT_MS;
        log_writer_kick(); /* it summarises when the window ends */
    }
    return 0;
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
    pthread_once(&log_once, log_init_once);
    pthread_mutex_lock(&log_lock);
    uint64_t now = mm__now_ms();
    if (now >= repeat_due_ms) log_repeats_flush(now, 0);
    if (level > MM_LOG_NOTICE || log_repeat_admit(level, component, fmt, now))
        log_emit(level, component, line);
    pthread_mutex_unlock(&log_lock);
}

void
mm_log_line(int level, const char *component, const char *text)
{
    pthread_once(&log_once, log_init_once);
    pthread_mutex_lock(&log_lock);
    if (log_fn) {
        log_fn(log_data, level, component, text);
    } else if (atomic_load(&log_format) == MM_LOG_FORMAT_JSON) {
        /* The program's "murmer COMPONENT: " prefix is the module field. */
        char pre[80];
        int pl = snprintf(pre, sizeof(pre),
                          "murmer %s: ", component ? component : "");
        if (pl > 0 && (size_t)pl < sizeof(pre) &&
            strncmp(text, pre, (size_t)pl) == 0)
            text += pl;
        else if (strncmp(text, "murmer: ", 8) == 0)
            text += 8;
        char line[2400];
        size_t len =
            log_format_json(line, sizeof(line), level, component, text);
        if (len) stderr_put(line, len);
    } else {
        char line[1200];
        char prio[8] = "";
        if (log_journal) snprintf(prio, sizeof(prio), "<%d>", level);
        size_t len =
            line_fit(line, sizeof(line),
                     snprintf(line, sizeof(line), "%s%s\n", prio, text));
        if (len) stderr_put(line, len);
    }
    pthread_mutex_unlock(&log_lock);
}

int
mm_log_flush(unsigned timeout_ms)
{
    return mm__log_flush(timeout_ms) == 0 ? 0 : MM_ETIMEOUT;
}

int
mm__log_flush(unsigned timeout_ms)
{
    uint64_t deadline = mm__now_ms() + timeout_ms;
    int rc = 0;
    pthread_once(&log_once, log_init_once);
    pthread_mutex_lock(&log_lock);
    log_repeats_flush(mm__now_ms(), 1);
    if (ring_len == 0) ring_note_dropped();
    while (writer_started && (ring_len > 0 || writer_busy || log_dropped)) {
        pthread_cond_signal(&log_work);
        uint64_t now = mm__now_ms();
        if (now >= deadline || flush_stuck) {
            flush_stuck = 1;
            rc = -ETIMEDOUT;
            break;
        }
        /* Short waits: the writer may be blocked in write(2). */
        uint64_t wait_ms = MM_MIN(deadline - now, 10u);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)wait_ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&log_drained, &log_lock, &ts);
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

static void
log_atexit(void)
{
    mm__log_flush(MM_LOG_FLUSH_MS);
}

uint64_t
mm__log_dropped(void)
{
    pthread_mutex_lock(&log_lock);
    uint64_t n = log_dropped_total;
    pthread_mutex_unlock(&log_lock);
    return n;
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
