/*
 * Receiving a snapshot: chunks in order (ipc.SnapChunk), written under
 * member/snap/incoming and hashed as they come, every file and the directory
 * synced before the checksum is compared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "snap.h"

#define SHA256_LEN 32

struct snap_recv {
	char *snapdir;
	uint64_t max_bytes;
	size_t max_files;

	int active;          /* a transfer is in progress (or complete) */
	int complete;        /* done received, checksum matched */
	uint64_t id;         /* its transfer id */
	uint64_t from, index, term;
	int written;         /* its files are written (else only checked) */
	int dirfd;           /* snapdir/incoming, while written */
	int fd;              /* the file being received, or -1 */
	char name[SNAP_NAME_MAX + 1];
	uint64_t off;        /* bytes of that file so far */
	uint64_t total;      /* bytes of the transfer so far */
	size_t nfiles;
	EVP_MD_CTX *md;

	int failed;          /* failed_id names a transfer that ended in error */
	uint64_t failed_id;
};

struct snap_recv *snap_recv_new(const char *snapdir)
{
	struct snap_recv *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->snapdir = strdup(snapdir);
	r->md = EVP_MD_CTX_new();
	if (!r->snapdir || !r->md) {
		free(r->snapdir);
		EVP_MD_CTX_free(r->md);
		free(r);
		return NULL;
	}
	r->max_bytes = SNAP_BYTES_MAX;
	r->max_files = SNAP_FILES_MAX;
	r->dirfd = r->fd = -1;
	return r;
}

void snap_recv_set_limits(struct snap_recv *r, uint64_t max_bytes,
			  size_t max_files)
{
	r->max_bytes = max_bytes;
	r->max_files = max_files;
}

/* Forgets the transfer; its files go if remove is set. */
static void reset(struct snap_recv *r, int remove)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->dirfd >= 0)
		close(r->dirfd);
	r->fd = r->dirfd = -1;
	if (remove && r->active && r->written) {
		int sfd = open(r->snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		/* If this fails, the next start removes them. */
		if (sfd >= 0) {
			snap_rmtree(sfd, SNAP_INCOMING);
			close(sfd);
		}
	}
	r->active = r->complete = r->written = 0;
	r->name[0] = 0;
	r->off = r->total = 0;
	r->nfiles = 0;
}

void snap_recv_free(struct snap_recv *r)
{
	if (!r)
		return;
	reset(r, 1);
	EVP_MD_CTX_free(r->md);
	free(r->snapdir);
	free(r);
}

void snap_recv_abort(struct snap_recv *r)
{
	reset(r, 1);
}

void snap_recv_finish(struct snap_recv *r)
{
	/* An installed incoming directory is member/db now: nothing is
	 * there to remove; one that was not installed goes. */
	reset(r, 1);
}

int snap_recv_written(const struct snap_recv *r)
{
	return r->complete && r->written;
}

void snap_recv_source(const struct snap_recv *r, uint64_t *ret_from,
		      uint64_t *ret_index)
{
	*ret_from = r->from;
	*ret_index = r->index;
}

static int valid_name(const char *s)
{
	size_t n = strnlen(s, SNAP_NAME_MAX + 1);
	return n > 0 && n <= SNAP_NAME_MAX && !strchr(s, '/') &&
	       strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* The file being received is complete: to disk with it. */
static int end_file(struct snap_recv *r)
{
	if (r->fd < 0)
		return 0;
	int ret = fsync(r->fd) < 0 ? -errno : 0;
	if (close(r->fd) < 0 && ret == 0)
		ret = -errno;
	r->fd = -1;
	return ret;
}

static int begin(struct snap_recv *r, uint64_t id, const Ipc__SnapChunk *c,
		 uint64_t applied)
{
	reset(r, 1);
	r->active = 1;
	r->id = id;
	r->from = c->from;
	r->index = c->index;
	r->term = c->term;
	if (!EVP_DigestInit_ex(r->md, EVP_sha256(), NULL))
		return -ENOMEM;
	/* The store is already past the snapshot: the chunks are checked
	 * and acknowledged, nothing is written. */
	if (applied >= c->index)
		return 0;
	if (mkdir(r->snapdir, 0700) < 0 && errno != EEXIST)
		return -errno;
	int sfd = open(r->snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	int ret = snap_rmtree(sfd, SNAP_INCOMING);
	if (ret == 0 && mkdirat(sfd, SNAP_INCOMING, 0700) < 0)
		ret = -errno;
	if (ret == 0) {
		r->written = 1;
		r->dirfd = openat(sfd, SNAP_INCOMING,
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r->dirfd < 0)
			ret = -errno;
	}
	close(sfd);
	return ret;
}

static int new_file(struct snap_recv *r, const char *name)
{
	int ret = end_file(r);
	if (ret < 0)
		return ret;
	if (r->nfiles >= r->max_files)
		return -EFBIG;
	r->nfiles++;
	size_t n = strlen(name);
	memcpy(r->name, name, n + 1);
	r->off = 0;
	if (!EVP_DigestUpdate(r->md, name, n + 1))
		return -ENOMEM;
	if (!r->written)
		return 0;
	/* O_EXCL: a name sent twice is an error, not an overwrite. */
	r->fd = openat(r->dirfd, name,
		       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	return r->fd < 0 ? -errno : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int finish(struct snap_recv *r, const Ipc__SnapChunk *c,
		  const char **ret_msg)
{
	uint8_t sum[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int ret;
	if (c->data.len || r->nfiles == 0) {
		*ret_msg = "snapshot: done out of order";
		return -EINVAL;
	}
	ret = end_file(r);
	if (ret == 0 && r->written && fsync(r->dirfd) < 0)
		ret = -errno;
	if (ret < 0) {
		*ret_msg = "snapshot: cannot sync the received files";
		return ret;
	}
	if (!EVP_DigestFinal_ex(r->md, sum, &len))
		return -ENOMEM;
	if (c->sha256.len != SHA256_LEN || len != SHA256_LEN ||
	    memcmp(sum, c->sha256.data, SHA256_LEN) != 0) {
		*ret_msg = "snapshot: checksum mismatch";
		return -EBADMSG;
	}
	close(r->dirfd);
	r->dirfd = -1;
	r->complete = 1;
	return SNAP_RECV_COMPLETE;
}

static int take(struct snap_recv *r, uint64_t id, const Ipc__SnapChunk *c,
		uint64_t applied, const char **ret_msg)
{
	int ret;
	if (!r->active || id != r->id) {
		if (r->failed && id == r->failed_id) {
			*ret_msg = "snapshot: transfer already failed";
			return -EINVAL;
		}
		if (c->index == 0) {
			reset(r, 1);
			*ret_msg = "snapshot: no index";
			return -EINVAL;
		}
		if (c->done || c->offset != 0) {
			reset(r, 1);
			*ret_msg = "snapshot: transfer does not begin at a file's start";
			return -EINVAL;
		}
		if ((ret = begin(r, id, c, applied)) < 0) {
			*ret_msg = "snapshot: cannot create the incoming directory";
			return ret;
		}
	} else if (r->complete) {
		*ret_msg = "snapshot: chunk after done";
		return -EINVAL;
	} else if ((c->from && c->from != r->from) ||
		   (c->index && c->index != r->index) ||
		   (c->term && c->term != r->term)) {
		/* Fields left out (0) are the transfer's. */
		*ret_msg = "snapshot: chunk of another snapshot";
		return -EINVAL;
	}
	if (c->done)
		return finish(r, c, ret_msg);

	const char *name = c->name ? c->name : "";
	if (r->nfiles == 0 || strcmp(name, r->name) != 0) {
		if (!valid_name(name)) {
			*ret_msg = "snapshot: bad file name";
			return -EINVAL;
		}
		if (c->offset != 0) {
			*ret_msg = "snapshot: file does not begin at offset 0";
			return -EINVAL;
		}
		if ((ret = new_file(r, name)) < 0) {
			*ret_msg = ret == -EFBIG ? "snapshot: too many files"
			: ret == -EEXIST ? "snapshot: file sent twice"
					 : "snapshot: cannot create a file";
			return ret == -EEXIST ? -EINVAL : ret;
		}
	} else if (c->offset != r->off) {
		*ret_msg = "snapshot: chunk out of order";
		return -EINVAL;
	}
	if (c->data.len > r->max_bytes - r->total) {
		*ret_msg = "snapshot: too large";
		return -EFBIG;
	}
	if (!EVP_DigestUpdate(r->md, c->data.data, c->data.len))
		return -ENOMEM;
	if (r->written && (ret = write_all(r->fd, c->data.data, c->data.len)) < 0) {
		*ret_msg = "snapshot: cannot write a file";
		return ret;
	}
	r->off += c->data.len;
	r->total += c->data.len;
	return 0;
}

int snap_recv_chunk(struct snap_recv *r, uint64_t id, const Ipc__SnapChunk *c,
		    uint64_t applied, const char **ret_msg)
{
	const char *msg = "snapshot: out of memory";
	int ret = take(r, id, c, applied, &msg);
	if (ret < 0) {
		/* The transfer is over; its later chunks are refused. A
		 * stale chunk of a failed one leaves the current one be. */
		if (!r->active || r->id == id)
			reset(r, 1);
		r->failed = 1;
		r->failed_id = id;
		*ret_msg = msg;
	}
	return ret;
}
