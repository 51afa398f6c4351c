// A minimal hls::stream for C simulation with g++, written for rfpga (no proprietary headers).
// Vitis HLS uses its own hls_stream.h in place of this one; only the interface the generated
// code needs is provided: write, read, empty, full, size.
//
// Two modes:
// - sequential (default, what Vitis C simulation does): an unbounded FIFO; the dataflow
//   processes run one after another, so a read from an empty stream is a dataflow bug and
//   aborts loudly.
// - threaded (-DRFPGA_THREADED_CSIM, `rfpga csim --threads`): each dataflow process runs in its
//   own thread (RFPGA_PROCESS in rfpga_common.h) and each stream blocks at its generated depth
//   (RFPGA_STREAM_DEPTH), as the hardware's FIFOs do. When every running process is blocked,
//   that is a deadlock: it is reported with each process, the stream it waits on and that
//   stream's fill, and the program exits with status 3. A stream's depth can be overridden
//   for an experiment by RFPGA_CSIM_DEPTHS="name=depth,…" in the environment.
#ifndef RFPGA_SIM_HLS_STREAM_H
#define RFPGA_SIM_HLS_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

#ifdef RFPGA_THREADED_CSIM
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rfpga_csim {

// A stream as the deadlock report sees it.
struct Channel {
    virtual void report() const = 0;
    virtual ~Channel() {}
};

struct Scheduler {
    std::mutex m;  // guards every stream and the counts below
    std::vector<std::thread> threads;
    std::vector<const Channel *> channels;  // every live bounded stream
    int running = 0;                        // processes started and not finished
    int blocked = 0;                        // of those, blocked on a stream
    bool spawning = false;                  // the top function is still starting processes
};

inline Scheduler &scheduler() {
    static Scheduler s;
    return s;
}

// Images each process handles per call of the top function (back to back, as the free-running
// core does); the testbench sets it.
inline int &images() {
    static int n = 1;
    return n;
}

inline const char *&current_process() {
    static thread_local const char *name = "testbench";
    return name;
}

// Called with the lock held: every running process blocked (and none left to start) is a deadlock.
inline void check_deadlock(Scheduler &s) {
    if (s.spawning || s.running == 0 || s.blocked < s.running) return;
    std::fflush(stdout);
    std::fprintf(stderr, "deadlock: all %d running processes are blocked\n", s.running);
    for (std::size_t i = 0; i < s.channels.size(); i++) s.channels[i]->report();
    std::fflush(stderr);
    std::_Exit(3);
}

inline void spawn(const char *name, std::function<void()> body) {
    Scheduler &s = scheduler();
    std::lock_guard<std::mutex> lock(s.m);
    s.spawning = true;
    s.running++;
    s.threads.push_back(std::thread([name, body]() {
        current_process() = name;
        body();
        Scheduler &s = scheduler();
        std::lock_guard<std::mutex> lock(s.m);
        s.running--;
        check_deadlock(s);
    }));
}

inline void join_all() {
    Scheduler &s = scheduler();
    {
        std::lock_guard<std::mutex> lock(s.m);
        s.spawning = false;
        check_deadlock(s);
    }
    for (std::size_t i = 0; i < s.threads.size(); i++) s.threads[i].join();
    s.threads.clear();
}

// RFPGA_CSIM_DEPTHS="name=depth,…": a depth for the stream `name`, or `fallback`.
inline std::size_t depth_override(const std::string &name, std::size_t fallback) {
    const char *env = std::getenv("RFPGA_CSIM_DEPTHS");
    if (!env) return fallback;
    std::string all(env);
    std::size_t pos = 0;
    while (pos <= all.size()) {
        std::size_t end = all.find(',', pos);
        if (end == std::string::npos) end = all.size();
        std::string item = all.substr(pos, end - pos);
        std::size_t eq = item.find('=');
        if (eq != std::string::npos && item.substr(0, eq) == name) return std::strtoul(item.c_str() + eq + 1, 0, 10);
        pos = end + 1;
    }
    return fallback;
}

}  // namespace rfpga_csim
#endif

namespace hls {

#ifdef RFPGA_THREADED_CSIM
#define RFPGA_STREAM_BASE : public rfpga_csim::Channel
#else
#define RFPGA_STREAM_BASE
#endif

template <typename T>
class stream RFPGA_STREAM_BASE {
  public:
    stream() : name_("unnamed") { attach(); }
    explicit stream(const char *name) : name_(name) { attach(); }
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;
    void operator<<(const T &v) { write(v); }
    void operator>>(T &v) { v = read(); }

#ifndef RFPGA_THREADED_CSIM
    void write(const T &v) { q_.push_back(v); }

    T read() {
        if (q_.empty()) {
            // In hardware this would stall forever: a dataflow bug, reported loudly.
            std::fprintf(stderr, "hls::stream '%s': read from an empty stream\n", name_.c_str());
            std::abort();
        }
        T v = q_.front();
        q_.pop_front();
        return v;
    }
    bool empty() const { return q_.empty(); }
    bool full() const { return false; }
    std::size_t size() const { return q_.size(); }

  private:
    void attach() {}
#else
    ~stream() {
        rfpga_csim::Scheduler &s = rfpga_csim::scheduler();
        std::lock_guard<std::mutex> lock(s.m);
        for (std::size_t i = 0; i < s.channels.size(); i++) {
            if (s.channels[i] == this) {
                s.channels.erase(s.channels.begin() + i);
                break;
            }
        }
    }

    // The FIFO's depth in elements (0: unbounded, as the testbench's own streams are).
    void set_depth(std::size_t depth) { depth_ = rfpga_csim::depth_override(name_, depth); }

    void write(const T &v) {
        rfpga_csim::Scheduler &s = rfpga_csim::scheduler();
        std::unique_lock<std::mutex> lock(s.m);
        while (depth_ > 0 && q_.size() >= depth_) block(s, lock, writer_);
        q_.push_back(v);
        wake(s, reader_);
    }

    T read() {
        rfpga_csim::Scheduler &s = rfpga_csim::scheduler();
        std::unique_lock<std::mutex> lock(s.m);
        while (q_.empty()) block(s, lock, reader_);
        T v = q_.front();
        q_.pop_front();
        wake(s, writer_);
        return v;
    }
    bool empty() {
        std::lock_guard<std::mutex> lock(rfpga_csim::scheduler().m);
        return q_.empty();
    }
    bool full() {
        std::lock_guard<std::mutex> lock(rfpga_csim::scheduler().m);
        return depth_ > 0 && q_.size() >= depth_;
    }
    std::size_t size() {
        std::lock_guard<std::mutex> lock(rfpga_csim::scheduler().m);
        return q_.size();
    }

    // For rfpga_csim::read_both / write_both, with the scheduler's lock held.
    bool full_locked() const { return depth_ > 0 && q_.size() >= depth_; }
    bool empty_locked() const { return q_.empty(); }
    void wait_writable(rfpga_csim::Scheduler &s, std::unique_lock<std::mutex> &lock) { block(s, lock, writer_); }
    void wait_readable(rfpga_csim::Scheduler &s, std::unique_lock<std::mutex> &lock) { block(s, lock, reader_); }
    void push_locked(rfpga_csim::Scheduler &s, const T &v) {
        q_.push_back(v);
        wake(s, reader_);
    }
    T pop_locked(rfpga_csim::Scheduler &s) {
        T v = q_.front();
        q_.pop_front();
        wake(s, writer_);
        return v;
    }

    void report() const {
        if (writer_)
            std::fprintf(stderr, "  %s waits to write stream %s (full: %zu of %zu)\n", writer_, name_.c_str(), q_.size(), depth_);
        if (reader_) std::fprintf(stderr, "  %s waits to read stream %s (empty)\n", reader_, name_.c_str());
    }

  private:
    void attach() {
        rfpga_csim::Scheduler &s = rfpga_csim::scheduler();
        std::lock_guard<std::mutex> lock(s.m);
        s.channels.push_back(this);
    }
    // The calling process waits until the other side wakes it; `who` names it meanwhile.
    // One condition variable per stream and side: a write wakes only the blocked reader, a
    // read only the blocked writer (one global one woke every thread at every element).
    void block(rfpga_csim::Scheduler &s, std::unique_lock<std::mutex> &lock, const char *&who) {
        if (!who) {
            who = rfpga_csim::current_process();
            s.blocked++;
        }
        rfpga_csim::check_deadlock(s);
        (&who == &reader_ ? readable_ : writable_).wait(lock);
    }
    // The other side's condition is now true: it no longer counts as blocked.
    void wake(rfpga_csim::Scheduler &s, const char *&who) {
        if (who) {
            who = 0;
            s.blocked--;
            (&who == &reader_ ? readable_ : writable_).notify_one();
        }
    }
    std::condition_variable readable_, writable_;
    const char *reader_ = 0;  // the process blocked reading, if any
    const char *writer_ = 0;  // the process blocked writing, if any
#endif
    std::deque<T> q_;
    std::string name_;
    std::size_t depth_ = 0;
};

}  // namespace hls

#ifdef RFPGA_THREADED_CSIM
namespace rfpga_csim {

// Two writes of one pipeline stage (a skip split): in RTL neither happens until both FIFOs
// have room, so neither does here.
template <typename A, typename B>
void write_both(hls::stream<A> &a, const A &va, hls::stream<B> &b, const B &vb) {
    Scheduler &s = scheduler();
    std::unique_lock<std::mutex> lock(s.m);
    for (;;) {
        if (a.full_locked()) {
            a.wait_writable(s, lock);
        } else if (b.full_locked()) {
            b.wait_writable(s, lock);
        } else {
            break;
        }
    }
    a.push_locked(s, va);
    b.push_locked(s, vb);
}

// Two reads of one pipeline stage (a skip add): neither is taken until both have an element.
template <typename A, typename B>
void read_both(hls::stream<A> &a, A &va, hls::stream<B> &b, B &vb) {
    Scheduler &s = scheduler();
    std::unique_lock<std::mutex> lock(s.m);
    for (;;) {
        if (a.empty_locked()) {
            a.wait_readable(s, lock);
        } else if (b.empty_locked()) {
            b.wait_readable(s, lock);
        } else {
            break;
        }
    }
    va = a.pop_locked(s);
    vb = b.pop_locked(s);
}

}  // namespace rfpga_csim
#endif

#endif
