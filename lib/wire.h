/*
 * wire.h — murmer's stream framing and frame codec (docs/design.md, Streams and
 * calls). docs/wire.md gives the byte layout of every frame, with golden
 * vectors.
 *
 * Pure: no I/O, no libuv handles, no sockets.  Decoding never allocates;
 * decoded structs point into the caller's input (zero-copy) and live as long
 * as it does.  Strings are `u16 length | bytes` and are NOT NUL-terminated in
 * decoded structs (use the *_len fields).  Integers are little-endian.
 *
 * A frame is `u32 length | u8 type | body`; |length| counts the type byte
 * and the body, is never 0 and never above the reader's limit.
 *
 * Conventions of the per-frame functions (x = hello, auth, ...):
 *
 *   size_t mm__wire_x_size(const struct mm_wire_x *m)
 *       Bytes of the whole encoded frame, header included; 0 if |m| cannot
 *       be encoded (a field the decoder would refuse, a string over 65535
 *       bytes, a frame length over UINT32_MAX).  The sender compares this
 *       with the peer's frame limit (MM_MAX_FRAME) itself.
 *   size_t mm__wire_x_encode(uint8_t *out, size_t cap, const struct ... *m)
 *       Writes the whole frame into |out|; returns the bytes written
 *       (== size) or 0 if |m| is invalid or |cap| is too small (nothing
 *       useful is written then).
 *   int mm__wire_x_append(struct mm_buf *b, const struct mm_wire_x *m)
 *       Appends the whole frame to |b|; 0, MM_EINVAL (invalid |m|, nothing
 *       appended) or -ENOMEM.
 *   int mm__wire_x_decode(struct mm_wire_x *out, const uint8_t *body,
 *                         size_t len)
 *       |body| is the frame after its type byte (as a reader callback
 *       gets it).  0 or MM_EDECODE; on MM_EDECODE |*out| is unspecified.
 *       Every rule that the encoder enforces is checked, and a frame with
 *       no "rest" field must have no trailing byte.
 *
 * Encoding is canonical: whenever decode accepts a body, encoding the
 * decoded struct gives back exactly the same bytes (the fuzzers check it).
 */
#ifndef MM_WIRE_H
#define MM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "core.h"

#define MM_WIRE_HDR_LEN 5 /* u32 length + u8 type */
/*
 * Wire versions under ALPN murmer/1 (docs/wire.md, Versions).  A HELLO
 * carries the highest version its sender speaks; a node speaks every
 * version from MM_WIRE_VERSION_MIN to MM_WIRE_PROTO_VERSION, and a
 * connection uses mm__wire_version_pick() of the two.
 */
#define MM_WIRE_PROTO_VERSION                                                  \
    1                          /* the highest wire version this code speaks    \
                                */
#define MM_WIRE_VERSION_MIN 1  /* the lowest */
#define MM_WIRE_PROOF_LEN 32   /* HMAC-SHA256 channel-binding proof */
#define MM_WIRE_STR_MAX 65535u /* longest str16 */

enum mm_wire_type {
    MM_WIRE_HELLO = 0x01,
    MM_WIRE_AUTH = 0x02,
    MM_WIRE_AUTH_RESULT = 0x03,
    MM_WIRE_INVOKE = 0x10,
    MM_WIRE_RESPONSE = 0x11,
    MM_WIRE_CTRL_REQ = 0x20,
    MM_WIRE_CTRL_RESP = 0x21,
    MM_WIRE_CTRL_EVENT = 0x22,
    /* Reserved blocks, coded by their own modules. */
    MM_WIRE_SYNC_FIRST = 0x30, /* registry (oplog) sync: 0x30-0x3f */
    MM_WIRE_SYNC_LAST = 0x3f,
    MM_WIRE_MEMBER_FIRST = 0x40, /* membership push-pull: 0x40-0x4f */
    MM_WIRE_MEMBER_LAST = 0x4f
};

/* 1 if |type| is defined above or lies in a reserved block, else 0. */
int mm__wire_type_valid(uint8_t type);
/* "hello", "invoke", "sync", "member", ... or "unknown"; never NULL. */
const char *mm__wire_type_name(uint8_t type);

/* ------------------------------------------------------------------------ */
/* Framing                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Parses a frame header from the |n| bytes at |p|.  Returns:
 *   0           the header is complete: |*len| = frame length (type byte +
 *               body, 1..max) and |*type| = type byte.  The whole frame
 *               occupies 4 + |*len| bytes.
 *   > 0         the number of further bytes needed to complete the header
 *               (1..5); |n| < 5 and the length, if already readable, is fine.
 *   MM_EDECODE  the length is 0 or above |max|.  This is decided from the
 *               first 4 bytes alone, before the type byte or body arrives.
 * |len| and |type| may be NULL.
 */
int mm__wire_frame_hdr(const uint8_t *p, size_t n, uint32_t max, uint32_t *len,
                       uint8_t *type);

/*
 * Writes a frame of |type| with |body| (|blen| bytes, may be 0) into |out|;
 * returns 5 + |blen|, or 0 if |cap| is too small or the frame length would
 * exceed UINT32_MAX.  For frame types coded outside this module.
 */
size_t mm__wire_frame_encode(uint8_t *out, size_t cap, uint8_t type,
                             const void *body, size_t blen);
/*
 * Building a frame in place in a buffer: begin() appends a header with a
 * placeholder length and stores its offset in |*mark|; the caller appends the
 * body with mm__buf_put_*; end() patches the length.  begin returns 0 or
 * -ENOMEM; end returns 0, MM_EINVAL (frame longer than UINT32_MAX) or the
 * buffer's sticky error.
 */
int mm__wire_frame_begin(struct mm_buf *b, uint8_t type, size_t *mark);
int mm__wire_frame_end(struct mm_buf *b, size_t mark);

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */
/* ------------------------------------------------------------------------ */

/* CTRL_REQ op codes of client sessions (docs/wire.md); JSON bodies. */
enum mm_ctrl_op {
    MM_CTRL_MEMBERS = 1,
    MM_CTRL_TIMINGS = 2,
    MM_CTRL_LOOKUP = 3,
    MM_CTRL_WATCH = 4,
    MM_CTRL_UNWATCH = 5,
    MM_CTRL_OPLOG = 6,
    MM_CTRL_OPLOG_FOLLOW = 7,
    MM_CTRL_FORCE_LEAVE = 8,
    /* Observing the cluster (docs/wire.md): who sees whom, round trips,
     * member events.  ECHO and PROBE also travel between members. */
    MM_CTRL_PARTITIONS = 20,
    MM_CTRL_PING = 21,
    MM_CTRL_ECHO = 22,
    MM_CTRL_PROBE = 23,
    MM_CTRL_MEMBERS_FOLLOW = 24,
    /* Key rotation: KEYS from a client, fanned out by the seed as
     * KEYS_MEMBER to each member (docs/wire.md). */
    MM_CTRL_KEYS = 25,
    MM_CTRL_KEYS_MEMBER = 26,
    /* Remote spawn and stop: 30-39. */
    MM_CTRL_SPAWN = 30,
    MM_CTRL_STOP = 31,
    MM_CTRL_SPAWN_MEMBER = 32,
    MM_CTRL_STOP_MEMBER = 33,
    /* `murmer top`: TOP from a client, fanned out by the seed as
     * NODE_STATS to each alive member (docs/wire.md). */
    MM_CTRL_TOP = 27,
    MM_CTRL_NODE_STATS = 28
};

enum mm_wire_role {
    MM_WIRE_ROLE_MEMBER = 0, /* a cluster node */
    MM_WIRE_ROLE_CLIENT = 1  /* a CLI / client session */
};

/*
 * HELLO (0x01), first frame of each side on the control stream.
 * Rules: version >= 1 (any: a version this node does not know is not a
 * decode error, see mm__wire_version_pick); role is a mm_wire_role; name and
 * addr contain no NUL byte (either may be empty); ext is empty when version
 * is 1 (a later version may append fields after the address, which a node
 * that knows only version 1 carries in ext and ignores).
 */
struct mm_wire_hello {
    uint16_t version;  /* the highest wire version the sender speaks */
    uint32_t features; /* feature bits; unknown bits are carried, not refused */
    uint8_t node[MM_NODE_ID_LEN];
    uint64_t generation;
    uint8_t role;     /* enum mm_wire_role */
    const char *name; /* borrowed; node name */
    size_t name_len;
    const char *addr; /* borrowed; advertised "host:port", may be empty */
    size_t addr_len;
    const uint8_t *ext; /* borrowed; rest of the frame (version > 1 only) */
    size_t ext_len;
};

/*
 * The wire version a connection uses: min(|max|, |peer|), where |min| and
 * |max| are the versions this node speaks and |peer| is the version in the
 * peer's HELLO; 0 when that is below |min| (no common version: the
 * connection is refused with MM_EINVAL).
 */
uint16_t mm__wire_version_pick(uint16_t min, uint16_t max, uint16_t peer);

/* AUTH (0x02): exactly MM_WIRE_PROOF_LEN bytes. */
struct mm_wire_auth {
    uint8_t proof[MM_WIRE_PROOF_LEN];
};

/* AUTH_RESULT (0x03): exactly a u16 status (0 ok, else mm_err_to_wire()). */
struct mm_wire_auth_result {
    uint16_t status;
};

#define MM_WIRE_F_NO_REPLY 0x01 /* a tell: no RESPONSE will be sent */

enum mm_wire_target {
    MM_WIRE_TARGET_ACTOR = 0, /* by actor id (within |generation|) */
    MM_WIRE_TARGET_LABEL = 1  /* by label; |generation| 0 = any */
};

/*
 * INVOKE (0x10), on an actor stream.
 * Rules: flags has no bit but MM_WIRE_F_NO_REPLY; a call has call_id != 0
 * and a tell (NO_REPLY) has call_id == 0; target_kind is a mm_wire_target;
 * an actor target has actor != 0; a label target has a non-empty label
 * without NUL; type is non-empty without NUL; content is NONE, JSON or RAW
 * (never PTR); content NONE has an empty payload.  deadline_ms is the
 * remaining time at sending, 0 = none given.
 */
struct mm_wire_invoke {
    uint64_t call_id;
    uint8_t flags;
    uint8_t target_kind; /* enum mm_wire_target */
    uint64_t generation; /* the target node's generation */
    uint64_t actor;      /* when target_kind == ACTOR */
    const char *label;   /* borrowed; when target_kind == LABEL */
    size_t label_len;
    const char *type; /* borrowed; message type name */
    size_t type_len;
    uint8_t content; /* enum mm_content */
    uint32_t deadline_ms;
    const uint8_t *payload; /* borrowed; rest of the frame */
    size_t payload_len;
};

/*
 * RESPONSE (0x11).  Rules: call_id != 0; content is NONE, JSON or RAW;
 * content NONE has an empty body.  status is 0 or mm_err_to_wire(err).
 */
struct mm_wire_response {
    uint64_t call_id;
    uint16_t status;
    uint8_t content;     /* enum mm_content */
    const uint8_t *body; /* borrowed; rest of the frame */
    size_t body_len;
};

/*
 * CTRL_REQ (0x20) / CTRL_RESP (0x21) / CTRL_EVENT (0x22) share one layout:
 * u32 id | u16 code | body rest, where |code| is the op, the status or the
 * event kind, and |id| the request id (for events: the subscription's).
 * The body's meaning belongs to the control protocol, not to this module.
 */
struct mm_wire_ctrl {
    uint32_t id;
    uint16_t code;
    const uint8_t *body; /* borrowed; rest of the frame */
    size_t body_len;
};

size_t mm__wire_hello_size(const struct mm_wire_hello *m);
size_t mm__wire_hello_encode(uint8_t *out, size_t cap,
                             const struct mm_wire_hello *m);
int mm__wire_hello_append(struct mm_buf *b, const struct mm_wire_hello *m);
int mm__wire_hello_decode(struct mm_wire_hello *out, const uint8_t *body,
                          size_t len);

size_t mm__wire_auth_size(const struct mm_wire_auth *m);
size_t mm__wire_auth_encode(uint8_t *out, size_t cap,
                            const struct mm_wire_auth *m);
int mm__wire_auth_append(struct mm_buf *b, const struct mm_wire_auth *m);
int mm__wire_auth_decode(struct mm_wire_auth *out, const uint8_t *body,
                         size_t len);

size_t mm__wire_auth_result_size(const struct mm_wire_auth_result *m);
size_t mm__wire_auth_result_encode(uint8_t *out, size_t cap,
                                   const struct mm_wire_auth_result *m);
int mm__wire_auth_result_append(struct mm_buf *b,
                                const struct mm_wire_auth_result *m);
int mm__wire_auth_result_decode(struct mm_wire_auth_result *out,
                                const uint8_t *body, size_t len);

size_t mm__wire_invoke_size(const struct mm_wire_invoke *m);
size_t mm__wire_invoke_encode(uint8_t *out, size_t cap,
                              const struct mm_wire_invoke *m);
/*
 * Writes the frame up to but excluding the payload (whose length the frame
 * length already counts), so that a sender can queue the payload as a
 * separate vector without copying it.  Returns size - payload_len, or 0.
 */
size_t mm__wire_invoke_encode_head(uint8_t *out, size_t cap,
                                   const struct mm_wire_invoke *m);
int mm__wire_invoke_append(struct mm_buf *b, const struct mm_wire_invoke *m);
int mm__wire_invoke_decode(struct mm_wire_invoke *out, const uint8_t *body,
                           size_t len);

size_t mm__wire_response_size(const struct mm_wire_response *m);
size_t mm__wire_response_encode(uint8_t *out, size_t cap,
                                const struct mm_wire_response *m);
/* As mm__wire_invoke_encode_head: everything but the body. */
size_t mm__wire_response_encode_head(uint8_t *out, size_t cap,
                                     const struct mm_wire_response *m);
int mm__wire_response_append(struct mm_buf *b,
                             const struct mm_wire_response *m);
int mm__wire_response_decode(struct mm_wire_response *out, const uint8_t *body,
                             size_t len);

/* |type| is MM_WIRE_CTRL_REQ, _RESP or _EVENT; any other makes m invalid. */
size_t mm__wire_ctrl_size(const struct mm_wire_ctrl *m);
size_t mm__wire_ctrl_encode(uint8_t *out, size_t cap, uint8_t type,
                            const struct mm_wire_ctrl *m);
int mm__wire_ctrl_append(struct mm_buf *b, uint8_t type,
                         const struct mm_wire_ctrl *m);
int mm__wire_ctrl_decode(struct mm_wire_ctrl *out, const uint8_t *body,
                         size_t len);

/* ------------------------------------------------------------------------ */
/* Stream reader                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Called once per complete frame, in stream order.  |body| is the frame
 * after its type byte (|len| = frame length - 1, may be 0; |body| is never
 * NULL) and is valid only during the call: it points into the fed chunk when
 * the body arrived in one piece (no copy), else into the reader's buffer.
 * Return 0 to go on; any other value stops mm__wire_reader_feed(), which
 * returns it.  The callback must not feed or free the reader.
 */
typedef int (*mm_wire_frame_cb)(void *d, uint8_t type, const uint8_t *body,
                                size_t len);

/*
 * Reassembles frames from stream data arriving in arbitrary chunks.  Only
 * the body of an incomplete frame is buffered, growing with the data that
 * has actually arrived (never beyond the frame's length, hence never beyond
 * |max|); a frame whose header announces more than |max| is refused before
 * any of its body is buffered.  After the first error the reader is dead:
 * every later feed returns the same error.
 */
struct mm_wire_reader {
    uint32_t max;                 /* frame length limit */
    uint8_t hdr[MM_WIRE_HDR_LEN]; /* partial header */
    uint8_t hdr_len;              /* header bytes seen (5 = complete) */
    uint8_t type;                 /* type of the frame being assembled */
    uint32_t need;                /* body bytes of that frame */
    uint8_t *buf;                 /* owned; partial body */
    size_t have;                  /* body bytes in buf */
    size_t cap;                   /* bytes allocated in buf */
    int err;                      /* first error, sticky */
};

/* |max| 0 means MM_MAX_FRAME. */
void mm__wire_reader_init(struct mm_wire_reader *r, uint32_t max);
/*
 * Consumes |len| bytes of stream data, calling |cb| for every frame that
 * completes.  Returns 0, MM_EDECODE (a zero-length or oversized frame),
 * -ENOMEM, or the callback's non-zero return.
 */
int mm__wire_reader_feed(struct mm_wire_reader *r, const uint8_t *data,
                         size_t len, mm_wire_frame_cb cb, void *d);
/*
 * Bytes of an incomplete frame held (header and body); 0 at a frame
 * boundary.  Non-zero at the end of a stream means a truncated frame.
 */
size_t mm__wire_reader_partial(const struct mm_wire_reader *r);
/* Frees the buffer; |r| may then be init'ed again. */
void mm__wire_reader_free(struct mm_wire_reader *r);

#endif /* MM_WIRE_H */
