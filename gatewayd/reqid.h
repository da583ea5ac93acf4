/*
 * Request IDs in the shape of etcd's pkg/idutil: the low 16 bits of the
 * member ID, 40 bits of the start time in milliseconds, 8 bits of counter
 * (which carries into the time bits). storaged tells this member's proposals
 * by the top 16 bits.
 */
#ifndef ETCD_GATEWAYD_REQID_H
#define ETCD_GATEWAYD_REQID_H

#include <stdint.h>

struct reqid {
	uint64_t prefix;
	uint64_t suffix;
};

void reqid_init(struct reqid *g, uint64_t member_id, uint64_t unix_ms);
uint64_t reqid_next(struct reqid *g);

#endif
