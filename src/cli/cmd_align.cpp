// `gradstyle align`: options and help; the work is in align.cpp.
#include <CLI/CLI.hpp>

#include "cli/align.hpp"
#include "cli/command.hpp"

namespace gradstyle::cli {
namespace {

class AlignCommand final : public Command {
 public:
  std::string name() const override { return "align"; }
  std::string summary() const override { return "FFHQ-align the faces of photos (dlib landmarks, as e4e's align_face)"; }
  std::string usage() const override {
    return "usage: gradstyle align PHOTO|DIR ... --save_dir O [--size 1024] [--transform_size N] [--landmarks FILE]\n"
           "                       [--largest] [--keep-going] [--overwrite]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "dlib's frontal face detector (the photo upsampled once) and its 68-point shape predictor give\n"
        "the landmarks; eye and mouth centres give the oriented square of FFHQ's align_face, which is cut\n"
        "out (reflect-padded and blurred where it leaves the photo) and resampled to --size. Every face\n"
        "is written (O/<stem>_face0.png, ...; O/<stem>.png when there is one, or with --largest), and\n"
        "O/alignments.json keeps each face's landmarks and quad (what edit --paste-back uses).\n"
        "The landmark model is Debian's libdlib-data file unless --landmarks is given.\n\n"
        "Examples:\n"
        "  gradstyle align photo.jpg --save_dir aligned/ --size 256\n"
        "  gradstyle align photos/ --save_dir aligned/ --largest --keep-going");
    sub.add_option("inputs", a_.inputs, "Photos or folders of photos")->required();
    sub.add_option("--save_dir,--save-dir", a_.save_dir, "Output folder")->required();
    sub.add_option("--size", a_.settings.size, "Side of the aligned square (FFHQ 1024, e4e 256)")->capture_default_str();
    sub.add_option("--transform_size,--transform-size", a_.settings.transform_size,
                   "Resample to this size first, then Lanczos to --size (FFHQ: 4096; 0 = --size)")
        ->capture_default_str();
    sub.add_option("--landmarks", a_.settings.landmarks,
                   "dlib 68-point model (default /usr/share/dlib/shape_predictor_68_face_landmarks.dat)");
    sub.add_flag("--largest", a_.settings.largest, "Only the largest face of each photo");
    sub.add_flag("--keep-going,--keep_going", a_.keep_going, "Skip photos with no face (exit status 1 at the end)");
    sub.add_flag("--overwrite", a_.overwrite, "Write into a non-empty --save_dir");
    sub.add_flag("--quiet", a_.quiet, "No line per photo");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_align(a_, out, err); }

 private:
  AlignArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_align_command() { return std::make_unique<AlignCommand>(); }

}  // namespace gradstyle::cli
