/*
 * front/main.c — the `murmer` a user runs: a small binary (libc and
 * cJSON, no TLS or QUIC library) that serves the one-shot control
 * commands on the node's own host over its local socket (lib/local.h,
 * docs/design.md, The local control socket), and hands every other
 * command line, unchanged, to the full CLI (execv of murmer-full next to
 * it, or ../libexec/murmer/murmer when installed).
 *
 * The route, decided once the command's options are parsed
 * (cli_front_route, called by cli_connect):
 *   --join ADDR             the full CLI (QUIC to that seed)
 *   --data-dir DIR          DIR/murmer.sock; no node there: an error
 *   MURMER_JOIN             the full CLI
 *   MURMER_DATA_DIR         as --data-dir
 *   otherwise               the default data dir of a node named after
 *                           this host ($XDG_STATE_HOME/murmer/HOST, else
 *                           /var/lib/murmer/HOST for root, else
 *                           ~/.local/state/murmer/HOST) when its socket
 *                           answers, else the full CLI (127.0.0.1:7420,
 *                           then mDNS)
 * The commands run the same code (cmd/NAME.c, cli/options.c, cli/output.c,
 * lib/client_cmds.c) as in the full CLI, so they print the same bytes.
 */
#include "../cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "local_client.h"

/* The commands served here, sorted by name. */
static const struct cli_cmd front_cmds[] = {
    {"force-leave", cmd_force_leave, 0, NULL}, {"lookup", cmd_lookup, 0, NULL},
    {"members", cmd_members, 0, NULL},         {"oplog", cmd_oplog, 0, NULL},
    {"partitions", cmd_partitions, 0, NULL},   {"ping", cmd_ping, 0, NULL},
};
#define NFRONT (sizeof(front_cmds) / sizeof(front_cmds[0]))

static char **g_argv;

/*
 * Runs the full CLI (murmer-full next to this program, or
 * ../libexec/murmer/murmer when installed) with this process's command
 * line; never returns.
 */
static void
exec_full(void)
{
    static const char *const rel[] = {"murmer-full",
                                      "../libexec/murmer/murmer"};
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) n = 0;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        slash[1] = '\0';
    else
        strcpy(self, "./");
    int err = ENOENT;
    fflush(stdout);
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", self, rel[i]);
        execv(path, g_argv);
        if (errno != ENOENT) err = errno;
    }
    fprintf(stderr, "murmer: cannot run the full CLI (%s%s or %s%s): %s\n",
            self, rel[0], self, rel[1], strerror(err));
    exit(MM_EXIT_ACTOR);
}

static int g_explicit; /* the local route was asked for */

/* A stream the local socket does not serve: the full CLI takes the
 * command line when the route was only the default one; with --data-dir
 * or MURMER_DATA_DIR the call fails (the full CLI would dial elsewhere). */
static void
fallback(void)
{
    if (!g_explicit) exec_full();
}

void
cli_front_route(struct cli_ctx *ctx)
{
    const char *dir = ctx->data_dir, *e;
    int explicit = dir != NULL;
    char def[1024];
    if (ctx->join_given) exec_full();
    if (!dir && (e = getenv("MURMER_JOIN")) != NULL && *e) exec_full();
    if (!dir && (e = getenv("MURMER_DATA_DIR")) != NULL && *e) {
        dir = e;
        explicit = 1;
    }
    if (!dir) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0) strcpy(host, "murmer");
        host[sizeof(host) - 1] = '\0';
        if (mm__identity_default_dir(def, sizeof(def), host, 0) != 0)
            exec_full();
        dir = def;
    }
    int fd = mm__lclient_dial(dir);
    if (fd < 0 && !explicit) exec_full();
    g_explicit = explicit;
    mm__lclient_use(dir, fd);
}

/* The command name in |argv| past the global options, or NULL when the
 * line is anything else (--help, --version, a typo): the full CLI's. */
static const char *
command_name(int argc, char **argv)
{
    static const char *const with_arg[] = {"join", "cluster-key", "timeout",
                                           "data-dir"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') return a;
        if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) return NULL;
        if (a[1] != '-' || strchr(a, '=')) continue;
        for (size_t k = 0; k < sizeof(with_arg) / sizeof(with_arg[0]); k++)
            if (strcmp(a + 2, with_arg[k]) == 0) {
                i++;
                break;
            }
    }
    return NULL;
}

/* cli/options.c reaches these only for `murmer --help` and the hidden
 * --list-commands, which are the full CLI's. */
const struct cli_cmd *
cli_commands(size_t *n)
{
    exec_full();
    *n = 0;
    return NULL;
}

void
cli_main_usage(struct cli_ctx *ctx, FILE *f)
{
    (void)ctx;
    (void)f;
    exec_full();
}

const struct cli_cmd *
cli_find_cmd(const char *name)
{
    for (size_t i = 0; i < NFRONT; i++)
        if (strcmp(front_cmds[i].name, name) == 0) return &front_cmds[i];
    return NULL;
}

int
main(int argc, char **argv)
{
    g_argv = argv;
    const char *name = command_name(argc, argv);
    if (!name || !cli_find_cmd(name)) exec_full();
    mm__lclient_fallback = fallback;

    struct cli_ctx ctx;
    if (cli_ctx_init(&ctx) != 0) {
        fprintf(stderr, "murmer: out of memory\n");
        return MM_EXIT_ACTOR;
    }
    int idx = argc;
    int rc = cli_parse_global(&ctx, argc, argv, &idx);
    if (rc == CLI_CONTINUE) {
        const struct cli_cmd *c = idx < argc ? cli_find_cmd(argv[idx]) : NULL;
        if (c == NULL) exec_full(); /* cannot be: checked above */
        ctx.cmd = c->name;
        rc = c->fn(argc - idx, argv + idx, &ctx);
    }
    return cli_ctx_finish(&ctx, rc);
}
