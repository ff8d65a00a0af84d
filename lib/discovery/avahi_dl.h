/*
 * avahi_dl.h — avahi-client through dlopen, loaded the first time mDNS is
 * used.  Linking avahi-client directly pulls about ten libraries (D-Bus,
 * libsystemd, libgcrypt, compressors...) into every process that links
 * libmurmer, which costs the CLI ~2 ms of start-up on each run although
 * it never uses mDNS unless it has no seed.
 *
 * Include after the avahi headers; calls keep their names (macros below
 * route them through the table).  mm__avahi_load() is thread-safe.
 */
#ifndef MM_AVAHI_DL_H
#define MM_AVAHI_DL_H

#define MM_AVAHI_FNS(X)                                                        \
    X(avahi_strerror)                                                          \
    X(avahi_client_errno)                                                      \
    X(avahi_simple_poll_get)                                                   \
    X(avahi_entry_group_reset)                                                 \
    X(avahi_service_browser_free)                                              \
    X(avahi_client_free)                                                       \
    X(avahi_simple_poll_new)                                                   \
    X(avahi_simple_poll_iterate)                                               \
    X(avahi_simple_poll_free)                                                  \
    X(avahi_service_resolver_new)                                              \
    X(avahi_service_resolver_free)                                             \
    X(avahi_service_browser_new)                                               \
    X(avahi_client_new)                                                        \
    X(avahi_client_get_state)                                                  \
    X(avahi_string_list_new)                                                   \
    X(avahi_string_list_get_text)                                              \
    X(avahi_string_list_get_size)                                              \
    X(avahi_string_list_get_next)                                              \
    X(avahi_string_list_free)                                                  \
    X(avahi_simple_poll_quit)                                                  \
    X(avahi_free)                                                              \
    X(avahi_entry_group_new)                                                   \
    X(avahi_entry_group_is_empty)                                              \
    X(avahi_entry_group_free)                                                  \
    X(avahi_entry_group_commit)                                                \
    X(avahi_entry_group_add_service_strlst)                                    \
    X(avahi_elapse_time)                                                       \
    X(avahi_alternative_service_name)                                          \
    X(avahi_address_snprint)

struct mm_avahi_fns {
#define MM__AVAHI_FIELD(f) __typeof__(&f) f;
    MM_AVAHI_FNS(MM__AVAHI_FIELD)
#undef MM__AVAHI_FIELD
};
extern struct mm_avahi_fns mm__avahi;

/* 0 once the libraries are loaded, else MM_EUNREACHABLE (and a reason in
 * |why|, which may be NULL). */
int mm__avahi_load(char *why, size_t whylen);

#ifndef MM_AVAHI_DL_IMPL
#define avahi_strerror (mm__avahi.avahi_strerror)
#define avahi_client_errno (mm__avahi.avahi_client_errno)
#define avahi_simple_poll_get (mm__avahi.avahi_simple_poll_get)
#define avahi_entry_group_reset (mm__avahi.avahi_entry_group_reset)
#define avahi_service_browser_free (mm__avahi.avahi_service_browser_free)
#define avahi_client_free (mm__avahi.avahi_client_free)
#define avahi_simple_poll_new (mm__avahi.avahi_simple_poll_new)
#define avahi_simple_poll_iterate (mm__avahi.avahi_simple_poll_iterate)
#define avahi_simple_poll_free (mm__avahi.avahi_simple_poll_free)
#define avahi_service_resolver_new (mm__avahi.avahi_service_resolver_new)
#define avahi_service_resolver_free (mm__avahi.avahi_service_resolver_free)
#define avahi_service_browser_new (mm__avahi.avahi_service_browser_new)
#define avahi_client_new (mm__avahi.avahi_client_new)
#define avahi_client_get_state (mm__avahi.avahi_client_get_state)
#define avahi_string_list_new (mm__avahi.avahi_string_list_new)
#define avahi_string_list_get_text (mm__avahi.avahi_string_list_get_text)
#define avahi_string_list_get_size (mm__avahi.avahi_string_list_get_size)
#define avahi_string_list_get_next (mm__avahi.avahi_string_list_get_next)
#define avahi_string_list_free (mm__avahi.avahi_string_list_free)
#define avahi_simple_poll_quit (mm__avahi.avahi_simple_poll_quit)
#define avahi_free (mm__avahi.avahi_free)
#define avahi_entry_group_new (mm__avahi.avahi_entry_group_new)
#define avahi_entry_group_is_empty (mm__avahi.avahi_entry_group_is_empty)
#define avahi_entry_group_free (mm__avahi.avahi_entry_group_free)
#define avahi_entry_group_commit (mm__avahi.avahi_entry_group_commit)
#define avahi_entry_group_add_service_strlst                                   \
    (mm__avahi.avahi_entry_group_add_service_strlst)
#define avahi_elapse_time (mm__avahi.avahi_elapse_time)
#define avahi_alternative_service_name                                         \
    (mm__avahi.avahi_alternative_service_name)
#define avahi_address_snprint (mm__avahi.avahi_address_snprint)
#endif

#endif /* MM_AVAHI_DL_H */
