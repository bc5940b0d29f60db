// Denormal floats flushed to zero on every CPU thread.
//
// On x86 a denormal operand or result costs a microcode assist, ~100 cycles
// per element on Intel cores (less on AMD): optimizer moments of units whose
// gradient is zero decay through the denormal range by beta1 per step and
// made Adam's step several times slower. FTZ (results) and DAZ (operands) in
// MXCSR turn such values into 0 at full speed. Values below 1.2e-38 (float)
// or 2.2e-308 (double) become 0; nothing ranksweep computes depends on them.
// POSIX threads inherit the creating thread's floating-point environment, so
// setting it on the main thread before any thread starts covers MPI's, the
// sweep coordinator's and OpenMP's threads; flush_denormals_everywhere() sets
// it again on every thread of the OpenMP pool for code (tests, libraries)
// whose threads started earlier.
#include <omp.h>

#if defined(__SSE3__)
#include <pmmintrin.h>
#endif

#include "kernels_cpu.h"

namespace rs {

void flush_denormals() noexcept {
#if defined(__SSE3__)
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

bool denormals_flushed() noexcept {
#if defined(__SSE3__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON && _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
#else
  return false;
#endif
}

bool flush_denormals_everywhere() {
  flush_denormals();
  int unset = 0;
#pragma omp parallel reduction(+ : unset)
  {
    flush_denormals();
    unset += denormals_flushed() ? 0 : 1;
  }
  return unset == 0 && denormals_flushed();
}

}  // namespace rs
