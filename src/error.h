// Errors. UserError is bad input (config, data file, checkpoint, command
// line): main prints its one-line message and every rank exits with status 2.
// Anything else escaping is a bug or a runtime failure (status 1).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace rs {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An output that could not be written (a full disk, a quota, a file size
// limit), with the system's reason: status 2 like bad input (the user must
// make room), and a sweep runs the trial again when it is resumed.
struct WriteError : UserError {
  using UserError::UserError;
};

// A runtime failure (not bad input) that every rank of a communicator threw
// together (Comm::root_only, Comm::agree), so its ranks are still in step and
// may go on: a sweep group fails the trial and takes the next. Any other
// exception may have been thrown by some ranks while others compute on.
struct AgreedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// This process's MPI rank for error messages (-1 before MPI_Init).
inline int& process_rank() {
  static int rank = -1;
  return rank;
}

template <class... Args> [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw UserError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace rs
