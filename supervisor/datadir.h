/* The data dir's layout as the supervisor sees it: directories and identity. */
#ifndef ETCD_SUPERVISOR_DATADIR_H
#define ETCD_SUPERVISOR_DATADIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct identity {
	uint64_t member_id;
	uint64_t cluster_id;
	char name[256];
};

/*
 * Whether a member lives in this data dir: its WAL directory exists
 * (<wal_dir>, or <dir>/member/wal when wal_dir is empty). Reads only.
 */
bool datadir_initialized(const char *dir, const char *wal_dir);

/* What a data dir holds, as etcd's identifyDataDirOrDie tells: a member
 * (its WAL exists), a v2 proxy (<dir>/proxy exists), both, or neither. */
enum datadir_kind { DATADIR_EMPTY, DATADIR_MEMBER, DATADIR_PROXY, DATADIR_BOTH };
enum datadir_kind datadir_kind(const char *dir, const char *wal_dir);

/* mkdir -p path with mode. 0 or -errno. */
int datadir_mkdir_p(const char *path, mode_t mode);

/* mkdir -p dir and dir/member, both 0700. 0 or -errno. */
int datadir_create(const char *dir);

/* Writes <dir>/member/identity atomically (temp file, fsync, rename). */
int identity_write(const char *dir, const struct identity *id);
/* Reads it back: 0, -ENOENT, -EBADMSG (does not decode) or -errno. */
int identity_read(const char *dir, struct identity *ret_id);

#endif
