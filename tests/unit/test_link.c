/* Unit test of common/link.c over a real socketpair: framing of many and of
 * large frames, protobuf bodies, descriptor passing, close and size limits. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.pb-c.h"
#include "link.h"
#include "check.h"

struct rx {
	int frames;
	int closed;
	uint64_t next_id;
	size_t bytes;
	int got_fd;
	int pb_ok;
	struct event_base *base;
	int stop_after;
};

static void on_msg(struct link *l, const struct msg_hdr *h, const uint8_t *body,
		   int fd, void *arg)
{
	struct rx *rx = arg;
	(void)l;
	switch (h->type) {
	case MSG_PROPOSE:
		/* Frames arrive in order, each with the body it was sent with. */
		CHECK(h->id == rx->next_id);
		rx->next_id++;
		for (uint32_t i = 0; i < h->len; i++)
			CHECK(body[i] == (uint8_t)(h->id + i));
		rx->bytes += h->len;
		CHECK(fd == -1);
		break;
	case MSG_PROCFD: {
		Ipc__ProcFd *p = MSG_UNPACK(Ipc__ProcFd, ipc__proc_fd, body, h->len);
		CHECK(p && p->role == 2);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		CHECK(fd >= 0);
		char buf[8] = {0};
		CHECK(read(fd, buf, 5) == 5);
		CHECK(memcmp(buf, "hello", 5) == 0);
		close(fd);
		rx->got_fd++;
		break;
	}
	case MSG_APPLIED: {
		Ipc__Applied *a = MSG_UNPACK(Ipc__Applied, ipc__applied, body, h->len);
		CHECK(a && a->index == 123456789012345ull);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		rx->pb_ok++;
		break;
	}
	default:
		CHECK(!"unexpected type");
	}
	rx->frames++;
	if (rx->stop_after && rx->frames == rx->stop_after)
		event_base_loopbreak(rx->base);
}

static void on_close(struct link *l, void *arg)
{
	struct rx *rx = arg;
	rx->closed++;
	link_free(l);
	event_base_loopbreak(rx->base);
}

static void test_frames_and_fds(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct event_base *base = event_base_new();
	struct rx rx = {.base = base, .next_id = 0};
	struct link *a = link_new(base, sv[0], "a", 0, on_msg, NULL, NULL);
	struct link *b = link_new(base, sv[1], "b", 0, on_msg, on_close, &rx);
	CHECK(a && b);

	/* Many small frames and a few large ones, interleaved with fds. */
	int n = 0;
	for (uint64_t id = 0; id < 2000; id++) {
		size_t len = id % 500 == 0 ? (1u << 20) + id : id % 97;
		uint8_t *buf = malloc(len + 1);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(id + i);
		CHECK(link_send(a, MSG_PROPOSE, id, buf, len) == 0);
		free(buf);
		n++;
		if (id % 400 == 7) {
			int p[2];
			CHECK(pipe(p) == 0);
			CHECK(write(p[1], "hello", 5) == 5);
			close(p[1]);
			Ipc__ProcFd pf = IPC__PROC_FD__INIT;
			pf.role = 2;
			CHECK(link_send_fd(a, MSG_PROCFD, 0, &pf.base, p[0]) == 0);
			n++;
		}
	}
	Ipc__Applied ap = IPC__APPLIED__INIT;
	ap.index = 123456789012345ull;
	CHECK(link_send_pb(a, MSG_APPLIED, 0, &ap.base) == 0);
	n++;
	rx.stop_after = n;
	event_base_dispatch(base);
	CHECK(rx.frames == n);
	CHECK(rx.got_fd == 5);
	CHECK(rx.pb_ok == 1);
	CHECK(link_queued(a) == 0);

	/* Closing one end is seen by the other exactly once. */
	link_free(a);
	event_base_dispatch(base);
	CHECK(rx.closed == 1);
	event_base_free(base);
}

static void test_oversized_frame_closes(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct event_base *base = event_base_new();
	struct rx rx = {.base = base};
	struct link *a = link_new(base, sv[0], "a", 0, on_msg, NULL, NULL);
	struct link *b = link_new(base, sv[1], "b", 1024, on_msg, on_close, &rx);
	CHECK(a && b);
	uint8_t buf[2048] = {0};
	CHECK(link_send(a, MSG_PROPOSE, 0, buf, sizeof(buf)) == 0);
	event_base_dispatch(base);
	CHECK(rx.closed == 1 && rx.frames == 0);
	link_free(a);
	event_base_free(base);
}

static void test_fd_flag_without_fd_closes(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct event_base *base = event_base_new();
	struct rx rx = {.base = base};
	CHECK(link_new(base, sv[1], "b", 0, on_msg, on_close, &rx));
	struct msg_hdr h = {.type = MSG_PROCFD, .flags = MSG_F_FD, .len = 0};
	CHECK(write(sv[0], &h, sizeof(h)) == (ssize_t)sizeof(h));
	event_base_dispatch(base);
	CHECK(rx.closed == 1 && rx.frames == 0);
	close(sv[0]);
	event_base_free(base);
}

int main(void)
{
	test_frames_and_fds();
	test_oversized_frame_closes();
	test_fd_flag_without_fd_closes();
	printf("link: ok\n");
	return 0;
}
