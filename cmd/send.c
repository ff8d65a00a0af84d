/*
 * send.c — `murmer send LABEL MESSAGE [JSON|-]`: call an actor and print
 * its reply; `murmer send --key KEY MESSAGE [JSON|-]` calls every actor
 * checked in under KEY and reports "delivered k/N".
 *
 * The payload is validated before anything else: a malformed payload is
 * reported with its byte offset and exit 6, and no connection is made.
 * Output schema murmer.send/1 (see murmer-send(1)).
 */
#include "../cli/cli.h"

#include <errno.h>
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

int
cmd_send(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *key = NULL;
    char **args;
    int nargs;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('k', "key", &key, "KEY",
                       "send to every actor checked in under KEY"),
        CLI_OPT_END,
    };
    const struct cli_spec spec = {
        .usage = "murmer send [options] <label> <message> [<json>|-]\n"
                 "       murmer send [options] --key KEY <message> "
                 "[<json>|-]",
        .summary = "Send a message to an actor and print its reply.  The "
                   "payload is JSON (a string is '\"k\"'), read from stdin "
                   "when it is -, null when omitted.",
        .opts = opts,
        .min_args = 1,
        .max_args = 3,
    };
    int rc = cli_parse(ctx, &spec, argc, argv, &args, &nargs);
    if (rc != CLI_CONTINUE) return rc;
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
    mm_client_close(c);
    return rc;
}
