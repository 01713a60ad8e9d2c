#include "gradstyle/models/irse.hpp"

#include <climits>
#include <cmath>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/dropout.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "models/detail/loader_util.hpp"

namespace gradstyle::models::irse {

using detail::dim_of;
using detail::quoted;

// ---- configuration --------------------------------------------------------------------------------

IRSEConfig IRSEConfig::for_depth(int64_t num_layers, bool se) {
  IRSEConfig c;
  c.se = se;
  if (num_layers == 50) c.blocks = {3, 4, 14, 3};
  else if (num_layers == 100) c.blocks = {3, 13, 30, 3};
  else if (num_layers == 152) c.blocks = {3, 8, 36, 3};
  else throw ValueError("IRSEConfig::for_depth: num_layers must be 50, 100 or 152, got " + std::to_string(num_layers));
  return c;
}

std::vector<IRSEConfig::Unit> IRSEConfig::units() const {
  std::vector<Unit> u;
  int64_t prev = channels.empty() ? 0 : channels[0];
  for (size_t s = 0; s < blocks.size() && s < channels.size(); ++s) {
    for (int64_t i = 0; i < blocks[s]; ++i) u.push_back({i == 0 ? prev : channels[s], channels[s], i == 0 ? 2 : 1});
    prev = channels[s];
  }
  return u;
}

std::vector<int64_t> IRSEConfig::stage_ends() const {
  std::vector<int64_t> e;
  int64_t acc = 0;
  for (int64_t b : blocks) e.push_back((acc += b) - 1);
  return e;
}

int64_t IRSEConfig::num_units() const {
  int64_t n = 0;
  for (int64_t b : blocks) n += b;
  return n;
}

int64_t IRSEConfig::output_size(int64_t in) const {
  for (size_t s = 0; s < blocks.size(); ++s) in = (in + 1) / 2;
  return in;
}

void IRSEConfig::validate() const {
  GS_CHECK(!blocks.empty() && blocks.size() == channels.size(), ValueError, "IRSEConfig: blocks (", blocks.size(),
           " stages) and channels (", channels.size(), " stages) must be non-empty and of equal length");
  GS_CHECK(in_channels >= 1, ValueError, "IRSEConfig: in_channels must be >= 1, got ", in_channels);
  GS_CHECK(!se || se_reduction >= 1, ValueError, "IRSEConfig: se_reduction must be >= 1, got ", se_reduction);
  for (size_t s = 0; s < blocks.size(); ++s) {
    GS_CHECK(blocks[s] >= 1, ValueError, "IRSEConfig: stage ", s, " has ", blocks[s], " units (need >= 1)");
    GS_CHECK(channels[s] >= 1, ValueError, "IRSEConfig: stage ", s, " has width ", channels[s]);
    GS_CHECK(!se || channels[s] / se_reduction >= 1, ValueError, "IRSEConfig: stage ", s, " width ", channels[s],
             " is smaller than the SE reduction ", se_reduction);
    // The loaders tell stages apart by width, so a configuration they could not read back is refused.
    GS_CHECK(s == 0 || channels[s] != channels[s - 1], ValueError, "IRSEConfig: stages ", s - 1, " and ", s,
             " have the same width ", channels[s]);
  }
}

std::string IRSEConfig::str() const {
  std::ostringstream o;
  auto list = [&](const std::vector<int64_t>& v) {
    o << "(";
    for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    o << ")";
  };
  o << "blocks ";
  list(blocks);
  o << ", channels ";
  list(channels);
  o << ", " << (se ? "ir_se (reduction " + std::to_string(se_reduction) + ")" : std::string("ir"));
  if (in_channels != 3) o << ", " << in_channels << " input channels";
  return o.str();
}

// ---- layers ---------------------------------------------------------------------------------------

SEModule::SEModule(int64_t channels, int64_t reduction, ParamInit init)
    : fc1(channels, channels / reduction, 1, 1, 0, false, init), fc2(channels / reduction, channels, 1, 1, 0, false, init) {
  register_module("fc1", &fc1);
  register_module("fc2", &fc2);
}

Tensor SEModule::forward(const Tensor& x) const {
  // x: [B, C, H, W]; s: [B, C, 1, 1]
  Tensor s = mean(x, {2, 3}, /*keepdim=*/true);
  s = sigmoid(fc2.forward(relu(fc1.forward(s))));
  return x * s;
}

InputLayer::InputLayer(int64_t in_channels, int64_t channels, ParamInit init)
    : conv(in_channels, channels, 3, 1, 1, false, init), bn(channels, true, init), prelu(channels, init) {
  register_module("0", &conv);
  register_module("1", &bn);
  register_module("2", &prelu);
}

Tensor InputLayer::forward(const Tensor& x) { return prelu.forward(bn.forward(conv.forward(x))); }

ConvShortcut::ConvShortcut(int64_t in, int64_t out, int64_t stride, ParamInit init)
    : conv(in, out, 1, stride, 0, false, init), bn(out, true, init) {
  register_module("0", &conv);
  register_module("1", &bn);
}

Tensor ConvShortcut::forward(const Tensor& x) { return bn.forward(conv.forward(x)); }

ResLayer::ResLayer(int64_t in, int64_t out, int64_t stride, bool with_se, int64_t reduction, ParamInit init)
    : bn1(in, true, init),
      conv1(in, out, 3, 1, 1, false, init),
      prelu(out, init),
      conv2(out, out, 3, stride, 1, false, init),
      bn2(out, true, init) {
  register_module("0", &bn1);
  register_module("1", &conv1);
  register_module("2", &prelu);
  register_module("3", &conv2);
  register_module("4", &bn2);
  if (with_se) {
    se = std::make_unique<SEModule>(out, reduction, init);
    register_module("5", se.get());
  }
}

Tensor ResLayer::forward(const Tensor& x) {
  Tensor y = bn2.forward(conv2.forward(prelu.forward(conv1.forward(bn1.forward(x)))));
  return se ? se->forward(y) : y;
}

BottleneckIR::BottleneckIR(int64_t in, int64_t out, int64_t stride, bool with_se, int64_t reduction, ParamInit init)
    : stride_(stride) {
  if (in != out) {
    shortcut_ = std::make_shared<ConvShortcut>(in, out, stride, init);
    register_module("shortcut_layer", shortcut_);
  }
  res_ = std::make_shared<ResLayer>(in, out, stride, with_se, reduction, init);
  register_module("res_layer", res_);
}

Tensor BottleneckIR::forward(const Tensor& x) {
  Tensor sc;
  if (shortcut_) {
    sc = shortcut_->forward(x);
  } else if (stride_ == 1) {
    sc = x;
  } else {
    // MaxPool2d(kernel 1, stride s) keeps pixels [::s, ::s].
    sc = slice(slice(x, 2, 0, x.size(2), stride_), 3, 0, x.size(3), stride_);
  }
  return res_->forward(x) + sc;
}

// ---- trunk ----------------------------------------------------------------------------------------

namespace {
const IRSEConfig& validated(const IRSEConfig& c) {
  c.validate();
  return c;
}
}  // namespace

IRSETrunk::IRSETrunk(const IRSEConfig& cfg, ParamInit init)
    : irse_cfg_(validated(cfg)), input_layer(cfg.in_channels, cfg.channels[0], init) {
  register_module("input_layer", &input_layer);
  for (const auto& u : irse_cfg_.units())
    body.emplace_back(u.in, u.out, u.stride, irse_cfg_.se, irse_cfg_.se_reduction, init);
  register_module("body", &body);
}

std::vector<Tensor> IRSETrunk::forward_stages(const Tensor& x) {
  GS_CHECK(x.dim() == 4 && x.size(1) == irse_cfg_.in_channels, ShapeError, "IR-SE trunk: expected input [B, ",
           irse_cfg_.in_channels, ", H, W], got ", shape_str(x.shape()));
  const auto ends = irse_cfg_.stage_ends();
  std::vector<Tensor> out;
  Tensor h = input_layer.forward(x);
  size_t next = 0;
  for (size_t u = 0; u < body.size(); ++u) {
    h = body[u].forward(h);
    if (next < ends.size() && int64_t(u) == ends[next]) {
      out.push_back(h);
      ++next;
    }
  }
  return out;
}

IRSEConfig infer_irse_config(const nn::StateDict& sd, const std::string& name) {
  IRSEConfig cfg;
  detail::Vote c0, cin;
  c0.add(dim_of(sd, "input_layer.0.weight", 0));
  c0.add(dim_of(sd, "input_layer.1.weight", 0));
  c0.add(dim_of(sd, "input_layer.1.running_mean", 0));
  c0.add(dim_of(sd, "input_layer.2.weight", 0));
  cin.add(dim_of(sd, "input_layer.0.weight", 1));
  const int64_t n_units = detail::max_index(sd, "body.") + 1;
  if (c0.winner() < 1 || n_units < 1)
    throw FormatError(name + ": not an IR-SE network (expected 'input_layer.0.weight' and 'body.N.*' keys; found " +
                      detail::some_keys(sd) + ")");
  cfg.in_channels = cin.winner() > 0 ? cin.winner() : 3;
  std::vector<int64_t> width(static_cast<size_t>(n_units), 0);
  // SE widths are C // r: every unit bounds r to (C / (mid + 1), C / mid].
  int64_t r_lo = 1, r_hi = INT64_MAX;
  bool any_se = false;
  for (int64_t u = 0; u < n_units; ++u) {
    const std::string p = "body." + std::to_string(u) + ".";
    detail::Vote w;
    for (const char* k : {"res_layer.1.weight", "res_layer.2.weight", "res_layer.3.weight", "res_layer.4.weight",
                          "res_layer.4.running_mean", "res_layer.4.running_var"})
      w.add(dim_of(sd, p + k, 0));
    w.add(dim_of(sd, p + "res_layer.3.weight", 1));
    w.add(dim_of(sd, p + "res_layer.5.fc2.weight", 0));
    width[size_t(u)] = w.winner();
    if (width[size_t(u)] < 1)
      throw FormatError(name + ": cannot tell the width of unit " + quoted("body." + std::to_string(u)) +
                        " (no res_layer.{1,2,3,4} keys)");
    const int64_t se_mid = dim_of(sd, p + "res_layer.5.fc1.weight", 0);
    if (se_mid > 0) {
      any_se = true;
      r_lo = std::max(r_lo, width[size_t(u)] / (se_mid + 1) + 1);
      r_hi = std::min(r_hi, width[size_t(u)] / se_mid);
    }
  }
  cfg.se = any_se;
  // The published networks use 16; otherwise the largest reduction consistent with every unit (a
  // wrong fc1 shape leaves the range empty and the strict load names it).
  if (any_se) cfg.se_reduction = (r_lo <= 16 && 16 <= r_hi) || r_lo > r_hi ? 16 : r_hi;
  cfg.blocks.clear();
  cfg.channels.clear();
  for (int64_t u = 0; u < n_units; ++u) {
    if (u == 0 || width[size_t(u)] != width[size_t(u - 1)]) {
      cfg.blocks.push_back(0);
      cfg.channels.push_back(width[size_t(u)]);
    }
    ++cfg.blocks.back();
  }
  if (cfg.channels[0] != c0.winner())
    throw FormatError(name + ": the input layer has " + std::to_string(c0.winner()) +
                      " channels but the first stage is " + std::to_string(cfg.channels[0]) +
                      " wide (an IR trunk keeps the width in its first stage)");
  return cfg;
}

// ---- Backbone -------------------------------------------------------------------------------------

std::string BackboneConfig::str() const {
  std::ostringstream o;
  o << trunk.str() << ", input " << input_size << ", embedding " << embedding << (affine ? "" : ", BN1d affine=false");
  return o.str();
}

Backbone::OutputLayer::OutputLayer(int64_t channels, int64_t spatial, int64_t embedding, bool affine, ParamInit init)
    : bn2d(channels, true, init), linear(channels * spatial * spatial, embedding, true, init), bn1d(embedding, affine, init) {
  register_module("0", &bn2d);
  register_module("3", &linear);
  register_module("4", &bn1d);
}

namespace {
const BackboneConfig& validated(const BackboneConfig& c) {
  c.trunk.validate();
  GS_CHECK(c.input_size >= 1 && c.embedding >= 1, ValueError, "Backbone: input_size (", c.input_size,
           ") and embedding (", c.embedding, ") must be >= 1");
  GS_CHECK(c.drop_ratio >= 0 && c.drop_ratio <= 1, ValueError, "Backbone: drop_ratio must be in [0, 1], got ",
           c.drop_ratio);
  return c;
}
}  // namespace

Backbone::Backbone(const BackboneConfig& cfg, ParamInit init)
    : IRSETrunk(validated(cfg).trunk, init),
      output_layer(cfg.trunk.channels.back(), cfg.trunk.output_size(cfg.input_size), cfg.embedding, cfg.affine, init),
      cfg_(cfg) {
  register_module("output_layer", &output_layer);
}

Tensor Backbone::forward_unnormalized(const Tensor& x) {
  const int64_t s = cfg_.trunk.output_size(cfg_.input_size);
  GS_CHECK(x.dim() == 4 && x.size(2) == x.size(3) && cfg_.trunk.output_size(x.size(2)) == s, ShapeError,
           "Backbone: expected input [B, ", cfg_.trunk.in_channels, ", ", cfg_.input_size, ", ", cfg_.input_size,
           "], got ", shape_str(x.shape()));
  Tensor h = forward_stages(x).back();  // [B, C, s, s]
  h = output_layer.bn2d.forward(h);
  h = dropout(h, cfg_.drop_ratio, is_training(), dropout_gen_);
  h = reshape(h, {h.size(0), -1});  // channel-major flatten: c*s*s + y*s + x
  h = output_layer.linear.forward(h);
  return output_layer.bn1d.forward(h);  // [B, embedding]
}

Tensor Backbone::forward(const Tensor& x) {
  Tensor e = forward_unnormalized(x);
  return e / sqrt(sum(e * e, {1}, /*keepdim=*/true));  // l2_norm: no epsilon
}

BackboneConfig Backbone::infer_config(const nn::StateDict& sd, const std::string& name) {
  BackboneConfig cfg;
  cfg.trunk = infer_irse_config(sd, name);
  const int64_t emb = dim_of(sd, "output_layer.3.weight", 0), in = dim_of(sd, "output_layer.3.weight", 1);
  if (emb < 1 || in < 1)
    throw FormatError(name + ": not an IR-SE Backbone: no 'output_layer.3.weight' (a Linear [embedding, C*s*s])");
  const int64_t c = cfg.trunk.channels.back();
  const int64_t s = int64_t(std::llround(std::sqrt(double(in) / double(c))));
  if (s < 1 || c * s * s != in)
    throw FormatError(name + ": 'output_layer.3.weight' has " + std::to_string(in) +
                      " inputs, not C*s*s for the final width C = " + std::to_string(c));
  cfg.embedding = emb;
  cfg.input_size = s << cfg.trunk.blocks.size();  // the largest input giving an s x s final map (7 -> 112)
  cfg.affine = detail::has(sd, "output_layer.4.weight") || detail::has(sd, "output_layer.4.bias");
  return cfg;
}

std::unique_ptr<Backbone> Backbone::from_state_dict(const nn::StateDict& sd, const std::string& name,
                                                    const LoadOptions& opts) {
  const BackboneConfig cfg = infer_config(sd, name);
  auto net = std::make_unique<Backbone>(cfg, ParamInit::Deferred);
  detail::load_strict(*net, sd, name, cfg.str());
  net->to(opts.device);
  detail::freeze(*net);
  return net;
}

std::unique_ptr<Backbone> Backbone::from_checkpoint(const std::string& path, const LoadOptions& opts) {
  detail::LoadedFile f = detail::load_file(path, Device::cpu());
  f.tree.reset();
  nn::StateDict sd = std::move(f.tensors);
  // A wrapped file ({'state_dict': ...}) is accepted too.
  if (!detail::has(sd, "input_layer.0.weight")) {
    nn::StateDict inner = detail::sub_dict(sd, "state_dict.");
    if (detail::has(inner, "input_layer.0.weight")) sd = std::move(inner);
  }
  return from_state_dict(sd, quoted(path), opts);
}

}  // namespace gradstyle::models::irse
