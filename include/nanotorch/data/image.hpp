// nanotorch/data/image.hpp — opt-in image loading (PNG, JPEG, BMP via stb_image) and the
// preprocessing that turns a picture of a digit into a network input.
//
// data/image_decode.hpp: Image, ImageLimits, is_image(), decode_image(), read_image().
// data/image_input.hpp: GrayImage, to_grayscale(), idx_image(), resize_area(), resize_nearest(),
//   border_mean(), to_ink(), mnist_normalize(), rgba_canvas(), image_to_mnist(),
//   image_to_canvas(), idx_to_mnist(), idx_to_canvas().
// The umbrella header does not include this file, so users who never load images never compile
// stb's decoders.
#pragma once

#include <nanotorch/data/image_decode.hpp>
#include <nanotorch/data/image_input.hpp>
