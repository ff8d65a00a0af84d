/*
 * lookup.c — `murmer lookup`: find actors by label, label prefix or
 * reception key.  Output schema murmer.lookup/1 (see murmer-lookup(1)).
 */
#include "../cli/cli.h"

#include <string.h>

static cJSON *
lookup_actor_json(const mm_actor_info *a)
{
    char ep[96];
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "label", a->label);
    cJSON_AddStringToObject(o, "endpoint",
                            mm_endpoint_format(&a->ep, ep, sizeof(ep)));
    if (a->type)
        cJSON_AddStringToObject(o, "type", a->type);
    else
        cJSON_AddNullToObject(o, "type");
    if (a->node_name)
        cJSON_AddStringToObject(o, "node", a->node_name);
    else
        cJSON_AddNullToObject(o, "node");
    cJSON_AddStringToObject(o, "visibility",
                            a->visibility ? a->visibility : "internal");
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    for (size_t i = 0; keys && i < a->nkeys; i++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(a->keys[i]));
    cJSON_AddBoolToObject(o, "shadowed", a->shadowed);
    return o;
}

void
cli_lookup_render(struct cli_ctx *ctx, const mm_actor_info *a, size_t n,
                  FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.lookup/1");
        cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "actors") : NULL;
        for (size_t i = 0; arr && i < n; i++)
            cJSON_AddItemToArray(arr, lookup_actor_json(&a[i]));
        if (doc) cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    static const char *const hdr[] = {"LABEL", "TYPE", "NODE", "KEYS",
                                      "ENDPOINT"};
    struct cli_table t;
    if (cli_table_init(&t, 5, hdr) != 0) return;
    for (size_t i = 0; i < n; i++) {
        char ep[96], keys[256] = "", label[300];
        size_t used = 0;
        for (size_t k = 0; k < a[i].nkeys && used < sizeof(keys); k++) {
            int w = snprintf(keys + used, sizeof(keys) - used, "%s%s",
                             k ? "," : "", a[i].keys[k]);
            if (w < 0) break;
            used += (size_t)w;
        }
        snprintf(label, sizeof(label), "%s%s", a[i].label,
                 a[i].shadowed ? " (shadowed)" : "");
        const char *row[] = {label, a[i].type, a[i].node_name,
                             a[i].nkeys ? keys : NULL,
                             mm_endpoint_format(&a[i].ep, ep, sizeof(ep))};
        cli_table_add(&t, row);
        if (a[i].shadowed) cli_table_color(&t, 0, CLI_COLOR_DIM);
    }
    cli_table_print(ctx, &t, f);
    cli_table_release(&t);
}

int
cmd_lookup(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *key = NULL, *prefix = NULL, *type = NULL;
    uint32_t wait_ms = 0;
    int wait_given = 0, all = 0;
    char **args;
    int nargs;
    const struct cli_opt opts[] = {
        CLI_OPT_DURATION('w', "wait", &wait_ms, &wait_given,
                         "wait up to DURATION for LABEL to appear"),
        CLI_OPT_STRING('k', "key", &key, "KEY",
                       "list the actors checked in under reception key KEY"),
        CLI_OPT_STRING('p', "prefix", &prefix, "P",
                       "list the actors whose label starts with P"),
        CLI_OPT_STRING('t', "type", &type, "T",
                       "only actors of type T (a label of another type: "
                       "type_mismatch, exit 3)"),
        CLI_OPT_BOOL(0, "all", &all, "include shadowed claimants of a label"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer lookup [options] [<label> | --prefix P | --key KEY]",
        .summary = "Find actors by label, label prefix or reception key; "
                   "with none of them, list every actor.",
        .opts = opts,
        .min_args = 0,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    const char *label = nargs ? args[0] : NULL;
    if (label == NULL && prefix == NULL && key == NULL)
        prefix = ""; /* no argument: every actor */
    if (label && prefix)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "give a label or --prefix, not both");
    if (type && *type == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty --type");
    if (label && *label == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty label");
    if (wait_given && label == NULL)
        return cli_error(ctx, MM_EXIT_USAGE, "--wait needs a label");
    if (wait_given && wait_ms > ctx->timeout_ms && !ctx->timeout_given)
        ctx->timeout_ms = wait_ms; /* --wait 30s implies the bound */

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    mm_actor_info *a = NULL;
    size_t n = 0;
    int err = mm_client_lookup_typed(c, label, prefix, key, type, all,
                                     wait_given ? wait_ms : 0, &a, &n);
    if (err == 0) cli_lookup_render(ctx, a, n, ctx->out);
    mm_client_free_result(c, a);
    return cli_client_end(ctx, c, err);
}
