/* The drisk commands, each defined by its option table in cli/cmd_*.c, and the
 * output helpers they share. */
#ifndef DRISK_COMMANDS_H
#define DRISK_COMMANDS_H

#include <stdio.h>

#include "cli/options.h"
#include "base/error.h"

extern const struct drisk_command drisk_cmd_simulate;
extern const struct drisk_command drisk_cmd_import;
extern const struct drisk_command drisk_cmd_stats;
extern const struct drisk_command drisk_cmd_checkpoint;
extern const struct drisk_command drisk_cmd_export;
extern const struct drisk_command drisk_cmd_train;
extern const struct drisk_command drisk_cmd_retrain;
extern const struct drisk_command drisk_cmd_eval;
extern const struct drisk_command drisk_cmd_report;
extern const struct drisk_command drisk_cmd_recalibrate;
extern const struct drisk_command drisk_cmd_models;
extern const struct drisk_command drisk_cmd_keys;
extern const struct drisk_command drisk_cmd_serve;

/* CONTRACT §5 exit codes for a status: 0 ok, 2 bad usage or input (including a model or
 * file that does not exist), 1 anything else. */
int drisk_exit_code(enum drisk_status status);

/* Prints "drisk CMD: message" to stderr and returns the exit code for err. */
int drisk_fail(const char *cmd, const struct drisk_error *err);

/* Opens the store at path for command cmd; with must_exist, a missing file is a usage
 * error (exit 2) instead of a new empty database. Returns 0, or the exit code after
 * printing what went wrong. */
struct drisk_store;
int drisk_cli_open_store(const char *cmd, const char *path, int must_exist,
                         struct drisk_store **store);

/* Writes s as a JSON string literal (with quotes) to f. */
void drisk_json_string(FILE *f, const char *s);

#endif
