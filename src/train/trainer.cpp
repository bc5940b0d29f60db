#include "train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

#include "io/trace.h"
#include "kernels/hd_math.h"

namespace rs {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// A step's phases (Trainer::Phases); kOther: time accounted for otherwise.
enum { kData, kForward, kBackward, kAllreduce, kOptimizer, kOther };
const char* const kPhaseSpans[] = {"data", "forward", "backward"};  // the trace's step-level spans of the first three

Shape input_shape(const Data& d) { return Shape{d.train.c, d.train.h, d.train.w}; }

int64_t eval_batch(const TrainConfig& t, const Backend& be) {
  return t.eval_batch_size > 0 ? t.eval_batch_size : default_eval_batch(be.kind());
}

// Samples a rank's buffers hold: its slice of a training batch, or of an
// evaluation batch (never more than its slice of the largest evaluated set).
int max_batch(const TrainConfig& t, const Backend& be, int ranks, int64_t eval_n) {
  const int64_t train_slice = (t.batch_size + ranks - 1) / ranks, eval_slice = (eval_n + ranks - 1) / ranks;
  return int(std::max<int64_t>({train_slice, std::min(eval_batch(t, be), eval_slice), 1}));
}

}  // namespace

Trainer::Trainer(const Config& cfg, const Data& data, Backend& be, const Comm& comm)
    : Trainer(cfg, data, be, make_grad_comm(be, comm), comm) {}

Trainer::Trainer(const Config& cfg, const Data& data, Backend& be, std::unique_ptr<GradComm> own, const Comm& comm)
    : Trainer(cfg, data, be, *own, comm) {
  m_own_grads = std::move(own);  // the allreduce may use what it owns (the NCCL communicator)
}

Trainer::Trainer(const Config& cfg, const Data& data, Backend& be, GradComm& grads, const Comm& comm)
    : m_cfg(cfg),
      m_data(data),
      m_be(be),
      m_comm(comm),
      m_grads(grads),
      m_model(be, cfg.model, input_shape(data), int(cfg.data.classes),
              max_batch(cfg.train, be, comm.size(), std::max<int64_t>(int64_t(data.val_idx.size()), data.test.n))),
      m_opt(be, cfg.train, m_model.num_params()),
      m_dlogits(be, size_t(m_model.max_batch()) * cfg.data.classes),
      m_labels(be, size_t(m_model.max_batch())),
      m_metrics(be, 2),
      m_test_idx(size_t(data.test.n)) {
  std::iota(m_test_idx.begin(), m_test_idx.end(), 0);
  m_be.zero(m_metrics.data(), 2 * sizeof(double));
}

std::array<double, 2> Trainer::read_metrics(bool reset) {
  std::array<double, 2> h{};
  m_be.download(h.data(), m_metrics.data(), sizeof h);
  if (reset) m_be.zero(m_metrics.data(), sizeof h);
  return h;
}

int64_t Trainer::steps_per_epoch() const {
  const int64_t n = int64_t(m_data.train_idx.size()), b = m_cfg.train.batch_size;
  // A last batch of one sample is left out where a batch norm layer normalises over the batch alone
  // (the variance of one value; PyTorch refuses it): a different sample each epoch (the order is shuffled).
  if (n > 1 && n % b == 1 && !batch_only_norm_layer(m_cfg.model).empty()) return n / b;
  return (n + b - 1) / b;
}

void Trainer::choose_sync() {
  if (!m_sync) m_sync = make_grad_sync(m_cfg.train, m_be, m_grads, m_comm, m_model, m_opt);
}

void Trainer::init() {
  const trace::Scope span("broadcast model");
  const auto t0 = Clock::now();
  choose_sync();
  // One copy a node: rank 0's, broadcast to the other nodes' copies.
  if (const SharedParams* shared = m_sync->shared()) {
    if (m_comm.leader()) m_model.init_params(uint64_t(m_cfg.train.seed));
    shared->copy_from_first_node(0);
    m_broadcast_seconds += since(t0);
    return;
  }
  std::vector<float> p(m_model.num_params());
  if (m_comm.leader()) {
    m_model.init_params(uint64_t(m_cfg.train.seed));
    p = m_model.params_host();
  }
  m_comm.bcast(std::span<float>(p));
  m_model.set_params_host(p);
  m_broadcast_seconds += since(t0);
}

void Trainer::resume(const RunFile& rf) {
  const trace::Scope span("load checkpoint");
  choose_sync();
  m_comm.root_only([&] { load_into(rf, m_model, &m_opt); });
  std::vector<float> st = m_model.state_host();
  m_comm.bcast(std::span<float>(st));
  m_model.set_state_host(st);
  if (const SharedParams* shared = m_sync->shared()) {
    // rank 0 put the parameters and the optimizer state in its node's copy
    shared->copy_from_first_node(int(m_opt.state_names().size()));
  } else {
    std::vector<float> p = m_model.params_host();
    m_comm.bcast(std::span<float>(p));
    m_model.set_params_host(p);
    for (size_t k = 0; k < m_opt.state_names().size(); ++k) {
      m_be.download(p.data(), m_opt.state(k), p.size() * sizeof(float));
      m_comm.bcast(std::span<float>(p));
      m_be.upload(m_opt.state(k), p.data(), p.size() * sizeof(float));
    }
  }
  int64_t steps = m_opt.steps();
  m_comm.bcast(steps);
  m_opt.set_steps(steps);
  // Every rank needs the history: epochs_done() keys the shuffle and the epoch loop.
  std::string names;
  std::vector<double> values;
  if (m_comm.leader())
    for (const std::string& name : rf.history.order) {
      names += name + '\n';
      const auto& v = rf.history.cols.at(name);
      values.insert(values.end(), v.begin(), v.end());
    }
  m_comm.bcast_string(names);
  m_comm.bcast_vector(values);
  m_history = History{};
  size_t at = 0;
  const size_t per = names.empty() ? 0 : values.size() / size_t(std::count(names.begin(), names.end(), '\n'));
  for (size_t a = 0, b; (b = names.find('\n', a)) != std::string::npos; a = b + 1)
    for (size_t e = 0; e < per; ++e) m_history.add(names.substr(a, b - a), values[at++]);
  // A run stopped inside an epoch: every rank continues its own partial sums
  // (the same rank count continues bit for bit; another puts them all on rank 0).
  m_position = EpochPosition{};
  m_resume_sums = {0, 0};
  if (m_comm.leader()) m_position = rf.position;
  m_comm.bcast(m_position.step);
  m_comm.bcast(m_position.train_seconds);
  m_comm.bcast_vector(m_position.sums);
  if (m_position.step > 0) {
    const size_t rows = m_position.sums.size() / 2, R = size_t(m_comm.size()), r = size_t(m_comm.rank());
    if (rows == R) {
      m_resume_sums = {m_position.sums[2 * r], m_position.sums[2 * r + 1]};
    } else if (r == 0) {
      for (size_t i = 0; i < rows; ++i)
        m_resume_sums[0] += m_position.sums[2 * i], m_resume_sums[1] += m_position.sums[2 * i + 1];
    }
  }
}

bool Trainer::stop_agreed() {
  if (!m_stop_check) return false;
  int stop = m_stop_check() ? 1 : 0;
  if (m_comm.size() > 1) MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, m_comm.raw());
  return stop != 0;
}

void Trainer::stop_inside_epoch(int64_t step, double train_seconds, std::array<double, 2> mine) {
  m_position.step = step;
  m_position.train_seconds = train_seconds;
  m_position.sums.assign(2 * size_t(m_comm.size()), 0.0);
  MPI_Gather(mine.data(), 2, MPI_DOUBLE, m_position.sums.data(), 2, MPI_DOUBLE, 0, m_comm.raw());
}

bool Trainer::run_epoch() {
  const int64_t epoch = epochs_done();
  const trace::Scope span("epoch", "\"epoch\": {}", epoch + 1);
  // Resuming inside this epoch: start at its step with this rank's sums so far.
  const int64_t first_step = m_position.step;
  const double seconds_before = m_position.train_seconds;
  m_be.upload(m_metrics.data(), m_resume_sums.data(), sizeof m_resume_sums);
  m_position = EpochPosition{};
  m_resume_sums = {0, 0};
  Phases phase{};
  const auto t0 = Clock::now();
  if (!train_steps(epoch, first_step, seconds_before, phase)) return false;
  m_be.synchronize();
  const double train_seconds = seconds_before + since(t0);
  std::array<double, 2> mine = read_metrics(true), sums = mine;
  m_comm.allreduce_sum(std::span<double>(sums));
  if (!std::isfinite(sums[0])) throw Diverged(fmt::format("loss is {} in epoch {}", sums[0], epoch + 1));

  // Evaluation, which a stop may interrupt too: the position is then "every
  // step trained" and the resumed run evaluates.
  EvalResult val, test;
  if (!evaluate(m_data.train, m_data.val_idx, &val) || !evaluate(m_data.test, m_test_idx, &test)) {
    stop_inside_epoch(steps_per_epoch(), train_seconds, mine);
    return false;
  }
  record_epoch(epoch, sums, train_seconds, val, test, phase);
  return true;
}

bool Trainer::train_steps(int64_t epoch, int64_t first_step, double seconds_before, Phases& phase) {
  const TrainConfig& t = m_cfg.train;
  const int64_t n = int64_t(m_data.train_idx.size()), spe = steps_per_epoch();
  const int K = m_model.classes(), R = m_comm.size(), r = m_comm.rank();
  const std::vector<int64_t> perm = permutation(n, rng_key(uint64_t(t.seed), 0x53485546u /* "SHUF" */, epoch));
  std::vector<int64_t> idx(m_model.max_batch());
  const Augment augment{int(m_cfg.data.crop_padding), m_cfg.data.flip,
                        rng_key(uint64_t(t.seed), 0x4155474du /* "AUGM" */, uint64_t(epoch))};
  // Phase timers, host clock: exact on the CPU backend; on the CUDA backend
  // they time the host's side (work is queued asynchronously, not waited for).
  auto lap = [&, t = Clock::now()](int which) mutable {
    const auto now = Clock::now();
    phase[size_t(which)] += std::chrono::duration<double>(now - t).count();
    if (which < kAllreduce) trace::span(kPhaseSpans[which], t, now, {}, true);
    t = now;
  };
  const auto t0 = Clock::now();
  // Trace: the first steps one by one, the rest of the epoch as one span.
  const int64_t detailed_end = trace::on() ? std::min(spe, first_step + trace::kDetailedSteps) : first_step;
  Clock::time_point steps_begin;
  const auto steps_span = [&](int64_t end) {
    trace::detail_steps(false);
    if (trace::on() && end > detailed_end)
      trace::span("steps", steps_begin, Clock::now(), fmt::format("\"steps\": \"{}-{}\"", detailed_end + 1, end));
  };
  for (int64_t s = first_step; s < spe; ++s) {
    if (trace::on()) {
      trace::detail_steps(s < detailed_end);
      if (s == detailed_end) steps_begin = Clock::now();
    }
    const int64_t first = s * t.batch_size, Bg = std::min<int64_t>(t.batch_size, n - first);
    const int64_t lo = Bg * r / R, hi = Bg * (r + 1) / R;
    const int B = int(hi - lo);
    const uint64_t step = uint64_t(m_opt.steps());
    const float lr = float(learning_rate(t, int64_t(step), spe));
    m_sync->begin(lr);
    auto layer_done = [&](size_t layer) { m_sync->layer_done(layer); };
    const Pass pass{.B = B,
                    .train = true,
                    .seed = uint64_t(t.seed),
                    .step = step,
                    .first_sample = uint64_t(lo),
                    .global_B = int(Bg),
                    .stats = R > 1 ? &m_grads : nullptr,
                    .split = m_sync->split()};
    if (B > 0) {
      for (int b = 0; b < B; ++b) idx[b] = m_data.train_idx[perm[first + lo + b]];
      m_be.load_batch(m_model.input(), m_labels.data(), m_data.train.view(), idx.data(), B, m_data.mean.data(),
                      m_data.inv_std.data(), augment);
      lap(kData);
      const float* logits = m_model.forward(pass);
      lap(kForward);
      m_be.softmax_xent(m_dlogits.data(), logits, m_labels.data(), B, K, 1.f / float(Bg), float(t.label_smoothing),
                        m_metrics.data());
      m_model.backward(m_dlogits.data(), pass, layer_done);
    } else {
      m_be.zero(m_model.grads(), m_model.num_params() * sizeof(float));
      m_model.idle_step(pass, layer_done);
    }
    lap(kBackward);
    const SyncTimes st = m_sync->finish(lr);
    lap(kOther);
    phase[kAllreduce] += st.exchange;
    phase[kOptimizer] += st.optimizer;
    phase[kBackward] -= st.exchanged_in_backward;
    // One rank: stop early on a non-finite loss (a cheap read every 50 steps).
    // More ranks: the poisoned gradients reach every rank; checked at the epoch's end.
    if (R == 1 && (s + 1) % 50 == 0) {
      const auto m = read_metrics(false);
      if (!std::isfinite(m[0])) throw Diverged(fmt::format("loss is {} at epoch {}, step {}", m[0], epoch + 1, s + 1));
    }
    if (stop_agreed()) {
      m_be.synchronize();
      stop_inside_epoch(s + 1, seconds_before + since(t0), read_metrics(false));
      steps_span(s + 1);
      return false;
    }
  }
  steps_span(spe);
  return true;
}

void Trainer::record_epoch(int64_t epoch, std::array<double, 2> sums, double train_seconds, const EvalResult& val,
                           const EvalResult& test, const Phases& phase) {
  const TrainConfig& t = m_cfg.train;
  const int64_t spe = steps_per_epoch();
  const int64_t trained = std::min(int64_t(m_data.train_idx.size()), spe * t.batch_size);  // samples an epoch trains on
  const double nan = std::nan("");
  m_history.add("epoch", double(epoch + 1));
  m_history.add("train_loss", sums[0] / double(trained));
  m_history.add("train_accuracy", sums[1] / double(trained));
  m_history.add("val_loss", val.samples ? val.loss : nan);
  m_history.add("val_accuracy", val.samples ? val.accuracy : nan);
  m_history.add("test_loss", test.samples ? test.loss : nan);
  m_history.add("test_accuracy", test.samples ? test.accuracy : nan);
  m_history.add("lr", learning_rate(t, m_opt.steps() - 1, spe));
  m_history.add("train_seconds", train_seconds);
  m_history.add("eval_seconds", val.seconds + test.seconds);
  m_history.add("seconds", train_seconds + val.seconds + test.seconds);
  m_history.add("images_per_second", double(trained) / train_seconds);
  const double ev = double(val.samples + test.samples), es = val.seconds + test.seconds;
  m_history.add("eval_images_per_second", es > 0 ? ev / es : nan);
  const char* names[kOther] = {"time_data", "time_forward", "time_backward", "time_allreduce", "time_optimizer"};
  for (int k = 0; k < kOther; ++k) m_history.add(names[k], phase[size_t(k)]);
  m_history.add("time_broadcast", m_broadcast_seconds);
  m_broadcast_seconds = 0;
}

Trainer::Ended Trainer::run_epochs(int64_t last, const std::function<void()>& checkpoint,
                                   const std::function<void()>& epoch_done) {
  while (epochs_done() < last) {
    const bool finished = run_epoch();
    {
      const trace::Scope span("checkpoint");
      checkpoint();
    }
    if (!finished) return Ended::stopped_in_epoch;
    epoch_done();
    if (epochs_done() < last && stop_agreed()) return Ended::stopped_after_epoch;
  }
  return Ended::done;
}

bool Trainer::evaluate(const Dataset& d, const std::vector<int64_t>& all, EvalResult* out) {
  *out = EvalResult{};
  out->samples = int64_t(all.size());
  if (all.empty()) return true;
  const int K = m_model.classes(), R = m_comm.size(), r = m_comm.rank();
  const int64_t n = int64_t(all.size()), lo = n * r / R, hi = n * (r + 1) / R;
  const int64_t EB = eval_batch(m_cfg.train, m_be);
  const int64_t rounds = ((n + R - 1) / R + EB - 1) / EB;  // the largest slice: every rank polls as often
  const trace::Scope span("evaluate", "\"set\": \"{}\"", &d == &m_data.test ? "test" : "validation");
  read_metrics(true);
  const auto t0 = Clock::now();
  for (int64_t k = 0; k < rounds; ++k) {
    const int64_t first = lo + k * EB;
    const int B = int(std::clamp<int64_t>(hi - first, 0, EB));
    if (B > 0) {
      m_be.load_batch(m_model.input(), m_labels.data(), d.view(), all.data() + first, B, m_data.mean.data(),
                      m_data.inv_std.data(), Augment{});
      const float* logits = m_model.forward(Pass{.B = B});
      m_be.softmax_xent(nullptr, logits, m_labels.data(), B, K, 1.f, 0.f, m_metrics.data());  // plain cross-entropy
    }
    if (stop_agreed()) return false;
  }
  m_be.synchronize();
  out->seconds = since(t0);
  std::array<double, 2> sums = read_metrics(true);
  m_comm.allreduce_sum(std::span<double>(sums));
  out->loss = sums[0] / double(n);
  out->accuracy = sums[1] / double(n);
  return true;
}

}  // namespace rs
