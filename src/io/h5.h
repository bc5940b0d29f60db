// Thin RAII and helpers over the HDF5 C API. Errors in files being read are
// UserErrors naming the file and object; HDF5's own error stack printing is
// turned off (h5_quiet) so the user sees one line.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace rs {

void h5_quiet();

// HDF5 (Debian's parallel build) is not thread-safe: whoever touches a file
// while another thread may (the sweep's coordinator thread and rank 0's
// training thread) holds this lock for the whole read or write.
std::unique_lock<std::recursive_mutex> h5_lock();

// HDF5 1.10.8 crashes (SIGSEGV in its metadata accumulator, H5F__accum_read)
// on some damaged files instead of returning an error, and on others loops
// through a cyclic symbol table allocating until the machine runs out of
// memory (23 GB in a minute from a 4 KB file); fuzzing found both. While a
// guard is alive, SIGSEGV or SIGBUS, or the process's resident memory
// growing by more than `expected` bytes (what the caller reads, e.g. a
// dataset; by default 4x the file's size) plus kSlack, ends the process with one line naming the file
// ("damaged HDF5 file") and status 2, through MPI_Abort when the job has more
// ranks. Guards nest (the innermost file is named). Fuzz builds keep ASan's
// report and libFuzzer's memory limit instead.
class H5CrashGuard {
 public:
  static constexpr size_t kSlack = size_t(2) << 30;
  explicit H5CrashGuard(const std::string& path, size_t expected = 0);
  ~H5CrashGuard();
  H5CrashGuard(const H5CrashGuard&) = delete;
  H5CrashGuard& operator=(const H5CrashGuard&) = delete;

 private:
  std::string m_outer;  // the enclosing guard's message
  struct Watch;         // the memory watch: a thread sampling the resident size
  std::unique_ptr<Watch> m_watch;
};

class H5 {
 public:
  H5() = default;
  H5(hid_t id, herr_t (*close)(hid_t)) : m_id(id), m_close(close) {}
  H5(H5&& o) noexcept : m_id(o.m_id), m_close(o.m_close) { o.m_id = -1; }
  H5& operator=(H5&& o) noexcept {
    std::swap(m_id, o.m_id);
    std::swap(m_close, o.m_close);
    return *this;
  }
  H5(const H5&) = delete;
  H5& operator=(const H5&) = delete;
  ~H5() {
    if (m_id >= 0) m_close(m_id);
  }
  hid_t id() const { return m_id; }
  operator hid_t() const { return m_id; }
  hid_t release() { return std::exchange(m_id, -1); }  // the caller closes it

 private:
  hid_t m_id = -1;
  herr_t (*m_close)(hid_t) = nullptr;
};

// Files. open_read fails with "PATH: not an HDF5 file" and the like. A file
// this program wrote carries a CRC-64 of its content in a 512-byte user block
// (H5Image::commit), checked here before HDF5 reads any of it: a damaged file
// is "PATH: damaged file: ..." (exit 2). `own`: a ranksweep run, study or
// prediction file, whose header must be there when a user block is.
H5 h5_open_read(const std::string& path, bool own = true);
// Created on disk directly (truncating), HDF5 writing as it goes: for the
// tests' input files. The program writes through H5Image.
H5 h5_create(const std::string& path);

// A file built in memory (HDF5's core driver, newest format: checksummed
// metadata, a user block for the checksum of the whole file) and put on disk
// by commit() in one piece: written to a temporary
// file of its own, synced, renamed over `path`. HDF5 never writes to the disk
// itself, so a full disk or a file size limit is a WriteError with the
// system's reason and `path` is left as it was: never a file HDF5 failed to
// close (HDF5 1.10 cannot recover from that: its shutdown in MPI_Finalize
// then crashes).
class H5Image {
 public:
  explicit H5Image(std::string path);
  ~H5Image();
  H5Image(const H5Image&) = delete;
  H5Image& operator=(const H5Image&) = delete;
  operator hid_t() const { return m_file.id(); }
  // Closes the file (HDF5 calls: under h5_lock()) and keeps its bytes.
  void close();
  // Writes the kept bytes to the path, with their checksum header,
  // atomically (write_file_atomically). Calls no HDF5 function, so it runs
  // without h5_lock(): another thread's HDF5 work goes on during the disk
  // write and its sync.
  void write();
  void commit() { close(), write(); }

  // The file's bytes as the core driver holds them; kept when HDF5 closes the
  // file (the image taken at close is the only complete one: an image taken
  // while open has a stale superblock checksum in HDF5 1.10.8).
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    bool kept = false;
  };

 private:
  std::string m_path;
  std::unique_ptr<Buffer> m_image = std::make_unique<Buffer>();  // HDF5 holds its address
  H5 m_file;
};

// Writes all of `data` to a new file PATH.tmp-<pid> (created exclusively), syncs
// it and renames it to `path`; on any failure removes it and throws WriteError.
// A symbolic link's target is written (the link stays); an existing character
// device or FIFO is written in place; any other non-regular file is an error.
void write_file_atomically(const std::string& path, const void* data, size_t bytes);

bool h5_exists(hid_t loc, const std::string& path);  // link path, each part checked
std::vector<hsize_t> h5_dims(hid_t loc, const std::string& path, const std::string& file);
H5T_class_t h5_type_class(hid_t loc, const std::string& path, size_t* size);

// Datasets: intermediate groups are created on write.
void h5_write(hid_t loc, const std::string& path, const float* data, const std::vector<hsize_t>& dims);
void h5_write(hid_t loc, const std::string& path, const double* data, const std::vector<hsize_t>& dims);
void h5_write(hid_t loc, const std::string& path, const int32_t* data, const std::vector<hsize_t>& dims);
void h5_write(hid_t loc, const std::string& path, const uint8_t* data, const std::vector<hsize_t>& dims);
void h5_write(hid_t loc, const std::string& path, const int64_t* data, const std::vector<hsize_t>& dims);
void h5_write_strings(hid_t loc, const std::string& path, const std::vector<std::string>& v);
std::vector<std::string> h5_read_strings(hid_t loc, const std::string& path, const std::string& file);
// Reads a whole dataset converted to T; `file` names the file in errors.
// The caller checks dims first (h5_dims) so sizes are known to fit.
void h5_read(hid_t loc, const std::string& path, float* out, const std::string& file);
void h5_read(hid_t loc, const std::string& path, double* out, const std::string& file);
void h5_read(hid_t loc, const std::string& path, int32_t* out, const std::string& file);
void h5_read(hid_t loc, const std::string& path, uint8_t* out, const std::string& file);
void h5_read(hid_t loc, const std::string& path, int64_t* out, const std::string& file);

// Attributes on an object (file root "/" or a group/dataset path).
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::string& value);
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, double value);
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, int64_t value);
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<float>& value);
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<int64_t>& value);
void h5_attr(hid_t loc, const std::string& obj, const std::string& name, const std::vector<std::string>& value);
bool h5_has_attr(hid_t loc, const std::string& obj, const std::string& name);
// The file's superblock version: 2 and above checksum their metadata (every
// file this version writes); 0 and 1 are older files, read with more care.
unsigned h5_superblock_version(hid_t f);

// The members of `group` as the attribute `list` names them; in files of
// earlier versions (superblock 0/1) without the list, its links in creation
// order (else name order). A checksummed file without the list is damaged.
std::vector<std::string> h5_members(hid_t f, const std::string& group, const char* list, const std::string& file);

// A list of names as a fixed-length string attribute (in the object header,
// checksummed): how a reader learns a group's members without iterating its
// links (HDF5 1.10's link iteration frees garbage on some damaged files).
void h5_attr_names(hid_t loc, const std::string& obj, const std::string& name, const std::vector<std::string>& v);
std::vector<std::string> h5_attr_names(hid_t loc, const std::string& obj, const std::string& name,
                                       const std::string& file);
std::string h5_attr_string(hid_t loc, const std::string& obj, const std::string& name, const std::string& file);
int64_t h5_attr_int(hid_t loc, const std::string& obj, const std::string& name, const std::string& file);
std::vector<double> h5_attr_doubles(hid_t loc, const std::string& obj, const std::string& name,
                                    const std::string& file);

}  // namespace rs
