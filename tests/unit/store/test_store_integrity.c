/* Unit tests of the store's defences against a damaged or hostile disk:
 * backups that never write through a symbolic link, a truncated or empty
 * data.mdb refused before it is mapped, a full disk reported as
 * DREAM_E_FULL, and store_check finding damage in every record kind.
 * STORE_SWEEP_PAGES (default 64) sets how many pages the bit-flip sweep
 * covers. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/err.h"
#include "util.h"

struct fixture {
        char dir[64];
        struct store *s;
        struct store_opts opts;
        int fault_commit; /* returned by the hook at the next commit, then 0 */
        int fault_space;  /* returned at STORE_FAULT_DISK_SPACE */
};

static int fault_hook(void *arg, enum store_fault_site site)
{
        struct fixture *f = arg;
        int r;

        if (site == STORE_FAULT_DISK_SPACE)
                return f->fault_space;
        r = f->fault_commit;
        f->fault_commit = 0;
        return r;
}

static void append(struct store *s, uint64_t first, uint64_t n, uint64_t batch_id)
{
        struct gd_table *t = tu_batch(first, n, 0);
        uint64_t got;

        assert_int_equal(store_append(s, "ds", t, batch_id, &got, NULL), 0);
        assert_int_equal(got, first);
        gd_table_free(t);
}

/* A store with every record kind: a sealed segment, staged batches, batch
 * ids, sufficient statistics, a condensed entry, a job record. */
static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gd_condense_opts co = {.budget = {.count = 16}, .order = GD_ORDER_MSB};
        struct gd_condensed *c = NULL;

        assert_non_null(f);
        tu_tmpdir(f->dir);
        store_opts_default(&f->opts);
        f->opts.map_initial = 1u << 20;
        f->opts.seal_rows = 1000;
        f->opts.fault = fault_hook;
        f->opts.fault_arg = f;
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(store_dataset_create(f->s, "ds", tu_schema()), 0);
        append(f->s, 0, 1200, 1);
        assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        append(f->s, 1200, 100, 2);
        append(f->s, 1300, 50, 3);
        assert_int_equal(store_condensed(f->s, "ds", 0, &co, &c, NULL), 0);
        gd_condensed_free(c);
        assert_int_equal(store_job_put(f->s, 7, "job seven", 9), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        store_close(f->s);
        tu_rmrf(f->dir);
        free(f);
        return 0;
}

static uint64_t problems_of(struct store *s)
{
        uint64_t n = UINT64_MAX;

        assert_int_equal(store_check(s, NULL, NULL, &n), 0);
        return n;
}

static void copy_file(const char *from, const char *to, off_t len)
{
        char buf[65536];
        int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        off_t done = 0;

        assert_true(in >= 0 && out >= 0);
        while (done < len) {
                size_t want =
                    (size_t)(len - done) < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
                ssize_t n = read(in, buf, want);
                assert_true(n > 0);
                assert_int_equal(write(out, buf, (size_t)n), n);
                done += n;
        }
        close(in);
        assert_int_equal(close(out), 0);
}

static off_t file_size(const char *path)
{
        struct stat sb;

        assert_int_equal(stat(path, &sb), 0);
        return sb.st_size;
}

/* ---- backups and symbolic links -------------------------------------------------- */

static void test_backup_links(void **state)
{
        struct fixture *f = *state;
        char live[128], bk[64], p[192], other[64], target[192];
        struct store *b;
        off_t before;
        FILE *fp;
        char got[16] = {0};

        snprintf(live, sizeof(live), "%s/data.mdb", f->dir);
        before = file_size(live);

        /* data.mdb.partial -> the live data.mdb: refused, the store intact. */
        tu_tmpdir(bk);
        snprintf(p, sizeof(p), "%s/data.mdb.partial", bk);
        assert_int_equal(symlink(live, p), 0);
        assert_int_equal(store_backup(f->s, bk), -ELOOP);
        assert_int_equal(file_size(live), before);
        assert_int_equal(problems_of(f->s), 0);
        append(f->s, 1350, 10, 4); /* still serves writes */
        before = file_size(live);

        /* data.mdb.partial -> another file: refused, the file intact. */
        tu_tmpdir(other);
        snprintf(target, sizeof(target), "%s/keep", other);
        fp = fopen(target, "w");
        assert_non_null(fp);
        fputs("keep me", fp);
        fclose(fp);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(symlink(target, p), 0);
        assert_int_equal(store_backup(f->s, bk), -ELOOP);
        fp = fopen(target, "r");
        assert_non_null(fp);
        assert_non_null(fgets(got, sizeof(got), fp));
        fclose(fp);
        assert_string_equal(got, "keep me");

        /* data.mdb as a (dangling) symbolic link: nothing is created at its
         * target. */
        assert_int_equal(unlink(p), 0);
        snprintf(p, sizeof(p), "%s/data.mdb", bk);
        snprintf(target, sizeof(target), "%s/made", other);
        assert_int_equal(symlink(target, p), 0);
        assert_int_equal(store_backup(f->s, bk), -EEXIST);
        assert_true(access(target, F_OK) < 0 && errno == ENOENT);
        assert_int_equal(unlink(p), 0);

        /* The directory itself a symbolic link: refused, nothing written. */
        snprintf(p, sizeof(p), "%s/link", other);
        assert_int_equal(symlink(bk, p), 0);
        assert_int_equal(store_backup(f->s, p), -ELOOP);
        snprintf(target, sizeof(target), "%s/data.mdb", bk);
        assert_true(access(target, F_OK) < 0 && errno == ENOENT);

        /* A regular data.mdb.partial left by an interrupted copy (here a
         * hard link to a file that must survive) is replaced, not written. */
        snprintf(target, sizeof(target), "%s/keep", other);
        snprintf(p, sizeof(p), "%s/data.mdb.partial", bk);
        assert_int_equal(link(target, p), 0);
        assert_int_equal(store_backup(f->s, bk), 0);
        fp = fopen(target, "r");
        assert_non_null(fp);
        assert_non_null(fgets(got, sizeof(got), fp));
        fclose(fp);
        assert_string_equal(got, "keep me");
        assert_true(access(p, F_OK) < 0 && errno == ENOENT);
        assert_int_equal(file_size(live), before);
        assert_int_equal(store_open(bk, NULL, &b), 0);
        assert_int_equal(problems_of(b), 0);
        store_close(b);

        /* data.mdb already there: refused. */
        assert_int_equal(store_backup(f->s, bk), -EEXIST);
        tu_rmrf(bk);
        tu_rmrf(other);
}

/* ---- truncated and empty stores --------------------------------------------------- */

static void test_truncated(void **state)
{
        struct fixture *f = *state;
        char live[128], dir[64], copy[128];
        struct store_file_info fi;
        struct store *b;
        off_t size;

        store_close(f->s);
        f->s = NULL;
        snprintf(live, sizeof(live), "%s/data.mdb", f->dir);
        size = file_size(live);
        assert_int_equal(store_file_check(f->dir, &fi), 0);
        assert_int_equal(fi.size, (uint64_t)size);
        assert_true(fi.need <= fi.size && fi.need > 8 * (uint64_t)fi.page_size);
        off_t lens[] = {0,       100,      4096,     4096 + 100,
                        8192,    3 * 4096, size / 2, size - (off_t)fi.page_size,
                        size - 1};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                int want = lens[i] == 0 ? DREAM_E_EMPTY : DREAM_E_TRUNCATED;
                tu_tmpdir(dir);
                snprintf(copy, sizeof(copy), "%s/data.mdb", dir);
                copy_file(live, copy, lens[i]);
                assert_int_equal(store_file_check(dir, &fi), want);
                assert_int_equal(fi.size, (uint64_t)lens[i]);
                /* Refused before mapping (a SIGBUS otherwise), and an empty
                 * file is not turned into a new store. */
                assert_int_equal(store_open(dir, NULL, &b), want);
                assert_int_equal(file_size(copy), lens[i]);
                tu_rmrf(dir);
        }
        /* Not an LMDB file at all. */
        tu_tmpdir(dir);
        snprintf(copy, sizeof(copy), "%s/data.mdb", dir);
        {
                FILE *fp = fopen(copy, "w");
                assert_non_null(fp);
                for (int i = 0; i < 3 * 4096; i++)
                        fputc('x', fp);
                fclose(fp);
        }
        assert_int_equal(store_file_check(dir, &fi), DREAM_E_FORMAT);
        assert_int_equal(fi.bad_meta, 0);
        assert_int_equal(store_open(dir, NULL, &b), DREAM_E_FORMAT);
        tu_rmrf(dir);
        /* No data.mdb: a new store may be made there. */
        tu_tmpdir(dir);
        assert_int_equal(store_file_check(dir, &fi), DREAM_E_NOTFOUND);
        assert_int_equal(store_open(dir, NULL, &b), 0);
        store_close(b);
        assert_int_equal(store_file_check(dir, &fi), 0);
        tu_rmrf(dir);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
}

/* ---- a full disk ------------------------------------------------------------------ */

static void test_disk_full(void **state)
{
        struct fixture *f = *state;
        struct gd_table *t = tu_batch(1350, 10, 0);
        uint64_t first;
        struct store_info *info;

        /* ENOSPC: full, retryable; nothing stored. */
        f->fault_commit = ENOSPC;
        assert_int_equal(store_append(f->s, "ds", t, 9, &first, NULL), DREAM_E_FULL);
        /* EIO from a short write on a full filesystem: full as well. */
        f->fault_commit = EIO;
        f->fault_space = ENOSPC;
        assert_int_equal(store_append(f->s, "ds", t, 9, &first, NULL), DREAM_E_FULL);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0); /* hook once per commit */
        f->fault_commit = EIO;
        assert_int_equal(store_dataset_create(f->s, "other", tu_schema()), DREAM_E_FULL);
        /* EIO with space left is an I/O error. */
        f->fault_space = 0;
        f->fault_commit = EIO;
        assert_int_equal(store_append(f->s, "ds", t, 9, &first, NULL), DREAM_E_IO);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 1350);
        store_info_free(info);
        /* Space again: the same batch goes in once. */
        assert_int_equal(store_append(f->s, "ds", t, 9, &first, NULL), 0);
        assert_int_equal(first, 1350);
        gd_table_free(t);
        assert_int_equal(problems_of(f->s), 0);
}

/* ---- store_check and every record kind -------------------------------------------- */

enum part { KEY, VAL };

/* Flip bits `mask` of byte `at` (negative: from the end) of the key or the
 * value of the first record of `db` whose key starts with prefix[0..plen),
 * with LMDB directly (the record is deleted and put again). */
static void flip(const char *dir, const char *db, const void *prefix, size_t plen, enum part part,
                 long at, uint8_t mask)
{
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_cursor *cur;
        MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
        uint8_t key[512];
        uint8_t *val;
        size_t klen;

        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
        assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE), 0);
        assert_true(k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0);
        klen = k.mv_size;
        assert_true(klen <= sizeof(key));
        memcpy(key, k.mv_data, klen);
        val = malloc(v.mv_size + 1);
        assert_non_null(val);
        memcpy(val, v.mv_data, v.mv_size);
        assert_int_equal(mdb_cursor_del(cur, 0), 0);
        mdb_cursor_close(cur);
        if (part == KEY)
                key[at < 0 ? (long)klen + at : at] ^= mask;
        else
                val[at < 0 ? (long)v.mv_size + at : at] ^= mask;
        k = (MDB_val){.mv_size = klen, .mv_data = key};
        v.mv_data = val;
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        free(val);
}

/* The dataset's condensed entry (one in the fixture): key and value copied. */
static void condensed_entry(MDB_txn *txn, MDB_dbi dbi, uint8_t *key, size_t *klen, uint8_t **val,
                            size_t *vlen)
{
        static const uint8_t id1[4] = {0, 0, 0, 1};
        MDB_cursor *cur;
        MDB_val k = {.mv_size = 4, .mv_data = (void *)id1}, v;
        assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
        assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE), 0);
        assert_true(k.mv_size >= 4 && memcmp(k.mv_data, id1, 4) == 0);
        assert_true(k.mv_size <= 64);
        memcpy(key, k.mv_data, k.mv_size);
        *klen = k.mv_size;
        *val = malloc(v.mv_size);
        assert_non_null(*val);
        memcpy(*val, v.mv_data, v.mv_size);
        *vlen = v.mv_size;
        mdb_cursor_close(cur);
}

/* An entry of the previous layout (method 2: a 35-byte key without the
 * exclusion, a value without variances) under the same options is never
 * read: store_check accepts it, the lookup builds the samples again (the
 * planted entry's means are off by 1000, so a misread would show) and
 * writing the new entry deletes the old one. */
static void test_condensed_old_layout(void **state)
{
        struct fixture *f = *state;
        struct gd_condense_opts co = {.budget = {.count = 16}, .order = GD_ORDER_MSB};
        struct gd_condensed *c, *ref;
        struct gd_table *t;
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        uint8_t key[64], *val;
        size_t klen, vlen;
        bool cached;

        store_close(f->s);
        f->s = NULL;
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "condensed", 0, &dbi), 0);
        condensed_entry(txn, dbi, key, &klen, &val, &vlen);
        assert_int_equal(klen, 51);
        {
                MDB_val k = {.mv_size = klen, .mv_data = key};
                assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
        }
        /* The old layout: flags 0, x off by 1000, (y, w), no v. */
        const uint32_t m = (uint32_t)val[8] | (uint32_t)val[9] << 8 | (uint32_t)val[10] << 16 |
                           (uint32_t)val[11] << 24;
        const uint32_t d = (uint32_t)val[12] | (uint32_t)val[13] << 8 | (uint32_t)val[14] << 16 |
                           (uint32_t)val[15] << 24;
        size_t xs = 24 + 4 * (size_t)d, old_len = xs + 8 * (size_t)m * d + 16 * (size_t)m + 8;
        assert_true(old_len + 8 * (size_t)m * d == vlen);
        memset(val + 20, 0, 4);
        for (size_t i = 0; i < (size_t)m * d; i++) {
                double x;
                memcpy(&x, val + xs + 8 * i, 8);
                x += 1000;
                memcpy(val + xs + 8 * i, &x, 8);
        }
        key[34] = 2;
        uint64_t sum = XXH3_64bits_withSeed(val, old_len - 8, XXH3_64bits(key, 35));
        for (int b = 0; b < 8; b++)
                val[old_len - 8 + b] = (uint8_t)(sum >> (8 * b));
        {
                MDB_val k = {.mv_size = 35, .mv_data = key},
                        v = {.mv_size = old_len, .mv_data = val};
                assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        }
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        free(val);

        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(problems_of(f->s), 0);
        assert_int_equal(store_condensed(f->s, "ds", 0, &co, &c, &cached), 0);
        assert_false(cached);
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        assert_int_equal(gd_condense(t, &co, &ref), 0);
        gd_table_free(t);
        assert_int_equal(c->m, ref->m);
        assert_memory_equal(c->x, ref->x, sizeof(double) * ref->m * ref->d);
        assert_memory_equal(c->v, ref->v, sizeof(double) * ref->m * ref->d);
        gd_condensed_free(ref);
        gd_condensed_free(c);
        assert_int_equal(store_condensed(f->s, "ds", 0, &co, &c, &cached), 0);
        assert_true(cached);
        gd_condensed_free(c);
        assert_int_equal(problems_of(f->s), 0);

        /* Only the new entry is left. */
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "condensed", 0, &dbi), 0);
        {
                MDB_stat st;
                assert_int_equal(mdb_stat(txn, dbi, &st), 0);
                assert_int_equal(st.ms_entries, 1);
        }
        condensed_entry(txn, dbi, key, &klen, &val, &vlen);
        assert_int_equal(klen, 51);
        free(val);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
}

struct found {
        char dbs[256];
};

static void found_cb(const struct store_problem *p, void *arg)
{
        struct found *fd = arg;
        size_t n = strlen(fd->dbs);

        snprintf(fd->dbs + n, sizeof(fd->dbs) - n, "%s ", p->db);
}

static void test_check_records(void **state)
{
        static const uint8_t id1[4] = {0, 0, 0, 1};
        static const uint8_t job7[8] = {0, 0, 0, 0, 0, 0, 0, 7};
        static const struct {
                const char *db;
                const void *prefix;
                size_t plen;
                enum part part;
                long at;
                uint8_t mask;
                const char *reported; /* a database named in the report */
        } cases[] = {
            {"batches", id1, 4, VAL, 0, 0x01, "batches"},  /* first row */
            {"batches", id1, 4, VAL, 8, 0x02, "batches"},  /* row count */
            {"batches", id1, 4, VAL, -1, 0x80, "batches"}, /* checksum */
            {"batches", id1, 4, KEY, 11, 0x04, "batches"}, /* batch id */
            {"condensed", id1, 4, VAL, 40, 0x10, "condensed"},
            {"condensed", id1, 4, KEY, 4, 0x80, "condensed"},  /* row count */
            {"condensed", id1, 4, KEY, 20, 0x01, "condensed"}, /* budget: keyed checksum */
            {"datasets", "ds", 2, KEY, 0, 0x01, "datasets"},   /* name "es" */
            {"datasets", "ds", 2, VAL, 8, 0x01, "datasets"},   /* id */
            {"counters", id1, 4, VAL, 16, 0x01, "datasets"},
            {"suffstats", id1, 4, VAL, 30, 0x01, "suffstats"},
            {"staged", id1, 4, VAL, 100, 0x01, "staged"},
            {"segments", id1, 4, VAL, 300, 0x01, "segments"},
            {"jobs", job7, 8, KEY, 7, 0x01, "jobs"},
            {"jobs", job7, 8, VAL, 9, 0x01, "jobs"},
            {"meta", "next_id", 7, VAL, 0, 0x03, "meta"},
            {"meta", "format", 6, VAL, 0, 0x04, "meta"},
            {"meta", "format", 6, KEY, 0, 0x20, "meta"},
        };
        struct fixture *f = *state;
        char dir[64], from[128], to[128];
        unsigned missed = 0;

        store_close(f->s);
        f->s = NULL;
        snprintf(from, sizeof(from), "%s/data.mdb", f->dir);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct found fd = {{0}};
                struct store *b;
                uint64_t n = 0;
                int r;

                tu_tmpdir(dir);
                snprintf(to, sizeof(to), "%s/data.mdb", dir);
                copy_file(from, to, file_size(from));
                flip(dir, cases[i].db, cases[i].prefix, cases[i].plen, cases[i].part, cases[i].at,
                     cases[i].mask);
                r = store_open(dir, NULL, &b);
                if (r < 0) {
                        /* Refusing to open is reporting it too. */
                        assert_true(r == DREAM_E_FORMAT || r == DREAM_E_CORRUPT);
                        snprintf(fd.dbs, sizeof(fd.dbs), "%s", cases[i].reported);
                        n = 1;
                } else {
                        assert_int_equal(store_check(b, found_cb, &fd, &n), 0);
                        store_close(b);
                }
                if (n == 0 || !strstr(fd.dbs, cases[i].reported)) {
                        print_error("missed: %s %s byte %ld: %llu problems: %s\n", cases[i].db,
                                    cases[i].part == KEY ? "key" : "value", cases[i].at,
                                    (unsigned long long)n, fd.dbs);
                        missed++;
                }
                tu_rmrf(dir);
        }
        assert_int_equal(missed, 0);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(problems_of(f->s), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_backup_links, setup, teardown),
            cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
            cmocka_unit_test_setup_teardown(test_check_records, setup, teardown),
            cmocka_unit_test_setup_teardown(test_condensed_old_layout, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
