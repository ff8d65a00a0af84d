/* err.c — the error table of murmer_base.h, rendered as functions. */
#include "common.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

/*
 * The sans-I/O cores return negative errnos (-ENOMEM) without seeing
 * uv.h; the rest of the library and its callers compare with UV_E*.  Both
 * must name the same values (libuv's UV_E* are -errno on Unix).
 */
#define ERR_SAME_AS_UV(XX)                                                     \
    XX(ENOMEM)                                                                 \
    XX(EIO)                                                                    \
    XX(EINVAL)                                                                 \
    XX(ENOENT)                                                                 \
    XX(ECONNREFUSED)                                                           \
    XX(ECONNRESET)                                                             \
    XX(ETIMEDOUT)                                                              \
    XX(EHOSTUNREACH)                                                           \
    XX(ENETUNREACH)
#define XX(e) _Static_assert(-e == UV_##e, "UV_" #e " is not -" #e);
ERR_SAME_AS_UV(XX)
#undef XX

const char *
mm_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define XX(s, c, w, e, n, m)                                                   \
    case c:                                                                    \
        return m;
        MM_ERR_MAP(XX)
#undef XX
    default:
        return uv_strerror(err);
    }
}

const char *
mm_err_name(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define XX(s, c, w, e, n, m)                                                   \
    case c:                                                                    \
        return n;
        MM_ERR_MAP(XX)
#undef XX
    default:
        return uv_err_name(err);
    }
}

int
mm_err_from_name(const char *name)
{
#define XX(s, c, w, e, n, m)                                                   \
    if (strcmp(name, n) == 0) return c;
    MM_ERR_MAP(XX)
#undef XX
    return 0;
}

int
mm_err_exit_code(int err)
{
    switch (err) {
    case 0:
        return 0;
#define XX(s, c, w, e, n, m)                                                   \
    case c:                                                                    \
        return e;
        MM_ERR_MAP(XX)
#undef XX
    case UV_ECONNREFUSED:
    case UV_ETIMEDOUT:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
        return MM_EXIT_UNAVAILABLE;
    case UV_EINVAL:
        return MM_EXIT_USAGE;
    case UV_ENOENT:
        return MM_EXIT_NOTFOUND;
    default:
        return 1;
    }
}

uint16_t
mm_err_to_wire(int err)
{
    switch (err) {
    case 0:
        return 0;
#define XX(s, c, w, e, n, m)                                                   \
    case c:                                                                    \
        return w;
        MM_ERR_MAP(XX)
#undef XX
    default:
        if (err < 0 && err > -0x8000)
            return (uint16_t)(0x8000 | (uint16_t)(-err));
        return mm_err_to_wire(MM_EHANDLER);
    }
}

int
mm_err_from_wire(uint16_t status)
{
    if (status == 0) return 0;
    if (status & 0x8000) return -(int)(status & 0x7fff);
    switch (status) {
#define XX(s, c, w, e, n, m)                                                   \
    case w:                                                                    \
        return c;
        MM_ERR_MAP(XX)
#undef XX
    default:
        return MM_EDECODE;
    }
}

const char *
mm_reason_name(int reason)
{
    static const char *const names[] = {
        "normal",    "crash",     "stopped", "restart_limit", "shutdown",
        "not_found", "node_down", "dropped", "start_failed"};
    if (reason >= 0 && (size_t)reason < MM_ARRAY_SIZE(names))
        return names[reason];
    return "unknown";
}
