/* The drisk command end to end: help and usage errors, exit codes, import atomicity and
 * --json counts, the real Olist data, a file written by another tool (shuffled header,
 * extra columns, AfterShip/EasyPost/Shippo statuses), and a simulate --export whose
 * files import back into an identical store.
 * argv: drisk binary, fixtures dir, shared datasets dir, scratch dir, and "olist" to run
 * only the Olist import (exit 77, skipped, when the data is not there). */
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/store.h"
#include "engine/vocab.h"
#include "tests/check.h"
#include "tests/store_target.h"

static const char *drisk, *fixtures, *datasets, *dir;
static char out_text[1 << 18], err_text[1 << 16];

static void slurp(const char *p, char *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs drisk with args (a shell fragment); returns its exit status and captures output. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[2048], cmd[4096], o[600], e[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/stdout.txt", dir);
    snprintf(e, sizeof e, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", drisk, args, o, e);
    int st = system(cmd);
    slurp(o, out_text, sizeof out_text);
    slurp(e, err_text, sizeof err_text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int64_t rows(const char *db, int scans)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    int64_t ns = -1, nc = -1;
    if (drisk_store_open(db, &st, &err) == 0)
        drisk_store_count(st, &ns, &nc, &err);
    drisk_store_free(st);
    return scans ? nc : ns;
}

static void test_usage(void)
{
    CHECK(run("--help") == 0 && strstr(out_text, "simulate") && strstr(out_text, "import"));
    CHECK(run("%s", "") == 2);
    CHECK(run("frobnicate") == 2 && strstr(err_text, "unknown command"));
    CHECK(run("simulate --help") == 0);
    /* every option with its default */
    CHECK(strstr(out_text, "--shipments N") && strstr(out_text, "default: 10000") &&
          strstr(out_text, "--seed S") && strstr(out_text, "default: 2025-01-01") &&
          strstr(out_text, "--db DB") && strstr(out_text, "required"));
    CHECK(run("import --help") == 0 && strstr(out_text, "--skip-invalid REJECTS"));
    CHECK(run("import --shipments x.csv") == 2 && strstr(err_text, "--db DB is required"));
    CHECK(run("import --db '%s/u.db' --bogus", dir) == 2 && strstr(err_text, "unknown option --bogus"));
    CHECK(run("import --db '%s/u.db'", dir) == 2 && strstr(err_text, "nothing to import"));
    CHECK(run("import --db '%s/u.db' --scans '%s/missing.csv'", dir, dir) == 2 &&
          strstr(err_text, "cannot open"));
    CHECK(run("simulate --db '%s/u.db' --shipments zero", dir) == 2 &&
          strstr(err_text, "whole number"));
    CHECK(run("simulate --db '%s/u.db' --start 2025-02-30", dir) == 2);
    CHECK(run("stats --db '%s/nothing-here.db'", dir) == 2 && strstr(err_text, "does not exist"));
}

static void test_import_atomic(void)
{
    char db[600], bad[600], rej[600];
    store_target(dir, "atomic.db", db, sizeof db);
    snprintf(bad, sizeof bad, "%s/bad_ships.csv", dir);
    snprintf(rej, sizeof rej, "%s/rejects.csv", dir);
    FILE *f = fopen(bad, "w");
    fputs("shipment_id,carrier,service,origin,destination,created_at,promised_at\n", f);
    for (int i = 0; i < 30; i++)
        fprintf(f, "G%d,apex,ground,R01,R02,2025-01-0%dT10:00:00Z,2025-01-09T10:00:00Z\n", i,
                1 + i % 5);
    fputs("B1,apex,ground,R01,R02,2025-01-03T10:00:00Z,not-a-time\n", f); /* line 32 */
    for (int i = 0; i < 25; i++)
        fprintf(f, "C%d,apex,ground,R01,R02,2025-01-03T10:00:00Z,\n", i); /* missing promise */
    fclose(f);
    CHECK(run("import --db '%s' --shipments '%s' --json", db, bad) == 2);
    CHECK(strstr(err_text, "bad_ships.csv:32: field promised_at:") != NULL);
    CHECK(strstr(err_text, "and 6 more problems") != NULL); /* 26 problems, 20 shown */
    CHECK(strstr(err_text, "nothing was imported") != NULL);
    CHECK(strstr(out_text, "\"rejected\": 26") && strstr(out_text, "\"inserted\": 0"));
    CHECK(rows(db, 0) == 0);
    CHECK(run("import --db '%s' --shipments '%s' --skip-invalid '%s' --json", db, bad, rej) == 0);
    CHECK(strstr(out_text, "\"inserted\": 30") && strstr(out_text, "\"rejected\": 26"));
    CHECK(rows(db, 0) == 30);
    struct stat st;
    CHECK(stat(rej, &st) == 0 && st.st_size > 100);
}

struct seen {
    int n, delivered_ts_ok, events[DRISK_EVENT_COUNT + 1];
    int ups_lower;
};

static int see(const struct drisk_shipment *sh, const struct drisk_scan *sc, size_t n, void *ctx,
               struct drisk_error *err)
{
    (void)err;
    struct seen *s = ctx;
    s->n++;
    if (strcmp(sh->carrier, "ups") == 0 && strcmp(sh->service, "ground") == 0)
        s->ups_lower = 1;
    for (size_t i = 0; i < n; i++) {
        s->events[sc[i].event]++;
        /* 2025-05-09T15:30:00-04:00 is 19:30 UTC */
        if (sc[i].event == DRISK_EVENT_DELIVERED && sc[i].ts == 1746819000)
            s->delivered_ts_ok = 1;
    }
    return 0;
}

static void test_foreign_file(void)
{
    char db[600];
    store_target(dir, "foreign.db", db, sizeof db);
    CHECK(run("import --db '%s' --shipments '%s/aftership_shipments.csv' --scans "
              "'%s/aftership_scans.csv' --json", db, fixtures, fixtures) == 0);
    CHECK(strstr(out_text, "\"shipments\": {\"read\": 2, \"inserted\": 2") != NULL);
    CHECK(strstr(out_text, "\"scans\": {\"read\": 8, \"inserted\": 8") != NULL);
    struct drisk_store *st = NULL;
    struct drisk_error err;
    struct seen s = { 0 };
    if (drisk_store_open(db, &st, &err) == 0)
        drisk_store_iterate(st, NULL, see, &s, &err);
    drisk_store_free(st);
    CHECK(s.n == 2 && s.ups_lower && s.delivered_ts_ok);
    CHECK(s.events[DRISK_EVENT_LABEL_CREATED] == 2 && s.events[DRISK_EVENT_IN_TRANSIT] == 2);
    CHECK(s.events[DRISK_EVENT_DELIVERY_ATTEMPTED] == 1 && s.events[DRISK_EVENT_EXCEPTION] == 1);
    CHECK(s.events[DRISK_EVENT_OUT_FOR_DELIVERY] == 1 && s.events[DRISK_EVENT_DELIVERED] == 1);

    /* the same scans from standard input: all already there */
    CHECK(run("import --db '%s' --scans - --json < '%s/aftership_scans.csv'", db, fixtures) == 0);
    CHECK(strstr(out_text, "\"scans\": {\"read\": 8, \"inserted\": 0, \"updated\": 0, "
                           "\"unchanged\": 8") != NULL);
}

static void test_olist(void)
{
    char db[600];
    store_target(dir, "olist.db", db, sizeof db);
    CHECK(run("import --db '%s' --shipments '%s/olist/shipments.csv' --scans "
              "'%s/olist/scans.csv' --json", db, datasets, datasets) == 0);
    CHECK_MSG(strstr(out_text, "\"shipments\": {\"read\": 10000, \"inserted\": 10000, "
                               "\"updated\": 0, \"unchanged\": 0, \"rejected\": 0}") != NULL,
              "%s %s", out_text, err_text);
    CHECK(strstr(out_text, "\"scans\": {\"read\": 29999, \"inserted\": 29999") != NULL);
    CHECK(rows(db, 0) == 10000 && rows(db, 1) == 29999);
    /* again: nothing changes */
    CHECK(run("import --db '%s' --shipments '%s/olist/shipments.csv' --scans "
              "'%s/olist/scans.csv' --json", db, datasets, datasets) == 0);
    CHECK(strstr(out_text, "\"unchanged\": 10000") && strstr(out_text, "\"unchanged\": 29999"));
    CHECK(run("stats --db '%s' --json", db) == 0 && strstr(out_text, "\"carrier\": \"unknown\""));
}

/* train, eval and models on a small simulated history */
/* The JSON number after "key": in out_text (NAN when absent). */
static double json_at(const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(out_text, pat);
    return p ? atof(p + strlen(pat)) : NAN;
}

static void test_learning(void)
{
    char db[600];
    store_target(dir, "learn.db", db, sizeof db);
    CHECK(run("simulate --db '%s' --shipments 6000 --seed 5 --days 90", db) == 0);
    CHECK(run("eval --db '%s' --target late", db) == 2 && strstr(err_text, "no active late model"));
    CHECK(strstr(err_text, "drisk train --target late") != NULL);
    CHECK(run("train --db '%s' --target late --until 2025-03-10 --json", db) == 0);
    CHECK(strstr(out_text, "\"model_id\": 1") && strstr(out_text, "\"active\": true") &&
          strstr(out_text, "\"algorithm\": \"gbdt\"") && strstr(out_text, "\"auc\": 0."));
    CHECK(run("eval --db '%s' --target late --json --predictions '%s/pred.csv' --report '%s/r.html'",
              db, dir, dir) == 0);
    char html[700];
    static char page[1 << 18];
    snprintf(html, sizeof html, "%s/r.html", dir);
    FILE *hf = fopen(html, "r");
    if (hf) {
        size_t got = fread(page, 1, sizeof page - 1, hf);
        page[got] = '\0';
        fclose(hf);
    }
    CHECK(strstr(page, "<h1>drisk report: late, 1 model</h1>") && strstr(page, "<svg") &&
          strstr(page, "naive: exception scan") && strstr(page, "<td>apex") &&
          strstr(page, "Reliability (10 bins)") && strstr(page, "Threshold sweep") &&
          strstr(page, "Money: the claim policy backtested") && strstr(page, "Drift</h2>"));
    /* eval --json carries the report's tables */
    CHECK_MSG(strstr(out_text, "\"reliability\": [{\"lo\": 0.00") &&
              strstr(out_text, "\"curves\": {\"roc\": [[0, 0]") &&
              strstr(out_text, "\"sweep\": [{\"threshold\": 0.05") &&
              strstr(out_text, "\"lead_time\": {\"reference\": \"promise\"") &&
              strstr(out_text, "\"money\": {\"shipments\": ") &&
              strstr(out_text, "\"slice_intervals\": [{\"kind\": \"carrier\"") &&
              strstr(out_text, "\"kind\": \"week\"") &&
              strstr(out_text, "\"drift\": {\"ece_limit\": 0.05"), "%.3000s", out_text);
    /* drift: every feature has an importance and a PSI; some feature matters, and the
     * stability index is a number, not a placeholder */
    {
        const char *f = strstr(out_text, "\"features\": [{\"name\": ");
        double top = 0;
        int psi_numbers = 0, n_feat = 0;
        for (const char *p = f; p && (p = strstr(p, "\"importance\": ")); p++) {
            double v = atof(p + 14);
            top = v > top ? v : top;
            n_feat++;
            const char *q = strstr(p, "\"psi\": ");
            psi_numbers += q && q[7] != 'n';
        }
        CHECK_MSG(f && n_feat > 50 && top > 0 && psi_numbers == n_feat,
                  "%d features, top importance %g, %d PSI numbers", n_feat, top, psi_numbers);
    }
    /* the money backtest: the policy on a useful model costs less than always waiting,
     * and nothing beats the oracle */
    double wait = json_at("always_wait"), policy = json_at("model_policy"),
           oracle = json_at("oracle");
    CHECK_MSG(policy < wait && oracle <= policy, "policy %g, wait %g, oracle %g", policy, wait,
              oracle);
    CHECK(strstr(out_text, "\"target\": \"late\"") && strstr(out_text, "\"auc\": 0.") &&
          strstr(out_text, "\"pr_auc\"") && strstr(out_text, "\"brier\"") &&
          strstr(out_text, "\"log_loss\"") && strstr(out_text, "\"ece\"") &&
          strstr(out_text, "\"naive_rule\"") && strstr(out_text, "\"carrier\": \"apex\""));
    const char *auc = strstr(out_text, "\"auc\": ");
    CHECK(auc && atof(auc + 7) > 0.65);
    char pred[700], head[128] = "", line[512];
    long long pred_rows = 0, bad_rows = 0, eval_rows = -1;
    const char *rows_at = strstr(out_text, "\"rows\": ");
    if (rows_at)
        eval_rows = atoll(rows_at + 8);
    snprintf(pred, sizeof pred, "%s/pred.csv", dir);
    FILE *f = fopen(pred, "r");
    if (f) {
        if (!fgets(head, sizeof head, f))
            head[0] = '\0';
        /* one line per evaluated snapshot, the last partial batch of scores included */
        while (fgets(line, sizeof line, f)) {
            pred_rows++;
            const char *score = strrchr(line, ',');
            double v = score ? atof(score + 1) : -1.0;
            bad_rows += !(v > 0.0 && v < 1.0);
        }
        fclose(f);
    }
    CHECK(strcmp(head, "shipment_id,as_of,target,label,score\n") == 0);
    CHECK_MSG(eval_rows > 256 && pred_rows == eval_rows && bad_rows == 0,
              "%lld prediction lines (%lld without a probability) for %lld evaluated snapshots",
              pred_rows, bad_rows, eval_rows);
    /* a second model is registered but not active unless asked */
    CHECK(run("train --db '%s' --target late --until 2025-03-01 --json", db) == 0);
    CHECK(strstr(out_text, "\"model_id\": 2") && strstr(out_text, "\"active\": false"));
    CHECK(run("models --db '%s' list --json", db) == 0);
    CHECK(strstr(out_text, "{\"models\": [{\"id\": 2") && strstr(out_text, "\"id\": 1, \"target\": \"late\", \"algorithm\": \"gbdt\", \"active\": true"));
    /* progress: not a terminal, so plain lines (here every tick) with done / total, rate
     * and ETA for the snapshots and each fit; --quiet silences them */
    setenv("DRISK_PROGRESS_EVERY", "0", 1);
    CHECK(run("train --db '%s' --target lost --until 2025-03-01 --model logreg", db) == 0);
    unsetenv("DRISK_PROGRESS_EVERY");
    CHECK_MSG(strstr(err_text, "drisk: progress: snapshots: ") &&
              strstr(err_text, " / 6000 shipments (") && strstr(err_text, "/s, ETA ") &&
              strstr(err_text, "drisk: progress: L-BFGS fit: ") &&
              strstr(err_text, "iterations (") && strstr(err_text, ", took "), "%s", err_text);
    CHECK(run("--quiet train --db '%s' --target lost --until 2025-03-01 --model logreg", db) == 0 &&
          !strstr(err_text, "progress:"));
    /* eval and report refuse a bad target, threshold or model list before reading anything */
    CHECK(run("eval --db '%s' --target late --threshold 1.5", db) == 2 &&
          strstr(err_text, "drisk eval: --threshold must be a probability"));
    CHECK(run("report --db '%s' --target soon --models 1 --out '%s/x.html'", db, dir) == 2 &&
          strstr(err_text, "drisk report: --target must be late, lost or eta"));
    CHECK(run("report --db '%s' --target late --models 1 --threshold x --out '%s/x.html'", db,
              dir) == 2 && strstr(err_text, "drisk report: --threshold"));
    CHECK(run("report --db '%s' --target late --models 1,,2 --out '%s/x.html'", db, dir) == 2 &&
          strstr(err_text, "--models wants"));
    CHECK(run("report --db '%s' --target late --out '%s/x.html'", db, dir) == 2 &&
          strstr(err_text, "--models ID[,ID...] is required"));
    CHECK(run("report --db '%s' --target lost --models 1 --out '%s/x.html'", db, dir) == 2 &&
          strstr(err_text, "predicts late, not lost"));
    /* train's old --activate-if-better is gone: drisk retrain's gate replaces it */
    CHECK(run("train --db '%s' --target late --activate-if-better", db) == 2 &&
          strstr(err_text, "unknown option"));
    CHECK(run("models --db '%s' activate 2", db) == 0);
    CHECK(run("models --db '%s' show 2 --json", db) == 0 && strstr(out_text, "\"active\": true"));
    CHECK(run("models --db '%s' activate 99", db) == 2 && strstr(err_text, "no model 99"));
    CHECK(run("models --db '%s' frobnicate 1", db) == 2);
    /* outputs that cannot be written are reported, not ignored */
    CHECK(run("eval --db '%s' --target late --report '%s/no/such/dir/r.html'", db, dir) == 2 &&
          strstr(err_text, "cannot write"));
    CHECK(run("export --db '%s' --target late --out '%s/no/such/dir/x.csv'", db, dir) == 2 &&
          strstr(err_text, "cannot write"));
    CHECK(run("train --db '%s' --target eta --until 2025-03-10 --json", db) == 0 &&
          strstr(out_text, "\"p90_coverage\""));
    CHECK(run("train --db '%s' --target eta --until 2025-03-10 --json", db) == 0 &&
          strstr(out_text, "\"algorithm\": \"gbdt\"")); /* the default for eta too */
    CHECK(run("eval --db '%s' --target eta --json --predictions '%s/pred_eta.csv'", db, dir) == 0 &&
          strstr(out_text, "\"mae_h\""));
    {
        /* eta's rows carry the P90 after the P50: positive hours, P90 >= P50 */
        char pe[700], l1[256] = "", l2[256] = "";
        snprintf(pe, sizeof pe, "%s/pred_eta.csv", dir);
        FILE *fe = fopen(pe, "r");
        if (fe) {
            if (!fgets(l1, sizeof l1, fe) || !fgets(l2, sizeof l2, fe))
                l2[0] = '\0';
            fclose(fe);
        }
        CHECK(strcmp(l1, "shipment_id,as_of,target,label,score,p90\n") == 0);
        const char *c = strrchr(l2, ',');
        double p90 = c ? atof(c + 1) : -1, p50 = -1;
        const char *c2 = c && c > l2 ? c - 1 : NULL;
        while (c2 && c2 > l2 && *c2 != ',')
            c2--;
        if (c2 && *c2 == ',')
            p50 = atof(c2 + 1);
        CHECK_MSG(p50 > 0 && p90 >= p50, "eta prediction row: %s", l2);
    }

    /* recalibration: the active model's calibration refitted on the last 28 days' labels,
     * registered as a new active model that scores differently; a window with no labels
     * changes nothing */
    CHECK(run("eval --db '%s' --target late --json", db) == 0);
    char before[64] = "", after[64] = "";
    const char *lq = strstr(out_text, "\"log_loss\": ");
    if (lq)
        snprintf(before, sizeof before, "%.20s", lq);
    CHECK(run("recalibrate --db '%s' --target late --json", db) == 0);
    CHECK_MSG(strstr(out_text, "\"source_id\": 2, \"model_id\": ") &&
              strstr(out_text, "\"changed\": true, \"active\": true, \"calibration\": \"platt\""),
              "%s", out_text);
    const char *rp = strstr(out_text, "\"rows\": ");
    CHECK(rp && atoll(rp + 8) >= 200);
    long long recal_id = 0;
    const char *mp = strstr(out_text, "\"model_id\": ");
    if (mp)
        recal_id = atoll(mp + 12);
    CHECK(run("models --db '%s' show %lld", db, recal_id) == 0 &&
          strstr(out_text, "recalibrated_from=2") && strstr(out_text, "recalibrated_window_d=28"));
    CHECK(run("eval --db '%s' --target late --from 2025-03-10 --json", db) == 0);
    lq = strstr(out_text, "\"log_loss\": ");
    if (lq)
        snprintf(after, sizeof after, "%.20s", lq);
    CHECK_MSG(before[0] && after[0] && strcmp(before, after) != 0, "%s / %s", before, after);
    CHECK(run("recalibrate --db '%s' --target eta --json", db) == 0 &&
          strstr(out_text, "\"calibration\": \"conformal\"") &&
          strstr(out_text, "\"changed\": true") && strstr(out_text, "\"p90_coverage\""));
    CHECK(run("recalibrate --db '%s' --target late --now 2025-01-03 --json", db) == 0 &&
          strstr(out_text, "\"changed\": false") && strstr(err_text, "kept"));
    /* walk forward: the calibration refitted every 7 days scores otherwise than the model
     * as stored */
    CHECK(run("eval --db '%s' --target late --model 2 --from 2025-03-10 --json", db) == 0);
    lq = strstr(out_text, "\"ece\": ");
    snprintf(before, sizeof before, "%.20s", lq ? lq : "");
    CHECK(run("eval --db '%s' --target late --model 2 --from 2025-03-10 --recalibrate-every 7 "
              "--json", db) == 0);
    rp = strstr(out_text, "\"recalibrations\": ");
    CHECK_MSG(rp && atoll(rp + 18) >= 2, "%s", out_text);
    lq = strstr(out_text, "\"ece\": ");
    snprintf(after, sizeof after, "%.20s", lq ? lq : "");
    CHECK_MSG(before[0] && after[0] && strcmp(before, after) != 0, "%s / %s", before, after);

    /* --model auto: every family fitted and compared; the lowest validation log loss is
     * registered with all candidates' figures, which models show and eval print */
    CHECK(run("train --db '%s' --target late --until 2025-03-10 --model auto --svm-max-rows 1500 "
              "--hidden 16,8 --json", db) == 0);
    CHECK(strstr(out_text, "\"candidates\": [{\"algorithm\": \"logreg\"") &&
          strstr(out_text, "{\"algorithm\": \"svm_linear\"") &&
          strstr(out_text, "{\"algorithm\": \"svm_rbf\"") && strstr(out_text, "{\"algorithm\": \"mlp\"") &&
          strstr(out_text, "{\"algorithm\": \"gbdt\""));
    CHECK(strstr(err_text, "training on a sample of 1500") != NULL);
    /* the chosen one has the lowest validation log loss of the five */
    double best = INFINITY, chosen = -1.0;
    char alg[32] = "";
    const char *ap = strstr(out_text, "\"algorithm\": \"");
    if (ap)
        sscanf(ap + 14, "%31[^\"]", alg);
    for (const char *c = strstr(out_text, "\"candidates\""); c && (c = strstr(c, "{\"algorithm\": \""));
         c++) {
        char name[32] = "";
        const char *ll = strstr(c, "\"log_loss\": ");
        sscanf(c + 15, "%31[^\"]", name);
        double v = ll ? atof(ll + 12) : INFINITY;
        if (v < best)
            best = v;
        if (strcmp(name, alg) == 0)
            chosen = v;
    }
    CHECK_MSG(alg[0] && chosen == best, "auto chose %s (log loss %g), best %g", alg, chosen, best);
    long long auto_id = 0;
    const char *ip = strstr(out_text, "\"model_id\": ");
    if (ip)
        auto_id = atoll(ip + 12);
    CHECK(run("models --db '%s' show %lld", db, auto_id) == 0 &&
          strstr(out_text, "candidates on the validation set") &&
          strstr(out_text, "svm_rbf      pr_auc") && strstr(out_text, "<- chosen") &&
          strstr(out_text, "chosen_by=auto"));
    CHECK(run("eval --db '%s' --target late --model %lld", db, auto_id) == 0 &&
          strstr(out_text, "candidates on the validation set") && strstr(out_text, "mlp "));
    CHECK(run("train --db '%s' --target eta --until 2025-03-10 --model mlp --hidden 8 --json", db) == 0 &&
          strstr(out_text, "\"algorithm\": \"mlp\"") && strstr(out_text, "\"p90_coverage\""));
    /* the mlp's L2 strength: three single networks on the grid, then the ensemble at the
     * strength with the best validation loss */
    CHECK(strstr(err_text, "mlp l2=0.0001 (one network)") &&
          strstr(err_text, "mlp l2=0.0003 (one network)") &&
          strstr(err_text, "mlp l2=0.001 (one network)"));
    const char *ens = strstr(err_text, " (the ensemble)");
    CHECK_MSG(ens && ens - err_text > 12 && (strncmp(ens - 6, "0.0001", 6) == 0 ||
                                             strncmp(ens - 6, "0.0003", 6) == 0 ||
                                             strncmp(ens - 5, "0.001", 5) == 0),
              "ensemble at a grid strength: %s", err_text);
    CHECK(run("train --db '%s' --target lost --until 2025-03-10 --model gbdt --depth 3 --json", db) == 0 &&
          strstr(out_text, "\"algorithm\": \"gbdt\"") && strstr(out_text, "\"auc\""));
    CHECK(run("train --db '%s' --target eta --model logreg", db) == 2 &&
          strstr(err_text, "no regression learner \"logreg\""));
    CHECK(run("train --db '%s' --target late --depth 9", db) == 2 && strstr(err_text, "--depth"));
    CHECK(run("train --db '%s' --target late --shrinkage 0", db) == 2 && strstr(err_text, "--shrinkage"));
    CHECK(run("train --db '%s' --target eta --huber-delta -1", db) == 2 &&
          strstr(err_text, "--huber-delta"));
    CHECK(run("train --db '%s' --target eta --model svm_rbf", db) == 2 &&
          strstr(err_text, "no regression learner \"svm_rbf\""));
    CHECK(run("train --db '%s' --target late --hidden 8,0", db) == 2 && strstr(err_text, "--hidden"));
    CHECK(run("train --db '%s' --target late --hidden 1,2,3,4", db) == 2);
    CHECK(run("train --db '%s' --target late --svm-c -1", db) == 2 && strstr(err_text, "--svm-c"));
}

/* How many models of target the registry lists, and whether model id is among them. */
static int models_of(const char *db, const char *target, long long id, int *has)
{
    char pat[64];
    int n = 0;
    *has = 0;
    if (run("models --db '%s' list --json", db) != 0)
        return -1;
    snprintf(pat, sizeof pat, "\"target\": \"%s\"", target);
    for (const char *p = out_text; (p = strstr(p, pat)); p++)
        n++;
    char idpat[64];
    snprintf(idpat, sizeof idpat, "{\"id\": %lld, \"target\": \"%s\"", id, target);
    *has = strstr(out_text, idpat) != NULL;
    return n;
}

/* drisk retrain, the nightly job, over several simulated nights: the first model is
 * promoted with its reason, a stronger challenger is promoted, a weaker one refused with
 * its reason, a second run while one holds the lock does nothing, and pruning keeps the
 * active model. */
static void test_retrain(void)
{
    char db[600];
    store_target(dir, "retrain.db", db, sizeof db);
    CHECK(run("simulate --db '%s' --shipments 8000 --seed 5 --days 120", db) == 0);
    CHECK(run("retrain --db '%s' --target eta --model svm_rbf", db) == 2 &&
          strstr(err_text, "does not learn eta"));
    /* night 1: a weak learner on a short window is the first champion */
    CHECK(run("retrain --db '%s' --target late --model logreg --window 20 --now 2025-03-01 --json",
              db) == 0);
    CHECK_MSG(strstr(out_text, "\"champion\": null, \"challenger\": 1, \"promoted\": true") &&
              strstr(out_text, "no active late model yet") &&
              strstr(out_text, "\"challenger_metrics\": {\"id\": 1, \"algorithm\": \"logreg\""),
              "%s", out_text);
    CHECK(json_at("holdout_shipments") > 500 && json_at("holdout_rows") > json_at("holdout_shipments"));
    /* night 2: the trees on a longer window beat it beyond noise */
    CHECK(run("retrain --db '%s' --target late --window 45 --now 2025-03-02 --json", db) == 0);
    CHECK_MSG(strstr(out_text, "\"champion\": 1, \"challenger\": 2, \"promoted\": true") &&
              strstr(out_text, "beats champion 1 beyond noise") &&
              strstr(out_text, "\"log_loss\": {\"value\": -") && strstr(out_text, ", \"hi\": -0."),
              "%s", out_text);
    CHECK(strstr(err_text, "promoted: challenger 2") != NULL); /* said on stderr too */
    /* night 3: a weak challenger is refused, with why, and the champion stays active */
    CHECK(run("retrain --db '%s' --target late --model logreg --window 12 --now 2025-03-03 "
              "--json", db) == 0);
    CHECK_MSG(strstr(out_text, "\"champion\": 2, \"challenger\": 3, \"promoted\": false") &&
              strstr(out_text, "\"reason\": \"refused: challenger 3"), "%s", out_text);
    CHECK(run("models --db '%s' show 2 --json", db) == 0 && strstr(out_text, "\"active\": true"));
    CHECK(run("models --db '%s' show 3", db) == 0 && strstr(out_text, "labels_by=2025-02-17"));
    /* a retrain holding the lock (here, this process's connection): the second does
     * nothing and exits 1 */
    struct drisk_store *holder = NULL;
    struct drisk_error lerr;
    CHECK(drisk_store_open(db, &holder, &lerr) == DRISK_OK &&
          drisk_store_lock(holder, "retrain", &lerr) == DRISK_OK);
    int before_has, before = models_of(db, "late", 3, &before_has);
    CHECK(run("retrain --db '%s' --target late --now 2025-03-04", db) == 1 &&
          strstr(err_text, "another process holds the retrain lock"));
    int after_has, after = models_of(db, "late", 3, &after_has);
    CHECK(before == 3 && after == before);
    drisk_store_free(holder);
    /* later nights, keeping one inactive model: every run decides and says why, the
     * registry never grows past the active model and one other, the active one stays */
    for (int night = 4; night <= 6; night++) {
        CHECK(run("retrain --db '%s' --target late --window 45 --now 2025-03-%02d --keep 1 --json",
                  db, night) == 0);
        CHECK_MSG(strstr(out_text, "\"promoted\": ") && strstr(out_text, "\"reason\": \"") &&
                  strstr(out_text, "\"difference\": {\"bootstrap_resamples\": 200"), "%s", out_text);
    }
    int has2, n = models_of(db, "late", 2, &has2);
    CHECK_MSG(n == 2, "%d late models after pruning", n);
    CHECK(run("models --db '%s' list --json", db) == 0 && strstr(out_text, "\"active\": true"));
    /* a shadow is never pruned; --keep 0 leaves the active model and the shadow */
    long long inactive = 0;
    {
        const char *p = strstr(out_text, "\"active\": false");
        const char *q = p;
        while (q && q > out_text && strncmp(q, "{\"id\": ", 7) != 0)
            q--;
        if (q && p)
            inactive = atoll(q + 7);
    }
    CHECK(inactive > 0 && run("models --db '%s' shadow %lld", db, inactive) == 0 &&
          strstr(err_text, "is now its target's shadow"));
    CHECK(run("models --db '%s' list --json", db) == 0 && strstr(out_text, "\"shadow\": true"));
    CHECK(run("retrain --db '%s' --target late --model logreg --window 12 --now 2025-03-07 "
              "--keep 0 --json", db) == 0 && strstr(out_text, "\"pruned\": ["));
    n = models_of(db, "late", inactive, &has2);
    CHECK_MSG(n == 2 && has2 && strstr(out_text, "\"active\": true") &&
              strstr(out_text, "\"shadow\": true"), "%d models: %s", n, out_text);
    /* no live scores yet: report --live says what to do */
    CHECK(run("report --db '%s' --target late --live --out '%s/live.html'", db, dir) == 2 &&
          strstr(err_text, "no stored live scores"));
    CHECK(run("models --db '%s' unshadow %lld", db, inactive) == 0);
    /* eta: pinball loss judges, and the interval bounds are checked */
    CHECK(run("retrain --db '%s' --target eta --window 45 --now 2025-03-02 --json", db) == 0 &&
          strstr(out_text, "\"promoted\": true") && strstr(out_text, "\"p90_coverage\""));
    CHECK(run("retrain --db '%s' --target eta --window 45 --now 2025-03-09 --json", db) == 0 &&
          strstr(out_text, "\"pinball_h\": {\"value\""));
    /* a holdout with no labels yet cannot judge: the run fails and registers nothing */
    CHECK(run("retrain --db '%s' --target lost --window 30 --now 2025-01-20", db) == 1);
    CHECK(models_of(db, "lost", 0, &has2) == 0);
}

static void test_simulate_roundtrip(void)
{
    char db1[600], db2[600], ex[600];
    store_target(dir, "sim1.db", db1, sizeof db1);
    store_target(dir, "sim2.db", db2, sizeof db2);
    snprintf(ex, sizeof ex, "%s/export", dir);
    mkdir(ex, 0755);
    CHECK(run("simulate --db '%s' --shipments 2000 --seed 7 --days 60 --export '%s' --json", db1, ex) == 0);
    CHECK(strstr(out_text, "\"shipments\": 2000") != NULL);
    int64_t ns = rows(db1, 0), nc = rows(db1, 1);
    CHECK(ns == 2000 && nc > 2000 * 5);
    /* the same options again add nothing */
    CHECK(run("simulate --db '%s' --shipments 2000 --seed 7 --days 60", db1) == 0);
    CHECK(rows(db1, 0) == ns && rows(db1, 1) == nc);
    /* other options make another history beside it, never new dates under old scans */
    CHECK(run("simulate --db '%s' --shipments 2000 --seed 7 --days 30 --json", db1) == 0);
    long long more = -1;
    const char *sc = strstr(out_text, "\"scans\": ");
    if (sc)
        more = atoll(sc + 9);
    CHECK(rows(db1, 0) == 2 * ns && more > 0 && rows(db1, 1) == nc + more);

    /* the export imports cleanly into an identical store */
    CHECK(run("import --db '%s' --shipments '%s/shipments.csv' --scans '%s/scans.csv' --json",
              db2, ex, ex) == 0);
    CHECK(strstr(out_text, "\"rejected\": 0}, \"scans\"") != NULL);
    CHECK(rows(db2, 0) == ns && rows(db2, 1) == nc);
    CHECK(run("stats --db '%s'", db2) == 0 && strstr(out_text, "on time"));

    /* the snapshot matrix: a header of label and features, rows for the target only */
    char csv[700];
    snprintf(csv, sizeof csv, "%s/late.csv", dir);
    CHECK(run("export --db '%s' --target late --until 2025-02-01 --out '%s' --json", db2, csv) == 0);
    CHECK(strstr(out_text, "\"rows\": ") && strstr(out_text, "\"schema_hash\""));
    long long exported = -1;
    const char *rp = strstr(out_text, "\"rows\": ");
    if (rp)
        exported = atoll(rp + 8);
    FILE *f = fopen(csv, "r");
    char header[8192] = "";
    long long lines = 0;
    int bad_label = 0;
    if (f && fgets(header, sizeof header, f)) {
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            lines++;
            /* the 4th field is the label: 0 or 1 */
            const char *p = line;
            for (int k = 0; k < 3 && p; k++)
                p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
            if (!p || (p[0] != '0' && p[0] != '1') || p[1] != ',')
                bad_label++;
        }
        fclose(f);
    }
    CHECK(strncmp(header, "shipment_id,merchant_id,as_of,label,promised_business_days", 58) == 0);
    CHECK(strstr(header, "lane_late_rate_28d") != NULL);
    CHECK(exported > 1000 && lines == exported && bad_label == 0);
    CHECK(run("export --db '%s' --target soon --out '%s'", db2, csv) == 2);
    CHECK(run("export --db '%s' --target eta --from 2025-03-01 --until 2025-02-01 --out '%s'", db2,
              csv) == 2);
}

/* drisk keys: a key printed once, only its hash stored, listed and revoked */
static void test_keys(void)
{
    char db[600];
    store_target(dir, "keys.db", db, sizeof db);
    CHECK(run("keys --db '%s' create --merchant shop-a", db) == 0);
    char key[128] = "";
    sscanf(out_text, "%127s", key);
    CHECK(strncmp(key, "drisk_", 6) == 0 && strlen(key) == 6 + 48);
    CHECK(strstr(err_text, "shown only now") != NULL);
    CHECK(run("keys --db '%s' create --admin --json", db) == 0 &&
          strstr(out_text, "\"admin\": true") && strstr(out_text, "\"key\": \"drisk_"));
    CHECK(!strstr(out_text, key)); /* a new key each time */
    CHECK(run("keys --db '%s' list --json", db) == 0 &&
          strstr(out_text, "{\"id\": 1, \"merchant\": \"shop-a\", \"admin\": false") &&
          strstr(out_text, "\"id\": 2, \"merchant\": null, \"admin\": true") &&
          !strstr(out_text, "drisk_"));
    /* the database holds no key text (its file, on SQLite) */
    FILE *f = store_target_pg() ? NULL : fopen(db, "rb");
    static char bytes[1 << 20];
    size_t got = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f)
        fclose(f);
    int found = 0;
    for (size_t i = 0; i + 16 <= got; i++)
        found |= memcmp(bytes + i, key + 6, 16) == 0;
    CHECK((got > 0 || store_target_pg()) && !found);
    CHECK(run("keys --db '%s' create", db) == 2 && strstr(err_text, "--merchant"));
    CHECK(run("keys --db '%s' revoke 1", db) == 0);
    CHECK(run("keys --db '%s' revoke 1", db) == 2 && strstr(err_text, "no key 1"));
    CHECK(run("keys --db '%s' rotate", db) == 2);
}

/* drisk serve as users run it: usage errors, a real listen on a free port, /healthz,
 * and a graceful stop on SIGTERM (exit 0). Uses learn.db from test_learning. */
static void test_serve(void)
{
    char db[600];
    store_target_url(dir, "learn.db", db, sizeof db);
    CHECK(run("serve --db '%s' --listen nowhere", db) == 2 && strstr(err_text, "--listen"));
    CHECK(run("serve --db '%s/absent.db'", dir) == 2 && strstr(err_text, "does not exist"));
    CHECK(run("serve --db '%s' --listen 256.1.1.1:0", db) == 2);
    /* checkpoints of the network statistics: the first from the whole history, the next
     * from it; the server starts from the newest */
    CHECK_MSG(run("checkpoint --db '%s' --now 2025-06-01 --json", db) == 0 &&
              strstr(out_text, "\"as_of\": \"2025-05-30T00:00:00Z\"") &&
              strstr(out_text, "\"from\": null"), "%s", out_text);
    CHECK_MSG(run("checkpoint --db '%s' --now 2025-06-02 --json", db) == 0 &&
              strstr(out_text, "\"from\": \"2025-05-30T00:00:00Z\""), "%s", out_text);
    CHECK(run("checkpoint --db '%s' --now someday", db) == 2);

    int errp[2];
    if (pipe(errp) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(errp[1], 2);
        close(errp[0]);
        execl(drisk, drisk, "serve", "--db", db, "--listen", "127.0.0.1:0", "--access-log",
              "-", "--access-log-format", "json", (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    char log[8192] = "";
    size_t len = 0;
    int port = 0;
    for (int waited = 0; !port && waited < 300; waited++) { /* up to 30 s */
        struct pollfd pf = { errp[0], POLLIN, 0 };
        if (poll(&pf, 1, 100) > 0) {
            ssize_t k = read(errp[0], log + len, sizeof log - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            log[len] = '\0';
        }
        const char *at = strstr(log, "listening on http://127.0.0.1:");
        if (at)
            port = atoi(at + strlen("listening on http://127.0.0.1:"));
    }
    CHECK_MSG(port > 0, "no port in: %s", log);
    char answer[4096] = "";
    if (port > 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            size_t got = 0;
            if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1))
                for (ssize_t k; (k = read(fd, answer + got, sizeof answer - 1 - got)) > 0;)
                    got += (size_t)k;
            answer[got] = '\0';
        }
        if (fd >= 0)
            close(fd);
    }
    const char *late = strstr(answer, "\"late\":");
    CHECK_MSG(strstr(answer, "200 OK") && strstr(answer, "\"status\":\"ok\"") && late &&
              late[7] >= '1' && late[7] <= '9', "%s", answer); /* the active late model's id */
    CHECK_MSG(strstr(log, "from the checkpoint as of 2025-05-31T00:00:00Z"), "%s", log);
    kill(pid, SIGTERM);
    int status = -1;
    waitpid(pid, &status, 0);
    for (ssize_t k; (k = read(errp[0], log + len, sizeof log - 1 - len)) > 0;)
        len += (size_t)k;
    log[len] = '\0';
    /* --access-log-format json: one object per request */
    CHECK_MSG(strstr(log, "\"ip\":\"127.0.0.1\",\"method\":\"GET\",\"path\":\"/healthz\","
                          "\"status\":200,"), "%s", log);
    log[len] = '\0';
    close(errp[0]);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(log, "stopped"),
              "status %d: %s", status, log);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: test_cli DRISK FIXTURES DATASETS SCRATCH\n");
        return 2;
    }
    drisk = argv[1];
    fixtures = argv[2];
    datasets = argv[3];
    dir = argv[4];
    mkdir(dir, 0755);
    if (argc > 5 && strcmp(argv[5], "olist") == 0) {
        char p[1024];
        snprintf(p, sizeof p, "%s/olist/shipments.csv", datasets);
        if (access(p, R_OK) != 0) {
            fprintf(stderr, "%s not found: skipping the Olist import (set DRISK_DATASETS)\n", p);
            return 77;
        }
        test_olist();
        CHECK_DONE();
    }
    test_usage();
    test_import_atomic();
    test_foreign_file();
    test_simulate_roundtrip();
    test_learning();
    test_retrain();
    test_serve();
    test_keys();
    CHECK_DONE();
}
