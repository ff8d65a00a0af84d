/*
 * jsonv.h — a non-allocating check that a payload is JSON, for the ingress
 * path.
 *
 * An invocation's JSON payload is validated when it arrives (docs/design.md,
 * Streams and calls: a malformed payload is refused with decode_error and the
 * byte offset), so that actors never see one they cannot parse.  Building a
 * cJSON tree only to throw it away cost a sequential remote round trip about
 * 2,500 instructions and a dozen allocations; most actors read the raw bytes
 * (echo) or parse lazily anyway.
 *
 * mm__json_fast_valid() accepts strict RFC 8259 JSON text that cJSON 1.7
 * also parses, and answers "not sure" (0) for anything else: malformed
 * text, but also \u escapes, numbers longer than cJSON's 63-byte number
 * buffer, nesting deeper than MM_JSONV_MAX_DEPTH and cJSON's leniencies
 * (control bytes as white space, a byte order mark).  A 0 is therefore
 * never an answer by itself: the caller asks cJSON, which decides and
 * names the offset.  The one property that matters, accepted here implies
 * accepted by cJSON (with only JSON white space after the value), is what
 * tests/fuzz/fuzz_jsonv.c checks, differentially.
 */
#ifndef MM_JSONV_H
#define MM_JSONV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MM_JSONV_MAX_DEPTH 64
#define MM_JSONV_MAX_NUMBER 60 /* cJSON reads at most 63 bytes of a number */

/* 1: |s| (|len| bytes) is JSON that cJSON parses too; 0: ask cJSON. */
int mm__json_fast_valid(const char *s, size_t len);

/*
 * The first byte of [p, e) that a JSON string cannot hold as it is (a
 * quote, a backslash or a control byte below 0x20), or |e|: the end of a
 * string's plain run.  Shared by the validator and the typed codec
 * (typed.c), whose payloads are mostly such runs.  With SSE2, 16 bytes a
 * step and the tail as one more load ending at |e| (overlapping bytes
 * already known plain), exact about where; shorter ranges (and builds
 * without SSE2) go 8 bytes a step (SWAR, exact about whether a word has
 * such a byte, not where) and settle the rest byte by byte.
 */
static inline const char *
mm__json_plain_end(const char *p, const char *e)
{
#if defined(__SSE2__)
    if (e - p >= 16) {
        const __m128i quote = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\'),
                      ctl = _mm_set1_epi8(0x1f);
        for (;;) {
            const char *at = e - p >= 16 ? p : e - 16;
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)at);
            __m128i m = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bsl)),
                _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x));
            unsigned bits = (unsigned)_mm_movemask_epi8(m);
            bits >>= (unsigned)(p - at); /* bytes before p: known plain */
            if (bits) return p + __builtin_ctz(bits);
            if (e - p <= 16) return e;
            p += 16;
        }
    }
#endif
    const uint64_t ones = 0x0101010101010101ull, high = ones << 7;
    while (e - p >= 8) {
        uint64_t x, q, b;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) &
            high)
            break;
        p += 8;
    }
    while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

#endif /* MM_JSONV_H */
