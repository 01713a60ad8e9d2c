// This build has no dlib: face detection says how to get it; the rest of alignment works.
#include "gradstyle/core/error.hpp"
#include "gradstyle/data/align.hpp"

namespace gradstyle::align {

bool have_dlib() { return false; }
std::string default_landmarks_path() { return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"; }

void require_dlib() {
  throw ValueError(
      "face alignment needs dlib, and this build has none: install it (apt-get install libdlib-dev libdlib-data, "
      "or tools/setup) and rebuild (meson option -Ddlib=auto finds it)");
}

std::vector<Face> detect_faces(const io::Image&, const std::string&) {
  require_dlib();
  return {};
}

}  // namespace gradstyle::align
