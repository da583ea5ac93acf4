/* A deterministic in-process Raft cluster for the core's tests: nodes with a
 * model disk, a lossy reordering network, crashes, and safety checks. */
#ifndef ETCD_TESTS_RAFTD_SIM_H
#define ETCD_TESTS_RAFTD_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "raft.h"

/* What a failed check prints after itself (a seeded run's replay line);
 * weak, so test programs without sim.c share the header. */
__attribute__((weak)) char sim_failure_note[256];

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n%s", __FILE__, \
				__LINE__, #c, sim_failure_note);               \
			abort();                                               \
		}                                                              \
	} while (0)

#define SIM_MAX 6

/* What a node wrote to its disk. */
struct sim_disk {
	uint64_t term, vote, commit;
	uint64_t base_index, base_term;
	struct raft_conf base_conf;
	struct raft_ent **ents;
	size_t n, cap;
};

struct sim_node {
	uint64_t id;
	struct raft *r;         /* NULL while crashed */
	struct sim_disk disk;
	bool isolated;
	uint64_t applied;       /* index handed to the state machine */
	uint64_t reads_done;
	uint64_t reads_dropped;
	uint64_t last_read_index;
};

/*
 * A message in flight, or (report) the transport's word to node `to` that
 * its MsgSnap to `peer` ended: reports are local, never lost, but they
 * queue with the messages, so they come late and out of order.
 */
struct sim_packet {
	uint64_t to;
	uint8_t *buf;
	size_t len;
	uint64_t from;
	bool snap;    /* a MsgSnap: its sender hears how it ended */
	bool report;
	uint64_t peer;
	bool failed;
};

struct sim {
	int n;
	struct sim_node nodes[SIM_MAX];
	struct sim_packet *net;
	size_t n_net, cap_net;
	uint64_t rng;
	int loss_pct;           /* per delivery */
	int crash_mid_pct;      /* crash between early sends and persistence */
	bool no_snap_reports;   /* the test reports snapshots itself */
	uint64_t snap_reports;  /* delivered to a live node */
	/* Safety records. */
	uint64_t *committed_term; /* by index */
	uint32_t *committed_hash;
	size_t n_committed;
	uint64_t leader_of_term[4096];
	uint64_t next_data;
};

uint64_t sim_rand(struct sim *s);
/* Nodes 1..n; the first voters have the bootstrap log (AddNode 1..voters). */
void sim_init(struct sim *s, int n, int voters, uint64_t seed);
void sim_done(struct sim *s);
void sim_crash(struct sim *s, int i);
void sim_restart(struct sim *s, int i);
/* Processes every node's ready until none has one. */
void sim_settle(struct sim *s);
void sim_process(struct sim *s, int i);
bool sim_deliver_one(struct sim *s);
void sim_tick(struct sim *s, int i);
int sim_propose(struct sim *s, int i, uint64_t *ret_data);
int sim_propose_conf(struct sim *s, int i, Raftpb__ConfChangeType t, uint64_t id);
int sim_leader(struct sim *s); /* index of a live leader of the highest term, or -1 */
void sim_check_log_matching(struct sim *s);

#endif
