/*
 * keys.c — `murmer keys list | install FILE | use FILE | remove FILE`: key
 * rotation across the cluster, through a client session.  The seed applies
 * each step on every member and reports how many applied it; the command
 * exits 1 when not all did.  Keys are shown by fingerprint only.
 * Output schema murmer.keys/1.
 */
#include "../cli/cli.h"

#include <string.h>

/* Prints |r|; returns the exit code (1 when not every member applied). */
int
cli_keys_render(struct cli_ctx *ctx, const mm_keys_result *r, FILE *f)
{
    int all = r->applied == r->total;
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.keys/1");
        if (doc == NULL) return MM_EXIT_ACTOR;
        cJSON_AddStringToObject(doc, "action", r->action);
        if (r->fingerprint[0])
            cJSON_AddStringToObject(doc, "fingerprint", r->fingerprint);
        cJSON_AddNumberToObject(doc, "applied", r->applied);
        cJSON_AddNumberToObject(doc, "total", r->total);
        if (strcmp(r->action, "list") == 0) {
            cJSON *arr = cJSON_AddArrayToObject(doc, "keys");
            for (size_t i = 0; arr && i < r->nkeys; i++) {
                cJSON *o = cJSON_CreateObject();
                if (!o) break;
                cJSON_AddStringToObject(o, "fingerprint",
                                        r->keys[i].fingerprint);
                cJSON_AddNumberToObject(o, "members", r->keys[i].members);
                cJSON_AddNumberToObject(o, "primary", r->keys[i].primary);
                cJSON_AddItemToArray(arr, o);
            }
        }
        cJSON *fa = cJSON_AddArrayToObject(doc, "failed");
        for (size_t i = 0; fa && i < r->nfailed; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o) break;
            cJSON_AddStringToObject(o, "node", r->failed[i].node);
            cJSON_AddStringToObject(o, "error", r->failed[i].error);
            cJSON_AddItemToArray(fa, o);
        }
        cli_json_print(doc, f);
        cJSON_Delete(doc);
    } else {
        if (strcmp(r->action, "list") == 0) {
            fprintf(f, "%-16s  %-8s  %s\n", "KEY", "MEMBERS", "PRIMARY");
            for (size_t i = 0; i < r->nkeys; i++) {
                char held[32];
                snprintf(held, sizeof(held), "%u/%u", r->keys[i].members,
                         r->total);
                fprintf(f, "%-16s  %-8s  %u\n", r->keys[i].fingerprint, held,
                        r->keys[i].primary);
            }
        } else {
            fprintf(f, "%s %s: ", r->action, r->fingerprint);
        }
        fprintf(f, "applied on %u/%u members\n", r->applied, r->total);
    }
    for (size_t i = 0; i < r->nfailed; i++)
        cli_error(ctx, 0, "%s: not applied: %s", r->failed[i].node,
                  r->failed[i].error);
    return all ? MM_EXIT_OK : MM_EXIT_ACTOR;
}

int
cmd_keys(int argc, char **argv, struct cli_ctx *ctx)
{
    char **args;
    int nargs;
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer keys list | install <file> | use <file> | remove "
                 "<file>",
        .summary =
            "Rotate the cluster key on every member: install adds a key to "
            "the keyrings, use makes it the primary (sealing gossip, proving "
            "new connections), remove drops a key that is not the primary.  "
            "list shows each key's fingerprint, how many members hold it "
            "and on how many it is the primary.  <file> holds one cluster "
            "key (murmer keygen).  Needs the cluster key; exits 1 when not "
            "every member applied the step.",
        .opts = opts,
        .min_args = 1,
        .max_args = 2,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    const char *action = args[0];
    static const char *const actions[] = {"list", "install", "use", "remove"};
    int known = 0;
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        known |= strcmp(action, actions[i]) == 0;
    if (!known) {
        const char *sug = cli_suggest(action, actions, 4);
        if (sug)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "unknown action '%s' (did you mean '%s'?)", action,
                             sug);
        return cli_error(ctx, MM_EXIT_USAGE,
                         "unknown action '%s' (list, install, use or remove)",
                         action);
    }
    int list = strcmp(action, "list") == 0;
    if (list && nargs != 1)
        return cli_error(ctx, MM_EXIT_USAGE, "keys list takes no file");
    if (!list && nargs != 2)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "keys %s needs a key file (one cluster key)", action);
    const char *file = list ? NULL : args[1];
    if (file) { /* refused before connecting */
        char fp[17], err[512];
        if (mm_key_file_fingerprint(file, fp, err, sizeof(err)) != 0)
            return cli_error(ctx, MM_EXIT_AUTH, "%s", err);
    }
    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    mm_keys_result *r = NULL;
    int err = mm_client_keys(c, action, file, &r);
    if (err)
        rc = cli_client_error(ctx, c, err, NULL);
    else
        rc = cli_keys_render(ctx, r, ctx->out);
    mm_client_free_result(c, r);
    mm_client_close(c);
    return rc;
}
