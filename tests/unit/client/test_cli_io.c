/* CLI helpers: file loading (plain, gzip, multi-member, bad gzip), atomic
 * output, CSV name quoting, exit codes. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "client/cli.h"
#include "common/err.h"

static char dir[] = "/tmp/dream_cli_io_XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
        snprintf(out, n, "%s/%s", dir, name);
}

static void write_file(const char *name, const void *p, size_t n)
{
        char path[256];
        path_of(path, sizeof(path), name);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(p, 1, n, f), n);
        fclose(f);
}

static size_t gzip_bytes(const char *s, uint8_t *out, size_t cap)
{
        z_stream z;
        memset(&z, 0, sizeof(z));
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (Bytef *)(uintptr_t)s;
        z.avail_in = (uInt)strlen(s);
        z.next_out = out;
        z.avail_out = (uInt)cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        size_t n = cap - z.avail_out;
        deflateEnd(&z);
        return n;
}

static int count_entries(void)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;
        assert_non_null(d);
        while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] != '.')
                        n++;
        }
        closedir(d);
        return n;
}

static int setup(void **state)
{
        (void)state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_load(void **state)
{
        (void)state;
        struct cli_file f;
        char path[256];
        uint8_t gz[2][256];
        size_t n0, n1;

        write_file("plain.csv", "a\n1\n", 4);
        path_of(path, sizeof(path), "plain.csv");
        assert_int_equal(cli_file_load(path, &f), 0);
        assert_int_equal(f.len, 4);
        assert_memory_equal(f.data, "a\n1\n", 4);
        cli_file_release(&f);

        /* Two gzip members in one file read as their concatenation. */
        n0 = gzip_bytes("a,b\n1,2\n", gz[0], sizeof(gz[0]));
        n1 = gzip_bytes("3,4\n", gz[1], sizeof(gz[1]));
        uint8_t both[512];
        memcpy(both, gz[0], n0);
        memcpy(both + n0, gz[1], n1);
        write_file("two.csv.gz", both, n0 + n1);
        path_of(path, sizeof(path), "two.csv.gz");
        assert_int_equal(cli_file_load(path, &f), 0);
        assert_int_equal(f.len, 12);
        assert_memory_equal(f.data, "a,b\n1,2\n3,4\n", 12);
        cli_file_release(&f);

        /* Truncated and corrupt gzip. */
        write_file("cut.gz", gz[0], n0 - 6);
        path_of(path, sizeof(path), "cut.gz");
        assert_int_equal(cli_file_load(path, &f), DREAM_E_TRUNCATED);
        gz[0][12] ^= 0xff;
        gz[0][13] ^= 0xff;
        write_file("bad.gz", gz[0], n0);
        path_of(path, sizeof(path), "bad.gz");
        int r = cli_file_load(path, &f);
        assert_true(r == DREAM_E_CORRUPT || r == DREAM_E_TRUNCATED);
        assert_string_equal(cli_load_strerror(DREAM_E_CORRUPT), "corrupt gzip data");

        /* Empty file, missing file, directory. */
        write_file("empty", "", 0);
        path_of(path, sizeof(path), "empty");
        assert_int_equal(cli_file_load(path, &f), 0);
        assert_int_equal(f.len, 0);
        cli_file_release(&f);
        path_of(path, sizeof(path), "missing");
        assert_int_equal(cli_file_load(path, &f), -ENOENT);
        assert_int_equal(cli_file_load(dir, &f), -EISDIR);
        cli_file_release(NULL);
}

static void test_out_atomic(void **state)
{
        (void)state;
        struct cli_out o;
        char path[256];
        int before = count_entries();

        /* Aborted: nothing left. */
        path_of(path, sizeof(path), "aborted.csv");
        assert_int_equal(cli_out_open(&o, path), 0);
        cli_out_write(&o, "x\n", 2);
        assert_int_equal(count_entries(), before + 1); /* the temporary file */
        cli_out_abort(&o);
        assert_int_equal(count_entries(), before);
        assert_int_equal(access(path, F_OK), -1);

        /* Committed: appears whole, under its name, with a normal mode. */
        path_of(path, sizeof(path), "done.csv");
        assert_int_equal(cli_out_open(&o, path), 0);
        for (int i = 0; i < 300000; i++) {
                uint8_t *p = cli_out_room(&o, 8);
                memcpy(p, "1234567\n", 8);
                o.len += 8;
        }
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(cli_out_commit(&o, 1), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 2400000);
        assert_true((st.st_mode & 0644) == 0644 || (st.st_mode & 0600) == 0600);
        assert_int_equal(count_entries(), before + 1);

        /* A directory that does not exist: an error, nothing created. */
        path_of(path, sizeof(path), "no/such/dir.csv");
        assert_int_equal(cli_out_open(&o, path), -ENOENT);
}

static void test_csv_names(void **state)
{
        (void)state;
        struct cli_out o;
        char path[256], buf[128];
        const char *want = "plain,\"a,b\",\"say \"\"hi\"\"\",\" x\",\"\"\n";
        path_of(path, sizeof(path), "names.csv");
        assert_int_equal(cli_out_open(&o, path), 0);
        cli_out_csv_name(&o, "plain");
        cli_out_write(&o, ",", 1);
        cli_out_csv_name(&o, "a,b");
        cli_out_write(&o, ",", 1);
        cli_out_csv_name(&o, "say \"hi\"");
        cli_out_write(&o, ",", 1);
        cli_out_csv_name(&o, " x");
        cli_out_write(&o, ",", 1);
        cli_out_csv_name(&o, "");
        cli_out_write(&o, "\n", 1);
        assert_int_equal(cli_out_commit(&o, 0), 0);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, n);
}

static void test_exit_codes(void **state)
{
        (void)state;
        assert_int_equal(cli_exit_for(0, 0), CLI_OK);
        assert_int_equal(cli_exit_for(DREAM_E_PARSE, 0), CLI_INPUT);
        assert_int_equal(cli_exit_for(DREAM_E_INEXACT, 0), CLI_INPUT);
        assert_int_equal(cli_exit_for(DREAM_E_TRUNCATED, 0), CLI_INPUT);
        assert_int_equal(cli_exit_for(DREAM_E_TRUNCATED, 1), CLI_CORRUPT);
        assert_int_equal(cli_exit_for(DREAM_E_CHECKSUM, 1), CLI_CORRUPT);
        assert_int_equal(cli_exit_for(DREAM_E_FORMAT, 1), CLI_CORRUPT);
        assert_int_equal(cli_exit_for(DREAM_E_NOMEM, 1), CLI_INTERNAL);
        assert_int_equal(cli_exit_for(-ENOENT, 0), CLI_INPUT);
}

/* One way of printing sizes: 1024-based, one decimal, or exact bytes. */
static void test_size_text(void **state)
{
        char b[32];
        (void)state;
        assert_string_equal(cli_size_text(0, 0, b, sizeof(b)), "0 bytes");
        assert_string_equal(cli_size_text(1023, 0, b, sizeof(b)), "1023 bytes");
        assert_string_equal(cli_size_text(1024, 0, b, sizeof(b)), "1.0 KiB");
        assert_string_equal(cli_size_text(14438, 0, b, sizeof(b)), "14.1 KiB");
        assert_string_equal(cli_size_text(8029000, 0, b, sizeof(b)), "7.7 MiB");
        assert_string_equal(cli_size_text(1048575, 0, b, sizeof(b)), "1.0 MiB");
        assert_string_equal(cli_size_text(3ull << 30, 0, b, sizeof(b)), "3.0 GiB");
        assert_string_equal(cli_size_text(UINT64_MAX, 0, b, sizeof(b)), "16.0 EiB");
        assert_string_equal(cli_size_text(8029000, 1, b, sizeof(b)), "8029000 bytes");
        assert_string_equal(cli_size(2048, 0), "2.0 KiB");
}

/* "Did you mean": the nearest name within 2 edits, never the word itself. */
static void test_suggest(void **state)
{
        static const char *const names[] = {"info", "ingest", "inspect", "ls"};
        static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
        (void)state;
        assert_string_equal(cli_suggest("ingset", names, 4), "ingest");
        assert_string_equal(cli_suggest("inspec", names, 4), "inspect");
        assert_string_equal(cli_suggest("l", names, 4), "ls");
        assert_null(cli_suggest("ingest", names, 4));
        assert_null(cli_suggest("export", names, 4));
        assert_null(cli_suggest("", names, 0));
        assert_string_equal(cli_suggest_option("ouptut", opts), "output");
        assert_null(cli_suggest_option("bytes", opts));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_load),      cmocka_unit_test(test_out_atomic),
            cmocka_unit_test(test_csv_names), cmocka_unit_test(test_exit_codes),
            cmocka_unit_test(test_size_text), cmocka_unit_test(test_suggest),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
