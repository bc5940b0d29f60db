// The host emulator of the CUDA runtime (include/cuda_runtime.h says what it
// does and does not emulate). One OS thread runs everything: the threads of a
// block are ucontext fibers switched only at __syncthreads() and at their end.
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <ucontext.h>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define RS_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RS_EMU_ASAN 1
#endif
#endif
#ifdef RS_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// The __shared__ variables of every kernel (one section, see cuda_runtime.h).
extern "C" __attribute__((weak)) char __start_rs_emu_shared[];
extern "C" __attribute__((weak)) char __stop_rs_emu_shared[];

namespace {

constexpr unsigned kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kDeviceBytes = size_t(8) << 30;  // the emulated device's memory

cudaError_t g_last = cudaSuccess;  // the last error; sticky when fatal
cudaError_t g_inject = cudaSuccess;
std::map<const char*, size_t> g_allocs;  // device allocations: base -> bytes
size_t g_alloc_bytes = 0;

bool sticky(cudaError_t e) { return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure; }
cudaError_t set_error(cudaError_t e) {
  if (!sticky(g_last)) g_last = e;
  return e;
}

// The allocation holding [p, p + bytes), or none.
const std::pair<const char* const, size_t>* allocation_of(const void* p, size_t bytes = 1) {
  const char* c = static_cast<const char*>(p);
  auto it = g_allocs.upper_bound(c);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (c < it->first || size_t(c - it->first) + bytes > it->second) return nullptr;
  return &*it;
}

// ---- fibers: the threads of the running block
enum class State { ready, waiting, done };
struct Fiber {
  ucontext_t ctx;
  State state = State::ready;
  void* fake_stack = nullptr;
};
struct Block {
  const std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers;
  ucontext_t sched;
  unsigned current = 0;
  char* stacks = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  bool abandoned = false;  // a run ended with fibers still suspended: their stacks hold stale frames
} g;

char* stack_of(unsigned i) { return g.stacks + size_t(i) * kStackBytes; }

void set_thread(unsigned i) {
  threadIdx.x = i % blockDim.x;
  threadIdx.y = i / blockDim.x % blockDim.y;
  threadIdx.z = i / (blockDim.x * blockDim.y);
}

// Switch from a fiber to the scheduler (exiting: the fiber never resumes).
void to_scheduler(Fiber& f, bool exiting) {
#ifdef RS_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.fake_stack, g.sched_bottom, g.sched_size);
#endif
  if (exiting) return;  // the fiber's function returns to uc_link
  swapcontext(&f.ctx, &g.sched);
#ifdef RS_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &g.sched_bottom, &g.sched_size);
#endif
}

void fiber_main() {
#ifdef RS_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &g.sched_bottom, &g.sched_size);
#endif
  (*g.body)();
  Fiber& f = g.fibers[g.current];
  f.state = State::done;
  to_scheduler(f, true);
}

void resume(unsigned i) {
  g.current = i;
  set_thread(i);
#ifdef RS_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_of(i), kStackBytes);
#endif
  swapcontext(&g.sched, &g.fibers[i].ctx);
#ifdef RS_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

__attribute__((no_sanitize("address"))) void poison_shared() {
  if (!__start_rs_emu_shared) return;
  for (volatile char* p = __start_rs_emu_shared; p < __stop_rs_emu_shared; ++p) *p = char(0xff);
}

// Run one block to its end; "" or what went wrong.
std::string run_block(bool descending) {
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  if (!g.stacks) {
    void* m = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("emu: cannot map fiber stacks");
    g.stacks = static_cast<char*>(m);
  }
#ifdef RS_EMU_ASAN
  if (g.abandoned) ASAN_UNPOISON_MEMORY_REGION(g.stacks, kMaxThreads * kStackBytes);
#endif
  g.abandoned = false;
  poison_shared();
  g.fibers.assign(n, Fiber{});
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = g.fibers[i];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stack_of(i);
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &g.sched;
    makecontext(&f.ctx, fiber_main, 0);
  }
  for (;;) {
    for (unsigned k = 0; k < n; ++k) {
      const unsigned i = descending ? n - 1 - k : k;
      if (g.fibers[i].state == State::ready) resume(i);
    }
    unsigned waiting = 0, done = 0;
    for (const Fiber& f : g.fibers) (f.state == State::waiting ? waiting : done) += 1;
    if (waiting == 0) return "";
    if (done > 0) {
      g.abandoned = true;
      return std::to_string(waiting) + " threads wait at __syncthreads() that " + std::to_string(done) +
             " threads of the block never reach (a barrier in divergent code)";
    }
    for (Fiber& f : g.fibers) f.state = State::ready;
  }
}

std::string run_grid(dim3 grid, bool descending) {
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
        if (std::string e = run_block(descending); !e.empty())
          return e + " in block (" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) + ")";
      }
  return "";
}

using Memory = std::vector<std::vector<char>>;
Memory save() {
  Memory m;
  for (const auto& [p, n] : g_allocs) m.emplace_back(p, p + n);
  return m;
}
void restore(const Memory& m) {
  size_t i = 0;
  for (const auto& [p, n] : g_allocs) std::memcpy(const_cast<char*>(p), m[i++].data(), n);
}

cudaError_t fail(const char* kernel, const std::string& why, cudaError_t e) {
  std::fprintf(stderr, "emu: kernel %s: %s\n", kernel, why.c_str());
  return set_error(e);
}

}  // namespace

void __syncthreads() {
  Fiber& f = g.fibers[g.current];
  f.state = State::waiting;
  to_scheduler(f, false);
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last;
  if (!sticky(e)) g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return sticky(g_last) ? g_last : cudaSuccess; }

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    default:
      return "emulated error";
  }
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (sticky(g_last)) return g_last;
  if (bytes == 0) return cudaSuccess;
  if (bytes > kDeviceBytes - g_alloc_bytes) return set_error(cudaErrorMemoryAllocation);
  char* m = static_cast<char*>(std::malloc(bytes));
  if (!m) return set_error(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);  // uninitialised device memory reads as NaN
  g_allocs[m] = bytes;
  g_alloc_bytes += bytes;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto it = g_allocs.find(static_cast<const char*>(p));
  if (it == g_allocs.end()) return set_error(cudaErrorInvalidValue);
  g_alloc_bytes -= it->second;
  g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

namespace emu {

void launch(const char* name, dim3 grid, dim3 block, const std::function<void()>& body,
            std::initializer_list<Arg> args) {
  if (sticky(g_last)) return;
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > kMaxThreads || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    fail(name,
         "invalid launch configuration: grid (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
             std::to_string(grid.z) + "), block (" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
             std::to_string(block.z) + ")",
         cudaErrorInvalidConfiguration);
    return;
  }
  int i = 0;
  for (const Arg& a : args) {
    if (a.is_pointer && a.ptr && !allocation_of(a.ptr)) {
      fail(name, "argument " + std::to_string(i) + " does not point into device memory", cudaErrorIllegalAddress);
      return;
    }
    ++i;
  }
  if (g_inject != cudaSuccess) {
    fail(name, "fault injected by the test", g_inject);
    g_inject = cudaSuccess;
    return;
  }
  gridDim = grid, blockDim = block;
  g.body = &body;
  const Memory before = save();
  if (std::string e = run_grid(grid, false); !e.empty()) {
    fail(name, e, cudaErrorLaunchFailure);
    return;
  }
  const Memory ascending = save();
  restore(before);
  if (std::string e = run_grid(grid, true); !e.empty()) {
    fail(name, e + " (threads in descending order)", cudaErrorLaunchFailure);
    return;
  }
  size_t k = 0;
  for (const auto& [p, n] : g_allocs) {
    const std::vector<char>& a = ascending[k++];
    if (std::memcmp(a.data(), p, n) == 0) continue;
    size_t o = 0;
    while (a[o] == p[o]) ++o;
    fail(name,
         "results depend on the order in which the threads of a block run (an allocation of " + std::to_string(n) +
             " bytes differs first at byte " + std::to_string(o) + "): a missing __syncthreads() or a race",
         cudaErrorLaunchFailure);
    return;
  }
}

void fail_next_launch(cudaError_t e) { g_inject = e; }
size_t live_device_bytes() { return g_alloc_bytes; }
void reset() { g_last = cudaSuccess; }

}  // namespace emu

// ---- cuBLAS
struct cublasContext {};

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t) {
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    default:
      return "emulated cuBLAS error";
  }
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto op_ok = [](cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C; };
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (!op_ok(ta) || !op_ok(tb) || m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
      ldc < std::max(1, m) || !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (sticky(g_last)) return CUBLAS_STATUS_EXECUTION_FAILED;
  // every column-major matrix the call reads or writes must lie in one allocation
  const auto inside = [](const float* p, int rows, int cols, int ld) {
    return rows == 0 || cols == 0 || allocation_of(p, sizeof(float) * (size_t(cols - 1) * ld + rows));
  };
  const bool uses_ab = k > 0 && *alpha != 0.f;
  if ((uses_ab && !inside(A, a_rows, ta == CUBLAS_OP_N ? k : m, lda)) ||
      (uses_ab && !inside(B, b_rows, tb == CUBLAS_OP_N ? n : k, ldb)) || !inside(C, m, n, ldc)) {
    fail("cublasSgemm", "a matrix extends beyond its device allocation", cudaErrorIllegalAddress);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  const auto op = [](cublasOperation_t t) { return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; };
  cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
  return CUBLAS_STATUS_SUCCESS;
}
