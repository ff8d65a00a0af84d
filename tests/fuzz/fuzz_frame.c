/* FUZZ_SOURCES: lib/wire.c lib/buf.c lib/util.c */
/*
 * fuzz_frame.c — libFuzzer target for the stream reader and every frame
 * decoder (lib/wire.c).
 *
 * Input: byte 0 picks the reader's limit, byte 1 seeds the chunking, the
 * rest is stream data.  Checks, beyond the sanitizers:
 *  - feeding the stream whole and in pseudo-random chunks gives the same
 *    frames, the same result and the same partial count;
 *  - every frame body that a decoder accepts re-encodes to exactly the same
 *    bytes (the encoding is canonical), and decoders return only 0 or
 *    MM_EDECODE;
 *  - the same holds for every decoder run directly on the raw input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

#define FUZZ_MAX_FRAMES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes |body| as |type|; if accepted, re-encodes and compares. */
static void
check_roundtrip(uint8_t type, const uint8_t *body, size_t len)
{
    size_t cap = len + MM_WIRE_HDR_LEN;
    uint8_t *out = malloc(cap);
    size_t n = 0;
    int rc;

    if (out == NULL) abort();
    switch (type) {
    case MM_WIRE_HELLO: {
        struct mm_wire_hello m;
        rc = mm__wire_hello_decode(&m, body, len);
        if (rc == 0) n = mm__wire_hello_encode(out, cap, &m);
        break;
    }
    case MM_WIRE_AUTH: {
        struct mm_wire_auth m;
        rc = mm__wire_auth_decode(&m, body, len);
        if (rc == 0) n = mm__wire_auth_encode(out, cap, &m);
        break;
    }
    case MM_WIRE_AUTH_RESULT: {
        struct mm_wire_auth_result m;
        rc = mm__wire_auth_result_decode(&m, body, len);
        if (rc == 0) n = mm__wire_auth_result_encode(out, cap, &m);
        break;
    }
    case MM_WIRE_INVOKE: {
        struct mm_wire_invoke m;
        rc = mm__wire_invoke_decode(&m, body, len);
        if (rc == 0) n = mm__wire_invoke_encode(out, cap, &m);
        break;
    }
    case MM_WIRE_RESPONSE: {
        struct mm_wire_response m;
        rc = mm__wire_response_decode(&m, body, len);
        if (rc == 0) n = mm__wire_response_encode(out, cap, &m);
        break;
    }
    case MM_WIRE_CTRL_REQ:
    case MM_WIRE_CTRL_RESP:
    case MM_WIRE_CTRL_EVENT: {
        struct mm_wire_ctrl m;
        rc = mm__wire_ctrl_decode(&m, body, len);
        if (rc == 0) n = mm__wire_ctrl_encode(out, cap, type, &m);
        break;
    }
    default:
        free(out);
        return;
    }
    if (rc == 0) {
        if (n != cap || mm__get_u32(out) != len + 1 || out[4] != type ||
            (len && memcmp(out + MM_WIRE_HDR_LEN, body, len) != 0))
            abort();
    } else if (rc != MM_EDECODE) {
        abort();
    }
    free(out);
}

struct rec {
    size_t count;
    uint8_t type[FUZZ_MAX_FRAMES];
    size_t len[FUZZ_MAX_FRAMES];
    uint64_t hash[FUZZ_MAX_FRAMES];
    int check; /* run the decoders on each frame */
};

static int
rec_cb(void *d, uint8_t type, const uint8_t *body, size_t len)
{
    struct rec *r = d;
    if (body == NULL || r->count >= FUZZ_MAX_FRAMES) abort();
    r->type[r->count] = type;
    r->len[r->count] = len;
    r->hash[r->count] = mm__hash_bytes(body, len);
    r->count++;
    if (r->check) check_roundtrip(type, body, len);
    return 0;
}

static struct rec whole, split;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t types[] = {
        MM_WIRE_HELLO,     MM_WIRE_AUTH,       MM_WIRE_AUTH_RESULT,
        MM_WIRE_INVOKE,    MM_WIRE_RESPONSE,   MM_WIRE_CTRL_REQ,
        MM_WIRE_CTRL_RESP, MM_WIRE_CTRL_EVENT,
    };
    for (size_t i = 0; i < MM_ARRAY_SIZE(types); i++)
        check_roundtrip(types[i], data, size);
    if (size < 2) return 0;

    uint32_t max = (data[0] & 1) ? 64u + data[0] : MM_MAX_FRAME;
    uint64_t seed = data[1] * 0x9e3779b97f4a7c15ull + 1;
    const uint8_t *stream = data + 2;
    size_t len = size - 2;
    struct mm_wire_reader r;

    memset(&whole, 0, sizeof(whole));
    whole.check = 1;
    mm__wire_reader_init(&r, max);
    int rc_whole = mm__wire_reader_feed(&r, stream, len, rec_cb, &whole);
    size_t partial_whole = mm__wire_reader_partial(&r);
    mm__wire_reader_free(&r);
    if (rc_whole != 0 && rc_whole != MM_EDECODE) abort();

    memset(&split, 0, sizeof(split));
    mm__wire_reader_init(&r, max);
    int rc_split = 0;
    size_t off = 0;
    while (off < len && rc_split == 0) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t k = (size_t)(seed % 17);
        if (k > len - off) k = len - off;
        /* An exact-size copy, so that ASan sees any overread. */
        uint8_t *chunk = malloc(k ? k : 1);
        if (chunk == NULL) abort();
        if (k) memcpy(chunk, stream + off, k);
        rc_split = mm__wire_reader_feed(&r, chunk, k, rec_cb, &split);
        free(chunk);
        off += k;
    }
    size_t partial_split = mm__wire_reader_partial(&r);
    mm__wire_reader_free(&r);

    if (rc_split != rc_whole || split.count != whole.count) abort();
    if (rc_whole == 0 && partial_split != partial_whole) abort();
    for (size_t i = 0; i < whole.count; i++) {
        if (split.type[i] != whole.type[i] || split.len[i] != whole.len[i] ||
            split.hash[i] != whole.hash[i] || whole.len[i] + 1 > max)
            abort();
    }
    return 0;
}
