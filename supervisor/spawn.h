/* Starting one worker process: fork, then re-execute ourselves as it. */
#ifndef ETCD_SUPERVISOR_SPAWN_H
#define ETCD_SUPERVISOR_SPAWN_H

#include <sys/types.h>

#include "proc.h"

/*
 * Forks and execs /proc/self/exe as "etcd: <role>" -P <role>, with sock
 * (borrowed; the caller closes its copy) as the child's fd 3 and no other
 * descriptor beyond stdin, stdout and stderr. The child dies with us
 * (PR_SET_PDEATHSIG). Returns the pid, or -errno.
 */
pid_t spawn_worker(enum proc_role role, int sock);

#endif
