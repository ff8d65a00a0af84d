/*
 * interrupt.c — SIGINT and SIGTERM during a client session: the blocked
 * call returns at once (mm_client_interrupt), the command closes its
 * connection gracefully, so the seed frees the connection and ends its
 * subscriptions at once instead of at the idle timeout, and exits with
 * 128 + the signal's number and no message.
 */
#include "cli.h"

#include <signal.h>
#include <string.h>

static mm_client *volatile g_intr_client;
static volatile sig_atomic_t g_intr_sig;

static void
cli_on_signal(int sig)
{
    g_intr_sig = sig;
    mm_client *c = g_intr_client;
    if (c) mm_client_interrupt(c);
}

void
cli_interrupt_arm(mm_client *c)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    g_intr_client = c;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void
cli_interrupt_disarm(void)
{
    g_intr_client = NULL;
}

int
cli_interrupted(void)
{
    return g_intr_sig;
}
