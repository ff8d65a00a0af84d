/*
 * top.c — `murmer top`: a live view of the cluster.  Each refresh is one
 * TOP request: the seed gathers its own numbers and asks every alive
 * member for theirs (bounded wait), and each node answers with counters
 * gathered without stopping its shards.  Rates (messages/s, CPU %,
 * errors/s) are the difference of two snapshots' counters over the time
 * between them, so `--once` takes two snapshots --interval apart.
 *
 * The live view draws with plain ANSI escapes on the alternate screen in
 * raw tty mode (no echo, no line buffering; signals stay on so Ctrl-C
 * works), and puts the terminal back on every way out: q, Ctrl-C,
 * SIGTERM, an error, exit().  Output schema murmer.top/1.
 */
#include "../cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_PREFIX_MAX 255

/* Actor table columns (the sort keys). */
enum { C_LABEL, C_TYPE, C_NODE, C_MAILBOX, C_RATE, C_MEAN, C_RESTARTS, C_N };
static const char *const col_name[C_N] = {
    "label", "type", "node", "mailbox", "rate", "mean_us", "restarts"};
static const char *const col_head[C_N] = {"LABEL", "TYPE", "NODE",    "MAILBOX",
                                          "MSG/S", "MEAN", "RESTARTS"};

struct sample {
    cJSON *doc; /* the seed's answer */
    uint64_t t_ns;
};

struct arow {
    const char *label, *type, *node;
    uint64_t id, mailbox, handled, restarts;
    double rate;    /* < 0: unknown (first snapshot) */
    double mean_us; /* < 0: no timed message */
};

struct view {
    struct arow *a;
    size_t na;
    int sort, reverse;
};

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
jn(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *
js(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *
node_in(const struct sample *s, const char *id)
{
    if (!s || !s->doc || !id) return NULL;
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(s->doc, "nodes"))
    {
        const char *x = js(n, "id");
        if (x && strcmp(x, id) == 0 && !js(n, "error")) return n;
    }
    return NULL;
}

static const cJSON *
actor_in(const cJSON *node, double id)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(
                              node, "actors")) if (jn(a, "id") == id) return a;
    return NULL;
}

/* The rate of counter |k| of |cur| against |prev| over |dt| s; -1 unknown. */
static double
rate_of(const cJSON *cur, const cJSON *prev, const char *k, double dt)
{
    if (!prev || dt <= 0) return -1;
    double d = jn(cur, k) - jn(prev, k);
    return d < 0 ? 0 : d / dt;
}

static int
arow_cmp_col(const struct arow *x, const struct arow *y, int col)
{
    switch (col) {
    case C_LABEL:
        return strcmp(x->label ? x->label : "", y->label ? y->label : "");
    case C_TYPE:
        return strcmp(x->type, y->type);
    case C_NODE:
        return strcmp(x->node, y->node);
    case C_MAILBOX:
        return (x->mailbox > y->mailbox) - (x->mailbox < y->mailbox);
    case C_RATE:
        return (x->rate > y->rate) - (x->rate < y->rate);
    case C_MEAN:
        return (x->mean_us > y->mean_us) - (x->mean_us < y->mean_us);
    default:
        return (x->restarts > y->restarts) - (x->restarts < y->restarts);
    }
}

static struct view *sort_view;

/* Numbers big first, names A first; |reverse| flips. */
static int
arow_cmp(const void *a, const void *b)
{
    const struct arow *x = a, *y = b;
    int col = sort_view->sort;
    int c = arow_cmp_col(x, y, col);
    if (col >= C_MAILBOX) c = -c;
    if (sort_view->reverse) c = -c;
    if (c == 0 && col != C_LABEL) c = arow_cmp_col(x, y, C_LABEL);
    return c;
}

/* The actor rows of |cur|, with rates against |prev|. */
static int
view_build(struct view *v, const struct sample *cur, const struct sample *prev)
{
    free(v->a);
    v->a = NULL;
    v->na = 0;
    double dt = prev ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
    size_t cap = 0;
    const cJSON *n;
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(cur->doc, "nodes");
    cJSON_ArrayForEach(n, nodes) cap += (size_t)cJSON_GetArraySize(
        cJSON_GetObjectItemCaseSensitive(n, "actors"));
    v->a = calloc(cap ? cap : 1, sizeof(*v->a));
    if (!v->a) return -1;
    cJSON_ArrayForEach(n, nodes)
    {
        const cJSON *pn = node_in(prev, js(n, "id"));
        const char *name = js(n, "name") ? js(n, "name") : "?";
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(n, "actors"))
        {
            if (v->na == cap) break;
            struct arow *r = &v->a[v->na++];
            r->label = js(a, "label");
            r->type = js(a, "type") ? js(a, "type") : "?";
            r->node = name;
            r->id = (uint64_t)jn(a, "id");
            r->mailbox = (uint64_t)jn(a, "mailbox");
            r->handled = (uint64_t)jn(a, "handled");
            r->restarts = (uint64_t)jn(a, "restarts");
            const cJSON *pa = pn ? actor_in(pn, jn(a, "id")) : NULL;
            /* An actor new since the last snapshot counts from 0. */
            static const cJSON zero = {0};
            r->rate = rate_of(a, pa ? pa : (pn ? &zero : NULL), "handled", dt);
            double c = jn(a, "ht_count");
            r->mean_us = c > 0 ? jn(a, "ht_sum_ns") / c / 1000.0 : -1;
        }
    }
    sort_view = v;
    qsort(v->a, v->na, sizeof(*v->a), arow_cmp);
    return 0;
}

static int
any_truncated(const struct sample *s)
{
    const cJSON *n;
    cJSON_ArrayForEach(
        n,
        cJSON_GetObjectItemCaseSensitive(
            s->doc,
            "node"
            "s")) if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n,
                                                                    "truncate"
                                                                    "d"))) return 1;
    return 0;
}

/* ---- one node's numbers ------------------------------------------------- */

struct nrow {
    const char *name, *state, *error;
    double cpu_pct, msg_rate, pin_rate, pout_rate, err_rate;
    uint64_t rss, conns, inflight, actors;
    int have_rates;
};

static void
nrow_fill(struct nrow *r, const cJSON *n, const struct sample *cur,
          const struct sample *prev)
{
    memset(r, 0, sizeof(*r));
    r->name = js(n, "name") ? js(n, "name") : "?";
    r->state = js(n, "state") ? js(n, "state") : "";
    r->error = js(n, "error");
    if (r->error) return;
    r->rss = (uint64_t)jn(n, "rss");
    r->conns = (uint64_t)jn(n, "conns");
    r->inflight = (uint64_t)jn(n, "calls_in_flight");
    r->actors = (uint64_t)jn(n, "actors_total");
    const cJSON *p = node_in(prev, js(n, "id"));
    double dt = prev ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
    if (!p || dt <= 0) return;
    r->have_rates = 1;
    r->cpu_pct = rate_of(n, p, "cpu_s", dt) * 100.0;
    r->msg_rate = rate_of(n, p, "handled", dt);
    r->pin_rate = rate_of(n, p, "pkts_in", dt);
    r->pout_rate = rate_of(n, p, "pkts_out", dt);
    double e = (jn(n, "calls_err") + jn(n, "crashes") + jn(n, "dropped")) -
               (jn(p, "calls_err") + jn(p, "crashes") + jn(p, "dropped"));
    r->err_rate = e > 0 ? e / dt : 0;
}

/* ---- rendering ---------------------------------------------------------- */

static void
fmt_rate(char *b, size_t n, double v)
{
    if (v < 0)
        snprintf(b, n, "-");
    else if (v >= 100)
        snprintf(b, n, "%.0f", v);
    else
        snprintf(b, n, "%.1f", v);
}

static void
fmt_bytes(char *b, size_t n, uint64_t v)
{
    if (v >= 1024u * 1024u * 1024u)
        snprintf(b, n, "%.1fG", (double)v / (1024.0 * 1024 * 1024));
    else
        snprintf(b, n, "%.1fM", (double)v / (1024.0 * 1024));
}

static void
fmt_us(char *b, size_t n, double us)
{
    if (us < 0)
        snprintf(b, n, "-");
    else if (us >= 1e6)
        snprintf(b, n, "%.2fs", us / 1e6);
    else if (us >= 1000)
        snprintf(b, n, "%.1fms", us / 1000);
    else
        snprintf(b, n, "%.0fus", us);
}

static void
render_json(struct cli_ctx *ctx, const struct sample *cur,
            const struct sample *prev, const struct view *v,
            uint32_t interval_ms)
{
    cJSON *doc = cli_json_doc("murmer.top/1");
    if (!doc) return;
    const char *seed = js(cur->doc, "seed");
    cJSON_AddStringToObject(doc, "seed", seed ? seed : "");
    cJSON_AddNumberToObject(doc, "interval_ms", interval_ms);
    cJSON_AddStringToObject(doc, "sort", col_name[v->sort]);
    cJSON_AddBoolToObject(doc, "reverse", v->reverse);
    cJSON_AddBoolToObject(doc, "truncated", any_truncated(cur));
    cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(cur->doc, "nodes"))
    {
        struct nrow r;
        nrow_fill(&r, n, cur, prev);
        cJSON *o = cJSON_CreateObject();
        if (!o || !nodes) {
            cJSON_Delete(o);
            break;
        }
        cJSON_AddItemToArray(nodes, o);
        cJSON_AddStringToObject(o, "name", r.name);
        cJSON_AddStringToObject(o, "id", js(n, "id") ? js(n, "id") : "");
        cJSON_AddStringToObject(o, "state", r.state);
        cJSON_AddBoolToObject(o, "answered", r.error == NULL);
        if (r.error) {
            cJSON_AddStringToObject(o, "error", r.error);
            continue;
        }
        if (r.have_rates) {
            cJSON_AddNumberToObject(o, "cpu_pct", r.cpu_pct);
            cJSON_AddNumberToObject(o, "msgs_in_rate", r.msg_rate);
            cJSON_AddNumberToObject(o, "pkts_in_rate", r.pin_rate);
            cJSON_AddNumberToObject(o, "pkts_out_rate", r.pout_rate);
            cJSON_AddNumberToObject(o, "errors_rate", r.err_rate);
        } else {
            const char *k[] = {"cpu_pct", "msgs_in_rate", "pkts_in_rate",
                               "pkts_out_rate", "errors_rate"};
            for (size_t i = 0; i < 5; i++)
                cJSON_AddNullToObject(o, k[i]);
        }
        cli_json_add_u64(o, "rss", r.rss);
        cli_json_add_u64(o, "conns", r.conns);
        cli_json_add_u64(o, "calls_in_flight", r.inflight);
        cli_json_add_u64(o, "actors_total", r.actors);
        cli_json_add_u64(o, "handled", (uint64_t)jn(n, "handled"));
        cli_json_add_u64(o, "time_ms", (uint64_t)jn(n, "time_ms"));
        cli_json_add_u64(o, "shards_missing",
                         (uint64_t)jn(n, "shards_missing"));
        cJSON_AddBoolToObject(
            o, "truncated",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "truncated")));
    }
    cJSON *arr = cJSON_AddArrayToObject(doc, "actors");
    for (size_t i = 0; arr && i < v->na; i++) {
        const struct arow *r = &v->a[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(arr, o);
        if (r->label)
            cJSON_AddStringToObject(o, "label", r->label);
        else
            cJSON_AddNullToObject(o, "label");
        cJSON_AddStringToObject(o, "type", r->type);
        cJSON_AddStringToObject(o, "node", r->node);
        cli_json_add_u64(o, "id", r->id);
        cli_json_add_u64(o, "mailbox", r->mailbox);
        if (r->rate >= 0)
            cJSON_AddNumberToObject(o, "rate", r->rate);
        else
            cJSON_AddNullToObject(o, "rate");
        cli_json_add_u64(o, "handled", r->handled);
        if (r->mean_us >= 0)
            cJSON_AddNumberToObject(o, "mean_us", r->mean_us);
        else
            cJSON_AddNullToObject(o, "mean_us");
        cli_json_add_u64(o, "restarts", r->restarts);
    }
    cli_json_print(doc, ctx->out);
    cJSON_Delete(doc);
}

/* The two tables as text; at most |max_actors| actor rows (0: all).
 * |hl| highlights the sort column's header (live view). */
static void
render_tables(struct cli_ctx *ctx, FILE *f, const struct sample *cur,
              const struct sample *prev, const struct view *v,
              size_t max_actors, int hl)
{
    static const char *const nh[] = {
        "NODE",     "STATE",     "CPU%",     "RSS",   "CONNS", "MSG/S",
        "PKT/S IN", "PKT/S OUT", "INFLIGHT", "ERR/S", "ACTORS"};
    struct cli_table t;
    if (cli_table_init(&t, 11, nh) != 0) return;
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(cur->doc, "nodes"))
    {
        struct nrow r;
        nrow_fill(&r, n, cur, prev);
        char c[11][32];
        const char *row[11];
        for (int i = 0; i < 11; i++)
            row[i] = c[i];
        snprintf(c[0], 32, "%s", r.name);
        snprintf(c[1], 32, "%s", r.error ? "no answer" : r.state);
        if (r.error) {
            for (int i = 2; i < 11; i++)
                row[i] = "-";
        } else {
            fmt_rate(c[2], 32, r.have_rates ? r.cpu_pct : -1);
            fmt_bytes(c[3], 32, r.rss);
            snprintf(c[4], 32, "%llu", (unsigned long long)r.conns);
            fmt_rate(c[5], 32, r.have_rates ? r.msg_rate : -1);
            fmt_rate(c[6], 32, r.have_rates ? r.pin_rate : -1);
            fmt_rate(c[7], 32, r.have_rates ? r.pout_rate : -1);
            snprintf(c[8], 32, "%llu", (unsigned long long)r.inflight);
            fmt_rate(c[9], 32, r.have_rates ? r.err_rate : -1);
            snprintf(c[10], 32, "%llu", (unsigned long long)r.actors);
        }
        cli_table_add(&t, row);
        if (r.error) cli_table_color(&t, 1, CLI_COLOR_RED);
    }
    cli_table_print(ctx, &t, f);
    cli_table_release(&t);
    fputc('\n', f);
    char heads[C_N][32];
    const char *hp[C_N];
    for (int i = 0; i < C_N; i++) {
        snprintf(heads[i], sizeof(heads[i]), "%s%s", col_head[i],
                 i == v->sort ? (v->reverse ? "^" : "v") : "");
        hp[i] = heads[i];
    }
    if (cli_table_init(&t, C_N, hp) != 0) return;
    size_t shown = 0;
    for (size_t i = 0; i < v->na; i++) {
        if (max_actors && shown == max_actors) break;
        const struct arow *r = &v->a[i];
        char mb[24], rate[24], mean[24], rs[24];
        snprintf(mb, sizeof(mb), "%llu", (unsigned long long)r->mailbox);
        fmt_rate(rate, sizeof(rate), r->rate);
        fmt_us(mean, sizeof(mean), r->mean_us);
        snprintf(rs, sizeof(rs), "%llu", (unsigned long long)r->restarts);
        const char *row[C_N] = {
            r->label ? r->label : "-", r->type, r->node, mb, rate, mean, rs};
        cli_table_add(&t, row);
        shown++;
    }
    (void)hl;
    cli_table_print(ctx, &t, f);
    cli_table_release(&t);
    if (shown < v->na || any_truncated(cur))
        fprintf(f, "(%zu of %zu actors shown%s)\n", shown, v->na,
                any_truncated(cur) ? "; nodes listed only their busiest" : "");
}

/* ---- the terminal ------------------------------------------------------- */

static struct termios tty_saved;
static int tty_raw;

static void
tty_restore(void)
{
    if (!tty_raw) return;
    tty_raw = 0;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
    /* Cursor back, main screen back. */
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
}

static int
tty_enter(void)
{
    if (tcgetattr(STDIN_FILENO, &tty_saved) != 0) return -1;
    struct termios t = tty_saved;
    /* No echo, no line editing; ISIG stays: Ctrl-C is SIGINT. */
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) return -1;
    tty_raw = 1;
    atexit(tty_restore);
    fputs("\033[?1049h\033[?25l", stdout);
    fflush(stdout);
    return 0;
}

static int
tty_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
        return ws.ws_row;
    return 24;
}

struct live {
    int quit;
    int typing; /* '/' typed: reading a prefix */
    char prefix[TOP_PREFIX_MAX + 1], typed[TOP_PREFIX_MAX + 1];
    int prefix_changed;
    int esc; /* 0, 1 after ESC, 2 after ESC [ */
};

/* One key of input; 1 when the view must be redrawn. */
static int
live_key(struct live *L, struct view *v, unsigned char ch)
{
    if (L->esc == 1) {
        L->esc = ch == '[' ? 2 : 0;
        if (!L->esc && L->typing) L->typing = 0; /* ESC cancels */
        return !L->esc;
    }
    if (L->esc == 2) {
        L->esc = 0;
        if (L->typing) return 0;
        if (ch == 'C') v->sort = (v->sort + 1) % C_N;
        if (ch == 'D') v->sort = (v->sort + C_N - 1) % C_N;
        return ch == 'C' || ch == 'D';
    }
    if (ch == 27) {
        L->esc = 1;
        return 0;
    }
    if (L->typing) {
        size_t n = strlen(L->typed);
        if (ch == '\r' || ch == '\n') {
            L->typing = 0;
            memcpy(L->prefix, L->typed, sizeof(L->prefix));
            L->prefix_changed = 1;
        } else if (ch == 127 || ch == 8) {
            if (n) L->typed[n - 1] = '\0';
        } else if (ch >= 32 && ch < 127 && n < TOP_PREFIX_MAX) {
            L->typed[n] = (char)ch;
            L->typed[n + 1] = '\0';
        }
        return 1;
    }
    switch (ch) {
    case 'q':
    case 'Q':
        L->quit = 1;
        return 0;
    case '>':
    case '.':
        v->sort = (v->sort + 1) % C_N;
        return 1;
    case '<':
    case ',':
        v->sort = (v->sort + C_N - 1) % C_N;
        return 1;
    case 'r':
    case 'R':
        v->reverse = !v->reverse;
        return 1;
    case '/':
        L->typing = 1;
        L->typed[0] = '\0';
        return 1;
    default:
        return 0;
    }
}

static void
live_draw(struct cli_ctx *ctx, const struct live *L, const struct sample *cur,
          const struct sample *prev, struct view *v, const char *err)
{
    FILE *f = stdout;
    fputs("\033[H\033[2J", f);
    const char *seed = cur && cur->doc ? js(cur->doc, "seed") : NULL;
    fprintf(f,
            "murmer top  seed %s  sort %s%s  prefix %s  "
            "(q quit, < > sort, r reverse, / filter)\r\n",
            seed ? seed : "?", col_head[v->sort], v->reverse ? " (rev)" : "",
            L->prefix[0] ? L->prefix : "-");
    if (L->typing) fprintf(f, "filter: /%s\r\n", L->typed);
    if (err) fprintf(f, "%s\r\n", err);
    if (cur && cur->doc) {
        int rows = tty_rows();
        const cJSON *nodes =
            cJSON_GetObjectItemCaseSensitive(cur->doc, "nodes");
        int used = 6 + cJSON_GetArraySize(nodes) + (L->typing ? 1 : 0);
        size_t max = rows > used ? (size_t)(rows - used) : 1;
        /* Tables print "\n": the tty is raw, so each line returns too. */
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (m) {
            render_tables(ctx, m, cur, prev, v, max, 1);
            fclose(m);
            for (size_t i = 0; i < len; i++) {
                if (buf[i] == '\n') fputc('\r', f);
                fputc(buf[i], f);
            }
            free(buf);
        }
    }
    fflush(f);
}

/* ---- the command -------------------------------------------------------- */

static int
take(mm_client *c, const char *prefix, struct sample *s)
{
    mm_top_result *r;
    int err = mm_client_top(c, prefix, 0, &r);
    if (err) return err;
    s->doc = cJSON_Parse(r->json);
    s->t_ns = mono_ns();
    mm_client_free_result(c, r);
    return s->doc ? 0 : MM_EDECODE;
}

static int
sort_col(const char *name)
{
    for (int i = 0; i < C_N; i++)
        if (strcmp(name, col_name[i]) == 0) return i;
    return -1;
}

int
cmd_top(int argc, char **argv, struct cli_ctx *ctx)
{
    int once = 0, reverse = 0, interval_given = 0;
    uint32_t interval_ms = 1000;
    const char *prefix = NULL, *sort = NULL;
    const struct cli_opt opts[] = {
        CLI_OPT_BOOL('1', "once", &once,
                     "print one snapshot (rates over --interval) and exit"),
        CLI_OPT_DURATION('i', "interval", &interval_ms, &interval_given,
                         "time between refreshes (default 1s, at least "
                         "200ms)"),
        CLI_OPT_STRING('p', "prefix", &prefix, "PREFIX",
                       "only actors whose label starts with PREFIX"),
        CLI_OPT_STRING('s', "sort", &sort, "COLUMN",
                       "sort actors by label, type, node, mailbox (default), "
                       "rate, mean_us or restarts"),
        CLI_OPT_BOOL('r', "reverse", &reverse, "reverse the sort order"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer top [options]",
        .summary = "Show every node's load and the busiest actors, refreshed "
                   "live (q quits), or one snapshot with --once.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) return rc;
    struct view v = {NULL, 0, C_MAILBOX, reverse};
    if (sort && (v.sort = sort_col(sort)) < 0)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "unknown --sort column '%s' (label, type, node, "
                         "mailbox, rate, mean_us, restarts)",
                         sort);
    if (interval_ms < 200)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--interval must be at least "
                         "200ms");
    if (prefix && strlen(prefix) > TOP_PREFIX_MAX)
        return cli_error(ctx, MM_EXIT_USAGE, "--prefix is longer than %d bytes",
                         TOP_PREFIX_MAX);
    if (!once && ctx->json)
        return cli_error(ctx, MM_EXIT_USAGE, "--json needs --once");
    if (!once && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "the live view needs a terminal (use --once)");
    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    struct sample a = {0}, b = {0};
    struct sample *cur = &a, *prev = &b;
    int err = 0;
    if (once) {
        err = take(c, prefix, prev);
        struct timespec nap = {interval_ms / 1000,
                               (long)(interval_ms % 1000) * 1000000L};
        while (!err && !cli_interrupted() && nanosleep(&nap, &nap) != 0 &&
               errno == EINTR)
            ;
        if (!err && !cli_interrupted()) err = take(c, prefix, cur);
        if (!err && !cli_interrupted() && view_build(&v, cur, prev) != 0)
            err = MM_EOVERLOADED;
        if (!err && !cli_interrupted()) {
            if (ctx->json)
                render_json(ctx, cur, prev, &v, interval_ms);
            else
                render_tables(ctx, ctx->out, cur, prev, &v, 0, 0);
        }
    } else {
        struct live L;
        memset(&L, 0, sizeof(L));
        if (prefix) snprintf(L.prefix, sizeof(L.prefix), "%s", prefix);
        if (tty_enter() != 0) {
            err = 0;
            rc = cli_error(ctx, MM_EXIT_USAGE, "cannot set the terminal up");
            goto out;
        }
        const char *note = NULL;
        char ebuf[256];
        uint64_t next = 0;
        while (!L.quit && !cli_interrupted()) {
            uint64_t now = mono_ns();
            if (now >= next || L.prefix_changed) {
                if (L.prefix_changed) {
                    /* Another filter: rates start again. */
                    cJSON_Delete(prev->doc);
                    prev->doc = NULL;
                    cJSON_Delete(cur->doc);
                    cur->doc = NULL;
                    L.prefix_changed = 0;
                }
                struct sample *t = prev;
                prev = cur;
                cur = t;
                cJSON_Delete(cur->doc);
                cur->doc = NULL;
                int e = take(c, L.prefix[0] ? L.prefix : NULL, cur);
                if (e) {
                    if (cli_interrupted()) break;
                    snprintf(ebuf, sizeof(ebuf), "refresh failed: %s",
                             mm_strerror(e));
                    note = ebuf;
                    /* Keep showing the last good snapshot. */
                    t = prev;
                    prev = cur;
                    cur = t;
                } else {
                    note = NULL;
                }
                next = mono_ns() + (uint64_t)interval_ms * 1000000u;
                if (cur->doc) view_build(&v, cur, prev->doc ? prev : NULL);
                live_draw(ctx, &L, cur, prev->doc ? prev : NULL, &v, note);
            }
            now = mono_ns();
            int wait = next > now ? (int)((next - now) / 1000000u) + 1 : 0;
            struct pollfd p = {STDIN_FILENO, POLLIN, 0};
            int pr = poll(&p, 1, wait);
            if (pr < 0 && errno != EINTR) break;
            if (pr > 0) {
                unsigned char buf[64];
                ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
                if (k <= 0) break; /* the terminal went */
                int redraw = 0;
                for (ssize_t i = 0; i < k && !L.quit; i++)
                    redraw |= live_key(&L, &v, buf[i]);
                if (redraw && !L.quit && cur->doc) {
                    view_build(&v, cur, prev->doc ? prev : NULL);
                    live_draw(ctx, &L, cur, prev->doc ? prev : NULL, &v, note);
                }
            }
        }
        tty_restore();
    }
    if (cli_interrupted())
        rc = 128 + cli_interrupted();
    else if (err)
        rc = cli_client_error(ctx, c, err, "top");
    else if (0)
        rc = 128 + cli_interrupted();
    else
        rc = MM_EXIT_OK;
out:
    free(v.a);
    cJSON_Delete(a.doc);
    cJSON_Delete(b.doc);
    cli_client_close(c);
    return rc;
}
