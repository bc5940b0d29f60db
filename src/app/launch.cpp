#include "app/launch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "backend/device.h"
#include "build_info.h"
#include "error.h"
#include "io/h5.h"
#include "io/trace.h"
#include "mpi/comm.h"
#if RS_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif

namespace rs {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (size_t a = 0; a <= s.size();) {
    const size_t b = std::min(s.find(sep, a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

// Every rank of `c` gets every rank's string (rank order).
std::vector<std::string> allgather(const std::string& mine, MPI_Comm c) {
  int n = 0, len = int(mine.size());
  MPI_Comm_size(c, &n);
  std::vector<int> lens(static_cast<size_t>(n)), offs(static_cast<size_t>(n), 0);
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, c);
  for (int i = 1; i < n; ++i) offs[size_t(i)] = offs[size_t(i - 1)] + lens[size_t(i - 1)];
  std::vector<char> all(size_t(offs.back() + lens.back()));
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, c);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.emplace_back(all.data() + offs[size_t(i)], size_t(lens[size_t(i)]));
  return out;
}

std::string hostname() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

std::string launch_problem() {
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (!tasks || !std::getenv("SLURM_PROCID") || std::atoi(tasks) < 2) return "";
  for (const char* pmi : {"PMIX_RANK", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"})
    if (std::getenv(pmi)) return "";  // srun --mpi=pmix|pmi2, or mpirun: the tasks form one world
  return fmt::format(
      "srun started {} tasks without an MPI plugin to join them into one job: launch with srun --mpi=pmix "
      "(or mpirun)",
      tasks);
}

DeviceChoice place_rank(const std::string& requested, bool compiled, const std::vector<std::string>& visible,
                        const Comm& placement, Placement* where) {
  MPI_Comm node;
  MPI_Comm_split_type(placement.raw(), MPI_COMM_TYPE_SHARED, placement.rank(), MPI_INFO_NULL, &node);
  int local = 0, local_size = 1;
  MPI_Comm_rank(node, &local);
  MPI_Comm_size(node, &local_size);
  std::vector<std::vector<std::string>> node_devices;
  for (const std::string& s : allgather(fmt::format("{}", fmt::join(visible, ",")), node))
    node_devices.push_back(split(s, ','));
  int leaders = local == 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &leaders, 1, MPI_INT, MPI_SUM, placement.raw());
  MPI_Comm_free(&node);
  where->nodes = leaders;

  DeviceChoice d;
  placement.agree([&] { d = choose_device(requested, compiled, node_devices, local); });
  int kinds[2] = {d.cuda ? 1 : 0, d.cuda ? 1 : 0};  // every rank must compute on the same kind of backend
  kinds[1] = -kinds[1];
  MPI_Allreduce(MPI_IN_PLACE, kinds, 2, MPI_INT, MPI_MAX, placement.raw());
  if (kinds[0] != -kinds[1])
    fail("device {}: some ranks see a GPU and some do not; give --device cpu, or run on nodes alike", requested);
  where->why = d.why;
  where->device = d.cuda ? fmt::format("cuda:{}", d.device) : "cpu";
  const std::string line = fmt::format("{} rank {} local {} {}{}", hostname(), placement.rank(), local, where->device,
                                       d.cuda ? " (" + d.pci + ")" : "");
  where->bindings = fmt::format("{}", fmt::join(allgather(line, placement.raw()), "\n"));
  return d;
}

std::unique_ptr<Backend> make_backend(const TrainConfig& t, const Comm& placement, Placement* where) {
  const DeviceChoice d = place_rank(t.device, RS_HAVE_CUDA, visible_cuda_devices(), placement, where);
  if (!d.cuda) return make_cpu_backend();
#if RS_HAVE_CUDA
  gpu_fatal_handler() = abort_job;  // a lost context: this rank cannot compute, its partners would wait forever
  return make_cuda_backend(d.device, t.deterministic, size_t(t.cudnn_workspace_mb) << 20);
#else
  throw std::logic_error("choose_device picked CUDA in a build without the CUDA backend");
#endif
}

int choose_threads(const Comm& comm, std::string* why) {
  int local = 1;
  local_rank(comm.raw(), &local);
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
    *why = "OMP_NUM_THREADS";
    return omp_get_max_threads();
  }
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int n = std::max(1, cores / local);
  *why = fmt::format("{} cores / {} ranks on this node", cores, local);
  omp_set_num_threads(n);
  return n;
}

void print_launch(const std::string& command, const Comm& world, const Placement& where, int threads,
                  const std::string& threads_why, const Deadline& deadline, bool verbose) {
  if (!world.leader()) return;
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* restart = std::getenv("SLURM_RESTART_COUNT");
  std::string slurm;
  if (job && *job)
    slurm = fmt::format("Slurm job {}{}, ", job, restart && *restart ? fmt::format(" (restart {})", restart) : "");
  fmt::print("ranksweep {}: {}{} node(s), {} rank(s) x {} thread(s) ({}); device {} ({}); deadline {}\n", command,
             slurm, where.nodes, world.size(), threads, threads_why, where.device, where.why, deadline.describe());
  if (verbose) fmt::print("binding:\n  {}\n", fmt::join(split(where.bindings, '\n'), "\n  "));
  std::fflush(stdout);
}

void start_trace(const std::string& path, const Comm& world) {
  world.root_only([&] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path parent = fs::absolute(path).parent_path();
    if (!fs::is_directory(parent, ec)) fail("--trace {}: the directory {} does not exist", path, parent.string());
    if (fs::is_directory(path, ec)) fail("--trace {}: is a directory", path);
  });
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  trace::start(world.rank(), fmt::format("{}:{}", host, world.rank()));
}

void write_trace(const std::string& path, const Comm& world) {
  long long origin = trace::start_us(), dropped = trace::dropped();
  MPI_Allreduce(MPI_IN_PLACE, &origin, 1, MPI_LONG_LONG, MPI_MIN, world.raw());
  MPI_Allreduce(MPI_IN_PLACE, &dropped, 1, MPI_LONG_LONG, MPI_SUM, world.raw());
  const std::string mine = trace::take_events(origin);
  std::string json;
  if (!world.leader()) {  // one rank at a time to rank 0 (each rank's events are capped: io/trace.h)
    MPI_Send(mine.data(), int(mine.size()), MPI_CHAR, 0, 0, world.raw());
  } else {
    json = fmt::format(
        "{{\"displayTimeUnit\": \"ms\",\n\"otherData\": {{\"ranks\": {}, \"step_spans_dropped\": {}}},\n"
        "\"traceEvents\": [\n{}",
        world.size(), dropped, mine);
    for (int q = 1; q < world.size(); ++q) {
      MPI_Status st;
      MPI_Probe(q, 0, world.raw(), &st);
      int n = 0;
      MPI_Get_count(&st, MPI_CHAR, &n);
      std::string part(size_t(n), '\0');
      MPI_Recv(part.data(), n, MPI_CHAR, q, 0, world.raw(), MPI_STATUS_IGNORE);
      json += ",\n" + part;
    }
    json += "\n]}\n";
  }
  world.root_only([&] { write_file_atomically(path, json.data(), json.size()); });
}

}  // namespace rs
