/*
 * jsonv.c — strict JSON validation without a tree (see jsonv.h).
 */
#include "jsonv.h"

#include <stdint.h>
#include <string.h>

static const unsigned char *
skip_ws(const unsigned char *p, const unsigned char *e)
{
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* |p| is just past the opening quote: past the closing one, or NULL. */
static const unsigned char *
skip_string(const unsigned char *p, const unsigned char *e)
{
    /* 64-byte payloads are mostly one string: its plain runs at once. */
    for (;;) {
        p = (const unsigned char *)mm__json_plain_end((const char *)p,
                                                      (const char *)e);
        if (p == e) return NULL;
        unsigned char c = *p++;
        if (c == '"') return p;
        if (c < 0x20) return NULL; /* raw control byte */
        /* A backslash. */
        if (p == e) return NULL;
        switch (*p++) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            break;
        default: /* \u (surrogate rules) and anything else: ask cJSON */
            return NULL;
        }
    }
}

static const unsigned char *
skip_digits(const unsigned char *p, const unsigned char *e)
{
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    return p;
}

static const unsigned char *
skip_number(const unsigned char *p, const unsigned char *e)
{
    const unsigned char *b = p;
    if (p < e && *p == '-') p++;
    if (p == e) return NULL;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        p = skip_digits(p + 1, e);
    else
        return NULL;
    if (p < e && *p == '.') {
        p++;
        if (p == e || *p < '0' || *p > '9') return NULL;
        p = skip_digits(p, e);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p == e || *p < '0' || *p > '9') return NULL;
        p = skip_digits(p, e);
    }
    return p - b <= MM_JSONV_MAX_NUMBER ? p : NULL;
}

static const unsigned char *
skip_word(const unsigned char *p, const unsigned char *e, const char *w,
          size_t n)
{
    if ((size_t)(e - p) < n) return NULL;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)w[i]) return NULL;
    return p + n;
}

int
mm__json_fast_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    unsigned char open[MM_JSONV_MAX_DEPTH]; /* '{' or '[' per level */
    size_t depth = 0;

    if (s == NULL) return 0;
    p = skip_ws(p, e);
value:
    if (p == e) return 0;
    switch (*p) {
    case '{':
    case '[':
        if (depth == MM_JSONV_MAX_DEPTH) return 0;
        open[depth++] = *p;
        p = skip_ws(p + 1, e);
        if (p < e && *p == (open[depth - 1] == '{' ? '}' : ']')) {
            p++;
            depth--;
            goto after;
        }
        if (open[depth - 1] == '{') goto key;
        goto value;
    case '"':
        p = skip_string(p + 1, e);
        break;
    case 't':
        p = skip_word(p, e, "true", 4);
        break;
    case 'f':
        p = skip_word(p, e, "false", 5);
        break;
    case 'n':
        p = skip_word(p, e, "null", 4);
        break;
    default:
        p = skip_number(p, e);
        break;
    }
    if (p == NULL) return 0;
after:
    p = skip_ws(p, e);
    if (depth == 0) return p == e;
    if (p == e) return 0;
    if (*p == ',') {
        p = skip_ws(p + 1, e);
        if (open[depth - 1] == '{') goto key;
        goto value;
    }
    if (*p != (open[depth - 1] == '{' ? '}' : ']')) return 0;
    p++;
    depth--;
    goto after;
key:
    if (p == e || *p != '"') return 0;
    p = skip_string(p + 1, e);
    if (p == NULL) return 0;
    p = skip_ws(p, e);
    if (p == e || *p != ':') return 0;
    p = skip_ws(p + 1, e);
    goto value;
}
