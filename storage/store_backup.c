/* store_backup: a compacted copy of the environment into an empty
 * directory, never through a symbolic link. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "storage/store_internal.h"

/* ---- backup ----------------------------------------------------------------------- */

/* Put the finished copy's name in place without replacing anything that
 * appeared there meanwhile (RENAME_NOREPLACE; link + unlink where the
 * filesystem lacks it). */
static int rename_noreplace(int dfd, const char *from, const char *to)
{
        if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(dfd, from, dfd, to, 0) < 0)
                return -errno;
        (void)unlinkat(dfd, from, 0);
        return 0;
}

/* The copy is written as data.mdb.partial, synced, then renamed to
 * data.mdb and the directory synced: a copy interrupted at any point (a
 * kill, a full disk) leaves no data.mdb, so nothing ever opens a partial
 * store. Nothing is written through a symbolic link: the directory is
 * opened with O_NOFOLLOW and every name in it is used relative to that
 * descriptor; a data.mdb.partial left by an interrupted copy is removed
 * only when it is a regular file (removing a name never touches another
 * file's data), and the copy goes to a file this call creates (O_EXCL,
 * checked with fstat); the final name is never replaced. */
int store_backup(struct store *s, const char *path)
{
        static const char part[] = "data.mdb.partial", final[] = "data.mdb";
        struct stat sb;
        int fd, dfd, rc, r = 0;

        if (!path || strlen(path) > DREAM_MAX_PATH)
                return DREAM_E_INVAL;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
                        r = -ELOOP;
                return r;
        }
        if (fstatat(dfd, final, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
                r = -EEXIST;
                goto close_dir;
        }
        if (errno != ENOENT) {
                r = -errno;
                goto close_dir;
        }
        if (fstatat(dfd, part, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(sb.st_mode)) {
                        r = S_ISLNK(sb.st_mode) ? -ELOOP : -EEXIST;
                        goto close_dir;
                }
                if (unlinkat(dfd, part, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        goto close_dir;
                }
        }
        fd = openat(dfd, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = errno == EEXIST ? -EEXIST : -errno;
                goto close_dir;
        }
        if (fstat(fd, &sb) < 0)
                r = -errno;
        else if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1 || sb.st_size != 0)
                r = -EEXIST; /* not the new, empty file this call created */
        if (r == 0) {
                pthread_rwlock_rdlock(&s->map_lock);
                rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
                pthread_rwlock_unlock(&s->map_lock);
                r = store_i_lmdb_err(rc);
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0)
                r = rename_noreplace(dfd, part, final);
        if (r < 0) {
                (void)unlinkat(dfd, part, 0);
                goto close_dir;
        }
        /* The copy is complete once renamed: syncing the directory makes
         * the name durable, and a failure there is not a failed copy (a
         * retry would only find data.mdb already there). */
        (void)fsync(dfd);
close_dir:
        close(dfd);
        return r;
}
