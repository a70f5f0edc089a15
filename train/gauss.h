/* Standard normal deviates for train/ (vicinal draws). Internal: static
 * inline so that the per-feature draw costs no call. */
#ifndef DREAM_TRAIN_GAUSS_H
#define DREAM_TRAIN_GAUSS_H

#include "train/internal.h"

#include <math.h>
#include <stdint.h>

/* Standard normal deviates by the ziggurat method (Marsaglia and Tsang,
 * 2000) on 128 layers: one 64-bit draw gives the layer (low bits) and the
 * signed abscissa (high bits), independent bits; about 1% of the draws fall
 * back to the exact wedge or tail computation. */
#define ZIG_LAYERS 128
#define ZIG_R      3.442619855899      /* start of the tail */
#define ZIG_V      9.91256303526217e-3 /* area of every layer */

struct gauss {
        struct rng r;
        uint32_t k[ZIG_LAYERS]; /* |hz| below k: inside the layer's rectangle */
        double w[ZIG_LAYERS], f[ZIG_LAYERS];
};

static inline void gauss_init(struct gauss *g, uint64_t seed)
{
        const double m1 = 2147483648.0;
        double dn = ZIG_R, tn = dn, q = ZIG_V / exp(-0.5 * dn * dn);
        rng_seed(&g->r, seed);
        g->k[0] = (uint32_t)((dn / q) * m1);
        g->k[1] = 0;
        g->w[0] = q / m1;
        g->w[ZIG_LAYERS - 1] = dn / m1;
        g->f[0] = 1.0;
        g->f[ZIG_LAYERS - 1] = exp(-0.5 * dn * dn);
        for (int i = ZIG_LAYERS - 2; i >= 1; i--) {
                dn = sqrt(-2.0 * log(ZIG_V / dn + exp(-0.5 * dn * dn)));
                g->k[i + 1] = (uint32_t)((dn / tn) * m1);
                tn = dn;
                g->f[i] = exp(-0.5 * dn * dn);
                g->w[i] = dn / m1;
        }
}

/* Uniform in (0, 1]. */
static inline double gauss_unit(struct gauss *g)
{
        return 1.0 - rng_unit(&g->r);
}

static inline float gauss_next(struct gauss *g)
{
        for (;;) {
                uint64_t b = rng_next(&g->r);
                uint32_t i = (uint32_t)(b & (ZIG_LAYERS - 1));
                int32_t hz = (int32_t)(uint32_t)(b >> 32);
                uint32_t mag = hz < 0 ? 0u - (uint32_t)hz : (uint32_t)hz;
                double x = hz * g->w[i];
                if (mag < g->k[i])
                        return (float)x;
                if (i == 0) { /* the tail beyond ZIG_R */
                        double tx, ty;
                        do {
                                tx = -log(gauss_unit(g)) / ZIG_R;
                                ty = -log(gauss_unit(g));
                        } while (ty + ty < tx * tx);
                        return (float)(hz > 0 ? ZIG_R + tx : -ZIG_R - tx);
                }
                if (g->f[i] + rng_unit(&g->r) * (g->f[i - 1] - g->f[i]) < exp(-0.5 * x * x))
                        return (float)x;
        }
}

#endif
