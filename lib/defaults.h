/*
 * defaults.h — every tunable in one place.  Each can be overridden at build
 * time (-DMM_SWIM_PROBE_MS=...) and most at run time through a config.
 */
#ifndef MM_DEFAULTS_H
#define MM_DEFAULTS_H

/* Runtime */
#ifndef MM_MAILBOX_CAPACITY
#define MM_MAILBOX_CAPACITY 1024u
#endif
#ifndef MM_DEFAULT_TIMEOUT_MS
#define MM_DEFAULT_TIMEOUT_MS 5000u
#endif
#ifndef MM_SCHED_BUDGET_NS
#define MM_SCHED_BUDGET_NS 1000000u /* ~1 ms of actor work per loop turn */
#endif
#ifndef MM_SCHED_MSG_BUDGET
#define MM_SCHED_MSG_BUDGET 64u /* messages per actor per pass */
#endif
#ifndef MM_SLOW_TURN_MS
#define MM_SLOW_TURN_MS 100u /* a handler turn longer than this is logged */
#endif
#ifndef MM_LISTING_QUEUE_LIMIT
#define MM_LISTING_QUEUE_LIMIT 1024u
#endif

/* Supervision */
#ifndef MM_MAX_RESTARTS
#define MM_MAX_RESTARTS 5
#endif
#ifndef MM_RESTART_WINDOW_MS
#define MM_RESTART_WINDOW_MS 60000u
#endif
#ifndef MM_BACKOFF_INITIAL_MS
#define MM_BACKOFF_INITIAL_MS 100u
#endif
#ifndef MM_BACKOFF_MAX_MS
#define MM_BACKOFF_MAX_MS 30000u
#endif
#ifndef MM_BACKOFF_RESET_MS
#define MM_BACKOFF_RESET_MS 60000u
#endif

/* Transport */
#ifndef MM_DEFAULT_PORT
#define MM_DEFAULT_PORT 7420
#endif
#ifndef MM_CONN_SEND_MAX
/* Bytes queued on one connection and not yet acknowledged by the peer.
 * Past it, a frame is refused (MM_EOVERLOADED) unless nothing is queued,
 * so one frame of up to max_frame always goes. */
#define MM_CONN_SEND_MAX (2u * 1024u * 1024u)
#endif
#ifndef MM_NODE_SEND_MAX
/* The same, summed over all of a node's connections. */
#define MM_NODE_SEND_MAX (32u * 1024u * 1024u)
#endif
#ifndef MM_MAX_FRAME
#define MM_MAX_FRAME (4u * 1024u * 1024u)
#endif
#ifndef MM_CONN_IDLE_MS
#define MM_CONN_IDLE_MS 60000u
#endif
#ifndef MM_PROBE_FAIL_MS
/* Pending calls fail after this much silence. */
#define MM_PROBE_FAIL_MS 2000u
#endif
#ifndef MM_QUIC_HOT_WAIT_US
/* After sending, wait this long for the answer in the socket's receive
 * (lib/transport/udp.c, quic_hot_rounds); 0 turns hot waits off. */
#define MM_QUIC_HOT_WAIT_US 500u
#endif

/* Membership (memberlist's LAN profile) */
#ifndef MM_SWIM_PROBE_MS
#define MM_SWIM_PROBE_MS 1000u
#endif
#ifndef MM_SWIM_PROBE_TIMEOUT_MS
#define MM_SWIM_PROBE_TIMEOUT_MS 500u
#endif
#ifndef MM_SWIM_INDIRECT
#define MM_SWIM_INDIRECT 3
#endif
#ifndef MM_SWIM_GOSSIP_MS
#define MM_SWIM_GOSSIP_MS 200u
#endif
#ifndef MM_SWIM_GOSSIP_NODES
#define MM_SWIM_GOSSIP_NODES 3
#endif
#ifndef MM_SWIM_RETRANSMIT_MULT
#define MM_SWIM_RETRANSMIT_MULT 4
#endif
#ifndef MM_SWIM_SUSPICION_MULT
#define MM_SWIM_SUSPICION_MULT 4
#endif
#ifndef MM_SWIM_SUSPICION_MAX_MULT
#define MM_SWIM_SUSPICION_MAX_MULT 6
#endif
#ifndef MM_SWIM_AWARENESS_MAX
#define MM_SWIM_AWARENESS_MAX 8
#endif
#ifndef MM_SWIM_RECONNECT_TIMEOUT_MS
#define MM_SWIM_RECONNECT_TIMEOUT_MS (24ull * 3600ull * 1000ull)
#endif

/* Registry */
#ifndef MM_OPLOG_ANTI_ENTROPY_MS
#define MM_OPLOG_ANTI_ENTROPY_MS 10000u
#endif

/* Bounds on what a peer may hold (issue 18: transport and net) */
#ifndef MM_HANDSHAKES_MAX
/* Accepted handshakes (TLS + auth) in progress at once; past it new
 * Initials are dropped (lib/transport/quic.c, quic_accept).  One costs
 * about 100 KiB (ngtcp2 + GnuTLS), so this many stay below 16 MiB. */
#define MM_HANDSHAKES_MAX 128u
#endif
#ifndef MM_HANDSHAKES_PER_ADDR
/* The same, from one source address (any port). */
#define MM_HANDSHAKES_PER_ADDR 16u
#endif
#ifndef MM_HANDSHAKE_EVICT_MS
/* At MM_HANDSHAKES_MAX, a handshake older than this gives way to a new
 * one (a handshake on a LAN takes about a millisecond). */
#define MM_HANDSHAKE_EVICT_MS 100u
#endif
#ifndef MM_CONN_RECV_MAX
/* Bytes of inbound INVOKE frames per connection whose messages are not yet
 * handled: their stream credit is held until then; past it, a further
 * INVOKE is answered overloaded at once (lib/net.c). */
#define MM_CONN_RECV_MAX (16u * 1024u * 1024u)
#endif
#ifndef MM_MAX_CALL_MS
/* The longest deadline an inbound call keeps (a longer one, or none, is
 * cut to this). */
#define MM_MAX_CALL_MS (5u * 60u * 1000u)
#endif
#ifndef MM_CONN_RESP_QUEUE
/* Responses per connection waiting for send room (the connection's
 * unacknowledged bytes at MM_CONN_SEND_MAX); one more closes the
 * connection with overloaded (lib/net.c). */
#define MM_CONN_RESP_QUEUE 64u
#endif
#ifndef MM_CONN_RESP_QUEUE_BYTES
/* The same queue's bytes (a response larger than this still waits alone). */
#define MM_CONN_RESP_QUEUE_BYTES (8u * 1024u * 1024u)
#endif

#endif /* MM_DEFAULTS_H */
