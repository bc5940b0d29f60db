#include "data/idx.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "error.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

class IdxSource final : public Source {
 public:
  IdxSource(const SourceOptions& o) : m_images(o.path), m_classes(o.classes) {
    m_format = "idx", m_path = o.path;
    Dataset d;
    set_shape(d, m_images.dims, o.path);
    m_n = d.n, m_c = d.c, m_h = d.h, m_w = d.w;
    std::string lab = o.labels;
    if (lab.empty()) {  // Fashion-MNIST/MNIST naming: *-images-idx3-ubyte* next to *-labels-idx1-ubyte*
      const std::string name = fs::path(o.path).filename().string();
      const size_t k = name.find("images-idx3-ubyte");
      if (k != std::string::npos) {
        const fs::path sib =
            fs::path(o.path).parent_path() / (name.substr(0, k) + "labels-idx1-ubyte" + name.substr(k + 17));
        std::error_code ec;
        if (fs::is_regular_file(sib, ec)) lab = sib.string();
      }
    }
    if (!lab.empty()) {
      m_labels = std::make_unique<IdxFile>(lab);
      if (m_labels->dims.size() != 1) fail("{}: labels need 1 dimension, got {}", lab, m_labels->dims.size());
      if (int64_t(m_labels->dims[0]) != m_n)
        fail("{}: {} labels for {} images in {}", lab, m_labels->dims[0], m_n, o.path);
      m_labels_path = lab;
    }
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = empty_chunk(count);
    std::vector<uint8_t> px(size_t(count) * d.sample_size()), lab(size_t(count), 0);
    if (count > 0) m_images.read(first, count, px.data());
    if (count > 0 && m_labels) m_labels->read(first, count, lab.data());
    d.u8 = std::move(px);
    d.labels = std::vector<int32_t>(lab.begin(), lab.end());
    if (m_labels) check_labels(d, m_classes, m_labels_path, first);
    return d;
  }

 private:
  IdxFile m_images;
  std::unique_ptr<IdxFile> m_labels;
  int64_t m_classes;
};

}  // namespace

IdxFile::IdxFile(const std::string& path) : m_path(path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{}: file not found", path);
  if (!fs::is_regular_file(path, ec)) fail("{}: not a regular file", path);
  const uint64_t file_size = fs::file_size(path, ec);
  if (file_size == 0) fail("{}: empty file", path);
  uint8_t magic[4] = {0, 0, 0, 0};
  {
    std::ifstream probe(path, std::ios::binary);
    probe.read(reinterpret_cast<char*>(magic), 2);
  }
  m_gz = file_size >= 18 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (ends_with(path, ".gz") && !m_gz) fail("{}: named .gz but not gzip data", path);
  m_f = gzopen(path.c_str(), "rb");  // reads raw files transparently (and seeks them with lseek)
  if (!m_f) fail("{}: cannot open", path);
  try {  // gzclose on every error below (a throwing constructor runs no destructor)
    gzbuffer(static_cast<gzFile>(m_f), 1 << 20);
    uint8_t head[4 + 4 * 4];
    const int got = gzread(static_cast<gzFile>(m_f), head, 4);
    if (got < 0) fail("{}: corrupt gzip data", path);
    if (got < 4 || head[0] != 0 || head[1] != 0) fail("{}: bad magic number (not an IDX file)", path);
    if (head[2] != 0x08) fail("{}: IDX element type 0x{:02x} is not unsigned byte (0x08)", path, head[2]);
    const int nd = head[3];
    if (nd < 1 || nd > 4) fail("{}: IDX file with {} dimensions", path, nd);
    if (gzread(static_cast<gzFile>(m_f), head + 4, unsigned(4 * nd)) != 4 * nd) fail("{}: truncated header", path);
    unsigned __int128 total = 1;
    for (int i = 0; i < nd; ++i) {
      dims.push_back(be32(&head[4 + 4 * i]));
      total *= dims.back();
    }
    record = 1;
    for (int i = 1; i < nd; ++i) record *= dims[size_t(i)];
    m_offset = m_pos = 4 + 4 * uint64_t(nd);
    if (!m_gz) {
      const unsigned __int128 have = file_size - m_offset;
      if (total > have)
        fail("{}: truncated: header promises {} bytes of data, file has {}", path,
             uint64_t(std::min<unsigned __int128>(total, UINT64_MAX)), uint64_t(have));
      if (total < have) fail("{}: {} trailing bytes after the data", path, uint64_t(have - total));
    } else {  // the gzip trailer's ISIZE: uncompressed size mod 2^32 (of the last member)
      // Deflate expands at most 1032:1, so the file's size bounds what it can hold: a forged
      // header and trailer are refused here, not after allocating what the header declares.
      if (total + m_offset > static_cast<unsigned __int128>(file_size) * 1032)
        fail("{}: the IDX header declares {} bytes of data, more than {} bytes of gzip data can hold: truncated or "
             "corrupt",
             path, uint64_t(std::min<unsigned __int128>(total, UINT64_MAX)), file_size);
      std::ifstream t(path, std::ios::binary);
      t.seekg(-4, std::ios::end);
      uint8_t le[4];
      t.read(reinterpret_cast<char*>(le), 4);
      const uint32_t isize = uint32_t(le[0]) | uint32_t(le[1]) << 8 | uint32_t(le[2]) << 16 | uint32_t(le[3]) << 24;
      if (uint32_t(uint64_t(total + m_offset)) != isize)
        fail(
            "{}: the gzip trailer says {} bytes uncompressed (mod 2^32), the IDX header needs {}: truncated, "
            "trailing bytes or corrupt gzip",
            path, isize, uint64_t(std::min<unsigned __int128>(total + m_offset, UINT64_MAX)));
    }
  } catch (...) {
    gzclose(static_cast<gzFile>(m_f));
    m_f = nullptr;
    throw;
  }
}

IdxFile::~IdxFile() {
  if (m_f) gzclose(static_cast<gzFile>(m_f));
}

void IdxFile::read(int64_t first, int64_t count, uint8_t* out) {
  gzFile f = static_cast<gzFile>(m_f);
  const uint64_t at = m_offset + uint64_t(first) * record;
  if (at != m_pos) {
    if (gzseek(f, z_off_t(at), SEEK_SET) < 0)
      fail("{}: corrupt or truncated gzip data (seeking to sample {})", m_path, first);
    m_pos = at;
  }
  uint64_t left = uint64_t(count) * record;
  while (left > 0) {
    const int got = gzread(f, out, unsigned(std::min<uint64_t>(left, 1u << 30)));
    if (got <= 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      fail("{}: corrupt or truncated {}data ({})", m_path, m_gz ? "gzip " : "",
           got < 0 ? msg : "unexpected end of file");
    }
    out += got, left -= uint64_t(got), m_pos += uint64_t(got);
  }
}

std::unique_ptr<Source> open_idx(const SourceOptions& o) { return std::make_unique<IdxSource>(o); }

Dataset read_idx(const std::string& images, const std::string& labels, int64_t classes) {
  IdxSource s({images, "idx", labels, classes});
  return s.read(0, s.size());
}

}  // namespace rs
