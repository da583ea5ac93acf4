/*
 * The supervisor's part of /metrics: the version gauges etcd 3.4 exports,
 * and the process metrics of the supervisor and of discoveryd (which has no
 * link to gatewayd, so the supervisor reports it from /proc).
 */
#include <string.h>

#include "arena.h"
#include "metrics.h"
#include "sup_metrics.h"

/* A few dozen samples; a bound all the same. */
#define SUP_METRICS_ARENA_LIMIT (1u << 20)

/* etcd labels the cluster version major.minor ("3.4"), not "3.4.0". */
static void major_minor(const char *v, char *out, size_t n)
{
	const char *dot = strchr(v, '.');
	size_t len = strlen(v);
	if (dot && (dot = strchr(dot + 1, '.')))
		len = (size_t)(dot - v);
	if (len >= n)
		len = n - 1;
	memcpy(out, v, len);
	out[len] = 0;
}

int sup_metrics_send(struct link *l, uint64_t id, pid_t discoveryd)
{
	struct arena a;
	struct metrics_out o;
	char cv[32];
	const char *sn[] = {"server_version", NULL}, *sv[] = {ETCD_VERSION, NULL};
	const char *cn[] = {"cluster_version", NULL}, *cvv[] = {cv, NULL};

	arena_init(&a, SUP_METRICS_ARENA_LIMIT);
	metrics_out_init(&o, &a);
	major_minor(ETCD_CLUSTER_VERSION, cv, sizeof(cv));
	metrics_add(&o, METRIC_GAUGE, "etcd_server_version",
		    "Which version is running. 1 for 'server_version' label "
		    "with current version.", 1, sn, sv);
	metrics_add(&o, METRIC_GAUGE, "etcd_cluster_version",
		    "Which version is running. 1 for 'cluster_version' label "
		    "with current cluster version", 1, cn, cvv);
	metrics_add_process(&o, "supervisor", 0);
	if (discoveryd > 0)
		metrics_add_process(&o, "discoveryd", discoveryd);
	int rc = link_send_pb(l, MSG_METRICS_RESP, id, &o.msg.base);
	arena_done(&a);
	return rc;
}
