#include "train/run_file.h"

#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "build_info.h"
#include "error.h"
#include "io/h5.h"
#include "io/provenance.h"

namespace rs {

namespace {

std::vector<hsize_t> hdims(const std::vector<int64_t>& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

}  // namespace

void write_run_file(const std::string& path, const std::string& config_text, const Model& model, const Optimizer& opt,
                    const std::vector<float>& mean, const std::vector<float>& inv_std,
                    const std::vector<std::string>& class_names, const History& history, const Provenance& prov,
                    const EpochPosition& position) {
  std::unique_lock<std::recursive_mutex> lock = h5_lock();
  h5_quiet();
  {
    H5Image f(path);
    {  // every handle below is closed before the file, under the lock
      h5_attr(f, "/", "format", std::string("ranksweep-run"));
      h5_attr(f, "/", "config", config_text);
      h5_attr(f, "/", "epochs_done", int64_t(history.epochs()));
      write_provenance(f, prov);

      const std::vector<float> p = model.params_host();
      for (const ParamInfo& pi : model.param_info())
        h5_write(f, "/model/" + pi.layer + "/" + pi.tensor, p.data() + pi.offset, hdims(pi.shape));
      const std::vector<float> st = model.state_host();  // running statistics
      for (const ParamInfo& pi : model.state_info())
        h5_write(f, "/model/" + pi.layer + "/" + pi.tensor, st.data() + pi.offset, hdims(pi.shape));
      const Shape in = model.input_shape();
      h5_attr(f, "/model", "input_shape", std::vector<int64_t>{in.c, in.h, in.w});
      h5_attr(f, "/model", "classes", int64_t(model.classes()));
      h5_attr(f, "/model", "input_mean", mean);
      std::vector<float> stdv(inv_std.size());
      for (size_t i = 0; i < stdv.size(); ++i) stdv[i] = 1.f / inv_std[i];
      h5_attr(f, "/model", "input_std", stdv);
      if (!class_names.empty()) h5_attr_names(f, "/model", "class_names", class_names);

      H5 og(H5Gcreate2(f, "/optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      h5_attr(f, "/optimizer", "steps", opt.steps());
      std::vector<float> s(opt.size());
      for (size_t k = 0; k < opt.state_names().size(); ++k) {
        model.backend().download(s.data(), opt.state(k), s.size() * sizeof(float));
        for (const ParamInfo& pi : model.param_info())
          h5_write(f, "/optimizer/" + opt.state_names()[k] + "/" + pi.layer + "/" + pi.tensor, s.data() + pi.offset,
                   hdims(pi.shape));
      }
      H5 gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);  // keep the columns in order
      H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
      H5 hg(H5Gcreate2(f, "/history", H5P_DEFAULT, gcpl, H5P_DEFAULT), H5Gclose);
      for (const std::string& name : history.order) {
        const auto& v = history.cols.at(name);
        h5_write(f, "/history/" + name, v.data(), {hsize_t(v.size())});
      }
      h5_attr_names(f, "/history", "columns", history.order);
      if (position.step > 0) {  // stopped inside epoch epochs_done + 1
        H5 pg(H5Gcreate2(f, "/position", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        h5_attr(f, "/position", "step", position.step);
        h5_attr(f, "/position", "train_seconds", position.train_seconds);
        h5_write(f, "/position/sums", position.sums.data(), {hsize_t(position.sums.size() / 2), 2});
      }
    }
    f.close();
    lock.unlock();  // the disk write and its sync hold up no other thread's HDF5 work
    f.write();
  }
}

double run_file_bytes(const Model& model, const Optimizer& opt) {
  const double floats = double(model.num_params()) * double(1 + opt.state_names().size()) + double(model.num_state());
  return 4.0 * floats + (1 << 20);
}

RunFile read_run_file(const std::string& path, const std::string& root) {
  const auto lock = h5_lock();
  h5_quiet();
  const H5CrashGuard guard(path);
  H5 f = h5_open_read(path);
  RunFile r;
  r.path = path;
  r.root = root;
  const std::string top = root.empty() ? "/" : root, where = path + (root.empty() ? "" : ":" + root);
  if ((!root.empty() && !h5_exists(f, root)) || !h5_has_attr(f, top, "format") ||
      h5_attr_string(f, top, "format", path) != "ranksweep-run")
    fail("{}: not a ranksweep run file (no format=\"ranksweep-run\" attribute)", where);
  r.config_text = h5_attr_string(f, top, "config", path);
  r.epochs_done = h5_attr_int(f, top, "epochs_done", path);
  const auto shape = h5_attr_doubles(f, root + "/model", "input_shape", path);
  if (shape.size() != 3) fail("{}: /model input_shape must have 3 values", path);
  r.c = int(shape[0]), r.h = int(shape[1]), r.w = int(shape[2]);
  r.classes = int(h5_attr_int(f, root + "/model", "classes", path));
  for (double x : h5_attr_doubles(f, root + "/model", "input_mean", path)) r.mean.push_back(float(x));
  for (double x : h5_attr_doubles(f, root + "/model", "input_std", path)) {
    if (!(x > 0)) fail("{}: /model input_std must be positive", path);
    r.inv_std.push_back(float(1.0 / x));
  }
  if (r.mean.size() != size_t(r.c) || r.inv_std.size() != size_t(r.c))
    fail("{}: /model input_mean/input_std need one value per channel ({})", path, r.c);
  if (h5_has_attr(f, root + "/model", "class_names")) {
    r.class_names = h5_attr_names(f, root + "/model", "class_names", path);
    if (int64_t(r.class_names.size()) != r.classes)
      fail("{}: /model class_names holds {} names for {} classes", path, r.class_names.size(), r.classes);
  }
  if (h5_exists(f, root + "/optimizer"))  // a study's /best keeps no optimizer state
    r.optimizer_steps = h5_attr_int(f, root + "/optimizer", "steps", path);
  if (h5_exists(f, root + "/history")) {
    const std::vector<std::string> names = h5_members(f, root + "/history", "columns", path);
    for (const std::string& n : names) {
      const auto dims = h5_dims(f, root + "/history/" + n, path);
      if (dims.size() != 1 || int64_t(dims[0]) != r.epochs_done)
        fail("{}: /history/{} must hold {} values", path, n, r.epochs_done);
      std::vector<double> v(dims[0]);
      h5_read(f, root + "/history/" + n, v.data(), path);
      for (double x : v) r.history.add(n, x);
    }
  }
  if (h5_exists(f, root + "/position")) {
    r.position.step = h5_attr_int(f, root + "/position", "step", path);
    r.position.train_seconds = h5_attr_doubles(f, root + "/position", "train_seconds", path).at(0);
    const auto dims = h5_dims(f, root + "/position/sums", path);
    if (r.position.step < 1 || dims.size() != 2 || dims[1] != 2 || dims[0] < 1)
      fail("{}: /position must have step >= 1 and sums of shape (ranks, 2)", path);
    r.position.sums.resize(dims[0] * 2);
    h5_read(f, root + "/position/sums", r.position.sums.data(), path);
  }
  return r;
}

RunFile read_model_file(const std::string& path) {
  const auto lock = h5_lock();
  h5_quiet();
  const H5CrashGuard guard(path);
  std::string format;
  {
    H5 f = h5_open_read(path);
    if (h5_has_attr(f, "/", "format")) format = h5_attr_string(f, "/", "format", path);
    if (format == "ranksweep-study" && !h5_exists(f, "/best"))
      fail("{}: the study holds no best trial with a model yet", path);
  }
  if (format == "ranksweep-study") return read_run_file(path, "/best");
  if (format != "ranksweep-run")
    fail("{}: not a ranksweep run or study file (no format=\"ranksweep-run\" or \"ranksweep-study\" attribute)", path);
  return read_run_file(path);
}

void load_into(const RunFile& rf, Model& model, Optimizer* opt) {
  const auto lock = h5_lock();
  h5_quiet();
  const H5CrashGuard guard(rf.path);
  H5 f = h5_open_read(rf.path);
  auto read_flat = [&](const std::string& prefix, std::vector<float>& flat, const std::vector<ParamInfo>& tensors) {
    for (const ParamInfo& pi : tensors) {
      const std::string name = prefix + pi.layer + "/" + pi.tensor;
      const auto dims = h5_dims(f, name, rf.path);
      if (std::vector<int64_t>(dims.begin(), dims.end()) != pi.shape)
        fail("{}: {} has shape {}, the model needs {}", rf.path, name, fmt::join(dims, "x"), fmt::join(pi.shape, "x"));
      h5_read(f, name, flat.data() + pi.offset, rf.path);
    }
  };
  std::vector<float> flat(model.num_params()), st(model.num_state());
  read_flat(rf.root + "/model/", flat, model.param_info());
  read_flat(rf.root + "/model/", st, model.state_info());
  for (const std::vector<float>* v : {&flat, &st})
    for (float x : *v)
      if (!std::isfinite(x)) fail("{}: /model holds a non-finite value", rf.path);
  model.set_params_host(flat);
  model.set_state_host(st);
  if (!opt) return;
  for (size_t k = 0; k < opt->state_names().size(); ++k) {
    read_flat(rf.root + "/optimizer/" + opt->state_names()[k] + "/", flat, model.param_info());
    for (float x : flat)
      if (!std::isfinite(x)) fail("{}: /optimizer/{} holds a non-finite value", rf.path, opt->state_names()[k]);
    model.backend().upload(opt->state(k), flat.data(), flat.size() * sizeof(float));
  }
  opt->set_steps(rf.optimizer_steps);
}

}  // namespace rs
