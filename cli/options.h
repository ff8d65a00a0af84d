/*
 * options.h — option tables.
 *
 * Each command declares one table of CLI_OPT_* rows.  That table is the
 * single source of getopt_long's long options, the generated --help text,
 * the hidden `--list-options` helper the completions call, and the list
 * that 00-cli.bats checks against the man pages.  The global options
 * (--join, --cluster-key, --timeout, --json, -v, -q, --no-color) are
 * merged into every command's table, so they work before or after the
 * command name.
 */
#ifndef MM_CLI_OPTIONS_H
#define MM_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cli_ctx;

enum cli_opt_kind {
    CLI_OPT_KIND_END = 0,
    CLI_OPT_KIND_SET,      /* int *ptr = value */
    CLI_OPT_KIND_COUNT,    /* int *ptr += 1 */
    CLI_OPT_KIND_STRING,   /* const char **ptr = optarg (borrowed) */
    CLI_OPT_KIND_LIST,     /* struct cli_strv *ptr, repeatable */
    CLI_OPT_KIND_DURATION, /* uint32_t *ptr = milliseconds */
    CLI_OPT_KIND_UINT      /* unsigned *ptr */
};

/* CLI_OPT_F_* flags. */
#define CLI_OPT_F_GIVEN_INT 0x1 /* |given| points to an int set to 1 */

struct cli_opt {
    int kind;            /* enum cli_opt_kind */
    int shortopt;        /* 0 = none */
    const char *longopt; /* without the dashes; never NULL but for END */
    void *ptr;           /* borrowed: where the value goes */
    int value;           /* CLI_OPT_KIND_SET */
    const char *argname; /* "DURATION"; NULL for flags */
    const char *help;    /* one line */
    int *given;          /* may be NULL: set to 1 when the option is seen */
};

#define CLI_OPT_BOOL(s, l, p, h)                                               \
    {                                                                          \
        CLI_OPT_KIND_SET, (s), (l), (p), 1, NULL, (h), NULL                    \
    }
#define CLI_OPT_SET(s, l, p, v, h)                                             \
    {                                                                          \
        CLI_OPT_KIND_SET, (s), (l), (p), (v), NULL, (h), NULL                  \
    }
#define CLI_OPT_COUNT(s, l, p, h)                                              \
    {                                                                          \
        CLI_OPT_KIND_COUNT, (s), (l), (p), 0, NULL, (h), NULL                  \
    }
#define CLI_OPT_STRING(s, l, p, a, h)                                          \
    {                                                                          \
        CLI_OPT_KIND_STRING, (s), (l), (p), 0, (a), (h), NULL                  \
    }
#define CLI_OPT_LIST(s, l, p, a, h)                                            \
    {                                                                          \
        CLI_OPT_KIND_LIST, (s), (l), (p), 0, (a), (h), NULL                    \
    }
#define CLI_OPT_DURATION(s, l, p, g, h)                                        \
    {                                                                          \
        CLI_OPT_KIND_DURATION, (s), (l), (p), 0, "DURATION", (h), (g)          \
    }
#define CLI_OPT_UINT(s, l, p, g, a, h)                                         \
    {                                                                          \
        CLI_OPT_KIND_UINT, (s), (l), (p), 0, (a), (h), (g)                     \
    }
#define CLI_OPT_END                                                            \
    {                                                                          \
        CLI_OPT_KIND_END, 0, NULL, NULL, 0, NULL, NULL, NULL                   \
    }

/* What a command tells cli_parse() about itself. */
struct cli_spec {
    const char *usage;          /* "murmer lookup [options] <label>" */
    const char *summary;        /* one sentence for --help */
    const struct cli_opt *opts; /* ends with CLI_OPT_END */
    int min_args;               /* positional arguments */
    int max_args;               /* -1 = any number */
};

/*
 * Parses |argv| (argv[0] is the command name) against |spec|'s table plus
 * the global options, then applies the environment defaults (MURMER_JOIN,
 * MURMER_CLUSTER_KEY_FILE, MURMER_LOG, NO_COLOR) and the log level.
 * Positional arguments are returned in |*args| / |*nargs| (pointers into
 * |argv|, which getopt may have permuted).
 *
 * Returns CLI_CONTINUE when the command should go on, else the exit code
 * the command must return: 0 after --help or --list-options, MM_EXIT_USAGE
 * after a usage error (already reported as one line on stderr).
 */
int cli_parse(struct cli_ctx *ctx, const struct cli_spec *spec, int argc,
              char **argv, char ***args, int *nargs);

/*
 * Parses the global options in front of the command name.  |*idx| gets
 * the index of the command name in |argv| (argc when there is none).
 * Returns CLI_CONTINUE or an exit code (--version, --help, the hidden
 * --list-commands / --list-options, or a usage error).
 */
int cli_parse_global(struct cli_ctx *ctx, int argc, char **argv, int *idx);

/* Applies the environment defaults and the log level (cli_parse does). */
void cli_apply_env(struct cli_ctx *ctx);
/* "debug", "info", "notice", "warn", "error" (any case) to an MM_LOG_*.
 * 0 or -1. */
int cli_log_level_from_name(const char *s, int *level);

/*
 * Parses "500ms", "5s", "2m", "1h" (a whole number and a unit; "0" alone
 * is allowed) into |*ms|.  0 or -1 on a malformed or too large value.
 */
int cli_parse_duration(const char *s, uint32_t *ms);

/* Parses a whole decimal number <= |max|.  0 or -1. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

/*
 * The candidate closest to |word| by edit distance (transpositions count
 * as one edit), when it is close enough to be a likely typo; else NULL.
 */
const char *cli_suggest(const char *word, const char *const *cands,
                        size_t ncands);
/* Optimal-string-alignment distance between |a| and |b|. */
size_t cli_edit_distance(const char *a, const char *b);

/* Prints the generated help of |spec| to |f|. */
void cli_print_help(struct cli_ctx *ctx, const struct cli_spec *spec, FILE *f);
/*
 * Prints one aligned "  -w, --wait DURATION  help" block for the options
 * of |a| then |b| (either may be NULL); rows without help are hidden.
 */
void cli_print_options(const struct cli_opt *a, const struct cli_opt *b,
                       FILE *f);
/* Prints the option forms of |opts| one per line (--list-options). */
void cli_print_option_list(const struct cli_opt *opts, FILE *f);

#endif /* MM_CLI_OPTIONS_H */
