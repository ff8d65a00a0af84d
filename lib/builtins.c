/*
 * builtins.c — the actor types every node knows: echo, counter, kv and
 * greeter (docs/design.md, Built-in actor types), so that a bare `murmer start`
 * is useful from the CLI.
 *
 * They speak JSON in and JSON out.  A payload that is not JSON (or is
 * malformed) is answered with MM_EDECODE and a message naming the handler
 * and, for parse errors, the byte offset.  A top-level JSON `null` counts as
 * "no payload".  Unknown message types never reach these handlers: the
 * runtime answers them with MM_EUNKNOWN_MESSAGE.
 *
 * Integers travel through cJSON as doubles, so counter values are kept
 * within +-(2^53 - 1), the range JSON numbers represent exactly.
 */
#include <math.h>
#include <stdio.h>

#include <cJSON.h>

#include "common.h"

/*
 * MM_ACTOR_TYPE(ident, ...) defines a global `ident_type` whose type name is
 * "ident".  The defines below rename those globals (token pasting produces
 * `echo_type`, which is then macro-expanded) so that the static library
 * exports mm__builtins_* rather than names a program could also define.
 */
#define echo_type mm__builtins_echo_type
#define counter_type mm__builtins_counter_type
#define kv_type mm__builtins_kv_type
#define greeter_type mm__builtins_greeter_type

extern const mm_actor_type echo_type, counter_type, kv_type, greeter_type;

#define BUILTIN_MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1 */

/*
 * Handlers reply and then return 0 whatever the reply call returned (a tell
 * gets no reply, which is not a crash): `return reply_error(...)`.
 */
#define reply_error(...) (mm_reply_error(__VA_ARGS__), 0)
#define reply_json(ctx, json) (mm_reply_json((ctx), (json)), 0)
#define reply_jsonf(...) (mm_reply_jsonf(__VA_ARGS__), 0)
#define reply_string(ctx, s) (builtin_reply_string((ctx), (s)), 0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Reads |msg|'s payload as JSON for handler |what|.  Returns 1 with |*out|
 * set (NULL when there is no payload or it is `null`), or 0 after replying
 * MM_EDECODE.
 */
static int
builtin_json(mm_ctx *ctx, mm_msg *msg, const char *what, const cJSON **out)
{
    size_t len = 0, off = 0;
    const cJSON *j;

    *out = NULL;
    switch (mm_msg_content(msg)) {
    case MM_CONTENT_NONE:
        return 1;
    case MM_CONTENT_JSON:
        break;
    default:
        mm_reply_error(ctx, MM_EDECODE, "%s takes a JSON payload", what);
        return 0;
    }
    mm_msg_data(msg, &len);
    if (len == 0) return 1;
    j = mm_msg_json(msg, &off);
    if (j == NULL) {
        mm_reply_error(ctx, MM_EDECODE, "%s: malformed JSON at byte %zu", what,
                       off);
        return 0;
    }
    if (!cJSON_IsNull(j)) *out = j;
    return 1;
}

/* Whether |j| is a number holding an exactly representable integer. */
static int
builtin_int(const cJSON *j, int64_t *out)
{
    double v;

    if (!cJSON_IsNumber(j)) return 0;
    v = j->valuedouble;
    if (!isfinite(v) || v != trunc(v) || fabs(v) > BUILTIN_MAX_SAFE_INT)
        return 0;
    *out = (int64_t)v;
    return 1;
}

/* Replies with |s| as a JSON string (escaped). */
static int
builtin_reply_string(mm_ctx *ctx, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    int rc;

    cJSON_Delete(j);
    if (text == NULL) return mm_reply_error(ctx, UV_ENOMEM, "out of memory");
    rc = mm_reply_json(ctx, text);
    cJSON_free(text);
    return rc;
}

/* Parses the init argument; NULL when there is none.  *bad set on error. */
static cJSON *
builtin_arg(mm_ctx *ctx, const char *type, int *bad)
{
    const char *arg = mm_ctx_arg_json(ctx);
    const char *end = NULL;
    cJSON *j;

    *bad = 0;
    if (arg == NULL || *arg == '\0') return NULL;
    j = cJSON_ParseWithOpts(arg, &end, 1);
    if (j == NULL) {
        MM_LOG(MM_LOG_WARN, "builtins", "%s: malformed init JSON at byte %zu",
               type, end ? (size_t)(end - arg) : (size_t)0);
        *bad = 1;
    }
    return j;
}

/* ------------------------------------------------------------------------ */
/* echo: `echo` returns its input unchanged                                 */
/* ------------------------------------------------------------------------ */

struct echo_state {
    char unused;
};

static int
echo_echo(mm_ctx *ctx, void *state, mm_msg *msg)
{
    const void *data;
    size_t len = 0;
    mm_msg *reply;

    MM_UNUSED(state);
    switch (mm_msg_content(msg)) {
    case MM_CONTENT_NONE:
        reply = mm_msg_new("echo");
        break;
    case MM_CONTENT_JSON:
        data = mm_msg_data(msg, &len);
        reply = mm_msg_new_json("echo", data, len);
        break;
    case MM_CONTENT_RAW:
        data = mm_msg_data(msg, &len);
        reply = mm_msg_new_raw("echo", data, len);
        break;
    default:
        return reply_error(ctx, MM_EDECODE, "echo takes a JSON or raw payload");
    }
    if (reply == NULL) return reply_error(ctx, UV_ENOMEM, "out of memory");
    mm_reply(ctx, reply); /* takes |reply| in every case */
    return 0;
}

MM_ACTOR_TYPE(echo, struct echo_state, NULL, NULL,
              MM_HANDLER("echo", echo_echo));

/* ------------------------------------------------------------------------ */
/* counter: `increment [N]`, `get`, `reset`; init {"count":N}               */
/* ------------------------------------------------------------------------ */

struct counter_state {
    int64_t count;
};

static int
counter_start(mm_ctx *ctx, void *state)
{
    struct counter_state *s = state;
    const cJSON *c;
    int bad;
    cJSON *arg = builtin_arg(ctx, "counter", &bad);

    if (bad) return MM_EDECODE;
    if (arg == NULL) return 0;
    /* {"count":N}, or a bare N for convenience. */
    c = cJSON_IsObject(arg) ? cJSON_GetObjectItemCaseSensitive(arg, "count")
                            : arg;
    if (c != NULL && !builtin_int(c, &s->count)) {
        MM_LOG(MM_LOG_WARN, "builtins",
               "counter: init \"count\" must be an integer");
        cJSON_Delete(arg);
        return MM_EDECODE;
    }
    cJSON_Delete(arg);
    return 0;
}

static int
counter_increment(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct counter_state *s = state;
    const cJSON *j;
    int64_t by = 1, next;

    if (!builtin_json(ctx, msg, "increment", &j)) return 0;
    if (j != NULL && !builtin_int(j, &by))
        return reply_error(
            ctx, MM_EDECODE, "increment takes an integer (got %s)",
            cJSON_IsNumber(j) ? "a non-integer number" : "another JSON value");
    next = s->count + by; /* both are within 2^53: no overflow */
    if (fabs((double)next) > BUILTIN_MAX_SAFE_INT)
        return reply_error(ctx, MM_EINVAL,
                           "increment: the count would leave the exact "
                           "JSON integer range (2^53 - 1)");
    s->count = next;
    return reply_jsonf(ctx, "%lld", (long long)s->count);
}

static int
counter_get(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct counter_state *s = state;

    MM_UNUSED(msg);
    return reply_jsonf(ctx, "%lld", (long long)s->count);
}

/* `reset` sets the count to 0 and returns the new count, 0. */
static int
counter_reset(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct counter_state *s = state;

    MM_UNUSED(msg);
    s->count = 0;
    return reply_json(ctx, "0");
}

MM_ACTOR_TYPE(counter, struct counter_state, counter_start, NULL,
              MM_HANDLER("increment", counter_increment),
              MM_HANDLER("get", counter_get),
              MM_HANDLER("reset", counter_reset));

/* ------------------------------------------------------------------------ */
/* kv: `put {"key":K,"value":V}`, `get K`, `delete K`, `keys`               */
/* ------------------------------------------------------------------------ */

/*
 * A chained hash table of key -> value, the value kept as compact JSON text.
 * Replies:
 *   put     the previous value, or null when the key was new;
 *   get     the value; MM_ENOTFOUND when the key is missing;
 *   delete  the removed value; MM_ENOTFOUND when the key is missing;
 *   keys    every key as a JSON array, sorted bytewise (strcmp).
 * An init argument that is a JSON object preloads its members.
 */
struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    char *key;   /* owned */
    char *value; /* owned; compact JSON text */
};

struct kv_state {
    struct kv_entry **buckets; /* owned */
    size_t nbuckets;
    size_t count;
};

#define KV_INITIAL_BUCKETS 16

static struct kv_entry **
kv_slot(struct kv_state *s, const char *key, uint64_t h)
{
    struct kv_entry **p = &s->buckets[h & (s->nbuckets - 1)];

    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

static int
kv_grow(struct kv_state *s)
{
    size_t nb = s->nbuckets ? s->nbuckets * 2 : KV_INITIAL_BUCKETS;
    struct kv_entry **b = mm__calloc(nb, sizeof(*b));

    if (b == NULL) return UV_ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct kv_entry *e = s->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    mm__free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return 0;
}

/*
 * Stores |value| (compact JSON text, taken over) under |key|.  On success
 * |*prev| is the previous value (the caller's to free) or NULL.
 */
static int
kv_set(struct kv_state *s, const char *key, char *value, char **prev)
{
    uint64_t h = mm__hash_bytes(key, strlen(key));
    struct kv_entry **p, *e;

    *prev = NULL;
    if (s->count >= s->nbuckets && kv_grow(s) != 0) return UV_ENOMEM;
    p = kv_slot(s, key, h);
    if (*p != NULL) {
        *prev = (*p)->value;
        (*p)->value = value;
        return 0;
    }
    e = mm__calloc(1, sizeof(*e));
    if (e == NULL || (e->key = mm__strdup(key)) == NULL) {
        mm__free(e);
        return UV_ENOMEM;
    }
    e->hash = h;
    e->value = value;
    *p = e;
    s->count++;
    return 0;
}

static struct kv_entry *
kv_find(struct kv_state *s, const char *key)
{
    if (s->nbuckets == 0) return NULL;
    return *kv_slot(s, key, mm__hash_bytes(key, strlen(key)));
}

/* Unlinks |key| and returns its value (the caller's), or NULL. */
static char *
kv_remove(struct kv_state *s, const char *key)
{
    struct kv_entry **p, *e;
    char *value;

    if (s->nbuckets == 0) return NULL;
    p = kv_slot(s, key, mm__hash_bytes(key, strlen(key)));
    if ((e = *p) == NULL) return NULL;
    *p = e->next;
    value = e->value;
    mm__free(e->key);
    mm__free(e);
    s->count--;
    return value;
}

/* Compact JSON text of |j| in mm__ memory, or NULL. */
static char *
kv_print(const cJSON *j)
{
    char *t = cJSON_PrintUnformatted(j);
    char *copy = t ? mm__strdup(t) : NULL;

    cJSON_free(t);
    return copy;
}

static void
kv_stop(mm_ctx *ctx, void *state, int reason)
{
    struct kv_state *s = state;

    MM_UNUSED(ctx);
    MM_UNUSED(reason);
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct kv_entry *e = s->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            mm__free(e->key);
            mm__free(e->value);
            mm__free(e);
        }
    }
    mm__free(s->buckets);
    memset(s, 0, sizeof(*s));
}

static int
kv_start(mm_ctx *ctx, void *state)
{
    struct kv_state *s = state;
    const cJSON *item;
    int bad, rc = 0;
    cJSON *arg = builtin_arg(ctx, "kv", &bad);

    if (bad) return MM_EDECODE;
    if (arg == NULL) return 0;
    if (!cJSON_IsObject(arg)) {
        MM_LOG(MM_LOG_WARN, "builtins", "kv: init JSON must be an object");
        cJSON_Delete(arg);
        return MM_EDECODE;
    }
    cJSON_ArrayForEach(item, arg)
    {
        char *value = kv_print(item), *prev = NULL;
        if (value == NULL || kv_set(s, item->string, value, &prev) != 0) {
            mm__free(value);
            rc = UV_ENOMEM;
            break;
        }
        mm__free(prev); /* a duplicate member: the last one wins */
    }
    cJSON_Delete(arg);
    if (rc != 0) kv_stop(ctx, s, MM_REASON_START_FAILED);
    return rc;
}

/* Reads the key argument of |what| (a JSON string); 0 after an error reply. */
static int
kv_key(mm_ctx *ctx, mm_msg *msg, const char *what, const char **key)
{
    const cJSON *j;

    if (!builtin_json(ctx, msg, what, &j)) return 0;
    if (!cJSON_IsString(j)) {
        mm_reply_error(ctx, MM_EDECODE,
                       "%s takes a key as a JSON string, e.g. \"k\"", what);
        return 0;
    }
    *key = j->valuestring;
    return 1;
}

static int
kv_put(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct kv_state *s = state;
    const cJSON *j, *key, *value;
    char *text, *prev = NULL;

    if (!builtin_json(ctx, msg, "put", &j)) return 0;
    key = cJSON_GetObjectItemCaseSensitive(j, "key");
    value = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (!cJSON_IsObject(j) || !cJSON_IsString(key) || value == NULL)
        return reply_error(ctx, MM_EDECODE,
                           "put takes {\"key\":K,\"value\":V} with K a "
                           "string");
    if ((text = kv_print(value)) == NULL)
        return reply_error(ctx, UV_ENOMEM, "out of memory");
    if (kv_set(s, key->valuestring, text, &prev) != 0) {
        mm__free(text);
        return reply_error(ctx, UV_ENOMEM, "out of memory");
    }
    mm_reply_json(ctx, prev ? prev : "null");
    mm__free(prev);
    return 0;
}

static int
kv_get(mm_ctx *ctx, void *state, mm_msg *msg)
{
    const char *key;
    struct kv_entry *e;

    if (!kv_key(ctx, msg, "get", &key)) return 0;
    if ((e = kv_find(state, key)) == NULL)
        return reply_error(ctx, MM_ENOTFOUND, "no key \"%s\"", key);
    return reply_json(ctx, e->value);
}

static int
kv_delete(mm_ctx *ctx, void *state, mm_msg *msg)
{
    const char *key;
    char *value;

    if (!kv_key(ctx, msg, "delete", &key)) return 0;
    if ((value = kv_remove(state, key)) == NULL)
        return reply_error(ctx, MM_ENOTFOUND, "no key \"%s\"", key);
    mm_reply_json(ctx, value);
    mm__free(value);
    return 0;
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
kv_keys(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct kv_state *s = state;
    const char **keys = NULL;
    cJSON *arr = NULL;
    char *text = NULL;
    size_t k = 0;

    MM_UNUSED(msg);
    if (s->count > 0 && (keys = mm__malloc(s->count * sizeof(*keys))) == NULL)
        goto oom;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (struct kv_entry *e = s->buckets[i]; e != NULL; e = e->next)
            keys[k++] = e->key;
    if (k > 1) qsort(keys, k, sizeof(*keys), kv_cmp);
    if ((arr = cJSON_CreateArray()) == NULL) goto oom;
    for (size_t i = 0; i < k; i++) {
        cJSON *str = cJSON_CreateString(keys[i]);
        if (str == NULL) goto oom;
        cJSON_AddItemToArray(arr, str);
    }
    if ((text = cJSON_PrintUnformatted(arr)) == NULL) goto oom;
    mm_reply_json(ctx, text);
    cJSON_free(text);
    cJSON_Delete(arr);
    mm__free(keys);
    return 0;
oom:
    cJSON_Delete(arr);
    mm__free(keys);
    return reply_error(ctx, UV_ENOMEM, "out of memory");
}

MM_ACTOR_TYPE(kv, struct kv_state, kv_start, kv_stop, MM_HANDLER("put", kv_put),
              MM_HANDLER("get", kv_get), MM_HANDLER("delete", kv_delete),
              MM_HANDLER("keys", kv_keys));

/* ------------------------------------------------------------------------ */
/* greeter: `greet "world"` returns "Hello, world!"; init {"greeting":G}    */
/* ------------------------------------------------------------------------ */

struct greeter_state {
    char *greeting; /* owned */
};

static int
greeter_start(mm_ctx *ctx, void *state)
{
    struct greeter_state *s = state;
    const cJSON *g = NULL;
    int bad;
    cJSON *arg = builtin_arg(ctx, "greeter", &bad);

    if (bad) return MM_EDECODE;
    if (arg != NULL) {
        g = cJSON_IsObject(arg)
                ? cJSON_GetObjectItemCaseSensitive(arg, "greeting")
                : NULL;
        if (!cJSON_IsObject(arg) || (g != NULL && !cJSON_IsString(g))) {
            MM_LOG(MM_LOG_WARN, "builtins",
                   "greeter: init JSON must be {\"greeting\": STRING}");
            cJSON_Delete(arg);
            return MM_EDECODE;
        }
    }
    s->greeting = mm__strdup(g ? g->valuestring : "Hello");
    cJSON_Delete(arg);
    return s->greeting ? 0 : UV_ENOMEM;
}

static void
greeter_stop(mm_ctx *ctx, void *state, int reason)
{
    struct greeter_state *s = state;

    MM_UNUSED(ctx);
    MM_UNUSED(reason);
    mm__free(s->greeting);
    s->greeting = NULL;
}

/* `greet NAME` (a JSON string; "world" when absent). */
static int
greeter_greet(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct greeter_state *s = state;
    const cJSON *j;
    const char *name = "world";
    char *text;
    size_t len;

    if (!builtin_json(ctx, msg, "greet", &j)) return 0;
    if (j != NULL && !cJSON_IsString(j))
        return reply_error(ctx, MM_EDECODE,
                           "greet takes a name as a JSON string, e.g. "
                           "\"world\"");
    if (j != NULL) name = j->valuestring;
    len = strlen(s->greeting) + strlen(name) + 4;
    if ((text = mm__malloc(len)) == NULL)
        return reply_error(ctx, UV_ENOMEM, "out of memory");
    snprintf(text, len, "%s, %s!", s->greeting, name);
    builtin_reply_string(ctx, text);
    mm__free(text);
    return 0;
}

MM_ACTOR_TYPE(greeter, struct greeter_state, greeter_start, greeter_stop,
              MM_HANDLER("greet", greeter_greet));

/* ------------------------------------------------------------------------ */

int
mm_node_register_builtins(mm_node *n)
{
    static const mm_actor_type *const types[] = {&echo_type, &counter_type,
                                                 &kv_type, &greeter_type};
    int rc;

    for (size_t i = 0; i < MM_ARRAY_SIZE(types); i++)
        if ((rc = mm_node_register_type(n, types[i])) != 0) return rc;
    return 0;
}
