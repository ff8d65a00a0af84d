/*
 * spawn.c — `murmer spawn TYPE LABEL`: start an actor of a registered type
 * on a member the seed picks (or --on NODE, or among --where TAG=V) with
 * its initial state, restart policy and visibility.  Output schema
 * murmer.spawn/1 (see murmer-spawn(1)).
 */
#include "../cli/cli.h"

#include <string.h>

/* spawn and stop print the same: where the actor is (was). */
void
cli_spawn_render(struct cli_ctx *ctx, const char *schema, const char *verb,
                 const char *label, const char *node, const mm_endpoint *ep,
                 FILE *f)
{
    char eps[96];
    mm_endpoint_format(ep, eps, sizeof(eps));
    if (ctx->json) {
        cJSON *doc = cli_json_doc(schema);
        if (doc == NULL) return;
        cJSON_AddStringToObject(doc, "label", label);
        cJSON_AddStringToObject(doc, "node", node);
        cJSON_AddStringToObject(doc, "endpoint", eps);
        cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    fprintf(f, "%s %s on %s (%s)\n", verb, label, node, eps);
}

int
cmd_spawn(int argc, char **argv, struct cli_ctx *ctx)
{
    mm_client_spawn_req r;
    memset(&r, 0, sizeof(r));
    char **args;
    int nargs;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING(0, "on", &r.on, "NODE",
                       "spawn on member NODE (name or id)"),
        CLI_OPT_STRING(0, "where", &r.where, "TAG=V",
                       "spawn on an alive member with tag TAG=V (the one "
                       "with the fewest actors)"),
        CLI_OPT_STRING(0, "arg", &r.arg_json, "JSON",
                       "the actor's initial state (JSON)"),
        CLI_OPT_STRING(0, "policy", &r.policy, "P",
                       "restart policy: temporary (default), transient or "
                       "permanent"),
        CLI_OPT_STRING(0, "visibility", &r.visibility, "V",
                       "internal (default), public or private"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer spawn [options] <type> <label>",
        .summary = "Start an actor of a registered type on a member of the "
                   "cluster: --on NODE, else the alive member with the "
                   "fewest actors (among those with --where TAG=V).",
        .opts = opts,
        .min_args = 2,
        .max_args = 2,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    r.type = args[0];
    r.label = args[1];
    if (!*r.type || !*r.label)
        return cli_error(ctx, MM_EXIT_USAGE, "empty type or label");
    if (r.on && r.where)
        return cli_error(ctx, MM_EXIT_USAGE, "give --on or --where, not both");
    if (r.where && (!strchr(r.where, '=') || *r.where == '='))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --where '%s' (expected TAG=V)", r.where);
    static const char *const pols[] = {"temporary", "transient", "permanent"};
    static const char *const viss[] = {"internal", "public", "private"};
    int ok = !r.policy;
    for (int i = 0; !ok && i < 3; i++)
        ok = strcmp(r.policy, pols[i]) == 0;
    if (!ok)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --policy '%s' (temporary, transient or "
                         "permanent)",
                         r.policy);
    ok = !r.visibility;
    for (int i = 0; !ok && i < 3; i++)
        ok = strcmp(r.visibility, viss[i]) == 0;
    if (!ok)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --visibility '%s' (internal, public or "
                         "private)",
                         r.visibility);
    if (r.arg_json) {
        cJSON *v = cJSON_Parse(r.arg_json);
        if (v == NULL)
            return cli_error(ctx, MM_EXIT_INPUT, "--arg: malformed JSON");
        cJSON_Delete(v);
    }

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    char *node = NULL;
    mm_endpoint ep;
    int err = mm_client_spawn(c, &r, &node, &ep);
    if (err == 0)
        cli_spawn_render(ctx, "murmer.spawn/1", "spawned", r.label, node, &ep,
                         ctx->out);
    mm_client_free_result(c, node);
    return cli_client_end(ctx, c, err);
}
