/*
 * cluster.c — the network half of a node, on shard 0, composed: it loads
 * the identity and the cluster key, builds the wire (net.c), membership,
 * registry replication, client sessions and mDNS discovery, and wires them
 * together with callbacks.  It holds no protocol of its own.
 */
#include "cluster.h"

#include <stdio.h>
#include <sys/socket.h>

#include "ckey.h"
#include "identity.h"
#include "metrics.h"
#include "discovery/mdns.h"
#include "membership/membership.h"
#include "net.h"
#include "registry.h"
#include "session.h"
#include "transport/quic.h"

struct mm_cluster {
    mm_node *node;
    struct mm_identity id;
    struct mm_keyring kr;
    struct mm_net *net;               /* owned */
    struct mm_membership *membership; /* owned */
    struct mm_registry *registry;     /* owned */
    struct mm_session *session;       /* owned */
    struct mm_mdns *mdns;             /* owned; NULL when off */
    int follow;                       /* the registry's oplog follower */
};

/* ---- wiring -------------------------------------------------------------- */

/* Membership reports a member's state (enum mm_swim_state): the registry
 * view follows it (alive/suspect: in view; failed/left: out). */
static void
member_state_cb(void *data, const uint8_t id[MM_NODE_ID_LEN], uint64_t gen,
                int swim_state)
{
    struct mm_cluster *c = data;
    if (c->registry)
        mm__registry_member_state(c->registry, id, gen, swim_state);
}

/* Discovery (mDNS) found a node with our key at "ip:port" (|id| may be
 * NULL): membership joins it. */
static void
discovered_cb(void *data, const char *hostport, const uint8_t *id)
{
    struct mm_cluster *c = data;
    if (mm__net_stopped(c->net)) return;
    if (id && memcmp(id, c->node->id, MM_NODE_ID_LEN) == 0) return;
    if (id && mm__net_connected(c->net, id)) return; /* already connected */
    if (mm__membership_join(c->membership, hostport) == 0)
        MM_LOG(MM_LOG_INFO, "cluster", "discovered %s: joining", hostport);
}

/* The registry follows the receptionist's oplog: each batch of newly
 * applied records goes to the connected peers. */
static void
registry_follow_cb(void *data, const uint8_t *batch, size_t len)
{
    mm__registry_push(data, batch, len);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int
host_is_wildcard(const char *hostport)
{
    return strncmp(hostport, "0.0.0.0:", 8) == 0 ||
           strncmp(hostport, "[::]:", 5) == 0 || hostport[0] == ':';
}

static int
host_is_loopback(const char *hostport)
{
    return strncmp(hostport, "127.", 4) == 0 ||
           strncmp(hostport, "localhost:", 10) == 0 ||
           strncmp(hostport, "[::1]:", 6) == 0;
}

/*
 * A keyring saved in the data dir by a rotation (`murmer keys`) wins over
 * the key given (--cluster-key, environment): it is what the cluster used
 * at the last change, and the key given may be one it has since removed.
 * A corrupt file is refused, never silently replaced.
 */
static int
cluster_saved_keyring(struct mm_cluster *c, const char *data_dir)
{
    char err[768];
    struct mm_keyring saved;
    int rc = mm__keyring_load_saved(&saved, data_dir, err, sizeof(err));
    if (rc == MM_ENOTFOUND) return 0;
    if (rc) {
        MM_LOG(MM_LOG_ERR, "ckey", "%s", err);
        return rc;
    }
    if (!c->kr.dev && mm__keyring_find(&saved, c->kr.ids[0]) < 0)
        MM_LOG(MM_LOG_WARN, "ckey",
               "the cluster key given is not in the keyring saved in %s: "
               "using the saved keyring (%zu keys)",
               data_dir, saved.n);
    mm__keyring_release(&c->kr);
    c->kr = saved;
    mm__keyring_release(&saved);
    return 0;
}

int
mm__cluster_new(struct mm_cluster **out, mm_node *n, const mm_node_config *cfg)
{
    struct mm_cluster *c = mm__calloc(1, sizeof(*c));
    if (!c) return UV_ENOMEM;
    c->node = n;
    c->id.lock_fd = -1;
    int rc;
    if (host_is_wildcard(cfg->listen) && !cfg->advertise) {
        MM_LOG(MM_LOG_ERR, "cluster",
               "listening on a wildcard address (%s) needs --advertise",
               cfg->listen);
        rc = MM_EINVAL;
        goto fail;
    }
    char kerr[512];
    rc = mm__keyring_load(&c->kr, cfg->cluster_key_file, kerr, sizeof(kerr));
    if (kerr[0]) /* the refusal, or the dev-mode warning */
        MM_LOG(rc ? MM_LOG_ERR : MM_LOG_WARN, "ckey", "%s", kerr);
    if (rc) goto fail;
    if (mm__keyring_kind(&c->kr) != MM_KEY_CLUSTER) {
        MM_LOG(MM_LOG_ERR, "ckey",
               "a %s key cannot start a node: give the cluster key",
               mm__key_kind_name(mm__keyring_kind(&c->kr)));
        rc = MM_EKEY;
        goto fail;
    }
    if (c->kr.dev) {
        if (!host_is_loopback(cfg->listen) && !cfg->insecure) {
            MM_LOG(MM_LOG_ERR, "cluster",
                   "no cluster key: dev mode is loopback only (give "
                   "--cluster-key, or --insecure)");
            rc = MM_EKEY;
            goto fail;
        }
    }
    char dir[1024];
    const char *data_dir = cfg->data_dir;
    if (!data_dir) {
        rc = mm__identity_default_dir(dir, sizeof(dir), n->name, 0);
        if (rc) goto fail;
        data_dir = dir;
    }
    rc = mm__identity_load(&c->id, data_dir, 1);
    if (rc) goto fail;
    if ((rc = cluster_saved_keyring(c, data_dir)) != 0) goto fail;
    memcpy(n->id, c->id.id, MM_NODE_ID_LEN);
    memcpy(n->id_hex, c->id.hex, sizeof(n->id_hex));
    n->generation = c->id.generation;

    struct mm_net_config nc = {
        .node = n,
        .id = &c->id,
        .kr = &c->kr,
        .listen = cfg->listen,
        .advertise = cfg->advertise,
        .max_frame = cfg->max_frame,
        .max_connections = cfg->max_connections,
        .seeds = cfg->join,
        .nseeds = cfg->njoin,
    };
    rc = mm__net_new(&c->net, &nc);
    if (rc) goto fail;
    struct mm_quic *q = mm__net_quic(c->net);
    struct sockaddr_storage wake;
    socklen_t wake_len;
    if (mm__quic_wake_addr(q, &wake, &wake_len) == 0 &&
        (rc = mm__shard_set_wake(&n->shards[0], (struct sockaddr *)&wake,
                                 wake_len)) != 0) {
        MM_LOG(MM_LOG_INFO, "cluster", "no hot waits: %s", strerror(-rc));
        rc = 0;
    }
    n->addr =
        mm__strdup(cfg->advertise ? cfg->advertise : mm__quic_local_addr(q));
    if (!n->addr) {
        rc = UV_ENOMEM;
        goto fail;
    }
    struct mm_membership_deps md = {
        .node = n,
        .net = c->net,
        .id = &c->id,
        .kr = &c->kr,
        .loop = &n->shards[0].loop,
        .tq = &n->shards[0].tq,
        .member_state = member_state_cb,
        .data = c,
    };
    if ((rc = mm__membership_new(&c->membership, &md, cfg)) != 0 ||
        (rc = mm__registry_new(&c->registry, n, c->net, &n->shards[0].tq)) !=
            0 ||
        (rc = mm__session_new(&c->session, n, c->net, c->membership)) != 0)
        goto fail;
    mm__session_set_keyring(c->session, &c->kr, c->id.dir);
    /* mDNS: on by default with a real key; never in dev mode. */
    int mdns = cfg->mdns < 0 ? !c->kr.dev : cfg->mdns;
    if (mdns && c->kr.dev) {
        MM_LOG(MM_LOG_WARN, "cluster", "mDNS stays off in dev mode");
        mdns = 0;
    }
    struct mm_mdns_deps dd = {
        .node = n,
        .kr = &c->kr,
        .loop = &n->shards[0].loop,
        .discovered = discovered_cb,
        .data = c,
    };
    if (mdns && (rc = mm__mdns_new(&c->mdns, &dd)) != 0) goto fail;
    *out = c;
    return 0;
fail:
    mm__cluster_free(c);
    return rc;
}

void
mm__cluster_free(struct mm_cluster *c)
{
    if (!c) return;
    mm__net_close_now(c->net);
    if (c->follow && c->node->recep) mm__registry_unfollow(c->node, c->follow);
    if (c->mdns) mm__mdns_free(c->mdns);
    if (c->session) mm__session_free(c->session);
    if (c->registry) mm__registry_free(c->registry);
    if (c->membership) mm__membership_free(c->membership);
    mm__net_free(c->net);
    mm__identity_release(&c->id);
    mm__keyring_release(&c->kr);
    mm__free(c);
}

void
mm__cluster_start(struct mm_cluster *c)
{
    mm__net_start(c->net);
    mm__membership_start(c->membership);
    /* The registry's heads are signed with the identity key. */
    int rc = mm__recep_set_identity(c->node, &c->id);
    if (rc)
        MM_LOG(MM_LOG_ERR, "cluster", "registry cannot sign: %s",
               mm_strerror(rc));
    int h = mm__recep_follow_batches(c->node, registry_follow_cb, c->registry);
    if (h > 0) c->follow = h;
    mm__registry_start(c->registry);
    if (c->mdns) mm__mdns_start(c->mdns);
    mm__session_local_start(c->session, c->id.dir);
}

void
mm__cluster_leave(struct mm_cluster *c, void (*done)(void *data), void *data)
{
    mm__membership_leave(c->membership, done, data);
}

static void
cluster_send(struct mm_cluster *c, mm_msg *m)
{
    mm__net_send(c->net, m);
}

static void
cluster_stop(struct mm_cluster *c)
{
    if (c->session) mm__session_stop(c->session);
    mm__net_stop(c->net);
}

static void
cluster_close(struct mm_cluster *c)
{
    if (c->mdns) mm__mdns_close(c->mdns);
    if (c->membership) mm__membership_close(c->membership);
    if (c->registry) mm__registry_close(c->registry);
    mm__net_close(c->net);
}

/* ---- metrics (shard 0, for a scrape) ------------------------------------ */

struct metrics_peers {
    struct mm_cluster *c;
    struct mm_metrics_net *out;
};

static int
metrics_peer_cb(void *data, const uint8_t id[MM_NODE_ID_LEN],
                struct mm_qconn *conn)
{
    struct metrics_peers *mp = data;
    struct mm_metrics_net *out = mp->out;
    if (out->npeers == MM_METRICS_PEERS_MAX) {
        out->peers_left_out++;
        return 0;
    }
    struct mm_metrics_peer *p = &out->peers[out->npeers++];
    mm__hex(p->id, id, MM_NODE_ID_LEN);
    const struct mm_swim_member *mb =
        mm__membership_find(mp->c->membership, id);
    snprintf(p->name, sizeof(p->name), "%s", mb ? mb->rec->name : "");
    mm__quic_conn_stat(conn, &p->st);
    return 0;
}

static void
cluster_metrics(struct mm_cluster *c, struct mm_metrics_net *out)
{
    mm__membership_count(c->membership, out->members);
    out->swim = *mm__membership_stats(c->membership);
    mm__membership_counters(c->membership, &out->mc);
    out->seal = *mm__membership_seal_stats(c->membership);
    struct mm_quic *q = mm__net_quic(c->net);
    mm__quic_stats(q, &out->quic);
    out->conns = mm__quic_conn_count(q, &out->conns_up);
    mm__registry_stats(c->registry, &out->reg);
    out->reg_entries = mm__recep_entries(c->node);
    if (out->peers) {
        struct metrics_peers mp = {c, out};
        mm__net_foreach_conn(c->net, metrics_peer_cb, &mp);
    }
}

static void
cluster_set_filter(struct mm_cluster *c,
                   int (*fn)(void *data, const struct sockaddr *to, size_t len,
                             uint32_t *delay_ms),
                   void *data, uint32_t hold_max, size_t hold_bytes)
{
    mm__quic_set_filter(mm__net_quic(c->net), fn, data, hold_max, hold_bytes);
}

static int
cluster_member(struct mm_cluster *c, const uint8_t id[MM_NODE_ID_LEN],
               uint64_t *gen)
{
    const struct mm_swim_member *mb = mm__membership_find(c->membership, id);
    if (gen) *gen = mb ? mb->rec->generation : 0;
    return mb ? (int)mb->state : MM_SWIM_NONE;
}

const struct mm_cluster_ops mm__cluster_ops = {
    cluster_send,    cluster_stop,       cluster_close,
    cluster_metrics, cluster_set_filter, cluster_member};

/* ---- accessors ----------------------------------------------------------- */

struct mm_membership *
mm__cluster_membership(struct mm_cluster *c)
{
    return c->membership;
}

struct mm_registry *
mm__cluster_registry(struct mm_cluster *c)
{
    return c->registry;
}

const struct mm_identity *
mm__cluster_identity(struct mm_cluster *c)
{
    return &c->id;
}

struct mm_net *
mm__cluster_net(struct mm_cluster *c)
{
    return c->net;
}

struct mm_quic *
mm__cluster_quic(struct mm_cluster *c)
{
    return c->net ? mm__net_quic(c->net) : NULL;
}
