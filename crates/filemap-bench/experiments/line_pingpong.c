/* Two processes ping-pong 64-byte messages through shared memory, written the
 * ways the SPSC ring could write them, to see what each costs on this machine
 * (filemap's design choices in channel/ring.rs and channel/mod.rs rest on it).
 *
 *   cc -O2 -o line_pingpong line_pingpong.c && ./line_pingpong
 *
 * Each record gets two cache lines: an 8-byte header (the sequence number)
 * then the 64-byte payload, so the payload's last 8 bytes are on line 2.
 * Prints the median round trip of each variant. */
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

#define N 200000
#define RING 65536

enum { FLOOR, RELEASE, SEQCST_STORE, RELEASE_FENCE, RELEASE_PREFETCH, NMODES };
static const char *names[] = {
    "floor: 8-byte sequence in one line",
    "header + 64 B, release store",
    "header + 64 B, seq_cst store (xchg on the polled line)",
    "header + 64 B, release store + seq_cst fence",
    "header + 64 B, release, reader prefetches line 2 while polling",
};
static int mode;

static void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); sched_setaffinity(0, sizeof s, &s); }
static uint64_t now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static int cmp(const void *a, const void *b) { uint64_t x = *(uint64_t *)a, y = *(uint64_t *)b; return x < y ? -1 : x > y; }

static void send(char *ring, uint64_t i, const char *msg) {
    char *r = ring + (i * 128) % RING;
    if (mode == FLOOR) { __atomic_store_n((uint64_t *)r, i + 1, __ATOMIC_RELEASE); return; }
    memcpy(r + 8, msg, 64);
    if (mode == SEQCST_STORE) { __atomic_store_n((uint64_t *)r, i + 1, __ATOMIC_SEQ_CST); return; }
    __atomic_store_n((uint64_t *)r, i + 1, __ATOMIC_RELEASE);
    if (mode == RELEASE_FENCE) __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void recv(char *ring, uint64_t i, char *out) {
    char *r = ring + (i * 128) % RING;
    for (;;) {
        uint64_t h = __atomic_load_n((uint64_t *)r, __ATOMIC_ACQUIRE);
        if (mode == RELEASE_PREFETCH) _mm_prefetch(r + 64, _MM_HINT_T0);
        if (h == i + 1) break;
        _mm_pause();
    }
    if (mode != FLOOR) memcpy(out, r + 8, 64);
}

int main(void) {
    static uint64_t lat[N];
    for (mode = 0; mode < NMODES; mode++) {
        char *m = mmap(0, 2 * RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        char *ping = m, *pong = m + RING, msg[64], out[64];
        memset(msg, 7, 64);
        pid_t p = fork();
        if (!p) { pin(1); for (uint64_t i = 0; i < N; i++) { recv(ping, i, out); send(pong, i, out); } _exit(0); }
        pin(0);
        for (uint64_t i = 0; i < N; i++) { uint64_t t = now(); send(ping, i, msg); recv(pong, i, out); lat[i] = now() - t; }
        waitpid(p, 0, 0);
        munmap(m, 2 * RING);
        qsort(lat + N / 10, N - N / 10, 8, cmp);
        printf("%4lu ns  %s\n", (unsigned long)lat[N / 10 + (N - N / 10) / 2], names[mode]);
    }
    return 0;
}
