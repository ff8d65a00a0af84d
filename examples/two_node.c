/*
 * two_node.c — a call from one node to an actor on another, and a watch
 * on it.  Run it as two processes:
 *
 *   ./build/two_node serve 127.0.0.1:7500     node "server", actor "counter/1"
 *   ./build/two_node call 127.0.0.1:7500      node "caller" joins it, calls
 *                                             counter/1 twice, stops it
 *
 * The caller finds the actor by its label (the registry is replicated to
 * every member), then calls it with the typed stub exactly as it would a
 * local actor: the stub encodes the request because the endpoint is on
 * another node.  mm_watch() tells the caller when the remote actor stops.
 * Without a cluster key both nodes use dev mode (loopback only).
 */
#define _POSIX_C_SOURCE 200809L /* sigwait, semaphores, clock_gettime */
#include <semaphore.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <murmer_typed.h>

/* add: {"by": N} -> {"total": N};  quit: {} -> {} and the actor stops. */
MM_MESSAGE(counter_add, "add", (MM_I64(by)), (MM_I64(total)));
MM_MESSAGE(counter_quit, "quit", (MM_NONE), (MM_NONE));

static int
add(mm_ctx *ctx, long long *total, const counter_add_req *in,
    counter_add_rep *out)
{
    (void)ctx;
    out->total = *total += in->by;
    return 0;
}
MM_HANDLES(counter_add, add);

static int
quit(mm_ctx *ctx, void *s, const counter_quit_req *in, counter_quit_rep *out)
{
    (void)ctx, (void)s, (void)in, (void)out;
    return MM_STOP; /* replies, then stops normally */
}
MM_HANDLES(counter_quit, quit);

MM_ACTOR_TYPE(counter, long long, NULL, NULL, MM_TYPED(counter_add, add),
              MM_TYPED(counter_quit, quit));

/* Callbacks run on a node thread: they hand their result to main. */
static sem_t done;
static mm_endpoint found;
static int status;

/* Waits for a callback's sem_post, at most 15 s. */
static int
wait_done(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 15;
    return sem_timedwait(&done, &t) == 0 ? 0 : MM_ETIMEOUT;
}

static void
on_lookup(void *data, int st, const mm_endpoint *ep)
{
    (void)data;
    status = st;
    if (st == 0) found = *ep;
    sem_post(&done);
}

static void
on_stop(void *data, const mm_endpoint *ep, int reason)
{
    (void)data, (void)ep;
    printf("counter/1 stopped (%s)\n", mm_reason_name(reason));
    sem_post(&done);
}

static int
serve(mm_node *node, sigset_t *stop)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "counter/1";
    int sig, rc = mm_node_register_type(node, &counter_type);
    if (rc == 0 && (rc = mm_spawn(node, "counter", &o, NULL)) == 0) {
        printf("serving counter/1 on %s\n", mm_node_addr(node));
        fflush(stdout);
        sigwait(stop, &sig); /* until ^C or kill */
    }
    return rc;
}

static int
call(mm_node *node)
{
    /* Wait (up to 10 s) for the label to reach this node's registry. */
    int rc = mm_lookup_wait(node, "counter/1", 10000, on_lookup, NULL);
    if (rc != 0 || (rc = wait_done()) != 0 || (rc = status) != 0) return rc;
    for (int by = 20; by <= 40 && rc == 0; by += 20) {
        counter_add_rep *rep = NULL;
        if ((rc = counter_add(node, &found, by, &rep)) == 0)
            printf("add %d -> total %lld\n", by, (long long)rep->total);
        mm_typed_free(rep);
    }
    counter_quit_rep *bye = NULL;
    if (rc == 0 && (rc = mm_watch(node, NULL, &found, on_stop, NULL)) == 0 &&
        (rc = counter_quit(node, &found, &bye)) == 0)
        rc = wait_done(); /* on_stop printed */
    mm_typed_free(bye);
    return rc;
}

int
main(int argc, char **argv)
{
    int is_serve = argc == 3 && strcmp(argv[1], "serve") == 0;
    if (!is_serve && !(argc == 3 && strcmp(argv[1], "call") == 0)) {
        fprintf(stderr, "usage: two_node serve HOST:PORT | call SEED\n");
        return 2;
    }
    /* serve: SIGINT and SIGTERM wait for sigwait (blocked on every thread) */
    sigset_t stop;
    sigemptyset(&stop), sigaddset(&stop, SIGINT), sigaddset(&stop, SIGTERM);
    if (is_serve) pthread_sigmask(SIG_BLOCK, &stop, NULL);
    sem_init(&done, 0, 0);

    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = is_serve ? "server" : "caller";
    cfg.listen = is_serve ? argv[2] : "127.0.0.1:0"; /* callers listen too */
    cfg.join = (const char *const *)&argv[2];
    cfg.njoin = !is_serve;
    cfg.mdns = 0;
    mm_node *node = NULL;
    int rc = mm_node_new(&node, &cfg);
    if (rc == 0 && (rc = mm_node_start_thread(node)) == 0)
        rc = is_serve ? serve(node, &stop) : call(node);
    if (rc != 0) fprintf(stderr, "two_node: %s\n", mm_strerror(rc));
    if (node) mm_node_stop(node), mm_node_join(node), mm_node_free(node);
    return rc != 0;
}
