/*
 * connect.h — the client-session bootstrap every connecting command
 * shares: seeds, cluster key and timeout from the context, one connect,
 * one diagnostic line when it fails.
 *
 * Static inline so that the unit test that compiles the cmd/ files
 * straight in (tests/unit/test_cli_options.c) needs nothing more.
 */
#ifndef MM_CLI_CONNECT_H
#define MM_CLI_CONNECT_H

#include "murmer.h"

struct cli_ctx;

/*
 * Prints "murmer <cmd>: <text>" for |err|, where the text is the seed's
 * (or the session's) explanation when there is one, else |what| followed
 * by mm_strerror(err).  Returns the exit code of |err| (1 for errors
 * outside the table).
 */
static inline int
cli_client_error(struct cli_ctx *ctx, const mm_client *c, int err,
                 const char *what)
{
    /* Interrupted: the user knows; the shell's convention, no line. */
    if (cli_interrupted()) return 128 + cli_interrupted();
    const char *text = mm_client_error_text(c);
    if (text && *text) {
        if (what && *what)
            cli_error(ctx, 0, "%s: %s", what, text);
        else
            cli_error(ctx, 0, "%s", text);
    } else if (what && *what) {
        cli_error(ctx, 0, "%s: %s", what, mm_strerror(err));
    } else {
        cli_error(ctx, 0, "%s", mm_strerror(err));
    }
    int code = mm_err_exit_code(err);
    return code ? code : MM_EXIT_ACTOR;
}

/*
 * Ends a command's session: closes |c| and returns 0 for |err| 0, else the
 * exit code of |err| after its line (cli_client_error).
 */
static inline void
cli_client_close(mm_client *c)
{
    cli_interrupt_disarm();
    mm_client_close(c);
}

static inline int
cli_client_end(struct cli_ctx *ctx, mm_client *c, int err)
{
    int rc = err ? cli_client_error(ctx, c, err, NULL) : MM_EXIT_OK;
    cli_client_close(c);
    return rc;
}

#ifdef MM_CLI_FRONT
/*
 * The front binary (cli/front/main.c): goes on over the node's local
 * socket (--data-dir, MURMER_DATA_DIR, or the default data dir's socket
 * when there is one), or hands the whole command line to the full CLI
 * (--join, MURMER_JOIN, no local node) and does not return.
 */
void cli_front_route(struct cli_ctx *ctx);
#endif

/*
 * Connects to a seed (--join / MURMER_JOIN, else 127.0.0.1:7420) with the
 * cluster key of --cluster-key or the environment.  0 with |*out|, or the
 * exit code after printing the reason.
 */
static inline int
cli_connect(struct cli_ctx *ctx, mm_client **out)
{
#ifdef MM_CLI_FRONT
    cli_front_route(ctx);
#endif
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = (const char *const *)ctx->join.v;
    cfg.nseeds = ctx->join.n;
    cfg.cluster_key_file = ctx->cluster_key_file;
    cfg.timeout_ms = ctx->timeout_ms;
    int rc = mm_client_connect(out, &cfg);
    if (rc == 0) {
        cli_interrupt_arm(*out);
        return 0;
    }
    *out = NULL;
    return cli_client_error(ctx, NULL, rc, NULL);
}

#endif /* MM_CLI_CONNECT_H */
