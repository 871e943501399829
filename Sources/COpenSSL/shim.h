#ifndef BYOKD_OPENSSL_SHIM_H
#define BYOKD_OPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

// Macros Swift cannot import.
static inline int byok_evp_pkey_ctx_set_rsa_oaep(EVP_PKEY_CTX *ctx, const EVP_MD *md, const EVP_MD *mgf) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0) return 0;
    if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0) return 0;
    if (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) <= 0) return 0;
    return 1;
}
static inline EVP_PKEY *byok_rsa_gen(unsigned int bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}
// The self-test's throwaway EC key (EVP_PKEY_Q_keygen is variadic).
static inline EVP_PKEY *byok_ec_gen(const char *curve) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}
// DER PKCS#8 PrivateKeyInfo of a key, in *out (free with byok_free); the length, or -1.
static inline int byok_pkcs8_der(EVP_PKEY *key, unsigned char **out) {
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    if (p8 == NULL) return -1;
    *out = NULL;
    int n = i2d_PKCS8_PRIV_KEY_INFO(p8, out);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return n;
}
// Parses a DER PKCS#8 PrivateKeyInfo at the start of der; *used says how many bytes it took.
static inline EVP_PKEY *byok_pkcs8_parse(const unsigned char *der, long len, long *used) {
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
    if (p8 == NULL) return NULL;
    *used = (long)(p - der);
    EVP_PKEY *key = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return key;
}
static inline void byok_free(void *p) { OPENSSL_free(p); }
#endif
