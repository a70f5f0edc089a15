/* Model bytes (for LMDB) and JSON export.
 *
 * Bytes, version 2, little-endian:
 *   "DRMT" u32 version
 *   u32 kind, task, d, n_classes, n_layers, has_classes
 *   u32 epochs, batch, n_hidden, hidden[0], hidden[1], k, max_iter, standardize
 *   u64 seed; f64 lr, l2, tol
 *   u32 solver, lbfgs_iter, l2_fixed; f64 lbfgs_tol, var_scale        (version 2)
 *   u32 epochs_run; u64 rows_used, work_bytes; f64 loss
 *   u32 iterations, converged                                         (version 2)
 *   f64 y_mean, y_sd; f64 mean[d]; f64 sd[d]; f64 classes[n_classes] if has_classes
 *   per layer: u32 in, out; f64 w[in * out]; f64 b[out]
 *   u64 FNV-1a 64 of every byte before it
 */
#include "train/internal.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"

#include <endian.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MODEL_MAGIC   "DRMT"
#define MODEL_VERSION ((uint32_t)TRAIN_MODEL_VERSION)
/* Version 1 lacks the version 2 fields: its logistic and softmax models were
 * fitted by Adam, iterations = epochs_run, converged 0. */
#define MODEL_VERSION_MIN 1u

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

static int put_f64(struct dm_buf *b, double v)
{
        uint64_t u;
        memcpy(&u, &v, sizeof(u));
        return dm_buf_put_le64(b, u);
}

static int put_f64s(struct dm_buf *b, const double *v, size_t n)
{
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                r = put_f64(b, v[i]);
        return r;
}

int train_model_to_bytes(const struct train_model *m, uint8_t **ret_bytes, size_t *ret_len)
{
        const struct train_params *p;
        struct dm_buf b;
        uint8_t *out;
        size_t len;
        int r = 0;

        if (!m || !ret_bytes || !ret_len || m->n_layers > 3)
                return DREAM_E_INVAL;
        p = &m->params;
        dm_buf_init(&b);
        uint32_t head[] = {MODEL_VERSION,
                           m->kind,
                           m->task,
                           m->d,
                           m->n_classes,
                           m->n_layers,
                           m->classes ? 1u : 0u,
                           p->epochs,
                           p->batch,
                           p->n_hidden,
                           p->hidden[0],
                           p->hidden[1],
                           p->k,
                           p->max_iter,
                           p->standardize};
        r = dm_buf_append(&b, MODEL_MAGIC, 4);
        for (size_t i = 0; i < sizeof(head) / sizeof(head[0]) && r == 0; i++)
                r = dm_buf_put_le32(&b, head[i]);
        if (r == 0)
                r = dm_buf_put_le64(&b, p->seed);
        if (r == 0)
                r = put_f64(&b, p->lr);
        if (r == 0)
                r = put_f64(&b, p->l2);
        if (r == 0)
                r = put_f64(&b, p->tol);
        if (r == 0)
                r = dm_buf_put_le32(&b, p->solver);
        if (r == 0)
                r = dm_buf_put_le32(&b, p->lbfgs_iter);
        if (r == 0)
                r = dm_buf_put_le32(&b, p->l2_fixed);
        if (r == 0)
                r = put_f64(&b, p->lbfgs_tol);
        if (r == 0)
                r = put_f64(&b, p->var_scale);
        if (r == 0)
                r = dm_buf_put_le32(&b, m->epochs_run);
        if (r == 0)
                r = dm_buf_put_le64(&b, m->rows_used);
        if (r == 0)
                r = dm_buf_put_le64(&b, m->work_bytes);
        if (r == 0)
                r = put_f64(&b, m->loss);
        if (r == 0)
                r = dm_buf_put_le32(&b, m->iterations);
        if (r == 0)
                r = dm_buf_put_le32(&b, m->converged);
        if (r == 0)
                r = put_f64(&b, m->y_mean);
        if (r == 0)
                r = put_f64(&b, m->y_sd);
        if (r == 0)
                r = put_f64s(&b, m->mean, m->d);
        if (r == 0)
                r = put_f64s(&b, m->sd, m->d);
        if (r == 0 && m->classes)
                r = put_f64s(&b, m->classes, m->n_classes);
        for (uint32_t l = 0; l < m->n_layers && r == 0; l++) {
                const struct train_layer *ly = &m->layers[l];
                r = dm_buf_put_le32(&b, ly->in);
                if (r == 0)
                        r = dm_buf_put_le32(&b, ly->out);
                if (r == 0)
                        r = put_f64s(&b, ly->w, (size_t)ly->in * ly->out);
                if (r == 0)
                        r = put_f64s(&b, ly->b, ly->out);
        }
        if (r == 0)
                r = dm_buf_put_le64(&b, fnv1a(b.data, b.len));
        if (r < 0) {
                dm_buf_release(&b);
                return r;
        }
        out = dm_buf_steal(&b, &len);
        *ret_bytes = out;
        *ret_len = len;
        return 0;
}

static int rd_f64(struct dm_rd *rd, double *ret)
{
        uint64_t u;
        double v;
        int r = dm_rd_le64(rd, &u);
        if (r < 0)
                return r;
        memcpy(&v, &u, sizeof(v));
        if (!isfinite(v))
                return DREAM_E_CORRUPT;
        *ret = v;
        return 0;
}

/* Read n doubles into a new array, after checking they are all there. */
static int rd_f64s(struct dm_rd *rd, size_t n, double **ret)
{
        double *a;
        int r;
        if (n > (rd->len - rd->pos) / 8)
                return DREAM_E_TRUNCATED;
        a = dm_mallocarray(n ? n : 1, sizeof(double));
        if (!a)
                return DREAM_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
                r = rd_f64(rd, &a[i]);
                if (r < 0) {
                        dm_free(a);
                        return r;
                }
        }
        *ret = a;
        return 0;
}

int train_model_from_bytes(const void *bytes, size_t len, struct train_model **ret_model)
{
        struct train_model *m = NULL;
        struct train_params *p;
        struct dm_rd rd;
        uint32_t u[15];
        uint64_t stored, total = 0;
        uint32_t version;
        const uint8_t *magic;
        int r;

        if (!bytes || !ret_model)
                return DREAM_E_INVAL;
        if (len < 4 + 4 + 8)
                return DREAM_E_TRUNCATED;
        if (memcmp(bytes, MODEL_MAGIC, 4) != 0)
                return DREAM_E_FORMAT;
        dm_rd_init(&rd, bytes, len);
        (void)dm_rd_bytes(&rd, 4, &magic);
        r = dm_rd_le32(&rd, &u[0]);
        if (r < 0)
                return r;
        if (u[0] < MODEL_VERSION_MIN || u[0] > MODEL_VERSION)
                return DREAM_E_FORMAT;
        version = u[0];
        memcpy(&stored, (const uint8_t *)bytes + len - 8, 8);
        stored = le64toh(stored);
        if (fnv1a(bytes, len - 8) != stored)
                return DREAM_E_CHECKSUM;
        rd.len = len - 8; /* the checksum is not part of the body */

        for (int i = 1; i < 15; i++) {
                r = dm_rd_le32(&rd, &u[i]);
                if (r < 0)
                        return r;
        }
        uint32_t kind = u[1], task = u[2], d = u[3], nc = u[4], nl = u[5], has_classes = u[6];
        if (!train_kind_name((enum train_kind)kind) || d == 0 || d > DREAM_MAX_COLS ||
            nc > DREAM_MAX_CLASSES || has_classes > 1 || nl == 0 || nl > 3)
                return DREAM_E_CORRUPT;
        enum train_task want = train_kind_task((enum train_kind)kind);
        if (kind == TRAIN_MLP ? (task != TRAIN_TASK_REGRESSION && task != TRAIN_TASK_CLASSIFICATION)
                              : task != (uint32_t)want)
                return DREAM_E_CORRUPT;
        if (task == TRAIN_TASK_CLASSIFICATION ? (nc < 2 || (kind == TRAIN_LOGISTIC && nc != 2))
                                              : (nc != 0 || has_classes))
                return DREAM_E_CORRUPT;

        r = train_i_model_alloc((enum train_kind)kind, d, &m);
        if (r < 0)
                return r;
        m->task = (enum train_task)task;
        m->n_classes = nc;
        p = &m->params;
        p->epochs = u[7];
        p->batch = u[8];
        p->n_hidden = u[9];
        p->hidden[0] = u[10];
        p->hidden[1] = u[11];
        p->k = u[12];
        p->max_iter = u[13];
        p->standardize = u[14];
        r = dm_rd_le64(&rd, &p->seed);
        if (r == 0)
                r = rd_f64(&rd, &p->lr);
        if (r == 0)
                r = rd_f64(&rd, &p->l2);
        if (r == 0)
                r = rd_f64(&rd, &p->tol);
        if (r == 0 && version >= 2) {
                r = dm_rd_le32(&rd, &p->solver);
                if (r == 0)
                        r = dm_rd_le32(&rd, &p->lbfgs_iter);
                if (r == 0)
                        r = dm_rd_le32(&rd, &p->l2_fixed);
                if (r == 0)
                        r = rd_f64(&rd, &p->lbfgs_tol);
                if (r == 0)
                        r = rd_f64(&rd, &p->var_scale);
        } else if (r == 0) {
                p->solver = kind == TRAIN_LOGISTIC || kind == TRAIN_SOFTMAX || kind == TRAIN_MLP
                                ? TRAIN_SOLVER_ADAM
                                : TRAIN_SOLVER_LBFGS;
        }
        if (r == 0)
                r = dm_rd_le32(&rd, &m->epochs_run);
        if (r == 0)
                r = dm_rd_le64(&rd, &m->rows_used);
        if (r == 0)
                r = dm_rd_le64(&rd, &m->work_bytes);
        if (r == 0)
                r = rd_f64(&rd, &m->loss);
        if (r == 0 && version >= 2) {
                r = dm_rd_le32(&rd, &m->iterations);
                if (r == 0)
                        r = dm_rd_le32(&rd, &m->converged);
                if (r == 0 && m->converged > 1)
                        r = DREAM_E_CORRUPT;
        } else if (r == 0) {
                m->iterations = m->epochs_run;
        }
        if (r == 0)
                r = rd_f64(&rd, &m->y_mean);
        if (r == 0)
                r = rd_f64(&rd, &m->y_sd);
        if (r < 0)
                goto out_free;
        if (!(m->y_sd > 0)) {
                r = DREAM_E_CORRUPT;
                goto out_free;
        }
        /* Parameters must be ones a fit accepts (mlp keeps its hidden sizes,
         * the others store none). */
        {
                struct train_params chk = *p;
                if (kind != TRAIN_MLP) {
                        if (p->n_hidden != 0 || p->hidden[0] != 0 || p->hidden[1] != 0) {
                                r = DREAM_E_CORRUPT;
                                goto out_free;
                        }
                        chk.n_hidden = 1;
                        chk.hidden[0] = 1;
                } else if (p->n_hidden == 1 && p->hidden[1] != 0) {
                        r = DREAM_E_CORRUPT;
                        goto out_free;
                }
                if (train_params_validate((enum train_kind)kind, &chk, NULL) < 0) {
                        r = DREAM_E_CORRUPT;
                        goto out_free;
                }
        }
        if ((size_t)d * 16 > rd.len - rd.pos) {
                r = DREAM_E_TRUNCATED;
                goto out_free;
        }
        for (uint32_t j = 0; j < d && r == 0; j++)
                r = rd_f64(&rd, &m->mean[j]);
        for (uint32_t j = 0; j < d && r == 0; j++) {
                r = rd_f64(&rd, &m->sd[j]);
                if (r == 0 && !(m->sd[j] > 0))
                        r = DREAM_E_CORRUPT;
        }
        if (r == 0 && has_classes)
                r = rd_f64s(&rd, nc, &m->classes);
        if (r < 0)
                goto out_free;

        /* Layer shapes the kind implies. */
        uint32_t expect_nl = kind == TRAIN_MLP ? p->n_hidden + 1 : 1;
        uint32_t last_out = kind == TRAIN_KMEANS            ? p->k
                            : task == TRAIN_TASK_REGRESSION ? 1
                            : kind == TRAIN_LOGISTIC        ? 1
                                                            : nc;
        if (nl != expect_nl) {
                r = DREAM_E_CORRUPT;
                goto out_free;
        }
        for (uint32_t l = 0; l < nl; l++) {
                struct train_layer *ly = &m->layers[l];
                uint32_t in, out;
                size_t cells;
                r = dm_rd_le32(&rd, &in);
                if (r == 0)
                        r = dm_rd_le32(&rd, &out);
                if (r < 0)
                        goto out_free;
                uint32_t want_in = l == 0 ? d : m->layers[l - 1].out;
                uint32_t want_out = l + 1 == nl ? last_out : p->hidden[l];
                if (in != want_in || out != want_out) {
                        r = DREAM_E_CORRUPT;
                        goto out_free;
                }
                cells = (size_t)in * out;
                total += cells + out;
                if (total > DREAM_MAX_MODEL_WEIGHTS) {
                        r = DREAM_E_LIMIT;
                        goto out_free;
                }
                ly->in = in;
                ly->out = out;
                m->n_layers = l + 1;
                r = rd_f64s(&rd, cells, &ly->w);
                if (r == 0)
                        r = rd_f64s(&rd, out, &ly->b);
                if (r < 0)
                        goto out_free;
        }
        if (rd.pos != rd.len) {
                r = DREAM_E_CORRUPT;
                goto out_free;
        }
        *ret_model = m;
        return 0;
out_free:
        train_model_free(m);
        return r;
}

/* ---- JSON ---- */

static int jprintf(struct dm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int jprintf(struct dm_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n, r;
        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return DREAM_E_INVAL;
        r = dm_buf_reserve(b, (size_t)n + 1);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

static int jarray(struct dm_buf *b, const double *v, size_t n)
{
        int r = jprintf(b, "[");
        for (size_t i = 0; i < n && r == 0; i++)
                r = jprintf(b, "%s%.17g", i ? "," : "", v[i]);
        if (r == 0)
                r = jprintf(b, "]");
        return r;
}

static const char *task_name(enum train_task t)
{
        switch (t) {
        case TRAIN_TASK_REGRESSION:
                return "regression";
        case TRAIN_TASK_CLASSIFICATION:
                return "classification";
        case TRAIN_TASK_CLUSTERING:
                return "clustering";
        }
        return "unknown";
}

static const char *head_name(const struct train_model *m)
{
        if (m->kind == TRAIN_KMEANS)
                return "nearest_centre";
        if (m->task == TRAIN_TASK_REGRESSION)
                return "identity";
        return m->kind == TRAIN_LOGISTIC ? "sigmoid" : "softmax";
}

int train_model_to_json(const struct train_model *m, char **ret_json, size_t *ret_len)
{
        const struct train_params *p;
        struct dm_buf b;
        double *row = NULL;
        size_t len;
        int r;

        if (!m || !ret_json || !ret_len || !train_kind_name(m->kind) || m->n_layers > 3)
                return DREAM_E_INVAL;
        p = &m->params;
        dm_buf_init(&b);
        r = jprintf(&b,
                    "{\"format\":\"dream-model\",\"version\":%u,\"kind\":\"%s\",\"task\":\"%s\","
                    "\"n_features\":%u,\"n_classes\":%u,\"classes\":",
                    MODEL_VERSION, train_kind_name(m->kind), task_name(m->task), m->d,
                    m->n_classes);
        if (r == 0)
                r = m->classes ? jarray(&b, m->classes, m->n_classes) : jprintf(&b, "null");
        if (r == 0)
                r = jprintf(&b,
                            ",\"hyper_parameters\":{\"epochs\":%u,\"batch\":%u,\"lr\":%.17g,"
                            "\"l2\":%.17g,\"hidden\":[",
                            p->epochs, p->batch, p->lr, p->l2);
        for (uint32_t h = 0; h < p->n_hidden && h < 2 && r == 0; h++)
                r = jprintf(&b, "%s%u", h ? "," : "", p->hidden[h]);
        if (r == 0)
                r = jprintf(&b,
                            "],\"k\":%u,\"max_iter\":%u,\"tol\":%.17g,\"seed\":%llu,"
                            "\"standardize\":%s,\"solver\":\"%s\",\"lbfgs_iter\":%u,"
                            "\"lbfgs_tol\":%.17g,\"var_scale\":%.17g,\"l2_fixed\":%s},",
                            p->k, p->max_iter, p->tol, (unsigned long long)p->seed,
                            p->standardize ? "true" : "false",
                            p->solver == TRAIN_SOLVER_ADAM ? "adam" : "lbfgs", p->lbfgs_iter,
                            p->lbfgs_tol, p->var_scale, p->l2_fixed ? "true" : "false");
        if (r == 0)
                r = jprintf(&b, "\"standardisation\":{\"mean\":");
        if (r == 0)
                r = jarray(&b, m->mean, m->d);
        if (r == 0)
                r = jprintf(&b, ",\"sd\":");
        if (r == 0)
                r = jarray(&b, m->sd, m->d);
        if (r == 0)
                r = jprintf(&b,
                            "},\"target\":{\"mean\":%.17g,\"sd\":%.17g},\"activation\":\"relu\","
                            "\"head\":\"%s\",\"layers\":[",
                            m->y_mean, m->y_sd, head_name(m));
        for (uint32_t l = 0; l < m->n_layers && r == 0; l++) {
                const struct train_layer *ly = &m->layers[l];
                r = jprintf(&b, "%s{\"in\":%u,\"out\":%u,\"weights\":[", l ? "," : "", ly->in,
                            ly->out);
                for (uint32_t o = 0; o < ly->out && r == 0; o++) {
                        if (o)
                                r = jprintf(&b, ",");
                        if (r == 0)
                                r = jarray(&b, ly->w + (size_t)o * ly->in, ly->in);
                }
                if (r == 0)
                        r = jprintf(&b, "],\"bias\":");
                if (r == 0)
                        r = jarray(&b, ly->b, ly->out);
                if (r == 0)
                        r = jprintf(&b, "}");
        }
        if (r == 0)
                r = jprintf(&b, "]");
        if (r == 0 && m->kind == TRAIN_KMEANS) {
                row = dm_mallocarray(m->d, sizeof(double));
                if (!row)
                        r = DREAM_E_NOMEM;
                if (r == 0)
                        r = jprintf(&b, ",\"centres_original\":[");
                for (uint32_t c = 0; c < m->layers[0].out && r == 0; c++) {
                        r = train_kmeans_centre(m, c, row);
                        if (r == 0)
                                r = jprintf(&b, "%s", c ? "," : "");
                        if (r == 0)
                                r = jarray(&b, row, m->d);
                }
                if (r == 0)
                        r = jprintf(&b, "]");
        }
        if (r == 0)
                r = jprintf(&b,
                            ",\"fit\":{\"epochs_run\":%u,\"loss\":%.17g,\"rows_used\":%llu,"
                            "\"work_bytes\":%llu,\"iterations\":%u,\"converged\":%s}}",
                            m->epochs_run, m->loss, (unsigned long long)m->rows_used,
                            (unsigned long long)m->work_bytes, m->iterations,
                            m->converged ? "true" : "false");
        if (r == 0)
                r = dm_buf_put_u8(&b, 0);
        dm_free(row);
        if (r < 0) {
                dm_buf_release(&b);
                return r;
        }
        *ret_json = (char *)dm_buf_steal(&b, &len);
        *ret_len = len - 1;
        return 0;
}
