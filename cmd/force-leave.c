/*
 * force-leave.c — `murmer force-leave NODE`: mark a failed member (by name
 * or id) as left at once, instead of waiting for reconnect_timeout.
 * Output schema murmer.force-leave/1.
 */
#include "../cli/cli.h"

#include <string.h>

void
cli_force_leave_render(struct cli_ctx *ctx, const char *name, const char *id,
                       const char *was, FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.force-leave/1");
        if (doc == NULL) return;
        cJSON_AddStringToObject(doc, "name", name);
        cJSON_AddStringToObject(doc, "id", id);
        cJSON_AddStringToObject(doc, "was", was);
        cJSON_AddStringToObject(doc, "state", "left");
        cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    fprintf(f, "%s (%s): %s -> left\n", name, id, was);
}

int
cmd_force_leave(int argc, char **argv, struct cli_ctx *ctx)
{
    char **args;
    int nargs;
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer force-leave [options] <node>",
        .summary = "Remove a member (name or id) from the cluster at once, "
                   "as if it had left.",
        .opts = opts,
        .min_args = 1,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (*args[0] == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty node name");

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    char *name = NULL, *id = NULL, *was = NULL;
    int err = mm_client_force_leave(c, args[0], &name, &id, &was);
    if (err) {
        rc = cli_client_error(ctx, c, err, NULL);
    } else {
        cli_force_leave_render(ctx, name, id, was, ctx->out);
        rc = MM_EXIT_OK;
    }
    mm_client_free_result(c, name);
    mm_client_free_result(c, id);
    mm_client_free_result(c, was);
    cli_client_close(c);
    return rc;
}
