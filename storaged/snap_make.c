/* Making a snapshot: a RocksDB checkpoint handed out as open descriptors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap.h"

void snap_files_free(struct snap_files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		if (f->v[i].fd >= 0)
			close(f->v[i].fd);
		free(f->v[i].name);
	}
	free(f->v);
	free(f);
}

static void set_err(char **ret_err, const char *what, int err)
{
	if (ret_err && !*ret_err &&
	    asprintf(ret_err, "%s: %s", what, strerror(err)) < 0)
		*ret_err = NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct snap_file *)a)->name,
		      ((const struct snap_file *)b)->name);
}

/* Opens every file of directory dfd and unlinks it, into f. */
static int take_files(int dfd, struct snap_files *f)
{
	int d2 = dup(dfd);
	if (d2 < 0)
		return -errno;
	DIR *d = fdopendir(d2);
	if (!d) {
		int e = -errno;
		close(d2);
		return e;
	}
	size_t cap = 0;
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (f->n >= SNAP_FILES_MAX) {
			ret = -EFBIG;
			break;
		}
		if (f->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct snap_file *v = realloc(f->v, cap * sizeof(*v));
			if (!v) {
				ret = -ENOMEM;
				break;
			}
			f->v = v;
		}
		struct snap_file *sf = &f->v[f->n];
		struct stat st;
		sf->fd = openat(dfd, de->d_name,
				O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (sf->fd < 0) {
			ret = -errno;
			break;
		}
		if (fstat(sf->fd, &st) < 0)
			ret = -errno;
		else if (!S_ISREG(st.st_mode))
			ret = -EINVAL;
		else if (!(sf->name = strdup(de->d_name)))
			ret = -ENOMEM;
		if (ret < 0) {
			close(sf->fd);
			break;
		}
		sf->size = (uint64_t)st.st_size;
		f->n++;
		/* The descriptor keeps the file: the directory can go. */
		if (unlinkat(dfd, de->d_name, 0) < 0) {
			ret = -errno;
			break;
		}
	}
	closedir(d);
	if (ret == 0)
		qsort(f->v, f->n, sizeof(f->v[0]), by_name);
	return ret;
}

int snap_make(struct mvcc *m, const char *snapdir,
	      struct snap_files **ret_f, char **ret_err)
{
	char *tmp = NULL, *cp = NULL;
	int ret, tfd = -1, cfd = -1;
	struct snap_files *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (mkdir(snapdir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		set_err(ret_err, snapdir, -ret);
		goto fail;
	}
	if (asprintf(&tmp, "%s/make-XXXXXX", snapdir) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	if (!mkdtemp(tmp)) {
		ret = -errno;
		set_err(ret_err, snapdir, -ret);
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if (asprintf(&cp, "%s/" SNAP_DB, tmp) < 0) {
		cp = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	if ((ret = mvcc_checkpoint(m, cp, &f->applied, ret_err)) < 0)
		goto fail;
	if ((tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (cfd = openat(tfd, SNAP_DB, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		ret = -errno;
		set_err(ret_err, cp, -ret);
		goto fail;
	}
	if ((ret = take_files(cfd, f)) < 0) {
		set_err(ret_err, ret == -EFBIG ? "too many files in the checkpoint"
					       : "cannot open the checkpoint",
			-ret);
		goto fail;
	}
	close(cfd);
	cfd = -1;
	/* Leftovers would be removed at the next start anyway. */
	snap_rmtree(tfd, SNAP_DB);
	close(tfd);
	rmdir(tmp);
	free(tmp);
	free(cp);
	*ret_f = f;
	return 0;
fail:
	if (cfd >= 0)
		close(cfd);
	if (tfd >= 0) {
		snap_rmtree(tfd, SNAP_DB);
		close(tfd);
	}
	if (tmp)
		rmdir(tmp);
	free(tmp);
	free(cp);
	snap_files_free(f);
	return ret;
}
