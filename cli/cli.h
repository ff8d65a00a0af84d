/*
 * cli.h — the murmer command-line program's shared machinery.
 *
 * cli/ holds what every command shares: the entry point and command table
 * (main.c), option tables turned into getopt_long plus generated --help and
 * the hidden completion helpers (options.c), and text/JSON rendering
 * (output.c).  cmd/ holds exactly one file per subcommand, like git's
 * builtin/.  Both reach libmurmer only through murmer.h.
 *
 * Adding a command:
 *   1. cmd/<name>.c with `int cmd_<name>(int argc, char **argv,
 *      struct cli_ctx *ctx)`; its option table is a local array of
 *      CLI_OPT_* rows passed to cli_parse() through a struct cli_spec.
 *   2. One row in commands[] in cli/main.c (sorted by name).
 *   3. A prototype below.
 *   4. man/murmer-<name>.1.scd (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT
 *      STATUS, ENVIRONMENT, EXAMPLES, SEE ALSO, and the JSON schema of its
 *      output) and a line in man/murmer.1.scd's COMMANDS.
 *   5. tests/bats/NN-<name>.bats.  00-cli.bats already checks that every
 *      option printed by `murmer <name> --list-options` appears in the man
 *      page and that the command is known to the three completion files
 *      (they call the hidden helpers, so they only need the name in their
 *      fallback lists).
 */
#ifndef MM_CLI_H
#define MM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "murmer.h"

/* cli_parse() returns this when the command should go on. */
#define CLI_CONTINUE (-1)

/* struct cli_cmd flags. */
#define CLI_HIDDEN 0x1 /* not listed by --help or --list-commands */

/* A growable list of owned strings (repeatable options, seeds). */
struct cli_strv {
    char **v; /* owned, each element owned */
    size_t n;
    size_t cap;
};

struct cli_opt; /* options.h */

#define CLI_NGLOBAL 12

/*
 * The state every command sees.  Global options land here, whether they
 * were given before or after the command name.
 */
struct cli_ctx {
    const char *cmd;              /* "lookup"; NULL before dispatch */
    struct cli_strv join;         /* seeds: --join, else MURMER_JOIN */
    int join_given;               /* --join was on the command line */
    const char *cluster_key_file; /* borrowed from argv or environ */
    const char *data_dir; /* --data-dir: the local socket's node; borrowed */
    uint32_t timeout_ms;  /* --timeout; default 5000 */
    int timeout_given;
    int json;     /* --json */
    int verbose;  /* number of -v */
    int quiet;    /* number of -q */
    int no_color; /* --no-color */
    int color;    /* resolved: colour escapes on stdout */
    int stdout_tty;
    FILE *out; /* borrowed; stdout (tests substitute) */
    FILE *err; /* borrowed; stderr */
    /* Messages go through mm_log_line instead of |err|: set by `start`
     * once the node exists, so that no thread of a running node writes
     * to stderr with a write that can block. */
    int via_log;
    struct cli_opt *gopts; /* owned: the global option table */
};

typedef int (*cli_cmd_fn)(int argc, char **argv, struct cli_ctx *ctx);

struct cli_cmd {
    const char *name;
    cli_cmd_fn fn;
    unsigned flags;
    const char *summary; /* one line for `murmer --help` */
};

/* main.c: the command table. */
const struct cli_cmd *cli_find_cmd(const char *name);
const struct cli_cmd *cli_commands(size_t *n);
/* Prints `murmer --help` to |f|. */
void cli_main_usage(struct cli_ctx *ctx, FILE *f);

/*
 * Sets up |ctx| with defaults (timeout 5 s, stdout/stderr) and its global
 * option table; cli_ctx_release() frees what it owns.
 */
int cli_ctx_init(struct cli_ctx *ctx);
void cli_ctx_release(struct cli_ctx *ctx);
/*
 * Ends a command run with exit code |rc|: flushes stdout (a failed write,
 * but for a closed pipe, turns a 0 into MM_EXIT_ACTOR with one line), then
 * cli_ctx_release().  The exit code.
 */
int cli_ctx_finish(struct cli_ctx *ctx, int rc);

/*
 * Prints "murmer <cmd>: <message>" (one line) to stderr and returns
 * |code|, so that commands can `return cli_error(ctx, MM_EXIT_USAGE, ...)`.
 */
int cli_error(struct cli_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, appending ": <mm_strerror(err)>"; returns mm_err_exit_code(err). */
int cli_fail(struct cli_ctx *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A warning line on stderr (suppressed by -q).  With |via_log|, all three
 * go through the library's non-blocking log sink (same text). */
void cli_warn(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int cli_strv_push(struct cli_strv *sv, const char *s);
void cli_strv_free(struct cli_strv *sv);

/* The commands, one per cmd/<name>.c. */
int cmd_doctor(int argc, char **argv, struct cli_ctx *ctx);
int cmd_force_leave(int argc, char **argv, struct cli_ctx *ctx);
int cmd_help(int argc, char **argv, struct cli_ctx *ctx);
int cmd_keygen(int argc, char **argv, struct cli_ctx *ctx);
int cmd_keys(int argc, char **argv, struct cli_ctx *ctx);
int cmd_lookup(int argc, char **argv, struct cli_ctx *ctx);
int cmd_members(int argc, char **argv, struct cli_ctx *ctx);
int cmd_oplog(int argc, char **argv, struct cli_ctx *ctx);
int cmd_partitions(int argc, char **argv, struct cli_ctx *ctx);
int cmd_ping(int argc, char **argv, struct cli_ctx *ctx);
int cmd_send(int argc, char **argv, struct cli_ctx *ctx);
int cmd_spawn(int argc, char **argv, struct cli_ctx *ctx);
int cmd_start(int argc, char **argv, struct cli_ctx *ctx);
int cmd_stop(int argc, char **argv, struct cli_ctx *ctx);
int cmd_top(int argc, char **argv, struct cli_ctx *ctx);
int cmd_watch(int argc, char **argv, struct cli_ctx *ctx);

/*
 * The renderers, one per client command, in its cmd/<name>.c: each prints
 * what the mm_client_* call returned as a text table (people) or one JSON
 * document (--json, programs).  They are unit-tested in
 * tests/unit/test_cli_options.c.
 */
/* Whether |m| passes --status and every --tag k=v filter. */
int cli_member_match(const mm_member_info *m, const char *status,
                     const char *const *tags, size_t ntags);
void cli_members_render(struct cli_ctx *ctx, const mm_member_info *m, size_t n,
                        int wide, FILE *f);
void cli_timings_render(struct cli_ctx *ctx, const mm_timing *t, size_t n,
                        FILE *f);
void cli_lookup_render(struct cli_ctx *ctx, const mm_actor_info *a, size_t n,
                       FILE *f);
/*
 * Prints the replies of `send` (one target) or `send --key` (|key| not
 * NULL: one row per target then "delivered k/N").  Returns the exit code:
 * 0 when every target replied ok, else the worst error's (1 for a handler
 * error or partial delivery).
 */
int cli_send_render(struct cli_ctx *ctx, const char *key, const char *type,
                    const mm_send_result *r, size_t n, FILE *f);
/* One line (text) or one JSON Lines document, flushed. */
void cli_watch_render(struct cli_ctx *ctx, const mm_listing_event *ev, FILE *f);
void cli_oplog_render(struct cli_ctx *ctx, const mm_oplog_origin *o, size_t n,
                      FILE *f);
/* oplog --follow: one new op, one line or one JSON Lines document. */
void cli_oplog_render_op(struct cli_ctx *ctx, const char *origin,
                         uint64_t generation, const mm_oplog_op *op, FILE *f);
/* force-leave: the member that was removed and its state before. */
void cli_force_leave_render(struct cli_ctx *ctx, const char *name,
                            const char *id, const char *was, FILE *f);

/* spawn, stop: "spawned|stopped LABEL on NODE (ENDPOINT)". */
void cli_spawn_render(struct cli_ctx *ctx, const char *schema, const char *verb,
                      const char *label, const char *node,
                      const mm_endpoint *ep, FILE *f);

/* SIGINT/SIGTERM while |c| is open interrupt its blocked call
 * (cli/interrupt.c); disarm before closing it.  cli_interrupted() is the
 * signal that came (0 for none). */
void cli_interrupt_arm(mm_client *c);
void cli_interrupt_disarm(void);
int cli_interrupted(void);
/* keys: the step's tally; returns 1 when not every member applied it. */
int cli_keys_render(struct cli_ctx *ctx, const mm_keys_result *r, FILE *f);

#include "options.h"
#include "output.h"
#include "connect.h"

#endif /* MM_CLI_H */
