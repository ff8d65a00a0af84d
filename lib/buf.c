/* buf.c — growable byte buffer and bounds-checked reader. */
#include "buf.h"
#include "core.h"

#define BUF_MIN_CAP 64

/* Stands in for a NULL input so that pointer arithmetic stays defined. */
static const uint8_t rd_empty[1];

void
mm__buf_init(struct mm_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
    b->ext = NULL;
}

void
mm__buf_init_on(struct mm_buf *b, void *storage, size_t cap)
{
    mm__buf_init(b);
    b->data = b->ext = storage;
    b->cap = cap;
}

void
mm__buf_release(struct mm_buf *b)
{
    if (b->data != b->ext) mm__free(b->data);
    mm__buf_init(b);
}

void
mm__buf_reset(struct mm_buf *b)
{
    b->len = 0;
    b->err = 0;
}

int
mm__buf_reserve(struct mm_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->err = b->err ? b->err : -ENOMEM;
        return -ENOMEM;
    }
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < want)
        cap *= 2;
    uint8_t *p;
    if (b->data == b->ext) { /* leaving the caller's storage */
        p = mm__malloc(cap);
        if (p && b->len) memcpy(p, b->data, b->len);
    } else {
        p = mm__realloc(b->data, cap);
    }
    if (p == NULL) {
        b->err = b->err ? b->err : -ENOMEM;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

uint8_t *
mm__buf_grow(struct mm_buf *b, size_t n)
{
    if (mm__buf_reserve(b, n) != 0) return NULL;
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

uint8_t *
mm__buf_steal(struct mm_buf *b, size_t *len)
{
    uint8_t *p = b->len ? b->data : NULL;
    if (len) *len = b->len;
    if (b->data == b->ext) { /* the caller's storage: hand out a copy */
        if (p && (p = mm__malloc(b->len)) != NULL)
            memcpy(p, b->data, b->len);
        else if (len)
            *len = 0;
    } else if (p == NULL) {
        mm__free(b->data);
    }
    mm__buf_init(b);
    return p;
}

int
mm__buf_put_u8(struct mm_buf *b, uint8_t v)
{
    uint8_t *p = mm__buf_grow(b, 1);
    if (p == NULL) return -ENOMEM;
    p[0] = v;
    return 0;
}

int
mm__buf_put_u16(struct mm_buf *b, uint16_t v)
{
    uint8_t *p = mm__buf_grow(b, 2);
    if (p == NULL) return -ENOMEM;
    mm__put_u16(p, v);
    return 0;
}

int
mm__buf_put_u32(struct mm_buf *b, uint32_t v)
{
    uint8_t *p = mm__buf_grow(b, 4);
    if (p == NULL) return -ENOMEM;
    mm__put_u32(p, v);
    return 0;
}

int
mm__buf_put_u64(struct mm_buf *b, uint64_t v)
{
    uint8_t *p = mm__buf_grow(b, 8);
    if (p == NULL) return -ENOMEM;
    mm__put_u64(p, v);
    return 0;
}

int
mm__buf_put_bytes(struct mm_buf *b, const void *src, size_t n)
{
    if (n == 0) return b->err ? b->err : 0;
    uint8_t *p = mm__buf_grow(b, n);
    if (p == NULL) return -ENOMEM;
    memcpy(p, src, n);
    return 0;
}

int
mm__buf_put_str16(struct mm_buf *b, const char *s, size_t n)
{
    if (n > UINT16_MAX) {
        b->err = b->err ? b->err : MM_EINVAL;
        return MM_EINVAL;
    }
    uint8_t *p = mm__buf_grow(b, 2 + n);
    if (p == NULL) return -ENOMEM;
    mm__put_u16(p, (uint16_t)n);
    if (n) memcpy(p + 2, s, n);
    return 0;
}

void
mm__buf_set_u32(struct mm_buf *b, size_t off, uint32_t v)
{
    MM_ASSERT(off <= b->len && b->len - off >= 4);
    mm__put_u32(b->data + off, v);
}

/* ------------------------------------------------------------------------ */

void
mm__rd_init(struct mm_rd *r, const void *p, size_t len)
{
    r->p = p ? p : rd_empty;
    r->len = p ? len : 0;
    r->off = 0;
    r->err = 0;
}

size_t
mm__rd_left(const struct mm_rd *r)
{
    return r->err ? 0 : r->len - r->off;
}

/*
 * Returns a pointer to the next |n| bytes and consumes them, or NULL (and the
 * sticky error) when fewer remain.  Every read goes through here, so this is
 * the one bounds check of the module.
 */
static const uint8_t *
rd_take(struct mm_rd *r, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = MM_EDECODE;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

int
mm__rd_u8(struct mm_rd *r, uint8_t *v)
{
    const uint8_t *p = rd_take(r, 1);
    *v = p ? p[0] : 0;
    return p ? 0 : MM_EDECODE;
}

int
mm__rd_u16(struct mm_rd *r, uint16_t *v)
{
    const uint8_t *p = rd_take(r, 2);
    *v = p ? mm__get_u16(p) : 0;
    return p ? 0 : MM_EDECODE;
}

int
mm__rd_u32(struct mm_rd *r, uint32_t *v)
{
    const uint8_t *p = rd_take(r, 4);
    *v = p ? mm__get_u32(p) : 0;
    return p ? 0 : MM_EDECODE;
}

int
mm__rd_u64(struct mm_rd *r, uint64_t *v)
{
    const uint8_t *p = rd_take(r, 8);
    *v = p ? mm__get_u64(p) : 0;
    return p ? 0 : MM_EDECODE;
}

int
mm__rd_bytes(struct mm_rd *r, size_t n, const uint8_t **out)
{
    const uint8_t *p = rd_take(r, n);
    *out = p;
    return p ? 0 : MM_EDECODE;
}

int
mm__rd_copy(struct mm_rd *r, void *dst, size_t n)
{
    const uint8_t *p = rd_take(r, n);
    if (p == NULL) {
        memset(dst, 0, n);
        return MM_EDECODE;
    }
    if (n) memcpy(dst, p, n);
    return 0;
}

int
mm__rd_str16(struct mm_rd *r, const char **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    if (r->err || r->len - r->off < 2) {
        r->err = MM_EDECODE;
        return MM_EDECODE;
    }
    size_t sl = mm__get_u16(r->p + r->off);
    if (sl > r->len - r->off - 2) {
        r->err = MM_EDECODE;
        return MM_EDECODE;
    }
    *s = (const char *)(r->p + r->off + 2);
    *n = sl;
    r->off += 2 + sl;
    return 0;
}

int
mm__rd_rest(struct mm_rd *r, const uint8_t **p, size_t *n)
{
    if (r->err) {
        *p = NULL;
        *n = 0;
        return MM_EDECODE;
    }
    *p = r->p + r->off;
    *n = r->len - r->off;
    r->off = r->len;
    return 0;
}

int
mm__rd_end(const struct mm_rd *r)
{
    return (r->err || r->off != r->len) ? MM_EDECODE : 0;
}
