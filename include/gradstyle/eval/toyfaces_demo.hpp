#pragma once
// The toyfaces bundle (the project's embedded default: a StyleGAN2, an e4e encoder, a GradStyle
// network and InterFaceGAN-style directions, all trained from scratch on toyfaces with this
// engine; docs/toyfaces.md) and the ground-truth benchmark run on it by `gradstyle demo`.
//
//   auto b = eval::ToyBundle::load("models/toyfaces");        // checks every file's CRC-32
//   eval::DemoOptions o;  o.identities = 6;
//   eval::DemoResult r = eval::run_toyfaces_demo(b, o);      // images and metrics
//
// Bundle folder: manifest.json ({"format": "gradstyle-toyfaces-bundle-1", "files": {name: {"bytes",
// "crc32"}}, "edits": {attr: delta}, "training": {...}}), generator.safetensors (g_ema.* and
// latent_avg), encoder.safetensors (encoder.* and latent_avg), gradstyle.safetensors (a
// GradStyleNet checkpoint) and directions.safetensors (per attribute a unit direction "<attr>"
// [1, style_dim] and "<attr>.scale" [1]: the attribute change per unit step along it); optionally
// toyid.safetensors, the toy identity network (a `toyid`-stage Backbone), which adds the ID column
// (cosine similarity of the toy-ID embeddings of result and truth) to every metric row.
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/tensor.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/stylegan2.hpp"

namespace gradstyle::eval {

// The demo's source expression: yaw 0, smile 0, eye openness 0.8, age 0.1 (edits start from it).
data::toyfaces::ToyEdit neutral_edit();
// Renders identity i with edit i at size x size: [N, 3, size, size] in [-1, 1] (network input).
Tensor render_batch(const std::vector<data::toyfaces::ToyIdentity>& ids,
                    const std::vector<data::toyfaces::ToyEdit>& edits, int size);

struct Direction {
  Tensor n;        // [1, style_dim], unit norm
  double scale = 0;  // d(predicted attribute) / d(step along n)
  double r2 = 0;     // fit quality on the fitting set (coefficient of determination)
};

// Fits one direction per toyfaces edit attribute (yaw, smile, eye_openness, age) InterFaceGAN-style
// on encoder codes: `n` training toyfaces (identities train_index(offset + k), edits drawn by
// sample_edit) are encoded, their W+ averaged over rows, and the attribute regressed linearly on
// the code (ridge, lambda = 1e-3 times the mean code variance). The normal of the regression
// hyperplane is the direction. (InterFaceGAN fits a linear SVM to binarised labels; the toy labels
// are continuous and exact, so least squares gives the same kind of hyperplane and, with it, a
// calibrated step size.)
std::map<std::string, Direction> fit_directions(models::e4e::Encoder4Editing& E, int64_t n, uint64_t seed = 0,
                                                uint64_t offset = 900000);

struct ToyBundle {
  std::unique_ptr<models::stylegan2::Generator> G;
  std::unique_ptr<models::e4e::Encoder4Editing> E;
  std::unique_ptr<models::gsnet::GradStyleNet> net;
  std::unique_ptr<models::arcface::ArcFaceID> id;  // the toy identity network; null when the bundle has none
  std::map<std::string, Direction> directions;
  std::map<std::string, double> edit_delta;  // the demo's attribute change per edit
  std::string dir;
  std::string manifest_text;

  // Throws IOError (missing folder or file: the message says how to rebuild it), FormatError (a
  // CRC-32 or size that differs from the manifest: a corrupted or replaced file) and what the
  // model loaders throw.
  static ToyBundle load(const std::string& dir, Device device = Device::cpu());
};

// Writes a bundle folder from trained checkpoints: G (stylegan2-stage checkpoint), E (e4e-stage
// checkpoint), the GradStyle network file, directions fitted on `fit_n` toyfaces; weights stored as
// float16 when `f16`. `training` is recorded in the manifest as it is (a JSON object text). With
// f16 a float32 copy is run first and the largest relative change of the demo's metrics is recorded
// ("f16_check"); then the demo's own numbers ("demo_metrics", and "ci_metrics" for 2 identities).
void write_bundle(const std::string& out_dir, const std::string& generator_ckpt, const std::string& encoder_ckpt,
                  const std::string& gradstyle_ckpt, int64_t fit_n, bool f16, const std::string& training_json);

// Adds the toy identity network `toyid_file` (a `toyid`-stage toyid.safetensors) to the bundle in
// `dir`: copies it as toyid.safetensors, lists it in the manifest with `info` (a JSON object text:
// how it was trained and what it reached) under "toyid", and records the demo's numbers again
// (demo_metrics, ci_metrics), now with the ID column; the other files are not touched, so L2, PSNR
// and SSIM stay as they were. Throws what ToyBundle::load and the loaders throw, and ValueError when
// the network's input size is not the bundle's image size.
void add_toyid(const std::string& dir, const std::string& toyid_file, const std::string& info_json);

struct DemoOptions {
  int64_t identities = 6;  // held-out identities heldout_index(0 .. identities-1)
  uint64_t seed = 0;       // toyfaces stream
  std::vector<std::string> attributes{"smile", "age", "yaw", "eye_openness"};
};

// One row of the metrics table: a method on a task, averaged over the identities.
struct MetricRow {
  std::string task;    // "reconstruction" or "edit:<attr>"
  std::string method;  // "e4e" or "GradStyle"
  double l2 = 0, psnr = 0, ssim = 0;  // eval/metrics.hpp (SPEC D.2), on uint8-quantised images
  // Toy-ID cosine similarity to the truth, mean over identities (NaN: the bundle has no ID network).
  double id = std::numeric_limits<double>::quiet_NaN();
};

struct DemoResult {
  Tensor source;                         // [N, 3, S, S]
  Tensor e4e_rec, gs_rec;                // reconstructions
  std::vector<std::string> attributes;
  std::vector<Tensor> truth, e4e_edit, gs_edit;  // per attribute, [N, 3, S, S] (truth: rendered; undefined without one)
  std::vector<MetricRow> rows;
  double seconds = 0;
};

// Renders the held-out sources, inverts them with e4e and with GradStyle, applies each attribute's
// edit (delta from the bundle, as a step delta / scale along its direction) and compares every
// image with the ground truth: the source for reconstruction, the same identity rendered with the
// edited attribute for edits.
DemoResult run_toyfaces_demo(ToyBundle& b, const DemoOptions& o);

// The same on the user's images [N, 3, S, S] in [-1, 1] at the bundle's resolution: inversions and
// edits, a reconstruction metric row per method, no ground truth for edits (truth entries are
// undefined tensors). Throws ShapeError for another shape.
DemoResult run_demo_on_images(ToyBundle& b, const Tensor& images, const std::vector<std::string>& attributes);

// The largest relative change of any L2 or SSIM value of `r` against the numbers `write_bundle`
// recorded in the manifest for the same run size (demo_metrics for the default size, ci_metrics
// for the reduced one), or -1 when the manifest has none for that size. Throws FormatError when
// the recorded rows do not line up with the demo's.
double max_relative_change(const ToyBundle& b, const DemoResult& r, int64_t identities);

}  // namespace gradstyle::eval
