/* testutil.h — small helpers shared by the unit tests (linked into each). */
#ifndef MURMER_TESTUTIL_H
#define MURMER_TESTUTIL_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* A UDP port on 127.0.0.1 that the OS just handed out (bound, read,
 * released), or -1. */
int free_udp_port(void);

/* sem_wait bounded by |seconds| (EINTR retried): 0, or -1 with errno set
 * (ETIMEDOUT when nothing was posted in time). */
int sem_wait_s(sem_t *sem, int seconds);

/* The CLOCK_REALTIME instant |ms| from now, for pthread_cond_timedwait. */
struct timespec realtime_in_ms(unsigned ms);

/* A file of the repository ("docs/wire.md"), found from the top of the
 * tree or a build directory below it: a malloc'd NUL-terminated copy
 * (its length in *len), or NULL when it cannot be found or read. */
char *repo_file(const char *path, size_t *len);

/* rm -rf |dir| (a test's scratch directory); a failure is reported on
 * stderr, not fatal. */
void rm_rf(const char *dir);

#endif
