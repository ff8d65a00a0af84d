/* qloop.c — see qloop.h. */
#include "qloop.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "helpers/testutil.h"
#include "murmer.h"
#include "transport/quic.h"

int
qloop_init(uv_loop_t *loop, struct mm_tq *tq, char *root, size_t rootsz,
           const char *tag)
{
    snprintf(root, rootsz, "/tmp/mm-%s-XXXXXX", tag);
    if (mkdtemp(root) == NULL) return -1;
    if (uv_loop_init(loop) != 0) return -1;
    if (mm__tq_init(tq, loop) != 0) return -1;
    unsetenv("MURMER_FAULT");
    mm_log_set_level(getenv("MM_TEST_LOG") ? MM_LOG_DEBUG : MM_LOG_ERR);
    return 0;
}

int
qloop_fini(uv_loop_t *loop, struct mm_tq *tq, const char *root)
{
    mm__tq_close(tq);
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    rm_rf(root);
    mm_log_set_level(MM_LOG_WARN);
    return rc == 0 ? 0 : -1;
}

static void
closed_cb(void *d)
{
    *(int *)d = 1;
}

void
qloop_quic_close(uv_loop_t *loop, struct mm_quic **q)
{
    if (*q == NULL) return;
    int closed = 0;
    mm__quic_close(*q, closed_cb, &closed);
    *q = NULL;
    for (int k = 0; k < 1000 && !closed; k++)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(closed);
}
