#pragma once
// `gradstyle align` and the --align of invert/edit: FFHQ alignment of every face in a photo.
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gradstyle/data/align.hpp"

namespace gradstyle::cli {

struct AlignedFace {
  std::string name;          // output stem: <stem> or <stem>_face<k>
  int face = 0;              // index among the photo's faces (detector order)
  align::Face detection;
  align::Alignment alignment;
  io::Image image;           // the aligned square
};
struct AlignSettings {
  std::string landmarks;     // empty: align::default_landmarks_path()
  int64_t size = 1024;
  int64_t transform_size = 0;
  bool largest = false;
};
// Every face of the photo aligned (or the largest). Throws FormatError naming the file when dlib
// finds no face.
std::vector<AlignedFace> align_photo(const io::Image& photo, const std::string& file, const AlignSettings& s);
// {"source", "face", "box", "score", "landmarks", "quad", "qsize", "photo_size", "size"}: what
// alignments.json and the latents' metadata keep per face.
nlohmann::json alignment_record(const AlignedFace& f, const std::string& source, const io::Image& photo, int64_t size);

struct AlignArgs {
  std::vector<std::string> inputs;  // files or folders
  std::string save_dir;
  AlignSettings settings;
  bool overwrite = false;
  bool keep_going = false;
  bool quiet = false;
};
// Writes SAVE/<stem>.png (or <stem>_face<k>.png) and SAVE/alignments.json. Exit code 1 when
// --keep-going skipped a file.
int run_align(const AlignArgs& a, std::ostream& out, std::ostream& err);

}  // namespace gradstyle::cli
