/*
 * watch.c — `murmer watch [KEY]`: a backfill of the matching actors, then
 * live added/removed events.  With --json each event is one JSON Lines
 * document (schema murmer.watch/1), flushed at once.  If the seed goes
 * away the session reconnects through another member and emits `resync`
 * followed by a fresh backfill.
 */
#include "../cli/cli.h"

#include <string.h>

static const char *
watch_kind_name(int kind)
{
    switch (kind) {
    case MM_LISTING_ADDED:
        return "added";
    case MM_LISTING_REMOVED:
        return "removed";
    case MM_LISTING_RESYNC:
        return "resync";
    case MM_LISTING_SYNCED:
        return "synced";
    default:
        return "unknown";
    }
}

void
cli_watch_render(struct cli_ctx *ctx, const mm_listing_event *ev, FILE *f)
{
    char ep[96];
    const char *kind = watch_kind_name(ev->kind);
    int has_actor =
        ev->kind == MM_LISTING_ADDED || ev->kind == MM_LISTING_REMOVED;
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.watch/1");
        if (doc == NULL) return;
        cJSON_AddStringToObject(doc, "event", kind);
        if (has_actor) {
            cJSON_AddStringToObject(doc, "label", ev->label ? ev->label : "");
            cJSON_AddStringToObject(
                doc, "endpoint", mm_endpoint_format(&ev->ep, ep, sizeof(ep)));
        }
        if (ev->kind == MM_LISTING_REMOVED)
            cJSON_AddStringToObject(doc, "reason", mm_reason_name(ev->reason));
        cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    int color = ev->kind == MM_LISTING_ADDED     ? CLI_COLOR_GREEN
                : ev->kind == MM_LISTING_REMOVED ? CLI_COLOR_RED
                                                 : CLI_COLOR_DIM;
    fprintf(f, "%s%-*s%s", cli_color_on(ctx, color), has_actor ? 7 : 0, kind,
            cli_color_off(ctx));
    if (has_actor)
        fprintf(f, "  %s  %s", ev->label ? ev->label : "",
                mm_endpoint_format(&ev->ep, ep, sizeof(ep)));
    if (ev->kind == MM_LISTING_REMOVED)
        fprintf(f, "  (%s)", mm_reason_name(ev->reason));
    fputc('\n', f);
    fflush(f);
}

struct watch_state {
    struct cli_ctx *ctx;
    unsigned count; /* 0 = no limit */
    unsigned seen;  /* added/removed events so far */
};

static int
watch_cb(void *data, const mm_listing_event *ev)
{
    struct watch_state *st = data;
    cli_watch_render(st->ctx, ev, st->ctx->out);
    if (ev->kind == MM_LISTING_ADDED || ev->kind == MM_LISTING_REMOVED)
        st->seen++;
    return st->count && st->seen >= st->count;
}

int
cmd_watch(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *prefix = NULL;
    unsigned count = 0;
    int count_given = 0;
    char **args;
    int nargs;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('p', "prefix", &prefix, "P",
                       "only labels that start with P"),
        CLI_OPT_UINT('c', "count", &count, &count_given, "N",
                     "exit after N added/removed events (bounded by "
                     "--timeout)"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer watch [options] [<key>]",
        .summary = "Print the actors (checked in under <key>, or all) and "
                   "then every change as it happens.",
        .opts = opts,
        .min_args = 0,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (count_given && count == 0)
        return cli_error(ctx, MM_EXIT_USAGE, "--count must be at least 1");
    if (nargs && *args[0] == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty key");

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    struct watch_state st = {ctx, count_given ? count : 0, 0};
    /* With --count (or an explicit --timeout) silence ends the watch. */
    uint32_t idle = count_given || ctx->timeout_given ? ctx->timeout_ms : 0;
    int err =
        mm_client_watch(c, nargs ? args[0] : NULL, prefix, idle, watch_cb, &st);
    if (err == MM_ETIMEOUT && !count_given) {
        rc = MM_EXIT_OK;
    } else if (err == MM_ETIMEOUT) {
        rc =
            cli_error(ctx, MM_EXIT_UNAVAILABLE,
                      "saw %u of %u events before the timeout", st.seen, count);
    } else if (err) {
        rc = cli_client_error(ctx, c, err, NULL);
    } else {
        rc = MM_EXIT_OK;
    }
    cli_client_close(c);
    return rc;
}
