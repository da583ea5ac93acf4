/*
 * A test driver for discoveryd's etcd discovery client: runs it as
 * discoveryd would (a worker whose supervisor link is a socketpair) and
 * prints the MSG_JOIN_RESULT it sends on stdout:
 *   OK name=url,name=url...   (the members, in the discovered order)
 *   ERROR <message>           (an empty message: the lines are on stderr)
 * usage: disc_client URL NAME PEER_URL[,PEER_URL...] [PROXY] [FALLBACK] [DATA_DIR]
 * test_discovery_e2e.py runs it against a real etcd 3.4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "discovery.h"
#include "link.h"
#include "msg.h"
#include "worker.h"

static int rc = 2;

static void on_msg(struct link *l, const struct msg_hdr *hdr,
		   const uint8_t *body, int fd, void *arg)
{
	struct event_base *base = arg;
	(void)l;
	(void)fd;
	if (hdr->type != MSG_JOIN_RESULT) {
		printf("UNEXPECTED %s\n", msg_type_name(hdr->type));
		rc = 3;
		event_base_loopbreak(base);
		return;
	}
	Ipc__JoinResult *r = MSG_UNPACK(Ipc__JoinResult, ipc__join_result,
					body, hdr->len);
	if (!r) {
		printf("BAD\n");
	} else if (r->error) {
		printf("ERROR %s\n", r->error->message);
		rc = 1;
	} else {
		printf("OK%s ", r->proxy ? "(proxy)" : r->bootstrap ? "" : "(no bootstrap)");
		for (size_t i = 0; i < r->n_members; i++)
			for (size_t k = 0; k < r->members[i]->n_peerurls; k++)
				printf("%s%s=%s", i || k ? "," : "",
				       r->members[i]->name,
				       r->members[i]->peerurls[k]);
		printf("\n");
		rc = 0;
	}
	fflush(stdout);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	event_base_loopbreak(base);
}

static void on_close(struct link *l, void *arg)
{
	(void)l;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URL NAME PEER_URLS [PROXY] [FALLBACK] "
			"[DATA_DIR]\n", argv[0]);
		return 2;
	}
	struct event_base *base = event_base_new();
	int sv[2];
	if (!base || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 2;
	Ipc__WorkerConfig cfg = IPC__WORKER_CONFIG__INIT;
	char *urls[16];
	size_t n = 0;
	for (char *s = strtok(argv[3], ","); s && n < 16; s = strtok(NULL, ","))
		urls[n++] = s;
	cfg.name = argv[2];
	cfg.discovery = argv[1];
	cfg.initial_advertise_peer_urls = urls;
	cfg.n_initial_advertise_peer_urls = n;
	cfg.discovery_proxy = argc > 4 ? argv[4] : "";
	cfg.discovery_fallback = argc > 5 && argv[5][0] ? argv[5] : "proxy";
	cfg.data_dir = argc > 6 ? argv[6] : "default.etcd";

	struct worker w = {0};
	w.base = base;
	w.role = PROC_DISCOVERYD;
	w.cfg = &cfg;
	w.sup = link_new(base, sv[0], "sup", LINK_MAX_BODY, NULL, NULL, NULL);
	struct link *sup = link_new(base, sv[1], "discoveryd", LINK_MAX_BODY,
				    on_msg, on_close, base);
	if (!w.sup || !sup || discovery_start(&w) < 0)
		return 2;
	event_base_dispatch(base);
	discovery_done(&w);
	link_free(w.sup);
	link_free(sup);
	event_base_free(base);
	return rc;
}
