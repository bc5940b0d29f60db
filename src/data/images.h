// A directory of PNG/JPEG files in name order, decoded with libpng and
// libjpeg-turbo to the model's channels (grey = BT.601 luminance; grey to RGB
// repeats it; alpha dropped) and resized to the model's H x W with stb_image_resize's default
// filter (aspect ratio not kept). An undecodable image is an error naming it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/source.h"

namespace rs {

std::unique_ptr<Source> open_images(const SourceOptions& o);

// Training data from class folders: `path` holds one subdirectory per class
// (class k = the k-th name in sorted order) with its PNG/JPEG images, decoded
// and resized as above to c x h x w. With class_names empty (a training set)
// they are set from the folders, whose count must be `classes`; given (a test
// set), each folder must be one of them.
Dataset read_image_folders(const std::string& path, int c, int h, int w, int64_t classes,
                           std::vector<std::string>& class_names);

}  // namespace rs
