/*
 * doctor.c — `murmer doctor`: checks on this host and its node, one line
 * each (PASS, WARN or FAIL, with the fix), or one JSON document (schema
 * murmer.doctor/1).  The local checks read files and sockets; the node's
 * are made over a client session to it (--join, else 127.0.0.1:7420):
 * it answers, its members see it alive at its advertised address, their
 * clocks agree with it (the node times of a TOP answer).  Exit status:
 * 0 when every check passes, 1 when the worst is a warning, 3 when one
 * fails.
 */
#include "../cli/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum { R_PASS, R_WARN, R_FAIL };
static const char *const r_name[] = {"PASS", "WARN", "FAIL"};
static const char *const r_json[] = {"pass", "warn", "fail"};

/* Clock skew bounds (ms): above WARN_MS a warning; at the hybrid logical
 * clock's drift bound a failure (records from further ahead are
 * refused). */
#define SKEW_WARN_MS 1000.0
#define SKEW_FAIL_MS 60000.0

struct report {
    struct cli_ctx *ctx;
    cJSON *arr; /* --json */
    int worst;
};

static void check(struct report *r, const char *name, int res, const char *fix,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
check(struct report *r, const char *name, int res, const char *fix,
      const char *fmt, ...)
{
    char detail[4800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (res > r->worst) r->worst = res;
    if (r->arr) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddItemToArray(r->arr, o);
        cJSON_AddStringToObject(o, "check", name);
        cJSON_AddStringToObject(o, "result", r_json[res]);
        cJSON_AddStringToObject(o, "detail", detail);
        if (fix)
            cJSON_AddStringToObject(o, "fix", fix);
        else
            cJSON_AddNullToObject(o, "fix");
        return;
    }
    int color = res == R_PASS   ? CLI_COLOR_GREEN
                : res == R_WARN ? CLI_COLOR_YELLOW
                                : CLI_COLOR_RED;
    fprintf(r->ctx->out, "%s%s%s  %-10s %s%s%s\n", cli_color_on(r->ctx, color),
            r_name[res], cli_color_off(r->ctx), name, detail,
            fix ? "; fix: " : "", fix ? fix : "");
}

/* ---- local files --------------------------------------------------------- */

static void
check_key_file(struct report *r, const char *path)
{
    char fix[4400];
    if (!path) {
        check(r, "key-file", R_WARN,
              "murmer keygen /etc/murmer/cluster.key, then --cluster-key "
              "FILE everywhere",
              "no cluster key file given (--cluster-key or "
              "MURMER_CLUSTER_KEY_FILE): the well-known dev key is used");
        return;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        check(r, "key-file", R_FAIL, "give the right --cluster-key", "%s: %s",
              path, strerror(errno));
        return;
    }
    if (access(path, R_OK) != 0) {
        snprintf(fix, sizeof(fix), "run as its owner (uid %u)",
                 (unsigned)st.st_uid);
        check(r, "key-file", R_FAIL, fix, "%s is not readable: %s", path,
              strerror(errno));
        return;
    }
    if (st.st_mode & 077) {
        snprintf(fix, sizeof(fix), "chmod 600 %s", path);
        check(r, "key-file", R_FAIL, fix,
              "%s has mode %04o: group or others can read the cluster key",
              path, (unsigned)(st.st_mode & 07777));
        return;
    }
    if (st.st_uid != geteuid()) {
        snprintf(fix, sizeof(fix), "chown %u %s", (unsigned)geteuid(), path);
        check(r, "key-file", R_WARN, fix, "%s is owned by uid %u, not %u", path,
              (unsigned)st.st_uid, (unsigned)geteuid());
        return;
    }
    check(r, "key-file", R_PASS, NULL, "%s: mode %04o, owner uid %u", path,
          (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
}

static void
check_data_dir(struct report *r, const char *dir)
{
    char fix[4400];
    if (!dir) {
        check(r, "data-dir", R_WARN,
              "give the node's --data-dir (or --name for the default)",
              "not checked: no --data-dir or --name");
        check(r, "identity", R_WARN,
              "give the node's --data-dir (or --name for the default)",
              "not checked: no data dir");
        return;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        check(r, "data-dir", R_FAIL,
              "start the node once with this --data-dir (it is created)",
              "%s: %s", dir, errno ? strerror(errno) : "not a directory");
        check(r, "identity", R_FAIL, "start the node once (it makes one)",
              "no identity: %s is missing", dir);
        return;
    }
    if (st.st_mode & 077) {
        snprintf(fix, sizeof(fix), "chmod 700 %s", dir);
        check(r, "data-dir", R_WARN, fix,
              "%s has mode %04o: group or others can look inside", dir,
              (unsigned)(st.st_mode & 07777));
    } else if (st.st_uid != geteuid()) {
        snprintf(fix, sizeof(fix), "chown -R %u %s", (unsigned)geteuid(), dir);
        check(r, "data-dir", R_WARN, fix, "%s is owned by uid %u, not %u", dir,
              (unsigned)st.st_uid, (unsigned)geteuid());
    } else {
        check(r, "data-dir", R_PASS, NULL, "%s: mode %04o, owner uid %u", dir,
              (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    }
    char key[4200], cert[4200];
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    struct stat ks;
    if (stat(key, &ks) != 0) {
        check(r, "identity", R_FAIL, "start the node once (it makes one)",
              "%s: %s", key, strerror(errno));
        return;
    }
    if (access(key, R_OK) != 0 || access(cert, R_OK) != 0) {
        snprintf(fix, sizeof(fix), "run as the node's user (uid %u)",
                 (unsigned)ks.st_uid);
        check(r, "identity", R_FAIL, fix, "%s or %s is not readable", key,
              cert);
        return;
    }
    if (ks.st_mode & 077) {
        snprintf(fix, sizeof(fix), "chmod 600 %s", key);
        check(r, "identity", R_FAIL, fix,
              "%s has mode %04o: the node refuses a key others can read", key,
              (unsigned)(ks.st_mode & 07777));
        return;
    }
    check(r, "identity", R_PASS, NULL, "%s and %s readable, key mode %04o", key,
          cert, (unsigned)(ks.st_mode & 07777));
}

static void
check_avahi(struct report *r, int mdns)
{
    if (!mdns) {
        check(r, "avahi", R_PASS, NULL, "not needed: --no-mdns");
        return;
    }
    static const char *const socks[] = {"/run/avahi-daemon/socket",
                                        "/var/run/avahi-daemon/socket"};
    struct stat st;
    for (size_t i = 0; i < 2; i++)
        if (stat(socks[i], &st) == 0 && S_ISSOCK(st.st_mode)) {
            int dbus = stat("/run/dbus/system_bus_socket", &st) == 0;
            check(r, "avahi", dbus ? R_PASS : R_WARN,
                  dbus ? NULL : "start dbus (systemctl start dbus)",
                  "avahi-daemon socket %s%s", socks[i],
                  dbus ? ", system D-Bus up" : "; no system D-Bus socket");
            return;
        }
    check(r, "avahi", R_WARN,
          "apt install avahi-daemon && systemctl start avahi-daemon, or run "
          "nodes with --no-mdns and --join",
          "mDNS discovery needs avahi-daemon: no socket in /run/avahi-daemon");
}

/* ---- the node ------------------------------------------------------------ */

/* 1 when something holds UDP |addr| (a bind fails with EADDRINUSE). */
static int
udp_in_use(const char *addr, int *known)
{
    *known = 0;
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host)) return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || port <= 0) return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return 0;
    *known = 1;
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    return rc != 0 && e == EADDRINUSE;
}

static double
wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
}

static void
check_node(struct report *r, mm_client *c, const char *addr)
{
    const char *seed = mm_client_seed_name(c);
    check(r, "listen", R_PASS, NULL, "node %s answers on %s", seed, addr);

    mm_member_info *m = NULL;
    size_t n = 0;
    int err = mm_client_members(c, &m, &n);
    const char *adv = NULL;
    for (size_t i = 0; !err && i < n; i++)
        if (strcmp(m[i].name, seed) == 0) adv = m[i].addr;
    mm_partition_row *p = NULL;
    size_t np = 0;
    int perr = err ? err : mm_client_partitions(c, &p, &np);
    if (err || perr) {
        check(r, "advertise", R_WARN, "see murmer members / partitions",
              "could not ask the members: %s", mm_strerror(err ? err : perr));
    } else {
        size_t asked = 0, alive = 0;
        char bad[256] = "";
        for (size_t i = 0; i < np; i++) {
            if (strcmp(p[i].name, seed) == 0 || p[i].error) continue;
            asked++;
            const char *st = NULL;
            for (size_t k = 0; k < p[i].nview; k++)
                if (strcmp(p[i].view[k].name, seed) == 0)
                    st = p[i].view[k].state;
            if (st && strcmp(st, "alive") == 0)
                alive++;
            else if (strlen(bad) + strlen(p[i].name) + 24 < sizeof(bad))
                snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad),
                         "%s%s (%s)", bad[0] ? ", " : "", p[i].name,
                         st ? st : "not listed");
        }
        if (alive == asked)
            check(r, "advertise", R_PASS, NULL,
                  "%s advertises %s; %zu of %zu answering members see it "
                  "alive",
                  seed, adv ? adv : "?", alive, asked);
        else
            check(r, "advertise", R_FAIL,
                  "set --advertise to an address the members can reach "
                  "(and open its UDP port)",
                  "%s advertises %s, but %s do not see it alive", seed,
                  adv ? adv : "?", bad);
    }
    mm_client_free_result(c, m);
    mm_client_free_result(c, p);

    mm_top_result *t = NULL;
    double t0 = wall_ms();
    err = mm_client_top(c, NULL, 1, &t);
    double t1 = wall_ms();
    cJSON *doc = err ? NULL : cJSON_Parse(t->json);
    mm_client_free_result(c, t);
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes"), *it;
    double seed_ms = -1, worst = 0;
    const char *worst_name = NULL;
    size_t cmp = 0;
    cJSON_ArrayForEach(it, nodes)
    {
        const char *nm =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(it, "time_ms");
        if (nm && cJSON_IsNumber(tm) && strcmp(nm, seed) == 0)
            seed_ms = tm->valuedouble;
    }
    cJSON_ArrayForEach(it, nodes)
    {
        const char *nm =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(it, "time_ms");
        if (!nm || !cJSON_IsNumber(tm) || seed_ms < 0 || strcmp(nm, seed) == 0)
            continue;
        cmp++;
        double d = tm->valuedouble - seed_ms;
        if (d < 0) d = -d;
        if (d >= worst) {
            worst = d;
            worst_name = nm;
        }
    }
    if (err || seed_ms < 0) {
        check(r, "clock", R_WARN, "see murmer top --once",
              "could not read the node's clock: %s",
              err ? mm_strerror(err) : "no time in the answer");
    } else {
        /* This host against the node: meaningful when it is the node's
         * host; the answer's round trip bounds the error. */
        double local = seed_ms - (t0 + t1) / 2;
        if (local < 0) local = -local;
        double err_ms = (t1 - t0) / 2;
        int res = worst >= SKEW_FAIL_MS   ? R_FAIL
                  : worst >= SKEW_WARN_MS ? R_WARN
                                          : R_PASS;
        if (cmp == 0)
            check(r, "clock", R_PASS, NULL,
                  "no other member to compare with; this host and %s differ "
                  "by %.0f ms (+-%.0f)",
                  seed, local, err_ms);
        else
            check(r, "clock", res,
                  res == R_PASS ? NULL
                                : "run NTP (chrony or systemd-timesyncd) on "
                                  "every host",
                  "largest skew against %s: %.0f ms (%s) over %zu member%s; "
                  "this host %.0f ms (+-%.0f)",
                  seed, worst, worst_name, cmp, cmp == 1 ? "" : "s", local,
                  err_ms);
    }
    cJSON_Delete(doc);
}

int
cmd_doctor(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *data_dir = NULL, *name = NULL;
    int no_mdns = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING(0, "data-dir", &data_dir, "DIR",
                       "the node's data dir (identity and state)"),
        CLI_OPT_STRING('n', "name", &name, "NAME",
                       "the node's name, for its default data dir"),
        CLI_OPT_BOOL(0, "no-mdns", &no_mdns,
                     "the node runs without mDNS: no avahi check"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer doctor [options]",
        .summary = "Check this host and its node: key and data-dir "
                   "permissions, identity, the node answering, its address "
                   "seen by peers, clock skew, MTU, avahi, ports.",
        .opts = opts,
        .min_args = 0,
        .max_args = 0,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE) return rc;
    char dflt[4096];
    if (!data_dir && name) {
        const char *xdg = getenv("XDG_STATE_HOME");
        const char *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(dflt, sizeof(dflt), "%s/murmer/%s", xdg, name);
        else if (geteuid() == 0)
            snprintf(dflt, sizeof(dflt), "/var/lib/murmer/%s", name);
        else
            snprintf(dflt, sizeof(dflt), "%s/.local/state/murmer/%s",
                     home ? home : "", name);
        data_dir = dflt;
    }
    struct report r = {ctx, NULL, R_PASS};
    cJSON *doc = NULL;
    if (ctx->json) {
        doc = cli_json_doc("murmer.doctor/1");
        r.arr = doc ? cJSON_AddArrayToObject(doc, "checks") : NULL;
        if (!r.arr) {
            cJSON_Delete(doc);
            return cli_error(ctx, MM_EXIT_UNAVAILABLE, "out of memory");
        }
    }
    check_key_file(&r, ctx->cluster_key_file);
    check_data_dir(&r, data_dir);
    const char *addr = ctx->join.n ? ctx->join.v[0] : "127.0.0.1:7420";
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = (const char *const *)&addr;
    cfg.nseeds = 1;
    cfg.cluster_key_file = ctx->cluster_key_file;
    cfg.timeout_ms = ctx->timeout_ms;
    mm_client *c = NULL;
    int err = mm_client_connect(&c, &cfg);
    if (err && mm_err_exit_code(err) == MM_EXIT_AUTH) {
        check(&r, "listen", R_FAIL,
              "fix the key-file check, or give the cluster's key",
              "cannot open a session to %s: %s", addr, mm_strerror(err));
        check(&r, "advertise", R_FAIL, "fix the key first",
              "not checked: no session");
        check(&r, "clock", R_WARN, "fix the key first",
              "not checked: no session");
    } else if (err) {
        int known;
        int used = udp_in_use(addr, &known);
        char fix[4400];
        snprintf(fix, sizeof(fix),
                 "start it: murmer start --listen %s (or "
                 "give the node's address with --join)",
                 addr);
        check(&r, "listen", R_FAIL, fix, "no node answers on %s: %s", addr,
              mm_strerror(err));
        if (used)
            check(&r, "ports", R_FAIL,
                  "stop what holds the port (ss -uapn), or use another "
                  "--listen",
                  "UDP %s is in use by a program that does not answer as a "
                  "murmer node with this key",
                  addr);
        else if (known)
            check(&r, "ports", R_PASS, NULL, "UDP %s is free", addr);
        check(&r, "advertise", R_FAIL, "start the node first",
              "not checked: no node");
        check(&r, "clock", R_WARN, "start the node first",
              "not checked: no node");
    } else {
        cli_interrupt_arm(c);
        check(&r, "ports", R_PASS, NULL, "UDP %s is held by the node", addr);
        check_node(&r, c, addr);
        cli_client_close(c);
    }
    check(&r, "mtu", R_PASS, NULL,
          "QUIC datagrams stay at 1200 bytes (the protocol's minimum, no "
          "path MTU discovery): fits every path with an MTU of 1280 or more");
    check_avahi(&r, !no_mdns);
    if (doc) {
        cJSON_AddStringToObject(doc, "worst", r_json[r.worst]);
        cli_json_print(doc, ctx->out);
        cJSON_Delete(doc);
    }
    if (cli_interrupted()) return 128 + cli_interrupted();
    return r.worst == R_PASS ? 0 : r.worst == R_WARN ? 1 : 3;
}
