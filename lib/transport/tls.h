/*
 * tls.h — the TLS 1.3 backend of the QUIC transport (GnuTLS).
 *
 * This is the only module that includes GnuTLS: quic.c sees opaque
 * credentials and sessions.  An OpenSSL backend (ngtcp2 >= 1 with OpenSSL
 * >= 3.5) would be one more file behind the same functions.
 *
 * Verification pins keys instead of checking chains (docs/design.md, Node ids
 * and certificate pinning): chains and dates are ignored; the peer's raw
 * Ed25519 key is hashed into a node id; a dialer with an expected id refuses
 * any other; the acceptor records the id so that quic.c can compare it with the
 * peer's HELLO.
 */
#ifndef MM_TLS_H
#define MM_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2_crypto.h>

#include "identity.h"

#define MM_TLS_ALPN "murmer/1"
#define MM_TLS_EXPORTER_LABEL "EXPORTER-murmer-auth"
#define MM_TLS_EXPORTER_LEN 32

struct mm_tls_creds;   /* certificate credentials: one per transport */
struct mm_tls_session; /* one per QUIC connection */

/* Credentials from the identity's PEMs.  0, MM_EKEY or UV_ENOMEM. */
int mm__tls_creds_new(struct mm_tls_creds **out, const struct mm_identity *id);
void mm__tls_creds_free(struct mm_tls_creds *c);

/*
 * A client (|server| 0) or server session configured for ngtcp2.
 * |expected_id| (client only, may be NULL): the node id the server's key
 * must hash to.  |allow_h3|: also offer/accept ALPN "h3" (interop tests).
 * The session's GnuTLS pointer is reserved for the ngtcp2_crypto_conn_ref
 * returned by mm__tls_conn_ref(); the caller fills its get_conn and
 * user_data.  0, UV_ENOMEM or MM_EINVAL.
 */
int mm__tls_session_new(struct mm_tls_session **out, struct mm_tls_creds *c,
                        int server, const uint8_t *expected_id, int allow_h3);
void mm__tls_session_free(struct mm_tls_session *s);
ngtcp2_crypto_conn_ref *mm__tls_conn_ref(struct mm_tls_session *s);
/* The gnutls_session_t, for ngtcp2_conn_set_tls_native_handle(). */
void *mm__tls_native_handle(struct mm_tls_session *s);

/*
 * After the handshake: the peer's node id, from its certificate key (0, or
 * MM_EUNAUTHORIZED if none was verified).
 */
int mm__tls_peer_id(const struct mm_tls_session *s, uint8_t id[MM_ID_LEN]);
/* 1 if the peer id was refused because it differed from |expected_id|. */
int mm__tls_id_mismatch(const struct mm_tls_session *s);
/* 1 if the negotiated ALPN is "murmer/1". */
int mm__tls_alpn_is_murmer(struct mm_tls_session *s);
/*
 * The channel-binding exporter (RFC 5705 label "EXPORTER-murmer-auth", no
 * context, 32 bytes).  Only valid after the handshake completed (GnuTLS returns
 * a wrong value, no error, before; docs/design.md, Channel binding); the caller
 * guarantees that.  0 or MM_EUNAUTHORIZED.
 */
int mm__tls_exporter(struct mm_tls_session *s,
                     uint8_t out[MM_TLS_EXPORTER_LEN]);

#endif /* MM_TLS_H */
