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

/* Logging and gossip under load */
#ifndef MM_LOG_BUFFER
/* Bytes of log lines queued for stderr while it does not take them (a
 * writer thread drains them); past it, lines are dropped and counted, and
 * "N log lines dropped" is written once stderr takes lines again. */
#define MM_LOG_BUFFER (64u * 1024u)
#endif
#ifndef MM_LOG_FLUSH_MS
/* At exit (and mm_node_free), queued log lines get this long to go out. */
#define MM_LOG_FLUSH_MS 500u
#endif
#ifndef MM_LOG_REPEAT_MAX
/* Lines of one (component, format) at NOTICE and above written per
 * MM_LOG_REPEAT_MS; the rest are counted and summarised in one line. */
#define MM_LOG_REPEAT_MAX 10u
#endif
#ifndef MM_LOG_REPEAT_MS
#define MM_LOG_REPEAT_MS 10000u
#endif
#ifndef MM_GOSSIP_DERIVE_RATE
/* Gossip key derivations per second for senders (or generations) whose
 * key is not cached yet; past it their datagrams are dropped and counted
 * (seal stats dropped_derive) before any crypto. */
#define MM_GOSSIP_DERIVE_RATE 64u
#endif
#ifndef MM_GOSSIP_DERIVE_BURST
/* ... and in a burst (a cluster of that many starting at once). */
#define MM_GOSSIP_DERIVE_BURST 128u
#endif
#ifndef MM_GOSSIP_SOURCE_SLOTS
/* Token buckets for gossip datagrams by source address and port: a fixed
 * table, each source hashed (keyed, random per node) to two slots, and a
 * datagram passes while either has a token.  A flood from one source is
 * dropped and counted (dropped_flood) before any crypto. */
#define MM_GOSSIP_SOURCE_SLOTS 256u
#endif
#ifndef MM_GOSSIP_SOURCE_RATE
/* Datagrams per second per slot, and the burst. */
#define MM_GOSSIP_SOURCE_RATE 200u
#endif
#ifndef MM_GOSSIP_SOURCE_BURST
#define MM_GOSSIP_SOURCE_BURST 400u
#endif

#endif /* MM_DEFAULTS_H */
