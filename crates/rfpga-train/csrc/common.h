// Shared by the fused kernels in csrc/.
#pragma once

#include <cstdlib>
#include <cstring>

// Loops marked RFPGA_KERNEL are compiled twice, for x86-64-v3 (AVX2, FMA) and the baseline, and
// the loader picks one (GCC function multiversioning): fast where it can be, runs everywhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RFPGA_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RFPGA_KERNEL
#endif

// An error message for the Rust side, which frees it with free().
inline char* rfpga_message(const char* what) {
  char* m = static_cast<char*>(std::malloc(std::strlen(what) + 1));
  if (m) std::strcpy(m, what);
  return m;
}
