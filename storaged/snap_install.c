/*
 * Installing a received snapshot as the store, and the start-up recovery of
 * an install that a crash interrupted. The steps are ordered so that at
 * every moment one complete store is on disk under a known name:
 *
 *   1. member/snap/incoming holds the new store, every file and the
 *      directory synced (snap_recv.c);
 *   2. member/db -> member/db.old      (crash: db missing, db.old complete:
 *                                        recovery renames it back)
 *   3. member/snap/incoming -> member/db, fsync of member/snap and member/
 *                                       (crash: db and db.old: db is the
 *                                        new store, recovery drops db.old)
 *   4. member/db.old removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap.h"

/* RocksDB's directories are flat; a deeper tree is not ours to walk. */
#define RMTREE_DEPTH 8

static int rmtree_at(int dirfd, const char *name, int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno
								       : 0;
	if (depth >= RMTREE_DEPTH)
		return -ELOOP;
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = rmtree_at(fd, de->d_name, depth + 1);
		if (r < 0 && ret == 0)
			ret = r;
	}
	closedir(d);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		ret = -errno;
	return ret;
}

int snap_rmtree(int dirfd, const char *name)
{
	return rmtree_at(dirfd, name, 0);
}

static int fsync_fd(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

int snap_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = fsync_fd(fd);
	close(fd);
	return ret;
}

static int exists_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int snap_install(const char *memberdir)
{
	int ret = 0, sfd = -1;
	int mfd = open(memberdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	if ((sfd = openat(mfd, SNAP_DIR,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		ret = -errno;
		goto out;
	}
	/* A db.old here would be from an install recovery already judged
	 * superseded. */
	if ((ret = snap_rmtree(mfd, SNAP_DB_OLD)) < 0)
		goto out;
	if (renameat(mfd, SNAP_DB, mfd, SNAP_DB_OLD) < 0) {
		ret = -errno;
		goto out;
	}
	if (renameat(sfd, SNAP_INCOMING, mfd, SNAP_DB) < 0) {
		ret = -errno;
		/* Put the old store back; if even that fails, recovery at
		 * the next start does it. */
		if (renameat(mfd, SNAP_DB_OLD, mfd, SNAP_DB) == 0)
			fsync_fd(mfd);
		goto out;
	}
	/* The rename touches both directories: both must reach the disk
	 * before the old store may go. */
	if ((ret = fsync_fd(sfd)) < 0 || (ret = fsync_fd(mfd)) < 0)
		goto out;
	/* The new store is in place; a failure from here on leaves only
	 * db.old, which the next start removes. */
	if (snap_rmtree(mfd, SNAP_DB_OLD) == 0)
		fsync_fd(mfd);
out:
	if (sfd >= 0)
		close(sfd);
	close(mfd);
	return ret;
}

int snap_recover(const char *memberdir)
{
	int ret = 0, mask = 0;
	int mfd = open(memberdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return errno == ENOENT ? 0 : -errno;
	int have_db = exists_at(mfd, SNAP_DB);
	if (exists_at(mfd, SNAP_DB_OLD)) {
		if (!have_db) {
			/* Crashed between the two renames: the old store is
			 * the complete one. */
			if (renameat(mfd, SNAP_DB_OLD, mfd, SNAP_DB) < 0) {
				ret = -errno;
				goto out;
			}
			mask |= SNAP_RECOVER_ROLLBACK;
		} else {
			if ((ret = snap_rmtree(mfd, SNAP_DB_OLD)) < 0)
				goto out;
			mask |= SNAP_RECOVER_OLD;
		}
		if ((ret = fsync_fd(mfd)) < 0)
			goto out;
	}
	/* Transfers and makings cut short leave their files here. */
	int sfd = openat(mfd, SNAP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		if (errno != ENOENT)
			ret = -errno;
		goto out;
	}
	DIR *d = fdopendir(sfd);
	if (!d) {
		ret = -errno;
		close(sfd);
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = snap_rmtree(dirfd(d), de->d_name);
		if (r < 0 && ret == 0)
			ret = r;
		mask |= SNAP_RECOVER_LEFTOVER;
	}
	closedir(d);
out:
	close(mfd);
	return ret < 0 ? ret : mask;
}
