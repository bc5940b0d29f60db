#include "sweep/protocol.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
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

struct ReplyHead {  // Reply without its parameters, which follow it as text
  bool done;
  Job job;
  int64_t stops_sent;
};

// A message of fixed head H and trailing text.
template <class H> void send_with_text(const H& h, const std::string& text, int dest, Tag tag, MPI_Comm c) {
  std::vector<char> buf(sizeof h + text.size());
  std::memcpy(buf.data(), &h, sizeof h);
  std::memcpy(buf.data() + sizeof h, text.data(), text.size());
  MPI_Send(buf.data(), int(buf.size()), MPI_BYTE, dest, tag, c);
}

// Receives a message sent by send_with_text; polls with short sleeps when `idle`.
template <class H> H recv_with_text(int source, Tag tag, MPI_Comm c, std::string* text, bool idle) {
  MPI_Status st;
  if (idle)
    for (int flag = 0; !flag;) {
      MPI_Iprobe(source, tag, c, &flag, &st);
      if (!flag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  else
    MPI_Probe(source, tag, c, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::vector<char> buf(static_cast<size_t>(n));
  MPI_Recv(buf.data(), n, MPI_BYTE, st.MPI_SOURCE, tag, c, MPI_STATUS_IGNORE);
  H h;
  std::memcpy(&h, buf.data(), sizeof h);
  text->assign(buf.data() + sizeof h, buf.size() - sizeof h);
  return h;
}

}  // namespace

void send_result(const Result& r, int dest, MPI_Comm c) {
  const ResultHead h{r.trial,         r.epochs,       r.group,      r.status, r.best_val_accuracy,
                     r.test_accuracy, r.wall_seconds, r.interrupted};
  send_with_text(h, r.message, dest, kResult, c);
}

Result recv_result(int source, MPI_Comm c) {
  std::string text;
  const auto h = recv_with_text<ResultHead>(source, kResult, c, &text, false);
  return Result{h.trial,         h.epochs,       h.group,       h.status,       h.best_val_accuracy,
                h.test_accuracy, h.wall_seconds, h.interrupted, std::move(text)};
}

void send_reply(const Reply& r, int dest, MPI_Comm c) {
  send_with_text(ReplyHead{r.done, r.job, r.stops_sent}, r.params, dest, kReply, c);
}

Reply recv_reply(int source, MPI_Comm c) {
  std::string text;
  const auto h = recv_with_text<ReplyHead>(source, kReply, c, &text, true);
  return Reply{h.done, h.job, h.stops_sent, std::move(text)};
}

bool MpiLink::poll(FromLeader* m) {
  int flag = 0;
  MPI_Status st;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, m_ch.up, &flag, &st);
  if (!flag) return false;
  m->leader = st.MPI_SOURCE;
  m->tag = Tag(st.MPI_TAG);
  switch (st.MPI_TAG) {
    case kRequest:
      recv<Request>(st.MPI_SOURCE, kRequest, m_ch.up);
      break;
    case kRung:
      m->rung = recv<Rung>(st.MPI_SOURCE, kRung, m_ch.up);
      break;
    case kResult:
      m->result = recv_result(st.MPI_SOURCE, m_ch.up);
      break;
    default:
      throw std::logic_error(fmt::format("sweep coordinator: unexpected message tag {}", st.MPI_TAG));
  }
  return true;
}

std::string params_text(const Overrides& p) {
  std::string s;
  for (const auto& [k, v] : p) s += k + "=" + v.text() + "\n";
  return s;
}

Overrides parse_params_text(const std::string& text) {
  Overrides p;
  for (size_t a = 0; a < text.size();) {
    const size_t eol = std::min(text.find('\n', a), text.size()), eq = text.find('=', a);
    p.emplace_back(text.substr(a, eq - a), parse_toml_value(text.substr(eq + 1, eol - eq - 1)));
    a = eol + 1;
  }
  return p;
}

}  // namespace msg
}  // namespace rs
