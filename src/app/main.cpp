// ranksweep: train | sweep | infer | report | export | info.
// Every rank runs the same command; bad input ends every rank with status 2
// and one message from rank 0.
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>

#include "app/commands.h"
#include "app/launch.h"
#include "error.h"
#include "io/progress.h"
#include "kernels/kernels_cpu.h"
#include "train/stop.h"

namespace {

void add_deadline_options(CLI::App* app, std::string& deadline, double& margin) {
  app->add_option("--deadline", deadline,
                  "when the allocation ends: seconds since the epoch, +SECONDS from now, or YYYY-MM-DDTHH:MM:SS "
                  "(default: Slurm's end time for the job, if any); work checkpoints and exits with status 75 "
                  "before it")
      ->check(CLI::Validator(
          [](std::string& v) { return v.empty() ? std::string("an empty deadline (omit the option for none)") : ""; },
          "", "deadline"));
  app->add_option("--deadline-margin", margin, "stop this many seconds before the deadline (default: 60)")
      ->check(CLI::Validator([](std::string& v) { return rs::check_deadline_margin(v); }, "SECONDS", "margin"));
}

void add_trace_option(CLI::App* app, std::string& trace) {
  app->add_option("--trace", trace,
                  "write every rank's timeline to FILE (Chrome trace-event JSON: Perfetto, chrome://tracing)");
}

int run(int argc, char** argv, const rs::Comm& comm) {
  CLI::App app{"ranksweep: data-parallel training, hyperparameter sweeps and batch inference over MPI"};
  app.name("ranksweep");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ranksweep"));

  rs::TrainOptions topt;
  for (int i = 0; i < argc; ++i) topt.command += (i ? " " : "") + std::string(argv[i]);
  CLI::App* train = app.add_subcommand("train", "train one model, data-parallel over all ranks");
  train->add_option("config", topt.config, "CONFIG.toml");
  train->add_option("--set", topt.sets, "override a config key: --set train.epochs=3 (repeatable)")
      ->allow_extra_args(false);
  train->add_option("--out", topt.out, "output directory (default: a new one under runs/)");
  train->add_option("--resume", topt.resume, "continue the run in DIR from its last epoch");
  train->add_option("--device", topt.device, "auto | cpu | cuda (default: the config's train.device)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  train->add_option("--stop-after", topt.stop_after, "train at most N epochs now, then exit (resume later)")
      ->check(CLI::PositiveNumber);
  train->add_flag("-v,--verbose", topt.verbose,
                  "print every rank's device binding, the model's layers and per-phase times each epoch");
  add_deadline_options(train, topt.deadline, topt.deadline_margin);
  add_trace_option(train, topt.trace);
  rs::SweepOptions sopt;
  sopt.command = topt.command;
  CLI::App* sweep =
      app.add_subcommand("sweep", "hyperparameter search: trials run by rank groups, results in DIR/study.h5");
  sweep->add_option("config", sopt.config, "CONFIG.toml with a [sweep] section")->required();
  sweep->add_option("--set", sopt.sets, "override a config key (repeatable)")->allow_extra_args(false);
  sweep->add_option("--out", sopt.out, "output directory; an existing sweep there is resumed");
  sweep->add_flag("-v,--verbose", sopt.verbose, "print every rank's device binding");
  add_deadline_options(sweep, sopt.deadline, sopt.deadline_margin);
  add_trace_option(sweep, sopt.trace);
  sweep->add_option("--group-size", sopt.group_size, "ranks per trial (default: sweep.group_size)")
      ->check(CLI::PositiveNumber);
  sweep->add_flag("--shared", sopt.shared,
                  "one of several jobs driving the study in --out (a job array): each trial runs once across them");
  sweep
      ->add_option("--shared-timeout", sopt.shared_timeout,
                   "with --shared: seconds without a heartbeat after which a job's trials are taken over "
                   "(default: 60)")
      ->check(CLI::PositiveNumber);
  rs::InferOptions iopt;
  CLI::App* infer = app.add_subcommand("infer", "apply a trained model to an input, sharded over ranks; top-k to HDF5");
  infer->add_option("--model", iopt.model, "RUN.h5 (a train run) or STUDY.h5 (its best trial)")->required();
  infer->add_option("--data", iopt.data, "input: IDX file, HDF5 file, CIFAR-10 .bin file/directory, image directory")
      ->required();
  infer->add_option("--format", iopt.format, "auto | idx | hdf5 | cifar10 | images (default: auto)")
      ->check(CLI::IsMember({"auto", "idx", "hdf5", "cifar10", "images"}));
  infer->add_option("--labels", iopt.labels,
                    "IDX labels file: print and store accuracy (default: the sibling "
                    "*-labels-idx1-ubyte* file if there is one)");
  infer->add_option("--out", iopt.out, "predictions file (default: predictions.h5; never overwritten)");
  infer->add_flag("--overwrite", iopt.overwrite, "replace --out if it exists");
  infer->add_option("--top-k", iopt.top_k, "classes kept per sample (default: 5)")->check(CLI::PositiveNumber);
  infer
      ->add_option("--batch-size", iopt.batch_size,
                   "samples per forward pass (default: 64 on CPU ranks, 256 on GPU ranks)")
      ->check(CLI::Range(1, 1 << 20));
  infer->add_option("--device", iopt.device, "auto | cpu | cuda (default: the model config's train.device)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  add_trace_option(infer, iopt.trace);
  std::string study;
  CLI::App* report = app.add_subcommand("report", "leaderboard, default vs best, sensitivity of a study");
  report->add_option("study", study, "STUDY.h5")->required();
  rs::ExportOptions eopt;
  CLI::App* exp =
      app.add_subcommand("export", "a study's trials, a run's history or predictions as CSV or JSON; a model as ONNX");
  exp->add_option("file", eopt.file, "STUDY.h5, RUN.h5 or PRED.h5")->required();
  exp->add_option("--format", eopt.format,
                  "csv | json | onnx (default: csv; json is a list of records; onnx: the model of RUN.h5 or "
                  "STUDY.h5's best trial)")
      ->check(CLI::IsMember({"csv", "json", "onnx"}));
  exp->add_option("--out", eopt.out, "output file (default: standard output; onnx needs one)");
  exp->add_option("--input", eopt.input,
                  "onnx: the graph's image type, uint8 (pixels, scaled by 1/255) or float32 (taken as they are); "
                  "default: float32 for a model trained on an HDF5 file, else uint8")
      ->check(CLI::IsMember({"uint8", "float32"}));
  CLI::App* info = app.add_subcommand("info", "build options, backends, devices and library versions");

  if (argc == 1) {  // no command: the help, as --help gives it
    if (comm.leader()) std::printf("%s", app.help().c_str());
    return 0;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    if (comm.leader()) app.exit(e);
    return 0;
  } catch (const CLI::CallForAllHelp& e) {
    if (comm.leader()) app.exit(e);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    if (comm.leader()) app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    throw rs::UserError(fmt::format("command line: {}", e.what()));
  }
  if (*train) return rs::train_command(topt, comm);
  if (*info) return rs::info_command(comm);
  if (*sweep) return rs::sweep_command(sopt, comm);
  if (*report) return rs::report_command(study, comm);
  if (*infer) return rs::infer_command(iopt, comm);
  if (*exp) return rs::export_command(eopt, comm);
  return 2;
}

// The stop signals' handlers from the process's first instructions: the
// executable's preinit functions run once the loader has mapped the shared
// libraries and before their initialisers (the CUDA libraries' take tens of
// ms), so a USR1 or TERM sent right after the job starts is a stop request
// too (exit 75 at the first step), not a kill.
// The same place sets the main thread's floating-point environment (denormals
// flushed to zero), which every thread started afterwards inherits.
extern "C" void preinit(int, char**, char**) {
  rs::install_stop_signals();
  rs::flush_denormals();
}
[[gnu::section(".preinit_array"), gnu::used]] void (*const preinit_entry)(int, char**, char**) = preinit;

// An error message as one line of bounded length: a value quoted from a
// config or a file may hold newlines or megabytes.
std::string error_line(const std::string& what) {
  std::string s = rs::one_line(what, std::string::npos);
  constexpr size_t kMax = 1000, kHead = 700, kTail = 250;
  if (s.size() > kMax)
    s = fmt::format("{} [... {} bytes ...] {}", s.substr(0, kHead), s.size() - kHead - kTail,
                    s.substr(s.size() - kTail));
  return s;
}

// A report, export or log that could not be written to standard output (a
// full disk, a closed pipe) is a failed command: one line, status 2.
int stdout_error(int err) {
  fmt::print(stderr, "ranksweep: error: standard output: cannot write{}{}\n", err ? ": " : "",
             err ? std::strerror(err) : "");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (const std::string problem = rs::launch_problem(); !problem.empty()) {
    const char* task = std::getenv("SLURM_PROCID");
    if (task && std::string(task) == "0") fmt::print(stderr, "ranksweep: error: {}\n", problem);
    return 2;
  }
  std::signal(SIGXFSZ, SIG_IGN);  // past a file size limit a write fails (EFBIG) and is reported, not a kill
  int provided = 0;               // the sweep runs its coordinator on a thread of its own (it checks the level)
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  rs::install_stop_signals();  // again, over any handler MPI_Init set: SIGUSR1/SIGTERM -> checkpoint, exit 75
  int status;
  {
    const rs::Comm world(MPI_COMM_WORLD);
    rs::process_rank() = world.rank();
    try {
      status = run(argc, argv, world);
    } catch (const rs::UserError& e) {
      if (world.leader()) fmt::print(stderr, "ranksweep: error: {}\n", error_line(e.what()));
      status = 2;
    } catch (const rs::AgreedError& e) {  // every rank threw it together: end cleanly
      if (world.leader()) fmt::print(stderr, "ranksweep: error: {}\n", error_line(e.what()));
      status = 1;
    } catch (const std::system_error& e) {  // fmt::print to a standard output that cannot be written
      if (!std::ferror(stdout)) rs::abort_job(e.what());
      status = stdout_error(e.code().value());
    } catch (const std::bad_alloc&) {  // a host allocation no reader or backend checked first
      rs::abort_job("out of memory: a host allocation failed (data, model or buffers larger than this node holds?)");
    } catch (const std::exception& e) {
      rs::abort_job(e.what());
    }
  }
  errno = 0;
  if ((std::fflush(stdout) != 0 || std::ferror(stdout)) && status == 0) status = stdout_error(errno);
  MPI_Finalize();
  return status;
}
