/*
 * scenario.c — the scenario files of murmer-sim.  One statement a line;
 * '#' starts a comment.  Times take ms, s or m; ranges are "all", "K",
 * "A-B" (node indexes, inclusive) or "P%-Q%" (a share of N, half-open).
 *
 *   nodes 100                default N (--nodes overrides)
 *   run 120s                 simulated time before the settle phase
 *   settle 120s              bound on the settle phase (default 120 s)
 *   labels 2                 registry labels each node registers
 *   loss 1%                  same as "at 0s loss 1%"
 *   latency 1ms 10ms         same as "at 0s latency ..."
 *   at T start RANGE [over D]
 *   at T kill RANGE | at T kill P%
 *   at T restart RANGE
 *   at T churn P% every D until T2
 *   at T partition RANGE | RANGE [| RANGE ...]
 *   at T cut RANGE -> RANGE
 *   at T heal
 *   at T loss P%
 *   at T latency MIN MAX
 *   at T measure             start of the window of steady_bytes_per_node_s
 *   at T drop RANGE          packets to RANGE are lost and the invariant
 *                            checker is not told: a fault it must catch
 *                            (sim/tests/, the checker's own test)
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX 24

struct pctx {
    const char *name;
    int line;
    char *err;
    size_t errlen;
};

static int perr(struct pctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct pctx *c, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%d: %s", c->name, c->line, msg);
    return -1;
}

/* "10s", "500ms", "2m", "0": ms. */
static int
parse_time(struct pctx *c, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || v > 1e9)
        return perr(c, "bad time '%s' (want e.g. 10s, 500ms, 2m)", s);
    double mul;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (*end == 0 && v == 0)
        mul = 0;
    else
        return perr(c, "bad time '%s' (want e.g. 10s, 500ms, 2m)", s);
    *out = (uint64_t)(v * mul + 0.5);
    return 0;
}

static int
parse_pct(struct pctx *c, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || strcmp(end, "%") != 0 || v < 0 || v > 100)
        return perr(c, "bad percentage '%s' (want 0%%..100%%)", s);
    *out = v;
    return 0;
}

/* One bound: an index or a share "P%". */
static int
parse_bound(const char *s, const char **end, double *v, int *pct)
{
    char *e;
    if (!isdigit((unsigned char)*s)) return -1;
    *v = strtod(s, &e);
    *pct = 0;
    if (*e == '%') {
        *pct = 1;
        e++;
        if (*v > 100) return -1;
    } else if (*v != (double)(long)*v) {
        return -1;
    }
    *end = e;
    return 0;
}

static int
parse_range(struct pctx *c, const char *s, struct sim_range *r)
{
    const char *end;
    memset(r, 0, sizeof(*r));
    if (strcmp(s, "all") == 0) {
        r->hi_pct = 1;
        r->hi = 100;
        return 0;
    }
    if (parse_bound(s, &end, &r->lo, &r->lo_pct)) goto bad;
    if (*end == 0) {
        if (r->lo_pct) goto bad;
        r->hi = r->lo;
        return 0;
    }
    if (*end != '-') goto bad;
    if (parse_bound(end + 1, &end, &r->hi, &r->hi_pct) || *end) goto bad;
    return 0;
bad:
    return perr(c, "bad node range '%s' (want all, K, A-B, P%%-Q%% or A-Q%%)",
                s);
}

void
sim_range_bounds(const struct sim_range *r, int n, int *lo, int *hi)
{
    long a = r->lo_pct ? (long)(r->lo * n / 100.0) : (long)r->lo;
    long b = r->hi_pct ? (long)(r->hi * n / 100.0) : (long)r->hi + 1;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    *lo = (int)a;
    *hi = (int)b;
}

static int
add_act(struct sim_scenario *sc, const struct sim_action *a)
{
    void *p = realloc(sc->acts, (sc->nacts + 1) * sizeof(*sc->acts));
    if (!p) return -1;
    sc->acts = p;
    sc->acts[sc->nacts++] = *a;
    return 0;
}

static int
want_args(struct pctx *c, int ntok, int want, const char *usage)
{
    if (ntok != want) return perr(c, "usage: %s", usage);
    return 0;
}

/* One statement (tokens after "at T" for timed ones). */
static int
parse_action(struct pctx *c, struct sim_action *a, char **t, int n)
{
    const char *v = t[0];
    if (strcmp(v, "start") == 0) {
        a->kind = SIM_START;
        if (n != 2 && n != 4)
            return perr(c, "usage: at T start RANGE [over D]");
        if (parse_range(c, t[1], &a->r)) return -1;
        if (n == 4) {
            if (strcmp(t[2], "over") != 0)
                return perr(c, "usage: at T start RANGE [over D]");
            if (parse_time(c, t[3], &a->over)) return -1;
        }
        return 0;
    }
    if (strcmp(v, "kill") == 0 || strcmp(v, "restart") == 0) {
        a->kind = v[0] == 'k' ? SIM_KILL : SIM_RESTART;
        if (want_args(c, n, 2, "at T kill|restart RANGE|P%")) return -1;
        size_t l = strlen(t[1]);
        if (l && t[1][l - 1] == '%' && !strchr(t[1], '-')) {
            a->by_pct = 1;
            return parse_pct(c, t[1], &a->pct);
        }
        return parse_range(c, t[1], &a->r);
    }
    if (strcmp(v, "churn") == 0) {
        a->kind = SIM_CHURN;
        if (n != 6 || strcmp(t[2], "every") || strcmp(t[4], "until"))
            return perr(c, "usage: at T churn P%% every D until T2");
        a->by_pct = 1;
        if (parse_pct(c, t[1], &a->pct) || parse_time(c, t[3], &a->every) ||
            parse_time(c, t[5], &a->until))
            return -1;
        if (a->every == 0) return perr(c, "churn: every must be > 0");
        if (a->until < a->at) return perr(c, "churn: until is before at");
        return 0;
    }
    if (strcmp(v, "partition") == 0 || strcmp(v, "cut") == 0) {
        int cut = v[0] == 'c';
        const char *sep = cut ? "->" : "|";
        a->kind = cut ? SIM_CUT : SIM_PARTITION;
        int g = 0, need = 1;
        for (int i = 1; i < n; i++) {
            if (strcmp(t[i], sep) == 0) {
                if (need) break;
                need = 1;
                continue;
            }
            if (!need) break;
            if (g == SIM_GROUPS_MAX)
                return perr(c, "at most %d groups", SIM_GROUPS_MAX);
            if (parse_range(c, t[i], &a->groups[g++])) return -1;
            need = 0;
        }
        a->ngroups = g;
        if (need || g < 2 || (cut && g != 2) || n != 2 * g)
            return perr(c, cut ? "usage: at T cut RANGE -> RANGE"
                               : "usage: at T partition RANGE | RANGE [| ...]");
        return 0;
    }
    if (strcmp(v, "drop") == 0) {
        a->kind = SIM_DROP;
        if (want_args(c, n, 2, "at T drop RANGE")) return -1;
        return parse_range(c, t[1], &a->r);
    }
    if (strcmp(v, "measure") == 0) {
        a->kind = SIM_MEASURE;
        return want_args(c, n, 1, "at T measure");
    }
    if (strcmp(v, "heal") == 0) {
        a->kind = SIM_HEAL;
        return want_args(c, n, 1, "at T heal");
    }
    if (strcmp(v, "loss") == 0) {
        a->kind = SIM_LOSS;
        if (want_args(c, n, 2, "loss P%")) return -1;
        return parse_pct(c, t[1], &a->pct);
    }
    if (strcmp(v, "latency") == 0) {
        uint64_t lo, hi;
        a->kind = SIM_LATENCY;
        if (want_args(c, n, 3, "latency MIN MAX")) return -1;
        if (parse_time(c, t[1], &lo) || parse_time(c, t[2], &hi)) return -1;
        if (hi < lo || lo < 1 || hi > 60000)
            return perr(c, "latency: want 1ms <= MIN <= MAX <= 60s");
        a->lat_min = (uint32_t)lo;
        a->lat_max = (uint32_t)hi;
        return 0;
    }
    return perr(c, "unknown statement '%s'", v);
}

static int
parse_line(struct sim_scenario *sc, struct pctx *c, char *s)
{
    char *t[TOK_MAX];
    int n = 0;
    char *hash = strchr(s, '#');
    if (hash) *hash = 0;
    for (char *p = strtok(s, " \t\r"); p; p = strtok(NULL, " \t\r")) {
        if (n == TOK_MAX) return perr(c, "too many words");
        t[n++] = p;
    }
    if (n == 0) return 0;
    struct sim_action a;
    memset(&a, 0, sizeof(a));
    a.line = c->line;
    if (strcmp(t[0], "nodes") == 0) {
        char *end;
        if (n != 2) return perr(c, "usage: nodes N");
        long v = strtol(t[1], &end, 10);
        if (*end || v < 1 || v > 1000000)
            return perr(c, "bad node count '%s' (1..1000000)", t[1]);
        sc->nodes = (int)v;
        return 0;
    }
    if (strcmp(t[0], "run") == 0 || strcmp(t[0], "settle") == 0) {
        if (n != 2) return perr(c, "usage: %s T", t[0]);
        return parse_time(c, t[1],
                          t[0][0] == 'r' ? &sc->run_ms : &sc->settle_ms);
    }
    if (strcmp(t[0], "labels") == 0) {
        char *end;
        if (n != 2) return perr(c, "usage: labels K");
        long v = strtol(t[1], &end, 10);
        if (*end || v < 0 || v > 1000)
            return perr(c, "bad label count '%s' (0..1000)", t[1]);
        sc->labels = (int)v;
        return 0;
    }
    if (strcmp(t[0], "loss") == 0 || strcmp(t[0], "latency") == 0) {
        if (parse_action(c, &a, t, n)) return -1;
        return add_act(sc, &a) ? perr(c, "out of memory") : 0;
    }
    if (strcmp(t[0], "at") == 0) {
        if (n < 3) return perr(c, "usage: at T STATEMENT");
        if (parse_time(c, t[1], &a.at)) return -1;
        if (parse_action(c, &a, t + 2, n - 2)) return -1;
        return add_act(sc, &a) ? perr(c, "out of memory") : 0;
    }
    return perr(c, "unknown statement '%s'", t[0]);
}

int
sim_scenario_parse(struct sim_scenario *sc, const char *name, const char *text,
                   char *err, size_t errlen)
{
    struct pctx c = {name, 0, err, errlen};
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->path, sizeof(sc->path), "%s", name);
    sc->nodes = 100;
    sc->settle_ms = 120000;
    sc->labels = 2;
    sc->labelled_pct = 100;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char buf[1024];
        c.line++;
        if (len >= sizeof(buf)) {
            perr(&c, "line too long");
            goto fail;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        if (parse_line(sc, &c, buf)) goto fail;
        p += len + (nl ? 1 : 0);
    }
    if (sc->run_ms == 0) {
        c.line++;
        perr(&c, "no 'run T' statement");
        goto fail;
    }
    /* Stable: by time, then by line. */
    for (size_t i = 1; i < sc->nacts; i++) {
        struct sim_action a = sc->acts[i];
        size_t j = i;
        for (; j > 0 && sc->acts[j - 1].at > a.at; j--)
            sc->acts[j] = sc->acts[j - 1];
        sc->acts[j] = a;
    }
    for (size_t i = 0; i < sc->nacts; i++)
        if (sc->acts[i].at > sc->run_ms) {
            c.line = sc->acts[i].line;
            perr(&c, "action after the end of the run");
            goto fail;
        }
    return 0;
fail:
    sim_scenario_free(sc);
    return -1;
}

int
sim_scenario_load(struct sim_scenario *sc, const char *path, char *err,
                  size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap > (1u << 20)) {
                fclose(f);
                free(text);
                snprintf(err, errlen, "%s: larger than 1 MiB", path);
                return -1;
            }
            char *p = realloc(text, cap);
            if (!p) {
                fclose(f);
                free(text);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            text = p;
        }
        text[len++] = (char)ch;
    }
    fclose(f);
    if (!text) text = calloc(1, 1);
    if (!text) return -1;
    text[len] = 0;
    int rc = sim_scenario_parse(sc, path, text, err, errlen);
    free(text);
    return rc;
}

void
sim_scenario_free(struct sim_scenario *sc)
{
    free(sc->acts);
    sc->acts = NULL;
    sc->nacts = 0;
}
