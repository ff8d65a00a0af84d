/*
 * send.c — `murmer send LABEL MESSAGE [JSON|-]`: call an actor and print
 * its reply; `murmer send --key KEY MESSAGE [JSON|-]` calls every actor
 * checked in under KEY and reports "delivered k/N".
 *
 * The payload is validated before anything else: a malformed payload is
 * reported with its byte offset and exit 6, and no connection is made.
 * Output schema murmer.send/1 (see murmer-send(1)).
 *
 * `murmer send --stdin LABEL` reads JSON Lines ({"message": NAME,
 * "payload": JSON}) and writes one JSON line per input line, in input
 * order, with at most --window calls in flight on one connection.
 */
#include "../cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The default frame limit; a bigger payload could never be delivered. */
#define SEND_MAX_PAYLOAD (4u << 20)

static cJSON *
send_result_json(const mm_send_result *r)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    char ep[96];
    if (r->label) cJSON_AddStringToObject(o, "label", r->label);
    cJSON_AddStringToObject(o, "endpoint",
                            mm_endpoint_format(&r->ep, ep, sizeof(ep)));
    cJSON_AddStringToObject(o, "status",
                            r->status ? mm_err_name(r->status) : "ok");
    if (r->status == 0) {
        cJSON_AddItemToObject(o, "reply", cli_json_embed(r->body, r->len));
    } else {
        cJSON *e = r->body ? cli_json_embed(r->body, r->len)
                           : cJSON_CreateString(mm_strerror(r->status));
        cJSON_AddItemToObject(o, "error", e);
    }
    return o;
}

/* The reply text: a JSON string error is shown without its quotes. */
static void
send_text_body(const mm_send_result *r, char *buf, size_t len)
{
    if (r->body == NULL || r->len == 0) {
        snprintf(buf, len, "%s", r->status ? mm_strerror(r->status) : "null");
        return;
    }
    if (r->status != 0) {
        cJSON *v = cJSON_ParseWithLength(r->body, r->len);
        if (v && cJSON_IsString(v)) {
            snprintf(buf, len, "%s", cJSON_GetStringValue(v));
            cJSON_Delete(v);
            return;
        }
        cJSON_Delete(v);
    }
    snprintf(buf, len, "%.*s", (int)r->len, r->body);
}

int
cli_send_render(struct cli_ctx *ctx, const char *key, const char *type,
                const mm_send_result *r, size_t n, FILE *f)
{
    size_t ok = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].status == 0)
            ok++;
        else if (worst == 0)
            worst = mm_err_exit_code(r[i].status);
    }
    int code;
    if (key != NULL)
        code = n == 0 ? MM_EXIT_NOTFOUND : ok == n ? 0 : MM_EXIT_ACTOR;
    else
        code = n == 0 ? MM_EXIT_NOTFOUND : worst;

    if (ctx->json) {
        cJSON *doc = cli_json_doc("murmer.send/1");
        if (doc == NULL) return MM_EXIT_ACTOR;
        cJSON_AddStringToObject(doc, "message", type);
        if (key) {
            cJSON_AddStringToObject(doc, "key", key);
            cJSON_AddNumberToObject(doc, "delivered", (double)ok);
            cJSON_AddNumberToObject(doc, "total", (double)n);
            cJSON *arr = cJSON_AddArrayToObject(doc, "results");
            for (size_t i = 0; arr && i < n; i++)
                cJSON_AddItemToArray(arr, send_result_json(&r[i]));
        } else if (n > 0) {
            cJSON *one = send_result_json(&r[0]);
            cJSON *it = one ? one->child : NULL;
            while (it) {
                cJSON *next = it->next;
                cJSON_AddItemToObject(doc, it->string,
                                      cJSON_DetachItemViaPointer(one, it));
                it = next;
            }
            cJSON_Delete(one);
        }
        cli_json_print(doc, f);
        cJSON_Delete(doc);
    } else if (key == NULL) {
        if (n > 0 && r[0].status == 0) {
            char *body = malloc(r[0].len + 8);
            if (body) {
                send_text_body(&r[0], body, r[0].len + 8);
                fprintf(f, "%s\n", body);
                free(body);
            }
        }
    } else {
        static const char *const hdr[] = {"LABEL", "STATUS", "REPLY"};
        struct cli_table t;
        if (cli_table_init(&t, 3, hdr) == 0) {
            for (size_t i = 0; i < n; i++) {
                char body[512];
                send_text_body(&r[i], body, sizeof(body));
                const char *row[] = {
                    r[i].label, r[i].status ? mm_err_name(r[i].status) : "ok",
                    body};
                cli_table_add(&t, row);
                cli_table_color(&t, 1,
                                r[i].status ? CLI_COLOR_RED : CLI_COLOR_GREEN);
            }
            cli_table_print(ctx, &t, f);
            cli_table_release(&t);
        }
        fprintf(f, "delivered %zu/%zu\n", ok, n);
    }
    fflush(f);

    /* Failures also get their one diagnostic line on stderr. */
    if (key == NULL && n > 0 && r[0].status != 0) {
        char body[512];
        send_text_body(&r[0], body, sizeof(body));
        cli_error(ctx, code, "%s: %s: %s", r[0].label ? r[0].label : "?",
                  mm_err_name(r[0].status), body);
    } else if (key != NULL && code != 0) {
        cli_error(ctx, code, "delivered %zu/%zu under key '%s'", ok, n, key);
    }
    return code;
}

/* Reads all of stdin, at most SEND_MAX_PAYLOAD bytes; NUL-terminated. */
static int
send_read_stdin(struct cli_ctx *ctx, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > SEND_MAX_PAYLOAD) {
                free(buf);
                return cli_error(ctx, MM_EXIT_INPUT,
                                 "payload on stdin is larger than %u bytes",
                                 SEND_MAX_PAYLOAD);
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return cli_error(ctx, MM_EXIT_ACTOR, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            free(buf);
            return cli_error(ctx, MM_EXIT_INPUT, "cannot read stdin: %s",
                             strerror(errno));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > SEND_MAX_PAYLOAD) {
        free(buf);
        return cli_error(ctx, MM_EXIT_INPUT,
                         "payload on stdin is larger than %u bytes",
                         SEND_MAX_PAYLOAD);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* ---- --stdin: JSON Lines in, one JSON line out per line ------------- */

/* A line longer than this is answered invalid_argument (and skipped). */
#define SEND_MAX_LINE (SEND_MAX_PAYLOAD + 4096u)

struct bulk {
    struct cli_ctx *ctx;
    FILE *in;
    char *line;      /* the current input line (owned) */
    size_t cap;      /* bytes allocated in |line| */
    char *type;      /* owned copies handed to the library */
    char *payload;   /* owned */
    char err[200];   /* a local answer's JSON text */
    uint64_t lineno; /* 1-based number of the current line */
    uint64_t sent, failed;
};

/* Reads one line (without its newline) into b->line; 1, 0 at EOF, or -1
 * when the line is longer than SEND_MAX_LINE (the rest is skipped). */
static int
bulk_read_line(struct bulk *b, size_t *len)
{
    size_t n = 0;
    int c, over = 0;
    while ((c = getc(b->in)) != EOF && c != '\n') {
        if (over) continue;
        if (n + 1 >= b->cap) {
            if (b->cap >= SEND_MAX_LINE) {
                over = 1;
                continue;
            }
            size_t nc = b->cap ? b->cap * 2 : 4096;
            char *nb = realloc(b->line, nc);
            if (nb == NULL) return -1;
            b->line = nb;
            b->cap = nc;
        }
        b->line[n++] = (char)c;
    }
    if (c == EOF && n == 0 && !over) return 0;
    if (b->line) b->line[n] = '\0';
    *len = n;
    return over ? -1 : 1;
}

static int
bulk_local(struct bulk *b, const char **type, const char **json, size_t *len,
           const char *why)
{
    cJSON *s = cJSON_CreateString(why);
    char *txt = s ? cJSON_PrintUnformatted(s) : NULL;
    snprintf(b->err, sizeof(b->err), "%s", txt ? txt : "\"bad line\"");
    cJSON_free(txt);
    cJSON_Delete(s);
    *type = NULL;
    *json = b->err;
    *len = strlen(b->err);
    return 1;
}

static int
bulk_next(void *data, const char **type, const char **json, size_t *len)
{
    struct bulk *b = data;
    free(b->type);
    free(b->payload);
    b->type = b->payload = NULL;
    size_t n = 0;
    int r;
    char why[160];
    do { /* blank lines are skipped */
        r = bulk_read_line(b, &n);
        if (r == 0) return 0;
        b->lineno++;
    } while (r == 1 && strspn(b->line, " \t\r") == n);
    if (r < 0) {
        snprintf(why, sizeof(why), "line %" PRIu64 ": longer than %u bytes",
                 b->lineno, SEND_MAX_LINE);
        return bulk_local(b, type, json, len, why);
    }
    const char *end = NULL;
    cJSON *v =
        strlen(b->line) == n ? cJSON_ParseWithOpts(b->line, &end, 1) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "message");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "payload");
    if (v == NULL) {
        size_t off = end ? (size_t)(end - b->line) : strlen(b->line);
        snprintf(why, sizeof(why),
                 "line %" PRIu64 ": malformed JSON at byte %zu", b->lineno,
                 off);
    } else if (!cJSON_IsObject(v) || !cJSON_IsString(m) ||
               !*cJSON_GetStringValue(m)) {
        snprintf(why, sizeof(why),
                 "line %" PRIu64
                 ": expected {\"message\": NAME, \"payload\": JSON}",
                 b->lineno);
    } else {
        b->type = strdup(cJSON_GetStringValue(m));
        b->payload = p ? cJSON_PrintUnformatted(p) : strdup("null");
        cJSON_Delete(v);
        if (!b->type || !b->payload) {
            snprintf(why, sizeof(why), "line %" PRIu64 ": out of memory",
                     b->lineno);
            return bulk_local(b, type, json, len, why);
        }
        *type = b->type;
        *json = b->payload;
        *len = strlen(b->payload);
        return 1;
    }
    cJSON_Delete(v);
    return bulk_local(b, type, json, len, why);
}

static void
bulk_done(void *data, uint64_t index, int status, const char *body, size_t len)
{
    struct bulk *b = data;
    (void)index;
    cJSON *o = cJSON_CreateObject();
    if (status == 0) {
        cJSON_AddItemToObject(o, "ok",
                              body && len ? cli_json_embed(body, len)
                                          : cJSON_CreateNull());
    } else {
        b->failed++;
        cJSON_AddStringToObject(o, "error", mm_err_name(status));
        cJSON *d = NULL;
        if (body && len) {
            cJSON *t = cJSON_ParseWithLength(body, len);
            if (cJSON_IsString(t)) {
                d = cJSON_CreateString(cJSON_GetStringValue(t));
            } else {
                char *raw = strndup(body, len);
                d = raw ? cJSON_CreateString(raw) : NULL;
                free(raw);
            }
            cJSON_Delete(t);
        }
        cJSON_AddItemToObject(o, "detail",
                              d ? d : cJSON_CreateString(mm_strerror(status)));
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt) fprintf(b->ctx->out, "%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(o);
    b->sent++;
}

static int
send_bulk(struct cli_ctx *ctx, const char *label, unsigned window)
{
    mm_client *c;
    int rc = cli_connect(ctx, &c);
    if (rc != 0) return rc;
    struct bulk b = {.ctx = ctx, .in = stdin};
    int err = mm_client_send_stream(c, label, window, bulk_next, bulk_done, &b);
    fflush(ctx->out);
    free(b.line);
    free(b.type);
    free(b.payload);
    if (err)
        rc = cli_client_error(ctx, c, err, NULL);
    else if (b.failed)
        rc = cli_error(ctx, MM_EXIT_ACTOR,
                       "%" PRIu64 " of %" PRIu64 " messages failed", b.failed,
                       b.sent);
    cli_client_close(c);
    return rc;
}

int
cmd_send(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *key = NULL;
    char **args;
    int nargs;
    int from_stdin = 0;
    unsigned window = 64;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('k', "key", &key, "KEY",
                       "send to every actor checked in under KEY"),
        CLI_OPT_BOOL(0, "stdin", &from_stdin,
                     "read JSON Lines {\"message\":..., \"payload\":...} "
                     "from stdin; one JSON line out per line"),
        CLI_OPT_UINT(0, "window", &window, NULL, "N",
                     "with --stdin: calls in flight at most (1-1024, 64)"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer send [options] <label> <message> [<json>|-]\n"
                 "       murmer send [options] --key KEY <message> "
                 "[<json>|-]\n"
                 "       murmer send [options] --stdin [--window N] <label>",
        .summary = "Send a message to an actor and print its reply.  The "
                   "payload is JSON (a string is '\"k\"'), read from stdin "
                   "when it is -, null when omitted.",
        .opts = opts,
        .min_args = 1,
        .max_args = 3,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
    if (from_stdin) {
        if (key)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "--stdin and --key cannot be combined");
        if (nargs != 1)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "usage: murmer send --stdin [--window N] <label>");
        if (*args[0] == '\0')
            return cli_error(ctx, MM_EXIT_USAGE, "empty label");
        if (window < 1 || window > 1024)
            return cli_error(ctx, MM_EXIT_USAGE,
                             "--window must be 1 to 1024, not %u", window);
        return send_bulk(ctx, args[0], window);
    }
    int need = key ? 1 : 2;
    if (nargs < need)
        return cli_error(ctx, MM_EXIT_USAGE,
                         "missing %s (usage: murmer send [options] %s)",
                         key ? "<message>" : "<label> and <message>",
                         key ? "--key KEY <message> [<json>|-]"
                             : "<label> <message> [<json>|-]");
    if (nargs > need + 1)
        return cli_error(ctx, MM_EXIT_USAGE, "unexpected argument '%s'",
                         args[need + 1]);
    const char *label = key ? NULL : args[0];
    const char *type = args[need - 1];
    const char *arg = nargs > need ? args[need] : NULL;
    if (key && *key == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty --key");
    if (label && *label == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty label");
    if (*type == '\0')
        return cli_error(ctx, MM_EXIT_USAGE, "empty message type");

    char *stdin_buf = NULL;
    const char *json = "null";
    size_t len = 4;
    if (arg && strcmp(arg, "-") == 0) {
        rc = send_read_stdin(ctx, &stdin_buf, &len);
        if (rc != 0) return rc;
        json = stdin_buf;
    } else if (arg) {
        json = arg;
        len = strlen(arg);
        if (len > SEND_MAX_PAYLOAD)
            return cli_error(ctx, MM_EXIT_INPUT,
                             "payload is larger than %u bytes",
                             SEND_MAX_PAYLOAD);
    }
    /* cJSON stops at a NUL byte: reject one inside the payload first. */
    size_t slen = strlen(json);
    if (slen != len) {
        free(stdin_buf);
        return cli_error(ctx, MM_EXIT_INPUT,
                         "malformed JSON at byte %zu (NUL byte)", slen);
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(json, &end, 1);
    if (v == NULL) {
        size_t off = end ? (size_t)(end - json) : 0;
        rc = cli_error(ctx, MM_EXIT_INPUT, "malformed JSON at byte %zu",
                       off > len ? len : off);
        free(stdin_buf);
        return rc;
    }
    cJSON_Delete(v);

    mm_client *c;
    if ((rc = cli_connect(ctx, &c)) != 0) {
        free(stdin_buf);
        return rc;
    }
    mm_send_result *res = NULL;
    size_t n = 0;
    int err = mm_client_send(c, label, key, type, json, len, &res, &n);
    free(stdin_buf);
    if (err) return cli_client_end(ctx, c, err);
    if (key && n == 0)
        rc = cli_error(ctx, MM_EXIT_NOTFOUND,
                       "no actor checked in under key '%s'", key);
    else
        rc = cli_send_render(ctx, key, type, res, n, ctx->out);
    mm_client_free_result(c, res);
    cli_client_close(c);
    return rc;
}
