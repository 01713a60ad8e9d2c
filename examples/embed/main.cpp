// embed: the smallest program an embedder writes: load a generator, render one face, save it.
//   embed BUNDLE_DIR OUT.png    (BUNDLE_DIR: models/toyfaces, or share/gradstyle/toyfaces installed)
// Built against gradstyle_dep alone in the meson tree, and against an installed gradstyle through
// `pkg-config --cflags --libs gradstyle` by tools/test: the public headers must stand on their own.
#include <cmath>
#include <cstdio>

#include "gradstyle/gradstyle.hpp"

#if __has_include("backend/kernels.hpp") || __has_include("cli/commands.hpp") || __has_include(<Eigen/Core>) || \
    __has_include(<stb_image.h>)
#error "the include path holds src/, Eigen or stb: embedders must see gradstyle's include/ only"
#endif

int main(int argc, char** argv) {
  using namespace gradstyle;
  if (argc != 3) return std::fprintf(stderr, "usage: embed BUNDLE_DIR OUT.png\n"), 2;
  try {
    autograd::NoGradGuard no_grad;
    eval::ToyBundle b = eval::ToyBundle::load(argv[1]);  // checks every file's CRC-32
    const Tensor z = Tensor::randn({1, b.G->config().style_dim}, /*seed=*/1);
    const Tensor img = b.G->forward_z(z);                // [1, 3, H, W], about [-1, 1]
    const io::Image png = io::tensor_to_image(img);
    io::save_png(argv[2], png);
    double mean = 0, var = 0;
    for (uint8_t v : png.pixels) mean += v / double(png.pixels.size());
    for (uint8_t v : png.pixels) var += (v - mean) * (v - mean) / double(png.pixels.size());
    std::printf("embed: %dx%d face -> %s (mean %.1f, std %.1f)\n", png.width, png.height, argv[2], mean, std::sqrt(var));
    return std::sqrt(var) > 10 ? 0 : 1;  // a blank or flat image means something is broken
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
}
