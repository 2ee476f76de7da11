/* drisk export, train, eval and models: the learning pipeline's commands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/live.h"
#include "data/store.h"
#include "base/log.h"
#include "base/text.h"
#include "base/timeutil.h"
#include "training/learn.h"
#include "training/recalibrate.h"
#include "training/report.h"
#include "training/retrain.h"
#include "training/tables.h"
#include "training/snapshot.h"

static const struct drisk_opt export_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to read" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "which label and which snapshots (CONTRACT §3-4)" },
    { "until", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "only shipments created before TIME" },
    { "from", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "only shipments created at or after TIME" },
    { "out", DRISK_OPT_STRING, 0, "FILE.csv", "", 0, 0, "where to write the matrix" },
    { "min-count", DRISK_OPT_INT, 0, "N", "30", 1, INT64_MAX, "carriers and services seen fewer times share the column \"other\" (places have no cap: each has its own outcome history)" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print a summary as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int run_export(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_feature_schema schema;
    struct drisk_error err;
    struct timespec t0, t1;
    const char *out_path = drisk_arg_str(a, "out");
    char tmp[4096];
    int target = drisk_target_parse(drisk_arg_str(a, "target"));
    int64_t from = drisk_arg_str(a, "from") ? drisk_arg_int(a, "from") : INT64_MIN;
    int64_t until = drisk_arg_str(a, "until") ? drisk_arg_int(a, "until") : INT64_MAX;
    int64_t rows = 0;
    drisk_error_clear(&err);
    if (target < 0) {
        fprintf(stderr, "drisk export: --target must be late, lost or eta\n");
        return 2;
    }
    if (from >= until) {
        fprintf(stderr, "drisk export: --from must be before --until\n");
        return 2;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= sizeof tmp) {
        fprintf(stderr, "drisk export: the --out path is too long\n");
        return 2;
    }
    int rc = drisk_cli_open_store("export", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The vocabularies are the training window's: before --until, or before --from when
     * exporting a later period, so train and test files share one schema. */
    int64_t schema_until = until != INT64_MAX ? until : from != INT64_MIN ? from : INT64_MAX;
    enum drisk_status st = drisk_snapshot_schema(store, schema_until, drisk_arg_int(a, "min-count"),
                                                 &schema, &err);
    FILE *out = NULL;
    if (!st && !(out = fopen(tmp, "w")))
        st = drisk_error_set(&err, DRISK_EINVAL, "cannot write %s: %s", tmp, strerror(errno));
    if (!st)
        st = drisk_snapshot_export(store, &schema, (enum drisk_target)target, from,
                                   until, out, &rows, &err);
    if (out && fclose(out) != 0 && !st)
        st = drisk_error_set(&err, DRISK_EIO, "error writing %s", tmp);
    if (!st && rename(tmp, out_path) != 0)
        st = drisk_error_set(&err, DRISK_EIO, "cannot move %s to %s: %s", tmp, out_path,
                             strerror(errno));
    if (st && out)
        unlink(tmp);
    drisk_store_free(store);
    if (st)
        return drisk_fail("export", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "%lld %s snapshots x %zu features written to %s in %.1f s (%.0f snapshots/s); "
            "feature schema %s\n", (long long)rows, drisk_arg_str(a, "target"),
            schema.n_features, out_path, dt, dt > 0 ? (double)rows / dt : 0.0, schema.hash);
    if (drisk_arg_flag(a, "json"))
        printf("{\"rows\": %lld, \"features\": %zu, \"schema_hash\": \"%s\", \"seconds\": %.3f}\n",
               (long long)rows, schema.n_features, schema.hash, dt);
    return 0;
}

const struct drisk_command drisk_cmd_export = {
    "export", NULL,
    "write the snapshot feature matrix with labels (CSV) for analysts' own tools",
    "One row per labeled snapshot (CONTRACT §4): shipment_id, merchant_id, as_of, label, then\n"
    "one column per feature. Features use only what was known at as_of; labels are the\n"
    "outcomes (late 0/1, lost 0/1, eta hours). Times are YYYY-MM-DD or RFC 3339.",
    export_opts, 0, run_export,
};

/* ---- train ---- */

static const struct drisk_opt train_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to read (and register the model in)" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "what to predict (CONTRACT §3)" },
    { "model", DRISK_OPT_STRING, 0, "NAME", NULL, 0, 0, "learner: gbdt (default), logreg, svm_linear, svm_rbf or mlp for late/lost; gbdt (default), lognormal or mlp for eta; auto fits them all and keeps the one with the best validation log loss (eta: pinball loss)" },
    { "hidden", DRISK_OPT_STRING, 0, "N[,N[,N]]", "64,32", 0, 0, "mlp: units of each hidden layer (1 to 3 layers)" },
    { "epochs", DRISK_OPT_INT, 0, "N", "30", 1, 10000, "mlp: at most N passes over the training snapshots (early stopping on validation loss usually ends sooner)" },
    { "members", DRISK_OPT_INT, 0, "N", "5", 1, 16, "mlp: train N networks from different seeds and average their outputs" },
    { "batch-size", DRISK_OPT_INT, 0, "N", "512", 1, 65536, "mlp: rows per Adam step" },
    { "learning-rate", DRISK_OPT_STRING, 0, "X", "0.001", 0, 0, "mlp: Adam's step size (cut by 4 at each of the four validation checks an epoch that brings no improvement)" },
    { "svm-max-rows", DRISK_OPT_INT, 0, "N", "20000", 100, 10000000, "svm: train on a class-stratified sample of at most N snapshots (libsvm's time grows about quadratically with rows)" },
    { "svm-c", DRISK_OPT_STRING, 0, "C", "1", 0, 0, "svm: the cost of a margin violation" },
    { "trees", DRISK_OPT_INT, 0, "N", "1000", 1, 100000, "gbdt: at most N boosting rounds (early stopping on the validation loss, log loss or eta's pseudo-Huber loss, usually ends sooner)" },
    { "depth", DRISK_OPT_INT, 0, "N", "6", 1, 8, "gbdt: levels of splits in each tree" },
    { "shrinkage", DRISK_OPT_STRING, 0, "X", "0.05", 0, 0, "gbdt: the factor on each tree's output (smaller: more trees, a little better generalization)" },
    { "huber-delta", DRISK_OPT_STRING, 0, "D", "0.3", 0, 0, "gbdt, eta: the pseudo-Huber loss's delta in log-hours (0: squared error)" },
    { "seed", DRISK_OPT_INT, 0, "N", "1", 0, INT64_MAX, "seed of the mlp's initial weights and shuffles, the svm's sample and the gbdt's row and feature samples" },
    { "until", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "train on shipments created before TIME (default: all); the last 15% of that period validates" },
    { "min-count", DRISK_OPT_INT, 0, "N", "30", 1, INT64_MAX, "carriers and services seen fewer times share the column \"other\" (places have no cap: each has its own outcome history)" },
    { "activate", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "make the new model the target's active one" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the result as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

/* JSON has no NaN: undefined metrics are null. */
static void json_num(const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        printf("\"%s\": null%s", key, comma ? ", " : "");
    else
        printf("\"%s\": %.6g%s", key, v, comma ? ", " : "");
}

/* "64,32" into opt's hidden layers; -1 if malformed. */
static int parse_hidden(const char *s, struct drisk_fit_options *opt)
{
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 4096 || n == 3 || (*end && *end != ','))
            return -1;
        opt->hidden[n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s)
            return -1;
    }
    opt->n_hidden = n;
    return n ? 0 : -1;
}

static void candidates_print(const struct drisk_train_result *res, int cls)
{
    if (res->n_candidates < 2)
        return;
    fprintf(stderr, "candidates on the validation set (%s):\n",
            cls ? "the lowest calibrated log loss wins" : "the lowest mean pinball loss wins");
    for (size_t i = 0; i < res->n_candidates; i++) {
        const struct drisk_train_candidate *c = &res->candidates[i];
        int won = strcmp(c->algorithm, res->algorithm) == 0;
        if (cls)
            fprintf(stderr, "  %-11s PR-AUC %.4f  AUC %.4f  log loss %.4f  ECE %.4f  fit %6.1f s%s\n",
                    c->algorithm, c->valid.pr_auc, c->valid.auc, c->valid.log_loss, c->valid.ece,
                    c->seconds_fit, won ? "  <- chosen" : "");
        else
            fprintf(stderr, "  %-11s pinball %.3f h  MAE %.2f h  P90 coverage %.3f  fit %6.1f s%s\n",
                    c->algorithm, (c->valid_eta.pinball50_h + c->valid_eta.pinball90_h) / 2.0,
                    c->valid_eta.mae_h, c->valid_eta.p90_coverage, c->seconds_fit,
                    won ? "  <- chosen" : "");
    }
}

static int run_train(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    struct drisk_train_result res;
    const char *target = drisk_arg_str(a, "target");
    drisk_error_clear(&err);
    if (drisk_target_parse(target) < 0) {
        fprintf(stderr, "drisk train: --target must be late, lost or eta\n");
        return 2;
    }
    struct drisk_train_options o = {
        .target = target,
        .algorithm = drisk_arg_str(a, "model"),
        .until = drisk_arg_str(a, "until") ? drisk_arg_int(a, "until") : INT64_MAX,
        .min_count = drisk_arg_int(a, "min-count"),
        .valid_fraction = 0.15,
        .from = INT64_MIN,
        .activate = drisk_arg_flag(a, "activate") ? DRISK_ACTIVATE_ALWAYS
                                                  : DRISK_ACTIVATE_IF_FIRST,
    };
    drisk_fit_options_init(&o.fit, drisk_target_parse(target));
    if (parse_hidden(drisk_arg_str(a, "hidden"), &o.fit) != 0) {
        fprintf(stderr, "drisk train: --hidden wants 1 to 3 comma-separated layer widths from 1 "
                "to 4096, e.g. 64,32\n");
        return 2;
    }
    o.fit.epochs = (int)drisk_arg_int(a, "epochs");
    o.fit.batch_size = (int)drisk_arg_int(a, "batch-size");
    o.fit.mlp_members = (int)drisk_arg_int(a, "members");
    const char *lr = drisk_arg_str(a, "learning-rate");
    if (drisk_parse_double(lr, strlen(lr), &o.fit.learning_rate) != 0 ||
        !(o.fit.learning_rate > 0.0 && o.fit.learning_rate < 1.0)) {
        fprintf(stderr, "drisk train: --learning-rate wants a number between 0 and 1\n");
        return 2;
    }
    o.fit.svm_max_rows = (size_t)drisk_arg_int(a, "svm-max-rows");
    o.fit.gbdt_trees = (int)drisk_arg_int(a, "trees");
    o.fit.gbdt_depth = (int)drisk_arg_int(a, "depth");
    const char *shrink = drisk_arg_str(a, "shrinkage");
    if (drisk_parse_double(shrink, strlen(shrink), &o.fit.gbdt_eta) != 0 ||
        !(o.fit.gbdt_eta > 0.0 && o.fit.gbdt_eta <= 1.0)) {
        fprintf(stderr, "drisk train: --shrinkage wants a number above 0 and at most 1\n");
        return 2;
    }
    const char *huber = drisk_arg_str(a, "huber-delta");
    if (drisk_parse_double(huber, strlen(huber), &o.fit.gbdt_huber_delta) != 0 ||
        !(o.fit.gbdt_huber_delta >= 0.0 && o.fit.gbdt_huber_delta <= 10.0)) {
        fprintf(stderr, "drisk train: --huber-delta wants a number from 0 (squared error) to 10\n");
        return 2;
    }
    o.fit.seed = (uint64_t)drisk_arg_int(a, "seed");
    const char *svm_c = drisk_arg_str(a, "svm-c");
    if (drisk_parse_double(svm_c, strlen(svm_c), &o.fit.svm_c) != 0 || !(o.fit.svm_c > 0.0) ||
        !isfinite(o.fit.svm_c)) {
        fprintf(stderr, "drisk train: --svm-c wants a positive number\n");
        return 2;
    }
    int rc = drisk_cli_open_store("train", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    enum drisk_status st = drisk_train(store, &o, &res, &err);
    drisk_store_free(store);
    if (st)
        return drisk_fail("train", &err);
    int cls = strcmp(target, "eta") != 0;
    char l2_text[40];
    snprintf(l2_text, sizeof l2_text, " (l2 %g)", res.l2);
    fprintf(stderr, "model %lld (%s, %s)%s: %zu training and %zu validation snapshots x %zu "
            "features; snapshots %.1f s, fit %.1f s\n", (long long)res.model_id, target,
            res.algorithm, res.active ? ", active" : "", res.train_rows, res.valid_rows,
            res.n_features, res.seconds_snapshots, res.seconds_fit);
    if (cls)
        fprintf(stderr, "validation: AUC %.4f, PR-AUC %.4f, Brier %.4f, log loss %.4f, ECE %.4f"
                "%s\n", res.valid.auc, res.valid.pr_auc, res.valid.brier, res.valid.log_loss,
                res.valid.ece, isnan(res.l2) ? "" : l2_text);
    else
        fprintf(stderr, "validation: MAE %.1f h, P50 coverage %.3f, P90 coverage %.3f\n",
                res.valid_eta.mae_h, res.valid_eta.p50_coverage, res.valid_eta.p90_coverage);
    candidates_print(&res, cls);
    if (drisk_arg_flag(a, "json")) {
        printf("{\"model_id\": %lld, \"target\": \"%s\", \"algorithm\": \"%s\", \"active\": %s, "
               "\"train_rows\": %zu, \"valid_rows\": %zu, \"features\": %zu, ",
               (long long)res.model_id, target, res.algorithm, res.active ? "true" : "false",
               res.train_rows, res.valid_rows, res.n_features);
        json_num("seconds_snapshots", res.seconds_snapshots, 1);
        json_num("seconds_fit", res.seconds_fit, 1);
        printf("\"validation\": {");
        if (cls) {
            json_num("auc", res.valid.auc, 1);
            json_num("pr_auc", res.valid.pr_auc, 1);
            json_num("brier", res.valid.brier, 1);
            json_num("log_loss", res.valid.log_loss, 1);
            json_num("ece", res.valid.ece, 1);
            json_num("l2", res.l2, 0);
        } else {
            json_num("mae_h", res.valid_eta.mae_h, 1);
            json_num("p50_coverage", res.valid_eta.p50_coverage, 1);
            json_num("p90_coverage", res.valid_eta.p90_coverage, 0);
        }
        printf("}, \"candidates\": [");
        for (size_t i = 0; i < res.n_candidates; i++) {
            const struct drisk_train_candidate *c = &res.candidates[i];
            printf("%s{\"algorithm\": \"%s\", ", i ? ", " : "", c->algorithm);
            if (cls) {
                json_num("pr_auc", c->valid.pr_auc, 1);
                json_num("auc", c->valid.auc, 1);
                json_num("log_loss", c->valid.log_loss, 1);
                json_num("ece", c->valid.ece, 1);
            } else {
                json_num("pinball_h", (c->valid_eta.pinball50_h + c->valid_eta.pinball90_h) / 2.0, 1);
                json_num("mae_h", c->valid_eta.mae_h, 1);
                json_num("p90_coverage", c->valid_eta.p90_coverage, 1);
            }
            json_num("seconds_fit", c->seconds_fit, 0);
            printf("}");
        }
        printf("]}\n");
    }
    return 0;
}

const struct drisk_command drisk_cmd_train = {
    "train", NULL,
    "train a model on snapshots of past shipments and register it",
    "Snapshots of shipments created before --until train it; the last 15% of that period\n"
    "(by creation time) validates: it chooses the L2 strength, calibrates the probabilities\n"
    "(Platt) and gives the validation metrics stored with the model. The first model of a\n"
    "target becomes active; later ones with --activate, or through drisk retrain's gate.\n"
    "--model auto fits every learner of the target and registers the one with the best\n"
    "validation PR-AUC (late, lost) or mean P50/P90 pinball loss (eta), storing every\n"
    "candidate's figures with it (drisk models show ID).",
    train_opts, 0, run_train,
};

/* ---- retrain ---- */

static const struct drisk_opt retrain_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database (the challenger is registered in it)" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "what to predict (CONTRACT §3)" },
    { "model", DRISK_OPT_STRING, 0, "NAME", NULL, 0, 0, "the challenger's learner, as drisk train --model (default gbdt; its other settings are train's defaults)" },
    { "window", DRISK_OPT_INT, 0, "DAYS", "365", 1, 36500, "train on the shipments created in the DAYS before the holdout (less the time their labels take to be known)" },
    { "holdout", DRISK_OPT_INT, 0, "DAYS", "14", 1, 3650, "judge champion and challenger on the labels that became known in the last DAYS" },
    { "keep", DRISK_OPT_INT, 0, "N", "5", 0, 10000, "keep at most N inactive models of the target (older ones are deleted; the active one never)" },
    { "now", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "run as if at TIME (default: one second after the last shipment was created)" },
    { "seed", DRISK_OPT_INT, 0, "N", "1", 0, INT64_MAX, "seed of the learner and of the bootstrap" },
    { "min-count", DRISK_OPT_INT, 0, "N", "30", 1, INT64_MAX, "as drisk train --min-count" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the decision as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static void side_json(const char *key, const struct drisk_retrain_side *s, int cls, int comma)
{
    if (!s->id) {
        printf("\"%s\": null%s", key, comma ? ", " : "");
        return;
    }
    char ts[DRISK_TS_BUF];
    printf("\"%s\": {\"id\": %lld, \"algorithm\": \"%s\", \"train_until\": \"%s\", ", key,
           (long long)s->id, s->algorithm, drisk_ts_format(s->train_until, ts));
    if (cls) {
        json_num("auc", s->m.auc, 1);
        json_num("pr_auc", s->m.pr_auc, 1);
        json_num("log_loss", s->m.log_loss, 1);
        json_num("brier", s->m.brier, 1);
        json_num("ece", s->m.ece, 0);
    } else {
        json_num("mae_h", s->eta.mae_h, 1);
        json_num("pinball_h", (s->eta.pinball50_h + s->eta.pinball90_h) / 2.0, 1);
        json_num("p50_coverage", s->eta.p50_coverage, 1);
        json_num("p90_coverage", s->eta.p90_coverage, 0);
    }
    printf("}%s", comma ? ", " : "");
}

static void ci_json(const char *key, const struct drisk_ci *ci, int comma)
{
    printf("\"%s\": {", key);
    json_num("value", ci->value, 1);
    json_num("lo", ci->lo, 1);
    json_num("hi", ci->hi, 0);
    printf("}%s", comma ? ", " : "");
}

static int run_retrain(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    struct drisk_retrain_result res;
    const char *target = drisk_arg_str(a, "target");
    drisk_error_clear(&err);
    int t = drisk_target_parse(target);
    if (t < 0) {
        fprintf(stderr, "drisk retrain: --target must be late, lost or eta\n");
        return 2;
    }
    struct drisk_retrain_options o = {
        .train = {
            .target = target,
            .algorithm = drisk_arg_str(a, "model"),
            .min_count = drisk_arg_int(a, "min-count"),
            .valid_fraction = 0.15,
            },
        .now = drisk_arg_str(a, "now") ? drisk_arg_int(a, "now") : DRISK_TS_NONE,
        .window_s = drisk_arg_int(a, "window") * 86400,
        .holdout_s = drisk_arg_int(a, "holdout") * 86400,
        .keep = (int)drisk_arg_int(a, "keep"),
        .seed = (uint64_t)drisk_arg_int(a, "seed"),
    };
    const struct drisk_model_ops *ops = drisk_model_ops_find(o.train.algorithm
                                                              ? o.train.algorithm
                                                              : DRISK_TRAIN_DEFAULT_MODEL);
    int is_auto = o.train.algorithm && strcmp(o.train.algorithm, "auto") == 0;
    if (!is_auto && (!ops || (t == DRISK_TARGET_ETA ? !ops->regression : !ops->classification))) {
        fprintf(stderr, "drisk retrain: --model %s does not learn %s: see drisk train --help\n",
                o.train.algorithm, target);
        return 2;
    }
    drisk_fit_options_init(&o.train.fit, (enum drisk_target)t);
    o.train.fit.seed = o.seed;
    int rc = drisk_cli_open_store("retrain", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    enum drisk_status st = drisk_retrain(store, &o, &res, &err);
    drisk_store_free(store);
    if (st) {
        /* CONTRACT §5: 1 when the job could not run (usage was checked above) */
        fprintf(stderr, "drisk retrain: %s\n", err.msg);
        return 1;
    }
    int cls = t != DRISK_TARGET_ETA;
    char t1[DRISK_TS_BUF], t2[DRISK_TS_BUF], t3[DRISK_TS_BUF], t4[DRISK_TS_BUF];
    fprintf(stderr, "retrain %s at %s: trained on shipments created %s to %s; holdout: %zu "
            "snapshots of %zu shipments whose labels became known after %s\n", target,
            drisk_ts_format(res.now, t1), drisk_ts_format(res.train_from, t2),
            drisk_ts_format(res.train_until, t4), res.holdout_rows, res.holdout_shipments,
            drisk_ts_format(res.holdout_from, t3));
    fprintf(stderr, "%s\n", res.reason);
    for (size_t i = 0; i < res.n_pruned; i++)
        fprintf(stderr, "pruned inactive model %lld\n", (long long)res.pruned[i]);
    if (drisk_arg_flag(a, "json")) {
        printf("{\"target\": \"%s\", ", target);
        if (res.champion.id)
            printf("\"champion\": %lld, ", (long long)res.champion.id);
        else
            printf("\"champion\": null, ");
        printf("\"challenger\": %lld, \"promoted\": %s, \"reason\": ", (long long)res.challenger.id,
               res.promoted ? "true" : "false");
        drisk_json_string(stdout, res.reason);
        printf(", \"now\": \"%s\", \"train_from\": \"%s\", \"train_until\": \"%s\", "
               "\"holdout_from\": \"%s\", \"holdout_rows\": %zu, \"holdout_shipments\": %zu, ",
               t1, t2, t4, t3, res.holdout_rows, res.holdout_shipments);
        printf("\"champion_saw_holdout\": %s, ", res.champion_saw_holdout ? "true" : "false");
        side_json("champion_metrics", &res.champion, cls, 1);
        side_json("challenger_metrics", &res.challenger, cls, 1);
        if (res.champion.id && res.diff.reps) {
            printf("\"difference\": {\"bootstrap_resamples\": %d, ", res.diff.reps);
            if (cls)
                ci_json("auc", &res.diff.d_auc, 1);
            ci_json(cls ? "log_loss" : "pinball_h", &res.diff.d_loss, 0);
            printf("}, ");
        } else {
            printf("\"difference\": null, ");
        }
        printf("\"pruned\": [");
        for (size_t i = 0; i < res.n_pruned; i++)
            printf("%s%lld", i ? ", " : "", (long long)res.pruned[i]);
        printf("], ");
        json_num("seconds", res.seconds, 0);
        printf("}\n");
    }
    return 0;
}

const struct drisk_command drisk_cmd_retrain = {
    "retrain", NULL,
    "the nightly job: train a challenger, judge it against the champion, promote or refuse",
    "Trains on the --window days before the holdout (with only the labels known when the\n"
    "holdout starts), scores the champion (the active model) and the challenger on the same\n"
    "holdout snapshots (labels known in the last --holdout days), and promotes the challenger\n"
    "only if its loss is lower beyond noise (95% shipment-bootstrap interval of the\n"
    "difference below 0; late/lost: log loss, eta: P50/P90 pinball loss), it does not rank\n"
    "worse beyond noise (AUC) and its calibration is in bounds (ECE <= 0.05; eta: P50\n"
    "coverage 0.5 +/- 0.1, P90 0.9 +/- 0.05). The reason is printed either way. A lock\n"
    "keeps two retrains from running at once. Exit 0 whether or not it promoted, 1 when\n"
    "it could not run (lock held, too little data), 2 on bad usage.",
    retrain_opts, 0, run_retrain,
};

/* ---- eval ---- */

static const struct drisk_opt eval_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to read" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "what to evaluate" },
    { "model", DRISK_OPT_INT, 0, "ID", NULL, 1, INT64_MAX, "model id (default: the target's active model)" },
    { "from", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "shipments created at or after TIME (default: the model's training end)" },
    { "to", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "shipments created before TIME (default: all)" },
    { "threshold", DRISK_OPT_STRING, 0, "P", "0.5", 0, 0, "alert threshold on the probability" },
    { "predictions", DRISK_OPT_STRING, 0, "FILE.csv", NULL, 0, 0, "write shipment_id,as_of,target,label,score per snapshot" },
    { "report", DRISK_OPT_STRING, 0, "FILE.html", NULL, 0, 0, "write the evaluation as a self-contained HTML page" },
    { "recalibrate-every", DRISK_OPT_INT, 0, "DAYS", NULL, 1, 3650, "walk forward: refit the calibration every DAYS on the most recent labelled window, as drisk recalibrate run on that schedule would" },
    { "recalibrate-window", DRISK_OPT_INT, 0, "DAYS", "28", 1, 3650, "that window" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the metrics as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static void lead_json(const char *key, const struct drisk_lead_time *l, int comma)
{
    printf("\"%s\": {", key);
    json_num("threshold", l->threshold, 1);
    json_num("shipments", (double)l->shipments, 1);
    json_num("positives", (double)l->positives, 1);
    json_num("precision", l->precision, 1);
    json_num("recall", l->recall, 1);
    json_num("median_lead_h", l->median_lead_h, 0);
    printf("}%s", comma ? ", " : "");
}

/* The learner's settings, and with --model auto the candidates' validation metrics
 * ("<algorithm>.<metric>"), one line per candidate. */
static void meta_print(FILE *out, const struct drisk_model_meta *meta)
{
    if (meta->n_params) {
        fprintf(out, "settings:");
        for (size_t i = 0; i < meta->n_params; i++)
            fprintf(out, " %s=%s", meta->params[i].key, meta->params[i].value);
        fputc('\n', out);
    }
    char seen[DRISK_MODEL_MAX_METRICS][DRISK_META_KEY_MAX];
    size_t n_seen = 0;
    for (size_t i = 0; i < meta->n_metrics; i++) {
        const char *key = meta->metrics[i].key, *dot = strchr(key, '.');
        if (!dot)
            continue;
        size_t len = (size_t)(dot - key), k;
        for (k = 0; k < n_seen; k++)
            if (strlen(seen[k]) == len && strncmp(seen[k], key, len) == 0)
                break;
        if (k < n_seen)
            continue;
        snprintf(seen[n_seen], sizeof seen[n_seen], "%.*s", (int)len, key);
        if (n_seen++ == 0)
            fprintf(out, "candidates on the validation set (%s):\n",
                    drisk_model_meta_param(meta, "chosen_by") ? drisk_model_meta_param(meta, "chosen_by")
                                                              : "auto");
        fprintf(out, "  %-11s", seen[k]);
        for (size_t j = i; j < meta->n_metrics; j++) {
            const char *kj = meta->metrics[j].key;
            if (strncmp(kj, key, len + 1) == 0)
                fprintf(out, "  %s %.4g", kj + len + 1, meta->metrics[j].value);
        }
        fprintf(out, "%s\n", strcmp(seen[k], meta->algorithm) == 0 ? "  <- chosen" : "");
    }
}

/* --target and --threshold of eval and report: 0, or -1 after saying what is wrong. */
static int target_and_threshold(const struct drisk_args *a, const char *cmd, double *threshold)
{
    char *end;
    *threshold = strtod(drisk_arg_str(a, "threshold"), &end);
    if (drisk_target_parse(drisk_arg_str(a, "target")) < 0) {
        fprintf(stderr, "drisk %s: --target must be late, lost or eta\n", cmd);
        return -1;
    }
    if (*end || !(*threshold > 0 && *threshold < 1)) {
        fprintf(stderr, "drisk %s: --threshold must be a probability between 0 and 1\n", cmd);
        return -1;
    }
    return 0;
}

/* The analyst's tables of an evaluation (training/tables.h), under the default merchant
 * settings (docs/POLICY.md). */
static enum drisk_status tables_for(const struct drisk_eval_result *res, const char *target,
                                    double threshold, struct drisk_tables *t,
                                    struct drisk_error *err)
{
    struct drisk_settings settings;
    drisk_settings_default(&settings);
    return drisk_tables_compute(res, (enum drisk_target)drisk_target_parse(target), &settings,
                                threshold, t, err);
}

static int run_eval(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    static struct drisk_eval_result res;
    const char *target = drisk_arg_str(a, "target");
    const char *pred_path = drisk_arg_str(a, "predictions");
    double threshold;
    drisk_error_clear(&err);
    if (target_and_threshold(a, "eval", &threshold))
        return 2;
    int rc = drisk_cli_open_store("eval", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    struct drisk_eval_options o = {
        .target = target,
        .model_id = drisk_arg_str(a, "model") ? drisk_arg_int(a, "model") : 0,
        .from = drisk_arg_str(a, "from") ? drisk_arg_int(a, "from") : INT64_MIN,
        .to = drisk_arg_str(a, "to") ? drisk_arg_int(a, "to") : INT64_MAX,
        .threshold = threshold,
        .recalibrate_every_s = drisk_arg_str(a, "recalibrate-every")
                                   ? drisk_arg_int(a, "recalibrate-every") * 86400 : 0,
        .recalibrate_window_s = drisk_arg_int(a, "recalibrate-window") * 86400,
    };
    int cls = strcmp(target, "eta") != 0;
    int want_tables = drisk_arg_flag(a, "json") || drisk_arg_str(a, "report");
    o.keep_rows = o.drift = want_tables;
    static struct drisk_tables tables;
    enum drisk_status st = DRISK_OK;
    if (o.from == INT64_MIN) {
        /* default: everything after the model's training window */
        struct drisk_model_row row;
        st = drisk_store_model_get(store, o.model_id, target, &row, &err);
        if (!st) {
            o.from = row.train_until;
            drisk_store_model_row_free(&row);
        }
    }
    FILE *pf = NULL;
    if (!st && pred_path && !(pf = fopen(pred_path, "w")))
        st = drisk_error_set(&err, DRISK_EINVAL, "cannot write %s: %s", pred_path, strerror(errno));
    o.predictions = pf;
    if (!st)
        st = drisk_eval(store, &o, &res, &err);
    if (!st && want_tables)
        st = tables_for(&res, target, threshold, &tables, &err);
    if (pf && fclose(pf) != 0 && !st)
        st = drisk_error_set(&err, DRISK_EIO, "error writing %s", pred_path);
    drisk_store_free(store);
    const char *report_path = drisk_arg_str(a, "report");
    if (!st && report_path) {
        FILE *rf = fopen(report_path, "w");
        if (!rf) {
            st = drisk_error_set(&err, DRISK_EINVAL, "cannot write %s: %s", report_path,
                                 strerror(errno));
        } else {
            struct drisk_report_model rm = { &res, &tables };
            int bad = drisk_report_html(rf, target, o.from, o.to, threshold, &rm, 1) != 0;
            if (fclose(rf) != 0 || bad) /* closed either way */
                st = drisk_error_set(&err, DRISK_EIO, "error writing %s", report_path);
        }
    }
    if (st)
        return drisk_fail("eval", &err);
    FILE *out = drisk_arg_flag(a, "json") ? stderr : stdout;
    fprintf(out, "model %lld (%s, %s) on %zu snapshots", (long long)res.model_id, target,
            res.algorithm, res.rows);
    if (cls)
        fprintf(out, " (%zu positive)", res.m.positives);
    fputc('\n', out);
    if (o.recalibrate_every_s)
        fprintf(out, "walk forward: calibration refitted %zu times, every %lld days on the last "
                "%lld days' labels\n", res.recalibrations,
                (long long)(o.recalibrate_every_s / 86400), (long long)(o.recalibrate_window_s / 86400));
    meta_print(out, &res.meta);
    if (cls) {
        fprintf(out, "AUC %.4f  PR-AUC %.4f  Brier %.4f  log loss %.4f  ECE %.4f\n", res.m.auc,
                res.m.pr_auc, res.m.brier, res.m.log_loss, res.m.ece);
        fprintf(out, "\nreliability (predicted -> observed):\n");
        for (size_t i = 0; i < res.reliability.n_bins; i++) {
            const struct drisk_reliability_bin *b = &res.reliability.bins[i];
            if (b->count)
                fprintf(out, "  %.1f-%.1f  %9zu rows  predicted %.3f  observed %.3f\n", b->lo, b->hi,
                        b->count, b->mean_score, b->observed);
        }
        fprintf(out, "\nalerts per shipment     precision  recall  median lead (h before promise)\n");
        fprintf(out, "  drisk at p >= %.2f     %8.3f  %6.3f  %8.1f\n", threshold,
                res.alerts.precision, res.alerts.recall, res.alerts.median_lead_h);
        fprintf(out, "  naive rule             %8.3f  %6.3f  %8.1f  (%s)\n", res.naive.precision,
                res.naive.recall, res.naive.median_lead_h,
                strcmp(target, "lost") == 0 ? "no scan for 7 days"
                                             : "exception scan, or the promise passing");
        if (strcmp(target, "lost") == 0) {
            fprintf(out, "  (a loss shows only after the promise, when the parcel stops moving, so "
                    "leads against the promise are negative;\n   the lead that matters is against "
                    "the 7-day rule");
            if (want_tables)
                fprintf(out, ": %.0f%% of lost parcels flagged >= 24 h before it, median %.1f h",
                        100 * tables.lead.recall_at[0], tables.lead.median_h);
            else
                fprintf(out, ", which --json and --report show");
            fprintf(out, ": docs/REPORT.md)\n");
        }
    } else {
        fprintf(out, "MAE %.1f h  median AE %.1f h  P50 coverage %.3f  P90 coverage %.3f\n",
                res.eta.mae_h, res.eta.median_ae_h, res.eta.p50_coverage, res.eta.p90_coverage);
    }
    fprintf(out, "\nslices:\n");
    for (size_t i = 0; i < res.n_slices; i++) {
        const struct drisk_eval_slice *s = &res.slices[i];
        if (cls)
            fprintf(out, "  %-8s %-12s %9zu rows  AUC %.4f  PR-AUC %.4f  ECE %.4f\n", s->kind,
                    s->name, s->m.rows, s->m.auc, s->m.pr_auc, s->m.ece);
        else
            fprintf(out, "  %-8s %-12s %9zu rows  MAE %.1f h  P90 coverage %.3f\n", s->kind,
                    s->name, s->eta.rows, s->eta.mae_h, s->eta.p90_coverage);
    }
    if (drisk_arg_flag(a, "json")) {
        printf("{\"target\": \"%s\", \"model_id\": %lld, \"algorithm\": \"%s\", \"rows\": %zu, ",
               target, (long long)res.model_id, res.algorithm, res.rows);
        if (o.recalibrate_every_s)
            printf("\"recalibrate_every_d\": %lld, \"recalibrate_window_d\": %lld, "
                   "\"recalibrations\": %zu, ", (long long)(o.recalibrate_every_s / 86400),
                   (long long)(o.recalibrate_window_s / 86400), res.recalibrations);
        if (cls) {
            printf("\"positives\": %zu, ", res.m.positives);
            json_num("auc", res.m.auc, 1);
            json_num("pr_auc", res.m.pr_auc, 1);
            json_num("brier", res.m.brier, 1);
            json_num("log_loss", res.m.log_loss, 1);
            json_num("ece", res.m.ece, 1);
            lead_json("alerts", &res.alerts, 1);
            lead_json("naive_rule", &res.naive, 1);
        } else {
            json_num("mae_h", res.eta.mae_h, 1);
            json_num("p50_coverage", res.eta.p50_coverage, 1);
            json_num("p90_coverage", res.eta.p90_coverage, 1);
        }
        printf("\"slices\": [");
        for (size_t i = 0; i < res.n_slices; i++) {
            const struct drisk_eval_slice *s = &res.slices[i];
            printf("%s{\"%s\": ", i ? ", " : "", s->kind);
            drisk_json_string(stdout, s->name);
            printf(", \"rows\": %zu, ", cls ? s->m.rows : s->eta.rows);
            if (cls) {
                json_num("auc", s->m.auc, 1);
                json_num("pr_auc", s->m.pr_auc, 1);
                json_num("ece", s->m.ece, 0);
            } else {
                json_num("mae_h", s->eta.mae_h, 1);
                json_num("p90_coverage", s->eta.p90_coverage, 0);
            }
            printf("}");
        }
        printf("], ");
        drisk_tables_json(stdout, &tables, &res);
        printf("}\n");
    }
    drisk_eval_result_free(&res);
    return 0;
}

const struct drisk_command drisk_cmd_eval = {
    "eval", NULL,
    "evaluate a model on later shipments than it was trained on",
    "Metrics over the labeled snapshots of shipments created in [--from, --to): AUC, PR-AUC,\n"
    "Brier, log loss, ECE and a reliability table; alerts per shipment at --threshold\n"
    "(precision, recall, median hours before the promise of the first alert) beside\n"
    "today's naive rule; slices by carrier and service.\n"
    "--recalibrate-every DAYS walks forward: at --from and every DAYS after it, the model's\n"
    "calibration is refitted on the labels known by then (drisk recalibrate's window), and\n"
    "each snapshot is scored with the calibration in force at its as_of.",
    eval_opts, 0, run_eval,
};

/* ---- report ---- */

#define REPORT_MAX_MODELS 8

static const struct drisk_opt report_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to read" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "what the models predict" },
    { "models", DRISK_OPT_STRING, 0, "ID[,ID...]", NULL, 0, 0, "the models to compare (up to 8), each scored on the same snapshots; with --live: ACTIVE,SHADOW (default: the target's active model and its shadow)" },
    { "live", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "compare an active model and its shadow on the scores the server stored for live traffic (drisk models shadow), once labels are known" },
    { "from", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "shipments created at or after TIME (default: the latest training end of the models, so none is judged on what it saw)" },
    { "to", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "shipments created before TIME (default: all)" },
    { "threshold", DRISK_OPT_STRING, 0, "P", "0.5", 0, 0, "alert threshold for the lead times and the headline precision and recall" },
    { "out", DRISK_OPT_STRING, 0, "FILE.html", "", 0, 0, "where to write the page" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "also print the tables as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int run_report(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    const char *target = drisk_arg_str(a, "target"), *out_path = drisk_arg_str(a, "out");
    int64_t ids[REPORT_MAX_MODELS];
    size_t n = 0;
    char *end;
    double threshold;
    drisk_error_clear(&err);
    if (target_and_threshold(a, "report", &threshold))
        return 2;
    int live = drisk_arg_flag(a, "live");
    const char *list = drisk_arg_str(a, "models");
    if (!list && !live) {
        fprintf(stderr, "drisk report: --models ID[,ID...] is required (or --live)\n");
        return 2;
    }
    for (const char *p = list ? list : ""; *p;) {
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ',') || n == REPORT_MAX_MODELS) {
            fprintf(stderr, "drisk report: --models wants 1 to %d model ids separated by commas, "
                    "e.g. 3,5,7\n", REPORT_MAX_MODELS);
            return 2;
        }
        ids[n++] = v;
        p = *end ? end + 1 : end;
    }
    if (live ? n != 0 && n != 2 : n == 0) {
        fprintf(stderr, live ? "drisk report: --live compares two models: --models ACTIVE,SHADOW\n"
                             : "drisk report: --models wants at least one model id\n");
        return 2;
    }
    int rc = drisk_cli_open_store("report", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    if (live && n == 0) {
        int64_t act[DRISK_TARGET_COUNT], sha[DRISK_TARGET_COUNT];
        int k = drisk_target_parse(target);
        if (drisk_store_active_models(store, act, &err) ||
            drisk_store_shadow_models(store, sha, &err)) {
            drisk_store_free(store);
            return drisk_fail("report", &err);
        }
        if (!act[k] || !sha[k]) {
            drisk_store_free(store);
            fprintf(stderr, "drisk report: the %s target has no %s model: shadow one with drisk "
                    "models shadow ID, or name the pair with --models ACTIVE,SHADOW\n", target,
                    act[k] ? "shadow" : "active");
            return 2;
        }
        ids[0] = act[k];
        ids[1] = sha[k];
        n = 2;
    }
    struct drisk_eval_result *res = calloc(n, sizeof *res);
    struct drisk_tables *tab = calloc(n, sizeof *tab);
    struct drisk_report_model *rm = calloc(n, sizeof *rm);
    enum drisk_status st = DRISK_OK;
    if (!res || !tab || !rm)
        st = drisk_error_set(&err, DRISK_ENOMEM, "out of memory");
    int64_t from = drisk_arg_str(a, "from") ? drisk_arg_int(a, "from") : INT64_MIN;
    int64_t to = drisk_arg_str(a, "to") ? drisk_arg_int(a, "to") : INT64_MAX;
    if (live && !st) {
        if (!(st = drisk_eval_live(store, target, ids[0], ids[1], from, to, threshold, res, &err)))
            for (size_t i = 0; i < n && !st; i++) {
                st = tables_for(&res[i], target, threshold, &tab[i], &err);
                rm[i].res = &res[i];
                rm[i].t = &tab[i];
            }
    }
    for (size_t i = 0; i < n && !st && !live && !drisk_arg_str(a, "from"); i++) {
        struct drisk_model_row row;
        if (!(st = drisk_store_model_get(store, ids[i], NULL, &row, &err))) {
            if (strcmp(row.target, target) != 0)
                st = drisk_error_set(&err, DRISK_EINVAL, "model %lld predicts %s, not %s",
                                     (long long)ids[i], row.target, target);
            from = row.train_until > from ? row.train_until : from;
            drisk_store_model_row_free(&row);
        }
    }
    for (size_t i = 0; i < n && !st && !live; i++) {
        struct drisk_eval_options o = { .target = target, .model_id = ids[i], .from = from,
                                        .to = to, .threshold = threshold, .keep_rows = 1,
                                        .drift = 1 };
        DRISK_LOG(DRISK_LOG_INFO, "report: scoring model %lld (%zu of %zu)", (long long)ids[i],
                  i + 1, n);
        if (!(st = drisk_eval(store, &o, &res[i], &err)) &&
            !(st = tables_for(&res[i], target, threshold, &tab[i], &err))) {
            rm[i].res = &res[i];
            rm[i].t = &tab[i];
            if (i && (res[i].rows != res[0].rows || tab[i].shipments != tab[0].shipments))
                st = drisk_error_set(&err, DRISK_EIO, "internal error: models %lld and %lld were "
                                     "scored on different snapshots", (long long)ids[0],
                                     (long long)ids[i]);
        }
    }
    drisk_store_free(store);
    if (!st) {
        char tmp[4096];
        FILE *f = NULL;
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= sizeof tmp ||
            !(f = fopen(tmp, "w"))) {
            st = drisk_error_set(&err, DRISK_EINVAL, "cannot write %s: %s", out_path,
                                 strerror(errno));
        } else {
            int bad = drisk_report_html(f, target, from, to, threshold, rm, n) != 0;
            if (fclose(f) != 0 || bad || rename(tmp, out_path) != 0) {
                unlink(tmp);
                st = drisk_error_set(&err, DRISK_EIO, "error writing %s", out_path);
            }
        }
    }
    if (!st) {
        fprintf(stderr, "report of %zu model%s on %zu snapshots written to %s\n", n,
                n == 1 ? "" : "s", res[0].rows, out_path);
        if (drisk_arg_flag(a, "json")) {
            char t0[DRISK_TS_BUF], t1[DRISK_TS_BUF];
            printf("{\"target\": \"%s\", \"from\": %s%s%s, \"to\": %s%s%s, \"rows\": %zu, "
                   "\"models\": [", target, from == INT64_MIN ? "" : "\"",
                   from == INT64_MIN ? "null" : drisk_ts_format(from, t0),
                   from == INT64_MIN ? "" : "\"", to == INT64_MAX ? "" : "\"",
                   to == INT64_MAX ? "null" : drisk_ts_format(to, t1), to == INT64_MAX ? "" : "\"",
                   res[0].rows);
            for (size_t i = 0; i < n; i++) {
                printf("%s{\"model_id\": %lld, \"algorithm\": \"%s\", ", i ? ", " : "",
                       (long long)res[i].model_id, res[i].algorithm);
                if (strcmp(target, "eta") != 0) {
                    json_num("auc", res[i].m.auc, 1);
                    json_num("pr_auc", res[i].m.pr_auc, 1);
                    json_num("brier", res[i].m.brier, 1);
                    json_num("log_loss", res[i].m.log_loss, 1);
                    json_num("ece", res[i].m.ece, 1);
                } else {
                    json_num("mae_h", res[i].eta.mae_h, 1);
                    json_num("p50_coverage", res[i].eta.p50_coverage, 1);
                    json_num("p90_coverage", res[i].eta.p90_coverage, 1);
                }
                drisk_tables_json(stdout, &tab[i], &res[i]);
                printf("}");
            }
            printf("]}\n");
        }
    }
    for (size_t i = 0; res && i < n; i++)
        drisk_eval_result_free(&res[i]);
    free(res);
    free(tab);
    free(rm);
    return st ? drisk_fail("report", &err) : 0;
}

const struct drisk_command drisk_cmd_report = {
    "report", NULL,
    "compare models on the same window in one self-contained HTML page",
    "Scores every model on the same snapshots and writes one page (no network access needed\n"
    "to view it): headline figures with shipment-bootstrap intervals, ROC, PR and\n"
    "reliability diagrams, a threshold sweep, when alerts come (24/48/72 h), the claim\n"
    "policy backtested in money against always waiting, the naive rules and an oracle,\n"
    "slices by carrier, service, lane and week, feature importance, and drift (PSI per\n"
    "feature, ECE per week) with warnings past documented limits: docs/REPORT.md.",
    report_opts, 0, run_report,
};

/* ---- recalibrate ---- */

static const struct drisk_opt recal_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "whose model to recalibrate" },
    { "model", DRISK_OPT_INT, 0, "ID", NULL, 1, INT64_MAX, "model id (default: the target's active model)" },
    { "window", DRISK_OPT_INT, 0, "DAYS", "28", 1, 3650, "the labelled window: labels known in the last DAYS" },
    { "now", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "the window's end (default: the store's last created_at)" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the result as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int run_recalibrate(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    struct drisk_recalibrate_result res;
    const char *target = drisk_arg_str(a, "target");
    drisk_error_clear(&err);
    if (drisk_target_parse(target) < 0) {
        fprintf(stderr, "drisk recalibrate: --target must be late, lost or eta\n");
        return 2;
    }
    int rc = drisk_cli_open_store("recalibrate", drisk_arg_str(a, "db"), 0, &store);
    if (rc)
        return rc;
    struct drisk_recalibrate_options o = {
        .target = target,
        .model_id = drisk_arg_str(a, "model") ? drisk_arg_int(a, "model") : 0,
        .now = drisk_arg_str(a, "now") ? drisk_arg_int(a, "now") : DRISK_TS_NONE,
        .window_s = drisk_arg_int(a, "window") * 86400,
    };
    enum drisk_status st = drisk_recalibrate(store, &o, &res, &err);
    drisk_store_free(store);
    if (st)
        return drisk_fail("recalibrate", &err);
    int cls = strcmp(target, "eta") != 0;
    FILE *out = drisk_arg_flag(a, "json") ? stderr : stdout;
    if (!res.changed)
        fprintf(out, "model %lld kept: too few labelled %s snapshots in the last %lld days (%d "
                "needed, both classes for late and lost)\n", (long long)res.source_id, target,
                (long long)(o.window_s / 86400), DRISK_RECAL_MIN_ROWS);
    else
        fprintf(out, "model %lld: %s calibration of model %lld refitted on %zu snapshots of the "
                "last %lld days%s\n  on that window: %s %.4f -> %.4f, %s %.4f -> %.4f\n",
                (long long)res.model_id, res.calibration, (long long)res.source_id, res.rows,
                (long long)(o.window_s / 86400), res.active ? " (active)" : "",
                cls ? "log loss" : "P50 coverage", res.before[0], res.after[0],
                cls ? "ECE" : "P90 coverage", res.before[1], res.after[1]);
    if (drisk_arg_flag(a, "json")) {
        printf("{\"source_id\": %lld, \"model_id\": ", (long long)res.source_id);
        if (res.changed)
            printf("%lld", (long long)res.model_id);
        else
            printf("null");
        printf(", \"changed\": %s, \"active\": %s, \"calibration\": \"%s\", \"rows\": %zu, ",
               res.changed ? "true" : "false", res.active && res.changed ? "true" : "false",
               res.calibration, res.rows);
        printf("\"before\": {");
        json_num(cls ? "log_loss" : "p50_coverage", res.before[0], 1);
        json_num(cls ? "ece" : "p90_coverage", res.before[1], 0);
        printf("}, \"after\": {");
        json_num(cls ? "log_loss" : "p50_coverage", res.after[0], 1);
        json_num(cls ? "ece" : "p90_coverage", res.after[1], 0);
        printf("}}\n");
    }
    return 0;
}

const struct drisk_command drisk_cmd_recalibrate = {
    "recalibrate", NULL,
    "refit a model's calibration on the most recent labelled window",
    "Keeps the learner and refits only its calibration (Platt for late and lost, conformal\n"
    "P50/P90 for eta) on the snapshots whose labels became known in the last --window days\n"
    "before --now (late: promised in the window; lost: 21 days after; eta: delivered, 7\n"
    "days after the promise), so that probabilities and intervals follow a network that\n"
    "shifts. The result is registered as a new model and made active when the source was;\n"
    "run it from cron (say nightly) between retrainings. With too few rows it changes\n"
    "nothing and says so.",
    recal_opts, 0, run_recalibrate,
};

/* ---- models ---- */

static const struct drisk_opt models_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print JSON on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

struct list_ctx {
    int json, n;
};

static int list_row(const struct drisk_model_row *r, void *ctx)
{
    struct list_ctx *c = ctx;
    char t1[DRISK_TS_BUF];
    if (c->json) {
        printf("%s{\"id\": %lld, \"target\": \"%s\", \"algorithm\": \"%s\", \"active\": %s, "
               "\"shadow\": %s, \"schema_hash\": \"%s\", \"train_until\": \"%s\", "
               "\"train_rows\": %lld, \"valid_rows\": %lld, \"validation\": %s}",
               c->n ? ", " : "", (long long)r->id, r->target, r->algorithm,
               r->active ? "true" : "false", r->shadow ? "true" : "false", r->schema_hash,
               drisk_ts_format(r->train_until, t1), (long long)r->train_rows,
               (long long)r->valid_rows, r->metrics && r->metrics[0] ? r->metrics : "{}");
    } else {
        printf("%5lld  %-5s %-10s %-6s trained until %s on %lld rows  %s\n", (long long)r->id,
               r->target, r->algorithm, r->active ? "active" : r->shadow ? "shadow" : "",
               drisk_ts_format(r->train_until, t1),
               (long long)r->train_rows, r->metrics ? r->metrics : "");
    }
    c->n++;
    return 0;
}

static int run_models(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    drisk_error_clear(&err);
    const char *verb = a->positional_count ? a->positional[0] : "list";
    int json = drisk_arg_flag(a, "json");

    long long id = 0;
    if (strcmp(verb, "list") != 0) {
        char *end;
        if (a->positional_count < 2 || (id = strtoll(a->positional[1], &end, 10)) <= 0 || *end ||
            (strcmp(verb, "show") != 0 && strcmp(verb, "activate") != 0 &&
             strcmp(verb, "shadow") != 0 && strcmp(verb, "unshadow") != 0)) {
            fprintf(stderr, "drisk models: use list, show ID, activate ID, shadow ID or unshadow ID "
                    "(run drisk models --help)\n");
            return 2;
        }
    }
    int rc = drisk_cli_open_store("models", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    enum drisk_status st = DRISK_OK;
    if (strcmp(verb, "list") == 0) {
        struct list_ctx c = { json, 0 };
        if (json)
            printf("{\"models\": [");
        st = drisk_store_model_list(store, list_row, &c, &err);
        if (json)
            printf("]}\n");
    } else if (strcmp(verb, "activate") == 0) {
        st = drisk_store_model_activate(store, id, &err);
        if (!st)
            fprintf(stderr, "model %lld is now active\n", id);
    } else if (strcmp(verb, "shadow") == 0 || strcmp(verb, "unshadow") == 0) {
        int on = verb[0] == 's';
        st = drisk_store_model_shadow(store, id, on, &err);
        if (!st)
            fprintf(stderr, on ? "model %lld is now its target's shadow: a running server scores "
                                 "live requests with it too (within a second), stores both scores "
                                 "and acts on the active model only; compare them with drisk "
                                 "report --live\n"
                               : "model %lld is no longer a shadow\n", id);
    } else {
        struct drisk_model_row r;
        st = drisk_store_model_get(store, id, NULL, &r, &err);
        if (!st) {
            struct list_ctx c = { json, 0 };
            if (json)
                printf("{\"models\": [");
            list_row(&r, &c);
            if (json)
                printf("], \"schema\": ");
            if (json)
                drisk_json_string(stdout, r.schema);
            else
                printf("feature schema %s: %s\n", r.schema_hash, r.schema);
            struct drisk_model_meta meta;
            if (!json && drisk_model_read_meta(r.payload, r.payload_len, &meta, &err) == DRISK_OK)
                meta_print(stdout, &meta);
            if (json)
                printf("}\n");
            drisk_store_model_row_free(&r);
        }
    }
    drisk_store_free(store);
    if (st)
        return drisk_fail("models", &err);
    return 0;
}

const struct drisk_command drisk_cmd_models = {
    "models", "list | show ID | activate ID | shadow ID | unshadow ID",
    "list the registered models, show one, make one active, or score one in the shadow",
    "Activation takes effect for the next eval and, within a second, in a running server.\n"
    "shadow ID makes the model its target's challenger in the running server: every live\n"
    "scoring runs it too and stores both scores, but answers and acts on the active model\n"
    "only; drisk report --live compares the two once labels are known.",
    models_opts, 2, run_models,
};
