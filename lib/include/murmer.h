/*
 * murmer.h — the public API of libmurmer, a distributed actor framework.
 *
 * An actor is a stateful message processor.  Callers hold an endpoint
 * (node id, generation, actor id) and never need to know whether the actor
 * lives in this process or on another node: local sends move the payload in
 * memory, remote sends travel over QUIC.
 *
 * Conventions:
 *  - Functions return 0 or a negative error code: MM_E*, or a negative
 *    errno (-ENOMEM; libuv's UV_E* codes have the same values).
 *  - Constructors take the out-parameter first; methods take the object first.
 *  - `const char *` inputs are borrowed and copied when kept.
 *  - A message passed to a send function belongs to the library when the call
 *    returns 0 and is still the caller's when it returns an error.
 *  - Callback arguments are borrowed for the duration of the callback.
 *  - Nothing cJSON-shaped crosses this header except the opaque
 *    `struct cJSON` pointer of mm_msg_json(), and nothing of libuv except
 *    the opaque `struct uv_loop_s` pointer of mm_node_loop(): this header
 *    compiles alone under -std=c11 -pedantic, without uv.h or cJSON.h.
 */
#ifndef MURMER_H
#define MURMER_H

#include <stddef.h>
#include <stdint.h>

/* Errors, log levels, the node id length, content kinds, restart policies,
 * visibilities and stop reasons. */
#include "murmer_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MM_VERSION_MAJOR 0
#define MM_VERSION_MINOR 1
#define MM_VERSION_PATCH 0
#define MM_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

/* |level| is an enum mm_log_level (murmer_base.h). */
typedef void (*mm_log_fn)(void *data, int level, const char *component,
                          const char *line);
MM_EXTERN void mm_log_set_level(int level);
MM_EXTERN int mm_log_get_level(void);
/*
 * |fn| NULL restores the stderr sink. Called from any thread.  |fn| is
 * called synchronously, from the thread that logs (one call at a time),
 * and it must not log itself.  The stderr sink never blocks: what stderr
 * does not take at once waits in a bounded buffer (MM_LOG_BUFFER) that a
 * thread drains; lines that do not fit are dropped and their number
 * written once stderr takes lines again.  For either sink, lines at
 * NOTICE and above that repeat one (component, format) more than
 * MM_LOG_REPEAT_MAX times in MM_LOG_REPEAT_MS are counted and summarised
 * in one line ("N more '...' in the last 10 s"), which may come from
 * another thread.
 */
MM_EXTERN void mm_log_set_handler(mm_log_fn fn, void *data);
/*
 * One line of a program's own (|text| without its newline) through the
 * same sink: the handler gets (|level|, |component|, |text|); stderr gets
 * |text| as it stands, with no prefix, through the same buffer, so it
 * never blocks either.  Neither filtered by the level nor summarised: the
 * caller decides.  A program that runs a node writes its own lines this
 * way (`murmer start` does).
 */
MM_EXTERN void mm_log_line(int level, const char *component, const char *text);
/* Waits at most |timeout_ms| for the queued stderr lines to be written: 0,
 * or MM_ETIMEOUT (then later flushes do not wait until stderr has taken
 * everything queued).  mm_node_free and exit flush too. */
MM_EXTERN int mm_log_flush(unsigned timeout_ms);
/*
 * The stderr sink's line format.  TEXT (the default): "murmer[PID] W
 * module: message", with the syslog priority "<N>" in front when stderr
 * is the journal's stream ($JOURNAL_STREAM).  JSON: one object per line,
 * {"time" (RFC 3339, UTC, milliseconds), "level" ("error", "warn",
 * "notice", "info", "debug"), "pid", "module", "message"}; for
 * mm_log_line a leading "murmer MODULE: " leaves the message.  A handler
 * (mm_log_set_handler) is not affected.
 */
enum mm_log_format { MM_LOG_FORMAT_TEXT = 0, MM_LOG_FORMAT_JSON = 1 };
MM_EXTERN void mm_log_set_format(int format);

/* ------------------------------------------------------------------------ */
/* Core types                                                               */
/* ------------------------------------------------------------------------ */

typedef struct mm_node mm_node;
typedef struct mm_ctx mm_ctx;     /* handler context; valid during a call */
typedef struct mm_msg mm_msg;     /* a message: type + payload */
typedef struct mm_defer mm_defer; /* a deferred-reply obligation */
typedef struct mm_listing mm_listing;
typedef struct mm_router mm_router;
typedef struct mm_ready mm_ready;

/*
 * An endpoint addresses one actor instance.  It is a plain value: copy it,
 * compare it with mm_endpoint_equal(), send it inside messages.  An endpoint
 * survives its actor's supervised restarts; once the actor is gone, sends
 * fail with MM_ENOTFOUND and never reach another instance.
 */
typedef struct mm_endpoint {
    uint8_t node[MM_NODE_ID_LEN]; /* node id: sha256(ed25519 pubkey)[0:16] */
    uint64_t generation;          /* the node's generation (bumped per start) */
    uint64_t actor; /* actor id within that generation; 0 = none */
} mm_endpoint;

MM_EXTERN int mm_endpoint_equal(const mm_endpoint *a, const mm_endpoint *b);
/* Formats as "<32 hex node id>/<generation>/<actor>"; |buf| >= 80 bytes. */
MM_EXTERN char *mm_endpoint_format(const mm_endpoint *ep, char *buf,
                                   size_t len);
MM_EXTERN int mm_endpoint_parse(mm_endpoint *out, const char *s);

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Constructors. |type| is the message type name ("increment"); it is
 * interned when the node knows it.  JSON and raw payloads are copied once
 * here; a local send then moves the message without copying again.
 * mm_msg_new_ptr() keeps |ptr| and calls |dtor|(ptr) when the message is
 * freed (|dtor| may be NULL).  Return NULL only when out of memory.
 */
MM_EXTERN mm_msg *mm_msg_new(const char *type);
MM_EXTERN mm_msg *mm_msg_new_json(const char *type, const char *json,
                                  size_t len);
MM_EXTERN mm_msg *mm_msg_new_raw(const char *type, const void *data,
                                 size_t len);
MM_EXTERN mm_msg *mm_msg_new_ptr(const char *type, void *ptr,
                                 void (*dtor)(void *));
/* Same, with a type id from mm_node_msg_id() (no hashing on the hot path). */
MM_EXTERN mm_msg *mm_msg_new_id(mm_node *n, uint32_t type_id, void *ptr,
                                void (*dtor)(void *));
MM_EXTERN void mm_msg_free(mm_msg *m);

/* The per-call deadline (default: the node's, 5 s). 0 = the default. */
MM_EXTERN void mm_msg_set_timeout(mm_msg *m, uint32_t ms);

MM_EXTERN const char *mm_msg_type(const mm_msg *m);
MM_EXTERN int mm_msg_content(const mm_msg *m);
/* JSON or raw bytes (NULL and 0 for none or pointer payloads). */
MM_EXTERN const void *mm_msg_data(const mm_msg *m, size_t *len);
MM_EXTERN void *mm_msg_ptr(const mm_msg *m);
/*
 * The payload parsed as JSON (lazily, once; owned by the message).  NULL on a
 * parse error, with |*err_offset| (if not NULL) set to the byte offset of the
 * error.  Integers beyond 2^53 lose precision (cJSON stores doubles).
 */
struct cJSON;
MM_EXTERN const struct cJSON *mm_msg_json(mm_msg *m, size_t *err_offset);

/* ------------------------------------------------------------------------ */
/* Actor types                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Handler return values: 0 = done; MM_STOP = stop normally after this
 * message; any negative value = crash (the caller gets MM_EHANDLER and the
 * supervisor decides on a restart).  A handler replies with mm_reply_*() or
 * mm_defer(); a call that gets no reply is answered with an empty ok reply.
 */
#define MM_STOP 1

typedef int (*mm_handler_fn)(mm_ctx *ctx, void *state, mm_msg *msg);
typedef int (*mm_start_fn)(mm_ctx *ctx, void *state);
typedef void (*mm_stop_fn)(mm_ctx *ctx, void *state, int reason);

typedef struct mm_handler {
    const char *name;
    mm_handler_fn fn;
    unsigned flags; /* MM_HANDLER_* */
} mm_handler;

/* The handler decodes its own payload strictly (MM_TYPED sets it): a JSON
 * payload from another node reaches it unchecked, and a malformed one is
 * answered by its decoder.  Other handlers only ever see well-formed JSON
 * from another node: the node checks it before the handler runs and
 * answers MM_EDECODE "malformed JSON at byte N" without calling it. */
#define MM_HANDLER_TYPED 1u

typedef struct mm_actor_type {
    const char *name;  /* type name, e.g. "counter" */
    size_t state_size; /* zeroed state owned by the node */
    mm_start_fn start; /* may be NULL; nonzero return = start failed */
    mm_stop_fn stop;   /* may be NULL */
    const mm_handler *handlers;
    size_t nhandlers;
} mm_actor_type;

#define MM_HANDLER(name, fn)                                                   \
    {                                                                          \
        (name), (fn), 0                                                        \
    }
/*
 * Declares `const mm_actor_type <ident>_type`:
 *   MM_ACTOR_TYPE(counter, struct counter_state, counter_start, NULL,
 *       MM_HANDLER("increment", counter_increment),
 *       MM_HANDLER("get", counter_get));
 */
#define MM_ACTOR_TYPE(ident, state_t, start_fn, stop_fn, ...)                  \
    static const mm_handler ident##_handlers[] = {__VA_ARGS__};                \
    const mm_actor_type ident##_type = {                                       \
        #ident,                                                                \
        sizeof(state_t),                                                       \
        (start_fn),                                                            \
        (stop_fn),                                                             \
        ident##_handlers,                                                      \
        sizeof(ident##_handlers) / sizeof(ident##_handlers[0])}

/* ------------------------------------------------------------------------ */
/* Node                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct mm_node_config {
    const char *name;      /* node name; default: hostname */
    const char *listen;    /* "host:port"; NULL = local only (no network) */
    const char *advertise; /* required when listen is a wildcard */
    const char *data_dir;  /* default: $XDG_STATE_HOME/murmer/<name> */
    const char *cluster_key_file; /* NULL: env vars, else dev mode */
    const char *const *join;      /* seeds "host:port" */
    size_t njoin;
    const char *const *tags; /* "k=v" */
    size_t ntags;
    int mdns;                    /* 1 on, 0 off, -1 default (on with a key) */
    int shards;                  /* loops/threads; 0 = 1 */
    int insecure;                /* dev mode beyond loopback */
    uint32_t mailbox_capacity;   /* default MM_MAILBOX_CAPACITY; <= 2^22 */
    uint32_t default_timeout_ms; /* default 5000 */
    uint32_t max_frame;          /* default 4 MiB */
    /* Bytes an actor's mailbox holds (messages with their payloads), as
     * mailbox_capacity bounds their number: past either a send is refused
     * with MM_EOVERLOADED (but a message to an empty mailbox always goes).
     * Replies and the runtime's own messages are not counted.  Default
     * MM_MAILBOX_BYTES (16 MiB); at most 4 GiB - 1. */
    size_t mailbox_bytes;
    /* Connections the node accepts and keeps at most (members and clients
     * together; in handshake or up); past it new ones are dropped until
     * one closes.  Default MM_CONNS_INBOUND_MAX (1024). */
    uint32_t max_connections;
} mm_node_config;

MM_EXTERN void mm_node_config_init(mm_node_config *cfg);
/* Creates a node; copies every string of |cfg|.  0 or MM_E* / UV_E*. */
MM_EXTERN int mm_node_new(mm_node **out, const mm_node_config *cfg);
/* Registers an actor type (before or after start). MM_EEXISTS on a dup. */
MM_EXTERN int mm_node_register_type(mm_node *n, const mm_actor_type *t);
/* Registers the built-in types echo, counter, kv and greeter. */
MM_EXTERN int mm_node_register_builtins(mm_node *n);
/* The interned id of a message type name; 0 if unknown. */
MM_EXTERN uint32_t mm_node_msg_id(mm_node *n, const char *type);
/* Runs the node on this thread (shard 0; other shards on their own
 * threads) until mm_node_stop(). */
MM_EXTERN int mm_node_run(mm_node *n);
/* Runs every shard on background threads; returns at once. */
MM_EXTERN int mm_node_start_thread(mm_node *n);
/*
 * Requests shutdown from any thread (async-signal-unsafe).  New sends fail
 * with MM_ECLOSED at once; on each shard the handler that is running
 * finishes and the messages still queued are not run: calls are answered
 * MM_ECLOSED, tells dropped.  A node in a cluster then leaves gracefully
 * for at most MM_SHUTDOWN_MS (2 s) from this call; actors are stopped and
 * handles closed.  A handler cannot be interrupted: one that runs longer
 * than the deadline is waited for (handlers must not block).
 */
MM_EXTERN void mm_node_stop(mm_node *n);
/* Waits for the threads of mm_node_start_thread() to end. */
MM_EXTERN int mm_node_join(mm_node *n);
/* Frees a stopped node (after mm_node_run returns or mm_node_join). */
MM_EXTERN void mm_node_free(mm_node *n);

MM_EXTERN const char *mm_node_name(const mm_node *n);
/* 32 lowercase hex chars. */
MM_EXTERN const char *mm_node_id(const mm_node *n);
MM_EXTERN uint64_t mm_node_generation(const mm_node *n);
/* The loop of |shard| (0 = the network shard): a uv_loop_t * for a
 * program that includes <uv.h> (uv_loop_t is struct uv_loop_s). */
struct uv_loop_s;
MM_EXTERN struct uv_loop_s *mm_node_loop(mm_node *n, int shard);
MM_EXTERN int mm_node_shards(const mm_node *n);
/* The address the node listens on ("127.0.0.1:7420"), or NULL. */
MM_EXTERN const char *mm_node_addr(const mm_node *n);
/*
 * Serves the node's metrics in the Prometheus text format on
 * http://|hostport|/metrics ("ip:port", "[v6]:port", "localhost:port";
 * port 0 = any), from a thread of its own, until mm_node_free.  Call once,
 * before or after the node runs.  0, MM_EINVAL (bad address), MM_EEXISTS
 * (already serving) or a UV_E* error of the bind.  docs/metrics.md lists
 * the families.
 */
MM_EXTERN int mm_node_serve_metrics(mm_node *n, const char *hostport);
/* The address the metrics endpoint is bound to ("ip:port"), or NULL. */
MM_EXTERN const char *mm_node_metrics_addr(const mm_node *n);

/*
 * Runs |work|(data) on libuv's thread pool, then |after|(data, status) on
 * the calling shard (or shard 0 from a foreign thread).
 */
MM_EXTERN int mm_node_queue_work(mm_node *n, void (*work)(void *data),
                                 void (*after)(void *data, int status),
                                 void *data);

/* Runs |fn|(data) on |shard|'s thread, soon. Thread-safe. */
MM_EXTERN int mm_node_post(mm_node *n, int shard, void (*fn)(void *data),
                           void *data);

/* ------------------------------------------------------------------------ */
/* Spawning and supervision                                                 */
/* ------------------------------------------------------------------------ */

typedef struct mm_spawn_opts {
    const char *label;       /* registered when not NULL */
    int visibility;          /* enum mm_visibility */
    const char *const *keys; /* reception keys to check in under */
    size_t nkeys;
    int policy;                  /* enum mm_policy */
    int max_restarts;            /* within restart_window_ms; default 5 */
    uint32_t restart_window_ms;  /* default 60000 */
    uint32_t backoff_initial_ms; /* default 100 */
    uint32_t backoff_max_ms;     /* default 30000 */
    uint32_t mailbox_capacity;   /* default: the node's */
    int shard;                   /* -1 = the caller's shard, or round-robin */
    const char *arg_json; /* init argument (copied), see mm_ctx_arg_json */
    void *arg_ptr;        /* init argument (borrowed) */
} mm_spawn_opts;

MM_EXTERN void mm_spawn_opts_init(mm_spawn_opts *o);
/*
 * Spawns an actor of the registered type |type_name| and stores its
 * endpoint in |*out| (may be NULL).  Thread-safe.  The start hook runs on
 * the actor's shard soon after; messages sent before that are queued.
 * MM_ENOTFOUND for an unknown type, MM_EEXISTS for a label taken locally.
 */
MM_EXTERN int mm_spawn(mm_node *n, const char *type_name,
                       const mm_spawn_opts *opts, mm_endpoint *out);
/*
 * Prepares an actor: it is registered and its mailbox accepts messages,
 * but it does not run until mm_ready_start().  mm_ready_drop() deregisters
 * it and answers its queued calls with MM_ENOTFOUND.  Either call frees
 * |r|.
 */
MM_EXTERN int mm_spawn_ready(mm_ready **out, mm_node *n, const char *type_name,
                             const mm_spawn_opts *opts);
MM_EXTERN const mm_endpoint *mm_ready_endpoint(const mm_ready *r);
MM_EXTERN int mm_ready_start(mm_ready *r);
MM_EXTERN void mm_ready_drop(mm_ready *r);

/* Stops an actor (reason MM_REASON_STOPPED; never restarted). Thread-safe. */
MM_EXTERN int mm_actor_stop(mm_node *n, const mm_endpoint *ep);

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A reply callback: |status| 0 or MM_E*; |reply| is borrowed (never NULL on
 * status 0; on MM_EHANDLER it carries the error text as JSON string).
 * It runs on the caller's shard (or the target's shard when the caller was
 * not on a shard thread).
 */
typedef void (*mm_reply_cb)(void *data, int status, mm_msg *reply);

/*
 * Sends |msg| to |to|.  With |cb| it is a call: exactly one reply or error
 * reaches |cb|, by the message's deadline at the latest.  With |cb| NULL it
 * is a tell (no reply on the wire).  Thread-safe.  On 0 the library owns
 * |msg|; on error (MM_ENOTFOUND, MM_EOVERLOADED, MM_EUNKNOWN_MESSAGE,
 * MM_ENOT_SERIALIZABLE, MM_ECLOSED) the caller still does and |cb| is not
 * called.  Errors found later (remote not_found, timeout) go to |cb|.
 */
MM_EXTERN int mm_send(mm_node *n, const mm_endpoint *to, mm_msg *msg,
                      mm_reply_cb cb, void *data);
MM_EXTERN int mm_tell(mm_node *n, const mm_endpoint *to, mm_msg *msg);
/*
 * A blocking call for threads that are not shard threads (MM_EDEADLK on a
 * shard thread; |msg| is freed in every case).  On 0, |*reply| is the
 * caller's (mm_msg_free); on an error too when the actor answered with a
 * text (mm_reply_error: a JSON string), else |*reply| is NULL.
 */
MM_EXTERN int mm_call(mm_node *n, const mm_endpoint *to, mm_msg *msg,
                      mm_msg **reply);
/* Calls |cb|(data) once |to|'s mailbox has room again (at once if it has).
 * The callback runs on the caller's shard. */
MM_EXTERN int mm_endpoint_when_writable(mm_node *n, const mm_endpoint *to,
                                        void (*cb)(void *data), void *data);

/* ------------------------------------------------------------------------ */
/* Inside a handler                                                         */
/* ------------------------------------------------------------------------ */

MM_EXTERN mm_node *mm_ctx_node(mm_ctx *ctx);
MM_EXTERN const mm_endpoint *mm_ctx_self(mm_ctx *ctx);
MM_EXTERN const char *mm_ctx_label(mm_ctx *ctx); /* NULL if unlabelled */
MM_EXTERN const char *mm_ctx_arg_json(mm_ctx *ctx);
MM_EXTERN void *mm_ctx_arg_ptr(mm_ctx *ctx);
/* Whether the current message expects a reply. */
MM_EXTERN int mm_ctx_is_call(mm_ctx *ctx);

/* Replies (at most one per call; later ones return MM_EEXISTS).  mm_reply
 * takes |reply| in every case, also when it returns an error. */
MM_EXTERN int mm_reply(mm_ctx *ctx, mm_msg *reply);
MM_EXTERN int mm_reply_json(mm_ctx *ctx, const char *json);
MM_EXTERN int mm_reply_jsonf(mm_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
MM_EXTERN int mm_reply_ptr(mm_ctx *ctx, void *ptr, void (*dtor)(void *));
/* An error reply (MM_EHANDLER or another MM_E*) with a message text. */
MM_EXTERN int mm_reply_error(mm_ctx *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes over the reply obligation; answer later from any thread. */
MM_EXTERN mm_defer *mm_ctx_defer(mm_ctx *ctx);
MM_EXTERN int mm_defer_reply(mm_defer *d, int status, mm_msg *reply);
/* Marks the current turn as a crash (the handler should then return). */
MM_EXTERN int mm_fail(mm_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------ */
/* Timers (inside a handler or the start hook)                              */
/* ------------------------------------------------------------------------ */

/*
 * An actor's timers send a message as a tell, later (mm_send_after: once,
 * |ms| from now) or repeatedly (mm_send_every: every |ms|, the first |ms|
 * from now), to |to| or, with |to| NULL, to the actor itself.  They run on
 * the actor's shard, on its timer queue (no thread of their own), and
 * belong to the actor: when it stops, crashes, is restarted or its node
 * shuts down, every timer it set is cancelled (after the stop hook: a
 * timer set there is cancelled at once).
 *
 * A message is sent at or after its time, never before; a periodic timer
 * keeps its rhythm (deadline + ms) and, when the shard fell behind by more
 * than a period, skips what it missed rather than sending a burst.  Each
 * send is an mm_tell(): a full mailbox drops that one message (the next
 * tick tries again), a target that is gone (MM_ENOTFOUND) cancels a
 * periodic timer.  A message already queued in a mailbox when its timer is
 * cancelled is still delivered.
 *
 * On 0 the library owns |msg| and |*id| (may be NULL) names the timer;
 * ids are never 0 and never reused within a node's run.  On an
 * error the caller keeps |msg|: MM_EOVERLOADED when the actor has
 * MM_ACTOR_TIMERS_MAX (256) timers already; MM_EUNKNOWN_MESSAGE for a
 * message type that no type registered on this node handles (local
 * targets) or none; MM_ENOTFOUND for a local target that is gone;
 * MM_ENOT_SERIALIZABLE for a pointer payload to another node and
 * MM_EUNREACHABLE for any message to another node from a local-only one
 * (no listen address); MM_EINVAL
 * for mm_send_every with |ms| 0 or a pointer payload (a message sent every
 * period is copied each time, and a pointer cannot be); MM_ECLOSED when
 * the node stops.  Shard thread only, with the |ctx| of the running
 * handler (|ms| 0 with mm_send_after: on the next loop turn).
 */
typedef uint64_t mm_timer_id;
MM_EXTERN int mm_send_after(mm_ctx *ctx, const mm_endpoint *to, uint32_t ms,
                            mm_msg *msg, mm_timer_id *id);
MM_EXTERN int mm_send_every(mm_ctx *ctx, const mm_endpoint *to, uint32_t ms,
                            mm_msg *msg, mm_timer_id *id);
/* Cancels a timer of this actor: 0, or MM_ENOTFOUND when it is not armed
 * (a one-shot that fired, a timer already cancelled, or another actor's or
 * an earlier incarnation's id). */
MM_EXTERN int mm_timer_cancel(mm_ctx *ctx, mm_timer_id id);

/* ------------------------------------------------------------------------ */
/* Receptionist: labels, reception keys, listings, watches                  */
/* ------------------------------------------------------------------------ */

/* Registers |ep| (a local actor) under |label|. MM_EEXISTS if taken here. */
MM_EXTERN int mm_register(mm_node *n, const char *label, const mm_endpoint *ep,
                          int visibility);
MM_EXTERN int mm_deregister(mm_node *n, const char *label);
/* Adds the actor registered as |label| to reception key |key|. */
MM_EXTERN int mm_check_in(mm_node *n, const char *label, const char *key);
/* Looks a label up (the winner when several nodes claim it). */
MM_EXTERN int mm_lookup(mm_node *n, const char *label, mm_endpoint *out);
/* As mm_lookup, and the actor must be of type |type_name| (NULL: any):
 * MM_ENOTFOUND when |label| is absent, MM_ETYPE_MISMATCH when it names an
 * actor of another type (or of a type the registry does not know). */
MM_EXTERN int mm_lookup_typed(mm_node *n, const char *label,
                              const char *type_name, mm_endpoint *out);
typedef void (*mm_lookup_cb)(void *data, int status, const mm_endpoint *ep);
/* Waits up to |timeout_ms| for |label|; |cb| runs on the caller's shard. */
MM_EXTERN int mm_lookup_wait(mm_node *n, const char *label, uint32_t timeout_ms,
                             mm_lookup_cb cb, void *data);

enum mm_listing_event_kind {
    MM_LISTING_ADDED = 1,
    MM_LISTING_REMOVED = 2,
    MM_LISTING_RESYNC = 3, /* the queue overflowed: a new backfill follows */
    MM_LISTING_SYNCED = 4  /* the backfill is complete; live events follow */
};
typedef struct mm_listing_event {
    int kind;
    const char *label; /* NULL for RESYNC and SYNCED */
    mm_endpoint ep;
    int reason; /* removals: enum mm_reason */
} mm_listing_event;
typedef void (*mm_listing_cb)(void *data, const mm_listing_event *ev);

typedef struct mm_listing_opts {
    const char *key;      /* reception key; NULL = every label */
    const char *prefix;   /* label prefix filter; NULL = none */
    uint32_t queue_limit; /* undelivered events before RESYNC; default 1024 */
    int shard;            /* where |cb| runs; -1 = the caller's shard */
} mm_listing_opts;
MM_EXTERN void mm_listing_opts_init(mm_listing_opts *o);
/*
 * Opens a listing: a backfill of current matches in label order, SYNCED,
 * then ADDED/REMOVED as actors come and go.  Events are delivered through
 * a bounded queue; a subscriber that falls behind gets RESYNC and a fresh
 * backfill, never silent loss.
 */
MM_EXTERN int mm_listing_open(mm_listing **out, mm_node *n,
                              const mm_listing_opts *o, mm_listing_cb cb,
                              void *data);
/* Closes a listing; no callback runs after it returns (on its shard). */
MM_EXTERN void mm_listing_close(mm_listing *l);

/* Fires |cb| once when the actor stops (at once, MM_REASON_NOT_FOUND, when
 * it is not there).  |label| or |ep| names the actor. */
typedef void (*mm_watch_cb)(void *data, const mm_endpoint *ep, int reason);
MM_EXTERN int mm_watch(mm_node *n, const char *label, const mm_endpoint *ep,
                       mm_watch_cb cb, void *data);

/* Node-wide events (registry and supervision); |cb| may run on any shard. */
enum mm_event_kind {
    MM_EV_REGISTERED = 1,
    MM_EV_DEREGISTERED = 2,
    MM_EV_RESTARTED = 3,
    MM_EV_STOPPED = 4
};
typedef struct mm_event {
    int kind;
    const char *label;
    mm_endpoint ep;
    int reason;
    unsigned restarts;
} mm_event;
typedef void (*mm_event_cb)(void *data, const mm_event *ev);
MM_EXTERN void mm_node_set_event_cb(mm_node *n, mm_event_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* Routers                                                                  */
/* ------------------------------------------------------------------------ */

enum mm_router_kind {
    MM_ROUTER_ROUND_ROBIN = 0,
    MM_ROUTER_RANDOM = 1,
    MM_ROUTER_BROADCAST = 2
};
/* Over a fixed list of endpoints (copied). */
MM_EXTERN int mm_router_new(mm_router **out, mm_node *n, int kind,
                            const mm_endpoint *eps, size_t count);
/* Over the live listing of reception key |key| (a pool router). */
MM_EXTERN int mm_router_new_pool(mm_router **out, mm_node *n, int kind,
                                 const char *key);
MM_EXTERN size_t mm_router_size(mm_router *r);
/*
 * Routes |msg|.  Round-robin and random behave like mm_send(); broadcast
 * sends a copy to every member in parallel and calls |bcb| once with every
 * result.  MM_EEMPTY when the router has no members.
 */
MM_EXTERN int mm_router_send(mm_router *r, mm_msg *msg, mm_reply_cb cb,
                             void *data);
typedef struct mm_broadcast_result {
    mm_endpoint ep;
    int status;
    mm_msg *reply; /* borrowed; NULL on error */
} mm_broadcast_result;
typedef void (*mm_broadcast_cb)(void *data, size_t n,
                                const mm_broadcast_result *results);
MM_EXTERN int mm_router_broadcast(mm_router *r, mm_msg *msg, mm_broadcast_cb cb,
                                  void *data);
MM_EXTERN void mm_router_free(mm_router *r);

/* ------------------------------------------------------------------------ */
/* Plugins                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A plugin is a shared object that adds actor types to a node without a
 * main() of its own (`murmer start --plugin x.so`).  It exports
 *
 *     const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;
 *     int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);
 *
 * The loader refuses a plugin whose mm_plugin_abi differs from its own,
 * then calls mm_plugin_init, which registers its types with
 * mm_plugin_register_type() and returns 0 (or a negative code).  Plugins
 * are loaded with RTLD_NOW | RTLD_LOCAL and never unloaded; handlers may
 * run on any shard.  A crash in plugin code (SIGSEGV) kills the node: a
 * crash is a return code, not a signal.
 */
#define MM_PLUGIN_ABI 2u
typedef struct mm_plugin_ctx mm_plugin_ctx;
typedef int (*mm_plugin_init_fn)(mm_plugin_ctx *ctx, uint32_t abi);
MM_EXTERN mm_node *mm_plugin_node(mm_plugin_ctx *ctx);
/* Registers a type; |t| must outlive the node (a static in the plugin).
 * MM_EEXISTS when a type of that name exists already. */
MM_EXTERN int mm_plugin_register_type(mm_plugin_ctx *ctx,
                                      const mm_actor_type *t);
/*
 * Loads the plugin at |path| into |n|.  0; MM_EINVAL when it cannot be
 * loaded or lacks the symbols; MM_EINVAL with a wrong ABI; whatever its
 * init returned.  A one-line reason goes to |err| (may be NULL).
 */
MM_EXTERN int mm_node_load_plugin(mm_node *n, const char *path, char *err,
                                  size_t errlen);

/* ------------------------------------------------------------------------ */
/* Cluster key                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Writes a new random 32-byte cluster key, base64 plus a newline, to |path|
 * (created with mode 0600; MM_EEXISTS if it exists) or to stdout when
 * |path| is NULL.
 */
MM_EXTERN int mm_cluster_keygen(const char *path);
/*
 * Writes the client key derived from the cluster key(s) of
 * |cluster_key_file| (NULL: $MURMER_CLUSTER_KEY_FILE, $MURMER_CLUSTER_KEY)
 * to |path| as mm_cluster_keygen does: one "client:<base64>" line per key
 * (read_only: "read-only:<base64>", derivable from a client key too).  A
 * client key lets its holder use the client session (members, lookup,
 * watch, oplog, send; read-only: not send nor force-leave) but never join
 * as a member, and the cluster key cannot be recovered from it.  0,
 * MM_EEXISTS, MM_EKEY or MM_EINVAL (no key, or nothing to derive) with one
 * line of text in |err|, or -errno.
 */
MM_EXTERN int mm_client_keygen(const char *cluster_key_file, const char *path,
                               int read_only, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* Client sessions (what the murmer CLI uses)                               */
/* ------------------------------------------------------------------------ */

/*
 * A client session: a lightweight, authenticated connection to one seed
 * node.  It never joins membership and never appears in member lists.
 * Calls block the calling thread (each is bounded by the timeout); a
 * session is used from one thread at a time.
 */
typedef struct mm_client mm_client;

typedef struct mm_client_config {
    const char *const *seeds; /* "host:port"; none: 127.0.0.1:7420, then
                               * mDNS (an explicit seed never falls back) */
    size_t nseeds;
    const char *cluster_key_file; /* NULL: env vars, else the dev key */
    const char *state_dir; /* identity; NULL: $XDG_STATE_HOME/murmer-cli */
    uint32_t timeout_ms;   /* every blocking call; 0 = 5000 */
} mm_client_config;

MM_EXTERN void mm_client_config_init(mm_client_config *cfg);
/* Connects and authenticates.  MM_EUNREACHABLE (no seed answered),
 * MM_EUNAUTHORIZED (wrong key), MM_EKEY (key file problems). */
MM_EXTERN int mm_client_connect(mm_client **out, const mm_client_config *cfg);
MM_EXTERN void mm_client_close(mm_client *c);
/* Makes the call |c| is blocked in (and every later one) return
 * MM_ECLOSED at once; mm_client_close() then still closes the connection
 * gracefully.  Async-signal-safe: for a SIGINT handler. */
MM_EXTERN void mm_client_interrupt(mm_client *c);
/* The seed's node name and address (valid while connected). */
MM_EXTERN const char *mm_client_seed_name(const mm_client *c);
MM_EXTERN const char *mm_client_seed_addr(const mm_client *c);
/* The last error text the seed sent with a failure ("" if none).  With
 * |c| NULL: why this thread's last mm_client_connect() failed. */
MM_EXTERN const char *mm_client_error_text(const mm_client *c);

typedef struct mm_member_info {
    const char *name, *id, *addr, *state; /* state: alive|suspect|failed|left */
    uint64_t generation, incarnation;
    const char *tags;       /* "k=v,k=v" */
    unsigned confirmations; /* suspicion confirmations */
    int64_t last_ack_ms;    /* age of the last ack; -1 never */
    int64_t rtt_us;         /* -1 unknown */
} mm_member_info;
/* The state names of mm_member_info.state: 0 "alive", 1 "suspect",
 * 2 "failed", 3 "left"; NULL for any other |state|. */
MM_EXTERN const char *mm_member_state_name(int state);
/* |*out| is an array of |*n| (free with mm_client_free_result). */
MM_EXTERN int mm_client_members(mm_client *c, mm_member_info **out, size_t *n);
typedef struct mm_timing {
    const char *name; /* "probe_interval_ms" */
    uint64_t value;
} mm_timing;
MM_EXTERN int mm_client_timings(mm_client *c, mm_timing **out, size_t *n);

typedef struct mm_actor_info {
    const char *label;
    mm_endpoint ep;
    const char *type, *node_name, *visibility;
    const char *const *keys;
    size_t nkeys;
    int shadowed;
} mm_actor_info;
/* By |label| (exact), or every actor under |prefix| and/or |key|; |all|
 * adds shadowed claimants; |wait_ms| waits for |label| to appear.
 * MM_ENOTFOUND when nothing matches. */
MM_EXTERN int mm_client_lookup(mm_client *c, const char *label,
                               const char *prefix, const char *key, int all,
                               uint32_t wait_ms, mm_actor_info **out,
                               size_t *n);
/* As mm_client_lookup, only actors of |type| (NULL: any): a |label| whose
 * actor is of another type is MM_ETYPE_MISMATCH. */
MM_EXTERN int mm_client_lookup_typed(mm_client *c, const char *label,
                                     const char *prefix, const char *key,
                                     const char *type, int all,
                                     uint32_t wait_ms, mm_actor_info **out,
                                     size_t *n);

typedef struct mm_send_result {
    const char *label;
    mm_endpoint ep;
    int status;       /* 0 or MM_E* */
    const char *body; /* reply JSON, or the error text as JSON */
    size_t len;
} mm_send_result;
/* Calls |type| with |json| on |label|, or on every actor under reception
 * |key| (in parallel; returns when all replied or at the timeout). */
MM_EXTERN int mm_client_send(mm_client *c, const char *label, const char *key,
                             const char *type, const char *json, size_t len,
                             mm_send_result **out, size_t *n);

/*
 * Pipelined calls to one label over one stream, at most |window| (1..1024)
 * in flight, each with the client's timeout from when it was sent.
 * |next| gives the next call: it returns 1 and sets *type, *json, *len (the
 * strings must stay valid until it is called again), 0 at the end, or a
 * negative MM_E* to stop early; *type NULL means "no call: answer this one
 * with MM_EINVAL and the JSON text in *json" (a bad input line keeps its
 * place).  |done| gets every answer in the order |next| gave them: status
 * 0 or MM_E*, and the reply (or the error text) as JSON.  After the
 * connection is lost every call not yet answered, and every later one, is
 * answered with that error.  Returns 0, or what |next| returned.
 */
typedef int (*mm_client_next_fn)(void *data, const char **type,
                                 const char **json, size_t *len);
typedef void (*mm_client_done_fn)(void *data, uint64_t index, int status,
                                  const char *body, size_t len);
MM_EXTERN int mm_client_send_stream(mm_client *c, const char *label,
                                    unsigned window, mm_client_next_fn next,
                                    mm_client_done_fn done, void *data);

/* Streams a listing (backfill, SYNCED, live events); blocks until |cb|
 * returns nonzero, the timeout expires without events (when nonzero), or
 * an error.  Reconnects through another member when the seed goes,
 * delivering RESYNC and a fresh backfill. */
MM_EXTERN int mm_client_watch(mm_client *c, const char *key, const char *prefix,
                              uint32_t idle_timeout_ms,
                              int (*cb)(void *data, const mm_listing_event *ev),
                              void *data);

typedef struct mm_oplog_op {
    uint64_t seq;
    const char *kind; /* register|check_in|remove|snapshot */
    const char *label, *type, *visibility, *key, *reason;
    uint64_t hlc;
} mm_oplog_op;
typedef struct mm_oplog_origin {
    const char *id, *name;
    uint64_t generation, head;
    int has_snapshot;
    uint64_t snapshot_seq;
    size_t snapshot_entries;
    const mm_oplog_op *ops;
    size_t nops;
} mm_oplog_origin;
MM_EXTERN int mm_client_oplog(mm_client *c, const char *origin,
                              mm_oplog_origin **out, size_t *n);
MM_EXTERN int mm_client_oplog_follow(mm_client *c, const char *origin,
                                     int (*cb)(void *data, const char *origin,
                                               uint64_t gen,
                                               const mm_oplog_op *op),
                                     void *data);
/* Marks |node| (name or id) left at once.  |*was| its previous state. */
MM_EXTERN int mm_client_force_leave(mm_client *c, const char *node, char **name,
                                    char **id, char **was);

/* ---- remote spawn and stop ---------------------------------------------- */

/* What mm_client_spawn asks the seed for; NULL members take defaults. */
typedef struct mm_client_spawn_req {
    const char *type, *label; /* required */
    const char *on;           /* a member's name or id; or NULL */
    const char *where;        /* "TAG=VALUE": among the members with it */
    const char *arg_json;     /* the actor's initial state, JSON text */
    const char *policy;       /* "temporary" (default), "transient", ... */
    const char *visibility;   /* "internal" (default), "public", "private" */
} mm_client_spawn_req;
/* Spawns an actor through the seed: on |r->on|, else on the alive member
 * with the fewest actors (among those with tag |r->where|).  |*node| (free
 * with mm_client_free_result) is where it runs, |*ep| its endpoint.
 * MM_ENOTFOUND (no such type there, no member matches), MM_EEXISTS (label
 * taken), MM_EDECODE (bad JSON), MM_EUNAUTHORIZED (read-only key),
 * MM_EOVERLOADED (too many spawns in flight at the seed). */
MM_EXTERN int mm_client_spawn(mm_client *c, const mm_client_spawn_req *r,
                              char **node, mm_endpoint *ep);
/* Stops the actor registered as |label| on the node that hosts it
 * (gracefully: its stop hook runs; never restarted). */
MM_EXTERN int mm_client_stop(mm_client *c, const char *label, char **node,
                             mm_endpoint *ep);

/* ---- observing the cluster ---------------------------------------------- */

/* One member as another member sees it. */
typedef struct mm_member_view {
    const char *name, *id, *state;
} mm_member_view;
/* One observer of mm_client_partitions: the seed's view of it (|state|),
 * and its own view of every member (|view|), or why there is none
 * (|error|: "no answer", "not asked: not alive", ...). */
typedef struct mm_partition_row {
    const char *name, *id, *state;
    const char *error; /* NULL when it answered */
    const mm_member_view *view;
    size_t nview;
} mm_partition_row;
/* Each member's view of every member, gathered by the seed (which waits
 * about half the client's timeout for the members it asks). */
MM_EXTERN int mm_client_partitions(mm_client *c, mm_partition_row **out,
                                   size_t *n);
/* `murmer top`: every node's numbers, gathered by the seed, as the JSON
 * text of its answer {"seed", "nodes": [...]} (docs/wire.md, TOP); with
 * |prefix|, only actors whose label starts with it are listed; at most
 * |actors_max| (0: the node's bound) per node.  Free with
 * mm_client_free_result. */
typedef struct mm_top_result {
    const char *json;
} mm_top_result;
MM_EXTERN int mm_client_top(mm_client *c, const char *prefix, size_t actors_max,
                            mm_top_result **out);
/* One path of mm_client_ping: direct (|via| "") or through member |via|. */
typedef struct mm_ping_path {
    const char *via;
    int64_t rtt_us;    /* the seed's round trip on this path; -1 none */
    int64_t leg_us;    /* through a relay: the relay's own round trip to
                          the target; -1 otherwise */
    const char *error; /* NULL when it came back */
} mm_ping_path;
/* One round of round trips from the seed to |node| (name or id), direct
 * and through up to |relays| (0..3) other alive members.  |*target| is
 * the target's name (lives as long as |*out|). */
MM_EXTERN int mm_client_ping(mm_client *c, const char *node, unsigned relays,
                             const char **target, mm_ping_path **out,
                             size_t *n);
/* Streams member events ("join", "alive", "suspect", "failed", "left",
 * "reaped", "updated") as the seed sees them, after one "synced" (|m|
 * NULL) once the seed has the subscription; blocks until |cb| returns
 * nonzero, |idle_timeout_ms| pass without an event (when nonzero:
 * MM_ETIMEOUT), or an error. */
MM_EXTERN int mm_client_members_follow(mm_client *c, uint32_t idle_timeout_ms,
                                       int (*cb)(void *data, const char *event,
                                                 const mm_member_info *m),
                                       void *data);

/*
 * Key rotation (murmer-keys(1)): |action| is "list", "install", "use" or
 * "remove"; |key_file| (not for list) a cluster key file holding the one
 * key of the step.  The seed applies the step on every member not known to
 * have left and answers with the tally: |applied| of |total| members (a
 * failed or silent member did not apply it: |failed| says which and why)
 * and, for list, each key's fingerprint, how many members hold it and on
 * how many it is the primary.  Needs the cluster key (MM_EUNAUTHORIZED).
 * 0 (even when not all applied it), MM_EKEY (a bad key file), or an error
 * of the seed (removing the primary: MM_EINVAL).  Free with
 * mm_client_free_result.
 */
typedef struct mm_keys_key {
    const char *fingerprint;
    unsigned members, primary;
} mm_keys_key;
typedef struct mm_keys_failure {
    const char *node, *error;
} mm_keys_failure;
typedef struct mm_keys_result {
    const char *action;
    const char *fingerprint; /* the step's key; "" for list */
    unsigned applied, total;
    const mm_keys_key *keys; /* list only */
    size_t nkeys;
    const mm_keys_failure *failed;
    size_t nfailed;
} mm_keys_result;
MM_EXTERN int mm_client_keys(mm_client *c, const char *action,
                             const char *key_file, mm_keys_result **out);
/* The fingerprint (16 hex chars) of the one cluster key of |key_file|, as
 * `murmer keys` shows it.  0 or MM_EKEY with one line in |err|. */
MM_EXTERN int mm_key_file_fingerprint(const char *key_file, char out[17],
                                      char *err, size_t errlen);
/* Frees an array returned by any mm_client_* call above. */
MM_EXTERN void mm_client_free_result(mm_client *c, void *result);

#ifdef __cplusplus
}
#endif
#endif /* MURMER_H */
