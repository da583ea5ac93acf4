/*
 * etcd's etcd_network_* metrics of the peer transport, per peer member,
 * with etcd 3.4's names, help texts and labels (member IDs in hex as
 * etcd's types.ID prints them). Only label sets that were touched are
 * shown, as Prometheus' CounterVec does.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gw.h"
#include "metrics.h"
#include "peer.h"

struct pstat {
	uint64_t v[PS_MAX];
	unsigned touched;      /* bit per enum pstat_kind */
	int active;            /* etcd_network_active_peers */
	int active_seen;
	uint64_t disconnected; /* etcd_network_disconnected_peers_total */
};

static const struct {
	const char *name, *help, *label;
} defs[PS_MAX] = {
	[PS_SENT_BYTES] = { "etcd_network_peer_sent_bytes_total",
			    "The total number of bytes sent to peers.", "To" },
	[PS_RECV_BYTES] = { "etcd_network_peer_received_bytes_total",
			    "The total number of bytes received from peers.",
			    "From" },
	[PS_SENT_FAIL] = { "etcd_network_peer_sent_failures_total",
			   "The total number of send failures from peers.",
			   "To" },
	[PS_RECV_FAIL] = { "etcd_network_peer_received_failures_total",
			   "The total number of receive failures from peers.",
			   "From" },
	[PS_SNAP_SEND_OK] = { "etcd_network_snapshot_send_success",
			      "Total number of successful snapshot sends",
			      "To" },
	[PS_SNAP_SEND_FAIL] = { "etcd_network_snapshot_send_failures",
				"Total number of snapshot send failures", "To" },
	[PS_SNAP_RECV_OK] = { "etcd_network_snapshot_receive_success",
			      "Total number of successful snapshot receives",
			      "From" },
	[PS_SNAP_RECV_FAIL] = { "etcd_network_snapshot_receive_failures",
				"Total number of snapshot receive failures",
				"From" },
};

/* The counters of id, made on first use; NULL beyond the limit. */
static struct pstat *get(struct gw *gw, uint64_t id)
{
	struct pstat *s = u64map_get(&gw->pstats, id);
	if (s || gw->pstats.n >= PSTAT_MAX_PEERS)
		return s;
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	if (u64map_put(&gw->pstats, id, s) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

void pstat_add(struct gw *gw, uint64_t id, enum pstat_kind k, uint64_t n)
{
	struct pstat *s = get(gw, id);
	if (!s)
		return;
	s->v[k] += n;
	s->touched |= 1u << k;
}

void pstat_active(struct gw *gw, uint64_t id, int active)
{
	struct pstat *s = get(gw, id);
	if (!s || s->active == !!active)
		return;
	/* etcd deactivates a peer it had seen active: that is a loss. */
	if (!active)
		s->disconnected++;
	s->active = !!active;
	s->active_seen = 1;
}

static void idstr(char *out, size_t n, uint64_t id)
{
	if (id)
		snprintf(out, n, "%llx", (unsigned long long)id);
	else
		snprintf(out, n, "UNKNOWN_SNAPSHOT_SENDER");
}

void pstat_render(struct gw *gw, struct metrics_out *o)
{
	char local[17], remote[32];
	static const char *const lr[] = { "Local", "Remote", NULL };
	snprintf(local, sizeof(local), "%llx", (unsigned long long)gw->member_id);
	for (int k = 0; k < PS_MAX; k++) {
		const char *names[] = { defs[k].label, NULL };
		for (size_t i = 0; i < gw->pstats.cap; i++) {
			const struct pstat *s = gw->pstats.slot[i].val;
			if (!s || !(s->touched & (1u << k)))
				continue;
			const char *values[] = { remote, NULL };
			idstr(remote, sizeof(remote), gw->pstats.slot[i].key);
			metrics_add(o, METRIC_COUNTER, defs[k].name, defs[k].help,
				    (double)s->v[k], names, values);
		}
	}
	for (size_t i = 0; i < gw->pstats.cap; i++) {
		const struct pstat *s = gw->pstats.slot[i].val;
		if (!s || !s->active_seen)
			continue;
		const char *values[] = { local, remote, NULL };
		idstr(remote, sizeof(remote), gw->pstats.slot[i].key);
		metrics_add(o, METRIC_GAUGE, "etcd_network_active_peers",
			    "The current number of active peer connections.",
			    s->active, lr, values);
		if (s->disconnected)
			metrics_add(o, METRIC_COUNTER,
				    "etcd_network_disconnected_peers_total",
				    "The total number of disconnected peers.",
				    (double)s->disconnected, lr, values);
	}
}

void pstat_done(struct gw *gw)
{
	for (size_t i = 0; i < gw->pstats.cap; i++)
		free(gw->pstats.slot[i].val);
	u64map_clear(&gw->pstats);
}
