/* Training data of a job, read from the store in one of the data modes
 * (condensed, full, sample, refresh, exact), and the test data it is
 * evaluated on. Runs on a job's thread; touches only the store (read
 * transactions and the condensed-sample cache).
 *
 * Every mode standardises with the dataset's exact column statistics (the
 * store's sufficient statistics), so that modes differ only in the rows.
 * Classification targets become class indices 0..K-1 into the sorted list
 * of the training dataset's distinct target values.
 */
#ifndef DREAM_SERVER_JOB_DATA_H
#define DREAM_SERVER_JOB_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/gd/gd.h"
#include "storage/store.h"
#include "train/train.h"

enum jd_mode {
        JD_CONDENSED = 1,
        JD_FULL = 2,
        JD_SAMPLE = 3,
        JD_REFRESH = 4,
        JD_EXACT = 5,
};

/* The last holdout read, kept for the next job of the same dataset, row
 * count, seed and share (its rows, targets and sums, copied in and out
 * under its own lock): jobs that differ only in model or mode do not decode
 * the dataset again for it. */
struct jd_holdout_cache;
int jd_holdout_cache_new(struct jd_holdout_cache **ret);
void jd_holdout_cache_free(struct jd_holdout_cache *hc);

struct jd_request {
        const char *dataset;
        enum train_kind kind;
        enum jd_mode mode;
        struct gd_budget budget;
        enum gd_order order;
        uint64_t seed;
        /* Share of the dataset's rows set aside (drawn by the seed, at most
         * SRV_MAX_HOLDOUT_ROWS, at least 1) and excluded from training in
         * every mode; 0 = none. */
        double holdout;
        struct jd_holdout_cache *holdout_cache; /* may be NULL */
        /* The ids the job was submitted on (0: whatever the names name when
         * it starts): a dataset dropped and made again since is refused. */
        uint32_t dataset_id, test_dataset_id;
};

/* Owned float arrays behind a train_view. */
struct jd_rows {
        float *x, *y, *w; /* y, w may be NULL */
        float *v;         /* n * d per-feature variances (condensed samples), or NULL */
        size_t n, cap;
        uint32_t d;
};

struct jd_set {
        struct train_problem problem; /* points into this struct's arrays */
        uint32_t n_cols;
        int32_t target;           /* column of the target in the dataset, or -1 */
        uint32_t d;               /* features: every column but the target */
        uint64_t dataset_rows;    /* rows of the dataset when it was read */
        uint32_t dataset_id;      /* the dataset every read is pinned to (store.h) */
        uint32_t test_dataset_id; /* the test dataset's, when pinned at submit; or 0 */
        double *mean, *sd;        /* d: exact dataset statistics */
        double *classes;          /* n_classes sorted target values (classification) */
        uint32_t n_classes;
        struct jd_rows rows;           /* the view (refresh: refilled each epoch) */
        struct train_suffstats *stats; /* exact mode */
        size_t peak_view_bytes;        /* largest view held (x, y, w and v) */
        /* The holdout: sorted row numbers, and those rows (y as class
         * indices; a class the training rows lack gets K, K+1, ...: counted
         * in valid_unknown). valid_view (problem.valid) is over the rows of
         * known classes only. */
        uint64_t *holdout;
        uint64_t n_holdout;
        double holdout_share;
        struct jd_rows valid, valid_known;
        uint64_t valid_unknown;
        struct train_view valid_view;
        double *valid_tv;            /* the holdout's target values, until the classes are known */
        long double *ho_sx, *ho_sxx; /* d: the holdout's feature sums (and of squares) */
        struct train_suffstats *ho_stats; /* exact: the holdout's statistics */
        bool prep_cached;                 /* condensed: the samples came from the cache */
        bool holdout_cached;              /* the holdout's rows came from holdout_cache */
        /* refresh: row numbers of each class (or of everything, one group) */
        uint64_t **group_rows;
        uint64_t *group_n;
        uint32_t n_groups;
        double fraction; /* share of every group drawn per epoch */
        /* refresh: the dataset's rows decoded (n_cols float cells each, the
         * batch cache's copy), read instead of the store when set */
        const float *cache_rows;
        struct store *store;
        const char *dataset;
        uint64_t seed;
        char *errmsg; /* where next_epoch writes its failures */
        size_t errmsg_size;
};

/* Rows a holdout share sets aside of n (0: none): at least 1, at most
 * SRV_MAX_HOLDOUT_ROWS. */
uint64_t jd_holdout_rows(double share, uint64_t n);

/* Read the training data. On failure errmsg names the cause (dataset,
 * column, mode) and the set is released. */
int jd_prepare(struct store *store, const struct jd_request *rq, struct jd_set *ret_set,
               char *errmsg, size_t errmsg_size);
void jd_release(struct jd_set *set);

/* The view of a prepared set (not refresh). */
void jd_view(const struct jd_set *set, struct train_view *ret_view);
/* The refresh source: each epoch a fresh random share of every class. */
void jd_source(struct jd_set *set, struct train_source *ret_source);

/* Every row of the training dataset (the metrics of a job without a
 * holdout or test dataset), as jd_test reads a test dataset. */
int jd_all_rows(struct store *store, const struct jd_set *set, struct jd_rows *ret_rows,
                uint64_t *ret_unknown, char *errmsg, size_t errmsg_size);
/* Bytes of owned rows: x, y, w and v. */
size_t jd_rows_bytes(const struct jd_rows *r);

/* Read a test dataset with the training set's columns, target and classes.
 * Rows whose class the training data does not have are left out and
 * counted in *ret_unknown. */
int jd_test(struct store *store, const struct jd_set *set, const char *train_name,
            const char *test_name, struct jd_rows *ret_rows, uint64_t *ret_unknown, char *errmsg,
            size_t errmsg_size);
void jd_rows_release(struct jd_rows *r);

/* 0 when a test dataset has the training dataset's columns (names, order,
 * target), else DREAM_E_SCHEMA with both column lists in errmsg. */
int jd_columns_match(const char *train_name, const struct store_schema *train,
                     const char *test_name, const struct store_schema *test, char *errmsg,
                     size_t errmsg_size);

/* A view of owned rows. */
void jd_rows_view(const struct jd_rows *r, struct train_view *ret_view);

/* Features of a table's rows in a model's input order: every column but
 * `skip` (-1 = none), as float, row-major, into a dm_malloc'd array. */
int jd_table_features(const struct gd_table *t, int32_t skip, float **ret_x);

#endif
