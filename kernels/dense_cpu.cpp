// Dense layer, CPU: OpenBLAS GEMMs. w is (OUT, IN) as in PyTorch.
#include <algorithm>

#include "blas_cpu.h"
#include "kernels_cpu.h"

namespace rs {

template <class T> void dense_forward_cpu(T* out, const T* in, const T* w, const T* b, int B, int IN, int OUT) {
  for (int i = 0; i < B; ++i) std::copy(b, b + OUT, out + size_t(i) * OUT);  // out (B, OUT) <- b
  gemm(CblasNoTrans, CblasTrans, B, OUT, IN, T(1), in, IN, w, IN, T(1), out, OUT);
}

template <class T>
void dense_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, int B, int IN, int OUT) {
  gemm(CblasTrans, CblasNoTrans, OUT, IN, B, T(1), dout, OUT, in, IN, T(0), dw, IN);  // dw (OUT, IN)
  std::fill(db, db + OUT, T(0));
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < OUT; ++o) db[o] += dout[size_t(i) * OUT + o];
  if (din) gemm(CblasNoTrans, CblasNoTrans, B, IN, OUT, T(1), dout, OUT, w, IN, T(0), din, IN);  // din (B, IN)
}

template void dense_forward_cpu<float>(float*, const float*, const float*, const float*, int, int, int);
template void dense_forward_cpu<double>(double*, const double*, const double*, const double*, int, int, int);
template void dense_backward_cpu<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                        int);
template void dense_backward_cpu<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                         int, int);

}  // namespace rs
