/*
 * start.c — `murmer start`: run a node until SIGINT or SIGTERM.
 *
 * Every piece of local input (--actor specs and their JSON, --tag, --listen,
 * --name) is validated before the node is created, so a typo never leaves
 * a half-started node behind.  One line per started actor and one
 * "listening" line go to stderr; stdout stays empty.
 *
 * stderr: usage errors are written directly (no node exists yet).  From
 * the node's creation on, every line goes through the library's log sink
 * (mm_log_line; cli_ctx.via_log), which never blocks: a stderr pipe that
 * nobody reads cannot hold the loop (the "listening" line is written on
 * it), the signal thread (which must reach mm_node_stop) or the exit.  The
 * exit waits at most START_LOG_FLUSH_MS for queued lines.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread (the node's
 * threads inherit the mask) and taken by a thread of our own in sigwait(),
 * which calls mm_node_stop() at once, however busy the node's loops are: a
 * loop that runs a long queue of slow messages would notice a signal
 * handled on it only after the queue.  The node then stops within
 * MM_SHUTDOWN_MS (2 s): the handler that runs finishes, the messages still
 * queued are answered `closed`.  A handler that itself runs longer is
 * waited for (it cannot be interrupted, and exiting under it would lose
 * what it was doing without its stop hook); a second SIGINT or SIGTERM
 * gets the default action and ends the process at once, which is what an
 * operator pressing ^C twice wants.
 *
 * Options come from the command line, then the environment, then the
 * --config file (cli/config.c: its keys are this table's long options
 * with "_" for "-", so a row added to the table is a key of the file
 * too), then the defaults.
 *
 * Under systemd (Type=notify): "READY=1" goes to $NOTIFY_SOCKET once the
 * node listens and its actors run, "STOPPING=1" when a signal stops it;
 * one datagram each, written directly (no libsystemd).
 */
#include "../cli/cli.h"
#include "../cli/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define START_DEFAULT_LISTEN "127.0.0.1:7420"
#define START_MAX_SHARDS 256
/* What the exit waits for queued log lines (a stderr nobody reads). */
#define START_LOG_FLUSH_MS 200u

struct actor_spec {
    char *label; /* owned (one allocation holds label, type and json) */
    const char *type;
    const char *json; /* NULL when none */
    int policy;       /* enum mm_policy (--actor-policy) */
    int visibility;   /* enum mm_visibility (--actor-visibility) */
};

/* What the command line (and the config file) asked for. */
struct start_opts {
    const char *name, *listen, *advertise, *data_dir;
    const char *metrics; /* --metrics ADDR:PORT, NULL when off */
    const char *config, *log_level, *log_format;
    struct cli_strv tags, actors, plugins, checkins;
    struct cli_strv policies, visibilities; /* LABEL=P, LABEL=V */
    int mdns, demo, insecure, shards_given;
    unsigned shards;
    int mbox_cap_given, mbox_bytes_given, max_conns_given, max_frame_given;
    unsigned mbox_cap, mbox_bytes, max_conns, max_frame;
    struct actor_spec *specs; /* owned; one per --actor once validated */
};

struct start_state {
    mm_node *node; /* owned */
    sigset_t sigs; /* SIGINT and SIGTERM */
    sigset_t old_mask;
    int blocked;
    pthread_t sig_thread;
    int has_sig_thread;
    _Atomic int done;    /* the node has stopped: the thread ends */
    struct cli_ctx *ctx; /* borrowed */
    const char *notify;  /* borrowed: $NOTIFY_SOCKET, or NULL */
};

/*
 * Sends |state| ("READY=1", ...) to the service manager: one datagram to
 * the unix socket $NOTIFY_SOCKET names (a path, or "@" for an abstract
 * name).  Never blocks; a failure costs one warning.
 */
static void
start_sd_notify(struct start_state *st, const char *state)
{
    const char *path = st->notify;
    if (path == NULL || (path[0] != '/' && path[0] != '@')) return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof(sa.sun_path)) {
        cli_warn(st->ctx, "NOTIFY_SOCKET too long: not notified");
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = -1;
    if (fd >= 0) {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
                   (const struct sockaddr *)&sa,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
        if (n < 0) n = -errno;
        close(fd);
    } else {
        n = -errno;
    }
    if (n < 0)
        cli_warn(st->ctx, "cannot notify %s: %s", path, strerror((int)-n));
}

/*
 * A line of the node's life ("started ...", "listening on ..."): NOTICE,
 * not a warning, for a journal or a JSON reader; -q silences it as it
 * does warnings.  Before the node exists it is a plain cli_warn.
 */
__attribute__((format(printf, 2, 3))) static void
start_note(struct cli_ctx *ctx, const char *fmt, ...)
{
    if (ctx->quiet) return;
    char text[1024], line[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (!ctx->via_log) {
        cli_warn(ctx, "%s", text);
        return;
    }
    snprintf(line, sizeof(line), "murmer start: %s", text);
    mm_log_line(MM_LOG_NOTICE, "start", line);
}

static int
start_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 63) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* "host:port" or "[v6]:port"; sets |*wildcard| for 0.0.0.0 and [::]. */
static int
start_addr_ok(const char *s, int *wildcard)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return 0;
    unsigned long port;
    if (cli_parse_uint(colon + 1, 65535, &port) != 0) return 0;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && (hl < 3 || s[hl - 1] != ']')) return 0;
    if (s[0] != '[' && memchr(s, ':', hl) != NULL)
        return 0; /* IPv6 needs brackets */
    if (wildcard)
        *wildcard = (hl == 7 && strncmp(s, "0.0.0.0", 7) == 0) ||
                    (hl == 4 && strncmp(s, "[::]", 4) == 0);
    return 1;
}

static int
start_parse_actor(struct cli_ctx *ctx, const char *arg, struct actor_spec *a)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--actor '%s': expected LABEL=TYPE[:JSON]", arg);
    a->label = strdup(arg);
    if (a->label == NULL) return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
    char *type = a->label + (eq - arg);
    *type++ = '\0';
    char *colon = strchr(type, ':');
    if (colon) {
        *colon = '\0';
        a->json = colon + 1;
    }
    a->type = type;
    if (!start_name_ok(type))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--actor '%s': bad actor type '%s'", arg, type);
    for (const char *p = a->label; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n')
            return cli_error(ctx, MM_EXIT_USAGE,
                             "--actor '%s': a label has no spaces", arg);
    if (a->json) {
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithOpts(a->json, &end, 1);
        if (v == NULL) {
            size_t off = end ? (size_t)(end - a->json) : 0;
            return cli_error(ctx, MM_EXIT_INPUT,
                             "--actor '%s': malformed JSON at byte %zu",
                             a->label, off);
        }
        cJSON_Delete(v);
    }
    return 0;
}

/*
 * --actor-policy LABEL=P and --actor-visibility LABEL=V (|vis|) into the
 * --actor spec of LABEL.  0, or the exit code after the message.
 */
static int
start_actor_option(struct cli_ctx *ctx, const struct start_opts *o,
                   const char *arg, int vis)
{
    static const char *const pols[] = {"temporary", "transient", "permanent"};
    static const char *const viss[] = {"internal", "public", "private"};
    static const int vis_val[] = {MM_VIS_INTERNAL, MM_VIS_PUBLIC,
                                  MM_VIS_PRIVATE};
    const char *opt = vis ? "--actor-visibility" : "--actor-policy";
    const char *eq = strrchr(arg, '=');
    if (eq == NULL || eq == arg)
        return cli_error(ctx, MM_EXIT_USAGE, "bad %s '%s' (expected %s)", opt,
                         arg, vis ? "LABEL=VISIBILITY" : "LABEL=POLICY");
    int val = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(eq + 1, vis ? viss[i] : pols[i]) == 0)
            val = vis ? vis_val[i] : i;
    if (val < 0)
        return cli_error(ctx, MM_EXIT_USAGE, "%s '%s': bad %s '%s' (%s)", opt,
                         arg, vis ? "visibility" : "policy", eq + 1,
                         vis ? "internal, public or private"
                             : "temporary, transient or permanent");
    size_t l = (size_t)(eq - arg);
    for (size_t i = 0; i < o->actors.n; i++) {
        struct actor_spec *a = &o->specs[i];
        if (strlen(a->label) != l || strncmp(a->label, arg, l) != 0) continue;
        if (vis)
            a->visibility = val;
        else
            a->policy = val; /* enum mm_policy's order */
        return 0;
    }
    return cli_error(ctx, MM_EXIT_USAGE, "%s '%s': no --actor %.*s", opt, arg,
                     (int)l, arg);
}

static int
start_spawn(struct cli_ctx *ctx, mm_node *n, const char *label,
            const char *type, const char *json, int policy, int visibility)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    o.arg_json = json;
    o.policy = policy;
    o.visibility = visibility;
    mm_endpoint ep;
    int err = mm_spawn(n, type, &o, &ep);
    if (err == MM_ENOTFOUND)
        return cli_error(ctx, MM_EXIT_NOTFOUND,
                         "--actor %s: unknown actor type '%s'", label, type);
    if (err != 0)
        return cli_fail(ctx, err, "cannot start %s (%s)", label, type);
    char buf[96];
    start_note(ctx, "started %s (%s) %s", label, type,
               mm_endpoint_format(&ep, buf, sizeof(buf)));
    return 0;
}

/* Blocks SIGINT and SIGTERM in this thread and so in every thread it
 * creates from now on (the node's). */
static void
start_signals_block(struct start_state *st)
{
    sigemptyset(&st->sigs);
    sigaddset(&st->sigs, SIGINT);
    sigaddset(&st->sigs, SIGTERM);
    st->blocked = pthread_sigmask(SIG_BLOCK, &st->sigs, &st->old_mask) == 0;
}

static void *
start_signal_main(void *arg)
{
    struct start_state *st = arg;
    int signalled = 0;
    for (;;) {
        int signum;
        if (sigwait(&st->sigs, &signum) != 0) continue;
        if (atomic_load(&st->done)) return NULL;
        if (!signalled) {
            signalled = signum;
            start_note(st->ctx, "%s: stopping node %s", strsignal(signum),
                       mm_node_name(st->node));
            start_sd_notify(st, "STOPPING=1");
            mm_node_stop(st->node);
            continue;
        }
        /* A second signal: its default action, at once. */
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, signum);
        signal(signum, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(signum);
    }
}

static int
start_signals(struct start_state *st)
{
    if (!st->blocked) return MM_EINVAL;
    int err = pthread_create(&st->sig_thread, NULL, start_signal_main, st);
    if (err != 0) return -err;
    st->has_sig_thread = 1;
    return 0;
}

/* Ends the signal thread (if any) and restores the signal mask. */
static void
start_signals_end(struct start_state *st)
{
    if (st->has_sig_thread) {
        atomic_store(&st->done, 1);
        pthread_kill(st->sig_thread, SIGTERM); /* taken by its sigwait */
        pthread_join(st->sig_thread, NULL);
        st->has_sig_thread = 0;
    }
    if (st->blocked) pthread_sigmask(SIG_SETMASK, &st->old_mask, NULL);
    st->blocked = 0;
}

/* Runs on shard 0 once the node runs: the address is bound by then. */
static void
start_listening_cb(void *data)
{
    struct start_state *st = data;
    const char *addr = mm_node_addr(st->node);
    start_note(st->ctx, "node %s (%s) listening on %s", mm_node_name(st->node),
               mm_node_id(st->node), addr ? addr : "nothing (local only)");
    char state[160];
    snprintf(state, sizeof(state), "READY=1\nSTATUS=listening on %s",
             addr ? addr : "nothing (local only)");
    start_sd_notify(st, state);
}

#define START_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The config file's keys are the rows of cmd_start's table (a new row is
 * a new key: nothing to add here) but these, plus the global options
 * below; an option whose environment variable outranks the file gets a
 * line in start_key_env.
 */
/* Options that are not keys of the config file. */
static const char *const start_not_keys[] = {"config", "no-mdns"};
/* Global options that are keys of the config file too. */
static const char *const start_global_keys[] = {"join", "cluster-key",
                                                "timeout"};
/* The environment variables that outrank a key of the file. */
static const struct {
    const char *opt;
    const char *env[3];
} start_key_env[] = {
    {"join", {"MURMER_JOIN", NULL, NULL}},
    {"cluster-key", {"MURMER_CLUSTER_KEY_FILE", "MURMER_CLUSTER_KEY", NULL}},
    {"log-level", {"MURMER_LOG", NULL, NULL}},
    {"log-format", {"MURMER_LOG_FORMAT", NULL, NULL}},
};

static int
start_in(const char *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, v[i]) == 0) return 1;
    return 0;
}

/* Whether the option |o| of |tab| was on the command line: it, or a row
 * that stores to the same place (--mdns and --no-mdns). */
static int
start_given(const struct cli_opt *tab, const struct cli_opt *o)
{
    for (const struct cli_opt *r = tab; r->kind; r++)
        if ((r == o || (r->ptr && r->ptr == o->ptr)) && r->given && *r->given)
            return 1;
    return 0;
}

#define START_MAX_KEYS 48

/*
 * Applies --config FILE, when given, under the command line and the
 * environment.  0, or the exit code after the message.
 */
static int
start_load_config(struct cli_ctx *ctx, struct start_opts *o,
                  const struct cli_opt *opts, cJSON **doc)
{
    if (o->config == NULL) return 0;
    struct cli_config_key keys[START_MAX_KEYS];
    size_t n = 0;
    memset(keys, 0, sizeof(keys));
    const struct cli_opt *tabs[2] = {opts, ctx->gopts};
    for (int t = 0; t < 2; t++) {
        for (const struct cli_opt *r = tabs[t]; r->kind && n < START_MAX_KEYS;
             r++) {
            if (t == 0 && start_in(r->longopt, start_not_keys,
                                   START_COUNT(start_not_keys)))
                continue;
            if (t == 1 && !start_in(r->longopt, start_global_keys,
                                    START_COUNT(start_global_keys)))
                continue;
            struct cli_config_key *k = &keys[n++];
            k->opt = r;
            k->given = start_given(tabs[t], r);
            k->kv_object = strcmp(r->longopt, "tag") == 0;
            if (strcmp(r->longopt, "log-level") == 0)
                k->given |= ctx->verbose > 0 || ctx->quiet > 0;
            for (size_t e = 0; e < START_COUNT(start_key_env); e++)
                if (strcmp(r->longopt, start_key_env[e].opt) == 0)
                    memcpy(k->env, start_key_env[e].env, sizeof(k->env));
        }
    }
    return cli_config_apply(ctx, o->config, keys, n, doc);
}

/*
 * The log level and line format: the flag, else the environment
 * (MURMER_LOG, which cli_parse applied, -v and -q; MURMER_LOG_FORMAT),
 * else the config file, else warn and text.
 */
static int
start_logging(struct cli_ctx *ctx, const struct start_opts *o)
{
    if (o->log_level) {
        int level;
        if (cli_log_level_from_name(o->log_level, &level) != 0)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "bad --log-level '%s' (debug, info, notice, "
                             "warn or error)",
                             o->log_level);
        mm_log_set_level(level);
    }
    const char *fmt = o->log_format;
    const char *env = getenv("MURMER_LOG_FORMAT");
    if (fmt == NULL && env && *env) {
        if (strcmp(env, "text") != 0 && strcmp(env, "json") != 0)
            cli_warn(ctx, "ignoring MURMER_LOG_FORMAT=%s (use text or json)",
                     env);
        else
            fmt = env;
    }
    if (fmt && strcmp(fmt, "json") == 0)
        mm_log_set_format(MM_LOG_FORMAT_JSON);
    else if (fmt && strcmp(fmt, "text") != 0)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --log-format '%s' (text or json)", fmt);
    else
        mm_log_set_format(MM_LOG_FORMAT_TEXT);
    return 0;
}

/*
 * Checks every piece of local input before any side effect, and parses the
 * --actor specs into |o->specs|.  0, or the exit code after the message.
 */
static int
start_validate(struct cli_ctx *ctx, struct start_opts *o)
{
    if (o->name && !start_name_ok(o->name))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad node name '%s' (letters, digits, '-', '_', '.')",
                         o->name);
    int wildcard = 0;
    if (!start_addr_ok(o->listen, &wildcard))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --listen '%s' (expected ADDR:PORT)", o->listen);
    if (o->advertise && !start_addr_ok(o->advertise, NULL))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --advertise '%s' (expected ADDR:PORT)",
                         o->advertise);
    if (o->metrics && !start_addr_ok(o->metrics, NULL))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --metrics '%s' (expected ADDR:PORT)", o->metrics);
    if (wildcard && o->advertise == NULL)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--listen %s is a wildcard: give --advertise",
                         o->listen);
    if (o->mbox_cap_given && (o->mbox_cap == 0 || o->mbox_cap > (1u << 22)))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--mailbox-capacity must be 1..4194304");
    if (o->mbox_bytes_given && o->mbox_bytes < 1024)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--mailbox-bytes must be at least 1024");
    if (o->max_conns_given && (o->max_conns == 0 || o->max_conns > 65536))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--max-connections must be 1..65536");
    if (o->max_frame_given &&
        (o->max_frame < 65536 || o->max_frame > 64u * 1024u * 1024u))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--max-frame must be 65536..67108864 bytes");
    if (o->shards_given && (o->shards == 0 || o->shards > START_MAX_SHARDS))
        return cli_error(ctx, MM_EXIT_USAGE, "--shards must be 1..%d",
                         START_MAX_SHARDS);
    for (size_t i = 0; i < o->tags.n; i++) {
        const char *eq = strchr(o->tags.v[i], '=');
        if (eq == NULL || eq == o->tags.v[i])
            return cli_error(ctx, MM_EXIT_USAGE,
                             "bad --tag '%s' (expected K=V)", o->tags.v[i]);
    }
    for (size_t i = 0; i < o->checkins.n; i++) {
        const char *eq = strchr(o->checkins.v[i], '=');
        if (eq == NULL || eq == o->checkins.v[i] || eq[1] == '\0')
            return cli_error(ctx, MM_EXIT_USAGE,
                             "bad --check-in '%s' (expected LABEL=KEY)",
                             o->checkins.v[i]);
    }
    for (size_t i = 0; i < ctx->join.n; i++)
        if (!start_addr_ok(ctx->join.v[i], NULL))
            return cli_error(ctx, MM_EXIT_USAGE,
                             "bad --join '%s' (expected HOST:PORT)",
                             ctx->join.v[i]);
    o->specs = calloc(o->actors.n ? o->actors.n : 1, sizeof(*o->specs));
    if (o->specs == NULL) return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
    for (size_t i = 0; i < o->actors.n; i++) {
        int err = start_parse_actor(ctx, o->actors.v[i], &o->specs[i]);
        if (err != 0) return err;
    }
    for (size_t i = 0; i < o->policies.n + o->visibilities.n; i++) {
        int vis = i >= o->policies.n;
        int err = start_actor_option(
            ctx, o,
            vis ? o->visibilities.v[i - o->policies.n] : o->policies.v[i], vis);
        if (err != 0) return err;
    }
    return 0;
}

/*
 * Creates the node from the options and gives it its actor types (the
 * built-ins, then each --plugin).  0, or the exit code after the message;
 * |*out| is set (for the caller to free) whenever a node was created.
 */
static int
start_configure(struct cli_ctx *ctx, const struct start_opts *o, mm_node **out)
{
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = o->name;
    cfg.listen = o->listen;
    cfg.advertise = o->advertise;
    cfg.data_dir = o->data_dir;
    cfg.cluster_key_file = ctx->cluster_key_file;
    cfg.join = (const char *const *)ctx->join.v;
    cfg.njoin = ctx->join.n;
    cfg.tags = (const char *const *)o->tags.v;
    cfg.ntags = o->tags.n;
    cfg.mdns = o->mdns;
    cfg.shards = (int)o->shards;
    if (o->mbox_cap_given) cfg.mailbox_capacity = o->mbox_cap;
    if (o->mbox_bytes_given) cfg.mailbox_bytes = o->mbox_bytes;
    if (o->max_conns_given) cfg.max_connections = o->max_conns;
    if (o->max_frame_given) cfg.max_frame = o->max_frame;
    cfg.insecure = o->insecure;
    cfg.default_timeout_ms = ctx->timeout_given ? ctx->timeout_ms : 0;
    int err = mm_node_new(out, &cfg);
    if (err != 0) {
        *out = NULL;
        return cli_fail(ctx, err, "cannot create the node");
    }
    err = mm_node_register_builtins(*out);
    if (err != 0)
        return cli_fail(ctx, err, "cannot register the built-in actor types");
    for (size_t i = 0; i < o->plugins.n; i++) {
        char why[512];
        err = mm_node_load_plugin(*out, o->plugins.v[i], why, sizeof(why));
        if (err != 0) return cli_error(ctx, MM_EXIT_INPUT, "--plugin %s", why);
        start_note(ctx, "loaded plugin %s", o->plugins.v[i]);
    }
    return 0;
}

/*
 * Starts the --actor actors and the --demo ones, then makes the
 * --check-in check-ins.  0, or the exit code after the message.
 */
static int
start_populate(struct cli_ctx *ctx, const struct start_opts *o, mm_node *n)
{
    int rc;
    for (size_t i = 0; i < o->actors.n; i++) {
        rc = start_spawn(ctx, n, o->specs[i].label, o->specs[i].type,
                         o->specs[i].json, o->specs[i].policy,
                         o->specs[i].visibility);
        if (rc != 0) return rc;
    }
    if (o->demo) {
        static const char *const demo_types[] = {"echo", "counter", "kv",
                                                 "greeter"};
        for (size_t i = 0; i < 4; i++) {
            char label[128];
            snprintf(label, sizeof(label), "%s/%s", demo_types[i],
                     mm_node_name(n));
            rc = start_spawn(ctx, n, label, demo_types[i], NULL, MM_TEMPORARY,
                             MM_VIS_INTERNAL);
            if (rc != 0) return rc;
        }
    }
    for (size_t i = 0; i < o->checkins.n; i++) {
        char *label = strdup(o->checkins.v[i]);
        if (label == NULL)
            return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
        char *key = strchr(label, '=');
        *key++ = '\0';
        int err = mm_check_in(n, label, key);
        rc = 0;
        if (err == MM_ENOTFOUND)
            rc = cli_error(ctx, MM_EXIT_NOTFOUND,
                           "--check-in %s: no actor with label '%s'",
                           o->checkins.v[i], label);
        else if (err != 0)
            rc = cli_fail(ctx, err, "--check-in %s", o->checkins.v[i]);
        else
            start_note(ctx, "checked %s in under '%s'", label, key);
        free(label);
        if (err != 0) return rc;
    }
    return 0;
}

int
cmd_start(int argc, char **argv, struct cli_ctx *ctx)
{
    struct start_opts o = {.listen = START_DEFAULT_LISTEN, .mdns = -1};
    /* Each row without a |given| of its own gets one in |seen|, for the
     * precedence of the config file. */
    struct cli_opt opts[] = {
        CLI_OPT_STRING(0, "config", &o.config, "FILE",
                       "options from a JSON file (keys: long options, _ "
                       "for -); flags and environment win"),
        CLI_OPT_STRING('n', "name", &o.name, "NAME",
                       "node name (default: the host name)"),
        CLI_OPT_STRING('l', "listen", &o.listen, "ADDR:PORT",
                       "UDP address to bind (default 127.0.0.1:7420; "
                       "port 0 = any)"),
        CLI_OPT_STRING(0, "advertise", &o.advertise, "ADDR:PORT",
                       "address peers dial (needed with a wildcard "
                       "--listen)"),
        CLI_OPT_SET(0, "mdns", &o.mdns, 1, "discover peers with mDNS"),
        CLI_OPT_SET(0, "no-mdns", &o.mdns, 0, "no mDNS"),
        CLI_OPT_STRING(0, "data-dir", &o.data_dir, "DIR",
                       "identity and state (default "
                       "$XDG_STATE_HOME/murmer/NAME)"),
        CLI_OPT_LIST(0, "tag", &o.tags, "K=V", "member tag (repeatable)"),
        CLI_OPT_LIST('a', "actor", &o.actors, "LABEL=TYPE[:JSON]",
                     "start an actor with JSON initial state (repeatable)"),
        CLI_OPT_LIST(0, "actor-policy", &o.policies, "LABEL=P",
                     "restart policy of --actor LABEL: temporary (default), "
                     "transient or permanent (repeatable)"),
        CLI_OPT_LIST(0, "actor-visibility", &o.visibilities, "LABEL=V",
                     "visibility of --actor LABEL: internal (default), "
                     "public or private (repeatable)"),
        CLI_OPT_LIST(0, "check-in", &o.checkins, "LABEL=KEY",
                     "check actor LABEL in under reception key KEY "
                     "(repeatable)"),
        CLI_OPT_LIST(0, "plugin", &o.plugins, "PATH.so",
                     "load actor types from a plugin (repeatable)"),
        CLI_OPT_UINT(0, "shards", &o.shards, &o.shards_given, "N",
                     "run N loops on N threads (default 1)"),
        CLI_OPT_UINT(0, "mailbox-capacity", &o.mbox_cap, &o.mbox_cap_given, "N",
                     "messages one mailbox holds (default 1024)"),
        CLI_OPT_UINT(0, "mailbox-bytes", &o.mbox_bytes, &o.mbox_bytes_given,
                     "BYTES", "bytes one mailbox holds (default 16 MiB)"),
        CLI_OPT_UINT(0, "max-connections", &o.max_conns, &o.max_conns_given,
                     "N", "connections accepted at most (default 1024)"),
        CLI_OPT_UINT(0, "max-frame", &o.max_frame, &o.max_frame_given, "BYTES",
                     "largest frame sent or accepted (default 4 MiB)"),
        CLI_OPT_BOOL(0, "demo", &o.demo,
                     "start echo/, counter/, kv/ and greeter/<name>"),
        CLI_OPT_BOOL(0, "insecure", &o.insecure,
                     "allow the dev key beyond loopback"),
        CLI_OPT_STRING(0, "metrics", &o.metrics, "ADDR:PORT",
                       "serve Prometheus metrics on "
                       "http://ADDR:PORT/metrics (port 0 = any)"),
        CLI_OPT_STRING(0, "log-level", &o.log_level, "LEVEL",
                       "debug, info, notice, warn (default) or error "
                       "(MURMER_LOG)"),
        CLI_OPT_STRING(0, "log-format", &o.log_format, "FORMAT",
                       "text (default) or json, one object per line "
                       "(MURMER_LOG_FORMAT)"),
        CLI_OPT_END,
    };
    _Static_assert(START_COUNT(opts) + START_COUNT(start_global_keys) <=
                       START_MAX_KEYS,
                   "START_MAX_KEYS too small for the config keys");
    int seen[START_COUNT(opts)];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; opts[i].kind; i++)
        if (opts[i].given == NULL) opts[i].given = &seen[i];
    int gseen[CLI_NGLOBAL];
    memset(gseen, 0, sizeof(gseen));
    for (size_t i = 0; ctx->gopts[i].kind; i++)
        if (ctx->gopts[i].given == NULL) ctx->gopts[i].given = &gseen[i];
    cJSON *doc = NULL; /* the config file: its strings are borrowed */
    const struct cli_spec spec = {
        .usage = "murmer start [options]",
        .summary = "Run a node until SIGINT or SIGTERM.  --join and "
                   "--cluster-key (global options) give its seeds and "
                   "cluster key; --config FILE gives any option from a "
                   "JSON object.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    struct start_state st = {.ctx = ctx, .notify = getenv("NOTIFY_SOCKET")};
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) goto out;
    if (!o.data_dir) o.data_dir = ctx->data_dir; /* given before `start` */
    if ((rc = start_load_config(ctx, &o, opts, &doc)) != 0) goto out;
    if ((rc = start_logging(ctx, &o)) != 0) goto out;
    /* From here on every line is in the chosen format, and never a
     * blocking write. */
    ctx->via_log = 1;
    if ((rc = start_validate(ctx, &o)) != 0) goto out;
    start_signals_block(&st); /* before the node makes any thread */
    if ((rc = start_configure(ctx, &o, &st.node)) != 0) goto out;
    if ((rc = start_populate(ctx, &o, st.node)) != 0) goto out;
    if (o.metrics) {
        int merr = mm_node_serve_metrics(st.node, o.metrics);
        if (merr != 0) {
            rc = cli_fail(ctx, merr, "--metrics %s: cannot serve", o.metrics);
            goto out;
        }
        cli_warn(ctx, "metrics on http://%s/metrics",
                 mm_node_metrics_addr(st.node));
    }

    int err = start_signals(&st);
    if (err != 0) {
        rc = cli_fail(ctx, err, "cannot install signal handlers");
        goto out;
    }
    if (mm_node_post(st.node, 0, start_listening_cb, &st) != 0)
        start_listening_cb(&st);
    err = mm_node_run(st.node);
    /* The node may stop without a signal (a fatal error): the signal
     * thread ends here either way. */
    start_signals_end(&st);
    if (err != 0) {
        rc = cli_fail(ctx, err, "node %s stopped", mm_node_name(st.node));
        goto out;
    }
    start_note(ctx, "node %s stopped", mm_node_name(st.node));
    rc = MM_EXIT_OK;

out:
    start_signals_end(&st);
    /* Bounded: after a time-out the flushes of mm_node_free and exit do
     * not wait again while stderr takes nothing. */
    if (ctx->via_log) mm_log_flush(START_LOG_FLUSH_MS);
    if (st.node)
        mm_node_free(st.node); /* also fine for a node that never ran */
    if (o.specs)
        for (size_t i = 0; i < o.actors.n; i++)
            free(o.specs[i].label);
    free(o.specs);
    cli_strv_free(&o.tags);
    cli_strv_free(&o.actors);
    cli_strv_free(&o.policies);
    cli_strv_free(&o.visibilities);
    cli_strv_free(&o.plugins);
    cli_strv_free(&o.checkins);
    cJSON_Delete(doc);
    for (size_t i = 0; ctx->gopts[i].kind; i++)
        if (ctx->gopts[i].given >= gseen &&
            ctx->gopts[i].given < gseen + CLI_NGLOBAL)
            ctx->gopts[i].given = NULL;
    return rc;
}
