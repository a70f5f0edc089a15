/* Fuzz target: the IDX reader. The input is split in two: the first byte
 * says how many 16-byte units go to the images file (the rest is the labels
 * file; 0xff = no labels file). Never a crash; a table respects the header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/read/read.h"
#include "common/err.h"
#include "common/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gd_table *t = NULL;
        struct read_error e;
        const uint8_t *img, *lab = NULL;
        size_t img_len, lab_len = 0;

        if (size < 1 || size > (1u << 22))
                return 0;
        img = data + 1;
        img_len = size - 1;
        if (data[0] != 0xff) {
                size_t cut = (size_t)data[0] * 16;
                if (cut < img_len) {
                        lab = img + cut;
                        lab_len = img_len - cut;
                        img_len = cut;
                }
        }
        if (read_idx(img, img_len, lab, lab_len, NULL, &e, &t) < 0) {
                if (e.code >= 0 || e.msg[0] == '\0' || e.line != 0 || e.column != 0)
                        abort();
                return 0;
        }
        if (t->n_rows == 0 || t->n_cols == 0 || t->n_cols > DREAM_MAX_COLS)
                abort();
        if (lab && (t->target != (int32_t)t->n_cols - 1 || t->task != GD_TASK_CLASSIFICATION))
                abort();
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (t->cols[j].kind == GD_DEC && (t->cols[j].scale < 1 || t->cols[j].scale > 9))
                        abort();
        }
        gd_table_free(t);
        return 0;
}
