// `gradstyle align`: FFHQ/e4e alignment of every face of the photos given.
#include "cli/align.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<AlignedFace> align_photo(const io::Image& photo, const std::string& file, const AlignSettings& s) {
  if (s.size < 8 || s.size > 8192) throw UsageError("--size must be in 8..8192, got " + std::to_string(s.size));
  if (s.transform_size < 0 || s.transform_size > 8192) throw UsageError("--transform_size must be in 0..8192");
  std::vector<align::Face> faces =
      align::detect_faces(photo, s.landmarks.empty() ? align::default_landmarks_path() : s.landmarks);
  if (faces.empty()) throw FormatError(io::quoted(file) + ": no face found (dlib's frontal face detector)");
  std::vector<int> order;
  if (s.largest) {
    int best = 0;
    for (int i = 1; i < int(faces.size()); ++i)
      if (faces[size_t(i)].area() > faces[size_t(best)].area()) best = i;
    order.push_back(best);
  } else {
    for (int i = 0; i < int(faces.size()); ++i) order.push_back(i);
  }
  const std::string stem = fs::path(file).stem().string();
  std::vector<AlignedFace> out;
  for (int i : order) {
    AlignedFace f;
    f.face = i;
    f.name = order.size() == 1 && (s.largest || faces.size() == 1) ? stem : stem + "_face" + std::to_string(i);
    f.detection = faces[size_t(i)];
    f.alignment = align::alignment_from_landmarks(f.detection.landmarks);
    align::AlignOptions o;
    o.output_size = int(s.size);
    o.transform_size = int(s.transform_size);
    f.image = align::align_image(photo, f.alignment, o);
    out.push_back(std::move(f));
  }
  return out;
}

json alignment_record(const AlignedFace& f, const std::string& source, const io::Image& photo, int64_t size) {
  json lm = json::array(), quad = json::array();
  for (const auto& p : f.detection.landmarks) lm.push_back({p.x, p.y});
  for (const auto& p : f.alignment.quad) quad.push_back({p.x, p.y});
  json j = {{"source", source},
            {"face", f.face},
            {"box", {f.detection.left, f.detection.top, f.detection.right, f.detection.bottom}},
            {"score", f.detection.score},
            {"landmarks", lm},
            {"quad", quad},
            {"qsize", f.alignment.qsize},
            {"photo_size", {photo.width, photo.height}},
            {"size", size}};
  return j;
}

namespace {
bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp";
}
}  // namespace

int run_align(const AlignArgs& a, std::ostream& out, std::ostream& err) {
  if (a.inputs.empty()) throw UsageError("give the photos (files or folders) to align");
  if (a.save_dir.empty()) throw UsageError("--save_dir is required");
  align::require_dlib();
  std::vector<std::string> files;
  for (const auto& in : a.inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> d;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_regular_file() && is_image(e.path())) d.push_back(e.path().string());
      std::sort(d.begin(), d.end());
      if (d.empty()) throw UsageError(io::quoted(in) + " holds no PNG/JPEG/BMP file");
      files.insert(files.end(), d.begin(), d.end());
    } else if (fs::is_regular_file(in)) {
      files.push_back(in);
    } else {
      throw IOError(io::quoted(in) + " does not exist");
    }
  }
  if (fs::exists(a.save_dir) && !fs::is_directory(a.save_dir))
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " is a file");
  if (fs::exists(a.save_dir) && !fs::is_empty(a.save_dir) && !a.overwrite)
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " exists and is not empty (pass --overwrite)");
  fs::create_directories(a.save_dir);
  // --overwrite: the faces an earlier run recorded go first, so none is left over from it.
  if (const fs::path old = fs::path(a.save_dir) / "alignments.json"; fs::exists(old)) {
    try {
      std::ifstream f(old);
      for (const auto& r : json::parse(f))
        if (r.contains("output") && r["output"].is_string()) {
          const fs::path o = r["output"].get<std::string>();
          if (o.filename() == o && o.extension() == ".png") fs::remove(fs::path(a.save_dir) / o);
        }
    } catch (const json::exception&) {
      // not ours: leave the folder as it is
    }
    fs::remove(old);
  }
  json records = json::array();
  int64_t skipped = 0, written = 0;
  for (const auto& f : files) {
    try {
      const io::Image photo = io::load_image(f);
      const std::vector<AlignedFace> faces = align_photo(photo, f, a.settings);
      for (const auto& face : faces) {
        const fs::path dst = fs::path(a.save_dir) / (face.name + ".png");
        io::save_png(dst.string(), face.image);
        json r = alignment_record(face, f, photo, a.settings.size);
        r["output"] = dst.filename().string();
        records.push_back(r);
        ++written;
      }
      if (!a.quiet)
        out << "align: " << f << ": " << faces.size() << " face" << (faces.size() == 1 ? "" : "s") << " -> "
            << faces.front().name << ".png" << (faces.size() > 1 ? " ..." : "") << "\n";
    } catch (const UsageError&) {
      throw;
    } catch (const IOError&) {
      throw;  // the landmark model, an unwritable folder: not one photo's fault
    } catch (const gradstyle::Error& e) {
      if (!a.keep_going) throw FormatError(std::string(e.what()) + " (--keep-going skips it)");
      err << "skipping " << e.what() << "\n";
      ++skipped;
    }
  }
  {
    const fs::path jp = fs::path(a.save_dir) / "alignments.json";
    std::ofstream js(jp);
    js << records.dump(1) << "\n";
    if (!js) throw IOError("cannot write " + io::quoted(jp.string()));
  }
  out << "align: " << written << " face" << (written == 1 ? "" : "s") << " from " << files.size() - size_t(skipped)
      << " photo" << (files.size() - size_t(skipped) == 1 ? "" : "s") << " -> " << a.save_dir << "/ (alignments.json)\n";
  return skipped > 0 ? 1 : 0;
}

}  // namespace gradstyle::cli
