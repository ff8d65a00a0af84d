/*
 * spawn.c — starts an actor on a named node of a running cluster, calls
 * it and stops it, through a client session to a seed (what `murmer
 * spawn`, `send` and `stop` do):
 *
 *   murmer start --name n1 --listen 127.0.0.1:7500 &
 *   murmer start --name n2 --listen 127.0.0.1:7501 --join 127.0.0.1:7500 &
 *   ./build/spawn 127.0.0.1:7500 n2
 *
 * The actor is a `counter`, a type every `murmer start` node registers,
 * spawned on n2 with 41 as its initial state and the transient policy
 * (restarted after a crash).  The key comes from $MURMER_CLUSTER_KEY_FILE
 * (none: dev mode).  Prints:
 *
 *   spawned spawned/1 on n2
 *   increment 1 -> 42
 *   stopped spawned/1 on n2
 */
#include <stdio.h>

#include <murmer.h>

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spawn SEED NODE\n");
        return 2;
    }
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = (const char *const *)&argv[1];
    cfg.nseeds = 1;
    mm_client_spawn_req req = {.type = "counter",
                               .label = "spawned/1",
                               .on = argv[2],
                               .arg_json = "41",
                               .policy = "transient"};
    mm_client *c = NULL;
    char *node = NULL;
    mm_endpoint ep;
    mm_actor_info *found = NULL;
    mm_send_result *res = NULL;
    size_t n = 0;

    int rc = mm_client_connect(&c, &cfg);
    if (rc == 0 && (rc = mm_client_spawn(c, &req, &node, &ep)) == 0)
        printf("spawned %s on %s\n", req.label, node);
    mm_client_free_result(c, node), node = NULL;
    /* The label reaches the seed's registry shortly after: wait for it. */
    if (rc == 0)
        rc = mm_client_lookup(c, req.label, NULL, NULL, 0, 5000, &found, &n);
    mm_client_free_result(c, found);
    if (rc == 0 &&
        (rc = mm_client_send(c, req.label, NULL, "increment", "1", 1, &res,
                             &n)) == 0 &&
        (rc = res[0].status) == 0)
        printf("increment 1 -> %.*s\n", (int)res[0].len, res[0].body);
    mm_client_free_result(c, res);
    if (rc == 0 && (rc = mm_client_stop(c, req.label, &node, &ep)) == 0)
        printf("stopped %s on %s\n", req.label, node);
    mm_client_free_result(c, node);
    if (rc != 0)
        fprintf(stderr, "spawn: %s: %s\n", mm_strerror(rc),
                mm_client_error_text(c));
    if (c) mm_client_close(c);
    return rc != 0;
}
