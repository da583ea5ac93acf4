/*
 * Snapshots between members, storaged's part (docs/ARCHITECTURE.md,
 * Snapshots): making one (a RocksDB checkpoint whose files are handed out as
 * open descriptors), receiving one (chunks written under
 * member/snap/incoming and checked against their SHA-256) and installing it
 * as the store, crash-safely. No event loop and no logging here.
 *
 * The checksum is ipc.proto's: SHA-256 over, for each file in the order
 * sent, its name, one zero byte, then its contents.
 */
#ifndef STORAGED_SNAP_H
#define STORAGED_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.pb-c.h"
#include "mvcc.h"

/* Files in one snapshot, at most (made or received). */
#define SNAP_FILES_MAX 10000
/* The longest file name accepted (NAME_MAX). */
#define SNAP_NAME_MAX 255
/* Bytes of one received snapshot, at most: generous, but finite. */
#define SNAP_BYTES_MAX (64ull << 30)

/* The directories under <data-dir>/member. */
#define SNAP_DIR "snap"
#define SNAP_INCOMING "incoming"
#define SNAP_DB "db"
#define SNAP_DB_OLD "db.old"

/* Removes name (a file or a directory tree) under directory dirfd; a
 * missing name is not an error. 0 or -errno. */
int snap_rmtree(int dirfd, const char *name);
/* fsync of the directory at path. 0 or -errno. */
int snap_fsync_dir(const char *path);

/* --- Making (snap_make.c) --- */

struct snap_file {
	char *name;    /* owned */
	uint64_t size;
	int fd;        /* read-only at offset 0, the file unlinked; -1 once
			* taken by the caller */
};

struct snap_files {
	struct snap_file *v; /* sorted by name */
	size_t n;
	uint64_t applied;    /* the applied index recorded in the files */
};

/*
 * Makes a checkpoint of m in a temporary directory under snapdir (created
 * if missing), opens every file of it read-only and removes the directory:
 * the descriptors keep the files. On failure returns -errno (-EFBIG past
 * SNAP_FILES_MAX files) and, if ret_err is not NULL, a malloc'd message.
 */
int snap_make(struct mvcc *m, const char *snapdir,
	      struct snap_files **ret_f, char **ret_err);
/* Closes the descriptors not taken and frees f. NULL is a no-op. */
void snap_files_free(struct snap_files *f);

/* --- Receiving (snap_recv.c) --- */

/* snap_recv_chunk: the transfer is complete and its checksum verified. */
#define SNAP_RECV_COMPLETE 1

struct snap_recv;

/* snapdir (copied): <data-dir>/member/snap. NULL on no memory. */
struct snap_recv *snap_recv_new(const char *snapdir);
/* Aborts a transfer in progress (its files go). NULL is a no-op. */
void snap_recv_free(struct snap_recv *r);
/* Limits (tests lower them); defaults SNAP_BYTES_MAX and SNAP_FILES_MAX. */
void snap_recv_set_limits(struct snap_recv *r, uint64_t max_bytes,
			  size_t max_files);

/*
 * Takes chunk c of transfer id (ipc.SnapChunk's rules: a new id discards an
 * unfinished transfer; files one after another, each by increasing offset
 * without holes; done ends it). The first chunk names the snapshot (from,
 * index, term); later ones may leave those 0, or must repeat them. applied is the store's applied index: a
 * transfer that begins while applied >= c->index is checked but not written
 * (nothing to install).
 *
 * Returns 0 (written), SNAP_RECV_COMPLETE (done and the checksum matches:
 * snapdir/incoming holds the files, synced, unless the transfer was not
 * written; call snap_recv_finish after installing or deciding not to), or
 * a negative errno and a static message in *ret_msg: -EINVAL (out of order,
 * bad name, chunk of a transfer that failed), -EBADMSG (checksum mismatch),
 * -EFBIG (past a limit), others (I/O). After an error the transfer is over
 * and its files are gone.
 */
int snap_recv_chunk(struct snap_recv *r, uint64_t id, const Ipc__SnapChunk *c,
		    uint64_t applied, const char **ret_msg);
/* Whether the complete transfer was written (else there is nothing to
 * install). */
int snap_recv_written(const struct snap_recv *r);
/* The sender and Raft index of the transfer (as its first chunk said). */
void snap_recv_source(const struct snap_recv *r, uint64_t *ret_from,
		      uint64_t *ret_index);
/* Ends a complete transfer: removes what was not installed. */
void snap_recv_finish(struct snap_recv *r);
/* Aborts the transfer in progress, if any (gatewayd went away). */
void snap_recv_abort(struct snap_recv *r);

/* --- Installing (snap_install.c) --- */

/*
 * With the store closed: member/db -> member/db.old, member/snap/incoming
 * -> member/db, fsync of both directories, then member/db.old removed.
 * memberdir: <data-dir>/member. On failure the old store is back in place
 * (as far as the file system lets us) and -errno is returned.
 */
int snap_install(const char *memberdir);

/* What snap_recover found. */
#define SNAP_RECOVER_ROLLBACK 0x1 /* db missing: db.old renamed back */
#define SNAP_RECOVER_OLD 0x2      /* db and db.old: db.old removed */
#define SNAP_RECOVER_LEFTOVER 0x4 /* files under member/snap removed */

/*
 * At start, before the store opens: finishes or undoes an install that a
 * crash interrupted and removes what transfers left under member/snap.
 * Returns a mask of SNAP_RECOVER_* (0: nothing to do) or -errno.
 */
int snap_recover(const char *memberdir);

#endif
