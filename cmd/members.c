/*
 * members.c — `murmer members`: the cluster's SWIM members as the seed
 * sees them.  The CLI is never a member itself.  Output schema
 * murmer.members/1, and murmer.timings/1 for --timings.
 */
#include "../cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The next "k=v" of a member's "k=v,k=v" tags after |*p| (empty items
 * skipped): its start and |*len|, or NULL at the end.
 */
static const char *
member_tag_next(const char **p, size_t *len)
{
    const char *s = *p;
    while (*s == ',')
        s++;
    if (*s == '\0') return NULL;
    const char *e = strchr(s, ',');
    *len = e ? (size_t)(e - s) : strlen(s);
    *p = s + *len;
    return s;
}

int
cli_member_match(const mm_member_info *m, const char *status,
                 const char *const *tags, size_t ntags)
{
    if (status && strcmp(m->state, status) != 0) return 0;
    for (size_t i = 0; i < ntags; i++) {
        int found = 0;
        const char *p = m->tags ? m->tags : "", *t;
        size_t tl;
        while (!found && (t = member_tag_next(&p, &tl)) != NULL)
            found = strlen(tags[i]) == tl && memcmp(t, tags[i], tl) == 0;
        if (!found) return 0;
    }
    return 1;
}

static cJSON *
member_json(const mm_member_info *m, int wide)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "addr", m->addr);
    cJSON_AddStringToObject(o, "state", m->state);
    cli_json_add_u64(o, "generation", m->generation);
    cli_json_add_u64(o, "incarnation", m->incarnation);
    cJSON *tags = cJSON_AddObjectToObject(o, "tags");
    const char *p = m->tags ? m->tags : "", *t;
    size_t tl;
    while (tags && (t = member_tag_next(&p, &tl)) != NULL) {
        char *tag = strndup(t, tl);
        if (tag == NULL) break;
        const char *eq = strchr(tag, '=');
        char k[128];
        size_t kl = eq ? (size_t)(eq - tag) : strlen(tag);
        if (kl >= sizeof(k)) kl = sizeof(k) - 1;
        memcpy(k, tag, kl);
        k[kl] = '\0';
        cJSON_AddStringToObject(tags, k, eq ? eq + 1 : "");
        free(tag);
    }
    if (wide) {
        cJSON_AddNumberToObject(o, "confirmations", m->confirmations);
        if (m->last_ack_ms >= 0)
            cJSON_AddNumberToObject(o, "last_ack_ms", (double)m->last_ack_ms);
        else
            cJSON_AddNullToObject(o, "last_ack_ms");
        if (m->rtt_us >= 0)
            cJSON_AddNumberToObject(o, "rtt_us", (double)m->rtt_us);
        else
            cJSON_AddNullToObject(o, "rtt_us");
    }
    return o;
}

static int
member_color(const char *state)
{
    if (strcmp(state, "alive") == 0) return CLI_COLOR_GREEN;
    if (strcmp(state, "suspect") == 0) return CLI_COLOR_YELLOW;
    if (strcmp(state, "failed") == 0) return CLI_COLOR_RED;
    return CLI_COLOR_DIM;
}

void
cli_members_render(struct cli_ctx *ctx, const mm_member_info *m, size_t n,
                   int wide, FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.members/1");
        cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "members") : NULL;
        for (size_t i = 0; arr && i < n; i++)
            cJSON_AddItemToArray(arr, member_json(&m[i], wide));
        if (doc) cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    static const char *const hdr[] = {
        "NAME",       "ADDR",        "STATE",    "TAGS",     "ID",
        "GENERATION", "INCARNATION", "CONFIRMS", "LAST-ACK", "RTT"};
    const char *narrow_hdr[] = {hdr[0], hdr[1], hdr[2], hdr[3]};
    size_t ncols = wide ? 10 : 4;
    struct cli_table t;
    if (cli_table_init(&t, ncols, wide ? hdr : narrow_hdr) != 0) return;
    for (size_t i = 0; i < n; i++) {
        char tags[256] = "", gen[24], inc[24], conf[16], ack[24], rtt[24];
        size_t used = 0, ntags = 0, tl;
        const char *p = m[i].tags ? m[i].tags : "", *tag;
        while (used < sizeof(tags) &&
               (tag = member_tag_next(&p, &tl)) != NULL) {
            int w = snprintf(tags + used, sizeof(tags) - used, "%s%.*s",
                             ntags++ ? "," : "", (int)tl, tag);
            if (w < 0) break;
            used += (size_t)w;
        }
        snprintf(gen, sizeof(gen), "%" PRIu64, m[i].generation);
        snprintf(inc, sizeof(inc), "%" PRIu64, m[i].incarnation);
        snprintf(conf, sizeof(conf), "%u", m[i].confirmations);
        if (m[i].last_ack_ms >= 0)
            snprintf(ack, sizeof(ack), "%" PRId64 "ms", m[i].last_ack_ms);
        else
            snprintf(ack, sizeof(ack), "-");
        if (m[i].rtt_us >= 0)
            snprintf(rtt, sizeof(rtt), "%" PRId64 ".%03" PRId64 "ms",
                     m[i].rtt_us / 1000, m[i].rtt_us % 1000);
        else
            snprintf(rtt, sizeof(rtt), "-");
        const char *row[] = {
            m[i].name, m[i].addr, m[i].state, ntags ? tags : NULL,
            m[i].id,   gen,       inc,        conf,
            ack,       rtt};
        cli_table_add(&t, row);
        cli_table_color(&t, 2, member_color(m[i].state));
    }
    cli_table_print(ctx, &t, f);
    cli_table_release(&t);
}

void
cli_timings_render(struct cli_ctx *ctx, const mm_timing *t, size_t n, FILE *f)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.timings/1");
        cJSON *obj = doc ? cJSON_AddObjectToObject(doc, "timings") : NULL;
        for (size_t i = 0; obj && i < n; i++)
            cli_json_add_u64(obj, t[i].name, t[i].value);
        if (doc) cli_json_print(doc, f);
        cJSON_Delete(doc);
        return;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) > w) w = strlen(t[i].name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%-*s  %" PRIu64 "\n", (int)w, t[i].name, t[i].value);
}

/* Keeps the members that pass --status and --tag, and renders them. */
static int
members_show(struct cli_ctx *ctx, const mm_member_info *m, size_t n,
             const char *status, const struct cli_strv *tags, int wide)
{
    mm_member_info *sel = calloc(n ? n : 1, sizeof(*sel));
    if (sel == NULL) return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (cli_member_match(&m[i], status, (const char *const *)tags->v,
                             tags->n))
            sel[k++] = m[i];
    cli_members_render(ctx, sel, k, wide, ctx->out);
    free(sel);
    return MM_EXIT_OK;
}

/* --follow: member events, one line (or JSON Lines document) each. */
struct follow_state {
    struct cli_ctx *ctx;
    const char *seed;
    const char *status;
    const struct cli_strv *tags;
    unsigned count; /* 0 = no limit */
    unsigned seen;
};

static int
event_color(const char *ev)
{
    if (strcmp(ev, "join") == 0 || strcmp(ev, "alive") == 0)
        return CLI_COLOR_GREEN;
    if (strcmp(ev, "suspect") == 0) return CLI_COLOR_YELLOW;
    if (strcmp(ev, "failed") == 0) return CLI_COLOR_RED;
    return CLI_COLOR_DIM;
}

static int
follow_cb(void *data, const char *event, const mm_member_info *m)
{
    struct follow_state *st = data;
    struct cli_ctx *ctx = st->ctx;
    if (m == NULL) { /* the seed has the subscription */
        if (ctx->verbose)
            fprintf(ctx->err,
                    "murmer members: following member events of "
                    "%s\n",
                    st->seed);
        return 0;
    }
    if (!cli_member_match(m, st->status, (const char *const *)st->tags->v,
                          st->tags->n))
        return 0;
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.member_event/1");
        cJSON *o = doc ? member_json(m, 0) : NULL;
        if (o) {
            cJSON_AddStringToObject(doc, "event", event);
            cJSON_AddItemToObject(doc, "member", o);
            cli_json_print(doc, ctx->out);
        }
        cJSON_Delete(doc);
    } else {
        fprintf(ctx->out, "%s%-8s%s %s  %s  %s  generation %" PRIu64 "\n",
                cli_color_on(ctx, event_color(event)), event,
                cli_color_off(ctx), m->name, m->addr, m->state, m->generation);
        fflush(ctx->out);
    }
    st->seen++;
    return st->count && st->seen >= st->count;
}

static int
members_follow(struct cli_ctx *ctx, mm_client *c, const char *status,
               const struct cli_strv *tags, unsigned count, int count_given)
{
    struct follow_state st = {ctx,  mm_client_seed_name(c),  status,
                              tags, count_given ? count : 0, 0};
    /* With --count (or an explicit --timeout) silence ends it. */
    uint32_t idle = count_given || ctx->timeout_given ? ctx->timeout_ms : 0;
    int err = mm_client_members_follow(c, idle, follow_cb, &st);
    if (err == MM_ETIMEOUT && !count_given) return MM_EXIT_OK;
    if (err == MM_ETIMEOUT)
        return cli_error(ctx, MM_EXIT_UNAVAILABLE,
                         "saw %u of %u member events before the timeout",
                         st.seen, count);
    if (err) return cli_client_error(ctx, c, err, "members --follow");
    return MM_EXIT_OK;
}

int
cmd_members(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *status = NULL;
    struct cli_strv tags = {0};
    int wide = 0, timings = 0, wait_given = 0, follow = 0, count_given = 0;
    unsigned wait_n = 0, count = 0;
    mm_client *c = NULL;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('s', "status", &status, "S",
                       "only members in state S (alive, suspect, failed, "
                       "left)"),
        CLI_OPT_LIST('t', "tag", &tags, "K=V",
                     "only members with tag K=V (repeatable)"),
        CLI_OPT_BOOL('w', "wide", &wide,
                     "also id, generation, incarnation, confirmations, "
                     "last ack age, RTT"),
        CLI_OPT_UINT(0, "wait", &wait_n, &wait_given, "N",
                     "wait until N members are alive (bounded by "
                     "--timeout)"),
        CLI_OPT_BOOL(0, "timings", &timings,
                     "print the membership timings instead"),
        CLI_OPT_BOOL('f', "follow", &follow,
                     "stream member events (join, alive, suspect, failed, "
                     "left, reaped, updated) as they happen"),
        CLI_OPT_UINT('c', "count", &count, &count_given, "N",
                     "with --follow: exit after N events (bounded by "
                     "--timeout)"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer members [options]",
        .summary = "List the cluster's members as a seed sees them.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) goto out;
    rc = MM_EXIT_USAGE;
    if (status) {
        int ok = 0;
        const char *st;
        for (int i = 0; (st = mm_member_state_name(i)) != NULL; i++)
            ok |= strcmp(status, st) == 0;
        if (!ok) {
            rc = cli_error(ctx, MM_EXIT_USAGE,
                           "bad --status '%s' (alive, suspect, failed or "
                           "left)",
                           status);
            goto out;
        }
    }
    for (size_t i = 0; i < tags.n; i++) {
        const char *eq = strchr(tags.v[i], '=');
        if (eq == NULL || eq == tags.v[i]) {
            rc = cli_error(ctx, MM_EXIT_USAGE, "bad --tag '%s' (expected K=V)",
                           tags.v[i]);
            goto out;
        }
    }
    if (count_given && !follow) {
        rc = cli_error(ctx, MM_EXIT_USAGE, "--count needs --follow");
        goto out;
    }
    if (count_given && count == 0) {
        rc = cli_error(ctx, MM_EXIT_USAGE, "--count must be at least 1");
        goto out;
    }
    if (follow && (wait_given || timings || wide)) {
        rc = cli_error(ctx, MM_EXIT_USAGE,
                       "--follow does not go with --wait, --timings or "
                       "--wide");
        goto out;
    }
    if (wait_given && wait_n == 0) {
        rc = cli_error(ctx, MM_EXIT_USAGE, "--wait must be at least 1");
        goto out;
    }

    if ((rc = cli_connect(ctx, &c)) != 0) goto out;
    if (follow) {
        rc = members_follow(ctx, c, status, &tags, count, count_given);
        goto out;
    }
    if (timings) {
        mm_timing *t;
        size_t nt;
        int err = mm_client_timings(c, &t, &nt);
        if (err) {
            rc = cli_client_error(ctx, c, err, "timings");
            goto out;
        }
        cli_timings_render(ctx, t, nt, ctx->out);
        mm_client_free_result(c, t);
        rc = MM_EXIT_OK;
        goto out;
    }
    /* --wait N: poll until N are alive, bounded by --timeout. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t0 = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    mm_member_info *m = NULL;
    size_t n = 0;
    for (;;) {
        int err = mm_client_members(c, &m, &n);
        if (err) {
            rc = cli_client_error(ctx, c, err, "members");
            goto out;
        }
        if (!wait_given) break;
        size_t alive = 0;
        for (size_t i = 0; i < n; i++)
            alive += strcmp(m[i].state, "alive") == 0;
        if (alive >= wait_n) break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now =
            (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (now - t0 >= ctx->timeout_ms) {
            mm_client_free_result(c, m);
            rc = cli_error(ctx, MM_EXIT_UNAVAILABLE,
                           "%zu of %u members alive after %" PRIu32 " ms",
                           alive, wait_n, ctx->timeout_ms);
            goto out;
        }
        mm_client_free_result(c, m);
        m = NULL;
        uint64_t left = ctx->timeout_ms - (now - t0);
        struct timespec nap = {0, (long)((left < 100 ? left : 100) * 1000000)};
        nanosleep(&nap, NULL);
    }
    rc = members_show(ctx, m, n, status, &tags, wide);
    mm_client_free_result(c, m);
out:
    cli_client_close(c);
    cli_strv_free(&tags);
    return rc;
}
