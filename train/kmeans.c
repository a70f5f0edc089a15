/* Weighted k-means: k-means++ seeding (each next centre drawn with
 * probability proportional to w * D^2) and Lloyd iterations whose
 * assignment step is a float GEMM, |x|^2 - 2 x.c + |c|^2, over row blocks
 * standardised on the fly. Centre sums are accumulated in double. */
#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#define BLOCK_ROWS 1024

struct km {
        uint32_t d, k;
        float *mean, *inv_sd;
        float *c;    /* k x d centres */
        float *cn;   /* k centre norms */
        float *xb;   /* BLOCK_ROWS x d */
        float *g;    /* BLOCK_ROWS x k */
        float *xn;   /* BLOCK_ROWS */
        double *sum; /* k x d */
        double *cw;  /* k */
        double *d2;  /* n, seeding only */
        uint64_t bytes;
};

static void *zalloc(struct km *km, size_t n, size_t size)
{
        void *p = dm_calloc(n ? n : 1, size);
        if (p)
                km->bytes += n * size;
        return p;
}

static void km_release(struct km *km)
{
        dm_free(km->mean);
        dm_free(km->inv_sd);
        dm_free(km->c);
        dm_free(km->cn);
        dm_free(km->xb);
        dm_free(km->g);
        dm_free(km->xn);
        dm_free(km->sum);
        dm_free(km->cw);
        dm_free(km->d2);
}

static void stdz_block(const struct km *km, const struct train_view *v, size_t i0, size_t rows)
{
        uint32_t d = km->d;
        for (size_t i = 0; i < rows; i++) {
                const float *x = v->x + (i0 + i) * d;
                float *z = km->xb + i * d;
                stdz_row(z, x, km->mean, km->inv_sd, d);
                km->xn[i] = cblas_sdot((int)d, z, 1, z, 1);
        }
}

static void add_scaled(double *restrict s, const float *restrict z, double w, uint32_t d)
{
        for (uint32_t j = 0; j < d; j++)
                s[j] += w * z[j];
}

static size_t pick_weighted(const struct train_view *v, const double *d2, double total,
                            struct rng *rng)
{
        double target = rng_unit(rng) * total, acc = 0;
        size_t last = 0;
        for (size_t i = 0; i < v->n; i++) {
                double w = v->w ? v->w[i] : 1.0;
                double p = d2 ? w * d2[i] : w;
                if (p <= 0)
                        continue;
                last = i;
                acc += p;
                if (acc > target)
                        return i;
        }
        return last;
}

static void set_centre(struct km *km, uint32_t c, const float *x)
{
        float s = 0;
        for (uint32_t j = 0; j < km->d; j++) {
                float z = (x[j] - km->mean[j]) * km->inv_sd[j];
                km->c[(size_t)c * km->d + j] = z;
                s += z * z;
        }
        km->cn[c] = s;
}

void train_i_mem_kmeans(const struct train_params *p, uint32_t d, uint64_t n_rows,
                        struct train_mem *mem)
{
        uint64_t k = p->k, kd = sat_mul(k, d);
        mem->weights = sat_add(kd, k);
        /* mean, inv_sd, c, cn (float); sum, cw (double) */
        mem->params = sat_add(sat_mul(sat_add(sat_add(kd, k), (uint64_t)2 * d), sizeof(float)),
                              sat_mul(sat_add(kd, k), sizeof(double)));
        /* xb, g, xn */
        mem->activations = sat_mul(sat_mul(BLOCK_ROWS, sat_add(sat_add(d, k), 1)), sizeof(float));
        mem->rows = sat_mul(n_rows, sizeof(double)); /* d2 */
}

static int seed_plusplus(struct km *km, const struct train_view *v, double wsum, struct rng *rng,
                         struct check *ck)
{
        uint32_t d = km->d;
        size_t first = pick_weighted(v, NULL, wsum, rng);
        set_centre(km, 0, v->x + first * d);
        for (size_t i = 0; i < v->n; i++)
                km->d2[i] = DBL_MAX;
        for (uint32_t c = 1; c < km->k; c++) {
                const float *cc = km->c + (size_t)(c - 1) * d;
                double total = 0;
                for (size_t i0 = 0; i0 < v->n; i0 += BLOCK_ROWS) {
                        size_t rows = v->n - i0 < BLOCK_ROWS ? v->n - i0 : BLOCK_ROWS;
                        stdz_block(km, v, i0, rows);
                        for (size_t i = 0; i < rows; i++) {
                                const float *z = km->xb + i * d;
                                float s = 0;
                                for (uint32_t j = 0; j < d; j++) {
                                        float e = z[j] - cc[j];
                                        s += e * e;
                                }
                                if (s < km->d2[i0 + i])
                                        km->d2[i0 + i] = s;
                                total += (v->w ? v->w[i0 + i] : 1.0) * km->d2[i0 + i];
                        }
                        if (train_i_check_poll(ck, (uint64_t)rows * d))
                                return DREAM_E_CANCELLED;
                }
                size_t pick = total > 0 ? pick_weighted(v, km->d2, total, rng)
                                        : pick_weighted(v, NULL, wsum, rng);
                set_centre(km, c, v->x + pick * d);
        }
        return 0;
}

int train_i_fit_kmeans(struct train_model *m, const struct train_view *v,
                       train_progress_fn progress, void *progress_ctx)
{
        const struct train_params *p = &m->params;
        uint32_t d = m->d, k = p->k;
        struct km km;
        struct rng rng;
        struct check ck;
        double wsum = 0;
        size_t positive = 0, kd;
        int r;

        memset(&km, 0, sizeof(km));
        km.d = d;
        km.k = k;
        if (__builtin_mul_overflow((size_t)k, (size_t)d, &kd) || kd > DREAM_MAX_MODEL_WEIGHTS)
                return DREAM_E_LIMIT;
        for (size_t i = 0; i < v->n; i++) {
                double w = v->w ? v->w[i] : 1.0;
                wsum += w;
                positive += w > 0;
        }
        if (positive < k)
                return DREAM_E_INVAL; /* fewer weighted rows than clusters */

        km.mean = zalloc(&km, d, sizeof(float));
        km.inv_sd = zalloc(&km, d, sizeof(float));
        km.c = zalloc(&km, kd, sizeof(float));
        km.cn = zalloc(&km, k, sizeof(float));
        km.xb = zalloc(&km, (size_t)BLOCK_ROWS * d, sizeof(float));
        km.g = zalloc(&km, (size_t)BLOCK_ROWS * k, sizeof(float));
        km.xn = zalloc(&km, BLOCK_ROWS, sizeof(float));
        km.sum = zalloc(&km, kd, sizeof(double));
        km.cw = zalloc(&km, k, sizeof(double));
        km.d2 = zalloc(&km, v->n, sizeof(double));
        if (!km.mean || !km.inv_sd || !km.c || !km.cn || !km.xb || !km.g || !km.xn || !km.sum ||
            !km.cw || !km.d2) {
                r = DREAM_E_NOMEM;
                goto out_release;
        }
        for (uint32_t j = 0; j < d; j++) {
                km.mean[j] = (float)m->mean[j];
                km.inv_sd[j] = (float)(1.0 / m->sd[j]);
        }
        m->work_bytes = km.bytes;
        rng_seed(&rng, p->seed);
        train_i_check_init(&ck, progress, progress_ctx);
        r = seed_plusplus(&km, v, wsum, &rng, &ck);
        if (r < 0)
                goto out_release;
        dm_free(km.d2);
        km.d2 = NULL;

        for (uint32_t it = 0; it < p->max_iter; it++) {
                double inertia = 0, shift = 0;
                memset(km.sum, 0, kd * sizeof(double));
                memset(km.cw, 0, k * sizeof(double));
                for (size_t i0 = 0; i0 < v->n; i0 += BLOCK_ROWS) {
                        size_t rows = v->n - i0 < BLOCK_ROWS ? v->n - i0 : BLOCK_ROWS;
                        stdz_block(&km, v, i0, rows);
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k,
                                    (int)d, 1.0f, km.xb, (int)d, km.c, (int)d, 0.0f, km.g, (int)k);
                        for (size_t i = 0; i < rows; i++) {
                                const float *gi = km.g + i * k;
                                float best = km.cn[0] - 2 * gi[0];
                                uint32_t bc = 0;
                                for (uint32_t c = 1; c < k; c++) {
                                        float dist = km.cn[c] - 2 * gi[c];
                                        if (dist < best) {
                                                best = dist;
                                                bc = c;
                                        }
                                }
                                double w = v->w ? v->w[i0 + i] : 1.0;
                                double dist = (double)best + km.xn[i];
                                inertia += w * (dist > 0 ? dist : 0);
                                km.cw[bc] += w;
                                add_scaled(km.sum + (size_t)bc * d, km.xb + i * d, w, d);
                        }
                        if (train_i_check_poll(&ck, (uint64_t)rows * k * d)) {
                                r = DREAM_E_CANCELLED;
                                goto out_release;
                        }
                }
                for (uint32_t c = 0; c < k; c++) {
                        float *cc = km.c + (size_t)c * d;
                        float s2 = 0;
                        if (km.cw[c] > 0) {
                                for (uint32_t j = 0; j < d; j++) {
                                        float nv = (float)(km.sum[(size_t)c * d + j] / km.cw[c]);
                                        float e = nv - cc[j];
                                        shift += (double)e * e;
                                        cc[j] = nv;
                                }
                        }
                        for (uint32_t j = 0; j < d; j++)
                                s2 += cc[j] * cc[j];
                        km.cn[c] = s2;
                }
                m->loss = inertia / wsum;
                m->epochs_run = it + 1;
                m->rows_used = v->n;
                if (!isfinite(m->loss)) {
                        r = DREAM_E_NUMERIC;
                        goto out_release;
                }
                if (progress && progress(progress_ctx, it + 1, p->max_iter, m->loss)) {
                        r = DREAM_E_CANCELLED;
                        goto out_release;
                }
                if (shift <= p->tol)
                        break;
        }

        r = train_i_model_layer_alloc(m, 0, d, k);
        if (r < 0)
                goto out_release;
        for (size_t c = 0; c < kd; c++)
                m->layers[0].w[c] = km.c[c];
        for (uint32_t c = 0; c < k; c++)
                m->layers[0].b[c] = km.cw[c];
        r = 0;
out_release:
        km_release(&km);
        return r;
}

#define PREDICT_ROWS 256

int train_i_predict_kmeans(const struct train_model *m, const float *x, size_t n, double *ret_value,
                           double *ret_proba, double *ret_sqdist)
{
        const struct train_layer *ly = &m->layers[0];
        uint32_t d = m->d, k = ly->out;
        double *a = NULL, *g = NULL, *cn = NULL;
        int r = 0;

        if (m->n_layers != 1 || ly->in != d || k == 0)
                return DREAM_E_INVAL;
        a = dm_mallocarray((size_t)PREDICT_ROWS * d, sizeof(double));
        g = dm_mallocarray((size_t)PREDICT_ROWS * k, sizeof(double));
        cn = dm_mallocarray(k, sizeof(double));
        if (!a || !g || !cn) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        for (uint32_t c = 0; c < k; c++)
                cn[c] = cblas_ddot((int)d, ly->w + (size_t)c * d, 1, ly->w + (size_t)c * d, 1);
        for (size_t i0 = 0; i0 < n; i0 += PREDICT_ROWS) {
                int rows = (int)(n - i0 < PREDICT_ROWS ? n - i0 : PREDICT_ROWS);
                for (int i = 0; i < rows; i++) {
                        const float *xi = x + (i0 + (size_t)i) * d;
                        for (uint32_t j = 0; j < d; j++)
                                a[(size_t)i * d + j] = ((double)xi[j] - m->mean[j]) / m->sd[j];
                }
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)k, (int)d, 1.0, a,
                            (int)d, ly->w, (int)d, 0.0, g, (int)k);
                for (int i = 0; i < rows; i++) {
                        size_t row = i0 + (size_t)i;
                        const double *gi = g + (size_t)i * k;
                        double best = cn[0] - 2 * gi[0];
                        uint32_t bc = 0;
                        for (uint32_t c = 1; c < k; c++) {
                                double dist = cn[c] - 2 * gi[c];
                                if (dist < best) {
                                        best = dist;
                                        bc = c;
                                }
                        }
                        ret_value[row] = bc;
                        if (ret_proba)
                                for (uint32_t c = 0; c < k; c++)
                                        ret_proba[row * k + c] = c == bc;
                        if (ret_sqdist) {
                                double xn =
                                    cblas_ddot((int)d, a + (size_t)i * d, 1, a + (size_t)i * d, 1);
                                double dist = best + xn;
                                ret_sqdist[row] = dist > 0 ? dist : 0;
                        }
                }
        }
out_free:
        dm_free(a);
        dm_free(g);
        dm_free(cn);
        return r;
}
