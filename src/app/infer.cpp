// ranksweep infer: apply a trained model to a large input, sharded over ranks.
// Rank 0 reads the model (a run file, or a study's best trial) and broadcasts
// its config and weights; every rank then reads only its own contiguous slice
// of the input, a chunk at a time, and sends its predictions to rank 0, which
// writes them into the file it builds in memory and puts on disk whole when
// complete (a temporary name of its own, renamed), so a failed run never
// leaves a file that looks finished; rank 0 holds a lock on the output
// (OUT.lock) for the whole run.
//
// Why rank 0 writes (and not parallel HDF5 over MPI-IO): a write error
// (a full disk, a file size limit) then happens on one rank, outside HDF5, and
// is agreed by all through root_only. With collective writes the ranks
// reached different collectives inside HDF5's H5Fclose after such an error and
// waited forever, and a file HDF5 failed to close crashes its shutdown in
// MPI_Finalize. Predictions are small (k labels and probabilities a sample):
// the gather and the memory cost little next to the forward passes.
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>

#include "app/commands.h"
#include "app/launch.h"
#include "data/source.h"
#include "error.h"
#include "io/h5.h"
#include "io/output_dir.h"
#include "io/progress.h"
#include "io/trace.h"
#include "nn/model.h"
#include "train/run_file.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

// Names of the classes, stored with the predictions when the run file has none
// (a model trained on class folders keeps theirs): Fashion-MNIST's when the
// model was trained on it (or the input is it), CIFAR-10's for CIFAR-10
// models, else the class numbers.
std::vector<std::string> default_class_names(const Config& cfg, const std::string& input, int K) {
  const bool fashion =
      lower(cfg.data.train_images + " " + cfg.data.path + " " + input).find("fashion") != std::string::npos;
  if (K == 10 && cfg.data.format == "idx" && fashion)
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  if (K == 10 && cfg.data.format == "cifar10")
    return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  std::vector<std::string> v;
  for (int k = 0; k < K; ++k) v.push_back(std::to_string(k));
  return v;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The prediction file, built by rank 0 alone in memory and put on disk whole
// when complete (H5Image: no partial file is ever visible as OUT).
class PredFile {
 public:
  PredFile(const std::string& path, int64_t n, int k, size_t name_len, bool truth)
      : m_path(path), m_file(path), m_k(k) {
    m_labels = create("labels", H5T_NATIVE_INT32, {hsize_t(n), hsize_t(k)});
    m_probs = create("probabilities", H5T_NATIVE_FLOAT, {hsize_t(n), hsize_t(k)});
    m_index = create("index", H5T_NATIVE_INT64, {hsize_t(n)});
    if (truth) m_truth = create("true_labels", H5T_NATIVE_INT32, {hsize_t(n)});
    if (name_len) {
      m_name_type = H5(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(m_name_type, name_len);
      H5Tset_strpad(m_name_type, H5T_STR_NULLPAD);
      m_names = create("names", m_name_type, {hsize_t(n)});
      m_name_len = name_len;
    }
  }
  hid_t id() const { return m_file; }

  // Rows [first, first + count).
  void write(int64_t first, int64_t count, const int32_t* labels, const float* probs, const int64_t* index,
             const int32_t* truth, const char* names) {
    if (count == 0) return;
    put(m_labels, H5T_NATIVE_INT32, first, count, m_k, labels);
    put(m_probs, H5T_NATIVE_FLOAT, first, count, m_k, probs);
    put(m_index, H5T_NATIVE_INT64, first, count, 0, index);
    if (m_truth.id() >= 0) put(m_truth, H5T_NATIVE_INT32, first, count, 0, truth);
    if (m_name_len) put(m_names, m_name_type, first, count, 0, names);
  }

  // The file on disk as OUT, in one piece.
  void commit() {
    for (H5* h : {&m_labels, &m_probs, &m_index, &m_truth, &m_names, &m_name_type}) *h = H5();
    m_file.commit();
  }

 private:
  H5 create(const char* name, hid_t type, std::vector<hsize_t> dims) {
    H5 space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
    H5 d(H5Dcreate2(m_file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (d.id() < 0) throw std::runtime_error(fmt::format("{}: cannot create dataset /{} in memory", m_path, name));
    return d;
  }
  void put(const H5& ds, hid_t type, int64_t first, int64_t count, int k, const void* data) {
    H5 fs_(H5Dget_space(ds), H5Sclose);
    const int rank = k ? 2 : 1;
    const hsize_t start[2] = {hsize_t(first), 0}, cnt[2] = {hsize_t(count), hsize_t(k)};
    H5 ms(H5Screate_simple(rank, cnt, nullptr), H5Sclose);
    H5Sselect_hyperslab(fs_, H5S_SELECT_SET, start, nullptr, cnt, nullptr);
    if (H5Dwrite(ds, type, ms, fs_, H5P_DEFAULT, data) < 0)
      throw std::runtime_error(fmt::format("{}: cannot write the predictions in memory", m_path));
  }
  std::string m_path;
  H5Image m_file;
  H5 m_labels, m_probs, m_index, m_truth, m_names, m_name_type;
  int m_k;
  size_t m_name_len = 0;
};

// One round's rows from every rank, on rank 0, in rank order.
struct GatheredRows {
  std::vector<int32_t> labels, truth;
  std::vector<float> probs;
  std::vector<char> names;
};

// Rank q's counts[q] rows of per_row values each, concatenated on rank 0 in rank order.
template <class T> void gatherv(const T* mine, std::vector<T>& all, const std::vector<int64_t>& counts, int64_t per_row,
                                MPI_Datatype type, const Comm& world) {
  std::vector<int> cnt, displ;
  int64_t total = 0;
  for (int64_t c : counts) {
    cnt.push_back(int(c * per_row)), displ.push_back(int(total));
    total += c * per_row;
  }
  if (world.leader()) all.resize(size_t(total));
  MPI_Gatherv(mine, cnt[size_t(world.rank())], type, all.data(), cnt.data(), displ.data(), type, 0, world.raw());
}

// Top-k classes of one row of logits by softmax probability (ties: lower class first).
void top_k(const float* logits, int K, int k, int32_t* labels, float* probs, std::vector<int>& order) {
  float mx = logits[0];
  for (int j = 1; j < K; ++j) mx = std::max(mx, logits[j]);
  double sum = 0;
  for (int j = 0; j < K; ++j) sum += std::exp(double(logits[j] - mx));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int j = 0; j < k; ++j) {
    labels[j] = order[size_t(j)];
    probs[j] = float(std::exp(double(logits[order[size_t(j)]] - mx)) / sum);
  }
}

// The model, read and checked by rank 0 and broadcast: its config, input
// shape, normalisation and weights (the other ranks never open the file).
struct LoadedModel {
  RunFile rf;  // everything but the tensors, on every rank
  Config cfg;
  double recorded_test = NAN;  // the test accuracy its run recorded
};

// True if a and b name the same existing file.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

// Rank 0: the output is free (locked for this run) and may be written; then the model.
LoadedModel read_model(const InferOptions& opt, const Comm& world, OutputLock& lock) {
  LoadedModel m;
  RunFile& rf = m.rf;
  world.root_only([&] {
    std::error_code ec;
    const fs::path parent = fs::absolute(opt.out).parent_path();
    if (!fs::is_directory(parent, ec)) fail("{}: the directory {} does not exist", opt.out, parent.string());
    if (same_file(opt.out, opt.model) || same_file(opt.out, opt.data))
      fail("{}: is the {}; infer never writes over its input", opt.out,
           same_file(opt.out, opt.model) ? "--model" : "--data");
    if (fs::exists(opt.out, ec) && !fs::is_regular_file(opt.out, ec))
      fail("{}: not a regular file; predictions are written to a file of their own", opt.out);
    lock = OutputLock(opt.out + ".lock", opt.out);
    if (fs::exists(opt.out, ec) && !opt.overwrite)
      fail("{}: already exists; infer never overwrites it (choose another --out, or pass --overwrite)", opt.out);
    rf = read_model_file(opt.model);
  });
  world.bcast_string(rf.config_text);
  int shape[4] = {rf.c, rf.h, rf.w, rf.classes};
  world.bcast(shape);
  rf.c = shape[0], rf.h = shape[1], rf.w = shape[2], rf.classes = shape[3];
  world.bcast_vector(rf.mean);
  world.bcast_vector(rf.inv_std);
  if (rf.history.cols.count("test_accuracy")) m.recorded_test = rf.history.cols.at("test_accuracy").back();
  world.bcast(m.recorded_test);
  world.agree([&] { m.cfg = parse_config_text(rf.config_text, opt.model + " (its config)", {}); });
  if (!opt.device.empty()) m.cfg.train.device = opt.device;
  return m;
}

// The model's weights into `model` on every rank (rank 0 reads, all receive).
void load_weights(const LoadedModel& m, Model& model, const Comm& world) {
  std::vector<float> p, st;
  world.root_only([&] {
    load_into(m.rf, model, nullptr);
    p = model.params_host();
    st = model.state_host();
  });
  world.bcast_vector(p);
  world.bcast_vector(st);
  if (!world.leader()) model.set_params_host(p), model.set_state_host(st);
}

// The input, opened by every rank (headers only); its shape must fit the
// model and every rank must see the same number of samples.
std::unique_ptr<Source> open_input(const InferOptions& opt, const RunFile& rf, const Comm& world) {
  const SourceOptions so{opt.data, opt.format, opt.labels, rf.classes, rf.c, rf.h, rf.w};
  std::unique_ptr<Source> src;
  world.agree([&] {
    src = open_source(so);
    if (src->c() != rf.c || src->h() != rf.h || src->w() != rf.w)
      fail("{}: images are {}x{}x{} (CxHxW), the model takes {}x{}x{}", opt.data, src->c(), src->h(), src->w(), rf.c,
           rf.h, rf.w);
  });
  int64_t sizes[2] = {-src->size(), src->size()};
  MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT64_T, MPI_MAX, world.raw());
  if (-sizes[0] != sizes[1])
    fail("{}: the ranks see {} to {} samples (did the input change?)", opt.data, -sizes[0], sizes[1]);
  return src;
}

// This rank's predictions for one chunk of its slice: top-k labels and
// probabilities (cnt, k), and correct top-1/top-k counts added to `correct`.
struct ChunkPredictions {
  std::vector<int32_t> labels;
  std::vector<float> probs;
};

ChunkPredictions predict_chunk(const Dataset& ds, Model& model, Backend& be, int32_t* labels_dev, const RunFile& rf,
                               int B, int k, bool has_labels, int64_t correct[2]) {
  const int64_t cnt = ds.n;
  const int K = rf.classes;
  ChunkPredictions out{std::vector<int32_t>(size_t(cnt) * k), std::vector<float>(size_t(cnt) * k)};
  std::vector<float> logits(size_t(B) * K);
  std::vector<int> order(static_cast<size_t>(K));
  std::vector<int64_t> idx(static_cast<size_t>(cnt));
  std::iota(idx.begin(), idx.end(), 0);
  // Batch s+1 is queued right after batch s's forward pass (the CUDA backend
  // gathers and uploads it while s computes), then s's logits come back.
  auto load = [&](int64_t b0) {
    be.load_batch(model.input(), labels_dev, ds.view(), idx.data() + b0, int(std::min<int64_t>(B, cnt - b0)),
                  rf.mean.data(), rf.inv_std.data(), Augment{});
  };
  if (cnt > 0) load(0);
  for (int64_t b0 = 0; b0 < cnt; b0 += B) {
    const int nb = int(std::min<int64_t>(B, cnt - b0));
    const float* dev_logits = model.forward(Pass{.B = nb});
    if (b0 + B < cnt) load(b0 + B);
    be.download(logits.data(), dev_logits, size_t(nb) * K * sizeof(float));
    for (int i = 0; i < nb; ++i) {
      const size_t row = size_t(b0 + i);
      int32_t* lab = out.labels.data() + row * k;
      top_k(logits.data() + size_t(i) * K, K, k, lab, out.probs.data() + row * k, order);
      if (has_labels) {
        const int32_t y = ds.labels[row];
        correct[0] += lab[0] == y;
        correct[1] += std::find(lab, lab + k, y) != lab + k;
      }
    }
  }
  return out;
}

// Attributes of the predictions file (rank 0).
void write_attributes(hid_t f, const InferOptions& opt, const LoadedModel& m, const Source& src, int k, int ranks,
                      double seconds, const int64_t correct[2]) {
  const int64_t n = src.size();
  h5_attr(f, "/", "format", std::string("ranksweep-predictions"));
  h5_attr(f, "/", "model", opt.model + (m.rf.root.empty() ? "" : ":" + m.rf.root));
  h5_attr(f, "/", "input", opt.data);
  h5_attr(f, "/", "input_format", src.format());
  h5_attr(f, "/", "top_k", int64_t(k));
  h5_attr(f, "/", "ranks", int64_t(ranks));
  h5_attr(f, "/", "seconds", seconds);
  h5_attr(f, "/", "images_per_second", double(n) / seconds);
  h5_attr(f, "/", "class_names",
          m.rf.class_names.empty() ? default_class_names(m.cfg, opt.data, m.rf.classes) : m.rf.class_names);
  if (src.has_labels()) {
    h5_attr(f, "/", "labels", src.labels_path());
    h5_attr(f, "/", "top1_accuracy", double(correct[0]) / double(n));
    h5_attr(f, "/", "topk_accuracy", double(correct[1]) / double(n));
  }
}

// How the input is split: rank q reads [n q / R, n (q + 1) / R), a chunk at
// a time; every rank runs the same number of rounds (the largest slice's).
struct Shards {
  int64_t n, R, chunk;
  int64_t first(int64_t q) const { return n * q / R; }
  int64_t end(int64_t q) const { return n * (q + 1) / R; }
  int64_t rounds() const { return ((n + R - 1) / R + chunk - 1) / chunk; }
  // Rank q's first row and count in a round.
  std::pair<int64_t, int64_t> rows(int64_t q, int64_t round) const {
    const int64_t at = first(q) + round * chunk;
    return {at, std::clamp<int64_t>(end(q) - at, 0, chunk)};
  }
  // Rows every rank has done after `round` (all are at the same round: the gathers are collective).
  int64_t done_after(int64_t round) const {
    int64_t done = 0;
    for (int64_t q = 0; q < R; ++q) done += std::min(end(q) - first(q), (round + 1) * chunk);
    return done;
  }
};

// The file the input implies must fit where it goes, and in rank 0's memory, which builds it.
void check_room(const InferOptions& opt, int64_t n, int k, size_t name_len, bool labels, const Comm& world) {
  world.root_only([&] {
    const double bytes = double(n) * (double(k) * 8 + 8 + (labels ? 4 : 0) + double(name_len));
    const fs::space_info sp = fs::space(fs::absolute(opt.out).parent_path());
    if (bytes > double(sp.available))
      fail("{}: the predictions of {} samples need {:.3g} GB, the file system has {:.3g} GB free", opt.out, n,
           bytes / 1e9, double(sp.available) / 1e9);
    const double memory = available_memory_bytes();
    if (bytes > memory)
      fail("{}: the predictions of {} samples need {:.3g} GB of memory on rank 0, which has {:.3g} GB available",
           opt.out, n, bytes / 1e9, memory / 1e9);
  });
}

void print_start(const InferOptions& opt, const LoadedModel& m, const Source& src, const Backend& be,
                 const Placement& place, int threads, const Comm& world) {
  if (!world.leader()) return;
  const RunFile& rf = m.rf;
  fmt::print(
      "infer: model {}{} ({}x{}x{} -> {} classes{}); input {} ({}, {} samples{}); device {} ({}); {} rank(s) x "
      "{} thread(s)\n",
      opt.model, rf.root.empty() ? "" : ":" + rf.root, rf.c, rf.h, rf.w, rf.classes,
      std::isnan(m.recorded_test) ? "" : fmt::format(", recorded test accuracy {:.2f}%", 100 * m.recorded_test),
      opt.data, src.format(), src.size(), src.has_labels() ? ", labels " + src.labels_path() : "", be.name(), place.why,
      world.size(), threads);
  std::fflush(stdout);
}

// One round's predictions (and names, true labels) to rank 0, which writes them into `out`.
void gather_and_write(const Shards& sh, int64_t round, const ChunkPredictions& p, const Dataset& ds,
                      const std::vector<char>& names, int k, size_t name_len, bool labels, std::optional<PredFile>& out,
                      const Comm& world) {
  std::vector<int64_t> counts;
  for (int64_t q = 0; q < sh.R; ++q) counts.push_back(sh.rows(q, round).second);
  GatheredRows g;
  gatherv(p.labels.data(), g.labels, counts, k, MPI_INT32_T, world);
  gatherv(p.probs.data(), g.probs, counts, k, MPI_FLOAT, world);
  if (labels) gatherv(ds.labels.data(), g.truth, counts, 1, MPI_INT32_T, world);
  if (name_len) gatherv(names.data(), g.names, counts, int64_t(name_len), MPI_CHAR, world);
  world.root_only([&] {
    for (int64_t q = 0, row = 0; q < sh.R; row += counts[size_t(q)], ++q) {
      const auto [at, c] = sh.rows(q, round);
      std::vector<int64_t> index(static_cast<size_t>(c));
      std::iota(index.begin(), index.end(), at);
      out->write(at, c, g.labels.data() + row * k, g.probs.data() + row * k, index.data(),
                 g.truth.empty() ? nullptr : g.truth.data() + row, g.names.data() + row * int64_t(name_len));
    }
  });
}

// Every round of every rank's slice, predicted and written to OUT (committed
// whole at the end); returns this rank's seconds reading and computing.
double predict_all(const InferOptions& opt, const LoadedModel& m, Source& src, Model& model, Backend& be,
                   const Shards& sh, int k, size_t name_len, Clock::time_point t_input, int64_t correct[2],
                   const Comm& world) {
  const int64_t r = world.rank();
  const int B = opt.batch_size > 0 ? opt.batch_size : default_eval_batch(be.kind());
  double busy = 0;
  std::optional<PredFile> out;  // rank 0's; every output error is agreed through root_only
  world.root_only([&] { out.emplace(opt.out, sh.n, k, name_len, src.has_labels()); });
  Buffer<int32_t> labels_dev(be, size_t(B));  // the batch's labels in backend memory, for every chunk
  auto last_print = Clock::now();
  for (int64_t round = 0; round < sh.rounds(); ++round) {
    const auto [first, cnt] = sh.rows(r, round);
    const auto t0 = Clock::now();
    Dataset ds;
    {
      const trace::Scope span("read input");  // with the wait for the other ranks' reads
      world.agree([&, first = first, cnt = cnt] { ds = src.read(first, cnt); });
    }
    const ChunkPredictions p = [&] {
      const trace::Scope span("forward");
      return predict_chunk(ds, model, be, labels_dev.data(), m.rf, B, k, src.has_labels(), correct);
    }();
    busy += since(t0);
    std::vector<char> names(size_t(cnt) * name_len, 0);
    for (int64_t i = 0; i < cnt && name_len; ++i) {
      const std::string& s = src.names()[size_t(first + i)];
      std::copy(s.begin(), s.end(), names.begin() + i * int64_t(name_len));
    }
    {
      const trace::Scope span("gather predictions");
      gather_and_write(sh, round, p, ds, names, k, name_len, src.has_labels(), out, world);
    }
    if (world.leader() && (since(last_print) > 5 || round + 1 == sh.rounds())) {
      const int64_t done = sh.done_after(round);
      const double el = since(t_input);
      fmt::print("infer: {}/{} ({:.0f}%) {:.0f} images/s total, {:.0f} images/s on rank 0, left ~{}\n", done, sh.n,
                 100.0 * double(done) / double(sh.n), double(done) / el,
                 double(std::min(sh.end(r), first + cnt) - sh.first(r)) / busy,
                 format_seconds(el * double(sh.n - done) / double(std::max<int64_t>(done, 1))));
      std::fflush(stdout);
      last_print = Clock::now();
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, correct, 2, MPI_INT64_T, MPI_SUM, world.raw());
  const double secs = since(t_input);  // input opened .. last rows written
  world.root_only([&] {
    const trace::Scope span("write predictions");
    write_attributes(out->id(), opt, m, src, k, world.size(), secs, correct);
    out->commit();
  });
  return busy;
}

// Throughput per rank and in total, and the accuracy when the input has labels.
void print_summary(const InferOptions& opt, const Source& src, const Shards& sh, int k, double busy, double wall,
                   double loading, const int64_t correct[2], const Comm& world) {
  const int64_t r = world.rank(), n = sh.n;
  const double mine = busy > 0 ? double(sh.end(r) - sh.first(r)) / busy : 0;
  std::vector<double> rates(size_t(world.size()));
  MPI_Gather(&mine, 1, MPI_DOUBLE, rates.data(), 1, MPI_DOUBLE, 0, world.raw());
  if (!world.leader()) return;
  const auto [mn, mx] = std::minmax_element(rates.begin(), rates.end());
  fmt::print(
      "infer: {} samples in {} after {} loading the model ({:.0f} images/s total; per rank {:.0f}..{:.0f} "
      "images/s reading + computing)",
      n, format_seconds(wall), format_seconds(loading), double(n) / wall, *mn, *mx);
  if (src.has_labels())
    fmt::print("; top-1 accuracy {:.2f}%, top-{} accuracy {:.2f}%", 100.0 * double(correct[0]) / double(n), k,
               100.0 * double(correct[1]) / double(n));
  fmt::print("\n-> {}\n", opt.out);
}

}  // namespace

int infer_command(const InferOptions& opt, const Comm& world) {
  const auto t_start = Clock::now();
  OutputLock lock;
  if (!opt.trace.empty()) start_trace(opt.trace, world);
  std::optional<trace::Scope> loading(std::in_place, "load model");
  // the model (rank 0 reads, every rank receives) and the backend
  const LoadedModel m = read_model(opt, world, lock);
  const RunFile& rf = m.rf;
  std::string why;
  const int threads = choose_threads(world, &why);
  Placement place;
  const std::unique_ptr<Backend> be = make_backend(m.cfg.train, world, &place);
  const int B = opt.batch_size > 0 ? opt.batch_size : default_eval_batch(be->kind()), K = rf.classes,
            k = std::min(opt.top_k, K);
  std::optional<Model> modelp;  // an allocation that fails on any rank fails on all
  world.agree([&] { modelp.emplace(*be, m.cfg.model, Shape{rf.c, rf.h, rf.w}, K, B); });
  Model& model = *modelp;
  load_weights(m, model, world);
  loading.reset();

  // the input: every rank opens it and reads its own contiguous slice
  const auto t_input = Clock::now();
  std::optional<trace::Scope> opening(std::in_place, "open input");
  const std::unique_ptr<Source> src = open_input(opt, rf, world);
  const Shards sh{src->size(), world.size(), std::max<int64_t>(B, (16384 / B) * B)};
  size_t name_len = 0;
  for (const std::string& s : src->names()) name_len = std::max(name_len, s.size());
  check_room(opt, sh.n, k, name_len, src->has_labels(), world);
  print_start(opt, m, *src, *be, place, threads, world);
  opening.reset();

  int64_t correct[2] = {0, 0};  // top-1, top-k
  const double busy = predict_all(opt, m, *src, model, *be, sh, k, name_len, t_input, correct, world);
  const double wall = since(t_input);
  print_summary(opt, *src, sh, k, busy, wall, since(t_start) - wall, correct, world);
  if (!opt.trace.empty()) write_trace(opt.trace, world);
  return 0;
}

}  // namespace rs
