#pragma once
// What the trainers share (config.cpp, trainer.cpp, stylegan2_trainer.cpp, e4e_trainer.cpp): the
// table-driven JSON configuration (one Field per key reads, range-checks and writes it, so a key cannot be
// read but not written, or the reverse) and the checkpoint helpers. Private to src/train.
#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gradstyle/core/error.hpp"
#include "gradstyle/core/tensor.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/module.hpp"

namespace gradstyle::train::detail {

using nlohmann::json;

// One table drives parsing, range checks and serialisation, so a key cannot be read but not
// written (or the reverse).
struct Field {
  std::function<void(const json&, std::vector<std::string>&)> read;
  std::function<void(json&)> write;
};

template <class T>
Field field(const char* name, T& slot, std::function<std::string(const T&)> check = {}) {
  return Field{
      [name, &slot, check](const json& v, std::vector<std::string>& errors) {
        try {
          T parsed = v.get<T>();
          if (check) {
            std::string why = check(parsed);
            if (!why.empty()) {
              errors.push_back(std::string(name) + " = " + v.dump() + ": " + why);
              return;
            }
          }
          slot = parsed;
        } catch (const json::exception&) {
          errors.push_back(std::string(name) + " = " + v.dump() + ": wrong type");
        }
      },
      [name, &slot](json& out) { out[name] = slot; }};
}

inline std::function<std::string(const double&)> non_negative() {
  return [](const double& v) { return v >= 0 ? "" : "must be >= 0"; };
}
inline std::function<std::string(const double&)> unit_interval() {
  return [](const double& v) { return v >= 0 && v <= 1 ? "" : "must be in [0, 1]"; };
}
inline std::function<std::string(const int64_t&)> at_least(int64_t lo) {
  return [lo](const int64_t& v) { return v >= lo ? "" : "must be >= " + std::to_string(lo); };
}
inline std::function<std::string(const std::string&)> one_of(std::vector<std::string> options) {
  return [options](const std::string& v) {
    if (std::find(options.begin(), options.end(), v) != options.end()) return std::string();
    std::string all;
    for (const auto& o : options) all += (all.empty() ? "" : " | ") + o;
    return "expected " + all;
  };
}


// Reads every key of `j` through `table`; throws ValueError("<what>: unknown keys ...; errors")
// naming every unknown key and every bad value. Keys in `skip` are left to the caller.
inline void read_fields(const json& j, std::map<std::string, Field>& table, const std::string& what,
                        const std::vector<std::string>& skip = {}) {
  std::vector<std::string> unknown, errors;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(skip.begin(), skip.end(), it.key()) != skip.end()) continue;
    if (auto f = table.find(it.key()); f != table.end())
      f->second.read(it.value(), errors);
    else
      unknown.push_back(it.key());
  }
  if (unknown.empty() && errors.empty()) return;
  std::ostringstream msg;
  msg << what << ": ";
  if (!unknown.empty()) {
    msg << "unknown key" << (unknown.size() > 1 ? "s" : "") << ":";
    for (const auto& k : unknown) msg << " '" << k << "'";
    if (!errors.empty()) msg << "; ";
  }
  for (size_t i = 0; i < errors.size(); ++i) msg << (i ? "; " : "") << errors[i];
  throw ValueError(msg.str());
}

// Parses `text` as a JSON object; ValueError "<what>: not valid JSON ..." / "expected a JSON object".
// When `stage` is given, a "stage" key must equal it.
inline json parse_object(const std::string& text, const std::string& what, const char* stage = nullptr) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ValueError(what + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw ValueError(what + ": expected a JSON object, got " + std::string(j.type_name()));
  if (stage && j.contains("stage") && j["stage"] != stage)
    throw ValueError(what + ": stage = " + j["stage"].dump() + " (expected \"" + stage + "\")");
  return j;
}

// A 0-d or one-element tensor's value as double (any dtype, any device).
inline double value_of(const Tensor& t) {
  return t.detach().to(DType::f64).to(Device::cpu()).to_vector<double>().at(0);
}
inline Tensor scalar_i64(int64_t v) { return Tensor::from_vector<int64_t>({v}, {}); }

// Reading a training checkpoint: entries under a prefix (on a device) and named scalars.
struct CheckpointReader {
  const io::NamedTensors& in;
  std::string path;
  nn::StateDict prefixed(const std::string& prefix, Device dev) const {
    nn::StateDict sd;
    for (auto& [k, raw] : in)
      if (k.rfind(prefix, 0) == 0) sd[k.substr(prefix.size())] = io::to_tensor(raw).to(dev);
    return sd;
  }
  Tensor tensor(const std::string& k) const {
    for (auto& [name, raw] : in)
      if (name == k) return io::to_tensor(raw);
    throw FormatError(path + ": not a training checkpoint (no '" + k + "')");
  }
  int64_t i64(const std::string& k) const { return tensor(k).to_vector<int64_t>().at(0); }
};

// A stage configuration saved in a checkpoint against this run's: everything but the run length
// and bookkeeping (iterations, log/image/save cadence, keep_last, device) must be equal, or the
// resume promise breaks. ValueError naming both.
template <class Config>
void require_resumable(Config saved, Config mine, const std::string& path) {
  for (Config* c : {&saved, &mine}) {
    c->iterations = c->log_every = c->image_every = c->save_every = c->keep_last = 0;
    c->device = "";
  }
  if (saved.dump(-1) != mine.dump(-1))
    throw ValueError(path + ": the checkpoint's configuration " + saved.dump(-1) + " differs from this run's " +
                     mine.dump(-1));
}

}  // namespace gradstyle::train::detail
