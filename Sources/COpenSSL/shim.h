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
#endif
