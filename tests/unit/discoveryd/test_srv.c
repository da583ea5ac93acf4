/*
 * Unit test of discoveryd's DNS SRV discovery against a real DNS server:
 * Debian's dnsmasq on a loopback address of its own, serving SRV and A
 * records for example.com that point at 127.0.1.10-12.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "srv.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

static pid_t dnsmasq_pid = -1;
static char ns_ip[32];
static unsigned ns_port;
static char ns_addr[48]; /* "ip:port" */

/* Runs at exit, also when a CHECK fails; a crash is covered by the child's
 * parent-death signal. */
static void dnsmasq_stop(void)
{
	if (dnsmasq_pid > 0) {
		/* SIGKILL: it may be stopped (test_retry) and keeps no state. */
		kill(dnsmasq_pid, SIGKILL);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
}

/* The records, as dnsmasq options. */
static const char *const records[] = {
	/* example.com: the guide's plain records, and client records. */
	"--srv-host=_etcd-server._tcp.example.com,infra0.example.com,2380,0,0",
	"--srv-host=_etcd-server._tcp.example.com,infra1.example.com,2380,0,0",
	"--srv-host=_etcd-server._tcp.example.com,infra2.example.com,2380,0,0",
	"--srv-host=_etcd-client._tcp.example.com,infra0.example.com,2379,0,0",
	"--srv-host=_etcd-client._tcp.example.com,infra1.example.com,2379,0,0",
	"--srv-host=_etcd-client._tcp.example.com,infra2.example.com,2379,0,0",
	/* example.com, --discovery-srv-name foo: -ssl records only. */
	"--srv-host=_etcd-server-ssl-foo._tcp.example.com,infra0.example.com,2380,0,0",
	"--srv-host=_etcd-server-ssl-foo._tcp.example.com,infra1.example.com,2380,0,0",
	"--srv-host=_etcd-server-ssl-foo._tcp.example.com,infra2.example.com,2380,0,0",
	"--srv-host=_etcd-client-ssl-foo._tcp.example.com,infra0.example.com,2379,0,0",
	/* ssl.example.com: -ssl records for both sides. */
	"--srv-host=_etcd-server-ssl._tcp.ssl.example.com,infra0.example.com,2380,0,0",
	"--srv-host=_etcd-server-ssl._tcp.ssl.example.com,infra1.example.com,2380,0,0",
	"--srv-host=_etcd-server-ssl._tcp.ssl.example.com,infra2.example.com,2380,0,0",
	"--srv-host=_etcd-client-ssl._tcp.ssl.example.com,infra0.example.com,2379,0,0",
	"--srv-host=_etcd-client-ssl._tcp.ssl.example.com,infra1.example.com,2379,0,0",
	/* both.example.com: -ssl and plain records. */
	"--srv-host=_etcd-server-ssl._tcp.both.example.com,infra0.example.com,2380,0,0",
	"--srv-host=_etcd-server-ssl._tcp.both.example.com,infra1.example.com,2380,0,0",
	"--srv-host=_etcd-server._tcp.both.example.com,infra0.example.com,2480,0,0",
	"--srv-host=_etcd-server._tcp.both.example.com,infra1.example.com,2480,0,0",
	"--srv-host=_etcd-client-ssl._tcp.both.example.com,infra0.example.com,2379,0,0",
	"--srv-host=_etcd-client._tcp.both.example.com,infra1.example.com,2379,0,0",
	/* one.example.com: a single -ssl record. */
	"--srv-host=_etcd-server-ssl._tcp.one.example.com,infra0.example.com,2380,0,0",
	/* prio.example.com: priorities out of order in the answer; one
	 * target that does not resolve (skipped, as etcd does). */
	"--srv-host=_etcd-server._tcp.prio.example.com,infra2.example.com,2380,20,0",
	"--srv-host=_etcd-server._tcp.prio.example.com,infra1.example.com,2380,10,0",
	"--srv-host=_etcd-server._tcp.prio.example.com,gone.example.com,2380,15,0",
	"--host-record=infra0.example.com,127.0.1.10",
	"--host-record=infra1.example.com,127.0.1.11",
	"--host-record=infra2.example.com,127.0.1.12",
};

/* Whether something listens on ns_ip:ns_port (UDP), from /proc/net/udp. */
static int bound(void)
{
	unsigned a, b, c, d;
	char want[32], line[256];
	FILE *f;
	int ok = 0;

	sscanf(ns_ip, "%u.%u.%u.%u", &a, &b, &c, &d);
	snprintf(want, sizeof(want), " %02X%02X%02X%02X:%04X ", d, c, b, a,
		 ns_port);
	if ((f = fopen("/proc/net/udp", "r")) == NULL)
		return 0;
	while (!ok && fgets(line, sizeof(line), f) != NULL)
		ok = strstr(line, want) != NULL;
	fclose(f);
	return ok;
}

static int dnsmasq_start(unsigned port)
{
	char listen[64], portarg[32];
	const char *argv[64];
	size_t n = 0;

	ns_port = port;
	snprintf(listen, sizeof(listen), "--listen-address=%s", ns_ip);
	snprintf(portarg, sizeof(portarg), "--port=%u", port);
	argv[n++] = DNSMASQ;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--pid-file=";
	argv[n++] = "--log-facility=/dev/null";
	/* Names we have no data for get NXDOMAIN, not REFUSED. */
	argv[n++] = "--local=/test/";
	argv[n++] = "--local=/com/";
	argv[n++] = listen;
	argv[n++] = portarg;
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		argv[n++] = records[i];
	argv[n] = NULL;

	if ((dnsmasq_pid = fork()) < 0)
		return -errno;
	if (dnsmasq_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(DNSMASQ, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = -1;
			return -EADDRINUSE;
		}
		if (bound())
			break;
		nanosleep(&ts, NULL);
	}
	snprintf(ns_addr, sizeof(ns_addr), "%s:%u", ns_ip, port);
	return bound() ? 0 : -ETIMEDOUT;
}

static char err[SRV_ERR_MAX];

static struct srv_cluster *cluster(struct srv_resolver *r, const char *dom,
				   const char *sname, const char *self,
				   const char *apurl, int want_rc)
{
	struct srv_cluster *c = NULL;
	const char *ap[1] = { apurl };
	int rc;

	err[0] = 0;
	rc = srv_server_cluster(r, dom, sname, self, ap, 1, &c, err,
				sizeof(err));
	if (rc != want_rc)
		fprintf(stderr, "%s %s: rc %d: %s\n", dom, apurl, rc, err);
	CHECK(rc == want_rc);
	CHECK((rc == 0) == (c != NULL));
	return c;
}

static void check_cluster(struct srv_cluster *c, const char *want, bool tls)
{
	if (strcmp(c->initial_cluster, want) != 0)
		fprintf(stderr, "got %s\nwant %s\n", c->initial_cluster, want);
	CHECK(strcmp(c->initial_cluster, want) == 0);
	CHECK(c->tls == tls);
}

/*
 * Records of equal priority and weight come in the server's order (dnsmasq
 * answers its options last first), so check the naming rule, not an
 * order: n members, scheme://infraK.example.com:2380 for distinct K < n,
 * infra<self> named self, the others "0", "1", ... in the answer's order,
 * and initial_cluster and each log line agreeing.
 */
static void check_members(struct srv_cluster *c, size_t n, const char *scheme,
			  int self, const char *self_name)
{
	char ic[1024] = "", want[256];
	unsigned seen = 0, tmp = 0;

	CHECK(c->n == n);
	CHECK(c->tls == (strcmp(scheme, "https") == 0));
	for (size_t i = 0; i < n; i++) {
		struct srv_member *m = &c->members[i];
		int k = -1;
		char name[16];

		for (int j = 0; j < (int)n; j++) {
			snprintf(want, sizeof(want),
				 "%s://infra%d.example.com:2380", scheme, j);
			if (strcmp(m->url, want) == 0)
				k = j;
		}
		CHECK(k >= 0 && !(seen & (1u << k)));
		seen |= 1u << k;
		if (k == self)
			snprintf(name, sizeof(name), "%s", self_name);
		else
			snprintf(name, sizeof(name), "%u", tmp++);
		CHECK(strcmp(m->name, name) == 0);
		snprintf(want, sizeof(want),
			 "got bootstrap from DNS for etcd-server at %s=%s",
			 name, m->url);
		CHECK(strcmp(m->log, want) == 0);
		snprintf(ic + strlen(ic), sizeof(ic) - strlen(ic), "%s%s=%s",
			 i > 0 ? "," : "", name, m->url);
	}
	CHECK(strcmp(c->initial_cluster, ic) == 0);
}

static void check_err(const char *want)
{
	if (strcmp(err, want) != 0)
		fprintf(stderr, "got  %s\nwant %s\n", err, want);
	CHECK(strcmp(err, want) == 0);
}

static void test_server(struct srv_resolver *r)
{
	struct srv_cluster *c;
	char want[512];

	/* The guide's plain records, members advertising host names. */
	c = cluster(r, "example.com", NULL, "infra1",
		    "http://infra1.example.com:2380", 0);
	check_members(c, 3, "http", 1, "infra1");
	srv_cluster_free(c);

	/* ...and advertising IPs: the URLs stay the SRV host names. */
	c = cluster(r, "example.com", "", "infra0", "http://127.0.1.10:2380", 0);
	check_members(c, 3, "http", 0, "infra0");
	srv_cluster_free(c);

	/* Same address, another port: not this member. */
	cluster(r, "example.com", NULL, "infra0", "http://127.0.1.10:2381",
		-ENOENT);
	check_err("cannot find local etcd member \"infra0\" in SRV records");

	/* -ssl records: https. */
	c = cluster(r, "ssl.example.com", NULL, "infra2",
		    "https://infra2.example.com:2380", 0);
	check_members(c, 3, "https", 2, "infra2");
	srv_cluster_free(c);

	/* Both: the -ssl records are the cluster (the guide: found, TLS). */
	c = cluster(r, "both.example.com", NULL, "infra1",
		    "https://127.0.1.11:2380", 0);
	check_members(c, 2, "https", 1, "infra1");
	srv_cluster_free(c);
	/* ...so an http member is not among them (etcd 3.4 alike). */
	cluster(r, "both.example.com", NULL, "infra1",
		"http://127.0.1.11:2480", -ENOENT);
	check_err("cannot find local etcd member \"infra1\" in SRV records");

	/* --discovery-srv-name foo: only _etcd-server[-ssl]-foo. */
	c = cluster(r, "example.com", "foo", "infra0",
		    "https://infra0.example.com:2380", 0);
	check_members(c, 3, "https", 0, "infra0");
	srv_cluster_free(c);

	/* The only record is this member with the other scheme. */
	cluster(r, "one.example.com", NULL, "infra0", "http://127.0.1.10:2380",
		-ENOENT);
	check_err("error querying DNS SRV records for _etcd-server-ssl "
		  "bootstrap at https://infra0.example.com:2380 from DNS for "
		  "etcd-server-ssl has scheme mismatch with expected peer "
		  "http://127.0.1.10:2380");

	/* Priority order; a target without address is skipped. */
	c = cluster(r, "prio.example.com", NULL, "infra2",
		    "http://127.0.1.12:2380", 0);
	check_cluster(c, "0=http://infra1.example.com:2380,"
			 "infra2=http://infra2.example.com:2380", false);
	srv_cluster_free(c);

	/* Not in the records. */
	cluster(r, "example.com", NULL, "infra9", "http://127.0.1.19:2380",
		-ENOENT);
	check_err("cannot find local etcd member \"infra9\" in SRV records");

	/* An unknown domain: etcd's message names the -ssl lookup. */
	cluster(r, "nowhere.test", NULL, "infra0", "http://127.0.1.10:2380",
		-ENOENT);
	snprintf(want, sizeof(want),
		 "error querying DNS SRV records for _etcd-server-ssl lookup "
		 "_etcd-server-ssl._tcp.nowhere.test on %s: no such host",
		 ns_addr);
	check_err(want);

	/* An advertised name that does not resolve. */
	cluster(r, "example.com", NULL, "infra0",
		"http://infra9.example.com:2380", -ENOENT);
	snprintf(want, sizeof(want),
		 "lookup infra9.example.com on %s: no such host", ns_addr);
	check_err(want);

	/* Advertised URLs etcd's resolveTCPAddr refuses. */
	cluster(r, "example.com", NULL, "infra0", "http://127.0.1.10", -EINVAL);
	check_err("address 127.0.1.10: missing port in address");
	cluster(r, "example.com", NULL, "infra0", "http://[::1]/", -EINVAL);
	check_err("address [::1]: missing port in address");
}

/* Whether e holds url once, its host and port agreeing (the server picks
 * the order of equal records). */
static bool has(const struct srv_endpoints *e, const char *url)
{
	int found = 0;

	for (size_t i = 0; i < e->n; i++) {
		char u[300];

		snprintf(u, sizeof(u), "%s://%s:%u", e->v[i].tls ? "https" : "http",
			 e->v[i].host, e->v[i].port);
		CHECK(strcmp(u, e->v[i].url) == 0);
		found += strcmp(e->v[i].url, url) == 0;
	}
	return found == 1;
}

static void test_client(struct srv_resolver *r)
{
	struct srv_endpoints *e = NULL;
	char want[1024];

	CHECK(srv_client_endpoints(r, "example.com", NULL, &e, err,
				   sizeof(err)) == 0);
	CHECK(e->n == 3);
	for (size_t i = 0; i < 3; i++)
		CHECK(!e->v[i].tls && e->v[i].port == 2379);
	CHECK(has(e, "http://infra0.example.com.:2379"));
	CHECK(has(e, "http://infra1.example.com.:2379"));
	CHECK(has(e, "http://infra2.example.com.:2379"));
	srv_endpoints_free(e);

	CHECK(srv_client_endpoints(r, "ssl.example.com", "", &e, err,
				   sizeof(err)) == 0);
	CHECK(e->n == 2 && e->v[0].tls && e->v[1].tls);
	CHECK(has(e, "https://infra0.example.com.:2379"));
	CHECK(has(e, "https://infra1.example.com.:2379"));
	srv_endpoints_free(e);

	/* Both: -ssl first, then plain. */
	CHECK(srv_client_endpoints(r, "both.example.com", NULL, &e, err,
				   sizeof(err)) == 0);
	CHECK(e->n == 2 && e->v[0].tls && !e->v[1].tls);
	CHECK(strcmp(e->v[0].url, "https://infra0.example.com.:2379") == 0);
	CHECK(strcmp(e->v[1].url, "http://infra1.example.com.:2379") == 0);
	srv_endpoints_free(e);

	CHECK(srv_client_endpoints(r, "example.com", "foo", &e, err,
				   sizeof(err)) == 0);
	CHECK(e->n == 1 && e->v[0].tls);
	srv_endpoints_free(e);

	e = NULL;
	CHECK(srv_client_endpoints(r, "nowhere.test", NULL, &e, err,
				   sizeof(err)) == -ENOENT);
	CHECK(e == NULL);
	snprintf(want, sizeof(want),
		 "dns lookup errors: lookup _etcd-client-ssl._tcp.nowhere.test "
		 "on %s: no such host and lookup _etcd-client._tcp.nowhere.test "
		 "on %s: no such host", ns_addr, ns_addr);
	check_err(want);
}

static void test_resolver_conf(void)
{
	struct srv_resolver *r = NULL;
	struct srv_cluster *c;
	char path[] = "/tmp/test_srv_resolv.XXXXXX";
	FILE *f;
	int fd;

	CHECK(srv_resolver_new("nonsense", &r, err, sizeof(err)) == -EINVAL);
	CHECK(srv_resolver_new("127.0.0.1:0", &r, err, sizeof(err)) == -EINVAL);
	CHECK(srv_resolver_new("127.0.0.1:x", &r, err, sizeof(err)) == -EINVAL);
	CHECK(srv_resolver_new("/nonexistent/resolv.conf", &r, err,
			       sizeof(err)) == -ENOENT);
	CHECK(r == NULL);
	CHECK(srv_resolver_new("[::1]:5353", &r, err, sizeof(err)) == 0);
	r = srv_resolver_free(r);
	CHECK(srv_resolver_new(NULL, &r, err, sizeof(err)) == 0 ||
	      r == NULL); /* the system's: whatever this host has */
	r = srv_resolver_free(r);
	srv_resolver_free(NULL);

	/* A resolv.conf-format file; its nameservers listen on port 53. */
	if (ns_port != 53) {
		fprintf(stderr, "dnsmasq not on port 53: resolv.conf case skipped\n");
		return;
	}
	CHECK((fd = mkstemp(path)) >= 0);
	CHECK((f = fdopen(fd, "w")) != NULL);
	fprintf(f, "# split DNS for the test\nnameserver %s\n", ns_ip);
	fclose(f);
	CHECK(srv_resolver_new(path, &r, err, sizeof(err)) == 0);
	unlink(path);
	c = cluster(r, "example.com", NULL, "infra2",
		    "http://infra2.example.com:2380", 0);
	CHECK(c->n == 3);
	srv_cluster_free(c);
	srv_resolver_free(r);
}

/*
 * A server that misses a query: dnsmasq stopped past the first try's
 * timeout. The next try must still go to it (ldns alone would have marked
 * it unreachable for good).
 */
static void test_retry(struct srv_resolver *r)
{
	struct srv_endpoints *e = NULL;
	time_t t0 = time(NULL);
	pid_t waker;

	CHECK(kill(dnsmasq_pid, SIGSTOP) == 0);
	CHECK((waker = fork()) >= 0);
	if (waker == 0) {
		struct timespec ts = { SRV_QUERY_TIMEOUT_S, 500 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		kill(dnsmasq_pid, SIGCONT);
		_exit(0);
	}
	CHECK(srv_client_endpoints(r, "example.com", NULL, &e, err,
				   sizeof(err)) == 0);
	CHECK(waitpid(waker, NULL, 0) == waker);
	CHECK(e->n == 3);
	CHECK(time(NULL) - t0 >= SRV_QUERY_TIMEOUT_S);
	srv_endpoints_free(e);
}

/* No server: every query gives up within its bound. */
static void test_timeout(void)
{
	struct srv_resolver *r = NULL;
	struct srv_endpoints *e = NULL;
	char addr[48], want[512];
	time_t t0 = time(NULL);

	/* The same address, a port nobody listens on. */
	snprintf(addr, sizeof(addr), "%s:%u", ns_ip, ns_port + 1);
	CHECK(srv_resolver_new(addr, &r, err, sizeof(err)) == 0);
	CHECK(srv_client_endpoints(r, "example.com", NULL, &e, err,
				   sizeof(err)) == -ENOENT);
	snprintf(want, sizeof(want),
		 "dns lookup errors: lookup _etcd-client-ssl._tcp.example.com "
		 "on %s: i/o timeout and lookup _etcd-client._tcp.example.com "
		 "on %s: i/o timeout", addr, addr);
	check_err(want);
	/* Two lookups of SRV_QUERY_TRIES tries each, all of them sent. */
	CHECK(time(NULL) - t0 <= 2 * SRV_QUERY_TRIES * SRV_QUERY_TIMEOUT_S + 1);
	CHECK(time(NULL) - t0 >= 2 * SRV_QUERY_TRIES * SRV_QUERY_TIMEOUT_S - 1);
	srv_resolver_free(r);
}

int main(void)
{
	struct srv_resolver *r = NULL;
	pid_t pid = getpid();
	int rc;

	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "%s not installed: skipped\n", DNSMASQ);
		return 77;
	}
	/* An address of our own, so parallel runs do not collide. */
	snprintf(ns_ip, sizeof(ns_ip), "127.53.%u.%u", (unsigned)pid / 250 % 250,
		 (unsigned)pid % 250 + 1);
	atexit(dnsmasq_stop);
	/* Port 53 lets a resolv.conf name the server; as non-root, use
	 * another port and leave that case out. */
	rc = geteuid() == 0 ? dnsmasq_start(53) : -EACCES;
	if (rc < 0)
		rc = dnsmasq_start(20000 + (unsigned)pid % 20000);
	if (rc < 0) {
		fprintf(stderr, "cannot run dnsmasq (%s): skipped\n",
			strerror(-rc));
		return 77;
	}
	CHECK(srv_resolver_new(ns_addr, &r, err, sizeof(err)) == 0);
	test_server(r);
	test_client(r);
	test_retry(r);
	srv_resolver_free(r);
	test_resolver_conf();
	test_timeout();
	return 0;
}
