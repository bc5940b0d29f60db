// The program's subcommands, callable from main and from tests.
#pragma once

#include <string>
#include <vector>

#include "mpi/comm.h"

namespace rs {

struct Config;

struct TrainOptions {
  std::string config;             // CONFIG.toml (empty with --resume)
  std::vector<std::string> sets;  // --set key=value
  std::string out;                // --out DIR
  std::string resume;             // --resume DIR
  std::string device;             // --device auto|cpu|cuda (empty: config)
  int64_t stop_after = 0;         // --stop-after N: at most N epochs now (0: all)
  bool verbose = false;           // also print per-phase times each epoch
  std::string command;            // the command line, for provenance
  std::string deadline;           // --deadline: when the allocation ends (else Slurm's)
  double deadline_margin = 60;    // --deadline-margin: stop this many seconds before it
  std::string trace;              // --trace FILE: every rank's spans, Chrome trace-event JSON
};

struct SweepOptions {
  std::string config;
  std::vector<std::string> sets;
  std::string out;
  int group_size = 0;  // 0: the config's sweep.group_size
  bool verbose = false;
  std::string command;
  std::string deadline;
  double deadline_margin = 60;
  bool shared = false;         // --shared: one of several jobs driving the study in --out
  double shared_timeout = 60;  // --shared-timeout: seconds without a heartbeat before a job counts as gone
  std::string trace;           // --trace FILE
};

struct InferOptions {
  std::string model, data, format = "auto", labels, out = "predictions.h5", device;
  std::string trace;              // --trace FILE
  int top_k = 5, batch_size = 0;  // 0: default_eval_batch of the backend
  bool overwrite = false;
};

struct ExportOptions {
  std::string file;            // STUDY.h5 | RUN.h5 | PRED.h5
  std::string format = "csv";  // csv | json | onnx (a run's or a study's best model)
  std::string out;             // empty: standard output
  std::string input;           // onnx: the graph's image type, uint8 | float32 (empty: from the config)
};

// Returns the exit status: 0, 1 (training diverged), kExitRequeue (train/stop.h:
// stopped early by a signal or the deadline, checkpoint written). Throws
// UserError for bad input (status 2).
int train_command(const TrainOptions& opt, const Comm& comm);
int info_command(const Comm& comm);
int sweep_command(const SweepOptions& opt, const Comm& world);
int infer_command(const InferOptions& opt, const Comm& world);
int report_command(const std::string& study, const Comm& comm);
int export_command(const ExportOptions& opt, const Comm& comm);
// The model of RUN.h5 (or STUDY.h5's best trial) as ONNX bytes (app/export_onnx.cpp).
std::string onnx_model(const ExportOptions& opt);

// The class names infer stores when the run file has none: Fashion-MNIST's,
// CIFAR-10's, else the class numbers (app/infer.cpp).
std::vector<std::string> default_class_names(const Config& cfg, const std::string& input, int K);

}  // namespace rs
