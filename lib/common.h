/* common.h — small internal helpers shared by every module, with the whole
 * public API (murmer.h, and so libuv).  The sans-I/O cores include core.h
 * instead. */
#ifndef MM_COMMON_H
#define MM_COMMON_H

#include "include/murmer.h"
#include "core.h"

#endif /* MM_COMMON_H */
