#pragma once
// `gradstyle invert` and `gradstyle edit` (docs/cli.md): folders of photos through
// eval::InversionModel, with e4e's conventions for inputs, outputs and file names.
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gradstyle::cli {

// What both commands share: the model and the inputs.
struct InversionArgs {
  std::string checkpoint;         // e4e .pt, GradStyle network, or a toyfaces bundle folder
  std::string generator, generator_key, encoder;  // overrides (InversionLoadOptions)
  std::string images_dir;
  std::string save_dir;
  int64_t batch = 1;
  int64_t n_sample = 0;           // 0 = every image
  std::string device = "auto";
  bool overwrite = false;         // write into a non-empty save_dir
  bool keep_going = false;        // skip unreadable images (exit status 1 at the end)
  bool quiet = false;
  // --align: FFHQ-align every face dlib finds first (gradstyle align); several faces become
  // <stem>_face0, <stem>_face1 ... unless largest. The quads go into latents.safetensors.
  bool align = false;
  bool largest = false;
  int64_t align_size = 256;       // e4e aligns to 256 px
  std::string landmarks;          // 68-point model (default: Debian's libdlib-data path)
};

struct InvertArgs : InversionArgs {
  bool latents_only = false;
  bool resize_outputs = false;    // inversions at 256 px (e4e's face_pool) instead of G's size
};
// Writes SAVE/latents.safetensors ("latents" [N, n_latent, D] F32; metadata "names" = the JSON
// list of source files in order, "checkpoint", "kind") and SAVE/inversions/00001.png ... Returns the
// exit code (1 when --keep-going skipped an image).
int run_invert(const InvertArgs& a, std::ostream& out, std::ostream& err);

struct EditArgs : InversionArgs {
  std::string latents;            // instead of images: latents.safetensors of `invert` (e4e only)
  std::string edit_attribute;     // age, smile, pose (InterFaceGAN), eyes, lip, beard (GANSpace), bundle names
  std::string direction;          // a direction file (then edit_attribute only names the output)
  std::string directions_dir;     // <dir>/<attribute>.pt
  std::string ganspace_pca;       // ffhq_pca.pt (default <directions_dir>/ffhq_pca.pt)
  std::string ganspace;           // "idx,start,end,strength"
  std::string edit_degree;        // one number (kept as text: it names the output folder)
  std::string range;              // "a:b:step" sweep
  bool paste_back = false;        // with --align: also SAVE/<A>_<X>_pasted/ at the photo's size
  double feather = 0.1;           // paste-back mask ramp, a fraction of the face square's side
};
// Writes SAVE/inversion/00001.png, SAVE/<attribute>_<degree>/00001.png per degree and
// SAVE/grids/00001.png (source | inversion | edits). Returns the exit code.
int run_edit(const EditArgs& a, std::ostream& out, std::ostream& err);

}  // namespace gradstyle::cli
