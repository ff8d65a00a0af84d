/*
 * buf.h — a growable byte buffer for encoders and a bounds-checked cursor
 * for decoders.  All integers are little-endian.  Shared by the wire codec
 * and the other binary codecs (gossip, oplog, registry sync).
 *
 * Writing: struct mm_buf is caller-provided storage (init/release).  Every
 * mm__buf_put_* returns 0 or -ENOMEM (MM_EINVAL for a str16 longer than
 * 65535 bytes) and also records the first error in |err|, so a run of puts
 * can be checked once at the end:
 *
 *     struct mm_buf b;
 *     mm__buf_init(&b);
 *     mm__buf_put_u8(&b, 1);
 *     mm__buf_put_str16(&b, name, strlen(name));
 *     if (b.err) { mm__buf_release(&b); return b.err; }
 *
 * Reading: struct mm_rd points at borrowed bytes and never allocates.  Every
 * mm__rd_* returns 0 or MM_EDECODE when fewer bytes remain than it needs; on
 * failure it stores zero / NULL in its outputs, consumes nothing and makes
 * the error sticky (r->err), so later reads fail as well.  Pointers returned
 * by mm__rd_bytes/str16/rest point into the input (zero-copy) and live as
 * long as it does.
 */
#ifndef MM_BUF_H
#define MM_BUF_H

#include <stddef.h>
#include <stdint.h>

struct mm_buf {
    uint8_t *data; /* owned; NULL until the first put */
    size_t len;    /* bytes written */
    size_t cap;    /* bytes allocated */
    int err;       /* first error of a put (sticky until reset), else 0 */
    uint8_t *ext;  /* caller storage given to mm__buf_init_on, or NULL */
};

void mm__buf_init(struct mm_buf *b);
/*
 * Like mm__buf_init, but writes go to the caller's |storage| (|cap| bytes,
 * typically on the stack) until they outgrow it; then to the heap, as
 * usual.  An encoder on the hot path then allocates nothing.
 */
void mm__buf_init_on(struct mm_buf *b, void *storage, size_t cap);
/* Frees the storage; |b| is then as after mm__buf_init(). */
void mm__buf_release(struct mm_buf *b);
/* Empties |b| (len = 0, err = 0) and keeps the storage for reuse. */
void mm__buf_reset(struct mm_buf *b);
/* Makes room for |extra| more bytes; 0 or -ENOMEM. */
int mm__buf_reserve(struct mm_buf *b, size_t extra);
/*
 * Appends |n| uninitialised bytes and returns a pointer to them (valid until
 * the next put), or NULL on allocation failure (err set).
 */
uint8_t *mm__buf_grow(struct mm_buf *b, size_t n);
/*
 * Hands the storage to the caller (free it with mm__free) and resets |b| to
 * empty.  |*len| (if not NULL) gets its length.  NULL if |b| is empty.
 */
uint8_t *mm__buf_steal(struct mm_buf *b, size_t *len);

int mm__buf_put_u8(struct mm_buf *b, uint8_t v);
int mm__buf_put_u16(struct mm_buf *b, uint16_t v);
int mm__buf_put_u32(struct mm_buf *b, uint32_t v);
int mm__buf_put_u64(struct mm_buf *b, uint64_t v);
int mm__buf_put_bytes(struct mm_buf *b, const void *p, size_t n);
/* u16 length | bytes; MM_EINVAL (nothing written) if |n| > 65535. */
int mm__buf_put_str16(struct mm_buf *b, const char *s, size_t n);
/* Overwrites 4 already-written bytes at |off| (length back-patching). */
void mm__buf_set_u32(struct mm_buf *b, size_t off, uint32_t v);

struct mm_rd {
    const uint8_t *p; /* borrowed input */
    size_t len;       /* input length */
    size_t off;       /* bytes consumed */
    int err;          /* MM_EDECODE after the first underrun, else 0 */
};

void mm__rd_init(struct mm_rd *r, const void *p, size_t len);
/* Bytes not yet consumed (0 after an error). */
size_t mm__rd_left(const struct mm_rd *r);
int mm__rd_u8(struct mm_rd *r, uint8_t *v);
int mm__rd_u16(struct mm_rd *r, uint16_t *v);
int mm__rd_u32(struct mm_rd *r, uint32_t *v);
int mm__rd_u64(struct mm_rd *r, uint64_t *v);
/* Consumes |n| bytes; |*p| points at them in the input. */
int mm__rd_bytes(struct mm_rd *r, size_t n, const uint8_t **p);
/* Consumes |n| bytes into |dst|. */
int mm__rd_copy(struct mm_rd *r, void *dst, size_t n);
/*
 * Consumes a str16; |*s| points into the input and is NOT NUL-terminated
 * (it may contain any byte).  The length prefix and the bytes are checked
 * together: a short string consumes nothing.
 */
int mm__rd_str16(struct mm_rd *r, const char **s, size_t *n);
/* Consumes everything left ("rest" fields); never fails unless r->err. */
int mm__rd_rest(struct mm_rd *r, const uint8_t **p, size_t *n);
/* 0 if every byte was consumed and no read failed, else MM_EDECODE. */
int mm__rd_end(const struct mm_rd *r);

#endif /* MM_BUF_H */
