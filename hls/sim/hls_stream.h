// A minimal hls::stream for C simulation with g++, written for rfpga (no proprietary headers).
// Vitis HLS uses its own hls_stream.h in place of this one; only the interface the generated
// code needs is provided: write, read, empty, size. An unbounded FIFO: C simulation does not
// model depths (co-simulation in Vitis does).
#ifndef RFPGA_SIM_HLS_STREAM_H
#define RFPGA_SIM_HLS_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

template <typename T>
class stream {
  public:
    stream() {}
    explicit stream(const char *name) : name_(name) {}
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;

    void write(const T &v) { q_.push_back(v); }
    void operator<<(const T &v) { write(v); }

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
    void operator>>(T &v) { v = read(); }

    bool empty() const { return q_.empty(); }
    bool full() const { return false; }
    std::size_t size() const { return q_.size(); }

  private:
    std::deque<T> q_;
    std::string name_;
};

}  // namespace hls

#endif
