/* Option parsing and help generation from the per-command option tables. Accepts
 * "--name value" and "--name=value"; a value from DRISK_<NAME> in the environment
 * replaces the table default; the command line replaces both. */
#include "cli/options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

static void env_name(const char *opt, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "DRISK_");
    for (; *opt && n + 1 < cap; opt++)
        buf[n++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
    buf[n] = '\0';
}

static int find_opt(const struct drisk_args *args, const char *name, size_t len)
{
    for (int i = 0; i < args->n_opts; i++)
        if (strlen(args->opts[i].name) == len && strncmp(args->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Checks and converts value for option i; prints an error and returns -1 if invalid. */
static int set_value(const char *cmd, struct drisk_args *args, int i, const char *value,
                     const char *source)
{
    const struct drisk_opt *o = &args->opts[i];
    args->value[i] = value;
    if (o->type == DRISK_OPT_INT) {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || v < o->min || v > o->max) {
            fprintf(stderr,
                    "drisk %s: %s --%s \"%s\": expected a whole number from %lld to %lld\n",
                    cmd, source, o->name, value, (long long)o->min, (long long)o->max);
            return -1;
        }
        args->num[i] = v;
    } else if (o->type == DRISK_OPT_DATE) {
        const char *why;
        if (drisk_date_or_ts_parse(value, &args->num[i], &why)) {
            fprintf(stderr, "drisk %s: %s --%s \"%s\": %s (use YYYY-MM-DD or an RFC 3339 "
                    "timestamp)\n", cmd, source, o->name, value, why);
            return -1;
        }
    }
    return 0;
}

int drisk_args_parse(const struct drisk_command *cmd, int argc, char **argv,
                     struct drisk_args *args)
{
    memset(args, 0, sizeof *args);
    args->opts = cmd->opts;
    while (cmd->opts[args->n_opts].name)
        args->n_opts++;

    for (int i = 0; i < args->n_opts; i++) {
        char env[64];
        env_name(cmd->opts[i].name, env, sizeof env);
        const char *v = cmd->opts[i].env && cmd->opts[i].type != DRISK_OPT_FLAG ? getenv(env) : NULL;
        if (v && *v) {
            if (set_value(cmd->name, args, i, v, "environment variable for"))
                return 2;
        } else if (cmd->opts[i].def && cmd->opts[i].def[0] && cmd->opts[i].type != DRISK_OPT_FLAG) {
            if (set_value(cmd->name, args, i, cmd->opts[i].def, "default of"))
                return 2;
        }
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            drisk_command_help(cmd);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (args->positional_count >= cmd->max_positional || args->positional_count >= 8) {
                fprintf(stderr, "drisk %s: unexpected argument \"%s\" (run drisk %s --help)\n",
                        cmd->name, arg, cmd->name);
                return 2;
            }
            args->positional[args->positional_count++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = find_opt(args, name, len);
        if (i < 0) {
            fprintf(stderr, "drisk %s: unknown option --%.*s (run drisk %s --help for the "
                    "options)\n", cmd->name, (int)len, name, cmd->name);
            return 2;
        }
        if (cmd->opts[i].type == DRISK_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "drisk %s: --%s takes no value\n", cmd->name, cmd->opts[i].name);
                return 2;
            }
            args->value[i] = "1";
            continue;
        }
        const char *v = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!v) {
            fprintf(stderr, "drisk %s: --%s needs a value (%s)\n", cmd->name, cmd->opts[i].name,
                    cmd->opts[i].metavar ? cmd->opts[i].metavar : "VALUE");
            return 2;
        }
        if (set_value(cmd->name, args, i, v, "option"))
            return 2;
    }
    for (int i = 0; i < args->n_opts; i++) {
        if (cmd->opts[i].def && !cmd->opts[i].def[0] && cmd->opts[i].type != DRISK_OPT_FLAG &&
            !args->value[i]) {
            char env[64];
            env_name(cmd->opts[i].name, env, sizeof env);
            if (cmd->opts[i].env)
                fprintf(stderr, "drisk %s: --%s %s is required (or set %s); run drisk %s --help\n",
                        cmd->name, cmd->opts[i].name,
                        cmd->opts[i].metavar ? cmd->opts[i].metavar : "VALUE", env, cmd->name);
            else
                fprintf(stderr, "drisk %s: --%s %s is required; run drisk %s --help\n", cmd->name,
                        cmd->opts[i].name, cmd->opts[i].metavar ? cmd->opts[i].metavar : "VALUE",
                        cmd->name);
            return 2;
        }
    }
    return 0;
}

/* "usage: drisk NAME VERBS --req X [--opt Y] [--flag]", wrapped under the command. */
static void usage_line(const struct drisk_command *cmd)
{
    char head[64];
    int indent = snprintf(head, sizeof head, "usage: drisk %s ", cmd->name), col = indent;
    fputs(head, stdout);
    for (const struct drisk_opt *o = cmd->opts;; o++) {
        char item[160];
        if (!o->name) { /* the verbs last, as "drisk models --db DB show ID" reads */
            if (!cmd->verbs)
                break;
            snprintf(item, sizeof item, "%s", cmd->verbs);
        } else if (o->type == DRISK_OPT_FLAG) {
            snprintf(item, sizeof item, "[--%s]", o->name);
        } else {
            int required = o->def && !o->def[0];
            snprintf(item, sizeof item, required ? "--%s %s" : "[--%s %s]", o->name,
                     o->metavar ? o->metavar : "VALUE");
        }
        int len = (int)strlen(item);
        if (col > indent && col + 1 + len > 90) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            putchar(' ');
            col++;
        }
        col += printf("%s", item);
        if (!o->name)
            break;
    }
    putchar('\n');
}

void drisk_command_help(const struct drisk_command *cmd)
{
    usage_line(cmd);
    printf("\n%s\n", cmd->summary);
    if (cmd->details)
        printf("\n%s\n", cmd->details);
    printf("\noptions:\n");
    for (const struct drisk_opt *o = cmd->opts; o->name; o++) {
        char left[64], env[64];
        if (o->type == DRISK_OPT_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        env_name(o->name, env, sizeof env);
        char envtext[80] = "";
        if (o->env)
            snprintf(envtext, sizeof envtext, "; env %s", env);
        printf("  %-26s %s", left, o->help);
        if (o->type == DRISK_OPT_FLAG)
            printf(" (default: off)\n");
        else if (o->def && !o->def[0])
            printf(" (required%s)\n", envtext);
        else if (o->def)
            printf(" (default: %s%s)\n", o->def, envtext);
        else
            printf(" (default: none%s)\n", envtext);
    }
    printf("  %-26s %s\n", "--help", "show this help and exit");
}

const char *drisk_arg_str(const struct drisk_args *args, const char *name)
{
    int i = find_opt(args, name, strlen(name));
    return i >= 0 ? args->value[i] : NULL;
}

int64_t drisk_arg_int(const struct drisk_args *args, const char *name)
{
    int i = find_opt(args, name, strlen(name));
    return i >= 0 && args->value[i] ? args->num[i] : 0;
}

int drisk_arg_flag(const struct drisk_args *args, const char *name)
{
    int i = find_opt(args, name, strlen(name));
    return i >= 0 && args->value[i] != NULL;
}
