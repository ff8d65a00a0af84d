/*
 * main.c — murmer's entry point: global options, the command table and
 * dispatch (git.c's shape).
 *
 *   murmer [global options] <command> [options] [args]
 *
 * Global options are parsed here up to the command name, and again by
 * cli_parse() after it, so they work on either side.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Sorted by name; `murmer --help` and --list-commands print this order. */
static const struct cli_cmd commands[] = {
    {"doctor", cmd_doctor, 0,
     "check this host and its node (permissions, address, clocks)"},
    {"force-leave", cmd_force_leave, 0,
     "remove a failed node from the cluster at once"},
    {"help", cmd_help, 0, "show help for murmer or one command"},
    {"keygen", cmd_keygen, 0, "write a new cluster key"},
    {"keys", cmd_keys, 0,
     "rotate the cluster key on every member (list, install, use, remove)"},
    {"lookup", cmd_lookup, 0, "find actors by label, prefix or reception key"},
    {"members", cmd_members, 0, "list the cluster's members"},
    {"oplog", cmd_oplog, 0, "show the registry's replication log"},
    {"partitions", cmd_partitions, 0,
     "show who sees whom; exit 1 while views disagree"},
    {"ping", cmd_ping, 0,
     "round trips to a member, direct and through other members"},
    {"send", cmd_send, 0, "send a message to an actor and print its reply"},
    {"spawn", cmd_spawn, 0,
     "start an actor on a member of the cluster (--on, --where)"},
    {"start", cmd_start, 0, "run a node"},
    {"stop", cmd_stop, 0, "stop an actor by label, on the node hosting it"},
    {"top", cmd_top, 0, "show every node's load and the busiest actors, live"},
    {"watch", cmd_watch, 0,
     "stream actors as they come and go (JSON Lines with --json)"},
};

const struct cli_cmd *
cli_commands(size_t *n)
{
    *n = sizeof(commands) / sizeof(commands[0]);
    return commands;
}

const struct cli_cmd *
cli_find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

void
cli_main_usage(struct cli_ctx *ctx, FILE *f)
{
    fprintf(f, "usage: murmer [global options] <command> [options] "
               "[args]\n\ncommands:\n");
    size_t w = 0;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strlen(commands[i].name) > w) w = strlen(commands[i].name);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!(commands[i].flags & CLI_HIDDEN))
            fprintf(f, "  %-*s  %s\n", (int)w, commands[i].name,
                    commands[i].summary);
    fprintf(f, "\nglobal options (before or after the command):\n");
    static const struct cli_opt extra[] = {
        CLI_OPT_BOOL('h', "help", NULL, "show this help"),
        CLI_OPT_BOOL(0, "version", NULL, "print the version"),
        CLI_OPT_END,
    };
    cli_print_options(ctx->gopts, extra, f);
    fprintf(f, "\n'murmer help <command>' or 'murmer <command> --help' "
               "describes a command; see murmer(1).\n");
}

static int
unknown_command(struct cli_ctx *ctx, const char *name)
{
    const char *cands[sizeof(commands) / sizeof(commands[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!(commands[i].flags & CLI_HIDDEN)) cands[n++] = commands[i].name;
    const char *sug = cli_suggest(name, cands, n);
    if (sug)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "unknown command '%s' (did you mean '%s'?)", name,
                         sug);
    return cli_error(ctx, MM_EXIT_USAGE,
                     "unknown command '%s' (see 'murmer --help')", name);
}

int
cmd_help(int argc, char **argv, struct cli_ctx *ctx)
{
    char **args;
    int nargs;
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer help [<command>]",
        .summary = "Show help for murmer or one command.",
        .opts = opts,
        .min_args = 0,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (nargs == 0) {
        cli_main_usage(ctx, ctx->out);
        return MM_EXIT_OK;
    }
    const struct cli_cmd *c = cli_find_cmd(args[0]);
    if (c == NULL) {
        ctx->cmd = NULL;
        return unknown_command(ctx, args[0]);
    }
    char *hargv[] = {(char *)c->name, (char *)"--help", NULL};
    ctx->cmd = c->name;
    return c->fn(2, hargv, ctx);
}

int
main(int argc, char **argv)
{
    struct cli_ctx ctx;
    if (cli_ctx_init(&ctx) != 0) {
        fprintf(stderr, "murmer: out of memory\n");
        return MM_EXIT_ACTOR;
    }
    int idx = argc;
    int rc = cli_parse_global(&ctx, argc, argv, &idx);
    if (rc == CLI_CONTINUE && idx >= argc) {
        cli_main_usage(&ctx, stderr);
        rc = MM_EXIT_USAGE;
    }
    if (rc == CLI_CONTINUE) {
        const struct cli_cmd *c = cli_find_cmd(argv[idx]);
        if (c == NULL) {
            rc = unknown_command(&ctx, argv[idx]);
        } else {
            ctx.cmd = c->name;
            rc = c->fn(argc - idx, argv + idx, &ctx);
        }
    }
    return cli_ctx_finish(&ctx, rc);
}
