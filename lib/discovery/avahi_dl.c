/* avahi_dl.c — loads avahi-common and avahi-client on first use. */
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/simple-watch.h>
#include <avahi-common/timeval.h>

#define MM_AVAHI_DL_IMPL
#include "avahi_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common.h"

struct mm_avahi_fns mm__avahi;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc = MM_EUNREACHABLE;
static char load_why[256];

static void
load(void)
{
    /* RTLD_GLOBAL: avahi-client resolves avahi-common's symbols. */
    void *common = dlopen("libavahi-common.so.3", RTLD_NOW | RTLD_GLOBAL);
    void *client =
        common ? dlopen("libavahi-client.so.3", RTLD_NOW | RTLD_GLOBAL) : NULL;
    if (!common || !client) {
        snprintf(load_why, sizeof(load_why), "cannot load avahi-client: %s",
                 dlerror());
        return;
    }
#define MM__AVAHI_SYM(f)                                                       \
    {                                                                          \
        void *p = dlsym(client, #f);                                           \
        if (!p) p = dlsym(common, #f);                                         \
        if (!p) {                                                              \
            snprintf(load_why, sizeof(load_why), "avahi lacks %s", #f);        \
            return;                                                            \
        }                                                                      \
        memcpy(&mm__avahi.f, &p, sizeof(p));                                   \
    }
    MM_AVAHI_FNS(MM__AVAHI_SYM)
#undef MM__AVAHI_SYM
    load_rc = 0; /* never dlclose: handles are process-wide */
}

int
mm__avahi_load(char *why, size_t whylen)
{
    pthread_once(&load_once, load);
    if (load_rc && why && whylen) snprintf(why, whylen, "%s", load_why);
    return load_rc;
}
