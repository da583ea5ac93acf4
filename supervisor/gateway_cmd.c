/*
 * `etcd gateway start`: etcd's TCP gateway, run by gatewayd alone under the
 * supervisor. Its command line is cobra's (etcd's gateway command), not
 * the server's: its own flags, help texts and errors, and no ETCD_*
 * variables. The checks before listening are etcd's, with its messages
 * (most on stdout, as etcd prints them); with --discovery-srv the
 * endpoints come from the _etcd-client SRV records, looked up by
 * discoveryd before gatewayd starts.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "gateway_cmd.h"
#include "listen.h"
#include "log.h"
#include "supervisor.h"
#include "url.h"

#define GW_MAX_ENDPOINTS 256

static const char top_help[] =
	"gateway related command\n"
	"\n"
	"Usage:\n"
	"  etcd gateway [command]\n"
	"\n"
	"Available Commands:\n"
	"  start       start the gateway\n"
	"\n"
	"Flags:\n"
	"  -h, --help   help for gateway\n"
	"\n"
	"Use \"etcd gateway [command] --help\" for more information about a command.\n";

static const char start_usage[] =
	"Usage:\n"
	"  etcd gateway start [flags]\n"
	"\n"
	"Flags:\n"
	"      --discovery-srv string        DNS domain used to bootstrap initial cluster\n"
	"      --discovery-srv-name string   service name to query when using DNS discovery\n"
	"      --endpoints strings           comma separated etcd cluster endpoints (default [127.0.0.1:2379])\n"
	"  -h, --help                        help for start\n"
	"      --insecure-discovery          accept insecure SRV records\n"
	"      --listen-addr string          listen address (default \"127.0.0.1:23790\")\n"
	"      --retry-delay duration        duration of delay before retrying failed endpoints (default 1m0s)\n"
	"      --trusted-ca-file string      path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.\n";

struct gw_opts {
	const char *srv, *srv_name, *listen, *ca;
	bool insecure;
	int64_t retry_ns;
	char *eps[GW_MAX_ENDPOINTS];
	size_t n_eps;
	bool eps_set; /* the default is replaced, not added to */
};

/* cobra's error and usage, then etcd's own print of the error (without a
 * newline), all on stderr. */
static int usage_error(const char *fmt, const char *a, const char *b)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, a, b);
	fprintf(stderr, "Error: %s\n%s\n%s", msg, start_usage, msg);
	return 1;
}

/* pflag's StringSlice: comma separated values, appended per flag given. */
static int add_endpoints(struct gw_opts *o, const char *v)
{
	if (!o->eps_set) {
		for (size_t i = 0; i < o->n_eps; i++)
			free(o->eps[i]);
		o->n_eps = 0;
		o->eps_set = true;
	}
	while (*v) {
		size_t n = strcspn(v, ",");
		if (o->n_eps == GW_MAX_ENDPOINTS)
			return -E2BIG;
		if (!(o->eps[o->n_eps] = strndup(v, n)))
			return -ENOMEM;
		o->n_eps++;
		v += n;
		if (*v == ',')
			v++;
	}
	return 0;
}

static int parse_bool(const char *v, bool *ret)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(v, t[i]) == 0)
			return *ret = true, 0;
		if (strcmp(v, f[i]) == 0)
			return *ret = false, 0;
	}
	return -EINVAL;
}

/* 0: parsed; 1: answered (help or an error printed), *ret_code set. */
static int parse(struct gw_opts *o, int argc, char **argv, int *ret_code)
{
	static const char *const names[] = {"discovery-srv", "discovery-srv-name",
		"endpoints", "insecure-discovery", "listen-addr", "retry-delay",
		"trusted-ca-file", "help"};
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0) {
			fputs("start the gateway\n\n", stdout);
			fputs(start_usage, stdout);
			return *ret_code = 0, 1;
		}
		if (strncmp(a, "--", 2) != 0 || !a[2])
			continue; /* cobra ignores positional arguments here */
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		size_t k;
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strlen(names[k]) == nlen && strncmp(name, names[k], nlen) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0]))
			return *ret_code = usage_error("unknown flag: %s%s", a, ""), 1;
		if (k == 7) {
			fputs("start the gateway\n\n", stdout);
			fputs(start_usage, stdout);
			return *ret_code = 0, 1;
		}
		const char *v = eq ? eq + 1 : NULL;
		if (k == 3) { /* a bool: the value only after '=' */
			bool b = true;
			if (v && parse_bool(v, &b) < 0) {
				char what[300];
				snprintf(what, sizeof(what),
					 "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
				return *ret_code = usage_error(
					       "invalid argument \"%s\" for \"--insecure-discovery\" flag: %s",
					       v, what), 1;
			}
			o->insecure = b;
			continue;
		}
		if (!v) {
			if (i + 1 >= argc) {
				char flag[64];
				snprintf(flag, sizeof(flag), "--%s", names[k]);
				return *ret_code = usage_error(
					       "flag needs an argument: %s%s", flag, ""), 1;
			}
			v = argv[++i];
		}
		switch (k) {
		case 0: o->srv = v; break;
		case 1: o->srv_name = v; break;
		case 2:
			if (add_endpoints(o, v) < 0) {
				fprintf(stderr, "etcd: too many --endpoints (at most %d)\n",
					GW_MAX_ENDPOINTS);
				return *ret_code = 1, 1;
			}
			break;
		case 4: o->listen = v; break;
		case 5:
			if (config_parse_duration(v, &o->retry_ns) < 0 || o->retry_ns < 0) {
				char what[300];
				snprintf(what, sizeof(what), "time: invalid duration \"%s\"", v);
				return *ret_code = usage_error(
					       "invalid argument \"%s\" for \"--retry-delay\" flag: %s",
					       v, what), 1;
			}
			break;
		case 6: o->ca = v; break;
		}
	}
	return 0;
}

/* Go's net.SplitHostPort for "host:port" and "[v6]:port". */
static int split_host_port(const char *hp, char *host, size_t hlen, char *port,
			   size_t plen)
{
	const char *colon = strrchr(hp, ':');
	if (!colon)
		return -EINVAL;
	const char *h = hp, *he = colon;
	if (*hp == '[') {
		const char *rb = strchr(hp, ']');
		if (!rb || rb + 1 != colon)
			return -EINVAL;
		h = hp + 1;
		he = rb;
	} else if (memchr(hp, ':', (size_t)(colon - hp))) {
		return -EINVAL; /* too many colons */
	}
	if ((size_t)(he - h) >= hlen || strlen(colon + 1) >= plen)
		return -EINVAL;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* etcd's stripSchema: "http://h:p" -> "h:p"; anything else as it is. */
static void strip_scheme(char *ep)
{
	char *s = strstr(ep, "://");
	if (s && s != ep)
		memmove(ep, s + 3, strlen(s + 3) + 1);
	size_t n = strcspn(ep, "/");
	ep[n] = '\0';
}

/* The numeric addresses host resolves to (getaddrinfo), or NULL. */
static struct addrinfo *resolve(const char *host)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *r;
	return getaddrinfo(host, NULL, &hints, &r) == 0 ? r : NULL;
}

/* An address of a that b also has, into out; 0 if none. */
static int common_address(const struct addrinfo *a, const struct addrinfo *b,
			  char *out, size_t outlen)
{
	char y[NI_MAXHOST];
	for (const struct addrinfo *p = a; p; p = p->ai_next) {
		if (getnameinfo(p->ai_addr, p->ai_addrlen, out, outlen, NULL, 0,
				NI_NUMERICHOST) != 0)
			continue;
		for (const struct addrinfo *q = b; q; q = q->ai_next)
			if (getnameinfo(q->ai_addr, q->ai_addrlen, y, sizeof(y),
					NULL, 0, NI_NUMERICHOST) == 0 &&
			    strcmp(out, y) == 0)
				return 1;
	}
	return 0;
}

/* etcd's checks of the endpoints and the listen address, in its order:
 * 0, or the exit code once printed. */
static int check(struct gw_opts *o, bool own_resolver)
{
	char lhost[256], lport[16], host[256], port[16], addr[NI_MAXHOST];
	for (size_t i = 0; i < o->n_eps; i++) {
		strip_scheme(o->eps[i]);
		if (split_host_port(o->eps[i], host, sizeof(host), port,
				    sizeof(port)) < 0) {
			printf("error parsing endpoint \"%s\"", o->eps[i]);
			fflush(stdout);
			return 1;
		}
	}
	struct addrinfo *la;
	if (split_host_port(o->listen, lhost, sizeof(lhost), lport, sizeof(lport)) < 0 ||
	    !(la = resolve(lhost))) {
		printf("failed to validate listen address: %s\n", o->listen);
		return 1;
	}
	for (size_t i = 0; i < o->n_eps; i++) {
		split_host_port(o->eps[i], host, sizeof(host), port, sizeof(port));
		struct addrinfo *ea = resolve(host);
		/* A name only ETCDC_RESOLVER knows is resolved by gatewayd
		 * at each dial: nothing to compare here. */
		if (!ea && !own_resolver) {
			printf("failed to parse endpoint address: %s\n", host);
			freeaddrinfo(la);
			return 1;
		}
		int same = ea && strcmp(port, lport) == 0 &&
			   common_address(ea, la, addr, sizeof(addr));
		if (ea)
			freeaddrinfo(ea);
		if (same) {
			printf("SRV or endpoint (%s:%s->%s:%s) should not resolve to the gateway listen addr (%s)\n",
			       host, port, addr, port, o->listen);
			freeaddrinfo(la);
			return 1;
		}
	}
	freeaddrinfo(la);
	if (o->n_eps == 0) {
		printf("no endpoints found\n");
		return 1;
	}
	return 0;
}

/* The gateway's configuration, and the SRV lookup's answer it waits for. */
struct gw_run {
	struct gw_opts *o;
	bool own_resolver;
	Ipc__GatewayConfig g;
	Ipc__WorkerConfig w;
	Ipc__JoinResult *r; /* owned */
};

/* discoveryd's SRV endpoints (none: the --endpoints ones), then etcd's
 * checks; 0 with *ret_wcfg, or -1 once printed. */
static int srv_found(void *arg, Ipc__JoinResult *r,
		     const Ipc__WorkerConfig **ret_wcfg)
{
	struct gw_run *run = arg;
	struct gw_opts *o = run->o;
	run->r = r;
	if (r->n_endpoints) {
		for (size_t i = 0; i < o->n_eps; i++)
			free(o->eps[i]);
		o->n_eps = 0;
		for (size_t i = 0; i < r->n_endpoints && i < GW_MAX_ENDPOINTS; i++) {
			if (!(o->eps[i] = strdup(r->endpoints[i])))
				return -1;
			o->n_eps++;
		}
	}
	if (check(o, run->own_resolver) != 0)
		return -1;
	run->g.n_endpoints = o->n_eps;
	run->g.endpoints = o->eps;
	run->w.discovery_srv = ""; /* found: a restarted discoveryd idles */
	*ret_wcfg = &run->w;
	return 0;
}

int gateway_cmd(int argc, char **argv)
{
	struct gw_opts o = {.listen = "127.0.0.1:23790", .retry_ns = 60000000000LL};
	struct gw_run run = {.o = &o};
	int code = 1;
	if (argc < 3 || strcmp(argv[2], "start") != 0) {
		fputs(top_help, stdout);
		return 0;
	}
	if (add_endpoints(&o, "127.0.0.1:2379") < 0)
		goto out;
	o.eps_set = false;
	if (parse(&o, argc, argv, &code))
		goto out;
	const char *res = getenv("ETCDC_RESOLVER");
	run.own_resolver = res && res[0];
	bool srv = o.srv && o.srv[0];
	/* With SRV records the checks wait for the endpoints they give. */
	if (!srv && (code = check(&o, run.own_resolver)) != 0)
		goto out;

	/* Listen: "http://" only to reuse the URL parser and binder. */
	char in[300], err[512];
	struct url u;
	struct listener l;
	snprintf(in, sizeof(in), "http://%s", o.listen);
	if (url_parse(in, &u, err, sizeof(err)) < 0) {
		printf("failed to validate listen address: %s\n", o.listen);
		code = 1;
		goto out;
	}
	int r = listener_open(&u, false, &l, err, sizeof(err));
	url_clear(&u);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		code = 1;
		goto out;
	}
	free(l.url);
	char lurl[300];
	snprintf(lurl, sizeof(lurl), "tcp://%s", o.listen);
	l.url = lurl;

	Ipc__GatewayConfig *g = &run.g;
	ipc__gateway_config__init(g);
	g->n_endpoints = o.n_eps;
	g->endpoints = o.eps;
	g->listen_addr = (char *)o.listen;
	g->retry_delay_ms = (uint32_t)(o.retry_ns / 1000000 > UINT32_MAX
					       ? UINT32_MAX : o.retry_ns / 1000000);
	g->insecure_discovery = o.insecure;
	g->trusted_ca_file = (char *)(o.ca ? o.ca : "");
	Ipc__WorkerConfig *w = &run.w;
	ipc__worker_config__init(w);
	w->name = "gateway";
	w->data_dir = "";
	w->log_level = "info";
	w->dns_resolver = (char *)(res ? res : "");
	w->discovery_srv = (char *)(srv ? o.srv : "");
	w->discovery_srv_name = (char *)(o.srv_name ? o.srv_name : "");
	w->gateway = g;
	struct sup_join join = {srv_found, &run};
	code = supervisor_run(w, srv ? &join : NULL, &l, 1);
	l.url = NULL;
	listener_close(&l);
out:
	for (size_t i = 0; i < o.n_eps; i++)
		free(o.eps[i]);
	if (run.r)
		protobuf_c_message_free_unpacked(&run.r->base, NULL);
	return code;
}
