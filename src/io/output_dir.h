// Outputs: default output directories, and an exclusive lock on an output
// while a run writes it.
#pragma once

#include <string>

namespace rs {

// runs/<config stem>-<date>-<time>, with -2, -3, ... appended when that name
// is taken. The directory is created here, exclusively (mkdir either makes it
// or finds it taken), so two runs started in the same second never share one.
std::string default_out_dir(const std::string& config_path);

// An exclusive lock (flock) on `lock_path` for this object's life, taken by
// the one process that writes an output (rank 0). The lock file holds the
// holder's pid and host, and is removed on release; a second user of the
// output gets a UserError naming `what` and the holder. Creating and writing
// the lock file also probes the location: an unwritable directory or a full
// disk is an error here, before any work, with the system's reason.
class OutputLock {
 public:
  OutputLock() = default;
  OutputLock(const std::string& lock_path, const std::string& what);
  OutputLock(OutputLock&& o) noexcept;
  OutputLock& operator=(OutputLock&& o) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  ~OutputLock();

 private:
  void release() noexcept;
  int m_fd = -1;
  std::string m_path;
};

}  // namespace rs
