/*
 * forwarding_module.c - a test-only PKCS#11 module that forwards to a real one.
 *
 * WHAT IT IS FOR
 *   byokd's tests need a token that misbehaves in controlled ways: one that ignores
 *   the OAEP hash the caller asked for (as SoftHSM 2.7.0 does), and one that fails
 *   calls, or loses all its sessions, at a moment the test chooses. This module
 *   sits between byokd and a real module (SoftHSM, NSS softokn, ...), forwards
 *   every PKCS#11 v2.40 call to it, and deviates only in the two ways below.
 *   Nothing else about the real module's behaviour is changed.
 *
 * BUILD (done by the tests)
 *   cc -shared -fPIC -O1 -Wall -Werror -o libbyok_forwarding.so \
 *      Tests/modules/forwarding_module.c $(pkg-config --cflags p11-kit-1) -ldl -lpthread
 *
 *   Only C_GetFunctionList is exported; every other entry point is reached through
 *   the function list it returns. (Keeping the wrappers static also avoids them
 *   interposing on the real module's own C_* symbols.) C_GetFunctionList works
 *   before C_Initialize.
 *
 * HOW THE TESTS DRIVE IT (environment, read in C_Initialize)
 *   BYOK_TEST_FORWARD_TO     Path of the real module. C_Initialize dlopens it
 *                            (RTLD_NOW|RTLD_LOCAL), fetches its function list and
 *                            forwards C_Initialize with the caller's pInitArgs
 *                            unchanged (NSS softokn reads pReserved). Missing
 *                            variable or failed load: CKR_GENERAL_ERROR plus one
 *                            line on stderr. C_Finalize forwards, then dlcloses.
 *   BYOK_TEST_LIE_OAEP_SHA1  When exactly "1": C_WrapKey with CKM_RSA_PKCS_OAEP
 *                            (CK_RSA_PKCS_OAEP_PARAMS) or CKM_RSA_AES_KEY_WRAP
 *                            (RSA_AES_KEY_WRAP_PARAMS -> CK_RSA_PKCS_OAEP_PARAMS) is
 *                            forwarded with a COPY of the parameters in which hashAlg
 *                            is CKM_SHA_1 and mgf is CKG_MGF1_SHA1, whatever the
 *                            caller asked for. The caller's memory is never touched.
 *   BYOK_TEST_WRAP_LOG       Path of a file to which every C_WrapKey appends one line:
 *                            "C_WrapKey query" when pWrappedKey is NULL (a size
 *                            query), "C_WrapKey fill" otherwise. For counting calls.
 *   BYOK_TEST_FAULT_FILE     Path of a fault file (see below). Unset, empty, or the
 *                            file missing: no faults.
 *   BYOK_TEST_NULL_FUNCTIONS Read in C_GetFunctionList, not C_Initialize: PKCS#11
 *                            names ("C_WrapKey C_Finalize", separated by spaces or
 *                            commas) whose entries in the returned function list are
 *                            NULL, as in a module that lacks them. Unknown names are
 *                            ignored. When C_Finalize is among them, unloading the
 *                            library finalizes a real module still initialised, so
 *                            the process can initialise it again.
 *   BYOK_TEST_INITIALIZE_RV  A CKR_ name or number: C_Initialize returns it at once,
 *                            without loading the real module (a module whose slot
 *                            daemon is not running answers CKR_HOST_MEMORY).
 *   BYOK_TEST_HIDE_MECHANISMS  Mechanism numbers (decimal or 0x hex, separated by
 *                            spaces or commas) the token seems not to have: left out
 *                            of C_GetMechanismList, CKR_MECHANISM_INVALID from
 *                            C_GetMechanismInfo and from every call given one
 *                            (C_*Init, C_GenerateKey(Pair), C_WrapKey, C_UnwrapKey).
 *   BYOK_TEST_CLEAR_MECHANISM_FLAGS  MECHANISM:FLAGS pairs (numbers, e.g.
 *                            "0x9:0x20000" clears CKF_WRAP of CKM_RSA_PKCS_OAEP):
 *                            C_GetMechanismInfo reports the mechanism without them.
 *
 * FAULT FILE
 *   Read (under a mutex) at the start of every call except C_GetFunctionList,
 *   C_Initialize and C_Finalize. One directive per line; '#' starts a comment;
 *   blank and malformed lines are ignored (and kept as they are on rewrite).
 *
 *     FUNCTION RV COUNT    FUNCTION is a PKCS#11 function name ("C_WrapKey") or "*"
 *                          for any function. RV is a CKR_ name (see rv_names below:
 *                          CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 *                          CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
 *                          CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_ERROR, CKR_GENERAL_ERROR,
 *                          CKR_FUNCTION_FAILED, and a few more) or a number (decimal
 *                          or 0x hex). COUNT is how many calls to fail (decimal).
 *                          The first line that matches the current function with
 *                          COUNT > 0 wins: the call returns RV without being
 *                          forwarded, COUNT is decremented and the file rewritten
 *                          (temp file in the same directory + rename). A line whose
 *                          count reaches 0 is dropped.
 *     TOKEN_FLAGS FLAGS    C_GetTokenInfo reports these flags (number) set, in
 *                          addition to the real ones, while the line is there
 *                          (it is never consumed): e.g. 0x20000 for
 *                          CKF_USER_PIN_FINAL_TRY.
 *     CLOSE_ALL_SESSIONS   Calls the real module's C_CloseAllSessions on every slot
 *                          C_GetSlotList(CK_TRUE) reports, once; the line is dropped
 *                          and the current call then proceeds normally (it is
 *                          forwarded, unless a fault line also matches it). The real
 *                          token thereby forgets every session and the login, so
 *                          later calls on old handles fail for real with
 *                          CKR_SESSION_HANDLE_INVALID.
 *
 *   Example:
 *     # fail the next two wraps as if the token had been pulled
 *     C_WrapKey CKR_DEVICE_REMOVED 2
 */

#define _POSIX_C_SOURCE 200809L

#include <p11-kit/pkcs11.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "byok_forwarding: "

/* PKCS#11 v2.40 CK_RSA_AES_KEY_WRAP_PARAMS, which p11-kit's header does not carry. */
typedef struct fw_rsa_aes_key_wrap_params {
    CK_ULONG ulAESKeyBits;
    CK_RSA_PKCS_OAEP_PARAMS *pOAEPParams;
} FW_RSA_AES_KEY_WRAP_PARAMS;

/* ------------------------------------------------------------------------- */
/* State                                                                     */
/* ------------------------------------------------------------------------- */

static void *g_handle;              /* dlopen handle of the real module        */
static CK_FUNCTION_LIST_PTR g_real; /* its function list; NULL = not loaded    */
static int g_lie_oaep_sha1;         /* BYOK_TEST_LIE_OAEP_SHA1=1               */
static char *g_lie_file;            /* BYOK_TEST_LIE_FILE: lie while it exists  */
static char *g_fault_file;          /* BYOK_TEST_FAULT_FILE, or NULL           */
static char *g_wrap_log;            /* BYOK_TEST_WRAP_LOG, or NULL             */
static pthread_mutex_t g_fault_lock = PTHREAD_MUTEX_INITIALIZER;
#define MAX_LISTED 32
static CK_MECHANISM_TYPE g_hidden[MAX_LISTED];       /* BYOK_TEST_HIDE_MECHANISMS */
static size_t g_nhidden;
static CK_MECHANISM_TYPE g_clear_mech[MAX_LISTED];   /* BYOK_TEST_CLEAR_MECHANISM_FLAGS */
static CK_FLAGS g_clear_flags[MAX_LISTED];
static size_t g_nclear;

/* ------------------------------------------------------------------------- */
/* Fault file                                                                */
/* ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    /* the ones the tests use */
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    /* a few more, for convenience */
    {"CKR_OK", CKR_OK},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_TOKEN_NOT_RECOGNIZED", CKR_TOKEN_NOT_RECOGNIZED},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
    {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
    {"CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID},
    {"CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID},
    {"CKR_SESSION_COUNT", CKR_SESSION_COUNT},
    {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
    {"CKR_ATTRIBUTE_VALUE_INVALID", CKR_ATTRIBUTE_VALUE_INVALID},
    {"CKR_TEMPLATE_INCONSISTENT", CKR_TEMPLATE_INCONSISTENT},
    {"CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED},
    {"CKR_TOKEN_WRITE_PROTECTED", CKR_TOKEN_WRITE_PROTECTED},
};

/* "CKR_..." or a decimal / 0x-hex number. Returns 0 on success. */
static int parse_rv(const char *s, CK_RV *out)
{
    for (size_t i = 0; i < sizeof rv_names / sizeof rv_names[0]; i++) {
        if (strcmp(s, rv_names[i].name) == 0) {
            *out = rv_names[i].rv;
            return 0;
        }
    }
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0); /* base 0: decimal, 0x hex (and 0 octal) */
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = (CK_RV)v;
    return 0;
}

/* Non-negative decimal count. Returns 0 on success. */
static int parse_count(const char *s, unsigned long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Reads the whole file into a NUL-terminated heap buffer. NULL if it cannot be read. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL; /* missing file = no faults */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* One line of the fault file, as parsed. */
enum line_kind { LINE_OTHER, LINE_FAULT, LINE_CLOSE_ALL };

struct line {
    char *raw;             /* the line as written (no '\n'), points into the buffer */
    enum line_kind kind;
    char func[64];         /* LINE_FAULT: function name or "*" */
    char rv_text[64];      /* LINE_FAULT: RV exactly as written */
    CK_RV rv;
    unsigned long count;
    const char *comment;   /* trailing "# ..." on the raw line, or NULL */
    int changed;           /* count was decremented */
    int dropped;           /* not written back */
};

/* Splits a line (comment and whitespace aware) into up to 4 tokens; fills *l. */
static void parse_line(struct line *l)
{
    char work[512];
    const char *hash = strchr(l->raw, '#');
    size_t n = hash ? (size_t)(hash - l->raw) : strlen(l->raw);
    l->kind = LINE_OTHER;
    l->comment = hash;
    if (n >= sizeof work)
        return; /* absurdly long: malformed */
    memcpy(work, l->raw, n);
    work[n] = '\0';

    char *tok[4];
    int ntok = 0;
    char *save = NULL;
    for (char *t = strtok_r(work, " \t\r\v\f", &save); t != NULL;
         t = strtok_r(NULL, " \t\r\v\f", &save)) {
        if (ntok == 4)
            return; /* too many fields: malformed */
        tok[ntok++] = t;
    }
    if (ntok == 1 && strcmp(tok[0], "CLOSE_ALL_SESSIONS") == 0) {
        l->kind = LINE_CLOSE_ALL;
        return;
    }
    if (ntok != 3)
        return;
    if (strlen(tok[0]) >= sizeof l->func || strlen(tok[1]) >= sizeof l->rv_text)
        return;
    if (strcmp(tok[0], "*") != 0 && strncmp(tok[0], "C_", 2) != 0)
        return;
    if (parse_rv(tok[1], &l->rv) != 0 || parse_count(tok[2], &l->count) != 0)
        return;
    strcpy(l->func, tok[0]);
    strcpy(l->rv_text, tok[1]);
    l->kind = LINE_FAULT;
}

/* Writes the surviving lines to a temp file next to `path` and renames it over. */
static void rewrite_file(const char *path, struct line *lines, size_t nlines)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 48);
    if (tmp == NULL)
        return;
    snprintf(tmp, plen + 48, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, LOG_PREFIX "cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return;
    }
    for (size_t i = 0; i < nlines; i++) {
        struct line *l = &lines[i];
        if (l->dropped)
            continue;
        if (l->changed)
            fprintf(f, "%s %s %lu%s%s\n", l->func, l->rv_text, l->count,
                    l->comment ? " " : "", l->comment ? l->comment : "");
        else
            fprintf(f, "%s\n", l->raw);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, LOG_PREFIX "cannot write %s\n", tmp);
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        fprintf(stderr, LOG_PREFIX "cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
}

/* CLOSE_ALL_SESSIONS: the real module forgets every session (and the login). */
static void close_all_sessions_on_real_module(void)
{
    CK_ULONG count = 0;
    if (g_real->C_GetSlotList == NULL || g_real->C_CloseAllSessions == NULL)
        return;
    if (g_real->C_GetSlotList(CK_TRUE, NULL, &count) != CKR_OK || count == 0)
        return;
    CK_SLOT_ID *slots = calloc(count, sizeof *slots);
    if (slots == NULL)
        return;
    if (g_real->C_GetSlotList(CK_TRUE, slots, &count) == CKR_OK) {
        for (CK_ULONG i = 0; i < count; i++)
            (void)g_real->C_CloseAllSessions(slots[i]);
    }
    free(slots);
}

/*
 * Consults the fault file for a call to `func`. Returns 1 and sets *rv when the call
 * must fail with *rv without being forwarded; 0 when it should be forwarded.
 */
static int fault_check(const char *func, CK_RV *rv)
{
    if (g_fault_file == NULL)
        return 0;

    int fail = 0;
    pthread_mutex_lock(&g_fault_lock);

    char *buf = read_file(g_fault_file);
    if (buf == NULL)
        goto out;

    /* Split into lines (in place). */
    size_t nlines = 0, cap = 0;
    struct line *lines = NULL;
    char *p = buf;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (nlines == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct line *nls = realloc(lines, ncap * sizeof *nls);
            if (nls == NULL)
                goto out_free;
            lines = nls;
            cap = ncap;
        }
        memset(&lines[nlines], 0, sizeof lines[nlines]);
        lines[nlines].raw = p;
        parse_line(&lines[nlines]);
        nlines++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }

    int dirty = 0, close_all = 0;
    for (size_t i = 0; i < nlines; i++) {
        struct line *l = &lines[i];
        if (l->kind == LINE_CLOSE_ALL) {
            close_all = 1;
            l->dropped = 1;
            dirty = 1;
        } else if (l->kind == LINE_FAULT && !fail && l->count > 0 &&
                   (strcmp(l->func, "*") == 0 || strcmp(l->func, func) == 0)) {
            fail = 1;
            *rv = l->rv;
            l->count--;
            l->changed = 1;
            l->dropped = (l->count == 0);
            dirty = 1;
        }
    }

    if (dirty)
        rewrite_file(g_fault_file, lines, nlines);
    if (close_all)
        close_all_sessions_on_real_module();

out_free:
    free(lines);
    free(buf);
out:
    pthread_mutex_unlock(&g_fault_lock);
    return fail;
}

/* TOKEN_FLAGS lines of the fault file, ORed together (the lines stay). */
static CK_FLAGS token_flags_from_file(void)
{
    CK_FLAGS flags = 0;
    if (g_fault_file == NULL)
        return 0;
    pthread_mutex_lock(&g_fault_lock);
    char *buf = read_file(g_fault_file);
    pthread_mutex_unlock(&g_fault_lock);
    if (buf == NULL)
        return 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char word[32];
        unsigned long long v;
        if (sscanf(line, " %31s %lli", word, &v) == 2 && strcmp(word, "TOKEN_FLAGS") == 0)
            flags |= (CK_FLAGS)v;
    }
    free(buf);
    return flags;
}

static int is_hidden(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < g_nhidden; i++)
        if (g_hidden[i] == m)
            return 1;
    return 0;
}

/* Reads "N N N" or "M:F,M:F" (numbers, decimal or 0x hex) into the lists above. */
static void read_mechanism_settings(void)
{
    g_nhidden = g_nclear = 0;
    const char *hide = getenv("BYOK_TEST_HIDE_MECHANISMS");
    if (hide != NULL) {
        char *work = strdup(hide), *save = NULL;
        for (char *t = work ? strtok_r(work, " ,", &save) : NULL; t != NULL && g_nhidden < MAX_LISTED;
             t = strtok_r(NULL, " ,", &save))
            g_hidden[g_nhidden++] = (CK_MECHANISM_TYPE)strtoull(t, NULL, 0);
        free(work);
    }
    const char *clear = getenv("BYOK_TEST_CLEAR_MECHANISM_FLAGS");
    if (clear != NULL) {
        char *work = strdup(clear), *save = NULL;
        for (char *t = work ? strtok_r(work, " ,", &save) : NULL; t != NULL && g_nclear < MAX_LISTED;
             t = strtok_r(NULL, " ,", &save)) {
            char *colon = strchr(t, ':');
            if (colon == NULL)
                continue;
            *colon = '\0';
            g_clear_mech[g_nclear] = (CK_MECHANISM_TYPE)strtoull(t, NULL, 0);
            g_clear_flags[g_nclear++] = (CK_FLAGS)strtoull(colon + 1, NULL, 0);
        }
        free(work);
    }
}

/* ------------------------------------------------------------------------- */
/* Plain forwards                                                            */
/* ------------------------------------------------------------------------- */

/*
 * FORWARD(name, (params), (args)) defines `static CK_RV fw_name(params)` that
 *   - fails with CKR_CRYPTOKI_NOT_INITIALIZED before a successful C_Initialize,
 *   - consults the fault file,
 *   - returns CKR_FUNCTION_NOT_SUPPORTED if the real module has no such entry,
 *   - and otherwise returns the real module's name(args).
 */
#define FORWARD(name, params, args)                  \
    static CK_RV fw_##name params                    \
    {                                                \
        CK_RV fault_rv;                              \
        if (g_real == NULL)                          \
            return CKR_CRYPTOKI_NOT_INITIALIZED;     \
        if (fault_check(#name, &fault_rv))           \
            return fault_rv;                         \
        if (g_real->name == NULL)                    \
            return CKR_FUNCTION_NOT_SUPPORTED;       \
        return g_real->name args;                    \
    }

/* FORWARD, and CKR_MECHANISM_INVALID for a mechanism BYOK_TEST_HIDE_MECHANISMS names. */
#define FORWARD_MECH(name, params, args, mech)                   \
    static CK_RV fw_##name params                                \
    {                                                            \
        CK_RV fault_rv;                                          \
        if (g_real == NULL)                                      \
            return CKR_CRYPTOKI_NOT_INITIALIZED;                 \
        if (fault_check(#name, &fault_rv))                       \
            return fault_rv;                                     \
        if ((mech) != NULL && is_hidden((mech)->mechanism))      \
            return CKR_MECHANISM_INVALID;                        \
        if (g_real->name == NULL)                                \
            return CKR_FUNCTION_NOT_SUPPORTED;                   \
        return g_real->name args;                                \
    }

/* General purpose, slots and tokens */
FORWARD(C_GetInfo, (CK_INFO_PTR pInfo), (pInfo))
FORWARD(C_GetSlotList, (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount),
        (tokenPresent, pSlotList, pulCount))
FORWARD(C_GetSlotInfo, (CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo), (slotID, pInfo))

/* C_GetTokenInfo, C_GetMechanismList and C_GetMechanismInfo: forwarded, then changed as
 * TOKEN_FLAGS, BYOK_TEST_HIDE_MECHANISMS and BYOK_TEST_CLEAR_MECHANISM_FLAGS say. */
static CK_RV fw_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    CK_RV fault_rv;
    if (g_real == NULL)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (fault_check("C_GetTokenInfo", &fault_rv))
        return fault_rv;
    CK_RV rv = g_real->C_GetTokenInfo(slotID, pInfo);
    if (rv == CKR_OK && pInfo != NULL)
        pInfo->flags |= token_flags_from_file();
    return rv;
}

static CK_RV fw_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
    CK_RV fault_rv;
    if (g_real == NULL)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (fault_check("C_GetMechanismList", &fault_rv))
        return fault_rv;
    if (g_nhidden == 0 || pulCount == NULL)
        return g_real->C_GetMechanismList(slotID, pMechanismList, pulCount);
    CK_ULONG n = 0;
    CK_RV rv = g_real->C_GetMechanismList(slotID, NULL, &n);
    if (rv != CKR_OK)
        return rv;
    CK_MECHANISM_TYPE *all = calloc(n ? n : 1, sizeof *all);
    if (all == NULL)
        return CKR_HOST_MEMORY;
    rv = g_real->C_GetMechanismList(slotID, all, &n);
    CK_ULONG kept = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        if (!is_hidden(all[i]))
            all[kept++] = all[i];
    if (rv == CKR_OK && pMechanismList != NULL) {
        if (*pulCount < kept)
            rv = CKR_BUFFER_TOO_SMALL;
        else
            memcpy(pMechanismList, all, kept * sizeof *all);
    }
    if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
        *pulCount = kept;
    free(all);
    return rv;
}

static CK_RV fw_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    CK_RV fault_rv;
    if (g_real == NULL)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (fault_check("C_GetMechanismInfo", &fault_rv))
        return fault_rv;
    if (is_hidden(type))
        return CKR_MECHANISM_INVALID;
    CK_RV rv = g_real->C_GetMechanismInfo(slotID, type, pInfo);
    for (size_t i = 0; rv == CKR_OK && pInfo != NULL && i < g_nclear; i++)
        if (g_clear_mech[i] == type)
            pInfo->flags &= ~g_clear_flags[i];
    return rv;
}
FORWARD(C_InitToken,
        (CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel),
        (slotID, pPin, ulPinLen, pLabel))
FORWARD(C_InitPIN, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen),
        (hSession, pPin, ulPinLen))
FORWARD(C_SetPIN,
        (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
         CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen),
        (hSession, pOldPin, ulOldLen, pNewPin, ulNewLen))
FORWARD(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved),
        (flags, pSlot, pReserved))

/* Sessions */
FORWARD(C_OpenSession,
        (CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
         CK_SESSION_HANDLE_PTR phSession),
        (slotID, flags, pApplication, Notify, phSession))
FORWARD(C_CloseSession, (CK_SESSION_HANDLE hSession), (hSession))
FORWARD(C_CloseAllSessions, (CK_SLOT_ID slotID), (slotID))
FORWARD(C_GetSessionInfo, (CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo), (hSession, pInfo))
FORWARD(C_GetOperationState,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen),
        (hSession, pOperationState, pulOperationStateLen))
FORWARD(C_SetOperationState,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,
         CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey),
        (hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey))
FORWARD(C_Login,
        (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen),
        (hSession, userType, pPin, ulPinLen))
FORWARD(C_Logout, (CK_SESSION_HANDLE hSession), (hSession))

/* Objects */
FORWARD(C_CreateObject,
        (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
         CK_OBJECT_HANDLE_PTR phObject),
        (hSession, pTemplate, ulCount, phObject))
FORWARD(C_CopyObject,
        (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
         CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject),
        (hSession, hObject, pTemplate, ulCount, phNewObject))
FORWARD(C_DestroyObject, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject), (hSession, hObject))
FORWARD(C_GetObjectSize, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize),
        (hSession, hObject, pulSize))
FORWARD(C_GetAttributeValue,
        (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
         CK_ULONG ulCount),
        (hSession, hObject, pTemplate, ulCount))
FORWARD(C_SetAttributeValue,
        (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
         CK_ULONG ulCount),
        (hSession, hObject, pTemplate, ulCount))
FORWARD(C_FindObjectsInit, (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),
        (hSession, pTemplate, ulCount))
FORWARD(C_FindObjects,
        (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
         CK_ULONG_PTR pulObjectCount),
        (hSession, phObject, ulMaxObjectCount, pulObjectCount))
FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE hSession), (hSession))

/* Encryption */
FORWARD_MECH(C_EncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
             (hSession, pMechanism, hKey), pMechanism)
FORWARD(C_Encrypt,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,
         CK_ULONG_PTR pulEncryptedDataLen),
        (hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen))
FORWARD(C_EncryptUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
         CK_ULONG_PTR pulEncryptedPartLen),
        (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
FORWARD(C_EncryptFinal,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen),
        (hSession, pLastEncryptedPart, pulLastEncryptedPartLen))

/* Decryption */
FORWARD_MECH(C_DecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
             (hSession, pMechanism, hKey), pMechanism)
FORWARD(C_Decrypt,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
         CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen),
        (hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen))
FORWARD(C_DecryptUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
         CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
        (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))
FORWARD(C_DecryptFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen),
        (hSession, pLastPart, pulLastPartLen))

/* Message digesting */
FORWARD(C_DigestInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism), (hSession, pMechanism))
FORWARD(C_Digest,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
         CK_ULONG_PTR pulDigestLen),
        (hSession, pData, ulDataLen, pDigest, pulDigestLen))
FORWARD(C_DigestUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
        (hSession, pPart, ulPartLen))
FORWARD(C_DigestKey, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey), (hSession, hKey))
FORWARD(C_DigestFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen),
        (hSession, pDigest, pulDigestLen))

/* Signing and MACing */
FORWARD_MECH(C_SignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
             (hSession, pMechanism, hKey), pMechanism)
FORWARD(C_Sign,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
         CK_ULONG_PTR pulSignatureLen),
        (hSession, pData, ulDataLen, pSignature, pulSignatureLen))
FORWARD(C_SignUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
        (hSession, pPart, ulPartLen))
FORWARD(C_SignFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),
        (hSession, pSignature, pulSignatureLen))
FORWARD(C_SignRecoverInit,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
        (hSession, pMechanism, hKey))
FORWARD(C_SignRecover,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
         CK_ULONG_PTR pulSignatureLen),
        (hSession, pData, ulDataLen, pSignature, pulSignatureLen))

/* Verifying signatures and MACs */
FORWARD_MECH(C_VerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
             (hSession, pMechanism, hKey), pMechanism)
FORWARD(C_Verify,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
         CK_ULONG ulSignatureLen),
        (hSession, pData, ulDataLen, pSignature, ulSignatureLen))
FORWARD(C_VerifyUpdate, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),
        (hSession, pPart, ulPartLen))
FORWARD(C_VerifyFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),
        (hSession, pSignature, ulSignatureLen))
FORWARD(C_VerifyRecoverInit,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),
        (hSession, pMechanism, hKey))
FORWARD(C_VerifyRecover,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, CK_BYTE_PTR pData,
         CK_ULONG_PTR pulDataLen),
        (hSession, pSignature, ulSignatureLen, pData, pulDataLen))

/* Dual-function cryptographic operations */
FORWARD(C_DigestEncryptUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
         CK_ULONG_PTR pulEncryptedPartLen),
        (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
FORWARD(C_DecryptDigestUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
         CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
        (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))
FORWARD(C_SignEncryptUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
         CK_ULONG_PTR pulEncryptedPartLen),
        (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))
FORWARD(C_DecryptVerifyUpdate,
        (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
         CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),
        (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))

/* Key management (C_WrapKey is below: it may lie) */
FORWARD_MECH(C_GenerateKey,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
         CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey),
        (hSession, pMechanism, pTemplate, ulCount, phKey), pMechanism)
FORWARD_MECH(C_GenerateKeyPair,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate,
         CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
         CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey,
         CK_OBJECT_HANDLE_PTR phPrivateKey),
        (hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate,
         ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey), pMechanism)
FORWARD_MECH(C_UnwrapKey,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
         CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
         CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),
        (hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,
         ulAttributeCount, phKey), pMechanism)
FORWARD(C_DeriveKey,
        (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
         CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),
        (hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey))

/* Random number generation */
FORWARD(C_SeedRandom, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen),
        (hSession, pSeed, ulSeedLen))
FORWARD(C_GenerateRandom, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen),
        (hSession, pRandomData, ulRandomLen))

/* Parallel function management (legacy) */
FORWARD(C_GetFunctionStatus, (CK_SESSION_HANDLE hSession), (hSession))
FORWARD(C_CancelFunction, (CK_SESSION_HANDLE hSession), (hSession))

/* ------------------------------------------------------------------------- */
/* C_WrapKey: forwarded, but with the OAEP hash forced to SHA-1 when lying   */
/* ------------------------------------------------------------------------- */

static CK_RV fw_C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                          CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    CK_RV fault_rv;
    if (g_real == NULL)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (fault_check("C_WrapKey", &fault_rv))
        return fault_rv;
    if (g_real->C_WrapKey == NULL)
        return CKR_FUNCTION_NOT_SUPPORTED;
    if (pMechanism != NULL && is_hidden(pMechanism->mechanism))
        return CKR_MECHANISM_INVALID;
    if (g_wrap_log != NULL) {
        FILE *f = fopen(g_wrap_log, "a");
        if (f != NULL) {
            fputs(pWrappedKey == NULL ? "C_WrapKey query\n" : "C_WrapKey fill\n", f);
            fclose(f);
        }
    }

    /* Copies that live for the duration of the forwarded call. */
    CK_MECHANISM mech;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    FW_RSA_AES_KEY_WRAP_PARAMS rsa_aes;
    CK_MECHANISM_PTR use = pMechanism;

    /* BYOK_TEST_LIE_FILE turns the lie on at run time, after an honest self-test. */
    int lie = g_lie_oaep_sha1 || (g_lie_file != NULL && access(g_lie_file, F_OK) == 0);
    if (lie && pMechanism != NULL && pMechanism->pParameter != NULL) {
        if (pMechanism->mechanism == CKM_RSA_PKCS_OAEP &&
            pMechanism->ulParameterLen == sizeof(CK_RSA_PKCS_OAEP_PARAMS)) {
            memcpy(&oaep, pMechanism->pParameter, sizeof oaep);
            oaep.hashAlg = CKM_SHA_1;
            oaep.mgf = CKG_MGF1_SHA1;
            mech = *pMechanism;
            mech.pParameter = &oaep;
            use = &mech;
        } else if (pMechanism->mechanism == CKM_RSA_AES_KEY_WRAP &&
                   pMechanism->ulParameterLen == sizeof(FW_RSA_AES_KEY_WRAP_PARAMS)) {
            memcpy(&rsa_aes, pMechanism->pParameter, sizeof rsa_aes);
            if (rsa_aes.pOAEPParams != NULL) {
                memcpy(&oaep, rsa_aes.pOAEPParams, sizeof oaep);
                oaep.hashAlg = CKM_SHA_1;
                oaep.mgf = CKG_MGF1_SHA1;
                rsa_aes.pOAEPParams = &oaep;
                mech = *pMechanism;
                mech.pParameter = &rsa_aes;
                use = &mech;
            }
        }
    }
    return g_real->C_WrapKey(hSession, use, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen);
}

/* ------------------------------------------------------------------------- */
/* Initialisation, finalisation, function list                               */
/* ------------------------------------------------------------------------- */

static void unload_real_module(void)
{
    g_real = NULL;
    if (g_handle != NULL)
        dlclose(g_handle);
    g_handle = NULL;
    free(g_fault_file);
    g_fault_file = NULL;
    g_lie_oaep_sha1 = 0;
}

static CK_RV fw_C_Initialize(CK_VOID_PTR pInitArgs)
{
    if (g_real != NULL) /* already loaded: let the real module answer (ALREADY_INITIALIZED) */
        return g_real->C_Initialize(pInitArgs);

    const char *init_rv = getenv("BYOK_TEST_INITIALIZE_RV");
    CK_RV forced;
    if (init_rv != NULL && init_rv[0] != '\0' && parse_rv(init_rv, &forced) == 0)
        return forced;
    read_mechanism_settings();

    const char *path = getenv("BYOK_TEST_FORWARD_TO");
    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, LOG_PREFIX "BYOK_TEST_FORWARD_TO is not set\n");
        return CKR_GENERAL_ERROR;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        fprintf(stderr, LOG_PREFIX "cannot load %s: %s\n", path, why ? why : "dlopen failed");
        return CKR_GENERAL_ERROR;
    }
    /* memcpy rather than a cast: ISO C has no object-to-function pointer conversion. */
    void *sym = dlsym(h, "C_GetFunctionList");
    CK_C_GetFunctionList get = NULL;
    CK_FUNCTION_LIST_PTR list = NULL;
    memcpy(&get, &sym, sizeof get);
    if (get == NULL) {
        fprintf(stderr, LOG_PREFIX "%s has no C_GetFunctionList\n", path);
        dlclose(h);
        return CKR_GENERAL_ERROR;
    }
    CK_RV rv = get(&list);
    if (rv != CKR_OK || list == NULL || list->C_Initialize == NULL) {
        fprintf(stderr, LOG_PREFIX "C_GetFunctionList of %s failed (rv 0x%lx)\n", path,
                (unsigned long)rv);
        dlclose(h);
        return CKR_GENERAL_ERROR;
    }

    const char *lie = getenv("BYOK_TEST_LIE_OAEP_SHA1");
    const char *faults = getenv("BYOK_TEST_FAULT_FILE");
    g_lie_oaep_sha1 = (lie != NULL && strcmp(lie, "1") == 0);
    const char *lie_file = getenv("BYOK_TEST_LIE_FILE");
    free(g_lie_file);
    g_lie_file = (lie_file != NULL && lie_file[0] != '\0') ? strdup(lie_file) : NULL;
    g_fault_file = (faults != NULL && faults[0] != '\0') ? strdup(faults) : NULL;
    const char *wrap_log = getenv("BYOK_TEST_WRAP_LOG");
    free(g_wrap_log);
    g_wrap_log = (wrap_log != NULL && wrap_log[0] != '\0') ? strdup(wrap_log) : NULL;
    g_handle = h;

    rv = list->C_Initialize(pInitArgs); /* pInitArgs unchanged: softokn reads pReserved */
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        unload_real_module();
        return rv;
    }
    g_real = list; /* from here on the wrappers forward */
    return rv;
}

static CK_RV fw_C_Finalize(CK_VOID_PTR pReserved)
{
    if (g_real == NULL)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    CK_RV rv = g_real->C_Finalize ? g_real->C_Finalize(pReserved) : CKR_OK;
    if (rv == CKR_OK)
        unload_real_module();
    return rv;
}

static const CK_FUNCTION_LIST fw_all_functions = {
    .version = {2, 40},
    .C_Initialize = fw_C_Initialize,
    .C_Finalize = fw_C_Finalize,
    .C_GetInfo = fw_C_GetInfo,
    .C_GetFunctionList = C_GetFunctionList,
    .C_GetSlotList = fw_C_GetSlotList,
    .C_GetSlotInfo = fw_C_GetSlotInfo,
    .C_GetTokenInfo = fw_C_GetTokenInfo,
    .C_GetMechanismList = fw_C_GetMechanismList,
    .C_GetMechanismInfo = fw_C_GetMechanismInfo,
    .C_InitToken = fw_C_InitToken,
    .C_InitPIN = fw_C_InitPIN,
    .C_SetPIN = fw_C_SetPIN,
    .C_OpenSession = fw_C_OpenSession,
    .C_CloseSession = fw_C_CloseSession,
    .C_CloseAllSessions = fw_C_CloseAllSessions,
    .C_GetSessionInfo = fw_C_GetSessionInfo,
    .C_GetOperationState = fw_C_GetOperationState,
    .C_SetOperationState = fw_C_SetOperationState,
    .C_Login = fw_C_Login,
    .C_Logout = fw_C_Logout,
    .C_CreateObject = fw_C_CreateObject,
    .C_CopyObject = fw_C_CopyObject,
    .C_DestroyObject = fw_C_DestroyObject,
    .C_GetObjectSize = fw_C_GetObjectSize,
    .C_GetAttributeValue = fw_C_GetAttributeValue,
    .C_SetAttributeValue = fw_C_SetAttributeValue,
    .C_FindObjectsInit = fw_C_FindObjectsInit,
    .C_FindObjects = fw_C_FindObjects,
    .C_FindObjectsFinal = fw_C_FindObjectsFinal,
    .C_EncryptInit = fw_C_EncryptInit,
    .C_Encrypt = fw_C_Encrypt,
    .C_EncryptUpdate = fw_C_EncryptUpdate,
    .C_EncryptFinal = fw_C_EncryptFinal,
    .C_DecryptInit = fw_C_DecryptInit,
    .C_Decrypt = fw_C_Decrypt,
    .C_DecryptUpdate = fw_C_DecryptUpdate,
    .C_DecryptFinal = fw_C_DecryptFinal,
    .C_DigestInit = fw_C_DigestInit,
    .C_Digest = fw_C_Digest,
    .C_DigestUpdate = fw_C_DigestUpdate,
    .C_DigestKey = fw_C_DigestKey,
    .C_DigestFinal = fw_C_DigestFinal,
    .C_SignInit = fw_C_SignInit,
    .C_Sign = fw_C_Sign,
    .C_SignUpdate = fw_C_SignUpdate,
    .C_SignFinal = fw_C_SignFinal,
    .C_SignRecoverInit = fw_C_SignRecoverInit,
    .C_SignRecover = fw_C_SignRecover,
    .C_VerifyInit = fw_C_VerifyInit,
    .C_Verify = fw_C_Verify,
    .C_VerifyUpdate = fw_C_VerifyUpdate,
    .C_VerifyFinal = fw_C_VerifyFinal,
    .C_VerifyRecoverInit = fw_C_VerifyRecoverInit,
    .C_VerifyRecover = fw_C_VerifyRecover,
    .C_DigestEncryptUpdate = fw_C_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = fw_C_DecryptDigestUpdate,
    .C_SignEncryptUpdate = fw_C_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = fw_C_DecryptVerifyUpdate,
    .C_GenerateKey = fw_C_GenerateKey,
    .C_GenerateKeyPair = fw_C_GenerateKeyPair,
    .C_WrapKey = fw_C_WrapKey,
    .C_UnwrapKey = fw_C_UnwrapKey,
    .C_DeriveKey = fw_C_DeriveKey,
    .C_SeedRandom = fw_C_SeedRandom,
    .C_GenerateRandom = fw_C_GenerateRandom,
    .C_GetFunctionStatus = fw_C_GetFunctionStatus,
    .C_CancelFunction = fw_C_CancelFunction,
    .C_WaitForSlotEvent = fw_C_WaitForSlotEvent,
};

/* Where each entry sits in CK_FUNCTION_LIST, for BYOK_TEST_NULL_FUNCTIONS. */
#define ENTRY(name) {#name, offsetof(CK_FUNCTION_LIST, name)}
static const struct {
    const char *name;
    size_t offset;
} entries[] = {
    ENTRY(C_Initialize), ENTRY(C_Finalize), ENTRY(C_GetInfo), ENTRY(C_GetFunctionList),
    ENTRY(C_GetSlotList), ENTRY(C_GetSlotInfo), ENTRY(C_GetTokenInfo), ENTRY(C_GetMechanismList),
    ENTRY(C_GetMechanismInfo), ENTRY(C_InitToken), ENTRY(C_InitPIN), ENTRY(C_SetPIN),
    ENTRY(C_OpenSession), ENTRY(C_CloseSession), ENTRY(C_CloseAllSessions), ENTRY(C_GetSessionInfo),
    ENTRY(C_GetOperationState), ENTRY(C_SetOperationState), ENTRY(C_Login), ENTRY(C_Logout),
    ENTRY(C_CreateObject), ENTRY(C_CopyObject), ENTRY(C_DestroyObject), ENTRY(C_GetObjectSize),
    ENTRY(C_GetAttributeValue), ENTRY(C_SetAttributeValue), ENTRY(C_FindObjectsInit),
    ENTRY(C_FindObjects), ENTRY(C_FindObjectsFinal), ENTRY(C_EncryptInit), ENTRY(C_Encrypt),
    ENTRY(C_EncryptUpdate), ENTRY(C_EncryptFinal), ENTRY(C_DecryptInit), ENTRY(C_Decrypt),
    ENTRY(C_DecryptUpdate), ENTRY(C_DecryptFinal), ENTRY(C_DigestInit), ENTRY(C_Digest),
    ENTRY(C_DigestUpdate), ENTRY(C_DigestKey), ENTRY(C_DigestFinal), ENTRY(C_SignInit),
    ENTRY(C_Sign), ENTRY(C_SignUpdate), ENTRY(C_SignFinal), ENTRY(C_SignRecoverInit),
    ENTRY(C_SignRecover), ENTRY(C_VerifyInit), ENTRY(C_Verify), ENTRY(C_VerifyUpdate),
    ENTRY(C_VerifyFinal), ENTRY(C_VerifyRecoverInit), ENTRY(C_VerifyRecover),
    ENTRY(C_DigestEncryptUpdate), ENTRY(C_DecryptDigestUpdate), ENTRY(C_SignEncryptUpdate),
    ENTRY(C_DecryptVerifyUpdate), ENTRY(C_GenerateKey), ENTRY(C_GenerateKeyPair),
    ENTRY(C_WrapKey), ENTRY(C_UnwrapKey), ENTRY(C_DeriveKey), ENTRY(C_SeedRandom),
    ENTRY(C_GenerateRandom), ENTRY(C_GetFunctionStatus), ENTRY(C_CancelFunction),
    ENTRY(C_WaitForSlotEvent),
};
#undef ENTRY

/* The list handed out: every entry, less those BYOK_TEST_NULL_FUNCTIONS names. */
static CK_FUNCTION_LIST fw_function_list;
static int g_finalize_on_unload; /* C_Finalize was handed out as NULL */

static void null_entries(CK_FUNCTION_LIST *list, const char *names)
{
    char *work = strdup(names);
    if (work == NULL)
        return;
    char *save = NULL;
    for (char *t = strtok_r(work, " ,\t", &save); t != NULL; t = strtok_r(NULL, " ,\t", &save)) {
        for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
            if (strcmp(t, entries[i].name) == 0) {
                /* Every entry is a function pointer of the same size. */
                memset((char *)list + entries[i].offset, 0, sizeof list->C_Initialize);
            }
        }
    }
    free(work);
}

/* The module's only exported symbol. Works before C_Initialize. */
__attribute__((visibility("default")))
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (ppFunctionList == NULL)
        return CKR_ARGUMENTS_BAD;
    fw_function_list = fw_all_functions;
    const char *nulls = getenv("BYOK_TEST_NULL_FUNCTIONS");
    if (nulls != NULL)
        null_entries(&fw_function_list, nulls);
    g_finalize_on_unload = fw_function_list.C_Finalize == NULL;
    *ppFunctionList = &fw_function_list;
    return CKR_OK;
}

/* A caller that could not call C_Finalize (it was NULL) leaves the real module initialised;
 * finalize it when this library is unloaded, so the process can initialise it again. Only
 * then: at process exit the real module may already have run its own destructors. */
__attribute__((destructor))
static void fw_unload(void)
{
    if (!g_finalize_on_unload || g_real == NULL)
        return;
    if (g_real->C_Finalize != NULL)
        g_real->C_Finalize(NULL);
    unload_real_module();
}
