#include "cli/command.hpp"

namespace gradstyle::cli {

std::vector<std::unique_ptr<Command>> command_table() {
  std::vector<std::unique_ptr<Command>> t;
  t.push_back(make_demo_command());
  t.push_back(make_bundle_command());
  t.push_back(make_results_command());
  t.push_back(make_align_command());
  t.push_back(make_invert_command());
  t.push_back(make_edit_command());
  t.push_back(make_eval_command());
  t.push_back(make_explain_command());
  t.push_back(make_generate_command());
  t.push_back(make_info_command());
  t.push_back(make_toyfaces_command());
  t.push_back(make_train_command());
  return t;
}

}  // namespace gradstyle::cli
