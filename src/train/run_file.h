// DIR/run.h5: everything needed to read, resume or apply a training run.
//   /            attrs: format="ranksweep-run", config (TOML), provenance, epochs_done
//   /model/<layer>/<tensor>          real shapes; /model attrs input_shape, classes,
//                                    input_mean, input_std
//   /optimizer/<state>/<layer>/<tensor>; /optimizer attrs name, steps
//   /history/<metric>                1-D, one value per epoch
// Written to DIR/run.h5.tmp and renamed, so a crash never leaves a torn file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/provenance.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "train/history.h"

namespace rs {

// What a run file holds, read back without a backend.
struct RunFile {
  std::string path, root, config_text;  // root: "" for a run file, "/best" in a study
  int64_t epochs_done = 0;
  int c = 0, h = 0, w = 0, classes = 0;
  std::vector<float> mean, inv_std;
  std::vector<std::string> class_names;  // from image class folders (else empty: infer names them)
  std::string optimizer;
  int64_t optimizer_steps = 0;
  History history;
  EpochPosition position;  // step 0 unless the run stopped inside an epoch
};

void write_run_file(const std::string& path, const std::string& config_text, const Model& model, const Optimizer& opt,
                    const std::vector<float>& mean, const std::vector<float>& inv_std,
                    const std::vector<std::string>& class_names, const History& history, const Provenance& prov,
                    const EpochPosition& position = {});
// Bytes a run file of this model and optimizer takes, about (tensors, optimizer
// state, running statistics, plus 1 MB for the config, history and attributes).
double run_file_bytes(const Model& model, const Optimizer& opt);
// `root` is the group holding the layout ("" for a run file's root).
RunFile read_run_file(const std::string& path, const std::string& root = "");
// A run file, or a study file's best trial (/best): what `infer --model` takes.
RunFile read_model_file(const std::string& path);

// Reads tensors (and optimizer state, when opt is given) from the run file
// into a model built from its config; any missing tensor or wrong shape is a
// UserError naming the file and tensor.
void load_into(const RunFile& rf, Model& model, Optimizer* opt);

}  // namespace rs
