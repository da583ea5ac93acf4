/* The simulated cluster of the Raft core tests (see sim.h). */
#include <string.h>

#include "rpc.pb-c.h"
#include "sim.h"

uint64_t sim_rand(struct sim *s)
{
	/* splitmix64 */
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t hash(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void disk_append(struct sim_disk *d, struct raft_ent *x)
{
	uint64_t idx = x->e.index;
	CHECK(idx > d->base_index);
	while (d->n > 0 && d->base_index + d->n >= idx)
		raft_ent_unref(d->ents[--d->n]);
	CHECK(d->base_index + d->n + 1 == idx);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
	}
	d->ents[d->n++] = raft_ent_ref(x);
}

static void disk_free(struct sim_disk *d)
{
	for (size_t i = 0; i < d->n; i++)
		raft_ent_unref(d->ents[i]);
	free(d->ents);
	memset(d, 0, sizeof(*d));
}

void sim_restart(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	struct sim_disk *d = &nd->disk;
	struct raft_config c = {
		.id = nd->id, .election_tick = 10, .heartbeat_tick = 1,
		.pre_vote = true, .check_quorum = true,
		.seed = sim_rand(s) | 1, .max_msg_bytes = 256, .max_inflight = 8,
	};
	struct raft_boot b = {
		.term = d->term, .vote = d->vote, .commit = d->commit,
		.base_index = d->base_index, .base_term = d->base_term,
		.base_conf = d->base_conf,
	};
	b.ents = malloc((d->n + 1) * sizeof(*b.ents));
	for (size_t k = 0; k < d->n; k++)
		b.ents[k] = raft_ent_ref(d->ents[k]);
	b.n_ents = d->n;
	CHECK(raft_new(&c, &b, &nd->r) == 0);
	free(b.ents);
	nd->applied = d->base_index;
}

void sim_init(struct sim *s, int n, int voters, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->rng = seed;
	for (int i = 0; i < n; i++) {
		struct sim_node *nd = &s->nodes[i];
		nd->id = (uint64_t)i + 1;
		if (i < voters) {
			/* The bootstrap log: AddNode per member, committed. */
			for (int k = 0; k < voters; k++) {
				Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
				cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode;
				cc.nodeid = (uint64_t)k + 1;
				uint8_t buf[64];
				size_t len = raftpb__conf_change__pack(&cc, buf);
				struct raft_ent *x = raft_ent_new(
					1, (uint64_t)k + 1,
					RAFTPB__ENTRY_TYPE__EntryConfChange, buf, len);
				disk_append(&nd->disk, x);
				raft_ent_unref(x);
			}
			nd->disk.term = 1;
			nd->disk.commit = (uint64_t)voters;
		}
		sim_restart(s, i);
	}
}

void sim_done(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		raft_free(s->nodes[i].r);
		disk_free(&s->nodes[i].disk);
	}
	for (size_t k = 0; k < s->n_net; k++)
		free(s->net[k].buf);
	free(s->net);
	free(s->committed_term);
	free(s->committed_hash);
}

void sim_crash(struct sim *s, int i)
{
	raft_free(s->nodes[i].r);
	s->nodes[i].r = NULL;
}

static struct sim_node *node_by_id(struct sim *s, uint64_t id)
{
	if (id < 1 || id > (uint64_t)s->n)
		return NULL;
	return &s->nodes[id - 1];
}

static struct sim_packet *net_add(struct sim *s)
{
	if (s->n_net == s->cap_net) {
		s->cap_net = s->cap_net ? s->cap_net * 2 : 256;
		s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
	}
	struct sim_packet *p = &s->net[s->n_net++];
	memset(p, 0, sizeof(*p));
	return p;
}

/* The transport tells leader `to` how its MsgSnap to peer ended. */
static void report_snap(struct sim *s, uint64_t to, uint64_t peer, bool failed)
{
	if (s->no_snap_reports)
		return;
	struct sim_packet *p = net_add(s);
	p->to = to;
	p->report = true;
	p->peer = peer;
	p->failed = failed;
}

static void send(struct sim *s, const Raftpb__Message *m)
{
	struct sim_node *from = node_by_id(s, m->from);
	struct sim_node *to = node_by_id(s, m->to);
	bool snap = m->type == RAFTPB__MESSAGE_TYPE__MsgSnap;
	CHECK(from && m->to != m->from);
	if (!to || from->isolated || to->isolated) {
		/* Could not even connect: a snapshot fails at once. */
		if (snap)
			report_snap(s, m->from, m->to, true);
		return;
	}
	struct sim_packet *p = net_add(s);
	p->to = m->to;
	p->from = m->from;
	p->snap = snap;
	p->len = raftpb__message__get_packed_size(m);
	p->buf = malloc(p->len + 1);
	raftpb__message__pack(m, p->buf);
}

static void record_commit(struct sim *s, const Raftpb__Entry *e)
{
	if (e->index >= s->n_committed) {
		size_t n = e->index * 2 + 16;
		s->committed_term = realloc(s->committed_term, n * sizeof(uint64_t));
		s->committed_hash = realloc(s->committed_hash, n * sizeof(uint32_t));
		memset(s->committed_term + s->n_committed, 0,
		       (n - s->n_committed) * sizeof(uint64_t));
		s->n_committed = n;
	}
	uint32_t h = hash(e->data.data, e->data.len) ^ (uint32_t)e->type;
	if (s->committed_term[e->index] == 0) {
		s->committed_term[e->index] = e->term;
		s->committed_hash[e->index] = h;
	} else {
		/* State machine safety: one entry per index, everywhere. */
		CHECK(s->committed_term[e->index] == e->term);
		CHECK(s->committed_hash[e->index] == h);
	}
}

/* Leader completeness: a new leader holds every committed entry. */
static void check_leader(struct sim *s, struct sim_node *nd)
{
	struct raft *r = nd->r;
	uint64_t t = raft_term(r);
	CHECK(t < 4096);
	if (s->leader_of_term[t] == 0)
		s->leader_of_term[t] = nd->id;
	CHECK(s->leader_of_term[t] == nd->id); /* election safety */
	for (uint64_t i = raft_base_index(r) + 1; i < s->n_committed; i++) {
		if (!s->committed_term[i])
			continue;
		const Raftpb__Entry *e = raft_entry(r, i);
		CHECK(e && e->term == s->committed_term[i]);
	}
}

void sim_process(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	while (nd->r && raft_has_ready(nd->r)) {
		struct raft_ready rd;
		CHECK(raft_ready(nd->r, &rd) == 0);
		for (size_t k = 0; k < rd.n_early; k++)
			send(s, rd.msgs[k]);
		if (rd.must_sync && (sim_rand(s) % 1000) < (uint64_t)s->crash_mid_pct) {
			raft_ready_clear(&rd);
			sim_crash(s, i);
			return;
		}
		struct sim_disk *d = &nd->disk;
		if (rd.has_snap) {
			for (size_t k = 0; k < d->n; k++)
				raft_ent_unref(d->ents[k]);
			d->n = 0;
			d->base_index = rd.snap_index;
			d->base_term = rd.snap_term;
			d->base_conf = rd.snap_conf;
			nd->applied = rd.snap_index;
		}
		for (size_t k = 0; k < rd.n_ents; k++)
			disk_append(d, rd.ents[k]);
		if (rd.hs_changed) {
			d->term = rd.term;
			d->vote = rd.vote;
			d->commit = rd.commit;
		}
		for (size_t k = rd.n_early; k < rd.n_msgs; k++)
			send(s, rd.msgs[k]);
		for (size_t k = 0; k < rd.n_committed; k++) {
			const Raftpb__Entry *e = &rd.committed[k]->e;
			CHECK(e->index == nd->applied + 1);
			nd->applied = e->index;
			record_commit(s, e);
			if (e->type == RAFTPB__ENTRY_TYPE__EntryConfChange) {
				Raftpb__ConfChange *cc = raftpb__conf_change__unpack(
					NULL, e->data.len, e->data.data);
				CHECK(cc);
				raft_apply_conf_change(nd->r, cc);
				raftpb__conf_change__free_unpacked(cc, NULL);
			}
		}
		for (size_t k = 0; k < rd.n_reads; k++) {
			CHECK(rd.reads[k].index <= raft_commit(nd->r) ||
			      raft_role(nd->r) != RAFT_LEADER);
			nd->reads_done++;
			nd->last_read_index = rd.reads[k].index;
		}
		nd->reads_dropped += rd.n_dropped_reads;
		bool became_leader = rd.soft_changed && rd.role == RAFT_LEADER;
		raft_advance(nd->r, &rd);
		raft_ready_clear(&rd);
		if (became_leader)
			check_leader(s, nd);
	}
}

void sim_settle(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		sim_process(s, i);
}

bool sim_deliver_one(struct sim *s)
{
	if (s->n_net == 0)
		return false;
	size_t k = (size_t)(sim_rand(s) % s->n_net);
	struct sim_packet p = s->net[k];
	s->net[k] = s->net[--s->n_net];
	struct sim_node *to = node_by_id(s, p.to);
	if (p.report) {
		/* Local to the leader (a restarted one hears a stale report,
		 * which must be harmless). */
		if (to->r) {
			raft_report_snapshot(to->r, p.peer, p.failed);
			s->snap_reports++;
			sim_process(s, (int)(p.to - 1));
		}
		return true;
	}
	bool lost = (int)(sim_rand(s) % 100) < s->loss_pct;
	bool delivered = to->r && !to->isolated && !lost;
	if (delivered) {
		Raftpb__Message *m = raftpb__message__unpack(NULL, p.len, p.buf);
		CHECK(m);
		raft_step(to->r, m);
		raftpb__message__free_unpacked(m, NULL);
		sim_process(s, (int)(p.to - 1));
	}
	/* As gatewayd: the snapshot was taken (answered 2xx), or not. */
	if (p.snap)
		report_snap(s, p.from, p.to, !delivered);
	free(p.buf);
	return true;
}

void sim_tick(struct sim *s, int i)
{
	if (!s->nodes[i].r)
		return;
	raft_tick(s->nodes[i].r);
	sim_process(s, i);
}

int sim_propose(struct sim *s, int i, uint64_t *ret_data)
{
	if (!s->nodes[i].r)
		return -1;
	uint64_t v = ++s->next_data;
	struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryNormal,
					  &v, sizeof(v));
	int rc = raft_propose(s->nodes[i].r, &x, 1);
	sim_process(s, i);
	if (ret_data)
		*ret_data = v;
	return rc;
}

int sim_propose_conf(struct sim *s, int i, Raftpb__ConfChangeType t, uint64_t id)
{
	if (!s->nodes[i].r)
		return -1;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.type = t;
	cc.nodeid = id;
	/* AddNode of a learner is a promotion: etcd's context says so. */
	struct raft_conf c;
	raft_conf_get(s->nodes[i].r, &c);
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
	uint8_t ctx[32], buf[96];
	m.id = id;
	for (int k = 0; k < c.n; k++)
		if (c.ids[k] == id && c.learner[k] &&
		    t == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode) {
			cc.context.data = ctx;
			cc.context.len = etcdserverpb__member__pack(&m, ctx);
		}
	size_t len = raftpb__conf_change__pack(&cc, buf);
	struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryConfChange,
					  buf, len);
	int rc = raft_propose(s->nodes[i].r, &x, 1);
	sim_process(s, i);
	return rc;
}

int sim_leader(struct sim *s)
{
	int best = -1;
	for (int i = 0; i < s->n; i++) {
		struct raft *r = s->nodes[i].r;
		if (r && raft_role(r) == RAFT_LEADER &&
		    (best < 0 || raft_term(r) > raft_term(s->nodes[best].r)))
			best = i;
	}
	return best;
}

/* Thesis 3.5 Log Matching: same index and term, same prefix. */
void sim_check_log_matching(struct sim *s)
{
	for (int a = 0; a < s->n; a++)
		for (int b = a + 1; b < s->n; b++) {
			struct raft *x = s->nodes[a].r, *y = s->nodes[b].r;
			if (!x || !y)
				continue;
			uint64_t lo = raft_base_index(x) > raft_base_index(y)
					      ? raft_base_index(x)
					      : raft_base_index(y);
			uint64_t hi = raft_last_index(x) < raft_last_index(y)
					      ? raft_last_index(x)
					      : raft_last_index(y);
			uint64_t i = hi;
			while (i > lo && raft_entry(x, i)->term != raft_entry(y, i)->term)
				i--;
			for (; i > lo; i--) {
				const Raftpb__Entry *g = raft_entry(x, i);
				const Raftpb__Entry *h = raft_entry(y, i);
				CHECK(g->term == h->term && g->type == h->type);
				CHECK(g->data.len == h->data.len);
				CHECK(g->data.len == 0 ||
				      memcmp(g->data.data, h->data.data,
					     g->data.len) == 0);
			}
		}
}
