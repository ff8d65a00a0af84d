/*
 * certkey.h — the Ed25519 key of an X.509 certificate, read straight from
 * its DER.
 *
 * A node id is the hash of the peer's certificate key (docs/design.md, Node ids
 * and certificate pinning).  The TLS backend has parsed the certificate once
 * already when its verify callback runs; asking GnuTLS for the key again means
 * a second libtasn1 import, about 40 us per handshake side here (a tenth of a
 * handshake's CPU).  This walker finds subjectPublicKeyInfo by the structure of
 * RFC 5280 (Certificate, tbsCertificate, then its sixth field, after an
 * optional version) and accepts only the exact RFC 8410 Ed25519 encoding
 * there.  It is strict DER (definite, minimal lengths, no trailing bytes),
 * so any certificate GnuTLS also accepts yields the key GnuTLS verifies
 * the handshake signature with; anything else is refused.
 * tests/fuzz/fuzz_certkey.c checks that against GnuTLS.
 */
#ifndef MM_CERTKEY_H
#define MM_CERTKEY_H

#include <stddef.h>
#include <stdint.h>

#define MM_CERTKEY_LEN 32

/* 0 and the raw key in |pub|, or -1 (not DER, not Ed25519). */
int mm__cert_ed25519_key(const uint8_t *der, size_t len,
                         uint8_t pub[MM_CERTKEY_LEN]);

#endif /* MM_CERTKEY_H */
