/* The WAL's writer: creation, group-committed appends, segment cut and
 * release (format and recovery: wal.h, wal_read.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "ipc.pb-c.h"
#include "wal_impl.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int wal_put(uint8_t **buf, size_t *len, size_t *cap, uint32_t type,
	    const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > WAL_MAX_RECORD)
		return -EMSGSIZE;
	if (*len + WAL_HDR + n > *cap) {
		size_t c = *cap ? *cap : 64 * 1024;
		while (c < *len + WAL_HDR + n)
			c *= 2;
		uint8_t *p = realloc(*buf, c);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = c;
	}
	uint8_t *h = *buf + *len;
	protobuf_c_message_pack(m, h + WAL_HDR);
	put_le32(h, (uint32_t)n);
	put_le32(h + 4, type);
	uint32_t crc = crc32c(0, h + 4, 4);
	put_le32(h + 8, crc32c(crc, h + WAL_HDR, n));
	*len += WAL_HDR + n;
	return 0;
}

int wal_seg_name(char *out, size_t n, uint64_t seq, uint64_t first)
{
	int k = snprintf(out, n, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

int wal_seg_add(struct wal *w, uint64_t seq, uint64_t first)
{
	if (w->n_segs == w->cap_segs) {
		size_t c = w->cap_segs ? w->cap_segs * 2 : 16;
		struct wal_seg *p = realloc(w->segs, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->segs = p;
		w->cap_segs = c;
	}
	w->segs[w->n_segs].seq = seq;
	w->segs[w->n_segs].first = first;
	w->n_segs++;
	return 0;
}

static int put_snapshot(uint8_t **buf, size_t *len, size_t *cap, uint64_t index,
			uint64_t term, const struct raft_conf *c)
{
	uint64_t v[RAFT_MAX_NODES], l[RAFT_MAX_NODES];
	Raftpb__ConfState cs = RAFTPB__CONF_STATE__INIT;
	Raftpb__SnapshotMetadata md = RAFTPB__SNAPSHOT_METADATA__INIT;
	for (int i = 0; i < c->n; i++) {
		if (c->learner[i])
			l[cs.n_learners++] = c->ids[i];
		else
			v[cs.n_voters++] = c->ids[i];
	}
	cs.voters = v;
	cs.learners = l;
	md.conf_state = &cs;
	md.index = index;
	md.term = term;
	return wal_put(buf, len, cap, WAL_REC_SNAPSHOT, &md.base);
}

static int put_hardstate(uint8_t **buf, size_t *len, size_t *cap,
			 uint64_t term, uint64_t vote, uint64_t commit)
{
	Raftpb__HardState hs = RAFTPB__HARD_STATE__INIT;
	hs.term = term;
	hs.vote = vote;
	hs.commit = commit;
	return wal_put(buf, len, cap, WAL_REC_HARDSTATE, &hs.base);
}

int wal_put_head(struct wal *w, uint8_t **buf, size_t *len, size_t *cap)
{
	Ipc__Identity id = IPC__IDENTITY__INIT;
	id.member_id = w->member_id;
	id.cluster_id = w->cluster_id;
	int rc = wal_put(buf, len, cap, WAL_REC_METADATA, &id.base);
	if (rc == 0)
		rc = put_snapshot(buf, len, cap, w->base_index, w->base_term,
				  &w->base_conf);
	if (rc == 0)
		rc = put_hardstate(buf, len, cap, w->term, w->vote, w->commit);
	return rc;
}

int wal_fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? -errno : 0;
}

/* Writes to a segment of w (the caller keeps w->size). */
static int write_all(struct wal *w, int fd, const uint8_t *p, size_t n)
{
	w->write_bytes += n;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* fdatasync of a segment of w, timed as etcd times the WAL's fsyncs. */
static int datasync(struct wal *w, int fd)
{
	double t0 = now_s();
	int rc = fdatasync(fd) < 0 ? -errno : 0;
	metrics_hist_observe(&w->fsync_hist, now_s() - t0);
	return rc;
}

void wal_stats_init(struct wal *w)
{
	metrics_hist_init_disk(&w->fsync_hist);
	w->write_bytes = 0;
}

const struct metrics_hist *wal_fsync_hist(const struct wal *w)
{
	return &w->fsync_hist;
}

uint64_t wal_write_bytes(const struct wal *w)
{
	return w->write_bytes;
}

static int rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
}

int wal_exists(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 1 : -ENOTDIR;
	return errno == ENOENT ? 0 : -errno;
}

static struct wal *wal_alloc(const char *dir)
{
	struct wal *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->dir = strdup(dir);
	w->fd = w->dirfd = -1;
	w->seg_bytes = WAL_SEGMENT_BYTES;
	wal_stats_init(w);
	if (!w->dir) {
		free(w);
		return NULL;
	}
	return w;
}

void wal_free(struct wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->segs);
	free(w->buf);
	free(w->dir);
	free(w);
}

/* Opens dir's parent: where renames of dir must be made durable. */
static int open_parent(const char *dir)
{
	char *p = strdup(dir);
	if (!p)
		return -ENOMEM;
	char *s = strrchr(p, '/');
	if (s == p)
		s[1] = 0;
	else if (s)
		*s = 0;
	else
		strcpy(p, ".");
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? -errno : fd;
	free(p);
	return rc;
}

int wal_create(const char *dir, uint64_t member_id, uint64_t cluster_id,
	       struct raft_ent *const *ents, size_t n, uint64_t term,
	       uint64_t commit, struct wal **ret_w)
{
	char tmp[4096], name[64], path[4200];
	struct wal *w = NULL;
	int pfd = -1, rc;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* A crash during an earlier creation leaves dir.tmp behind. */
	if ((rc = rm_tree(tmp)) < 0)
		return rc;
	pfd = open_parent(dir);
	if (pfd < 0)
		return pfd;
	rc = -ENOMEM;
	w = wal_alloc(dir);
	if (!w)
		goto fail;
	w->member_id = member_id;
	w->cluster_id = cluster_id;
	w->term = term;
	w->commit = commit;
	if (mkdir(tmp, 0700) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = wal_seg_name(name, sizeof(name), 0, 0)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = wal_put_head(w, &w->buf, &w->len, &w->cap)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if ((rc = wal_save_entry(w, &ents[i]->e)) < 0)
			goto fail;
	if ((rc = wal_save_hardstate(w, term, 0, commit)) < 0)
		goto fail;
	if ((rc = write_all(w, w->fd, w->buf, w->len)) < 0)
		goto fail;
	w->size = w->len;
	w->len = 0;
	w->buf_first = 0;
	if ((rc = datasync(w, w->fd)) < 0)
		goto fail;
	w->dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0 || fsync(w->dirfd) < 0) {
		rc = -errno;
		goto fail;
	}
	/* The rename makes the member initialised, all at once. */
	if (rename(tmp, dir) < 0 || fsync(pfd) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = wal_seg_add(w, 0, 0)) < 0)
		goto fail;
	close(pfd);
	*ret_w = w;
	return 0;
fail:
	if (pfd >= 0)
		close(pfd);
	wal_free(w);
	rm_tree(tmp);
	return rc;
}

int wal_save_entry(struct wal *w, const Raftpb__Entry *e)
{
	int rc = wal_put(&w->buf, &w->len, &w->cap, WAL_REC_ENTRY, &e->base);
	if (rc < 0)
		return rc;
	if (!w->buf_first)
		w->buf_first = e->index;
	w->last_index = e->index;
	return 0;
}

int wal_save_hardstate(struct wal *w, uint64_t term, uint64_t vote,
		       uint64_t commit)
{
	int rc = put_hardstate(&w->buf, &w->len, &w->cap, term, vote, commit);
	if (rc < 0)
		return rc;
	w->term = term;
	w->vote = vote;
	w->commit = commit;
	return 0;
}

int wal_save_snapshot(struct wal *w, uint64_t index, uint64_t term,
		      const struct raft_conf *c)
{
	int rc = put_snapshot(&w->buf, &w->len, &w->cap, index, term, c);
	if (rc < 0)
		return rc;
	w->base_index = index;
	w->base_term = term;
	w->base_conf = *c;
	if (w->last_index < index)
		w->last_index = index;
	return 0;
}

/* Starts segment seq+1; its head repeats what recovery needs. */
static int cut(struct wal *w)
{
	char name[64];
	uint64_t seq = w->segs[w->n_segs - 1].seq + 1;
	uint64_t first = w->buf_first ? w->buf_first : w->last_index + 1;
	int rc = wal_seg_name(name, sizeof(name), seq, first);
	if (rc < 0)
		return rc;
	int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (fd < 0)
		return -errno;
	uint8_t *hb = NULL;
	size_t hl = 0, hc = 0;
	rc = wal_put_head(w, &hb, &hl, &hc);
	if (rc == 0)
		rc = write_all(w, fd, hb, hl);
	free(hb);
	if (rc == 0)
		rc = datasync(w, fd);
	if (rc == 0)
		rc = wal_fsync_dir(w->dirfd);
	if (rc == 0)
		rc = wal_seg_add(w, seq, first);
	if (rc < 0) {
		close(fd);
		unlinkat(w->dirfd, name, 0);
		return rc;
	}
	close(w->fd);
	w->fd = fd;
	w->size = hl;
	return 0;
}

int wal_sync(struct wal *w, bool sync)
{
	int rc;
	if (w->len > 0) {
		if (w->size >= w->seg_bytes && (rc = cut(w)) < 0)
			return rc;
		if ((rc = write_all(w, w->fd, w->buf, w->len)) < 0)
			return rc;
		w->size += w->len;
		w->len = 0;
		w->buf_first = 0;
		/* Let a burst's buffer go rather than keep it forever. */
		if (w->cap > (8u << 20)) {
			free(w->buf);
			w->buf = NULL;
			w->cap = 0;
		}
	}
	return sync ? datasync(w, w->fd) : 0;
}

int wal_release(struct wal *w, uint64_t base)
{
	char name[64];
	size_t k = 0;
	/* Segment i holds entries below segment i+1's first index only. */
	while (k + 1 < w->n_segs && w->segs[k + 1].first - 1 <= base)
		k++;
	for (size_t i = 0; i < k; i++) {
		wal_seg_name(name, sizeof(name), w->segs[i].seq, w->segs[i].first);
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
	}
	if (k == 0)
		return 0;
	memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
	w->n_segs -= k;
	int rc = wal_fsync_dir(w->dirfd);
	return rc < 0 ? rc : (int)k;
}

size_t wal_pending(const struct wal *w)
{
	return w->len;
}

void wal_set_segment_bytes(struct wal *w, uint64_t bytes)
{
	w->seg_bytes = bytes;
}

int wal_segments(const struct wal *w)
{
	return (int)w->n_segs;
}
