/*
 * The bench's C client (TransportKind::SpscC): filemap spsc round trips and
 * streams written in C against filemap.h, busy-polling as the Rust
 * "spsc, spin, copy" row does, so that the two rows differ only by the C
 * API in between. Compiled by build.rs (feature `c`); called from
 * transport/c_api.rs.
 */
#include <filemap.h>

#if defined(__x86_64__) || defined(__i386__)
#define SPIN_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define SPIN_PAUSE() __asm__ __volatile__("yield")
#else
#define SPIN_PAUSE() ((void)0)
#endif

/* Sends `len` bytes, spinning while the ring is full. */
static FmStatus send_spin(FmSpscSender *tx, const void *buf, size_t len) {
    for (;;) {
        FmStatus st = fm_spsc_try_send(tx, buf, len);
        if (st != FM_WOULD_BLOCK) return st;
        SPIN_PAUSE();
    }
}

/* Receives into `buf` (`len` bytes), spinning while the ring is empty. */
static FmStatus recv_spin(FmSpscReceiver *rx, void *buf, size_t len) {
    size_t got;
    for (;;) {
        FmStatus st = fm_spsc_try_recv(rx, buf, len, &got);
        if (st != FM_WOULD_BLOCK) return st;
        SPIN_PAUSE();
    }
}

/* The parent's round trip: a message out on `tx`, the answer in on `rx`. */
FmStatus fmb_c_round_trip(FmSpscSender *tx, FmSpscReceiver *rx, void *buf, size_t len) {
    FmStatus st = send_spin(tx, buf, len);
    if (st != FM_OK) return st;
    return recv_spin(rx, buf, len);
}

/* The parent's stream receipt: one message. */
FmStatus fmb_c_receive(FmSpscReceiver *rx, void *buf, size_t len) { return recv_spin(rx, buf, len); }

/* The child's whole side: echo `total` messages (rx non-NULL) or send them. */
FmStatus fmb_c_child(FmSpscReceiver *rx, FmSpscSender *tx, void *buf, size_t len, uint64_t total) {
    for (uint64_t i = 0; i < total; i++) {
        FmStatus st;
        if (rx && (st = recv_spin(rx, buf, len)) != FM_OK) return st;
        if ((st = send_spin(tx, buf, len)) != FM_OK) return st;
    }
    return FM_OK;
}
