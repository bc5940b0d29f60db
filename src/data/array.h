// A read-mostly array whose memory is owned elsewhere: a vector it took over,
// or an MPI shared-memory window that all ranks of a node read (one copy per
// node). Copies share the memory; the owner lives until the last copy goes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

namespace rs {

template <class T> class Array {
 public:
  Array() = default;
  Array(std::vector<T>&& v) {  // NOLINT: implicit, so readers can assign vectors
    auto owner = std::make_shared<std::vector<T>>(std::move(v));
    m_p = owner->data();
    m_n = owner->size();
    m_owner = std::move(owner);
  }
  Array(T* p, size_t n, std::shared_ptr<void> owner) : m_owner(std::move(owner)), m_p(p), m_n(n) {}

  T* data() const { return m_p; }
  size_t size() const { return m_n; }
  bool empty() const { return m_n == 0; }
  T& operator[](size_t i) const { return m_p[i]; }
  T* begin() const { return m_p; }
  T* end() const { return m_p + m_n; }
  bool operator==(const std::vector<T>& v) const { return std::equal(begin(), end(), v.begin(), v.end()); }

 private:
  std::shared_ptr<void> m_owner;
  T* m_p = nullptr;
  size_t m_n = 0;
};

}  // namespace rs
