/* The CLI's option tables: every command declares its options once (name, type, bounds,
 * default, help), and parsing, environment defaults (DRISK_<NAME>, where allowed) and
 * --help are all generated from that table, so they cannot disagree. */
#ifndef DRISK_OPTIONS_H
#define DRISK_OPTIONS_H

#include <stdint.h>

enum drisk_opt_type {
    DRISK_OPT_STRING,
    DRISK_OPT_INT,  /* integer within [min, max] */
    DRISK_OPT_DATE, /* YYYY-MM-DD or RFC 3339 */
    DRISK_OPT_FLAG  /* no value */
};

struct drisk_opt {
    const char *name;    /* long name without "--" */
    enum drisk_opt_type type;
    int env;             /* 1: DRISK_<NAME> in the environment sets the default. Only for
                          * options that mean the same in every command (--db), never for
                          * inputs or safety switches */
    const char *metavar; /* e.g. "FILE" */
    const char *def;     /* default as text; NULL: none; "" for a required option */
    int64_t min, max;    /* bounds for DRISK_OPT_INT */
    const char *help;
};

#define DRISK_OPT_MAX 24

/* A command's options after parsing. Values point into argv, the environment or the table. */
struct drisk_args {
    const struct drisk_opt *opts;
    int n_opts;
    const char *value[DRISK_OPT_MAX]; /* NULL: not given and no default */
    int64_t num[DRISK_OPT_MAX];       /* parsed INT / DATE values */
    int positional_count;
    const char *positional[8];
};

struct drisk_command {
    const char *name;
    const char *verbs;   /* positional part of the usage line ("list | show ID"), or NULL;
                          * the options part is generated from opts */
    const char *summary; /* one line for drisk --help */
    const char *details; /* extra text for drisk NAME --help, or NULL */
    const struct drisk_opt *opts;
    int max_positional;
    int (*run)(const struct drisk_args *args);
};

/* Parses argv (after the command name) against cmd's table. Returns 0 and fills args,
 * 1 when --help was printed (exit 0), or 2 after printing a usage error to stderr. */
int drisk_args_parse(const struct drisk_command *cmd, int argc, char **argv,
                     struct drisk_args *args);

/* Prints "drisk NAME --help" text to stdout. */
void drisk_command_help(const struct drisk_command *cmd);

/* Looks up an option's value by name; NULL when absent. */
const char *drisk_arg_str(const struct drisk_args *args, const char *name);
int64_t drisk_arg_int(const struct drisk_args *args, const char *name);
int drisk_arg_flag(const struct drisk_args *args, const char *name);

#endif
