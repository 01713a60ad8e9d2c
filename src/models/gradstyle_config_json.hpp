#pragma once
// nlohmann ADL hooks of GradStyleConfig, kept out of the public header so that embedders need no
// JSON library: to_json writes every key; from_json validates and rejects unknown keys.
#include <nlohmann/json.hpp>

#include "gradstyle/models/gradstyle_config.hpp"

namespace gradstyle::models::gsnet {
void to_json(nlohmann::json& j, const GradStyleConfig& c);
void from_json(const nlohmann::json& j, GradStyleConfig& c);
}  // namespace gradstyle::models::gsnet
