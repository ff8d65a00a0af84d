/* certkey.c — the Ed25519 key of a DER certificate (see certkey.h). */
#include "transport/certkey.h"

#include <string.h>

/*
 * The TLV at *p (before |end|) if its tag is |tag|: its contents in *v and
 * *vlen, and *p moved past it.  Definite lengths of at most three bytes,
 * minimally encoded; -1 otherwise.
 */
static int
der_next(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **v,
         size_t *vlen)
{
    const uint8_t *q = *p;
    if (end - q < 2 || q[0] != tag) return -1;
    size_t len = q[1];
    q += 2;
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0 || n > 3 || (size_t)(end - q) < n || q[0] == 0) return -1;
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = len << 8 | *q++;
        if (len < 0x80) return -1;
    }
    if ((size_t)(end - q) < len) return -1;
    *v = q;
    *vlen = len;
    *p = q + len;
    return 0;
}

int
mm__cert_ed25519_key(const uint8_t *der, size_t len,
                     uint8_t pub[MM_CERTKEY_LEN])
{
    /* SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused) } */
    static const uint8_t spki[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                   0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    const uint8_t *p = der, *v;
    size_t vlen;
    if (der == NULL || der_next(&p, der + len, 0x30, &v, &vlen) != 0 ||
        p != der + len)
        return -1; /* Certificate, nothing after it */
    p = v;
    if (der_next(&p, v + vlen, 0x30, &v, &vlen) != 0)
        return -1; /* tbsCertificate */
    const uint8_t *end = v + vlen;
    p = v;
    if (p < end && *p == 0xa0 && der_next(&p, end, 0xa0, &v, &vlen) != 0)
        return -1;                                          /* [0] version */
    if (der_next(&p, end, 0x02, &v, &vlen) != 0) return -1; /* serial */
    /* signature, issuer, validity, subject */
    for (int i = 0; i < 4; i++)
        if (der_next(&p, end, 0x30, &v, &vlen) != 0) return -1;
    if ((size_t)(end - p) < sizeof(spki) + MM_CERTKEY_LEN ||
        memcmp(p, spki, sizeof(spki)) != 0)
        return -1;
    memcpy(pub, p + sizeof(spki), MM_CERTKEY_LEN);
    return 0;
}
