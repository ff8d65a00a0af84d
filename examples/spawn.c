/*
 * spawn.c — starts an actor on a named node of a running cluster, calls
 * it with a typed stub and stops it:
 *
 *   murmer start --name n1 --listen 127.0.0.1:7500 &
 *   murmer start --name n2 --listen 127.0.0.1:7501 --join 127.0.0.1:7500 \
 *       --plugin build/plugins/typed_plugin.so &
 *   ./build/spawn 127.0.0.1:7500 n2
 *
 * Spawn and stop go through a client session to a seed (what `murmer
 * spawn` and `murmer stop` do): an `account` (the typed plugin's type) on
 * n2, with 41 as its opening balance and the transient policy (restarted
 * after a crash).  Typed calls go from a node: this program starts one
 * that joins the cluster, waits for the label to reach it, and calls the
 * actor with account_deposit(), the stub of the plugin's own MM_MESSAGE
 * line.  The key comes from $MURMER_CLUSTER_KEY_FILE (none: dev mode).
 * Prints:
 *
 *   spawned acct/9 on n2
 *   deposit 1 -> balance 42
 *   stopped acct/9 on n2
 */
#define _POSIX_C_SOURCE 200809L /* semaphores, clock_gettime */
#include <semaphore.h>
#include <stdio.h>
#include <time.h>

#include <murmer_typed.h>

MM_MESSAGE(account_deposit, "deposit", (MM_I64(amount)), (MM_I64(balance)));

/* The lookup's answer, handed from a node thread to main. */
static sem_t done;
static int found_rc;
static mm_endpoint found;

static void
on_lookup(void *data, int rc, const mm_endpoint *ep)
{
    (void)data;
    if ((found_rc = rc) == 0) found = *ep;
    sem_post(&done);
}

/* From a node of our own that joins |seed|: deposit 1 into |label|. */
static int
deposit(const char *seed, const char *label)
{
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = "spawn-example";
    cfg.listen = "127.0.0.1:0";
    cfg.join = &seed;
    cfg.njoin = 1;
    cfg.mdns = 0;
    mm_node *node = NULL;
    account_deposit_rep *rep = NULL;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 15;
    int rc = mm_node_new(&node, &cfg);
    if (rc == 0 && (rc = mm_node_start_thread(node)) == 0 &&
        (rc = mm_lookup_wait(node, label, 10000, on_lookup, NULL)) == 0)
        rc = sem_timedwait(&done, &t) == 0 ? found_rc : MM_ETIMEOUT;
    if (rc == 0 && (rc = account_deposit(node, &found, 1, &rep)) == 0)
        printf("deposit 1 -> balance %lld\n", (long long)rep->balance);
    mm_typed_free(rep);
    if (node) mm_node_stop(node), mm_node_join(node), mm_node_free(node);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spawn SEED NODE\n");
        return 2;
    }
    sem_init(&done, 0, 0);
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = (const char *const *)&argv[1];
    cfg.nseeds = 1;
    mm_client_spawn_req req = {.type = "account",
                               .label = "acct/9",
                               .on = argv[2],
                               .arg_json = "41",
                               .policy = "transient"};
    mm_client *c = NULL;
    char *node = NULL;
    mm_endpoint ep;

    const char *why = "the typed call"; /* when the session did not fail */
    int rc = mm_client_connect(&c, &cfg);
    if (rc == 0 && (rc = mm_client_spawn(c, &req, &node, &ep)) == 0)
        printf("spawned %s on %s\n", req.label, node);
    mm_client_free_result(c, node), node = NULL;
    if (rc != 0) why = mm_client_error_text(c);
    int spawned = rc == 0;
    if (spawned) rc = deposit(argv[1], req.label);
    /* Stopped whatever the call did. */
    int stop_rc = spawned ? mm_client_stop(c, req.label, &node, &ep) : 0;
    if (spawned && stop_rc == 0)
        printf("stopped %s on %s\n", req.label, node);
    else if (spawned && rc == 0)
        rc = stop_rc, why = mm_client_error_text(c);
    mm_client_free_result(c, node);
    if (rc != 0) fprintf(stderr, "spawn: %s: %s\n", mm_strerror(rc), why);
    if (c) mm_client_close(c);
    return rc != 0;
}
