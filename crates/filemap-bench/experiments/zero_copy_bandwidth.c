/* The bare cost of moving bytes between cores: one process fills 1 MiB
 * buffers in place in a ring of four, the other sums them in place (AVX2),
 * with one index each way and no channel. Compared with memcpy on one core,
 * the yardstick of filemap's 1 MiB zero-copy target.
 *
 *   cc -O2 -mavx2 -o zero_copy_bandwidth zero_copy_bandwidth.c && ./zero_copy_bandwidth */
#define _GNU_SOURCE
#include <immintrin.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG (1 << 20)
#define SLOTS 4
#define N 4096

static void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); sched_setaffinity(0, sizeof s, &s); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    char *m = mmap(0, SLOTS * MSG + 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile uint64_t *freed = (uint64_t *)m, *full = (uint64_t *)(m + 64);
    char *ring = m + 4096;
    pid_t p = fork();
    if (!p) {
        pin(1);
        for (uint64_t i = 0; i < N; i++) {
            while (i - *freed >= SLOTS) _mm_pause();
            memset(ring + (i % SLOTS) * MSG, (int)i, MSG);
            __atomic_store_n(full, i + 1, __ATOMIC_RELEASE);
        }
        _exit(0);
    }
    pin(0);
    double t0 = 0;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < N; i++) {
        while (__atomic_load_n(full, __ATOMIC_ACQUIRE) <= i) _mm_pause();
        if (i == N / 10) t0 = now();
        const uint64_t *q = (const uint64_t *)(ring + (i % SLOTS) * MSG);
        __m256i acc = _mm256_setzero_si256();
        for (size_t k = 0; k < MSG / 8; k += 4) acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(q + k)));
        uint64_t t[4];
        _mm256_storeu_si256((__m256i *)t, acc);
        sum += t[0] + t[1] + t[2] + t[3];
        __atomic_store_n(freed, i + 1, __ATOMIC_RELEASE);
    }
    double dt = now() - t0;
    waitpid(p, 0, 0);
    printf("between cores, in place: %.1f GB/s (checksum %lu)\n", (double)(N - N / 10) * MSG / dt / 1e9, (unsigned long)sum);
    char *a = malloc(MSG), *b = malloc(MSG);
    memset(a, 1, MSG);
    memset(b, 2, MSG);
    t0 = now();
    for (int i = 0; i < N; i++) { memcpy(b, a, MSG); __asm__ volatile("" ::"r"(b) : "memory"); }
    printf("memcpy on one core:      %.1f GB/s\n", (double)N * MSG / (now() - t0) / 1e9);
    return 0;
}
