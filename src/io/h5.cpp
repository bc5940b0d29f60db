#include "io/h5.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <lzma.h>
#include <mutex>
#include <signal.h>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>

#include "error.h"

namespace rs {
namespace {

[[noreturn]] void write_failed(const std::string& what) { throw std::runtime_error("HDF5 write failed: " + what); }

template <class T> hid_t mem_type();
template <> hid_t mem_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t mem_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t mem_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t mem_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t mem_type<uint8_t>() { return H5T_NATIVE_UINT8; }

template <class T>
void write_impl(hid_t loc, const std::string& path, const T* data, const std::vector<hsize_t>& dims) {
  H5 space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5 dset(H5Dcreate2(loc, path.c_str(), mem_type<T>(), space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (dset.id() < 0) write_failed("create " + path);
  if (H5Dwrite(dset, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) write_failed("write " + path);
}

template <class T> void read_impl(hid_t loc, const std::string& path, T* out, const std::string& file) {
  if (!h5_exists(loc, path)) fail("{}: no dataset {}", file, path);
  H5 dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (dset.id() < 0) fail("{}: {} is not a dataset", file, path);
  if (H5Dread(dset, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    fail("{}: cannot read {} (corrupt, or not convertible to {})", file, path, sizeof(T) == 1 ? "uint8" : "numbers");
}

H5 open_obj(hid_t loc, const std::string& obj) {
  H5 o(H5Oopen(loc, obj.c_str(), H5P_DEFAULT), H5Oclose);
  if (o.id() < 0) write_failed("open " + obj);
  return o;
}

template <class T> void attr_impl(hid_t loc, const std::string& obj, const std::string& name, const T* v, hsize_t n) {
  H5 o = open_obj(loc, obj);
  if (H5Aexists(o, name.c_str()) > 0) H5Adelete(o, name.c_str());
  H5 space(n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5 a(H5Acreate2(o, name.c_str(), mem_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a.id() < 0 || H5Awrite(a, mem_type<T>(), v) < 0) write_failed("attribute " + obj + "@" + name);
}

H5 open_attr(hid_t loc, const std::string& obj, const std::string& name, const std::string& file) {
  if (!h5_has_attr(loc, obj, name)) fail("{}: missing attribute {} on {}", file, name, obj);
  H5 a(H5Aopen_by_name(loc, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a.id() < 0) fail("{}: cannot open attribute {} on {}", file, name, obj);
  return a;
}

}  // namespace

std::unique_lock<std::recursive_mutex> h5_lock() {
  static std::recursive_mutex m;
  return std::unique_lock<std::recursive_mutex>(m);
}

#ifndef RANKSWEEP_FUZZ_BUILD
namespace {
char g_crash_msg[8192];  // written by the signal handler: no allocation there
size_t g_crash_len = 0;
int g_guards = 0;
struct sigaction g_old_segv, g_old_bus;

extern "C" void h5_crash_handler(int) {
  if (::write(2, g_crash_msg, g_crash_len) < 0) {
  }
  int init = 0, fin = 0, size = 1;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, 2);  // the other ranks wait in a collective for this one's data
  _exit(2);
}

void set_crash_message(const std::string& m) {
  g_crash_len = std::min(m.size(), sizeof g_crash_msg);
  std::memcpy(g_crash_msg, m.data(), g_crash_len);
}

size_t resident_bytes() {
  size_t pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%zu %zu", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * size_t(sysconf(_SC_PAGESIZE));
}
}  // namespace
#endif

struct H5CrashGuard::Watch {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread thread;
  ~Watch() {
    {
      std::lock_guard<std::mutex> g(m);
      done = true;
    }
    cv.notify_one();
    thread.join();
  }
};

H5CrashGuard::H5CrashGuard(const std::string& path, [[maybe_unused]] size_t expected) {
#ifndef RANKSWEEP_FUZZ_BUILD
  m_outer.assign(g_crash_msg, g_crash_len);
  set_crash_message(
      fmt::format("ranksweep: error: {}: damaged HDF5 file (the HDF5 library crashed reading it)\n", path));
  std::error_code ec;  // by default a read may take 4x the file (compressed data), plus the slack
  const size_t file = std::filesystem::file_size(path, ec);
  const size_t base = resident_bytes(), limit = (expected ? expected : ec ? 0 : 4 * file) + kSlack;
  m_watch = std::make_unique<Watch>();
  m_watch->thread = std::thread([w = m_watch.get(), base, limit, path] {
    std::unique_lock<std::mutex> lock(w->m);
    while (!w->cv.wait_for(lock, std::chrono::milliseconds(20), [w] { return w->done; })) {
      const size_t now = resident_bytes();
      if (now <= base + limit) continue;
      set_crash_message(fmt::format(
          "ranksweep: error: {}: damaged HDF5 file (the HDF5 library took {:.1f} GB of memory reading it)\n", path,
          double(now - base) / 1e9));
      h5_crash_handler(0);
    }
  });
  if (g_guards++ == 0) {
    struct sigaction sa = {};
    sa.sa_handler = h5_crash_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  }
#else
  (void)path;
#endif
}

H5CrashGuard::~H5CrashGuard() {
#ifndef RANKSWEEP_FUZZ_BUILD
  m_watch.reset();
  set_crash_message(m_outer);
  if (--g_guards == 0) {
    sigaction(SIGSEGV, &g_old_segv, nullptr);
    sigaction(SIGBUS, &g_old_bus, nullptr);
  }
#endif
}

void h5_quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {

constexpr size_t kUserBlock = 512;  // HDF5's smallest user block: the checksum's place
constexpr char kSumTag[] = "ranksweep-crc64 ";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// The CRC-64 (xz's) of the file's bytes from `from` to its end; false on a read error.
bool file_crc64(int fd, off_t from, uint64_t* crc) {
  std::vector<uint8_t> buf(size_t(1) << 20);
  *crc = 0;
  for (off_t at = from;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    *crc = lzma_crc64(buf.data(), size_t(n), *crc);
    at += n;
  }
}

struct Verified {  // the last file whose checksum matched, as the file system saw it then
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
};

// A file this program wrote starts with a user block holding the CRC-64 and
// length of everything after it; both are checked before HDF5 parses a byte.
// Files without a user block (HDF5's signature at byte 0: users' own files,
// or ranksweep's before this format) are read as before; for `own` files
// (run, study, predictions) an HDF5 signature at byte 512 without the
// header means the header itself is damaged.
void verify_checksum(const std::string& path, bool own) {
  static std::mutex m;
  static Verified last;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // HDF5's open reports it
  struct stat st {};
  char head[kUserBlock + 1] = {};
  const bool got = ::fstat(fd, &st) == 0 && ::pread(fd, head, kUserBlock, 0) == ssize_t(kUserBlock);
  std::string problem;
  if (got && std::memcmp(head, kSumTag, sizeof kSumTag - 1) == 0) {
    std::lock_guard<std::mutex> hold(m);
    if (last.path == path && last.dev == st.st_dev && last.ino == st.st_ino && last.size == st.st_size &&
        last.mtime.tv_sec == st.st_mtim.tv_sec && last.mtime.tv_nsec == st.st_mtim.tv_nsec) {
      ::close(fd);
      return;
    }
    unsigned long long want = 0, bytes = 0;
    uint64_t crc = 0;
    if (std::sscanf(head + sizeof kSumTag - 1, "%16llx %llu", &want, &bytes) != 2)
      problem = "its checksum header is damaged";
    else if (uint64_t(st.st_size) != kUserBlock + bytes)
      problem = fmt::format("{} bytes where its checksum header says {} (truncated or extended)", st.st_size,
                            kUserBlock + bytes);
    else if (!file_crc64(fd, off_t(kUserBlock), &crc))
      problem = fmt::format("cannot read: {}", std::strerror(errno));
    else if (crc != want)
      problem = fmt::format("its content does not match its checksum (CRC-64 {:016x}, computed {:016x})", want, crc);
    else
      last = {path, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  } else if (own && got && std::memcmp(head, kHdf5Signature, 8) != 0) {
    unsigned char sig[8] = {};
    if (::pread(fd, sig, 8, off_t(kUserBlock)) == 8 && std::memcmp(sig, kHdf5Signature, 8) == 0)
      problem = "no ranksweep checksum header before its HDF5 data";
  }
  ::close(fd);
  if (!problem.empty()) fail("{}: damaged file: {}", path, problem);
}

}  // namespace

H5 h5_open_read(const std::string& path, bool own) {
  h5_quiet();  // a damaged file is one line from the caller, not HDF5's error stack
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(st)) fail("{}: is a directory, not an HDF5 file", path);
  if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st))
    fail("{}: not a regular file (an HDF5 file is read from disk)", path);
  if (!std::filesystem::is_regular_file(st)) fail("{}: file not found", path);
  verify_checksum(path, own);
  if (H5Fis_hdf5(path.c_str()) <= 0) fail("{}: not an HDF5 file", path);
  H5 f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (f.id() < 0) fail("{}: cannot open HDF5 file (truncated or corrupt?)", path);
  return f;
}

H5 h5_create(const std::string& path) {
  H5 f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (f.id() < 0) throw std::runtime_error("cannot create " + path);
  return f;
}

namespace {

// Fixed-length strings: packed NUL-padded to the longest (at least 1 byte), and back.
std::string pack_fixed(const std::vector<std::string>& v, size_t* len) {
  *len = 1;
  for (const std::string& x : v) *len = std::max(*len, x.size());
  std::string buf(*len * v.size(), '\0');
  for (size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + ptrdiff_t(i * *len));
  return buf;
}
std::vector<std::string> unpack_fixed(const std::string& buf, size_t n, size_t len) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    const std::string x = buf.substr(i * len, len);
    out.push_back(x.substr(0, x.find('\0')));
  }
  return out;
}
H5 fixed_string_type(size_t len) {
  H5 type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, len);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

// Strings HDF5 read as variable-length, copied out and freed.
std::vector<std::string> take_vlen(const std::vector<char*>& p) {
  std::vector<std::string> out;
  for (char* c : p) {
    out.emplace_back(c ? c : "");
    if (c) H5free_memory(c);
  }
  return out;
}

// Variable-length strings live in the global heap, which no HDF5 checksum
// guards and which HDF5 1.10 reads in an endless loop when it is damaged.
// This version writes them only as attributes (h5py reads those as str) of
// files with the checksum block, whose CRC-64 h5_open_read checked before
// HDF5 parsed a byte; files of earlier versions (superblock 0) may have them
// too. A checksummed-format file without the block holding one is damaged.
void check_vlen_allowed(hid_t loc, const std::string& file, const std::string& what) {
  H5 f(H5Iget_file_id(loc), H5Fclose);
  if (f.id() < 0 || h5_superblock_version(f) < 2) return;
  H5 fcpl(H5Fget_create_plist(f), H5Pclose);
  hsize_t block = 0;
  if (fcpl.id() >= 0 && H5Pget_userblock(fcpl, &block) >= 0 && block == kUserBlock) return;
  fail("{}: {} is a variable-length string, which a file without its checksum never holds (damaged file)", file, what);
}

// A variable-length string type (UTF-8: what this version writes; attributes
// of this type read as str in h5py).
H5 vlen_string_type(H5T_cset_t cset = H5T_CSET_UTF8) {
  H5 type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, cset);
  return type;
}

// The core driver's memory, through file image callbacks: plain malloc, and at
// close the buffer is kept for H5Image::commit instead of freed.
void* image_malloc(size_t size, H5FD_file_image_op_t, void* ud) {
  static_cast<H5Image::Buffer*>(ud)->size = size;
  return std::malloc(size);
}
void* image_memcpy(void* dst, const void* src, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dst, src, size);
}
void* image_realloc(void* p, size_t size, H5FD_file_image_op_t, void* ud) {
  static_cast<H5Image::Buffer*>(ud)->size = size;
  return std::realloc(p, size);
}
herr_t image_free(void* p, H5FD_file_image_op_t op, void* ud) {
  auto* b = static_cast<H5Image::Buffer*>(ud);
  if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE) {  // the last close's buffer is the file; any earlier one is not
    if (b->kept && b->data != p) std::free(b->data);
    b->data = p, b->kept = true;
  } else {
    std::free(p);
  }
  return 0;
}
void* image_udata_copy(void* ud) { return ud; }
herr_t image_udata_free(void*) { return 0; }

}  // namespace

H5Image::H5Image(std::string path) : m_path(std::move(path)) {
  H5 fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_core(fapl, size_t(64) << 10, false);  // grown 64 KiB at a time, never backed by a file
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);  // commit() closes it whatever objects are still open
  H5FD_file_image_callbacks_t cb = {image_malloc,     image_memcpy,     image_realloc, image_free,
                                    image_udata_copy, image_udata_free, m_image.get()};
  H5Pset_file_image_callbacks(fapl, &cb);
  // Named where no file can be: HDF5 first tries to open the name without
  // creating it, which would read an existing file at `path` into memory.
  const std::string name = m_path + "/(in memory)";
  H5 fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_userblock(fcpl, kUserBlock);  // the checksum header, filled in by commit()
  m_file = H5(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, fcpl, fapl), H5Fclose);
  if (m_file.id() < 0) throw std::runtime_error("cannot create an HDF5 file in memory for " + m_path);
}

H5Image::~H5Image() {
  m_file = H5();
  if (m_image->kept) std::free(m_image->data);
}

void H5Image::close() {
  if (H5Fclose(m_file.release()) < 0 || !m_image->kept)
    throw std::runtime_error("cannot close " + m_path + " (in memory)");
}

void H5Image::write() {
  if (!m_image->kept) throw std::logic_error("H5Image::write before close: " + m_path);
  auto* bytes = static_cast<unsigned char*>(m_image->data);
  if (m_image->size < kUserBlock || std::memcmp(bytes + kUserBlock, kHdf5Signature, 8) != 0)
    throw std::runtime_error("cannot close " + m_path + " (in memory): no HDF5 superblock after the user block");
  const uint64_t crc = lzma_crc64(bytes + kUserBlock, m_image->size - kUserBlock, 0);
  const std::string head = fmt::format("{}{:016x} {}\n", kSumTag, crc, m_image->size - kUserBlock);
  std::memset(bytes, 0, kUserBlock);
  std::memcpy(bytes, head.data(), head.size());
  write_file_atomically(m_path, m_image->data, m_image->size);
}

namespace {

// Writes all of `data` to `fd`; 0 or the first errno.
int write_all(int fd, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  for (size_t done = 0; done < bytes;) {
    const ssize_t w = ::write(fd, p + done, std::min<size_t>(bytes - done, size_t(1) << 30));
    if (w < 0 && errno != EINTR) return errno;
    if (w > 0) done += size_t(w);
  }
  return 0;
}

}  // namespace

void write_file_atomically(const std::string& path, const void* data, size_t bytes) {
  // Where the bytes go: a symbolic link's target (the link stays), a regular
  // file replaced whole, or a character device or FIFO (/dev/stdout, a pipe)
  // written in place; never a device or FIFO replaced by a regular file.
  std::string target = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved) throw WriteError(fmt::format("{}: cannot write: a symbolic link to a missing file", path));
    target = resolved;
    std::free(resolved);
  }
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
      throw WriteError(fmt::format("{}: cannot write: not a regular file, character device or FIFO", path));
    const int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : write_all(fd, data, bytes);
    if (fd >= 0 && ::close(fd) != 0 && !err) err = errno;
    if (err) throw WriteError(fmt::format("{}: cannot write: {}", path, std::strerror(err)));
    return;
  }
  const std::string tmp = fmt::format("{}.tmp-{}", target, ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw WriteError(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
  int err = write_all(fd, data, bytes);
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && ::rename(tmp.c_str(), target.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw WriteError(fmt::format("{}: cannot write: {}", path, std::strerror(err)));
  }
}

bool h5_exists(hid_t loc, const std::string& path) {
  // Check each component, as H5Lexists requires its parents to exist.
  size_t pos = path[0] == '/' ? 1 : 0;
  while (true) {
    const size_t next = path.find('/', pos);
    const std::string prefix = path.substr(0, next);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) return true;
    pos = next + 1;
  }
}

std::vector<hsize_t> h5_dims(hid_t loc, const std::string& path, const std::string& file) {
  if (!h5_exists(loc, path)) fail("{}: no dataset {}", file, path);
  H5 dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (dset.id() < 0) fail("{}: {} is not a dataset", file, path);
  H5 space(H5Dget_space(dset), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space);
  if (nd < 0) fail("{}: cannot read the shape of {}", file, path);
  std::vector<hsize_t> dims(nd);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

H5T_class_t h5_type_class(hid_t loc, const std::string& path, size_t* size) {
  H5 dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  H5 type(H5Dget_type(dset), H5Tclose);
  if (size) *size = H5Tget_size(type);
  return H5Tget_class(type);
}

void h5_write(hid_t loc, const std::string& p, const float* d, const std::vector<hsize_t>& dims) {
  write_impl(loc, p, d, dims);
}
void h5_write(hid_t loc, const std::string& p, const double* d, const std::vector<hsize_t>& dims) {
  write_impl(loc, p, d, dims);
}
void h5_write(hid_t loc, const std::string& p, const int32_t* d, const std::vector<hsize_t>& dims) {
  write_impl(loc, p, d, dims);
}
void h5_write(hid_t loc, const std::string& p, const uint8_t* d, const std::vector<hsize_t>& dims) {
  write_impl(loc, p, d, dims);
}
void h5_write(hid_t loc, const std::string& p, const int64_t* d, const std::vector<hsize_t>& dims) {
  write_impl(loc, p, d, dims);
}
void h5_read(hid_t loc, const std::string& p, int64_t* o, const std::string& f) { read_impl(loc, p, o, f); }

// Fixed-length (NUL-padded UTF-8) strings: stored in the dataset itself, not
// in the global heap, whose damaged collections HDF5 1.10 reads past.
void h5_write_strings(hid_t loc, const std::string& path, const std::vector<std::string>& v) {
  size_t len = 0;
  const std::string buf = pack_fixed(v, &len);
  H5 type = fixed_string_type(len);
  const hsize_t n = v.size();
  H5 space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5 dset(H5Dcreate2(loc, path.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (dset.id() < 0 || (n && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0))
    write_failed("write " + path);
}

std::vector<std::string> h5_read_strings(hid_t loc, const std::string& path, const std::string& file) {
  const auto dims = h5_dims(loc, path, file);
  if (dims.size() != 1) fail("{}: {} must be 1-D", file, path);
  H5 dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  H5 ftype(H5Dget_type(dset), H5Tclose);
  if (H5Tget_class(ftype) != H5T_STRING) fail("{}: {} is not a string dataset", file, path);
  if (H5Tis_variable_str(ftype) == 0) {  // fixed length (this version's files)
    const size_t len = H5Tget_size(ftype);
    if (len == 0 || len > (size_t(1) << 20) || dims[0] > (hsize_t(1) << 24))
      fail("{}: {} has an implausible size", file, path);
    std::string buf(size_t(dims[0]) * len, '\0');
    if (dims[0] && H5Dread(dset, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      fail("{}: cannot read {}", file, path);
    return unpack_fixed(buf, size_t(dims[0]), len);
  }
  check_vlen_allowed(loc, file, path);
  H5 type = vlen_string_type(H5Tget_cset(ftype));  // variable length (files of earlier versions)
  std::vector<char*> p(dims[0], nullptr);
  if (dims[0] && H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) < 0)
    fail("{}: cannot read {}", file, path);
  return take_vlen(p);
}

void h5_read(hid_t loc, const std::string& p, float* o, const std::string& f) { read_impl(loc, p, o, f); }
void h5_read(hid_t loc, const std::string& p, double* o, const std::string& f) { read_impl(loc, p, o, f); }
void h5_read(hid_t loc, const std::string& p, int32_t* o, const std::string& f) { read_impl(loc, p, o, f); }
void h5_read(hid_t loc, const std::string& p, uint8_t* o, const std::string& f) { read_impl(loc, p, o, f); }

void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::string& value) {
  H5 o = open_obj(loc, obj);
  if (H5Aexists(o, name.c_str()) > 0) H5Adelete(o, name.c_str());
  H5 type = vlen_string_type();  // h5py reads it as str (a fixed-length one as bytes)
  H5 space(H5Screate(H5S_SCALAR), H5Sclose);
  H5 a(H5Acreate2(o, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  if (a.id() < 0 || H5Awrite(a, type, &p) < 0) write_failed("attribute " + obj + "@" + name);
}
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<std::string>& value) {
  h5_attr_names(loc, obj, name, value);
}
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, double v) { attr_impl(loc, obj, name, &v, 0); }
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, int64_t v) {
  attr_impl(loc, obj, name, &v, 0);
}
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<float>& v) {
  attr_impl(loc, obj, name, v.data(), v.size());
}
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<int64_t>& v) {
  attr_impl(loc, obj, name, v.data(), v.size());
}

bool h5_has_attr(hid_t loc, const std::string& obj, const std::string& name) {
  if (obj != "/" && !h5_exists(loc, obj)) return false;
  return H5Aexists_by_name(loc, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> h5_members(hid_t f, const std::string& group, const char* list, const std::string& file) {
  if (h5_has_attr(f, group, list)) return h5_attr_names(f, group, list, file);
  if (h5_superblock_version(f) >= 2) fail("{}: {} has no list of its members (damaged file)", file, group);
  std::vector<std::string> names;
  const H5L_iterate_t collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
  };
  H5 g(H5Gopen2(f, group.c_str(), H5P_DEFAULT), H5Gclose);
  hsize_t idx = 0;
  if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect, &names) < 0) {
    names.clear(), idx = 0;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names);
  }
  return names;
}

unsigned h5_superblock_version(hid_t f) {
  H5F_info2_t info{};
  return H5Fget_info2(f, &info) < 0 ? 0 : info.super.version;
}

void h5_attr_names(hid_t loc, const std::string& obj, const std::string& name, const std::vector<std::string>& v) {
  H5 o = open_obj(loc, obj);
  if (H5Aexists(o, name.c_str()) > 0) H5Adelete(o, name.c_str());
  H5 type = vlen_string_type();  // h5py reads a list of str
  std::vector<const char*> p;
  for (const std::string& x : v) p.push_back(x.c_str());
  const hsize_t n = v.size();
  H5 space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5 a(H5Acreate2(o, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a.id() < 0 || (n && H5Awrite(a, type, p.data()) < 0)) write_failed("attribute " + obj + "@" + name);
}

std::vector<std::string> h5_attr_names(hid_t loc, const std::string& obj, const std::string& name,
                                       const std::string& file) {
  H5 a = open_attr(loc, obj, name, file);
  H5 type(H5Aget_type(a), H5Tclose), space(H5Aget_space(a), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  const size_t len = H5Tget_size(type);
  const bool vlen = H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0;
  if (H5Tget_class(type) != H5T_STRING || n < 0 || len == 0 || (!vlen && len > (1 << 16)) || n > (1 << 24))
    fail("{}: attribute {} on {} is not a list of names", file, name, obj);
  if (vlen) {
    check_vlen_allowed(loc, file, "attribute " + name + " on " + obj);
    H5 mem = vlen_string_type(H5Tget_cset(type));
    std::vector<char*> p(size_t(n), nullptr);
    if (n && H5Aread(a, mem, p.data()) < 0) fail("{}: cannot read attribute {} on {}", file, name, obj);
    return take_vlen(p);
  }
  std::string buf(size_t(n) * len, '\0');
  if (n && H5Aread(a, type, buf.data()) < 0) fail("{}: cannot read attribute {} on {}", file, name, obj);
  return unpack_fixed(buf, size_t(n), len);
}

std::string h5_attr_string(hid_t loc, const std::string& obj, const std::string& name, const std::string& file) {
  H5 a = open_attr(loc, obj, name, file);
  H5 ftype(H5Aget_type(a), H5Tclose);
  if (H5Tget_class(ftype) != H5T_STRING) fail("{}: attribute {} on {} is not a string", file, name, obj);
  if (H5Tis_variable_str(ftype) > 0) {
    check_vlen_allowed(loc, file, "attribute " + name + " on " + obj);
    H5 type = vlen_string_type(H5Tget_cset(ftype));
    char* s = nullptr;
    if (H5Aread(a, type, &s) < 0 || !s) fail("{}: cannot read attribute {} on {}", file, name, obj);
    std::string out(s);
    H5free_memory(s);
    return out;
  }
  H5 space(H5Aget_space(a), H5Sclose);
  if (H5Sget_simple_extent_npoints(space) != 1 || H5Tget_size(ftype) > (size_t(1) << 26))
    fail("{}: attribute {} on {} is not one string", file, name, obj);
  std::string out(H5Tget_size(ftype), '\0');
  if (H5Aread(a, ftype, out.data()) < 0) fail("{}: cannot read attribute {} on {}", file, name, obj);
  return out.substr(0, out.find('\0'));
}

std::vector<double> h5_attr_doubles(hid_t loc, const std::string& obj, const std::string& name,
                                    const std::string& file) {
  H5 a = open_attr(loc, obj, name, file);
  H5 space(H5Aget_space(a), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<double> out(n < 0 ? 0 : size_t(n));
  if (n < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, out.data()) < 0)
    fail("{}: attribute {} on {} is not numeric", file, name, obj);
  return out;
}

int64_t h5_attr_int(hid_t loc, const std::string& obj, const std::string& name, const std::string& file) {
  H5 a = open_attr(loc, obj, name, file);
  H5 space(H5Aget_space(a), H5Sclose);
  int64_t v = 0;
  if (H5Sget_simple_extent_npoints(space) != 1 || H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
    fail("{}: attribute {} on {} is not a single integer", file, name, obj);
  return v;
}

}  // namespace rs
