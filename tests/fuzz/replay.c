/* Runs a libFuzzer harness over every file in the directories or files given
 * on the command line, so that the checked-in corpus replays under meson test
 * without libFuzzer. Exits non-zero if an argument cannot be read; a harness
 * that crashes or trips a sanitizer fails the test by itself. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long len;

        if (!f) {
                fprintf(stderr, "replay: cannot open '%s'\n", path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
                fclose(f);
                fprintf(stderr, "replay: cannot size '%s'\n", path);
                return -1;
        }
        /* Exact-size copy so that ASan catches reads past the input. */
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                fclose(f);
                fprintf(stderr, "replay: cannot read '%s'\n", path);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        return 0;
}

static int run_path(const char *path, unsigned *count)
{
        struct stat st;
        if (stat(path, &st) != 0) {
                fprintf(stderr, "replay: no such file or directory '%s'\n", path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return run_file(path);
        }
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        int rc = 0;
        if (n < 0) {
                fprintf(stderr, "replay: cannot list '%s'\n", path);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.' && rc == 0) {
                        char full[4096];
                        snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
                        rc = run_path(full, count);
                }
                free(names[i]);
        }
        free(names);
        return rc;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        for (int i = 1; i < argc; i++) {
                if (run_path(argv[i], &count) != 0)
                        return 1;
        }
        if (count == 0) {
                fprintf(stderr, "replay: empty corpus\n");
                return 1;
        }
        printf("replayed %u inputs\n", count);
        return 0;
}
