/* testutil.c — see testutil.h. */
#include "helpers/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

uint64_t
now_ms(void)
{
    return mm__now_ms(); /* CLOCK_MONOTONIC */
}

struct timespec
realtime_in_ms(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000u;
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

char *
repo_file(const char *path, size_t *len)
{
    static const char *const up[] = {"", "../", "../../"};
    for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s%s", up[i], path);
        FILE *f = fopen(p, "rb");
        if (f == NULL) continue;
        char *buf = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
            if (n + 4096 + 1 > cap) {
                cap = cap ? cap * 2 : 65536;
                char *nb = realloc(buf, cap);
                if (nb == NULL) break;
                buf = nb;
            }
            size_t r = fread(buf + n, 1, cap - n - 1, f);
            n += r;
            if (r == 0) break;
        }
        int bad = ferror(f) || buf == NULL;
        fclose(f);
        if (bad) {
            free(buf);
            return NULL;
        }
        buf[n] = '\0';
        if (len) *len = n;
        return buf;
    }
    return NULL;
}

int
free_udp_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int port = -1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int
sem_wait_s(sem_t *sem, int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* sem_timedwait's clock */
    ts.tv_sec += seconds;
    int rc;
    while ((rc = sem_timedwait(sem, &ts)) != 0 && errno == EINTR)
        ;
    return rc;
}

void
rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}
