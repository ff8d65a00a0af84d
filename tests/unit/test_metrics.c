/*
 * test_metrics.c — the /metrics endpoint (lib/metrics.c) on a real node
 * over real TCP: a strict checker of the Prometheus text format 0.0.4
 * (and its own refusals of malformed text), the families and their values
 * before and after traffic, a blocked shard left out within the gather
 * bound, and the responder's bounds: only GET /metrics, the request-head
 * cap, the connection cap and the deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "murmer.h"
#include "defaults.h"
#include "metrics.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

/* ---- a strict checker of the text format --------------------------------- */

#define CK_FAM_MAX 512
struct ck_family {
    char name[128];
    char type[16];
    int help, has_type, samples;
    /* histogram: the last bucket's le and count, +Inf seen, its count */
    double last_le, last_bucket;
    int inf_seen;
    double inf_count, count;
    int count_seen;
};

static int
ck_fail(char *why, size_t wl, int line, const char *fmt, ...)
{
    char tmp[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    snprintf(why, wl, "line %d: %s", line, tmp);
    return -1;
}

static int
ck_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

static int
ck_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || errno) return -1;
    return 0;
}

static int
ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/*
 * 0 when |text| is valid exposition text by these rules, else -1 with the
 * reason in |why|: every line is "# HELP name text", "# TYPE name type" or
 * a sample; each family has exactly one HELP and one TYPE before its
 * samples and its samples are contiguous; names and label names are
 * well-formed, label values are quoted with only \\, \" and \n escapes, no
 * label name repeats in a sample; values parse; no sample repeats;
 * counters end in _total, other names than histograms' and summaries'
 * not in _count, _sum or _bucket (as promtool's lint); histograms have _bucket
 * samples with an le label in increasing order with cumulative counts, a +Inf
 * bucket equal to _count, and _sum and _count; every name starts with murmer_
 * or process_; the text ends with a newline.
 */
static int
expo_check(const char *text, char *why, size_t wl)
{
    static struct ck_family fam[CK_FAM_MAX];
    static char seen[4096][256];
    size_t nfam = 0, nseen = 0;
    struct ck_family *cur = NULL;
    size_t tl = strlen(text);
    if (tl == 0 || text[tl - 1] != '\n')
        return ck_fail(why, wl, 0, "no final newline");
    const char *p = text;
    int line = 0;
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        char l[2048];
        size_t ll = (size_t)(eol - p);
        if (ll >= sizeof(l)) return ck_fail(why, wl, line, "line too long");
        memcpy(l, p, ll);
        l[ll] = '\0';
        p = eol + 1;
        if (ll == 0) return ck_fail(why, wl, line, "empty line");
        if (l[0] == '#') {
            char kind[8], name[128];
            int off = 0;
            if (sscanf(l, "# %7s %127s %n", kind, name, &off) < 2)
                return ck_fail(why, wl, line, "bad comment '%s'", l);
            int help = strcmp(kind, "HELP") == 0;
            int type = strcmp(kind, "TYPE") == 0;
            if (!help && !type)
                return ck_fail(why, wl, line, "comment not HELP/TYPE");
            if (!ck_name_ok(name, strlen(name)))
                return ck_fail(why, wl, line, "bad name '%s'", name);
            if (strncmp(name, "murmer_", 7) && strncmp(name, "process_", 8))
                return ck_fail(why, wl, line, "'%s': no murmer_ prefix", name);
            struct ck_family *f = NULL;
            for (size_t i = 0; i < nfam; i++)
                if (strcmp(fam[i].name, name) == 0) f = &fam[i];
            if (f && f != cur)
                return ck_fail(why, wl, line, "'%s' declared again", name);
            if (!f) {
                if (nfam == CK_FAM_MAX)
                    return ck_fail(why, wl, line, "too many families");
                f = &fam[nfam++];
                memset(f, 0, sizeof(*f));
                snprintf(f->name, sizeof(f->name), "%s", name);
                f->last_le = -INFINITY;
                cur = f;
            }
            if (f->samples)
                return ck_fail(why, wl, line, "'%s': %s after samples", name,
                               kind);
            if (help) {
                if (f->help++) return ck_fail(why, wl, line, "two HELP");
                if (!l[off]) return ck_fail(why, wl, line, "empty HELP");
            } else {
                if (f->has_type++) return ck_fail(why, wl, line, "two TYPE");
                const char *t = l + off;
                if (strcmp(t, "counter") && strcmp(t, "gauge") &&
                    strcmp(t, "histogram") && strcmp(t, "summary") &&
                    strcmp(t, "untyped"))
                    return ck_fail(why, wl, line, "bad type '%s'", t);
                snprintf(f->type, sizeof(f->type), "%s", t);
                if (strcmp(t, "counter") == 0 && !ends_with(name, "_total"))
                    return ck_fail(why, wl, line, "counter '%s' not _total",
                                   name);
                if (strcmp(t, "histogram") && strcmp(t, "summary") &&
                    (ends_with(name, "_count") || ends_with(name, "_sum") ||
                     ends_with(name, "_bucket")))
                    return ck_fail(why, wl, line,
                                   "'%s': _count/_sum/_bucket suffix", name);
            }
            continue;
        }
        /* A sample: name[{labels}] value */
        size_t nl = 0;
        while (l[nl] && l[nl] != '{' && l[nl] != ' ')
            nl++;
        char name[128];
        if (nl >= sizeof(name) || !ck_name_ok(l, nl))
            return ck_fail(why, wl, line, "bad sample name in '%s'", l);
        memcpy(name, l, nl);
        name[nl] = '\0';
        if (!cur || !cur->help || !cur->has_type)
            return ck_fail(why, wl, line, "'%s' before HELP and TYPE", name);
        const char *suffix = "";
        size_t fl = strlen(cur->name);
        if (strcmp(cur->type, "histogram") == 0) {
            if (strncmp(name, cur->name, fl) != 0)
                return ck_fail(why, wl, line, "'%s' outside its family", name);
            suffix = name + fl;
            if (strcmp(suffix, "_bucket") && strcmp(suffix, "_sum") &&
                strcmp(suffix, "_count"))
                return ck_fail(why, wl, line, "'%s': bad histogram sample",
                               name);
        } else if (strcmp(name, cur->name) != 0) {
            return ck_fail(why, wl, line, "'%s' outside family '%s'", name,
                           cur->name);
        }
        cur->samples++;
        size_t i = nl;
        char lnames[16][64];
        int nln = 0;
        double le = NAN;
        int has_le = 0;
        if (l[i] == '{') {
            i++;
            while (l[i] != '}') {
                size_t s = i;
                while (l[i] && l[i] != '=')
                    i++;
                if (!l[i] || !ck_name_ok(l + s, i - s) || i - s >= 64 ||
                    nln == 16)
                    return ck_fail(why, wl, line, "bad label name");
                memcpy(lnames[nln], l + s, i - s);
                lnames[nln][i - s] = '\0';
                for (int k = 0; k < nln; k++)
                    if (strcmp(lnames[k], lnames[nln]) == 0)
                        return ck_fail(why, wl, line, "label repeated");
                int is_le = strcmp(lnames[nln], "le") == 0;
                nln++;
                if (l[++i] != '"')
                    return ck_fail(why, wl, line, "label value not quoted");
                i++;
                char val[256];
                size_t vl = 0;
                while (l[i] && l[i] != '"') {
                    if (l[i] == '\\') {
                        i++;
                        if (l[i] != '\\' && l[i] != '"' && l[i] != 'n')
                            return ck_fail(why, wl, line, "bad escape");
                    }
                    if (vl + 1 < sizeof(val)) val[vl++] = l[i];
                    i++;
                }
                val[vl] = '\0';
                if (l[i] != '"')
                    return ck_fail(why, wl, line, "unterminated value");
                i++;
                if (is_le) {
                    if (ck_value(val, &le) != 0)
                        return ck_fail(why, wl, line, "bad le '%s'", val);
                    has_le = 1;
                }
                if (l[i] == ',')
                    i++;
                else if (l[i] != '}')
                    return ck_fail(why, wl, line, "bad label list");
            }
            i++;
        }
        if (l[i] != ' ') return ck_fail(why, wl, line, "no value");
        double v;
        if (ck_value(l + i + 1, &v) != 0)
            return ck_fail(why, wl, line, "bad value '%s'", l + i + 1);
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)i, l);
        for (size_t k = 0; k < nseen; k++)
            if (strcmp(seen[k], key) == 0)
                return ck_fail(why, wl, line, "sample '%s' repeated", key);
        if (nseen < 4096) snprintf(seen[nseen++], sizeof(seen[0]), "%s", key);
        if (strcmp(suffix, "_bucket") == 0) {
            if (!has_le) return ck_fail(why, wl, line, "bucket without le");
            if (cur->inf_seen)
                return ck_fail(why, wl, line, "bucket after +Inf");
            if (!(le > cur->last_le))
                return ck_fail(why, wl, line, "le not increasing");
            if (v < cur->last_bucket)
                return ck_fail(why, wl, line, "buckets not cumulative");
            cur->last_le = le;
            cur->last_bucket = v;
            if (isinf(le)) {
                cur->inf_seen = 1;
                cur->inf_count = v;
            }
        } else if (strcmp(suffix, "_count") == 0) {
            cur->count_seen = 1;
            cur->count = v;
        }
    }
    for (size_t i = 0; i < nfam; i++) {
        struct ck_family *f = &fam[i];
        if (!f->help || !f->has_type)
            return ck_fail(why, wl, 0, "'%s' lacks HELP or TYPE", f->name);
        if (strcmp(f->type, "histogram") == 0 &&
            (!f->inf_seen || !f->count_seen || f->inf_count != f->count))
            return ck_fail(why, wl, 0, "histogram '%s': +Inf != _count",
                           f->name);
    }
    return 0;
}

static void
test_checker_refuses(void **state)
{
    (void)state;
    char why[256];
    const char *good =
        "# HELP murmer_x_total X.\n# TYPE murmer_x_total "
        "counter\nmurmer_x_total{a=\"q\\\"\\n\"} 3\n"
        "# HELP murmer_h H.\n# TYPE murmer_h histogram\n"
        "murmer_h_bucket{le=\"1\"} 1\nmurmer_h_bucket{le=\"+Inf\"}"
        " 2\nmurmer_h_sum 3.5\nmurmer_h_count 2\n";
    assert_int_equal(expo_check(good, why, sizeof(why)), 0);
    static const char *const bad[] = {
        /* no TYPE */
        "# HELP murmer_a A.\nmurmer_a 1\n",
        /* a counter without _total */
        "# HELP murmer_a A.\n# TYPE murmer_a counter\nmurmer_a 1\n",
        /* an unknown escape */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_a{x=\"\\t\"} 1\n",
        /* a bad value */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_a 1x\n",
        /* a repeated sample */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_a 1\nmurmer_a 2\n",
        /* a family declared twice */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_a 1\n"
        "# HELP murmer_b B.\n# TYPE murmer_b gauge\nmurmer_b 1\n"
        "# HELP murmer_a A.\n",
        /* buckets not cumulative */
        "# HELP murmer_h H.\n# TYPE murmer_h histogram\nmurmer_h_bucket{le="
        "\"1\"} 2\nmurmer_h_bucket{le=\"+Inf\"} 1\nmurmer_h_sum 1\n"
        "murmer_h_count 1\n",
        /* +Inf bucket != _count */
        "# HELP murmer_h H.\n# TYPE murmer_h histogram\nmurmer_h_bucket{le="
        "\"+Inf\"} 1\nmurmer_h_sum 1\nmurmer_h_count 2\n",
        /* a gauge named like a histogram's count */
        "# HELP murmer_a_count A.\n# TYPE murmer_a_count gauge\n"
        "murmer_a_count 1\n",
        /* no prefix */
        "# HELP other A.\n# TYPE other gauge\nother 1\n",
        /* no final newline */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_a 1",
        /* a sample of another family */
        "# HELP murmer_a A.\n# TYPE murmer_a gauge\nmurmer_b 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (expo_check(bad[i], why, sizeof(why)) == 0)
            fail_msg("bad text %zu accepted", i);
    }
}

/* ---- HTTP over TCP ------------------------------------------------------- */

static int
tcp_connect(const char *addr)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads until EOF, at most |ms|: the bytes read (NUL-terminated in |buf|),
 * or -1 when the time ran out first. */
static long
read_all(int fd, char *buf, size_t cap, int ms)
{
    size_t len = 0;
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end) return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)(end - now));
        if (r <= 0) continue;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == ECONNRESET) n = 0;
        if (n <= 0 || len + (size_t)n >= cap - 1) {
            if (n > 0) len += (size_t)n;
            buf[len] = '\0';
            return (long)len;
        }
        len += (size_t)n;
    }
}

#define RESP_MAX (1 << 20)
static char resp[RESP_MAX];

/* Sends |req| and returns the status; |body| points into resp. */
static int
http(const char *addr, const char *req, size_t reqlen, const char **body)
{
    int fd = tcp_connect(addr);
    size_t off = 0;
    while (off < reqlen) {
        ssize_t n = write(fd, req + off, reqlen - off);
        if (n <= 0) break; /* the server answered early and closed */
        off += (size_t)n;
    }
    long n = read_all(fd, resp, sizeof(resp), 5000);
    close(fd);
    assert_true(n > 0);
    int status = 0;
    assert_int_equal(sscanf(resp, "HTTP/1.1 %d ", &status), 1);
    assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
    char *b = strstr(resp, "\r\n\r\n");
    assert_non_null(b);
    if (body) *body = b + 4;
    return status;
}

static const char *
scrape(const char *addr)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *body;
    assert_int_equal(http(addr, req, sizeof(req) - 1, &body), 200);
    assert_non_null(
        strstr(resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    char why[256];
    if (expo_check(body, why, sizeof(why)) != 0)
        fail_msg("exposition text refused: %s\n%s", why, body);
    return body;
}

/* The value of the sample whose line starts with |key| + ' ', or -1. */
static double
value_of(const char *body, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') return atof(p + kl + 1);
    return -1;
}

/* ---- the node ------------------------------------------------------------ */

static sem_t hold_sem, held_sem;
static mm_node *mm_test_node; /* for functions posted to shard 0 */

static int
h_hold(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    sem_post(&held_sem);
    assert_int_equal(sem_wait_s(&hold_sem, 20), 0);
    return 0;
}

static int
h_nop(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    return 0;
}

static int
h_crash(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    return MM_EHANDLER;
}

static const mm_handler holder_handlers[] = {MM_HANDLER("hold", h_hold),
                                             MM_HANDLER("nop", h_nop),
                                             MM_HANDLER("crash", h_crash)};
static const mm_actor_type holder_type = {
    .name = "holder",
    .handlers = holder_handlers,
    .nhandlers = 3,
};

struct fix {
    mm_node *n;
    char dir[64];
    char addr[80];
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/mm-metrics-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct nodefix_opts o = {.name = "m1",
                             .dir = f->dir,
                             .listen = "127.0.0.1:0",
                             .shards = 2,
                             .no_mdns = 1,
                             .builtins = 1};
    f->n = nodefix_new(&o);
    assert_int_equal(mm_node_register_type(f->n, &holder_type), 0);
    assert_null(mm_node_metrics_addr(f->n));
    assert_int_equal(mm_node_serve_metrics(f->n, "127.0.0.1:0"), 0);
    assert_int_equal(mm_node_serve_metrics(f->n, "127.0.0.1:0"), MM_EEXISTS);
    snprintf(f->addr, sizeof(f->addr), "%s", mm_node_metrics_addr(f->n));
    nodefix_start(f->n);
    sem_init(&hold_sem, 0, 0);
    sem_init(&held_sem, 0, 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    nodefix_down(f->n);
    rm_rf(f->dir);
    sem_destroy(&hold_sem);
    sem_destroy(&held_sem);
    free(f);
    return 0;
}

static void
spawn(mm_node *n, const char *type, int shard, mm_endpoint *ep)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.shard = shard;
    assert_int_equal(mm_spawn(n, type, &o, ep), 0);
}

static void
test_bad_address(void **state)
{
    (void)state;
    mm_node *n = NULL;
    assert_int_equal(mm_node_new(&n, NULL), 0);
    assert_int_equal(mm_node_serve_metrics(n, "nonsense"), MM_EINVAL);
    assert_int_equal(mm_node_serve_metrics(n, "127.0.0.1:99999"), MM_EINVAL);
    assert_int_equal(mm_node_serve_metrics(n, "300.0.0.1:0"), MM_EINVAL);
    assert_null(mm_node_metrics_addr(n));
    mm_node_free(n);
}

static void
test_families_and_traffic(void **state)
{
    struct fix *f = *state;
    mm_endpoint e[3];
    for (int i = 0; i < 3; i++)
        spawn(f->n, "echo", i % 2, &e[i]);
    const char *b = scrape(f->addr);
    /* Spawns start on their shard soon after: wait for all three. */
    uint64_t end = now_ms() + 5000;
    while (value_of(b, "murmer_actors{type=\"echo\"}") != 3 && now_ms() < end)
        b = scrape(f->addr);
    assert_true(value_of(b, "murmer_actors{type=\"echo\"}") == 3);
    static const char *const families[] = {
        "murmer_members{state=\"alive\"}",
        "murmer_shards",
        "murmer_scrape_shards_missing",
        "murmer_messages_processed_total",
        "murmer_calls_total{status=\"ok\"}",
        "murmer_calls_total{status=\"timeout\"}",
        "murmer_actor_restarts_total",
        "murmer_mailbox_depth_messages_count",
        "murmer_handler_duration_seconds_count",
        "murmer_swim_probes_total",
        "murmer_swim_suspicions_total",
        "murmer_swim_refutations_total",
        "murmer_gossip_sent_bytes_total",
        "murmer_quic_connections",
        "murmer_registry_entries",
        "murmer_registry_ops_applied_total",
        "murmer_registry_anti_entropy_rounds_total",
        "murmer_registry_sent_bytes_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (value_of(b, families[i]) < 0)
            fail_msg("no sample %s in\n%s", families[i], b);
    assert_true(value_of(b, "murmer_members{state=\"alive\"}") == 1);
    assert_true(value_of(b, "murmer_shards") == 2);
    assert_true(value_of(b, "murmer_scrape_shards_missing") == 0);
    assert_true(value_of(b, "process_resident_memory_bytes") > 1e6);
    double processed = value_of(b, "murmer_messages_processed_total");
    double ok = value_of(b, "murmer_calls_total{status=\"ok\"}");
    double sampled = value_of(b, "murmer_handler_duration_seconds_count");
    /* 1024 calls: each is handled and completes ok. */
    for (int i = 0; i < 1024; i++) {
        mm_msg *reply = NULL;
        assert_int_equal(mm_call(f->n, &e[i % 3], mm_msg_new("echo"), &reply),
                         0);
        mm_msg_free(reply);
    }
    b = scrape(f->addr);
    assert_true(value_of(b, "murmer_messages_processed_total") >=
                processed + 1024);
    assert_true(value_of(b, "murmer_calls_total{status=\"ok\"}") >= ok + 1024);
    /* One message in MM_HT_SAMPLE is timed, per shard: 1024 split over two
     * shards give at least 1024 / MM_HT_SAMPLE - 2 samples. */
    assert_true(value_of(b, "murmer_handler_duration_seconds_count") >=
                sampled + 1024 / MM_HT_SAMPLE - 2);
    assert_true(value_of(b, "murmer_registry_entries") >= 0);
}

/* A second node joins: the first lists it alive with its QUIC figures,
 * and the text still passes the checker. */
static void
test_peer_families(void **state)
{
    struct fix *f = *state;
    char dir2[80];
    snprintf(dir2, sizeof(dir2), "%s/two", f->dir);
    struct nodefix_opts o = {.name = "m2",
                             .dir = dir2,
                             .listen = "127.0.0.1:0",
                             .join = mm_node_addr(f->n),
                             .no_mdns = 1};
    mm_node *n2 = nodefix_up(&o);
    char key[160];
    snprintf(key, sizeof(key),
             "murmer_quic_peer_rtt_seconds{peer=\"%s\",name=\"m2\"}",
             mm_node_id(n2));
    const char *b = scrape(f->addr);
    uint64_t end = now_ms() + 20000;
    while ((value_of(b, "murmer_members{state=\"alive\"}") != 2 ||
            value_of(b, key) <= 0) &&
           now_ms() < end)
        b = scrape(f->addr);
    if (value_of(b, key) <= 0) fail_msg("no %s > 0 in\n%s", key, b);
    assert_true(value_of(b, key) < 1);
    assert_true(value_of(b, "murmer_members{state=\"alive\"}") == 2);
    snprintf(key, sizeof(key),
             "murmer_quic_peer_sent_bytes_total{peer=\"%s\",name=\"m2\"}",
             mm_node_id(n2));
    assert_true(value_of(b, key) > 0);
    assert_true(value_of(b, "murmer_quic_connections_up") >= 1);
    nodefix_down(n2);
}

/* A shard held by a handler does not answer: the scrape answers within
 * the gather bound without it; once free, every shard answers again. */
static void
test_blocked_shard_left_out(void **state)
{
    struct fix *f = *state;
    mm_endpoint h;
    spawn(f->n, "holder", 1, &h);
    assert_int_equal(mm_tell(f->n, &h, mm_msg_new("hold")), 0);
    assert_int_equal(sem_wait_s(&held_sem, 10), 0);
    uint64_t t0 = now_ms();
    const char *b = scrape(f->addr);
    uint64_t took = now_ms() - t0;
    print_message("scrape with a held shard: %llu ms\n",
                  (unsigned long long)took);
    assert_true(took >= MM_METRICS_GATHER_MS - 50);
    assert_true(took < MM_METRICS_GATHER_MS + 2000);
    assert_true(value_of(b, "murmer_scrape_shards_missing") == 1);
    sem_post(&hold_sem);
    /* Then every shard answers again, at once. */
    t0 = now_ms();
    b = scrape(f->addr);
    assert_true(value_of(b, "murmer_scrape_shards_missing") == 0);
    assert_true(now_ms() - t0 < MM_METRICS_GATHER_MS);
}

/* An actor that crashed waits to restart (a long backoff) while 20 tells
 * queue in its mailbox: the mailbox gauges and histogram show them, and
 * the crash and the restart are counted. */
static void
test_mailbox_depth_and_restart(void **state)
{
    struct fix *f = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.shard = 1;
    o.policy = MM_TRANSIENT;
    o.backoff_initial_ms = 30000;
    o.backoff_max_ms = 30000;
    mm_endpoint h;
    assert_int_equal(mm_spawn(f->n, "holder", &o, &h), 0);
    const char *b = scrape(f->addr);
    double restarts = value_of(b, "murmer_actor_restarts_total");
    double crashes = value_of(b, "murmer_handler_crashes_total");
    double depth_sum = value_of(b, "murmer_mailbox_depth_messages_sum");
    mm_msg *reply = NULL;
    assert_int_not_equal(mm_call(f->n, &h, mm_msg_new("crash"), &reply), 0);
    mm_msg_free(reply);
    for (int i = 0; i < 20; i++)
        assert_int_equal(mm_tell(f->n, &h, mm_msg_new("nop")), 0);
    b = scrape(f->addr);
    assert_true(value_of(b, "murmer_actor_restarts_total") == restarts + 1);
    assert_true(value_of(b, "murmer_handler_crashes_total") == crashes + 1);
    assert_true(value_of(b, "murmer_mailbox_messages{type=\"holder\"}") == 20);
    assert_true(value_of(b, "murmer_mailbox_bytes{type=\"holder\"}") > 0);
    assert_true(value_of(b, "murmer_mailbox_depth_messages_sum") ==
                depth_sum + 20);
    /* 20 is in the bucket le="64", not in le="16". */
    assert_true(
        value_of(b, "murmer_mailbox_depth_messages_bucket{le=\"64\"}") -
            value_of(b, "murmer_mailbox_depth_messages_bucket{le=\"16\"}") ==
        1);
}

/* ---- murmer top: a node's numbers (mm__top_begin) ------------------------ */

struct topw {
    struct mm_top *list; /* shard 0 */
    struct mm_top *t;
    const char *prefix;
    size_t cap;
    int now; /* ask mm__top_now instead of waiting */
    sem_t done;
    /* What the callback saw. */
    size_t nactors;
    uint64_t total, handled, mailbox[4];
    char label[4][32];
    uint64_t actor_handled[4], actor_ht[4];
    uint64_t ht_count, calls_ok, sum_actor_handled, sum_actor_ht;
    int truncated;
    unsigned missing;
};

static void
top_cb(void *data, struct mm_top *t, const struct mm_top_snap *x)
{
    struct topw *w = data;
    w->nactors = x->nactors;
    w->total = x->actors_total;
    w->handled = x->ctr.handled;
    w->ht_count = x->ctr.ht_count;
    w->calls_ok = x->ctr.calls[0];
    w->sum_actor_handled = w->sum_actor_ht = 0;
    for (size_t i = 0; i < x->nactors; i++) {
        w->sum_actor_handled += x->actors[i].handled;
        w->sum_actor_ht += x->actors[i].ht_count;
    }
    w->truncated = x->truncated;
    w->missing = x->shards_missing;
    for (size_t i = 0; i < x->nactors && i < 4; i++) {
        w->mailbox[i] = x->actors[i].mailbox;
        snprintf(w->label[i], sizeof(w->label[i]), "%s",
                 x->actors[i].label ? x->actors[i].label : "-");
        w->actor_handled[i] = x->actors[i].handled;
        w->actor_ht[i] = x->actors[i].ht_count;
    }
    w->t = NULL;
    mm__top_release(t);
    sem_post(&w->done);
}

static void
top_begin_on0(void *arg)
{
    struct topw *w = arg;
    w->t = mm__top_begin(mm_test_node, &w->list, w->cap, w->prefix, top_cb, w);
    assert_non_null(w->t);
}

static void
top_now_on0(void *arg)
{
    struct topw *w = arg;
    if (w->t) mm__top_now(w->t, top_cb, w);
}

static void
top_take(mm_node *n, struct topw *w)
{
    mm_test_node = n;
    assert_int_equal(mm_node_post(n, 0, top_begin_on0, w), 0);
    assert_int_equal(sem_wait_s(&w->done, 10), 0);
}

/* Three labelled actors wait to restart with 5, 15 and 10 messages queued:
 * a top capped at 2 with their prefix lists the two deepest, deepest
 * first, and says it left some out; a busy actor's messages are counted
 * on it. */
static void
test_top_snapshot(void **state)
{
    struct fix *f = *state;
    const char *labels[] = {"q/a", "q/b", "q/c"};
    const int depth[] = {5, 15, 10};
    for (int i = 0; i < 3; i++) {
        mm_spawn_opts o;
        mm_spawn_opts_init(&o);
        o.shard = 1;
        o.label = labels[i];
        o.policy = MM_TRANSIENT;
        o.backoff_initial_ms = 30000;
        o.backoff_max_ms = 30000;
        mm_endpoint h;
        assert_int_equal(mm_spawn(f->n, "holder", &o, &h), 0);
        mm_msg *reply = NULL;
        assert_int_not_equal(mm_call(f->n, &h, mm_msg_new("crash"), &reply), 0);
        mm_msg_free(reply);
        for (int k = 0; k < depth[i]; k++)
            assert_int_equal(mm_tell(f->n, &h, mm_msg_new("nop")), 0);
    }
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "busy";
    mm_endpoint b;
    assert_int_equal(mm_spawn(f->n, "holder", &o, &b), 0);
    for (int k = 0; k < 70; k++) {
        mm_msg *reply = NULL;
        assert_int_equal(mm_call(f->n, &b, mm_msg_new("nop"), &reply), 0);
        mm_msg_free(reply);
    }
    /* Static: shard 0 drops its reference to the snapshot (and walks
     * w.list) just after top_cb has woken this thread. */
    static struct topw w;
    memset(&w, 0, sizeof(w));
    sem_init(&w.done, 0, 0);
    w.cap = 2;
    w.prefix = "q/";
    top_take(f->n, &w);
    assert_int_equal(w.nactors, 2);
    assert_string_equal(w.label[0], "q/b");
    assert_int_equal(w.mailbox[0], 15);
    assert_string_equal(w.label[1], "q/c");
    assert_int_equal(w.mailbox[1], 10);
    assert_true(w.truncated);
    assert_true(w.total >= 4);
    assert_int_equal(w.missing, 0);
    assert_true(w.handled >= 70);
    /* The busy actor: its own count, and some of its runs were timed. */
    w.cap = 10;
    w.prefix = "busy";
    top_take(f->n, &w);
    assert_int_equal(w.nactors, 1);
    assert_string_equal(w.label[0], "busy");
    assert_int_equal(w.actor_handled[0], 70);
    assert_int_equal(w.mailbox[0], 0);
    /* Nothing matches: no rows, every actor still counted. */
    w.prefix = "zzz";
    top_take(f->n, &w);
    assert_int_equal(w.nactors, 0);
    assert_true(w.total >= 4);
    sem_destroy(&w.done);
}

/* The counters are exact and the handler-time sample is the documented
 * one: on a one-shard node, after a held run of 1000 queued messages (so
 * runs of MM_SCHED_MSG_BUDGET messages), calls, and a crash, the shard's
 * handled count, each actor's, the calls answered ok, and the timed
 * messages (every MM_HT_SAMPLE-th handled one: handled / MM_HT_SAMPLE,
 * rounded down) are exactly what was sent, in top's snapshot and in the
 * scrape alike, and the histogram's buckets add up to its count. */
static void
test_counts_exact(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/mm-metrics-XXXXXX");
    assert_non_null(mkdtemp(dir));
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = "exact";
    cfg.shards = 1;
    mm_node *n = NULL;
    assert_int_equal(mm_node_new(&n, &cfg), 0);
    assert_int_equal(mm_node_register_type(n, &holder_type), 0);
    assert_int_equal(mm_node_serve_metrics(n, "127.0.0.1:0"), 0);
    char addr[80];
    snprintf(addr, sizeof(addr), "%s", mm_node_metrics_addr(n));
    assert_int_equal(mm_node_start_thread(n), 0);
    sem_init(&hold_sem, 0, 0);
    sem_init(&held_sem, 0, 0);

    mm_endpoint a, b;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "exact/a";
    assert_int_equal(mm_spawn(n, "holder", &o, &a), 0);
    o.label = "exact/b";
    o.policy = MM_TRANSIENT; /* listed while it waits to restart */
    o.backoff_initial_ms = 30000;
    o.backoff_max_ms = 30000;
    assert_int_equal(mm_spawn(n, "holder", &o, &b), 0);
    /* a: held, 1000 tells queue behind, then 37 calls after them. */
    assert_int_equal(mm_tell(n, &a, mm_msg_new("hold")), 0);
    assert_int_equal(sem_wait_s(&held_sem, 10), 0);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(mm_tell(n, &a, mm_msg_new("nop")), 0);
    sem_post(&hold_sem);
    for (int k = 0; k < 37; k++) {
        mm_msg *reply = NULL;
        assert_int_equal(mm_call(n, &a, mm_msg_new("nop"), &reply), 0);
        mm_msg_free(reply);
    }
    /* b: 100 calls ok, then one that crashes it (it restarts). */
    for (int k = 0; k < 100; k++) {
        mm_msg *reply = NULL;
        assert_int_equal(mm_call(n, &b, mm_msg_new("nop"), &reply), 0);
        mm_msg_free(reply);
    }
    mm_msg *reply = NULL;
    assert_int_not_equal(mm_call(n, &b, mm_msg_new("crash"), &reply), 0);
    mm_msg_free(reply);

    /* Static: shard 0 drops its reference to the snapshot (and walks
     * w.list) just after top_cb has woken this thread. */
    static struct topw w;
    memset(&w, 0, sizeof(w));
    sem_init(&w.done, 0, 0);
    w.cap = 10;
    w.prefix = "exact/";
    top_take(n, &w);
    const uint64_t handled = 1 + 1000 + 37 + 100 + 1;
    assert_int_equal(w.nactors, 2);
    assert_int_equal(w.handled, handled);
    assert_int_equal(w.sum_actor_handled, handled);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(w.actor_handled[i],
                         strcmp(w.label[i], "exact/a") == 0 ? 1038 : 101);
    assert_int_equal(w.calls_ok, 137);
    assert_int_equal(w.ht_count, handled / MM_HT_SAMPLE);
    assert_int_equal(w.sum_actor_ht, handled / MM_HT_SAMPLE);

    const char *body = scrape(addr);
    assert_true(value_of(body, "murmer_messages_processed_total") ==
                (double)handled);
    assert_true(value_of(body, "murmer_calls_total{status=\"ok\"}") == 137);
    double count = value_of(body, "murmer_handler_duration_seconds_count");
    assert_true(count == (double)(handled / MM_HT_SAMPLE));
    assert_true(value_of(body, "murmer_handler_duration_seconds_bucket{le="
                               "\"+Inf\"}") == count);

    sem_destroy(&w.done);
    mm_node_stop(n);
    mm_node_join(n);
    mm_node_free(n);
    sem_destroy(&hold_sem);
    sem_destroy(&held_sem);
    rm_rf(dir);
}

/* A shard held by a handler does not answer: mm__top_now gives the others'
 * numbers with the held one counted missing, and the node stops cleanly
 * with the held shard's part still posted (freed at the end). */
static void
test_top_blocked_shard(void **state)
{
    struct fix *f = *state;
    mm_endpoint h;
    spawn(f->n, "holder", 1, &h);
    assert_int_equal(mm_tell(f->n, &h, mm_msg_new("hold")), 0);
    assert_int_equal(sem_wait_s(&held_sem, 10), 0);
    /* Static: the held shard's part ends after this function returns. */
    static struct topw w;
    memset(&w, 0, sizeof(w));
    sem_init(&w.done, 0, 0);
    w.cap = 10;
    mm_test_node = f->n;
    assert_int_equal(mm_node_post(f->n, 0, top_begin_on0, &w), 0);
    /* Not complete while shard 1 is held. */
    assert_int_not_equal(sem_wait_s(&w.done, 1), 0);
    assert_int_equal(mm_node_post(f->n, 0, top_now_on0, &w), 0);
    assert_int_equal(sem_wait_s(&w.done, 10), 0);
    assert_int_equal(w.missing, 1);
    sem_post(&hold_sem);
}

/* ---- HTTP bounds --------------------------------------------------------- */

static void
test_only_get_metrics(void **state)
{
    struct fix *f = *state;
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 404},
        {"GET /metricsx HTTP/1.1\r\n\r\n", 404},
        {"GET /other/metrics HTTP/1.1\r\n\r\n", 404},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
        {"HEAD /metrics HTTP/1.1\r\n\r\n", 405},
        {"PUT /metrics HTTP/1.0\r\n\r\n", 405},
        {"GARBAGE\r\n\r\n", 400},
        {"GET /metrics SPDY/3\r\n\r\n", 400},
        /* No space on the request line, one on a header line. */
        {"GET\r\nX: ab\r\n\r\n", 400},
        {"GET /metrics\r\n\r\n", 400},
        {"GET /metrics HTTP/1\r\n\r\n", 400},
        {"GET /metrics?x=1 HTTP/1.1\n\n", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = http(f->addr, cases[i].req, strlen(cases[i].req), NULL);
        if (st != cases[i].status)
            fail_msg("'%s': %d, expected %d", cases[i].req, st,
                     cases[i].status);
        if (st == 405) assert_non_null(strstr(resp, "\r\nAllow: GET\r\n"));
    }
    /* A head past the bound: 431. */
    size_t big = MM_METRICS_REQUEST_MAX + 100;
    char *req = malloc(big);
    memset(req, 'a', big);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
    assert_int_equal(http(f->addr, req, big, NULL), 431);
    free(req);
    const char *b = scrape(f->addr);
    assert_true(value_of(b, "murmer_metrics_bad_requests_total") >= 12);
}

static void
test_connection_cap_and_deadline(void **state)
{
    struct fix *f = *state;
    int fds[MM_METRICS_CONNS_MAX];
    for (unsigned i = 0; i < MM_METRICS_CONNS_MAX; i++)
        fds[i] = tcp_connect(f->addr);
    /* One more is closed at once, unanswered. */
    int extra = tcp_connect(f->addr);
    char buf[64];
    long n = read_all(extra, buf, sizeof(buf), 3000);
    assert_int_equal(n, 0);
    close(extra);
    /* The idle ones are closed at the deadline, unanswered. */
    uint64_t t0 = now_ms();
    n = read_all(fds[0], buf, sizeof(buf), MM_METRICS_DEADLINE_MS + 3000);
    uint64_t took = now_ms() - t0;
    assert_int_equal(n, 0);
    assert_true(took < MM_METRICS_DEADLINE_MS + 3000);
    for (unsigned i = 0; i < MM_METRICS_CONNS_MAX; i++)
        close(fds[i]);
    /* Served again; the refusal was counted. */
    const char *b = scrape(f->addr);
    assert_true(value_of(b, "murmer_metrics_refused_total") >= 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_refuses),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test_setup_teardown(test_families_and_traffic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_shard_left_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_depth_and_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_top_snapshot, setup, teardown),
        cmocka_unit_test(test_counts_exact),
        cmocka_unit_test_setup_teardown(test_top_blocked_shard, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_only_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap_and_deadline, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
