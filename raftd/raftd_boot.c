/*
 * raftd's start: a new member writes its WAL with the initial members as
 * committed ConfChange entries (term 1, indexes 1..n, as etcd bootstraps);
 * a known member recovers its WAL. Either way the Raft core is built from
 * what the WAL holds, and a lone voter takes leadership at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "raftd.h"
#include "rpc.pb-c.h"

static int cmp_member(const void *a, const void *b)
{
	const Etcdserverpb__Member *x = *(Etcdserverpb__Member *const *)a;
	const Etcdserverpb__Member *y = *(Etcdserverpb__Member *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The bootstrap log: AddNode per initial member, sorted by ID. */
static int bootstrap_entries(const Ipc__WorkerConfig *c,
			     struct raft_ent ***ret_v, size_t *ret_n)
{
	size_t n = c->n_initial_members;
	Etcdserverpb__Member **m = calloc(n + 1, sizeof(*m));
	struct raft_ent **v = calloc(n + 1, sizeof(*v));
	int rc = -ENOMEM;
	if (!m || !v)
		goto fail;
	memcpy(m, c->initial_members, n * sizeof(*m));
	qsort(m, n, sizeof(*m), cmp_member);
	for (size_t i = 0; i < n; i++) {
		size_t cl = protobuf_c_message_get_packed_size(&m[i]->base);
		uint8_t *ctx = malloc(cl + 1);
		if (!ctx)
			goto fail;
		protobuf_c_message_pack(&m[i]->base, ctx);
		Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
		cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode;
		cc.nodeid = m[i]->id;
		cc.context.data = ctx;
		cc.context.len = cl;
		size_t len = raftpb__conf_change__get_packed_size(&cc);
		uint8_t *buf = malloc(len + 1);
		if (!buf) {
			free(ctx);
			goto fail;
		}
		raftpb__conf_change__pack(&cc, buf);
		v[i] = raft_ent_new(1, i + 1, RAFTPB__ENTRY_TYPE__EntryConfChange,
				    buf, len);
		free(buf);
		free(ctx);
		if (!v[i])
			goto fail;
	}
	free(m);
	*ret_v = v;
	*ret_n = n;
	return 0;
fail:
	for (size_t i = 0; v && i < n; i++)
		raft_ent_unref(v[i]);
	free(v);
	free(m);
	return rc;
}

static char *wal_path(const Ipc__WorkerConfig *c)
{
	char *p = NULL;
	if (c->wal_dir && c->wal_dir[0])
		return strdup(c->wal_dir);
	if (asprintf(&p, "%s/member/wal", c->data_dir) < 0)
		return NULL;
	return p;
}

static void log_new_raft(struct raftd *d)
{
	struct raft_conf c;
	char peers[RAFT_MAX_NODES * 18 + 4] = "";
	size_t k = 0;
	raft_conf_get(d->r, &c);
	for (int i = 0; i < c.n; i++)
		k += (size_t)snprintf(peers + k, sizeof(peers) - k, "%s%llx",
				      i ? " " : "", (unsigned long long)c.ids[i]);
	uint64_t li = raft_last_index(d->r);
	const Raftpb__Entry *e = raft_entry(d->r, li);
	log_info("raft", "newRaft %llx [peers: [%s], term: %llu, commit: %llu, "
		 "applied: %llu, lastindex: %llu, lastterm: %llu]",
		 (unsigned long long)d->id, peers,
		 (unsigned long long)raft_term(d->r),
		 (unsigned long long)raft_commit(d->r),
		 (unsigned long long)raft_applied(d->r), (unsigned long long)li,
		 (unsigned long long)(e ? e->term : raft_base_term(d->r)));
}

int raftd_boot(struct raftd *d)
{
	struct worker *w = d->w;
	const Ipc__WorkerConfig *c = w->cfg;
	struct raft_boot b;
	memset(&b, 0, sizeof(b));
	char *dir = wal_path(c);
	if (!dir)
		worker_fatal(w, "raftd: out of memory");
	int ex = wal_exists(dir);
	if (ex < 0)
		worker_fatal(w, "raftd: %s: %s", dir, strerror(-ex));
	if (ex == 0) {
		if (!c->join && (!c->bootstrap || c->n_initial_members == 0))
			worker_fatal(w, "raftd: %s does not exist and this member "
				     "was not asked to bootstrap", dir);
		/* member/ holds more than the WAL; it may not be there yet. */
		char *parent = strdup(dir), *s = parent ? strrchr(parent, '/') : NULL;
		if (s && s != parent) {
			*s = 0;
			mkdir(parent, 0700);
		}
		free(parent);
		/*
		 * A joining member starts with an empty log and no
		 * configuration, at term 0, as etcd's: it learns the members
		 * from the leader's log (or snapshot) and never campaigns
		 * before it is in it.
		 */
		struct raft_ent **v = NULL;
		size_t n = 0;
		int rc = c->join ? 0 : bootstrap_entries(c, &v, &n);
		if (rc == 0)
			rc = wal_create(dir, d->id, d->cluster_id, v, n,
					c->join ? 0 : 1, n, &d->wal);
		if (rc < 0)
			worker_fatal(w, "raftd: create %s: %s", dir, strerror(-rc));
		/* "starting member" is the supervisor's line (it knows first). */
		b.term = c->join ? 0 : 1;
		b.commit = n;
		b.ents = v;
		b.n_ents = n;
	} else {
		struct wal_state st;
		int rc = wal_open(dir, &st, &d->wal);
		if (rc < 0)
			worker_fatal(w, "raftd: read %s: %s", dir,
				     rc == -EBADMSG ? "wal: corrupt log"
						    : strerror(-rc));
		if (d->id && st.member_id != d->id)
			worker_fatal(w, "raftd: %s belongs to member %llx, not %llx",
				     dir, (unsigned long long)st.member_id,
				     (unsigned long long)d->id);
		d->id = st.member_id;
		d->cluster_id = st.cluster_id;
		if (st.repaired)
			log_warn("wal", "cut a torn or corrupt tail off %s", dir);
		log_info("etcdserver", "restarting member %llx in cluster %llx "
			 "at commit index %llu", (unsigned long long)d->id,
			 (unsigned long long)d->cluster_id,
			 (unsigned long long)st.commit);
		b.term = st.term;
		b.vote = st.vote;
		b.commit = st.commit;
		b.base_index = st.base_index;
		b.base_term = st.base_term;
		b.base_conf = st.base_conf;
		b.ents = st.ents;
		b.n_ents = st.n_ents;
		st.n_ents = 0;
		st.ents = NULL;
	}
	struct raft_config rc = {
		.id = d->id,
		.heartbeat_tick = 1,
		.election_tick = d->election_ticks,
		.pre_vote = true,
		.check_quorum = true,
		.seed = d->id ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid(),
		.max_msg_bytes = 1u << 20, /* etcd's maxSizePerMsg */
		.max_inflight = RAFT_MAX_INFLIGHT,
	};
	int err = raft_new(&rc, &b, &d->r);
	free(b.ents);
	free(dir);
	if (err < 0)
		worker_fatal(w, "raftd: cannot start raft: %s", strerror(-err));
	log_new_raft(d);
	log_info("raft", "%llx became follower at term %llu",
		 (unsigned long long)d->id, (unsigned long long)raft_term(d->r));
	/* Apply the committed configuration, then a lone voter leads. */
	raftd_flush(d);
	struct raft_conf now;
	raft_conf_get(d->r, &now);
	bool member = false;
	for (int i = 0; i < now.n; i++)
		member |= now.ids[i] == d->id;
	if (now.n > 0 && !member) {
		/* Its own removal is in its log: it may not come back. */
		raftd_removed_exit(d);
	}
	if (raft_voters(d->r) == 1 && !raft_is_learner(d->r)) {
		struct raft_conf conf;
		raft_conf_get(d->r, &conf);
		for (int i = 0; i < conf.n; i++)
			if (conf.ids[i] == d->id && !conf.learner[i])
				raft_campaign(d->r);
		raftd_flush(d);
	}
	return 0;
}
