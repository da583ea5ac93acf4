/* fork + execv of a worker, with only its supervisor link inherited. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* In the child: everything above fd 3 goes, whoever opened it. */
static void close_from(int lowfd)
{
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lowfd; fd < (max > 0 ? max : 1024); fd++)
		close((int)fd);
}

pid_t spawn_worker(enum proc_role role, int sock)
{
	char argv0[64];
	const char *name = proc_name(role);
	pid_t parent = getpid();

	snprintf(argv0, sizeof(argv0), "etcd: %s", name);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;

	/*
	 * Child. Only async-signal-safe calls from here to execv. The death
	 * signal is set before exec as well as by the worker itself, and we
	 * check that the parent did not die before it took effect.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(1);

	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGPIPE, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);

	if (sock == PROC_SUPERVISOR_FD) {
		int fl = fcntl(sock, F_GETFD);
		if (fl < 0 || fcntl(sock, F_SETFD, fl & ~FD_CLOEXEC) < 0)
			_exit(127);
	} else if (dup2(sock, PROC_SUPERVISOR_FD) < 0) {
		_exit(127);
	}
	close_from(PROC_SUPERVISOR_FD + 1);

	char *const argv[] = {argv0, (char *)"-P", (char *)name, NULL};
	execv("/proc/self/exe", argv);
	_exit(127);
}
