/*
 * partitions.c — `murmer partitions`: who sees whom.  The seed asks every
 * alive member for its member list (bounded wait) and returns them; this
 * prints them as a matrix (rows: observers, columns: the members they
 * see) and exits 0 when every view agrees, 1 when they do not, so that a
 * script can wait for a partition to heal.  Output schema
 * murmer.partitions/1.
 */
#include "../cli/cli.h"

#include <stdlib.h>
#include <string.h>

struct subject {
    const char *id, *name;
};

/* The state |r| sees member |id| in, "-" when it does not list it, NULL
 * when |r| gave no view. */
static const char *
view_state(const mm_partition_row *r, const char *id)
{
    if (r->error) return NULL;
    for (size_t i = 0; i < r->nview; i++)
        if (strcmp(r->view[i].id, id) == 0) return r->view[i].state;
    return "-";
}

/* Every member any observer lists, observers first, in their order. */
static size_t
subjects_collect(const mm_partition_row *r, size_t n, struct subject **out)
{
    size_t cap = n, k = 0;
    for (size_t i = 0; i < n; i++)
        cap += r[i].nview;
    struct subject *v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) {
        *out = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && strcmp(v[j].id, r[i].id) != 0)
            j++;
        if (j == k) v[k++] = (struct subject){r[i].id, r[i].name};
    }
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < r[i].nview; m++) {
            size_t j = 0;
            while (j < k && strcmp(v[j].id, r[i].view[m].id) != 0)
                j++;
            if (j == k)
                v[k++] = (struct subject){r[i].view[m].id, r[i].view[m].name};
        }
    *out = v;
    return k;
}

/* 1 when the answered views differ about |id|. */
static int
subject_disputed(const mm_partition_row *r, size_t n, const char *id)
{
    const char *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *st = view_state(&r[i], id);
        if (!st) continue;
        if (!first)
            first = st;
        else if (strcmp(first, st) != 0)
            return 1;
    }
    return 0;
}

/* 1 when observer |o| gave no view although it was asked (the seed sees
 * it alive or suspect) or a view that came lists it alive: its view is
 * unknown, so agreement cannot be claimed.  A member the seed sees failed
 * or left is not asked and does not count. */
static int
observer_missing(const mm_partition_row *r, size_t n, const mm_partition_row *o)
{
    if (!o->error) return 0;
    if (strncmp(o->error, "not asked", 9) != 0) return 1;
    for (size_t i = 0; i < n; i++) {
        const char *st = view_state(&r[i], o->id);
        if (st && strcmp(st, "alive") == 0) return 1;
    }
    return 0;
}

static int
state_color(const char *st)
{
    if (!st) return CLI_COLOR_DIM;
    if (strcmp(st, "alive") == 0) return CLI_COLOR_GREEN;
    if (strcmp(st, "suspect") == 0) return CLI_COLOR_YELLOW;
    if (strcmp(st, "failed") == 0) return CLI_COLOR_RED;
    return CLI_COLOR_DIM;
}

static void
render_json(struct cli_ctx *ctx, const char *seed, const mm_partition_row *r,
            size_t n, const struct subject *sub, size_t ns, int agree)
{
    cJSON *doc = cli_json_doc("murmer.partitions/1");
    if (!doc) return;
    cJSON_AddStringToObject(doc, "seed", seed);
    cJSON_AddBoolToObject(doc, "agree", agree);
    cJSON *obs = cJSON_AddArrayToObject(doc, "observers");
    for (size_t i = 0; obs && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(obs, o);
        cJSON_AddStringToObject(o, "name", r[i].name);
        cJSON_AddStringToObject(o, "id", r[i].id);
        cJSON_AddStringToObject(o, "state", r[i].state);
        cJSON_AddBoolToObject(o, "answered", r[i].error == NULL);
        if (r[i].error) {
            cJSON_AddStringToObject(o, "error", r[i].error);
            cJSON_AddNullToObject(o, "view");
            continue;
        }
        cJSON *v = cJSON_AddObjectToObject(o, "view");
        for (size_t j = 0; v && j < r[i].nview; j++)
            cJSON_AddStringToObject(v, r[i].view[j].name, r[i].view[j].state);
    }
    cJSON *dis = cJSON_AddArrayToObject(doc, "disagreements");
    for (size_t s = 0; dis && s < ns; s++) {
        if (!subject_disputed(r, n, sub[s].id)) continue;
        cJSON *d = cJSON_CreateObject();
        if (!d) break;
        cJSON_AddItemToArray(dis, d);
        cJSON_AddStringToObject(d, "subject", sub[s].name);
        cJSON *st = cJSON_AddObjectToObject(d, "states");
        for (size_t i = 0; st && i < n; i++) {
            const char *x = view_state(&r[i], sub[s].id);
            if (x) cJSON_AddStringToObject(st, r[i].name, x);
        }
    }
    cJSON *miss = cJSON_AddArrayToObject(doc, "no_answer");
    for (size_t i = 0; miss && i < n; i++)
        if (observer_missing(r, n, &r[i]))
            cJSON_AddItemToArray(miss, cJSON_CreateString(r[i].name));
    cli_json_print(doc, ctx->out);
    cJSON_Delete(doc);
}

static void
render_text(struct cli_ctx *ctx, const mm_partition_row *r, size_t n,
            const struct subject *sub, size_t ns, int agree)
{
    size_t ncols = ns + 2;
    const char **hdr = calloc(ncols, sizeof(*hdr));
    const char **row = calloc(ncols, sizeof(*row));
    struct cli_table t;
    if (!hdr || !row) goto out;
    hdr[0] = "OBSERVER";
    for (size_t s = 0; s < ns; s++)
        hdr[s + 1] = sub[s].name;
    hdr[ns + 1] = "NOTE";
    if (cli_table_init(&t, ncols, hdr) != 0) goto out;
    for (size_t i = 0; i < n; i++) {
        row[0] = r[i].name;
        for (size_t s = 0; s < ns; s++) {
            const char *st = view_state(&r[i], sub[s].id);
            row[s + 1] = st ? st : "?";
        }
        row[ns + 1] = r[i].error ? r[i].error : "";
        cli_table_add(&t, row);
        for (size_t s = 0; s < ns; s++)
            cli_table_color(&t, s + 1,
                            state_color(view_state(&r[i], sub[s].id)));
    }
    cli_table_print(ctx, &t, ctx->out);
    cli_table_release(&t);
    if (agree) {
        size_t views = 0;
        for (size_t i = 0; i < n; i++)
            views += r[i].error == NULL;
        fprintf(ctx->out, "all %zu views agree\n", views);
    } else {
        for (size_t s = 0; s < ns; s++)
            if (subject_disputed(r, n, sub[s].id))
                fprintf(ctx->out, "views disagree about %s\n", sub[s].name);
        for (size_t i = 0; i < n; i++)
            if (observer_missing(r, n, &r[i]))
                fprintf(ctx->out, "%s gave no view (%s)\n", r[i].name,
                        r[i].error);
    }
out:
    free(hdr);
    free(row);
}

int
cmd_partitions(int argc, char **argv, struct cli_ctx *ctx)
{
    const struct cli_opt opts[] = {CLI_OPT_END};
    const struct cli_spec spec = {
        .usage = "murmer partitions [options]",
        .summary = "Show each member's view of every member (gathered by the "
                   "seed); exit 0 when all views agree, 1 when they "
                   "disagree.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) return rc;
    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    mm_partition_row *r = NULL;
    size_t n = 0;
    int err = mm_client_partitions(c, &r, &n);
    if (err) {
        rc = cli_client_error(ctx, c, err, "partitions");
        mm_client_close(c);
        return rc;
    }
    struct subject *sub = NULL;
    size_t ns = subjects_collect(r, n, &sub);
    int agree = sub != NULL || n == 0;
    for (size_t s = 0; agree && s < ns; s++)
        agree = !subject_disputed(r, n, sub[s].id);
    for (size_t i = 0; agree && i < n; i++)
        agree = !observer_missing(r, n, &r[i]);
    if (ctx->json)
        render_json(ctx, mm_client_seed_name(c), r, n, sub, ns, agree);
    else
        render_text(ctx, r, n, sub, ns, agree);
    free(sub);
    mm_client_free_result(c, r);
    mm_client_close(c);
    return agree ? MM_EXIT_OK : MM_EXIT_ACTOR;
}
