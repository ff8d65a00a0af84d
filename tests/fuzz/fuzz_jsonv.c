/* FUZZ_SOURCES: lib/jsonv.c */
/*
 * fuzz_jsonv.c — libFuzzer target for the ingress JSON check
 * (lib/jsonv.c), differential against cJSON.
 *
 * An invocation whose payload the fast check accepts is handed to the
 * actor without a parse; the actor may parse it later with mm_msg_json().
 * So whatever the check accepts, cJSON must parse the same bytes (as
 * mm_msg_json does: with their length, then only JSON white space after
 * the value), or an actor would be given a payload it cannot read.  The
 * converse need not hold: on 0 the runtime asks cJSON itself.
 * Seeds: tests/fuzz/corpus/fuzz_jsonv/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cjson_accepts(const char *s, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (j == NULL) return 0;
    cJSON_Delete(j);
    if (end == NULL) return 1;
    while (end < s + len &&
           (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    return end == s + len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Like a message body: the bytes, then a NUL that is not counted. */
    char *s = malloc(size + 1);
    if (s == NULL) return 0;
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    if (mm__json_fast_valid(s, size) && !cjson_accepts(s, size))
        abort(); /* accepted here, refused by cJSON */
    free(s);
    return 0;
}
