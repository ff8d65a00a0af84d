/* common.h — small internal helpers shared by every module, with the whole
 * public API (murmer.h) and libuv.  The sans-I/O cores include core.h
 * instead. */
#ifndef MM_COMMON_H
#define MM_COMMON_H

#include <uv.h>

#include "include/murmer.h"
#include "core.h"

struct stat;
/*
 * Reads the whole regular file |path| (at most |max| bytes) into |*out|,
 * NUL-terminated, the caller's to free (and to wipe when secret).
 * |*outlen| (when not NULL) gets its length, |*st| (when not NULL) its
 * fstat, also on the UV_EINVAL and UV_EFBIG failures.  0, -errno (open,
 * read), UV_EINVAL (not a regular file), UV_EFBIG (over |max|) or
 * UV_ENOMEM.
 */
int mm__read_small_file(const char *path, size_t max, char **out,
                        size_t *outlen, struct stat *st);

#endif /* MM_COMMON_H */
