/*
 * hello_plugin.c — an actor type in a plugin: `murmer start --plugin
 * build/plugins/hello_plugin.so --actor hello/1=hello`, then
 * `murmer send hello/1 hello '"world"'` answers "Hello from a plugin, world!".
 * A second message, `count`, returns how many greetings this actor gave.
 */
#include <murmer.h>

#include <cjson/cJSON.h>
#include <stdio.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct hello_state {
    long greetings;
};

static int
hello_hello(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct hello_state *s = state;
    const cJSON *j = mm_msg_json(msg, NULL);
    const char *who = cJSON_IsString(j) ? j->valuestring : "stranger";
    cJSON *out = cJSON_CreateString("");
    char text[256];
    snprintf(text, sizeof(text), "Hello from a plugin, %s!", who);
    cJSON_SetValuestring(out, text);
    char *js = cJSON_PrintUnformatted(out);
    int rc = mm_reply_json(ctx, js);
    cJSON_free(js);
    cJSON_Delete(out);
    s->greetings++;
    return rc < 0 ? rc : 0;
}

static int
hello_count(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct hello_state *s = state;
    (void)msg;
    mm_reply_jsonf(ctx, "%ld", s->greetings);
    return 0;
}

MM_ACTOR_TYPE(hello, struct hello_state, NULL, NULL,
              MM_HANDLER("hello", hello_hello),
              MM_HANDLER("count", hello_count));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;

PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    return mm_plugin_register_type(ctx, &hello_type);
}
