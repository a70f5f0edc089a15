/* Training jobs: what the files of the job subsystem share.
 *
 *   jobs.c           life cycle (start, drain, idle, free) and counters
 *   jobs_queue.c     the job table, durable records, running a job on the
 *                    runner threads
 *   jobs_watch.c     job_watch streams, on the loop thread
 *   jobs_handlers.c  train, job_list, job_status, job_cancel, predict and
 *                    get_model, on the worker pool
 *
 * The table (J->all and every tjob) is shared under J->lock.
 */
#ifndef DREAM_SERVER_JOBS_INTERNAL_H
#define DREAM_SERVER_JOBS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/internal.h"
#include "server/job_data.h"
#include "train/train.h"

/* "DBJ3" little-endian: the Train request may hold a holdout and the
 * JobInfo the results that say what they were scored on; a dreamd that
 * knows only DBJ2 skips these records rather than run or show them without
 * those fields. */
#define RECORD_MAGIC 0x334a4244u
/* magic, target, n_cols, train length, info length, dataset id, test dataset id */
#define RECORD_HEAD    28u
#define RECORD_MAGIC_2 0x324a4244u /* "DBJ2": the same head (read, never written) */
#define RECORD_MAGIC_1 0x314a4244u /* "DBJ1": no dataset ids (read, never written) */
#define RECORD_HEAD_1  20u

struct job_result {
        enum train_task task;
        uint64_t rows_used, peak_bytes, evaluated;
        double prep_seconds, train_seconds, wall_seconds;
        uint32_t epochs, iterations;
        bool has_metrics, converged, prep_cached;
        struct train_metrics m;
        char evaluated_on[DREAM_MAX_NAME + 32]; /* JobResult.evaluated_on */
        double holdout_share;
        uint64_t holdout_rows;
        double fit_loss, l2, var_scale;
        char solver[16]; /* JobResult.solver */
};

struct tjob {
        struct tjob *next; /* newest first */
        uint64_t id;
        Dream__V1__Train *train; /* owned */
        Dream__V1__JobState state;
        uint64_t submitted_unix;
        double submitted_real;       /* CLOCK_REALTIME seconds of the submission (wall_seconds) */
        double started, fit_started; /* monotonic seconds; 0: not yet */
        double elapsed;              /* final, once the job ended */
        uint32_t epoch, epochs;
        double loss;
        char *error; /* owned, FAILED / CANCELLED */
        int error_code;
        bool has_result;
        struct job_result res;
        int32_t target; /* of the training dataset, for predict */
        uint32_t n_cols;
        /* The datasets the job was submitted on: its reads are pinned to them
         * (0: not pinned, a record written before ids were kept). */
        uint32_t dataset_id, test_dataset_id;
        uint64_t version; /* bumped at every change, for watchers */
        bool cancel;
};

struct srv_jobs {
        struct srv *srv;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        struct tjob *all;
        uint64_t next_id;
        uint32_t queued, running;
        uint64_t n_done, n_failed, n_cancelled;
        double train_seconds;
        pthread_t *threads;
        uint32_t n_threads;
        bool stopping, joined, async_closing;
        uv_async_t async;
        struct srv_req *watchers;               /* loop only, linked by next_parked */
        struct jd_holdout_cache *holdout_cache; /* the last holdout read (own lock) */
};

/* Everything a JobInfo points to, so that it can live on the stack. */
struct info_parts {
        Dream__V1__JobInfo info;
        Dream__V1__Budget budget;
        Dream__V1__JobResult res;
        Dream__V1__RegressionMetrics reg;
        Dream__V1__ClassificationMetrics cls;
        Dream__V1__ClusterMetrics clu;
};

struct record {
        int32_t target;
        uint32_t n_cols;
        uint32_t dataset_id, test_dataset_id;
        const uint8_t *train, *info, *model;
        size_t train_len, info_len, model_len;
};

struct load_ctx {
        struct srv_jobs *J;
        uint64_t fix[SRV_MAX_JOBS]; /* jobs that were running (at most `jobs` of them):
                                       marked failed after the walk */
        uint32_t n_fix;
        int err;
};

/* jobs_queue.c */
bool srv_job_terminal(Dream__V1__JobState st);
struct tjob *srv_job_find(struct srv_jobs *J, uint64_t id);
void srv_job_free(struct tjob *t);
void srv_job_notify(struct srv_jobs *J);
void srv_job_info_fill(const struct tjob *t, struct info_parts *p);
int srv_job_persist(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState as,
                    const uint8_t *model, size_t model_len);
int srv_job_record_parse(const uint8_t *rec, size_t len, struct record *ret);
/* t's record (dm_malloc'd) as srv_job_persist writes it, `as` as there. */
int srv_job_record_build(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState as,
                         const uint8_t *model, size_t model_len, uint8_t **ret, size_t *ret_len);
/* The share of the rows a job sets aside: the request's, its default
 * (SRV_DEFAULT_HOLDOUT) for 0, 0 (none) for a negative one. */
double srv_job_holdout_share(const Dream__V1__Train *m);
/* The mode a Train request that leaves it unset gets on a dataset of d
 * features (the request's own when set). */
Dream__V1__TrainMode srv_job_default_mode(const Dream__V1__Train *m, uint32_t d);
void srv_job_params_of(const Dream__V1__Train *m, struct train_params *p);
void srv_job_default_batch(const Dream__V1__Train *m, uint64_t rows, struct train_params *p);
int srv_job_memory_check(struct srv *s, const Dream__V1__Train *m, const struct train_params *p,
                         uint32_t d, uint32_t n_classes, uint64_t fit_rows, uint64_t data_bytes,
                         char *errmsg, size_t errmsg_size);
int srv_job_load_cb(void *arg, uint64_t id, const void *bytes, size_t len, int err);
void *srv_job_runner(void *arg);

/* jobs_watch.c: the loop's side of J->async: send JobInfo to watchers. */
void srv_jobs_async_cb(uv_async_t *h);

#endif
