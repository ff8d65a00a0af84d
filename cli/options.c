/*
 * options.c — option tables to getopt_long, generated help, diagnostics.
 *
 * A command's table and the global table are merged into one getopt_long
 * run, so global options work after the command name too.  getopt's own
 * messages are off (opterr = 0): every usage error is one line of ours,
 * with a "did you mean" suggestion computed against the same tables.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define OPTS_MAX 64 /* options in one merged table; plenty */
#define OPT_VAL_BASE 256

int
cli_strv_push(struct cli_strv *sv, const char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 4;
        char **v = realloc(sv->v, cap * sizeof(*v));
        if (v == NULL) return -1;
        sv->v = v;
        sv->cap = cap;
    }
    char *copy = strdup(s);
    if (copy == NULL) return -1;
    sv->v[sv->n++] = copy;
    return 0;
}

void
cli_strv_free(struct cli_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

int
cli_ctx_init(struct cli_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->timeout_ms = 5000;
    ctx->out = stdout;
    ctx->err = stderr;
    ctx->gopts = calloc(CLI_NGLOBAL, sizeof(*ctx->gopts));
    if (ctx->gopts == NULL) return -1;
    const struct cli_opt g[] = {
        {CLI_OPT_KIND_LIST, 0, "join", &ctx->join, 0, "ADDR",
         "seed to connect to, host:port (repeatable; MURMER_JOIN)",
         &ctx->join_given},
        CLI_OPT_STRING(0, "cluster-key", &ctx->cluster_key_file, "FILE",
                       "read the cluster (or client) key from FILE"),
        CLI_OPT_STRING(0, "data-dir", &ctx->data_dir, "DIR",
                       "reach the node of data dir DIR over its local socket "
                       "(MURMER_DATA_DIR)"),
        CLI_OPT_DURATION(0, "timeout", &ctx->timeout_ms, &ctx->timeout_given,
                         "bound every wait (default 5s)"),
        CLI_OPT_BOOL(0, "json", &ctx->json, "print JSON for programs"),
        CLI_OPT_COUNT('v', "verbose", &ctx->verbose,
                      "log more (-v info, -vv debug)"),
        CLI_OPT_COUNT('q', "quiet", &ctx->quiet, "log errors only"),
        CLI_OPT_BOOL(0, "no-color", &ctx->no_color,
                     "never colour the output (also NO_COLOR)"),
        CLI_OPT_END,
    };
    _Static_assert(sizeof(g) / sizeof(g[0]) <= CLI_NGLOBAL,
                   "CLI_NGLOBAL too small");
    memcpy(ctx->gopts, g, sizeof(g));
    return 0;
}

void
cli_ctx_release(struct cli_ctx *ctx)
{
    cli_strv_free(&ctx->join);
    free(ctx->gopts);
    ctx->gopts = NULL;
}

int
cli_ctx_finish(struct cli_ctx *ctx, int rc)
{
    /* stdout carries results: a failed write (full disk) is an error. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE && rc == 0)
            rc = cli_error(ctx, MM_EXIT_ACTOR, "cannot write output: %s",
                           strerror(errno));
    }
    cli_ctx_release(ctx);
    return rc;
}

static void
cli_vmsg(struct cli_ctx *ctx, int level, const char *fmt, va_list ap,
         const char *tail)
{
    char buf[1024], line[1200];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    /* One line: a message never carries a newline of its own. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    snprintf(line, sizeof(line), "murmer%s%s: %s%s%s", ctx->cmd ? " " : "",
             ctx->cmd ? ctx->cmd : "", buf, tail ? ": " : "", tail ? tail : "");
    if (ctx->via_log) {
        mm_log_line(level, ctx->cmd ? ctx->cmd : "murmer", line);
        return;
    }
    FILE *f = ctx->err ? ctx->err : stderr;
    fprintf(f, "%s\n", line);
    fflush(f);
}

int
cli_error(struct cli_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(ctx, MM_LOG_ERR, fmt, ap, NULL);
    va_end(ap);
    return code;
}

int
cli_fail(struct cli_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(ctx, MM_LOG_ERR, fmt, ap, mm_strerror(err));
    va_end(ap);
    int code = mm_err_exit_code(err);
    return code ? code : MM_EXIT_ACTOR;
}

void
cli_warn(struct cli_ctx *ctx, const char *fmt, ...)
{
    if (ctx->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    cli_vmsg(ctx, MM_LOG_WARN, fmt, ap, NULL);
    va_end(ap);
}

int
cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (s == NULL || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) return -1;
    *out = v;
    return 0;
}

int
cli_parse_duration(const char *s, uint32_t *ms)
{
    if (s == NULL || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) return -1;
    unsigned long long mult;
    if (*end == '\0' && v == 0)
        mult = 1; /* a bare "0" needs no unit */
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 60 * 60 * 1000;
    else
        return -1;
    if (v > UINT32_MAX / mult) return -1;
    *ms = (uint32_t)(v * mult);
    return 0;
}

size_t
cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1; /* nobody mistypes a 64-character option */
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *
cli_suggest(const char *word, const char *const *cands, size_t ncands)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    size_t len = strlen(word);
    for (size_t i = 0; i < ncands; i++) {
        size_t d = cli_edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    /* Short words tolerate one edit, longer ones two. */
    size_t limit = len <= 4 ? 1 : 2;
    if (best == NULL || bestd == 0 || bestd > limit) return NULL;
    return best;
}

static int
opt_takes_arg(const struct cli_opt *o)
{
    return o->kind == CLI_OPT_KIND_STRING || o->kind == CLI_OPT_KIND_LIST ||
           o->kind == CLI_OPT_KIND_DURATION || o->kind == CLI_OPT_KIND_UINT;
}

static size_t
opt_col(const struct cli_opt *o, char *col, size_t len)
{
    int n;
    if (o->shortopt)
        n = snprintf(col, len, "-%c, --%s%s%s", o->shortopt, o->longopt,
                     o->argname ? " " : "", o->argname ? o->argname : "");
    else
        n = snprintf(col, len, "    --%s%s%s", o->longopt,
                     o->argname ? " " : "", o->argname ? o->argname : "");
    return n > 0 ? (size_t)n : 0;
}

void
cli_print_options(const struct cli_opt *a, const struct cli_opt *b, FILE *f)
{
    const struct cli_opt *tabs[2] = {a, b};
    size_t width = 0;
    char col[128];
    for (int t = 0; t < 2; t++)
        for (const struct cli_opt *o = tabs[t]; o && o->kind; o++)
            if (o->help && opt_col(o, col, sizeof(col)) > width)
                width = opt_col(o, col, sizeof(col));
    for (int t = 0; t < 2; t++) {
        for (const struct cli_opt *o = tabs[t]; o && o->kind; o++) {
            if (o->help == NULL) continue; /* hidden */
            opt_col(o, col, sizeof(col));
            fprintf(f, "  %-*s  %s\n", (int)width, col, o->help);
        }
    }
}

void
cli_print_option_list(const struct cli_opt *opts, FILE *f)
{
    for (const struct cli_opt *o = opts; o->kind; o++) {
        fprintf(f, "--%s\n", o->longopt);
        if (o->shortopt) fprintf(f, "-%c\n", o->shortopt);
    }
}

static const struct cli_opt help_opts[] = {
    CLI_OPT_BOOL('h', "help", NULL, "show this help"),
    CLI_OPT_END,
};

/* Prints |text| wrapped at 78 columns (words are never split). */
static void
print_wrapped(FILE *f, const char *text)
{
    size_t col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0) break;
        if (col > 0 && col + 1 + w > 78) {
            fputc('\n', f);
            col = 0;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, w, f);
        col += w;
        p += w;
    }
    fputc('\n', f);
}

void
cli_print_help(struct cli_ctx *ctx, const struct cli_spec *spec, FILE *f)
{
    fprintf(f, "usage: %s\n\n", spec->usage);
    if (spec->summary) {
        print_wrapped(f, spec->summary);
        fputc('\n', f);
    }
    fprintf(f, "options:\n");
    cli_print_options(spec->opts, help_opts, f);
    fprintf(f, "\nglobal options (before or after the command):\n");
    cli_print_options(ctx->gopts, NULL, f);
    if (ctx->cmd) fprintf(f, "\nsee murmer-%s(1) for details.\n", ctx->cmd);
}

int
cli_log_level_from_name(const char *s, int *level)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"debug", MM_LOG_DEBUG},   {"info", MM_LOG_INFO},
        {"notice", MM_LOG_NOTICE}, {"warn", MM_LOG_WARN},
        {"warning", MM_LOG_WARN},  {"error", MM_LOG_ERR},
        {"err", MM_LOG_ERR},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *level = names[i].level;
            return 0;
        }
    }
    return -1;
}

void
cli_apply_env(struct cli_ctx *ctx)
{
    const char *e;
    if (!ctx->join_given && (e = getenv("MURMER_JOIN")) != NULL && *e) {
        char *copy = strdup(e), *save = NULL;
        if (copy != NULL) {
            for (char *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                    t++;
                if (*t) cli_strv_push(&ctx->join, t);
            }
            free(copy);
        }
    }
    if (ctx->cluster_key_file == NULL &&
        (e = getenv("MURMER_CLUSTER_KEY_FILE")) != NULL && *e)
        ctx->cluster_key_file = e;

    int level = MM_LOG_WARN;
    if (ctx->verbose >= 2)
        level = MM_LOG_DEBUG;
    else if (ctx->verbose == 1)
        level = MM_LOG_INFO;
    else if (ctx->quiet)
        level = MM_LOG_ERR;
    else if ((e = getenv("MURMER_LOG")) != NULL && *e &&
             cli_log_level_from_name(e, &level) != 0)
        cli_warn(ctx,
                 "ignoring MURMER_LOG=%s (use debug, info, warn or "
                 "error)",
                 e);
    mm_log_set_level(level);

    ctx->stdout_tty = isatty(fileno(ctx->out ? ctx->out : stdout));
    const char *nc = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    ctx->color = ctx->stdout_tty && !ctx->no_color && !(nc && *nc) &&
                 !(term && strcmp(term, "dumb") == 0);
}

/* One merged table: command options, global options, built-ins. */
struct merged {
    const struct cli_opt *o[OPTS_MAX];
    size_t n;
};

static void
merged_add(struct merged *m, const struct cli_opt *opts)
{
    for (const struct cli_opt *o = opts; o && o->kind; o++)
        if (m->n < OPTS_MAX) m->o[m->n++] = o;
}

static int
opt_apply(struct cli_ctx *ctx, const struct cli_opt *o, const char *arg)
{
    unsigned long v;
    switch (o->kind) {
    case CLI_OPT_KIND_SET:
        if (o->ptr) *(int *)o->ptr = o->value;
        break;
    case CLI_OPT_KIND_COUNT:
        (*(int *)o->ptr)++;
        break;
    case CLI_OPT_KIND_STRING:
        *(const char **)o->ptr = arg;
        break;
    case CLI_OPT_KIND_LIST:
        if (cli_strv_push(o->ptr, arg) != 0)
            return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
        break;
    case CLI_OPT_KIND_DURATION:
        if (cli_parse_duration(arg, o->ptr) != 0)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "invalid duration '%s' for --%s (use e.g. "
                             "500ms, 5s, 2m, 1h)",
                             arg, o->longopt);
        break;
    case CLI_OPT_KIND_UINT:
        if (cli_parse_uint(arg, UINT_MAX, &v) != 0)
            return cli_error(ctx, MM_EXIT_USAGE, "invalid number '%s' for --%s",
                             arg, o->longopt);
        *(unsigned *)o->ptr = (unsigned)v;
        break;
    default:
        break;
    }
    if (o->given) *o->given = 1;
    return 0;
}

static int
report_unknown(struct cli_ctx *ctx, const struct merged *m, const char *arg)
{
    /* |arg| is "--wiat", "--wiat=5" or "-x". */
    char name[128];
    const char *s = arg + strspn(arg, "-");
    size_t len = strcspn(s, "=");
    if (len >= sizeof(name)) len = sizeof(name) - 1;
    memcpy(name, s, len);
    name[len] = '\0';
    int is_long = strncmp(arg, "--", 2) == 0;

    const char *cands[OPTS_MAX];
    for (size_t i = 0; i < m->n; i++)
        cands[i] = m->o[i]->longopt;
    const char *sug = is_long ? cli_suggest(name, cands, m->n) : NULL;
    if (sug)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "unknown option '%s%s' (did you mean '--%s'?)",
                         is_long ? "--" : "-", name, sug);
    return cli_error(ctx, MM_EXIT_USAGE, "unknown option '%s%s'",
                     is_long ? "--" : "-", name);
}

/*
 * The getopt_long loop shared by cli_parse() and cli_parse_global().
 * |builtins| are options whose ptr is an int flag the caller inspects.
 */
static int
parse_run(struct cli_ctx *ctx, const struct cli_opt *cmdopts,
          const struct cli_opt *builtins, int argc, char **argv, int posix)
{
    struct merged m = {.n = 0};
    merged_add(&m, cmdopts);
    merged_add(&m, ctx->gopts);
    merged_add(&m, builtins);

    struct option lo[OPTS_MAX + 1];
    char shorts[2 * OPTS_MAX + 3];
    size_t ns = 0;
    if (posix) shorts[ns++] = '+';
    shorts[ns++] = ':';
    for (size_t i = 0; i < m.n; i++) {
        const struct cli_opt *o = m.o[i];
        lo[i].name = o->longopt;
        lo[i].has_arg = opt_takes_arg(o) ? required_argument : no_argument;
        lo[i].flag = NULL;
        lo[i].val = OPT_VAL_BASE + (int)i;
        if (o->shortopt) {
            shorts[ns++] = (char)o->shortopt;
            if (opt_takes_arg(o)) shorts[ns++] = ':';
        }
    }
    memset(&lo[m.n], 0, sizeof(lo[0]));
    shorts[ns] = '\0';

    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int c, li;
    while ((c = getopt_long(argc, argv, shorts, lo, &li)) != -1) {
        const struct cli_opt *o = NULL;
        if (c == '?') {
            if (optopt >= OPT_VAL_BASE)
                return cli_error(ctx, MM_EXIT_USAGE,
                                 "option '--%s' takes no value",
                                 m.o[optopt - OPT_VAL_BASE]->longopt);
            if (optopt != 0) {
                char s[3] = {'-', (char)optopt, '\0'};
                return report_unknown(ctx, &m, s);
            }
            return report_unknown(ctx, &m, argv[optind - 1]);
        }
        if (c == ':') {
            if (optopt >= OPT_VAL_BASE) o = m.o[optopt - OPT_VAL_BASE];
            for (size_t i = 0; o == NULL && i < m.n; i++)
                if (m.o[i]->shortopt == optopt) o = m.o[i];
            return cli_error(ctx, MM_EXIT_USAGE, "option '--%s' needs %s",
                             o ? o->longopt : "?",
                             o && o->argname ? o->argname : "a value");
        }
        if (c >= OPT_VAL_BASE) o = m.o[c - OPT_VAL_BASE];
        for (size_t i = 0; o == NULL && i < m.n; i++)
            if (m.o[i]->shortopt == c) o = m.o[i];
        if (o == NULL) return cli_error(ctx, MM_EXIT_USAGE, "unknown option");
        int rc = opt_apply(ctx, o, optarg);
        if (rc != 0) return rc;
    }
    return CLI_CONTINUE;
}

int
cli_parse(struct cli_ctx *ctx, const struct cli_spec *spec, int argc,
          char **argv, char ***args, int *nargs)
{
    int help = 0, list = 0;
    const struct cli_opt builtins[] = {
        CLI_OPT_BOOL('h', "help", &help, "show this help"),
        CLI_OPT_BOOL(0, "list-options", &list, NULL),
        CLI_OPT_END,
    };
    int rc = parse_run(ctx, spec->opts, builtins, argc, argv, 0);
    if (rc != CLI_CONTINUE) return rc;
    if (list) {
        if (spec->opts) cli_print_option_list(spec->opts, ctx->out);
        cli_print_option_list(help_opts, ctx->out);
        return MM_EXIT_OK;
    }
    if (help) {
        cli_print_help(ctx, spec, ctx->out);
        return MM_EXIT_OK;
    }
    cli_apply_env(ctx);

    int n = argc - optind;
    if (n < spec->min_args)
        return cli_error(ctx, MM_EXIT_USAGE, "missing arguments (usage: %s)",
                         spec->usage);
    if (spec->max_args >= 0 && n > spec->max_args)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "unexpected argument '%s' (usage: %s)",
                         argv[optind + spec->max_args], spec->usage);
    if (args) *args = argv + optind;
    if (nargs) *nargs = n;
    return CLI_CONTINUE;
}

int
cli_parse_global(struct cli_ctx *ctx, int argc, char **argv, int *idx)
{
    int help = 0, version = 0, list_cmds = 0, list_opts = 0;
    const struct cli_opt builtins[] = {
        CLI_OPT_BOOL('h', "help", &help, "show this help"),
        CLI_OPT_BOOL(0, "version", &version, "print the version"),
        CLI_OPT_BOOL(0, "list-commands", &list_cmds, NULL),
        CLI_OPT_BOOL(0, "list-options", &list_opts, NULL),
        CLI_OPT_END,
    };
    int rc = parse_run(ctx, NULL, builtins, argc, argv, 1);
    if (rc != CLI_CONTINUE) return rc;
    *idx = optind;
    if (version) {
        fprintf(ctx->out, "murmer %s\n", MM_VERSION_STRING);
        return MM_EXIT_OK;
    }
    if (list_cmds) {
        size_t n;
        const struct cli_cmd *cmds = cli_commands(&n);
        for (size_t i = 0; i < n; i++)
            if (!(cmds[i].flags & CLI_HIDDEN))
                fprintf(ctx->out, "%s\n", cmds[i].name);
        return MM_EXIT_OK;
    }
    if (list_opts) {
        cli_print_option_list(ctx->gopts, ctx->out);
        fprintf(ctx->out, "--help\n-h\n--version\n");
        return MM_EXIT_OK;
    }
    if (help) {
        cli_main_usage(ctx, ctx->out);
        return MM_EXIT_OK;
    }
    return CLI_CONTINUE;
}
