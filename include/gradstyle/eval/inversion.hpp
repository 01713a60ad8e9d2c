#pragma once
// Inversion and editing behind one interface, whatever the user's checkpoint is (what `gradstyle
// invert` and `gradstyle edit` run; embedders call it directly):
//
//   auto m = eval::InversionModel::load("e4e_ffhq_encode.pt");          // or a GradStyle file, a bundle
//   Tensor x = eval::InversionModel::prepare(io::load_image("face.png"), m.input_size());
//   auto inv = m.invert(x);                                           // inv.w [1, 18, 512], inv.image
//   Tensor d = m.direction("age", {.directions_dir = "editings/interfacegan_directions"});
//   Tensor img = m.render(models::editing::interfacegan_edit(inv.w, d, 3.0), inv);  // the edited image
//
// Kinds of checkpoint (detected, never guessed from the file name):
// - E4E: an original e4e checkpoint (e4e_ffhq_encode.pt: state_dict with encoder.* and decoder.*,
//   opts, latent_avg), or an encoder-only file (our e4e stage, a bare state dict) with a separate
//   generator. The edit is latent-only: G(w_hat) with const noise.
// - GradStyle: a GradStyle network file (format "gradstyle-net"); its frozen e4e and generator
//   come from the paths given, else the paths recorded in the file, else generator.safetensors /
//   encoder.safetensors beside it. Edits run the editing stream with the inversion's residuals
//   F_m (SPEC B.6).
// - Bundle: a toyfaces bundle folder (models/toyfaces: manifest.json, CRC-checked): GradStyle plus
//   its own fitted directions (age, smile, yaw, eye_openness).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/io/image.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/stylegan2.hpp"

namespace gradstyle::eval {

enum class ModelKind { E4E, GradStyle, Bundle };
const char* model_kind_name(ModelKind k);  // "e4e", "gradstyle", "toyfaces bundle"

struct InversionLoadOptions {
  std::string generator;  // overrides where G comes from (any rosinality-layout checkpoint)
  std::string generator_key;  // its entry; "" = g_ema, or state_dict.decoder for e4e files
  std::string encoder;    // overrides the e4e checkpoint of a GradStyle file
  Device device = Device::cpu();
};

struct Inversion {
  Tensor w;      // W+ [B, n_latent, style_dim], latent_avg included (e4e's get_latents)
  Tensor image;  // [B, 3, size, size] in [-1, 1]: G(w) for e4e, X^r for GradStyle
  std::vector<Tensor> F;  // GradStyle: the residuals F_m the editing stream aligns (empty for e4e)
};

// Where an edit's direction comes from (direction()).
struct DirectionSource {
  std::string file;            // one tensor (.pt, .npy, .npz, .safetensors): [D], [1, D], [N, D], [1, N, D]
  std::string directions_dir;  // <dir>/<attribute>.pt (e4e's interfacegan_directions/)
};

class InversionModel {
 public:
  ModelKind kind = ModelKind::E4E;
  std::string path;  // the checkpoint (or bundle folder) as given
  std::unique_ptr<models::stylegan2::Generator> G;
  std::unique_ptr<models::e4e::Encoder4Editing> E;
  std::unique_ptr<models::gsnet::GradStyleNet> net;  // GradStyle and Bundle
  // Bundle: the unit directions [1, D] and their attribute-per-step scales.
  std::map<std::string, Tensor> bundle_directions;
  std::map<std::string, double> bundle_scales;
  std::string generator_source, encoder_source;  // where G and E were read from

  // Detects the kind and loads every part (eval mode, frozen). UsageError-free: throws IOError
  // (missing file), FormatError (a file that is none of the kinds, or whose parts are missing: the
  // message says which option supplies them) and what the model loaders throw.
  static InversionModel load(const std::string& path, const InversionLoadOptions& opts = {});

  int64_t input_size() const { return E->config().input_size; }  // the encoder's input (256 for FFHQ)
  int64_t output_size() const { return G->config().size; }
  int64_t n_latent() const { return G->n_latent(); }
  int64_t style_dim() const { return G->config().style_dim; }
  Device device() const { return device_; }
  // "e4e, 1024 px, 18 x 512 W+, encoder input 256, cpu" (no file facts).
  std::string describe() const;

  // An 8-bit RGB image as the encoder's input: PIL-exact bilinear resize to size x size, then
  // e4e's normalisation ((v / 255 - 0.5) / 0.5). [1, 3, size, size] float32 on the CPU.
  static Tensor prepare(const io::Image& img, int64_t size);

  // x [B, 3, S, S] in [-1, 1] (S = input_size(); other sizes are resized by the encoder).
  // with_image = false computes the codes only (e4e; GradStyle needs the images for F anyway).
  Inversion invert(const Tensor& x, bool with_image = true);
  // The image of an edited code: G(w_hat) with const noise (e4e), or the editing stream with the
  // inversion's residuals (GradStyle, Bundle). w_hat [B, n_latent, style_dim] with B = the inversion's.
  Tensor render(const Tensor& w_hat, const Inversion& inv) const;
  // G(w) with const noise: latent-only rendering (any kind).
  Tensor synthesize(const Tensor& w) const;

  // An InterFaceGAN direction on this generator's W+ as float32 on the model's device: the file
  // given, else a bundle direction of that name, else <directions_dir>/<attribute>.pt. Checked
  // against n_latent x style_dim. FormatError / ShapeError / IOError naming the file.
  Tensor direction(const std::string& attribute, const DirectionSource& src) const;
  // Bundle directions are unit vectors; an edit of `degree` attribute units steps degree / scale.
  // For other kinds the degree is the step itself (e4e's InterFaceGAN convention).
  double step_for(const std::string& attribute, double degree, const DirectionSource& src) const;

 private:
  Device device_ = Device::cpu();
};

// Reads one tensor from any checkpoint format as float32 (a dict with a single tensor is accepted).
Tensor load_single_tensor(const std::string& path, const std::string& what, Device device = Device::cpu());

}  // namespace gradstyle::eval
