/*
 * typed.c — typed messages (murmer_typed.h): values described by field
 * tables, their JSON and binary codecs, arenas, and the typed send, call
 * and handler paths.
 *
 * A value is a C struct whose pointers (strings, byte strings, arrays)
 * point into the same owner: an arena whose first chunk starts with the
 * struct, so that mm_typed_free() finds the chain from the value alone.
 * Local sends move a copy of the request by pointer: inside the message
 * (inl[]) when the type has no pointers and fits, else one heap block.
 * Remote sends encode; the receiver decodes into an arena before the
 * handler runs (a value that lives one turn may also point into the
 * message it was decoded from: jp_str_insitu), and its reply takes the
 * form of the request.
 */
#include "runtime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "crypto.h"
#include "include/murmer_typed.h"
#include "jsonv.h"

/* ---- arenas ---------------------------------------------------------------
 */

#define ALIGN 16u

/* Strings decoded in place (jp_str_insitu): the closing quotes that were
 * overwritten with NULs, put back when the value is freed. */
#define FIX_MAX 4

struct blk {
    struct blk *next; /* head: further chunks; chunks: the next one */
    size_t used, cap;
    size_t total; /* head: bytes of every chunk of the arena */
    char *fix[FIX_MAX];
    unsigned nfix;
    _Alignas(16) unsigned char mem[];
};

struct mm_arena {
    struct blk *head, *cur;
};

static size_t
align_up(size_t n)
{
    return (n + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

/* An arena whose first chunk holds |first| bytes (the value first). */
static int
arena_init(mm_arena *a, size_t first)
{
    first = align_up(first ? first : 1);
    if (first > MM_TYPED_ALLOC_MAX) return MM_EDECODE;
    struct blk *b = mm__malloc(sizeof(*b) + first);
    if (!b) return UV_ENOMEM;
    b->next = NULL;
    b->used = 0;
    b->cap = first;
    b->total = first;
    b->nfix = 0;
    a->head = a->cur = b;
    return 0;
}

static void *arena_grow(mm_arena *a, size_t n);

/* mm_arena_alloc, inline for the codecs here (no call through the PLT). */
static inline void *
arena_alloc(mm_arena *a, size_t n)
{
    n = align_up(n ? n : 1);
    struct blk *c = a->cur;
    if (MM_LIKELY(n <= c->cap - c->used)) {
        void *p = c->mem + c->used;
        c->used += n;
        return p;
    }
    return arena_grow(a, n);
}

void *
mm_arena_alloc(mm_arena *a, size_t n)
{
    return arena_alloc(a, n);
}

/* A new chunk for |n| (aligned) bytes. */
static __attribute__((noinline)) void *
arena_grow(mm_arena *a, size_t n)
{
    size_t cap = n > 4096 ? n : 4096;
    if (cap > MM_TYPED_ALLOC_MAX ||
        a->head->total + cap > (size_t)MM_TYPED_ALLOC_MAX)
        return NULL;
    struct blk *b = mm__malloc(sizeof(*b) + cap);
    if (!b) return NULL;
    b->used = n;
    b->cap = cap;
    b->total = 0;
    b->next = a->head->next;
    a->head->next = b;
    a->head->total += cap;
    a->cur = b;
    return b->mem;
}

/* A first chunk per thread for values that live one turn (a request
 * while its handler runs, a reply while its callback runs): most decodes
 * then allocate nothing. */
#define TLS_CHUNK 4096
static MM_TLS _Alignas(
    16) unsigned char tls_chunk[sizeof(struct blk) + TLS_CHUNK];
static MM_TLS int tls_chunk_busy;

static int
arena_init_turn(mm_arena *a, size_t first)
{
    first = align_up(first ? first : 1);
    if (tls_chunk_busy || first > TLS_CHUNK) return arena_init(a, first);
    struct blk *b = (struct blk *)tls_chunk;
    b->next = NULL;
    b->used = 0;
    b->cap = TLS_CHUNK;
    b->total = TLS_CHUNK;
    b->nfix = 0;
    a->head = a->cur = b;
    tls_chunk_busy = 1;
    return 0;
}

static void
arena_free_head(struct blk *h)
{
    for (unsigned i = 0; i < h->nfix; i++)
        *h->fix[i] = '"';
    struct blk *b = h->next;
    while (b) {
        struct blk *nx = b->next;
        mm__free(b);
        b = nx;
    }
    if (h == (struct blk *)tls_chunk)
        tls_chunk_busy = 0;
    else
        mm__free(h);
}

/* mm_typed_free, for the paths here (no call through the PLT). */
static inline void
typed_free(void *val)
{
    if (!val) return;
    arena_free_head(
        (struct blk *)((unsigned char *)val - offsetof(struct blk, mem)));
}

void
mm_typed_free(void *val)
{
    typed_free(val);
}

static void
typed_dtor(void *val)
{
    mm_typed_free(val);
}

/* ---- error texts ---------------------------------------------------------
 */

/* The path of the field being decoded ("a.b[2].c"), for error texts. */
struct dctx {
    mm_arena *a;
    char *err;
    size_t errlen;
    const char *path[MM_TYPED_DEPTH_MAX + 1];
    int depth;
};

static int derr(struct dctx *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
derr(struct dctx *d, const char *fmt, ...)
{
    if (!d->err || !d->errlen) return MM_EDECODE;
    char path[256];
    size_t o = 0;
    path[0] = '\0';
    for (int i = 0; i < d->depth && o < sizeof(path); i++) {
        int w = snprintf(path + o, sizeof(path) - o, "%s%s", i ? "." : "",
                         d->path[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path[0])
        snprintf(d->err, d->errlen, "field '%s': %s", path, msg);
    else
        snprintf(d->err, d->errlen, "%s", msg);
    return MM_EDECODE;
}

static void *
dalloc(struct dctx *d, size_t n)
{
    return arena_alloc(d->a, n);
}

#define DALLOC_FAIL(d)                                                         \
    derr((d), "value needs more than %u bytes", (unsigned)MM_TYPED_ALLOC_MAX)

/* ---- shapes ---------------------------------------------------------------
 */

static int
kind_is_int(int k)
{
    return k >= MM_K_I8 && k <= MM_K_U64;
}

static size_t
scalar_size(int k)
{
    switch (k) {
    case MM_K_I8:
    case MM_K_U8:
    case MM_K_BOOL:
        return 1;
    case MM_K_I16:
    case MM_K_U16:
        return 2;
    case MM_K_I32:
    case MM_K_U32:
        return 4;
    default:
        return 8;
    }
}

/* Whether values of |t| hold no pointers (a shallow copy is a copy). */
static int
type_flat(const mm_type_desc *t, int depth)
{
    if (depth > MM_TYPED_DEPTH_MAX) return 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        if (f->kind == MM_K_STR || f->kind == MM_K_BYTES ||
            f->kind == MM_K_ARRAY)
            return 0;
        if (f->kind == MM_K_STRUCT && !type_flat(f->sub, depth + 1)) return 0;
    }
    return 1;
}

static int64_t
get_int(const void *p, int k)
{
    switch (k) {
    case MM_K_I8:
        return *(const int8_t *)p;
    case MM_K_I16:
        return *(const int16_t *)p;
    case MM_K_I32:
        return *(const int32_t *)p;
    case MM_K_I64:
        return *(const int64_t *)p;
    case MM_K_U8:
        return *(const uint8_t *)p;
    case MM_K_U16:
        return *(const uint16_t *)p;
    case MM_K_U32:
        return *(const uint32_t *)p;
    default:
        return (int64_t) * (const uint64_t *)p;
    }
}

static void
set_int(void *p, int k, uint64_t v)
{
    switch (k) {
    case MM_K_I8:
        *(int8_t *)p = (int8_t)v;
        break;
    case MM_K_I16:
        *(int16_t *)p = (int16_t)v;
        break;
    case MM_K_I32:
        *(int32_t *)p = (int32_t)v;
        break;
    case MM_K_I64:
        *(int64_t *)p = (int64_t)v;
        break;
    case MM_K_U8:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case MM_K_U16:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case MM_K_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(uint64_t *)p = v;
        break;
    }
}

/* The range of an integer kind (as doubles for JSON numbers). */
static void
int_range(int k, int64_t *lo, uint64_t *hi)
{
    switch (k) {
    case MM_K_I8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        break;
    case MM_K_I16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        break;
    case MM_K_I32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        break;
    case MM_K_I64:
        *lo = INT64_MIN, *hi = INT64_MAX;
        break;
    case MM_K_U8:
        *lo = 0, *hi = UINT8_MAX;
        break;
    case MM_K_U16:
        *lo = 0, *hi = UINT16_MAX;
        break;
    case MM_K_U32:
        *lo = 0, *hi = UINT32_MAX;
        break;
    default:
        *lo = 0, *hi = UINT64_MAX;
        break;
    }
}

/* ---- deep copies ------------------------------------------------------------
 */

static size_t measure_struct(const mm_type_desc *t, const void *v, int depth);

static size_t
measure_elem(const mm_field *f, const void *p, int depth)
{
    if (f->elem == MM_K_STR) {
        const char *s = *(const char *const *)p;
        return s ? align_up(strlen(s) + 1) : 0;
    }
    if (f->elem == MM_K_STRUCT) return measure_struct(f->sub, p, depth + 1);
    return 0;
}

/* Bytes a deep copy of |v|'s pointers needs (beyond the struct itself). */
static size_t
measure_struct(const mm_type_desc *t, const void *v, int depth)
{
    size_t n = 0;
    if (depth > MM_TYPED_DEPTH_MAX) return 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        const unsigned char *p = (const unsigned char *)v + f->offset;
        switch (f->kind) {
        case MM_K_STR: {
            const char *s = *(const char *const *)p;
            if (s) n += align_up(strlen(s) + 1);
            break;
        }
        case MM_K_BYTES:
            n += align_up(((const mm_bytes *)p)->len);
            break;
        case MM_K_STRUCT:
            n += measure_struct(f->sub, p, depth + 1);
            break;
        case MM_K_ARRAY: {
            size_t cnt =
                *(const size_t *)((const unsigned char *)v + f->count_off);
            const unsigned char *arr = *(const unsigned char *const *)p;
            if (!cnt || !arr) break;
            n += align_up(cnt * f->elem_size);
            if (f->elem == MM_K_STR || f->elem == MM_K_STRUCT)
                for (size_t j = 0; j < cnt; j++)
                    n += measure_elem(f, arr + j * f->elem_size, depth);
            break;
        }
        default:
            break;
        }
    }
    return n;
}

static int copy_struct(mm_arena *a, const mm_type_desc *t, const void *src,
                       void *dst, int depth);

static const char *
copy_str(mm_arena *a, const char *s)
{
    if (!s) return NULL;
    size_t len = strlen(s);
    char *d = arena_alloc(a, len + 1);
    if (d) memcpy(d, s, len + 1);
    return d;
}

/* Makes |dst| (a shallow copy of |src|) own copies of what |src| points
 * to. */
static int
copy_struct(mm_arena *a, const mm_type_desc *t, const void *src, void *dst,
            int depth)
{
    if (depth > MM_TYPED_DEPTH_MAX) return MM_EINVAL;
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        const unsigned char *sp = (const unsigned char *)src + f->offset;
        unsigned char *dp = (unsigned char *)dst + f->offset;
        switch (f->kind) {
        case MM_K_STR: {
            const char *s = *(const char *const *)sp;
            if (s && !(*(const char **)dp = copy_str(a, s))) return UV_ENOMEM;
            break;
        }
        case MM_K_BYTES: {
            const mm_bytes *sb = (const mm_bytes *)sp;
            mm_bytes *db = (mm_bytes *)dp;
            if (!sb->len) {
                db->data = NULL;
                break;
            }
            uint8_t *d = arena_alloc(a, sb->len);
            if (!d) return UV_ENOMEM;
            memcpy(d, sb->data, sb->len);
            db->data = d;
            break;
        }
        case MM_K_STRUCT: {
            int rc = copy_struct(a, f->sub, sp, dp, depth + 1);
            if (rc) return rc;
            break;
        }
        case MM_K_ARRAY: {
            size_t cnt =
                *(const size_t *)((const unsigned char *)src + f->count_off);
            const unsigned char *arr = *(const unsigned char *const *)sp;
            if (!cnt || !arr) {
                *(void **)dp = NULL;
                *(size_t *)((unsigned char *)dst + f->count_off) = 0;
                break;
            }
            unsigned char *d = arena_alloc(a, cnt * f->elem_size);
            if (!d) return UV_ENOMEM;
            memcpy(d, arr, cnt * f->elem_size);
            for (size_t j = 0; j < cnt; j++) {
                if (f->elem == MM_K_STR) {
                    const char *s =
                        *(const char *const *)(arr + j * f->elem_size);
                    if (s && !(*(const char **)(d + j * f->elem_size) =
                                   copy_str(a, s)))
                        return UV_ENOMEM;
                } else if (f->elem == MM_K_STRUCT) {
                    int rc = copy_struct(a, f->sub, arr + j * f->elem_size,
                                         d + j * f->elem_size, depth + 1);
                    if (rc) return rc;
                }
            }
            *(void **)dp = d;
            break;
        }
        default:
            break;
        }
    }
    return 0;
}

void *
mm_typed_clone(const mm_type_desc *t, const void *val)
{
    mm_arena a;
    size_t need = align_up(t->size) + measure_struct(t, val, 0);
    if (arena_init(&a, need)) return NULL;
    void *v = arena_alloc(&a, t->size);
    memcpy(v, val, t->size);
    if (copy_struct(&a, t, val, v, 0)) {
        arena_free_head(a.head);
        return NULL;
    }
    return v;
}

/* ---- output buffers ---------------------------------------------------------
 */

struct obuf {
    char *p;
    size_t len, cap;
    int oom;
    int inl; /* p is a message's inl[]: growing moves on to enc_buf */
    int tls; /* p is enc_buf's storage, taken (enc_msg gives it back) */
};

/* enc_msg's buffer for the built-in codecs; kept by shard threads only
 * (freed by mm__typed_thread_free). */
static MM_TLS struct obuf enc_buf;

static __attribute__((noinline)) int
ob_grow(struct obuf *b, size_t n)
{
    if (b->oom) return -1;
    const char *in = NULL;
    if (b->inl) {
        /* Past the message's own room: on in the per-thread buffer. */
        in = b->p;
        b->p = enc_buf.p;
        b->cap = enc_buf.cap;
        b->inl = 0;
        b->tls = 1;
        enc_buf.p = NULL;
        enc_buf.cap = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n)
            cap *= 2;
        char *p = mm__realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (in && b->len) memcpy(b->p, in, b->len);
    return 0;
}

static inline int
ob_reserve(struct obuf *b, size_t n)
{
    if (MM_LIKELY(b->len + n <= b->cap)) return 0;
    return ob_grow(b, n);
}

static inline void
ob_put(struct obuf *b, const void *s, size_t n)
{
    if (ob_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void
ob_c(struct obuf *b, char c)
{
    if (ob_reserve(b, 1)) return;
    b->p[b->len++] = c;
}

/* ---- JSON encoding ---------------------------------------------------------
 */

static __attribute__((noinline)) void
js_str_esc(struct obuf *b, const char *p, const char *e)
{
    static const char hex[] = "0123456789abcdef";
    for (;;) {
        const char *q = mm__json_plain_end(p, e);
        ob_put(b, p, (size_t)(q - p));
        if (q == e) break;
        unsigned char c = (unsigned char)*q;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"':
            ob_put(b, "\\\"", 2);
            break;
        case '\\':
            ob_put(b, "\\\\", 2);
            break;
        case '\n':
            ob_put(b, "\\n", 2);
            break;
        case '\r':
            ob_put(b, "\\r", 2);
            break;
        case '\t':
            ob_put(b, "\\t", 2);
            break;
        default:
            ob_put(b, esc, 6);
            break;
        }
        p = q + 1;
    }
}

/* Most strings are one plain run: quoted in one step. */
static inline void
js_str(struct obuf *b, const char *s, size_t n)
{
    if (ob_reserve(b, n + 2)) return;
    const char *q = mm__json_plain_end(s, s + n);
    char *o = b->p + b->len;
    *o++ = '"';
    memcpy(o, s, (size_t)(q - s));
    b->len += 1 + (size_t)(q - s);
    if (MM_UNLIKELY(q != s + n)) js_str_esc(b, q, s + n);
    ob_c(b, '"');
}

#define TWO53 9007199254740992.0

static void
js_int(struct obuf *b, const void *p, int k)
{
    char t[32];
    int n;
    if (k == MM_K_U64) {
        uint64_t v = *(const uint64_t *)p;
        n = snprintf(t, sizeof(t), v > (uint64_t)TWO53 ? "\"%llu\"" : "%llu",
                     (unsigned long long)v);
    } else {
        int64_t v = get_int(p, k);
        int big = k == MM_K_I64 && (v > (int64_t)TWO53 || v < -(int64_t)TWO53);
        n = snprintf(t, sizeof(t), big ? "\"%lld\"" : "%lld", (long long)v);
    }
    ob_put(b, t, (size_t)n);
}

static void
js_f64(struct obuf *b, double v)
{
    char t[40];
    if (!isfinite(v)) {
        ob_put(b, "null", 4);
        return;
    }
    int n = snprintf(t, sizeof(t), "%.17g", v);
    ob_put(b, t, (size_t)n);
}

static void
js_bytes(struct obuf *b, const mm_bytes *v)
{
    size_t need = 4 * ((v->len + 2) / 3) + 1;
    ob_c(b, '"');
    if (v->len && !ob_reserve(b, need))
        b->len += mm__base64_encode(b->p + b->len, v->data, v->len);
    ob_c(b, '"');
}

static int js_struct(struct obuf *b, const mm_type_desc *t, const void *v,
                     int depth);

static int
js_value(struct obuf *b, int k, const mm_field *f, const void *p, int depth)
{
    switch (k) {
    case MM_K_F64:
        js_f64(b, *(const double *)p);
        break;
    case MM_K_BOOL:
        if (*(const bool *)p)
            ob_put(b, "true", 4);
        else
            ob_put(b, "false", 5);
        break;
    case MM_K_STR: {
        const char *s = *(const char *const *)p;
        if (s)
            js_str(b, s, strlen(s));
        else
            ob_put(b, "null", 4);
        break;
    }
    case MM_K_BYTES:
        js_bytes(b, p);
        break;
    case MM_K_STRUCT:
        return js_struct(b, f->sub, p, depth + 1);
    default:
        if (kind_is_int(k)) js_int(b, p, k);
        break;
    }
    return 0;
}

static int
js_struct(struct obuf *b, const mm_type_desc *t, const void *v, int depth)
{
    if (depth > MM_TYPED_DEPTH_MAX) return MM_EINVAL;
    int first = 1;
    ob_c(b, '{');
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        const unsigned char *p = (const unsigned char *)v + f->offset;
        if (f->kind == MM_K_NONE) continue;
        if (!first) ob_c(b, ',');
        first = 0;
        /* Field names are C identifiers: nothing to escape, and short (a
         * byte loop beats strlen and memcpy calls). */
        ob_c(b, '"');
        for (const char *c = f->name; *c; c++)
            ob_c(b, *c);
        if (ob_reserve(b, 2)) return 0;
        b->p[b->len++] = '"';
        b->p[b->len++] = ':';
        if (f->kind == MM_K_ARRAY) {
            size_t cnt =
                *(const size_t *)((const unsigned char *)v + f->count_off);
            const unsigned char *arr = *(const unsigned char *const *)p;
            ob_c(b, '[');
            for (size_t j = 0; arr && j < cnt; j++) {
                if (j) ob_c(b, ',');
                int rc = js_value(b, f->elem, f, arr + j * f->elem_size, depth);
                if (rc) return rc;
            }
            ob_c(b, ']');
        } else {
            int rc = js_value(b, f->kind, f, p, depth);
            if (rc) return rc;
        }
    }
    ob_c(b, '}');
    return 0;
}

static int
json_encode(const mm_type_desc *t, const void *val, void **out, size_t *len)
{
    struct obuf b = {0};
    int rc = js_struct(&b, t, val, 0);
    ob_c(&b, '\0');
    if (rc || b.oom) {
        mm__free(b.p);
        return rc ? rc : UV_ENOMEM;
    }
    *out = b.p;
    *len = b.len - 1;
    return 0;
}

/* ---- JSON decoding, direct
 * ---------------------------------------------------
 *
 * Strict RFC 8259 text straight into the struct: no tree, and integers
 * read exactly from their digits.  A struct has at most 64 fields (the
 * bitmap of the fields seen).
 */

struct jp {
    const char *p, *end, *start;
    struct dctx *d;
    int nul;    /* jp_string met \u0000 */
    int insitu; /* the input may be written (decode_new) */
};

static void
jp_ws_run(struct jp *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Compact JSON has no white space: one test, inline. */
static inline void
jp_ws(struct jp *j)
{
    if (MM_LIKELY(j->p < j->end && (unsigned char)*j->p > ' ')) return;
    jp_ws_run(j);
}

static int
jp_bad(struct jp *j)
{
    return derr(j->d, "invalid JSON at byte %zu", (size_t)(j->p - j->start));
}

/* What the next value is, for error texts. */
static const char *
jp_what(const struct jp *j)
{
    if (j->p >= j->end) return "nothing";
    switch (*j->p) {
    case '"':
        return "a string";
    case '{':
        return "an object";
    case '[':
        return "an array";
    case 't':
    case 'f':
        return "a bool";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

static int
hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/*
 * A string at j->p (the opening quote): its unescaped bytes go to |out|
 * (capacity |cap|; NULL: only checked) and their number to |*n|, which
 * may exceed |cap| (then nothing past cap was written).
 */
static int
jp_string(struct jp *j, char *out, size_t cap, size_t *n)
{
    size_t o = 0;
    if (j->p >= j->end || *j->p != '"') return jp_bad(j);
    j->p++;
    for (;;) {
        const char *q = mm__json_plain_end(j->p, j->end);
        size_t run = (size_t)(q - j->p);
        if (out && o + run <= cap) memcpy(out + o, j->p, run);
        o += run;
        j->p = q;
        if (q >= j->end || (unsigned char)*q < 0x20) return jp_bad(j);
        if (*q == '"') {
            j->p++;
            *n = o;
            return 0;
        }
        /* An escape. */
        if (j->end - q < 2) return jp_bad(j);
        char c = q[1], e;
        unsigned u;
        j->p = q + 2;
        switch (c) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '/':
            e = '/';
            break;
        case 'b':
            e = '\b';
            break;
        case 'f':
            e = '\f';
            break;
        case 'n':
            e = '\n';
            break;
        case 'r':
            e = '\r';
            break;
        case 't':
            e = '\t';
            break;
        case 'u': {
            if (j->end - j->p < 4 || hex4(j->p, &u)) return jp_bad(j);
            j->p += 4;
            if (u == 0) j->nul = 1;
            if (u >= 0xdc00 && u <= 0xdfff) return jp_bad(j);
            if (u >= 0xd800 && u <= 0xdbff) {
                unsigned lo;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    hex4(j->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return jp_bad(j);
                j->p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            unsigned char b[4];
            size_t k;
            if (u < 0x80) {
                b[0] = (unsigned char)u;
                k = 1;
            } else if (u < 0x800) {
                b[0] = (unsigned char)(0xc0 | (u >> 6));
                b[1] = (unsigned char)(0x80 | (u & 0x3f));
                k = 2;
            } else if (u < 0x10000) {
                b[0] = (unsigned char)(0xe0 | (u >> 12));
                b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
                b[2] = (unsigned char)(0x80 | (u & 0x3f));
                k = 3;
            } else {
                b[0] = (unsigned char)(0xf0 | (u >> 18));
                b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
                b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
                b[3] = (unsigned char)(0x80 | (u & 0x3f));
                k = 4;
            }
            if (out && o + k <= cap) memcpy(out + o, b, k);
            o += k;
            continue;
        }
        default:
            return jp_bad(j);
        }
        if (out && o + 1 <= cap) out[o] = e;
        o++;
    }
}

/* A number token at j->p: its extent, and whether it is an integer. */
static int
jp_number(struct jp *j, const char **s, size_t *len, int *is_int)
{
    const char *p = j->p, *e = j->end;
    *s = p;
    *is_int = 1;
    if (p < e && *p == '-') p++;
    if (p >= e || *p < '0' || *p > '9') return jp_bad(j);
    if (*p == '0')
        p++;
    else
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    if (p < e && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9') return jp_bad(j);
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return jp_bad(j);
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    *len = (size_t)(p - *s);
    j->p = p;
    return 0;
}

static int
jp_lit(struct jp *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return jp_bad(j);
    j->p += n;
    return 0;
}

/* Skips one value (checking it), at most |depth| levels deep. */
static int
jp_skip(struct jp *j, int depth)
{
    jp_ws(j);
    if (j->p >= j->end) return jp_bad(j);
    size_t n;
    switch (*j->p) {
    case '"':
        return jp_string(j, NULL, 0, &n);
    case 't':
        return jp_lit(j, "true", 4);
    case 'f':
        return jp_lit(j, "false", 5);
    case 'n':
        return jp_lit(j, "null", 4);
    case '{':
    case '[': {
        char close = *j->p == '{' ? '}' : ']';
        int obj = close == '}';
        /* Objects and arrays both count here: twice the struct depth. */
        if (depth >= 2 * MM_TYPED_DEPTH_MAX + 2)
            return derr(j->d, "nested deeper than %d", MM_TYPED_DEPTH_MAX);
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (obj) {
                jp_ws(j);
                if (jp_string(j, NULL, 0, &n)) return MM_EDECODE;
                jp_ws(j);
                if (j->p >= j->end || *j->p != ':') return jp_bad(j);
                j->p++;
            }
            if (jp_skip(j, depth + 1)) return MM_EDECODE;
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 0;
            }
            return jp_bad(j);
        }
    }
    default: {
        const char *s;
        int is_int;
        return jp_number(j, &s, &n, &is_int);
    }
    }
}

/* An integer from its decimal digits (with an optional '-'), exactly. */
static int
parse_dec(const char *s, size_t n, int k, uint64_t *out)
{
    int neg = n && s[0] == '-';
    size_t i = neg ? 1 : 0;
    uint64_t v = 0;
    if (i >= n) return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) return 1;
        v = v * 10 + dgt;
    }
    int64_t lo;
    uint64_t hi;
    int_range(k, &lo, &hi);
    if (neg) {
        if (lo == 0 && v) return 1;
        if (v > (uint64_t)INT64_MAX + 1 || v > (uint64_t)(-(lo + 1)) + 1)
            return 1;
        *out = (uint64_t)0 - v;
    } else {
        if (v > hi) return 1;
        *out = v;
    }
    return 0;
}

static int
jp_int(struct jp *j, int k, void *p)
{
    const char *s;
    size_t n;
    int is_int;
    if (j->p < j->end && *j->p == '"' && (k == MM_K_I64 || k == MM_K_U64)) {
        char buf[32];
        if (jp_string(j, buf, sizeof(buf), &n)) return MM_EDECODE;
        uint64_t v;
        int rc = n < sizeof(buf) ? parse_dec(buf, n, k, &v) : 1;
        if (rc < 0 || n == 0) return derr(j->d, "expected an integer");
        if (rc > 0) return derr(j->d, "integer out of range");
        set_int(p, k, v);
        return 0;
    }
    if (j->p >= j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
        return derr(j->d, "expected an integer, got %s", jp_what(j));
    if (jp_number(j, &s, &n, &is_int)) return MM_EDECODE;
    if (is_int) {
        uint64_t v;
        if (parse_dec(s, n, k, &v))
            return derr(j->d, "%.*s out of range", n > 40 ? 40 : (int)n, s);
        set_int(p, k, v);
        return 0;
    }
    /* 1e3, 5.0: integers written as doubles, exact up to 2^53. */
    char buf[64];
    if (n >= sizeof(buf)) return derr(j->d, "expected an integer");
    memcpy(buf, s, n);
    buf[n] = '\0';
    double x = strtod(buf, NULL);
    if (x != floor(x) || !isfinite(x) || fabs(x) > TWO53)
        return derr(j->d, "expected an integer, got %s", buf);
    uint64_t v;
    snprintf(buf, sizeof(buf), "%.0f", x);
    if (parse_dec(buf, strlen(buf), k, &v))
        return derr(j->d, "%s out of range", buf);
    set_int(p, k, v);
    return 0;
}

/*
 * A string at j->p (the opening quote) without escapes, when the input
 * may be written (j->insitu): used where it is, its closing quote
 * becoming its NUL (put back by arena_free_head).  0: not such a string
 * (or no room to note the quote), nothing read; 1: taken, |*rc| is 0 or
 * MM_EDECODE.
 */
static inline int
jp_str_insitu(struct jp *j, uint32_t max, void *p, int *rc)
{
    struct blk *h = j->d->a->head;
    if (j->p >= j->end || *j->p != '"' || h->nfix >= FIX_MAX) return 0;
    const char *q = mm__json_plain_end(j->p + 1, j->end);
    if (q >= j->end || *q != '"') return 0;
    size_t n = (size_t)(q - (j->p + 1));
    if (n > max) {
        *rc = derr(j->d, "%zu bytes, at most %u", n, max);
        return 1;
    }
    h->fix[h->nfix++] = (char *)(uintptr_t)q;
    *(char *)(uintptr_t)q = '\0';
    *(const char **)p = j->p + 1;
    j->p = q + 1;
    *rc = 0;
    return 1;
}

struct tinfo;
static int jp_struct(struct jp *j, const mm_type_desc *t,
                     const struct tinfo *ti, void *v);

static int
jp_value(struct jp *j, const mm_field *f, int k, uint32_t max, void *p)
{
    jp_ws(j);
    switch (k) {
    case MM_K_F64: {
        if (j->p < j->end && *j->p == 'n') {
            *(double *)p = NAN;
            return jp_lit(j, "null", 4);
        }
        const char *s;
        size_t n;
        int is_int;
        if (j->p >= j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
            return derr(j->d, "expected a number, got %s", jp_what(j));
        if (jp_number(j, &s, &n, &is_int)) return MM_EDECODE;
        char buf[80];
        if (n >= sizeof(buf)) return derr(j->d, "number too long");
        memcpy(buf, s, n);
        buf[n] = '\0';
        *(double *)p = strtod(buf, NULL);
        return 0;
    }
    case MM_K_BOOL:
        if (j->p < j->end && *j->p == 't') {
            *(bool *)p = true;
            return jp_lit(j, "true", 4);
        }
        if (j->p < j->end && *j->p == 'f') {
            *(bool *)p = false;
            return jp_lit(j, "false", 5);
        }
        return derr(j->d, "expected a bool, got %s", jp_what(j));
    case MM_K_STR:
    case MM_K_BYTES: {
        if (j->p >= j->end || *j->p != '"')
            return derr(j->d, "expected a %sstring, got %s",
                        k == MM_K_BYTES ? "base64 " : "", jp_what(j));
        int rc;
        if (k == MM_K_STR && j->insitu && jp_str_insitu(j, max, p, &rc))
            return rc;
        /* Unescaping never lengthens: room for the rest of the input, or
         * for the longest string allowed, whichever is less. */
        size_t n, avail = (size_t)(j->end - j->p);
        size_t lim = k == MM_K_STR ? max : 4 * (((size_t)max + 2) / 3) + 4;
        if (avail > lim + 1) avail = lim + 1;
        char *s = dalloc(j->d, avail + 1);
        if (!s) return DALLOC_FAIL(j->d);
        j->nul = 0;
        if (jp_string(j, s, avail, &n)) return MM_EDECODE;
        if (n > lim) {
            if (k == MM_K_STR)
                return derr(j->d, "%zu bytes, at most %u", n, max);
            return derr(j->d, "more than %u bytes", max);
        }
        s[n] = '\0';
        if (k == MM_K_STR) {
            if (j->nul) return derr(j->d, "NUL inside a string");
            *(const char **)p = s;
            return 0;
        }
        mm_bytes *b = p;
        b->data = NULL;
        b->len = 0;
        if (!n) return 0;
        size_t cap = n / 4 * 3 + 3;
        uint8_t *buf = dalloc(j->d, cap);
        if (!buf) return DALLOC_FAIL(j->d);
        int got = mm__base64_decode(buf, cap, s, n);
        if (got < 0) return derr(j->d, "not base64");
        if ((size_t)got > max)
            return derr(j->d, "%d bytes, at most %u", got, max);
        b->data = buf;
        b->len = (size_t)got;
        return 0;
    }
    case MM_K_STRUCT:
        if (j->p >= j->end || *j->p != '{')
            return derr(j->d, "expected an object, got %s", jp_what(j));
        return jp_struct(j, f->sub, NULL, p);
    default:
        if (kind_is_int(k)) return jp_int(j, k, p);
        return derr(j->d, "unsupported field kind %d", k);
    }
}

static int
jp_array(struct jp *j, const mm_field *f, void *v, unsigned char *p)
{
    if (j->p >= j->end || *j->p != '[')
        return derr(j->d, "expected an array, got %s", jp_what(j));
    /* Count (and check) the elements first, stopping past the maximum. */
    struct jp m = *j;
    size_t cnt = 0;
    m.p++;
    jp_ws(&m);
    if (m.p < m.end && *m.p == ']') {
        m.p++;
    } else {
        for (;;) {
            if (jp_skip(&m, j->d->depth + 1)) return MM_EDECODE;
            if (++cnt > f->max)
                return derr(j->d, "more than %u elements", f->max);
            jp_ws(&m);
            if (m.p < m.end && *m.p == ',') {
                m.p++;
                continue;
            }
            if (m.p < m.end && *m.p == ']') {
                m.p++;
                break;
            }
            return jp_bad(&m);
        }
    }
    unsigned char *arr = NULL;
    if (cnt) {
        if (!(arr = dalloc(j->d, cnt * f->elem_size))) return DALLOC_FAIL(j->d);
        memset(arr, 0, cnt * f->elem_size);
    }
    j->p++;
    for (size_t i = 0; i < cnt; i++) {
        jp_ws(j);
        if (i) j->p++; /* the ',' the count pass saw */
        int rc = jp_value(j, f, f->elem, f->elem == MM_K_STR ? f->elem_max : 0,
                          arr + i * f->elem_size);
        if (rc) return rc;
    }
    j->p = m.p;
    *(void **)p = arr;
    *(size_t *)((unsigned char *)v + f->count_off) = cnt;
    return 0;
}

/* Whether the direct decoder takes |t| (every struct in it has at most 64
 * fields). */
static int
direct_ok(const mm_type_desc *t, int depth)
{
    if (t->nfields > 64 || depth > MM_TYPED_DEPTH_MAX) return 0;
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].sub && t->fields[i].sub != t &&
            !direct_ok(t->fields[i].sub, depth + 1))
            return 0;
    return 1;
}

/* What the decoder needs of a struct type, from a per-thread cache (the
 * answers depend on the type alone): whether the direct decoder takes it
 * and the bitmap of its required fields. */
struct tinfo {
    const mm_type_desc *t;
    int direct;
    uint64_t req;
};

static const struct tinfo *
tinfo_get(const mm_type_desc *t)
{
    static MM_TLS struct tinfo tc[32];
    struct tinfo *e = &tc[((uintptr_t)t >> 4) % 32];
    if (MM_LIKELY(e->t == t)) return e;
    e->direct = direct_ok(t, 0);
    e->req = 0;
    for (size_t i = 0; i < t->nfields && i < 64; i++)
        if (t->fields[i].kind != MM_K_NONE &&
            !(t->fields[i].flags & MM_FIELD_OPTIONAL))
            e->req |= 1ull << i;
    e->t = t;
    return e;
}

/* Whether field name |name| is the |kn| bytes of |key| (which hold no
 * NUL). */
static inline int
name_is(const char *name, const char *key, size_t kn)
{
    for (size_t i = 0; i < kn; i++)
        if (name[i] != key[i]) return 0; /* also at name's NUL */
    return name[kn] == '\0';
}

static int
jp_struct(struct jp *j, const mm_type_desc *t, const struct tinfo *ti, void *v)
{
    struct dctx *d = j->d;
    uint64_t seen = 0;
    if (d->depth >= MM_TYPED_DEPTH_MAX)
        return derr(d, "nested deeper than %d", MM_TYPED_DEPTH_MAX);
    jp_ws(j);
    if (j->p >= j->end || *j->p != '{') return jp_bad(j);
    j->p++;
    jp_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
    } else {
        size_t next = 0; /* the field expected next: keys come in the
                          * order of the fields, usually */
        for (;;) {
            char kbuf[64];
            const char *key;
            size_t kn, i = t->nfields;
            jp_ws(j);
            if (j->p >= j->end || *j->p != '"') return jp_bad(j);
            /* The expected field's name, compared where it is. */
            if (next < t->nfields && t->fields[next].kind != MM_K_NONE) {
                const char *nm = t->fields[next].name, *in = j->p + 1;
                size_t c = 0;
                while (nm[c] && in + c < j->end && in[c] == nm[c])
                    c++;
                if (!nm[c] && in + c < j->end && in[c] == '"') {
                    i = next;
                    j->p = in + c + 1;
                }
            }
            if (i == t->nfields) {
                const char *q = mm__json_plain_end(j->p + 1, j->end);
                if (q < j->end && *q == '"') {
                    key = j->p + 1; /* no escapes: compared where it is */
                    kn = (size_t)(q - key);
                    j->p = q + 1;
                } else {
                    j->nul = 0;
                    if (jp_string(j, kbuf, sizeof(kbuf), &kn))
                        return MM_EDECODE;
                    key = kbuf;
                    if (kn >= sizeof(kbuf) || j->nul) key = NULL; /* none */
                }
                for (size_t c = 0; key && c < t->nfields; c++)
                    if (t->fields[c].kind != MM_K_NONE &&
                        name_is(t->fields[c].name, key, kn)) {
                        i = c;
                        break;
                    }
            }
            jp_ws(j);
            if (j->p >= j->end || *j->p != ':') return jp_bad(j);
            j->p++;
            if (i < t->nfields) next = i + 1;
            if (i == t->nfields) {
                if (jp_skip(j, d->depth + 1)) return MM_EDECODE;
            } else {
                const mm_field *f = &t->fields[i];
                unsigned char *p = (unsigned char *)v + f->offset;
                d->path[d->depth++] = f->name;
                int rc;
                if (seen & (1ull << i))
                    rc = derr(d, "given twice");
                else if (f->kind == MM_K_ARRAY)
                    rc = (jp_ws(j), jp_array(j, f, v, p));
                else if (f->kind == MM_K_STR && j->insitu &&
                         (jp_ws(j), jp_str_insitu(j, f->max, p, &rc)))
                    ; /* the string is used in place */
                else
                    rc = jp_value(j, f, f->kind, f->max, p);
                d->depth--;
                if (rc) return rc;
                seen |= 1ull << i;
            }
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == '}') {
                j->p++;
                break;
            }
            return jp_bad(j);
        }
    }
    if (!ti) ti = tinfo_get(t);
    uint64_t req = ti->req;
    if (MM_LIKELY((seen & req) == req)) return 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        if (!(req & ~seen & (1ull << i))) continue;
        d->path[d->depth++] = f->name;
        int rc = derr(d, "missing");
        d->depth--;
        return rc;
    }
    return 0;
}

static int
json_decode_direct(const mm_type_desc *t, const struct tinfo *ti,
                   const void *data, size_t len, void *val, mm_arena *a,
                   char *err, size_t errlen, int insitu)
{
    struct dctx d; /* path[] is written up to depth before it is read */
    d.a = a;
    d.err = err;
    d.errlen = errlen;
    d.depth = 0;
    struct jp j = {data, (const char *)data + len, data, &d, 0, insitu};
    jp_ws(&j);
    if (j.p < j.end && *j.p != '{') {
        if (jp_skip(&j, 0)) return MM_EDECODE;
        j.p = data;
        jp_ws(&j);
        return derr(&d, "expected a JSON object, got %s", jp_what(&j));
    }
    int rc = jp_struct(&j, t, ti, val);
    if (rc) return rc;
    jp_ws(&j);
    if (j.p != j.end) return jp_bad(&j);
    return 0;
}

static int
json_decode_x(const mm_type_desc *t, const void *data, size_t len, void *val,
              mm_arena *a, char *err, size_t errlen, int insitu)
{
    const struct tinfo *ti = tinfo_get(t);
    if (!ti->direct) {
        struct dctx d = {.a = a, .err = err, .errlen = errlen};
        return derr(&d, "%s: a struct of more than 64 fields", t->name);
    }
    return json_decode_direct(t, ti, data, len, val, a, err, errlen, insitu);
}

static int
json_decode(const mm_type_desc *t, const void *data, size_t len, void *val,
            mm_arena *a, char *err, size_t errlen)
{
    return json_decode_x(t, data, len, val, a, err, errlen, 0);
}

const mm_codec mm_codec_json = {"json", MM_CONTENT_JSON, json_encode,
                                json_decode};

/* ---- binary codec
 * ------------------------------------------------------------
 */

static void
bin_u32(struct obuf *b, uint32_t v)
{
    unsigned char t[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    ob_put(b, t, 4);
}

static void
bin_le(struct obuf *b, uint64_t v, size_t n)
{
    unsigned char t[8];
    for (size_t i = 0; i < n; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    ob_put(b, t, n);
}

static int be_struct(struct obuf *b, const mm_type_desc *t, const void *v,
                     int depth);

static int
be_value(struct obuf *b, int k, const mm_field *f, const void *p, int depth)
{
    switch (k) {
    case MM_K_F64: {
        uint64_t u;
        memcpy(&u, p, 8);
        bin_le(b, u, 8);
        return 0;
    }
    case MM_K_BOOL:
        ob_c(b, *(const bool *)p ? 1 : 0);
        return 0;
    case MM_K_STR: {
        const char *s = *(const char *const *)p;
        size_t n = s ? strlen(s) : 0;
        if (n > UINT32_MAX) return MM_EINVAL;
        bin_u32(b, (uint32_t)n);
        ob_put(b, s, n);
        return 0;
    }
    case MM_K_BYTES: {
        const mm_bytes *v = p;
        if (v->len > UINT32_MAX) return MM_EINVAL;
        bin_u32(b, (uint32_t)v->len);
        if (v->len) ob_put(b, v->data, v->len);
        return 0;
    }
    case MM_K_STRUCT:
        return be_struct(b, f->sub, p, depth + 1);
    default:
        bin_le(b, (uint64_t)get_int(p, k), scalar_size(k));
        return 0;
    }
}

static int
be_struct(struct obuf *b, const mm_type_desc *t, const void *v, int depth)
{
    if (depth > MM_TYPED_DEPTH_MAX) return MM_EINVAL;
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        const unsigned char *p = (const unsigned char *)v + f->offset;
        int rc = 0;
        if (f->kind == MM_K_NONE) continue;
        if (f->kind == MM_K_ARRAY) {
            size_t cnt =
                *(const size_t *)((const unsigned char *)v + f->count_off);
            const unsigned char *arr = *(const unsigned char *const *)p;
            if (!arr) cnt = 0;
            if (cnt > UINT32_MAX) return MM_EINVAL;
            bin_u32(b, (uint32_t)cnt);
            for (size_t j = 0; j < cnt && !rc; j++)
                rc = be_value(b, f->elem, f, arr + j * f->elem_size, depth);
        } else {
            rc = be_value(b, f->kind, f, p, depth);
        }
        if (rc) return rc;
    }
    return 0;
}

static int
bin_encode(const mm_type_desc *t, const void *val, void **out, size_t *len)
{
    struct obuf b = {0};
    int rc = be_struct(&b, t, val, 0);
    ob_c(&b, '\0'); /* never empty: a message of no fields has one byte */
    if (rc || b.oom) {
        mm__free(b.p);
        return rc ? rc : UV_ENOMEM;
    }
    *out = b.p;
    *len = b.len - 1;
    return 0;
}

struct rd {
    const unsigned char *p, *end;
};

static int
rd_need(struct dctx *d, struct rd *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) return derr(d, "truncated");
    return 0;
}

static uint64_t
rd_le(struct rd *r, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static int bd_struct(struct dctx *d, struct rd *r, const mm_type_desc *t,
                     void *v);

static int
bd_value(struct dctx *d, struct rd *r, const mm_field *f, int k, uint32_t max,
         void *p)
{
    switch (k) {
    case MM_K_F64: {
        if (rd_need(d, r, 8)) return MM_EDECODE;
        uint64_t u = rd_le(r, 8);
        memcpy(p, &u, 8);
        return 0;
    }
    case MM_K_BOOL:
        if (rd_need(d, r, 1)) return MM_EDECODE;
        if (*r->p > 1) return derr(d, "expected a bool, got %u", *r->p);
        *(bool *)p = *r->p++ != 0;
        return 0;
    case MM_K_STR:
    case MM_K_BYTES: {
        if (rd_need(d, r, 4)) return MM_EDECODE;
        uint32_t n = (uint32_t)rd_le(r, 4);
        if (n > max) return derr(d, "%u bytes, at most %u", n, max);
        if (rd_need(d, r, n)) return MM_EDECODE;
        unsigned char *s = dalloc(d, (size_t)n + 1);
        if (!s) return DALLOC_FAIL(d);
        memcpy(s, r->p, n);
        s[n] = '\0';
        r->p += n;
        if (k == MM_K_STR) {
            if (memchr(s, '\0', n)) return derr(d, "NUL inside a string");
            *(const char **)p = (const char *)s;
        } else {
            ((mm_bytes *)p)->data = n ? s : NULL;
            ((mm_bytes *)p)->len = n;
        }
        return 0;
    }
    case MM_K_STRUCT:
        return bd_struct(d, r, f->sub, p);
    default:
        if (!kind_is_int(k)) return derr(d, "unsupported field kind %d", k);
        if (rd_need(d, r, scalar_size(k))) return MM_EDECODE;
        set_int(p, k, rd_le(r, scalar_size(k)));
        return 0;
    }
}

static int
bd_struct(struct dctx *d, struct rd *r, const mm_type_desc *t, void *v)
{
    if (d->depth >= MM_TYPED_DEPTH_MAX)
        return derr(d, "nested deeper than %d", MM_TYPED_DEPTH_MAX);
    for (size_t i = 0; i < t->nfields; i++) {
        const mm_field *f = &t->fields[i];
        unsigned char *p = (unsigned char *)v + f->offset;
        int rc = 0;
        if (f->kind == MM_K_NONE) continue;
        d->path[d->depth++] = f->name;
        if (f->kind == MM_K_ARRAY) {
            uint32_t cnt = 0;
            if (rd_need(d, r, 4) == 0)
                cnt = (uint32_t)rd_le(r, 4);
            else
                rc = MM_EDECODE;
            if (!rc && cnt > f->max)
                rc = derr(d, "%u elements, at most %u", cnt, f->max);
            if (!rc && cnt) {
                unsigned char *arr = dalloc(d, cnt * f->elem_size);
                if (!arr) rc = DALLOC_FAIL(d);
                if (arr) memset(arr, 0, cnt * f->elem_size);
                for (uint32_t j = 0; arr && j < cnt && !rc; j++)
                    rc = bd_value(d, r, f, f->elem,
                                  f->elem == MM_K_STR ? f->elem_max : 0,
                                  arr + (size_t)j * f->elem_size);
                *(void **)p = arr;
                *(size_t *)((unsigned char *)v + f->count_off) = cnt;
            }
        } else {
            rc = bd_value(d, r, f, f->kind, f->max, p);
        }
        d->depth--;
        if (rc) return rc;
    }
    return 0;
}

static int
bin_decode(const mm_type_desc *t, const void *data, size_t len, void *val,
           mm_arena *a, char *err, size_t errlen)
{
    struct dctx d; /* path[] is written up to depth before it is read */
    d.a = a;
    d.err = err;
    d.errlen = errlen;
    d.depth = 0;
    struct rd r = {data, (const unsigned char *)data + len};
    int rc = bd_struct(&d, &r, t, val);
    if (!rc && r.p != r.end)
        rc = derr(&d, "%zu trailing bytes", (size_t)(r.end - r.p));
    return rc;
}

const mm_codec mm_codec_binary = {"binary", MM_CONTENT_RAW, bin_encode,
                                  bin_decode};

/* ---- values ---------------------------------------------------------------
 */

int
mm_typed_encode(const mm_type_desc *t, const mm_codec *codec, const void *val,
                void **out, size_t *len)
{
    if (!codec) codec = &mm_codec_json;
    return codec->encode(t, val, out, len);
}

/* A new value of |t| decoded by |codec| from |data|; |turn|: it lives one
 * turn (the per-thread first chunk may hold it); |insitu|: |data| is a
 * message's own bytes, which outlive the value: JSON strings without
 * escapes then point into them (jp_value) instead of being copied. */
static int
decode_new(const mm_type_desc *t, const mm_codec *codec, const void *data,
           size_t len, void **val, char *err, size_t errlen, int turn,
           int insitu)
{
    mm_arena a;
    *val = NULL;
    /* The value plus room for what its input can hold, usually all. */
    size_t first = align_up(t->size) + len + 64;
    if (first > 65536) first = align_up(t->size) + 65536;
    int rc = turn ? arena_init_turn(&a, first) : arena_init(&a, first);
    if (rc) return rc;
    void *v = arena_alloc(&a, t->size);
    memset(v, 0, t->size);
    if (codec == &mm_codec_json)
        rc = json_decode_x(t, data, len, v, &a, err, errlen, insitu);
    else
        rc = codec->decode(t, data, len, v, &a, err, errlen);
    if (rc) {
        arena_free_head(a.head);
        return rc;
    }
    *val = v;
    return 0;
}

int
mm_typed_decode(const mm_type_desc *t, const mm_codec *codec, const void *data,
                size_t len, void **val, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    return decode_new(t, codec ? codec : &mm_codec_json, data, len, val, err,
                      errlen, 0, 0);
}

int
mm__typed_decode_turn(const mm_type_desc *t, char *data, size_t len, void **val,
                      char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    return decode_new(t, &mm_codec_json, data, len, val, err, errlen, 1, 1);
}

/* ---- per-turn scratch strings ----------------------------------------------
 */

struct scratch {
    struct scratch *next;
    char s[];
};

static MM_TLS struct scratch *scratch_head;
static MM_TLS int in_turn;

static void
scratch_release(struct scratch *mark)
{
    while (scratch_head && scratch_head != mark) {
        struct scratch *nx = scratch_head->next;
        mm__free(scratch_head);
        scratch_head = nx;
    }
}

const char *
mm_typed_printf(mm_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    if (!in_turn) return NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    struct scratch *s = mm__malloc(sizeof(*s) + (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s->s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->next = scratch_head;
    scratch_head = s;
    return s->s;
}

/* ---- messages ---------------------------------------------------------------
 */

static const mm_codec *
wire_codec(const mm_msg_desc *d)
{
    return d->codec ? d->codec : &mm_codec_json;
}

/* memcpy for the small structs a message holds inline: constant sizes
 * are copied in place, not by a call. */
static inline void
copy_small(void *d, const void *s, size_t n)
{
    switch (n) {
    case 4:
        memcpy(d, s, 4);
        break;
    case 8:
        memcpy(d, s, 8);
        break;
    case 16:
        memcpy(d, s, 16);
        break;
    case 24:
        memcpy(d, s, 24);
        break;
    case 32:
        memcpy(d, s, 32);
        break;
    default:
        memcpy(d, s, n);
        break;
    }
}

/* Whether values of |t| fit a message's inline buffer, from a per-thread
 * cache (the answer depends on the type alone). */
static int
fits_inline(const mm_type_desc *t)
{
    static MM_TLS struct {
        const mm_type_desc *t;
        int flat;
    } fc[32];
    unsigned i = (unsigned)(((uintptr_t)t >> 4) % 32);
    if (MM_LIKELY(fc[i].t == t)) return fc[i].flat;
    fc[i].t = t;
    fc[i].flat = t->size < MSG_DATA_INLINE && type_flat(t, 0);
    return fc[i].flat;
}

/* A pointer message carrying a copy of |val|: inside the message when |t|
 * has no pointers and fits, else one heap block. */
static mm_msg *
ptr_msg(const char *type, const mm_type_desc *t, const void *val)
{
    if (fits_inline(t)) {
        mm_msg *m = type ? mm_msg_new_ptr(type, NULL, NULL) : mm__msg_alloc();
        if (!m) return NULL;
        m->content = MM_CONTENT_PTR;
        copy_small(m->inl, val, t->size);
        m->data = m->inl;
        m->len = t->size;
        m->flags |= MSG_F_INL_DATA;
        return m;
    }
    void *c = mm_typed_clone(t, val);
    if (!c) return NULL;
    mm_msg *m = mm_msg_new_ptr(type, c, typed_dtor);
    if (!m) mm_typed_free(c);
    return m;
}

/* Messages encoded by enc_msg (read by the unit tests: a local typed
 * send encodes nothing). */
_Atomic unsigned long mm__typed_encodes;

/* A message carrying |val| encoded with |codec|. */
static mm_msg *
enc_msg(const char *type, const mm_codec *codec, const mm_type_desc *t,
        const void *val)
{
    /* A load and a store, not a locked add (a count for the tests, whose
     * encodes do not race). */
    atomic_store_explicit(
        &mm__typed_encodes,
        atomic_load_explicit(&mm__typed_encodes, memory_order_relaxed) + 1,
        memory_order_relaxed);
    void *buf;
    size_t len;
    int json = codec == &mm_codec_json;
    if (json || codec == &mm_codec_binary) {
        /* The built-in codecs write into the message itself while the
         * bytes fit (inl[], with a NUL after them as mm_msg_new_json
         * keeps), then on in a per-thread buffer that the message copies. */
        mm_msg *m = mm_msg_new(type);
        if (!m) return NULL;
        struct obuf b = {(char *)m->inl, 0, sizeof(m->inl), 0, 1, 0};
        int rc = json ? js_struct(&b, t, val, 0) : be_struct(&b, t, val, 0);
        ob_c(&b, '\0');
        if (rc || b.oom) {
            rc = rc ? rc : UV_ENOMEM;
        } else if (b.inl) {
            m->data = m->inl;
            m->flags |= MSG_F_INL_DATA;
        } else if ((m->data = mm__malloc(b.len)) != NULL) {
            memcpy(m->data, b.p, b.len);
        } else {
            rc = UV_ENOMEM;
        }
        if (b.tls) { /* the per-thread buffer goes back (or away) */
            if (b.cap > 65536 || !mm__cur_shard) {
                mm__free(b.p);
            } else {
                mm__free(enc_buf.p);
                enc_buf.p = b.p;
                enc_buf.cap = b.cap;
            }
        }
        if (rc) {
            mm_msg_free(m);
            return NULL;
        }
        m->content = json ? MM_CONTENT_JSON : MM_CONTENT_RAW;
        m->len = b.len - 1;
        return m;
    }
    if (codec->encode(t, val, &buf, &len)) return NULL;
    mm_msg *m = codec->content == MM_CONTENT_JSON
                    ? mm_msg_new_json(type, buf, len)
                    : mm_msg_new_raw(type, buf, len);
    mm__free(buf);
    return m;
}

/*
 * A per-thread cache of what a local send needs of a message type: its
 * interned id on a node and whether its request is flat, so that the hot
 * path takes no lock and hashes nothing.  An entry names its node by
 * address, id and generation (a node freed and another made at the same
 * address is another entry); ids of a node never change.
 */
#define IDC_SIZE 64
struct idc {
    const mm_msg_desc *d;
    const mm_node *n;
    uint64_t gen;
    uint8_t node_id[MM_NODE_ID_LEN];
    uint32_t id;
    int flat;
};
static MM_TLS struct idc idc[IDC_SIZE];

static const struct idc *
idc_get(mm_node *n, const mm_msg_desc *d)
{
    struct idc *e = &idc[((uintptr_t)d >> 4) % IDC_SIZE];
    if (MM_LIKELY(e->d == d && e->n == n && e->gen == n->generation &&
                  memcmp(e->node_id, n->id, MM_NODE_ID_LEN) == 0))
        return e;
    uint32_t id = 0;
    mm__node_intern(n, d->name, 0, &id);
    if (!id) return NULL; /* no type here handles it (yet) */
    e->d = d;
    e->n = n;
    e->gen = n->generation;
    memcpy(e->node_id, n->id, MM_NODE_ID_LEN);
    e->id = id;
    e->flat = fits_inline(d->req);
    return e;
}

static mm_msg *
typed_msg_new(mm_node *n, const mm_endpoint *to, const mm_msg_desc *d,
              const void *req)
{
    if (!mm__node_is_local(n, to))
        return enc_msg(d->name, wire_codec(d), d->req, req);
    const struct idc *e = idc_get(n, d);
    if (!e) return ptr_msg(d->name, d->req, req);
    /* The interned id and the static name: no copy, no lookup. */
    mm_msg *m;
    if (e->flat) {
        if (!(m = mm__msg_alloc())) return NULL;
        copy_small(m->inl, req, d->req->size);
        m->data = m->inl;
        m->len = d->req->size;
        m->flags = MSG_F_INL_DATA;
    } else {
        void *c = mm_typed_clone(d->req, req);
        if (!c) return NULL;
        if (!(m = mm__msg_alloc())) {
            mm_typed_free(c);
            return NULL;
        }
        m->data = c;
        m->dtor = typed_dtor;
    }
    m->content = MM_CONTENT_PTR;
    m->type_id = e->id;
    m->type_name = d->name;
    return m;
}

mm_msg *
mm_typed_msg_new(mm_node *n, const mm_endpoint *to, const mm_msg_desc *d,
                 const void *req)
{
    return typed_msg_new(n, to, d, req);
}

/* Decodes the value of |m| (JSON, or RAW for a binary codec; no payload
 * reads as an empty object). */
static int
decode_msg(const mm_msg_desc *d, const mm_type_desc *t, mm_msg *m, void **val,
           char *err, size_t errlen, int turn)
{
    if (err && errlen) err[0] = '\0';
    if (m->content == MM_CONTENT_NONE)
        return decode_new(t, &mm_codec_json, "{}", 2, val, err, errlen, turn,
                          0);
    /* A turn's value is freed while |m| lives (mm_typed_end, tsend_cb):
     * its strings may point into m's bytes. */
    if (m->content == MM_CONTENT_JSON)
        return decode_new(t, &mm_codec_json, m->data, m->len, val, err, errlen,
                          turn, turn);
    if (m->content == MM_CONTENT_RAW && d->codec &&
        d->codec->content == MM_CONTENT_RAW)
        return decode_new(t, d->codec, m->data, m->len, val, err, errlen, turn,
                          0);
    if (err && errlen)
        snprintf(err, errlen, "%s: no codec for this payload", d->name);
    return MM_EDECODE;
}

int
mm_typed_reply_take(const mm_msg_desc *d, mm_msg *reply, void **val, char *err,
                    size_t errlen)
{
    *val = NULL;
    if (reply->content == MM_CONTENT_PTR) {
        if (!reply->data) return MM_EDECODE;
        if (reply->dtor == typed_dtor) {
            *val = reply->data; /* the block is the caller's now */
            reply->data = NULL;
            reply->dtor = NULL;
            return 0;
        }
        *val = mm_typed_clone(d->rep, reply->data);
        return *val ? 0 : UV_ENOMEM;
    }
    return decode_msg(d, d->rep, reply, val, err, errlen, 0);
}

int
mm_typed_call(mm_node *n, const mm_endpoint *to, const mm_msg_desc *d,
              const void *req, void **rep)
{
    mm_msg *reply = NULL;
    *rep = NULL;
    mm_msg *m = typed_msg_new(n, to, d, req);
    if (!m) return UV_ENOMEM;
    int rc = mm_call(n, to, m, &reply);
    if (rc == 0) {
        char err[200];
        rc = mm_typed_reply_take(d, reply, rep, err, sizeof(err));
        if (rc == MM_EDECODE)
            MM_LOG(MM_LOG_NOTICE, "typed", "%s: reply: %s", d->name, err);
    }
    mm_msg_free(reply);
    return rc;
}

/* The record of an asynchronous typed call (a per-thread free list). */
struct tsend {
    struct tsend *next;
    const mm_msg_desc *d;
    mm_typed_adapter adapt;
    void (*ucb)(void);
    void *data;
};

#define TSEND_CACHE_MAX 1024
static MM_TLS struct tsend *tsend_cache;
static MM_TLS unsigned tsend_cache_len;

static struct tsend *
tsend_new(void)
{
    struct tsend *s = tsend_cache;
    if (mm__cur_shard && s) {
        tsend_cache = s->next;
        tsend_cache_len--;
        return s;
    }
    return mm__malloc(sizeof(*s));
}

static void
tsend_release(struct tsend *s)
{
    if (mm__cur_shard && tsend_cache_len < TSEND_CACHE_MAX) {
        s->next = tsend_cache;
        tsend_cache = s;
        tsend_cache_len++;
    } else {
        mm__free(s);
    }
}

void
mm__typed_thread_free(void)
{
    while (tsend_cache) {
        struct tsend *s = tsend_cache;
        tsend_cache = s->next;
        mm__free(s);
    }
    tsend_cache_len = 0;
    mm__free(enc_buf.p);
    memset(&enc_buf, 0, sizeof(enc_buf));
}

static void
tsend_cb(void *data, int status, mm_msg *reply)
{
    struct tsend *s = data;
    struct tsend c = *s;
    tsend_release(s);
    if (status != 0) {
        c.adapt(c.ucb, c.data, status, NULL);
        return;
    }
    if (reply->content == MM_CONTENT_PTR && reply->data) {
        c.adapt(c.ucb, c.data, 0, reply->data);
        return;
    }
    void *v;
    char err[200];
    int rc = decode_msg(c.d, c.d->rep, reply, &v, err, sizeof(err), 1);
    if (rc) {
        MM_LOG(MM_LOG_NOTICE, "typed", "%s: reply: %s", c.d->name, err);
        c.adapt(c.ucb, c.data, rc, NULL);
        return;
    }
    c.adapt(c.ucb, c.data, 0, v);
    typed_free(v);
}

int
mm_typed_send(mm_node *n, const mm_endpoint *to, const mm_msg_desc *d,
              const void *req, mm_typed_adapter adapt, void (*ucb)(void),
              void *data)
{
    mm_msg *m = typed_msg_new(n, to, d, req);
    if (!m) return UV_ENOMEM;
    if (!ucb) {
        int rc = mm_send(n, to, m, NULL, NULL);
        if (rc) mm_msg_free(m);
        return rc;
    }
    struct tsend *s = tsend_new();
    if (!s) {
        mm_msg_free(m);
        return UV_ENOMEM;
    }
    s->d = d;
    s->adapt = adapt;
    s->ucb = ucb;
    s->data = data;
    int rc = mm_send(n, to, m, tsend_cb, s);
    if (rc) {
        mm_msg_free(m);
        tsend_release(s);
    }
    return rc;
}

int
mm_typed_tell(mm_node *n, const mm_endpoint *to, const mm_msg_desc *d,
              const void *req)
{
    return mm_typed_send(n, to, d, req, NULL, NULL, NULL);
}

/* ---- handlers ---------------------------------------------------------------
 */

int
mm_typed_begin(mm_ctx *ctx, mm_msg *msg, const mm_msg_desc *d, mm_typed_turn *t)
{
    t->req_mem = NULL;
    t->scratch_mark = (size_t)(uintptr_t)scratch_head;
    if (msg->content == MM_CONTENT_PTR && msg->data) {
        t->req = msg->data;
        in_turn++;
        return 0;
    }
    char err[256];
    int rc = decode_msg(d, d->req, msg, &t->req_mem, err, sizeof(err), 1);
    if (rc) {
        mm_reply_error(ctx, MM_EDECODE, "%s: %s", d->name,
                       err[0] ? err : mm_strerror(rc));
        return rc;
    }
    t->req = t->req_mem;
    in_turn++;
    return 0;
}

int
mm_typed_end(mm_ctx *ctx, mm_msg *msg, const mm_msg_desc *d, mm_typed_turn *t,
             const void *rep, int rc)
{
    if (rc >= 0 && msg->call) {
        /* The reply takes the form of the request. */
        mm_msg *r;
        if (msg->content == MM_CONTENT_PTR)
            r = ptr_msg(NULL, d->rep, rep);
        else if (msg->content == MM_CONTENT_RAW && d->codec)
            r = enc_msg(NULL, d->codec, d->rep, rep);
        else
            r = enc_msg(NULL, &mm_codec_json, d->rep, rep);
        if (r)
            mm_reply(ctx, r);
        else
            mm_reply_error(ctx, MM_ENOT_SERIALIZABLE,
                           "%s: the reply cannot be encoded", d->name);
    }
    typed_free(t->req_mem);
    t->req_mem = NULL;
    scratch_release((struct scratch *)(uintptr_t)t->scratch_mark);
    in_turn--;
    return rc;
}
