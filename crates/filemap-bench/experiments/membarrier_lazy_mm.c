/*
 * Why filemap gave up its membarrier scheme: a process registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED that registered while one of its CPUs was
 * idle, with the process's memory map still loaded there, is not sent the
 * barrier's IPI on that CPU afterwards.
 *
 * The kernel sends GLOBAL_EXPEDITED's IPI to CPUs whose runqueue is marked
 * for it. Registration marks the CPUs currently running one of the process's
 * threads; a context switch marks (or clears) the mark when the CPU switches
 * to a different memory map. An idle CPU that last ran the process keeps its
 * map loaded (lazy TLB): it is neither running a thread of the process at
 * registration nor switching maps when the thread comes back, so the mark is
 * never set, until that CPU runs some other process in between.
 *
 * Here: a child pinned to CPU 1 sleeps while a thread of it, on CPU 0,
 * registers; then it spins on CPU 1. The parent, on CPU 0, issues 20,000
 * GLOBAL_EXPEDITED barriers and counts the function-call IPIs CPU 1 took
 * (the CAL line of /proc/interrupts, x86). With `busy` the child spins during
 * the registration too (the control).
 *
 *     cc -O2 -pthread -o /tmp/ml membarrier_lazy_mm.c && /tmp/ml && /tmp/ml busy
 *
 * On the development VM (Linux 6.18, 2 vCPUs, 2026-12-05), 13 runs of each:
 * idle during registration, 0 IPIs in 9 runs, 20,000 in 3 and 7,473 in one
 * (runs where something else ran on CPU 1 in between: the first of each
 * batch, and one during a build); busy, 19,903-20,000 in all 13.
 */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

/* Function-call IPIs CPU 1 has taken so far, -1 if unknown. */
static long cpu1_ipis(void) {
    FILE *f = fopen("/proc/interrupts", "r");
    char line[1024];
    long a = -1, b = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ') p++;
        if (!strncmp(p, "CAL:", 4)) sscanf(p + 4, "%ld %ld", &a, &b);
    }
    fclose(f);
    return b;
}

static void spin_ms(int ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms) return;
    }
}

static void *register_later(void *arg) {
    (void)arg;
    pin(0);
    usleep(50000);
    if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) perror("register");
    return NULL;
}

int main(int argc, char **argv) {
    int busy = argc > 1 && !strcmp(argv[1], "busy");
    pid_t child = fork();
    if (child == 0) {
        pthread_t t;
        pin(1);
        pthread_create(&t, NULL, register_later, NULL);
        if (busy) spin_ms(150); else usleep(150000);
        spin_ms(1500);
        _exit(0);
    }
    pin(0);
    usleep(400000);
    long before = cpu1_ipis();
    for (int i = 0; i < 20000; i++) membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
    long after = cpu1_ipis();
    printf("%s during registration: IPIs on CPU 1 for 20000 barriers: %ld\n",
           busy ? "busy" : "idle", after - before);
    waitpid(child, NULL, 0);
    return 0;
}
