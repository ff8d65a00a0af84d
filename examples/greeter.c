/*
 * greeter.c — the quick start: one local node, one actor type, one call.
 *
 *   make && ./build/greeter        prints "Hello, world!"
 *
 * It defines an actor type with MM_ACTOR_TYPE, runs the node on a
 * background thread, spawns `greeter/main`, calls `greet "world"` from the
 * main thread and prints the reply.
 */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>
#include <murmer.h>

/* The actor's state: zeroed by the node, then filled by the start hook. */
struct greeter {
    char greeting[64];
};

static int
greeter_start(mm_ctx *ctx, void *state)
{
    struct greeter *g = state;

    (void)ctx;
    snprintf(g->greeting, sizeof(g->greeting), "Hello");
    return 0;
}

/* `greet NAME`: NAME is a JSON string; the reply is the greeting, as JSON. */
static int
greeter_greet(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct greeter *g = state;
    const cJSON *name = mm_msg_json(msg, NULL);
    char text[256];
    cJSON *reply;
    char *json;

    if (!cJSON_IsString(name)) {
        mm_reply_error(ctx, MM_EDECODE, "greet takes a JSON string");
        return 0;
    }
    snprintf(text, sizeof(text), "%s, %s!", g->greeting, name->valuestring);
    reply = cJSON_CreateString(text); /* cJSON escapes the string for us */
    json = cJSON_PrintUnformatted(reply);
    mm_reply_json(ctx, json);
    cJSON_free(json);
    cJSON_Delete(reply);
    return 0;
}

/* Declares `greeter_type`: type name "greeter", one handler. */
MM_ACTOR_TYPE(greeter, struct greeter, greeter_start, NULL,
              MM_HANDLER("greet", greeter_greet));

int
main(void)
{
    mm_node_config cfg;
    mm_spawn_opts opts;
    mm_endpoint ep;
    mm_node *node = NULL;
    mm_msg *reply = NULL;
    const cJSON *text;
    int rc, status = 1;

    /* A local-only node: no listen address, no network. */
    mm_node_config_init(&cfg);
    cfg.name = "greeter-example";
    if ((rc = mm_node_new(&node, &cfg)) != 0) {
        fprintf(stderr, "greeter: mm_node_new: %s\n", mm_strerror(rc));
        return 1;
    }
    if ((rc = mm_node_register_type(node, &greeter_type)) != 0 ||
        (rc = mm_node_start_thread(node)) != 0) {
        fprintf(stderr, "greeter: %s\n", mm_strerror(rc));
        goto out;
    }

    mm_spawn_opts_init(&opts);
    opts.label = "greeter/main";
    if ((rc = mm_spawn(node, "greeter", &opts, &ep)) != 0) {
        fprintf(stderr, "greeter: mm_spawn: %s\n", mm_strerror(rc));
        goto stop;
    }

    /* A blocking call: fine here, the main thread is not a shard thread. */
    rc = mm_call(node, &ep, mm_msg_new_json("greet", "\"world\"", 7), &reply);
    if (rc != 0) {
        fprintf(stderr, "greeter: greet: %s\n", mm_strerror(rc));
        goto stop;
    }
    text = mm_msg_json(reply, NULL);
    if (cJSON_IsString(text)) {
        printf("%s\n", text->valuestring);
        status = 0;
    }

stop:
    mm_msg_free(reply);
    mm_node_stop(node);
    mm_node_join(node);
out:
    mm_node_free(node);
    return status;
}
