/*
 * swimpoll.c — the membership watcher behind bench/swim.sh.
 *
 *   swimpoll KEYFILE DEADLINE_MS INTERVAL_MS alive N ADDR...
 *   swimpoll KEYFILE DEADLINE_MS INTERVAL_MS state NAME STATE ADDR...
 *
 * One thread per ADDR holds a client session to that node (connecting,
 * and reconnecting, until it answers) and asks it for its member list
 * every INTERVAL_MS until the condition holds in that node's view:
 *   alive N          the node lists at least N members alive
 *   state NAME STATE the node lists NAME in STATE (failed, left, ...)
 * Prints one line per ADDR, in argument order: "ADDR REALTIME_NS" (the
 * CLOCK_REALTIME instant the condition was first seen, comparable with
 * `date +%s%N`), or "ADDR -" when DEADLINE_MS passed first.  Exits 0 when
 * every node met the condition.
 *
 * This is far cheaper than a `murmer members --json` process per node per
 * sweep (about 10 ms of CPU each on this machine, which on 2 cores would
 * compete with the nodes being measured): a poll is one request on an
 * open QUIC session.  SWIMPOLL_DEBUG=1 traces every poll on stderr.
 */
#include "bench.h"

#include <errno.h>

#define MAXNODES 256

struct watch {
    const char *addr;
    pthread_t thread;
    uint64_t done_ns; /* CLOCK_REALTIME; 0 = not met */
};

static const char *keyfile;
static uint64_t deadline_mono_ns, interval_ns;
static int mode_alive;
static unsigned want_alive;
static const char *want_name, *want_state;
/* Until one connect has succeeded (the client identity exists on disk),
 * connects take turns; after that they run in parallel. */
static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;
static int identity_ready;

static uint64_t
realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
nap(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int debug;

/* Whether some socket is bound to |addr|'s UDP port (/proc/net/udp), so
 * that a node still starting costs a file read, not a connect timeout. */
static int
port_bound(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    char line[512], want[16];
    FILE *f;
    int found = 0;

    if (colon == NULL) return 1;
    snprintf(want, sizeof(want), ":%04lX ", strtoul(colon + 1, NULL, 10));
    f = fopen("/proc/net/udp", "r");
    if (f == NULL) return 1;
    while (!found && fgets(line, sizeof(line), f)) {
        char *local = strchr(line, ':'); /* after the slot number */

        if (local && (local = strchr(local + 1, ':')) != NULL)
            found = strncmp(local, want, strlen(want)) == 0;
    }
    fclose(f);
    return found;
}

static int
view_meets(const struct watch *w, const mm_member_info *m, size_t n)
{
    if (mode_alive) {
        unsigned alive = 0;

        for (size_t i = 0; i < n; i++)
            alive += strcmp(m[i].state, "alive") == 0;
        if (debug) {
            fprintf(stderr, "swimpoll: %s %llu alive %u of %zu", w->addr,
                    (unsigned long long)realtime_ns(), alive, n);
            for (size_t i = 0; alive < want_alive && i < n; i++)
                fprintf(stderr, " %s=%s", m[i].name, m[i].state);
            fputc('\n', stderr);
        }
        return alive >= want_alive;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].name, want_name) == 0)
            return strcmp(m[i].state, want_state) == 0;
    return 0;
}

static void *
watch_run(void *arg)
{
    struct watch *w = arg;
    mm_client *c = NULL;

    while (bench_now_ns() < deadline_mono_ns) {
        if (c == NULL) {
            mm_client_config cfg;
            const char *seeds[1] = {w->addr};
            int rc;

            if (!port_bound(w->addr)) {
                nap(interval_ns);
                continue;
            }
            mm_client_config_init(&cfg);
            cfg.seeds = seeds;
            cfg.nseeds = 1;
            cfg.cluster_key_file = keyfile;
            cfg.timeout_ms = 2000;
            int locked = !__atomic_load_n(&identity_ready, __ATOMIC_ACQUIRE);
            if (locked) pthread_mutex_lock(&connect_lock);
            rc = mm_client_connect(&c, &cfg);
            if (rc == 0) __atomic_store_n(&identity_ready, 1, __ATOMIC_RELEASE);
            if (locked) pthread_mutex_unlock(&connect_lock);
            if (rc != 0) {
                if (debug)
                    fprintf(stderr, "swimpoll: %s %llu connect: %s\n", w->addr,
                            (unsigned long long)realtime_ns(), mm_strerror(rc));
                c = NULL;
                nap(interval_ns);
                continue;
            }
        }
        mm_member_info *m = NULL;
        size_t n = 0;
        if (mm_client_members(c, &m, &n) != 0) {
            mm_client_close(c); /* the node went away: reconnect */
            c = NULL;
            nap(interval_ns);
            continue;
        }
        int met = view_meets(w, m, n);
        mm_client_free_result(c, m);
        if (met) {
            w->done_ns = realtime_ns();
            break;
        }
        nap(interval_ns);
    }
    if (c) mm_client_close(c);
    return NULL;
}

int
main(int argc, char **argv)
{
    static struct watch w[MAXNODES];
    int first, nw, ok = 1;

    if (argc < 7) goto usage;
    debug = getenv("SWIMPOLL_DEBUG") != NULL;
    keyfile = argv[1];
    deadline_mono_ns = bench_now_ns() + strtoull(argv[2], NULL, 10) * 1000000u;
    interval_ns = strtoull(argv[3], NULL, 10) * 1000000u;
    if (strcmp(argv[4], "alive") == 0) {
        mode_alive = 1;
        want_alive = (unsigned)strtoul(argv[5], NULL, 10);
        first = 6;
    } else if (strcmp(argv[4], "state") == 0 && argc >= 8) {
        want_name = argv[5];
        want_state = argv[6];
        first = 7;
    } else {
        goto usage;
    }
    nw = argc - first;
    if (nw < 1 || nw > MAXNODES) goto usage;
    for (int i = 0; i < nw; i++) {
        w[i].addr = argv[first + i];
        if (pthread_create(&w[i].thread, NULL, watch_run, &w[i]) != 0) {
            fprintf(stderr, "swimpoll: pthread_create failed\n");
            return 2;
        }
    }
    for (int i = 0; i < nw; i++)
        pthread_join(w[i].thread, NULL);
    for (int i = 0; i < nw; i++) {
        if (w[i].done_ns) {
            printf("%s %llu\n", w[i].addr, (unsigned long long)w[i].done_ns);
        } else {
            printf("%s -\n", w[i].addr);
            ok = 0;
        }
    }
    return ok ? 0 : 1;
usage:
    fprintf(stderr,
            "usage: swimpoll KEYFILE DEADLINE_MS INTERVAL_MS alive N ADDR...\n"
            "       swimpoll KEYFILE DEADLINE_MS INTERVAL_MS state NAME STATE "
            "ADDR...\n");
    return 2;
}
