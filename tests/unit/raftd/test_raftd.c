/*
 * raftd end to end over real socketpairs: this test plays the supervisor,
 * gatewayd and storaged around a forked raftd_main. Bootstrap of a lone
 * member, proposals applied in order (from gatewayd, and from storaged as
 * its lease revokes are), a failed proposal answered to whoever sent it,
 * reads, /metrics, restart from the WAL with storaged resuming from its
 * applied index, refusal to start uninitialised, malformed peer messages
 * dropped.
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.pb-c.h"
#include "link.h"
#include "metrics.h"
#include "proc.h"
#include "sim.h"

static struct event_base *base;
static char datadir[256];

struct fake {
	pid_t pid;
	struct link *sup, *gw, *st;
	bool ready, fatal;
	char fatal_msg[512];
	uint64_t leader, term, commit;
	uint64_t applied_next; /* next index storaged expects */
	uint64_t last_term;
	int n_apply_frames;
	uint64_t props_seen;   /* EntryNormal entries with 8-byte data */
	uint64_t prop_expect;  /* next proposal value expected */
	int reads_ok;
	uint64_t read_index;
	int prop_errs;
	int st_prop_errs;     /* MSG_PROPOSE_ERR on the storaged link */
	uint64_t st_err_id;
	uint32_t st_err_code;
	Ipc__Metrics *metrics; /* the last MSG_METRICS_RESP */
	uint64_t metrics_id;
};

static struct fake F;

static void sup_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		    int fd, void *arg)
{
	(void)l, (void)arg, (void)fd;
	if (h->type == MSG_READY)
		F.ready = true;
	if (h->type == MSG_FATAL) {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, b, h->len);
		CHECK(e);
		snprintf(F.fatal_msg, sizeof(F.fatal_msg), "%s", e->message);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		F.fatal = true;
	}
}

static void gw_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		   int fd, void *arg)
{
	(void)l, (void)arg, (void)fd;
	switch (h->type) {
	case MSG_RAFT_STATE: {
		Ipc__RaftState *s = MSG_UNPACK(Ipc__RaftState, ipc__raft_state, b, h->len);
		CHECK(s);
		F.leader = s->leader;
		F.term = s->term;
		F.commit = s->commit;
		protobuf_c_message_free_unpacked(&s->base, NULL);
		break;
	}
	case MSG_READINDEX_RESP: {
		Ipc__ReadIndexResp *r =
			MSG_UNPACK(Ipc__ReadIndexResp, ipc__read_index_resp, b, h->len);
		CHECK(r && !r->error);
		F.reads_ok++;
		F.read_index = r->index;
		protobuf_c_message_free_unpacked(&r->base, NULL);
		break;
	}
	case MSG_PROPOSE_ERR: {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, b, h->len);
		CHECK(e);
		if (F.prop_errs++ == 0)
			fprintf(stderr, "proposal error: %u %s\n", e->code, e->message);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		break;
	}
	case MSG_METRICS_RESP: {
		Ipc__Metrics *m = MSG_UNPACK(Ipc__Metrics, ipc__metrics, b, h->len);
		CHECK(m);
		if (F.metrics)
			protobuf_c_message_free_unpacked(&F.metrics->base, NULL);
		F.metrics = m;
		F.metrics_id = h->id;
		break;
	}
	default:
		CHECK(h->type == MSG_RAFT_MSG);
	}
}

static void st_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		   int fd, void *arg)
{
	(void)l, (void)arg, (void)fd;
	if (h->type == MSG_RAFT_STATE)
		return;
	if (h->type == MSG_PROPOSE_ERR) {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, b, h->len);
		CHECK(e);
		F.st_prop_errs++;
		F.st_err_id = h->id;
		F.st_err_code = e->code;
		protobuf_c_message_free_unpacked(&e->base, NULL);
		return;
	}
	CHECK(h->type == MSG_APPLY);
	Ipc__ApplyBatch *a = MSG_UNPACK(Ipc__ApplyBatch, ipc__apply_batch, b, h->len);
	CHECK(a && a->n_entries > 0);
	F.n_apply_frames++;
	for (size_t i = 0; i < a->n_entries; i++) {
		const Raftpb__Entry *e = a->entries[i];
		/* In order, no gaps, no repeats. */
		CHECK(e->index == F.applied_next);
		CHECK(e->term >= F.last_term);
		F.applied_next++;
		F.last_term = e->term;
		if (e->type == RAFTPB__ENTRY_TYPE__EntryNormal && e->data.len == 8) {
			uint64_t v;
			memcpy(&v, e->data.data, 8);
			CHECK(v == F.prop_expect);
			F.prop_expect++;
			F.props_seen++;
		}
	}
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void on_close(struct link *l, void *arg)
{
	(void)l, (void)arg;
}

static bool wait_for(bool (*cond)(void), int ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (cond())
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return false;
		usleep(500);
	}
}

static void start(bool bootstrap)
{
	int sp[2], gp[2], stp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, gp) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, stp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sp[0]), close(gp[0]), close(gp[1]), close(stp[0]), close(stp[1]);
		if (sp[1] != PROC_SUPERVISOR_FD) {
			dup2(sp[1], PROC_SUPERVISOR_FD);
			close(sp[1]);
		}
		char *argv[] = {"raftd", NULL};
		exit(raftd_main(1, argv));
	}
	close(sp[1]);
	memset(&F.ready, 0, sizeof(F) - offsetof(struct fake, ready));
	F.pid = pid;
	F.sup = link_new(base, sp[0], "sup", 0, sup_msg, on_close, NULL);
	F.gw = link_new(base, gp[0], "gw", 0, gw_msg, on_close, NULL);
	F.st = link_new(base, stp[0], "st", 0, st_msg, on_close, NULL);

	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
	Etcdserverpb__Member *ms[] = {&m};
	char *purl = "http://127.0.0.1:2380";
	m.id = 0x1234;
	m.name = "default";
	m.n_peerurls = 1;
	m.peerurls = &purl;
	Ipc__WorkerConfig c = IPC__WORKER_CONFIG__INIT;
	c.name = "default";
	c.data_dir = datadir;
	c.member_id = 0x1234;
	c.cluster_id = 0x5678;
	c.bootstrap = bootstrap;
	c.n_initial_members = 1;
	c.initial_members = ms;
	c.heartbeat_interval_ms = 10;
	c.election_timeout_ms = 100;
	c.snapshot_count = 100;
	CHECK(link_send_pb(F.sup, MSG_CONFIG, 0, &c.base) == 0);
	Ipc__ProcFd pf = IPC__PROC_FD__INIT;
	pf.role = PROC_GATEWAYD;
	CHECK(link_send_fd(F.sup, MSG_PROCFD, 0, &pf.base, gp[1]) == 0);
	pf.role = PROC_STORAGED;
	CHECK(link_send_fd(F.sup, MSG_PROCFD, 0, &pf.base, stp[1]) == 0);
	CHECK(link_send(F.sup, MSG_START, 0, NULL, 0) == 0);
}

static void drop_metrics(void)
{
	if (F.metrics)
		protobuf_c_message_free_unpacked(&F.metrics->base, NULL);
	F.metrics = NULL;
}

static void stop(void)
{
	drop_metrics();
	kill(F.pid, SIGTERM);
	int status;
	CHECK(waitpid(F.pid, &status, 0) == F.pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	link_free(F.sup);
	link_free(F.gw);
	link_free(F.st);
}

static bool c_ready(void) { return F.ready || F.fatal; }
static bool c_leader(void) { return F.leader == 0x1234; }
static uint64_t want_props, want_reads, want_next;
static bool c_props(void) { return F.props_seen >= want_props; }
static bool c_reads(void) { return (uint64_t)F.reads_ok >= want_reads; }
static bool c_next(void) { return F.applied_next >= want_next; }

static void applied(uint64_t index)
{
	Ipc__Applied a = IPC__APPLIED__INIT;
	a.index = index;
	a.durable_index = index;
	CHECK(link_send_pb(F.st, MSG_APPLIED, 0, &a.base) == 0);
	F.applied_next = index + 1;
}

static void propose(uint64_t v)
{
	CHECK(link_send(F.gw, MSG_PROPOSE, 1000 + v, &v, sizeof(v)) == 0);
}

static bool c_st_err(void) { return F.st_prop_errs > 0; }
static bool c_metrics(void) { return F.metrics != NULL; }

/* The samples named name (label l="v" if l is set); exactly one expected. */
static const Ipc__Metric *metric(const char *name, const char *l,
				 const char *v)
{
	const Ipc__Metric *found = NULL;
	for (size_t i = 0; i < F.metrics->n_metrics; i++) {
		const Ipc__Metric *m = F.metrics->metrics[i];
		if (strcmp(m->name, name) != 0)
			continue;
		if (l && !(m->n_label_names == 1 && strcmp(m->label_names[0], l) == 0 &&
			   strcmp(m->label_values[0], v) == 0))
			continue;
		if (found)
			fprintf(stderr, "metric %s twice\n", name);
		CHECK(!found);
		found = m;
	}
	if (!found)
		fprintf(stderr, "metric %s missing\n", name);
	CHECK(found);
	return found;
}

static double value(const char *name, uint32_t type)
{
	const Ipc__Metric *m = metric(name, NULL, NULL);
	CHECK(m->type == type && m->n_label_names == 0);
	return m->value;
}

static void ask_metrics(uint64_t id)
{
	drop_metrics();
	CHECK(link_send(F.gw, MSG_METRICS, id, NULL, 0) == 0);
	CHECK(wait_for(c_metrics, 5000));
	CHECK(F.metrics_id == id);
}

/*
 * raftd's /metrics part after the first run's writes: etcd's names and types
 * with values that follow from what the test did.
 */
static void check_metrics(uint64_t commit, uint64_t failed)
{
	ask_metrics(77);
	CHECK(value("etcd_server_has_leader", METRIC_GAUGE) == 1);
	CHECK(value("etcd_server_is_leader", METRIC_GAUGE) == 1);
	CHECK(value("etcd_server_is_learner", METRIC_GAUGE) == 0);
	/* This run's election only: the counter starts again with raftd. */
	CHECK(value("etcd_server_leader_changes_seen_total", METRIC_COUNTER) == 1);
	CHECK(value("etcd_server_proposals_committed_total", METRIC_GAUGE) ==
	      (double)commit);
	CHECK(value("etcd_server_proposals_pending", METRIC_GAUGE) == 0);
	CHECK(value("etcd_server_proposals_failed_total", METRIC_COUNTER) ==
	      (double)failed);
	CHECK(value("etcd_server_read_indexes_failed_total", METRIC_COUNTER) == 0);
	CHECK(value("etcd_server_slow_read_indexes_total", METRIC_COUNTER) == 0);
	const Ipc__Metric *id = metric("etcd_server_id", "server_id", "1234");
	CHECK(id->type == METRIC_GAUGE && id->value == 1);

	/* Group commit: far fewer fsyncs than writes, but some, each timed. */
	const Ipc__Metric *h = metric("etcd_disk_wal_fsync_duration_seconds",
				      NULL, NULL);
	CHECK(h->type == METRIC_HISTOGRAM);
	CHECK(h->count > 0 && h->count <= commit + 4);
	CHECK(h->sum > 0);
	CHECK(h->n_bucket_bounds == 14 && h->n_bucket_counts == 14);
	CHECK(h->bucket_bounds[0] == 0.001 && h->bucket_bounds[13] == 8.192);
	for (size_t i = 1; i < 14; i++)
		CHECK(h->bucket_counts[i] >= h->bucket_counts[i - 1]);
	CHECK(h->bucket_counts[13] <= h->count);
	/* Each 8-byte proposal takes a record of more than 20 bytes. */
	double wb = value("etcd_disk_wal_write_bytes_total", METRIC_GAUGE);
	CHECK(wb > 20.0 * (double)commit);

	const Ipc__Metric *rss = metric("process_resident_memory_bytes",
					"process", "raftd");
	CHECK(rss->value > 100000);
	CHECK(metric("process_open_fds", "process", "raftd")->value >= 5);

	/* gatewayd renders the part as it comes. */
	size_t len;
	const Ipc__Metrics *parts[] = {F.metrics};
	char *text = metrics_render(parts, 1, &len);
	CHECK(text);
	CHECK(strstr(text, "# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n"));
	CHECK(strstr(text, "etcd_server_has_leader 1\n"));
	CHECK(strstr(text, "etcd_server_id{server_id=\"1234\"} 1\n"));
	free(text);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(datadir, sizeof(datadir), "/tmp/test_raftd.XXXXXX");
	CHECK(mkdtemp(datadir));
	base = event_base_new();

	/* Uninitialised and not told to bootstrap: a fatal error. */
	start(false);
	CHECK(wait_for(c_ready, 5000) && F.fatal);
	CHECK(strstr(F.fatal_msg, "bootstrap"));
	waitpid(F.pid, NULL, 0);
	link_free(F.sup), link_free(F.gw), link_free(F.st);

	/* A lone member leads at once and applies what it commits. */
	start(true);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	CHECK(wait_for(c_leader, 5000));
	CHECK(F.term == 2);
	/* Peers' bytes come from the network: one that does not decode, or
	 * that the core refuses, is dropped and raftd goes on. */
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x08};
	for (int i = 0; i < 5; i++)
		CHECK(link_send(F.gw, MSG_RAFT_MSG, 0, garbage, sizeof(garbage)) == 0);
	Raftpb__Message rm = RAFTPB__MESSAGE__INIT;
	rm.type = RAFTPB__MESSAGE_TYPE__MsgUnreachable;
	rm.to = 0x1234;
	rm.from = 0x9999;
	CHECK(link_send_pb(F.gw, MSG_RAFT_MSG, 0, &rm.base) == 0);
	applied(0);
	want_next = 3; /* the AddNode entry and the leader's empty entry */
	CHECK(wait_for(c_next, 5000));
	for (uint64_t v = 0; v < 500; v++)
		propose(v);
	want_props = 500;
	if (!wait_for(c_props, 10000))
		fprintf(stderr, "next %llu seen %llu errs %d commit %llu\n",
			(unsigned long long)F.applied_next,
			(unsigned long long)F.props_seen, F.prop_errs,
			(unsigned long long)F.commit);
	CHECK(F.props_seen == 500);
	CHECK(F.prop_errs == 0);
	/* storaged proposes too (lease revokes): committed and applied in
	 * the same order as gatewayd's. */
	uint64_t v500 = 500;
	CHECK(link_send(F.st, MSG_PROPOSE, 7, &v500, sizeof(v500)) == 0);
	want_props = 501;
	CHECK(wait_for(c_props, 5000));
	/* Its failures go back to storaged, not to gatewayd. */
	static uint8_t big[3u << 20];
	CHECK(link_send(F.st, MSG_PROPOSE, 8, big, sizeof(big)) == 0);
	CHECK(wait_for(c_st_err, 5000));
	CHECK(F.st_err_id == 8 && F.st_err_code == 3 && F.prop_errs == 0);
	for (uint64_t i = 0; i < 20; i++)
		CHECK(link_send(F.gw, MSG_READINDEX, 1 + i, NULL, 0) == 0);
	want_reads = 20;
	CHECK(wait_for(c_reads, 5000));
	CHECK(F.read_index == 503);
	check_metrics(503, 1);
	stop();

	/* Restart: the log comes back; storaged resumes after its index. */
	start(false);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	CHECK(wait_for(c_leader, 5000));
	CHECK(F.term == 3);
	applied(300);
	F.prop_expect = 298; /* entries 3.. carry values 0.. */
	want_next = 505;     /* up to the new leader's empty entry */
	CHECK(wait_for(c_next, 5000));
	CHECK(F.props_seen == 203);
	/* Counters start again; the commit index is the log's. */
	ask_metrics(78);
	CHECK(value("etcd_server_leader_changes_seen_total", METRIC_COUNTER) == 1);
	CHECK(value("etcd_server_proposals_committed_total", METRIC_GAUGE) == 504);
	CHECK(value("etcd_server_proposals_failed_total", METRIC_COUNTER) == 0);
	for (uint64_t v = 501; v < 600; v++)
		propose(v);
	want_props = 302;
	CHECK(wait_for(c_props, 10000));

	/* Compaction: storaged made everything durable; the log keeps the
	 * 5000-entry margin and drops the rest (snapshot_count is 100). */
	for (uint64_t v = 600; v < 5700; v++)
		propose(v);
	want_props = 302 + 5100;
	CHECK(wait_for(c_props, 20000));
	uint64_t last = F.applied_next - 1;
	Ipc__Applied a = IPC__APPLIED__INIT;
	a.index = last;
	a.durable_index = last;
	CHECK(link_send_pb(F.st, MSG_APPLIED, 0, &a.base) == 0);
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK), usleep(1000);
	stop();

	/* Restart after compaction: what storaged lacks is still there. */
	start(false);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	applied(last - 4000);
	/* Entry i carries value i - 4 past the second leader's entry (503). */
	F.prop_expect = last - 3999 - 4;
	want_next = last + 2;
	CHECK(wait_for(c_next, 5000));
	stop();
	/* A storaged behind the compaction point is a bug: raftd stops. */
	start(false);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	applied(10);
	for (int i = 0; i < 200 && !F.fatal; i++)
		event_base_loop(base, EVLOOP_NONBLOCK), usleep(1000);
	CHECK(F.fatal && strstr(F.fatal_msg, "log starts after"));
	waitpid(F.pid, NULL, 0);
	link_free(F.sup), link_free(F.gw), link_free(F.st);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", datadir);
	CHECK(system(cmd) == 0);
	event_base_free(base);
	printf("raftd: all passed\n");
	return 0;
}
