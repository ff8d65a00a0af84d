/*
 * test_typed.c — typed messages (murmer_typed.h): codec round trips of
 * every field kind (JSON and binary), decoding errors and bounds, a local
 * typed call that moves a pointer and encodes nothing, untyped callers of
 * a typed handler, and typed calls between two in-process nodes over QUIC
 * (JSON and a codec hook).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "murmer_typed.h"
#include "jsonv.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

extern _Atomic unsigned long mm__typed_encodes;

/* ---- types ----------------------------------------------------------------
 */

MM_STRUCT_TYPE(point, (MM_I32(x), MM_I32(y), MM_STR(tag, 8)));
MM_STRUCT_TYPE(allkinds,
               (MM_I8(i8), MM_I16(i16), MM_I32(i32), MM_I64(i64), MM_U8(u8),
                MM_U16(u16), MM_U32(u32), MM_U64(u64), MM_F64(f64),
                MM_BOOL(yes), MM_STR(s, 64), MM_BYTES(b, 16),
                MM_STRUCT(pt, point), MM_ARRAY(nums, I64, 8),
                MM_ARRAY(flags, BOOL, 4), MM_STR_ARRAY(words, 8, 4),
                MM_STRUCT_ARRAY(pts, point, 3), MM_OPT(MM_I32(opt))));
/* A recursive type: nesting is bounded by MM_TYPED_DEPTH_MAX. */
MM_STRUCT_TYPE(tree, (MM_I32(v), MM_STRUCT_ARRAY(kids, tree, 4)));

MM_MESSAGE(tgreet, "tgreet", (MM_STR(name, 16)), (MM_STR(text, 64)));
MM_MESSAGE(tadd, "tadd", (MM_I64(a), MM_I64(b)), (MM_I64(sum)));
MM_MESSAGE(tping, "tping", (MM_NONE), (MM_U32(pings)));

/* A codec hook: binary on the wire, counted. */
static _Atomic int hook_enc, hook_dec;
static int
hook_encode(const mm_type_desc *t, const void *val, void **out, size_t *len)
{
    hook_enc++;
    return mm_codec_binary.encode(t, val, out, len);
}
static int
hook_decode(const mm_type_desc *t, const void *data, size_t len, void *val,
            mm_arena *a, char *err, size_t errlen)
{
    hook_dec++;
    return mm_codec_binary.decode(t, data, len, val, a, err, errlen);
}
static const mm_codec hook_codec = {"hook", MM_CONTENT_RAW, hook_encode,
                                    hook_decode};
MM_MESSAGE_CODEC(tbin, "tbin", &hook_codec, (MM_BYTES(blob, 32), MM_U16(n)),
                 (MM_BYTES(blob, 64), MM_U16(n)));

/* ---- the typed actor ------------------------------------------------------
 */

struct tstate {
    uint32_t pings;
    int prev_intact;
};

static int
on_greet(mm_ctx *ctx, struct tstate *st, const tgreet_req *in, tgreet_rep *out)
{
    (void)st;
    out->text = mm_typed_printf(ctx, "Hello, %s!", in->name);
    return 0;
}
MM_HANDLES(tgreet, on_greet);

static int
on_add(mm_ctx *ctx, void *st, const tadd_req *in, tadd_rep *out)
{
    (void)ctx;
    (void)st;
    out->sum = in->a + in->b;
    return 0;
}
MM_HANDLES(tadd, on_add);

static int
on_ping(mm_ctx *ctx, struct tstate *st, const tping_req *in, tping_rep *out)
{
    (void)ctx;
    (void)in;
    out->pings = ++st->pings;
    return 0;
}
MM_HANDLES(tping, on_ping);

/* Doubles the blob, echoes n + 1. */
static uint8_t bin_buf[64];
static int
on_bin(mm_ctx *ctx, void *st, const tbin_req *in, tbin_rep *out)
{
    (void)ctx;
    (void)st;
    memcpy(bin_buf, in->blob.data, in->blob.len);
    memcpy(bin_buf + in->blob.len, in->blob.data, in->blob.len);
    out->blob.data = bin_buf;
    out->blob.len = 2 * in->blob.len;
    out->n = (uint16_t)(in->n + 1);
    return 0;
}
MM_HANDLES(tbin, on_bin);

/*
 * Six strings: JSON strings without escapes are decoded in place (they
 * point into the message's bytes, at most four per value); the handler
 * below is what MM_HANDLES generates, plus checks: which strings point
 * into the message, and whether the message's bytes are as they came
 * once the turn is over (reported by the next call).
 */
MM_MESSAGE(tmany, "tmany",
           (MM_STR(a, 16), MM_STR(b, 16), MM_STR(c, 16), MM_STR(d, 16),
            MM_STR(e, 16), MM_STR(f, 16)),
           (MM_STR(all, 128), MM_U32(inplace), MM_BOOL(prev_intact)));

static int
on_many(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct tstate *st = state;
    mm_typed_turn t;
    tmany_rep out;
    size_t len = 0;
    const char *data = mm_msg_data(msg, &len);
    char before[256];
    if (!data) data = before; /* a typed caller's pointer: no bytes */
    if (len >= sizeof(before)) return MM_EINVAL; /* (a crash) */
    memcpy(before, data, len);
    int prev = st->prev_intact;
    if (mm_typed_begin(ctx, msg, &tmany_desc, &t) != 0) {
        /* Refused (decode_error answered): put back all the same. */
        st->prev_intact = memcmp(data, before, len) == 0;
        return 0;
    }
    const tmany_req *in = t.req;
    const char *s[6] = {in->a, in->b, in->c, in->d, in->e, in->f};
    memset(&out, 0, sizeof(out));
    for (unsigned i = 0; i < 6; i++)
        if (s[i] >= data && s[i] < data + len) out.inplace |= 1u << i;
    out.all = mm_typed_printf(ctx, "%s|%s|%s|%s|%s|%s", s[0], s[1], s[2], s[3],
                              s[4], s[5]);
    out.prev_intact = prev;
    int rc = mm_typed_end(ctx, msg, &tmany_desc, &t, &out, 0);
    st->prev_intact = memcmp(data, before, len) == 0;
    return rc;
}

MM_ACTOR_TYPE(typed, struct tstate, NULL, NULL, MM_TYPED(tgreet, on_greet),
              MM_TYPED(tadd, on_add), MM_TYPED(tping, on_ping),
              MM_TYPED(tbin, on_bin), MM_HANDLER("tmany", on_many));

/* ---- codecs ---------------------------------------------------------------
 */

static const char *const words[] = {"a", "b\"c", "\t"};

static void
fill_all(allkinds *v, point *pts)
{
    static const int64_t nums[] = {1, -2, INT64_MAX, INT64_MIN,
                                   9007199254740993};
    static const bool flags[] = {true, false, true};
    static const uint8_t bytes[] = {0, 1, 2, 255, 0, 7};
    memset(v, 0, sizeof(*v));
    v->i8 = INT8_MIN;
    v->i16 = INT16_MAX;
    v->i32 = INT32_MIN;
    v->i64 = INT64_MIN;
    v->u8 = UINT8_MAX;
    v->u16 = UINT16_MAX;
    v->u32 = UINT32_MAX;
    v->u64 = UINT64_MAX;
    v->f64 = -1.0 / 3.0;
    v->yes = true;
    v->s = "quote \" backslash \\ nl \n ctl \x01 utf8 \xc3\xa9";
    v->b.data = bytes;
    v->b.len = sizeof(bytes);
    v->pt.x = -5;
    v->pt.y = 6;
    v->pt.tag = "p";
    v->nums = nums;
    v->nums_count = 5;
    v->flags = flags;
    v->flags_count = 3;
    v->words = words;
    v->words_count = 3;
    pts[0] = (point){1, 2, "one"};
    pts[1] = (point){3, 4, "two"};
    v->pts = pts;
    v->pts_count = 2;
    v->opt = 42;
}

static void
check_all(const allkinds *a, const allkinds *b)
{
    assert_int_equal(a->i8, b->i8);
    assert_int_equal(a->i16, b->i16);
    assert_int_equal(a->i32, b->i32);
    assert_true(a->i64 == b->i64);
    assert_int_equal(a->u8, b->u8);
    assert_int_equal(a->u16, b->u16);
    assert_int_equal(a->u32, b->u32);
    assert_true(a->u64 == b->u64);
    assert_true(a->f64 == b->f64);
    assert_int_equal(a->yes, b->yes);
    assert_string_equal(a->s, b->s);
    assert_int_equal(a->b.len, b->b.len);
    assert_memory_equal(a->b.data, b->b.data, a->b.len);
    assert_int_equal(a->pt.x, b->pt.x);
    assert_int_equal(a->pt.y, b->pt.y);
    assert_string_equal(a->pt.tag, b->pt.tag);
    assert_int_equal(a->nums_count, b->nums_count);
    for (size_t i = 0; i < a->nums_count; i++)
        assert_true(a->nums[i] == b->nums[i]);
    assert_int_equal(a->flags_count, b->flags_count);
    for (size_t i = 0; i < a->flags_count; i++)
        assert_int_equal(a->flags[i], b->flags[i]);
    assert_int_equal(a->words_count, b->words_count);
    for (size_t i = 0; i < a->words_count; i++)
        assert_string_equal(a->words[i], b->words[i]);
    assert_int_equal(a->pts_count, b->pts_count);
    for (size_t i = 0; i < a->pts_count; i++) {
        assert_int_equal(a->pts[i].x, b->pts[i].x);
        assert_int_equal(a->pts[i].y, b->pts[i].y);
        assert_string_equal(a->pts[i].tag, b->pts[i].tag);
    }
    assert_int_equal(a->opt, b->opt);
}

static void
roundtrip(const mm_codec *codec)
{
    allkinds v;
    point pts[2];
    fill_all(&v, pts);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(mm_typed_encode(&allkinds_desc, codec, &v, &buf, &len), 0);
    void *out = NULL;
    char err[200];
    int rc = mm_typed_decode(&allkinds_desc, codec, buf, len, &out, err,
                             sizeof(err));
    if (rc) fail_msg("decode: %s", err);
    check_all(&v, out);
    mm_typed_free(out);
    /* The deep copy too. */
    allkinds *c = mm_typed_clone(&allkinds_desc, &v);
    assert_non_null(c);
    assert_ptr_not_equal(c->s, v.s);
    check_all(&v, c);
    mm_typed_free(c);
    free(buf);
}

static void
test_roundtrip_json(void **state)
{
    (void)state;
    roundtrip(NULL);
    /* The JSON form of a small value, byte for byte. */
    tadd_req r = {.a = 9007199254740993, .b = -3};
    void *buf;
    size_t len;
    assert_int_equal(mm_typed_encode(&tadd_req_desc, NULL, &r, &buf, &len), 0);
    assert_string_equal(buf, "{\"a\":\"9007199254740993\",\"b\":-3}");
    free(buf);
    /* Strings with a byte to escape at every position (the scanners
     * look at 8 bytes at a time), and \u escapes of every width. */
    static const char special[] = {'"', '\\', '\n', '\x01', '\x1f'};
    for (size_t k = 0; k < sizeof(special); k++)
        for (size_t pos = 0; pos < 16; pos++) {
            char name[17];
            memset(name, 'a', 16);
            name[16] = '\0';
            name[pos] = special[k];
            tgreet_req q = {.name = name};
            assert_int_equal(
                mm_typed_encode(&tgreet_req_desc, NULL, &q, &buf, &len), 0);
            tgreet_req *back = NULL;
            assert_int_equal(mm_typed_decode(&tgreet_req_desc, NULL, buf, len,
                                             (void **)&back, NULL, 0),
                             0);
            assert_string_equal(back->name, name);
            mm_typed_free(back);
            free(buf);
        }
    const char *esc = "{\"name\":\"\\u00e9\\u20ac\\ud83d\\ude00\\/\"}";
    tgreet_req *e = NULL;
    assert_int_equal(mm_typed_decode(&tgreet_req_desc, NULL, esc, strlen(esc),
                                     (void **)&e, NULL, 0),
                     0);
    assert_string_equal(e->name, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/");
    mm_typed_free(e);
    /* Non-finite doubles travel as null and come back NaN. */
    allkinds v;
    point pts[2];
    fill_all(&v, pts);
    v.f64 = INFINITY;
    assert_int_equal(mm_typed_encode(&allkinds_desc, NULL, &v, &buf, &len), 0);
    allkinds *o;
    assert_int_equal(
        mm_typed_decode(&allkinds_desc, NULL, buf, len, (void **)&o, NULL, 0),
        0);
    assert_true(isnan(o->f64));
    mm_typed_free(o);
    free(buf);
}

static void
test_roundtrip_binary(void **state)
{
    (void)state;
    roundtrip(&mm_codec_binary);
}

/* Decoding |json| as |t| fails with MM_EDECODE and a text holding |want|. */
static void
decode_fails(const mm_type_desc *t, const mm_codec *c, const void *data,
             size_t len, const char *want)
{
    void *out = (void *)1;
    char err[256] = "";
    int rc = mm_typed_decode(t, c, data, len, &out, err, sizeof(err));
    if (rc != MM_EDECODE)
        fail_msg("decode of '%.*s' gave %d, want MM_EDECODE", (int)len,
                 (const char *)data, rc);
    assert_null(out);
    if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
}

#define JFAIL(t, s, want) decode_fails(&t##_desc, NULL, s, strlen(s), want)

static void
test_decode_errors(void **state)
{
    (void)state;
    /* Wrong types. */
    JFAIL(tadd_req, "{\"a\":\"x\",\"b\":1}", "field 'a': expected an integer");
    JFAIL(tadd_req, "{\"a\":1.5,\"b\":1}", "field 'a': expected an integer");
    JFAIL(tgreet_req, "{\"name\":5}",
          "field 'name': expected a string, got a number");
    JFAIL(tadd_req, "[1,2]", "expected a JSON object");
    JFAIL(tadd_req, "{\"a\":1,", "invalid JSON");
    JFAIL(point, "{\"x\":1,\"y\":2,\"tag\":[]}",
          "field 'tag': expected a string");
    /* Missing required fields; an optional one may be missing. */
    JFAIL(tadd_req, "{\"a\":1}", "field 'b': missing");
    JFAIL(point, "{\"x\":1,\"tag\":\"t\"}", "field 'y': missing");
    /* Out of range. */
    decode_fails(&allkinds_desc, NULL, "{\"i8\":200}", 10,
                 "field 'i8': 200 out of range");
    /* Too long, too many. */
    JFAIL(tgreet_req, "{\"name\":\"seventeen bytes!!\"}",
          "field 'name': 17 bytes, at most 16");
    JFAIL(point, "{\"x\":1,\"y\":2,\"tag\":\"123456789\"}", "at most 8");
    JFAIL(tree,
          "{\"v\":1,\"kids\":[{\"v\":1},{\"v\":2},{\"v\":3},{\"v\":4},{\"v\":5}"
          "]}",
          "field 'kids': more than 4 elements");
    JFAIL(tree, "{\"v\":1,\"kids\":[{\"v\":\"no\"}]}",
          "field 'kids.v': expected an integer");
    JFAIL(tbin_req,
          "{\"blob\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
          "\"n\":1}",
          "field 'blob': ");
    JFAIL(tbin_req, "{\"blob\":\"!!!!\",\"n\":1}", "not base64");
    JFAIL(tgreet_req, "{\"name\":\"\\ud800\"}",
          "field 'name': invalid JSON at byte 15");
    JFAIL(tadd_req, "{\"a\":1,\"b\":2,\"a\":3}", "field 'a': given twice");
    JFAIL(tadd_req, "{\"a\":1,\"b\":2} x", "invalid JSON at byte 14");
    JFAIL(tadd_req, "{\"a\":01,\"b\":2}", "invalid JSON");
    /* Nesting beyond MM_TYPED_DEPTH_MAX. */
    char deep[2048];
    size_t o = 0;
    for (int i = 0; i < MM_TYPED_DEPTH_MAX + 4; i++)
        o += (size_t)snprintf(deep + o, sizeof(deep) - o,
                              "{\"v\":%d,\"kids\":[", i);
    o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"v\":0}");
    for (int i = 0; i < MM_TYPED_DEPTH_MAX + 4; i++)
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "]}");
    decode_fails(&tree_desc, NULL, deep, o, "nested deeper than");
    /* Binary: a count beyond the declared maximum is refused before any
     * allocation of that size; truncation and trailing bytes too. */
    static const uint8_t many[] = {0xff, 0xff, 0xff, 0x7f, 1};
    decode_fails(&tbin_req_desc, &mm_codec_binary, many, sizeof(many),
                 "field 'blob': 2147483647 bytes, at most 32");
    static const uint8_t trunc[] = {4, 0, 0, 0, 1, 2};
    decode_fails(&tbin_req_desc, &mm_codec_binary, trunc, sizeof(trunc),
                 "truncated");
    static const uint8_t extra[] = {0, 0, 0, 0, 1, 0, 9};
    decode_fails(&tbin_req_desc, &mm_codec_binary, extra, sizeof(extra),
                 "1 trailing bytes");
    /* An optional field that is missing is zero. */
    const char *ok = "{\"i8\":1,\"i16\":1,\"i32\":1,\"i64\":\"-5\",\"u8\":1,"
                     "\"u16\":1,\"u32\":1,\"u64\":\"18446744073709551615\","
                     "\"f64\":1,\"yes\":false,\"s\":\"\",\"b\":\"\","
                     "\"pt\":{\"x\":0,\"y\":0,\"tag\":\"\"},\"nums\":[],"
                     "\"flags\":[],\"words\":[],\"pts\":[]}";
    allkinds *v = NULL;
    char err[200];
    int rc = mm_typed_decode(&allkinds_desc, NULL, ok, strlen(ok), (void **)&v,
                             err, sizeof(err));
    if (rc) fail_msg("%s", err);
    assert_int_equal(v->opt, 0);
    assert_true(v->i64 == -5);
    assert_true(v->u64 == UINT64_MAX);
    mm_typed_free(v);
}

/* Decoders against mutated input (bounded, seeded): every input gives a
 * value or MM_EDECODE with a text, and a value decoded once encodes and
 * decodes again.  Under ASan this is the decoders' memory check. */
static void
mutate_codec(const mm_codec *codec)
{
    allkinds v;
    point pts[2];
    fill_all(&v, pts);
    void *buf;
    size_t len;
    assert_int_equal(mm_typed_encode(&allkinds_desc, codec, &v, &buf, &len), 0);
    uint8_t *m = malloc(len + 8);
    assert_non_null(m);
    static const char punct[] = "{}[]\",:\\u0-9e.";
    uint32_t seed = 12345;
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(m, buf, len);
        size_t n = len;
        int edits = 1 + it % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            switch ((seed >> 4) % 3) {
            case 0:
                m[pos] = (uint8_t)(seed >> 16);
                break;
            case 1:
                n = pos + 1;
                break; /* truncate */
            default:
                m[pos] = (uint8_t)punct[(seed >> 16) % (sizeof(punct) - 1)];
                break;
            }
        }
        void *out = NULL;
        char err[256] = "";
        int rc = mm_typed_decode(&allkinds_desc, codec, m, n, &out, err,
                                 sizeof(err));
        if (rc == 0) {
            void *b2;
            size_t l2;
            assert_int_equal(
                mm_typed_encode(&allkinds_desc, codec, out, &b2, &l2), 0);
            void *o2 = NULL;
            assert_int_equal(mm_typed_decode(&allkinds_desc, codec, b2, l2, &o2,
                                             err, sizeof(err)),
                             0);
            mm_typed_free(o2);
            free(b2);
            mm_typed_free(out);
            ok++;
        } else {
            assert_int_equal(rc, MM_EDECODE);
            assert_null(out);
            assert_true(err[0] != '\0');
            bad++;
        }
    }
    assert_true(bad > 0);
    free(m);
    free(buf);
}

static void
test_decode_mutations(void **state)
{
    (void)state;
    mutate_codec(NULL);
    mutate_codec(&mm_codec_binary);
}

/* ---- calls on one node ------------------------------------------------ */

static mm_node *
local_node(mm_endpoint *ep)
{
    mm_node *n = nodefix_new(&(struct nodefix_opts){.name = "typed"});
    assert_int_equal(mm_node_register_type(n, &typed_type), 0);
    nodefix_start(n);
    assert_int_equal(mm_spawn(n, "typed", NULL, ep), 0);
    return n;
}

struct waiter {
    sem_t sem;
    int status;
    int64_t sum;
};

static void
add_done(void *data, int status, const tadd_rep *rep)
{
    struct waiter *w = data;
    w->status = status;
    w->sum = rep ? rep->sum : -1;
    sem_post(&w->sem);
}

/* The reply's text, copied while the callback runs (it is borrowed). */
struct gwaiter {
    sem_t sem;
    int status;
    char text[64];
};

static void
greet_done(void *data, int status, const tgreet_rep *rep)
{
    struct gwaiter *w = data;
    w->status = status;
    snprintf(w->text, sizeof(w->text), "%s", rep ? rep->text : "-");
    sem_post(&w->sem);
}

static void
test_local_call_moves_pointer(void **state)
{
    (void)state;
    mm_endpoint ep;
    mm_node *n = local_node(&ep);
    unsigned long enc0 = atomic_load(&mm__typed_encodes);

    /* The message a typed send makes for a local actor is a pointer. */
    tadd_req r = {.a = 1, .b = 2};
    mm_msg *m = mm_typed_msg_new(n, &ep, &tadd_desc, &r);
    assert_int_equal(mm_msg_content(m), MM_CONTENT_PTR);
    assert_non_null(mm_msg_ptr(m));
    mm_msg_free(m);

    tgreet_rep *g = NULL;
    assert_int_equal(tgreet(n, &ep, "world", &g), 0);
    assert_string_equal(g->text, "Hello, world!");
    mm_typed_free(g);
    tadd_rep *s = NULL;
    assert_int_equal(tadd(n, &ep, 40, 2, &s), 0);
    assert_true(s->sum == 42);
    mm_typed_free(s);
    tping_rep *p = NULL;
    assert_int_equal(tping(n, &ep, &p), 0);
    assert_int_equal(p->pings, 1);
    mm_typed_free(p);
    /* Asynchronous: the callback gets the reply by pointer. */
    struct waiter w;
    sem_init(&w.sem, 0, 0);
    assert_int_equal(
        tadd_send(n, &ep, &(tadd_req){.a = 5, .b = 6}, add_done, &w), 0);
    assert_int_equal(sem_wait_s(&w.sem, 10), 0);
    assert_int_equal(w.status, 0);
    assert_true(w.sum == 11);
    assert_int_equal(tping_tell(n, &ep, &(tping_req){0}), 0);
    assert_int_equal(tping(n, &ep, &p), 0);
    assert_int_equal(p->pings, 3);
    mm_typed_free(p);
    sem_destroy(&w.sem);
    /* Nothing was encoded on the way or back. */
    assert_int_equal(atomic_load(&mm__typed_encodes), enc0);
    nodefix_down(n);
}

static void
test_untyped_caller(void **state)
{
    (void)state;
    mm_endpoint ep;
    mm_node *n = local_node(&ep);
    mm_msg *r = NULL;
    const char *js = "{\"name\":\"json\"}";
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_json("tgreet", js, strlen(js)), &r), 0);
    assert_int_equal(mm_msg_content(r), MM_CONTENT_JSON);
    size_t len;
    const char *body = mm_msg_data(r, &len);
    assert_string_equal(body, "{\"text\":\"Hello, json!\"}");
    mm_msg_free(r);
    /* A bad request is answered decode_error with the field's name; the
     * handler does not run and the actor lives on. */
    js = "{\"name\":\"this name is too long\"}";
    r = NULL;
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_json("tgreet", js, strlen(js)), &r),
        MM_EDECODE);
    assert_non_null(r);
    body = mm_msg_data(r, &len);
    assert_non_null(strstr(body, "tgreet: field 'name': 21 bytes, at most 16"));
    mm_msg_free(r);
    tping_rep *p = NULL;
    assert_int_equal(tping(n, &ep, &p), 0);
    assert_int_equal(p->pings, 1);
    mm_typed_free(p);
    nodefix_down(n);
}

/* The plain-run scan the codec and the ingress check share: every length
 * up to 70 (SSE2 steps, overlapping tails, SWAR, bytes), every position
 * of each kind of byte that ends a run, in buffers of exactly that size
 * (ASan sees any read past them). */
static void
test_plain_end(void **state)
{
    (void)state;
    static const unsigned char stop[] = {'"', '\\', 0x00, 0x01, 0x1f};
    static const unsigned char go[] = {'x', ' ', 0x7f, 0x80, 0xff, '/'};
    for (size_t len = 0; len <= 70; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof(stop); k++) {
                char *b = malloc(len ? len : 1);
                assert_non_null(b);
                for (size_t i = 0; i < len; i++)
                    b[i] = (char)go[(i + pos + k) % sizeof(go)];
                if (pos < len) b[pos] = (char)stop[k];
                assert_ptr_equal(mm__json_plain_end(b, b + len), b + pos);
                /* From any start up to the stop. */
                for (size_t from = 0; from <= pos; from += 3)
                    assert_ptr_equal(mm__json_plain_end(b + from, b + len),
                                     b + pos);
                free(b);
                if (pos == len) break; /* no stop byte: one pass */
            }
        }
    }
}

/* JSON requests decode their plain strings in place, and the message is
 * as it came once the handler is done (also after a refused one). */
static void
test_strings_in_place(void **state)
{
    (void)state;
    mm_endpoint ep;
    mm_node *n = local_node(&ep);
    const char *js = "{\"a\":\"one\",\"b\":\"t\\\"wo\",\"c\":\"\",\"d\":"
                     "\"four\", \"e\" : \"five\",\"f\":\"six\"}";
    for (int round = 0; round < 2; round++) {
        mm_msg *r = NULL;
        assert_int_equal(
            mm_call(n, &ep, mm_msg_new_json("tmany", js, strlen(js)), &r), 0);
        void *v = NULL;
        char err[200];
        assert_int_equal(
            mm_typed_reply_take(&tmany_desc, r, &v, err, sizeof(err)), 0);
        const tmany_rep *rep = v;
        assert_string_equal(rep->all, "one|t\"wo||four|five|six");
        /* a, c, d, e in place; b has an escape; f: four were taken. */
        assert_int_equal(rep->inplace, 0x1d);
        if (round) assert_true(rep->prev_intact);
        mm_typed_free(v);
        mm_msg_free(r);
    }
    /* A field refused after one decoded in place (a too long string). */
    const char *bad = "{\"a\":\"one\",\"b\":\"much too long for b\"}";
    mm_msg *r = NULL;
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_json("tmany", bad, strlen(bad)), &r),
        MM_EDECODE);
    size_t len;
    assert_non_null(
        strstr(mm_msg_data(r, &len), "tmany: field 'b': 19 bytes, at most 16"));
    mm_msg_free(r);
    r = NULL;
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_json("tmany", js, strlen(js)), &r), 0);
    void *v = NULL;
    assert_int_equal(mm_typed_reply_take(&tmany_desc, r, &v, NULL, 0), 0);
    assert_true(((const tmany_rep *)v)->prev_intact);
    mm_typed_free(v);
    mm_msg_free(r);
    /* Typed, by pointer: nothing to decode, the strings are the caller's. */
    tmany_rep *tr = NULL;
    assert_int_equal(tmany(n, &ep, "1", "2", "3", "4", "5", "6", &tr), 0);
    assert_string_equal(tr->all, "1|2|3|4|5|6");
    assert_int_equal(tr->inplace, 0);
    mm_typed_free(tr);
    nodefix_down(n);
}

/* ---- calls across nodes ----------------------------------------------- */

static void
test_remote_typed_call(void **state)
{
    (void)state;
    char dir[256], key[300];
    snprintf(dir, sizeof(dir), "/tmp/mm-typed-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/k.key", dir);
    assert_int_equal(mm_cluster_keygen(key), 0);
    mm_node *a = nodefix_new(&(struct nodefix_opts){.name = "ta",
                                                    .dir = dir,
                                                    .listen = "127.0.0.1:0",
                                                    .key = key,
                                                    .no_mdns = 1});
    assert_int_equal(mm_node_register_type(a, &typed_type), 0);
    nodefix_start(a);
    mm_endpoint ep;
    assert_int_equal(mm_spawn(a, "typed", NULL, &ep), 0);
    mm_node *b = nodefix_up(&(struct nodefix_opts){.name = "tb",
                                                   .dir = dir,
                                                   .listen = "127.0.0.1:0",
                                                   .key = key,
                                                   .join = mm_node_addr(a),
                                                   .no_mdns = 1});
    unsigned long enc0 = atomic_load(&mm__typed_encodes);
    /* The first call waits for the connection (bounded). */
    tgreet_rep *g = NULL;
    int rc = MM_EUNREACHABLE;
    uint64_t t0 = now_ms();
    while (rc == MM_EUNREACHABLE && now_ms() - t0 < 10000) {
        rc = tgreet(b, &ep, "remote", &g);
        if (rc == MM_EUNREACHABLE) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(rc, 0);
    assert_string_equal(g->text, "Hello, remote!");
    mm_typed_free(g);
    /* The request was encoded on b and the reply on a. */
    assert_true(atomic_load(&mm__typed_encodes) >= enc0 + 2);
    /* Malformed JSON from another node: a typed handler's decoder answers
     * it (one pass over the bytes, no check before it); a handler that
     * is not marked typed gets it checked first and never runs. */
    {
        const char *bad = "{\"name\" 1}";
        mm_msg *r = NULL;
        size_t len;
        assert_int_equal(
            mm_call(b, &ep, mm_msg_new_json("tgreet", bad, strlen(bad)), &r),
            MM_EDECODE);
        assert_non_null(r);
        assert_string_equal(mm_msg_data(r, &len),
                            "\"tgreet: invalid JSON at byte 8\"");
        mm_msg_free(r);
        r = NULL;
        assert_int_equal(
            mm_call(b, &ep, mm_msg_new_json("tmany", bad, strlen(bad)), &r),
            MM_EDECODE);
        assert_non_null(r);
        assert_string_equal(mm_msg_data(r, &len),
                            "\"malformed JSON at byte 8\"");
        mm_msg_free(r);
    }
    /* A remote message is encoded: JSON with the default codec. */
    mm_msg *m = mm_typed_msg_new(b, &ep, &tadd_desc, &(tadd_req){1, 2});
    assert_int_equal(mm_msg_content(m), MM_CONTENT_JSON);
    mm_msg_free(m);
    tadd_rep *s = NULL;
    assert_int_equal(tadd(b, &ep, -7, 3, &s), 0);
    assert_true(s->sum == -4);
    mm_typed_free(s);
    /* Asynchronous, from a foreign thread. */
    struct waiter w;
    sem_init(&w.sem, 0, 0);
    assert_int_equal(
        tadd_send(b, &ep, &(tadd_req){.a = 100, .b = 1}, add_done, &w), 0);
    assert_int_equal(sem_wait_s(&w.sem, 10), 0);
    assert_int_equal(w.status, 0);
    assert_true(w.sum == 101);
    sem_destroy(&w.sem);
    /* Longer than a message holds in itself (80 bytes) both ways: the
     * encoder moves on to its per-thread buffer; twice, to reuse it. */
    for (int i = 0; i < 2; i++) {
        tmany_rep *mr = NULL;
        assert_int_equal(tmany(b, &ep, "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb",
                               "cccccccccccccccc", "dddddddddddddddd",
                               "eeeeeeeeeeeeeeee", "ffffffffffffffff", &mr),
                         0);
        assert_string_equal(mr->all, "aaaaaaaaaaaaaaaa|bbbbbbbbbbbbbbbb|"
                                     "cccccccccccccccc|dddddddddddddddd|"
                                     "eeeeeeeeeeeeeeee|ffffffffffffffff");
        assert_int_equal(mr->inplace, 0xf);
        mm_typed_free(mr);
    }
    /* A string in an asynchronous reply (decoded for the callback). */
    struct gwaiter gw;
    sem_init(&gw.sem, 0, 0);
    assert_int_equal(
        tgreet_send(b, &ep, &(tgreet_req){.name = "async"}, greet_done, &gw),
        0);
    assert_int_equal(sem_wait_s(&gw.sem, 10), 0);
    assert_int_equal(gw.status, 0);
    assert_string_equal(gw.text, "Hello, async!");
    sem_destroy(&gw.sem);
    /* The codec hook: binary (RAW) on the wire both ways. */
    int e0 = hook_enc, d0 = hook_dec;
    static const uint8_t blob[] = {0, 1, 2, 3, 0xff};
    m = mm_typed_msg_new(b, &ep, &tbin_desc,
                         &(tbin_req){{blob, sizeof(blob)}, 7});
    assert_int_equal(mm_msg_content(m), MM_CONTENT_RAW);
    mm_msg_free(m);
    tbin_rep *br = NULL;
    assert_int_equal(tbin(b, &ep, (mm_bytes){blob, sizeof(blob)}, 7, &br), 0);
    assert_int_equal(br->n, 8);
    assert_int_equal(br->blob.len, 2 * sizeof(blob));
    assert_memory_equal(br->blob.data, blob, sizeof(blob));
    assert_memory_equal(br->blob.data + sizeof(blob), blob, sizeof(blob));
    mm_typed_free(br);
    /* Encoded twice here (the message above, the call), once on a; the
     * request decoded on a, the reply here. */
    assert_int_equal(hook_enc - e0, 3);
    assert_int_equal(hook_dec - d0, 2);
    nodefix_down(b);
    nodefix_down(a);
    rm_rf(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_json),
        cmocka_unit_test(test_roundtrip_binary),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_mutations),
        cmocka_unit_test(test_local_call_moves_pointer),
        cmocka_unit_test(test_untyped_caller),
        cmocka_unit_test(test_plain_end),
        cmocka_unit_test(test_strings_in_place),
        cmocka_unit_test(test_remote_typed_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
