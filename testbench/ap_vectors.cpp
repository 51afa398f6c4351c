// Checks the ap_fixed test vectors of crates/rfpga-core/testdata/ap_fixed/ (written by the Rust
// implementation, rfpga-core's fixed.rs) against the real Xilinx headers.
//   make check-ap-vectors
// or by hand:
//   bash scripts/setup-ap-types.sh
//   g++ -O2 -std=c++17 -I third_party/ap_types testbench/ap_vectors.cpp -o ap_vectors
//   ./ap_vectors crates/rfpga-core/testdata/ap_fixed
// Prints "N passed, M failed" and exits non-zero on any mismatch or malformed line.
// Without NDEBUG the headers abort on some conversions with rounding whose first dropped bit lies
// above the source's MSB (ap_private::get_bit asserts although the bit is then not used); the
// values they compute are well defined and are in the vectors. rfpga-core predicts these cases
// (FixedFormat::assignment_asserts_in_cpp); -DAP_VECTORS_KEEP_ASSERTS shows the abort.
#ifndef AP_VECTORS_KEEP_ASSERTS
#define NDEBUG
#endif
#include <ap_fixed.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// Width and signedness of a type, for reading its raw value back.
template <class T> struct Traits;
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct Traits<ap_fixed<W, I, Q, O, N>> {
  static const int width = W;
  static const bool is_signed = true;
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N> struct Traits<ap_ufixed<W, I, Q, O, N>> {
  static const int width = W;
  static const bool is_signed = false;
};

template <class T> T from_raw(int64_t raw) {
  T x;
  x.setBits(static_cast<uint64_t>(raw));  // keeps the low W bits
  return x;
}

template <class T> int64_t to_raw(const T& x) {
  const int W = Traits<T>::width;
  ap_uint<W> bits = x.range(W - 1, 0);
  uint64_t u = bits.to_uint64();
  if (Traits<T>::is_signed && W < 64 && ((u >> (W - 1)) & 1)) u |= ~uint64_t(0) << W;
  return static_cast<int64_t>(u);
}

template <class S, class D> int64_t convert(int64_t raw) {
  D d = from_raw<S>(raw);
  return to_raw(d);
}

template <class D> int64_t from_double(double x) {
  D d = x;
  return to_raw(d);
}

template <class A, class P> int64_t accumulate(const std::vector<int64_t>& raws) {
  A acc = 0;
  for (int64_t r : raws) acc += from_raw<P>(r);
  return to_raw(acc);
}

struct Conversion {
  const char* src;
  const char* dst;
  int64_t (*f)(int64_t);
};
struct FromDouble {
  const char* dst;
  int64_t (*f)(double);
};
struct Accumulation {
  const char* acc;
  const char* prod;
  int64_t (*f)(const std::vector<int64_t>&);
};

// CONVERSIONS, DOUBLES, ACCUMULATIONS: the types the vector files use (generated with them).
#include "../crates/rfpga-core/testdata/ap_fixed/dispatch.inc"

namespace {

long passed = 0, failed = 0;

void fail(const std::string& file, long line, const std::string& what) {
  if (++failed <= 30) std::fprintf(stderr, "%s:%ld: %s\n", file.c_str(), line, what.c_str());
}

bool parse_int(const std::string& s, int64_t& out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) return false;
  out = v;
  return true;
}

// Calls `check(fields, line_number)` for every data line of `path`; returns how many there were.
template <class F> long each_line(const std::string& path, F check) {
  std::ifstream in(path);
  if (!in) {
    fail(path, 0, "cannot open");
    return 0;
  }
  std::string text;
  long n = 0, count = 0;
  while (std::getline(in, text)) {
    ++n;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream ss(text);
    std::vector<std::string> fields;
    for (std::string w; ss >> w;) fields.push_back(w);
    ++count;
    check(fields, n);
  }
  if (count == 0) fail(path, 0, "no cases");
  return count;
}

void check_result(const std::string& file, long line, int64_t got, const std::string& want_text, const std::string& what) {
  int64_t want;
  if (!parse_int(want_text, want)) {
    fail(file, line, "bad expected value " + want_text);
  } else if (got != want) {
    fail(file, line, what + ": file " + want_text + ", headers " + std::to_string(got));
  } else {
    ++passed;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "crates/rfpga-core/testdata/ap_fixed";
  std::map<std::pair<std::string, std::string>, int64_t (*)(int64_t)> conv;
  for (const auto& c : CONVERSIONS) conv[{c.src, c.dst}] = c.f;
  std::map<std::string, int64_t (*)(double)> dbl;
  for (const auto& d : DOUBLES) dbl[d.dst] = d.f;
  std::map<std::pair<std::string, std::string>, int64_t (*)(const std::vector<int64_t>&)> acc;
  for (const auto& a : ACCUMULATIONS) acc[{a.acc, a.prod}] = a.f;

  std::string path = dir + "/conversions.txt";
  each_line(path, [&](const std::vector<std::string>& f, long n) {
    int64_t raw;
    auto it = f.size() == 4 ? conv.find({f[0], f[1]}) : conv.end();
    if (f.size() != 4 || !parse_int(f[2], raw)) return fail(path, n, "malformed line");
    if (it == conv.end()) return fail(path, n, "no dispatch entry (regenerate dispatch.inc)");
    check_result(path, n, it->second(raw), f[3], f[1] + " <- " + f[0] + " raw " + f[2]);
  });

  path = dir + "/doubles.txt";
  each_line(path, [&](const std::vector<std::string>& f, long n) {
    if (f.size() != 3) return fail(path, n, "malformed line");
    auto it = dbl.find(f[0]);
    if (it == dbl.end()) return fail(path, n, "no dispatch entry (regenerate dispatch.inc)");
    char* end = nullptr;
    uint64_t bits = std::strtoull(f[1].c_str(), &end, 16);
    if (*end != '\0') return fail(path, n, "bad double bits " + f[1]);
    double x;
    std::memcpy(&x, &bits, sizeof x);
    check_result(path, n, it->second(x), f[2], f[0] + " <- " + f[1]);
  });

  path = dir + "/accumulations.txt";
  each_line(path, [&](const std::vector<std::string>& f, long n) {
    if (f.size() != 4) return fail(path, n, "malformed line");
    auto it = acc.find({f[0], f[1]});
    if (it == acc.end()) return fail(path, n, "no dispatch entry (regenerate dispatch.inc)");
    std::vector<int64_t> raws;
    std::stringstream ss(f[2]);
    for (std::string item; std::getline(ss, item, ',');) {
      int64_t r;
      if (!parse_int(item, r)) return fail(path, n, "bad raw " + item);
      raws.push_back(r);
    }
    check_result(path, n, it->second(raws), f[3], f[0] + " += " + f[1] + " " + f[2]);
  });

  std::printf("%ld passed, %ld failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
