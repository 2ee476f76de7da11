/* drisk retrain's job (training/retrain.h). */
#include "training/retrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "training/recalibrate.h"

/* Both models scored on the same holdout: the rows must be the same snapshots. */
static int same_rows(const struct drisk_eval_result *a, const struct drisk_eval_result *b)
{
    if (a->rows != b->rows)
        return 0;
    for (size_t i = 0; i < a->rows; i++)
        if (a->scored[i].shipment != b->scored[i].shipment ||
            a->scored[i].as_of != b->scored[i].as_of)
            return 0;
    return 1;
}

static void side_fill(struct drisk_retrain_side *s, const struct drisk_eval_result *e,
                      int64_t train_until)
{
    s->id = e->model_id;
    snprintf(s->algorithm, sizeof s->algorithm, "%s", e->algorithm);
    s->train_until = train_until;
    s->m = e->m;
    s->eta = e->eta;
}

static size_t distinct_shipments(const struct drisk_eval_result *e)
{
    int64_t *ids = malloc((e->rows + 1) * sizeof *ids);
    if (!ids)
        return 0;
    for (size_t i = 0; i < e->rows; i++)
        ids[i] = e->scored[i].shipment;
    size_t k = drisk_unique_i64(ids, e->rows);
    free(ids);
    return k;
}

/* Whether the champion was trained on labels of the holdout: one trained by retrain says
 * until when it saw labels (its labels_by), any other saw every label of the shipments
 * created before its training end. */
static int champion_saw(const struct drisk_eval_result *e, const struct drisk_model_row *row,
                        int64_t holdout_from)
{
    const char *by = drisk_model_meta_param(&e->meta, "labels_by");
    int64_t t;
    if (by && drisk_ts_parse(by, strlen(by), &t, NULL) == 0)
        return t > holdout_from;
    for (size_t i = 0; i < e->rows; i++)
        if (e->scored[i].created_at < row->train_until)
            return 1;
    return 0;
}

struct prune_ctx {
    const char *target;
    int keep, seen;
    int64_t ids[DRISK_RETRAIN_MAX_PRUNED];
    size_t n;
};

static int prune_pick(const struct drisk_model_row *row, void *ctx)
{
    struct prune_ctx *p = ctx;
    if (row->active || row->shadow || strcmp(row->target, p->target) != 0)
        return 0;
    if (p->seen++ >= p->keep && p->n < DRISK_RETRAIN_MAX_PRUNED)
        p->ids[p->n++] = row->id; /* the list is newest first: older than the kept ones */
    return 0;
}

/* The decision on the holdout figures: 1 to promote; reason says why either way. */
static int decide(const struct drisk_retrain_result *r, int classification, char *reason,
                  size_t cap)
{
    const struct drisk_retrain_side *ch = &r->champion, *cd = &r->challenger;
    const struct drisk_ci *dl = &r->diff.d_loss, *da = &r->diff.d_auc;
    const char *loss = classification ? "log loss" : "mean pinball loss (h)";
    double l_ch = classification ? ch->m.log_loss : (ch->eta.pinball50_h + ch->eta.pinball90_h) / 2;
    double l_cd = classification ? cd->m.log_loss : (cd->eta.pinball50_h + cd->eta.pinball90_h) / 2;
    char figures[200];
    snprintf(figures, sizeof figures, "%s %.4f against %.4f (difference %+.4f, 95%% interval "
             "%+.4f to %+.4f)", loss, l_cd, l_ch, dl->value, dl->lo, dl->hi);
    if (classification && !(cd->m.ece <= DRISK_RETRAIN_MAX_ECE)) {
        snprintf(reason, cap, "refused: challenger %lld's ECE on the holdout is %.4f, above the "
                 "%.2f bound; champion %lld stays", (long long)cd->id, cd->m.ece,
                 DRISK_RETRAIN_MAX_ECE, (long long)ch->id);
        return 0;
    }
    if (!classification && (!(fabs(cd->eta.p50_coverage - 0.5) <= DRISK_RETRAIN_P50_TOLERANCE) ||
                            !(fabs(cd->eta.p90_coverage - 0.9) <= DRISK_RETRAIN_P90_TOLERANCE))) {
        snprintf(reason, cap, "refused: challenger %lld's intervals are out of bounds on the "
                 "holdout (P50 covers %.3f, P90 %.3f; bounds 0.5 +/- %.2f, 0.9 +/- %.2f); "
                 "champion %lld stays", (long long)cd->id, cd->eta.p50_coverage,
                 cd->eta.p90_coverage, DRISK_RETRAIN_P50_TOLERANCE, DRISK_RETRAIN_P90_TOLERANCE,
                 (long long)ch->id);
        return 0;
    }
    if (!(dl->hi < 0.0)) {
        snprintf(reason, cap, "refused: challenger %lld is not better than champion %lld beyond "
                 "noise: %s; champion stays", (long long)cd->id, (long long)ch->id, figures);
        return 0;
    }
    if (classification && da->hi < 0.0) {
        snprintf(reason, cap, "refused: challenger %lld ranks worse than champion %lld beyond "
                 "noise: AUC difference %+.4f (95%% interval %+.4f to %+.4f); champion stays",
                 (long long)cd->id, (long long)ch->id, da->value, da->lo, da->hi);
        return 0;
    }
    if (classification)
        snprintf(reason, cap, "promoted: challenger %lld beats champion %lld beyond noise: %s; "
                 "AUC %+.4f (%+.4f to %+.4f); ECE %.4f", (long long)cd->id, (long long)ch->id,
                 figures, da->value, da->lo, da->hi, cd->m.ece);
    else
        snprintf(reason, cap, "promoted: challenger %lld beats champion %lld beyond noise: %s; "
                 "P50 covers %.3f, P90 %.3f", (long long)cd->id, (long long)ch->id, figures,
                 cd->eta.p50_coverage, cd->eta.p90_coverage);
    return 1;
}

static enum drisk_status score_holdout(struct drisk_store *store, const char *target, int64_t id,
                                       int64_t now, int64_t holdout_s,
                                       struct drisk_eval_result *res, struct drisk_error *err)
{
    struct drisk_eval_options eo = {
        .target = target,
        .model_id = id,
        .from = drisk_recal_history_from(now, holdout_s),
        .to = now,
        .threshold = 0.5,
        .labels_from = now - holdout_s,
        .labels_to = now,
        .keep_rows = 1,
    };
    return drisk_eval(store, &eo, res, err);
}

enum drisk_status drisk_retrain(struct drisk_store *store, const struct drisk_retrain_options *opts,
                                struct drisk_retrain_result *res, struct drisk_error *err)
{
    enum drisk_status rc;
    struct drisk_model_row champ = { 0 };
    struct drisk_eval_result *ech = calloc(1, sizeof *ech), *ecd = calloc(1, sizeof *ecd);
    double *a90 = NULL, *b90 = NULL, *a = NULL, *b = NULL, *y = NULL;
    int64_t *ship = NULL;
    int have_champ = 0, champ_scored = 0;
    double t0 = drisk_monotonic_s();
    const char *target = opts->train.target;
    memset(res, 0, sizeof *res);
    if (!ech || !ecd) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    int t = drisk_target_parse(target);
    if (t < 0) {
        rc = drisk_error_set(err, DRISK_EINVAL, "unknown target \"%s\": use late, lost or eta",
                             target ? target : "");
        goto out;
    }
    int classification = drisk_target_is_classification((enum drisk_target)t);
    if ((rc = drisk_store_lock(store, "retrain", err)))
        goto out;
    int64_t now = opts->now;
    if (now == DRISK_TS_NONE) {
        int64_t first, last;
        if ((rc = drisk_store_created_range(store, &first, &last, err)))
            goto out;
        if (first == DRISK_TS_NONE) {
            rc = drisk_error_set(err, DRISK_EINVAL, "the store holds no shipments: import some "
                                 "history first");
            goto out;
        }
        now = last + 1;
    }
    res->now = now;
    res->holdout_from = now - opts->holdout_s;
    res->train_from = res->holdout_from - opts->window_s;
    {
        struct drisk_error why = { 0 };
        enum drisk_status g = drisk_store_model_get(store, 0, target, &champ, &why);
        if (g != DRISK_OK && g != DRISK_ENOTFOUND) { /* only "none yet" means no champion */
            rc = drisk_error_set(err, g, "reading the champion: %s", why.msg);
            goto out;
        }
        have_champ = g == DRISK_OK;
    }

    /* the challenger: the window before the holdout, the labels known when it starts */
    struct drisk_train_options to = opts->train;
    struct drisk_train_result tr;
    int64_t lead;
    if ((rc = drisk_store_promise_lead(store, res->train_from, res->holdout_from,
                                       DRISK_RETRAIN_MATURITY_Q, &lead, err)))
        goto out;
    res->train_until = res->holdout_from - lead -
                       (t == DRISK_TARGET_LOST  ? DRISK_LOST_WINDOW_S
                        : t == DRISK_TARGET_ETA ? DRISK_RECAL_ETA_WAIT_S
                                                : 0);
    if (res->train_until <= res->train_from) {
        rc = drisk_error_set(err, DRISK_EINVAL, "the training window ends before it starts: "
                             "labels take %lld days to be known, so give --window more than that",
                             (long long)((res->holdout_from - res->train_until) / 86400));
        goto out;
    }
    to.from = res->train_from;
    to.until = res->train_until;
    to.labels_by = res->holdout_from;
    to.activate = DRISK_ACTIVATE_NEVER;
    DRISK_LOG(DRISK_LOG_INFO, "retrain %s: training on shipments created in the %lld days before "
              "the holdout", target, (long long)(opts->window_s / 86400));
    if ((rc = drisk_train(store, &to, &tr, err)))
        goto out;
    res->challenger.id = tr.model_id;
    if ((rc = score_holdout(store, target, tr.model_id, now, opts->holdout_s, ecd, err)))
        goto out;
    side_fill(&res->challenger, ecd, res->train_until);
    res->holdout_rows = ecd->rows;
    res->holdout_shipments = distinct_shipments(ecd);

    if (have_champ) {
        struct drisk_error why = { 0 };
        res->champion.id = champ.id;
        snprintf(res->champion.algorithm, sizeof res->champion.algorithm, "%s", champ.algorithm);
        res->champion.train_until = champ.train_until;
        if (score_holdout(store, target, champ.id, now, opts->holdout_s, ech, &why) == DRISK_OK) {
            if (!same_rows(ech, ecd)) {
                rc = drisk_error_set(err, DRISK_EIO, "internal error: the champion and the "
                                     "challenger were scored on different snapshots");
                goto out;
            }
            res->champion_saw_holdout = champion_saw(ech, &champ, res->holdout_from);
            side_fill(&res->champion, ech, champ.train_until);
            champ_scored = 1;
        } else {
            snprintf(res->reason, sizeof res->reason, "promoted: the champion, model %lld, cannot "
                     "score the holdout (%.200s)", (long long)champ.id, why.msg);
            res->promoted = 1;
        }
    }
    if (!have_champ) {
        snprintf(res->reason, sizeof res->reason, "promoted: there is no active %s model yet, "
                 "so the challenger becomes the first champion", target);
        res->promoted = 1;
    } else if (champ_scored) {
        size_t n = ecd->rows;
        if (!(a = malloc(n * sizeof *a)) || !(b = malloc(n * sizeof *b)) ||
            !(a90 = malloc(n * sizeof *a90)) || !(b90 = malloc(n * sizeof *b90)) ||
            !(y = malloc(n * sizeof *y)) || !(ship = malloc(n * sizeof *ship))) {
            rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            a[i] = ech->scored[i].score;
            a90[i] = ech->scored[i].p90;
            b[i] = ecd->scored[i].score;
            b90[i] = ecd->scored[i].p90;
            y[i] = ecd->scored[i].y;
            ship[i] = ecd->scored[i].shipment;
        }
        if ((rc = drisk_bootstrap_paired(n, ship, y, a, a90, b, b90, (enum drisk_target)t,
                                         DRISK_BOOTSTRAP_REPS, opts->seed, &res->diff, err)))
            goto out;
        res->promoted = decide(res, classification, res->reason, sizeof res->reason);
        if (res->champion_saw_holdout) {
            size_t len = strlen(res->reason);
            snprintf(res->reason + len, sizeof res->reason - len, " (the champion trained on "
                     "shipments created after the holdout began, so its figures flatter it)");
        }
    }
    if (res->promoted) {
        struct drisk_error why = { 0 };
        if (drisk_store_model_activate(store, res->challenger.id, &why) != DRISK_OK) {
            res->promoted = 0;
            snprintf(res->reason, sizeof res->reason, "refused: challenger %lld would have been "
                     "promoted but does not load (%.200s)", (long long)res->challenger.id,
                     why.msg);
        }
    }

    /* the decision is taken: pruning that fails is said, not a failed run */
    struct prune_ctx pc = { target, opts->keep, 0, { 0 }, 0 };
    struct drisk_error why = { 0 };
    if (drisk_store_model_list(store, prune_pick, &pc, &why) != DRISK_OK) {
        DRISK_LOG(DRISK_LOG_WARN, "retrain: inactive models not pruned: %s", why.msg);
        pc.n = 0;
    }
    for (size_t i = 0; i < pc.n; i++)
        if (drisk_store_model_delete(store, pc.ids[i], NULL) == DRISK_OK)
            res->pruned[res->n_pruned++] = pc.ids[i];
    res->seconds = drisk_monotonic_s() - t0;
    rc = DRISK_OK;
out:
    if (rc && res->challenger.id && !res->promoted) {
        /* a challenger that could not be judged is not left behind */
        drisk_store_model_delete(store, res->challenger.id, NULL);
        res->challenger.id = 0;
    }
    drisk_store_model_row_free(&champ);
    drisk_eval_result_free(ech);
    drisk_eval_result_free(ecd);
    free(ech);
    free(ecd);
    free(a);
    free(b);
    free(a90);
    free(b90);
    free(y);
    free(ship);
    return rc;
}
