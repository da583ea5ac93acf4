/* Names of the member's processes. */
#include <string.h>

#include "proc.h"

static const char *const names[PROC_MAX] = {
	[PROC_SUPERVISOR] = "supervisor",
	[PROC_RAFTD] = "raftd",
	[PROC_STORAGED] = "storaged",
	[PROC_GATEWAYD] = "gatewayd",
	[PROC_DISCOVERYD] = "discoveryd",
};

const char *proc_name(enum proc_role role)
{
	if ((int)role < 0 || role >= PROC_MAX)
		return NULL;
	return names[role];
}

int proc_by_name(const char *name)
{
	for (int i = 0; i < PROC_MAX; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}
