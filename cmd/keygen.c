/*
 * keygen.c — `murmer keygen [FILE]`: a new 32-byte cluster key, base64 plus
 * a newline, written to FILE (created with mode 0600, never overwritten) or
 * to stdout.  `murmer keygen --client [--read-only] [FILE]` writes instead
 * the client key derived from the cluster key of --cluster-key or the
 * environment.  The key never appears on a command line.
 */
#include "../cli/cli.h"

int
cmd_keygen(int argc, char **argv, struct cli_ctx *ctx)
{
    char **args;
    int nargs;
    int client = 0, read_only = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_BOOL(0, "client", &client,
                     "derive a client key from the cluster key "
                     "(--cluster-key)"),
        CLI_OPT_BOOL(0, "read-only", &read_only,
                     "a client key that cannot send nor force-leave"),
        CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer keygen [--client [--read-only]] [<file>]",
        .summary = "Write a new random cluster key (base64, one line) to "
                   "<file>, created with mode 0600, or to stdout.  An "
                   "existing file is never overwritten.  With --client, "
                   "write the client key derived from the cluster key "
                   "instead: it lets scripts use the cluster but not join "
                   "it.",
        .opts = opts,
        .min_args = 0,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    const char *path = nargs ? args[0] : NULL;
    if (path && *path == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty file name");
    if (read_only) client = 1;
    /* The library writes stdout's fd directly: flush ours first. */
    fflush(ctx->out);
    char text[512] = "";
    int err = client ? mm_client_keygen(ctx->cluster_key_file, path, read_only,
                                        text, sizeof(text))
                     : mm_cluster_keygen(path);
    if (err == MM_EEXISTS)
        return cli_error(ctx, mm_err_exit_code(err),
                         "%s exists; refusing to overwrite a key", path);
    if (err == MM_EINVAL) return cli_error(ctx, MM_EXIT_USAGE, "%s", text);
    if (err == MM_EKEY)
        return cli_error(ctx, mm_err_exit_code(err), "%s", text);
    if (err != 0)
        return cli_fail(ctx, err, "cannot write %s",
                        path ? path : "the key to stdout");
    return MM_EXIT_OK;
}
