/* The WAL's record format and state, shared by its writer and its reader. */
#ifndef ETCD_RAFTD_WAL_IMPL_H
#define ETCD_RAFTD_WAL_IMPL_H

#include "wal.h"

enum wal_rec_type {
	WAL_REC_METADATA = 1,
	WAL_REC_ENTRY = 2,
	WAL_REC_HARDSTATE = 3,
	WAL_REC_SNAPSHOT = 4,
};

#define WAL_HDR 12u

struct wal_seg {
	uint64_t seq, first;
};

struct wal {
	char *dir;
	int dirfd;
	int fd;                  /* the last segment, open for append */
	uint64_t size;           /* of the last segment */
	uint64_t seg_bytes;
	struct wal_seg *segs;
	size_t n_segs, cap_segs;

	uint64_t member_id, cluster_id;
	/* What a new segment's head repeats. */
	uint64_t term, vote, commit;
	uint64_t base_index, base_term;
	struct raft_conf base_conf;
	uint64_t last_index;     /* last entry saved */

	uint8_t *buf;
	size_t len, cap;
	uint64_t buf_first;      /* first entry index in buf, 0 if none */

	/* For /metrics: every fdatasync of a segment, and bytes written. */
	struct metrics_hist fsync_hist;
	uint64_t write_bytes;
};

int wal_put(uint8_t **buf, size_t *len, size_t *cap, uint32_t type,
	    const ProtobufCMessage *m);
int wal_seg_name(char *out, size_t n, uint64_t seq, uint64_t first);
int wal_seg_add(struct wal *w, uint64_t seq, uint64_t first);
/* Head records of a segment into *buf. */
int wal_put_head(struct wal *w, uint8_t **buf, size_t *len, size_t *cap);
int wal_fsync_dir(int dirfd);
/* Both ends set up what the writer's statistics need. */
void wal_stats_init(struct wal *w);

#endif
