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
