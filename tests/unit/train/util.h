/* Helpers shared by the train/ unit tests. */
#ifndef DREAM_TESTS_TRAIN_UTIL_H
#define DREAM_TESTS_TRAIN_UTIL_H

#include "train/internal.h"

#include <math.h>
#include <stdlib.h>

/* Standard normal from the project PRNG (Box-Muller). */
static inline double gauss(struct rng *r)
{
        double u = rng_unit(r), v = rng_unit(r);
        if (u < 1e-300)
                u = 1e-300;
        return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static inline double rel_diff(double a, double b)
{
        double s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
        return s < 1e-300 ? 0 : fabs(a - b) / s;
}

/* Regression data: y = x . beta + 3 + noise, x with offsets and scales. */
static inline void gen_regression(size_t n, uint32_t d, uint64_t seed, float *x, float *y, float *w)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++) {
                double t = 3;
                for (uint32_t j = 0; j < d; j++) {
                        double v = 10.0 * j + (1.0 + j) * gauss(&r);
                        x[i * d + j] = (float)v;
                        t += (j % 2 ? -0.5 : 1.5) * v;
                }
                y[i] = (float)(t + 0.3 * gauss(&r));
                if (w)
                        w[i] = (float)(1 + rng_below(&r, 4));
        }
}

/* Gaussian blobs: class c centred at centres[c] (d each), sd s. */
static inline void gen_blobs(size_t n, uint32_t d, uint32_t k, const double *centres, double s,
                             uint64_t seed, float *x, float *y)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++) {
                uint32_t c = (uint32_t)(i % k);
                for (uint32_t j = 0; j < d; j++)
                        x[i * d + j] = (float)(centres[c * d + j] + s * gauss(&r));
                if (y)
                        y[i] = (float)c;
        }
}

#endif
