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
#ifndef MM_SWIM_GOSSIP_BURST
/* Packets a gossip round sends one target while its broadcasts do not fit
 * in one: signed records are about three times the unsigned ones, so a
 * join burst would otherwise spread three times slower.  An idle cluster
 * has nothing queued and sends nothing more. */
#define MM_SWIM_GOSSIP_BURST 3
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

/* Client sessions (lib/session.c) */
#ifndef MM_SESSION_SEND_HIGH
/* Bytes unacknowledged on a client's connection above which its control
 * requests are answered `overloaded` and its watch events wait in the
 * listing's bounded queue (RESYNC when it overflows); an oplog follow is
 * ended.  Below MM_CONN_SEND_MAX, so the short answer still fits. */
#define MM_SESSION_SEND_HIGH (MM_CONN_SEND_MAX / 2u)
#endif
#ifndef MM_SESSION_PAGE_MAX
/* Entries (LOOKUP) or records (OPLOG) in one answer at most; a "cursor"
 * in the answer asks for the next page. */
#define MM_SESSION_PAGE_MAX 256u
#endif
#ifndef MM_SESSION_PAGE_BYTES
/* About this many bytes of entries or records in one answer at most. */
#define MM_SESSION_PAGE_BYTES (256u * 1024u)
#endif
#ifndef MM_SESSION_PAGE_WORK
/* Table slots and entries one LOOKUP page walks at most (the work a page
 * costs the loop, whatever the registry's size). */
#define MM_SESSION_PAGE_WORK 8192u
#endif
#ifndef MM_SESSION_WAITERS_MAX
/* Lookups waiting for their label (the requests answered later) per
 * connection; more are answered `overloaded`.  They end with it. */
#define MM_SESSION_WAITERS_MAX 64u
#endif
#ifndef MM_SESSION_SUBS_MAX
/* Subscriptions (WATCH, OPLOG_FOLLOW) per connection; more are answered
 * `overloaded`.  They end with it. */
#define MM_SESSION_SUBS_MAX 16u
#endif
#ifndef MM_SESSION_WAIT_MAX_MS
/* The longest a lookup waits for its label (a longer wait_ms is cut). */
#define MM_SESSION_WAIT_MAX_MS (3600u * 1000u)
#endif
#ifndef MM_SESSION_RETRY_MS
/* How often held subscriptions look whether their connection drained. */
#define MM_SESSION_RETRY_MS 10u
#endif

/* Runtime bounds: mailbox bytes, shutdown, caller deadlines */
#ifndef MM_MAILBOX_BYTES
/* Bytes one mailbox holds: each queued message counts its payload and
 * itself (lib/runtime.h, mm__msg_cost).  Past it a send is refused with
 * MM_EOVERLOADED (a peer's INVOKE is answered `overloaded`), unless the
 * mailbox is empty.  mm_node_config.mailbox_bytes. */
#define MM_MAILBOX_BYTES (16u * 1024u * 1024u)
#endif
#ifndef MM_MAX_CALL_MS
/* The longest deadline a call gets: a caller's longer timeout (local, or a
 * peer's INVOKE) is clamped to it, so no call record outlives it. */
#define MM_MAX_CALL_MS 300000u
#endif
#ifndef MM_SHUTDOWN_MS
/* From mm_node_stop (SIGTERM for `murmer start`) to stopping the actors:
 * messages still queued are answered `closed` at once (tells dropped),
 * and a graceful leave that takes longer is cut here.  A handler that is
 * running finishes first: it cannot be interrupted. */
#define MM_SHUTDOWN_MS 2000u
#endif

/* Registry replication: bounded batches */
#ifndef MM_REGISTRY_BATCH_MAX
/* Bytes in one OPS frame's batch (pushes, catch-up, anti-entropy); also
 * capped by max_frame.  A larger push goes in pieces; a catch-up sends
 * what the peer lacks one batch at a time. */
#define MM_REGISTRY_BATCH_MAX (256u * 1024u)
#endif
#ifndef MM_REGISTRY_SEND_SHARE
/* Replication sends an OPS batch only while the connection's
 * unacknowledged bytes, the batch included, stay within this (or nothing
 * is unacknowledged): the rest of MM_CONN_SEND_MAX stays free for calls.
 * A catch-up waits for room; a push with no room is not sent and the
 * peer's vector is asked for instead (a catch-up follows). */
#define MM_REGISTRY_SEND_SHARE (1024u * 1024u)
#endif
#ifndef MM_REGISTRY_TURN_BATCHES
/* Catch-up batches built and sent per loop turn, over all peers. */
#define MM_REGISTRY_TURN_BATCHES 1u
#endif
#ifndef MM_REGISTRY_CATCHUP_RETRY_MS
/* A catch-up whose connection has no room for the next batch (its earlier
 * batches are not acknowledged yet) looks again after this long. */
#define MM_REGISTRY_CATCHUP_RETRY_MS 2u
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

/* Bounds on what a peer may hold: transport and net */
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

#ifndef MM_CONN_PARTIAL_MAX
/* Bytes of incomplete frames a node buffers for one connection, summed
 * over its streams (each stream's window alone would allow max_frame per
 * stream).  Past it the stream that crossed it is reset with overloaded;
 * on the control stream the connection closes with overloaded. */
#define MM_CONN_PARTIAL_MAX (16u * 1024u * 1024u)
#endif

#ifndef MM_CONNS_INBOUND_MAX
/* Connections a node accepts and keeps (handshaking or up) at most, from
 * members and clients together; past it new Initials are dropped and
 * counted (a dialer sees its handshake time out).  Each costs the QUIC and
 * TLS state of a connection (tens of KiB) plus its bounded queues. */
#define MM_CONNS_INBOUND_MAX 1024u
#endif

#ifndef MM_REGISTRY_APPLY_OPS_MAX
/* Records of received registry OPS batches applied per loop turn (about a
 * millisecond of work); the rest of a larger batch, and any batch behind
 * it, waits for the next turns, in arrival order (lib/registry.c). */
#define MM_REGISTRY_APPLY_OPS_MAX 512u
#endif
#ifndef MM_REGISTRY_APPLY_QUEUE_MAX
/* Bytes of received OPS batches from one peer waiting to be applied; a
 * further batch past it (one batch alone always waits) closes that peer's
 * connection with overloaded.  Their stream credit is held meanwhile, so a
 * peer that follows flow control never reaches it (lib/registry.c). */
#define MM_REGISTRY_APPLY_QUEUE_MAX (8u * 1024u * 1024u)
#endif

#ifndef MM_ACTOR_TIMERS_MAX
/* Timers (mm_send_after, mm_send_every) one actor holds at once; one more
 * is refused with MM_EOVERLOADED.  Each costs a small record and its
 * message on the shard's timer queue. */
#define MM_ACTOR_TIMERS_MAX 256u
#endif

/* ---- the metrics endpoint (lib/metrics.c) -------------------------------- */
#ifndef MM_METRICS_CONNS_MAX
/* HTTP connections the /metrics responder keeps at once; one more is
 * closed at once, unanswered. */
#define MM_METRICS_CONNS_MAX 16u
#endif
#ifndef MM_METRICS_REQUEST_MAX
/* Bytes of one request's head; past it the answer is 431 and a close. */
#define MM_METRICS_REQUEST_MAX 8192u
#endif
#ifndef MM_METRICS_DEADLINE_MS
/* A connection's whole life (request read, answer written); then closed. */
#define MM_METRICS_DEADLINE_MS 5000u
#endif
#ifndef MM_METRICS_GATHER_MS
/* How long a scrape waits for the shards' answers; a shard still busy is
 * left out of that scrape (murmer_scrape_shards_missing). */
#define MM_METRICS_GATHER_MS 1000u
#endif
#ifndef MM_METRICS_PEERS_MAX
/* Peers listed per scrape with their QUIC figures; the rest are counted. */
#define MM_METRICS_PEERS_MAX 1024u
#endif
#ifndef MM_METRICS_TYPES_MAX
/* Actor types a shard reports apart per scrape; others go under "other". */
#define MM_METRICS_TYPES_MAX 256u
#endif

/* Observing the cluster: partitions, ping, members --follow (lib/session.c) */
#ifndef MM_SESSION_GATHERS_MAX
/* Requests a node answers later after asking other members (PARTITIONS,
 * PING, PROBE) at once; more are answered `overloaded`. */
#define MM_SESSION_GATHERS_MAX 32u
#endif
#ifndef MM_SESSION_GATHER_PEERS
/* Members one PARTITIONS asks for their view at most (the others are
 * shown as not asked). */
#define MM_SESSION_GATHER_PEERS 256u
#endif
#ifndef MM_SESSION_GATHER_MS
/* How long a PARTITIONS or PING waits for the members it asked when the
 * request names no "timeout_ms"; "timeout_ms" is cut to the _MAX_MS. */
#define MM_SESSION_GATHER_MS 2000u
#define MM_SESSION_GATHER_MAX_MS 30000u
#endif
#ifndef MM_PING_RELAYS_MAX
/* Members a PING asks to probe the target for it (indirect paths). */
#define MM_PING_RELAYS_MAX 3u
#endif
#ifndef MM_PING_COUNT_MAX
/* Rounds `murmer ping --count` takes at most. */
#define MM_PING_COUNT_MAX 100u
#endif

#ifndef MM_KEYS_WAIT_MS
/* How long a seed waits for the members' answers to a `murmer keys` step
 * it fanned out; a member silent by then counts as not applied. */
#define MM_KEYS_WAIT_MS 3000u
#endif
#ifndef MM_KEYS_OPS_MAX
/* `murmer keys` steps a seed runs at once; one more gets overloaded. */
#define MM_KEYS_OPS_MAX 4u
#endif
/* The keyring's bound (install past it is refused) is MM_KEYRING_MAX, in
 * lib/ckey.h, as the keyring struct is sized by it. */

#ifndef MM_SWIM_MERGE_STEP
/* Signature checks a received push-pull state's merge makes per loop
 * turn (an Ed25519 verification is about 0.1 ms; entries already held
 * cost none), so a big state is merged over several turns and never
 * holds the loop for long; one state merges at a time, another arriving
 * meanwhile is dropped (the next push-pull brings it again) unless the
 * one merging is in its gone part (MM_SWIM_MERGE_GONE_MS). */
#define MM_SWIM_MERGE_STEP 8u
#endif

#ifndef MM_SPAWN_INFLIGHT_MAX
/* Remote SPAWN and STOP requests a seed has forwarded to another member
 * and waits on; one more gets overloaded. */
#define MM_SPAWN_INFLIGHT_MAX 8u
#endif
#ifndef MM_SPAWN_WAIT_MS
/* How long a seed waits for the member it forwarded a SPAWN or STOP to;
 * silent by then: unreachable. */
#define MM_SPAWN_WAIT_MS 5000u
#endif

/* ---- murmer top (lib/metrics.c, lib/session.c) ---- */
#ifndef MM_TOP_ACTORS_MAX
/* Actors one node lists in a top answer: those with the deepest
 * mailboxes, then the most messages handled; the rest are only counted
 * ("actors_total", "truncated"). */
#define MM_TOP_ACTORS_MAX 1000u
#endif
#ifndef MM_TOP_ANSWER_BYTES
/* About how many bytes of actor rows a seed's top answer carries over
 * every node; rows past it are left out and the answer says "truncated". */
#define MM_TOP_ANSWER_BYTES (1024u * 1024u)
#endif
#ifndef MM_TOP_CALLS_WALK
/* Live call records a shard counts for "calls in flight" at most. */
#define MM_TOP_CALLS_WALK 100000u
#endif
#ifndef MM_TOP_INTERVAL_MIN_MS
/* The shortest refresh `murmer top --interval` takes. */
#define MM_TOP_INTERVAL_MIN_MS 200u
#endif

/* ---- the test kit and the transport's fault hook (lib/transport/udp.c) ----
 */
#ifndef MM_FAULT_HOLD_MAX
/* Datagrams the fault hook or a test kit filter holds back (delay) at
 * most per node; one more is dropped and counted (fault_full). */
#define MM_FAULT_HOLD_MAX 8192u
#endif
#ifndef MM_FAULT_HOLD_BYTES
/* Bytes of such held datagrams per node at most; same answer. */
#define MM_FAULT_HOLD_BYTES (16u * 1024u * 1024u)
#endif

/* ---- the local control socket (lib/local.c, lib/session.c) ---- */
#ifndef MM_LOCAL_SOCK_NAME
/* The node's Unix-domain control socket, in its data dir. */
#define MM_LOCAL_SOCK_NAME "murmer.sock"
#endif
#ifndef MM_LOCAL_CONNS_MAX
/* Local connections open at once; one more is answered `overloaded` and
 * closed. */
#define MM_LOCAL_CONNS_MAX 32u
#endif
#ifndef MM_LOCAL_FRAME_MAX
/* The largest request frame a local connection may send; a larger one is
 * answered with an error and the connection closed. */
#define MM_LOCAL_FRAME_MAX (64u * 1024u)
#endif
#ifndef MM_LOCAL_QUEUE_MAX
/* Answer bytes queued to one local connection that does not read them;
 * past it an answer is replaced by a short `overloaded` one, and when even
 * that does not fit the connection is closed (as for QUIC). */
#define MM_LOCAL_QUEUE_MAX MM_CONN_SEND_MAX
#endif

/* ---- membership merge pacing (b-swimconv) ---- */
#ifndef MM_SWIM_MERGE_GONE_MS
/* The gap between merge steps once what is left of a push-pull state is
 * gone members (failed, left): a joiner's first state from a seed that
 * remembers many costs a verification each, and the live members, the
 * calls and the probes come first; a new state arriving meanwhile is
 * merged at once and the rest of the old one dropped (counted). */
#define MM_SWIM_MERGE_GONE_MS 5u
#endif

/* ---- simulation at scale (b-sim10k) ---- */
#ifndef MM_SWIM_SYNC_PAGE
/* Members a push-pull state carries besides the sender: past it each
 * state is the next page of a rotation over the member table (a sync
 * costs the same at 10 000 members as at 256; the rest follows in the
 * next syncs, which a digest that still differs asks for). */
#define MM_SWIM_SYNC_PAGE 256u
#endif

/* ---- connections at scale (b-scale500) ---- */
#ifndef MM_REGISTRY_DIAL_GAP_MS
/* Registry digests that must dial a member (no connection to it: a node
 * with no member connection learning members, a member back from failed)
 * go out at most one per this gap.  Members back from failed that wait are
 * remembered (bounded by the member table) and served one a gap, or at
 * once once connected; a catching-up node's extra digests are dropped and
 * counted (anti-entropy covers it). */
#define MM_REGISTRY_DIAL_GAP_MS 1000u
#endif
#ifndef MM_CONNS_IDLE_MAX
/* Member connections kept open while idle (no call pending or being
 * served, no actor stream with calls, nothing waiting to go or
 * unacknowledged); past it the least recently used idle ones are closed
 * at the next sweep (1 s), counted.  Connections that carry calls are
 * never closed for it, and a closed one is dialled again when needed.
 * Without it membership push-pulls and registry digests to random members
 * left a node connected to a growing share of the cluster (a third of it
 * at 500 nodes, ~0.25 MiB of memory each). */
#define MM_CONNS_IDLE_MAX 8u
#endif

#ifndef MM_SWIM_STATE_GOSSIP_MAX
/* Up to this many members, members learnt from a push-pull state are
 * gossiped on; in a larger cluster they are not (docs/design.md, The
 * simulator). */
#define MM_SWIM_STATE_GOSSIP_MAX 64u
#endif

/* ---- 500 nodes: storms (b-s500) ---- */
#ifndef MM_SWIM_LATE_MS
/* A probe step (its timeout, its end) that runs this long after it was
 * due says this node is behind (its loop, or a saturated CPU, did not run
 * it in time): its local health score goes up (slower probes, longer
 * timeouts), the end of the probe is put off once so that an answer
 * waiting unread is read first, and intermediaries always get their whole
 * window.  0 turns it off (MURMER_SWIM_LATE_MS). */
#define MM_SWIM_LATE_MS 100u
#endif
#ifndef MM_SWIM_SYNC_GAP_MAX_MS
/* Push-pulls for a differing digest: with a cap set, each one while
 * digests keep differing waits twice as long after the previous one as
 * that one did (from MM_SWIM_SYNC_JITTER_MS) up to this cap; a digest
 * equal to ours clears it.  0 (the default): no gap.  Off because it
 * did not lower the pulls of 500-node bursts and slowed the simulator's
 * join (docs/performance.md); MURMER_SWIM_SYNC_GAP_MAX_MS to try it. */
#define MM_SWIM_SYNC_GAP_MAX_MS 0u
#endif
#ifndef MM_HEAP_TRIM_GAP_MS
/* After member connections close or a push-pull state is merged (a
 * burst's buffers freed), the next sweep (1 s) gives the heap's free pages
 * back to the system (glibc's malloc_trim), at most once per this gap:
 * freed memory in the middle of the heap otherwise stays resident. */
#define MM_HEAP_TRIM_GAP_MS 2000u
#endif

#endif /* MM_DEFAULTS_H */
