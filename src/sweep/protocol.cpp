#include "sweep/protocol.h"

#include <cstring>
#include <vector>

namespace rs {

const char* to_string(TrialStatus s) {
  switch (s) {
    case TrialStatus::completed:
      return "completed";
    case TrialStatus::pruned:
      return "pruned";
    case TrialStatus::diverged:
      return "diverged";
    case TrialStatus::failed:
      return "failed";
  }
  return "?";
}

bool parse_trial_status(const std::string& text, TrialStatus* s) {
  for (TrialStatus t : {TrialStatus::completed, TrialStatus::pruned, TrialStatus::diverged, TrialStatus::failed})
    if (text == to_string(t)) {
      *s = t;
      return true;
    }
  return false;
}

namespace msg {
namespace {

struct ResultHead {  // Result without its message, which follows it
  int64_t trial, epochs, group;
  TrialStatus status;
  double best_val_accuracy, test_accuracy, wall_seconds;
  bool interrupted;
};

}  // namespace

void send_result(const Result& r, int dest, MPI_Comm c) {
  const ResultHead h{r.trial,         r.epochs,       r.group,      r.status, r.best_val_accuracy,
                     r.test_accuracy, r.wall_seconds, r.interrupted};
  std::vector<char> buf(sizeof h + r.message.size());
  std::memcpy(buf.data(), &h, sizeof h);
  std::memcpy(buf.data() + sizeof h, r.message.data(), r.message.size());
  MPI_Send(buf.data(), int(buf.size()), MPI_BYTE, dest, kResult, c);
}

Result recv_result(int source, MPI_Comm c) {
  MPI_Status st;
  MPI_Probe(source, kResult, c, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::vector<char> buf(static_cast<size_t>(n));
  MPI_Recv(buf.data(), n, MPI_BYTE, st.MPI_SOURCE, kResult, c, MPI_STATUS_IGNORE);
  ResultHead h;
  std::memcpy(&h, buf.data(), sizeof h);
  return Result{h.trial,
                h.epochs,
                h.group,
                h.status,
                h.best_val_accuracy,
                h.test_accuracy,
                h.wall_seconds,
                h.interrupted,
                std::string(buf.data() + sizeof h, buf.size() - sizeof h)};
}

}  // namespace msg
}  // namespace rs
