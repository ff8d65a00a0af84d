/*
 * murmer_base.h — the part of the public API that needs no libuv: the
 * error table, log levels, the node id length, content kinds, restart
 * policies, visibilities and stop reasons.  murmer.h includes it.  It
 * includes no libuv, so the library's sans-I/O cores use it instead of
 * murmer.h.
 */
#ifndef MURMER_BASE_H
#define MURMER_BASE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_EXTERN __attribute__((visibility("default")))

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * One table gives every murmer error: the C code, its wire status, the CLI
 * exit code, its name and its message.  Negative errnos (-ENOMEM; libuv's
 * UV_E* codes have the same values) pass through unchanged (wire status
 * 0x8000 | -errno, exit code 1).
 *
 *  XX(SUFFIX, code, wire status, exit code, name, message)
 */
#define MM_ERR_MAP(XX)                                                         \
    XX(NOTFOUND, -5001, 1, 3, "not_found", "not found")                        \
    XX(UNKNOWN_MESSAGE, -5002, 2, 3, "unknown_message",                        \
       "unknown message type")                                                 \
    XX(NOT_SERIALIZABLE, -5003, 3, 6, "not_serializable",                      \
       "payload cannot cross the wire")                                        \
    XX(DECODE, -5004, 4, 6, "decode_error", "malformed input")                 \
    XX(HANDLER, -5005, 5, 1, "handler_error", "the actor reported an error")   \
    XX(TIMEOUT, -5006, 6, 4, "timeout", "timed out")                           \
    XX(OVERLOADED, -5007, 7, 4, "overloaded", "mailbox is full")               \
    XX(UNREACHABLE, -5008, 8, 4, "unreachable", "node is unreachable")         \
    XX(UNAUTHORIZED, -5009, 9, 5, "unauthorized", "not authorized")            \
    XX(CLOSED, -5010, 10, 4, "closed", "closed")                               \
    XX(DEADLK, -5011, 11, 1, "deadlock", "blocking call on a loop thread")     \
    XX(EMPTY, -5012, 12, 3, "empty", "router has no members")                  \
    XX(KEY, -5013, 13, 5, "key_error", "cluster key problem")                  \
    XX(EXISTS, -5014, 14, 1, "exists", "already exists")                       \
    XX(INVAL, -5015, 15, 2, "invalid", "invalid argument")                     \
    XX(ALIVE, -5016, 16, 1, "alive", "the member is alive")                    \
    XX(TYPE_MISMATCH, -5017, 17, 3, "type_mismatch",                           \
       "the actor is of another type")

enum mm_errno {
#define MM__ERR_ENUM(s, c, w, e, n, m) MM_E##s = (c),
    MM_ERR_MAP(MM__ERR_ENUM)
#undef MM__ERR_ENUM
};

/* Exit codes of the murmer CLI. */
enum mm_exit {
    MM_EXIT_OK = 0,
    MM_EXIT_ACTOR = 1,       /* the actor reported an error; partial delivery */
    MM_EXIT_USAGE = 2,       /* bad command line */
    MM_EXIT_NOTFOUND = 3,    /* label, message type or node not found */
    MM_EXIT_UNAVAILABLE = 4, /* unreachable, timeout, overloaded */
    MM_EXIT_AUTH = 5,        /* unauthorized or key problems */
    MM_EXIT_INPUT = 6        /* malformed JSON, decode error */
};

/* A message for |err|; never NULL. */
MM_EXTERN const char *mm_strerror(int err);
/* The snake_case name of |err| ("not_found"); libuv names for UV_E*. */
MM_EXTERN const char *mm_err_name(int err);
/* The CLI exit code for |err| (0 for 0). */
MM_EXTERN int mm_err_exit_code(int err);
/* The wire status of |err| (0 for 0) and back. Unknown statuses map to
 * MM_EDECODE. */
MM_EXTERN uint16_t mm_err_to_wire(int err);
MM_EXTERN int mm_err_from_wire(uint16_t status);
/* Parses a name as printed by mm_err_name(); 0 if unknown. */
MM_EXTERN int mm_err_from_name(const char *name);

/* ------------------------------------------------------------------------ */
/* Vocabulary shared with the runtime                                       */
/* ------------------------------------------------------------------------ */

/* syslog-numbered levels. The default sink writes WARN and above to stderr. */
enum mm_log_level {
    MM_LOG_ERR = 3,
    MM_LOG_WARN = 4,
    MM_LOG_NOTICE = 5,
    MM_LOG_INFO = 6,
    MM_LOG_DEBUG = 7
};

/* Bytes in a node id (the node of an mm_endpoint). */
#define MM_NODE_ID_LEN 16

/* What a message carries. */
enum mm_content {
    MM_CONTENT_NONE = 0, /* no payload */
    MM_CONTENT_JSON =
        1, /* UTF-8 JSON text (validated when it crosses the wire) */
    MM_CONTENT_RAW = 2, /* opaque bytes */
    /* An in-memory pointer (mm_msg_new_ptr): moved, never encoded, so it
     * stays in the process.  There is no codec for it: a send to another
     * node fails with MM_ENOT_SERIALIZABLE, a reply to a remote caller is
     * answered MM_ENOT_SERIALIZABLE, and a broadcast to more than one
     * actor (which copies the message) is refused with MM_EINVAL. */
    MM_CONTENT_PTR = 3
};

/* When a supervised actor is restarted. */
enum mm_policy {
    MM_TEMPORARY = 0, /* never restarted (default) */
    MM_TRANSIENT = 1, /* restarted after a crash, not after a normal stop */
    MM_PERMANENT = 2  /* restarted after a crash or a normal stop */
};

/* Who sees a spawned actor's registration. */
enum mm_visibility {
    MM_VIS_INTERNAL = 0, /* replicated; seen by key-holding clients (default) */
    MM_VIS_PUBLIC = 1,   /* replicated; for future untrusted edge clients */
    MM_VIS_PRIVATE = 2   /* never leaves the node */
};

/* Why an actor stopped (watch callbacks, events). */
enum mm_reason {
    MM_REASON_NORMAL = 0,        /* a handler returned MM_STOP */
    MM_REASON_CRASH = 1,         /* crashed, not restarted (temporary) */
    MM_REASON_STOPPED = 2,       /* mm_actor_stop() from outside */
    MM_REASON_RESTART_LIMIT = 3, /* too many restarts */
    MM_REASON_SHUTDOWN = 4,      /* the node shut down */
    MM_REASON_NOT_FOUND = 5,     /* watch on an actor that was not there */
    MM_REASON_NODE_DOWN = 6,     /* its node failed or left */
    MM_REASON_DROPPED = 7,       /* a ready handle was dropped */
    MM_REASON_START_FAILED = 8   /* the start hook failed */
};
MM_EXTERN const char *mm_reason_name(int reason);

#ifdef __cplusplus
}
#endif
#endif /* MURMER_BASE_H */
