// The C boundary for PKCS#11: p11-kit's pkcs11.h (standard CK_* names, CRYPTOKI_COMPAT), its URI
// parser and its module registry, plus dlopen for modules given by path. Everything else stays in
// Swift; these inline helpers exist only where Swift cannot express the C directly.
#ifndef BYOKD_PKCS11_SHIM_H
#define BYOKD_PKCS11_SHIM_H

#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#include <dlfcn.h>
#include <string.h>

// PKCS#11 v2.40's CK_RSA_AES_KEY_WRAP_PARAMS, which p11-kit's header does not carry.
typedef struct byok_rsa_aes_key_wrap_params {
    CK_ULONG ulAESKeyBits;
    CK_RSA_PKCS_OAEP_PARAMS *pOAEPParams;
} BYOK_RSA_AES_KEY_WRAP_PARAMS;

// dlopen a module and look up its C_GetFunctionList, which Swift then calls through Module.call's
// helper. Returns NULL on failure (dlerror() says why).
static inline CK_C_GetFunctionList byok_p11_open(const char *path, void **handle_out) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    *handle_out = h;
    if (h == NULL) return NULL;
    return (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
}

// Wipes memory in a way the optimizer may not remove (PIN buffers).
static inline void byok_secure_zero(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

#endif
