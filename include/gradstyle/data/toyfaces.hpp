#pragma once
// toyfaces: a procedural face domain with ground truth (docs/toyfaces.md).
//
// An identity (face shape, colours, hair, brows, freckles, glasses, hat, background, ...) is drawn
// from Philox counters (seed, index), so identity i of seed s is the same everywhere and can be
// made without making the ones before it. An edit (yaw, smile, eye openness, age) is applied at
// render time: the same identity rendered with another edit value is the ground-truth edited
// image. Rendering is analytic-coverage anti-aliased, deterministic and CPU-only.
//
// Coordinates: the image spans [0,1]^2 (x right, y down) at any size; a pixel is 1/size wide.
#include <cstdint>
#include <string>
#include <vector>


#include "gradstyle/core/tensor.hpp"
#include "gradstyle/io/image.hpp"

namespace gradstyle::data::toyfaces {

struct Rgb {
  double r = 0, g = 0, b = 0;  // each in [0, 1]
};

// A dot fixed to the face surface: u in [-1,1] is the horizontal position as a fraction of the
// face half-width (frontal view), v the vertical one as a fraction of the face half-height
// (0 = face centre, +1 = chin), radius in image units.
struct Spot {
  double u = 0, v = 0, radius = 0;
};

enum class HairStyle { Bald, Short, Long, Bob, SidePart, Curly, Bun };
enum class Glasses { None, Round, Square };
enum class Earrings { None, Stud, Hoop };
enum class Background { Stripes, Checker, Dots, Noise };

const char* name(HairStyle s);
const char* name(Glasses g);
const char* name(Earrings e);
const char* name(Background b);

struct ToyIdentity {
  // Head (image units): centre of the face outline and its half-width / half-height.
  double head_x = 0.5, head_y = 0.47;
  double face_rx = 0.25, face_ry = 0.31;
  double jaw = 0.5;  // [0,1]: 0 = pointed chin, 1 = square jaw
  Rgb skin;
  // Hair: style, colour, volume [0,1] (how far it stands off the head).
  HairStyle hair_style = HairStyle::Short;
  Rgb hair;
  double hair_volume = 0.5;
  // Eyes: iris colour; size = half-width as a fraction of face_rx; spacing = |u| of each eye
  // centre; height = v of the eye line.
  Rgb eye_color;
  double eye_size = 0.2, eye_spacing = 0.4, eye_height = -0.12;
  // Brows: thickness (image units), tilt (+ = outer ends up), arch [0,1], colour.
  double brow_thickness = 0.012, brow_tilt = 0.0, brow_arch = 0.5;
  Rgb brow_color;
  // Nose (fractions of the face half-size) and mouth.
  double nose_length = 0.3, nose_width = 0.16;
  double mouth_width = 0.36, lip_thickness = 0.012;  // width: fraction of face_rx; thickness: image units
  Rgb lip_color;
  // Fine details, in a fixed per-identity pattern.
  std::vector<Spot> freckles;  // small, faint, on cheeks and nose
  std::vector<Spot> moles;     // larger, dark
  Earrings earrings = Earrings::None;
  Rgb earring_color;
  Glasses glasses = Glasses::None;
  Rgb glasses_color;
  bool hat = false;  // a striped beanie
  Rgb hat_color_a, hat_color_b;
  int hat_stripes = 4;
  // Background texture: two colours, frequency (cycles per image), angle (radians), noise seed.
  Background background = Background::Stripes;
  Rgb bg_color_a, bg_color_b;
  double bg_frequency = 4, bg_angle = 0;
  uint32_t bg_seed = 0;
  Rgb shirt;
};

// Edits, applied at render time. Ranges are closed; render() refuses values outside them.
struct ToyEdit {
  double yaw = 0;             // [-1, 1]: head turn, +1 = 30 degrees with the face turned to the image's right
  double smile = 0;           // [-1, 1]: -1 frown, 0 neutral, +1 broad open smile (cheeks lifted)
  double eye_openness = 0.7;  // [0, 1]: 0 closed, 1 wide open
  double age = 0;             // [0, 1]: 0 young, 1 old (wrinkles, greyer hair)
};

// The edit attributes by name ("yaw", "smile", "eye_openness", "age").
struct EditRange {
  const char* name;
  double lo, hi;
};
const std::vector<EditRange>& edit_ranges();
// Reference to the named field; ValueError on an unknown name (the message lists the names).
double& edit_field(ToyEdit& e, const std::string& attr);
double edit_field(const ToyEdit& e, const std::string& attr);
// ValueError naming the field, its range and the value when one is outside its range or NaN.
void check_edit(const ToyEdit& e);

// Held-out identities: every index >= kHeldoutBegin. Training uses indices below it only.
inline constexpr uint64_t kHeldoutBegin = 1'000'000;
inline bool is_heldout(uint64_t index) { return index >= kHeldoutBegin; }
// Index of the k-th training / held-out identity (ValueError when k is past the training range).
uint64_t train_index(uint64_t k);
inline uint64_t heldout_index(uint64_t k) { return kHeldoutBegin + k; }

// Identity `index` of stream `seed` (pure function of both).
ToyIdentity sample_identity(uint64_t seed, uint64_t index);
// The edit that goes with identity `index` for training data: yaw and smile uniform in [-1,1],
// eye openness 1 - 0.9 u^2 (mostly open), age uniform in [0,1]. Independent of the identity draw.
ToyEdit sample_edit(uint64_t seed, uint64_t index);

// Pixel positions (image units) of the projected features for an edit; what render() uses.
struct FeatureLayout {
  double eye_l_x, eye_r_x, eye_y;  // eye centres (left / right in the image)
  double nose_x, nose_y;           // nose tip
  double mouth_x, mouth_y;         // mouth centre
  double mouth_half_width;
  double hairline_y;  // top of the forehead at the face centre line
};
FeatureLayout layout(const ToyIdentity& id, const ToyEdit& e);

// [3, size, size] float32 on the CPU, values in [0, 1]. size >= 16 (ValueError otherwise).
Tensor render(const ToyIdentity& id, const ToyEdit& e, int size = 64);
// The same pixels into caller memory: chw holds 3 * size * size floats.
void render_into(const ToyIdentity& id, const ToyEdit& e, int size, float* chw);
// The same pixels as 8-bit RGB (round(v * 255)).
io::Image render_image(const ToyIdentity& id, const ToyEdit& e, int size = 64);
// [3,H,W] or [N,3,H,W] in [0,1] -> [N,3,H,W] float32 in [-1,1] (x * 2 - 1), what the networks take.
Tensor to_network_input(const Tensor& images01);

// Every parameter as JSON: {"identity": {...}, "edit": {...}}.
std::string to_json(const ToyIdentity& id, const ToyEdit& e);  // one-line JSON object

}  // namespace gradstyle::data::toyfaces
