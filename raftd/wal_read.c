/*
 * WAL recovery: reads every segment in order, keeps the last hard state and
 * compaction marker, rebuilds the entries (a later entry at an index replaces
 * the tail from there: a new leader's log), and stops at the first torn or
 * corrupt record: that segment is truncated there and later ones deleted, so
 * garbage never reaches Raft and appends resume on a clean end. A snapshot
 * marker the leader sent drops every entry held before it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "ipc.pb-c.h"
#include "wal_impl.h"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int list_segments(struct wal *w)
{
	DIR *d = fdopendir(dup(w->dirfd));
	if (!d)
		return -errno;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) && rc == 0) {
		uint64_t seq, first;
		char tail[8];
		if (sscanf(de->d_name, "%16" SCNx64 "-%16" SCNx64 "%7s", &seq,
			   &first, tail) != 3 ||
		    strcmp(tail, ".wal") != 0 || strlen(de->d_name) != 37)
			continue;
		rc = wal_seg_add(w, seq, first);
	}
	closedir(d);
	if (rc == 0 && w->n_segs)
		qsort(w->segs, w->n_segs, sizeof(*w->segs), cmp_seg);
	return rc;
}

static int read_file(int dirfd, const char *name, uint8_t **ret_buf,
		     size_t *ret_len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = got;
	return 0;
}

/* The recovered entries, replaced from an index on as the log was. */
struct ents {
	struct raft_ent **v;
	size_t n, cap;
};

static int ents_put(struct ents *e, struct raft_ent *x)
{
	/* Overwrites drop the old tail from x's index on. */
	while (e->n > 0 && e->v[e->n - 1]->e.index >= x->e.index)
		raft_ent_unref(e->v[--e->n]);
	if (e->n > 0 && e->v[e->n - 1]->e.index + 1 != x->e.index) {
		/* A hole: only the oldest kept segment may start past the
		 * first entry we hold, and then we hold none. */
		return -EBADMSG;
	}
	if (e->n == e->cap) {
		size_t c = e->cap ? e->cap * 2 : 1024;
		struct raft_ent **p = realloc(e->v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		e->v = p;
		e->cap = c;
	}
	e->v[e->n++] = x;
	return 0;
}

static void ents_clear(struct ents *e)
{
	while (e->n > 0)
		raft_ent_unref(e->v[--e->n]);
}

/*
 * Whether a marker at (index, term) is a snapshot the leader sent rather
 * than a compaction point. A compaction point lies on an entry we hold with
 * the same term, or below all of them (its segment was released); a
 * follower restores a snapshot only when its log does not hold that entry
 * (raft_replicate.c), so then every entry written before the marker is
 * gone for Raft and the entries after it start at index + 1.
 */
static bool marker_resets(const struct ents *e, uint64_t index, uint64_t term)
{
	if (e->n == 0)
		return false;
	uint64_t first = e->v[0]->e.index, last = e->v[e->n - 1]->e.index;
	if (index < first)
		return false;
	if (index > last)
		return true;
	return e->v[index - first]->e.term != term;
}

static int conf_from(const Raftpb__ConfState *cs, struct raft_conf *c)
{
	memset(c, 0, sizeof(*c));
	if (!cs)
		return 0;
	if (cs->n_voters + cs->n_learners > RAFT_MAX_NODES)
		return -EBADMSG;
	for (size_t i = 0; i < cs->n_voters; i++)
		c->ids[c->n++] = cs->voters[i];
	for (size_t i = 0; i < cs->n_learners; i++) {
		c->learner[c->n] = true;
		c->ids[c->n++] = cs->learners[i];
	}
	return 0;
}

/* One record's payload into st/es: 0, -EBADMSG (corrupt), -ENOMEM. */
static int apply_record(uint32_t type, const uint8_t *p, size_t n,
			struct wal_state *st, struct ents *es, bool *have_meta)
{
	switch (type) {
	case WAL_REC_METADATA: {
		Ipc__Identity *id = ipc__identity__unpack(NULL, n, p);
		if (!id)
			return -EBADMSG;
		bool bad = *have_meta && (id->member_id != st->member_id ||
					  id->cluster_id != st->cluster_id);
		st->member_id = id->member_id;
		st->cluster_id = id->cluster_id;
		*have_meta = true;
		ipc__identity__free_unpacked(id, NULL);
		return bad ? -EBADMSG : 0;
	}
	case WAL_REC_ENTRY: {
		Raftpb__Entry *e = raftpb__entry__unpack(NULL, n, p);
		if (!e || e->index == 0) {
			if (e)
				raftpb__entry__free_unpacked(e, NULL);
			return -EBADMSG;
		}
		struct raft_ent *x = raft_ent_new(e->term, e->index, e->type,
						  e->data.data, e->data.len);
		raftpb__entry__free_unpacked(e, NULL);
		if (!x)
			return -ENOMEM;
		int rc = ents_put(es, x);
		if (rc < 0)
			raft_ent_unref(x);
		return rc;
	}
	case WAL_REC_HARDSTATE: {
		Raftpb__HardState *hs = raftpb__hard_state__unpack(NULL, n, p);
		if (!hs)
			return -EBADMSG;
		st->term = hs->term;
		st->vote = hs->vote;
		st->commit = hs->commit;
		raftpb__hard_state__free_unpacked(hs, NULL);
		return 0;
	}
	case WAL_REC_SNAPSHOT: {
		Raftpb__SnapshotMetadata *md =
			raftpb__snapshot_metadata__unpack(NULL, n, p);
		if (!md)
			return -EBADMSG;
		int rc = 0;
		if (marker_resets(es, md->index, md->term))
			ents_clear(es);
		if (md->index >= st->base_index) {
			rc = conf_from(md->conf_state, &st->base_conf);
			st->base_index = md->index;
			st->base_term = md->term;
		}
		raftpb__snapshot_metadata__free_unpacked(md, NULL);
		return rc;
	}
	default:
		return -EBADMSG;
	}
}

/* Parses buf; returns the offset of the end of the last good record. */
static size_t parse(const uint8_t *buf, size_t len, struct wal_state *st,
		    struct ents *es, bool *have_meta, int *ret_rc)
{
	size_t off = 0;
	*ret_rc = 0;
	while (len - off >= WAL_HDR) {
		const uint8_t *h = buf + off;
		uint32_t n = get_le32(h), type = get_le32(h + 4);
		if (n > WAL_MAX_RECORD || n > len - off - WAL_HDR)
			break; /* torn */
		uint32_t crc = crc32c(0, h + 4, 4);
		if (crc32c(crc, h + WAL_HDR, n) != get_le32(h + 8))
			break; /* torn or corrupt */
		int rc = apply_record(type, h + WAL_HDR, n, st, es, have_meta);
		if (rc == -ENOMEM) {
			*ret_rc = rc;
			return off;
		}
		if (rc < 0)
			break;
		off += WAL_HDR + n;
	}
	return off;
}

/* Cuts segment i at off and deletes every later one. */
static int repair(struct wal *w, size_t i, size_t off)
{
	char name[64];
	for (size_t k = w->n_segs; k-- > i + 1;) {
		wal_seg_name(name, sizeof(name), w->segs[k].seq, w->segs[k].first);
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
	}
	w->n_segs = i + 1;
	wal_seg_name(name, sizeof(name), w->segs[i].seq, w->segs[i].first);
	int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0)
		rc = wal_fsync_dir(w->dirfd);
	return rc;
}

void wal_state_done(struct wal_state *st)
{
	for (size_t i = 0; i < st->n_ents; i++)
		raft_ent_unref(st->ents[i]);
	free(st->ents);
	st->ents = NULL;
	st->n_ents = 0;
}

int wal_open(const char *dir, struct wal_state *ret_st, struct wal **ret_w)
{
	struct wal_state st;
	struct ents es = {0};
	struct wal *w = calloc(1, sizeof(*w));
	bool have_meta = false;
	int rc = -ENOMEM;
	char name[64];

	memset(&st, 0, sizeof(st));
	if (!w || !(w->dir = strdup(dir)))
		goto fail;
	w->fd = -1;
	w->seg_bytes = WAL_SEGMENT_BYTES;
	wal_stats_init(w);
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = list_segments(w)) < 0)
		goto fail;
	rc = -EBADMSG;
	if (w->n_segs == 0)
		goto fail;
	for (size_t i = 0; i < w->n_segs; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		/* Segments are numbered without holes; a hole ends the log. */
		if (i > 0 && w->segs[i].seq != w->segs[i - 1].seq + 1) {
			if ((rc = repair(w, i - 1, (size_t)w->size)) < 0)
				goto fail;
			st.repaired = true;
			break;
		}
		wal_seg_name(name, sizeof(name), w->segs[i].seq, w->segs[i].first);
		if ((rc = read_file(w->dirfd, name, &buf, &len)) < 0)
			goto fail;
		int prc;
		size_t good = parse(buf, len, &st, &es, &have_meta, &prc);
		free(buf);
		if ((rc = prc) < 0)
			goto fail;
		w->size = good;
		if (good < len) {
			if ((rc = repair(w, i, good)) < 0)
				goto fail;
			st.repaired = true;
			break;
		}
	}
	rc = -EBADMSG;
	if (!have_meta)
		goto fail;
	/* Entries at or below the compaction point are gone for Raft. */
	size_t drop = 0;
	while (drop < es.n && es.v[drop]->e.index <= st.base_index)
		raft_ent_unref(es.v[drop++]);
	memmove(es.v, es.v + drop, (es.n - drop) * sizeof(*es.v));
	es.n -= drop;
	if (es.n > 0 && es.v[0]->e.index != st.base_index + 1)
		goto fail; /* entries missing after the base */
	uint64_t last = st.base_index + es.n;
	if (st.commit > last)
		st.commit = last; /* a hard state can outlive a cut tail */
	if (st.commit < st.base_index)
		st.commit = st.base_index;

	wal_seg_name(name, sizeof(name), w->segs[w->n_segs - 1].seq,
		     w->segs[w->n_segs - 1].first);
	w->fd = openat(w->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (w->fd < 0) {
		rc = -errno;
		goto fail;
	}
	w->member_id = st.member_id;
	w->cluster_id = st.cluster_id;
	w->term = st.term;
	w->vote = st.vote;
	w->commit = st.commit;
	w->base_index = st.base_index;
	w->base_term = st.base_term;
	w->base_conf = st.base_conf;
	w->last_index = last;
	st.ents = es.v;
	st.n_ents = es.n;
	*ret_st = st;
	*ret_w = w;
	return 0;
fail:
	for (size_t i = 0; i < es.n; i++)
		raft_ent_unref(es.v[i]);
	free(es.v);
	wal_free(w);
	return rc;
}
