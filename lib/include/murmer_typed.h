/*
 * murmer_typed.h — typed messages: a message's request and reply declared
 * once as C structs, from which the library derives their codecs through
 * offsetof-based field tables (no code generator).
 *
 *   MM_MESSAGE(greeter_greet, "greet",
 *              (MM_STR(name, 64)),          request fields
 *              (MM_STR(text, 256)));        reply fields
 *
 * declares `greeter_greet_req` and `greeter_greet_rep` (structs with those
 * members), their field tables, the descriptor `greeter_greet_desc` and
 * call stubs:
 *
 *   int greeter_greet(mm_node *, const mm_endpoint *, const char *name,
 *                     greeter_greet_rep **rep);       blocking call
 *   int greeter_greet_call(mm_node *, const mm_endpoint *,
 *                          const greeter_greet_req *, greeter_greet_rep **);
 *   int greeter_greet_send(mm_node *, const mm_endpoint *,
 *                          const greeter_greet_req *, greeter_greet_cb, data);
 *   int greeter_greet_tell(mm_node *, const mm_endpoint *,
 *                          const greeter_greet_req *);
 *
 * so a misspelt message or a wrong argument type is a compile error.  A
 * blocking call's reply is one heap block: free it with mm_typed_free().
 * An actor handles the message with a typed handler:
 *
 *   static int greet(mm_ctx *ctx, struct greeter *g,
 *                    const greeter_greet_req *in, greeter_greet_rep *out);
 *   MM_HANDLES(greeter_greet, greet);
 *   MM_ACTOR_TYPE(greeter, struct greeter, NULL, NULL,
 *                 MM_TYPED(greeter_greet, greet));
 *
 * The handler gets the decoded request and fills |out| (zeroed); returning
 * 0 sends |out| as the reply (unless it replied already, e.g. with
 * mm_reply_error); MM_STOP replies, then stops; a negative value is a
 * crash.  Pointers in |out| must stay valid until the handler returns:
 * mm_typed_printf() gives strings that live that long.
 *
 * Transport: a send to an actor on this node moves a copy of the request
 * struct by pointer (MM_CONTENT_PTR; no encoding at all, and no allocation
 * for a struct without pointers that fits the message); a send to another
 * node encodes it with the message's codec (JSON by default, or the codec
 * given to MM_MESSAGE_CODEC), and the receiving side decodes it into the
 * struct before the typed handler runs.  The reply takes the form of the
 * request: by pointer to a local typed caller, encoded otherwise, so that
 * untyped callers (the CLI, mm_msg_new_json) get JSON and typed handlers
 * answer them.
 *
 * JSON form: an object with one member per field.  Integers are numbers
 * (64-bit values beyond 2^53 are strings of digits, and strings of digits
 * are accepted for them); doubles are numbers (null for NaN and the
 * infinities); bools true/false; strings strings; byte strings base64
 * strings; nested structs objects; arrays arrays.  Decoding takes strict
 * RFC 8259 text (integers exactly, from their digits); unknown members are
 * ignored, a member given twice is refused; every field is required
 * unless wrapped in MM_OPT() (then a missing one is zero).  A struct has
 * at most 64 fields (24 through the macros).
 *
 * Bounds: decoding refuses with MM_EDECODE and a one-line text (the reply
 * of a typed handler's caller; mm_typed_decode's |err|) a value of the
 * wrong JSON type, a missing required field, a string or byte string
 * longer than its declared maximum, an array longer than its declared
 * count, nesting deeper than MM_TYPED_DEPTH_MAX and a value needing more
 * than MM_TYPED_ALLOC_MAX bytes; the allocation of a decode is bounded by
 * those limits.
 */
#ifndef MURMER_TYPED_H
#define MURMER_TYPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "murmer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nesting depth and bytes a decode may allocate at most. */
#define MM_TYPED_DEPTH_MAX 32
#define MM_TYPED_ALLOC_MAX (64u * 1024u * 1024u)

/* A byte string (base64 in JSON). */
typedef struct mm_bytes {
    const uint8_t *data;
    size_t len;
} mm_bytes;

enum mm_field_kind {
    MM_K_NONE = 0, /* placeholder of an empty message (MM_NONE) */
    MM_K_I8,
    MM_K_I16,
    MM_K_I32,
    MM_K_I64,
    MM_K_U8,
    MM_K_U16,
    MM_K_U32,
    MM_K_U64,
    MM_K_F64,
    MM_K_BOOL,
    MM_K_STR,    /* const char * (NUL-terminated) */
    MM_K_BYTES,  /* mm_bytes */
    MM_K_STRUCT, /* a nested struct (sub) */
    MM_K_ARRAY   /* const T *name + size_t name_count */
};

#define MM_FIELD_OPTIONAL 0x1u

typedef struct mm_type_desc mm_type_desc;

typedef struct mm_field {
    const char *name;
    uint8_t kind;            /* enum mm_field_kind */
    uint8_t elem;            /* arrays: the kind of the elements */
    uint16_t flags;          /* MM_FIELD_OPTIONAL */
    uint32_t max;            /* strings, bytes: bytes; arrays: elements */
    uint32_t elem_max;       /* arrays of strings: bytes per string */
    size_t offset;           /* offsetof the member */
    size_t count_off;        /* arrays: offsetof the count member */
    size_t elem_size;        /* arrays: sizeof an element */
    const mm_type_desc *sub; /* structs, arrays of structs */
} mm_field;

struct mm_type_desc {
    const char *name;
    size_t size;
    const mm_field *fields;
    size_t nfields;
};

/* Arenas: what a decode allocates from (freed all at once). */
typedef struct mm_arena mm_arena;
/* |n| bytes aligned for any member, or NULL past MM_TYPED_ALLOC_MAX or
 * when out of memory. */
MM_EXTERN void *mm_arena_alloc(mm_arena *a, size_t n);

/*
 * A wire encoding for a message type's values.  |content| is what encode
 * produces (MM_CONTENT_JSON or MM_CONTENT_RAW).  encode writes a malloc'd
 * buffer to |*out| (the caller frees it) and returns 0 or MM_E*; decode
 * fills |val| (zeroed, t->size bytes) from |data|, allocating what it
 * points to from |a|, and returns 0 or MM_EDECODE with one line in |err|.
 */
typedef struct mm_codec {
    const char *name;
    int content;
    int (*encode)(const mm_type_desc *t, const void *val, void **out,
                  size_t *len);
    int (*decode)(const mm_type_desc *t, const void *data, size_t len,
                  void *val, mm_arena *a, char *err, size_t errlen);
} mm_codec;

/* JSON (the default) and a compact binary encoding derived from the same
 * field tables: fields in order, integers little-endian at their width,
 * doubles as IEEE 754, bools one byte, strings, byte strings and arrays
 * as a 32-bit little-endian count and their contents. */
MM_EXTERN extern const mm_codec mm_codec_json;
MM_EXTERN extern const mm_codec mm_codec_binary;

typedef struct mm_msg_desc {
    const char *name; /* the message type on the wire */
    const mm_type_desc *req, *rep;
    const mm_codec *codec; /* NULL = mm_codec_json */
} mm_msg_desc;

/* ---- values ------------------------------------------------------------ */

/* Encodes |val| with |codec| (NULL: JSON). */
MM_EXTERN int mm_typed_encode(const mm_type_desc *t, const mm_codec *codec,
                              const void *val, void **out, size_t *len);
/* Decodes into a new value (one allocation owner: mm_typed_free). */
MM_EXTERN int mm_typed_decode(const mm_type_desc *t, const mm_codec *codec,
                              const void *data, size_t len, void **val,
                              char *err, size_t errlen);
/* A deep copy of |val| in one heap block (mm_typed_free); NULL on ENOMEM. */
MM_EXTERN void *mm_typed_clone(const mm_type_desc *t, const void *val);
/* Frees a value from mm_typed_decode, mm_typed_clone or a typed call. */
MM_EXTERN void mm_typed_free(void *val);
/* Inside a typed handler: a formatted string that lives until the
 * handler's reply is sent (NULL out of memory or outside a handler). */
MM_EXTERN const char *mm_typed_printf(mm_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- messages ------------------------------------------------------------ */

/* The message carrying |req| to |to|: a pointer to a copy when |to| is on
 * |n|, encoded with the codec otherwise.  NULL on ENOMEM or when the
 * value cannot be encoded. */
MM_EXTERN mm_msg *mm_typed_msg_new(mm_node *n, const mm_endpoint *to,
                                   const mm_msg_desc *d, const void *req);
/* The reply value of a typed call's |reply| message: 0 and |*val| (owned
 * by the caller, mm_typed_free), or MM_EDECODE with a text in |err|. */
MM_EXTERN int mm_typed_reply_take(const mm_msg_desc *d, mm_msg *reply,
                                  void **val, char *err, size_t errlen);
/* A blocking typed call (mm_call rules).  On 0 |*rep| is the caller's. */
MM_EXTERN int mm_typed_call(mm_node *n, const mm_endpoint *to,
                            const mm_msg_desc *d, const void *req, void **rep);
/* An asynchronous typed call: |adapt|(ucb, data, status, rep) runs once,
 * with |rep| borrowed for its duration (NULL on an error).  The stubs
 * pass their message's adapter and the typed callback. */
typedef void (*mm_typed_adapter)(void (*ucb)(void), void *data, int status,
                                 const void *rep);
MM_EXTERN int mm_typed_send(mm_node *n, const mm_endpoint *to,
                            const mm_msg_desc *d, const void *req,
                            mm_typed_adapter adapt, void (*ucb)(void),
                            void *data);
MM_EXTERN int mm_typed_tell(mm_node *n, const mm_endpoint *to,
                            const mm_msg_desc *d, const void *req);

/* ---- handlers (used by MM_HANDLES) ------------------------------------- */

typedef struct mm_typed_turn {
    const void *req;
    void *req_mem; /* decoded value (freed by _end) */
    size_t scratch_mark;
} mm_typed_turn;
/* Decodes (or takes) the request; nonzero: it answered the caller with
 * MM_EDECODE and the text, and the handler is not to run.  The request's
 * strings may point into |msg|'s bytes (JSON strings without escapes are
 * decoded in place): keep |msg| as it is until mm_typed_end. */
MM_EXTERN int mm_typed_begin(mm_ctx *ctx, mm_msg *msg, const mm_msg_desc *d,
                             mm_typed_turn *t);
/* Sends |rep| as the reply of a call when |rc| >= 0; returns |rc|. */
MM_EXTERN int mm_typed_end(mm_ctx *ctx, mm_msg *msg, const mm_msg_desc *d,
                           mm_typed_turn *t, const void *rep, int rc);

/* ---- declarations -------------------------------------------------------- */

/* Field kinds of MM_MESSAGE and MM_STRUCT_TYPE lists. */
#define MM_I8(n) (I8, n)
#define MM_I16(n) (I16, n)
#define MM_I32(n) (I32, n)
#define MM_I64(n) (I64, n)
#define MM_U8(n) (U8, n)
#define MM_U16(n) (U16, n)
#define MM_U32(n) (U32, n)
#define MM_U64(n) (U64, n)
#define MM_F64(n) (F64, n)
#define MM_BOOL(n) (BOOL, n)
#define MM_STR(n, max) (STR, n, max)
#define MM_BYTES(n, max) (BYTES, n, max)
#define MM_STRUCT(n, type) (STRUCT, n, type)
/* const T *n; size_t n_count; with T one of I8 ... U64, F64, BOOL. */
#define MM_ARRAY(n, elem, max) (ARRAY, n, elem, max)
#define MM_STR_ARRAY(n, strmax, max) (STRARRAY, n, strmax, max)
#define MM_STRUCT_ARRAY(n, type, max) (STRUCTARRAY, n, type, max)
/* The only field of a message without fields. */
#define MM_NONE (NONE, mm_none_)
/* A field that may be missing (zero then). */
#define MM_OPT(f) (OPT, MM__UNPAREN f)

/* A nested struct type usable in MM_STRUCT / MM_STRUCT_ARRAY. */
#define MM_STRUCT_TYPE(T, fields)                                              \
    typedef struct T {                                                         \
        MM__FE(MM__MEMBER, T, MM__UNPAREN fields)                              \
    } T;                                                                       \
    static const mm_type_desc T##_desc;                                        \
    static const mm_field T##_fields[]                                         \
        __attribute__((unused)) = {MM__FE(MM__FIELD, T, MM__UNPAREN fields)};  \
    static const mm_type_desc T##_desc __attribute__((unused)) = {             \
        #T, sizeof(T), T##_fields, sizeof(T##_fields) / sizeof(T##_fields[0])}

#define MM_MESSAGE(id, wire, req_fields, rep_fields)                           \
    MM_MESSAGE_CODEC(id, wire, NULL, req_fields, rep_fields)

/* The same with a codec for the wire (&mm_codec_binary or one's own). */
#define MM_MESSAGE_CODEC(id, wire, codec, req_fields, rep_fields)              \
    MM_STRUCT_TYPE(id##_req, req_fields);                                      \
    MM_STRUCT_TYPE(id##_rep, rep_fields);                                      \
    static const char id##_wire_[] __attribute__((unused)) = wire;             \
    static const mm_msg_desc id##_desc __attribute__((unused)) = {             \
        id##_wire_, &id##_req_desc, &id##_rep_desc, (codec)};                  \
    typedef void (*id##_cb)(void *data, int status, const id##_rep *rep);      \
    static inline void id##_adapt_(void (*ucb)(void), void *data, int status,  \
                                   const void *rep)                            \
    {                                                                          \
        ((id##_cb)ucb)(data, status, (const id##_rep *)rep);                   \
    }                                                                          \
    static inline int id##_call(mm_node *mm_n_, const mm_endpoint *mm_to_,     \
                                const id##_req *mm_req_, id##_rep **mm_rep_)   \
    {                                                                          \
        void *v = NULL;                                                        \
        int rc = mm_typed_call(mm_n_, mm_to_, &id##_desc, mm_req_, &v);        \
        *mm_rep_ = (id##_rep *)v;                                              \
        return rc;                                                             \
    }                                                                          \
    static inline int id(mm_node *mm_n_,                                       \
                         const mm_endpoint *mm_to_ MM__FE(                     \
                             MM__PARAM, _, MM__UNPAREN req_fields),            \
                         id##_rep **mm_rep_)                                   \
    {                                                                          \
        id##_req mm_r_;                                                        \
        memset(&mm_r_, 0, sizeof(mm_r_));                                      \
        MM__FE(MM__ASSIGN, mm_r_, MM__UNPAREN req_fields)                      \
        return id##_call(mm_n_, mm_to_, &mm_r_, mm_rep_);                      \
    }                                                                          \
    static inline int id##_send(mm_node *mm_n_, const mm_endpoint *mm_to_,     \
                                const id##_req *mm_req_, id##_cb mm_cb_,       \
                                void *mm_data_)                                \
    {                                                                          \
        return mm_typed_send(mm_n_, mm_to_, &id##_desc, mm_req_, id##_adapt_,  \
                             (void (*)(void))mm_cb_, mm_data_);                \
    }                                                                          \
    static inline int id##_tell(mm_node *mm_n_, const mm_endpoint *mm_to_,     \
                                const id##_req *mm_req_)                       \
    {                                                                          \
        return mm_typed_tell(mm_n_, mm_to_, &id##_desc, mm_req_);              \
    }                                                                          \
    typedef int id##_unused_

/*
 * Declares the dispatch function of typed handler |fn| for message |id|:
 *   int fn(mm_ctx *ctx, S *state, const id_req *in, id_rep *out);
 * (S any struct: the state is passed as a void pointer).
 */
#define MM_HANDLES(id, fn)                                                     \
    static int fn##_typed_(mm_ctx *ctx, void *state, mm_msg *msg)              \
    {                                                                          \
        mm_typed_turn t;                                                       \
        id##_rep out;                                                          \
        if (mm_typed_begin(ctx, msg, &id##_desc, &t) != 0) return 0;           \
        memset(&out, 0, sizeof(out));                                          \
        return mm_typed_end(ctx, msg, &id##_desc, &t, &out,                    \
                            fn(ctx, state, (const id##_req *)t.req, &out));    \
    }                                                                          \
    typedef int fn##_unused_

/* An entry of MM_ACTOR_TYPE's handler list. */
#define MM_TYPED(id, fn)                                                       \
    {                                                                          \
        id##_wire_, fn##_typed_, MM_HANDLER_TYPED                              \
    }

/* ---- machinery of the macros above -------------------------------------- */

#define MM__UNPAREN(...) __VA_ARGS__
#define MM__CALL(f, args) f args
#define MM__CAT(a, b) MM__CAT_(a, b)
#define MM__CAT_(a, b) a##b
#define MM__NARG(...)                                                          \
    MM__NARG_(__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, \
              11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define MM__NARG_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, \
                  _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, N, ...)    \
    N
/* Up to 24 fields per struct. */
#define MM__FE(m, d, ...)                                                      \
    MM__CAT(MM__FE_, MM__NARG(__VA_ARGS__))(m, d, __VA_ARGS__)
#define MM__FE_1(m, d, x) m(d, x)
#define MM__FE_2(m, d, x, ...) m(d, x) MM__FE_1(m, d, __VA_ARGS__)
#define MM__FE_3(m, d, x, ...) m(d, x) MM__FE_2(m, d, __VA_ARGS__)
#define MM__FE_4(m, d, x, ...) m(d, x) MM__FE_3(m, d, __VA_ARGS__)
#define MM__FE_5(m, d, x, ...) m(d, x) MM__FE_4(m, d, __VA_ARGS__)
#define MM__FE_6(m, d, x, ...) m(d, x) MM__FE_5(m, d, __VA_ARGS__)
#define MM__FE_7(m, d, x, ...) m(d, x) MM__FE_6(m, d, __VA_ARGS__)
#define MM__FE_8(m, d, x, ...) m(d, x) MM__FE_7(m, d, __VA_ARGS__)
#define MM__FE_9(m, d, x, ...) m(d, x) MM__FE_8(m, d, __VA_ARGS__)
#define MM__FE_10(m, d, x, ...) m(d, x) MM__FE_9(m, d, __VA_ARGS__)
#define MM__FE_11(m, d, x, ...) m(d, x) MM__FE_10(m, d, __VA_ARGS__)
#define MM__FE_12(m, d, x, ...) m(d, x) MM__FE_11(m, d, __VA_ARGS__)
#define MM__FE_13(m, d, x, ...) m(d, x) MM__FE_12(m, d, __VA_ARGS__)
#define MM__FE_14(m, d, x, ...) m(d, x) MM__FE_13(m, d, __VA_ARGS__)
#define MM__FE_15(m, d, x, ...) m(d, x) MM__FE_14(m, d, __VA_ARGS__)
#define MM__FE_16(m, d, x, ...) m(d, x) MM__FE_15(m, d, __VA_ARGS__)
#define MM__FE_17(m, d, x, ...) m(d, x) MM__FE_16(m, d, __VA_ARGS__)
#define MM__FE_18(m, d, x, ...) m(d, x) MM__FE_17(m, d, __VA_ARGS__)
#define MM__FE_19(m, d, x, ...) m(d, x) MM__FE_18(m, d, __VA_ARGS__)
#define MM__FE_20(m, d, x, ...) m(d, x) MM__FE_19(m, d, __VA_ARGS__)
#define MM__FE_21(m, d, x, ...) m(d, x) MM__FE_20(m, d, __VA_ARGS__)
#define MM__FE_22(m, d, x, ...) m(d, x) MM__FE_21(m, d, __VA_ARGS__)
#define MM__FE_23(m, d, x, ...) m(d, x) MM__FE_22(m, d, __VA_ARGS__)
#define MM__FE_24(m, d, x, ...) m(d, x) MM__FE_23(m, d, __VA_ARGS__)

/* C types of array elements. */
#define MM__CT_I8 int8_t
#define MM__CT_I16 int16_t
#define MM__CT_I32 int32_t
#define MM__CT_I64 int64_t
#define MM__CT_U8 uint8_t
#define MM__CT_U16 uint16_t
#define MM__CT_U32 uint32_t
#define MM__CT_U64 uint64_t
#define MM__CT_F64 double
#define MM__CT_BOOL bool

/* Struct members. */
#define MM__MEMBER(d, t) MM__CALL(MM__MEMBER_I, t)
#define MM__MEMBER_I(k, ...) MM__MEMBER_##k(__VA_ARGS__)
#define MM__MEMBER_OPT(k, ...) MM__MEMBER_##k(__VA_ARGS__)
#define MM__MEMBER_NONE(n) char n;
#define MM__MEMBER_I8(n) int8_t n;
#define MM__MEMBER_I16(n) int16_t n;
#define MM__MEMBER_I32(n) int32_t n;
#define MM__MEMBER_I64(n) int64_t n;
#define MM__MEMBER_U8(n) uint8_t n;
#define MM__MEMBER_U16(n) uint16_t n;
#define MM__MEMBER_U32(n) uint32_t n;
#define MM__MEMBER_U64(n) uint64_t n;
#define MM__MEMBER_F64(n) double n;
#define MM__MEMBER_BOOL(n) bool n;
#define MM__MEMBER_STR(n, max) const char *n;
#define MM__MEMBER_BYTES(n, max) mm_bytes n;
#define MM__MEMBER_STRUCT(n, T) struct T n;
#define MM__MEMBER_ARRAY(n, k, max)                                            \
    const MM__CT_##k *n;                                                       \
    size_t n##_count;
#define MM__MEMBER_STRARRAY(n, smax, max)                                      \
    const char *const *n;                                                      \
    size_t n##_count;
#define MM__MEMBER_STRUCTARRAY(n, T, max)                                      \
    const struct T *n;                                                         \
    size_t n##_count;

/* Field table entries:
 * name, kind, elem, flags, max, elem_max, offset, count_off, elem_size, sub */
#define MM__FIELD(S, t) MM__CALL(MM__FIELD_I, (S, 0, MM__UNPAREN t))
#define MM__FIELD_I(S, fl, k, ...) MM__FIELD_##k(S, fl, __VA_ARGS__)
#define MM__FIELD_OPT(S, fl, k, ...)                                           \
    MM__FIELD_##k(S, MM_FIELD_OPTIONAL, __VA_ARGS__)
#define MM__FIELD_SC(S, fl, n, K)                                              \
    {#n, K, 0, fl, 0, 0, offsetof(S, n), 0, 0, NULL},
#define MM__FIELD_NONE(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_NONE)
#define MM__FIELD_I8(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_I8)
#define MM__FIELD_I16(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_I16)
#define MM__FIELD_I32(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_I32)
#define MM__FIELD_I64(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_I64)
#define MM__FIELD_U8(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_U8)
#define MM__FIELD_U16(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_U16)
#define MM__FIELD_U32(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_U32)
#define MM__FIELD_U64(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_U64)
#define MM__FIELD_F64(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_F64)
#define MM__FIELD_BOOL(S, fl, n) MM__FIELD_SC(S, fl, n, MM_K_BOOL)
#define MM__FIELD_STR(S, fl, n, max)                                           \
    {#n, MM_K_STR, 0, fl, (max), 0, offsetof(S, n), 0, 0, NULL},
#define MM__FIELD_BYTES(S, fl, n, max)                                         \
    {#n, MM_K_BYTES, 0, fl, (max), 0, offsetof(S, n), 0, 0, NULL},
#define MM__FIELD_STRUCT(S, fl, n, T)                                          \
    {#n, MM_K_STRUCT, 0, fl, 0, 0, offsetof(S, n), 0, 0, &T##_desc},
#define MM__FIELD_ARRAY(S, fl, n, k, max)                                      \
    {#n,                                                                       \
     MM_K_ARRAY,                                                               \
     MM_K_##k,                                                                 \
     fl,                                                                       \
     (max),                                                                    \
     0,                                                                        \
     offsetof(S, n),                                                           \
     offsetof(S, n##_count),                                                   \
     sizeof(MM__CT_##k),                                                       \
     NULL},
#define MM__FIELD_STRARRAY(S, fl, n, smax, max)                                \
    {#n,                                                                       \
     MM_K_ARRAY,                                                               \
     MM_K_STR,                                                                 \
     fl,                                                                       \
     (max),                                                                    \
     (smax),                                                                   \
     offsetof(S, n),                                                           \
     offsetof(S, n##_count),                                                   \
     sizeof(const char *),                                                     \
     NULL},
#define MM__FIELD_STRUCTARRAY(S, fl, n, T, max)                                \
    {#n,        MM_K_ARRAY, MM_K_STRUCT,    fl,                                \
     (max),     0,          offsetof(S, n), offsetof(S, n##_count),            \
     sizeof(T), &T##_desc},

/* Stub parameters and their assignment to the request struct. */
#define MM__PARAM(d, t) MM__CALL(MM__PARAM_I, t)
#define MM__PARAM_I(k, ...) MM__PARAM_##k(__VA_ARGS__)
#define MM__PARAM_OPT(k, ...) MM__PARAM_##k(__VA_ARGS__)
#define MM__PARAM_NONE(n)
#define MM__PARAM_I8(n) , int8_t n
#define MM__PARAM_I16(n) , int16_t n
#define MM__PARAM_I32(n) , int32_t n
#define MM__PARAM_I64(n) , int64_t n
#define MM__PARAM_U8(n) , uint8_t n
#define MM__PARAM_U16(n) , uint16_t n
#define MM__PARAM_U32(n) , uint32_t n
#define MM__PARAM_U64(n) , uint64_t n
#define MM__PARAM_F64(n) , double n
#define MM__PARAM_BOOL(n) , bool n
#define MM__PARAM_STR(n, max) , const char *n
#define MM__PARAM_BYTES(n, max) , mm_bytes n
#define MM__PARAM_STRUCT(n, T) , T n
#define MM__PARAM_ARRAY(n, k, max) , const MM__CT_##k *n, size_t n##_count
#define MM__PARAM_STRARRAY(n, smax, max)                                       \
    , const char *const *n, size_t n##_count
#define MM__PARAM_STRUCTARRAY(n, T, max) , const T *n, size_t n##_count

#define MM__ASSIGN(r, t) MM__CALL(MM__ASSIGN_I, (r, MM__UNPAREN t))
#define MM__ASSIGN_I(r, k, ...) MM__ASSIGN_##k(r, __VA_ARGS__)
#define MM__ASSIGN_OPT(r, k, ...) MM__ASSIGN_##k(r, __VA_ARGS__)
#define MM__ASSIGN_NONE(r, n)
#define MM__ASSIGN_1(r, n) r.n = n;
#define MM__ASSIGN_I8(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_I16(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_I32(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_I64(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_U8(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_U16(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_U32(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_U64(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_F64(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_BOOL(r, n) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_STR(r, n, max) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_BYTES(r, n, max) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_STRUCT(r, n, T) MM__ASSIGN_1(r, n)
#define MM__ASSIGN_ARRAY(r, n, k, max) r.n = n, r.n##_count = n##_count;
#define MM__ASSIGN_STRARRAY(r, n, smax, max) r.n = n, r.n##_count = n##_count;
#define MM__ASSIGN_STRUCTARRAY(r, n, T, max) r.n = n, r.n##_count = n##_count;

#ifdef __cplusplus
}
#endif
#endif /* MURMER_TYPED_H */
