#include "io/output_dir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/stat.h>
#include <utility>

#include "error.h"

namespace fs = std::filesystem;

namespace rs {

std::string default_out_dir(const std::string& config_path) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  std::error_code ec;
  fs::create_directories("runs", ec);
  if (ec) fail("runs: cannot create the default output directory: {}", ec.message());
  const std::string base = "runs/" + fs::path(config_path).stem().string() + "-" + stamp;
  for (int k = 1;; ++k) {
    const std::string dir = k == 1 ? base : fmt::format("{}-{}", base, k);
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) fail("{}: cannot create the output directory: {}", dir, ec.message());
  }
}

OutputLock::OutputLock(const std::string& lock_path, const std::string& what) : m_path(lock_path) {
  for (;;) {
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail("{}: cannot write there: {}", what, std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char holder[256] = {0};
      const ssize_t got = ::pread(fd, holder, sizeof holder - 1, 0);
      ::close(fd);
      std::string h = got > 0 ? std::string(holder, size_t(got)) : "";
      while (!h.empty() && (h.back() == '\n' || h.back() == '\0')) h.pop_back();
      if (err == EWOULDBLOCK)
        fail("{}: in use by another ranksweep run ({}); wait for it to end or choose another output", what,
             h.empty() ? "holder unknown" : h);
      fail("{}: cannot lock {}: {}", what, lock_path, std::strerror(err));
    }
    // The file may have been removed (and re-created) by its previous holder
    // between our open and our lock: then we hold a lock on nothing.
    struct stat a {
    }, b{};
    if (::fstat(fd, &a) == 0 && ::stat(lock_path.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      m_fd = fd;
      break;
    }
    ::close(fd);
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::string me = fmt::format("pid {} on {}\n", ::getpid(), host);
  if (::ftruncate(m_fd, 0) != 0 || ::pwrite(m_fd, me.data(), me.size(), 0) != ssize_t(me.size()) ||
      ::fsync(m_fd) != 0) {
    const int err = errno;
    release();
    fail("{}: cannot write there: {}", what, std::strerror(err));
  }
}

OutputLock::OutputLock(OutputLock&& o) noexcept { *this = std::move(o); }

OutputLock& OutputLock::operator=(OutputLock&& o) noexcept {
  if (this != &o) {
    release();
    m_fd = std::exchange(o.m_fd, -1);
    m_path = std::move(o.m_path);
  }
  return *this;
}

OutputLock::~OutputLock() { release(); }

void OutputLock::release() noexcept {
  if (m_fd < 0) return;
  ::unlink(m_path.c_str());  // while still held: a waiting locker re-checks the inode
  ::close(m_fd);
  m_fd = -1;
}

}  // namespace rs
