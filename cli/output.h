/*
 * output.h — text tables for people, JSON for programs.
 *
 * Text goes to a table whose columns are sized to their content; colour
 * escapes appear only when stdout is a terminal and neither --no-color nor
 * NO_COLOR is set (cli_apply_env() decides, ctx->color says).  --json
 * output is one compact JSON document per result, or one per line for
 * streams (JSON Lines, flushed after each event).  Every document carries
 * "schema": "murmer.<command>/<version>".
 */
#ifndef MM_CLI_OUTPUT_H
#define MM_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

struct cli_ctx;

enum cli_color {
    CLI_COLOR_NONE = 0,
    CLI_COLOR_BOLD,
    CLI_COLOR_DIM,
    CLI_COLOR_RED,
    CLI_COLOR_GREEN,
    CLI_COLOR_YELLOW
};

/* The escape for |c| when colour is on, else "". */
const char *cli_color_on(const struct cli_ctx *ctx, int c);
const char *cli_color_off(const struct cli_ctx *ctx);

/* A table of text cells; every string is copied. */
struct cli_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;
    char **cells; /* owned: nrows * ncols strings */
    int *colors;  /* owned: one enum cli_color per cell */
};

/* Starts a table with the header cells |headers| (|ncols| of them). */
int cli_table_init(struct cli_table *t, size_t ncols,
                   const char *const *headers);
/* Adds a row of |t->ncols| cells (NULL cells print as "-"). */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Colours cell |col| of the last row. */
void cli_table_color(struct cli_table *t, size_t col, int color);
/* Prints with two spaces between columns; the last column is not padded. */
void cli_table_print(const struct cli_ctx *ctx, const struct cli_table *t,
                     FILE *f);
void cli_table_release(struct cli_table *t);

/* A new object {"schema": |schema|}; NULL when out of memory. */
cJSON *cli_json_doc(const char *schema);
/*
 * Prints |doc| compactly on one line and flushes |f| (so it serves JSON
 * Lines streams too).  Does not free |doc|.  0 or -1.
 */
int cli_json_print(cJSON *doc, FILE *f);
/* Adds a u64 as a JSON number, printed exactly (readers that parse
 * numbers as doubles lose precision above 2^53; documented). */
cJSON *cli_json_add_u64(cJSON *obj, const char *name, uint64_t v);
/*
 * Parses |json| (a reply payload) into a cJSON value to embed in a
 * document; invalid text becomes a JSON string holding it.
 */
cJSON *cli_json_embed(const char *json, size_t len);

#endif /* MM_CLI_OUTPUT_H */
