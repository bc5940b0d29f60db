// A directory of PNG/JPEG files in name order, decoded with stb_image to the
// model's channels (grey = stb's luminance; grey to RGB repeats it; alpha
// dropped) and resized to the model's H x W with stb_image_resize's default
// filter (aspect ratio not kept). An undecodable image is an error naming it.
#pragma once

#include <memory>

#include "data/source.h"

namespace rs {

std::unique_ptr<Source> open_images(const SourceOptions& o);

}  // namespace rs
