/*
 * config.c — the start command's JSON config file (see config.h).
 *
 * The file is read whole (at most CLI_CONFIG_MAX_BYTES, one byte more
 * tells that it is larger), parsed with cJSON, then checked key by key
 * against the rows the caller gives.  Nothing is stored before the whole
 * object is known to be good, so a bad file leaves the options as the
 * command line and the environment made them.
 */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_KEY_MAX 64 /* bytes of a key name; longer ones are unknown */
#define CONFIG_KEYS_MAX 64

void
cli_config_key_name(const char *longopt, char *out, size_t len)
{
    size_t i = 0;
    if (len == 0) return;
    for (; longopt[i] && i + 1 < len; i++)
        out[i] = longopt[i] == '-' ? '_' : longopt[i];
    out[i] = '\0';
}

/* Reads |path| into a NUL-terminated buffer (owned by the caller). */
static int
config_read(struct cli_ctx *ctx, const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_error(ctx, MM_EXIT_INPUT, "cannot read %s: %s", path,
                         strerror(errno));
    char *buf = malloc(CLI_CONFIG_MAX_BYTES + 2);
    if (buf == NULL) {
        close(fd);
        return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
    }
    size_t len = 0;
    while (len <= CLI_CONFIG_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, CLI_CONFIG_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return cli_error(ctx, MM_EXIT_INPUT, "cannot read %s: %s", path,
                             strerror(e));
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (len > CLI_CONFIG_MAX_BYTES) {
        free(buf);
        return cli_error(ctx, MM_EXIT_INPUT,
                         "%s: larger than %u bytes: not a config file", path,
                         CLI_CONFIG_MAX_BYTES);
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return cli_error(ctx, MM_EXIT_INPUT, "%s: a NUL byte: not JSON", path);
    }
    *out = buf;
    return 0;
}

static int
config_bad_type(struct cli_ctx *ctx, const char *path, const char *key,
                const char *want)
{
    return cli_error(ctx, MM_EXIT_INPUT, "%s: key '%s': expected %s", path, key,
                     want);
}

/* What the JSON of |o|'s kind must be, for the messages. */
static const char *
config_want(const struct cli_config_key *k)
{
    switch (k->opt->kind) {
    case CLI_OPT_KIND_STRING:
        return "a string";
    case CLI_OPT_KIND_LIST:
        return k->kv_object ? "an object of strings (or an array of "
                              "\"K=V\" strings)"
                            : "an array of strings";
    case CLI_OPT_KIND_UINT:
        return "a whole number";
    case CLI_OPT_KIND_SET:
        return "true or false";
    case CLI_OPT_KIND_DURATION:
        return "a duration string such as \"5s\"";
    default:
        return "nothing (not a config key)";
    }
}

/* 1 when |v| is JSON of the kind |k| takes. */
static int
config_type_ok(const struct cli_config_key *k, const cJSON *v)
{
    const cJSON *e;
    uint32_t ms;
    switch (k->opt->kind) {
    case CLI_OPT_KIND_STRING:
        return cJSON_IsString(v);
    case CLI_OPT_KIND_LIST:
        if (!cJSON_IsArray(v) && !(k->kv_object && cJSON_IsObject(v))) return 0;
        cJSON_ArrayForEach(e, v) if (!cJSON_IsString(e)) return 0;
        return 1;
    case CLI_OPT_KIND_UINT:
        return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
               v->valuedouble <= (double)UINT_MAX &&
               (double)(unsigned long long)v->valuedouble == v->valuedouble;
    case CLI_OPT_KIND_SET:
        return cJSON_IsBool(v);
    case CLI_OPT_KIND_DURATION:
        return cJSON_IsString(v) &&
               cli_parse_duration(v->valuestring, &ms) == 0;
    default:
        return 0;
    }
}

/* Stores |v| (checked) where |k|'s row points. */
static int
config_store(struct cli_ctx *ctx, struct cli_config_key *k, const cJSON *v)
{
    const struct cli_opt *o = k->opt;
    const cJSON *e;
    switch (o->kind) {
    case CLI_OPT_KIND_STRING:
        *(const char **)o->ptr = v->valuestring;
        break;
    case CLI_OPT_KIND_LIST:
        cJSON_ArrayForEach(e, v)
        {
            int rc;
            if (cJSON_IsObject(v)) {
                size_t l = strlen(e->string) + strlen(e->valuestring) + 2;
                char *kv = malloc(l);
                if (kv == NULL)
                    return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
                snprintf(kv, l, "%s=%s", e->string, e->valuestring);
                rc = cli_strv_push(o->ptr, kv);
                free(kv);
            } else {
                rc = cli_strv_push(o->ptr, e->valuestring);
            }
            if (rc != 0) return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
        }
        break;
    case CLI_OPT_KIND_UINT:
        *(unsigned *)o->ptr = (unsigned)v->valuedouble;
        break;
    case CLI_OPT_KIND_SET:
        *(int *)o->ptr = cJSON_IsTrue(v) ? o->value : !o->value;
        break;
    case CLI_OPT_KIND_DURATION:
        cli_parse_duration(v->valuestring, o->ptr);
        break;
    default:
        break;
    }
    if (o->given) *o->given = 1;
    k->from_file = 1;
    return 0;
}

static int
config_env_set(const struct cli_config_key *k)
{
    for (size_t i = 0; i < 3 && k->env[i]; i++) {
        const char *e = getenv(k->env[i]);
        if (e && *e) return 1;
    }
    return 0;
}

/* "line L, column C" of |at| in |text|. */
static void
config_where(const char *text, const char *at, char *out, size_t len)
{
    unsigned line = 1, col = 1;
    for (const char *p = text; at && p < at && *p; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(out, len, "line %u, column %u", line, col);
}

int
cli_config_apply(struct cli_ctx *ctx, const char *path,
                 struct cli_config_key *keys, size_t nkeys, cJSON **doc)
{
    *doc = NULL;
    if (nkeys > CONFIG_KEYS_MAX) nkeys = CONFIG_KEYS_MAX;
    char *text = NULL;
    int rc = config_read(ctx, path, &text);
    if (rc != 0) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (root == NULL) {
        char where[64];
        config_where(text, end, where, sizeof(where));
        free(text);
        return cli_error(ctx, MM_EXIT_INPUT, "%s: malformed JSON at %s", path,
                         where);
    }
    free(text);
    *doc = root;
    if (!cJSON_IsObject(root))
        return cli_error(ctx, MM_EXIT_INPUT,
                         "%s: expected a JSON object of options", path);

    char names[CONFIG_KEYS_MAX][CONFIG_KEY_MAX];
    const char *cands[CONFIG_KEYS_MAX];
    for (size_t i = 0; i < nkeys; i++) {
        cli_config_key_name(keys[i].opt->longopt, names[i], CONFIG_KEY_MAX);
        cands[i] = names[i];
    }
    /* First every key and type, then the stores. */
    const cJSON *v;
    size_t count = 0;
    cJSON_ArrayForEach(v, root)
    {
        size_t i = 0;
        while (i < nkeys && strcmp(v->string, names[i]) != 0)
            i++;
        if (i == nkeys) {
            const char *sug = cli_suggest(v->string, cands, nkeys);
            if (sug)
                return cli_error(ctx, MM_EXIT_INPUT,
                                 "%s: unknown key '%s' (did you mean '%s'?)",
                                 path, v->string, sug);
            return cli_error(ctx, MM_EXIT_INPUT, "%s: unknown key '%s'", path,
                             v->string);
        }
        /* Every key before this one is known, so this loop is short. */
        const cJSON *p = root->child;
        for (size_t j = 0; j < count; j++, p = p->next)
            if (strcmp(p->string, v->string) == 0)
                return cli_error(ctx, MM_EXIT_INPUT, "%s: key '%s' given twice",
                                 path, v->string);
        if (!config_type_ok(&keys[i], v))
            return config_bad_type(ctx, path, v->string, config_want(&keys[i]));
        count++;
    }
    cJSON_ArrayForEach(v, root)
    {
        size_t i = 0;
        while (strcmp(v->string, names[i]) != 0)
            i++;
        if (keys[i].given || config_env_set(&keys[i])) continue;
        if ((rc = config_store(ctx, &keys[i], v)) != 0) return rc;
    }
    return 0;
}
