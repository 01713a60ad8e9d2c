// Face detection with dlib: the HOG frontal face detector on the image upsampled once (what the
// Python binding's detector(img, 1) does in e4e's get_landmark), then the 68-point shape predictor
// on the original image.
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/serialize.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "gradstyle/core/error.hpp"
#include "gradstyle/data/align.hpp"

namespace gradstyle::align {

bool have_dlib() { return true; }
void require_dlib() {}
std::string default_landmarks_path() { return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"; }

namespace {
// Loading the 95 MB model takes a while: keep each one loaded once per process.
const dlib::shape_predictor& predictor(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, dlib::shape_predictor> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  if (!std::filesystem::is_regular_file(path))
    throw IOError("landmark model " + path + " not found (Debian's libdlib-data installs it; or give --landmarks FILE)");
  dlib::shape_predictor sp;
  try {
    dlib::deserialize(path) >> sp;
  } catch (const std::exception& e) {
    throw FormatError("landmark model " + path + " is not a dlib shape predictor: " + e.what());
  }
  if (sp.num_parts() != 68)
    throw FormatError("landmark model " + path + " predicts " + std::to_string(sp.num_parts()) +
                      " points; alignment needs the 68-point model");
  return cache.emplace(path, std::move(sp)).first->second;
}
}  // namespace

std::vector<Face> detect_faces(const io::Image& img, const std::string& landmarks_model) {
  if (img.channels != 3) throw ValueError("detect_faces: expects an RGB image");
  const dlib::shape_predictor& sp = predictor(landmarks_model);
  dlib::array2d<dlib::rgb_pixel> rgb(img.height, img.width);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) rgb[y][x] = dlib::rgb_pixel(img.at(x, y, 0), img.at(x, y, 1), img.at(x, y, 2));
  dlib::array2d<dlib::rgb_pixel> up;
  dlib::pyramid_down<2> pyr;
  dlib::pyramid_up(rgb, up, pyr);
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  std::vector<dlib::rect_detection> dets;
  detector(up, dets);  // with each detection's confidence (the HOG filter's score above its threshold)
  std::vector<Face> faces;
  for (const auto& d : dets) {
    const dlib::rectangle r = pyr.rect_down(d.rect);
    const dlib::full_object_detection shape = sp(rgb, r);
    Face f;
    f.score = d.detection_confidence;
    f.left = int(r.left()), f.top = int(r.top()), f.right = int(r.right()), f.bottom = int(r.bottom());
    for (unsigned i = 0; i < 68; ++i) f.landmarks[i] = {double(shape.part(i).x()), double(shape.part(i).y())};
    faces.push_back(f);
  }
  return faces;
}

}  // namespace gradstyle::align
