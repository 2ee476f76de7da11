/* drisk keys: API keys for the HTTP server. A key is printed once, when created; the store
 * keeps only its SHA-256, so a lost key is revoked and replaced, never recovered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "data/store.h"
#include "base/sha256.h"
#include "base/timeutil.h"

#define KEY_PREFIX "drisk_"
#define KEY_RANDOM_BYTES 24 /* 192 bits */

static const struct drisk_opt keys_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database" },
    { "merchant", DRISK_OPT_STRING, 0, "M", NULL, 0, 0, "create: the merchant the key acts for (created if new)" },
    { "admin", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "create: an admin key (may also activate models), with or without --merchant" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print JSON on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

/* Fills key with KEY_PREFIX and 48 hex digits from the kernel's random source. */
static int new_key(char *key, size_t cap)
{
    int used = snprintf(key, cap, "%s", KEY_PREFIX);
    return used < 0 || (size_t)used + 2 * KEY_RANDOM_BYTES >= cap
               ? -1 : drisk_random_hex(KEY_RANDOM_BYTES, key + used);
}

struct list_ctx {
    int json, n;
};

static int list_key(const struct drisk_key_row *r, void *ctx)
{
    struct list_ctx *c = ctx;
    char ts[DRISK_TS_BUF];
    if (c->json) {
        printf("%s{\"id\": %lld, \"merchant\": ", c->n ? ", " : "", (long long)r->id);
        if (r->merchant[0])
            drisk_json_string(stdout, r->merchant);
        else
            printf("null");
        printf(", \"admin\": %s, \"created_at\": \"%s\"}", r->admin ? "true" : "false",
               drisk_ts_format(r->created_at, ts));
    } else {
        printf("%5lld  %-24s %-6s created %s\n", (long long)r->id,
               r->merchant[0] ? r->merchant : "(none)", r->admin ? "admin" : "",
               drisk_ts_format(r->created_at, ts));
    }
    c->n++;
    return 0;
}

static int run_keys(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    drisk_error_clear(&err);
    const char *verb = a->positional_count ? a->positional[0] : "";
    int json = drisk_arg_flag(a, "json");
    const char *merchant = drisk_arg_str(a, "merchant");
    long long id = 0;
    if (strcmp(verb, "create") == 0) {
        if (!merchant && !drisk_arg_flag(a, "admin")) {
            fprintf(stderr, "drisk keys create: give --merchant M, or --admin for an admin key\n");
            return 2;
        }
    } else if (strcmp(verb, "revoke") == 0) {
        char *end;
        if (a->positional_count < 2 || (id = strtoll(a->positional[1], &end, 10)) <= 0 || *end) {
            fprintf(stderr, "drisk keys revoke: give the key's id (drisk keys list)\n");
            return 2;
        }
    } else if (strcmp(verb, "list") != 0) {
        fprintf(stderr, "drisk keys: use create, list or revoke ID (run drisk keys --help)\n");
        return 2;
    }
    int rc = drisk_cli_open_store("keys", drisk_arg_str(a, "db"), strcmp(verb, "create") != 0,
                                  &store);
    if (rc)
        return rc;
    enum drisk_status st = DRISK_OK;
    if (strcmp(verb, "create") == 0) {
        char key[sizeof KEY_PREFIX + 2 * KEY_RANDOM_BYTES];
        unsigned char hash[DRISK_SHA256_BYTES];
        int64_t key_id = 0;
        if (new_key(key, sizeof key) != 0) {
            st = drisk_error_set(&err, DRISK_EIO, "cannot read random bytes for a key");
        } else {
            drisk_sha256(key, strlen(key), hash);
            st = drisk_store_key_add(store, merchant, drisk_arg_flag(a, "admin"), hash,
                                     (int64_t)time(NULL), &key_id, &err);
        }
        if (!st) {
            if (json) {
                printf("{\"id\": %lld, \"key\": \"%s\", \"merchant\": ", (long long)key_id, key);
                if (merchant)
                    drisk_json_string(stdout, merchant);
                else
                    printf("null");
                printf(", \"admin\": %s}\n", drisk_arg_flag(a, "admin") ? "true" : "false");
            } else {
                printf("%s\n", key);
                fprintf(stderr, "key %lld created; it is shown only now: the store keeps its "
                        "SHA-256 only\n", (long long)key_id);
            }
        }
    } else if (strcmp(verb, "revoke") == 0) {
        st = drisk_store_key_revoke(store, id, &err);
        if (!st)
            fprintf(stderr, "key %lld revoked\n", id);
    } else {
        struct list_ctx c = { json, 0 };
        if (json)
            printf("{\"keys\": [");
        st = drisk_store_key_list(store, list_key, &c, &err);
        if (json)
            printf("]}\n");
    }
    drisk_store_free(store);
    return st ? drisk_fail("keys", &err) : 0;
}

const struct drisk_command drisk_cmd_keys = {
    "keys", "create | list | revoke ID",
    "create, list or revoke API keys for the HTTP server",
    "create prints a new key once (the store keeps only its SHA-256); a key acts for one\n"
    "merchant, and --admin keys may also activate models.",
    keys_opts, 2, run_keys,
};
