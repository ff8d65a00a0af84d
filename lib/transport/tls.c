/* tls.c — GnuTLS credentials and sessions for ngtcp2, with key pinning. */
#include "transport/tls.h"

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "common.h"
#include "transport/certkey.h"

/*
 * TLS 1.3 only, and X25519 only: with NORMAL's group list a client also
 * sends a P-256 key share (a second key generation per dial, the largest
 * single cost of a handshake after the Ed25519 signatures).  Every murmer
 * node offers X25519, as does every TLS 1.3 stack.  AES-128-GCM first
 * (NORMAL picks AES-256-GCM-SHA384): 10 AES rounds instead of 14 on every
 * packet, and SHA-256 for the transcript; the others stay acceptable.
 */
#define TLS_PRIORITY                                                           \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"                  \
    "+CHACHA20-POLY1305:+AES-256-GCM:-GROUP-ALL:+GROUP-X25519:"                \
    "%DISABLE_TLS13_COMPAT_MODE"

struct mm_tls_creds {
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio; /* parsed once, shared by every session */
};

struct mm_tls_session {
    ngtcp2_crypto_conn_ref ref; /* what gnutls_session_get_ptr() returns */
    gnutls_session_t sess;
    int server;
    int have_expected;
    uint8_t expected[MM_ID_LEN];
    int have_peer;
    int mismatch;
    uint8_t peer[MM_ID_LEN];
};

int
mm__tls_creds_new(struct mm_tls_creds **out, const struct mm_identity *id)
{
    struct mm_tls_creds *c = mm__calloc(1, sizeof(*c));
    if (c == NULL) return UV_ENOMEM;
    int rv = gnutls_certificate_allocate_credentials(&c->cred);
    if (rv != 0) {
        mm__free(c);
        return UV_ENOMEM;
    }
    gnutls_datum_t cert = {(unsigned char *)id->cert_pem,
                           (unsigned)strlen(id->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)id->key_pem,
                          (unsigned)strlen(id->key_pem)};
    rv = gnutls_certificate_set_x509_key_mem(c->cred, &cert, &key,
                                             GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        MM_LOG(MM_LOG_ERR, "tls", "cannot load the identity: %s",
               gnutls_strerror(rv));
        gnutls_certificate_free_credentials(c->cred);
        mm__free(c);
        return MM_EKEY;
    }
    if ((rv = gnutls_priority_init(&c->prio, TLS_PRIORITY, NULL)) < 0) {
        MM_LOG(MM_LOG_ERR, "tls", "priority: %s", gnutls_strerror(rv));
        gnutls_certificate_free_credentials(c->cred);
        mm__free(c);
        return MM_EINVAL;
    }
    *out = c;
    return 0;
}

void
mm__tls_creds_free(struct mm_tls_creds *c)
{
    if (c == NULL) return;
    gnutls_priority_deinit(c->prio);
    gnutls_certificate_free_credentials(c->cred);
    mm__free(c);
}

/* Hashes the raw Ed25519 key of a DER certificate into a node id. */
static int
tls_cert_id(const gnutls_datum_t *der, uint8_t id[MM_ID_LEN])
{
    uint8_t pub[MM_CERTKEY_LEN];
    if (mm__cert_ed25519_key(der->data, der->size, pub) != 0) return -1;
    mm__identity_id_of(id, pub);
    return 0;
}

/* Called by GnuTLS when the peer's certificate arrives; 0 accepts. */
static int
tls_verify_cb(gnutls_session_t sess)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(sess);
    struct mm_tls_session *s =
        mm__container_of(ref, struct mm_tls_session, ref);
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(sess, &n);
    uint8_t id[MM_ID_LEN];
    if (certs == NULL || n == 0) {
        MM_LOG(MM_LOG_WARN, "tls", "peer sent no certificate");
        return -1;
    }
    if (tls_cert_id(&certs[0], id) != 0) {
        MM_LOG(MM_LOG_WARN, "tls", "peer certificate has no Ed25519 key");
        return -1;
    }
    if (s->have_expected && memcmp(id, s->expected, MM_ID_LEN) != 0) {
        char want[33], got[33];
        mm__hex(want, s->expected, MM_ID_LEN);
        mm__hex(got, id, MM_ID_LEN);
        MM_LOG(MM_LOG_WARN, "tls", "peer is %s, expected %s", got, want);
        s->mismatch = 1;
        return -1;
    }
    memcpy(s->peer, id, MM_ID_LEN);
    s->have_peer = 1;
    return 0;
}

int
mm__tls_session_new(struct mm_tls_session **out, struct mm_tls_creds *c,
                    int server, const uint8_t *expected_id, int allow_h3)
{
    struct mm_tls_session *s = mm__calloc(1, sizeof(*s));
    if (s == NULL) return UV_ENOMEM;
    s->server = server;
    if (expected_id && !server) {
        s->have_expected = 1;
        memcpy(s->expected, expected_id, MM_ID_LEN);
    }
    unsigned flags = server ? GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET |
                                  GNUTLS_NO_END_OF_EARLY_DATA
                            : GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA;
    int rv = gnutls_init(&s->sess, flags);
    if (rv != 0) {
        mm__free(s);
        return UV_ENOMEM;
    }
    rv = server ? ngtcp2_crypto_gnutls_configure_server_session(s->sess)
                : ngtcp2_crypto_gnutls_configure_client_session(s->sess);
    if (rv != 0) goto fail;
    if ((rv = gnutls_priority_set(s->sess, c->prio)) < 0) goto fail;
    if ((rv = gnutls_credentials_set(s->sess, GNUTLS_CRD_CERTIFICATE,
                                     c->cred)) < 0)
        goto fail;
    if (server)
        gnutls_certificate_server_set_request(s->sess, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_function(s->sess, tls_verify_cb);
    gnutls_datum_t alpn[2] = {
        {(unsigned char *)MM_TLS_ALPN, sizeof(MM_TLS_ALPN) - 1},
        {(unsigned char *)"h3", 2},
    };
    rv = gnutls_alpn_set_protocols(s->sess, alpn, allow_h3 ? 2 : 1,
                                   server ? GNUTLS_ALPN_MANDATORY |
                                                GNUTLS_ALPN_SERVER_PRECEDENCE
                                          : GNUTLS_ALPN_MANDATORY);
    if (rv < 0) goto fail;
    if (!server) gnutls_server_name_set(s->sess, GNUTLS_NAME_DNS, "murmer", 6);
    gnutls_session_set_ptr(s->sess, &s->ref);
    *out = s;
    return 0;
fail:
    MM_LOG(MM_LOG_ERR, "tls", "session setup failed: %s", gnutls_strerror(rv));
    gnutls_deinit(s->sess);
    mm__free(s);
    return MM_EINVAL;
}

void
mm__tls_session_free(struct mm_tls_session *s)
{
    if (s == NULL) return;
    gnutls_deinit(s->sess);
    mm__free(s);
}

ngtcp2_crypto_conn_ref *
mm__tls_conn_ref(struct mm_tls_session *s)
{
    return &s->ref;
}

void *
mm__tls_native_handle(struct mm_tls_session *s)
{
    return s->sess;
}

int
mm__tls_peer_id(const struct mm_tls_session *s, uint8_t id[MM_ID_LEN])
{
    if (!s->have_peer) return MM_EUNAUTHORIZED;
    memcpy(id, s->peer, MM_ID_LEN);
    return 0;
}

int
mm__tls_id_mismatch(const struct mm_tls_session *s)
{
    return s->mismatch;
}

int
mm__tls_alpn_is_murmer(struct mm_tls_session *s)
{
    gnutls_datum_t p;
    if (gnutls_alpn_get_selected_protocol(s->sess, &p) != 0) return 0;
    return p.size == sizeof(MM_TLS_ALPN) - 1 &&
           memcmp(p.data, MM_TLS_ALPN, p.size) == 0;
}

int
mm__tls_exporter(struct mm_tls_session *s, uint8_t out[MM_TLS_EXPORTER_LEN])
{
    int rv = gnutls_prf_rfc5705(s->sess, sizeof(MM_TLS_EXPORTER_LABEL) - 1,
                                MM_TLS_EXPORTER_LABEL, 0, NULL,
                                MM_TLS_EXPORTER_LEN, (char *)out);
    if (rv < 0) {
        MM_LOG(MM_LOG_WARN, "tls", "exporter failed: %s", gnutls_strerror(rv));
        return MM_EUNAUTHORIZED;
    }
    return 0;
}
