/* output.c — text tables, colour on terminals only, compact JSON. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *
cli_color_on(const struct cli_ctx *ctx, int c)
{
    if (!ctx->color) return "";
    switch (c) {
    case CLI_COLOR_BOLD:
        return "\033[1m";
    case CLI_COLOR_DIM:
        return "\033[2m";
    case CLI_COLOR_RED:
        return "\033[31m";
    case CLI_COLOR_GREEN:
        return "\033[32m";
    case CLI_COLOR_YELLOW:
        return "\033[33m";
    default:
        return "";
    }
}

const char *
cli_color_off(const struct cli_ctx *ctx)
{
    return ctx->color ? "\033[0m" : "";
}

int
cli_table_init(struct cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    if (cli_table_add(t, headers) != 0) return -1;
    for (size_t c = 0; c < ncols; c++)
        t->colors[c] = CLI_COLOR_BOLD;
    return 0;
}

int
cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
        if (nc == NULL) return -1;
        t->cells = nc;
        int *ncol = realloc(t->colors, cap * t->ncols * sizeof(*ncol));
        if (ncol == NULL) return -1;
        t->colors = ncol;
        t->cap = cap;
    }
    size_t base = t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] ? cells[c] : "-";
        t->cells[base + c] = strdup(s);
        t->colors[base + c] = CLI_COLOR_NONE;
        if (t->cells[base + c] == NULL) {
            while (c-- > 0)
                free(t->cells[base + c]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

void
cli_table_color(struct cli_table *t, size_t col, int color)
{
    if (t->nrows > 0 && col < t->ncols)
        t->colors[(t->nrows - 1) * t->ncols + col] = color;
}

void
cli_table_print(const struct cli_ctx *ctx, const struct cli_table *t, FILE *f)
{
    size_t width[32] = {0};
    size_t ncols = t->ncols < 32 ? t->ncols : 32;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > width[c]) width[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            int color = t->colors[r * t->ncols + c];
            fputs(cli_color_on(ctx, color), f);
            fputs(s, f);
            if (color) fputs(cli_color_off(ctx), f);
            if (c + 1 < ncols)
                fprintf(f, "%*s", (int)(width[c] - strlen(s) + 2), "");
        }
        fputc('\n', f);
    }
}

void
cli_table_release(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->colors);
    memset(t, 0, sizeof(*t));
}

cJSON *
cli_json_doc(const char *schema)
{
    cJSON *doc = cJSON_CreateObject();
    if (doc && cJSON_AddStringToObject(doc, "schema", schema) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

int
cli_json_print(cJSON *doc, FILE *f)
{
    char *s = cJSON_PrintUnformatted(doc);
    if (s == NULL) return -1;
    fputs(s, f);
    fputc('\n', f);
    cJSON_free(s);
    return fflush(f) == 0 ? 0 : -1;
}

cJSON *
cli_json_add_u64(cJSON *obj, const char *name, uint64_t v)
{
    /* Exact digits: a double would round values above 2^53 (HLCs). */
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, name, buf);
}

cJSON *
cli_json_embed(const char *json, size_t len)
{
    if (json == NULL || len == 0) return cJSON_CreateNull();
    cJSON *v = cJSON_ParseWithLength(json, len);
    if (v != NULL) return v;
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, json, len);
    copy[len] = '\0';
    v = cJSON_CreateString(copy);
    free(copy);
    return v;
}
