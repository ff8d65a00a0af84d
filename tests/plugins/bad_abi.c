/* bad_abi.c — a plugin built for another ABI: the loader must refuse it. */
#include <murmer.h>

__attribute__((visibility("default"))) const uint32_t mm_plugin_abi =
    MM_PLUGIN_ABI + 41;

__attribute__((visibility("default"))) int mm_plugin_init(mm_plugin_ctx *ctx,
                                                          uint32_t abi);

__attribute__((visibility("default"))) int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    (void)ctx;
    (void)abi;
    return 0;
}
