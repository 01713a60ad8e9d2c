#include "gradstyle/train/config.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gradstyle/core/error.hpp"
#include "train/config_fields.hpp"

namespace gradstyle::train {

using nlohmann::json;
using namespace detail;

static std::map<std::string, Field> fields(TrainConfig& c, std::string& reduction) {
  std::map<std::string, Field> f;
  f.emplace("generator", field("generator", c.generator));
  f.emplace("encoder", field("encoder", c.encoder));
  f.emplace("lpips_vgg", field("lpips_vgg", c.lpips_vgg));
  f.emplace("lpips_lin", field("lpips_lin", c.lpips_lin));
  f.emplace("arcface", field("arcface", c.arcface));
  f.emplace("data", field("data", c.data));
  f.emplace("data_source", field("data_source", c.data_source, one_of({"folder", "generator", "toyfaces"})));
  f.emplace("toyfaces_seed", field("toyfaces_seed", c.toyfaces_seed));
  f.emplace("toyfaces_identities", field("toyfaces_identities", c.toyfaces_identities, at_least(0)));
  f.emplace("warp_distortion", field<double>("warp_distortion", c.warp_distortion,
                                             [](const double& v) { return v >= 0 && v < 1 ? "" : "must be in [0, 1)"; }));
  f.emplace("warp_prob", field("warp_prob", c.warp_prob, unit_interval()));
  f.emplace("warp_shared_across_stages", field("warp_shared_across_stages", c.warp_shared_across_stages));
  f.emplace("warp_impl", field("warp_impl", c.warp_impl, one_of({"homography", "torchvision"})));
  f.emplace("noise_mode", field("noise_mode", c.noise_mode, one_of({"const"})));
  f.emplace("loss_resolution", field("loss_resolution", c.loss_resolution, at_least(1)));
  f.emplace("lambda_l2", field("lambda_l2", c.lambda_l2, non_negative()));
  f.emplace("lambda_lpips", field("lambda_lpips", c.lambda_lpips, non_negative()));
  f.emplace("lambda_id", field("lambda_id", c.lambda_id, non_negative()));
  f.emplace("lambda_adv", field("lambda_adv", c.lambda_adv, non_negative()));
  f.emplace("lambda_f", field("lambda_f", c.lambda_f, non_negative()));
  f.emplace("lambda_aligner", field("lambda_aligner", c.lambda_aligner, non_negative()));
  f.emplace("lpips_net", field("lpips_net", c.lpips_net, one_of({"vgg"})));
  f.emplace("loss_reduction", field("loss_reduction", reduction, one_of({"mean", "sum"})));
  f.emplace("image_loss_streams", field("image_loss_streams", c.image_loss_streams, one_of({"both", "reconstruction"})));
  f.emplace("edit_stream_updates_gate", field("edit_stream_updates_gate", c.edit_stream_updates_gate));
  f.emplace("d_init", field("d_init", c.d_init));
  f.emplace("r1_gamma", field("r1_gamma", c.r1_gamma, non_negative()));
  f.emplace("d_reg_every", field("d_reg_every", c.d_reg_every, at_least(0)));
  f.emplace("d_lr_lazy_correction", field("d_lr_lazy_correction", c.d_lr_lazy_correction));
  f.emplace("optimizer", field("optimizer", c.optimizer, one_of({"adam_lookahead", "ranger", "adam"})));
  f.emplace("lr", field<double>("lr", c.lr, [](const double& v) { return v > 0 ? "" : "must be > 0"; }));
  f.emplace("d_lr", field<double>("d_lr", c.d_lr, [](const double& v) { return v > 0 ? "" : "must be > 0"; }));
  f.emplace("lookahead_k", field("lookahead_k", c.lookahead_k, at_least(1)));
  f.emplace("lookahead_alpha", field<double>("lookahead_alpha", c.lookahead_alpha,
                                             [](const double& v) { return v > 0 && v <= 1 ? "" : "must be in (0, 1]"; }));
  f.emplace("batch", field("batch", c.batch, at_least(1)));
  f.emplace("iterations", field("iterations", c.iterations, at_least(0)));
  f.emplace("hflip", field("hflip", c.hflip, unit_interval()));
  f.emplace("progressive_stages", field<std::vector<int64_t>>("progressive_stages", c.progressive_stages,
                                                              [](const std::vector<int64_t>& v) {
                                                                for (int64_t s : v)
                                                                  if (s < 1) return "every stage needs >= 1 iteration";
                                                                return "";
                                                              }));
  f.emplace("seed", field("seed", c.seed));
  f.emplace("log_every", field("log_every", c.log_every, at_least(1)));
  f.emplace("image_every", field("image_every", c.image_every, at_least(0)));
  f.emplace("save_every", field("save_every", c.save_every, at_least(1)));
  f.emplace("keep_last", field("keep_last", c.keep_last, at_least(1)));
  f.emplace("device", field("device", c.device));
  return f;
}

TrainConfig TrainConfig::parse(const std::string& text, const std::vector<std::string>& model_keys) {
  const json j = parse_object(text, "training config");
  TrainConfig c;
  std::string reduction = "mean";
  auto table = fields(c, reduction);
  const std::set<std::string> model(model_keys.begin(), model_keys.end());
  std::vector<std::string> unknown, errors;
  json model_part = json::object();
  json adv_alias;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "adv_weight") {
      adv_alias = it.value();
      continue;
    }
    if (auto f = table.find(k); f != table.end()) {
      f->second.read(it.value(), errors);
    } else if (model.count(k)) {
      model_part[k] = it.value();
    } else {
      unknown.push_back(k);
    }
  }
  if (!adv_alias.is_null()) {
    if (!adv_alias.is_number() || adv_alias.get<double>() < 0) {
      errors.push_back("adv_weight = " + adv_alias.dump() + ": must be a number >= 0");
    } else if (j.contains("lambda_adv") && j["lambda_adv"].is_number() &&
               j["lambda_adv"].get<double>() != adv_alias.get<double>()) {
      errors.push_back("adv_weight = " + adv_alias.dump() + " contradicts lambda_adv = " + j["lambda_adv"].dump() +
                       " (they are one setting; give one)");
    } else {
      c.lambda_adv = adv_alias.get<double>();
    }
  }
  if (errors.empty() && c.warp_impl == "torchvision" && c.warp_shared_across_stages)
    errors.push_back("warp_impl = torchvision draws one warp per stage, as RandomPerspective does per call: set "
                     "warp_shared_across_stages = false with it");
  std::ostringstream msg;
  if (!unknown.empty()) {
    msg << "training config: unknown key" << (unknown.size() > 1 ? "s" : "") << ":";
    for (const auto& k : unknown) msg << " '" << k << "'";
  }
  if (!errors.empty()) {
    msg << (unknown.empty() ? "training config: " : "; ");
    for (size_t i = 0; i < errors.size(); ++i) msg << (i ? "; " : "") << errors[i];
  }
  if (!unknown.empty() || !errors.empty()) throw ValueError(msg.str());
  c.loss_reduction = reduction == "sum" ? Reduction::Sum : Reduction::Mean;
  c.model_json = model_part.dump();
  return c;
}

std::string TrainConfig::dump(int indent) const {
  TrainConfig copy = *this;
  std::string reduction = loss_reduction == Reduction::Sum ? "sum" : "mean";
  json out = json::object();
  for (auto& [name, f] : fields(copy, reduction)) f.write(out);
  return out.dump(indent);
}

double TrainConfig::d_ratio() const {
  if (!d_lr_lazy_correction || d_reg_every <= 0) return 1.0;
  return double(d_reg_every) / double(d_reg_every + 1);
}

}  // namespace gradstyle::train
