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

// PKCS#11 3.0's CK_INTERFACE and C_GetInterface, which p11-kit 0.24's header does not carry. The
// function list of the "PKCS 11" interface starts with the v2.40 CK_FUNCTION_LIST, which is all
// byokd calls.
typedef struct byok_ck_interface {
    CK_UTF8CHAR *pInterfaceName;
    void *pFunctionList;
    CK_FLAGS flags;
} BYOK_CK_INTERFACE;
typedef CK_RV (*BYOK_C_GetInterface)(CK_UTF8CHAR *pInterfaceName, CK_VERSION *pVersion,
                                     BYOK_CK_INTERFACE **ppInterface, CK_FLAGS flags);

// dlopen a module (NULL on failure; dlerror() says why) and look up one of its entry points by
// name (C_GetInterface, C_GetFunctionList, or an alternative such as NSS's FC_GetFunctionList),
// which Swift then calls through Module's one helper.
static inline void *byok_p11_dlopen(const char *path) {
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}
static inline CK_C_GetFunctionList byok_p11_function_list_symbol(void *handle, const char *name) {
    return (CK_C_GetFunctionList)dlsym(handle, name);
}
static inline BYOK_C_GetInterface byok_p11_interface_symbol(void *handle, const char *name) {
    return (BYOK_C_GetInterface)dlsym(handle, name);
}

// Wipes memory in a way the optimizer may not remove (PIN buffers).
static inline void byok_secure_zero(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

#endif
