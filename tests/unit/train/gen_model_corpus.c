/* Writes the seed corpus of fuzz_model: one small fitted model of each kind
 * (byte 0 = 1: the harness fixes the checksum). Usage: gen_model_corpus DIR */
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "train/train.h"

static void put(const char *dir, const char *name, struct train_model *m)
{
        char path[512];
        uint8_t *b = NULL;
        size_t len = 0;
        FILE *f;
        if (train_model_to_bytes(m, &b, &len) != 0)
                exit(1);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "wb");
        if (!f || fputc(1, f) == EOF || fwrite(b, 1, len, f) != len || fclose(f) != 0)
                exit(1);
        dm_free(b);
}

int main(int argc, char **argv)
{
        float x[40 * 2], y[40];
        if (argc != 2)
                return 2;
        for (int i = 0; i < 40; i++) {
                x[i * 2] = (float)(i % 7);
                x[i * 2 + 1] = (float)((i * 13) % 5);
                y[i] = (float)(i % 3);
        }
        static const struct {
                enum train_kind kind;
                const char *hidden;
                enum train_task task;
                const char *name;
        } specs[] = {
            {TRAIN_LINEAR, NULL, 0, "linear"},
            {TRAIN_RIDGE, NULL, 0, "ridge"},
            {TRAIN_LOGISTIC, NULL, 0, "logistic"},
            {TRAIN_SOFTMAX, NULL, 0, "softmax"},
            {TRAIN_MLP, "4", TRAIN_TASK_CLASSIFICATION, "mlp_class"},
            {TRAIN_MLP, "4,3", TRAIN_TASK_REGRESSION, "mlp_reg"},
            {TRAIN_KMEANS, NULL, 0, "kmeans"},
        };
        for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
                struct train_params p;
                struct train_problem pb = {.d = 2, .task = specs[s].task};
                struct train_model *m = NULL;
                double classes[3] = {1.5, 2.5, 3.5};
                float y2[40];
                struct train_view v = {x, y, NULL, 40, 2, NULL};
                train_params_default(specs[s].kind, &p);
                p.epochs = 1;
                p.k = 3;
                if (specs[s].hidden)
                        train_hidden_parse(specs[s].hidden, &p);
                if (specs[s].kind == TRAIN_LOGISTIC) {
                        for (int i = 0; i < 40; i++)
                                y2[i] = y[i] > 0;
                        v.y = y2;
                }
                if (specs[s].kind == TRAIN_SOFTMAX)
                        pb.classes = classes;
                if (train_fit(specs[s].kind, &p, &pb, &v, NULL, NULL, &m) != 0)
                        return 1;
                put(argv[1], specs[s].name, m);
                train_model_free(m);
        }
        return 0;
}
