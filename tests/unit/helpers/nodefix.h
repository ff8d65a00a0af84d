/*
 * nodefix.h — an in-process node for the unit tests, on the public API
 * (murmer.h) only: create it from a few options, start it on background
 * threads and wait (bounded) until it runs, stop and free it.  Failures
 * are cmocka assertions, so call these from a test or a setup/teardown.
 *
 * Its address and id are mm_node_addr() and mm_node_id().  A listening
 * node binds when it is created, so mm_node_addr() is known before it
 * starts; "127.0.0.1:0" lets the OS choose the port, and free_udp_port()
 * (testutil.h) gives one to a test that must name a port before the node
 * that will own it exists.
 */
#ifndef MURMER_NODEFIX_H
#define MURMER_NODEFIX_H

#include <stddef.h>

#include "murmer.h"

/* How long nodefix_start() waits for every shard to run. */
#define NODEFIX_UP_S 10

/* A zero field takes the default noted. */
struct nodefix_opts {
    const char *name;         /* NULL: the library's default (hostname) */
    const char *dir;          /* data dir: dir/name (unnamed: dir/node); */
                              /* NULL: the library's default */
    const char *listen;       /* e.g. "127.0.0.1:0"; NULL: local only */
    const char *key;          /* cluster key file; NULL: env, else dev */
    const char *join;         /* one seed "host:port", or NULL ... */
    const char *const *joins; /* ... or |njoin| of them */
    size_t njoin;
    const char *const *tags; /* "k=v" */
    size_t ntags;
    int shards;   /* 0: one */
    int no_mdns;  /* 1: mDNS off; 0: the default (on with a key) */
    int builtins; /* 1: echo, counter, kv and greeter registered */
};

/* Creates a node from |o| (NULL: every default), not started: register
 * types and spawn actors on it, then nodefix_start(). */
mm_node *nodefix_new(const struct nodefix_opts *o);

/* Starts |n| (mm_node_start_thread) and waits until each of its shards has
 * run a posted function, at most NODEFIX_UP_S seconds.  On a networked
 * node the cluster has started by then (its start is posted first). */
void nodefix_start(mm_node *n);

/* nodefix_new() then nodefix_start(). */
mm_node *nodefix_up(const struct nodefix_opts *o);

/* Stops a started node, waits for its threads and frees it; NULL is
 * ignored.  (A node never started is freed with mm_node_free().) */
void nodefix_down(mm_node *n);

#endif
