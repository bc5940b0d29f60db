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
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "data/cifar10.h"
#include "data/source.h"
#include "error.h"
#include "io/run_file.h"
#include "nn/model.h"
#include "sweep/space.h"
#include "sweep/study.h"

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
  } else if (target == "image") {  // PNG, JPEG, ... through stb, resized to the model's input
    write("images/x.png", data, size);
    read_all({scratch("images"), "images", "", 10, 3, 16, 16});
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
