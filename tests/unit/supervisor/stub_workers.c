/*
 * Stand-in workers for the supervisor's process test: real worker runtimes
 * (common/worker.c) that take listeners and peer links and say so on
 * stderr, so the test sees what the supervisor handed them. The gatewayd
 * stub asks the supervisor for metrics on SIGUSR1 and logs the answer; the
 * raftd stub answers the supervisor's MSG_SHUTDOWN at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "worker.h"

/* One line per sample: "metrics <id>: name{l="v"} value". */
static void log_metrics(struct worker *w, const struct msg_hdr *hdr,
			const uint8_t *body)
{
	Ipc__Metrics *m = MSG_UNPACK(Ipc__Metrics, ipc__metrics, body, hdr->len);
	if (!m)
		worker_fatal(w, "bad MSG_METRICS_RESP");
	for (size_t i = 0; i < m->n_metrics; i++) {
		const Ipc__Metric *x = m->metrics[i];
		char labels[256] = "";
		if (x->n_label_names == 1)
			snprintf(labels, sizeof(labels), "{%s=\"%s\"}",
				 x->label_names[0], x->label_values[0]);
		log_info("stub", "%s: metrics %llu: %s%s %s %g",
			 proc_name(w->role), (unsigned long long)hdr->id, x->name,
			 labels, x->type == 0 ? "counter" : "gauge", x->value);
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	if (fd >= 0)
		close(fd);
	if (from == PROC_SUPERVISOR && hdr->type == MSG_METRICS_RESP)
		log_metrics(w, hdr, body);
	/* The leader hand-over at a clean stop: nothing to hand over here. */
	if (from == PROC_SUPERVISOR && hdr->type == MSG_SHUTDOWN) {
		log_info("stub", "%s: asked to hand leadership over", proc_name(w->role));
		link_send(w->sup, MSG_SHUTDOWN_DONE, 0, NULL, 0);
	}
}

static struct event *usr1; /* gatewayd's trigger */

/* gatewayd's /metrics round, as the test triggers it. */
static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	static uint64_t round;
	(void)sig;
	(void)what;
	link_send(w->sup, MSG_METRICS, ++round, NULL, 0);
}

static void on_peer_up(struct worker *w, enum proc_role role)
{
	log_info("stub", "%s: link to %s up", proc_name(w->role), proc_name(role));
}

static void on_listener(struct worker *w, const Ipc__Listener *l, int fd)
{
	log_info("stub", "%s: %s listener %s", proc_name(w->role),
		 l->peer ? "peer" : "client", l->url);
	close(fd);
}

/* "client tls: cert=... key=... ca=... cca=0 auto=1" (or "none"). */
static void log_tls(struct worker *w, const char *side, const Ipc__TlsInfo *t)
{
	if (!t) {
		log_info("stub", "%s: %s tls: none", proc_name(w->role), side);
		return;
	}
	log_info("stub", "%s: %s tls: cert=%s key=%s ca=%s cca=%d crl=%s cn=%s host=%s auto=%d",
		 proc_name(w->role), side, t->cert_file, t->key_file,
		 t->trusted_ca_file, (int)t->client_cert_auth, t->crl_file,
		 t->allowed_cn, t->allowed_hostname, (int)t->auto_tls);
}

static int on_start(struct worker *w)
{
	/* The test makes one role fail as a real worker would. */
	const char *fatal = getenv("STUB_FATAL_ROLE");
	if (fatal && strcmp(fatal, proc_name(w->role)) == 0)
		worker_fatal(w, "%s cannot open its store (stub)", proc_name(w->role));
	log_info("stub", "%s: config for %s, member %016llx, bootstrap %d, %zu members",
		 proc_name(w->role), w->cfg->name,
		 (unsigned long long)w->cfg->member_id, (int)w->cfg->bootstrap,
		 w->cfg->n_initial_members);
	if (w->role == PROC_GATEWAYD) {
		log_tls(w, "client", w->cfg->client_tls);
		log_tls(w, "peer", w->cfg->peer_tls);
		for (size_t i = 0; i < w->cfg->n_cipher_suites; i++)
			log_info("stub", "gatewayd: cipher %s", w->cfg->cipher_suites[i]);
		usr1 = evsignal_new(w->base, SIGUSR1, on_usr1, w);
		if (!usr1 || event_add(usr1, NULL) < 0)
			worker_fatal(w, "cannot catch SIGUSR1");
	}
	return 0;
}

static void on_stop(struct worker *w)
{
	(void)w;
	/* libevent's event_free does not take NULL. */
	if (usr1)
		event_free(usr1);
	usr1 = NULL;
}

static const struct worker_ops ops = {
	.on_msg = on_msg,
	.on_peer_up = on_peer_up,
	.on_listener = on_listener,
	.on_start = on_start,
	.on_stop = on_stop,
};

int raftd_main(int argc, char **argv)
{
	return worker_run(PROC_RAFTD, &ops, NULL, argc, argv);
}

int storaged_main(int argc, char **argv)
{
	return worker_run(PROC_STORAGED, &ops, NULL, argc, argv);
}

int gatewayd_main(int argc, char **argv)
{
	return worker_run(PROC_GATEWAYD, &ops, NULL, argc, argv);
}

int discoveryd_main(int argc, char **argv)
{
	return worker_run(PROC_DISCOVERYD, &ops, NULL, argc, argv);
}
