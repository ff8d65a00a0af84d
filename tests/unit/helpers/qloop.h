/*
 * qloop.h — the loop fixture the transport tests share (test_quic,
 * test_quic_roles): a libuv loop with the node's task queue and a scratch
 * directory, and the bounded wait for a transport to close.  Uses the
 * library's internal headers (it drives mm__quic directly).
 */
#ifndef MURMER_QLOOP_H
#define MURMER_QLOOP_H

#include <stddef.h>
#include <uv.h>

#include "tq.h"

struct mm_quic;

/*
 * Makes |root| (|rootsz| bytes) a new directory /tmp/mm-<tag>-XXXXXX,
 * initialises |loop| and |tq|, clears MURMER_FAULT and sets the log level
 * (debug with MM_TEST_LOG set, else errors only).  0, or -1.
 */
int qloop_init(uv_loop_t *loop, struct mm_tq *tq, char *root, size_t rootsz,
               const char *tag);

/*
 * Undoes qloop_init: closes |tq|, runs |loop| dry, closes it, removes
 * |root| and sets the log level back to warnings.  0, or -1 when the loop
 * still held handles.
 */
int qloop_fini(uv_loop_t *loop, struct mm_tq *tq, const char *root);

/*
 * Closes |*q| (NULL is ignored) and runs |loop| until its close callback
 * has run, at most 1000 turns (a cmocka assertion otherwise); *q is NULL
 * afterwards.
 */
void qloop_quic_close(uv_loop_t *loop, struct mm_quic **q);

#endif
