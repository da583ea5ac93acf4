/* Framed, buffered links over Unix stream sockets, with descriptor passing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "link.h"

/* Descriptors travel in small FIFO queues; few are ever in flight at once. */
#define FDQ_MAX 64
/* Read at most this much per readiness callback, so one busy link cannot
 * starve the others of an event loop. */
#define READ_BUDGET (4u << 20)
#define READ_CHUNK (256u << 10)

struct fd_out {
	uint64_t pos; /* stream offset of the first byte of the frame */
	int fd;
};

struct link {
	struct event_base *base;
	int fd;
	char name[32];
	uint32_t max_body;
	link_msg_fn *on_msg;
	link_close_fn *on_close;
	void *arg;

	struct event *rev, *wev;
	struct evbuffer *in, *out;
	uint64_t out_queued; /* total bytes ever queued */
	uint64_t out_sent;   /* total bytes ever written */

	struct fd_out fdout[FDQ_MAX];
	int nfdout;
	int fdin[FDQ_MAX];
	int nfdin;

	int closed;      /* peer gone: no more frames delivered */
	int in_dispatch; /* inside a callback of ours */
	int free_asked;  /* link_free() was called during a callback */
};

static void link_destroy(struct link *l)
{
	if (l->rev)
		event_free(l->rev);
	if (l->wev)
		event_free(l->wev);
	evbuffer_free(l->in);
	evbuffer_free(l->out);
	for (int i = 0; i < l->nfdout; i++)
		close(l->fdout[i].fd);
	for (int i = 0; i < l->nfdin; i++)
		close(l->fdin[i]);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

void link_free(struct link *l)
{
	if (!l)
		return;
	if (l->in_dispatch) {
		/* Never free an object still on the call stack: the read
		 * callback frees it once the callee has returned. */
		l->free_asked = 1;
		l->closed = 1;
		return;
	}
	link_destroy(l);
}

const char *link_name(const struct link *l)
{
	return l->name;
}

int link_closed(const struct link *l)
{
	return l->closed;
}

size_t link_queued(const struct link *l)
{
	return evbuffer_get_length(l->out);
}

static void mark_closed(struct link *l)
{
	if (l->closed)
		return;
	l->closed = 1;
	event_del(l->rev);
	event_del(l->wev);
	if (l->on_close)
		l->on_close(l, l->arg);
}

/* Write queued bytes; a frame that carries a descriptor goes out with sendmsg
 * so the descriptor rides on its first byte. */
static int flush(struct link *l)
{
	while (evbuffer_get_length(l->out) > 0) {
		ssize_t n;
		if (l->nfdout > 0 && l->fdout[0].pos == l->out_sent) {
			/* Send this frame's first chunk with the descriptor. */
			struct iovec iov;
			unsigned char *p = evbuffer_pullup(l->out, 1);
			iov.iov_base = p;
			iov.iov_len = 1;
			union {
				struct cmsghdr h;
				char buf[CMSG_SPACE(sizeof(int))];
			} cm;
			memset(&cm, 0, sizeof(cm));
			struct msghdr mh = {
				.msg_iov = &iov,
				.msg_iovlen = 1,
				.msg_control = cm.buf,
				.msg_controllen = sizeof(cm.buf),
			};
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &l->fdout[0].fd, sizeof(int));
			n = sendmsg(l->fd, &mh, MSG_NOSIGNAL);
			if (n > 0) {
				close(l->fdout[0].fd);
				memmove(&l->fdout[0], &l->fdout[1],
					(size_t)(l->nfdout - 1) * sizeof(l->fdout[0]));
				l->nfdout--;
			}
		} else {
			size_t lim = evbuffer_get_length(l->out);
			if (l->nfdout > 0 && l->fdout[0].pos - l->out_sent < lim)
				lim = (size_t)(l->fdout[0].pos - l->out_sent);
			n = evbuffer_write_atmost(l->out, l->fd, (ev_ssize_t)lim);
			if (n > 0) {
				l->out_sent += (uint64_t)n;
				continue;
			}
		}
		if (n > 0) {
			evbuffer_drain(l->out, (size_t)n);
			l->out_sent += (uint64_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return -EPIPE;
	}
	return 0;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	(void)fd;
	(void)what;
	if (l->closed)
		return;
	if (flush(l) < 0) {
		l->in_dispatch++;
		mark_closed(l);
		l->in_dispatch--;
		if (l->free_asked)
			link_destroy(l);
		return;
	}
	if (evbuffer_get_length(l->out) > 0)
		event_add(l->wev, NULL);
}

/* Reads what the socket has, collecting any descriptors in arrival order.
 * Returns bytes read, 0 on EOF, -1 with errno on error. */
static ssize_t read_some(struct link *l)
{
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(l->in, READ_CHUNK, v, 2);
	if (nv <= 0)
		return -1;
	struct iovec iov[2];
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cm;
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = (size_t)nv,
		.msg_control = cm.buf,
		.msg_controllen = sizeof(cm.buf),
	};
	ssize_t n = recvmsg(l->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (l->nfdin < FDQ_MAX)
				l->fdin[l->nfdin++] = fd;
			else
				close(fd);
		}
	}
	size_t left = (size_t)n;
	for (int i = 0; i < nv; i++) {
		size_t take = left < v[i].iov_len ? left : v[i].iov_len;
		v[i].iov_len = take;
		left -= take;
	}
	evbuffer_commit_space(l->in, v, nv);
	return n;
}

/* Delivers every complete frame in the input buffer. Returns -1 when the
 * stream breaks the protocol. */
static int dispatch(struct link *l)
{
	while (!l->free_asked && !l->closed) {
		struct msg_hdr h;
		size_t have = evbuffer_get_length(l->in);
		if (have < MSG_HDR_SIZE)
			return 0;
		evbuffer_copyout(l->in, &h, sizeof(h));
		if (h.len > l->max_body)
			return -1;
		if (have < MSG_HDR_SIZE + h.len)
			return 0;
		int fd = -1;
		if (h.flags & MSG_F_FD) {
			if (l->nfdin == 0)
				return -1;
			fd = l->fdin[0];
			memmove(&l->fdin[0], &l->fdin[1],
				(size_t)(l->nfdin - 1) * sizeof(int));
			l->nfdin--;
		}
		evbuffer_drain(l->in, MSG_HDR_SIZE);
		const uint8_t *body = NULL;
		static const uint8_t empty[1];
		if (h.len > 0)
			body = evbuffer_pullup(l->in, h.len);
		else
			body = empty;
		l->on_msg(l, &h, body, fd, l->arg);
		evbuffer_drain(l->in, h.len);
	}
	return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	(void)fd;
	(void)what;
	size_t budget = READ_BUDGET;
	int eof = 0;

	l->in_dispatch++;
	/*
	 * Stop early while many descriptors wait for their frames to be
	 * dispatched: the queue is small, and a descriptor beyond it would be
	 * lost. The rest is read on the next callback.
	 */
	while (budget > 0 && l->nfdin < FDQ_MAX / 2) {
		ssize_t n = read_some(l);
		if (n > 0) {
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			eof = 1;
		break;
	}
	if (dispatch(l) < 0)
		eof = 1;
	if (eof)
		mark_closed(l);
	l->in_dispatch--;
	if (l->free_asked)
		link_destroy(l);
}

struct link *link_new(struct event_base *base, int fd, const char *name,
		      uint32_t max_body, link_msg_fn *on_msg,
		      link_close_fn *on_close, void *arg)
{
	struct link *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return NULL;
	}
	l->base = base;
	l->fd = fd;
	snprintf(l->name, sizeof(l->name), "%s", name ? name : "link");
	l->max_body = max_body ? max_body : LINK_MAX_BODY;
	l->on_msg = on_msg;
	l->on_close = on_close;
	l->arg = arg;
	l->in = evbuffer_new();
	l->out = evbuffer_new();
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	l->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, l);
	l->wev = event_new(base, fd, EV_WRITE, on_writable, l);
	if (!l->in || !l->out || !l->rev || !l->wev) {
		link_destroy(l);
		return NULL;
	}
	event_add(l->rev, NULL);
	return l;
}

/* Appends a header and reserves room for a body of len bytes right after it. */
static int queue_frame(struct link *l, uint16_t type, uint16_t flags,
		       uint64_t id, const void *body, size_t len,
		       const ProtobufCMessage *m)
{
	if (l->closed)
		return -EPIPE;
	if (len > l->max_body)
		return -EMSGSIZE;
	struct msg_hdr h = {
		.type = type, .flags = flags, .len = (uint32_t)len, .id = id
	};
	struct evbuffer_iovec v;
	/* One contiguous extent so protobuf-c can pack in place. */
	if (evbuffer_reserve_space(l->out, (ev_ssize_t)(MSG_HDR_SIZE + len), &v, 1) != 1)
		return -ENOMEM;
	memcpy(v.iov_base, &h, MSG_HDR_SIZE);
	if (m)
		protobuf_c_message_pack(m, (uint8_t *)v.iov_base + MSG_HDR_SIZE);
	else if (len)
		memcpy((uint8_t *)v.iov_base + MSG_HDR_SIZE, body, len);
	v.iov_len = MSG_HDR_SIZE + len;
	if (evbuffer_commit_space(l->out, &v, 1) != 0)
		return -ENOMEM;
	l->out_queued += MSG_HDR_SIZE + len;
	event_add(l->wev, NULL);
	return 0;
}

int link_send(struct link *l, uint16_t type, uint64_t id, const void *body,
	      size_t len)
{
	return queue_frame(l, type, 0, id, body, len, NULL);
}

int link_send_pb(struct link *l, uint16_t type, uint64_t id,
		 const ProtobufCMessage *m)
{
	size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;
	return queue_frame(l, type, 0, id, NULL, len, m);
}

int link_send_fd(struct link *l, uint16_t type, uint64_t id,
		 const ProtobufCMessage *m, int fd)
{
	if (l->nfdout >= FDQ_MAX) {
		close(fd);
		return -ENOBUFS;
	}
	uint64_t pos = l->out_queued;
	size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;
	int r = queue_frame(l, type, MSG_F_FD, id, NULL, len, m);
	if (r < 0) {
		close(fd);
		return r;
	}
	l->fdout[l->nfdout].pos = pos;
	l->fdout[l->nfdout].fd = fd;
	l->nfdout++;
	return 0;
}

void link_flush_now(struct link *l)
{
	if (!l->closed)
		(void)flush(l);
}

int link_flush_blocking(struct link *l)
{
	if (l->closed)
		return -EPIPE;
	int fl = fcntl(l->fd, F_GETFL);
	fcntl(l->fd, F_SETFL, fl & ~O_NONBLOCK);
	int r = flush(l);
	fcntl(l->fd, F_SETFL, fl);
	return r;
}
