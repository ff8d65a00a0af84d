/*
 * oplog.c — `murmer oplog`: each origin's registry log as the seed holds
 * it (snapshot + tail, and says so), or with --follow the new ops as JSON
 * Lines / one line each.  Schemas murmer.oplog/1 and murmer.oplog-op/1.
 */
#include "../cli/cli.h"

#include <inttypes.h>
#include <string.h>

static cJSON *
oplog_op_json(const mm_oplog_op *op, cJSON *o)
{
    if (o == NULL) o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cli_json_add_u64(o, "seq", op->seq);
    cJSON_AddStringToObject(o, "op", op->kind);
    cJSON_AddStringToObject(o, "label", op->label ? op->label : "");
    if (op->type) cJSON_AddStringToObject(o, "type", op->type);
    if (op->visibility)
        cJSON_AddStringToObject(o, "visibility", op->visibility);
    if (op->key) cJSON_AddStringToObject(o, "key", op->key);
    if (op->reason) cJSON_AddStringToObject(o, "reason", op->reason);
    if (op->hlc) cli_json_add_u64(o, "hlc", op->hlc);
    return o;
}

static void
oplog_op_text(const mm_oplog_op *op, FILE *f)
{
    fprintf(f, "  %6" PRIu64 "  %-8s  %s", op->seq, op->kind,
            op->label ? op->label : "");
    if (op->type) fprintf(f, "  type=%s", op->type);
    if (op->visibility) fprintf(f, "  visibility=%s", op->visibility);
    if (op->key) fprintf(f, "  key=%s", op->key);
    if (op->reason) fprintf(f, "  reason=%s", op->reason);
    fputc('\n', f);
}

void
cli_oplog_render(struct cli_ctx *ctx, const mm_oplog_origin *o, size_t n,
                 FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.oplog/1");
        cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "origins") : NULL;
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *jo = cJSON_CreateObject();
            if (jo == NULL) break;
            cJSON_AddItemToArray(arr, jo);
            cJSON_AddStringToObject(jo, "origin", o[i].id);
            if (o[i].name)
                cJSON_AddStringToObject(jo, "name", o[i].name);
            else
                cJSON_AddNullToObject(jo, "name");
            cli_json_add_u64(jo, "generation", o[i].generation);
            cli_json_add_u64(jo, "head", o[i].head);
            if (o[i].has_snapshot) {
                cJSON *s = cJSON_AddObjectToObject(jo, "snapshot");
                if (s) {
                    cli_json_add_u64(s, "seq", o[i].snapshot_seq);
                    cJSON_AddNumberToObject(s, "entries",
                                            (double)o[i].snapshot_entries);
                }
            } else {
                cJSON_AddNullToObject(jo, "snapshot");
            }
            cJSON *ops = cJSON_AddArrayToObject(jo, "ops");
            for (size_t k = 0; ops && k < o[i].nops; k++)
                cJSON_AddItemToArray(ops, oplog_op_json(&o[i].ops[k], NULL));
        }
        if (doc) cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fprintf(
            f, "%sorigin %s%s%s%s generation %" PRIu64 ", head %" PRIu64 "%s\n",
            cli_color_on(ctx, CLI_COLOR_BOLD), o[i].id, o[i].name ? " (" : "",
            o[i].name ? o[i].name : "", o[i].name ? ")" : "", o[i].generation,
            o[i].head, cli_color_off(ctx));
        if (o[i].has_snapshot)
            fprintf(f,
                    "  snapshot through seq %" PRIu64 " (%zu entries), "
                    "then %zu ops\n",
                    o[i].snapshot_seq, o[i].snapshot_entries, o[i].nops);
        for (size_t k = 0; k < o[i].nops; k++)
            oplog_op_text(&o[i].ops[k], f);
    }
}

void
cli_oplog_render_op(struct cli_ctx *ctx, const char *origin,
                    uint64_t generation, const mm_oplog_op *op, FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.oplog-op/1");
        if (doc == NULL) return;
        cJSON_AddStringToObject(doc, "origin", origin);
        cli_json_add_u64(doc, "generation", generation);
        oplog_op_json(op, doc);
        cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    fprintf(f, "%.8s/%" PRIu64, origin, generation);
    oplog_op_text(op, f);
    fflush(f);
}

static int
oplog_follow_cb(void *data, const char *origin, uint64_t gen,
                const mm_oplog_op *op)
{
    struct cli_ctx *ctx = data;
    cli_oplog_render_op(ctx, origin, gen, op, ctx->out);
    return ferror(ctx->out) ? 1 : 0;
}

static int
oplog_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 2 * MM_NODE_ID_LEN) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

int
cmd_oplog(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *origin = NULL;
    int follow = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('o', "origin", &origin, "ID",
                       "only the log of origin node ID (a unique prefix "
                       "works)"),
        CLI_OPT_BOOL('f', "follow", &follow,
                     "keep printing new ops as they are applied"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer oplog [options]",
        .summary = "Show the registry's replication log: per origin node, "
                   "its snapshot and the ops after it.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) return rc;
    if (origin && !oplog_id_ok(origin))
        return cli_error(ctx, MM_EXIT_USAGE,
                         "bad --origin '%s' (lowercase hex node id)", origin);

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    int err;
    if (follow) {
        err = mm_client_oplog_follow(c, origin, oplog_follow_cb, ctx);
        return cli_client_end(ctx, c, err);
    }
    mm_oplog_origin *o = NULL;
    size_t n = 0;
    err = mm_client_oplog(c, origin, &o, &n);
    if (err == 0) cli_oplog_render(ctx, o, n, ctx->out);
    mm_client_free_result(c, o);
    return cli_client_end(ctx, c, err);
}
