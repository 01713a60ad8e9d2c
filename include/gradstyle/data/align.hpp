#pragma once
// FFHQ face alignment (the procedure of FFHQ's and e4e's align_face) and paste-back.
//
//   68 landmarks -> eye and mouth centres -> an oriented square quad -> (shrink, crop, reflect-pad
//   with blur) -> PIL QUAD transform to transform_size -> Lanczos resize to output_size.
//
// Everything but the landmark detector is plain code here and always built. The detector is
// dlib's frontal face detector and 68-point shape predictor (Debian's libdlib-dev and
// libdlib-data); it is compiled in when meson finds dlib (option -Ddlib=auto|enabled|disabled),
// and detect_faces() says how to enable it when it is not.
#include <array>
#include <string>
#include <vector>

#include "gradstyle/io/image.hpp"

namespace gradstyle::align {

struct Point {
  double x = 0, y = 0;
};
inline Point operator+(Point a, Point b) { return {a.x + b.x, a.y + b.y}; }
inline Point operator-(Point a, Point b) { return {a.x - b.x, a.y - b.y}; }
inline Point operator*(Point a, double s) { return {a.x * s, a.y * s}; }
using Landmarks = std::array<Point, 68>;   // dlib's iBUG 300-W order, pixel coordinates
using Quad = std::array<Point, 4>;         // FFHQ order: c-x-y, c-x+y, c+x+y, c+x-y (tl, bl, br, tr)

struct Face {
  Landmarks landmarks{};
  int left = 0, top = 0, right = 0, bottom = 0;  // the detector's box
  double score = 0;  // the detector's confidence (HOG score above its threshold; false hits are often < 0.3)
  int64_t area() const { return int64_t(right - left) * int64_t(bottom - top); }
};

// Whether this build has the dlib detector.
bool have_dlib();
// Throws ValueError saying how to enable dlib when the build has none; returns otherwise.
void require_dlib();
// Debian's path of the 68-landmark model (libdlib-data).
std::string default_landmarks_path();
// Every face dlib finds (upsampling once, as e4e's get_landmark does), in the detector's order.
// Throws ValueError naming how to enable dlib when the build has none; IOError/FormatError when the
// model file is missing or not a shape predictor.
std::vector<Face> detect_faces(const io::Image& img, const std::string& landmarks_model);

// The oriented crop square of align_face, in the photo's pixel coordinates.
struct Alignment {
  Quad quad{};
  double qsize = 0;  // hypot(x) * 2: the side of the square
};
Alignment alignment_from_landmarks(const Landmarks& lm);

struct AlignOptions {
  int output_size = 1024;
  int transform_size = 0;   // 0: the output size (FFHQ uses 4096 for 1024, e4e 256 for 256)
  bool enable_padding = true;
};
// align_face's image half: the photo cut along the quad (reflect-padded and blurred where the quad
// leaves it), as an output_size square RGB image.
io::Image align_image(const io::Image& photo, const Alignment& a, const AlignOptions& opt = {});

// The aligned face (any square size) warped back into the photo along the quad: the output has the
// photo's size and equals it exactly outside the quad. Inside, the face is blended in with a mask
// that is 1 in the middle of the square and falls linearly to 0 over `feather` (a fraction of the
// square's side) at its edges.
io::Image paste_back(const io::Image& photo, const io::Image& aligned, const Quad& quad, double feather = 0.1);

}  // namespace gradstyle::align
