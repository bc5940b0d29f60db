// The sweep's vocabulary: trial status, jobs, and the messages between the
// rank groups' leaders and the coordinator (a thread on world rank 0), on the
// sweep's own communicator. Messages are typed structs sent as bytes; a
// result carries its message text after its fixed part.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "config/value.h"

namespace rs {

enum class TrialStatus : int32_t { completed, pruned, diverged, failed };
const char* to_string(TrialStatus s);
// The status named by `text` (as in study files); false if it names none.
bool parse_trial_status(const std::string& text, TrialStatus* s);

// Work for a group: train `trial` from its checkpoint (if any) until
// `stop_epoch` epochs (capped by the trial's train.epochs), or until the end
// of its budget when `full_budget` is set.
struct Job {
  int64_t trial = 0;
  int64_t stop_epoch = 0;
  bool full_budget = false;
};

// The sweep's two communicators (duplicates of the world): leaders send up to
// the coordinator, the coordinator sends down to leaders. Two, because world
// rank 0 is both: on one communicator the coordinator's any-tag probe would
// also find the replies and stops meant for rank 0's own group leader.
struct Channels {
  MPI_Comm up = MPI_COMM_NULL;    // Request, Rung, Result -> rank 0
  MPI_Comm down = MPI_COMM_NULL;  // Reply, Stop -> a leader
};

namespace msg {

enum Tag : int { kRequest = 11, kReply, kRung, kResult, kStop };

// leader -> coordinator: my group wants work.
struct Request {
  int64_t group = 0;
};

// coordinator -> leader: a job and its trial's hyperparameters, or the end of
// the sweep for this group.
struct Reply {
  bool done = false;
  Job job;
  int64_t stops_sent = 0;  // Stop messages sent to this leader so far (it receives every one)
  std::string params;      // the trial's values as params_text() (empty: the config as written)
};

// coordinator -> leader of a running job: stop at the next step, checkpoint
// there and report the job interrupted (the sweep is stopping: a signal, or
// another group reached the deadline).
struct Stop {
  int64_t unused = 0;
};

// leader -> coordinator: a running trial passed an ASHA rung.
struct Rung {
  int64_t trial = 0, epoch = 0;
  double val_accuracy = 0;
};

// leader -> coordinator: a job ended.
struct Result {
  int64_t trial = 0, epochs = 0, group = 0;
  TrialStatus status = TrialStatus::completed;
  double best_val_accuracy = 0, test_accuracy = 0;  // test: at the best validation epoch
  double wall_seconds = 0;                          // this job, measured by the group
  bool interrupted = false;  // stopped inside the job (checkpoint written): not a result, the trial runs on later
  std::string message;       // why it diverged or failed
};

// Fixed-size messages go as their bytes: only for plain structs.
template <class T> void send(const T& m, int dest, Tag tag, MPI_Comm c) {
  static_assert(std::is_trivially_copyable_v<T>, "msg::send copies the message's bytes");
  MPI_Send(&m, int(sizeof m), MPI_BYTE, dest, tag, c);
}
template <class T> T recv(int source, Tag tag, MPI_Comm c) {
  static_assert(std::is_trivially_copyable_v<T>, "msg::recv fills the message's bytes");
  T m;
  MPI_Recv(&m, int(sizeof m), MPI_BYTE, source, tag, c, MPI_STATUS_IGNORE);
  return m;
}
void send_result(const Result& r, int dest, MPI_Comm c);
Result recv_result(int source, MPI_Comm c);
void send_reply(const Reply& r, int dest, MPI_Comm c);
Reply recv_reply(int source, MPI_Comm c);  // sleeps while it waits: a waiting group takes no core

// A message from a leader to the coordinator: the tag says which part holds it.
struct FromLeader {
  Tag tag = kRequest;
  int leader = 0;
  Rung rung;      // kRung
  Result result;  // kResult
};

// How the coordinator hears the leaders and answers them: MPI in a sweep
// (MpiLink), in-process queues in the coordinator's benchmark.
class Link {
 public:
  virtual ~Link() = default;
  // The next waiting message, if there is one; never waits.
  virtual bool poll(FromLeader* m) = 0;
  virtual void reply(int leader, const Reply& r) = 0;
  virtual void stop(int leader) = 0;
};

// The sweep's two communicators.
class MpiLink : public Link {
 public:
  explicit MpiLink(Channels ch) : m_ch(ch) {}
  bool poll(FromLeader* m) override;
  void reply(int leader, const Reply& r) override { send_reply(r, leader, m_ch.down); }
  void stop(int leader) override { send(Stop{}, leader, kStop, m_ch.down); }

 private:
  Channels m_ch;
};

// Hyperparameters as text, one "key=value" a line (values as TomlValue::text(),
// which round-trips floats to the bit), and back.
std::string params_text(const Overrides& p);
Overrides parse_params_text(const std::string& text);

}  // namespace msg
}  // namespace rs
