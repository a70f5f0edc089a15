/* Fuzz target: model bytes (train_model_from_bytes), as stored in LMDB.
 * Byte 0, bit 0 set: the harness rewrites the trailing checksum so that the
 * fuzzer reaches the structural checks behind it; the rest is the model.
 * Never a crash; a decoded model predicts, re-encodes to the same bytes and
 * exports JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "train/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct train_model *m = NULL;
        uint8_t *buf, *again = NULL;
        size_t len, again_len = 0;

        if (size < 1 || size > (1u << 24))
                return 0;
        len = size - 1;
        buf = malloc(len ? len : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, len);
        if ((data[0] & 1) && len >= 8) {
                uint64_t h = 0xcbf29ce484222325ull;
                for (size_t i = 0; i < len - 8; i++) {
                        h ^= buf[i];
                        h *= 0x100000001b3ull;
                }
                for (int i = 0; i < 8; i++)
                        buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
        }
        if (train_model_from_bytes(buf, len, &m) == 0) {
                uint32_t w = train_model_proba_width(m);
                size_t rows = 3;
                float *x = calloc(rows * m->d, sizeof(float));
                double *val = calloc(rows, sizeof(double));
                double *pr = calloc(rows * (w ? w : 1), sizeof(double));
                char *js = NULL;
                size_t jl;
                if (x && val && pr && train_predict(m, x, rows, val, w ? pr : NULL) != 0)
                        abort();
                /* The current version re-encodes to the same bytes; an older
                 * one re-encodes to the current form, which decodes again. */
                uint32_t version = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 |
                                   (uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24;
                if (train_model_to_bytes(m, &again, &again_len) == 0) {
                        struct train_model *m2 = NULL;
                        if (version == TRAIN_MODEL_VERSION
                                ? again_len != len || memcmp(again, buf, len) != 0
                                : train_model_from_bytes(again, again_len, &m2) != 0)
                                abort();
                        train_model_free(m2);
                }
                if (train_model_to_json(m, &js, &jl) == 0)
                        dm_free(js);
                dm_free(again);
                free(x);
                free(val);
                free(pr);
                train_model_free(m);
        }
        free(buf);
        return 0;
}
