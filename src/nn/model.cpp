#include "nn/model.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "error.h"
#include "kernels/hd_math.h"

namespace rs {

Model::Model(Backend& be, const ModelConfig& cfg, Shape input, int classes, int max_batch)
    : m_be(be), m_input(input), m_classes(classes), m_max_batch(max_batch) {
  Shape s = input;
  size_t nparams = 0, nstate = 0, max_act = 0;
  std::vector<float> state_init;
  // A ReLU right before a max-pool runs after it: max(relu(x)) = relu(max(x)),
  // on a quarter of the values (2 x 2 windows), and the gradients are the
  // same (a window's winner is the first maximum either way; where every
  // value is <= 0 the ReLU passes no gradient either way).
  std::vector<size_t> order(cfg.layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = 0; i + 1 < order.size(); ++i)
    if (cfg.layers[i].type == "relu" && cfg.layers[i + 1].type == "maxpool") std::swap(order[i], order[i + 1]), ++i;
  for (const size_t i : order) {
    auto layer = make_layer(cfg.layers[i], int(i), s, classes);
    for (const TensorSpec& t : layer->tensors()) {
      m_info.push_back({layer->name(), t.name, t.shape, nparams, t.count(), t.fan_in});
      nparams += t.count();
    }
    for (const TensorSpec& t : layer->state_tensors()) {
      m_state_info.push_back({layer->name(), t.name, t.shape, nstate, t.count(), t.fan_in});
      nstate += t.count();
      state_init.resize(nstate, t.fill.value_or(0.f));
    }
    layer->allocate(be, max_batch);
    s = layer->out_shape();
    max_act = std::max(max_act, s.size());
    m_layers.push_back(std::move(layer));
  }
  while (m_first < m_layers.size() && m_layers[m_first]->aliases_input()) ++m_first;
  const char* prof = std::getenv("RANKSWEEP_PROFILE");
  m_profile = prof && *prof && std::string(prof) != "0";
  m_prof_fwd.assign(m_layers.size(), 0.0);
  m_prof_bwd.assign(m_layers.size(), 0.0);
  if (s.size() != size_t(classes))
    fail("model: the last layer ({}) gives {} outputs per sample, the data has {} classes",
         m_layers.empty() ? "input" : m_layers.back()->name(), s.size(), classes);

  m_params = Buffer<float>(be, nparams);
  m_grads = Buffer<float>(be, nparams);
  m_state = Buffer<float>(be, nstate);
  set_state_host(state_init);
  for (auto& d : m_dbuf) d = Buffer<float>(be, size_t(max_batch) * std::max(max_act, input.size()));

  // Views: params/grads in tensor order, activations.
  point_layers();
  size_t si = 0;
  m_act_bufs.emplace_back(be, size_t(max_batch) * input.size());
  m_acts.push_back(m_act_bufs.back().data());
  for (auto& l : m_layers) {
    for (size_t k = 0; k < l->state_tensors().size(); ++k, ++si)
      l->state.push_back(m_state.data() + m_state_info[si].offset);
    l->max_batch = max_batch;
    // In place when elementwise, its backward does not read its input, and
    // the producer of the input (the last computing layer before it) does
    // not read its own output in backward.
    const Layer* producer = nullptr;
    for (size_t j = &l - m_layers.data(); j-- > 0;)
      if (!m_layers[j]->aliases_input()) {
        producer = m_layers[j].get();
        break;
      }
    const bool in_place =
        l->can_run_in_place() && !l->backward_needs_input() && !(producer && producer->backward_needs_output());
    if (l->aliases_input() || in_place) {
      m_acts.push_back(m_acts.back());
    } else {
      m_act_bufs.emplace_back(be, size_t(max_batch) * l->out_shape().size());
      m_acts.push_back(m_act_bufs.back().data());
    }
  }
}

void Model::point_layers() {
  size_t ti = 0;
  for (auto& l : m_layers) {
    l->params.clear();
    l->grads.clear();
    for (size_t k = 0; k < l->tensors().size(); ++k, ++ti) {
      l->params.push_back(m_params.data() + m_info[ti].offset);
      l->grads.push_back(m_grads.data() + m_info[ti].offset);
    }
  }
}

void Model::use_storage(float* params, float* grads) {
  const size_t n = num_params();
  m_params = Buffer<float>::borrow(params, n);
  m_grads = Buffer<float>::borrow(grads, n);
  point_layers();
}

void Model::init_params(uint64_t seed) {
  std::vector<float> h(num_params()), st;
  size_t t = 0;
  for (const auto& l : m_layers) {
    for (const TensorSpec& spec : l->tensors()) {
      const ParamInfo& pi = m_info[t];
      const float bound = 1.f / std::sqrt(float(pi.fan_in));
      const uint64_t key = rng_key(seed, 0x494e4954u /* "INIT" */, t++);
      float* out = h.data() + pi.offset;
      if (spec.fill) {
        std::fill_n(out, pi.count, *spec.fill);
        continue;
      }
      for (size_t i = 0; i < pi.count; i += 4) {  // value i is philox_uniform(key, 0, i): four per block
        const U32x4 r = philox4x32(key, 0, i >> 2);
        for (size_t j = 0; j < 4 && i + j < pi.count; ++j) out[i + j] = (2.f * u32_to_unit(r.v[j]) - 1.f) * bound;
      }
    }
    for (const TensorSpec& spec : l->state_tensors()) st.resize(st.size() + spec.count(), spec.fill.value_or(0.f));
  }
  set_params_host(h);
  set_state_host(st);
}

std::vector<float> Model::state_host() const {
  std::vector<float> h(num_state());
  m_be.download(h.data(), m_state.data(), h.size() * sizeof(float));
  return h;
}

void Model::set_state_host(const std::vector<float>& s) {
  if (s.size() != num_state()) throw std::logic_error("set_state_host: size mismatch");
  if (!s.empty()) m_be.upload(m_state.data(), s.data(), s.size() * sizeof(float));
}

void Model::idle_step(const Pass& p, const std::function<void(size_t)>& done) {
  for (auto& l : m_layers) l->idle_forward(m_be, p);
  for (size_t i = m_layers.size(); i-- > 0;) {
    m_layers[i]->idle_backward(m_be, p);
    if (done && !m_layers[i]->aliases_input() && !m_layers[i]->params.empty()) done(i);
  }
}

std::vector<float> Model::params_host() const {
  std::vector<float> h(num_params());
  m_be.download(h.data(), m_params.data(), h.size() * sizeof(float));
  return h;
}

void Model::set_params_host(const std::vector<float>& p) {
  if (p.size() != num_params()) throw std::logic_error("set_params_host: size mismatch");
  m_be.upload(m_params.data(), p.data(), p.size() * sizeof(float));
}

namespace {
// Adds the time since the last call to `slot` (profiling only).
struct LayerClock {
  Backend& be;
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
  void lap(double& slot) {
    be.synchronize();
    const auto now = std::chrono::steady_clock::now();
    slot += std::chrono::duration<double>(now - t).count();
    t = now;
  }
};
}  // namespace

const float* Model::forward(const Pass& p) {
  const bool timed = m_profile && p.train;  // training steps only, not evaluation
  LayerClock clock{m_be};
  if (timed) m_prof_samples += p.B;
  for (size_t i = 0; i < m_layers.size(); ++i) {
    m_layers[i]->forward(m_be, m_acts[i], m_acts[i + 1], p);
    if (timed) clock.lap(m_prof_fwd[i]);
  }
  return m_acts.back();
}

void Model::backward(const float* dlogits, const Pass& p, const std::function<void(size_t)>& done) {
  const float* dy = dlogits;
  LayerClock clock{m_be};
  for (size_t i = m_layers.size(); i-- > 0;) {
    Layer& l = *m_layers[i];
    if (l.aliases_input()) continue;  // same memory, same gradient
    float* dx = nullptr;
    if (i > m_first) dx = dy == m_dbuf[0].data() ? m_dbuf[1].data() : m_dbuf[0].data();
    l.backward(m_be, m_acts[i], m_acts[i + 1], dy, dx, p);
    if (m_profile) clock.lap(m_prof_bwd[i]);
    if (done && !l.params.empty()) done(i);
    dy = dx;
  }
}

std::string Model::profile_table() {
  double total = 0;
  for (size_t i = 0; i < m_layers.size(); ++i) total += m_prof_fwd[i] + m_prof_bwd[i];
  std::string s =
      fmt::format("  {:<10} {:<10} {:>12} {:>12} {:>7}\n", "layer", "type", "fwd us/img", "bwd us/img", "share");
  const double per = m_prof_samples > 0 ? 1e6 / double(m_prof_samples) : 0;
  m_prof_samples = 0;
  for (size_t i = 0; i < m_layers.size(); ++i) {
    const double f = std::exchange(m_prof_fwd[i], 0.0), b = std::exchange(m_prof_bwd[i], 0.0);
    if (m_layers[i]->aliases_input()) continue;  // a view (flatten): counted in the total, no line
    s += fmt::format("  {:<10} {:<10} {:>12.1f} {:>12.1f} {:>6.1f}%\n", m_layers[i]->name(), m_layers[i]->spec().type,
                     f * per, b * per, total > 0 ? 100 * (f + b) / total : 0.0);
  }
  s += fmt::format("  {:<10} {:<10} {:>25.1f} us/img", "total", "", total * per);
  return s;
}

std::string Model::summary() const {
  std::string s =
      fmt::format("  {:<10} {:<8} {:>14}\n", "input", "", fmt::format("{}x{}x{}", m_input.c, m_input.h, m_input.w));
  size_t ti = 0;
  for (const auto& l : m_layers) {
    size_t n = 0;
    for (size_t k = 0; k < l->tensors().size(); ++k) n += m_info[ti++].count;
    const Shape o = l->out_shape();
    s += fmt::format("  {:<10} {:<8} {:>14} {:>10}\n", l->name(), l->spec().type,
                     fmt::format("{}x{}x{}", o.c, o.h, o.w), n ? std::to_string(n) : "");
  }
  s += fmt::format("  {} parameters", num_params());
  return s;
}

}  // namespace rs
