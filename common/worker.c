/* The handshake and peer-link bookkeeping every worker shares. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

static void peer_msg(struct link *l, const struct msg_hdr *hdr,
		     const uint8_t *body, int fd, void *arg)
{
	struct worker_peer *p = arg;
	(void)l;
	p->w->ops->on_msg(p->w, p->role, hdr, body, fd);
}

static void peer_close(struct link *l, void *arg)
{
	struct worker_peer *p = arg;
	struct worker *w = p->w;
	if (w->peer[p->role] != l)
		return;
	w->peer[p->role] = NULL;
	link_free(l);
	if (w->ops->on_peer_down)
		w->ops->on_peer_down(w, p->role);
}

static void peer_attach(struct worker *w, enum proc_role role, int fd)
{
	if (w->peer[role]) {
		/* The old link's peer was restarted; its frames are void now. */
		struct link *old = w->peer[role];
		w->peer[role] = NULL;
		link_free(old);
		if (w->ops->on_peer_down)
			w->ops->on_peer_down(w, role);
	}
	w->peer[role] = link_new(w->base, fd, proc_name(role), 0, peer_msg,
				 peer_close, &w->ctx[role]);
	if (w->peer[role] && w->ops->on_peer_up)
		w->ops->on_peer_up(w, role);
}

static void start(struct worker *w)
{
	if (!w->cfg)
		worker_fatal(w, "%s: started without configuration",
			     proc_name(w->role));
	if (w->ops->on_start && w->ops->on_start(w) < 0)
		worker_fatal(w, "%s: failed to start", proc_name(w->role));
	w->started = 1;
	for (int r = 0; r < PROC_MAX; r++)
		if (w->pending_fd[r] >= 0) {
			int fd = w->pending_fd[r];
			w->pending_fd[r] = -1;
			peer_attach(w, (enum proc_role)r, fd);
		}
	link_send(w->sup, MSG_READY, 0, NULL, 0);
}

static void sup_msg(struct link *l, const struct msg_hdr *hdr,
		    const uint8_t *body, int fd, void *arg)
{
	struct worker *w = arg;
	(void)l;
	switch (hdr->type) {
	case MSG_CONFIG: {
		Ipc__WorkerConfig *c =
			MSG_UNPACK(Ipc__WorkerConfig, ipc__worker_config, body, hdr->len);
		if (!c)
			worker_fatal(w, "bad MSG_CONFIG");
		if (w->cfg)
			protobuf_c_message_free_unpacked(&w->cfg->base, NULL);
		w->cfg = c;
		enum log_level lvl;
		if (c->log_level && log_level_parse(c->log_level, &lvl) == 0)
			log_set_level(lvl);
		break;
	}
	case MSG_PROCFD: {
		Ipc__ProcFd *p = MSG_UNPACK(Ipc__ProcFd, ipc__proc_fd, body, hdr->len);
		if (!p || fd < 0 || p->role == PROC_SUPERVISOR || p->role >= PROC_MAX)
			worker_fatal(w, "bad MSG_PROCFD");
		enum proc_role role = (enum proc_role)p->role;
		protobuf_c_message_free_unpacked(&p->base, NULL);
		if (!w->started) {
			if (w->pending_fd[role] >= 0)
				close(w->pending_fd[role]);
			w->pending_fd[role] = fd;
		} else {
			peer_attach(w, role, fd);
		}
		break;
	}
	case MSG_LISTENER: {
		Ipc__Listener *li = MSG_UNPACK(Ipc__Listener, ipc__listener, body, hdr->len);
		if (!li || fd < 0 || !w->ops->on_listener)
			worker_fatal(w, "bad MSG_LISTENER");
		w->ops->on_listener(w, li, fd);
		protobuf_c_message_free_unpacked(&li->base, NULL);
		break;
	}
	case MSG_START:
		if (!w->started)
			start(w);
		break;
	default:
		w->ops->on_msg(w, PROC_SUPERVISOR, hdr, body, fd);
	}
}

static void stop(struct worker *w)
{
	if (w->ops->on_stop)
		w->ops->on_stop(w);
	event_base_loopexit(w->base, NULL);
}

static void sup_close(struct link *l, void *arg)
{
	struct worker *w = arg;
	(void)l;
	/* The supervisor is gone: a worker never outlives it. */
	stop(w);
}

/*
 * glibc keeps freed heap memory for reuse; after a burst (a watch fan-out, a
 * big catch-up) that can be hundreds of megabytes nobody uses any more.
 * Handing it back every few seconds keeps a quiet member's RSS small; when
 * there is little to give back, malloc_trim costs microseconds.
 */
#define TRIM_INTERVAL_S 5

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	stop(arg);
}

int worker_run(enum proc_role role, const struct worker_ops *ops, void *arg,
	       int argc, char **argv)
{
	static struct worker w;
	(void)argc;
	(void)argv;

	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, proc_name(role), 0, 0, 0);
	/* Should the supervisor die without a word, so do we (the supervisor
	 * also sets this between fork and exec; and EOF on fd 3 stops us too). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	memset(&w, 0, sizeof(w));
	w.role = role;
	w.ops = ops;
	w.arg = arg;
	for (int r = 0; r < PROC_MAX; r++) {
		w.pending_fd[r] = -1;
		w.ctx[r].w = &w;
		w.ctx[r].role = (enum proc_role)r;
	}
	w.base = event_base_new();
	if (!w.base)
		return 1;
	w.sup = link_new(w.base, PROC_SUPERVISOR_FD, "supervisor", 0, sup_msg,
			 sup_close, &w);
	if (!w.sup)
		return 1;
	struct event *sigterm = evsignal_new(w.base, SIGTERM, on_signal, &w);
	struct event *sigint = evsignal_new(w.base, SIGINT, on_signal, &w);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	struct event *trim = event_new(w.base, -1, EV_PERSIST, on_trim, NULL);
	struct timeval trim_tv = {TRIM_INTERVAL_S, 0};
	event_add(trim, &trim_tv);

	event_base_dispatch(w.base);

	for (int r = 0; r < PROC_MAX; r++) {
		link_free(w.peer[r]);
		if (w.pending_fd[r] >= 0)
			close(w.pending_fd[r]);
	}
	link_free(w.sup);
	event_free(sigterm);
	event_free(sigint);
	event_free(trim);
	if (w.cfg)
		protobuf_c_message_free_unpacked(&w.cfg->base, NULL);
	event_base_free(w.base);
	return 0;
}

int worker_send(struct worker *w, enum proc_role to, uint16_t type,
		uint64_t id, const void *body, size_t len)
{
	struct link *l = to == PROC_SUPERVISOR ? w->sup : w->peer[to];
	if (!l)
		return -ENOTCONN;
	return link_send(l, type, id, body, len);
}

int worker_send_pb(struct worker *w, enum proc_role to, uint16_t type,
		   uint64_t id, const ProtobufCMessage *m)
{
	struct link *l = to == PROC_SUPERVISOR ? w->sup : w->peer[to];
	if (!l)
		return -ENOTCONN;
	return link_send_pb(l, type, id, m);
}

void worker_fatal(struct worker *w, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = 13;
	e.message = buf;
	if (w && w->sup) {
		link_send_pb(w->sup, MSG_FATAL, 0, &e.base);
		link_flush_blocking(w->sup);
	} else {
		log_crit(proc_name(w ? w->role : PROC_SUPERVISOR), "%s", buf);
	}
	_exit(1);
}

void worker_member_done(struct worker *w, const char *why)
{
	/* A MSG_FATAL with code 0: no error to print, exit code 0. */
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = 0;
	e.message = (char *)why;
	if (w && w->sup) {
		link_send_pb(w->sup, MSG_FATAL, 0, &e.base);
		link_flush_blocking(w->sup);
	}
	_exit(0);
}
