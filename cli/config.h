/*
 * config.h — `murmer start --config FILE`: a JSON object whose keys are
 * the command's long options with "_" for "-".
 *
 * The file is read through the command's own option table: each key names
 * a row, and the row's kind says what JSON the key takes (a string for
 * STRING, an array of strings for LIST, a whole number for UINT, true or
 * false for a flag, a duration string for DURATION).  An option added to
 * the table is therefore a key of the file with no code here.
 *
 * Precedence, highest first: the flag on the command line, its
 * environment variable, the file, the default.  The caller says for each
 * key whether its flag was given and which variables outrank the file.
 */
#ifndef MM_CLI_CONFIG_H
#define MM_CLI_CONFIG_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct cli_ctx;
struct cli_opt;

/* A larger file is refused (exit 6) before it is parsed. */
#define CLI_CONFIG_MAX_BYTES (1024u * 1024u)

/* One key the file may hold. */
struct cli_config_key {
    const struct cli_opt *opt; /* borrowed: kind, ptr and long name */
    const char *env[3];        /* NULL-terminated: set, not empty, outranks */
    int given;                 /* its flag is on the command line */
    int kv_object;             /* a LIST that also takes {"K": "V", ...} */
    int from_file;             /* out: the file set it */
};

/* The key of a long option: "mailbox-bytes" -> "mailbox_bytes". */
void cli_config_key_name(const char *longopt, char *out, size_t len);

/*
 * Reads the JSON object in |path| and stores each key's value where its
 * row points, unless the flag was given or one of its variables is set.
 * Strings are borrowed from |*doc|, which the caller frees with
 * cJSON_Delete once the values are no longer used (also on failure).
 * Returns 0, or MM_EXIT_INPUT after one line on stderr naming the file and
 * the key: unreadable, larger than CLI_CONFIG_MAX_BYTES, malformed JSON
 * (line and column), not an object, an unknown key (with a suggestion), a
 * key given twice, a value of the wrong type.
 */
int cli_config_apply(struct cli_ctx *ctx, const char *path,
                     struct cli_config_key *keys, size_t nkeys, cJSON **doc);

#endif /* MM_CLI_CONFIG_H */
