/*
 * The C side of the cross-process tests (tests/c_api.rs): one end of a
 * channel, a holder of a mapping, or a holder of the robust mutex.
 *
 *   peer send KIND NAME COUNT    open KIND's sender (retrying until the
 *                                receiver has made it), send COUNT numbered
 *                                messages: the odd ones reserved in place
 *   peer recv KIND NAME COUNT    create KIND's channel as its receiver,
 *                                print "ready", take COUNT messages and
 *                                check every one: the odd ones borrowed,
 *                                every tenth into a buffer too small first
 *   peer hold NAME               create a 4096-byte mapping, print "ready",
 *                                wait for end of input
 *   peer lock NAME               lock the mutex NAME (creating it), print
 *                                "locked", wait for end of input
 *   peer relock NAME             lock the mutex NAME; print
 *                                "owner_died=0|1 value=V"
 *
 * KIND is spsc, mpmc or broadcast. Message n is 8 + (n * 7) % 57 bytes:
 * n as 8 little-endian bytes, then (n + k) & 0xff for k = 8, 9, ...
 * Exit status 0 when all went well; otherwise the reason is on stderr.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include <filemap.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MESSAGE 64
#define WAIT_MS 20000

static int fail(const char *what, FmStatus st) {
    fprintf(stderr, "peer: %s: %s: %s\n", what, fm_status_name(st), fm_last_error_message());
    return 1;
}

static size_t message_len(uint64_t n) { return 8 + (size_t)((n * 7) % 57); }

static void message_fill(uint64_t n, uint8_t *buf) {
    size_t len = message_len(n);
    for (size_t k = 0; k < 8; k++) buf[k] = (uint8_t)(n >> (8 * k));
    for (size_t k = 8; k < len; k++) buf[k] = (uint8_t)((n + k) & 0xff);
}

static int message_check(uint64_t n, const uint8_t *got, size_t len) {
    uint8_t want[MAX_MESSAGE];
    if (len != message_len(n)) {
        fprintf(stderr, "peer: message %" PRIu64 " is %zu bytes, not %zu\n", n, len, message_len(n));
        return 1;
    }
    message_fill(n, want);
    if (memcmp(want, got, len) != 0) {
        fprintf(stderr, "peer: message %" PRIu64 " has the wrong bytes\n", n);
        return 1;
    }
    return 0;
}

#ifdef _WIN32
#include <windows.h>
static void pause_1ms(void) { Sleep(1); }
#else
static void pause_1ms(void) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}
#endif

/* Waits for end of input (the test closes our stdin, or kills us). */
static void wait_for_eof(void) {
    int c;
    while ((c = getchar()) != EOF) {
    }
}

static int do_send(const char *kind, const char *name, uint64_t count) {
    FmSpscSender *s = NULL;
    FmMpmcSender *m = NULL;
    FmBroadcastSender *b = NULL;
    FmStatus st;
    /* The receiver makes the channel: retry the open until it exists. */
    time_t end = time(NULL) + WAIT_MS / 1000;
    for (;;) {
        if (!strcmp(kind, "spsc")) st = fm_spsc_sender_open(name, &s);
        else if (!strcmp(kind, "mpmc")) st = fm_mpmc_sender_open(name, &m);
        else st = fm_broadcast_sender_open(name, &b);
        if (st == FM_OK) break;
        if (st != FM_NOT_FOUND || time(NULL) > end) return fail("open the sender", st);
        pause_1ms();
    }
    uint8_t buf[MAX_MESSAGE];
    for (uint64_t n = 0; n < count; n++) {
        size_t len = message_len(n);
        if (n % 2 == 1) {
            void *slot = NULL;
            if (s) st = fm_spsc_reserve_timeout(s, len, &slot, WAIT_MS);
            else if (m) st = fm_mpmc_reserve_timeout(m, len, &slot, WAIT_MS);
            else st = fm_broadcast_reserve(b, len, &slot);
            if (st != FM_OK) return fail("reserve", st);
            message_fill(n, slot);
            if (s) st = fm_spsc_commit(s);
            else if (m) st = fm_mpmc_commit(m);
            else st = fm_broadcast_commit(b);
            if (st != FM_OK) return fail("commit", st);
        } else {
            message_fill(n, buf);
            if (s) st = fm_spsc_send_timeout(s, buf, len, WAIT_MS);
            else if (m) st = fm_mpmc_send_timeout(m, buf, len, WAIT_MS);
            else st = fm_broadcast_send(b, buf, len);
            if (st != FM_OK) return fail("send", st);
        }
    }
    fm_spsc_sender_close(s);
    fm_mpmc_sender_close(m);
    fm_broadcast_sender_close(b);
    printf("sent %" PRIu64 "\n", count);
    return 0;
}

static int do_recv(const char *kind, const char *name, uint64_t count) {
    FmSpscReceiver *s = NULL;
    FmMpmcReceiver *m = NULL;
    FmBroadcastReceiver *b = NULL;
    FmStatus st;
    if (!strcmp(kind, "spsc")) st = fm_spsc_receiver_create(name, 1 << 16, &s);
    else if (!strcmp(kind, "mpmc")) st = fm_mpmc_receiver_create(name, 1024, MAX_MESSAGE, &m);
    /* Broadcast never waits for a receiver: a ring larger than the whole
     * run keeps every message. */
    else st = fm_broadcast_receiver_create(name, 1 << 17, MAX_MESSAGE, &b);
    if (st != FM_OK) return fail("create the receiver", st);
    printf("ready\n");
    fflush(stdout);
    uint8_t buf[MAX_MESSAGE];
    uint8_t small[16];
    uint64_t too_small = 0;
    for (uint64_t n = 0; n < count; n++) {
        size_t len = 0;
        if (n % 10 == 4 && message_len(n) > sizeof small) {
            /* Too small a buffer: the message stays queued, its length told. */
            if (s) st = fm_spsc_recv_timeout(s, small, sizeof small, &len, WAIT_MS);
            else if (m) st = fm_mpmc_recv_timeout(m, small, sizeof small, &len, WAIT_MS);
            else st = fm_broadcast_recv_timeout(b, small, sizeof small, &len, NULL, WAIT_MS);
            if (st != FM_BUFFER_TOO_SMALL || len != message_len(n)) return fail("receive into a small buffer", st);
            too_small++;
        }
        if (n % 2 == 1 && !b) {
            const void *data = NULL;
            if (s) st = fm_spsc_recv_borrow_timeout(s, &data, &len, WAIT_MS);
            else st = fm_mpmc_recv_borrow_timeout(m, &data, &len, WAIT_MS);
            if (st != FM_OK) return fail("borrow", st);
            if (message_check(n, data, len)) return 1;
            if (s) st = fm_spsc_release(s);
            else st = fm_mpmc_release(m);
            if (st != FM_OK) return fail("release", st);
        } else {
            FmBroadcastInfo info = {0, 0};
            if (s) st = fm_spsc_recv_timeout(s, buf, sizeof buf, &len, WAIT_MS);
            else if (m) st = fm_mpmc_recv_timeout(m, buf, sizeof buf, &len, WAIT_MS);
            else st = fm_broadcast_recv_timeout(b, buf, sizeof buf, &len, &info, WAIT_MS);
            if (st != FM_OK) return fail("receive", st);
            if (b && (info.seq != n || info.missed != 0)) {
                fprintf(stderr, "peer: broadcast message %" PRIu64 " came as seq %" PRIu64 " after %" PRIu64 " missed\n",
                        n, info.seq, info.missed);
                return 1;
            }
            if (message_check(n, buf, len)) return 1;
        }
    }
    fm_spsc_receiver_close(s);
    fm_mpmc_receiver_close(m);
    fm_broadcast_receiver_close(b);
    printf("received %" PRIu64 " checked, %" PRIu64 " first into too small a buffer\n", count, too_small);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "send")) return do_send(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 5 && !strcmp(argv[1], "recv")) return do_recv(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 3 && !strcmp(argv[1], "hold")) {
        FmMapping *map;
        FmStatus st = fm_mapping_create(argv[2], 4096, &map);
        if (st != FM_OK) return fail("create the mapping", st);
        printf("ready\n");
        fflush(stdout);
        wait_for_eof();
        fm_mapping_close(map);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "lock")) {
        FmMutex *mx;
        FmStatus st = fm_mutex_create(argv[2], &mx);
        if (st != FM_OK) return fail("create the mutex", st);
        if ((st = fm_mutex_lock(mx, NULL)) != FM_OK) return fail("lock", st);
        if ((st = fm_mutex_set(mx, 42)) != FM_OK) return fail("set", st);
        printf("locked\n");
        fflush(stdout);
        wait_for_eof();
        fm_mutex_close(mx);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "relock")) {
        FmMutex *mx;
        bool died = false;
        uint64_t value = 0;
        FmStatus st = fm_mutex_open(argv[2], &mx);
        if (st != FM_OK) return fail("open the mutex", st);
        if ((st = fm_mutex_lock_timeout(mx, &died, WAIT_MS)) != FM_OK) return fail("lock", st);
        if ((st = fm_mutex_get(mx, &value)) != FM_OK) return fail("get", st);
        if ((st = fm_mutex_unlock(mx)) != FM_OK) return fail("unlock", st);
        printf("owner_died=%d value=%" PRIu64 "\n", died ? 1 : 0, value);
        fm_mutex_close(mx);
        return 0;
    }
    fprintf(stderr, "usage: peer send|recv KIND NAME COUNT | hold NAME | lock NAME | relock NAME\n");
    return 2;
}
