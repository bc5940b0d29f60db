// libFuzzer harnesses for every reader of untrusted bytes, one binary each
// (RS_FUZZ_TARGET picks the reader; see jobs/fuzz.sh). The bytes are written
// to a file and read the way the program reads it. Bad input must end in a
// UserError (the program's one line and exit 2): any other exception, a
// crash, a sanitizer report, a hang or an allocation over libFuzzer's RSS
// limit is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "data/cifar10.h"
#include "data/images.h"
#include "data/source.h"
#include "error.h"
#include "train/run_file.h"
#include "nn/model.h"
#include "sweep/space.h"
#include "sweep/study.h"
#include "train/stop.h"

namespace fs = std::filesystem;
using namespace rs;

namespace {

// This process's scratch file (a directory for images), the same for every input.
const std::string& scratch(const char* name) {
  static const std::string dir = [] {
    std::string d = (fs::temp_directory_path() / ("rs-fuzz-" + std::to_string(::getpid()))).string();
    fs::create_directories(d + "/images");
    return d;
  }();
  static std::string path;
  path = dir + "/" + name;
  return path;
}

const std::string& write(const char* name, const uint8_t* data, size_t size) {
  const std::string& p = scratch(name);
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return p;
}

// All samples of a source, in chunks as infer reads them.
void read_all(const SourceOptions& o) {
  std::unique_ptr<Source> s = open_source(o);
  for (int64_t first = 0; first < s->size(); first += 4096) s->read(first, std::min<int64_t>(4096, s->size() - first));
}

// A 1x1 grey PNG: the content of every image file the folder walk creates.
constexpr unsigned char kPng[] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
                                  0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00,
                                  0x00, 0x3a, 0x7e, 0x9b, 0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
                                  0x9c, 0x63, 0x68, 0x00, 0x00, 0x00, 0x82, 0x00, 0x81, 0x77, 0xcd, 0x72, 0xb6, 0x00,
                                  0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

// Builds a tree under `root` from lines "d PATH" (directory), "f PATH" (a PNG
// image), "e PATH" (an empty file) and "l PATH TARGET" (a symbolic link);
// paths and targets are relative, without "..", so nothing points outside.
void build_tree(const std::string& root, const std::string& text) {
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root, ec);
  std::istringstream in(text);
  std::string line;
  for (int n = 0; n < 64 && std::getline(in, line); ++n) {
    std::istringstream f(line);
    std::string op, path, to;
    f >> op >> path >> to;
    auto safe = [](const std::string& x) {
      return !x.empty() && x.size() < 64 && x[0] != '/' && x.find("..") == std::string::npos;
    };
    if (!safe(path)) continue;
    const fs::path p = fs::path(root) / path;
    if (op == "d") fs::create_directories(p, ec);
    if (op == "f") std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(kPng), sizeof kPng);
    if (op == "e") std::ofstream(p, std::ios::binary).flush();
    if (op == "l" && safe(to)) fs::create_symlink(to, p, ec);
  }
}

void target(const uint8_t* data, size_t size) {
  const std::string target = RS_FUZZ_TARGET;
  if (target == "idx") {  // raw or gzip (detected by content)
    read_all({write("data", data, size), "idx", "", 10, 1, 28, 28});
  } else if (target == "cifar10") {
    const std::string& p = write("data_batch_1.bin", data, size);
    std::unique_ptr<Source> s = open_cifar10(p, {p}, 10);
    s->read(0, s->size());
  } else if (target == "hdf5") {  // a data file, whole (train) and in chunks (infer)
    const std::string& p = write("data.h5", data, size);
    read_all({p, "hdf5", "", 10, 1, 28, 28});
  } else if (target == "runfile") {  // as a model (infer) and as a checkpoint (train --resume)
    const std::string& p = write("run.h5", data, size);
    const RunFile rf = read_model_file(p);
    const Config cfg = parse_config_text(rf.config_text, p, {});
    auto be = make_cpu_backend();
    Model m(*be, cfg.model, Shape{rf.c, rf.h, rf.w}, rf.classes, 2);
    Optimizer opt(*be, cfg.train, m.num_params());
    load_into(rf, m, &opt);
    read_run_file(p);
  } else if (target == "study") {  // report, resume, warm start
    read_study(write("study.h5", data, size));
  } else if (target == "config") {  // the schema, a sweep's space validated against it
    const std::string text(reinterpret_cast<const char*>(data), size);
    const Config c = parse_config_text(text, "fuzz.toml", {});
    const SweepConfig s = parse_sweep(c.text, "fuzz.toml");
    validate_space(s, c.text, "fuzz.toml");
  } else if (target == "image") {  // PNG (libpng), JPEG (libjpeg-turbo), other bytes; resized to the input
    write("images/x.png", data, size);
    read_all({scratch("images"), "images", "", 10, 3, 16, 16});
  } else if (target == "deadline") {  // --deadline, SLURM_JOB_END_TIME and --deadline-margin values
    const std::string text(reinterpret_cast<const char*>(data), size);
    Deadline d;
    if (parse_deadline(text, 1.8e9, &d.at)) {
      if (!(d.at > 0 && d.at <= 253402300799.0)) std::abort();  // the parser's promise
      (void)d.describe();
    }
    (void)check_deadline_margin(text);
  } else if (target == "enqueue") {  // a [sweep] table (space, enqueued trials) over a fixed valid config
    const std::string base = "[model]\nhidden = [8]\n[train]\nlr = 0.1\nepochs = 2\n";
    const std::string text = base + std::string(reinterpret_cast<const char*>(data), size);
    const SweepConfig s = parse_sweep(text, "fuzz.toml");
    validate_space(s, base, "fuzz.toml");
  } else if (target == "folders") {  // class folders: walking, links, hidden and empty entries
    const std::string root = scratch("classes");
    build_tree(root, std::string(reinterpret_cast<const char*>(data), size));
    std::vector<std::string> names;
    read_image_folders(root, 1, 4, 4, 2, names);
    read_image_folders(root, 1, 4, 4, 2, names);  // again as the test set, with the training classes
  } else {
    std::fprintf(stderr, "unknown fuzz target %s\n", target.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    target(data, size);
  } catch (const UserError&) {  // the program's "one line, exit 2": what bad input must give
  }
  return 0;
}
