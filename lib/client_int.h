/*
 * client_int.h — what the client session files share: client.c (the
 * session, its connection and the requests in flight) and client_cmds.c
 * (the one-shot control commands and the result arrays they return).
 */
#ifndef MM_CLIENT_INT_H
#define MM_CLIENT_INT_H

#include <cJSON.h>

#include "common.h"

/* ---- results: one block per array, strings hang off it (client_cmds.c) -- */

/* A zeroed result block of |size| bytes, freed by mm_client_free_result. */
void *mm__res_new(size_t size);
/* A copy of |len| bytes of |s| (NUL-terminated) that lives as long as
 * |res|; "" when out of memory. */
const char *mm__res_strn(void *res, const char *s, size_t len);
/* mm__res_strn of a C string; NULL for NULL. */
const char *mm__res_str(void *res, const char *s);
/* Zeroed, pointer-aligned memory that lives as long as |res|. */
void *mm__res_alloc(void *res, size_t size);

/* ---- requests (client.c) ------------------------------------------------ */

/* Now plus the session's timeout, in mm__now_ms() time. */
uint64_t mm__client_deadline(mm_client *c);
/*
 * Sends a control request and waits for its answer: 0 with |*resp| the
 * parsed body (the caller's, cJSON_Delete), or an error (the seed's text
 * kept as the session's error text).
 */
int mm__client_request(mm_client *c, uint16_t op, const cJSON *body,
                       uint64_t deadline, cJSON **resp);

/* Sets the session's error text (mm_client_error_text). */
void mm__client_set_errtext(mm_client *c, const char *text);

/* |n| copies of a request at once; waits for |want| answers, counted by
 * status: ok, overloaded, other (tests and benchmarks). */
int mm__client_pipeline(mm_client *c, uint16_t op, const cJSON *body, size_t n,
                        size_t want, uint64_t deadline, size_t counts[3]);

/* ---- bodies and answers (client_cmds.c) --------------------------------- */

/* The body of a LOOKUP request; NULL when out of memory. */
cJSON *mm__client_lookup_body(const char *label, const char *prefix,
                              const char *key, int all, uint32_t wait_ms);
/* One oplog op of an OPLOG answer or an OPLOG_FOLLOW event, its strings
 * kept in |res|. */
void mm__client_parse_op(void *res, const cJSON *j, mm_oplog_op *op);

/* A member of a MEMBERS answer or a MEMBERS_FOLLOW event into |res[0]|,
 * its strings kept in |res| (a result block). */
void mm__client_parse_member(mm_member_info *res, const cJSON *it);

/* ---- reading answers ---------------------------------------------------- */

static inline const char *
jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double
jnum(const cJSON *o, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static inline uint64_t
ju64(const cJSON *o, const char *name)
{
    double d = jnum(o, name, 0);
    return d > 0 ? (uint64_t)d : 0;
}

#endif /* MM_CLIENT_INT_H */
