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

#define MM_JSONV_MAX_DEPTH 64
#define MM_JSONV_MAX_NUMBER 60 /* cJSON reads at most 63 bytes of a number */

/* 1: |s| (|len| bytes) is JSON that cJSON parses too; 0: ask cJSON. */
int mm__json_fast_valid(const char *s, size_t len);

#endif /* MM_JSONV_H */
