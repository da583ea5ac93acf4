/* The supervisor's answer to gatewayd's MSG_METRICS. */
#ifndef ETCD_SUPERVISOR_SUP_METRICS_H
#define ETCD_SUPERVISOR_SUP_METRICS_H

#include <stdint.h>
#include <sys/types.h>

#include "link.h"

/*
 * Queues MSG_METRICS_RESP (ipc.Metrics, frame id = id) on l (borrowed, the
 * link to gatewayd): etcd's version gauges and the process metrics of the
 * supervisor and, when discoveryd > 0, of that pid. 0 or -errno.
 */
int sup_metrics_send(struct link *l, uint64_t id, pid_t discoveryd);

#endif
