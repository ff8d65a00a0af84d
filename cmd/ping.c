/*
 * ping.c — `murmer ping NODE`: round trips from the seed to a member,
 * direct and through up to three other members (as SWIM's indirect probes
 * go), one round per --interval.  Each round is one PING request: the seed
 * times a control frame's answer from the target, and asks each relay to
 * time its own (the relay's path is seed -> relay -> target -> relay ->
 * seed).  Output schema murmer.ping/1; with --follow --json one document
 * per round (JSON Lines).
 */
#include "../cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The seed's bounds (lib/defaults.h MM_PING_RELAYS_MAX, MM_PING_COUNT_MAX). */
#define PING_RELAYS_MAX 3u
#define PING_COUNT_MAX 100u

static volatile sig_atomic_t ping_stop;

static void
ping_sigint(int sig)
{
    (void)sig;
    ping_stop = 1;
}

struct path_stat {
    char via[64];
    unsigned sent, lost;
    int64_t min_us, max_us, sum_us;
    cJSON *samples; /* --json: the rtt of each round, null when lost */
};

static struct path_stat *
path_find(struct path_stat *ps, size_t *nps, size_t cap, const char *via)
{
    for (size_t i = 0; i < *nps; i++)
        if (strcmp(ps[i].via, via) == 0) return &ps[i];
    if (*nps == cap) return NULL;
    struct path_stat *p = &ps[(*nps)++];
    memset(p, 0, sizeof(*p));
    snprintf(p->via, sizeof(p->via), "%s", via);
    p->min_us = -1;
    p->samples = cJSON_CreateArray();
    return p;
}

static void
fmt_ms(char *buf, size_t len, int64_t us)
{
    snprintf(buf, len, "%" PRId64 ".%03" PRId64 " ms", us / 1000, us % 1000);
}

static void
round_text(struct cli_ctx *ctx, const char *target, unsigned seq,
           const mm_ping_path *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char via[80], rtt[32], leg[32];
        if (p[i].via[0])
            snprintf(via, sizeof(via), "via %.64s", p[i].via);
        else
            snprintf(via, sizeof(via), "direct");
        if (p[i].error) {
            fprintf(ctx->out, "%-16s seq=%u  %s%s%s\n", via, seq,
                    cli_color_on(ctx, CLI_COLOR_RED), p[i].error,
                    cli_color_off(ctx));
            continue;
        }
        fmt_ms(rtt, sizeof(rtt), p[i].rtt_us);
        fprintf(ctx->out, "%-16s seq=%u  rtt=%s", via, seq, rtt);
        if (p[i].leg_us >= 0) {
            fmt_ms(leg, sizeof(leg), p[i].leg_us);
            fprintf(ctx->out, "  (%s -> %s %s)", p[i].via, target, leg);
        }
        fputc('\n', ctx->out);
    }
    fflush(ctx->out);
}

static void
round_json(struct cli_ctx *ctx, const char *seed, const char *target,
           unsigned seq, const mm_ping_path *p, size_t n)
{
    cJSON *doc = cli_json_doc("murmer.ping/1");
    if (!doc) return;
    cJSON_AddStringToObject(doc, "seed", seed);
    cJSON_AddStringToObject(doc, "target", target);
    cJSON_AddNumberToObject(doc, "seq", seq);
    cJSON *arr = cJSON_AddArrayToObject(doc, "paths");
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(arr, o);
        if (p[i].via[0])
            cJSON_AddStringToObject(o, "via", p[i].via);
        else
            cJSON_AddNullToObject(o, "via");
        if (p[i].error) {
            cJSON_AddNullToObject(o, "rtt_us");
            cJSON_AddStringToObject(o, "error", p[i].error);
        } else {
            cJSON_AddNumberToObject(o, "rtt_us", (double)p[i].rtt_us);
        }
        if (p[i].leg_us >= 0)
            cJSON_AddNumberToObject(o, "leg_us", (double)p[i].leg_us);
    }
    cli_json_print(doc, ctx->out);
    cJSON_Delete(doc);
}

static void
summary(struct cli_ctx *ctx, const char *seed, const char *target,
        unsigned rounds, struct path_stat *ps, size_t nps)
{
    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.ping/1");
        if (!doc) return;
        cJSON_AddStringToObject(doc, "seed", seed);
        cJSON_AddStringToObject(doc, "target", target);
        cJSON_AddNumberToObject(doc, "rounds", rounds);
        cJSON *arr = cJSON_AddArrayToObject(doc, "paths");
        for (size_t i = 0; arr && i < nps; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o) break;
            cJSON_AddItemToArray(arr, o);
            if (ps[i].via[0])
                cJSON_AddStringToObject(o, "via", ps[i].via);
            else
                cJSON_AddNullToObject(o, "via");
            cJSON_AddNumberToObject(o, "sent", ps[i].sent);
            cJSON_AddNumberToObject(o, "lost", ps[i].lost);
            unsigned got = ps[i].sent - ps[i].lost;
            if (got) {
                cJSON_AddNumberToObject(o, "min_us", (double)ps[i].min_us);
                cJSON_AddNumberToObject(o, "avg_us",
                                        (double)(ps[i].sum_us / got));
                cJSON_AddNumberToObject(o, "max_us", (double)ps[i].max_us);
            } else {
                cJSON_AddNullToObject(o, "min_us");
                cJSON_AddNullToObject(o, "avg_us");
                cJSON_AddNullToObject(o, "max_us");
            }
            cJSON_AddItemToObject(o, "samples", ps[i].samples);
            ps[i].samples = NULL;
        }
        cli_json_print(doc, ctx->out);
        cJSON_Delete(doc);
        return;
    }
    fprintf(ctx->out, "--- %s from %s: %u round%s ---\n", target, seed, rounds,
            rounds == 1 ? "" : "s");
    static const char *const hdr[] = {"PATH", "SENT", "LOST",
                                      "MIN",  "AVG",  "MAX"};
    struct cli_table t;
    if (cli_table_init(&t, 6, hdr) != 0) return;
    for (size_t i = 0; i < nps; i++) {
        char path[80], sent[16], lost[16], mn[32] = "-", av[32] = "-",
                                           mx[32] = "-";
        snprintf(path, sizeof(path), "%s%.64s",
                 ps[i].via[0] ? "via " : "direct", ps[i].via);
        snprintf(sent, sizeof(sent), "%u", ps[i].sent);
        snprintf(lost, sizeof(lost), "%u", ps[i].lost);
        unsigned got = ps[i].sent - ps[i].lost;
        if (got) {
            fmt_ms(mn, sizeof(mn), ps[i].min_us);
            fmt_ms(av, sizeof(av), ps[i].sum_us / got);
            fmt_ms(mx, sizeof(mx), ps[i].max_us);
        }
        const char *row[] = {path, sent, lost, mn, av, mx};
        cli_table_add(&t, row);
    }
    cli_table_print(ctx, &t, ctx->out);
    cli_table_release(&t);
}

int
cmd_ping(int argc, char **argv, struct cli_ctx *ctx)
{
    unsigned count = 5, relays = PING_RELAYS_MAX;
    int count_given = 0, relays_given = 0, follow = 0, interval_given = 0;
    uint32_t interval_ms = 1000;
    char **args;
    int nargs;
    const struct cli_opt opts[] = {
        CLI_OPT_UINT('c', "count", &count, &count_given, "N",
                     "rounds to run, 1 to 100 (default 5)"),
        CLI_OPT_DURATION('i', "interval", &interval_ms, &interval_given,
                         "time between rounds (default 1s)"),
        CLI_OPT_UINT('r', "relays", &relays, &relays_given, "K",
                     "other members that probe the target too, 0 to 3 "
                     "(default 3)"),
        CLI_OPT_BOOL('f', "follow", &follow,
                     "run until interrupted (Ctrl-C), one line per path "
                     "and round"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer ping [options] <node>",
        .summary = "Measure round trips from the seed to a member, direct "
                   "and through other members.",
        .opts = opts,
        .min_args = 1,
        .max_args = 1,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (!*args[0]) return cli_error(ctx, MM_EXIT_USAGE, "empty node name");
    if (count_given && (count == 0 || count > PING_COUNT_MAX))
        return cli_error(ctx, MM_EXIT_USAGE, "--count must be 1 to %u",
                         (unsigned)PING_COUNT_MAX);
    if (count_given && follow)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "--count and --follow do not go together");
    if (relays > PING_RELAYS_MAX)
        return cli_error(ctx, MM_EXIT_USAGE, "--relays must be 0 to %u",
                         (unsigned)PING_RELAYS_MAX);

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) return rc;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ping_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    ping_stop = 0;

    struct path_stat ps[1 + PING_RELAYS_MAX * 4];
    size_t nps = 0;
    unsigned seq = 0, direct_ok = 0;
    char target[128] = "";
    int err = 0;
    while (!ping_stop && (follow || seq < count)) {
        if (seq > 0 && interval_ms) {
            struct timespec nap = {interval_ms / 1000,
                                   (long)(interval_ms % 1000) * 1000000L};
            while (!ping_stop && nanosleep(&nap, &nap) != 0 && errno == EINTR)
                ;
            if (ping_stop) break;
        }
        const char *tname;
        mm_ping_path *p;
        size_t n;
        err = mm_client_ping(c, args[0], relays, &tname, &p, &n);
        if (err) break;
        seq++;
        snprintf(target, sizeof(target), "%s", tname);
        for (size_t i = 0; i < n; i++) {
            struct path_stat *s =
                path_find(ps, &nps, sizeof(ps) / sizeof(ps[0]), p[i].via);
            if (!s) continue;
            s->sent++;
            if (p[i].error) {
                s->lost++;
                if (s->samples)
                    cJSON_AddItemToArray(s->samples, cJSON_CreateNull());
                continue;
            }
            if (!p[i].via[0]) direct_ok++;
            if (s->min_us < 0 || p[i].rtt_us < s->min_us)
                s->min_us = p[i].rtt_us;
            if (p[i].rtt_us > s->max_us) s->max_us = p[i].rtt_us;
            s->sum_us += p[i].rtt_us;
            if (s->samples)
                cJSON_AddItemToArray(s->samples,
                                     cJSON_CreateNumber((double)p[i].rtt_us));
        }
        if (!ctx->json)
            round_text(ctx, target, seq, p, n);
        else if (follow)
            round_json(ctx, mm_client_seed_name(c), target, seq, p, n);
        mm_client_free_result(c, p);
    }
    sigaction(SIGINT, &old, NULL);
    if (err && seq == 0) {
        rc = cli_client_error(ctx, c, err, "ping");
    } else {
        if (!(ctx->json && follow))
            summary(ctx, mm_client_seed_name(c), target, seq, ps, nps);
        if (err)
            rc = cli_client_error(ctx, c, err, "ping");
        else if (direct_ok == 0)
            rc = cli_error(ctx, MM_EXIT_UNAVAILABLE,
                           "%s did not answer in %u round%s", target, seq,
                           seq == 1 ? "" : "s");
        else
            rc = MM_EXIT_OK;
    }
    for (size_t i = 0; i < nps; i++)
        cJSON_Delete(ps[i].samples);
    mm_client_close(c);
    return rc;
}
