/* What MEMBARRIER_CMD_GLOBAL_EXPEDITED costs the side about to sleep
 * (channel::Park::wait), with and without another registered process running.
 *
 *   cc -O2 -o membarrier_cost membarrier_cost.c && ./membarrier_cost */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int mb(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }
static void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); sched_setaffinity(0, sizeof s, &s); }
static double per_call_us(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 10000; i++) mb(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 10000 / 1000.0;
}

int main(void) {
    pin(0);
    printf("no other registered process running: %.2f us per barrier\n", per_call_us());
    pid_t p = fork();
    if (!p) { pin(1); mb(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED); for (;;) __asm__ volatile("pause"); }
    usleep(100000);
    printf("a registered process spinning on CPU 1: %.2f us per barrier\n", per_call_us());
    kill(p, SIGKILL);
    return 0;
}
