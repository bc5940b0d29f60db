// CIFAR-10 binary: records of 1 label byte + 3x32x32 pixel bytes, in one or
// more .bin files read in the given order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/source.h"

namespace rs {

// `files` in order; `where` names the input in messages.
std::unique_ptr<Source> open_cifar10(const std::string& where, std::vector<std::string> files, int64_t classes);

// Training data: `dir`/data_batch_*.bin (train) or `dir`/test_batch.bin (empty if absent).
Dataset read_cifar10(const std::string& dir, bool train, int64_t classes);

}  // namespace rs
