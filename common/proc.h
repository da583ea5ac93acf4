/* The processes of one member: their roles, and names as ps shows them. */
#ifndef ETCD_COMMON_PROC_H
#define ETCD_COMMON_PROC_H

enum proc_role {
	PROC_SUPERVISOR = 0,
	PROC_RAFTD = 1,
	PROC_STORAGED = 2,
	PROC_GATEWAYD = 3,
	PROC_DISCOVERYD = 4,
	PROC_MAX
};

/* Every worker finds its link to the supervisor on this descriptor. */
#define PROC_SUPERVISOR_FD 3

/* "raftd", "storaged", ...; NULL for an out-of-range role. */
const char *proc_name(enum proc_role role);
/* The role named name, or -1. */
int proc_by_name(const char *name);

/*
 * The entry function of each worker, run in a fresh process by
 * "etcd -P <role>" (the supervisor's main dispatches on -P). Each returns the
 * process exit code.
 */
int raftd_main(int argc, char **argv);
int storaged_main(int argc, char **argv);
int gatewayd_main(int argc, char **argv);
int discoveryd_main(int argc, char **argv);

#endif
