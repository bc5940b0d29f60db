// Scalar math shared by the CPU loops (kernels/*_cpu.cpp) and the CUDA
// kernels (kernels/*.cu). Everything here is HD inline: write it once, so the
// two backends cannot drift apart. No allocation, no I/O, no exceptions.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "philox.h"  // HD, and the counter-based RNG of dropout and augmentation

namespace rs {

// Scalar helpers are templates on T (float in both backends; double in the
// gradient-check tests). std:: overloads are usable in host and device code.
using std::erf;
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;

// ---- activations ----
// Forward takes x; backward takes x, the forward's output y and dy. Most read
// only y; one that reads x says so in kActivations (reads_input): its layer
// then never writes its output over its input. Adding one: its enum value,
// its math, its case in act_forward, act_backward and with_act (no default:
// the compiler names a missed case) and its row in kActivations, all here;
// the CPU and CUDA loops, the config's layer types, the in-place planning
// and the activation tests take it from these.
enum class Act : int { relu = 0, tanh = 1, sigmoid = 2, gelu = 3 };

template <class T> HD inline T relu(T x) { return x > T(0) ? x : T(0); }
template <class T> HD inline T relu_grad(T y, T dy) { return y > T(0) ? dy : T(0); }
template <class T> HD inline T tanh_act(T x) { return tanh(x); }
template <class T> HD inline T tanh_grad(T y, T dy) { return dy * (T(1) - y * y); }
template <class T> HD inline T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
template <class T> HD inline T sigmoid_grad(T y, T dy) { return dy * y * (T(1) - y); }
// GELU, exact (PyTorch's nn.GELU() default, approximate="none"): x Phi(x),
// Phi the standard normal CDF; d/dx = Phi(x) + x phi(x).
template <class T> HD inline T gelu(T x) { return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440))); }
template <class T> HD inline T gelu_grad(T x, T dy) {
  const T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
  const T pdf = T(0.39894228040143267794) * exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

template <class T> HD inline T act_forward(Act a, T x) {
  switch (a) {
    case Act::relu:
      return relu(x);
    case Act::tanh:
      return tanh_act(x);
    case Act::sigmoid:
      return sigmoid(x);
    case Act::gelu:
      return gelu(x);
  }
  return x;  // not reached
}
template <class T> HD inline T act_backward(Act a, T x, T y, T dy) {
  switch (a) {
    case Act::relu:
      return relu_grad(y, dy);
    case Act::tanh:
      return tanh_grad(y, dy);
    case Act::sigmoid:
      return sigmoid_grad(y, dy);
    case Act::gelu:
      return gelu_grad(x, dy);
  }
  return dy;  // not reached
}

// f(std::integral_constant<Act, A>{}) for a's value A: the CPU and CUDA loops
// take the activation as a template argument, so the switch is out of the loop.
template <class F> inline void with_act(Act a, F&& f) {
  switch (a) {
    case Act::relu:
      return f(std::integral_constant<Act, Act::relu>{});
    case Act::tanh:
      return f(std::integral_constant<Act, Act::tanh>{});
    case Act::sigmoid:
      return f(std::integral_constant<Act, Act::sigmoid>{});
    case Act::gelu:
      return f(std::integral_constant<Act, Act::gelu>{});
  }
}

// The activation layers: config name, whether backward reads the input, one line for people.
struct ActInfo {
  Act act;
  const char* name;
  bool reads_input;
  const char* doc;
};
inline constexpr ActInfo kActivations[] = {
    {Act::relu, "relu", false, "max(x, 0)"},
    {Act::tanh, "tanh", false, "tanh(x)"},
    {Act::sigmoid, "sigmoid", false, "1 / (1 + exp(-x))"},
    {Act::gelu, "gelu", true, "x Phi(x), Phi the standard normal CDF (exact, as PyTorch's nn.GELU())"},
};

// ---- dropout: keep with probability 1-p, scale kept values by 1/(1-p) ----
// The mask of element e of the sample with global index s at step t is a pure
// function of (seed, layer, t, s, e): any rank count draws the same masks, and
// backward recomputes the mask instead of storing it.
template <class T> HD inline T dropout_scale(uint64_t key, uint64_t sample, uint64_t elem, float p) {
  return philox_uniform(key, sample, elem) >= p ? T(1) / T(1 - p) : T(0);
}

// ---- softmax cross-entropy over one row of K logits ----
// The target is q = (1 - eps) onehot(label) + eps / K (label smoothing, as
// PyTorch's label_smoothing; eps = 0: plain cross-entropy). Writes
// d = (softmax(z) - q) * scale into d (may be null), returns the loss
// -sum_k q_k log softmax(z)_k and sets *argmax.
template <class T> HD inline T softmax_xent_row(const T* z, int label, int K, T scale, T eps, T* d, int* argmax) {
  T m = z[0];
  int am = 0;
  for (int k = 1; k < K; ++k)
    if (z[k] > m) m = z[k], am = k;
  T s = 0;
  for (int k = 0; k < K; ++k) s += exp(z[k] - m);
  const T logs = log(s), off = eps / T(K);
  if (d) {
    const T inv = T(1) / s;
    for (int k = 0; k < K; ++k) d[k] = (exp(z[k] - m) * inv - ((k == label ? T(1) - eps : T(0)) + off)) * scale;
  }
  *argmax = am;
  T loss = logs - (z[label] - m);  // -log p_label
  if (eps != T(0)) {
    T mean = 0;  // mean over the classes of -log p_k
    for (int k = 0; k < K; ++k) mean += logs - (z[k] - m);
    loss = (T(1) - eps) * loss + eps * mean / T(K);
  }
  return loss;
}

// ---- optimizer updates for one parameter (PyTorch conventions) ----
struct SgdParams {
  float lr, momentum, weight_decay;
  bool nesterov;
};
// v <- mu v + (g + wd p); p <- p - lr * (nesterov ? g' + mu v : v)
HD inline void sgd_update(float* p, float* v, float g, const SgdParams& o) {
  g += o.weight_decay * *p;
  if (o.momentum != 0.f) {
    *v = o.momentum * *v + g;
    g = o.nesterov ? g + o.momentum * *v : *v;
  }
  *p -= o.lr * g;
}

struct AdamParams {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;      // AdamW: p <- p - lr*wd*p; Adam: g <- g + wd*p
  float bias1, bias2;  // 1 - beta1^t, 1 - beta2^t for the step t being taken
};
HD inline void adam_update(float* p, float* m, float* v, float g, const AdamParams& o) {
  if (o.decoupled)
    *p -= o.lr * o.weight_decay * *p;
  else
    g += o.weight_decay * *p;
  *m = o.beta1 * *m + (1.f - o.beta1) * g;
  *v = o.beta2 * *v + (1.f - o.beta2) * g * g;
  const float mhat = *m / o.bias1;
  const float denom = sqrtf(*v / o.bias2) + o.eps;
  *p -= o.lr * mhat / denom;
}

// ---- input conversion: uint8 pixel -> normalised float ----
HD inline float normalize_pixel(float x, float scale, float mean, float inv_std) {
  return (x * scale - mean) * inv_std;
}

// ---- batch normalisation, per channel c over the N values of the batch ----
// Statistics come from the sums S1 = sum x and S2 = sum x^2 (doubles, summed
// over every rank: the batch is the global one). Training normalises with the
// batch's mean and biased variance and moves the running estimates (PyTorch:
// running <- (1 - momentum) running + momentum * batch, unbiased variance);
// inference normalises with the running estimates.
template <class T> struct BnStats { T mean, inv_std; };
template <class T> HD inline BnStats<T> bn_batch_stats(double s1, double s2, double n, double eps) {
  const double mean = s1 / n, var = s2 / n - mean * mean;
  return BnStats<T>{T(mean), T(1.0 / sqrt((var > 0 ? var : 0.0) + eps))};
}
template <class T> HD inline BnStats<T> bn_running_stats(float running_mean, float running_var, double eps) {
  return BnStats<T>{T(running_mean), T(1.0 / sqrt(double(running_var) + eps))};
}
HD inline void bn_update_running(float* running_mean, float* running_var, double s1, double s2, double n,
                                 double momentum) {
  const double mean = s1 / n, var = s2 / n - mean * mean, unbiased = n > 1 ? (var > 0 ? var : 0.0) * n / (n - 1) : 0.0;
  *running_mean = float((1.0 - momentum) * double(*running_mean) + momentum * mean);
  *running_var = float((1.0 - momentum) * double(*running_var) + momentum * unbiased);
}
template <class T> HD inline T bn_forward(T x, BnStats<T> s, T gamma, T beta) {
  return gamma * (x - s.mean) * s.inv_std + beta;
}
// Input gradient from the batch sums D1 = sum dy and D2 = sum dy * xhat (also
// global): dx = gamma inv_std (dy - D1 / n - xhat D2 / n).
template <class T> HD inline T bn_backward(T dy, T x, BnStats<T> s, T gamma, double d1, double d2, double n) {
  const T xhat = (x - s.mean) * s.inv_std;
  return gamma * s.inv_std * (dy - T(d1 / n) - xhat * T(d2 / n));
}

// ---- data augmentation: random crop with zero padding, horizontal flip ----
// Sample s of epoch e (key = f(seed, e)) is shifted by (dy, dx) in
// [-pad, pad]^2 and mirrored with probability 1/2: a pure function of the
// sample's index in the dataset, so any rank count sees the same images.
struct AugmentDraw {
  int dy, dx;
  bool flip;
};
HD inline AugmentDraw augment_draw(uint64_t key, uint64_t sample, int pad, bool flip) {
  const U32x4 r = philox4x32(key, sample, 0);
  const uint32_t span = uint32_t(2 * pad + 1);
  return AugmentDraw{int(r.v[0] % span) - pad, int(r.v[1] % span) - pad, flip && (r.v[2] & 1u)};
}
// The offset in its H x W plane of the source pixel of output (y, x); -1 in the padding.
HD inline int augment_source(int y, int x, int H, int W, AugmentDraw a) {
  const int sy = y + a.dy, sx = (a.flip ? W - 1 - x : x) + a.dx;
  return sy < 0 || sy >= H || sx < 0 || sx >= W ? -1 : sy * W + sx;
}

}  // namespace rs
