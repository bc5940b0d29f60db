// DIR/study.journal: the sweep's results not yet compacted into study.h5.
// One record a line, "<CRC-32 of the JSON, 8 hex digits> <JSON>\n":
//   {"seq": 0, "format": "ranksweep-study-journal", "config": ..., "keys": [...]}   first
//   {"seq": n, "sweep_seconds": s, "row": {...}, "curves": {metric: [...]}}          a finished job
// A row holds the study's columns, its hyperparameters as "key=value" lines
// (params_text: floats to the bit); a number that is not finite is written as
// the string "nan", "inf" or "-inf". A job's record replaces its trial's row
// (a promotion) or adds one, in arrival order.
//
// The coordinator appends each batch of results with one write and an
// fdatasync: O(1) per result. It rewrites study.h5 from memory (compaction)
// now and then and at the end; study.h5's journal_seq attribute is the last
// record it holds, so a record at or below it is skipped when read (a kill
// between the rename and the journal's reset loses nothing and counts
// nothing twice). Readers stop at the first line that is cut short or fails
// its CRC (an append torn by a kill): every record before it is kept.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sweep/study.h"

namespace rs {

// DIR/study.journal for DIR/study.h5 (empty for a file of another name: a
// copied or renamed study has no journal).
std::string journal_path(const std::string& study_path);

// Applies the journal's records after s.journal_seq to s (config and keys
// from its header when s has none); false if there is no journal (or it is
// empty). A damaged header: exit 2 naming the file; a damaged record ends
// the reading.
bool apply_journal(const std::string& path, Study& s);

class Journal {
 public:
  Journal() = default;
  // Starts the journal afresh (its header from s), its records numbered after s.journal_seq.
  Journal(std::string path, const Study& s);
  ~Journal();
  Journal(Journal&& o) noexcept { *this = std::move(o); }
  Journal& operator=(Journal&& o) noexcept {
    std::swap(m_path, o.m_path), std::swap(m_fd, o.m_fd), std::swap(m_seq, o.m_seq), std::swap(m_records, o.m_records);
    return *this;
  }

  // Appends one record per row (with its curves from s) in one write, then fdatasync.
  void append(const Study& s, const std::vector<const TrialRow*>& rows);
  // After study.h5 holds every record: the journal starts afresh, or is removed (the sweep's end).
  void reset(const Study& s);
  void remove();
  int64_t seq() const { return m_seq; }
  size_t records() const { return m_records; }

 private:
  void write_all(const std::string& bytes);
  std::string m_path;
  int m_fd = -1;
  int64_t m_seq = 0;
  size_t m_records = 0;  // since the last reset
};

}  // namespace rs
