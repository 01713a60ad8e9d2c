#pragma once
// The table-driven JSON configuration helpers shared by the training configurations (config.cpp,
// stylegan2_trainer.cpp): one Field per key reads, range-checks and writes it, so a key cannot be
// read but not written (or the reverse). Private to src/train.
#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gradstyle/core/error.hpp"

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

}  // namespace gradstyle::train::detail
