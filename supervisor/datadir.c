/* Data dir creation and the member identity file (ipc.Identity). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "ipc.pb-c.h"

#define IDENTITY_MAX 4096

bool datadir_initialized(const char *dir, const char *wal_dir)
{
	char path[PATH_MAX];
	struct stat st;
	if (wal_dir && *wal_dir)
		snprintf(path, sizeof(path), "%s", wal_dir);
	else
		snprintf(path, sizeof(path), "%s/member/wal", dir);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int datadir_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

enum datadir_kind datadir_kind(const char *dir, const char *wal_dir)
{
	char path[PATH_MAX];
	struct stat st;
	bool member = datadir_initialized(dir, wal_dir);
	snprintf(path, sizeof(path), "%s/proxy", dir);
	bool proxy = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	return member && proxy ? DATADIR_BOTH
	       : member	       ? DATADIR_MEMBER
	       : proxy	       ? DATADIR_PROXY
			       : DATADIR_EMPTY;
}

int datadir_create(const char *dir)
{
	char member[PATH_MAX];
	int r = datadir_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	if (snprintf(member, sizeof(member), "%s/member", dir) >= (int)sizeof(member))
		return -ENAMETOOLONG;
	if (mkdir(member, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int identity_write(const char *dir, const struct identity *id)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32], member[PATH_MAX + 32];
	uint8_t buf[IDENTITY_MAX];
	Ipc__Identity m = IPC__IDENTITY__INIT;

	m.member_id = id->member_id;
	m.cluster_id = id->cluster_id;
	m.name = (char *)id->name;
	if (ipc__identity__get_packed_size(&m) > sizeof(buf))
		return -E2BIG;
	size_t len = ipc__identity__pack(&m, buf);
	if (strlen(dir) + sizeof("/member/identity.tmp") > sizeof(tmp))
		return -ENAMETOOLONG;
	snprintf(member, sizeof(member), "%s/member", dir);
	snprintf(path, sizeof(path), "%s/member/identity", dir);
	snprintf(tmp, sizeof(tmp), "%s/member/identity.tmp", dir);

	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_dir(member);
}

int identity_read(const char *dir, struct identity *ret_id)
{
	char path[PATH_MAX];
	uint8_t buf[IDENTITY_MAX];
	ssize_t len = 0;

	snprintf(path, sizeof(path), "%s/member/identity", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - (size_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += n;
		if ((size_t)len == sizeof(buf)) {
			close(fd);
			return -EBADMSG;
		}
	}
	close(fd);
	Ipc__Identity *m = ipc__identity__unpack(NULL, (size_t)len, buf);
	if (!m)
		return -EBADMSG;
	if (!m->member_id || !m->name || strlen(m->name) >= sizeof(ret_id->name)) {
		ipc__identity__free_unpacked(m, NULL);
		return -EBADMSG;
	}
	ret_id->member_id = m->member_id;
	ret_id->cluster_id = m->cluster_id;
	snprintf(ret_id->name, sizeof(ret_id->name), "%s", m->name);
	ipc__identity__free_unpacked(m, NULL);
	return 0;
}
