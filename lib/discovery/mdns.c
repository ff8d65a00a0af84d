/*
 * mdns.c — mDNS discovery through avahi-client (see mdns.h).
 *
 * avahi-client makes blocking D-Bus calls (docs/design.md, mDNS discovery), so
 * everything avahi runs on a thread of its own around an AvahiSimplePoll.  The
 * thread hands each matching service it resolves to shard 0 through a
 * mutex-protected queue and uv_async_send; shard 0 calls the discovered
 * callback.  Shard 0 only ever touches the queue, an atomic stop flag and the
 * poll's wakeup pipe.
 *
 * The state is shared by shard 0 and the thread and reference-counted, so
 * that a thread stuck in a hung daemon can be left behind at shutdown and
 * free the state itself when its D-Bus call finally times out.
 */
#include "mdns.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/simple-watch.h>
#include <avahi-common/timeval.h>

#include "avahi_dl.h"

#include "../ckey.h"
#include "../common.h"

#ifndef MM_MDNS_CLOSE_MS
#define MM_MDNS_CLOSE_MS 2000 /* bound on joining the thread at close */
#endif
#ifndef MM_MDNS_RETRY_MS
#define MM_MDNS_RETRY_MS 1000 /* reconnect to D-Bus / recreate objects */
#endif
#ifndef MM_MDNS_MAX_RESOLVERS
#define MM_MDNS_MAX_RESOLVERS 64
#endif
#define MDNS_SEEN 64 /* (name, address) pairs already reported */
#define MDNS_NAME_MAX 64
#define MDNS_ADDR_MAX (AVAHI_ADDRESS_STR_MAX + 8)

/* ---- TXT parsing (pure) ----------------------------------------------------
 */

static int
txt_key(const uint8_t *item, size_t len, const char *key, size_t *vlen)
{
    size_t k = strlen(key);
    if (len < k + 1 || memcmp(item, key, k) != 0 || item[k] != '=') return 0;
    *vlen = len - k - 1;
    return 1;
}

static int
txt_is_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
              (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return 1;
}

void
mm__mdns_txt_item(struct mm_mdns_txt *t, const uint8_t *item, size_t len)
{
    size_t vl;
    if (!item) return;
    if (txt_key(item, len, "id", &vl)) {
        char hex[2 * MM_NODE_ID_LEN + 1];
        if (vl != 2 * MM_NODE_ID_LEN || !txt_is_hex(item + 3, vl)) return;
        memcpy(hex, item + 3, vl);
        hex[vl] = '\0';
        if (mm__unhex(t->id, MM_NODE_ID_LEN, hex) == 0) t->has_id = 1;
    } else if (txt_key(item, len, "ck", &vl)) {
        if (vl != 16 || !txt_is_hex(item + 3, vl)) return;
        for (size_t i = 0; i < vl; i++) {
            uint8_t ch = item[3 + i];
            t->ck[i] = (char)(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
        }
        t->ck[vl] = '\0';
        t->has_ck = 1;
    } else if (txt_key(item, len, "v", &vl)) {
        t->bad_v = !(vl == 1 && item[2] == '0' + MM_MDNS_VERSION);
    }
}

int
mm__mdns_txt_match(const struct mm_mdns_txt *t, const char *tag,
                   const uint8_t *self)
{
    if (!t->has_ck || t->bad_v || !tag || strlen(tag) != 16) return 0;
    if (strcmp(t->ck, tag) != 0) return 0;
    if (self && t->has_id && memcmp(t->id, self, MM_NODE_ID_LEN) == 0) return 0;
    return 1;
}

static void
txt_parse(struct mm_mdns_txt *t, AvahiStringList *txt)
{
    memset(t, 0, sizeof(*t));
    for (AvahiStringList *l = txt; l; l = avahi_string_list_get_next(l))
        mm__mdns_txt_item(t, avahi_string_list_get_text(l),
                          avahi_string_list_get_size(l));
}

/* "ip:port" or "[ip6]:port"; 0, or -1 for an address no one can dial. */
static int
addr_format(char *out, size_t outlen, const AvahiAddress *a, uint16_t port)
{
    char ip[AVAHI_ADDRESS_STR_MAX];
    if (!a || port == 0 || !avahi_address_snprint(ip, sizeof(ip), a)) return -1;
    if (a->proto == AVAHI_PROTO_INET6) {
        if (strncasecmp(ip, "fe80:", 5) == 0)
            return -1; /* link-local needs a scope we cannot carry */
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)port);
    } else {
        snprintf(out, outlen, "%s:%u", ip, (unsigned)port);
    }
    return 0;
}

/* ---- shared state ---------------------------------------------------------
 */

struct mdns_found {
    struct mdns_found *next;
    char name[MDNS_NAME_MAX];
    char addr[MDNS_ADDR_MAX];
    int has_id;
    uint8_t id[MM_NODE_ID_LEN];
};

struct mdns_res {
    struct mdns_res *next, **prevp;
    struct mm_mdns *m;
    AvahiServiceResolver *r;
};

struct mm_mdns {
    atomic_int refs;
    atomic_int stop;

    /* shard 0 */
    struct mm_mdns_deps d;
    uv_async_t async;
    int async_init;
    int closed_once;
    pthread_t thread;
    int thread_started;

    /* shared, under |lock| */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int thread_done;
    int async_closed; /* no more uv_async_send */
    struct mdns_found *head, **tail;

    /* the avahi thread only */
    AvahiSimplePoll *sp;
    int wake[2]; /* shard 0 writes a byte to stop the thread */
    AvahiWatch *wake_w;
    AvahiClient *client;
    AvahiEntryGroup *group;
    AvahiServiceBrowser *browser;
    AvahiTimeout *retry;
    struct mdns_res *resolvers;
    unsigned nresolvers;
    int down;      /* the warning for this outage was logged */
    int was_up;    /* we have talked to the daemon before */
    int published; /* ESTABLISHED logged for the current name */
    unsigned renames;
    struct {
        char name[MDNS_NAME_MAX];
        char addr[MDNS_ADDR_MAX];
    } seen[MDNS_SEEN];
    unsigned seen_next;

    /* read-only after new */
    AvahiProtocol proto;
    uint16_t port;
    char name[MDNS_NAME_MAX];
    char idhex[2 * MM_NODE_ID_LEN + 1];
    uint8_t id[MM_NODE_ID_LEN];
    char tag[17];
};

static void
mdns_destroy(struct mm_mdns *m)
{
    struct mdns_found *f, *next;
    for (f = m->head; f; f = next) {
        next = f->next;
        mm__free(f);
    }
    if (m->sp) avahi_simple_poll_free(m->sp);
    if (m->wake[0] >= 0) close(m->wake[0]);
    if (m->wake[1] >= 0) close(m->wake[1]);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    mm__free(m);
}

static void
mdns_unref(struct mm_mdns *m)
{
    if (atomic_fetch_sub(&m->refs, 1) == 1) mdns_destroy(m);
}

/* ---- the avahi thread
 * --------------------------------------------------------- */

static void mdns_connect(struct mm_mdns *m);
static void mdns_publish(struct mm_mdns *m);
static void mdns_browse(struct mm_mdns *m);

/* One warning per outage; later failures of the same outage go to INFO. */
__attribute__((format(printf, 2, 3))) static void
mdns_warn(struct mm_mdns *m, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (m->down) {
        MM_LOG(MM_LOG_INFO, "mdns", "%s", why);
        return;
    }
    m->down = 1;
    MM_LOG(MM_LOG_WARN, "mdns",
           "avahi-daemon unavailable (%s): mDNS discovery paused, retrying "
           "in the background; seeds still work",
           why);
}

static void
mdns_retry_cb(AvahiTimeout *t, void *data)
{
    struct mm_mdns *m = data;
    (void)t;
    if (atomic_load(&m->stop)) return;
    if (!m->client ||
        avahi_client_get_state(m->client) == AVAHI_CLIENT_FAILURE) {
        mdns_connect(m);
        return;
    }
    AvahiClientState st = avahi_client_get_state(m->client);
    if (st == AVAHI_CLIENT_S_RUNNING) {
        mdns_publish(m);
        mdns_browse(m);
    }
}

static void
mdns_retry_later(struct mm_mdns *m)
{
    struct timeval tv;
    const AvahiPoll *p = avahi_simple_poll_get(m->sp);
    avahi_elapse_time(&tv, MM_MDNS_RETRY_MS, 0);
    if (m->retry)
        p->timeout_update(m->retry, &tv);
    else
        m->retry = p->timeout_new(p, &tv, mdns_retry_cb, m);
}

static void
mdns_seen_forget(struct mm_mdns *m, const char *name)
{
    for (unsigned i = 0; i < MDNS_SEEN; i++)
        if (strcmp(m->seen[i].name, name) == 0)
            m->seen[i].name[0] = m->seen[i].addr[0] = '\0';
}

/* 1 if (name, addr) was reported already; else records it. */
static int
mdns_seen_check(struct mm_mdns *m, const char *name, const char *addr)
{
    for (unsigned i = 0; i < MDNS_SEEN; i++)
        if (strcmp(m->seen[i].name, name) == 0 &&
            strcmp(m->seen[i].addr, addr) == 0)
            return 1;
    unsigned i = m->seen_next++ % MDNS_SEEN;
    snprintf(m->seen[i].name, sizeof(m->seen[i].name), "%s", name);
    snprintf(m->seen[i].addr, sizeof(m->seen[i].addr), "%s", addr);
    return 0;
}

static void
mdns_post(struct mm_mdns *m, const char *name, const char *addr,
          const struct mm_mdns_txt *t)
{
    struct mdns_found *f = mm__calloc(1, sizeof(*f));
    if (!f) return;
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->addr, sizeof(f->addr), "%s", addr);
    f->has_id = t->has_id;
    memcpy(f->id, t->id, MM_NODE_ID_LEN);
    pthread_mutex_lock(&m->lock);
    if (m->async_closed) {
        pthread_mutex_unlock(&m->lock);
        mm__free(f);
        return;
    }
    *m->tail = f;
    m->tail = &f->next;
    uv_async_send(&m->async);
    pthread_mutex_unlock(&m->lock);
}

static void
mdns_res_free(struct mdns_res *res)
{
    struct mm_mdns *m = res->m;
    if (res->r) avahi_service_resolver_free(res->r);
    *res->prevp = res->next;
    if (res->next) res->next->prevp = res->prevp;
    m->nresolvers--;
    mm__free(res);
}

static void
mdns_resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface,
                AvahiProtocol proto, AvahiResolverEvent ev, const char *name,
                const char *type, const char *domain, const char *host,
                const AvahiAddress *a, uint16_t port, AvahiStringList *txt,
                AvahiLookupResultFlags flags, void *data)
{
    struct mdns_res *res = data;
    struct mm_mdns *m = res->m;
    (void)iface;
    (void)proto;
    (void)type;
    (void)domain;
    (void)flags;
    res->r = r;
    if (ev == AVAHI_RESOLVER_FOUND && name) {
        struct mm_mdns_txt t;
        char addr[MDNS_ADDR_MAX];
        txt_parse(&t, txt);
        if (!mm__mdns_txt_match(&t, m->tag, m->id)) {
            if (!(t.has_id && memcmp(t.id, m->id, MM_NODE_ID_LEN) == 0))
                MM_LOG(MM_LOG_DEBUG, "mdns",
                       "ignoring '%s' on %s: not our cluster key", name,
                       host ? host : "?");
        } else if (addr_format(addr, sizeof(addr), a, port) != 0) {
            MM_LOG(MM_LOG_DEBUG, "mdns", "ignoring '%s': no usable address",
                   name);
        } else if (!mdns_seen_check(m, name, addr)) {
            mdns_post(m, name, addr, &t);
        }
    } else if (ev == AVAHI_RESOLVER_FAILURE) {
        MM_LOG(MM_LOG_DEBUG, "mdns", "resolving '%s' failed: %s",
               name ? name : "?",
               avahi_strerror(avahi_client_errno(m->client)));
    }
    mdns_res_free(res);
}

static void
mdns_browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
               AvahiBrowserEvent ev, const char *name, const char *type,
               const char *domain, AvahiLookupResultFlags flags, void *data)
{
    struct mm_mdns *m = data;
    /* Not AVAHI_LOOKUP_RESULT_OUR_OWN: avahi sets it by name, so another
     * node's service named like ours while we probe is flagged too.  The
     * id= of the TXT tells ourselves apart. */
    (void)flags;
    switch (ev) {
    case AVAHI_BROWSER_NEW: {
        if (m->nresolvers >= MM_MDNS_MAX_RESOLVERS) {
            MM_LOG(MM_LOG_DEBUG, "mdns", "too many resolvers; '%s' skipped",
                   name);
            break;
        }
        struct mdns_res *res = mm__calloc(1, sizeof(*res));
        if (!res) break;
        res->m = m;
        res->next = m->resolvers;
        if (res->next) res->next->prevp = &res->next;
        res->prevp = &m->resolvers;
        m->resolvers = res;
        m->nresolvers++;
        /* The callback may run (and free |res|) before this returns only
         * on failure, which avahi reports by returning NULL instead. */
        AvahiServiceResolver *r = avahi_service_resolver_new(
            m->client, iface, proto, name, type, domain, m->proto, 0,
            mdns_resolve_cb, res);
        if (!r) {
            MM_LOG(MM_LOG_INFO, "mdns", "cannot resolve '%s': %s", name,
                   avahi_strerror(avahi_client_errno(m->client)));
            mdns_res_free(res);
        } else {
            res->r = r;
        }
        break;
    }
    case AVAHI_BROWSER_REMOVE:
        /* Only a hint: membership alone declares failure. */
        MM_LOG(MM_LOG_DEBUG, "mdns", "'%s' withdrawn", name);
        mdns_seen_forget(m, name);
        break;
    case AVAHI_BROWSER_FAILURE:
        mdns_warn(m, "browsing failed: %s",
                  avahi_strerror(avahi_client_errno(m->client)));
        avahi_service_browser_free(b);
        m->browser = NULL;
        mdns_retry_later(m);
        break;
    case AVAHI_BROWSER_CACHE_EXHAUSTED:
    case AVAHI_BROWSER_ALL_FOR_NOW:
        break;
    }
}

static void
mdns_browse(struct mm_mdns *m)
{
    if (m->browser || !m->client) return;
    m->browser =
        avahi_service_browser_new(m->client, AVAHI_IF_UNSPEC, m->proto,
                                  MM_MDNS_TYPE, NULL, 0, mdns_browse_cb, m);
    if (!m->browser) {
        mdns_warn(m, "cannot browse: %s",
                  avahi_strerror(avahi_client_errno(m->client)));
        mdns_retry_later(m);
    }
}

static void
mdns_rename(struct mm_mdns *m)
{
    char *alt = avahi_alternative_service_name(m->name);
    if (!alt) return;
    MM_LOG(MM_LOG_NOTICE, "mdns", "service name '%s' taken; renaming to '%s'",
           m->name, alt);
    snprintf(m->name, sizeof(m->name), "%s", alt);
    avahi_free(alt);
    m->renames++;
}

static void
mdns_group_cb(AvahiEntryGroup *g, AvahiEntryGroupState st, void *data)
{
    struct mm_mdns *m = data;
    m->group = g;
    switch (st) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        if (!m->published)
            MM_LOG(MM_LOG_INFO, "mdns", "published '%s' %s port %u", m->name,
                   MM_MDNS_TYPE, (unsigned)m->port);
        m->published = 1;
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        mdns_rename(m);
        avahi_entry_group_reset(g);
        m->published = 0;
        if (m->renames < 32) mdns_publish(m);
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        mdns_warn(m, "publishing failed: %s",
                  avahi_strerror(avahi_client_errno(m->client)));
        avahi_entry_group_reset(g);
        m->published = 0;
        mdns_retry_later(m);
        break;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING:
        break;
    }
}

static void
mdns_publish(struct mm_mdns *m)
{
    if (!m->client) return;
    if (!m->group) {
        AvahiEntryGroup *g = avahi_entry_group_new(m->client, mdns_group_cb, m);
        if (!g) {
            mdns_warn(m, "cannot publish: %s",
                      avahi_strerror(avahi_client_errno(m->client)));
            mdns_retry_later(m);
            return;
        }
        m->group = g;
    }
    if (!avahi_entry_group_is_empty(m->group)) return;
    char id[8 + sizeof(m->idhex)], ck[8 + sizeof(m->tag)], v[16];
    snprintf(id, sizeof(id), "id=%s", m->idhex);
    snprintf(ck, sizeof(ck), "ck=%s", m->tag);
    snprintf(v, sizeof(v), "v=%d", MM_MDNS_VERSION);
    AvahiStringList *txt = avahi_string_list_new(id, ck, v, NULL);
    if (!txt) return;
    int rc;
    for (;;) {
        rc = avahi_entry_group_add_service_strlst(
            m->group, AVAHI_IF_UNSPEC, m->proto, AVAHI_PUBLISH_NO_COOKIE,
            m->name, MM_MDNS_TYPE, NULL, NULL, m->port, txt);
        if (rc != AVAHI_ERR_COLLISION || m->renames >= 32) break;
        mdns_rename(m);
    }
    avahi_string_list_free(txt);
    if (rc >= 0) rc = avahi_entry_group_commit(m->group);
    if (rc < 0) {
        mdns_warn(m, "cannot publish '%s': %s", m->name, avahi_strerror(rc));
        avahi_entry_group_reset(m->group);
        mdns_retry_later(m);
    }
}

/* Drops every object bound to the daemon; freeing the entry group makes
 * a live daemon withdraw the service (goodbyes). */
static void
mdns_drop(struct mm_mdns *m)
{
    while (m->resolvers)
        mdns_res_free(m->resolvers);
    if (m->browser) {
        avahi_service_browser_free(m->browser);
        m->browser = NULL;
    }
    if (m->group) {
        avahi_entry_group_free(m->group);
        m->group = NULL;
    }
    m->published = 0;
}

static void
mdns_client_cb(AvahiClient *cl, AvahiClientState st, void *data)
{
    struct mm_mdns *m = data;
    m->client = cl; /* first called from inside avahi_client_new */
    switch (st) {
    case AVAHI_CLIENT_S_RUNNING:
        if (m->down)
            MM_LOG(MM_LOG_NOTICE, "mdns",
                   "avahi-daemon is available%s; publishing '%s'",
                   m->was_up ? " again" : "", m->name);
        m->down = 0;
        m->was_up = 1;
        mdns_publish(m);
        mdns_browse(m);
        break;
    case AVAHI_CLIENT_S_REGISTERING:
    case AVAHI_CLIENT_S_COLLISION:
        /* The host name is (re)probed: re-add our service afterwards. */
        if (m->group) avahi_entry_group_reset(m->group);
        m->published = 0;
        mdns_browse(m);
        break;
    case AVAHI_CLIENT_CONNECTING:
        mdns_warn(m, "%s",
                  m->was_up ? "the daemon went away"
                            : "no daemon on the system bus");
        mdns_drop(m);
        break;
    case AVAHI_CLIENT_FAILURE:
        mdns_warn(m, "%s", avahi_strerror(avahi_client_errno(cl)));
        mdns_drop(m);
        mdns_retry_later(m); /* frees and recreates the client */
        break;
    }
}

static void
mdns_connect(struct mm_mdns *m)
{
    int err = 0;
    if (m->client) {
        mdns_drop(m);
        avahi_client_free(m->client);
        m->client = NULL;
    }
    AvahiClient *cl =
        avahi_client_new(avahi_simple_poll_get(m->sp), AVAHI_CLIENT_NO_FAIL,
                         mdns_client_cb, m, &err);
    if (!cl) {
        m->client = NULL;
        mdns_warn(m, "%s", avahi_strerror(err));
        mdns_retry_later(m);
        return;
    }
    m->client = cl;
}

static void
mdns_wake_cb(AvahiWatch *w, int fd, AvahiWatchEvent ev, void *data)
{
    struct mm_mdns *m = data;
    char buf[16];
    (void)w;
    (void)ev;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    if (atomic_load(&m->stop)) avahi_simple_poll_quit(m->sp);
}

static void *
mdns_thread(void *arg)
{
    struct mm_mdns *m = arg;
    const AvahiPoll *p = avahi_simple_poll_get(m->sp);
    m->wake_w = p->watch_new(p, m->wake[0], AVAHI_WATCH_IN, mdns_wake_cb, m);
    if (!atomic_load(&m->stop)) mdns_connect(m);
    while (!atomic_load(&m->stop))
        if (avahi_simple_poll_iterate(m->sp, -1) != 0) break;
    /* Leave: freeing the group makes the daemon withdraw (goodbyes). */
    if (m->client) {
        mdns_drop(m);
        avahi_client_free(m->client);
        m->client = NULL;
    }
    if (m->retry) {
        p->timeout_free(m->retry);
        m->retry = NULL;
    }
    if (m->wake_w) {
        p->watch_free(m->wake_w);
        m->wake_w = NULL;
    }
    pthread_mutex_lock(&m->lock);
    m->thread_done = 1;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    mdns_unref(m);
    return NULL;
}

/* ---- shard 0
 * ------------------------------------------------------------------- */

static void
mdns_async_cb(uv_async_t *h)
{
    struct mm_mdns *m = h->data;
    pthread_mutex_lock(&m->lock);
    struct mdns_found *f = m->head;
    m->head = NULL;
    m->tail = &m->head;
    pthread_mutex_unlock(&m->lock);
    while (f) {
        struct mdns_found *next = f->next;
        char idhex[2 * MM_NODE_ID_LEN + 1] = "?";
        if (f->has_id) mm__hex(idhex, f->id, MM_NODE_ID_LEN);
        MM_LOG(MM_LOG_INFO, "mdns", "discovered '%s' at %s (id %s)", f->name,
               f->addr, idhex);
        if (!atomic_load(&m->stop))
            m->d.discovered(m->d.data, f->addr, f->has_id ? f->id : NULL);
        mm__free(f);
        f = next;
    }
}

static uint16_t
addr_port(const char *hostport, AvahiProtocol *proto)
{
    const char *colon = hostport ? strrchr(hostport, ':') : NULL;
    *proto =
        hostport && hostport[0] == '[' ? AVAHI_PROTO_INET6 : AVAHI_PROTO_INET;
    if (!colon) return 0;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    return *end == '\0' && p > 0 && p < 65536 ? (uint16_t)p : 0;
}

int
mm__mdns_new(struct mm_mdns **out, const struct mm_mdns_deps *deps)
{
    *out = NULL;
    struct mm_mdns *m = mm__calloc(1, sizeof(*m));
    if (!m) return UV_ENOMEM;
    atomic_init(&m->refs, 1);
    atomic_init(&m->stop, 0);
    m->d = *deps;
    m->tail = &m->head;
    m->wake[0] = m->wake[1] = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    mm_node *n = deps->node;
    const char *name = mm_node_name(n);
    /* DNS-SD instance names are at most 63 bytes. */
    snprintf(m->name, sizeof(m->name), "%s", name && *name ? name : "murmer");
    snprintf(m->idhex, sizeof(m->idhex), "%s", mm_node_id(n));
    if (mm__unhex(m->id, MM_NODE_ID_LEN, m->idhex) != 0)
        memset(m->id, 0, sizeof(m->id));
    m->port = addr_port(mm_node_addr(n), &m->proto);
    mm__keyring_mdns_tag(deps->kr, m->tag);
    char why[256];
    if (m->port == 0 || strlen(m->tag) != 16) {
        MM_LOG(MM_LOG_WARN, "mdns",
               "mDNS off: no advertised port or no cluster key");
        m->sp = NULL;
    } else if (mm__avahi_load(why, sizeof(why)) != 0) {
        MM_LOG(MM_LOG_WARN, "mdns", "mDNS off: %s", why);
        m->sp = NULL;
    } else if (pipe2(m->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
               !(m->sp = avahi_simple_poll_new())) {
        mdns_destroy(m);
        return UV_ENOMEM;
    }
    *out = m;
    return 0;
}

void
mm__mdns_start(struct mm_mdns *m)
{
    if (!m || !m->sp || m->thread_started) return;
    uv_loop_t *loop = m->d.loop;
    if (uv_async_init(loop, &m->async, mdns_async_cb) != 0) {
        MM_LOG(MM_LOG_WARN, "mdns", "mDNS off: uv_async_init failed");
        return;
    }
    m->async.data = m;
    m->async_init = 1;
    atomic_fetch_add(&m->refs, 1);
    if (pthread_create(&m->thread, NULL, mdns_thread, m) != 0) {
        atomic_fetch_sub(&m->refs, 1);
        MM_LOG(MM_LOG_WARN, "mdns", "mDNS off: cannot start its thread");
        return;
    }
    m->thread_started = 1;
}

/* Stops the thread; waits for it at most MM_MDNS_CLOSE_MS. */
static void
mdns_stop_thread(struct mm_mdns *m)
{
    if (!m->thread_started) return;
    m->thread_started = 0;
    atomic_store(&m->stop, 1);
    char one = 1;
    if (write(m->wake[1], &one, 1) < 0) {
        /* full pipe: a wakeup is pending anyway */
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += MM_MDNS_CLOSE_MS / 1000;
    dl.tv_nsec += (long)(MM_MDNS_CLOSE_MS % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    m->async_closed = 1;
    while (!m->thread_done)
        if (pthread_cond_timedwait(&m->cond, &m->lock, &dl) != 0) break;
    int done = m->thread_done;
    pthread_mutex_unlock(&m->lock);
    if (done) {
        pthread_join(m->thread, NULL);
    } else {
        MM_LOG(MM_LOG_WARN, "mdns",
               "avahi-daemon does not answer: leaving without withdrawing "
               "the mDNS service");
        pthread_detach(m->thread);
    }
}

void
mm__mdns_close(struct mm_mdns *m)
{
    if (!m || m->closed_once) return;
    m->closed_once = 1;
    mdns_stop_thread(m);
    if (m->async_init) uv_close((uv_handle_t *)&m->async, NULL);
}

void
mm__mdns_free(struct mm_mdns *m)
{
    if (!m) return;
    mdns_stop_thread(m);
    mdns_unref(m);
}

/* ---- find a seed (clients)
 * ------------------------------------------------------ */

struct seed_job {
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc;
    uint32_t timeout_ms;
    char tag[17];
    char addr[MDNS_ADDR_MAX];
    /* worker only */
    AvahiSimplePoll *sp;
    AvahiClient *client;
    int found, all_for_now, pending;
};

static void
seed_unref(struct seed_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) == 1) {
        pthread_cond_destroy(&j->cond);
        pthread_mutex_destroy(&j->lock);
        mm__free(j);
    }
}

static void
seed_resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface,
                AvahiProtocol proto, AvahiResolverEvent ev, const char *name,
                const char *type, const char *domain, const char *host,
                const AvahiAddress *a, uint16_t port, AvahiStringList *txt,
                AvahiLookupResultFlags flags, void *data)
{
    struct seed_job *j = data;
    (void)iface;
    (void)proto;
    (void)name;
    (void)type;
    (void)domain;
    (void)host;
    (void)flags;
    j->pending--;
    if (ev == AVAHI_RESOLVER_FOUND && !j->found) {
        struct mm_mdns_txt t;
        txt_parse(&t, txt);
        if (mm__mdns_txt_match(&t, j->tag, NULL) &&
            addr_format(j->addr, sizeof(j->addr), a, port) == 0)
            j->found = 1;
    }
    avahi_service_resolver_free(r);
}

static void
seed_browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
               AvahiBrowserEvent ev, const char *name, const char *type,
               const char *domain, AvahiLookupResultFlags flags, void *data)
{
    struct seed_job *j = data;
    (void)b;
    (void)flags;
    if (ev == AVAHI_BROWSER_NEW && j->pending < MM_MDNS_MAX_RESOLVERS) {
        if (avahi_service_resolver_new(j->client, iface, proto, name, type,
                                       domain, AVAHI_PROTO_INET, 0,
                                       seed_resolve_cb, j))
            j->pending++;
    } else if (ev == AVAHI_BROWSER_ALL_FOR_NOW || ev == AVAHI_BROWSER_FAILURE) {
        j->all_for_now = 1;
    }
}

static void
seed_client_cb(AvahiClient *cl, AvahiClientState st, void *data)
{
    struct seed_job *j = data;
    j->client = cl;
    if (st == AVAHI_CLIENT_FAILURE) j->all_for_now = 1;
}

static void *
seed_thread(void *arg)
{
    struct seed_job *j = arg;
    int rc = MM_EUNREACHABLE, err = 0;
    uint64_t deadline = mm__now_ms() + j->timeout_ms;
    AvahiServiceBrowser *b = NULL;
    j->sp = avahi_simple_poll_new();
    if (!j->sp) goto out;
    j->client = avahi_client_new(avahi_simple_poll_get(j->sp), 0,
                                 seed_client_cb, j, &err);
    if (!j->client) goto out;
    b = avahi_service_browser_new(j->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET,
                                  MM_MDNS_TYPE, NULL, 0, seed_browse_cb, j);
    if (!b) goto out;
    rc = MM_ENOTFOUND;
    while (!j->found && !(j->all_for_now && j->pending == 0)) {
        uint64_t now = mm__now_ms();
        if (now >= deadline) break;
        if (avahi_simple_poll_iterate(j->sp, (int)(deadline - now)) != 0) break;
    }
    if (j->found) rc = 0;
out:
    if (b) avahi_service_browser_free(b);
    if (j->client)
        avahi_client_free(j->client); /* frees pending resolvers too */
    if (j->sp) avahi_simple_poll_free(j->sp);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    seed_unref(j);
    return NULL;
}

int
mm__mdns_find_seed(const struct mm_keyring *kr, uint32_t timeout_ms, char *out,
                   size_t outlen)
{
    if (mm__avahi_load(NULL, 0) != 0)
        return MM_EUNREACHABLE; /* no avahi-client on this machine */
    struct seed_job *j = mm__calloc(1, sizeof(*j));
    if (!j) return UV_ENOMEM;
    atomic_init(&j->refs, 2);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->timeout_ms = timeout_ms;
    mm__keyring_mdns_tag(kr, j->tag);
    if (strlen(j->tag) != 16) {
        atomic_store(&j->refs, 1);
        seed_unref(j);
        return MM_ENOTFOUND;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, seed_thread, j) != 0) {
        atomic_store(&j->refs, 1);
        seed_unref(j);
        return MM_EUNREACHABLE;
    }
    /* The worker may hang in D-Bus: wait for it, bounded. */
    uint32_t wait_ms = timeout_ms + 500;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->lock);
    while (!j->done)
        if (pthread_cond_timedwait(&j->cond, &j->lock, &dl) != 0) break;
    int done = j->done, rc = j->done ? j->rc : MM_EUNREACHABLE;
    if (rc == 0) {
        if (strlen(j->addr) >= outlen)
            rc = MM_ENOTFOUND;
        else
            memcpy(out, j->addr, strlen(j->addr) + 1);
    }
    pthread_mutex_unlock(&j->lock);
    if (done)
        pthread_join(th, NULL);
    else
        pthread_detach(th);
    seed_unref(j);
    return rc;
}
