#ifndef BYOKD_CURL_SHIM_H
#define BYOKD_CURL_SHIM_H
#include <curl/curl.h>
// curl_easy_setopt and curl_easy_getinfo are variadic: typed wrappers Swift can call.
static inline CURLcode byok_curl_set_long(CURL *c, CURLoption o, long v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode byok_curl_set_ptr(CURL *c, CURLoption o, const void *v) { return curl_easy_setopt(c, o, v); }
typedef size_t (*byok_curl_write_fn)(char *, size_t, size_t, void *);
static inline CURLcode byok_curl_set_write(CURL *c, byok_curl_write_fn f, void *ud) {
    CURLcode r = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, f);
    if (r != CURLE_OK) return r;
    return curl_easy_setopt(c, CURLOPT_WRITEDATA, ud);
}
static inline long byok_curl_status(CURL *c) { long s = 0; curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s); return s; }
#endif
