/*
 * The WAL on real files: create and reopen, tail overwrite, torn tails cut
 * at every offset of the last records, flipped bits, segment cut and
 * release, a follower's snapshot restore, atomic creation over a crashed
 * attempt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "wal.h"

static char root[256];

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

static void fresh(char *dir, size_t n, const char *name)
{
	snprintf(dir, n, "%s/%s", root, name);
	rm_rf(dir);
	CHECK(mkdir(dir, 0700) == 0);
	strncat(dir, "/wal", n - strlen(dir) - 1);
}

static struct raft_ent *ent(uint64_t term, uint64_t index, size_t len)
{
	uint8_t data[512];
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(index * 31 + i);
	return raft_ent_new(term, index, RAFTPB__ENTRY_TYPE__EntryNormal, data,
			    len);
}

static bool ent_ok(const struct raft_ent *x, uint64_t term, uint64_t index,
		   size_t len)
{
	if (x->e.term != term || x->e.index != index || x->e.data.len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (x->e.data.data[i] != (uint8_t)(index * 31 + i))
			return false;
	return true;
}

static struct wal *create3(const char *dir)
{
	struct raft_ent *e[3];
	for (int i = 0; i < 3; i++)
		e[i] = ent(1, (uint64_t)i + 1, 20);
	struct wal *w;
	CHECK(wal_create(dir, 0xabc, 0xdef, e, 3, 1, 3, &w) == 0);
	for (int i = 0; i < 3; i++)
		raft_ent_unref(e[i]);
	return w;
}

static void test_create_reopen(void)
{
	char dir[512];
	fresh(dir, sizeof(dir), "reopen");
	CHECK(wal_exists(dir) == 0);
	struct wal *w = create3(dir);
	CHECK(wal_exists(dir) == 1);
	for (uint64_t i = 4; i <= 100; i++) {
		struct raft_ent *x = ent(2, i, i % 300);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
	}
	CHECK(wal_save_hardstate(w, 2, 7, 90) == 0);
	CHECK(wal_sync(w, true) == 0);
	/* Overwrite the tail from 95 (a new leader's entries). */
	for (uint64_t i = 95; i <= 97; i++) {
		struct raft_ent *x = ent(3, i, 10);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
	}
	CHECK(wal_save_hardstate(w, 3, 0, 96) == 0);
	CHECK(wal_sync(w, true) == 0);
	wal_free(w);

	struct wal_state st;
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.member_id == 0xabc && st.cluster_id == 0xdef);
	CHECK(st.term == 3 && st.vote == 0 && st.commit == 96);
	CHECK(st.base_index == 0 && st.n_ents == 97 && !st.repaired);
	for (uint64_t i = 1; i <= 3; i++)
		CHECK(ent_ok(st.ents[i - 1], 1, i, 20));
	for (uint64_t i = 4; i <= 94; i++)
		CHECK(ent_ok(st.ents[i - 1], 2, i, i % 300));
	for (uint64_t i = 95; i <= 97; i++)
		CHECK(ent_ok(st.ents[i - 1], 3, i, 10));
	wal_state_done(&st);
	/* Appends continue after recovery. */
	struct raft_ent *x = ent(3, 98, 5);
	CHECK(wal_save_entry(w, &x->e) == 0);
	raft_ent_unref(x);
	CHECK(wal_sync(w, true) == 0);
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.n_ents == 98 && ent_ok(st.ents[97], 3, 98, 5));
	wal_state_done(&st);
	wal_free(w);
}

static uint8_t *slurp(const char *path, size_t *ret_n)
{
	FILE *f = fopen(path, "rb");
	CHECK(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	CHECK(fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*ret_n = (size_t)n;
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, b, n) == (ssize_t)n);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;
	CHECK(stat(path, &st) == 0);
	return st.st_size;
}

/* Writes entries 4..3+n, one sync each; returns the file's bytes and the
 * file size after each entry (bounds[k]: 3+k entries complete). */
static uint8_t *build(const char *dir, int n, size_t *bounds, size_t *ret_len)
{
	char seg[600];
	struct wal *w = create3(dir);
	snprintf(seg, sizeof(seg), "%s/0000000000000000-0000000000000000.wal", dir);
	bounds[0] = (size_t)file_size(seg);
	for (int k = 1; k <= n; k++) {
		struct raft_ent *x = ent(1, 3 + (uint64_t)k, 40 + (size_t)k);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
		CHECK(wal_sync(w, false) == 0);
		bounds[k] = (size_t)file_size(seg);
	}
	wal_free(w);
	return slurp(seg, ret_len);
}

static void test_torn_tail(void)
{
	char dir[512], seg[600];
	enum { N = 12 };
	size_t bounds[N + 1], len;
	fresh(dir, sizeof(dir), "torn");
	uint8_t *img = build(dir, N, bounds, &len);
	snprintf(seg, sizeof(seg), "%s/0000000000000000-0000000000000000.wal", dir);
	/* Every cut inside the last 8 records, and a few in the head. */
	for (size_t cut = bounds[N - 8]; cut < len; cut++) {
		spit(seg, img, cut);
		struct wal_state st;
		struct wal *w;
		CHECK(wal_open(dir, &st, &w) == 0);
		int k = N;
		while (bounds[k] > cut)
			k--;
		CHECK(st.n_ents == 3 + (size_t)k);
		CHECK(st.repaired == (cut != bounds[k]));
		CHECK((size_t)file_size(seg) == bounds[k]);
		for (int i = 1; i <= k; i++)
			CHECK(ent_ok(st.ents[2 + i], 1, 3 + (uint64_t)i, 40 + (size_t)i));
		wal_state_done(&st);
		/* Writing resumes at a clean end. */
		struct raft_ent *x = ent(1, 4 + (uint64_t)k, 7);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
		CHECK(wal_sync(w, false) == 0);
		wal_free(w);
		CHECK(wal_open(dir, &st, &w) == 0);
		CHECK(st.n_ents == 4 + (size_t)k && !st.repaired);
		CHECK(ent_ok(st.ents[3 + k], 1, 4 + (uint64_t)k, 7));
		wal_state_done(&st);
		wal_free(w);
	}
	/* Cut inside the head: metadata gone means no WAL to trust. */
	spit(seg, img, 5);
	struct wal_state st;
	struct wal *w;
	CHECK(wal_open(dir, &st, &w) == -EBADMSG);
	free(img);
}

static void test_bit_flips(void)
{
	char dir[512], seg[600];
	enum { N = 10 };
	size_t bounds[N + 1], len;
	fresh(dir, sizeof(dir), "flip");
	uint8_t *img = build(dir, N, bounds, &len);
	snprintf(seg, sizeof(seg), "%s/0000000000000000-0000000000000000.wal", dir);
	/* Flip each bit of each byte of the last 3 records (every 7th byte
	 * to keep it quick): recovery keeps exactly the records before. */
	for (int rec = N - 2; rec <= N; rec++) {
		for (size_t off = bounds[rec - 1]; off < bounds[rec]; off += 7) {
			for (int bit = 0; bit < 8; bit += 3) {
				img[off] ^= (uint8_t)(1u << bit);
				spit(seg, img, len);
				img[off] ^= (uint8_t)(1u << bit);
				struct wal_state st;
				struct wal *w;
				CHECK(wal_open(dir, &st, &w) == 0);
				CHECK(st.repaired);
				CHECK(st.n_ents == 3 + (size_t)rec - 1);
				CHECK((size_t)file_size(seg) == bounds[rec - 1]);
				wal_state_done(&st);
				wal_free(w);
			}
		}
	}
	free(img);
}

static int count_wal_files(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".wal"))
			n++;
	closedir(d);
	return n;
}

static void test_segments(void)
{
	char dir[512];
	fresh(dir, sizeof(dir), "segs");
	struct wal *w = create3(dir);
	wal_set_segment_bytes(w, 4096);
	for (uint64_t i = 4; i <= 1000; i++) {
		struct raft_ent *x = ent(1, i, 100);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
		if (i % 10 == 0) {
			CHECK(wal_save_hardstate(w, 1, 0, i) == 0);
			CHECK(wal_sync(w, false) == 0);
		}
	}
	CHECK(wal_sync(w, true) == 0);
	int segs = wal_segments(w);
	CHECK(segs > 20 && count_wal_files(dir) == segs);
	wal_free(w);

	struct wal_state st;
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.n_ents == 1000 && st.commit == 1000);
	for (uint64_t i = 4; i <= 1000; i++)
		CHECK(ent_ok(st.ents[i - 1], 1, i, 100));
	wal_state_done(&st);
	/* Compact to 600: the segments wholly below go. */
	struct raft_conf c = {.n = 1, .ids = {7}};
	CHECK(wal_save_snapshot(w, 600, 1, &c) == 0);
	CHECK(wal_sync(w, true) == 0);
	CHECK(wal_release(w, 600) > 10);
	int left = count_wal_files(dir);
	CHECK(left < segs && left == wal_segments(w));
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.base_index == 600 && st.base_term == 1);
	CHECK(st.base_conf.n == 1 && st.base_conf.ids[0] == 7);
	CHECK(st.n_ents == 400 && ent_ok(st.ents[0], 1, 601, 100));
	wal_state_done(&st);
	wal_free(w);
}

static void save_range(struct wal *w, uint64_t term, uint64_t from,
		       uint64_t to)
{
	for (uint64_t i = from; i <= to; i++) {
		struct raft_ent *x = ent(term, i, 30);
		CHECK(wal_save_entry(w, &x->e) == 0);
		raft_ent_unref(x);
	}
}

/*
 * A follower restores a snapshot the leader sent: the marker follows the
 * older entries it replaces, beyond them or on a conflicting one, and the
 * new entries start after it. Recovery keeps the new log only.
 */
static void test_snapshot_restore(void)
{
	char dir[512];
	struct raft_conf c = {.n = 1, .ids = {7}};
	struct wal_state st;
	struct wal *w;

	/* Beyond our log: entries 1..10, then a snapshot at 50. */
	fresh(dir, sizeof(dir), "restore_beyond");
	w = create3(dir);
	save_range(w, 1, 4, 10);
	CHECK(wal_save_hardstate(w, 1, 0, 10) == 0);
	CHECK(wal_sync(w, true) == 0);
	CHECK(wal_save_snapshot(w, 50, 2, &c) == 0);
	save_range(w, 2, 51, 55);
	CHECK(wal_save_hardstate(w, 2, 0, 50) == 0);
	CHECK(wal_sync(w, true) == 0);
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(!st.repaired && st.base_index == 50 && st.base_term == 2);
	CHECK(st.commit == 50 && st.n_ents == 5);
	for (uint64_t i = 51; i <= 55; i++)
		CHECK(ent_ok(st.ents[i - 51], 2, i, 30));
	wal_state_done(&st);
	wal_free(w);

	/* On a conflicting entry, nothing after it yet: 1..10 at term 1
	 * (3 committed), a snapshot at 8 of term 2. The stale 9 and 10 must
	 * not come back. */
	fresh(dir, sizeof(dir), "restore_conflict");
	w = create3(dir);
	save_range(w, 1, 4, 10);
	CHECK(wal_sync(w, true) == 0);
	CHECK(wal_save_snapshot(w, 8, 2, &c) == 0);
	CHECK(wal_save_hardstate(w, 2, 0, 8) == 0);
	CHECK(wal_sync(w, true) == 0);
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.base_index == 8 && st.base_term == 2 && st.n_ents == 0);
	CHECK(st.commit == 8);
	wal_state_done(&st);
	/* Appends after recovery follow the snapshot. */
	save_range(w, 2, 9, 12);
	CHECK(wal_sync(w, true) == 0);
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.base_index == 8 && st.n_ents == 4);
	CHECK(ent_ok(st.ents[0], 2, 9, 30) && ent_ok(st.ents[3], 2, 12, 30));
	wal_state_done(&st);
	wal_free(w);

	/* Across segments: the marker also heads the next segment. */
	fresh(dir, sizeof(dir), "restore_segs");
	w = create3(dir);
	wal_set_segment_bytes(w, 2048);
	for (uint64_t i = 4; i <= 200; i += 10) {
		save_range(w, 1, i, i + 9);
		CHECK(wal_sync(w, false) == 0);
	}
	CHECK(wal_save_snapshot(w, 1000, 3, &c) == 0);
	CHECK(wal_sync(w, false) == 0);
	for (uint64_t i = 1001; i <= 1200; i += 10) {
		save_range(w, 3, i, i + 9);
		CHECK(wal_sync(w, false) == 0);
	}
	CHECK(wal_save_hardstate(w, 3, 0, 1100) == 0);
	CHECK(wal_sync(w, true) == 0);
	CHECK(wal_segments(w) > 4);
	wal_free(w);
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(!st.repaired && st.base_index == 1000 && st.n_ents == 200);
	for (uint64_t i = 1001; i <= 1200; i++)
		CHECK(ent_ok(st.ents[i - 1001], 3, i, 30));
	wal_state_done(&st);
	wal_free(w);
}

static void test_atomic_create(void)
{
	char dir[512], tmp[600], junk[700];
	fresh(dir, sizeof(dir), "atomic");
	/* A crashed creation left a partial wal.tmp: not initialised. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", dir);
	CHECK(mkdir(tmp, 0700) == 0);
	snprintf(junk, sizeof(junk), "%s/0000000000000000-0000000000000000.wal", tmp);
	spit(junk, (const uint8_t *)"garbage", 7);
	CHECK(wal_exists(dir) == 0);
	struct wal *w = create3(dir);
	CHECK(wal_exists(dir) == 1);
	CHECK(access(tmp, F_OK) < 0 && errno == ENOENT);
	wal_free(w);
	struct wal_state st;
	CHECK(wal_open(dir, &st, &w) == 0);
	CHECK(st.n_ents == 3 && st.commit == 3 && st.term == 1);
	wal_state_done(&st);
	wal_free(w);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/test_wal.XXXXXX", t ? t : "/tmp");
	CHECK(mkdtemp(root));
	test_create_reopen();
	test_torn_tail();
	test_bit_flips();
	test_segments();
	test_snapshot_restore();
	test_atomic_create();
	rm_rf(root);
	printf("wal: all passed\n");
	return 0;
}
