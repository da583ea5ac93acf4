/* TEMPORARY skeleton: the real supervisor replaces it. */
#include <string.h>

#include "proc.h"

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "-P") == 0) {
		switch (proc_by_name(argv[2])) {
		case PROC_RAFTD: return raftd_main(argc, argv);
		case PROC_STORAGED: return storaged_main(argc, argv);
		case PROC_GATEWAYD: return gatewayd_main(argc, argv);
		case PROC_DISCOVERYD: return discoveryd_main(argc, argv);
		default: return 1;
		}
	}
	return 0;
}
