/*
 * The supervisor's event loop: a typed table of children, one per worker
 * role; fresh socketpairs for a restarted worker's peer links; staged
 * shutdown. OpenBSD's parent process, except that one dead worker is
 * restarted rather than taking the whole daemon down.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "link.h"
#include "log.h"
#include "proc.h"
#include "spawn.h"
#include "sup_metrics.h"
#include "supervisor.h"

#define PKG "etcdmain"

struct sup;

struct child {
	struct sup *sup;
	enum proc_role role;
	pid_t pid;          /* 0 while not running */
	struct link *link;  /* our end of its fd 3; NULL while not running */
	int ready;
	/*
	 * Reaped, but its link still holds frames (a MSG_FATAL sent just
	 * before exiting): the death is handled when the link reaches EOF.
	 */
	int reaped;
	int status;
	uint64_t deaths[SUP_CRASH_LIMIT]; /* ring of recent death times (ms) */
	unsigned n_deaths;
	struct event *restart;
};

struct sup {
	struct event_base *base;
	const Ipc__WorkerConfig *wcfg;
	const struct sup_join *join; /* NULL once joined (or never joining) */
	const struct listener *ls;
	size_t n_ls;
	struct child ch[PROC_MAX];
	int all_ready_logged;
	int stopping;
	int handing_over; /* waiting for raftd's MSG_SHUTDOWN_DONE */
	int stage;
	int exit_code;
	struct event *stage_timer;
};

/* Which workers are linked to each other (docs/ARCHITECTURE.md, Links). */
static int linked(enum proc_role a, enum proc_role b)
{
	if (a > b) {
		enum proc_role t = a;
		a = b;
		b = t;
	}
	return (a == PROC_RAFTD && b == PROC_STORAGED) ||
	       (a == PROC_RAFTD && b == PROC_GATEWAYD) ||
	       (a == PROC_STORAGED && b == PROC_GATEWAYD);
}

/*
 * Whether this member runs role: a gateway or a v2 proxy is gatewayd alone
 * (and discoveryd while it looks up their cluster; afterwards it is not
 * restarted).
 */
static int wanted(const struct sup *s, enum proc_role role)
{
	if (s->wcfg->gateway || s->wcfg->proxy)
		return role == PROC_GATEWAYD || (s->join && role == PROC_DISCOVERYD);
	return 1;
}

/* Start and restart order; shutdown runs the stages below instead. */
static const enum proc_role start_order[] = {
	PROC_STORAGED, PROC_RAFTD, PROC_GATEWAYD, PROC_DISCOVERYD,
};

static const enum proc_role stop_stages[][2] = {
	{PROC_GATEWAYD, PROC_SUPERVISOR},
	{PROC_RAFTD, PROC_STORAGED},
	{PROC_DISCOVERYD, PROC_SUPERVISOR},
};
#define N_STAGES (sizeof(stop_stages) / sizeof(stop_stages[0]))

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void begin_stop(struct sup *s, int code, int hand_over);
static void child_died(struct sup *s, struct child *c);
static void run_stage(struct sup *s);
static void start_workers(struct sup *s, int discoveryd);

/* The leader hand-over before the stop stages is over (or given up). */
static void handover_done(struct sup *s)
{
	if (!s->handing_over)
		return;
	s->handing_over = 0;
	evtimer_del(s->stage_timer);
	run_stage(s);
}

/* Signals c if it is running and not yet reaped (its pid is still its own). */
static void signal_child(struct child *c, int sig)
{
	if (c->pid > 0 && !c->reaped)
		kill(c->pid, sig);
}

/* discoveryd has the cluster this new member joins (or why it cannot). */
static void join_result(struct sup *s, struct child *c, const uint8_t *body,
			size_t len)
{
	if (c->role != PROC_DISCOVERYD || !s->join) {
		log_warn(PKG, "unexpected MSG_JOIN_RESULT from %s", proc_name(c->role));
		return;
	}
	Ipc__JoinResult *r = MSG_UNPACK(Ipc__JoinResult, ipc__join_result, body, len);
	const Ipc__WorkerConfig *wcfg = NULL;
	if (!r) {
		log_crit(PKG, "bad MSG_JOIN_RESULT from discoveryd");
	} else if (r->error) {
		/* etcd's fatal line: exit 1 with nothing written. An empty
		 * message: discoveryd printed etcd's several lines itself. */
		if (r->error->message[0])
			log_crit(PKG, "%s", r->error->message);
	} else {
		int ok = s->join->joined(s->join->arg, r, &wcfg) == 0;
		r = NULL; /* joined()'s now */
		if (ok) {
			s->join = NULL;
			s->wcfg = wcfg;
			start_workers(s, 0);
		}
	}
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	if (s->join)
		begin_stop(s, 1, 0);
}

/* gatewayd's /metrics round id: our part, and discoveryd's if it runs. */
static void metrics_asked(struct sup *s, struct child *c, uint64_t id)
{
	struct child *dc = &s->ch[PROC_DISCOVERYD];
	if (c->role != PROC_GATEWAYD) {
		log_warn(PKG, "unexpected MSG_METRICS from %s", proc_name(c->role));
		return;
	}
	sup_metrics_send(c->link, id, dc->pid > 0 && !dc->reaped ? dc->pid : 0);
}

static void child_msg(struct link *l, const struct msg_hdr *hdr,
		      const uint8_t *body, int fd, void *arg)
{
	struct child *c = arg;
	struct sup *s = c->sup;
	(void)l;

	if (fd >= 0)
		close(fd);
	switch (hdr->type) {
	case MSG_READY:
		c->ready = 1;
		log_info(PKG, "%s (pid %d) is ready", proc_name(c->role), (int)c->pid);
		int all = 1;
		for (int r = PROC_RAFTD; r < PROC_MAX; r++)
			all &= s->ch[r].ready || !wanted(s, (enum proc_role)r);
		if (all && !s->all_ready_logged) {
			s->all_ready_logged = 1;
			log_info(PKG, "all workers are ready");
		}
		break;
	case MSG_FATAL: {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, body, hdr->len);
		/* Code 0: the member's work is over (removed from the cluster;
		 * the worker logged why), a clean stop as etcd's. */
		int done = e && e->code == 0;
		/* etcd's fatal errors read "etcd: <message>" on stderr. */
		if (!done) {
			fprintf(stderr, "etcd: %s\n",
				e && e->message ? e->message : "fatal error in a worker");
			fflush(stderr);
		}
		if (e)
			protobuf_c_message_free_unpacked(&e->base, NULL);
		/* A removed member has nothing to hand over. */
		begin_stop(s, done ? 0 : 1, 0);
		break;
	}
	case MSG_METRICS:
		metrics_asked(s, c, hdr->id);
		break;
	case MSG_JOIN_RESULT:
		join_result(s, c, body, hdr->len);
		break;
	case MSG_SHUTDOWN_DONE:
		if (c->role == PROC_RAFTD)
			handover_done(s);
		break;
	default:
		log_warn(PKG, "unexpected %s from %s", msg_type_name(hdr->type),
			 proc_name(c->role));
	}
}

static void child_close(struct link *l, void *arg)
{
	struct child *c = arg;
	if (c->link != l)
		return;
	c->link = NULL;
	link_free(l);
	if (c->reaped) {
		child_died(c->sup, c);
		return;
	}
	/*
	 * Usually the worker is exiting and SIGCHLD follows. Should it live
	 * on without its supervisor link, it is of no use: ask it to go (it
	 * is restarted on SIGCHLD). Never during a shutdown, where workers
	 * close their link before they are done (storaged closing RocksDB).
	 */
	if (!c->sup->stopping)
		signal_child(c, SIGTERM);
}

static int send_procfd(struct link *l, enum proc_role other, int fd)
{
	Ipc__ProcFd m = IPC__PROC_FD__INIT;
	m.role = (uint32_t)other;
	return link_send_fd(l, MSG_PROCFD, 0, &m.base, fd);
}

/* Spawns role and queues its configuration, peer links and listeners. */
static int start_child(struct sup *s, struct child *c)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = spawn_worker(c->role, sv[1]);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return (int)pid;
	}
	c->pid = pid;
	c->ready = 0;
	c->reaped = 0;
	c->link = link_new(s->base, sv[0], proc_name(c->role), 0, child_msg,
			   child_close, c);
	if (!c->link) {
		kill(pid, SIGKILL);
		return -ENOMEM;
	}
	link_send_pb(c->link, MSG_CONFIG, 0, &s->wcfg->base);

	/* A fresh pair for each link to a running peer; it gets the other end. */
	for (int r = PROC_RAFTD; r < PROC_MAX; r++) {
		struct child *p = &s->ch[r];
		int pair[2];
		if (!linked(c->role, (enum proc_role)r) || !p->link)
			continue;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
			log_err(PKG, "socketpair: %s", strerror(errno));
			kill(pid, SIGKILL);
			return 0;
		}
		send_procfd(p->link, c->role, pair[0]);
		send_procfd(c->link, (enum proc_role)r, pair[1]);
	}
	if (c->role == PROC_GATEWAYD)
		for (size_t i = 0; i < s->n_ls; i++) {
			Ipc__Listener m = IPC__LISTENER__INIT;
			/* A v2 proxy serves clients only. */
			if (s->wcfg->proxy && s->ls[i].peer)
				continue;
			int fd = fcntl(s->ls[i].fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0) {
				log_err(PKG, "dup: %s", strerror(errno));
				kill(pid, SIGKILL);
				return 0;
			}
			m.url = s->ls[i].url;
			m.peer = s->ls[i].peer;
			link_send_fd(c->link, MSG_LISTENER, 0, &m.base, fd);
		}
	link_send(c->link, MSG_START, 0, NULL, 0);
	return 0;
}

/* Starts discoveryd alone, or every worker but discoveryd. */
static void start_workers(struct sup *s, int discoveryd)
{
	for (size_t i = 0; i < sizeof(start_order) / sizeof(start_order[0]); i++) {
		struct child *c = &s->ch[start_order[i]];
		if ((c->role == PROC_DISCOVERYD) != discoveryd || c->pid > 0 ||
		    !wanted(s, c->role))
			continue;
		int r = start_child(s, c);
		if (r < 0) {
			log_crit(PKG, "cannot start %s: %s", proc_name(c->role),
				 strerror(-r));
			begin_stop(s, 1, 0);
			return;
		}
		log_info(PKG, "started %s (pid %d)", proc_name(c->role), (int)c->pid);
	}
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	(void)fd;
	(void)what;
	/* Before a join's result, only discoveryd runs. */
	if (c->sup->stopping || c->pid > 0 ||
	    (c->sup->join && c->role != PROC_DISCOVERYD) || !wanted(c->sup, c->role))
		return;
	int r = start_child(c->sup, c);
	if (r < 0) {
		log_crit(PKG, "cannot start %s: %s", proc_name(c->role), strerror(-r));
		begin_stop(c->sup, 1, 0);
		return;
	}
	log_notice(PKG, "restarted %s (pid %d)", proc_name(c->role), (int)c->pid);
}

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "stopped (status 0x%x)", st);
}

static int stage_done(struct sup *s)
{
	for (int k = 0; k < 2; k++) {
		enum proc_role r = stop_stages[s->stage][k];
		if (r != PROC_SUPERVISOR && s->ch[r].pid > 0)
			return 0;
	}
	return 1;
}

static int all_gone(struct sup *s)
{
	for (int r = PROC_RAFTD; r < PROC_MAX; r++)
		if (s->ch[r].pid > 0)
			return 0;
	return 1;
}

/* Sends the current stage its SIGTERM; skips stages with nobody left. */
static void run_stage(struct sup *s)
{
	while ((size_t)s->stage < N_STAGES && stage_done(s))
		s->stage++;
	if ((size_t)s->stage >= N_STAGES) {
		if (all_gone(s))
			event_base_loopexit(s->base, NULL);
		return;
	}
	for (int k = 0; k < 2; k++) {
		enum proc_role r = stop_stages[s->stage][k];
		if (r != PROC_SUPERVISOR)
			signal_child(&s->ch[r], SIGTERM);
	}
	struct timeval tv = {SUP_STOP_STAGE_MS / 1000, (SUP_STOP_STAGE_MS % 1000) * 1000};
	evtimer_add(s->stage_timer, &tv);
}

static void stage_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sup *s = arg;
	(void)fd;
	(void)what;
	if (s->handing_over) {
		log_warn(PKG, "raftd did not hand leadership over in time; stopping anyway");
		handover_done(s);
		return;
	}
	s->stage++;
	if ((size_t)s->stage < N_STAGES) {
		run_stage(s);
		return;
	}
	for (int r = PROC_RAFTD; r < PROC_MAX; r++)
		if (s->ch[r].pid > 0) {
			log_warn(PKG, "%s (pid %d) did not stop in time, killing it",
				 proc_name((enum proc_role)r), (int)s->ch[r].pid);
			signal_child(&s->ch[r], SIGKILL);
		}
}

/* Stops the member with exit code code; a clean stop (SIGTERM) first lets
 * raftd hand leadership over when hand_over is set. */
static void begin_stop(struct sup *s, int code, int hand_over)
{
	if (code > s->exit_code)
		s->exit_code = code;
	if (s->stopping)
		return;
	s->stopping = 1;
	s->stage = 0;
	for (int r = PROC_RAFTD; r < PROC_MAX; r++)
		evtimer_del(s->ch[r].restart);
	/*
	 * A clean stop first lets raftd hand leadership to another member, as
	 * etcd does on SIGTERM, while gatewayd still carries its messages. A
	 * fatal error stops at once.
	 */
	struct child *rc = &s->ch[PROC_RAFTD];
	if (hand_over && rc->link && rc->ready &&
	    link_send(rc->link, MSG_SHUTDOWN, 0, NULL, 0) == 0) {
		s->handing_over = 1;
		unsigned ms = SUP_HANDOVER_EXTRA_MS +
			      3 * (s->wcfg->election_timeout_ms ?
				   s->wcfg->election_timeout_ms : 1000);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(s->stage_timer, &tv);
		return;
	}
	run_stage(s);
}

static void child_died(struct sup *s, struct child *c)
{
	char how[128];
	pid_t pid = c->pid;

	describe_status(c->status, how, sizeof(how));
	c->pid = 0;
	c->ready = 0;
	c->reaped = 0;
	if (c->link) {
		struct link *l = c->link;
		c->link = NULL;
		link_free(l);
	}
	if (s->stopping) {
		log_info(PKG, "%s (pid %d) %s", proc_name(c->role), (int)pid, how);
		if (s->handing_over && c->role != PROC_RAFTD)
			return;
		s->handing_over = 0;
		evtimer_del(s->stage_timer);
		run_stage(s);
		return;
	}

	uint64_t now = now_ms();
	c->deaths[c->n_deaths++ % SUP_CRASH_LIMIT] = now;
	unsigned recent = 0;
	for (unsigned i = 0; i < SUP_CRASH_LIMIT && i < c->n_deaths; i++)
		if (now - c->deaths[i] <= SUP_CRASH_WINDOW_MS)
			recent++;
	if (recent >= SUP_CRASH_LIMIT) {
		log_crit(PKG, "%s (pid %d) %s; it failed %u times within %d seconds, stopping the member",
			 proc_name(c->role), (int)pid, how, recent,
			 SUP_CRASH_WINDOW_MS / 1000);
		begin_stop(s, 1, 0);
		return;
	}
	unsigned backoff = SUP_BACKOFF_MIN_MS << (recent - 1);
	if (backoff > SUP_BACKOFF_MAX_MS)
		backoff = SUP_BACKOFF_MAX_MS;
	log_err(PKG, "%s (pid %d) %s; restarting it in %u ms", proc_name(c->role),
		(int)pid, how, backoff);
	struct timeval tv = {backoff / 1000, (backoff % 1000) * 1000};
	evtimer_add(c->restart, &tv);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct sup *s = arg;
	pid_t pid;
	int st;
	(void)sig;
	(void)what;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int r = PROC_RAFTD; r < PROC_MAX; r++) {
			struct child *c = &s->ch[r];
			if (c->pid != pid || c->reaped)
				continue;
			c->reaped = 1;
			c->status = st;
			/* Frames still queued on its link are read first. */
			if (!c->link)
				child_died(s, c);
			break;
		}
	}
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct sup *s = arg;
	(void)what;
	if (!s->stopping)
		log_notice("pkg/osutil", "received %s signal, shutting down...",
			   sig == SIGINT ? "interrupt" : "terminated");
	begin_stop(s, 0, 1);
}

int supervisor_run(const Ipc__WorkerConfig *wcfg, const struct sup_join *join,
		   const struct listener *ls, size_t n_ls)
{
	struct sup s;
	struct event *ev_chld, *ev_term, *ev_int;

	memset(&s, 0, sizeof(s));
	s.wcfg = wcfg;
	s.join = join;
	s.ls = ls;
	s.n_ls = n_ls;
	signal(SIGPIPE, SIG_IGN);
	s.base = event_base_new();
	if (!s.base) {
		log_crit(PKG, "cannot create the event loop");
		return 1;
	}
	ev_chld = evsignal_new(s.base, SIGCHLD, on_sigchld, &s);
	ev_term = evsignal_new(s.base, SIGTERM, on_sigterm, &s);
	ev_int = evsignal_new(s.base, SIGINT, on_sigterm, &s);
	s.stage_timer = evtimer_new(s.base, stage_timeout, &s);
	if (!ev_chld || !ev_term || !ev_int || !s.stage_timer) {
		log_crit(PKG, "cannot set up signal handling");
		return 1;
	}
	event_add(ev_chld, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	for (int r = PROC_RAFTD; r < PROC_MAX; r++) {
		s.ch[r].sup = &s;
		s.ch[r].role = (enum proc_role)r;
		s.ch[r].restart = evtimer_new(s.base, restart_cb, &s.ch[r]);
		if (!s.ch[r].restart) {
			log_crit(PKG, "cannot set up timers");
			return 1;
		}
	}

	/* A joining member's other workers wait for discoveryd's answer. */
	if (!join)
		start_workers(&s, 0);
	if (!s.stopping)
		start_workers(&s, 1);

	if (!s.stopping || !all_gone(&s))
		event_base_dispatch(s.base);

	/* Whatever is left (the loop cannot exit with children alive). */
	for (int r = PROC_RAFTD; r < PROC_MAX; r++) {
		if (s.ch[r].pid > 0 && !s.ch[r].reaped) {
			kill(s.ch[r].pid, SIGKILL);
			waitpid(s.ch[r].pid, NULL, 0);
		}
		link_free(s.ch[r].link);
		event_free(s.ch[r].restart);
	}
	event_free(s.stage_timer);
	event_free(ev_chld);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(s.base);
	return s.exit_code;
}
