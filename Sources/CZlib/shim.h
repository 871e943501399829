#ifndef BYOKD_ZLIB_SHIM_H
#define BYOKD_ZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro.
static inline int byok_inflate_init_raw(z_stream *s) { return inflateInit2(s, -15); }
#endif
