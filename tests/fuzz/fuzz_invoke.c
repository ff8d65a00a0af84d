/* FUZZ_SOURCES: lib/wire.c lib/buf.c lib/util.c */
/*
 * fuzz_invoke.c — libFuzzer target for the INVOKE and RESPONSE codecs.
 *
 * Both directions:
 *  - decode: the input is an INVOKE body and a RESPONSE body.  A body that
 *    decodes obeys every documented rule, re-encodes byte for byte (encode,
 *    encode_head + payload, append), and its fields point inside the input.
 *  - encode: the input is read as field values.  A struct that the encoder
 *    accepts decodes back to the same fields; one it refuses gives 0 from
 *    size/encode and MM_EINVAL from append.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
    const uint8_t *b = p;
    return n == 0 || (b >= base && b + n <= base + len);
}

static int
text_rule(const char *s, size_t n)
{
    return n > 0 && memchr(s, '\0', n) == NULL;
}

static void
check_invoke_rules(const struct mm_wire_invoke *m, const uint8_t *in,
                   size_t len)
{
    int tell = m->flags & MM_WIRE_F_NO_REPLY;
    if ((m->flags & ~MM_WIRE_F_NO_REPLY) || (tell && m->call_id) ||
        (!tell && !m->call_id) || m->content > MM_CONTENT_RAW ||
        (m->content == MM_CONTENT_NONE && m->payload_len) ||
        !text_rule(m->type, m->type_len) ||
        !inside(m->type, m->type_len, in, len) ||
        !inside(m->payload, m->payload_len, in, len))
        abort();
    if (m->target_kind == MM_WIRE_TARGET_ACTOR) {
        if (m->actor == 0 || m->label != NULL) abort();
    } else if (m->target_kind == MM_WIRE_TARGET_LABEL) {
        if (!text_rule(m->label, m->label_len) ||
            !inside(m->label, m->label_len, in, len))
            abort();
    } else {
        abort();
    }
}

static void
decode_side(const uint8_t *data, size_t size)
{
    struct mm_wire_invoke m;
    size_t cap = size + MM_WIRE_HDR_LEN;
    uint8_t *out = malloc(cap);
    if (out == NULL) abort();

    int rc = mm__wire_invoke_decode(&m, data, size);
    if (rc == 0) {
        check_invoke_rules(&m, data, size);
        if (mm__wire_invoke_size(&m) != cap ||
            mm__wire_invoke_encode(out, cap, &m) != cap ||
            memcmp(out + MM_WIRE_HDR_LEN, data, size) != 0 ||
            mm__wire_invoke_encode(out, cap - 1, &m) != 0)
            abort();
        size_t h = mm__wire_invoke_encode_head(out, cap, &m);
        if (h + m.payload_len != cap ||
            memcmp(out + MM_WIRE_HDR_LEN, data, h - MM_WIRE_HDR_LEN) != 0)
            abort();
        struct mm_buf b;
        mm__buf_init(&b);
        if (mm__wire_invoke_append(&b, &m) != 0 || b.len != cap ||
            memcmp(b.data + MM_WIRE_HDR_LEN, data, size) != 0)
            abort();
        mm__buf_release(&b);
    } else if (rc != MM_EDECODE) {
        abort();
    }

    struct mm_wire_response r;
    rc = mm__wire_response_decode(&r, data, size);
    if (rc == 0) {
        if (r.call_id == 0 || r.content > MM_CONTENT_RAW ||
            (r.content == MM_CONTENT_NONE && r.body_len) ||
            !inside(r.body, r.body_len, data, size))
            abort();
        if (mm__wire_response_encode(out, cap, &r) != cap ||
            memcmp(out + MM_WIRE_HDR_LEN, data, size) != 0)
            abort();
        size_t h = mm__wire_response_encode_head(out, cap, &r);
        if (h + r.body_len != cap) abort();
    } else if (rc != MM_EDECODE) {
        abort();
    }
    free(out);
}

/* Reads field values from the input; missing bytes read as zero. */
struct src {
    const uint8_t *p;
    size_t n;
};

static uint64_t
take(struct src *s, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        v |= (uint64_t)(s->n ? *s->p : 0) << (8 * i);
        if (s->n) {
            s->p++;
            s->n--;
        }
    }
    return v;
}

static void
encode_side(const uint8_t *data, size_t size)
{
    struct src s = {data, size};
    struct mm_wire_invoke m;
    memset(&m, 0, sizeof(m));
    /* Small values for the id so that 0 is common. */
    m.call_id = take(&s, 1) % 3;
    m.flags = (uint8_t)take(&s, 1);
    m.flags = (m.flags & 0x80) ? m.flags : (m.flags & MM_WIRE_F_NO_REPLY);
    m.target_kind = (uint8_t)(take(&s, 1) % 3);
    m.generation = take(&s, 8);
    m.actor = take(&s, 1) % 3;
    m.content = (uint8_t)(take(&s, 1) % 5);
    m.deadline_ms = (uint32_t)take(&s, 4);
    size_t ll = (size_t)(take(&s, 1) % 8);
    size_t tl = (size_t)(take(&s, 1) % 8);
    ll = MM_MIN(ll, s.n);
    m.label = (const char *)s.p;
    m.label_len = ll;
    s.p += ll;
    s.n -= ll;
    tl = MM_MIN(tl, s.n);
    m.type = (const char *)s.p;
    m.type_len = tl;
    s.p += tl;
    s.n -= tl;
    m.payload = s.p;
    m.payload_len = s.n;

    size_t n = mm__wire_invoke_size(&m);
    struct mm_buf b;
    mm__buf_init(&b);
    if (n == 0) {
        uint8_t tiny[8];
        if (mm__wire_invoke_encode(tiny, sizeof(tiny), &m) != 0 ||
            mm__wire_invoke_append(&b, &m) != MM_EINVAL || b.len != 0)
            abort();
        mm__buf_release(&b);
        return;
    }
    if (mm__wire_invoke_append(&b, &m) != 0 || b.len != n) abort();
    uint32_t flen = 0;
    uint8_t type = 0;
    if (mm__wire_frame_hdr(b.data, b.len, UINT32_MAX, &flen, &type) != 0 ||
        flen != n - 4 || type != MM_WIRE_INVOKE)
        abort();
    struct mm_wire_invoke d;
    if (mm__wire_invoke_decode(&d, b.data + MM_WIRE_HDR_LEN,
                               n - MM_WIRE_HDR_LEN) != 0)
        abort();
    if (d.call_id != m.call_id || d.flags != m.flags ||
        d.target_kind != m.target_kind || d.generation != m.generation ||
        d.content != m.content || d.deadline_ms != m.deadline_ms ||
        d.type_len != m.type_len || memcmp(d.type, m.type, m.type_len) ||
        d.payload_len != m.payload_len ||
        (m.payload_len && memcmp(d.payload, m.payload, m.payload_len)))
        abort();
    if (m.target_kind == MM_WIRE_TARGET_ACTOR && d.actor != m.actor) abort();
    if (m.target_kind == MM_WIRE_TARGET_LABEL &&
        (d.label_len != m.label_len || memcmp(d.label, m.label, m.label_len)))
        abort();
    mm__buf_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_side(data, size);
    encode_side(data, size);
    return 0;
}
