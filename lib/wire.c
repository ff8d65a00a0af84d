/*
 * wire.c — frame header parsing, the frame codec and the stream reader.
 *
 * Every encoder and its decoder share one validity check (x_valid), so the
 * encoder never produces what the decoder would refuse, and the decoder
 * checks every rule before anything is handed to the caller.  Decoders read
 * through struct mm_rd, whose single bounds check (rd_take in buf.c) stands
 * between the peer's lengths and memory.
 */
#include "wire.h"

#include <string.h>

/* Body bytes beyond which the reader drops its buffer after a frame. */
#define WIRE_READER_KEEP (64u * 1024u)
#define WIRE_READER_MIN_CAP 256u

/* Fixed parts of the bodies (everything but strings and rest fields). */
#define HELLO_FIXED (2 + 4 + MM_NODE_ID_LEN + 8 + 1 + 2 + 2)
#define INVOKE_FIXED (8 + 1 + 1 + 8 + 2 + 1 + 4) /* + target + type */
#define RESPONSE_FIXED (8 + 2 + 1)
#define CTRL_FIXED (4 + 2)

int
mm__wire_type_valid(uint8_t type)
{
    switch (type) {
    case MM_WIRE_HELLO:
    case MM_WIRE_AUTH:
    case MM_WIRE_AUTH_RESULT:
    case MM_WIRE_INVOKE:
    case MM_WIRE_RESPONSE:
    case MM_WIRE_CTRL_REQ:
    case MM_WIRE_CTRL_RESP:
    case MM_WIRE_CTRL_EVENT:
        return 1;
    default:
        return type >= MM_WIRE_SYNC_FIRST && type <= MM_WIRE_MEMBER_LAST;
    }
}

const char *
mm__wire_type_name(uint8_t type)
{
    switch (type) {
    case MM_WIRE_HELLO:
        return "hello";
    case MM_WIRE_AUTH:
        return "auth";
    case MM_WIRE_AUTH_RESULT:
        return "auth_result";
    case MM_WIRE_INVOKE:
        return "invoke";
    case MM_WIRE_RESPONSE:
        return "response";
    case MM_WIRE_CTRL_REQ:
        return "ctrl_req";
    case MM_WIRE_CTRL_RESP:
        return "ctrl_resp";
    case MM_WIRE_CTRL_EVENT:
        return "ctrl_event";
    default:
        if (type >= MM_WIRE_SYNC_FIRST && type <= MM_WIRE_SYNC_LAST)
            return "sync";
        if (type >= MM_WIRE_MEMBER_FIRST && type <= MM_WIRE_MEMBER_LAST)
            return "member";
        return "unknown";
    }
}

/* ------------------------------------------------------------------------ */
/* Framing                                                                  */
/* ------------------------------------------------------------------------ */

int
mm__wire_frame_hdr(const uint8_t *p, size_t n, uint32_t max, uint32_t *len,
                   uint8_t *type)
{
    /* The length alone decides acceptance: check it before the type byte. */
    if (n >= 4) {
        uint32_t l = mm__get_u32(p);
        if (l == 0 || l > max) return MM_EDECODE;
    }
    if (n < MM_WIRE_HDR_LEN) return (int)(MM_WIRE_HDR_LEN - n);
    if (len) *len = mm__get_u32(p);
    if (type) *type = p[4];
    return 0;
}

/*
 * Total frame bytes for a body of |body| bytes, or 0 if the frame length
 * (type + body) would not fit a u32.
 */
static size_t
frame_total(size_t body)
{
    if (body > (size_t)UINT32_MAX - 1) return 0;
    return MM_WIRE_HDR_LEN + body;
}

static uint8_t *
put_hdr(uint8_t *p, size_t total, uint8_t type)
{
    mm__put_u32(p, (uint32_t)(total - 4));
    p[4] = type;
    return p + MM_WIRE_HDR_LEN;
}

static uint8_t *
put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
    mm__put_u16(p, v);
    return p + 2;
}

static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
    mm__put_u32(p, v);
    return p + 4;
}

static uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
    mm__put_u64(p, v);
    return p + 8;
}

static uint8_t *
put_bytes(uint8_t *p, const void *src, size_t n)
{
    if (n) memcpy(p, src, n);
    return p + n;
}

static uint8_t *
put_str16(uint8_t *p, const char *s, size_t n)
{
    p = put_u16(p, (uint16_t)n);
    return put_bytes(p, s, n);
}

size_t
mm__wire_frame_encode(uint8_t *out, size_t cap, uint8_t type, const void *body,
                      size_t blen)
{
    size_t total = frame_total(blen);
    if (total == 0 || cap < total || (blen && body == NULL)) return 0;
    uint8_t *p = put_hdr(out, total, type);
    put_bytes(p, body, blen);
    return total;
}

int
mm__wire_frame_begin(struct mm_buf *b, uint8_t type, size_t *mark)
{
    size_t at = b->len;
    uint8_t *p = mm__buf_grow(b, MM_WIRE_HDR_LEN);
    if (p == NULL) return -ENOMEM;
    mm__put_u32(p, 0);
    p[4] = type;
    *mark = at;
    return 0;
}

int
mm__wire_frame_end(struct mm_buf *b, size_t mark)
{
    if (b->err) return b->err;
    MM_ASSERT(mark <= b->len && b->len - mark >= MM_WIRE_HDR_LEN);
    size_t flen = b->len - mark - 4;
    if (flen > UINT32_MAX) return MM_EINVAL;
    mm__buf_set_u32(b, mark, (uint32_t)flen);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Shared field rules                                                       */
/* ------------------------------------------------------------------------ */

/* A text field: fits a str16, has no NUL, and is non-empty if required. */
static int
text_ok(const char *s, size_t n, int nonempty)
{
    if (n > MM_WIRE_STR_MAX) return 0;
    if (n == 0) return !nonempty;
    return s != NULL && memchr(s, '\0', n) == NULL;
}

/* Content types that may cross the wire, and their payload. */
static int
content_ok(uint8_t content, const uint8_t *p, size_t n)
{
    if (content > MM_CONTENT_RAW)
        return 0; /* MM_CONTENT_PTR and unknown values */
    if (content == MM_CONTENT_NONE && n != 0) return 0;
    return n == 0 || p != NULL;
}

/* Appends an encoded frame through |size| and |enc| (same struct). */
#define WIRE_APPEND(b, sizefn, encfn, m)                                       \
    do {                                                                       \
        size_t n_ = sizefn(m);                                                 \
        if (n_ == 0) return MM_EINVAL;                                         \
        uint8_t *p_ = mm__buf_grow((b), n_);                                   \
        if (p_ == NULL) return -ENOMEM;                                        \
        size_t w_ = encfn(p_, n_, (m));                                        \
        MM_ASSERT(w_ == n_);                                                   \
        return 0;                                                              \
    } while (0)

/* ------------------------------------------------------------------------ */
/* HELLO                                                                    */
/* ------------------------------------------------------------------------ */

uint16_t
mm__wire_version_pick(uint16_t min, uint16_t max, uint16_t peer)
{
    uint16_t v = peer < max ? peer : max;
    return v >= min && v >= 1 ? v : 0;
}

static int
hello_valid(const struct mm_wire_hello *m)
{
    /* Version 1 ends at the address; later ones may append fields. */
    if (m->version < 1 || (m->version == 1 && m->ext_len != 0)) return 0;
    if (m->ext_len > (size_t)UINT32_MAX || (m->ext_len && m->ext == NULL))
        return 0;
    return (m->role == MM_WIRE_ROLE_MEMBER || m->role == MM_WIRE_ROLE_CLIENT) &&
           text_ok(m->name, m->name_len, 0) && text_ok(m->addr, m->addr_len, 0);
}

size_t
mm__wire_hello_size(const struct mm_wire_hello *m)
{
    if (!hello_valid(m)) return 0;
    return frame_total(HELLO_FIXED + m->name_len + m->addr_len + m->ext_len);
}

size_t
mm__wire_hello_encode(uint8_t *out, size_t cap, const struct mm_wire_hello *m)
{
    size_t total = mm__wire_hello_size(m);
    if (total == 0 || cap < total) return 0;
    uint8_t *p = put_hdr(out, total, MM_WIRE_HELLO);
    p = put_u16(p, m->version);
    p = put_u32(p, m->features);
    p = put_bytes(p, m->node, MM_NODE_ID_LEN);
    p = put_u64(p, m->generation);
    p = put_u8(p, m->role);
    p = put_str16(p, m->name, m->name_len);
    p = put_str16(p, m->addr, m->addr_len);
    p = put_bytes(p, m->ext, m->ext_len);
    MM_ASSERT((size_t)(p - out) == total);
    return total;
}

int
mm__wire_hello_append(struct mm_buf *b, const struct mm_wire_hello *m)
{
    WIRE_APPEND(b, mm__wire_hello_size, mm__wire_hello_encode, m);
}

int
mm__wire_hello_decode(struct mm_wire_hello *out, const uint8_t *body,
                      size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_u16(&r, &out->version);
    mm__rd_u32(&r, &out->features);
    mm__rd_copy(&r, out->node, MM_NODE_ID_LEN);
    mm__rd_u64(&r, &out->generation);
    mm__rd_u8(&r, &out->role);
    mm__rd_str16(&r, &out->name, &out->name_len);
    mm__rd_str16(&r, &out->addr, &out->addr_len);
    mm__rd_rest(&r, &out->ext, &out->ext_len);
    if (mm__rd_end(&r) != 0 || !hello_valid(out)) return MM_EDECODE;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* AUTH and AUTH_RESULT                                                     */
/* ------------------------------------------------------------------------ */

size_t
mm__wire_auth_size(const struct mm_wire_auth *m)
{
    MM_UNUSED(m);
    return frame_total(MM_WIRE_PROOF_LEN);
}

size_t
mm__wire_auth_encode(uint8_t *out, size_t cap, const struct mm_wire_auth *m)
{
    size_t total = mm__wire_auth_size(m);
    if (cap < total) return 0;
    uint8_t *p = put_hdr(out, total, MM_WIRE_AUTH);
    put_bytes(p, m->proof, MM_WIRE_PROOF_LEN);
    return total;
}

int
mm__wire_auth_append(struct mm_buf *b, const struct mm_wire_auth *m)
{
    WIRE_APPEND(b, mm__wire_auth_size, mm__wire_auth_encode, m);
}

int
mm__wire_auth_decode(struct mm_wire_auth *out, const uint8_t *body, size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_copy(&r, out->proof, MM_WIRE_PROOF_LEN);
    return mm__rd_end(&r);
}

size_t
mm__wire_auth_result_size(const struct mm_wire_auth_result *m)
{
    MM_UNUSED(m);
    return frame_total(2);
}

size_t
mm__wire_auth_result_encode(uint8_t *out, size_t cap,
                            const struct mm_wire_auth_result *m)
{
    size_t total = mm__wire_auth_result_size(m);
    if (cap < total) return 0;
    uint8_t *p = put_hdr(out, total, MM_WIRE_AUTH_RESULT);
    put_u16(p, m->status);
    return total;
}

int
mm__wire_auth_result_append(struct mm_buf *b,
                            const struct mm_wire_auth_result *m)
{
    WIRE_APPEND(b, mm__wire_auth_result_size, mm__wire_auth_result_encode, m);
}

int
mm__wire_auth_result_decode(struct mm_wire_auth_result *out,
                            const uint8_t *body, size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_u16(&r, &out->status);
    return mm__rd_end(&r);
}

/* ------------------------------------------------------------------------ */
/* INVOKE                                                                   */
/* ------------------------------------------------------------------------ */

static int
invoke_valid(const struct mm_wire_invoke *m)
{
    if (m->flags & ~MM_WIRE_F_NO_REPLY) return 0;
    /* A call needs an id to be answered by; a tell never is. */
    if ((m->flags & MM_WIRE_F_NO_REPLY) ? m->call_id != 0 : m->call_id == 0)
        return 0;
    switch (m->target_kind) {
    case MM_WIRE_TARGET_ACTOR:
        if (m->actor == 0) return 0;
        break;
    case MM_WIRE_TARGET_LABEL:
        if (!text_ok(m->label, m->label_len, 1)) return 0;
        break;
    default:
        return 0;
    }
    return text_ok(m->type, m->type_len, 1) &&
           content_ok(m->content, m->payload, m->payload_len);
}

static size_t
invoke_body_len(const struct mm_wire_invoke *m, size_t *payload_off)
{
    size_t target =
        m->target_kind == MM_WIRE_TARGET_ACTOR ? 8 : 2 + m->label_len;
    size_t head = INVOKE_FIXED + target + m->type_len;
    if (payload_off) *payload_off = MM_WIRE_HDR_LEN + head;
    if (m->payload_len > (size_t)UINT32_MAX)
        return SIZE_MAX; /* refused by frame_total() */
    return head + m->payload_len;
}

size_t
mm__wire_invoke_size(const struct mm_wire_invoke *m)
{
    if (!invoke_valid(m)) return 0;
    return frame_total(invoke_body_len(m, NULL));
}

size_t
mm__wire_invoke_encode_head(uint8_t *out, size_t cap,
                            const struct mm_wire_invoke *m)
{
    size_t total = mm__wire_invoke_size(m);
    if (total == 0) return 0;
    size_t head = total - m->payload_len;
    if (cap < head) return 0;
    uint8_t *p = put_hdr(out, total, MM_WIRE_INVOKE);
    p = put_u64(p, m->call_id);
    p = put_u8(p, m->flags);
    p = put_u8(p, m->target_kind);
    p = put_u64(p, m->generation);
    if (m->target_kind == MM_WIRE_TARGET_ACTOR)
        p = put_u64(p, m->actor);
    else
        p = put_str16(p, m->label, m->label_len);
    p = put_str16(p, m->type, m->type_len);
    p = put_u8(p, m->content);
    p = put_u32(p, m->deadline_ms);
    MM_ASSERT((size_t)(p - out) == head);
    return head;
}

size_t
mm__wire_invoke_encode(uint8_t *out, size_t cap, const struct mm_wire_invoke *m)
{
    size_t total = mm__wire_invoke_size(m);
    if (total == 0 || cap < total) return 0;
    size_t head = mm__wire_invoke_encode_head(out, cap, m);
    put_bytes(out + head, m->payload, m->payload_len);
    return total;
}

int
mm__wire_invoke_append(struct mm_buf *b, const struct mm_wire_invoke *m)
{
    WIRE_APPEND(b, mm__wire_invoke_size, mm__wire_invoke_encode, m);
}

int
mm__wire_invoke_decode(struct mm_wire_invoke *out, const uint8_t *body,
                       size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_u64(&r, &out->call_id);
    mm__rd_u8(&r, &out->flags);
    mm__rd_u8(&r, &out->target_kind);
    mm__rd_u64(&r, &out->generation);
    out->actor = 0;
    out->label = NULL;
    out->label_len = 0;
    if (out->target_kind == MM_WIRE_TARGET_ACTOR)
        mm__rd_u64(&r, &out->actor);
    else if (out->target_kind == MM_WIRE_TARGET_LABEL)
        mm__rd_str16(&r, &out->label, &out->label_len);
    else
        return MM_EDECODE;
    mm__rd_str16(&r, &out->type, &out->type_len);
    mm__rd_u8(&r, &out->content);
    mm__rd_u32(&r, &out->deadline_ms);
    mm__rd_rest(&r, &out->payload, &out->payload_len);
    if (mm__rd_end(&r) != 0 || !invoke_valid(out)) return MM_EDECODE;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* RESPONSE                                                                 */
/* ------------------------------------------------------------------------ */

static int
response_valid(const struct mm_wire_response *m)
{
    return m->call_id != 0 && m->body_len <= (size_t)UINT32_MAX &&
           content_ok(m->content, m->body, m->body_len);
}

size_t
mm__wire_response_size(const struct mm_wire_response *m)
{
    if (!response_valid(m)) return 0;
    return frame_total(RESPONSE_FIXED + m->body_len);
}

size_t
mm__wire_response_encode_head(uint8_t *out, size_t cap,
                              const struct mm_wire_response *m)
{
    size_t total = mm__wire_response_size(m);
    if (total == 0) return 0;
    size_t head = total - m->body_len;
    if (cap < head) return 0;
    uint8_t *p = put_hdr(out, total, MM_WIRE_RESPONSE);
    p = put_u64(p, m->call_id);
    p = put_u16(p, m->status);
    p = put_u8(p, m->content);
    MM_ASSERT((size_t)(p - out) == head);
    return head;
}

size_t
mm__wire_response_encode(uint8_t *out, size_t cap,
                         const struct mm_wire_response *m)
{
    size_t total = mm__wire_response_size(m);
    if (total == 0 || cap < total) return 0;
    size_t head = mm__wire_response_encode_head(out, cap, m);
    put_bytes(out + head, m->body, m->body_len);
    return total;
}

int
mm__wire_response_append(struct mm_buf *b, const struct mm_wire_response *m)
{
    WIRE_APPEND(b, mm__wire_response_size, mm__wire_response_encode, m);
}

int
mm__wire_response_decode(struct mm_wire_response *out, const uint8_t *body,
                         size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_u64(&r, &out->call_id);
    mm__rd_u16(&r, &out->status);
    mm__rd_u8(&r, &out->content);
    mm__rd_rest(&r, &out->body, &out->body_len);
    if (mm__rd_end(&r) != 0 || !response_valid(out)) return MM_EDECODE;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CTRL_REQ / CTRL_RESP / CTRL_EVENT                                        */
/* ------------------------------------------------------------------------ */

static int
ctrl_type_ok(uint8_t type)
{
    return type == MM_WIRE_CTRL_REQ || type == MM_WIRE_CTRL_RESP ||
           type == MM_WIRE_CTRL_EVENT;
}

size_t
mm__wire_ctrl_size(const struct mm_wire_ctrl *m)
{
    if (m->body_len > (size_t)UINT32_MAX || (m->body_len && m->body == NULL))
        return 0;
    return frame_total(CTRL_FIXED + m->body_len);
}

size_t
mm__wire_ctrl_encode(uint8_t *out, size_t cap, uint8_t type,
                     const struct mm_wire_ctrl *m)
{
    size_t total = mm__wire_ctrl_size(m);
    if (total == 0 || cap < total || !ctrl_type_ok(type)) return 0;
    uint8_t *p = put_hdr(out, total, type);
    p = put_u32(p, m->id);
    p = put_u16(p, m->code);
    put_bytes(p, m->body, m->body_len);
    return total;
}

int
mm__wire_ctrl_append(struct mm_buf *b, uint8_t type,
                     const struct mm_wire_ctrl *m)
{
    size_t n = mm__wire_ctrl_size(m);
    if (n == 0 || !ctrl_type_ok(type)) return MM_EINVAL;
    uint8_t *p = mm__buf_grow(b, n);
    if (p == NULL) return -ENOMEM;
    size_t w = mm__wire_ctrl_encode(p, n, type, m);
    MM_ASSERT(w == n);
    return 0;
}

int
mm__wire_ctrl_decode(struct mm_wire_ctrl *out, const uint8_t *body, size_t len)
{
    struct mm_rd r;
    mm__rd_init(&r, body, len);
    mm__rd_u32(&r, &out->id);
    mm__rd_u16(&r, &out->code);
    mm__rd_rest(&r, &out->body, &out->body_len);
    return mm__rd_end(&r);
}

/* ------------------------------------------------------------------------ */
/* Stream reader                                                            */
/* ------------------------------------------------------------------------ */

void
mm__wire_reader_init(struct mm_wire_reader *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max ? max : MM_MAX_FRAME;
}

void
mm__wire_reader_free(struct mm_wire_reader *r)
{
    mm__free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->have = 0;
}

size_t
mm__wire_reader_partial(const struct mm_wire_reader *r)
{
    if (r->hdr_len < MM_WIRE_HDR_LEN) return r->hdr_len;
    return MM_WIRE_HDR_LEN + r->have;
}

static int
reader_fail(struct mm_wire_reader *r, int err)
{
    r->err = err;
    mm__wire_reader_free(r);
    return err;
}

/* Back to a frame boundary; a large buffer is not kept for the next frame. */
static void
reader_next(struct mm_wire_reader *r)
{
    r->hdr_len = 0;
    r->need = 0;
    r->have = 0;
    if (r->cap > WIRE_READER_KEEP) mm__wire_reader_free(r);
}

/*
 * Makes room for |want| body bytes.  The buffer grows with the data that has
 * arrived (doubling), never beyond the announced body length, which the
 * header check has already capped at max - 1.
 */
static int
reader_reserve(struct mm_wire_reader *r, size_t want)
{
    if (want <= r->cap) return 0;
    size_t cap = r->cap ? r->cap : WIRE_READER_MIN_CAP;
    while (cap < want)
        cap *= 2;
    if (cap > r->need) cap = r->need;
    uint8_t *p = mm__realloc(r->buf, cap);
    if (p == NULL) return -ENOMEM;
    r->buf = p;
    r->cap = cap;
    return 0;
}

int
mm__wire_reader_feed(struct mm_wire_reader *r, const uint8_t *data, size_t len,
                     mm_wire_frame_cb cb, void *d)
{
    const uint8_t *p = data;
    size_t left = data ? len : 0;
    uint32_t flen = 0;
    int rc;

    if (r->err) return r->err;
    for (;;) {
        if (r->hdr_len < MM_WIRE_HDR_LEN) {
            if (left == 0) break;
            if (r->hdr_len == 0 && left >= MM_WIRE_HDR_LEN) {
                /* The whole header is in the chunk: read it in place. */
                rc = mm__wire_frame_hdr(p, left, r->max, &flen, &r->type);
                if (rc < 0) return reader_fail(r, rc);
                p += MM_WIRE_HDR_LEN;
                left -= MM_WIRE_HDR_LEN;
            } else {
                size_t take =
                    MM_MIN((size_t)MM_WIRE_HDR_LEN - r->hdr_len, left);
                memcpy(r->hdr + r->hdr_len, p, take);
                r->hdr_len = (uint8_t)(r->hdr_len + take);
                p += take;
                left -= take;
                rc = mm__wire_frame_hdr(r->hdr, r->hdr_len, r->max, &flen,
                                        &r->type);
                if (rc < 0) return reader_fail(r, rc);
                if (rc > 0) break; /* left is 0 */
            }
            r->hdr_len = MM_WIRE_HDR_LEN;
            r->need = flen - 1;
            r->have = 0;
        }
        if (r->have == 0 && left >= r->need) {
            /* The body is contiguous in the chunk: no copy. */
            const uint8_t *body = p;
            size_t blen = r->need;
            p += blen;
            left -= blen;
            reader_next(r);
            rc = cb(d, r->type, body, blen);
            if (rc != 0) return reader_fail(r, rc);
            continue;
        }
        if (left == 0) break;
        size_t take = MM_MIN((size_t)r->need - r->have, left);
        rc = reader_reserve(r, r->have + take);
        if (rc != 0) return reader_fail(r, rc);
        memcpy(r->buf + r->have, p, take);
        r->have += take;
        p += take;
        left -= take;
        if (r->have == r->need) {
            /* Back at a boundary before the callback; free big buffers after.
             */
            size_t blen = r->need;
            r->hdr_len = 0;
            r->need = 0;
            r->have = 0;
            rc = cb(d, r->type, r->buf, blen);
            reader_next(r);
            if (rc != 0) return reader_fail(r, rc);
        }
    }
    return 0;
}
