/*
 * raftd's write-ahead log: <data-dir>/member/wal/, segments named
 * %016llx-%016llx.wal (sequence, first index) as etcd names them. A record
 * is {le32 length, le32 type, le32 CRC-32C of type and payload} then the
 * payload: member metadata (ipc.Identity), an entry (raftpb.Entry), the hard
 * state (raftpb.HardState) or a snapshot marker (raftpb.SnapshotMetadata:
 * the log's compaction point). Each segment opens with metadata, the marker
 * and the hard state, so the oldest segments can be deleted whole.
 *
 * Appends are buffered; wal_sync writes them with one write() and at most
 * one fdatasync() (group commit). Recovery stops at the first torn or
 * corrupt record, truncates there and drops any later segment.
 */
#ifndef ETCD_RAFTD_WAL_H
#define ETCD_RAFTD_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "raft.h"

/* etcd's SegmentSizeBytes. */
#define WAL_SEGMENT_BYTES 64000000u
/* A record larger than this is corruption (the link limit is below it). */
#define WAL_MAX_RECORD (80u << 20)

struct wal;

/* What recovery found. */
struct wal_state {
	uint64_t member_id, cluster_id;
	uint64_t term, vote, commit;
	uint64_t base_index, base_term;
	struct raft_conf base_conf;
	struct raft_ent **ents; /* base_index+1..., owned */
	size_t n_ents;
	bool repaired;          /* a torn or corrupt tail was cut off */
};

/* 1 if dir exists (the member is initialised), 0 if not, or -errno. */
int wal_exists(const char *dir);
/*
 * Creates dir atomically (written as dir.tmp, synced, renamed, parent
 * synced) holding metadata, ents (borrowed) and the hard state.
 */
int wal_create(const char *dir, uint64_t member_id, uint64_t cluster_id,
	       struct raft_ent *const *ents, size_t n, uint64_t term,
	       uint64_t commit, struct wal **ret_w);
/* Recovers dir: fills ret_st (free with wal_state_done), opens for append. */
int wal_open(const char *dir, struct wal_state *ret_st, struct wal **ret_w);
void wal_state_done(struct wal_state *st);
void wal_free(struct wal *w);

/* Buffers records; nothing reaches the file before wal_sync. */
int wal_save_entry(struct wal *w, const Raftpb__Entry *e);
int wal_save_hardstate(struct wal *w, uint64_t term, uint64_t vote,
		       uint64_t commit);
int wal_save_snapshot(struct wal *w, uint64_t index, uint64_t term,
		      const struct raft_conf *c);
/* Writes the buffered records (cutting a new segment first if the current
 * one is full) and, if sync, fdatasyncs. 0 or -errno. */
int wal_sync(struct wal *w, bool sync);
/* Deletes the segments whose entries all lie at or below base (a marker at
 * base must be synced already). Returns how many went, or -errno. */
int wal_release(struct wal *w, uint64_t base);
/* Bytes in buffer not yet written. */
size_t wal_pending(const struct wal *w);
/* For /metrics (etcd_disk_wal_fsync_duration_seconds and
 * etcd_disk_wal_write_bytes_total): the duration of every fdatasync of a
 * segment, and the bytes written to segments since the WAL was opened. */
const struct metrics_hist *wal_fsync_hist(const struct wal *w);
uint64_t wal_write_bytes(const struct wal *w);
/* For tests: a smaller segment size. */
void wal_set_segment_bytes(struct wal *w, uint64_t bytes);
int wal_segments(const struct wal *w);

#endif
