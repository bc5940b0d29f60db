#include "data/cifar10.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "error.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

class CifarSource final : public Source {
  static constexpr int64_t kRec = 1 + 3 * 32 * 32;

 public:
  // `files` in order; `where` names the input in messages.
  CifarSource(const std::string& where, std::vector<std::string> files, int64_t classes)
      : m_files(std::move(files)), m_classes(classes) {
    m_format = "cifar10", m_path = where;
    std::error_code ec;
    for (const std::string& f : m_files) {
      if (!fs::is_regular_file(f, ec)) fail("{}: file not found", f);
      const uint64_t size = fs::file_size(f, ec);
      if (size == 0) fail("{}: empty file", f);
      if (size % kRec) fail("{}: size {} is not a multiple of the 3073-byte CIFAR-10 record", f, size);
      m_start.push_back(m_n);
      m_n += int64_t(size / kRec);
    }
    m_start.push_back(m_n);
    m_c = 3, m_h = 32, m_w = 32;
    m_labels_path = where;
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = empty_chunk(count);
    std::vector<uint8_t> px(size_t(count) * d.sample_size());
    std::vector<int32_t> lab(static_cast<size_t>(count));
    std::vector<uint8_t> rec(kRec);
    for (int64_t i = first; i < first + count;) {
      const size_t f = size_t(std::upper_bound(m_start.begin(), m_start.end(), i) - m_start.begin() - 1);
      std::ifstream in(m_files[f], std::ios::binary);
      in.seekg(std::streamoff((i - m_start[f]) * kRec));
      for (; i < first + count && i < m_start[f + 1]; ++i) {
        if (!in.read(reinterpret_cast<char*>(rec.data()), kRec))
          fail("{}: cannot read record {}", m_files[f], i - m_start[f]);
        lab[size_t(i - first)] = rec[0];
        std::copy(rec.begin() + 1, rec.end(), px.begin() + (i - first) * (kRec - 1));
      }
    }
    d.u8 = std::move(px);
    d.labels = std::move(lab);
    check_labels(d, m_classes, m_path, first);
    return d;
  }

 private:
  std::vector<std::string> m_files;
  std::vector<int64_t> m_start;  // first sample of each file; back() = n
  int64_t m_classes;
};

}  // namespace

std::unique_ptr<Source> open_cifar10(const std::string& where, std::vector<std::string> files, int64_t classes) {
  return std::make_unique<CifarSource>(where, std::move(files), classes);
}

Dataset read_cifar10(const std::string& dir, bool train, int64_t classes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: CIFAR-10 directory not found", dir);
  std::vector<std::string> files;
  if (train) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("data_batch_", 0) == 0 && file_extension(name) == ".bin") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("{}: no data_batch_*.bin files", dir);
  } else {
    const std::string t = (fs::path(dir) / "test_batch.bin").string();
    if (!fs::exists(t, ec)) return Dataset{};
    files.push_back(t);
  }
  CifarSource s(dir, std::move(files), classes);
  return s.read(0, s.size());
}

}  // namespace rs
