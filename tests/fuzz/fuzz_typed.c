/* clang-format off */
/* FUZZ_SOURCES: lib/typed.c lib/jsonv.c lib/msg.c lib/crypto.c lib/util.c lib/err.c */
/* clang-format on */
/*
 * fuzz_typed.c — libFuzzer target for the typed codecs (lib/typed.c).
 *
 * JSON from another node reaches a typed handler unchecked: its decoder
 * is the only check, so it must refuse what is not JSON and never read or
 * write out of bounds.  For each input, decoded as one of three types
 * (every kind of field; a recursive tree; one bounded string):
 *
 * - whatever the JSON decoder accepts, cJSON parses too (the decoder is
 *   no laxer than a JSON parser);
 * - decoding in place (a handler's request: strings point into the
 *   input, closing quotes overwritten) and decoding a copy agree on
 *   accepting, and give values that encode to the same bytes; freeing
 *   the in-place value puts the input back byte for byte;
 * - what it accepts re-encodes to JSON that decodes again, and encoding
 *   that gives the same bytes (a fixpoint after one round);
 * - the same fixpoint for the binary codec, fed the raw input.
 *
 * The messaging half of typed.c (sends, replies) is linked but never
 * reached; the definitions at the end only satisfy the linker.
 * Seeds: tests/fuzz/corpus/fuzz_typed/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "runtime.h"
#include "murmer_typed.h"

MM_STRUCT_TYPE(fpoint, (MM_I32(x), MM_I32(y), MM_STR(tag, 8)));
MM_STRUCT_TYPE(fall, (MM_I8(i8), MM_I16(i16), MM_I32(i32), MM_I64(i64),
                      MM_U8(u8), MM_U16(u16), MM_U32(u32), MM_U64(u64),
                      MM_F64(f64), MM_BOOL(yes), MM_STR(s, 64), MM_BYTES(b, 16),
                      MM_STRUCT(pt, fpoint), MM_ARRAY(nums, I64, 8),
                      MM_ARRAY(flags, BOOL, 4), MM_STR_ARRAY(words, 8, 4),
                      MM_STRUCT_ARRAY(pts, fpoint, 3), MM_OPT(MM_I32(opt))));
MM_STRUCT_TYPE(ftree, (MM_I32(v), MM_STRUCT_ARRAY(kids, ftree, 4)));
MM_STRUCT_TYPE(fname, (MM_STR(name, 16)));

static const mm_type_desc *const types[] = {&fall_desc, &ftree_desc,
                                            &fname_desc};

/* |v| encoded with |codec|, or NULL when it cannot be (then a failure:
 * every decoded value must encode). */
static char *
enc(const mm_type_desc *t, const mm_codec *codec, const void *v, size_t *n)
{
    void *out = NULL;
    if (mm_typed_encode(t, codec, v, &out, n) != 0) {
        fprintf(stderr, "a decoded %s did not encode\n", t->name);
        abort();
    }
    return out;
}

static void
same(const char *what, const void *a, size_t an, const void *b, size_t bn)
{
    if (an != bn || memcmp(a, b, an) != 0) {
        fprintf(stderr, "%s: %zu bytes against %zu\n", what, an, bn);
        abort();
    }
}

/* Encode, decode, encode: the two encodings are equal. */
static void
fixpoint(const mm_type_desc *t, const mm_codec *codec, const void *v)
{
    size_t n1, n2;
    char err[200];
    char *e1 = enc(t, codec, v, &n1);
    void *v2 = NULL;
    if (mm_typed_decode(t, codec, e1, n1, &v2, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: own encoding refused: %s\n", codec->name, err);
        abort();
    }
    char *e2 = enc(t, codec, v2, &n2);
    same("re-encoding", e1, n1, e2, n2);
    mm_typed_free(v2);
    free(e1);
    free(e2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    const mm_type_desc *t = types[data[0] % 3];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char err[200];

    /* JSON, from a copy. */
    void *v = NULL;
    int rc = mm_typed_decode(t, NULL, in, n, &v, err, sizeof(err));
    if (rc == 0) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(in, n, &end, 0);
        if (!j) {
            fprintf(stderr, "typed accepted what cJSON refuses\n");
            abort();
        }
        cJSON_Delete(j);
    }

    /* JSON, in place, as a handler's request. */
    char *buf = malloc(n ? n : 1);
    if (!buf) abort();
    memcpy(buf, in, n);
    void *w = NULL;
    int rc2 = mm__typed_decode_turn(t, buf, n, &w, err, sizeof(err));
    if ((rc == 0) != (rc2 == 0)) {
        fprintf(stderr, "in place %d, copied %d\n", rc2, rc);
        abort();
    }
    if (rc == 0) {
        size_t a, b;
        char *ea = enc(t, NULL, v, &a);
        char *eb = enc(t, NULL, w, &b);
        same("in place against copied", ea, a, eb, b);
        free(ea);
        free(eb);
        fixpoint(t, &mm_codec_json, v);
    }
    mm_typed_free(w);
    same("the input after an in-place value", buf, n, in, n);
    free(buf);
    mm_typed_free(v);

    /* Binary, the raw bytes. */
    v = NULL;
    if (mm_typed_decode(t, &mm_codec_binary, in, n, &v, err, sizeof(err)) ==
        0) {
        fixpoint(t, &mm_codec_binary, v);
        mm_typed_free(v);
    }
    return 0;
}

/* ---- never reached: the messaging half of typed.c ---------------------- */

MM_TLS struct mm_shard *mm__cur_shard; /* not on a shard: as it is */

static _Noreturn void
unreached(const char *fn)
{
    fprintf(stderr, "fuzz_typed: %s reached\n", fn);
    abort();
}

int
mm__node_intern(mm_node *n, const char *name, int add, uint32_t *id)
{
    (void)n, (void)name, (void)add, (void)id;
    unreached(__func__);
}

int
mm__node_is_local(const mm_node *n, const mm_endpoint *ep)
{
    (void)n, (void)ep;
    unreached(__func__);
}

int
mm_call(mm_node *n, const mm_endpoint *to, mm_msg *m, mm_msg **reply)
{
    (void)n, (void)to, (void)m, (void)reply;
    unreached(__func__);
}

int
mm_send(mm_node *n, const mm_endpoint *to, mm_msg *m, mm_reply_cb cb,
        void *data)
{
    (void)n, (void)to, (void)m, (void)cb, (void)data;
    unreached(__func__);
}

int
mm_reply(mm_ctx *ctx, mm_msg *reply)
{
    (void)ctx, (void)reply;
    unreached(__func__);
}

int
mm_reply_error(mm_ctx *ctx, int err, const char *fmt, ...)
{
    (void)ctx, (void)err, (void)fmt;
    unreached(__func__);
}
