/* Internal to models/ (and its tests): the byte encoding of model files that learners use
 * for their payloads, the registered learners' ops, and the numeric building blocks the
 * tests check against naive references. Nothing outside models/ and tests/ includes it.
 *
 * Encoding: integers are fixed-width little-endian; doubles are the 8 raw bytes of their
 * IEEE-754 binary64 representation, little-endian, so they round-trip exactly (NaN
 * payloads included); strings are a u32 byte length followed by the bytes, no NUL.
 * Appending to a drisk_buf never fails loudly: a failure (out of memory, the
 * DRISK_MODEL_MAX_BYTES cap) sets buf->failed and later appends do nothing, so a writer
 * checks once at the end. Reading is the same: a read past the end or a bad length sets
 * r->bad, returns zeros, and the reader checks once (drisk_reader_check). */
#ifndef DRISK_FORMAT_H
#define DRISK_FORMAT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "models/calibrate.h"
#include "models/model.h"

void drisk_buf_put(struct drisk_buf *buf, const void *bytes, size_t n);
void drisk_buf_put_u8(struct drisk_buf *buf, uint8_t v);
void drisk_buf_put_u32(struct drisk_buf *buf, uint32_t v);
void drisk_buf_put_u64(struct drisk_buf *buf, uint64_t v);
void drisk_buf_put_f64(struct drisk_buf *buf, double v);
void drisk_buf_put_f64s(struct drisk_buf *buf, const double *v, size_t n);
void drisk_buf_put_str(struct drisk_buf *buf, const char *s);

/* A bounds-checked cursor over borrowed bytes. */
struct drisk_reader {
    const unsigned char *p;
    size_t len, pos;
    int bad;
};

uint8_t drisk_reader_u8(struct drisk_reader *r);
uint32_t drisk_reader_u32(struct drisk_reader *r);
uint64_t drisk_reader_u64(struct drisk_reader *r);
double drisk_reader_f64(struct drisk_reader *r);
/* Reads n doubles into dst (zeros on failure). */
void drisk_reader_f64s(struct drisk_reader *r, double *dst, size_t n);
/* Reads a u64 element count and checks that count * elem_bytes more bytes remain and
 * count <= max; on failure sets r->bad and returns 0. Use it before allocating. */
size_t drisk_reader_count(struct drisk_reader *r, size_t elem_bytes, size_t max);
/* Reads a string into dst (cap bytes incl. NUL); too long or containing NUL sets bad. */
void drisk_reader_str(struct drisk_reader *r, char *dst, size_t cap);
/* DRISK_OK if nothing went wrong, else DRISK_EINVAL with "<what>: truncated or
 * malformed". */
enum drisk_status drisk_reader_check(const struct drisk_reader *r, const char *what,
                                     struct drisk_error *err);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes: the model file's trailer. */
uint32_t drisk_crc32(const void *data, size_t n);

/* Calibrator section of a model file: u8 kind, then Platt f64 a, f64 b, or isotonic
 * u64 n, n f64 x, n f64 y (x strictly increasing, y non-decreasing, all finite). */
void drisk_calibrator_save(const struct drisk_calibrator *c, struct drisk_buf *buf);
/* *out is NULL for kind none. */
enum drisk_status drisk_calibrator_load(struct drisk_reader *r, struct drisk_calibrator **out,
                                        struct drisk_error *err);

/* The learners in the registry. */
extern const struct drisk_model_ops drisk_gbdt_ops;
extern const struct drisk_model_ops drisk_logreg_ops;
extern const struct drisk_model_ops drisk_lognormal_ops;
extern const struct drisk_model_ops drisk_mlp_ops;
extern const struct drisk_model_ops drisk_svm_rbf_ops;
extern const struct drisk_model_ops drisk_svm_linear_ops;

/* splitmix64: the next number of the stream whose state is *state. The learners' one
 * source of randomness (initial weights, shuffles, samples): the same on every platform. */
uint64_t drisk_splitmix64(uint64_t *state);

/* Explains a model that has no additive form by occlusion: *base is the score of ref (the
 * training means), raw_j = score(x) - score(x with feature j set to ref_j), and the part of
 * score(x) - *base that the raw_j leave unexplained (interactions) is shared in proportion
 * to |raw_j|, so that score(x) = *base + sum(contrib) as drisk_model_explain promises. One
 * predict call over d + 2 rows; reentrant. */
enum drisk_status drisk_explain_by_occlusion(const struct drisk_model *m, const double *ref,
                                             const double *x, double *contrib, double *base,
                                             struct drisk_error *err);

/* ---- the multilayer perceptron's network (models/mlp.c), exposed for its tests ---- */

#define DRISK_MLP_MAX_HIDDEN 3

/* Layer sizes and one flat float parameter vector: for each layer l, W_l (size[l+1] rows
 * of size[l], row-major) at w_off[l], then b_l (size[l+1]) at b_off[l]. */
struct drisk_mlp_net {
    int n_layers;                          /* weight layers: hidden layers + 1 */
    int size[DRISK_MLP_MAX_HIDDEN + 2];    /* size[0] inputs ... size[n_layers] outputs */
    size_t w_off[DRISK_MLP_MAX_HIDDEN + 1], b_off[DRISK_MLP_MAX_HIDDEN + 1];
    size_t n_params;
    float *theta;
    int quantile; /* 1: two outputs, the 0.5 and 0.9 quantiles (pinball loss); 0: a logit */
};

/* Activations and back-propagated errors for up to `rows` rows. */
struct drisk_mlp_work {
    size_t rows;
    const float *input;
    float *act[DRISK_MLP_MAX_HIDDEN + 2];
    float *delta, *delta2, *mem;
};

/* Sizes the network (theta zeroed); n_hidden 1..3 layers of 1..4096 units. */
enum drisk_status drisk_mlp_net_init(struct drisk_mlp_net *net, size_t d, int n_hidden,
                                     const int *hidden, int quantile, struct drisk_error *err);
void drisk_mlp_net_clear(struct drisk_mlp_net *net);
enum drisk_status drisk_mlp_work_init(struct drisk_mlp_work *ws, const struct drisk_mlp_net *net,
                                      size_t rows, struct drisk_error *err);
void drisk_mlp_work_clear(struct drisk_mlp_work *ws);

/* The training objective on n <= ws->rows standardized rows x (n x size[0]) with targets
 * y (0/1, or standardized log-hours) and row weights w (NULL: 1):
 *   sum_i w_i loss_i / sum_i w_i + l2/2 * sum_l |W_l|^2   (biases not penalized),
 * loss_i the log loss of the logit, or the summed 0.5 and 0.9 pinball losses. When grad is
 * not NULL it receives the gradient (n_params floats) by back-propagation. */
double drisk_mlp_loss(const struct drisk_mlp_net *net, const float *x, const float *y,
                      const float *w, size_t n, double l2, float *grad, struct drisk_mlp_work *ws);

/* A linear model on standardized features, shared by logreg and lognormal:
 * score = b + sum_j w_j (x_j - mean_j) / std_j. mean, std and w are one allocation. */
struct drisk_linear {
    size_t d;
    double b;
    double *mean, *std, *w;
};

enum drisk_status drisk_linear_init(struct drisk_linear *lin, size_t d, struct drisk_error *err);
void drisk_linear_clear(struct drisk_linear *lin);
/* Reentrant; the one scoring loop of both learners. */
double drisk_linear_score(const struct drisk_linear *lin, const double *x);
void drisk_linear_explain(const struct drisk_linear *lin, const double *x, double *contrib,
                          double *base);
/* Payload: u64 d, f64 b, d f64 means, d f64 stds, d f64 weights. */
void drisk_linear_save(const struct drisk_linear *lin, struct drisk_buf *buf);
/* Reads a payload written by drisk_linear_save into lin (initialised here; on failure the
 * caller still calls drisk_linear_clear). d must equal n_features; every value must be
 * finite and every std positive. */
enum drisk_status drisk_linear_load(struct drisk_reader *r, size_t n_features,
                                    struct drisk_linear *lin, struct drisk_error *err);

/* The logistic function of a log-odds z, and the log loss of z for a label y in {0, 1},
 * both without overflow for any finite z: the one place the learners and the predict
 * wrapper compute them. */
static inline double drisk_sigmoid(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

static inline double drisk_logit_loss(double z, double y)
{
    return fmax(z, 0.0) + log1p(exp(-fabs(z))) - y * z;
}

/* The class weights of a classification set (ds->y in {0, 1}, ds->weight optional):
 * balanced gives class c the weight W / (2 W_c), W the total row weight, else both are 1.
 * *pos_share receives W_1 / W. The one rule logreg and the MLP weight rows by. */
void drisk_class_weights(const struct drisk_dataset *ds, int balanced, double *cw0, double *cw1,
                         double *pos_share);

/* Sets param key to v formatted with %.17g. */
/* Sets a metric (f64) or param (text) in meta, as the setters of models/model.h do and
 * the loader needs: keys in [A-Za-z0-9_.-], a full table or a too-long text DRISK_EINVAL. */
enum drisk_status drisk_meta_set_metric(struct drisk_model_meta *meta, const char *key,
                                        double value, struct drisk_error *err);
enum drisk_status drisk_meta_set_param(struct drisk_model_meta *meta, const char *key,
                                       const char *value, struct drisk_error *err);

enum drisk_status drisk_model_set_param_g(struct drisk_model *m, const char *key, double v,
                                          struct drisk_error *err);

/* Column means and population standard deviations of n x d row-major x (means by
 * cblas_dgemv). A constant column gets std 1, so it standardizes to 0. DRISK_EINVAL if a
 * column holds a non-finite value or overflows. */
enum drisk_status drisk_column_moments(const double *x, size_t n, size_t d, double *mean,
                                       double *std, struct drisk_error *err);

/* The logistic objective on a standardized n x d matrix xs (row-major), with row weights
 * sw (NULL: 1; class weights already folded in) normalised by their sum sw_sum:
 *   f(theta) = sum_i sw_i * [log(1 + e^z_i) - y_i z_i] / sw_sum + l2/2 * |w|^2,
 *   z = xs * w + b, theta = (w[0..d-1], b).
 * Returns f and writes its gradient to grad (d + 1). z and r are n-double workspaces.
 * z = xs*w and the gradient xs^T r are cblas_dgemv calls over row blocks, shared among up
 * to one thread per core for large n (a fixed partition: the result is deterministic). */
double drisk_logreg_objective(const double *xs, size_t n, size_t d, const double *y,
                              const double *sw, double sw_sum, double l2, const double *theta,
                              double *grad, double *z, double *r);

#endif
