// The C++17 wrapper (include/filemap.hpp) in one process: RAII, the
// exceptions and their codes, the soft results of try_ and *_for calls.
//
//   wrapper PREFIX     names start with PREFIX
#include <filemap.hpp>

#include <cstdio>
#include <cstring>
#include <string>

static int checks, failures;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "%s:%d: not true: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        } else {                                                                     \
            checks++;                                                                \
        }                                                                            \
    } while (0)

// `f` throws filemap::error with `code`, its message naming `what`.
template <class F> static void throws(F f, FmStatus code, const std::string &what) {
    try {
        f();
        std::fprintf(stderr, "expected %s, nothing thrown\n", fm_status_name(code));
        failures++;
    } catch (const filemap::error &e) {
        CHECK(e.code() == code);
        CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const std::string p = argv[1];
    using namespace std::chrono_literals;
    {
        auto m = filemap::mapping::create(p + "-map", 8192);
        CHECK(m.size() == 8192);
        auto v = m.map(100, 0, filemap::access::read_write);
        CHECK(v.size() == 8092);
        v.write(0, "hello");
        throws([&] { v.write(8090, "hello"); }, FM_OUT_OF_RANGE, p + "-map");
        throws([&] { filemap::mapping::create(p + "-map", 1); }, FM_ALREADY_EXISTS, p + "-map");
        auto [m2, created] = filemap::mapping::create_or_open(p + "-map", 1);
        CHECK(!created && m2.size() == 8192);
        auto r = filemap::mapping::open(p + "-map", filemap::access::read).map(100, 5, filemap::access::read);
        CHECK(std::memcmp(r.data(), "hello", 5) == 0);
        throws([&] { filemap::mapping::open(p + "-none"); }, FM_NOT_FOUND, p + "-none");
        throws([&] { filemap::mapping::create("bad/name", 1); }, FM_INVALID_NAME, "bad/name");
    }
    // The RAII close released the name.
    throws([&] { filemap::mapping::open(p + "-map"); }, FM_NOT_FOUND, p + "-map");
    {
        auto rx = filemap::spsc_receiver_create(p + "-spsc", 4096);
        auto tx = filemap::spsc_sender::open(p + "-spsc");
        CHECK(!rx.try_recv());
        CHECK(!rx.recv_for(5ms));
        tx.send("one");
        std::string big(1000, 'x');
        tx.send(big); // larger than the first receive buffer
        {
            auto res = tx.reserve(3);
            std::memcpy(res.data(), "two", 3);
            res.commit();
        }
        { auto dropped = tx.reserve(4); } // aborted: nothing sent
        CHECK(rx.recv() == std::vector<std::uint8_t>({'o', 'n', 'e'}));
        CHECK(rx.recv().size() == 1000);
        {
            auto b = rx.borrow();
            CHECK(b.view() == "two");
        }
        CHECK(!rx.try_borrow());
        throws([&] { tx.send(std::string(5000, 'y')); }, FM_INVALID_SIZE, p + "-spsc");
    }
    {
        auto tx = filemap::mpmc_sender_create(p + "-mpmc", 2, 64);
        auto rx = filemap::mpmc_receiver::open(p + "-mpmc");
        CHECK(tx.try_send("a") && tx.try_send("b") && !tx.try_send("c"));
        CHECK(!tx.send_for("c", 5ms));
        CHECK(rx.try_recv()->at(0) == 'a');
        CHECK(rx.borrow().view() == "b");
    }
    {
        auto rx = filemap::broadcast_receiver::create(p + "-bc", 4, 32);
        auto tx = filemap::broadcast_sender::open(p + "-bc");
        for (int i = 0; i < 5; i++) tx.send(std::to_string(i));
        auto m = rx.recv();
        CHECK(m.seq == 1 && m.missed == 1 && m.data == std::vector<std::uint8_t>({'1'}));
        CHECK(rx.recv_for(5ms)->seq == 2);
    }
    {
        auto e = filemap::event::create(p + "-ev");
        CHECK(!e.try_wait() && !e.wait_for(5ms));
        e.notify_one();
        CHECK(e.try_wait());
        std::uint32_t v = 1;
        auto w = filemap::latest_writer::create(p + "-latest", filemap::bytes(&v, sizeof v));
        auto r = filemap::latest_reader::open(p + "-latest");
        v = 2;
        w.write(filemap::bytes(&v, sizeof v));
        auto [value, version] = r.read();
        CHECK(value.size() == 4 && version == 1 && value[0] == 2);
        throws([&] { w.write("abc"); }, FM_INVALID_SIZE, p + "-latest");
        auto mx = filemap::mutex::create(p + "-mutex");
        auto other = filemap::mutex::open(p + "-mutex");
        {
            auto g = mx.lock();
            CHECK(!g.previous_owner_died());
            g.set(7);
            CHECK(!other.try_lock());
        }
        auto g = other.lock_for(1000ms);
        CHECK(g && g->get() == 7);
    }
    if (failures) {
        std::fprintf(stderr, "wrapper: %d of %d checks failed\n", failures, failures + checks);
        return 1;
    }
    std::printf("wrapper: %d checks passed\n", checks);
    return 0;
}
