/*
 * typed_plugin.c — a plugin whose actor type uses typed messages.
 *
 *   murmer start --plugin build/plugins/typed_plugin.so \
 *       --actor 'acct/1=account:100'
 *   murmer send acct/1 deposit '{"amount": 5}'      {"balance":105}
 *   murmer send acct/1 withdraw '{"amount": 500}'   handler_error: ...
 *
 * The typed handlers get decoded C structs; the CLI (or any untyped
 * caller) sends JSON and gets JSON, and a C caller on another node uses
 * the stubs account_deposit() and account_withdraw() with the same
 * MM_MESSAGE lines.  The start argument (`:100`) is the opening balance.
 */
#include <stdlib.h>

#include <murmer_typed.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

/* deposit/withdraw: {"amount": N} -> {"balance": N} */
MM_MESSAGE(account_deposit, "deposit", (MM_I64(amount)), (MM_I64(balance)));
MM_MESSAGE(account_withdraw, "withdraw", (MM_I64(amount)), (MM_I64(balance)));

struct account {
    long long balance;
};

static int
open_account(mm_ctx *ctx, void *state)
{
    const char *arg = mm_ctx_arg_json(ctx); /* NULL when started without */
    ((struct account *)state)->balance = arg ? strtoll(arg, NULL, 10) : 0;
    return 0;
}

static int
deposit(mm_ctx *ctx, struct account *a, const account_deposit_req *in,
        account_deposit_rep *out)
{
    if (in->amount <= 0)
        return mm_reply_error(ctx, MM_EINVAL, "amount must be positive"), 0;
    out->balance = a->balance += in->amount;
    return 0;
}
MM_HANDLES(account_deposit, deposit);

static int
withdraw(mm_ctx *ctx, struct account *a, const account_withdraw_req *in,
         account_withdraw_rep *out)
{
    if (in->amount <= 0)
        return mm_reply_error(ctx, MM_EINVAL, "amount must be positive"), 0;
    if (in->amount > a->balance)
        return mm_reply_error(ctx, MM_EHANDLER, "insufficient funds"), 0;
    out->balance = a->balance -= in->amount;
    return 0;
}
MM_HANDLES(account_withdraw, withdraw);

MM_ACTOR_TYPE(account, struct account, open_account, NULL,
              MM_TYPED(account_deposit, deposit),
              MM_TYPED(account_withdraw, withdraw));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;
PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    return mm_plugin_register_type(ctx, &account_type);
}
