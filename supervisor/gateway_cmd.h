/* `etcd gateway ...`: etcd's TCP gateway command (gateway_cmd.c). */
#ifndef ETCD_SUPERVISOR_GATEWAY_CMD_H
#define ETCD_SUPERVISOR_GATEWAY_CMD_H

/* argv[1] is "gateway": runs it; returns the exit code. */
int gateway_cmd(int argc, char **argv);

#endif
