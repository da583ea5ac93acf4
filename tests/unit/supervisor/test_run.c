/*
 * The supervisor as a process: bad input exits 1 with nothing written, a
 * port in use is etcd's bind error, workers start as "etcd: <role>", a killed
 * worker is restarted, too many crashes stop the member, SIGTERM stops it
 * with exit 0 and no worker left behind, a restart reads the identity back,
 * gatewayd's MSG_METRICS is answered with the supervisor's and discoveryd's
 * part.
 * argv[1] is the etcd executable.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "datadir.h"
#include "ids.h"

static const char *etcd;
static char tmp[256];
static char host[32];
static int port_base;
static const char *fatal_role; /* the stub worker that fails at start */

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Starts etcd with args; stderr to <tmp>/<log>. Returns its pid. */
static pid_t start(const char *log, const char *const *args)
{
	char path[512];
	char *argv[64] = {(char *)"etcd"};
	int n = 1;
	for (; args[n - 1]; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	snprintf(path, sizeof(path), "%s/%s", tmp, log);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int out = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		dup2(out, 1);
		if (chdir(tmp) < 0)
			_exit(126);
		unsetenv("ETCD_NAME");
		if (fatal_role)
			setenv("STUB_FATAL_ROLE", fatal_role, 1);
		execv(etcd, argv);
		_exit(127);
	}
	return pid;
}

/* Waits up to ms for pid to exit; its exit code, 128+signal, or -1. */
static int wait_exit(pid_t pid, int ms)
{
	int st;
	for (int t = 0; t < ms; t += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		msleep(10);
	}
	return -1;
}

static char *slurp(const char *log)
{
	static char buf[1 << 16];
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmp, log);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	return buf;
}

static int count(const char *log, const char *text)
{
	int n = 0;
	for (const char *p = slurp(log); (p = strstr(p, text)); p++)
		n++;
	return n;
}

/* Waits until text appears at least n times in the log. */
static bool wait_log_n(const char *log, const char *text, int n, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		if (count(log, text) >= n)
			return true;
		msleep(20);
	}
	fprintf(stderr, "  not found %d times in %s: %s\n", n, log, text);
	return false;
}

static bool wait_log(const char *log, const char *text, int ms)
{
	return wait_log_n(log, text, 1, ms);
}

/* The child of parent whose argv[0] is "etcd: <role>", or 0. */
static pid_t find_child(pid_t parent, const char *role)
{
	char want[64];
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	snprintf(want, sizeof(want), "etcd: %s", role);
	while (d && (e = readdir(d))) {
		char path[300], buf[512];
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		char *rp = strrchr(buf, ')');
		int ppid = 0;
		char state;
		if (!rp || sscanf(rp + 2, "%c %d", &state, &ppid) != 2 ||
		    ppid != parent || state == 'Z')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0 && strcmp(buf, want) == 0)
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

static pid_t wait_child(pid_t parent, const char *role, pid_t not, int ms)
{
	for (int t = 0; t < ms; t += 20) {
		pid_t p = find_child(parent, role);
		if (p && p != not)
			return p;
		msleep(20);
	}
	return 0;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static bool exists(const char *rel)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	return stat(path, &st) == 0;
}

static char *url(int port_off)
{
	static char bufs[8][64];
	static int k;
	char *b = bufs[k++ % 8];
	snprintf(b, 64, "http://%s:%d", host, port_base + port_off);
	return b;
}

static void bad_input(void)
{
	pid_t p = start("bad.log", (const char *const[]){"--data-dir", "dd", "--zzz", NULL});
	CHECK(wait_exit(p, 5000) == 1);
	CHECK(strstr(slurp("bad.log"), "flag provided but not defined: -zzz"));
	CHECK(!exists("dd"));

	char ic[128];
	snprintf(ic, sizeof(ic), "infra0=%s", url(5));
	p = start("guide.log", (const char *const[]){
		"--data-dir", "dd", "--name", "infra1",
		"--initial-advertise-peer-urls", url(1), "--listen-peer-urls", url(1),
		"--listen-client-urls", url(0), "--advertise-client-urls", url(0),
		"--initial-cluster", ic, NULL});
	CHECK(wait_exit(p, 5000) == 1);
	CHECK(strstr(slurp("guide.log"), "\netcd: infra1 not listed in the initial cluster config\n") ||
	      strncmp(slurp("guide.log"), "etcd: infra1 not listed", 23) == 0);
	CHECK(!exists("dd"));
}

static void port_in_use(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port_base + 9))};
	inet_pton(AF_INET, host, &a.sin_addr);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 1) == 0);
	pid_t p = start("port.log", (const char *const[]){
		"--data-dir", "dd", "--listen-client-urls", url(9),
		"--advertise-client-urls", url(9), "--listen-peer-urls", url(1),
		"--initial-advertise-peer-urls", url(1), "--name", "p", NULL});
	CHECK(wait_exit(p, 5000) == 1);
	char want[128];
	snprintf(want, sizeof(want), "listen tcp %s:%d: bind: address already in use",
		 host, port_base + 9);
	CHECK(strstr(slurp("port.log"), want));
	CHECK(!exists("dd"));
	close(s);
}

static const char *const member_args[] = {
	"--data-dir", "m.etcd", "--name", "m", "--initial-cluster-token", "tok",
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

static void fill_member_args(const char **a)
{
	static char ic[128];
	memcpy(a, member_args, sizeof(member_args));
	snprintf(ic, sizeof(ic), "m=%s", url(1));
	const char *rest[] = {"--listen-client-urls", url(0), "--advertise-client-urls",
			      url(0), "--listen-peer-urls", url(1),
			      "--initial-advertise-peer-urls", url(1),
			      "--initial-cluster", ic, NULL};
	memcpy(a + 6, rest, sizeof(rest));
}

static void lifecycle(void)
{
	const char *args[20];
	fill_member_args(args);
	pid_t sup = start("run.log", args);
	static const char *const roles[] = {"raftd", "storaged", "gatewayd", "discoveryd"};
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = wait_child(sup, roles[i], 0, 5000);
		CHECK(pids[i] > 0);
	}
	/* The data dir and the identity, with etcd's IDs. */
	struct stat st;
	char path[512];
	snprintf(path, sizeof(path), "%s/m.etcd", tmp);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
	struct identity id;
	CHECK(identity_read(path, &id) == 0);
	struct url_list l = {0};
	char err[256];
	CHECK(url_list_parse(url(1), &l, err, sizeof(err)) == 0);
	uint64_t want = ids_member_id(&l, "tok");
	url_list_clear(&l);
	CHECK(id.member_id == want);
	CHECK(id.cluster_id == ids_cluster_id(&want, 1));
	CHECK_STR(id.name, "m");

	/* What each worker was handed. */
	char line[256];
	snprintf(line, sizeof(line), "config for m, member %016llx, bootstrap 1, 1 members",
		 (unsigned long long)want);
	CHECK(wait_log_n("run.log", line, 4, 5000));
	snprintf(line, sizeof(line), "gatewayd: client listener %s\n", url(0));
	CHECK(wait_log("run.log", line, 5000));
	snprintf(line, sizeof(line), "gatewayd: peer listener %s\n", url(1));
	CHECK(wait_log("run.log", line, 5000));
	static const char *const links[] = {
		"gatewayd: link to raftd up", "raftd: link to gatewayd up",
		"gatewayd: link to storaged up", "storaged: link to gatewayd up",
		"raftd: link to storaged up", "storaged: link to raftd up",
	};
	for (size_t i = 0; i < 6; i++)
		CHECK(wait_log("run.log", links[i], 5000));
	CHECK(wait_log("run.log", "all workers are ready", 5000));
	CHECK(count("run.log", "discoveryd: link to") == 0);

	/* gatewayd asks for metrics (stub: on SIGUSR1): etcd's version
	 * gauges, and the process metrics of the supervisor and discoveryd. */
	kill(pids[2], SIGUSR1);
	static const char *const metrics[] = {
		"gatewayd: metrics 1: etcd_server_version{server_version=\"3.4.23\"} gauge 1\n",
		"gatewayd: metrics 1: etcd_cluster_version{cluster_version=\"3.4\"} gauge 1\n",
		"gatewayd: metrics 1: process_resident_memory_bytes{process=\"supervisor\"} gauge ",
		"gatewayd: metrics 1: process_open_fds{process=\"supervisor\"} gauge ",
		"gatewayd: metrics 1: process_cpu_seconds_total{process=\"supervisor\"} counter ",
		"gatewayd: metrics 1: process_resident_memory_bytes{process=\"discoveryd\"} gauge ",
		"gatewayd: metrics 1: process_open_fds{process=\"discoveryd\"} gauge ",
	};
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		CHECK(wait_log("run.log", metrics[i], 5000));

	/* raftd killed: restarted, and both its peers get a fresh link. */
	kill(pids[0], SIGKILL);
	pid_t r2 = wait_child(sup, "raftd", pids[0], 5000);
	CHECK(r2 > 0);
	for (size_t i = 0; i < 6; i++)
		CHECK(wait_log_n("run.log", links[i], strstr(links[i], "raftd") ? 2 : 1, 5000));
	CHECK(count("run.log", "gatewayd: link to storaged up") == 1);
	pids[0] = r2;

	/* discoveryd never goes beyond idling: kill it, it comes back. */
	pid_t d = pids[3];
	kill(d, SIGKILL);
	pid_t d2 = wait_child(sup, "discoveryd", d, 5000);
	CHECK(d2 > 0 && d2 != d);
	CHECK(wait_log("run.log", "was killed by signal 9", 2000));
	CHECK(wait_log("run.log", "discoveryd (pid", 2000));
	CHECK(wait_log_n("run.log", "restarting it in 100 ms", 2, 2000));

	/* SIGTERM: exit 0, every worker gone. */
	CHECK(alive(sup));
	kill(sup, SIGTERM);
	CHECK(wait_exit(sup, 10000) == 0);
	CHECK(strstr(slurp("run.log"), "received terminated signal, shutting down..."));
	/* raftd was asked to hand leadership over before anything stopped. */
	CHECK(strstr(slurp("run.log"), "raftd: asked to hand leadership over"));
	msleep(100);
	for (int i = 0; i < 3; i++)
		CHECK(!alive(pids[i]) || find_child(sup, roles[i]) == 0);
	CHECK(!alive(d2));

	/* A member whose WAL exists restarts from its identity. */
	snprintf(path, sizeof(path), "%s/m.etcd/member/wal", tmp);
	mkdir(path, 0700);
	args[1] = "m.etcd";
	for (int i = 0; args[i]; i++)
		if (strcmp(args[i], "--initial-cluster-token") == 0)
			args[i + 1] = "other-token";
	sup = start("restart.log", args);
	CHECK(wait_log("restart.log", "the server is already initialized as member before", 5000));
	snprintf(line, sizeof(line), "restarting member %llx", (unsigned long long)want);
	CHECK(wait_log("restart.log", line, 5000));
	d = wait_child(sup, "discoveryd", 0, 5000);
	CHECK(d > 0);
	snprintf(line, sizeof(line), "config for m, member %016llx, bootstrap 0, 0 members",
		 (unsigned long long)want);
	CHECK(wait_log_n("restart.log", line, 4, 5000));

	/* Five crashes within 30 s stop the member with exit 1. */
	for (int i = 0; i < 5 && d; i++) {
		kill(d, SIGKILL);
		if (i < 4)
			d = wait_child(sup, "discoveryd", d, 8000);
	}
	CHECK(wait_exit(sup, 10000) == 1);
	CHECK(strstr(slurp("restart.log"), "stopping the member"));
}

static char *surl(int port_off)
{
	static char bufs[8][64];
	static int k;
	char *b = bufs[k++ % 8];
	snprintf(b, 64, "https://%s:%d", host, port_base + port_off);
	return b;
}

static bool same_file(const char *a, const char *b)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s/%s' '%s/%s'", tmp, a, tmp, b);
	return system(cmd) == 0;
}

/*
 * TLS: https without a certificate stops the start with nothing written;
 * auto TLS makes the fixtures once, the workers get their paths, a restart
 * reuses them.
 */
static void tls(void)
{
	char ic[128], line[1200];
	snprintf(ic, sizeof(ic), "t=%s", surl(11));
	pid_t p = start("tls-bad.log", (const char *const[]){
		"--data-dir", "tb.etcd", "--name", "t",
		"--listen-client-urls", url(10), "--advertise-client-urls", url(10),
		"--listen-peer-urls", surl(11), "--initial-advertise-peer-urls", surl(11),
		"--initial-cluster", ic, NULL});
	CHECK(wait_exit(p, 5000) == 1);
	snprintf(line, sizeof(line), "C | etcdmain: cannot listen on TLS for %s:%d: "
		 "KeyFile and CertFile are not presented\n", host, port_base + 11);
	CHECK(strstr(slurp("tls-bad.log"), line));
	CHECK(!exists("tb.etcd"));

	const char *const args[] = {
		"--data-dir", "ta.etcd", "--name", "t",
		"--listen-client-urls", surl(10), "--advertise-client-urls", surl(10),
		"--listen-peer-urls", surl(11), "--initial-advertise-peer-urls", surl(11),
		"--initial-cluster", ic, "--auto-tls", "--peer-auto-tls",
		"--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"--peer-cert-allowed-cn", "infra0", NULL};
	for (int round = 0; round < 2; round++) {
		const char *log = round ? "tls-again.log" : "tls.log";
		pid_t sup = start(log, args);
		/* Relative, as the data dir is (etcd's too). */
		CHECK(wait_log(log, "gatewayd: client tls: cert=ta.etcd/fixtures/"
			 "client/cert.pem key=ta.etcd/fixtures/client/key.pem ca= cca=0 "
			 "crl= cn= host= auto=1", 5000));
		CHECK(wait_log(log, "gatewayd: peer tls: cert=ta.etcd/fixtures/"
			 "peer/cert.pem key=ta.etcd/fixtures/peer/key.pem ca= cca=0 "
			 "crl= cn=infra0 host= auto=1", 5000));
		CHECK(strstr(slurp(log), "gatewayd: cipher TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
		CHECK(strstr(slurp(log), "I | embed: peerTLS: cert = ta.etcd/fixtures/peer/"
			 "cert.pem, key = ta.etcd/fixtures/peer/key.pem, trusted-ca = , "
			 "client-cert-auth = false, crl-file = \n"));
		CHECK(strstr(slurp(log), "I | embed: ClientTLS: cert = ta.etcd/fixtures/"
			 "client/cert.pem, key = ta.etcd/fixtures/client/key.pem, trusted-ca = , "
			 "client-cert-auth = false, crl-file = \n"));
		CHECK(exists("ta.etcd/fixtures/peer/key.pem"));
		CHECK(exists("ta.etcd/fixtures/client/cert.pem"));
		kill(sup, SIGTERM);
		CHECK(wait_exit(sup, 10000) == 0);
		if (round == 0) {
			char cmd[600];
			snprintf(cmd, sizeof(cmd), "cp '%s/ta.etcd/fixtures/peer/cert.pem' "
				 "'%s/peer-first.pem'", tmp, tmp);
			CHECK(system(cmd) == 0);
		}
	}
	CHECK(same_file("ta.etcd/fixtures/peer/cert.pem", "peer-first.pem"));
	CHECK(!same_file("ta.etcd/fixtures/peer/cert.pem", "ta.etcd/fixtures/client/cert.pem"));

	/* No TLS flag: the workers get no TlsInfo. */
	CHECK(strstr(slurp("run.log"), "gatewayd: client tls: none"));
	CHECK(strstr(slurp("run.log"), "gatewayd: peer tls: none"));
}

/* A worker's MSG_FATAL: "etcd: <message>", everything stops, exit 1. */
static void fatal(void)
{
	const char *args[20];
	fill_member_args(args);
	args[1] = "f.etcd";
	fatal_role = "storaged";
	pid_t sup = start("fatal.log", args);
	fatal_role = NULL;
	pid_t g = find_child(sup, "gatewayd");
	CHECK(wait_exit(sup, 10000) == 1);
	CHECK(strstr(slurp("fatal.log"), "\netcd: storaged cannot open its store (stub)\n"));
	CHECK(g == 0 || !alive(g));
	CHECK(count("fatal.log", "restarting it") == 0);
}

/* The supervisor killed outright: its workers follow (PR_SET_PDEATHSIG). */
static void no_orphans(void)
{
	const char *args[20];
	fill_member_args(args);
	args[1] = "o.etcd";
	pid_t sup = start("orphan.log", args);
	pid_t w = wait_child(sup, "discoveryd", 0, 5000);
	pid_t g = wait_child(sup, "gatewayd", 0, 5000);
	CHECK(w > 0 && g > 0);
	kill(sup, SIGKILL);
	CHECK(wait_exit(sup, 5000) == 128 + SIGKILL);
	for (int t = 0; t < 3000 && (alive(w) || alive(g)); t += 20)
		msleep(20);
	CHECK(!alive(w));
	CHECK(!alive(g));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_sup_run ETCD\n");
		return 2;
	}
	etcd = argv[1];
	snprintf(tmp, sizeof(tmp), "/tmp/test_sup_run.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	srand((unsigned)getpid());
	snprintf(host, sizeof(host), "127.0.%d.%d", 100 + rand() % 100, 2 + rand() % 250);
	port_base = 20000 + rand() % 20000;
	signal(SIGPIPE, SIG_IGN);

	bad_input();
	port_in_use();
	lifecycle();
	fatal();
	no_orphans();
	tls();

	/* Under -fsanitize, any report in any process's stderr is a failure. */
	static const char *const logs[] = {"bad.log", "guide.log", "port.log", "run.log",
					   "restart.log", "orphan.log", "fatal.log",
					   "tls-bad.log", "tls.log", "tls-again.log"};
	for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
		CHECK(!strstr(slurp(logs[i]), "Sanitizer"));
		CHECK(!strstr(slurp(logs[i]), "runtime error:"));
	}

	if (!check_failures) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	} else {
		fprintf(stderr, "logs kept in %s\n", tmp);
	}
	CHECK_DONE();
}
