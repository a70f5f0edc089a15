/* The DTRB data files of bench/train (make_data.py): "DTRB", u64 n, u32 d,
 * n x d float32 features row-major, n float32 targets. */
#ifndef DREAM_BENCH_TRAIN_DATA_H
#define DREAM_BENCH_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

struct bench_data {
        float *x, *y;
        size_t n;
        uint32_t d;
};

/* 0, or -1 when the file cannot be read or is not a DTRB file. */
int bench_data_load(const char *path, struct bench_data *ret);
void bench_data_release(struct bench_data *dt);
/* Monotonic seconds. */
double bench_now(void);

#endif
