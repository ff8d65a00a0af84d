/* test_shards.c — the runtime suite with two shards (also the TSan target). */
#define TEST_SHARDS 2
#include "test_runtime.c"
