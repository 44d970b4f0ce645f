/*
 * Every call of the C API in one process, and every bad input the header
 * documents, checked for its status code and its message
 * (tests/c_api.rs runs it, under AddressSanitizer on Linux, and under Wine
 * for Windows).
 *
 *   selftest PREFIX DIR    names start with PREFIX; files go in DIR
 *
 * Prints "selftest: N checks passed" and exits 0, or lists each failure.
 */
#include <filemap.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failures;
static char prefix[128];
static char dir[512];

#define EXPECT(call, want)                                                                    \
    do {                                                                                      \
        FmStatus st_ = (call);                                                                \
        if (st_ != (want)) {                                                                  \
            fprintf(stderr, "%s:%d: %s gave %s, expected %s: %s\n", __FILE__, __LINE__, #call, \
                    fm_status_name(st_), fm_status_name(want), fm_last_error_message());      \
            failures++;                                                                       \
        } else {                                                                              \
            checks++;                                                                         \
        }                                                                                     \
    } while (0)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: not true: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                      \
        } else {                                                             \
            checks++;                                                        \
        }                                                                    \
    } while (0)

/* The last message mentions `what`. */
#define MESSAGE_NAMES(what) CHECK(strstr(fm_last_error_message(), (what)) != NULL)

static const char *name(const char *suffix) {
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s-%s", prefix, suffix);
    return buf[i];
}

static void mappings(void) {
    FmMapping *m = NULL, *m2 = NULL;
    FmView *v = NULL;
    bool created = false;
    uint64_t size = 0;

    /* Bad arguments: NULL, not UTF-8, bad names, sizes, flags. */
    EXPECT(fm_mapping_create(name("map"), 4096, NULL), FM_INVALID_ARGUMENT);
    EXPECT(fm_mapping_create(NULL, 4096, &m), FM_INVALID_ARGUMENT);
    MESSAGE_NAMES("name");
    EXPECT(fm_mapping_create("bad\xff\xfe", 4096, &m), FM_INVALID_ARGUMENT);
    MESSAGE_NAMES("UTF-8");
    EXPECT(fm_mapping_create("a/b", 4096, &m), FM_INVALID_NAME);
    MESSAGE_NAMES("a/b");
    EXPECT(fm_mapping_create(name("map"), 0, &m), FM_INVALID_SIZE);
    EXPECT(fm_mapping_open(name("none"), FM_ACCESS_READ, &m), FM_NOT_FOUND);
    MESSAGE_NAMES(name("none"));
    EXPECT(fm_mapping_open(name("none"), 7, &m), FM_INVALID_ARGUMENT);
    CHECK(m == NULL); /* outputs untouched on failure */

    /* Create, create again, open, create-or-open. (A size in whole pages:
     * Windows reports an opened section's size rounded up to one.) */
    EXPECT(fm_mapping_create(name("map"), 12288, &m), FM_OK);
    EXPECT(fm_mapping_create(name("map"), 4096, &m2), FM_ALREADY_EXISTS);
    MESSAGE_NAMES(name("map"));
    EXPECT(fm_mapping_size(m, &size), FM_OK);
    CHECK(size == 12288);
    EXPECT(fm_mapping_size(m, NULL), FM_INVALID_ARGUMENT);
    EXPECT(fm_mapping_create_or_open(name("map"), 4096, &m2, &created), FM_OK);
    CHECK(!created);
    EXPECT(fm_mapping_size(m2, &size), FM_OK);
    CHECK(size == 12288); /* an existing object is never resized */
    EXPECT(fm_mapping_close(m2), FM_OK);
    EXPECT(fm_mapping_create_or_open(name("fresh"), 4096, &m2, &created), FM_OK);
    CHECK(created);
    EXPECT(fm_mapping_close(m2), FM_OK);

    /* Views: any offset, bounds, access. */
    EXPECT(fm_view_map(m, 5000, 100, FM_ACCESS_READ_WRITE, &v), FM_OK);
    void *data = NULL;
    size_t len = 0;
    EXPECT(fm_view_data(v, &data, &len), FM_OK);
    CHECK(data != NULL && len == 100);
    memcpy(data, "hello", 5);
    EXPECT(fm_view_write(v, 95, "12345", 5), FM_OK);
    EXPECT(fm_view_write(v, 96, "12345", 5), FM_OUT_OF_RANGE);
    EXPECT(fm_view_write(v, 0, NULL, 5), FM_INVALID_ARGUMENT);
    EXPECT(fm_view_flush(v), FM_OK);
    EXPECT(fm_view_unmap(v), FM_OK);
    EXPECT(fm_view_map(m, 12000, 2000, FM_ACCESS_READ, &v), FM_OUT_OF_RANGE);
    MESSAGE_NAMES(name("map"));
    EXPECT(fm_view_map(m, 0, 0, 9, &v), FM_INVALID_ARGUMENT);
    EXPECT(fm_mapping_open(name("map"), FM_ACCESS_READ, &m2), FM_OK);
    EXPECT(fm_view_map(m2, 0, 0, FM_ACCESS_READ_WRITE, &v), FM_ACCESS_DENIED);
    EXPECT(fm_view_map(m2, 5000, 0, FM_ACCESS_READ, &v), FM_OK); /* 0: to the end */
    char got[6] = {0};
    EXPECT(fm_view_read(v, 0, got, 5), FM_OK);
    CHECK(strcmp(got, "hello") == 0);
    EXPECT(fm_view_data(v, &data, &len), FM_OK);
    CHECK(len == 12288 - 5000);
    EXPECT(fm_view_write(v, 0, "x", 1), FM_ACCESS_DENIED);
    EXPECT(fm_view_unmap(v), FM_OK);

    /* Wrong handles: NULL, another kind, closed. */
    EXPECT(fm_mapping_size(NULL, &size), FM_INVALID_ARGUMENT);
    EXPECT(fm_view_flush((FmView *)m2), FM_INVALID_ARGUMENT);
    MESSAGE_NAMES("not a FmView handle");
    EXPECT(fm_spsc_commit((FmSpscSender *)m2), FM_INVALID_ARGUMENT);
    EXPECT(fm_mapping_close(NULL), FM_OK);
    EXPECT(fm_mapping_close(m2), FM_OK);
    EXPECT(fm_mapping_close(m), FM_OK);

    /* Files, named and not. */
    char path[700];
    snprintf(path, sizeof path, "%s/%s.dat", dir, prefix);
    EXPECT(fm_mapping_from_path(path, 0, FM_ACCESS_READ, &m), FM_FILE_NOT_FOUND);
    EXPECT(fm_mapping_from_path(path, 8192, FM_ACCESS_READ_WRITE, &m), FM_OK);
    EXPECT(fm_mapping_size(m, &size), FM_OK);
    CHECK(size == 8192);
    EXPECT(fm_mapping_close(m), FM_OK);
    EXPECT(fm_mapping_create_file(name("file"), path, 0, &m), FM_OK);
    EXPECT(fm_mapping_open(name("file"), FM_ACCESS_READ, &m2), FM_OK);
    EXPECT(fm_mapping_size(m2, &size), FM_OK);
    CHECK(size == 8192);
    EXPECT(fm_mapping_close(m2), FM_OK);
    EXPECT(fm_mapping_close(m), FM_OK);
    remove(path);

    /* Unnamed, and handing over. */
    FmInheritable *h = NULL;
    EXPECT(fm_mapping_anonymous(0, &m), FM_INVALID_SIZE);
    EXPECT(fm_mapping_anonymous(4096, &m), FM_OK);
    EXPECT(fm_mapping_inherit(m, FM_ACCESS_READ, &h), FM_OK);
    CHECK(fm_inheritable_token(h) != NULL && strlen(fm_inheritable_token(h)) > 0);
    CHECK(fm_inheritable_token(NULL) == NULL);
    EXPECT(fm_inheritable_close(h), FM_OK);
    EXPECT(fm_mapping_from_inherited("not a token", &m2), FM_INVALID_TOKEN);
    MESSAGE_NAMES("not a token");
    EXPECT(fm_mapping_close(m), FM_OK);
    EXPECT(fm_mapping_remove(name("never-made")), FM_NOT_FOUND);
}

static void spsc(void) {
    FmSpscSender *tx = NULL, *tx2 = NULL;
    FmSpscReceiver *rx = NULL;
    size_t max = 0, len = 0;
    void *slot = NULL;
    const void *data = NULL;
    char buf[64], small[4];

    EXPECT(fm_spsc_receiver_create(name("spsc"), UINT64_MAX, &rx), FM_INVALID_SIZE);
    EXPECT(fm_spsc_receiver_create(name("spsc"), 4096, &rx), FM_OK);
    EXPECT(fm_spsc_sender_open(name("spsc"), &tx), FM_OK);
    EXPECT(fm_spsc_sender_open(name("spsc"), &tx2), FM_BUSY);
    MESSAGE_NAMES(name("spsc"));
    EXPECT(fm_spsc_max_message(tx, &max), FM_OK);
    CHECK(max == 4096 / 2 - 8);
    char *big = calloc(1, max + 1);
    EXPECT(fm_spsc_try_send(tx, big, max + 1), FM_INVALID_SIZE);
    EXPECT(fm_spsc_try_send(tx, NULL, 3), FM_INVALID_ARGUMENT);
    EXPECT(fm_spsc_try_recv(rx, buf, sizeof buf, &len), FM_WOULD_BLOCK);
    MESSAGE_NAMES("no message is queued");
    EXPECT(fm_spsc_recv_timeout(rx, buf, sizeof buf, &len, 10), FM_TIMEOUT);
    EXPECT(fm_spsc_try_recv(rx, buf, sizeof buf, NULL), FM_INVALID_ARGUMENT);

    /* Fill the ring: try_send says so, send_timeout times out. */
    int sent = 0;
    while (fm_spsc_try_send(tx, big, 1000) == FM_OK) sent++;
    CHECK(sent >= 3);
    EXPECT(fm_spsc_try_send(tx, big, 1000), FM_WOULD_BLOCK);
    EXPECT(fm_spsc_send_timeout(tx, big, 1000, 10), FM_TIMEOUT);
    for (int i = 0; i < sent; i++) EXPECT(fm_spsc_recv(rx, big, max, &len), FM_OK);
    free(big);

    /* In place, and its misuse. */
    EXPECT(fm_spsc_commit(tx), FM_INVALID_ARGUMENT);
    EXPECT(fm_spsc_abort(tx), FM_INVALID_ARGUMENT);
    EXPECT(fm_spsc_try_reserve(tx, 5, &slot), FM_OK);
    EXPECT(fm_spsc_try_send(tx, "x", 1), FM_INVALID_ARGUMENT); /* a reservation is open */
    MESSAGE_NAMES("reservation");
    EXPECT(fm_spsc_reserve(tx, 5, &slot), FM_INVALID_ARGUMENT);
    memcpy(slot, "hello", 5);
    EXPECT(fm_spsc_commit(tx), FM_OK);
    EXPECT(fm_spsc_reserve_timeout(tx, 3, &slot, 10), FM_OK);
    EXPECT(fm_spsc_abort(tx), FM_OK);
    EXPECT(fm_spsc_send(tx, "world!", 6), FM_OK);

    /* Too small a buffer keeps the message; borrow and release. */
    EXPECT(fm_spsc_recv(rx, small, sizeof small, &len), FM_BUFFER_TOO_SMALL);
    CHECK(len == 5);
    EXPECT(fm_spsc_release(rx), FM_INVALID_ARGUMENT);
    EXPECT(fm_spsc_try_recv_borrow(rx, &data, &len), FM_OK);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    EXPECT(fm_spsc_release(rx), FM_OK);
    EXPECT(fm_spsc_recv_borrow(rx, &data, &len), FM_OK);
    CHECK(len == 6 && memcmp(data, "world!", 6) == 0);
    /* The next receive releases a borrowed message first. */
    EXPECT(fm_spsc_try_recv_borrow(rx, &data, &len), FM_WOULD_BLOCK);
    EXPECT(fm_spsc_recv_borrow_timeout(rx, &data, &len, 10), FM_TIMEOUT);

    /* The sender goes: the receiver is told, once the ring is empty. */
    EXPECT(fm_spsc_send(tx, "last", 4), FM_OK);
    EXPECT(fm_spsc_sender_close(tx), FM_OK);
    EXPECT(fm_spsc_try_recv(rx, buf, sizeof buf, &len), FM_OK);
    CHECK(len == 4);
    EXPECT(fm_spsc_try_recv(rx, buf, sizeof buf, &len), FM_PEER_GONE);
    EXPECT(fm_spsc_receiver_close(rx), FM_OK);
    EXPECT(fm_spsc_receiver_open(name("spsc-none"), &rx), FM_NOT_FOUND);
}

static void mpmc(void) {
    FmMpmcSender *tx = NULL;
    FmMpmcReceiver *rx = NULL, *rx2 = NULL;
    size_t len = 0, max = 0;
    void *slot = NULL;
    const void *data = NULL;
    char buf[64], small[2];

    EXPECT(fm_mpmc_sender_create(name("mpmc"), 0, 64, &tx), FM_INVALID_SIZE);
    EXPECT(fm_mpmc_sender_create(name("mpmc"), 4, 64, &tx), FM_OK);
    EXPECT(fm_mpmc_receiver_open(name("mpmc"), &rx), FM_OK);
    EXPECT(fm_mpmc_receiver_open(name("mpmc"), &rx2), FM_OK);
    EXPECT(fm_mpmc_max_message(tx, &max), FM_OK);
    CHECK(max == 64);
    EXPECT(fm_mpmc_try_send(tx, buf, 65), FM_INVALID_SIZE);
    EXPECT(fm_mpmc_try_recv(rx, buf, sizeof buf, &len), FM_WOULD_BLOCK);
    EXPECT(fm_mpmc_recv_timeout(rx, buf, sizeof buf, &len, 10), FM_TIMEOUT);
    for (int i = 0; i < 4; i++) EXPECT(fm_mpmc_try_send(tx, "abc", 3), FM_OK);
    EXPECT(fm_mpmc_try_send(tx, "abc", 3), FM_WOULD_BLOCK);
    EXPECT(fm_mpmc_send_timeout(tx, "abc", 3, 10), FM_TIMEOUT);
    EXPECT(fm_mpmc_try_recv(rx, small, sizeof small, &len), FM_BUFFER_TOO_SMALL);
    CHECK(len == 3);
    EXPECT(fm_mpmc_recv(rx, buf, sizeof buf, &len), FM_OK);
    EXPECT(fm_mpmc_try_recv_borrow(rx2, &data, &len), FM_OK);
    CHECK(len == 3 && memcmp(data, "abc", 3) == 0);
    EXPECT(fm_mpmc_release(rx2), FM_OK);
    EXPECT(fm_mpmc_release(rx2), FM_INVALID_ARGUMENT);
    EXPECT(fm_mpmc_recv_borrow(rx, &data, &len), FM_OK);
    EXPECT(fm_mpmc_recv_borrow_timeout(rx, &data, &len, 10), FM_OK);
    EXPECT(fm_mpmc_release(rx), FM_OK);

    EXPECT(fm_mpmc_try_reserve(tx, 65, &slot), FM_INVALID_SIZE);
    EXPECT(fm_mpmc_reserve(tx, 2, &slot), FM_OK);
    EXPECT(fm_mpmc_send(tx, "x", 1), FM_INVALID_ARGUMENT);
    memcpy(slot, "hi", 2);
    EXPECT(fm_mpmc_commit(tx), FM_OK);
    EXPECT(fm_mpmc_reserve_timeout(tx, 2, &slot, 10), FM_OK);
    EXPECT(fm_mpmc_abort(tx), FM_OK); /* retired: receivers skip it */
    EXPECT(fm_mpmc_recv_timeout(rx2, buf, sizeof buf, &len, 1000), FM_OK);
    CHECK(len == 2 && memcmp(buf, "hi", 2) == 0);
    EXPECT(fm_mpmc_try_recv(rx2, buf, sizeof buf, &len), FM_WOULD_BLOCK);
    EXPECT(fm_mpmc_sender_close(tx), FM_OK);
    EXPECT(fm_mpmc_receiver_close(rx), FM_OK);
    EXPECT(fm_mpmc_receiver_close(rx2), FM_OK);
}

static void broadcast(void) {
    FmBroadcastSender *tx = NULL;
    FmBroadcastReceiver *rx = NULL;
    FmBroadcastInfo info;
    size_t len = 0;
    void *slot = NULL;
    char buf[32], small[1];

    EXPECT(fm_broadcast_receiver_create(name("bc"), 4, 32, &rx), FM_OK);
    EXPECT(fm_broadcast_sender_open(name("bc"), &tx), FM_OK);
    EXPECT(fm_broadcast_try_recv(rx, buf, sizeof buf, &len, &info), FM_WOULD_BLOCK);
    EXPECT(fm_broadcast_recv_timeout(rx, buf, sizeof buf, &len, NULL, 10), FM_TIMEOUT);
    EXPECT(fm_broadcast_send(tx, buf, 33), FM_INVALID_SIZE);
    for (int i = 0; i < 6; i++) EXPECT(fm_broadcast_send(tx, "msg", 3), FM_OK);
    /* Six sent into four slots: the receiver lost the first two, and says so. */
    EXPECT(fm_broadcast_recv(rx, small, sizeof small, &len, &info), FM_BUFFER_TOO_SMALL);
    CHECK(len == 3);
    EXPECT(fm_broadcast_recv(rx, buf, sizeof buf, &len, &info), FM_OK);
    CHECK(len == 3 && info.seq == 2 && info.missed == 2);
    EXPECT(fm_broadcast_commit(tx), FM_INVALID_ARGUMENT);
    EXPECT(fm_broadcast_reserve(tx, 4, &slot), FM_OK);
    EXPECT(fm_broadcast_send(tx, "x", 1), FM_INVALID_ARGUMENT);
    memcpy(slot, "slot", 4);
    EXPECT(fm_broadcast_commit(tx), FM_OK);
    EXPECT(fm_broadcast_reserve(tx, 4, &slot), FM_OK);
    EXPECT(fm_broadcast_abort(tx), FM_OK);
    for (int i = 0; i < 3; i++) EXPECT(fm_broadcast_try_recv(rx, buf, sizeof buf, &len, &info), FM_OK);
    CHECK(len == 4 && memcmp(buf, "slot", 4) == 0 && info.seq == 6);
    EXPECT(fm_broadcast_sender_close(tx), FM_OK);
    EXPECT(fm_broadcast_recv_timeout(rx, buf, sizeof buf, &len, NULL, 1000), FM_PEER_GONE);
    EXPECT(fm_broadcast_receiver_close(rx), FM_OK);
}

static void sync_objects(void) {
    FmEvent *ev = NULL, *ev2 = NULL;
    EXPECT(fm_event_open(name("ev"), &ev), FM_NOT_FOUND);
    EXPECT(fm_event_create(name("ev"), &ev), FM_OK);
    EXPECT(fm_event_open(name("ev"), &ev2), FM_OK);
    EXPECT(fm_event_try_wait(ev2), FM_WOULD_BLOCK);
    MESSAGE_NAMES("no permit");
    EXPECT(fm_event_wait_timeout(ev2, 10), FM_TIMEOUT);
    EXPECT(fm_event_notify_one(ev), FM_OK);
    EXPECT(fm_event_wait(ev2), FM_OK);
    EXPECT(fm_event_notify_all(ev), FM_OK); /* no waiter, no permit left */
    EXPECT(fm_event_try_wait(ev2), FM_WOULD_BLOCK);
    EXPECT(fm_event_close(ev2), FM_OK);
    EXPECT(fm_event_close(ev), FM_OK);

    FmLatestWriter *w = NULL;
    FmLatestReader *r = NULL;
    uint32_t v = 7, got = 0;
    uint64_t version = 99;
    size_t size = 0;
    EXPECT(fm_latest_writer_create(name("latest"), &v, 0, &w), FM_INVALID_SIZE);
    EXPECT(fm_latest_writer_create(name("latest"), &v, sizeof v, &w), FM_OK);
    EXPECT(fm_latest_reader_open(name("latest"), &r), FM_OK);
    EXPECT(fm_latest_size(r, &size), FM_OK);
    CHECK(size == 4);
    EXPECT(fm_latest_read(r, &got, sizeof got, &version), FM_OK);
    CHECK(got == 7 && version == 0);
    v = 8;
    EXPECT(fm_latest_write(w, &v, sizeof v), FM_OK);
    EXPECT(fm_latest_write(w, &v, 3), FM_INVALID_SIZE);
    EXPECT(fm_latest_read(r, &got, sizeof got, NULL), FM_OK);
    EXPECT(fm_latest_read(r, &got, sizeof got, &version), FM_OK);
    CHECK(got == 8 && version == 1);
    EXPECT(fm_latest_read(r, &got, 2, NULL), FM_INVALID_SIZE);
    EXPECT(fm_latest_writer_open(name("latest"), NULL), FM_INVALID_ARGUMENT);
    EXPECT(fm_latest_writer_close(w), FM_OK);
    EXPECT(fm_latest_reader_close(r), FM_OK);

    FmMutex *a = NULL, *b = NULL;
    bool died = true;
    uint64_t value = 1;
    EXPECT(fm_mutex_create(name("mutex"), &a), FM_OK);
    EXPECT(fm_mutex_open(name("mutex"), &b), FM_OK);
    EXPECT(fm_mutex_get(a, &value), FM_INVALID_ARGUMENT); /* not held */
    EXPECT(fm_mutex_unlock(a), FM_INVALID_ARGUMENT);
    EXPECT(fm_mutex_try_lock(a, &died), FM_OK);
    CHECK(!died);
    EXPECT(fm_mutex_lock(a, NULL), FM_INVALID_ARGUMENT); /* not recursive */
    EXPECT(fm_mutex_try_lock(b, NULL), FM_WOULD_BLOCK);
    MESSAGE_NAMES("held by another");
    /* This process holds it through `a`: a wait on `b` would never end. */
    EXPECT(fm_mutex_lock_timeout(b, NULL, 10), FM_BUSY);
    MESSAGE_NAMES("already holds");
    EXPECT(fm_mutex_set(a, 5), FM_OK);
    EXPECT(fm_mutex_unlock(a), FM_OK);
    EXPECT(fm_mutex_lock(b, &died), FM_OK);
    EXPECT(fm_mutex_get(b, &value), FM_OK);
    CHECK(value == 5 && !died);
    EXPECT(fm_mutex_close(b), FM_OK); /* closing unlocks */
    EXPECT(fm_mutex_try_lock(a, NULL), FM_OK);
    EXPECT(fm_mutex_close(a), FM_OK);
}

static void statuses(void) {
    CHECK(strcmp(fm_status_name(FM_OK), "FM_OK") == 0);
    CHECK(strcmp(fm_status_name(FM_PEER_GONE), "FM_PEER_GONE") == 0);
    CHECK(strcmp(fm_status_name(12345), "FM_UNKNOWN") == 0);
    CHECK(fm_last_error_message() != NULL);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: selftest PREFIX DIR\n");
        return 2;
    }
    snprintf(prefix, sizeof prefix, "%s", argv[1]);
    snprintf(dir, sizeof dir, "%s", argv[2]);
    statuses();
    mappings();
    spsc();
    mpmc();
    broadcast();
    sync_objects();
    if (failures) {
        fprintf(stderr, "selftest: %d of %d checks failed\n", failures, failures + checks);
        return 1;
    }
    printf("selftest: %d checks passed\n", checks);
    return 0;
}
