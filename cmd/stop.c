/*
 * stop.c — `murmer stop LABEL`: the node that hosts the actor stops it
 * gracefully (never restarted).  Output schema murmer.stop/1 (see
 * murmer-stop(1)).
 */
#include "../cli/cli.h"

int
cmd_stop(int argc, char **argv, struct cli_ctx *ctx)
{
    char **args;
    int nargs;
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer stop [options] <label>",
        .summary = "Stop the actor registered as LABEL, on the node that "
                   "hosts it.",
        .opts = opts,
        .min_args = 1,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (*args[0] == '\0') return cli_error(ctx, MM_EXIT_USAGE, "empty label");

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    char *node = NULL;
    mm_endpoint ep;
    int err = mm_client_stop(c, args[0], &node, &ep);
    if (err == 0)
        cli_spawn_render(ctx, "murmer.stop/1", "stopped", args[0], node, &ep,
                         ctx->out);
    mm_client_free_result(c, node);
    return cli_client_end(ctx, c, err);
}
