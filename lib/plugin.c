/*
 * plugin.c — loading actor types from shared objects (docs/design.md, Plugins).
 *
 * dlopen(RTLD_NOW | RTLD_LOCAL): unresolved symbols fail the load at once
 * rather than at the first message, and a plugin's own symbols never
 * interpose on another's.  Plugins are never unloaded: their handlers and
 * type descriptors are referenced for the node's whole life.
 */
#include "runtime.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>

struct mm_plugin_ctx {
    mm_node *node;
    const char *path;
    unsigned registered;
};

mm_node *
mm_plugin_node(mm_plugin_ctx *ctx)
{
    return ctx->node;
}

int
mm_plugin_register_type(mm_plugin_ctx *ctx, const mm_actor_type *t)
{
    int rc = mm_node_register_type(ctx->node, t);
    if (rc == 0) {
        ctx->registered++;
        MM_LOG(MM_LOG_INFO, "plugin", "%s: type '%s'", ctx->path, t->name);
    }
    return rc;
}

static int plugin_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
plugin_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int
mm_node_load_plugin(mm_node *n, const char *path, char *err, size_t errlen)
{
    if (!path || !*path)
        return plugin_fail(err, errlen, MM_EINVAL, "empty plugin path");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return plugin_fail(err, errlen, MM_EINVAL, "cannot load %s: %s", path,
                           dlerror());
    const uint32_t *abi = dlsym(h, "mm_plugin_abi");
    void *sym = dlsym(h, "mm_plugin_init");
    if (!abi || !sym) {
        dlclose(h);
        return plugin_fail(err, errlen, MM_EINVAL,
                           "%s is not a murmer plugin (no %s)", path,
                           abi ? "mm_plugin_init" : "mm_plugin_abi");
    }
    uint32_t want = *abi;
    if (want != MM_PLUGIN_ABI) {
        dlclose(h);
        return plugin_fail(err, errlen, MM_EINVAL,
                           "%s: plugin ABI %u, this murmer speaks %u", path,
                           (unsigned)want, (unsigned)MM_PLUGIN_ABI);
    }
    mm_plugin_init_fn init;
    memcpy(&init, &sym, sizeof(init)); /* object to function pointer */
    mm_plugin_ctx ctx = {n, path, 0};
    int rc = init(&ctx, MM_PLUGIN_ABI);
    if (rc != 0) {
        /* Types it registered may be referenced: never unload. */
        return plugin_fail(err, errlen, rc < 0 ? rc : MM_EINVAL,
                           "%s: init failed: %s", path,
                           mm_strerror(rc < 0 ? rc : MM_EINVAL));
    }
    MM_LOG(MM_LOG_INFO, "plugin", "loaded %s (%u types)", path, ctx.registered);
    return 0; /* never dlclose(h) */
}
