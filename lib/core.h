/* core.h — small internal helpers shared by every module.  It sees only
 * the libuv-free part of the public API (murmer_base.h), so that the
 * sans-I/O cores can include it; the other modules include common.h.
 * `make check-pure` compiles the cores with a uv.h that refuses to be
 * included. */
#ifndef MM_CORE_H
#define MM_CORE_H

#include <endian.h>
#include <errno.h> /* -ENOMEM and friends: the codes libuv calls UV_E* */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "include/murmer_base.h"
#include "defaults.h"

#define MM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MM_UNUSED(x) ((void)(x))
#define MM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define mm__container_of(ptr, type, member)                                    \
    ((type *)((char *)(ptr)-offsetof(type, member)))

#define MM_LIKELY(x) __builtin_expect(!!(x), 1)
#define MM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Always-on assertion for programmer errors (never for network input). */
#define MM_ASSERT(cond)                                                        \
    do {                                                                       \
        if (MM_UNLIKELY(!(cond))) mm__assert_fail(#cond, __FILE__, __LINE__);  \
    } while (0)
void mm__assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));

/*
 * Allocation goes through these so that tests can fail the Nth allocation
 * (mm__alloc_fail_after).  They never abort on failure.
 */
void *mm__malloc(size_t n);
void *mm__calloc(size_t count, size_t n);
void *mm__realloc(void *p, size_t n);
char *mm__strdup(const char *s);
char *mm__strndup(const char *s, size_t n);
void mm__free(void *p);
/* Test hook: the |n|th allocation from now fails (0 = never). */
void mm__alloc_fail_after(unsigned long n);

/* Logging: one greppable line per event. */
void mm__log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mm__log_enabled(int level);
#define MM_LOG(level, comp, ...)                                               \
    do {                                                                       \
        if (mm__log_enabled(level)) mm__log(level, comp, __VA_ARGS__);         \
    } while (0)
/* Waits up to |timeout_ms| for queued stderr lines (and pending repeat
 * summaries) to be written: 0, or -ETIMEDOUT. */
int mm__log_flush(unsigned timeout_ms);
/* Lines the stderr sink dropped (its buffer full), ever. */
uint64_t mm__log_dropped(void);

/* Monotonic time in nanoseconds and milliseconds. */
uint64_t mm__now_ns(void);
uint64_t mm__now_ms(void);
/* Wall clock in milliseconds since the epoch (for HLC). */
uint64_t mm__wall_ms(void);

/* Little-endian load/store, alignment-safe (memcpy + le*toh: one move,
 * where the byte loops stayed loops at -O2). */
static inline void
mm__put_u16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, 2);
}
static inline void
mm__put_u32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}
static inline void
mm__put_u64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}
static inline uint16_t
mm__get_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return le16toh(v);
}
static inline uint32_t
mm__get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}
static inline uint64_t
mm__get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

/* Hex helpers: |out| gets 2*len chars plus NUL. */
void mm__hex(char *out, const uint8_t *in, size_t len);
/* Parses exactly 2*len hex chars; 0 or MM_EINVAL. */
int mm__unhex(uint8_t *out, size_t len, const char *in);

/* FNV-1a, for hash maps of strings and ids. */
static inline uint64_t
mm__hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}
static inline uint64_t
mm__hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Thread-safe pseudo-random numbers (xoshiro-style, per thread). */
uint64_t mm__rand64(void);
/* Fills |buf| from the OS CSPRNG; 0 or -EIO. */
int mm__random_bytes(void *buf, size_t len);

#endif /* MM_CORE_H */
