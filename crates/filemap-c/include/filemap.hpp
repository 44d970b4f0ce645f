// filemap.hpp: a header-only C++17 wrapper of filemap.h.
//
// RAII classes own the C handles (move-only; the destructor closes), byte
// ranges come in as std::string_view, (pointer, size) or, from C++20, a
// std::span, and go out as std::vector<std::uint8_t> or into your buffer.
//
// Errors are exceptions (filemap::error, with the FmStatus code and the
// message naming the object and cause). Why not std::expected-style
// results: std::expected is C++23, a hand-made one would be one more type
// to learn, and a constructor (how RAII acquires) can only fail by throwing.
// What is not an error is not thrown: a try_ call that would wait returns
// false or an empty std::optional, and so does a *_for call that timed out.
//
//   #include <filemap.hpp>
//   auto m = filemap::mapping::create("jobs", 4096);
//   auto v = m.map(0, 0, filemap::access::read_write);
//   std::memcpy(v.data(), "hello", 5);
//
// Build: as for filemap.h (see README.md), with a C++17 compiler.
#ifndef FILEMAP_HPP
#define FILEMAP_HPP

#include "filemap.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L && __has_include(<span>)
#include <span>
#endif

namespace filemap {

// A failed call: its code and its message.
class error : public std::runtime_error {
  public:
    error(FmStatus code, const char *message)
        : std::runtime_error(std::string(fm_status_name(code)) + ": " + message), code_(code) {}
    // The FmStatus the C call returned.
    FmStatus code() const noexcept { return code_; }

  private:
    FmStatus code_;
};

namespace detail {
// Throws for anything but FM_OK.
inline void check(FmStatus st) {
    if (st != FM_OK) throw error(st, fm_last_error_message());
}
// FM_OK: true; `soft` (FM_WOULD_BLOCK or FM_TIMEOUT): false; else throws.
inline bool check_soft(FmStatus st, FmStatus soft) {
    if (st == soft) return false;
    check(st);
    return true;
}
inline std::uint32_t millis(std::chrono::milliseconds ms) {
    auto n = ms.count();
    if (n < 0) return 0;
    if (n > 0xffffffffLL) return 0xffffffffu;
    return static_cast<std::uint32_t>(n);
}
// A NUL-terminated copy of a name (string_view need not be terminated).
inline std::string cstr(std::string_view s) { return std::string(s); }

// Owns a C handle; `Close` frees it.
template <class H, FmStatus (*Close)(H *)> class owner {
  public:
    owner() noexcept = default;
    explicit owner(H *h) noexcept : h_(h) {}
    owner(owner &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    owner &operator=(owner &&o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    owner(const owner &) = delete;
    owner &operator=(const owner &) = delete;
    ~owner() { reset(); }
    void reset() noexcept {
        if (h_) Close(std::exchange(h_, nullptr));
    }
    H *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }

  private:
    H *h_ = nullptr;
};
} // namespace detail

// Bytes to send: from a string or string_view, a (pointer, size), a vector
// or (C++20) a span.
struct bytes {
    const void *data;
    std::size_t size;
    bytes(const void *d, std::size_t n) noexcept : data(d), size(n) {}
    bytes(std::string_view s) noexcept : data(s.data()), size(s.size()) {}
    bytes(const char *s) noexcept : bytes(std::string_view(s)) {}
    bytes(const std::string &s) noexcept : data(s.data()), size(s.size()) {}
    bytes(const std::vector<std::uint8_t> &v) noexcept : data(v.data()), size(v.size()) {}
#if __cplusplus >= 202002L && __has_include(<span>)
    template <class T, std::size_t N>
    bytes(std::span<T, N> s) noexcept : data(s.data()), size(s.size_bytes()) {}
#endif
};

enum class access : std::uint32_t {
    read = FM_ACCESS_READ,
    read_write = FM_ACCESS_READ_WRITE,
    copy_on_write = FM_ACCESS_COPY_ON_WRITE,
};

// A mapped view (MapViewOfFile); unmapped when destroyed.
class view {
  public:
    explicit view(FmView *h) : h_(h) { detail::check(fm_view_data(h, &data_, &size_)); }
    void *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    // Bounds-checked copies (FM_OUT_OF_RANGE, FM_TRUNCATED).
    void read(std::size_t offset, void *buf, std::size_t n) const {
        detail::check(fm_view_read(h_.get(), offset, buf, n));
    }
    void write(std::size_t offset, bytes b) const {
        detail::check(fm_view_write(h_.get(), offset, b.data, b.size));
    }
    void flush() const { detail::check(fm_view_flush(h_.get())); }
#if __cplusplus >= 202002L && __has_include(<span>)
    std::span<std::byte> span() const noexcept { return {static_cast<std::byte *>(data_), size_}; }
#endif

  private:
    detail::owner<FmView, fm_view_unmap> h_;
    void *data_ = nullptr;
    std::size_t size_ = 0;
};

// A mapping object (CreateFileMapping / OpenFileMapping).
class mapping {
  public:
    static mapping create(std::string_view name, std::uint64_t size) {
        FmMapping *h = nullptr;
        detail::check(fm_mapping_create(detail::cstr(name).c_str(), size, &h));
        return mapping(h);
    }
    static mapping open(std::string_view name, access a = access::read_write) {
        FmMapping *h = nullptr;
        detail::check(fm_mapping_open(detail::cstr(name).c_str(), static_cast<std::uint32_t>(a), &h));
        return mapping(h);
    }
    // The mapping, and whether it was created (else opened).
    static std::pair<mapping, bool> create_or_open(std::string_view name, std::uint64_t size) {
        FmMapping *h = nullptr;
        bool created = false;
        detail::check(fm_mapping_create_or_open(detail::cstr(name).c_str(), size, &h, &created));
        return {mapping(h), created};
    }
    static mapping create_file(std::string_view name, std::string_view path, std::uint64_t size = 0) {
        FmMapping *h = nullptr;
        detail::check(fm_mapping_create_file(detail::cstr(name).c_str(), detail::cstr(path).c_str(), size, &h));
        return mapping(h);
    }
    static mapping from_path(std::string_view path, std::uint64_t size = 0, access a = access::read_write) {
        FmMapping *h = nullptr;
        detail::check(fm_mapping_from_path(detail::cstr(path).c_str(), size, static_cast<std::uint32_t>(a), &h));
        return mapping(h);
    }
    static mapping anonymous(std::uint64_t size) {
        FmMapping *h = nullptr;
        detail::check(fm_mapping_anonymous(size, &h));
        return mapping(h);
    }
    static void remove(std::string_view name) { detail::check(fm_mapping_remove(detail::cstr(name).c_str())); }

    std::uint64_t size() const {
        std::uint64_t n = 0;
        detail::check(fm_mapping_size(h_.get(), &n));
        return n;
    }
    // A view of `len` bytes from `offset` (0: to the end).
    view map(std::uint64_t offset = 0, std::uint64_t len = 0, access a = access::read_write) const {
        FmView *v = nullptr;
        detail::check(fm_view_map(h_.get(), offset, len, static_cast<std::uint32_t>(a), &v));
        return view(v);
    }
    FmMapping *handle() const noexcept { return h_.get(); }

  private:
    explicit mapping(FmMapping *h) : h_(h) {}
    detail::owner<FmMapping, fm_mapping_close> h_;
};

namespace detail {
struct spsc {
    using tx_t = FmSpscSender;
    using rx_t = FmSpscReceiver;
    static constexpr auto tx_close = fm_spsc_sender_close;
    static constexpr auto rx_close = fm_spsc_receiver_close;
    static constexpr auto tx_open = fm_spsc_sender_open;
    static constexpr auto rx_open = fm_spsc_receiver_open;
    static constexpr auto max_message = fm_spsc_max_message;
    static constexpr auto try_send = fm_spsc_try_send;
    static constexpr auto send = fm_spsc_send;
    static constexpr auto send_timeout = fm_spsc_send_timeout;
    static constexpr auto try_reserve = fm_spsc_try_reserve;
    static constexpr auto reserve = fm_spsc_reserve;
    static constexpr auto reserve_timeout = fm_spsc_reserve_timeout;
    static constexpr auto commit = fm_spsc_commit;
    static constexpr auto abort = fm_spsc_abort;
    static constexpr auto try_recv = fm_spsc_try_recv;
    static constexpr auto recv = fm_spsc_recv;
    static constexpr auto recv_timeout = fm_spsc_recv_timeout;
    static constexpr auto try_borrow = fm_spsc_try_recv_borrow;
    static constexpr auto borrow = fm_spsc_recv_borrow;
    static constexpr auto borrow_timeout = fm_spsc_recv_borrow_timeout;
    static constexpr auto release = fm_spsc_release;
};
struct mpmc {
    using tx_t = FmMpmcSender;
    using rx_t = FmMpmcReceiver;
    static constexpr auto tx_close = fm_mpmc_sender_close;
    static constexpr auto rx_close = fm_mpmc_receiver_close;
    static constexpr auto tx_open = fm_mpmc_sender_open;
    static constexpr auto rx_open = fm_mpmc_receiver_open;
    static constexpr auto max_message = fm_mpmc_max_message;
    static constexpr auto try_send = fm_mpmc_try_send;
    static constexpr auto send = fm_mpmc_send;
    static constexpr auto send_timeout = fm_mpmc_send_timeout;
    static constexpr auto try_reserve = fm_mpmc_try_reserve;
    static constexpr auto reserve = fm_mpmc_reserve;
    static constexpr auto reserve_timeout = fm_mpmc_reserve_timeout;
    static constexpr auto commit = fm_mpmc_commit;
    static constexpr auto abort = fm_mpmc_abort;
    static constexpr auto try_recv = fm_mpmc_try_recv;
    static constexpr auto recv = fm_mpmc_recv;
    static constexpr auto recv_timeout = fm_mpmc_recv_timeout;
    static constexpr auto try_borrow = fm_mpmc_try_recv_borrow;
    static constexpr auto borrow = fm_mpmc_recv_borrow;
    static constexpr auto borrow_timeout = fm_mpmc_recv_borrow_timeout;
    static constexpr auto release = fm_mpmc_release;
};
} // namespace detail

// A message written in place: fill data()[0..size()), then commit(). Dropped
// uncommitted, it is aborted (nothing is sent).
template <class K> class reservation {
  public:
    reservation(typename K::tx_t *tx, void *data, std::size_t n) noexcept : tx_(tx), data_(data), size_(n) {}
    reservation(reservation &&o) noexcept
        : tx_(std::exchange(o.tx_, nullptr)), data_(o.data_), size_(o.size_) {}
    reservation(const reservation &) = delete;
    reservation &operator=(const reservation &) = delete;
    reservation &operator=(reservation &&) = delete;
    ~reservation() {
        if (tx_) K::abort(tx_);
    }
    void *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    void commit() { detail::check(K::commit(std::exchange(tx_, nullptr))); }

  private:
    typename K::tx_t *tx_;
    void *data_;
    std::size_t size_;
};

// A message received in place: valid until destroyed (which releases it)
// or the receiver's next receive.
template <class K> class borrowed {
  public:
    borrowed(typename K::rx_t *rx, const void *data, std::size_t n) noexcept : rx_(rx), data_(data), size_(n) {}
    borrowed(borrowed &&o) noexcept : rx_(std::exchange(o.rx_, nullptr)), data_(o.data_), size_(o.size_) {}
    borrowed(const borrowed &) = delete;
    borrowed &operator=(const borrowed &) = delete;
    borrowed &operator=(borrowed &&) = delete;
    ~borrowed() {
        if (rx_) K::release(rx_);
    }
    const void *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::string_view view() const noexcept { return {static_cast<const char *>(data_), size_}; }

  private:
    typename K::rx_t *rx_;
    const void *data_;
    std::size_t size_;
};

// The sending end of an spsc or mpmc channel.
template <class K> class sender {
  public:
    static sender open(std::string_view name) {
        typename K::tx_t *h = nullptr;
        detail::check(K::tx_open(detail::cstr(name).c_str(), &h));
        return sender(h);
    }
    explicit sender(typename K::tx_t *h) : h_(h) {}
    std::size_t max_message() const {
        std::size_t n = 0;
        detail::check(K::max_message(h_.get(), &n));
        return n;
    }
    void send(bytes b) { detail::check(K::send(h_.get(), b.data, b.size)); }
    // False when there is no room now.
    bool try_send(bytes b) { return detail::check_soft(K::try_send(h_.get(), b.data, b.size), FM_WOULD_BLOCK); }
    // False on time-out.
    bool send_for(bytes b, std::chrono::milliseconds t) {
        return detail::check_soft(K::send_timeout(h_.get(), b.data, b.size, detail::millis(t)), FM_TIMEOUT);
    }
    reservation<K> reserve(std::size_t n) {
        void *p = nullptr;
        detail::check(K::reserve(h_.get(), n, &p));
        return reservation<K>(h_.get(), p, n);
    }
    std::optional<reservation<K>> try_reserve(std::size_t n) {
        void *p = nullptr;
        if (!detail::check_soft(K::try_reserve(h_.get(), n, &p), FM_WOULD_BLOCK)) return std::nullopt;
        return reservation<K>(h_.get(), p, n);
    }

  private:
    detail::owner<typename K::tx_t, K::tx_close> h_;
};

// The receiving end of an spsc or mpmc channel.
template <class K> class receiver {
  public:
    static receiver open(std::string_view name) {
        typename K::rx_t *h = nullptr;
        detail::check(K::rx_open(detail::cstr(name).c_str(), &h));
        return receiver(h);
    }
    explicit receiver(typename K::rx_t *h) : h_(h) {}
    // Into `buf`; returns the length. A message larger than `n` throws
    // FM_BUFFER_TOO_SMALL and stays queued.
    std::size_t recv(void *buf, std::size_t n) {
        std::size_t len = 0;
        detail::check(K::recv(h_.get(), buf, n, &len));
        return len;
    }
    std::vector<std::uint8_t> recv() {
        return *take([&](void *b, std::size_t n, std::size_t *len) { return K::recv(h_.get(), b, n, len); });
    }
    std::optional<std::vector<std::uint8_t>> try_recv() {
        return take([&](void *b, std::size_t n, std::size_t *len) { return K::try_recv(h_.get(), b, n, len); });
    }
    std::optional<std::vector<std::uint8_t>> recv_for(std::chrono::milliseconds t) {
        auto ms = detail::millis(t);
        return take([&](void *b, std::size_t n, std::size_t *len) { return K::recv_timeout(h_.get(), b, n, len, ms); });
    }
    borrowed<K> borrow() {
        const void *p = nullptr;
        std::size_t n = 0;
        detail::check(K::borrow(h_.get(), &p, &n));
        return borrowed<K>(h_.get(), p, n);
    }
    std::optional<borrowed<K>> try_borrow() {
        const void *p = nullptr;
        std::size_t n = 0;
        if (!detail::check_soft(K::try_borrow(h_.get(), &p, &n), FM_WOULD_BLOCK)) return std::nullopt;
        return borrowed<K>(h_.get(), p, n);
    }

  private:
    // Receives with `call` into a vector, growing it once if the message
    // is larger (it stays queued meanwhile).
    template <class F> std::optional<std::vector<std::uint8_t>> take(F call) {
        std::vector<std::uint8_t> v(256);
        std::size_t len = 0;
        FmStatus st = call(v.data(), v.size(), &len);
        if (st == FM_BUFFER_TOO_SMALL) {
            v.resize(len);
            st = call(v.data(), v.size(), &len);
        }
        if (st == FM_WOULD_BLOCK || st == FM_TIMEOUT) return std::nullopt;
        detail::check(st);
        v.resize(len);
        return v;
    }
    detail::owner<typename K::rx_t, K::rx_close> h_;
};

using spsc_sender = sender<detail::spsc>;
using spsc_receiver = receiver<detail::spsc>;
using mpmc_sender = sender<detail::mpmc>;
using mpmc_receiver = receiver<detail::mpmc>;

// Creating an spsc channel (a ring of `capacity` bytes) as either end.
inline spsc_sender spsc_sender_create(std::string_view name, std::uint64_t capacity) {
    FmSpscSender *h = nullptr;
    detail::check(fm_spsc_sender_create(detail::cstr(name).c_str(), capacity, &h));
    return spsc_sender(h);
}
inline spsc_receiver spsc_receiver_create(std::string_view name, std::uint64_t capacity) {
    FmSpscReceiver *h = nullptr;
    detail::check(fm_spsc_receiver_create(detail::cstr(name).c_str(), capacity, &h));
    return spsc_receiver(h);
}
// Creating an mpmc channel (`slots` slots of up to `max_message` bytes).
inline mpmc_sender mpmc_sender_create(std::string_view name, std::uint64_t slots, std::uint64_t max_message) {
    FmMpmcSender *h = nullptr;
    detail::check(fm_mpmc_sender_create(detail::cstr(name).c_str(), slots, max_message, &h));
    return mpmc_sender(h);
}
inline mpmc_receiver mpmc_receiver_create(std::string_view name, std::uint64_t slots, std::uint64_t max_message) {
    FmMpmcReceiver *h = nullptr;
    detail::check(fm_mpmc_receiver_create(detail::cstr(name).c_str(), slots, max_message, &h));
    return mpmc_receiver(h);
}

// A broadcast message: its bytes, number and how many were missed before it.
struct broadcast_message {
    std::vector<std::uint8_t> data;
    std::uint64_t seq = 0;
    std::uint64_t missed = 0;
};

class broadcast_sender {
  public:
    static broadcast_sender create(std::string_view name, std::uint64_t slots, std::uint64_t max_message) {
        FmBroadcastSender *h = nullptr;
        detail::check(fm_broadcast_sender_create(detail::cstr(name).c_str(), slots, max_message, &h));
        return broadcast_sender(h);
    }
    static broadcast_sender open(std::string_view name) {
        FmBroadcastSender *h = nullptr;
        detail::check(fm_broadcast_sender_open(detail::cstr(name).c_str(), &h));
        return broadcast_sender(h);
    }
    // Never waits.
    void send(bytes b) { detail::check(fm_broadcast_send(h_.get(), b.data, b.size)); }

  private:
    explicit broadcast_sender(FmBroadcastSender *h) : h_(h) {}
    detail::owner<FmBroadcastSender, fm_broadcast_sender_close> h_;
};

class broadcast_receiver {
  public:
    static broadcast_receiver create(std::string_view name, std::uint64_t slots, std::uint64_t max_message) {
        FmBroadcastReceiver *h = nullptr;
        detail::check(fm_broadcast_receiver_create(detail::cstr(name).c_str(), slots, max_message, &h));
        return broadcast_receiver(h);
    }
    static broadcast_receiver open(std::string_view name) {
        FmBroadcastReceiver *h = nullptr;
        detail::check(fm_broadcast_receiver_open(detail::cstr(name).c_str(), &h));
        return broadcast_receiver(h);
    }
    broadcast_message recv() {
        return *take([&](void *b, std::size_t n, std::size_t *len, FmBroadcastInfo *i) {
            return fm_broadcast_recv(h_.get(), b, n, len, i);
        });
    }
    std::optional<broadcast_message> try_recv() {
        return take([&](void *b, std::size_t n, std::size_t *len, FmBroadcastInfo *i) {
            return fm_broadcast_try_recv(h_.get(), b, n, len, i);
        });
    }
    std::optional<broadcast_message> recv_for(std::chrono::milliseconds t) {
        auto ms = detail::millis(t);
        return take([&](void *b, std::size_t n, std::size_t *len, FmBroadcastInfo *i) {
            return fm_broadcast_recv_timeout(h_.get(), b, n, len, i, ms);
        });
    }

  private:
    explicit broadcast_receiver(FmBroadcastReceiver *h) : h_(h) {}
    template <class F> std::optional<broadcast_message> take(F call) {
        broadcast_message m;
        m.data.resize(256);
        std::size_t len = 0;
        FmBroadcastInfo info{};
        FmStatus st = call(m.data.data(), m.data.size(), &len, &info);
        if (st == FM_BUFFER_TOO_SMALL) {
            m.data.resize(len);
            st = call(m.data.data(), m.data.size(), &len, &info);
        }
        if (st == FM_WOULD_BLOCK || st == FM_TIMEOUT) return std::nullopt;
        detail::check(st);
        m.data.resize(len);
        m.seq = info.seq;
        m.missed = info.missed;
        return m;
    }
    detail::owner<FmBroadcastReceiver, fm_broadcast_receiver_close> h_;
};

// A cross-process event.
class event {
  public:
    static event create(std::string_view name) {
        FmEvent *h = nullptr;
        detail::check(fm_event_create(detail::cstr(name).c_str(), &h));
        return event(h);
    }
    static event open(std::string_view name) {
        FmEvent *h = nullptr;
        detail::check(fm_event_open(detail::cstr(name).c_str(), &h));
        return event(h);
    }
    void notify_one() { detail::check(fm_event_notify_one(h_.get())); }
    void notify_all() { detail::check(fm_event_notify_all(h_.get())); }
    void wait() { detail::check(fm_event_wait(h_.get())); }
    bool try_wait() { return detail::check_soft(fm_event_try_wait(h_.get()), FM_WOULD_BLOCK); }
    bool wait_for(std::chrono::milliseconds t) {
        return detail::check_soft(fm_event_wait_timeout(h_.get(), detail::millis(t)), FM_TIMEOUT);
    }

  private:
    explicit event(FmEvent *h) : h_(h) {}
    detail::owner<FmEvent, fm_event_close> h_;
};

// The writing end of a Latest cell of bytes.
class latest_writer {
  public:
    static latest_writer create(std::string_view name, bytes initial) {
        FmLatestWriter *h = nullptr;
        detail::check(fm_latest_writer_create(detail::cstr(name).c_str(), initial.data, initial.size, &h));
        return latest_writer(h);
    }
    static latest_writer open(std::string_view name) {
        FmLatestWriter *h = nullptr;
        detail::check(fm_latest_writer_open(detail::cstr(name).c_str(), &h));
        return latest_writer(h);
    }
    void write(bytes b) { detail::check(fm_latest_write(h_.get(), b.data, b.size)); }

  private:
    explicit latest_writer(FmLatestWriter *h) : h_(h) {}
    detail::owner<FmLatestWriter, fm_latest_writer_close> h_;
};

// A reading end of a Latest cell of bytes.
class latest_reader {
  public:
    static latest_reader open(std::string_view name) {
        FmLatestReader *h = nullptr;
        detail::check(fm_latest_reader_open(detail::cstr(name).c_str(), &h));
        return latest_reader(h);
    }
    std::size_t size() const {
        std::size_t n = 0;
        detail::check(fm_latest_size(h_.get(), &n));
        return n;
    }
    // The latest value, and its version.
    std::pair<std::vector<std::uint8_t>, std::uint64_t> read() const {
        std::vector<std::uint8_t> v(size());
        std::uint64_t version = 0;
        detail::check(fm_latest_read(h_.get(), v.data(), v.size(), &version));
        return {std::move(v), version};
    }

  private:
    explicit latest_reader(FmLatestReader *h) : h_(h) {}
    detail::owner<FmLatestReader, fm_latest_reader_close> h_;
};

// A robust cross-process mutex guarding a 64-bit value. lock() returns a
// guard that unlocks when destroyed.
class mutex {
  public:
    class guard {
      public:
        guard(FmMutex *m, bool died) noexcept : m_(m), died_(died) {}
        guard(guard &&o) noexcept : m_(std::exchange(o.m_, nullptr)), died_(o.died_) {}
        guard(const guard &) = delete;
        guard &operator=(const guard &) = delete;
        guard &operator=(guard &&) = delete;
        ~guard() {
            if (m_) fm_mutex_unlock(m_);
        }
        // Whether the last holder died holding it (check the value).
        bool previous_owner_died() const noexcept { return died_; }
        std::uint64_t get() const {
            std::uint64_t v = 0;
            detail::check(fm_mutex_get(m_, &v));
            return v;
        }
        void set(std::uint64_t v) { detail::check(fm_mutex_set(m_, v)); }

      private:
        FmMutex *m_;
        bool died_;
    };

    static mutex create(std::string_view name) {
        FmMutex *h = nullptr;
        detail::check(fm_mutex_create(detail::cstr(name).c_str(), &h));
        return mutex(h);
    }
    static mutex open(std::string_view name) {
        FmMutex *h = nullptr;
        detail::check(fm_mutex_open(detail::cstr(name).c_str(), &h));
        return mutex(h);
    }
    guard lock() {
        bool died = false;
        detail::check(fm_mutex_lock(h_.get(), &died));
        return guard(h_.get(), died);
    }
    std::optional<guard> try_lock() {
        bool died = false;
        if (!detail::check_soft(fm_mutex_try_lock(h_.get(), &died), FM_WOULD_BLOCK)) return std::nullopt;
        return guard(h_.get(), died);
    }
    std::optional<guard> lock_for(std::chrono::milliseconds t) {
        bool died = false;
        if (!detail::check_soft(fm_mutex_lock_timeout(h_.get(), &died, detail::millis(t)), FM_TIMEOUT))
            return std::nullopt;
        return guard(h_.get(), died);
    }

  private:
    explicit mutex(FmMutex *h) : h_(h) {}
    detail::owner<FmMutex, fm_mutex_close> h_;
};

} // namespace filemap

#endif // FILEMAP_HPP
