/* testutil.h — small helpers shared by the unit tests (linked into each). */
#ifndef MURMER_TESTUTIL_H
#define MURMER_TESTUTIL_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* A UDP port on 127.0.0.1 that the OS just handed out (bound, read,
 * released), or -1. */
int free_udp_port(void);

#endif
