/*
 * greeter.c — the quick start: one local node, one actor type, one typed
 * call.
 *
 *   make && ./build/greeter        prints "Hello, world!"
 *
 * MM_MESSAGE declares the message `greet` once: its request and reply
 * structs, their JSON codec and the call stub greeter_greet().  The
 * handler gets the decoded request and fills the reply; the call is
 * type-checked by the compiler.
 */
#include <stdio.h>

#include <murmer_typed.h>

/* greet: {"name": "world"} -> {"text": "Hello, world!"} */
MM_MESSAGE(greeter_greet, "greet", (MM_STR(name, 256)), (MM_STR(text, 300)));

static int
greet(mm_ctx *ctx, void *s, const greeter_greet_req *in, greeter_greet_rep *out)
{
    (void)s; /* the actor's state: none here */
    out->text = mm_typed_printf(ctx, "Hello, %s!", in->name);
    return 0;
}
MM_HANDLES(greeter_greet, greet);

MM_ACTOR_TYPE(greeter, char, NULL, NULL, MM_TYPED(greeter_greet, greet));

int
main(void)
{
    mm_node *node = NULL;
    mm_endpoint ep;
    greeter_greet_rep *reply = NULL;

    /* A local-only node (default config: no listen address) on a thread. */
    int rc = mm_node_new(&node, NULL);
    if (rc == 0 && (rc = mm_node_register_type(node, &greeter_type)) == 0 &&
        (rc = mm_node_start_thread(node)) == 0 &&
        (rc = mm_spawn(node, "greeter", NULL, &ep)) == 0 &&
        (rc = greeter_greet(node, &ep, "world", &reply)) == 0)
        printf("%s\n", reply->text);
    else
        fprintf(stderr, "greeter: %s\n", mm_strerror(rc));
    mm_typed_free(reply);
    if (node) mm_node_stop(node), mm_node_join(node), mm_node_free(node);
    return rc != 0;
}
