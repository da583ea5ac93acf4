/* Unit test of common/metrics.c: histograms, process metrics, and the text
 * rendering that merges several processes' metrics by family. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "check.h"

int main(void)
{
	struct arena a1, a2;
	arena_init(&a1, 0);
	arena_init(&a2, 0);
	struct metrics_out o1, o2;
	metrics_out_init(&o1, &a1);
	metrics_out_init(&o2, &a2);

	struct metrics_hist h;
	metrics_hist_init_disk(&h);
	metrics_hist_observe(&h, 0.0005);
	metrics_hist_observe(&h, 0.003);
	metrics_hist_observe(&h, 100);
	metrics_add_hist(&o1, "etcd_disk_wal_fsync_duration_seconds",
			 "The latency distributions of fsync called by WAL.", &h);
	metrics_add(&o1, METRIC_GAUGE, "etcd_server_has_leader",
		    "Whether or not a leader exists.", 1, NULL, NULL);
	metrics_add_process(&o1, "raftd", 0);
	metrics_add_process(&o2, "storaged", 0);
	const char *ln[] = {"k", NULL}, *lv[] = {"a\"b", NULL};
	metrics_add(&o2, METRIC_COUNTER, "x_total", "help \\ text", 2.5, ln, lv);
	/* Numbers as Go's strconv.FormatFloat(v, 'g', -1, 64) prints them. */
	metrics_add(&o2, METRIC_GAUGE, "g_big", "", 24801280, NULL, NULL);
	metrics_add(&o2, METRIC_GAUGE, "g_time", "", 1795312590.09, NULL, NULL);
	metrics_add(&o2, METRIC_GAUGE, "g_small", "", 0.00001, NULL, NULL);
	metrics_add(&o2, METRIC_GAUGE, "g_plain", "", 123456, NULL, NULL);

	const Ipc__Metrics *parts[] = {&o1.msg, &o2.msg};
	size_t len;
	char *t = metrics_render(parts, 2, &len);
	CHECK(t && strlen(t) == len);
	CHECK(strstr(t, "# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n"));
	CHECK(strstr(t, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 1\n"));
	CHECK(strstr(t, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 2\n"));
	CHECK(strstr(t, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"8.192\"} 2\n"));
	CHECK(strstr(t, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	CHECK(strstr(t, "etcd_disk_wal_fsync_duration_seconds_count 3\n"));
	CHECK(strstr(t, "etcd_server_has_leader 1\n"));
	CHECK(strstr(t, "x_total{k=\"a\\\"b\"} 2.5\n"));
	CHECK(strstr(t, "# HELP x_total help \\\\ text\n"));
	CHECK(strstr(t, "\ng_big 2.480128e+07\n"));
	CHECK(strstr(t, "\ng_time 1.79531259009e+09\n"));
	CHECK(strstr(t, "\ng_small 1e-05\n"));
	CHECK(strstr(t, "\ng_plain 123456\n"));
	/* Both processes' RSS under one family, HELP and TYPE once. */
	char *p = strstr(t, "# TYPE process_resident_memory_bytes gauge\n");
	CHECK(p && !strstr(p + 1, "# TYPE process_resident_memory_bytes"));
	char *r1 = strstr(t, "process_resident_memory_bytes{process=\"raftd\"} ");
	char *r2 = strstr(t, "process_resident_memory_bytes{process=\"storaged\"} ");
	CHECK(r1 && r2 && r1 > p && r2 > r1);
	CHECK(!strstr(r2, "# TYPE") || strstr(r2, "# TYPE") > strstr(r2, "\n"));
	CHECK(strstr(t, "process_open_fds{process=\"raftd\"} "));
	free(t);
	arena_done(&a1);
	arena_done(&a2);
	printf("metrics: ok\n");
	return 0;
}
