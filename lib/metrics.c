/*
 * metrics.c — the node's Prometheus endpoint (metrics.h).
 *
 * The responder runs on a thread and a libuv loop of its own, so that a
 * slow or hostile client costs the shards nothing: it keeps at most
 * MM_METRICS_CONNS_MAX connections, reads at most MM_METRICS_REQUEST_MAX
 * bytes of a request head, closes every connection after one answer
 * (Connection: close) and at MM_METRICS_DEADLINE_MS whatever its state.
 * Only `GET /metrics` is served: another path is 404, another method on
 * /metrics 405, a malformed head 400.
 *
 * A scrape posts gather_on_shard to every shard; each copies its counters
 * and walks its own actors (the slot table, no sort) on its own thread,
 * shard 0 adds the network half's numbers, and the last one to answer
 * wakes the responder.  The scrape memory belongs to the responder and is
 * freed when every posted function ran, or at mm__metrics_free (after the
 * shards are joined), never under a shard.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- text ---------------------------------------------------------------- */

void
mm__mtext_printf(struct mm_mtext *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *p = mm__realloc(t->p, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

void
mm__mtext_label(struct mm_mtext *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            mm__mtext_printf(t, "\\\\");
        else if (*s == '"')
            mm__mtext_printf(t, "\\\"");
        else if (*s == '\n')
            mm__mtext_printf(t, "\\n");
        else
            mm__mtext_printf(t, "%c", *s);
    }
}

static void
family(struct mm_mtext *t, const char *name, const char *type, const char *help)
{
    mm__mtext_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample_u(struct mm_mtext *t, const char *name, uint64_t v)
{
    mm__mtext_printf(t, "%s %llu\n", name, (unsigned long long)v);
}

static void
one_u(struct mm_mtext *t, const char *name, const char *type, const char *help,
      uint64_t v)
{
    family(t, name, type, help);
    sample_u(t, name, v);
}

/* ---- scrapes ------------------------------------------------------------- */

struct type_count {
    const struct mm_type_info *ti; /* NULL: "other" */
    uint64_t actors, messages, bytes;
};

#define MB_NBOUNDS 12
static const uint64_t mb_bounds[MB_NBOUNDS] = {
    0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};

struct snap {
    struct scrape *sc;
    int done; /* under the lock, set by the shard */
    int seen; /* |done| as the responder took it (responder only) */
    struct mm_shard_ctr ctr;
    struct type_count *types; /* MM_METRICS_TYPES_MAX + 1 */
    size_t ntypes;
    uint64_t mb_hist[MB_NBOUNDS + 1];
    uint64_t mb_sum, mb_actors;
};

struct conn;

struct scrape {
    struct scrape *next;
    struct mm_metrics *srv;
    struct conn *conn; /* NULL once answered or its connection closed */
    int nshards, pending;
    struct snap *snaps;
    struct mm_metrics_net net;
    int net_ok;  /* written by shard 0 before its |done| */
    uint64_t t0; /* when the scrape began (loop ms) */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    struct mm_metrics *srv;
    struct conn *prev, *next;
    char req[MM_METRICS_REQUEST_MAX];
    size_t len;
    int answered, closing, handles;
    struct scrape *scrape;
    char *resp;
    uint64_t t0;
};

struct mm_metrics {
    mm_node *node;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t async;
    uv_timer_t gather; /* scrapes' bounded waits */
    uv_thread_t thread;
    int has_thread;
    char addr[80];
    pthread_mutex_t lock; /* running, scrapes' pending and done */
    int running;
    _Atomic int stop;
    struct conn conns; /* sentinel */
    unsigned nconns;
    struct scrape *scrapes;
    double start_time; /* process start, seconds since the epoch */
    /* Its own counters. */
    uint64_t scrapes_total, refused, bad_requests;
};

static void conn_answer(struct conn *c, int status, const char *reason,
                        const char *extra, const char *body, size_t blen);

static void
scrape_free(struct scrape *sc)
{
    if (sc->snaps)
        for (int i = 0; i < sc->nshards; i++)
            mm__free(sc->snaps[i].types);
    mm__free(sc->snaps);
    mm__free(sc->net.peers);
    mm__free(sc);
}

static struct type_count *
type_slot(struct snap *sn, const struct mm_type_info *ti)
{
    for (size_t i = 0; i < sn->ntypes; i++)
        if (sn->types[i].ti == ti) return &sn->types[i];
    if (sn->ntypes == MM_METRICS_TYPES_MAX) ti = NULL;
    for (size_t i = 0; i < sn->ntypes; i++)
        if (sn->types[i].ti == ti) return &sn->types[i];
    struct type_count *tc = &sn->types[sn->ntypes++];
    tc->ti = ti;
    return tc;
}

/* A started actor, for a walk's visitor. */
typedef void (*actor_visit_fn)(void *arg, const struct mm_actor *a,
                               uint64_t depth);

/* On the shard's thread: copies the shard's counters into |sn| and walks
 * its started actors (the slot table, no sort), counting them by type when
 * |sn->types| and handing each to |visit| when given. */
static void
snap_walk(struct snap *sn, struct mm_shard *s, actor_visit_fn visit, void *arg)
{
    mm__shard_ctr_read(s, &sn->ctr);
    if (!sn->types && !visit) return;
    pthread_mutex_lock(&s->slot_lock);
    uint32_t nslots = s->nslots;
    pthread_mutex_unlock(&s->slot_lock);
    for (uint32_t i = 0; i < nslots; i++) {
        struct mm_slot *slot = mm__slot_get(s, i);
        struct mm_actor *a = slot ? atomic_load(&slot->actor) : NULL;
        /* Started actors only: those are this thread's alone. */
        if (!a || a->status == ACTOR_PREPARED || a->status == ACTOR_DEAD)
            continue;
        uint64_t q = atomic_load_explicit(&slot->queued, memory_order_relaxed);
        uint64_t depth = mm__mb_count(q);
        if (visit) visit(arg, a, depth);
        if (!sn->types) continue;
        struct type_count *tc = type_slot(sn, a->ti);
        tc->actors++;
        tc->messages += depth;
        tc->bytes += mm__mb_bytes(q);
        unsigned b = 0;
        while (b < MB_NBOUNDS && depth > mb_bounds[b])
            b++;
        sn->mb_hist[b]++;
        sn->mb_sum += depth;
        sn->mb_actors++;
    }
}

/* On the shard's thread. */
static void
gather_on_shard(void *arg)
{
    struct snap *sn = arg;
    struct scrape *sc = sn->sc;
    struct mm_shard *s = mm__cur_shard;
    snap_walk(sn, s, NULL, NULL);
    mm_node *n = s->node;
    if (s->index == 0 && n->cluster && n->cluster_ops->metrics && !s->closing) {
        n->cluster_ops->metrics(n->cluster, &sc->net);
        sc->net_ok = 1;
    }
    struct mm_metrics *m = sc->srv;
    pthread_mutex_lock(&m->lock);
    sn->done = 1;
    if (--sc->pending == 0 && m->running) uv_async_send(&m->async);
    pthread_mutex_unlock(&m->lock);
}

/* ---- rendering ----------------------------------------------------------- */

/* The process's CPU ticks (user, system), virtual size and resident
 * pages, from /proc/self/stat: 0 or -1. */
static int
proc_stat(unsigned long long *ut, unsigned long long *st,
          unsigned long long *vsz, unsigned long long *rss)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command may hold spaces */
    return p && sscanf(p + 2,
                       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                       "%*d %*d %*d %*d %*d %*d %*u %llu %llu",
                       ut, st, vsz, rss) == 4
               ? 0
               : -1;
}

static void
render_process(struct mm_metrics *m, struct mm_mtext *t)
{
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    {
        unsigned long long ut = 0, st = 0, vsz = 0, rss = 0;
        if (tick > 0 && proc_stat(&ut, &st, &vsz, &rss) == 0) {
            family(t, "process_cpu_seconds_total", "counter",
                   "User and system CPU time spent, in seconds.");
            mm__mtext_printf(t, "process_cpu_seconds_total %.2f\n",
                             (double)(ut + st) / (double)tick);
            one_u(t, "process_virtual_memory_bytes", "gauge",
                  "Virtual memory size in bytes.", vsz);
            one_u(t, "process_resident_memory_bytes", "gauge",
                  "Resident memory size in bytes.",
                  rss * (unsigned long long)(page > 0 ? page : 4096));
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t nfd = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') nfd++;
        closedir(d);
        one_u(t, "process_open_fds", "gauge",
              "Number of open file descriptors.", nfd ? nfd - 1 : 0);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        one_u(t, "process_max_fds", "gauge",
              "Maximum number of open file descriptors.",
              (uint64_t)rl.rlim_cur);
    if (m->start_time > 0) {
        family(t, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        mm__mtext_printf(t, "process_start_time_seconds %.2f\n", m->start_time);
    }
}

static const char *const swim_state_names[] = {"alive", "suspect", "failed",
                                               "left"};

static void
render_net(struct mm_mtext *t, const struct mm_metrics_net *x)
{
    family(t, "murmer_members", "gauge",
           "Members this node lists, itself included, by state.");
    for (int i = 0; i <= MM_SWIM_LEFT; i++)
        mm__mtext_printf(t, "murmer_members{state=\"%s\"} %llu\n",
                         swim_state_names[i],
                         (unsigned long long)x->members[i]);
    one_u(t, "murmer_swim_probes_total", "counter", "SWIM direct probes sent.",
          x->swim.probes);
    one_u(t, "murmer_swim_indirect_probes_total", "counter",
          "SWIM indirect probes asked of other members.",
          x->swim.indirect_probes);
    one_u(t, "murmer_swim_suspicions_total", "counter",
          "Members this node saw turn suspect.", x->swim.suspicions);
    one_u(t, "murmer_swim_late_probes_total", "counter",
          "Probe steps this node ran late (it was behind: local health).",
          x->swim.late_probes);
    one_u(t, "murmer_swim_heard_not_acked_total", "counter",
          "Probes left unacked by a member that sent us a packet meanwhile "
          "(not suspected).",
          x->swim.heard_not_acked);
    one_u(t, "murmer_swim_refutations_total", "counter",
          "Suspicions of this node that it refuted.", x->swim.refutations);
    one_u(t, "murmer_swim_records_verified_total", "counter",
          "Member records whose signature this node checked (valid).",
          x->swim.verified);
    one_u(t, "murmer_swim_syncs_total", "counter",
          "Push-pull exchanges this node started.", x->swim.syncs);
    one_u(t, "murmer_swim_packets_received_total", "counter",
          "SWIM packets received.", x->swim.packets_in);
    one_u(t, "murmer_swim_packets_sent_total", "counter", "SWIM packets sent.",
          x->swim.packets_out);
    one_u(t, "murmer_gossip_received_bytes_total", "counter",
          "Bytes of gossip datagrams received (sealed).", x->mc.bytes_in);
    one_u(t, "murmer_gossip_sent_bytes_total", "counter",
          "Bytes of gossip datagrams sent (sealed).", x->mc.bytes_out);
    one_u(t, "murmer_gossip_dropped_total", "counter",
          "Gossip datagrams dropped: did not open, bad sender, flood.",
          x->seal.dropped + x->mc.dropped_sender + x->mc.dropped_other +
              x->mc.dropped_flood);
    one_u(t, "murmer_quic_connections", "gauge",
          "QUIC connections, any state (members and clients).", x->conns);
    one_u(t, "murmer_quic_connections_up", "gauge",
          "QUIC connections past the handshake and auth.", x->conns_up);
    one_u(t, "murmer_quic_connections_dialled_total", "counter",
          "QUIC connections dialled.", x->quic.conns_dialled);
    one_u(t, "murmer_quic_connections_accepted_total", "counter",
          "QUIC connections accepted.", x->quic.conns_accepted);
    one_u(t, "murmer_quic_connections_refused_total", "counter",
          "Initials dropped: handshake or connection caps.",
          x->quic.conns_refused + x->quic.hs_refused);
    one_u(t, "murmer_quic_auth_failures_total", "counter",
          "Connections that failed auth.", x->quic.auth_failures);
    one_u(t, "murmer_udp_received_bytes_total", "counter",
          "UDP bytes received on the node's socket.", x->quic.bytes_in);
    one_u(t, "murmer_udp_sent_bytes_total", "counter",
          "UDP bytes sent from the node's socket.", x->quic.bytes_out);
    one_u(t, "murmer_udp_received_packets_total", "counter",
          "UDP packets received.", x->quic.pkts_in);
    one_u(t, "murmer_udp_sent_packets_total", "counter", "UDP packets sent.",
          x->quic.pkts_out);
    static const struct {
        const char *name, *help;
        size_t off;
        double scale;
    } pf[] = {
        {"murmer_quic_peer_rtt_seconds", "Smoothed round trip time to a peer.",
         offsetof(struct mm_quic_conn_stat, srtt_ns), 1e-9},
        {"murmer_quic_peer_min_rtt_seconds", "Minimum round trip time seen.",
         offsetof(struct mm_quic_conn_stat, min_rtt_ns), 1e-9},
        {"murmer_quic_peer_rtt_variation_seconds", "Round trip variation.",
         offsetof(struct mm_quic_conn_stat, rttvar_ns), 1e-9},
        {"murmer_quic_peer_cwnd_bytes", "Congestion window.",
         offsetof(struct mm_quic_conn_stat, cwnd), 1},
        {"murmer_quic_peer_in_flight_bytes", "Bytes sent, not yet acked.",
         offsetof(struct mm_quic_conn_stat, bytes_in_flight), 1},
        {"murmer_quic_peer_probe_timeouts",
         "Probe timeouts in a row on the path (a sign of loss).",
         offsetof(struct mm_quic_conn_stat, pto_count), 1},
    };
    static const struct {
        const char *name, *help;
        size_t off;
    } pc[] = {
        {"murmer_quic_peer_received_bytes_total",
         "UDP payload bytes received on the connection to a peer.",
         offsetof(struct mm_quic_conn_stat, bytes_in)},
        {"murmer_quic_peer_sent_bytes_total",
         "UDP payload bytes sent on the connection to a peer.",
         offsetof(struct mm_quic_conn_stat, bytes_out)},
    };
    for (size_t k = 0; k < sizeof(pf) / sizeof(pf[0]); k++) {
        family(t, pf[k].name, "gauge", pf[k].help);
        for (size_t i = 0; i < x->npeers; i++) {
            const struct mm_metrics_peer *p = &x->peers[i];
            uint64_t v;
            memcpy(&v, (const char *)&p->st + pf[k].off, sizeof(v));
            mm__mtext_printf(t, "%s{peer=\"%s\",name=\"", pf[k].name, p->id);
            mm__mtext_label(t, p->name);
            if (pf[k].scale == 1)
                mm__mtext_printf(t, "\"} %llu\n", (unsigned long long)v);
            else
                mm__mtext_printf(t, "\"} %.9f\n", (double)v * pf[k].scale);
        }
    }
    for (size_t k = 0; k < sizeof(pc) / sizeof(pc[0]); k++) {
        family(t, pc[k].name, "counter", pc[k].help);
        for (size_t i = 0; i < x->npeers; i++) {
            const struct mm_metrics_peer *p = &x->peers[i];
            uint64_t v;
            memcpy(&v, (const char *)&p->st + pc[k].off, sizeof(v));
            mm__mtext_printf(t, "%s{peer=\"%s\",name=\"", pc[k].name, p->id);
            mm__mtext_label(t, p->name);
            mm__mtext_printf(t, "\"} %llu\n", (unsigned long long)v);
        }
    }
    one_u(t, "murmer_quic_peers_left_out", "gauge",
          "Peers beyond the listing bound, not listed above.",
          x->peers_left_out);
    one_u(t, "murmer_registry_entries", "gauge",
          "Labels registered in this node's view of the registry.",
          x->reg_entries);
    one_u(t, "murmer_registry_ops_applied_total", "counter",
          "Registry records received from peers and applied.",
          x->reg.ops_applied);
    one_u(t, "murmer_registry_batches_received_total", "counter",
          "Registry OPS batches received.", x->reg.batches_in);
    one_u(t, "murmer_registry_received_bytes_total", "counter",
          "Bytes of registry OPS batches received.", x->reg.ops_bytes_in);
    one_u(t, "murmer_registry_sent_bytes_total", "counter",
          "Bytes of registry frames sent.", x->reg.bytes_out);
    one_u(t, "murmer_registry_frames_sent_total", "counter",
          "Registry frames sent.", x->reg.frames_out);
    one_u(t, "murmer_registry_anti_entropy_rounds_total", "counter",
          "Registry anti-entropy rounds.", x->reg.ae_rounds);
    one_u(t, "murmer_registry_catchups_total", "counter",
          "Registry catch-ups started.", x->reg.catchups);
    one_u(t, "murmer_registry_dials_total", "counter",
          "Registry digests to members without a connection (each dials).",
          x->reg.dials);
}

static void
render(struct mm_metrics *m, struct scrape *sc, struct mm_mtext *t)
{
    mm_node *n = m->node;
    struct mm_shard_ctr sum;
    memset(&sum, 0, sizeof(sum));
    uint64_t mb_hist[MB_NBOUNDS + 1] = {0}, mb_sum = 0;
    int missing = 0;
    for (int i = 0; i < sc->nshards; i++) {
        struct snap *sn = &sc->snaps[i];
        if (!sn->seen) {
            missing++;
            continue;
        }
        sum.handled += sn->ctr.handled;
        sum.dropped += sn->ctr.dropped;
        sum.crashes += sn->ctr.crashes;
        sum.restarts += sn->ctr.restarts;
        for (int k = 0; k < MM_CALL_ST_N; k++)
            sum.calls[k] += sn->ctr.calls[k];
        sum.ht_count += sn->ctr.ht_count;
        sum.ht_sum_ns += sn->ctr.ht_sum_ns;
        for (int k = 0; k <= MM_HT_NBOUNDS; k++)
            sum.ht[k] += sn->ctr.ht[k];
        for (int k = 0; k <= MB_NBOUNDS; k++)
            mb_hist[k] += sn->mb_hist[k];
        mb_sum += sn->mb_sum;
    }
    family(t, "murmer_node_info", "gauge",
           "The node's name, id and generation; the value is 1.");
    mm__mtext_printf(t, "murmer_node_info{name=\"");
    mm__mtext_label(t, mm_node_name(n));
    mm__mtext_printf(t, "\",id=\"%s\",generation=\"%llu\"} 1\n", mm_node_id(n),
                     (unsigned long long)mm_node_generation(n));
    one_u(t, "murmer_shards", "gauge", "Shards (loops and threads).",
          (uint64_t)sc->nshards);
    one_u(t, "murmer_scrape_shards_missing", "gauge",
          "Shards that did not answer this scrape in time (left out).",
          (uint64_t)missing);
    /* Actors by type, merged across shards (few types: a linear merge). */
    family(t, "murmer_actors", "gauge", "Started actors, by type.");
    struct mm_mtext types_msgs = {0}, types_bytes = {0};
    for (int i = 0; i < sc->nshards; i++) {
        struct snap *sn = &sc->snaps[i];
        if (!sn->seen) continue;
        for (size_t k = 0; k < sn->ntypes; k++) {
            const struct mm_type_info *ti = sn->types[k].ti;
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) {
                if (!sc->snaps[j].seen) continue;
                for (size_t l = 0; l < sc->snaps[j].ntypes; l++)
                    if (sc->snaps[j].types[l].ti == ti) seen = 1;
            }
            if (seen) continue;
            uint64_t a = 0, msgs = 0, bytes = 0;
            for (int j = i; j < sc->nshards; j++) {
                if (!sc->snaps[j].seen) continue;
                for (size_t l = 0; l < sc->snaps[j].ntypes; l++)
                    if (sc->snaps[j].types[l].ti == ti) {
                        a += sc->snaps[j].types[l].actors;
                        msgs += sc->snaps[j].types[l].messages;
                        bytes += sc->snaps[j].types[l].bytes;
                    }
            }
            const char *name = ti ? ti->type->name : "other";
            mm__mtext_printf(t, "murmer_actors{type=\"");
            mm__mtext_label(t, name);
            mm__mtext_printf(t, "\"} %llu\n", (unsigned long long)a);
            mm__mtext_printf(&types_msgs, "murmer_mailbox_messages{type=\"");
            mm__mtext_label(&types_msgs, name);
            mm__mtext_printf(&types_msgs, "\"} %llu\n",
                             (unsigned long long)msgs);
            mm__mtext_printf(&types_bytes, "murmer_mailbox_bytes{type=\"");
            mm__mtext_label(&types_bytes, name);
            mm__mtext_printf(&types_bytes, "\"} %llu\n",
                             (unsigned long long)bytes);
        }
    }
    family(t, "murmer_mailbox_messages", "gauge",
           "Messages waiting in the mailboxes of started actors, by type.");
    if (types_msgs.len)
        mm__mtext_printf(t, "%.*s", (int)types_msgs.len, types_msgs.p);
    family(t, "murmer_mailbox_bytes", "gauge",
           "Bytes waiting in the mailboxes of started actors, by type.");
    if (types_bytes.len)
        mm__mtext_printf(t, "%.*s", (int)types_bytes.len, types_bytes.p);
    t->oom |= types_msgs.oom | types_bytes.oom;
    mm__free(types_msgs.p);
    mm__free(types_bytes.p);
    family(t, "murmer_mailbox_depth_messages", "histogram",
           "Mailbox depth of each started actor, at the scrape.");
    uint64_t cum = 0;
    for (int k = 0; k <= MB_NBOUNDS; k++) {
        cum += mb_hist[k];
        if (k < MB_NBOUNDS)
            mm__mtext_printf(
                t,
                "murmer_mailbox_depth_messages_bucket{le=\"%llu\"} "
                "%llu\n",
                (unsigned long long)mb_bounds[k], (unsigned long long)cum);
        else
            mm__mtext_printf(
                t,
                "murmer_mailbox_depth_messages_bucket{le=\"+Inf\"} "
                "%llu\n",
                (unsigned long long)cum);
    }
    sample_u(t, "murmer_mailbox_depth_messages_sum", mb_sum);
    sample_u(t, "murmer_mailbox_depth_messages_count", cum);
    one_u(t, "murmer_messages_processed_total", "counter",
          "Messages a handler ran for.", sum.handled);
    one_u(t, "murmer_messages_dropped_total", "counter",
          "Messages dequeued but not run: expired, caller gone, unknown type.",
          sum.dropped);
    one_u(t, "murmer_handler_crashes_total", "counter",
          "Handlers that returned an error (the actor crashed).", sum.crashes);
    one_u(t, "murmer_actor_restarts_total", "counter",
          "Actor restarts scheduled by supervision.", sum.restarts);
    family(t, "murmer_calls_total", "counter",
           "Calls completed on this node, by status (made here, or served here "
           "for a caller over the network).");
    for (int k = 0; k < MM_CALL_ST_N; k++) {
        const char *st = k == 0 ? "ok"
                         : k == MM_CALL_ST_N - 1
                             ? "other"
                             : mm_err_name(MM_ENOTFOUND - (k - 1));
        mm__mtext_printf(t, "murmer_calls_total{status=\"%s\"} %llu\n", st,
                         (unsigned long long)sum.calls[k]);
    }
    static const uint64_t ht_bounds[MM_HT_NBOUNDS] = MM_HT_BOUNDS;
    family(
        t, "murmer_handler_duration_seconds", "histogram",
        "Run time of one handler call, sampled: one message in 128 per shard.");
    cum = 0;
    for (int k = 0; k <= MM_HT_NBOUNDS; k++) {
        cum += sum.ht[k];
        if (k < MM_HT_NBOUNDS)
            mm__mtext_printf(
                t, "murmer_handler_duration_seconds_bucket{le=\"%g\"} %llu\n",
                (double)ht_bounds[k] * 1e-9, (unsigned long long)cum);
        else
            mm__mtext_printf(
                t, "murmer_handler_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    mm__mtext_printf(t, "murmer_handler_duration_seconds_sum %.9f\n",
                     (double)sum.ht_sum_ns * 1e-9);
    sample_u(t, "murmer_handler_duration_seconds_count", sum.ht_count);
    if (sc->nshards > 0 && sc->snaps[0].seen && sc->net_ok)
        render_net(t, &sc->net);
    one_u(t, "murmer_metrics_scrapes_total", "counter",
          "Scrapes of this endpoint answered.", m->scrapes_total);
    one_u(t, "murmer_metrics_refused_total", "counter",
          "Connections to this endpoint closed unanswered: over the cap.",
          m->refused);
    one_u(t, "murmer_metrics_bad_requests_total", "counter",
          "Requests to this endpoint answered 4xx.", m->bad_requests);
    render_process(m, t);
}

/* ---- HTTP ---------------------------------------------------------------- */

static void
conn_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0) return;
    mm__free(c->resp);
    mm__free(c);
}

static void
conn_close(struct conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    struct mm_metrics *m = c->srv;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    m->nconns--;
    if (c->scrape) {
        c->scrape->conn = NULL;
        c->scrape = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void
write_cb(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void
conn_answer(struct conn *c, int status, const char *reason, const char *extra,
            const char *body, size_t blen)
{
    if (c->answered || c->closing) return;
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "%s"
                      "Connection: close\r\n\r\n",
                      status, reason,
                      status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                                    : "text/plain; charset=utf-8",
                      blen, extra ? extra : "");
    c->resp = mm__malloc((size_t)hl + blen);
    if (!c->resp) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)hl);
    if (blen) memcpy(c->resp + hl, body, blen);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hl + blen));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0)
        conn_close(c);
}

static void
conn_error(struct conn *c, int status, const char *reason, const char *extra)
{
    c->srv->bad_requests++;
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    conn_answer(c, status, reason, extra, body, (size_t)n);
}

/* The scrape of |c| is complete (or its wait is over): answer. */
static void
scrape_answer(struct mm_metrics *m, struct scrape *sc)
{
    struct conn *c = sc->conn;
    sc->conn = NULL;
    if (!c) return;
    c->scrape = NULL;
    struct mm_mtext t = {0};
    /* A shard's part is complete once |done| (set under the lock); one
     * that answers later is left out of this scrape. */
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < sc->nshards; i++)
        sc->snaps[i].seen = sc->snaps[i].done;
    pthread_mutex_unlock(&m->lock);
    m->scrapes_total++;
    render(m, sc, &t);
    if (t.oom) {
        mm__free(t.p);
        conn_error(c, 500, "Internal Server Error", NULL);
        return;
    }
    conn_answer(c, 200, "OK", NULL, t.p, t.len);
    mm__free(t.p);
}

/* Answers the complete scrapes and those past their wait; frees those
 * that every shard has run. */
static void
scrapes_sweep(struct mm_metrics *m)
{
    uint64_t now = uv_now(&m->loop);
    struct scrape **pp = &m->scrapes;
    while (*pp) {
        struct scrape *sc = *pp;
        pthread_mutex_lock(&m->lock);
        int pending = sc->pending;
        pthread_mutex_unlock(&m->lock);
        if (sc->conn && (pending == 0 || now >= sc->t0 + MM_METRICS_GATHER_MS))
            scrape_answer(m, sc);
        if (pending == 0 && !sc->conn) {
            *pp = sc->next;
            scrape_free(sc);
            continue;
        }
        pp = &sc->next;
    }
}

static void
gather_timer_cb(uv_timer_t *t)
{
    scrapes_sweep(t->data);
}

static void
scrape_begin(struct conn *c)
{
    struct mm_metrics *m = c->srv;
    mm_node *n = m->node;
    struct scrape *sc = mm__calloc(1, sizeof(*sc));
    if (sc) {
        sc->srv = m;
        sc->nshards = mm_node_shards(n);
        sc->snaps = mm__calloc((size_t)sc->nshards, sizeof(*sc->snaps));
        if (n->cluster)
            sc->net.peers =
                mm__calloc(MM_METRICS_PEERS_MAX, sizeof(*sc->net.peers));
    }
    if (!sc || !sc->snaps || (n->cluster && !sc->net.peers)) {
        if (sc) scrape_free(sc);
        conn_error(c, 500, "Internal Server Error", NULL);
        return;
    }
    sc->conn = c;
    sc->t0 = uv_now(&m->loop);
    c->scrape = sc;
    sc->next = m->scrapes;
    m->scrapes = sc;
    for (int i = 0; i < sc->nshards; i++) {
        struct snap *sn = &sc->snaps[i];
        sn->sc = sc;
        /* Without room for the types the shard still sends its counters. */
        sn->types = mm__calloc(MM_METRICS_TYPES_MAX + 1, sizeof(*sn->types));
        pthread_mutex_lock(&m->lock);
        sc->pending++;
        pthread_mutex_unlock(&m->lock);
        if (mm_node_post(n, i, gather_on_shard, sn) != 0) {
            pthread_mutex_lock(&m->lock);
            sc->pending--;
            pthread_mutex_unlock(&m->lock);
        }
    }
    uv_timer_start(&m->gather, gather_timer_cb, MM_METRICS_GATHER_MS + 1, 0);
    scrapes_sweep(m);
}

/* A complete head is in c->req[0..c->len): 0 once answered or begun. */
static void
conn_request(struct conn *c)
{
    /* METHOD SP TARGET SP HTTP/1.x CRLF */
    char *eol = memchr(c->req, '\n', c->len);
    char *sp1 = eol ? memchr(c->req, ' ', (size_t)(eol - c->req)) : NULL;
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2 || sp1 == c->req || sp2 == sp1 + 1 || eol - sp2 < 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        conn_error(c, 400, "Bad Request", NULL);
        return;
    }
    size_t mlen = (size_t)(sp1 - c->req);
    size_t tlen = (size_t)(sp2 - sp1 - 1);
    const char *target = sp1 + 1;
    /* The path alone decides (a query string is ignored). */
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    if (plen != 8 || memcmp(target, "/metrics", 8) != 0) {
        conn_error(c, 404, "Not Found", NULL);
        return;
    }
    if (mlen != 3 || memcmp(c->req, "GET", 3) != 0) {
        conn_error(c, 405, "Method Not Allowed", "Allow: GET\r\n");
        return;
    }
    scrape_begin(c);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct conn *c = h->data;
    /* One byte more than the bound, to see it crossed. */
    static char sink[1];
    if (c->len >= sizeof(c->req)) {
        *buf = uv_buf_init(sink, sizeof(sink));
        return;
    }
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static int
head_complete(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\n') continue;
        if (p[i + 1] == '\n') return 1;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') return 1;
    }
    return 0;
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->answered || c->scrape) return;
    if (buf->base != c->req + c->len ||
        c->len + (size_t)nread >= sizeof(c->req)) {
        if (buf->base == c->req + c->len) c->len += (size_t)nread;
        if (!head_complete(c->req, c->len)) {
            conn_error(c, 431, "Request Header Fields Too Large", NULL);
            return;
        }
    } else {
        c->len += (size_t)nread;
    }
    if (head_complete(c->req, c->len)) conn_request(c);
}

static void
deadline_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void
handle_free_cb(uv_handle_t *h)
{
    mm__free(h);
}

static void
accept_cb(uv_stream_t *server, int status)
{
    struct mm_metrics *m = server->data;
    if (status < 0) return;
    struct conn *c = mm__calloc(1, sizeof(*c));
    if (!c) {
        /* Take it off the backlog all the same. */
        uv_tcp_t *tmp = mm__malloc(sizeof(*tmp));
        if (tmp && uv_tcp_init(&m->loop, tmp) == 0) {
            (void)uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, handle_free_cb);
        } else {
            mm__free(tmp);
        }
        return;
    }
    c->srv = m;
    uv_tcp_init(&m->loop, &c->tcp);
    uv_timer_init(&m->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = m->conns.next;
    c->prev = &m->conns;
    m->conns.next->prev = c;
    m->conns.next = c;
    m->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (m->nconns > MM_METRICS_CONNS_MAX) {
        m->refused++;
        conn_close(c);
        return;
    }
    c->t0 = uv_now(&m->loop);
    uv_timer_start(&c->timer, deadline_cb, MM_METRICS_DEADLINE_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
        conn_close(c);
}

/* ---- the thread ---------------------------------------------------------- */

static void
async_cb(uv_async_t *a)
{
    struct mm_metrics *m = a->data;
    if (atomic_load(&m->stop)) {
        while (m->conns.next != &m->conns)
            conn_close(m->conns.next);
        uv_close((uv_handle_t *)&m->listener, NULL);
        uv_close((uv_handle_t *)&m->gather, NULL);
        pthread_mutex_lock(&m->lock);
        m->running = 0;
        pthread_mutex_unlock(&m->lock);
        uv_close((uv_handle_t *)&m->async, NULL);
        return;
    }
    scrapes_sweep(m);
}

static void
metrics_main(void *arg)
{
    struct mm_metrics *m = arg;
    uv_run(&m->loop, UV_RUN_DEFAULT);
}

static int
parse_addr(const char *hostport, struct sockaddr_storage *ss)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport) return MM_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || port < 0 || port > 65535) return MM_EINVAL;
    char host[64];
    size_t hl = (size_t)(colon - hostport);
    if (hostport[0] == '[') {
        if (hl < 3 || hostport[hl - 1] != ']' || hl - 2 >= sizeof(host))
            return MM_EINVAL;
        memcpy(host, hostport + 1, hl - 2);
        host[hl - 2] = '\0';
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0
                   ? 0
                   : MM_EINVAL;
    }
    if (hl >= sizeof(host)) return MM_EINVAL;
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0
               ? 0
               : MM_EINVAL;
}

static double
process_start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
                     "%*d %*d %*d %*d %*d %*d %llu",
                     &start) != 1)
        return 0;
    f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long btime = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1) break;
    fclose(f);
    long tick = sysconf(_SC_CLK_TCK);
    if (!btime || tick <= 0) return 0;
    return (double)btime + (double)start / (double)tick;
}

int
mm__metrics_start(mm_node *n, const char *hostport)
{
    if (n->metrics) return MM_EEXISTS;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!hostport || parse_addr(hostport, &ss) != 0) return MM_EINVAL;
    struct mm_metrics *m = mm__calloc(1, sizeof(*m));
    if (!m) return UV_ENOMEM;
    m->node = n;
    m->conns.next = m->conns.prev = &m->conns;
    m->start_time = process_start_time();
    int rc = uv_loop_init(&m->loop);
    if (rc) {
        mm__free(m);
        return rc;
    }
    pthread_mutex_init(&m->lock, NULL);
    uv_tcp_init(&m->loop, &m->listener);
    uv_async_init(&m->loop, &m->async, async_cb);
    uv_timer_init(&m->loop, &m->gather);
    m->listener.data = m->async.data = m->gather.data = m;
    m->running = 1;
    rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&m->listener, MM_METRICS_CONNS_MAX,
                       accept_cb);
    if (!rc) {
        struct sockaddr_storage b;
        int bl = sizeof(b);
        rc = uv_tcp_getsockname(&m->listener, (struct sockaddr *)&b, &bl);
        char ip[64] = "";
        if (!rc && b.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&b, ip, sizeof(ip));
            snprintf(m->addr, sizeof(m->addr), "[%s]:%d", ip,
                     ntohs(((struct sockaddr_in6 *)&b)->sin6_port));
        } else if (!rc) {
            uv_ip4_name((struct sockaddr_in *)&b, ip, sizeof(ip));
            snprintf(m->addr, sizeof(m->addr), "%s:%d", ip,
                     ntohs(((struct sockaddr_in *)&b)->sin_port));
        }
    }
    if (!rc) rc = uv_thread_create(&m->thread, metrics_main, m);
    if (rc) {
        atomic_store(&m->stop, 1);
        async_cb(&m->async);
        uv_run(&m->loop, UV_RUN_DEFAULT);
        uv_loop_close(&m->loop);
        pthread_mutex_destroy(&m->lock);
        mm__free(m);
        return rc;
    }
    m->has_thread = 1;
    n->metrics = m;
    MM_LOG(MM_LOG_INFO, "metrics", "serving GET /metrics on http://%s",
           m->addr);
    return 0;
}

void
mm__metrics_stop(struct mm_metrics *m)
{
    if (!m || !m->has_thread) return;
    atomic_store(&m->stop, 1);
    uv_async_send(&m->async);
    uv_thread_join(&m->thread);
    m->has_thread = 0;
}

void
mm__metrics_free(struct mm_metrics *m)
{
    if (!m) return;
    mm__metrics_stop(m);
    /* No shard runs now: what a shard was asked for it did, or never
     * will. */
    while (m->scrapes) {
        struct scrape *sc = m->scrapes;
        m->scrapes = sc->next;
        scrape_free(sc);
    }
    uv_loop_close(&m->loop);
    pthread_mutex_destroy(&m->lock);
    mm__free(m);
}

const char *
mm__metrics_addr(const struct mm_metrics *m)
{
    return m->addr;
}

/* ---- murmer top ---------------------------------------------------------- */

struct top_part {
    struct mm_top *t;
    struct snap sn;            /* counters only (no types) */
    struct mm_top_actor *heap; /* min-heap by (mailbox, handled) */
    size_t nheap;
    uint64_t actors, calls;
    int done; /* under t->lock */
    int seen; /* |done| as shard 0 took it */
};

struct mm_top {
    struct mm_top *next, **list; /* shard 0 */
    mm_node *n;
    mm_top_cb cb;
    void *data;
    int refs;      /* shard 0: the caller's, the shards' */
    int cancelled; /* shard 0 */
    size_t cap;
    char *prefix; /* NULL: every actor */
    size_t prefix_len;
    pthread_mutex_t lock;
    int pending, nshards;
    struct top_part *parts;
    struct mm_metrics_net net;
    int net_ok;
    struct mm_top_snap snap;
};

static int
top_less(const struct mm_top_actor *a, const struct mm_top_actor *b)
{
    if (a->mailbox != b->mailbox) return a->mailbox < b->mailbox;
    return a->handled < b->handled;
}

static void
heap_down(struct mm_top_actor *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && top_less(&h[l], &h[m])) m = l;
        if (r < n && top_less(&h[r], &h[m])) m = r;
        if (m == i) return;
        struct mm_top_actor x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

static void
heap_up(struct mm_top_actor *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!top_less(&h[i], &h[p])) return;
        struct mm_top_actor x = h[i];
        h[i] = h[p];
        h[p] = x;
        i = p;
    }
}

/* On the shard's thread: keeps |a| when it is among the part's cap. */
static void
top_visit(void *arg, const struct mm_actor *a, uint64_t depth)
{
    struct top_part *p = arg;
    p->actors++;
    size_t cap = p->t->cap;
    if (!p->heap || cap == 0) return;
    const char *pf = p->t->prefix;
    if (pf && (!a->label || strncmp(a->label, pf, p->t->prefix_len) != 0))
        return;
    struct mm_top_actor x = {a->id,        NULL,           a->ti->type->name,
                             depth,        a->handled,     a->ht_count,
                             a->ht_sum_ns, a->sup.restarts};
    if (p->nheap == cap && !top_less(&p->heap[0], &x)) return;
    if (a->label && !(x.label = mm__strdup(a->label))) return;
    if (p->nheap < cap) {
        p->heap[p->nheap] = x;
        heap_up(p->heap, p->nheap++);
        return;
    }
    mm__free(p->heap[0].label);
    p->heap[0] = x;
    heap_down(p->heap, p->nheap, 0);
}

static void top_unref(struct mm_top *t);

/* Shard 0: the snapshot from the parts whose shard has answered. */
static void
top_build(struct mm_top *t)
{
    struct mm_top_snap *x = &t->snap;
    size_t total = 0;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < t->nshards; i++)
        t->parts[i].seen = t->parts[i].done;
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < t->nshards; i++)
        if (t->parts[i].seen) total += t->parts[i].nheap;
    x->actors = mm__calloc(total ? total : 1, sizeof(*x->actors));
    for (int i = 0; i < t->nshards; i++) {
        struct top_part *p = &t->parts[i];
        if (!p->seen) {
            x->shards_missing++;
            continue;
        }
        const struct mm_shard_ctr *c = &p->sn.ctr;
        x->ctr.handled += c->handled;
        x->ctr.dropped += c->dropped;
        x->ctr.crashes += c->crashes;
        x->ctr.restarts += c->restarts;
        for (int k = 0; k < MM_CALL_ST_N; k++)
            x->ctr.calls[k] += c->calls[k];
        x->ctr.ht_count += c->ht_count;
        x->ctr.ht_sum_ns += c->ht_sum_ns;
        x->calls_in_flight += p->calls;
        x->actors_total += p->actors;
        for (size_t k = 0; x->actors && k < p->nheap; k++) {
            x->actors[x->nactors++] = p->heap[k];
            p->heap[k].label = NULL; /* moved */
        }
    }
    /* Deepest first; the shards' best, cut to the cap. */
    for (size_t i = 1; i < x->nactors; i++) {
        struct mm_top_actor v = x->actors[i];
        size_t j = i;
        while (j > 0 && top_less(&x->actors[j - 1], &v)) {
            x->actors[j] = x->actors[j - 1];
            j--;
        }
        x->actors[j] = v;
    }
    while (x->nactors > t->cap)
        mm__free(x->actors[--x->nactors].label);
    x->truncated = x->actors_total > x->nactors;
    pthread_mutex_lock(&t->lock);
    int net_ok = t->parts[0].seen && t->net_ok;
    pthread_mutex_unlock(&t->lock);
    if (net_ok) {
        x->conns = t->net.conns;
        x->conns_up = t->net.conns_up;
        x->pkts_in = t->net.quic.pkts_in;
        x->pkts_out = t->net.quic.pkts_out;
        x->bytes_in = t->net.quic.bytes_in;
        x->bytes_out = t->net.quic.bytes_out;
    }
    unsigned long long ut = 0, st = 0, vsz = 0, rss = 0;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tick > 0 && proc_stat(&ut, &st, &vsz, &rss) == 0) {
        x->cpu_s = (double)(ut + st) / (double)tick;
        x->rss = rss * (unsigned long long)(page > 0 ? page : 4096);
    }
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) == 0)
        x->wall_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* Shard 0: every shard answered (or none could be asked). */
static void
top_complete(void *arg)
{
    struct mm_top *t = arg;
    if (!t->cancelled && t->cb) {
        top_build(t);
        t->cb(t->data, t, &t->snap);
    }
    top_unref(t);
}

void
mm__top_now(struct mm_top *t, mm_top_cb cb, void *data)
{
    t->cancelled = 1;
    top_build(t);
    cb(data, t, &t->snap);
}

/* On each shard's thread. */
static void
top_on_shard(void *arg)
{
    struct top_part *p = arg;
    struct mm_top *t = p->t;
    struct mm_shard *s = mm__cur_shard;
    snap_walk(&p->sn, s, top_visit, p);
    for (struct mm_call *c = s->calls.next;
         c != &s->calls && p->calls < MM_TOP_CALLS_WALK; c = c->next)
        p->calls++;
    mm_node *n = s->node;
    if (s->index == 0 && n->cluster && n->cluster_ops->metrics && !s->closing) {
        n->cluster_ops->metrics(n->cluster, &t->net);
        t->net_ok = 1;
    }
    pthread_mutex_lock(&t->lock);
    p->done = 1;
    int last = --t->pending == 0;
    pthread_mutex_unlock(&t->lock);
    /* The last one hands the shards' reference to shard 0. */
    if (last) (void)mm_node_post(n, 0, top_complete, t);
}

static void
top_free(struct mm_top *t)
{
    for (int i = 0; t->parts && i < t->nshards; i++) {
        struct top_part *p = &t->parts[i];
        for (size_t k = 0; k < p->nheap; k++)
            mm__free(p->heap[k].label);
        mm__free(p->heap);
    }
    for (size_t k = 0; k < t->snap.nactors; k++)
        mm__free(t->snap.actors[k].label);
    mm__free(t->snap.actors);
    mm__free(t->parts);
    mm__free(t->prefix);
    pthread_mutex_destroy(&t->lock);
    mm__free(t);
}

static void
top_unref(struct mm_top *t)
{
    if (--t->refs > 0) return;
    struct mm_top **pp = t->list;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp) *pp = t->next;
    top_free(t);
}

struct mm_top *
mm__top_begin(mm_node *n, struct mm_top **list, size_t actors_max,
              const char *prefix, mm_top_cb cb, void *data)
{
    struct mm_top *t = mm__calloc(1, sizeof(*t));
    if (!t) return NULL;
    if (prefix && *prefix) {
        t->prefix = mm__strdup(prefix);
        t->prefix_len = strlen(prefix);
    }
    t->n = n;
    t->cb = cb;
    t->data = data;
    t->cap = actors_max;
    t->nshards = mm_node_shards(n);
    pthread_mutex_init(&t->lock, NULL);
    t->parts = mm__calloc((size_t)t->nshards, sizeof(*t->parts));
    if (!t->parts || (prefix && *prefix && !t->prefix)) {
        top_free(t);
        return NULL;
    }
    for (int i = 0; i < t->nshards; i++) {
        t->parts[i].t = t;
        /* Without room for rows the shard still sends its counters. */
        if (actors_max)
            t->parts[i].heap =
                mm__calloc(actors_max, sizeof(*t->parts[i].heap));
    }
    t->refs = 2;
    t->list = list;
    t->next = *list;
    *list = t;
    t->pending = 1; /* held while posting */
    for (int i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->lock);
        t->pending++;
        pthread_mutex_unlock(&t->lock);
        if (mm_node_post(n, i, top_on_shard, &t->parts[i]) != 0) {
            pthread_mutex_lock(&t->lock);
            t->pending--;
            pthread_mutex_unlock(&t->lock);
        }
    }
    pthread_mutex_lock(&t->lock);
    int last = --t->pending == 0;
    pthread_mutex_unlock(&t->lock);
    if (last && mm_node_post(n, 0, top_complete, t) != 0) top_unref(t);
    return t;
}

void
mm__top_release(struct mm_top *t)
{
    if (!t) return;
    t->cancelled = 1;
    top_unref(t);
}

void
mm__top_free_all(struct mm_top **list)
{
    while (*list) {
        struct mm_top *t = *list;
        *list = t->next;
        top_free(t);
    }
}

/* ---- public -------------------------------------------------------------- */

int
mm_node_serve_metrics(mm_node *n, const char *hostport)
{
    return mm__metrics_start(n, hostport);
}

const char *
mm_node_metrics_addr(const mm_node *n)
{
    return n->metrics ? n->metrics->addr : NULL;
}
